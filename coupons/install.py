"""`install()` of coupons (shop.install describes the pattern)."""

from __future__ import annotations


def install() -> None:
    """Nothing to register yet: the coupons issue adds its adjuster, handlers, jobs and demo data here."""
