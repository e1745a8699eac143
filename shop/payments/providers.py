"""The payment provider interface, its WeChat Pay implementation and the fake.

The fake signs and encrypts its notifications with a test key pair and a test APIv3 key, through
the same functions WeChat Pay's real notifications are checked with; only the keys differ.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from flask import current_app

from shop.core.cache import redis_client
from shop.core.db import db, forbid_open_transaction
from shop.core.errors import Conflict, NotFound, UpstreamError
from shop.core.runner import enqueue
from shop.identity.models import Merchant
from shop.payments.models import PaymentAccount, PaymentPlatformKey
from shop.payments.transfers import (
    CANCELLABLE_STATES,
    FINAL_STATES,
    MAX_REMARK_LENGTH,
    TRANSFER_EVENT,
    TRANSFER_RESOURCE_TYPE,
    TransferResult,
    cancel_transfer_bill,
    check_out_bill_no,
    query_transfer_bill,
    submit_transfer,
)
from shop.payments.wechatpay import (
    SIGNATURE_SCHEME,
    PlatformKey,
    RefundResult,
    WeChatPayAccount,
    WeChatPayClient,
    encrypt_resource,
    load_private_key,
    load_public_key,
    nonce,
    request_payment_params,
    rfc3339,
    rsa_sign,
)

_HERE = Path(__file__).resolve().parent
FAKE_MCHID = "1900000109"
FAKE_MERCHANT_SERIAL = "FAKE0MERCHANT0SERIAL0000000000000000001"
FAKE_PLATFORM_SERIAL = "FAKE0PLATFORM0SERIAL0000000000000000001"
FAKE_APIV3_KEY = b"groupshop-fake-apiv3-key-32bytes"

# The fake's refund callback, a job (by name: shop.core.runner) of shop.payments.jobs.
FAKE_REFUND_NOTIFICATION_JOB = "payments.fake_refund_notification"
# A notification's summary, as WeChat Pay writes it (any other event is a refund's).
_SUMMARIES = {"TRANSACTION.SUCCESS": "支付成功", TRANSFER_EVENT: "商家转账单据终态通知"}


class PaymentProvider(Protocol):
    name: str

    def account(self, merchant: Merchant) -> WeChatPayAccount: ...

    def prepay(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
    ) -> dict[str, str]: ...

    # The calls that go to the network take the account, read beforehand with `account()` in a
    # transaction that is over by the time they run: no database work waits on WeChat Pay.

    def close(self, account: WeChatPayAccount, out_trade_no: str) -> bool:
        """Close an unpaid order; False when the provider says it was paid already."""
        ...

    def query(self, account: WeChatPayAccount, out_trade_no: str) -> dict[str, Any]: ...

    def refund(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount: int,
        total: int,
        reason: str,
    ) -> RefundResult: ...

    def transfer(
        self,
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
        """Pay `amount` fen to the user's change (商家转账). The same out_bill_no is one transfer:
        submitted again it answers the bill as it stands (with its package_info while the user
        has not confirmed). `report_infos`: the scene's {"info_type", "info_content"} items."""
        ...

    def query_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult: ...

    def cancel_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
        """Cancel a transfer the user has not confirmed yet (CANCELING or CANCELLED)."""
        ...


