"""Refunds at the provider: submitting a processing refund (a stable out_refund_no makes it safe
to repeat) and acting on the provider's refund notification, exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from shop.core.db import db, transaction
from shop.core.errors import DomainError
from shop.core.runner import checkpoint
from shop.identity.models import Merchant
from shop.orders.models import Payment, Refund
from shop.orders.refunds import lock_refund, lock_refund_and_order, settle_refund
from shop.orders.service import lock_order
from shop.orders.states import RefundAction, RefundStatus
from shop.payments.errors import NotificationRejected
from shop.payments.providers import PaymentProvider
from shop.payments.wechatpay import RefundResult, WeChatPayAccount, resource_fen, resource_text

# The provider's word for how a refund stands -> the refund machine's action.
_PROVIDER_STATUS = {
    "SUCCESS": RefundAction.SETTLE_SUCCEEDED,
    "CLOSED": RefundAction.SETTLE_FAILED,
    "ABNORMAL": RefundAction.SETTLE_ABNORMAL,
}


@dataclass(frozen=True)
class _Submission:
    """What the provider is asked, read in the first transaction."""

    account: WeChatPayAccount
    out_trade_no: str
    out_refund_no: str
    amount: int
    total: int
    reason: str


def submit_refund(provider: PaymentProvider, refund_id: int) -> str:
    """Ask the provider to pay a processing refund back. Safe to repeat: out_refund_no is stable,
    and the provider answers a repeated submission with the same refund.

    Unlike other services this one owns its transactions (as `start_payment`): the first counts
    the attempt and reads what the provider needs; the call runs with no transaction open; the
    second locks the order and the refund again and records the answer for the refund as it is
    then (the provider's notification may have settled it meanwhile: settling twice is refused).
    A refusal or an unreachable provider does not raise: the attempt and its error are recorded
    for staff, and the refund sweep submits it again later.
    """
    with transaction():
        prepared = _prepare_submission(provider, refund_id)
    if isinstance(prepared, str):
        return prepared
    try:
        result = provider.refund(
            prepared.account,
            out_trade_no=prepared.out_trade_no,
            out_refund_no=prepared.out_refund_no,
            amount=prepared.amount,
            total=prepared.total,
            reason=prepared.reason,
        )
    except DomainError as exc:
        with transaction():
            return _record_refusal(refund_id, exc)
    checkpoint("payments.refund_answered")  # the provider took the refund; its answer is not recorded yet
    with transaction():
        return _record_answer(refund_id, result)


def _record_error(refund: Refund, exc: DomainError) -> str:
    refund.last_error = f"{exc.code}: {exc.message}"[:200]
    db.session.flush()
    return "retry_later"


def _prepare_submission(provider: PaymentProvider, refund_id: int) -> _Submission | str:
    """Count the attempt and gather the request; a string when there is nothing to send."""
    locked = lock_refund_and_order(refund_id)
    if locked is None or locked[0].status != RefundStatus.PROCESSING:
        return "nothing_to_do"
    refund, order = locked
    refund.attempts += 1
    try:
        account = provider.account(db.session.get(Merchant, refund.merchant_id))
    except DomainError as exc:  # e.g. the merchant's payment account is gone
        return _record_error(refund, exc)
    db.session.flush()
    return _Submission(
        account=account,
        out_trade_no=order.order_no,
        out_refund_no=refund.out_refund_no,
        amount=refund.amount,
        total=db.session.get(Payment, refund.payment_id).amount if refund.payment_id else order.paid_total,
        reason=refund.reason or "退款",
    )


def _record_refusal(refund_id: int, exc: DomainError) -> str:
    """The provider refused or could not be reached: kept for staff, unless settled meanwhile
    (the notification came first, and the error no longer concerns anyone)."""
    locked = lock_refund_and_order(refund_id)
    if locked is None or locked[0].status != RefundStatus.PROCESSING:
        return "nothing_to_do"
    return _record_error(locked[0], exc)


def _record_answer(refund_id: int, result: RefundResult) -> str:
    """The provider's answer, recorded on the refund as it is now (re-read under the locks)."""
    locked = lock_refund_and_order(refund_id)
    if locked is None:
        return "nothing_to_do"
    refund, order = locked
    refund.provider_refund_id = result.refund_id
    if refund.status == RefundStatus.PROCESSING:
        refund.last_error = ""
    db.session.flush()
    action = _PROVIDER_STATUS.get(result.status)
    if action is None:  # PROCESSING: the notification will tell
        return "submitted"
    return settle_refund(order, refund, action)


def apply_refund_result(merchant_id: int, resource: Mapping[str, Any]) -> str:
    """The provider says how a refund ended (REFUND.SUCCESS / ABNORMAL / CLOSED)."""
    status = resource_text(resource, "refund_status", max_length=32)
    amount = resource_fen(resource, "amount", "refund")
    out_refund_no = resource_text(resource, "out_refund_no", max_length=64)
    refund = db.session.execute(
        select(Refund).where(Refund.merchant_id == merchant_id, Refund.out_refund_no == out_refund_no)
    ).scalar_one_or_none()
    if refund is None:
        raise NotificationRejected("unknown_refund", "no such refund")
    if amount != refund.amount:
        raise NotificationRejected("wrong_amount", "the refunded amount is not the amount asked for")
    action = _PROVIDER_STATUS.get(status)
    if action is None:
        raise NotificationRejected("bad_body", f"unknown refund status {status!r}")
    order = lock_order(refund.order_id)
    refund = lock_refund(refund.id)
    if refund.status in (RefundStatus.REQUESTED, RefundStatus.REJECTED):
        # Never sent to WeChat Pay (still being decided, or refused): a verified notification for
        # it means the books disagree. Refused (WeChat retries) and logged for staff, not a 500.
        raise NotificationRejected("not_submitted", f"refund {refund.out_refund_no} was never submitted")
    return settle_refund(order, refund, action)
