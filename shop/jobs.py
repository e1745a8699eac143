"""Background jobs of the shop: ids in, one service call in a transaction, nothing else; a job
that calls WeChat Pay makes the call between two transactions, never inside one.

Each is idempotent (the service reads the state and does nothing when the work is done), and
each has a sweep that finds due work a lost job missed. A sweep takes due work oldest first and
handles each item on its own, so one item that keeps failing never holds up the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Select, and_, exists, func, or_, select

from shop import fulfilment, orders, refunds
from shop.db import db, transaction, utcnow
from shop.errors import DomainError, UpstreamError
from shop.models import DEFAULT_AUTO_CONFIRM_DAYS, Merchant, MerchantSettings, Order, Refund
from shop.payments import payment_provider
from shop.payments.service import apply_queried_payment, provider_order
from shop.payments.wechatpay import NotificationRejected
from shop.runner import register_sweep

SWEEP_BATCH = 500
# How long an unpaid order whose payment state cannot be learned (the provider unreachable) is
# kept past its expiry before it is closed anyway (a payment after that is refunded as late).
UNKNOWN_PAYMENT_GRACE = timedelta(hours=1)
# How far back the close sweep looks: an order can be paid at most until its expiry, a day at most.
CLOSE_SWEEP_WINDOW = timedelta(days=1, hours=1)
log = logging.getLogger(__name__)
T = TypeVar("T")


def expire_order(order_id: int) -> str:
    """Close an unpaid order that is due, unless the provider says it was paid after all.

    The provider is asked between two transactions: the first reads the order (and what asking
    takes), the second acts on the answer for the order as it is by then. A notification that
    paid it meanwhile wins: the payment is known (a duplicate) and cancelling a paid order does
    nothing. An answer that cannot be trusted (the provider unreachable, or reporting a payment
    that does not match the order) keeps the order open for UNKNOWN_PAYMENT_GRACE, then it is
    closed anyway (a payment after that is refunded as late).
    """
    provider = payment_provider()
    with transaction():
        order = db.session.get(Order, order_id)
        if order is None or order.status != "pending_payment" or order.expires_at > utcnow():
            return order.status if order else "missing"
        expires_at = order.expires_at
        asked = _cannot_ask(order_id, lambda: provider_order(provider, order))
    in_grace = utcnow() < expires_at + UNKNOWN_PAYMENT_GRACE
    answer = None
    if asked is not None:
        try:
            answer = _cannot_ask(order_id, lambda: provider.query(asked.account, asked.order_no))
        except UpstreamError:
            if in_grace:
                log.warning("provider unreachable; order %s stays open until it can be asked", order_id)
                return "pending_payment"
    try:
        with transaction():
            if asked is not None and answer is not None and apply_queried_payment(provider, asked, answer) == "applied":
                return "paid"
            return orders.cancel_order(order_id, reason="expired").status
    except NotificationRejected as exc:
        _mismatch(order_id, exc)
        if in_grace:
            return "pending_payment"
    with transaction():
        return orders.cancel_order(order_id, reason="expired").status


def _cannot_ask(order_id: int, ask: Callable[[], T]) -> T | None:
    """`ask()`, or None when the provider cannot be asked about this order for a reason that
    will not pass (e.g. no payment account: it cannot have been paid there). An unreachable
    provider (UpstreamError) is raised: that one passes."""
    try:
        return ask()
    except UpstreamError:
        raise
    except DomainError as exc:
        log.warning("cannot ask the provider about order %s (%s); expiring it", order_id, exc.code)
        return None


def _mismatch(order_id: int, exc: NotificationRejected) -> None:
    log.error(
        "order %s: WeChat Pay reports a payment that does not match it (%s: %s); staff must look",
        order_id,
        exc.reason,
        exc.message,
    )


def close_payment(order_id: int) -> str:
    """Close the cancelled order at the provider; if it says the order was paid, refund that.
    The calls run between transactions, as in `expire_order`; once settled, the order records it
    (`provider_closed_at`) and the close sweep leaves it alone."""
    provider = payment_provider()
    with transaction():
        order = db.session.get(Order, order_id)
        if order is None or order.status != "cancelled" or order.provider_closed_at is not None:
            return "nothing_to_do"
        asked = provider_order(provider, order)
        if asked is None:  # never prepaid: the provider knows nothing of it
            return "nothing_to_do"
    if provider.close(asked.account, asked.order_no):
        with transaction():
            orders.mark_provider_closed(order_id)
        return "closed"
    answer = provider.query(asked.account, asked.order_no)
    try:
        with transaction():
            outcome = apply_queried_payment(provider, asked, answer) or "paid_unknown"
            orders.mark_provider_closed(order_id)
            return outcome
    except NotificationRejected as exc:
        _mismatch(order_id, exc)
        return "payment_mismatch"


def submit_refund(refund_id: int) -> str:
    """The service owns its transactions: the provider is called between them."""
    return refunds.submit_refund(payment_provider(), refund_id)


def deliver_fake_refund_notification(out_refund_no: str) -> str:
    """The fake provider's refund callback: signed and encrypted, through the real handler."""
    from shop.payments.service import handle_notification

    provider = payment_provider()
    with transaction():
        refund = db.session.execute(select(Refund).where(Refund.out_refund_no == out_refund_no)).scalar_one()
        order = db.session.get(Order, refund.order_id)
        merchant = db.session.get(Merchant, refund.merchant_id)
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


