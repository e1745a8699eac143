"""Background jobs of the shop: ids in, one service call in a transaction, nothing else.

Each is idempotent (the service reads the state and does nothing when the work is done), and
each has a sweep that finds due work a lost job missed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shop import fulfilment, orders, refunds
from shop.db import db, transaction, utcnow
from shop.errors import UpstreamError
from shop.models import Merchant, Order, Refund
from shop.payments import payment_provider
from shop.payments.service import reconcile_with_provider
from shop.runner import register_sweep

SWEEP_BATCH = 500
log = logging.getLogger(__name__)


def expire_order(order_id: int) -> str:
    """Close an unpaid order that is due, unless the provider says it was paid after all."""
    with transaction():
        order = db.session.get(Order, order_id)
        if order is None or order.status != "pending_payment" or order.expires_at > utcnow():
            return order.status if order else "missing"
        try:
            if reconcile_with_provider(payment_provider(), order_id) == "applied":
                return "paid"
        except UpstreamError:
            log.warning("could not query the provider for order %s; expiring it", order_id)
        return orders.cancel_order(order_id, reason="expired").status


def close_payment(order_id: int) -> None:
    """Close the unpaid order at the provider, so it cannot be paid any more."""
    with transaction():
        order = db.session.get(Order, order_id)
        if order is None or order.status != "cancelled":
            return
        payment_provider().close(db.session.get(Merchant, order.merchant_id), order.order_no)


def submit_refund(refund_id: int) -> str:
    with transaction():
        return refunds.submit_refund(payment_provider(), refund_id)


def deliver_fake_refund_notification(merchant_id: int, out_refund_no: str) -> str:
    """The fake provider's refund callback: signed and encrypted, through the real handler."""
    from shop.payments.service import handle_notification

    provider = payment_provider()
    with transaction():
        merchant = db.session.get(Merchant, merchant_id)
        refund = db.session.execute(
            select(Refund).where(Refund.merchant_id == merchant_id, Refund.out_refund_no == out_refund_no)
        ).scalar_one()
        order = db.session.get(Order, refund.order_id)
        headers, body = provider.refund_notification(
            merchant,
            out_trade_no=order.order_no,
            out_refund_no=out_refund_no,
            refund=refund.amount,
            total=order.paid_total or order.payable_total,
        )
    with transaction():
        return handle_notification(provider, merchant.code, headers, body).outcome


def auto_confirm(order_id: int) -> bool:
    with transaction():
        return fulfilment.auto_confirm(order_id)


def finalize_order(order_id: int) -> bool:
    with transaction():
        return fulfilment.finalize(order_id)


def _due(query) -> list[int]:
    return list(db.session.execute(query.limit(SWEEP_BATCH)).scalars())


def sweep_expired_orders() -> int:
    with transaction():
        due = _due(select(Order.id).where(Order.status == "pending_payment", Order.expires_at < utcnow()))
    for order_id in due:
        expire_order(order_id)
    return len(due)


def sweep_auto_confirm() -> int:
    with transaction():
        due = _due(select(Order.id).where(Order.status == "shipped", Order.shipped_at < utcnow() - timedelta(days=1)))
    return sum(auto_confirm(order_id) for order_id in due)


def sweep_finalize() -> int:
    with transaction():
        due = _due(select(Order.id).where(Order.status == "received", Order.after_sales_until < utcnow()))
    return sum(finalize_order(order_id) for order_id in due)


def sweep_refunds() -> int:
    """Re-submit refunds the provider has not settled after a while (out_refund_no makes it safe)."""
    with transaction():
        due = _due(
            select(Refund.id).where(Refund.status == "processing", Refund.created_at < utcnow() - timedelta(minutes=10))
        )
    for refund_id in due:
        submit_refund(refund_id)
    return len(due)


def purge_idempotency_keys() -> int:
    with transaction():
        return orders.purge_idempotency_keys()


register_sweep(sweep_expired_orders, 60)
register_sweep(sweep_auto_confirm, 600)
register_sweep(sweep_finalize, 600)
register_sweep(sweep_refunds, 600)
register_sweep(purge_idempotency_keys, 3600)
