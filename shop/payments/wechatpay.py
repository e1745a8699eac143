"""WeChat Pay API v3: request signing, notification verification and decryption, and the HTTP
client for JSAPI prepay, query, close and refunds.

Only `cryptography` primitives are used: RSA-SHA256 (PKCS#1 v1.5) signatures and AES-256-GCM.
The fake provider in `shop.payments.fake` signs and encrypts with the same functions, so the
verification code tests exercise is the code that checks WeChat's real notifications.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shop.errors import Conflict, UpstreamError

SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_CLOCK_SKEW = 300  # seconds; WeChat's own recommendation for notification timestamps


class NotificationRejected(Exception):
    """A notification that must not be acted on; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class WeChatPayAccount:
    """One merchant's WeChat Pay settings."""

    appid: str
    mchid: str
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    platform_public_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    notify_url: str = ""
    refund_notify_url: str = ""


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def nonce() -> str:
    return secrets.token_hex(16)


def authorization_header(account: WeChatPayAccount, method: str, path_with_query: str, body: str) -> str:
    """The `Authorization` header of a v3 API request: a signature over method, path, time, nonce, body."""
    timestamp = str(int(time.time()))
    nonce_str = nonce()
    message = f"{method}\n{path_with_query}\n{timestamp}\n{nonce_str}\n{body}\n"
    signature = rsa_sign(account.merchant_private_key, message)
    return (
        f'{SIGNATURE_SCHEME} mchid="{account.mchid}",nonce_str="{nonce_str}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{account.merchant_serial_no}"'
    )


def verify_signed_message(
    account: WeChatPayAccount, headers: dict[str, str], body: str, *, now: float | None = None
) -> None:
    """Check a notification's (or an API response's) `Wechatpay-*` headers against its body."""
    get = {k.lower(): v for k, v in headers.items()}.get
    timestamp, nonce_str = get("wechatpay-timestamp"), get("wechatpay-nonce")
    signature, serial = get("wechatpay-signature"), get("wechatpay-serial")
    if not (timestamp and nonce_str and signature and serial):
        raise NotificationRejected("missing_headers", "Wechatpay-Timestamp/Nonce/Signature/Serial are required")
    if signature.startswith(SIGNTEST_PREFIX):
        raise NotificationRejected("signtest", "signature probe refused")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise NotificationRejected("bad_timestamp", "Wechatpay-Timestamp is not a number") from None
    if abs((now if now is not None else time.time()) - sent_at) > MAX_CLOCK_SKEW:
        raise NotificationRejected("stale", "the timestamp is too far from now")
    key = account.platform_public_keys.get(serial)
    if key is None:
        raise NotificationRejected("unknown_serial", "no platform key with that serial")
    if not rsa_verify(key, f"{timestamp}\n{nonce_str}\n{body}\n", signature):
        raise NotificationRejected("bad_signature", "the signature does not match the body")


def decrypt_resource(apiv3_key: bytes, resource: dict[str, Any]) -> dict[str, Any]:
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotificationRejected("bad_algorithm", "only AEAD_AES_256_GCM resources are accepted")
    try:
        plaintext = AESGCM(apiv3_key).decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"]),
            (resource.get("associated_data") or "").encode(),
        )
        return json.loads(plaintext)
    except (KeyError, ValueError, InvalidTag, TypeError):
        raise NotificationRejected("bad_ciphertext", "the resource does not decrypt with the APIv3 key") from None


def encrypt_resource(apiv3_key: bytes, payload: dict[str, Any], associated_data: str, original_type: str) -> dict:
    """What WeChat does to a notification's resource (used by the fake provider)."""
    nonce_str = secrets.token_hex(6)  # 12 characters, as WeChat sends
    ciphertext = AESGCM(apiv3_key).encrypt(
        nonce_str.encode(), json.dumps(payload, ensure_ascii=False).encode(), associated_data.encode()
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "original_type": original_type,
        "nonce": nonce_str,
    }


@dataclass(frozen=True)
class Notification:
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    resource: dict[str, Any]
    notification_id: str


def parse_notification(account: WeChatPayAccount, headers: dict[str, str], body: str) -> Notification:
    """Verify, then decrypt. Raises NotificationRejected for anything that must not be acted on."""
    verify_signed_message(account, headers, body)
    try:
        envelope = json.loads(body)
        resource = envelope["resource"]
        event_type = envelope["event_type"]
    except (ValueError, KeyError, TypeError):
        raise NotificationRejected("bad_body", "not a WeChat Pay notification") from None
    return Notification(
        event_type=event_type,
        resource=decrypt_resource(account.apiv3_key, resource),
        notification_id=str(envelope.get("id", "")),
    )


