"""Background jobs of orders: ids in, one service call in a transaction; and their sweeps."""

from __future__ import annotations

from sqlalchemy import and_, exists, func, or_, select

from shop.core.db import transaction, utcnow
from shop.core.runner import each_due, job, register_sweep
from shop.identity.models import DEFAULT_AUTO_CONFIRM_DAYS, MerchantSettings
from shop.orders import fulfilment, refunds
from shop.orders import service as orders
from shop.orders.models import Order, Refund
from shop.orders.states import OrderStatus


@job(fulfilment.AUTO_CONFIRM_JOB)
def auto_confirm(order_id: int) -> bool:
    with transaction():
        return fulfilment.auto_confirm(order_id)


@job(fulfilment.FINALIZE_JOB)
def finalize_order(order_id: int) -> bool:
    with transaction():
        return fulfilment.finalize(order_id)


def sweep_auto_confirm() -> int:
    """Shipped (or waiting at a pickup point) longer than the merchant's auto-confirm days."""
    days = func.coalesce(MerchantSettings.auto_confirm_days, DEFAULT_AUTO_CONFIRM_DAYS)
    since = func.coalesce(Order.shipped_at, Order.ready_at)
    return each_due(
        select(Order.id)
        .outerjoin(MerchantSettings, MerchantSettings.merchant_id == Order.merchant_id)
        .where(
            or_(
                and_(Order.status == OrderStatus.SHIPPED, Order.shipped_at.is_not(None)),
                and_(Order.status == OrderStatus.READY_FOR_PICKUP, Order.ready_at.is_not(None)),
            ),
            since + func.make_interval(0, 0, 0, days) <= utcnow(),
        )
        .order_by(since, Order.id),
        auto_confirm,
    )


def sweep_finalize() -> int:
    open_refund = exists().where(Refund.order_id == Order.id, Refund.status.in_(refunds.OPEN))
    return each_due(
        select(Order.id)
        .where(Order.status == OrderStatus.RECEIVED, Order.after_sales_until <= utcnow(), ~open_refund)
        .order_by(Order.after_sales_until, Order.id),
        finalize_order,
    )


def purge_idempotency_keys() -> int:
    with transaction():
        return orders.purge_idempotency_keys()


register_sweep(sweep_auto_confirm, 600)
register_sweep(sweep_finalize, 600)
register_sweep(purge_idempotency_keys, 3600)
