"""Withdrawals: a distributor asks, finance approves or rejects, a job pays out through WeChat Pay's
merchant transfer (商家转账), the transfer's notification (or a query) says how it ended.

Money moves through the ledger: asking moves `amount` from available to withdrawing (under the
distributor's row lock, so concurrent requests can never overdraw); a transfer that succeeded
moves it to withdrawn; a rejection, a failed or cancelled transfer, or one the distributor never
confirmed within `CONFIRM_WITHIN` returns it to available. `fee` (the program's rate, rounded
down) stays with the merchant: `payout` = amount - fee is transferred.

The transfer is a network call, so it never runs in a transaction: the job reads what to send
and commits, calls the provider, then records the answer in a second transaction, under the
locks again, through the one transition table (`distribution.states.WITHDRAWAL_MACHINE`): a
duplicate notification, a retried job and a query that learns what a notification said already
change nothing. `out_bill_no` is fixed when the withdrawal is made, so a retried transfer is the
same bill at WeChat Pay.

Locks: the distributor's row, then the withdrawal's. Every path here takes them in that order.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from distribution import ledger
from distribution.distributors import NOT_A_DISTRIBUTOR, active_distributor, distributor_of
from distribution.models import Distributor, Withdrawal
from distribution.program import MAX_WITHDRAWAL, get_program
from distribution.states import WITHDRAWAL_MACHINE, DistributorStatus, WithdrawalAction, WithdrawalStatus
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.money import apply_rate
from shop.core.pagination import Page, keyset_page
from shop.core.runner import enqueue
from shop.identity.models import Member, Merchant
from shop.payments.providers import payment_provider

PAY_JOB = "distribution.pay_withdrawal"
# WeChat's refusals of a transfer that repeating the same bill will not change: the money returns.
FINAL_REFUSALS = frozenset({"PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "ACCOUNT_ERROR", "OPENID_INVALID"})
CONFIRM_WITHIN = timedelta(hours=24)
# The transfer scene 佣金报酬 (1005) asks for these two report lines.
REPORT_INFOS = [
    {"info_type": "岗位类型", "info_content": "分销员"},
    {"info_type": "报酬说明", "info_content": "分销佣金"},
]
W, WA = WithdrawalStatus, WithdrawalAction
# WeChat Pay's states of a transfer bill, and what each does to the withdrawal; any other state
# (ACCEPTED, PROCESSING, TRANSFERING, CANCELING) means on its way: SUBMIT.
ACTION_OF_STATE = {
    "SUCCESS": WA.PAY,
    "FAIL": WA.FAIL,
    "CANCELLED": WA.FAIL,
    "WAIT_USER_CONFIRM": WA.AWAIT_CONFIRM,
}


def new_out_bill_no() -> str:
    """A bill number WeChat Pay accepts (letters and digits, at most 32), unique by chance and by
    the table's unique index."""
    return "WD" + secrets.token_hex(15)


def request_withdrawal(merchant_id: int, member_id: int, amount: int) -> Withdrawal:
    """A distributor asks to withdraw `amount` fen of their available balance."""
    distributor = active_distributor(merchant_id, member_id)
    program = get_program(merchant_id)
    if amount < program.min_withdrawal:
        raise InvalidInput(
            f"withdraw at least {program.min_withdrawal} fen",
            code="below_minimum",
            details={"fields": {"amount": [f"at least {program.min_withdrawal}"]}, "minimum": program.min_withdrawal},
        )
    if amount > MAX_WITHDRAWAL:
        raise InvalidInput(
            f"withdraw at most {MAX_WITHDRAWAL} fen at a time",
            code="above_maximum",
            details={"fields": {"amount": [f"at most {MAX_WITHDRAWAL}"]}, "maximum": MAX_WITHDRAWAL},
        )
    fee = apply_rate(amount, program.withdrawal_fee_bp)
    if amount - fee <= 0:
        raise InvalidInput(
            "nothing would be left after the fee",
            code="below_minimum",
            details={"fields": {"amount": ["nothing left after the fee"]}},
        )
    distributor = ledger.lock_distributors([distributor.id])[distributor.id]
    if distributor.status != DistributorStatus.ACTIVE:  # disabled while we waited for the lock
        raise Forbidden(
            "only active distributors may do this", code=NOT_A_DISTRIBUTOR, details={"status": distributor.status}
        )
    if distributor.available < 0:
        raise Conflict(
            "the balance is negative (a refund after settlement): later commissions make it up first",
            code="balance_negative",
            details={"available": distributor.available},
        )
    if amount > distributor.available:
        raise Conflict(
            "not that much is withdrawable",
            code="insufficient_balance",
            details={"available": distributor.available, "requested": amount},
        )
    withdrawal = Withdrawal(
        merchant_id=merchant_id,
        distributor_id=distributor.id,
        amount=amount,
        fee=fee,
        payout=amount - fee,
        status=W.REQUESTED,
        out_bill_no=new_out_bill_no(),
    )
    db.session.add(withdrawal)
    db.session.flush()
    ledger.post(distributor, "withdrawal_requested", available=-amount, withdrawing=amount, withdrawal_id=withdrawal.id)
    return withdrawal


