"""Getting paid orders to members: delivery with a tracking number, or self-pickup at a group
leader's point with a one-time pickup code; receipt confirmed by the member, by the pickup, or
automatically; then the after-sales window, after which the order is final (`order_completed`,
the moment commissions settle)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.runner import enqueue
from shop.identity.models import PickupPoint
from shop.identity.settings import merchant_settings
from shop.orders.models import GOODS, Order
from shop.orders.refunds import any_open_refund, open_refund
from shop.orders.service import complete_order, fulfilment_hold, lock_order, transition
from shop.orders.states import ORDER_MACHINE, OrderAction, OrderStatus

# Jobs this module asks for (by name: shop.core.runner), run by shop.orders.jobs.
AUTO_CONFIRM_JOB = "orders.auto_confirm"
FINALIZE_JOB = "orders.finalize"


def _goods_only(order: Order) -> None:
    """Only goods are shipped, picked up or received; the other kinds are completed by their owner
    package (`shop.orders.special.complete_special_order`)."""
    if order.kind != GOODS:
        raise Conflict(
            f"an order of kind {order.kind} has no fulfilment",
            code="no_fulfilment",
            details={"kind": order.kind},
        )


def _nothing_holds(order: Order) -> None:
    """Goods are not sent or handed over while money for them may be going back, nor while an
    offer holds them (a group buy still forming)."""
    if open_refund(order.id):
        raise Conflict("a refund of this order is in progress", code="refund_in_progress")
    held = fulfilment_hold(order)
    if held is not None:
        raise held


def ship(merchant_id: int, order_id: int, *, carrier: str, tracking_no: str, now: datetime | None = None) -> Order:
    now = now or utcnow()
    order = lock_order(order_id, merchant_id=merchant_id)
    _goods_only(order)
    if order.fulfilment != "delivery":
        raise Conflict("a pickup order is not shipped; mark it ready for pickup", code="wrong_fulfilment")
    _nothing_holds(order)
    transition(order, OrderAction.SHIP, now=now, carrier=carrier, tracking_no=tracking_no)
    _schedule_auto_confirm(order)
    return order


def mark_ready(merchant_id: int, order_id: int, *, now: datetime | None = None) -> Order:
    order = lock_order(order_id, merchant_id=merchant_id)
    _goods_only(order)
    if order.fulfilment != "pickup":
        raise Conflict("only pickup orders wait at a pickup point", code="wrong_fulfilment")
    _nothing_holds(order)
    transition(order, OrderAction.MARK_READY, now=now)
    _schedule_auto_confirm(order)
    return order


def _receive(order: Order, action: OrderAction, now: datetime) -> Order:
    days = merchant_settings(order.merchant_id).after_sales_days
    transition(order, action, now=now, after_sales_until=now + timedelta(days=days))
    enqueue(FINALIZE_JOB, order.id, delay=timedelta(days=days, seconds=5), job_id=f"finalize-{order.id}")
    return order


def confirm_receipt(merchant_id: int, member_id: int, order_id: int, *, now: datetime | None = None) -> Order:
    order = lock_order(order_id, merchant_id=merchant_id, member_id=member_id)
    _goods_only(order)
    return _receive(order, OrderAction.CONFIRM_RECEIPT, now or utcnow())


def verify_pickup(merchant_id: int, order_id: int, code: str, *, now: datetime | None = None) -> Order:
    """Staff hand over an order: the code must match, and it works once."""
    order = lock_order(order_id, merchant_id=merchant_id)
    return _hand_over(order, code, now or utcnow())


def verify_pickup_as_leader(
    merchant_id: int, leader_member_id: int, code: str, *, now: datetime | None = None
) -> Order:
    """A group leader hands over an order waiting at one of their points, found by its code."""
    points = select(PickupPoint.id).where(
        PickupPoint.merchant_id == merchant_id, PickupPoint.leader_member_id == leader_member_id
    )
    order_id = db.session.execute(
        select(Order.id)
        .where(
            Order.merchant_id == merchant_id,
            Order.pickup_point_id.in_(points),
            Order.pickup_code == code,
            # waiting, or collected already (answered `already_collected`)
            Order.status.in_((OrderStatus.READY_FOR_PICKUP, OrderStatus.RECEIVED)),
        )
        .order_by(Order.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if order_id is None:
        raise NotFound("no order with that pickup code at your pickup points", code="pickup_code_unknown")
    return _hand_over(lock_order(order_id), code, now or utcnow())


def _hand_over(order: Order, code: str, now: datetime) -> Order:
    _goods_only(order)
    if order.fulfilment != "pickup" or order.pickup_code != code:
        raise InvalidInput("wrong pickup code", code="pickup_code_wrong", details={"fields": {"code": ["wrong code"]}})
    if not ORDER_MACHINE.step(order.status, OrderAction.PICK_UP).moved:
        raise Conflict("this order has already been collected", code="already_collected")
    _nothing_holds(order)  # decide the refund first: goods handed over or money back, not both
    return _receive(order, OrderAction.PICK_UP, now)


def auto_confirm(order_id: int, *, now: datetime | None = None) -> bool:
    """Confirm receipt N days after shipping (or after the goods reached the pickup point);
    False when not due, or not waiting for the member."""
    now = now or utcnow()
    order = lock_order(order_id)
    if order.kind != GOODS:  # nothing to confirm (a job: refuses nothing, does nothing)
        return False
    if not ORDER_MACHINE.step(order.status, OrderAction.AUTO_CONFIRM).moved:
        return False  # confirmed (or final) already
    since = order.ready_at if order.status == OrderStatus.READY_FOR_PICKUP else order.shipped_at
    days = merchant_settings(order.merchant_id).auto_confirm_days
    if since is None or since + timedelta(days=days) > now:
        return False
    if order.status == OrderStatus.READY_FOR_PICKUP:
        _nothing_holds(order)  # goods at the point with a refund pending are not handed over
    _receive(order, OrderAction.AUTO_CONFIRM, now)
    return True


def _schedule_auto_confirm(order: Order) -> None:
    days = merchant_settings(order.merchant_id).auto_confirm_days
    enqueue(AUTO_CONFIRM_JOB, order.id, delay=timedelta(days=days, seconds=5), job_id=f"auto-confirm-{order.id}")


def finalize(order_id: int, *, now: datetime | None = None) -> bool:
    """Close the after-sales window: the order is final. Waits while a refund is open."""
    now = now or utcnow()
    order = lock_order(order_id)
    if order.kind != GOODS or not ORDER_MACHINE.step(order.status, OrderAction.COMPLETE).moved:
        return False  # final already, or completed by its owner package
    if order.after_sales_until > now or any_open_refund(order.id):
        return False
    complete_order(order, now)
    return True


# --- pickup points ------------------------------------------------------------------------------
