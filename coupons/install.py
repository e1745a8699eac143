"""`install()` of coupons (shop/install.py describes the pattern): the tables' meanings, the
`coupons` pricing adjuster, the order and member event handlers, and the jobs and sweeps."""

from __future__ import annotations

from sqlalchemy import select

from coupons import handlers, models, service
from coupons.checkout import CouponAdjuster
from shop.checkout.pricing import register_adjuster
from shop.core import integrity
from shop.core.db import db
from shop.core.errors import Conflict
from shop.core.events import MemberJoined, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded, bus
from shop.demo import register_demo

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


DEMO_TEMPLATES = (
    {"name": "满100减10", "kind": "amount_off", "threshold": 10000, "amount": 1000, "channels": ["centre"]},
    {"name": "全场9折 最多减20", "kind": "percent_off", "rate_bp": 1000, "cap": 2000, "channels": ["centre"]},
    {"name": "新人包邮券", "kind": "free_shipping", "audience": "new_members", "channels": ["welcome"]},
)


def load_demo(merchant_id: int) -> bool:
    """The demo shop's coupons: two in the claim centre, a welcome gift (once: by name)."""
    known = set(
        db.session.execute(select(models.CouponTemplate.name).where(models.CouponTemplate.merchant_id == merchant_id))
        .scalars()
        .all()
    )
    made = False
    for terms in DEMO_TEMPLATES:
        if terms["name"] not in known:
            service.create_template(merchant_id, valid_days=7, total_quantity=1000, **terms)
            made = True
    return made


def install() -> None:
    """Safe to call twice: every registration is idempotent."""
    from coupons import jobs  # noqa: F401  (registers the grant job and the sweeps)

    integrity.register(duplicate=MEANINGS)
    register_adjuster(CouponAdjuster())
    for event, handler in SUBSCRIPTIONS:
        bus.subscribe(event, handler)
    register_demo(load_demo)