def _locked_pair(merchant_id: int, withdrawal_id: int) -> tuple[Distributor, Withdrawal]:
    """The withdrawal's distributor, then the withdrawal, locked (in that order)."""
    found = db.session.get(Withdrawal, withdrawal_id)
    if found is None or found.merchant_id != merchant_id:
        raise NotFound("withdrawal not found")
    distributor = ledger.lock_distributors([found.distributor_id])[found.distributor_id]
    withdrawal = db.session.execute(locked(select(Withdrawal).where(Withdrawal.id == withdrawal_id))).scalar_one()
    return distributor, withdrawal


def asked(withdrawal_id: int) -> None:
    """The payout job tried this withdrawal and must try again later (WeChat Pay did not answer,
    or refused for a reason that may pass): it goes to the back of the sweep's line."""
    db.session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _return_money(distributor: Distributor, withdrawal: Withdrawal, reason: str) -> None:
    ledger.post(
        distributor,
        "withdrawal_returned",
        available=withdrawal.amount,
        withdrawing=-withdrawal.amount,
        withdrawal_id=withdrawal.id,
        reason=reason,
    )


def decide(merchant_id: int, withdrawal_id: int, action: str, *, staff_id: int | None, note: str = "") -> Withdrawal:
    """Finance approves (the payout job is enqueued) or rejects (the money returns) a request."""
    distributor, withdrawal = _locked_pair(merchant_id, withdrawal_id)
    step = WITHDRAWAL_MACHINE.step(withdrawal.status, WithdrawalAction(action))
    if not step.moved:
        return withdrawal
    withdrawal.status = step.to
    withdrawal.decided_by, withdrawal.decided_at, withdrawal.decision_note = staff_id, utcnow(), note
    if step.to == W.REJECTED:
        _return_money(distributor, withdrawal, "rejected")
    else:
        enqueue(PAY_JOB, withdrawal.id)
    db.session.flush()
    return withdrawal


@dataclass(frozen=True)
class TransferOrder:
    """What the payout job sends (read in one transaction, sent after it)."""

    withdrawal_id: int
    merchant_id: int
    merchant: Merchant
    out_bill_no: str
    openid: str
    payout: int
    scene_id: str
    status: str
    submitted_at: datetime | None
    package_info: str | None


def transfer_order(withdrawal_id: int) -> TransferOrder | None:
    """What to send for an approved (or in-flight) withdrawal; None when there is nothing to send."""
    withdrawal = db.session.get(Withdrawal, withdrawal_id)
    if withdrawal is None or withdrawal.status not in (W.APPROVED, W.PAYING, W.WAIT_USER_CONFIRM):
        return None
    distributor = db.session.get(Distributor, withdrawal.distributor_id)
    member = db.session.get(Member, distributor.member_id)
    merchant = db.session.get(Merchant, withdrawal.merchant_id)
    return TransferOrder(
        withdrawal_id=withdrawal.id,
        merchant_id=withdrawal.merchant_id,
        merchant=merchant,
        out_bill_no=withdrawal.out_bill_no,
        openid=member.openid,
        payout=withdrawal.payout,
        scene_id=get_program(withdrawal.merchant_id).transfer_scene_id,
        status=withdrawal.status,
        submitted_at=withdrawal.submitted_at,
        package_info=withdrawal.package_info,
    )


def transfer_notify_url(merchant_code: str) -> str:
    base = current_app.config["SETTINGS"].public_base_url.rstrip("/")
    return f"{base}/api/v1/payments/wechatpay/{merchant_code}/transfer-notify"


