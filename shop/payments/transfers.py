"""Payouts through WeChat Pay's merchant transfer (商家转账, the "transfer-bills" API, user
confirmation mode): submitting a transfer to a user's change, asking how it stands, cancelling it
before the user confirms, and reading WeChat Pay's notification of its final state.

A transfer is named by our out_bill_no: WeChat Pay answers the same out_bill_no submitted again
with the bill it already has, so a submission whose answer was lost is repeated, never renumbered
(WeChat's advice: a new number only once a query says the old bill failed). The bill waits for the
user (WAIT_USER_CONFIRM): the mini-program passes `package_info` to `wx.requestMerchantTransfer`,
and WeChat Pay notifies the final state (SUCCESS, FAIL or CANCELLED) as MCHTRANSFER.BILL.FINISHED.

The notification is verified and decrypted exactly as payment notifications are, and refused with
the same `NotificationRejected` reasons; acting on it is the caller's business (this room knows
nothing of what the money was for).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from shop.core.db import db, forbid_open_transaction
from shop.core.errors import Conflict, UpstreamError
from shop.identity.models import Merchant
from shop.payments.errors import NotificationRejected
from shop.payments.wechatpay import WeChatPayAccount, WeChatPayClient, parse_notification, resource_fen, resource_text

TRANSFER_BILLS_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
TRANSFER_EVENT = "MCHTRANSFER.BILL.FINISHED"
TRANSFER_RESOURCE_TYPE = "mch_payment"  # the notification resource's original_type

# WeChat's bill states, in the order a bill meets them; the last three are final.
TRANSFER_STATES = (
    "ACCEPTED",
    "PROCESSING",
    "WAIT_USER_CONFIRM",
    "TRANSFERING",
    "SUCCESS",
    "FAIL",
    "CANCELING",
    "CANCELLED",
)
FINAL_STATES = frozenset({"SUCCESS", "FAIL", "CANCELLED"})
# Before the user confirms, the merchant may cancel (WeChat refuses once the money is moving).
CANCELLABLE_STATES = frozenset({"ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM"})
MAX_REMARK_LENGTH = 32  # characters, WeChat's limit on transfer_remark
_OUT_BILL_NO = re.compile(r"[0-9A-Za-z]{1,32}")


@dataclass(frozen=True)
class TransferResult:
    """How WeChat Pay answered a transfer, a query or a cancel: the bill as it stands."""

    out_bill_no: str
    transfer_bill_no: str
    state: str  # one of TRANSFER_STATES
    package_info: str | None = None  # for wx.requestMerchantTransfer, while WAIT_USER_CONFIRM
    fail_reason: str | None = None
    create_time: str | None = None  # RFC 3339, as WeChat wrote it
    update_time: str | None = None


@dataclass(frozen=True)
class TransferNotice:
    """A verified MCHTRANSFER.BILL.FINISHED notification: the bill's final state.

    Its merchant is the one whose notify URL it came to and whose account verified it; the caller
    must still find the bill by (merchant_id, out_bill_no) and check the amount and payee against
    its own record before acting on it.
    """

    merchant_id: int
    out_bill_no: str
    transfer_bill_no: str
    state: str  # SUCCESS, FAIL or CANCELLED
    amount: int  # fen
    fail_reason: str | None
    openid: str | None = None  # the payee, when WeChat says


def check_out_bill_no(out_bill_no: str) -> None:
    """WeChat's rule for out_bill_no (1 to 32 letters and digits). Checked before a call because
    it goes into the request path: anything else is a programming error, never sent."""
    if not isinstance(out_bill_no, str) or not _OUT_BILL_NO.fullmatch(out_bill_no):
        raise ValueError(f"out_bill_no must be 1 to 32 letters and digits, not {out_bill_no!r}")


def _bill_path(out_bill_no: str) -> str:
    return f"{TRANSFER_BILLS_PATH}/out-bill-no/{out_bill_no}"


# --- the real calls, through the WeChat Pay client (signed, answers verified) -------------------


def submit_transfer(
    client: WeChatPayClient,
    account: WeChatPayAccount,
    *,
    out_bill_no: str,
    openid: str,
    amount: int,
    scene_id: str,
    remark: str,
    notify_url: str,
    report_infos: list[dict[str, str]],
) -> TransferResult:
    """POST /v3/fund-app/mch-transfer/transfer-bills. A refusal raises `transfer_refused` with
    WeChat's code: the bill may still exist (e.g. NOT_ENOUGH, SYSTEM_ERROR), so repeat it with
    the same out_bill_no, or query it, rather than numbering it anew."""
    forbid_open_transaction("WeChat Pay transfer")
    check_out_bill_no(out_bill_no)
    status, data = client._call(
        account,
        "POST",
        TRANSFER_BILLS_PATH,
        {
            "appid": account.appid,
            "out_bill_no": out_bill_no,
            "transfer_scene_id": scene_id,
            "openid": openid,
            "transfer_amount": amount,
            "transfer_remark": remark[:MAX_REMARK_LENGTH],
            "notify_url": notify_url,
            "transfer_scene_report_infos": report_infos,
        },
    )
    if status >= 400:
        raise UpstreamError(
            f"WeChat Pay refused the transfer: {data.get('code', '')} {data.get('message', '')}".strip(),
            code="transfer_refused",
            details={"wechat_code": str(data.get("code", ""))},
        )
    return transfer_result(data, out_bill_no)


def query_transfer_bill(client: WeChatPayClient, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
    """GET .../transfer-bills/out-bill-no/{out_bill_no}. NOT_FOUND (in the error's wechat_code)
    means WeChat has no such bill."""
    forbid_open_transaction("WeChat Pay transfer query")
    check_out_bill_no(out_bill_no)
    status, data = client._call(account, "GET", _bill_path(out_bill_no), None)
    if status >= 400:
        raise UpstreamError(
            "WeChat Pay refused the transfer query",
            code="transfer_query_failed",
            details={"wechat_code": str(data.get("code", ""))},
        )
    return transfer_result(data, out_bill_no)


def cancel_transfer_bill(client: WeChatPayClient, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
    """POST .../transfer-bills/out-bill-no/{out_bill_no}/cancel (no body). WeChat answers
    CANCELING or CANCELLED; only a bill the user has not confirmed can be cancelled."""
    forbid_open_transaction("WeChat Pay transfer cancel")
    check_out_bill_no(out_bill_no)
    status, data = client._call(account, "POST", f"{_bill_path(out_bill_no)}/cancel", None)
    if status >= 400:
        raise UpstreamError(
            f"WeChat Pay refused to cancel the transfer: {data.get('code', '')} {data.get('message', '')}".strip(),
            code="transfer_cancel_failed",
            details={"wechat_code": str(data.get("code", ""))},
        )
    return transfer_result(data, out_bill_no)


def transfer_result(data: dict[str, Any], out_bill_no: str) -> TransferResult:
    """A verified 2xx answer about a bill, read. One about another bill, or without a state, is
    not believed (`transfer_answer_invalid`): the caller queries again later."""
    state = data.get("state")
    answered_for = data.get("out_bill_no", out_bill_no)
    if not isinstance(state, str) or not state or answered_for != out_bill_no:
        raise UpstreamError(
            "WeChat Pay's answer about the transfer is not usable",
            code="transfer_answer_invalid",
            details={"out_bill_no": out_bill_no},
        )
    return TransferResult(
        out_bill_no=out_bill_no,
        transfer_bill_no=_text(data.get("transfer_bill_no")) or "",
        state=state,
        package_info=_text(data.get("package_info")),
        fail_reason=_text(data.get("fail_reason")),
        create_time=_text(data.get("create_time")),
        update_time=_text(data.get("update_time")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- the notification ---------------------------------------------------------------------------


class AccountSource(Protocol):
    """What reading a notification needs of a payment provider (any `PaymentProvider` is one)."""

    def account(self, merchant: Merchant) -> WeChatPayAccount: ...


def read_transfer_notification(
    provider: AccountSource, merchant_code: str, headers: dict[str, str], body: str
) -> TransferNotice:
    """Verify and decrypt a transfer notification with the account of the merchant it was sent
    to, as `handle_notification` does for payments, and read the bill's final state.

    Raises NotificationRejected with the reason a payment notification gets for the same fault
    (unknown_merchant, not_configured, the signature and decryption reasons of
    `parse_notification`, unknown_event, wrong_account, bad_body), or not_final for a state
    WeChat does not notify. Reads the merchant and its account: call it in a transaction.
    """
    merchant = db.session.execute(select(Merchant).where(Merchant.code == merchant_code)).scalar_one_or_none()
    if merchant is None:
        raise NotificationRejected("unknown_merchant", "no such merchant")
    try:
        account = provider.account(merchant)
    except Conflict as exc:  # payment_not_configured: nothing to verify it with
        raise NotificationRejected("not_configured", exc.message) from None
    notification = parse_notification(account, headers, body)
    if notification.event_type != TRANSFER_EVENT:
        raise NotificationRejected("unknown_event", f"event {notification.event_type} is not a transfer's")
    resource = notification.resource
    # WeChat's documentation names the field mch_id; some of its examples write mchid.
    mch_id = resource.get("mch_id", resource.get("mchid"))
    if mch_id != account.mchid:
        raise NotificationRejected("wrong_account", "mch_id is not this merchant's")
    state = resource_text(resource, "state", max_length=32)
    if state not in FINAL_STATES:
        raise NotificationRejected("not_final", f"a transfer is notified in a final state, not {state}")
    return TransferNotice(
        merchant_id=merchant.id,
        out_bill_no=resource_text(resource, "out_bill_no", max_length=32),
        transfer_bill_no=resource_text(resource, "transfer_bill_no", max_length=64),
        state=state,
        amount=resource_fen(resource, "transfer_amount"),
        fail_reason=resource_text(resource, "fail_reason", max_length=128, required=False) or None,
        openid=resource_text(resource, "openid", max_length=64, required=False) or None,
    )