def request_payment_params(account: WeChatPayAccount, prepay_id: str) -> dict[str, str]:
    """What the mini-program passes to `wx.requestPayment`."""
    timestamp = str(int(time.time()))
    nonce_str = nonce()
    package = f"prepay_id={prepay_id}"
    pay_sign = rsa_sign(account.merchant_private_key, f"{account.appid}\n{timestamp}\n{nonce_str}\n{package}\n")
    return {
        "appId": account.appid,
        "timeStamp": timestamp,
        "nonceStr": nonce_str,
        "package": package,
        "signType": "RSA",
        "paySign": pay_sign,
    }


def rfc3339(moment: datetime) -> str:
    return moment.astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # SUCCESS, PROCESSING, CLOSED, ABNORMAL


class WeChatPayClient:
    """The real API v3 client. Every response's signature is verified like a notification's."""

    def __init__(self, base_url: str = "https://api.mch.weixin.qq.com", timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, account: WeChatPayAccount, method: str, path: str, payload: dict | None) -> tuple[int, dict]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        headers = {
            "Authorization": authorization_header(account, method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "groupshop",
        }
        try:
            response = requests.request(
                method,
                self.base_url + path,
                data=body.encode() if body else None,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise UpstreamError("WeChat Pay could not be reached", code="payment_unreachable") from exc
        text = response.text
        if response.status_code < 500 and text:
            try:
                verify_signed_message(account, dict(response.headers), text)
            except NotificationRejected as exc:
                raise UpstreamError(
                    "WeChat Pay's answer failed verification", code="payment_unverified", details={"reason": exc.reason}
                ) from None
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if response.status_code >= 500:
            raise UpstreamError(
                "WeChat Pay failed", code="payment_upstream_error", details={"wechat_code": str(data.get("code", ""))}
            )
        return response.status_code, data

    def prepay(
        self,
        account: WeChatPayAccount,
        *,
        out_trade_no: str,
        description: str,
        total: int,
        openid: str,
        time_expire: datetime,
    ) -> str:
        status, data = self._call(
            account,
            "POST",
            "/v3/pay/transactions/jsapi",
            {
                "appid": account.appid,
                "mchid": account.mchid,
                "description": description[:127],
                "out_trade_no": out_trade_no,
                "time_expire": rfc3339(time_expire),
                "notify_url": account.notify_url,
                "amount": {"total": total, "currency": "CNY"},
                "payer": {"openid": openid},
            },
        )
        if status >= 400 or "prepay_id" not in data:
            # Members see this: WeChat's code, not its whole answer.
            raise Conflict(
                "WeChat Pay refused the prepay",
                code="prepay_refused",
                details={"wechat_code": str(data.get("code", ""))},
            )
        return data["prepay_id"]

    def query(self, account: WeChatPayAccount, out_trade_no: str) -> dict[str, Any]:
        status, data = self._call(
            account, "GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={account.mchid}", None
        )
        if status >= 400:
            raise UpstreamError(
                "WeChat Pay refused the query",
                code="payment_query_failed",
                details={"wechat_code": str(data.get("code", ""))},
            )
        return data

    def close(self, account: WeChatPayAccount, out_trade_no: str) -> bool:
        """True when closed; False when WeChat says the order was paid (ORDERPAID)."""
        status, data = self._call(
            account, "POST", f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close", {"mchid": account.mchid}
        )
        if status >= 400:
            if data.get("code") == "ORDERPAID":
                return False
            raise UpstreamError(
                "WeChat Pay refused to close",
                code="payment_close_failed",
                details={"wechat_code": str(data.get("code", ""))},
            )
        return True

    def refund(
        self, account: WeChatPayAccount, *, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str
    ) -> RefundResult:
        status, data = self._call(
            account,
            "POST",
            "/v3/refund/domestic/refunds",
            {
                "out_trade_no": out_trade_no,
                "out_refund_no": out_refund_no,
                "reason": reason[:80],
                "notify_url": account.refund_notify_url,
                "amount": {"refund": amount, "total": total, "currency": "CNY"},
            },
        )
        if status >= 400:
            raise UpstreamError(
                f"WeChat Pay refused the refund: {data.get('code', '')} {data.get('message', '')}".strip(),
                code="refund_refused",
                details={"wechat_code": str(data.get("code", ""))},
            )
        return RefundResult(refund_id=data.get("refund_id", ""), status=data.get("status", "PROCESSING"))
