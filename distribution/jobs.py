"""Background work of distribution: settling due commissions, paying out withdrawals, and their
sweeps. Ids in, one service call per transaction, nothing else; the payout's call to WeChat Pay
happens between two transactions, never in one."""

from __future__ import annotations

import logging
from collections.abc import Callable

from distribution import settlement, withdrawals
from shop.core.db import transaction, utcnow
from shop.core.errors import DomainError
from shop.core.runner import checkpoint, each_due, job, register_sweep
from shop.payments.providers import payment_provider

log = logging.getLogger(__name__)

SETTLE_JOB = "distribution.settle"
SETTLE_SWEEP_EVERY = 60  # seconds
PAYOUT_SWEEP_EVERY = 300


@job(SETTLE_JOB)
def settle(batch: int = settlement.DEFAULT_BATCH, progress: Callable[[int], None] | None = None) -> int:
    """Settle every due commission, batch by batch, each batch its own transaction (a crash loses
    at most the batch in flight, which stays pending for the next run); how many were settled."""
    total = 0
    while True:
        with transaction():
            done = settlement.settle_batch(batch=batch)
            checkpoint("distribution.settle.batch_written")
        checkpoint("distribution.settle.batch_committed")
        total += done.commissions
        if progress is not None and done.commissions:
            progress(done.commissions)
        if done.commissions < batch:
            return total


def sweep_settlement() -> int:
    return settle()


@job(withdrawals.PAY_JOB)
def pay_withdrawal(withdrawal_id: int) -> str | None:
    """Send an approved withdrawal's transfer, or ask WeChat Pay how a sent one went (cancelling
    one the distributor left unconfirmed past CONFIRM_WITHIN), and record the answer once."""
    provider = payment_provider()
    with transaction():
        order = withdrawals.transfer_order(withdrawal_id)
        account = provider.account(order.merchant) if order is not None else None
    if order is None or account is None:
        return None
    resend = order.status in (withdrawals.W.APPROVED, withdrawals.W.PAYING) or (
        order.status == withdrawals.W.WAIT_USER_CONFIRM and not order.package_info
    )
    expired = (
        order.status == withdrawals.W.WAIT_USER_CONFIRM
        and order.submitted_at is not None
        and utcnow() - order.submitted_at > withdrawals.CONFIRM_WITHIN
    )
    try:
        if resend and not expired:
            # The same out_bill_no is the same bill: WeChat Pay answers it as it stands, with the
            # package_info the distributor needs while it waits for them (a query has none).
            result = provider.transfer(
                account,
                out_bill_no=order.out_bill_no,
                openid=order.openid,
                amount=order.payout,
                scene_id=order.scene_id,
                remark="分销佣金提现",
                notify_url=withdrawals.transfer_notify_url(order.merchant.code),
                report_infos=withdrawals.REPORT_INFOS,
            )
        elif expired:
            try:
                provider.cancel_transfer(account, order.out_bill_no)
            except DomainError as refused:  # confirmed meanwhile, or already final: the query says
                log.info("transfer of withdrawal %s not cancelled: %s", withdrawal_id, refused.message)
            result = provider.query_transfer(account, order.out_bill_no)
        else:
            result = provider.query_transfer(account, order.out_bill_no)
    except DomainError as refused:
        details = refused.details if isinstance(refused.details, dict) else {}
        wechat_code = details.get("wechat_code")
        if order.status == withdrawals.W.APPROVED and wechat_code in withdrawals.FINAL_REFUSALS:
            # refused for good (sending the same bill again changes nothing): the money returns
            log.warning("transfer of withdrawal %s refused by WeChat Pay: %s", withdrawal_id, wechat_code)
            with transaction():
                withdrawals.apply_transfer_state(
                    order.merchant_id, order.out_bill_no, "FAIL", fail_reason=f"REFUSED_{wechat_code}"
                )
            return "FAIL"
        log.warning("transfer of withdrawal %s not sent or not known yet: %s", withdrawal_id, refused.message)
        with transaction():
            withdrawals.asked(withdrawal_id)  # tried just now: the sweep tries the others first
        return None
    checkpoint("distribution.pay_withdrawal.answered")
    with transaction():
        withdrawals.apply_transfer_state(
            order.merchant_id,
            result.out_bill_no,
            result.state,
            transfer_bill_no=result.transfer_bill_no,
            package_info=result.package_info,
            fail_reason=result.fail_reason,
            submitted=True,
        )
    return result.state


def sweep_payouts() -> int:
    return each_due(withdrawals.due_for_payout(), pay_withdrawal)


register_sweep(sweep_settlement, SETTLE_SWEEP_EVERY)
register_sweep(sweep_payouts, PAYOUT_SWEEP_EVERY)