class WeChatPayProvider:
    name = "wechatpay"

    def __init__(self, client: WeChatPayClient, public_base_url: str) -> None:
        self.client = client
        self.public_base_url = public_base_url.rstrip("/")

    def account(self, merchant: Merchant) -> WeChatPayAccount:
        """The merchant's credentials and every platform key stored for it (the one place that
        reads them from the database)."""
        row = db.session.query(PaymentAccount).filter_by(merchant_id=merchant.id).one_or_none()
        if row is None:
            raise Conflict("this merchant has not set up WeChat Pay", code="payment_not_configured")
        keys = db.session.query(PaymentPlatformKey).filter_by(merchant_id=merchant.id).order_by(PaymentPlatformKey.id)
        return WeChatPayAccount(
            appid=merchant.wx_appid,
            mchid=row.mchid,
            merchant_serial_no=row.merchant_serial_no,
            merchant_private_key=load_private_key(row.merchant_private_key),
            apiv3_key=row.apiv3_key.encode(),
            platform_keys=tuple(
                PlatformKey(
                    serial_no=key.serial_no,
                    public_key=load_public_key(key.public_key),
                    source=key.source,
                    valid_from=key.valid_from,
                    valid_until=key.valid_until,
                )
                for key in keys
            ),
            notify_url=f"{self.public_base_url}/api/v1/payments/wechatpay/{merchant.code}/notify",
            refund_notify_url=f"{self.public_base_url}/api/v1/payments/wechatpay/{merchant.code}/refund-notify",
        )

    def prepay(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
    ) -> dict[str, str]:
        """Takes the account (read beforehand) so that no database work waits on WeChat."""
        prepay_id = self.client.prepay(
            account,
            out_trade_no=out_trade_no,
            description=description,
            total=total,
            openid=openid,
            time_expire=time_expire,
        )
        return {"prepay_id": prepay_id, **request_payment_params(account, prepay_id)}

    def close(self, account: WeChatPayAccount, out_trade_no: str) -> bool:
        return self.client.close(account, out_trade_no)

    def query(self, account: WeChatPayAccount, out_trade_no: str) -> dict[str, Any]:
        return self.client.query(account, out_trade_no)

    def refund(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount: int,
        total: int,
        reason: str,
    ) -> RefundResult:
        return self.client.refund(
            account,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            amount=amount,
            total=total,
            reason=reason,
        )

    def transfer(
        self,
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
        return submit_transfer(
            self.client,
            account,
            out_bill_no=out_bill_no,
            openid=openid,
            amount=amount,
            scene_id=scene_id,
            remark=remark,
            notify_url=notify_url,
            report_infos=report_infos,
        )

    def query_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
        return query_transfer_bill(self.client, account, out_bill_no)

    def cancel_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
        return cancel_transfer_bill(self.client, account, out_bill_no)


class FakeWeChatPay:
    """Dev and test stand-in for WeChat Pay. Prepay answers locally; notifications are built
    signed and encrypted exactly as WeChat Pay builds them, then go through the real handler.

    Its prepay, close, query, refund and transfer calls stand for network calls: each refuses
    (`TransactionOpen`) when a database transaction is open, so dev and the tests catch a caller
    that would wait on WeChat Pay holding row locks and a connection. Building notifications (the
    provider's side) and moving its transfer bills on are not calls we make, and are not checked.
    """

    name = "fake"

    def __init__(self) -> None:
        self._merchant_key = load_private_key((_HERE / "fake_merchant_key.pem").read_bytes())
        self.platform_private_key = load_private_key((_HERE / "fake_platform_key.pem").read_bytes())

    def account(self, merchant: Merchant) -> WeChatPayAccount:
        return WeChatPayAccount(
            appid=merchant.wx_appid,
            mchid=FAKE_MCHID,
            merchant_serial_no=FAKE_MERCHANT_SERIAL,
            merchant_private_key=self._merchant_key,
            apiv3_key=FAKE_APIV3_KEY,
            platform_keys=(PlatformKey(FAKE_PLATFORM_SERIAL, self.platform_private_key.public_key()),),
        )

    def prepay(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
    ) -> dict[str, str]:
        forbid_open_transaction("WeChat Pay prepay")
        prepay_id = f"wx_fake_{out_trade_no}"
        return {"prepay_id": prepay_id, **request_payment_params(account, prepay_id)}

    # What the fake "provider" knows lives in Redis, shared by every process of the app.
    CLOSED_KEY = "gs:fakepay:closed"
    REFUNDS_KEY = "gs:fakepay:refunds"

    def close(self, account: WeChatPayAccount, out_trade_no: str) -> bool:
        forbid_open_transaction("WeChat Pay close")
        if redis_client().hexists(self.TRANSACTIONS_KEY, out_trade_no):
            return False  # as WeChat Pay: ORDERPAID
        redis_client().sadd(self.CLOSED_KEY, out_trade_no)
        return True

    TRANSACTIONS_KEY = "gs:fakepay:transactions"

    def query(self, account: WeChatPayAccount, out_trade_no: str) -> dict[str, Any]:
        """As WeChat Pay's order query: the transaction if it was paid, else NOTPAY or CLOSED."""
        forbid_open_transaction("WeChat Pay query")
        paid = redis_client().hget(self.TRANSACTIONS_KEY, out_trade_no)
        if paid:
            return json.loads(paid)
        state = "CLOSED" if self.is_closed(out_trade_no) else "NOTPAY"
        return {"appid": account.appid, "mchid": account.mchid, "out_trade_no": out_trade_no, "trade_state": state}

    def is_closed(self, out_trade_no: str) -> bool:
        return bool(redis_client().sismember(self.CLOSED_KEY, out_trade_no))

    def refund(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount: int,
        total: int,
        reason: str,
    ) -> RefundResult:
        """As WeChat Pay: one out_refund_no is one refund, however often it is submitted."""
        forbid_open_transaction("WeChat Pay refund")
        redis = redis_client()
        redis.hsetnx(self.REFUNDS_KEY, out_refund_no, amount)
        if int(redis.hget(self.REFUNDS_KEY, out_refund_no)) != amount:
            raise Conflict("out_refund_no reused with another amount", code="refund_refused")
        # WeChat Pay answers PROCESSING and notifies the outcome later; so does the fake. Called
        # with no transaction open, the runner sends the job at once.
        enqueue(FAKE_REFUND_NOTIFICATION_JOB, out_refund_no)
        return RefundResult(refund_id=f"fake_rf_{out_refund_no}", status="PROCESSING")

    def refund_submissions(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in redis_client().hgetall(self.REFUNDS_KEY).items()}

    # --- transfers (商家转账) -------------------------------------------------------------------
    # Each bill is kept as WeChat Pay's query shows it, by out_bill_no. A transfer waits for the
    # user (WAIT_USER_CONFIRM); `confirm_transfer`, `fail_transfer` and `expire_transfer` move it
    # on as the user or WeChat Pay would, and `transfer_notification` builds the notification of
    # its final state. Nothing is delivered by itself: the caller posts the notification.

    TRANSFERS_KEY = "gs:fakepay:transfers"

    def transfer(
        self,
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
        """As WeChat Pay: one out_bill_no is one bill, however often it is submitted; submitted
        again with another amount, payee or appid it is refused (INVALID_REQUEST), and what WeChat
        would refuse as PARAM_ERROR is refused the same way, as the real provider raises them."""
        forbid_open_transaction("WeChat Pay transfer")
        check_out_bill_no(out_bill_no)
        problem = _transfer_param_error(openid=openid, amount=amount, scene_id=scene_id, report_infos=report_infos)
        if problem:
            raise _fake_refusal("transfer_refused", "PARAM_ERROR", problem)
        now = rfc3339(datetime.now())
        bill = {
            "mch_id": account.mchid,
            "appid": account.appid,
            "out_bill_no": out_bill_no,
            "transfer_bill_no": f"fake_tb_{out_bill_no}",
            "transfer_scene_id": scene_id,
            "openid": openid,
            "transfer_amount": amount,
            "transfer_remark": remark[:MAX_REMARK_LENGTH],
            "notify_url": notify_url,
            "state": "WAIT_USER_CONFIRM",
            "fail_reason": None,
            "create_time": now,
            "update_time": now,
        }
        redis = redis_client()
        redis.hsetnx(self.TRANSFERS_KEY, out_bill_no, json.dumps(bill, ensure_ascii=False))
        stored = self.transfer_bill(out_bill_no)
        if (stored["transfer_amount"], stored["openid"], stored["appid"]) != (amount, openid, account.appid):
            raise _fake_refusal("transfer_refused", "INVALID_REQUEST", "out_bill_no exists with other details")
        waiting = stored["state"] == "WAIT_USER_CONFIRM"
        return TransferResult(
            out_bill_no=out_bill_no,
            transfer_bill_no=stored["transfer_bill_no"],
            state=stored["state"],
            package_info=f"fake_package_{out_bill_no}" if waiting else None,
            fail_reason=stored["fail_reason"],
            create_time=stored["create_time"],
        )

    def query_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
        """As WeChat Pay's query by out_bill_no (which carries no package_info)."""
        forbid_open_transaction("WeChat Pay transfer query")
        check_out_bill_no(out_bill_no)
        bill = self.transfer_bill(out_bill_no)
        if bill is None or bill["mch_id"] != account.mchid:
            raise _fake_refusal("transfer_query_failed", "NOT_FOUND", "no such transfer bill")
        return TransferResult(
            out_bill_no=out_bill_no,
            transfer_bill_no=bill["transfer_bill_no"],
            state=bill["state"],
            fail_reason=bill["fail_reason"],
            create_time=bill["create_time"],
            update_time=bill["update_time"],
        )

    def cancel_transfer(self, account: WeChatPayAccount, out_bill_no: str) -> TransferResult:
        """As WeChat Pay's cancel: a bill the user has not confirmed is CANCELLED (the fake does at
        once what WeChat may answer CANCELING for); cancelling again answers the same; a bill the
        user confirmed, or that ended otherwise, is refused (INVALID_REQUEST)."""
        forbid_open_transaction("WeChat Pay transfer cancel")
        check_out_bill_no(out_bill_no)

        def refuse(bill: dict[str, Any] | None) -> Exception:
            if bill is None or bill["mch_id"] != account.mchid:
                return _fake_refusal("transfer_cancel_failed", "NOT_FOUND", "no such transfer bill")
            return _fake_refusal("transfer_cancel_failed", "INVALID_REQUEST", f"the bill is {bill['state']}")

        bill = self._move_transfer(out_bill_no, "CANCELLED", CANCELLABLE_STATES | {"CANCELING"}, refuse)
        return TransferResult(
            out_bill_no=out_bill_no,
            transfer_bill_no=bill["transfer_bill_no"],
            state=bill["state"],
            update_time=bill["update_time"],
        )

    def transfer_bill(self, out_bill_no: str) -> dict[str, Any] | None:
        """The fake's record of a bill (WeChat's query fields, plus appid and notify_url)."""
        raw = redis_client().hget(self.TRANSFERS_KEY, out_bill_no)
        return json.loads(raw) if raw else None

    def confirm_transfer(self, out_bill_no: str) -> TransferResult:
        """The user confirms receipt (wx.requestMerchantTransfer): the bill succeeds."""
        return self._settle_transfer(out_bill_no, "SUCCESS")

    def fail_transfer(self, out_bill_no: str, fail_reason: str = "PAYEE_ACCOUNT_ABNORMAL") -> TransferResult:
        """WeChat Pay fails the bill, with one of its fail reasons."""
        return self._settle_transfer(out_bill_no, "FAIL", fail_reason)

    def expire_transfer(self, out_bill_no: str) -> TransferResult:
        """The bill is cancelled without the merchant's account at hand: as `cancel_transfer`, or
        as WeChat Pay cancels a bill the user left unconfirmed too long."""
        return self._settle_transfer(out_bill_no, "CANCELLED")

    def _settle_transfer(self, out_bill_no: str, state: str, fail_reason: str | None = None) -> TransferResult:
        allowed = CANCELLABLE_STATES | ({"CANCELING"} if state == "CANCELLED" else {"TRANSFERING"})

        def refuse(bill: dict[str, Any] | None) -> Exception:
            if bill is None:
                return NotFound(f"the fake provider has no transfer bill {out_bill_no}")
            return Conflict(f"the fake transfer bill {out_bill_no} is {bill['state']}", code="transfer_state")

        bill = self._move_transfer(out_bill_no, state, allowed, refuse, fail_reason)
        return TransferResult(
            out_bill_no=out_bill_no,
            transfer_bill_no=bill["transfer_bill_no"],
            state=bill["state"],
            fail_reason=bill["fail_reason"],
            create_time=bill["create_time"],
            update_time=bill["update_time"],
        )

    def _move_transfer(
        self,
        out_bill_no: str,
        state: str,
        allowed: frozenset[str] | set[str],
        refuse: Callable[[dict[str, Any] | None], Exception],
        fail_reason: str | None = None,
    ) -> dict[str, Any]:
        """Move a bill to `state` from one of `allowed` (already there: unchanged), read and
        written under WATCH so that two moves at once cannot both win."""

        def move(pipe: Any) -> dict[str, Any]:
            raw = pipe.hget(self.TRANSFERS_KEY, out_bill_no)
            bill = json.loads(raw) if raw else None
            if bill is not None and bill["state"] == state:
                return bill
            if bill is None or bill["state"] not in allowed:
                raise refuse(bill)
            bill.update(state=state, fail_reason=fail_reason, update_time=rfc3339(datetime.now()))
            pipe.multi()
            pipe.hset(self.TRANSFERS_KEY, out_bill_no, json.dumps(bill, ensure_ascii=False))
            return bill

        return redis_client().transaction(move, self.TRANSFERS_KEY, value_from_callable=True)

    # --- building notifications as WeChat Pay does -------------------------------------------

    def sign(
        self, body: str, *, timestamp: int | None = None, serial: str = FAKE_PLATFORM_SERIAL, key: Any = None
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce_str = nonce()
        signature = rsa_sign(key or self.platform_private_key, f"{ts}\n{nonce_str}\n{body}\n")
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": SIGNATURE_SCHEME,
            "Content-Type": "application/json",
        }

    def notification(
        self, merchant: Merchant, event_type: str, resource: dict[str, Any], original_type: str
    ) -> tuple[dict[str, str], str]:
        body = json.dumps(
            {
                "id": secrets.token_hex(16),
                "create_time": datetime.now().astimezone().isoformat(timespec="seconds"),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": _SUMMARIES.get(event_type, "退款状态变更"),
                "resource": encrypt_resource(FAKE_APIV3_KEY, resource, original_type, original_type),
            },
            ensure_ascii=False,
        )
        return self.sign(body), body

    def payment_notification(
        self,
        merchant: Merchant,
        *,
        out_trade_no: str,
        total: int,
        openid: str,
        transaction_id: str | None = None,
        appid: str | None = None,
        mchid: str | None = None,
    ) -> tuple[dict[str, str], str]:
        resource = {
            "appid": appid or merchant.wx_appid,
            "mchid": mchid or FAKE_MCHID,
            "out_trade_no": out_trade_no,
            "transaction_id": transaction_id or f"42000{secrets.randbelow(10**23):023d}",
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "OTHERS",
            "success_time": datetime.now().astimezone().isoformat(timespec="seconds"),
            "payer": {"openid": openid},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
        }
        # The fake "provider" now knows it was paid, whether or not the notification arrives.
        redis_client().hset(self.TRANSACTIONS_KEY, out_trade_no, json.dumps(resource))
        return self.notification(merchant, "TRANSACTION.SUCCESS", resource, "transaction")

    def refund_notification(
        self,
        merchant: Merchant,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund: int,
        total: int,
        status: str = "SUCCESS",
    ) -> tuple[dict[str, str], str]:
        resource = {
            "mchid": FAKE_MCHID,
            "out_trade_no": out_trade_no,
            "transaction_id": "",
            "out_refund_no": out_refund_no,
            "refund_id": f"fake_rf_{out_refund_no}",
            "refund_status": status,
            "success_time": datetime.now().astimezone().isoformat(timespec="seconds"),
            "amount": {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund},
        }
        event = {"SUCCESS": "REFUND.SUCCESS", "ABNORMAL": "REFUND.ABNORMAL", "CLOSED": "REFUND.CLOSED"}[status]
        return self.notification(merchant, event, resource, "refund")

    def transfer_notification(self, merchant: Merchant, *, out_bill_no: str) -> tuple[dict[str, str], str]:
        """The MCHTRANSFER.BILL.FINISHED notification WeChat Pay posts for a bill in its final
        state (SUCCESS, FAIL or CANCELLED), as it stands now."""
        bill = self.transfer_bill(out_bill_no)
        if bill is None or bill["appid"] != merchant.wx_appid:
            raise NotFound(f"the fake provider has no transfer bill {out_bill_no} of this merchant")
        if bill["state"] not in FINAL_STATES:
            raise Conflict(f"the fake transfer bill {out_bill_no} is {bill['state']}", code="transfer_state")
        resource = {
            "mch_id": bill["mch_id"],
            "out_bill_no": out_bill_no,
            "transfer_bill_no": bill["transfer_bill_no"],
            "transfer_amount": bill["transfer_amount"],
            "state": bill["state"],
            "openid": bill["openid"],
            "create_time": bill["create_time"],
            "update_time": bill["update_time"],
        }
        if bill["state"] == "FAIL":
            resource["fail_reason"] = bill["fail_reason"]
        return self.notification(merchant, TRANSFER_EVENT, resource, TRANSFER_RESOURCE_TYPE)


def _transfer_param_error(*, openid: str, amount: int, scene_id: str, report_infos: list[dict[str, str]]) -> str:
    """What WeChat Pay would refuse as PARAM_ERROR in a transfer, for the fake ("" when nothing)."""
    if type(amount) is not int or amount <= 0:
        return "transfer_amount must be a positive number of fen"
    if not openid or not scene_id:
        return "openid and transfer_scene_id are required"
    items_ok = isinstance(report_infos, list) and all(
        isinstance(item, dict)
        and set(item) == {"info_type", "info_content"}
        and all(isinstance(value, str) and value for value in item.values())
        for item in report_infos
    )
    if not report_infos or not items_ok:
        return "transfer_scene_report_infos must be the scene's info_type/info_content items"
    return ""


def _fake_refusal(code: str, wechat_code: str, message: str) -> UpstreamError:
    """The error the real provider raises when WeChat Pay refuses a transfer call."""
    return UpstreamError(
        f"WeChat Pay refused: {wechat_code} {message}", code=code, details={"wechat_code": wechat_code}
    )


PROVIDER_EXTENSION = "groupshop.payments"


def payment_provider() -> PaymentProvider:
    return current_app.extensions[PROVIDER_EXTENSION]
