"""Domain errors: a machine-readable code, a message for people and details for programs.

`api/errors.py` maps each class to an HTTP status; nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(DomainError):
    """Unknown id, or one that belongs to another merchant or member (indistinguishable on purpose)."""

    code = "not_found"


class Conflict(DomainError):
    """The request is well formed but the current state refuses it (stock, a duplicate, a transition)."""

    code = "conflict"


class Superseded(Conflict):
    """What the server chose for the request, not the caller (e.g. the coupons that price an order
    best), was taken by a concurrent request meanwhile. Asked again, it chooses otherwise: a
    caller that let the server choose may run the whole request once more."""


class InvalidInput(DomainError):
    """A business rule about the input itself; details name the fields at fault."""

    code = "invalid_input"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class UpstreamError(DomainError):
    """An external service (WeChat, a payment provider) failed or could not be reached."""

    code = "upstream_error"


class RateLimited(DomainError):
    """Too many requests; `retry_after` (seconds), when known, becomes the Retry-After header."""

    code = "rate_limited"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


def field_error(field: str, message: str, code: str = "invalid_input") -> InvalidInput:
    """A 422 naming the one field at fault."""
    return InvalidInput(message, code=code, details={"fields": {field: [message]}})
