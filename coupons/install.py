"""`install()` of coupons (shop/install.py describes the pattern): the tables' meanings, the
`coupons` pricing adjuster, the order and member event handlers, and the jobs and sweeps."""

from __future__ import annotations

from coupons import handlers, models  # noqa: F401  (the coupon tables join the app's schema)
from coupons.checkout import CouponAdjuster
from shop.checkout.pricing import register_adjuster
from shop.core import integrity
from shop.core.errors import Conflict
from shop.core.events import MemberJoined, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, bus

# What the coupon tables' keys mean when a race takes one (shop.core.integrity).
MEANINGS = {
    "uq_coupons_source": integrity.Meaning(Conflict, "coupon_exists", "that coupon was issued already"),
}

SUBSCRIPTIONS = (
    (OrderPlaced, handlers.on_order_placed),
    (OrderPaid, handlers.on_order_paid),
    (OrderCancelled, handlers.on_order_cancelled),
    (OrderRefunded, handlers.on_order_refunded),
    (MemberJoined, handlers.on_member_joined),
)


def install() -> None:
    """Safe to call twice: every registration is idempotent."""
    from coupons import jobs  # noqa: F401  (registers the grant job and the sweeps)

    integrity.register(duplicate=MEANINGS)
    register_adjuster(CouponAdjuster())
    for event, handler in SUBSCRIPTIONS:
        bus.subscribe(event, handler)
