"""`install()` of coupons (shop.install describes the pattern)."""

from __future__ import annotations

from coupons import models  # noqa: F401  (the coupon tables join the app's schema)
from shop.core import integrity
from shop.core.errors import Conflict

# What the coupon tables' keys mean when a race takes one (shop.core.integrity).
MEANINGS = {
    "uq_coupons_source": integrity.Meaning(Conflict, "coupon_exists", "that coupon was issued already"),
}


def install() -> None:
    """The coupon tables and their constraints' meanings so far; the adjuster, the order-event
    handlers, the jobs and the demo data join as issue 13 goes on."""
    integrity.register(duplicate=MEANINGS)