def apply_transfer_state(
    merchant_id: int,
    out_bill_no: str,
    state: str,
    *,
    transfer_bill_no: str | None = None,
    package_info: str | None = None,
    fail_reason: str | None = None,
    submitted: bool = False,
    amount: int | None = None,
    openid: str | None = None,
) -> Withdrawal | None:
    """Record what WeChat Pay says of a transfer (its answer, a notification or a query), once.
    None when no withdrawal of this merchant has that bill number; 409 when `amount` (what a
    notification says was transferred) is not the withdrawal's payout."""
    found = db.session.execute(
        select(Withdrawal.id).where(Withdrawal.out_bill_no == out_bill_no, Withdrawal.merchant_id == merchant_id)
    ).scalar_one_or_none()
    if found is None:
        return None
    distributor, withdrawal = _locked_pair(merchant_id, found)
    if amount is not None and amount != withdrawal.payout:
        raise Conflict(
            f"the transfer of {amount} fen is not the withdrawal's payout of {withdrawal.payout}",
            code="transfer_amount_mismatch",
        )
    if openid is not None and openid != db.session.get(Member, distributor.member_id).openid:
        raise Conflict("the transfer's payee is not the withdrawal's distributor", code="transfer_payee_mismatch")
    if transfer_bill_no and not withdrawal.transfer_bill_no:
        withdrawal.transfer_bill_no = transfer_bill_no
    if submitted and withdrawal.submitted_at is None:
        withdrawal.submitted_at = utcnow()
    action = ACTION_OF_STATE.get(state, WA.SUBMIT)
    if package_info and withdrawal.status in (W.APPROVED, W.PAYING, W.WAIT_USER_CONFIRM):
        withdrawal.package_info = package_info  # any answer may carry it (a query never does)
    if not WITHDRAWAL_MACHINE.allows(withdrawal.status, action):
        if withdrawal.status in (W.PAYING, W.WAIT_USER_CONFIRM):
            withdrawal.updated_at = utcnow()  # asked just now: the sweep comes back to it last
        db.session.flush()
        return withdrawal  # a repeat, news older than what we know, or about a bill never sent
    step = WITHDRAWAL_MACHINE.step(withdrawal.status, action)
    withdrawal.status = step.to
    withdrawal.transfer_state = state
    if step.to == W.PAID:
        withdrawal.finished_at = utcnow()
        ledger.post(
            distributor,
            "withdrawal_paid",
            withdrawing=-withdrawal.amount,
            withdrawn=withdrawal.amount,
            withdrawal_id=withdrawal.id,
        )
    elif step.to == W.FAILED:
        withdrawal.finished_at = utcnow()
        withdrawal.fail_reason = (fail_reason or state)[:64]
        _return_money(distributor, withdrawal, f"transfer {state.lower()}")
    db.session.flush()
    return withdrawal


def confirmation(merchant_id: int, member_id: int, withdrawal_id: int) -> dict[str, Any]:
    """What the mini-program passes to wx.requestMerchantTransfer for a transfer awaiting the
    distributor's confirmation (409 `not_awaiting_confirmation` otherwise)."""
    withdrawal = get_own(merchant_id, member_id, withdrawal_id)
    if withdrawal.status != W.WAIT_USER_CONFIRM or not withdrawal.package_info:
        raise Conflict(
            "this withdrawal is not waiting for your confirmation",
            code="not_awaiting_confirmation",
            details={"status": withdrawal.status},
        )
    merchant = db.session.get(Merchant, merchant_id)
    return {
        "withdrawal_id": withdrawal.id,
        "mch_id": _mchid(merchant),
        "app_id": merchant.wx_appid,
        "package_info": withdrawal.package_info,
        "expires_at": (withdrawal.submitted_at or withdrawal.updated_at) + CONFIRM_WITHIN,
    }


def _mchid(merchant: Merchant) -> str:
    try:
        return payment_provider().account(merchant).mchid
    except Conflict:
        return ""


def _own_distributor(merchant_id: int, member_id: int) -> Distributor:
    """The caller's distributor row, active or disabled (a disabled one still sees their
    withdrawals and receives what finance approved)."""
    found = distributor_of(merchant_id, member_id)
    if found is None or found.status not in (DistributorStatus.ACTIVE, DistributorStatus.DISABLED):
        return active_distributor(merchant_id, member_id)  # the 403 not_a_distributor
    return found


def get_own(merchant_id: int, member_id: int, withdrawal_id: int) -> Withdrawal:
    distributor = _own_distributor(merchant_id, member_id)
    found = db.session.get(Withdrawal, withdrawal_id)
    if found is None or found.distributor_id != distributor.id:
        raise NotFound("withdrawal not found")
    return found


def get_withdrawal(merchant_id: int, withdrawal_id: int) -> Withdrawal:
    found = db.session.get(Withdrawal, withdrawal_id)
    if found is None or found.merchant_id != merchant_id:
        raise NotFound("withdrawal not found")
    return found


def list_own(merchant_id: int, member_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    distributor = _own_distributor(merchant_id, member_id)
    query = select(Withdrawal).where(Withdrawal.distributor_id == distributor.id)
    return keyset_page(query, [Withdrawal.id], cursor=cursor, limit=limit)


def list_withdrawals(
    merchant_id: int,
    *,
    status: str | None = None,
    distributor_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    query = select(Withdrawal).where(Withdrawal.merchant_id == merchant_id)
    if status:
        query = query.where(Withdrawal.status == status)
    if distributor_id:
        query = query.where(Withdrawal.distributor_id == distributor_id)
    return keyset_page(query, [Withdrawal.id], cursor=cursor, limit=limit)


def due_for_payout(now: datetime | None = None) -> Any:
    """Approved withdrawals never sent (a lost job), and transfers in flight for a while: the
    sweep runs the payout job on each (which sends, or asks WeChat Pay how it went)."""
    now = now or utcnow()
    return (
        select(Withdrawal.id)
        .where(
            (Withdrawal.status == W.APPROVED)
            | (
                (Withdrawal.status.in_([W.PAYING, W.WAIT_USER_CONFIRM]))
                & (Withdrawal.updated_at < now - timedelta(minutes=10))
            )
        )
        .order_by(Withdrawal.updated_at, Withdrawal.id)  # the longest unasked first; asking touches it
    )
