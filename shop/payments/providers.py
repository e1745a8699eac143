"""The payment provider interface, its WeChat Pay implementation and the fake.

The fake signs and encrypts its notifications with a test key pair and a test APIv3 key, through
the same functions WeChat Pay's real notifications are checked with; only the keys differ.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from flask import current_app

from shop.core.cache import redis_client
from shop.core.db import db, forbid_open_transaction
from shop.core.errors import Conflict
from shop.core.runner import enqueue
from shop.identity.models import Merchant
from shop.payments.models import PaymentAccount, PaymentPlatformKey
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
    rsa_sign,
)

_HERE = Path(__file__).resolve().parent
FAKE_MCHID = "1900000109"
FAKE_MERCHANT_SERIAL = "FAKE0MERCHANT0SERIAL0000000000000000001"
FAKE_PLATFORM_SERIAL = "FAKE0PLATFORM0SERIAL0000000000000000001"
FAKE_APIV3_KEY = b"groupshop-fake-apiv3-key-32bytes"

# The fake's refund callback, a job (by name: shop.core.runner) of shop.payments.jobs.
FAKE_REFUND_NOTIFICATION_JOB = "payments.fake_refund_notification"


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


class FakeWeChatPay:
    """Dev and test stand-in for WeChat Pay. Prepay answers locally; notifications are built
    signed and encrypted exactly as WeChat Pay builds them, then go through the real handler.

    Its prepay, close, query and refund stand for network calls: each refuses (`TransactionOpen`)
    when a database transaction is open, so dev and the tests catch a caller that would wait on
    WeChat Pay holding row locks and a connection. Building notifications (the provider's side)
    is not a call we make, and is not checked.
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
                "summary": "支付成功" if event_type == "TRANSACTION.SUCCESS" else "退款状态变更",
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


PROVIDER_EXTENSION = "groupshop.payments"


def payment_provider() -> PaymentProvider:
    return current_app.extensions[PROVIDER_EXTENSION]
