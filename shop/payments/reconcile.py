"""Reconciling orders with the provider: expiring an unpaid order unless the provider says it was
paid after all, and closing a cancelled order's payment. Each owns its transactions: the
provider is asked between them, never inside one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from shop.core.db import db, transaction, utcnow
from shop.core.errors import DomainError, UpstreamError
from shop.core.runner import checkpoint
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments.errors import NotificationRejected
from shop.payments.providers import PaymentProvider
from shop.payments.service import apply_queried_payment, provider_order

# How long an unpaid order whose payment state cannot be learned (the provider unreachable) is
# kept past its expiry before it is closed anyway (a payment after that is refunded as late).
UNKNOWN_PAYMENT_GRACE = timedelta(hours=1)

log = logging.getLogger(__name__)
T = TypeVar("T")


def expire_order(provider: PaymentProvider, order_id: int) -> str:
    """Close an unpaid order that is due, unless the provider says it was paid after all.

    The provider is asked between two transactions: the first reads the order (and what asking
    takes), the second acts on the answer for the order as it is by then. A notification that
    paid it meanwhile wins: the payment is known (a duplicate) and cancelling a paid order does
    nothing. An answer that cannot be trusted (the provider unreachable, or reporting a payment
    that does not match the order) keeps the order open for UNKNOWN_PAYMENT_GRACE, then it is
    closed anyway (a payment after that is refunded as late).
    """
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
    checkpoint("payments.expire_order.answered")  # the order read and the provider asked, nothing recorded
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


def close_payment(provider: PaymentProvider, order_id: int) -> str:
    """Close the cancelled order at the provider; if it says the order was paid, refund that.
    The calls run between transactions, as in `expire_order`; once settled, the order records it
    (`provider_closed_at`) and the close sweep leaves it alone."""
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
