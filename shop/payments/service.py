"""Paying for orders and acting on the provider's notifications, exactly once.

A payment notification is verified and decrypted by the provider, then checked against our own
records (appid, mchid, order, amount). The unique transaction id makes a notification count
once however often it arrives; the order row lock makes "paid" happen once. A payment for an
order that already expired is recorded and refunded automatically, with an out_refund_no
derived from the transaction id so that retries ask for the same refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict
from shop.identity.models import Member, Merchant
from shop.orders.models import Order, Payment
from shop.orders.refunds import refund_late_payment
from shop.orders.service import cancel_order, get_order, lock_order, mark_paid, offers_accept_payment, payment_hold
from shop.orders.states import OrderAction, machine_for
from shop.payments.errors import NotificationRejected
from shop.payments.providers import PaymentProvider
from shop.payments.refunds import apply_refund_result
from shop.payments.wechatpay import WeChatPayAccount, parse_notification, resource_fen, resource_text

# A prepay must leave the payer time to finish. WeChat moves a time_expire less than a minute
# after the prepay call to a minute after it, which would let a payment land after our expiry:
# closer to the expiry than this (a minute, plus room for clock skew), paying is refused.
MIN_TIME_TO_PAY = timedelta(seconds=90)


def _check_payable(order: Order) -> None:
    if not machine_for(order.kind).allows(order.status, OrderAction.PAY):
        raise Conflict(f"the order is {order.status}", code="not_payable", details={"status": order.status})
    if order.expires_at - utcnow() < MIN_TIME_TO_PAY:
        raise Conflict("the order is about to expire; place it again", code="order_expiring")
    held = payment_hold(order)  # e.g. the group it would open has closed: take no money to send back
    if held is not None:
        raise held


def start_payment(provider: PaymentProvider, merchant_id: int, member_id: int, order_id: int) -> dict[str, Any]:
    """What `wx.requestPayment` needs for an unpaid order; WeChat's expiry is never after ours.

    Unlike other services this one owns its transactions (like a job does): the call to WeChat
    happens between them, so no row lock or pooled connection waits on the network.
    """
    with transaction():
        order = get_order(merchant_id, order_id, member_id=member_id)
        _check_payable(order)
        merchant = db.session.get(Merchant, merchant_id)
        account = provider.account(merchant)
        request = {
            "out_trade_no": order.order_no,
            "description": (order.lines[0].title if order.lines else "订单")[:120],
            "total": order.payable_total,
            "openid": db.session.get(Member, member_id).openid,
            "time_expire": order.expires_at,
        }
    params = provider.prepay(account, **request)
    with transaction():
        order = lock_order(order_id, merchant_id=merchant_id, member_id=member_id)
        _check_payable(order)  # it may have expired meanwhile; WeChat's own expiry then closes it
        order.prepay_id = params.pop("prepay_id")
    return params


@dataclass(frozen=True)
class Handled:
    outcome: str  # applied, duplicate, late, refund_applied, refund_duplicate, refund_failed


def handle_notification(provider: PaymentProvider, merchant_code: str, headers: dict[str, str], body: str) -> Handled:
    """Verify, decrypt and act on one notification. Raises NotificationRejected when it must fail."""
    merchant = db.session.execute(select(Merchant).where(Merchant.code == merchant_code)).scalar_one_or_none()
    if merchant is None:
        raise NotificationRejected("unknown_merchant", "no such merchant")
    try:
        account = provider.account(merchant)
    except Conflict as exc:  # payment_not_configured: nothing to verify it with, so nothing to act on
        raise NotificationRejected("not_configured", exc.message) from None
    notification = parse_notification(account, headers, body)
    resource = notification.resource
    if notification.event_type == "TRANSACTION.SUCCESS":
        if resource.get("appid") != account.appid or resource.get("mchid") != account.mchid:
            raise NotificationRejected("wrong_account", "appid or mchid is not this merchant's")
        return _apply_payment(provider, merchant.id, resource)
    if notification.event_type.startswith("REFUND."):
        if resource.get("mchid") != account.mchid:
            raise NotificationRejected("wrong_account", "mchid is not this merchant's")
        return Handled(apply_refund_result(merchant.id, resource))
    raise NotificationRejected("unknown_event", f"event {notification.event_type} is not handled")


@dataclass(frozen=True)
class ProviderOrder:
    """What asking the provider about an order needs, read in a transaction beforehand."""

    order_id: int
    merchant_id: int
    order_no: str
    account: WeChatPayAccount


def provider_order(provider: PaymentProvider, order: Order) -> ProviderOrder | None:
    """Read what asking the provider about this order takes (the merchant's account is in the
    database); None when it was never prepaid, so the provider knows nothing of it."""
    if order.prepay_id is None:
        return None
    account = provider.account(db.session.get(Merchant, order.merchant_id))
    return ProviderOrder(order_id=order.id, merchant_id=order.merchant_id, order_no=order.order_no, account=account)


def apply_queried_payment(provider: PaymentProvider, asked: ProviderOrder, resource: dict[str, Any]) -> str | None:
    """Act on what the provider's order query answered (a payment whose notification was lost)
    as the notification would have, on the order as it is now: "applied" for an unpaid order
    (now paid), "late" for a closed one (the payment is refunded), "duplicate" when the payment
    is known already (its notification arrived meanwhile). None: not paid.
    """
    if resource.get("trade_state") != "SUCCESS":
        return None
    if resource.get("appid") != asked.account.appid or resource.get("mchid") != asked.account.mchid:
        raise NotificationRejected("wrong_account", "the queried payment is not this merchant's")
    return _apply_payment(provider, asked.merchant_id, resource).outcome


def _apply_payment(provider: PaymentProvider, merchant_id: int, resource: dict[str, Any]) -> Handled:
    if resource.get("trade_state") != "SUCCESS":
        raise NotificationRejected("not_success", "only successful payments are notified")
    out_trade_no = resource_text(resource, "out_trade_no", max_length=32)
    amount = resource_fen(resource, "amount", "total")
    transaction_id = resource_text(resource, "transaction_id", max_length=64)
    payer_openid = resource_text(resource, "payer", "openid", max_length=64, required=False)
    success_time = resource_text(resource, "success_time", max_length=40, required=False)
    order_id = db.session.execute(
        select(Order.id).where(Order.merchant_id == merchant_id, Order.order_no == out_trade_no)
    ).scalar_one_or_none()
    if order_id is None:
        raise NotificationRejected("unknown_order", "no such order")
    # The order first, then its payment's transaction id (shop.core.locking): the unique index makes a
    # second insert of the same id wait for the first, so it is claimed under the order's lock.
    order = lock_order(order_id)
    if amount != order.payable_total:
        raise NotificationRejected("wrong_amount", "the amount paid is not the amount due")
    payment_id = db.session.execute(
        insert(Payment)
        .values(
            merchant_id=merchant_id,
            order_id=order.id,
            provider=provider.name,
            transaction_id=transaction_id,
            amount=amount,
            payer_openid=payer_openid,
            outcome="pending",
            success_time=success_time,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["transaction_id"])
        .returning(Payment.id)
    ).scalar_one_or_none()
    if payment_id is None:
        return Handled("duplicate")
    if machine_for(order.kind).allows(order.status, OrderAction.PAY):
        if offers_accept_payment(order):
            mark_paid(order, amount, transaction_id)
            _set_outcome(payment_id, "applied")
            return Handled("applied")
        # Its offer refuses it (a group buy's last seat went to another payment): the order is
        # closed as if it had expired, and the payment goes back like a late one. The offer says
        # why (group_closed, offer_not_active), for the member reading the cancelled order.
        held = payment_hold(order)
        cancel_order(order.id, reason=held.code if held is not None else "offer_closed")
    # Paid after it expired (or paid twice): keep the record, give the money back.
    _set_outcome(payment_id, "late")
    refund_late_payment(order, payment_id, transaction_id, amount)
    return Handled("late")


def _set_outcome(payment_id: int, outcome: str) -> None:
    db.session.execute(update(Payment).where(Payment.id == payment_id).values(outcome=outcome))