# --- sweeps -------------------------------------------------------------------------------------


def _each(query: Select, job: Callable[[int], object]) -> int:
    """Run `job` for each due id, oldest first; a failure is logged and skipped, not fatal."""
    with transaction():
        due = list(db.session.execute(query.limit(SWEEP_BATCH)).scalars())
    done = 0
    for item_id in due:
        try:
            job(item_id)
            done += 1
        except Exception:
            log.exception("%s(%s) failed in its sweep; the next sweep tries again", job.__name__, item_id)
    return done


def sweep_expired_orders() -> int:
    return _each(
        select(Order.id)
        .where(Order.status == "pending_payment", Order.expires_at < utcnow())
        .order_by(Order.expires_at, Order.id),
        expire_order,
    )


def sweep_unclosed_payments() -> int:
    """Cancelled orders with a prepay whose close at the provider is not known to have happened
    (its job was lost), cancelled a few minutes to a day ago: WeChat refuses a payment after the
    order's expiry (at most a day), and one made before it is found by the close."""
    now = utcnow()
    return _each(
        select(Order.id)
        .where(
            Order.status == "cancelled",
            Order.prepay_id.is_not(None),
            Order.provider_closed_at.is_(None),
            Order.cancelled_at > now - CLOSE_SWEEP_WINDOW,
            Order.cancelled_at < now - timedelta(minutes=5),
        )
        .order_by(Order.cancelled_at, Order.id),
        close_payment,
    )


def sweep_auto_confirm() -> int:
    """Shipped (or waiting at a pickup point) longer than the merchant's auto-confirm days."""
    days = func.coalesce(MerchantSettings.auto_confirm_days, DEFAULT_AUTO_CONFIRM_DAYS)
    since = func.coalesce(Order.shipped_at, Order.ready_at)
    return _each(
        select(Order.id)
        .outerjoin(MerchantSettings, MerchantSettings.merchant_id == Order.merchant_id)
        .where(
            or_(
                and_(Order.status == "shipped", Order.shipped_at.is_not(None)),
                and_(Order.status == "ready_for_pickup", Order.ready_at.is_not(None)),
            ),
            since + func.make_interval(0, 0, 0, days) <= utcnow(),
        )
        .order_by(since, Order.id),
        auto_confirm,
    )


def sweep_finalize() -> int:
    open_refund = exists().where(Refund.order_id == Order.id, Refund.status.in_(refunds.OPEN))
    return _each(
        select(Order.id)
        .where(Order.status == "received", Order.after_sales_until <= utcnow(), ~open_refund)
        .order_by(Order.after_sales_until, Order.id),
        finalize_order,
    )


def sweep_refunds() -> int:
    """Submit again the refunds the provider has not settled after a while (out_refund_no makes
    it safe); abnormal ones wait for the merchant, not for a retry."""
    return _each(
        select(Refund.id)
        .where(Refund.status == "processing", Refund.created_at < utcnow() - timedelta(minutes=10))
        .order_by(Refund.id),
        submit_refund,
    )


def purge_idempotency_keys() -> int:
    with transaction():
        return orders.purge_idempotency_keys()


register_sweep(sweep_expired_orders, 60)
register_sweep(sweep_unclosed_payments, 600)
register_sweep(sweep_auto_confirm, 600)
register_sweep(sweep_finalize, 600)
register_sweep(sweep_refunds, 600)
register_sweep(purge_idempotency_keys, 3600)
