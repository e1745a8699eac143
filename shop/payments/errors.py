"""Errors of the payment notification path."""

from __future__ import annotations


class NotificationRejected(Exception):
    """A notification that must not be acted on; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
