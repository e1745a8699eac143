"""`install()` of distribution (shop.install describes the pattern)."""

from __future__ import annotations


def install() -> None:
    """Nothing to register yet: the distribution issue adds its handlers, jobs and demo data here."""
