"""WeChat Pay API v3: request signing, notification verification and decryption, and the HTTP
client for JSAPI prepay, query, close, refunds and the platform certificate download.

Only `cryptography` primitives are used: RSA-SHA256 (PKCS#1 v1.5) signatures, AES-256-GCM and
X.509 parsing. The fake provider in `shop.payments.providers` signs and encrypts with the same
functions, so the verification code tests exercise is the code that checks WeChat's real
notifications.

WeChat Pay signs its answers and notifications with one of several platform keys, named by the
`Wechatpay-Serial` header: the WeChat Pay public key (serial `PUB_KEY_ID_...`, no expiry) or a
platform certificate's key (a hexadecimal serial, valid between the certificate's effective and
expire times). While a merchant moves from certificates to the public key (about a week), and
while a certificate is replaced, messages come signed by either, so an account holds every key
it may meet, each with its validity. Requests name the key the merchant prefers in their own
`Wechatpay-Serial` header: WeChat signs the answer with that key where it can (during the move
to the public key, naming it is what moves the answers over).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shop.core.db import forbid_open_transaction
from shop.core.errors import Conflict, UpstreamError
from shop.payments.errors import NotificationRejected

SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_CLOCK_SKEW = 300  # seconds; WeChat's own recommendation for notification timestamps
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
CERTIFICATES_PATH = "/v3/certificates"
log = logging.getLogger(__name__)


def normalize_serial(serial: str) -> str:
    """The form serials are compared in: without regard to case (WeChat writes certificate serials
    in upper case, openssl and some tools in lower case) or to the leading zeros of a hexadecimal
    certificate serial (the same number either way)."""
    serial = serial.strip().upper()
    if serial and all(c in string.hexdigits for c in serial):
        serial = serial.lstrip("0") or "0"
    return serial


def key_source(serial: str) -> str:
    """A `PUB_KEY_ID_...` serial names the WeChat Pay public key; any other, a platform certificate."""
    return "public_key" if serial.strip().upper().startswith(PUBLIC_KEY_ID_PREFIX) else "certificate"


@dataclass(frozen=True)
class PlatformKey:
    """One key WeChat Pay signs with, and when it may be used (None: no bound on that side)."""

    serial_no: str
    public_key: rsa.RSAPublicKey
    source: str = "public_key"  # public_key (PUB_KEY_ID_...) or certificate
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        return valid_at(self, moment)


@dataclass
class WeChatPayAccount:
    """One merchant's WeChat Pay settings."""

    appid: str
    mchid: str
    merchant_serial_no: str
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    platform_keys: tuple[PlatformKey, ...] = ()
    notify_url: str = ""
    refund_notify_url: str = ""

    def platform_key(self, serial: str) -> PlatformKey | None:
        """The key with this serial, compared without regard to case."""
        wanted = normalize_serial(serial)
        return next((key for key in self.platform_keys if normalize_serial(key.serial_no) == wanted), None)

    def request_serial(self, now: datetime | None = None) -> str | None:
        """The serial sent as `Wechatpay-Serial` on requests (see `preferred_serial`)."""
        return preferred_serial(self.platform_keys, now)


class DatedKey(Protocol):
    """A platform key as stored or loaded: its serial, source and validity."""

    serial_no: str
    source: str
    valid_from: datetime | None
    valid_until: datetime | None


def valid_at(key: DatedKey, moment: datetime) -> bool:
    return (key.valid_from is None or key.valid_from <= moment) and (
        key.valid_until is None or moment < key.valid_until
    )


def preferred_serial(keys: Iterable[DatedKey], now: datetime | None = None) -> str | None:
    """The key requests name: the WeChat Pay public key when the merchant has a valid one, else
    the valid certificate that stays valid longest (WeChat's advice for certificates; one of
    unknown validity counts as the oldest). None: no valid key, and no header is sent."""
    moment = now or datetime.now(UTC)
    oldest = datetime.min.replace(tzinfo=UTC)
    valid = [key for key in keys if valid_at(key, moment)]
    if not valid:
        return None
    return max(
        valid, key=lambda key: (key.source == "public_key", key.valid_until or oldest, key.valid_from or oldest)
    ).serial_no


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


def load_certificate(pem: str | bytes) -> PlatformKey:
    """A platform certificate PEM as a key: its RSA key, its serial (upper-case hexadecimal, as
    WeChat writes it) and its validity."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        raise ValueError("not an X.509 certificate in PEM") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    serial = format(certificate.serial_number, "X")
    return PlatformKey(
        serial_no=serial.zfill(len(serial) + len(serial) % 2),
        public_key=key,
        source="certificate",
        valid_from=certificate.not_valid_before_utc,
        valid_until=certificate.not_valid_after_utc,
    )


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


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
    signature_type = get("wechatpay-signature-type")
    if signature_type and signature_type.strip() != SIGNATURE_SCHEME:
        raise NotificationRejected("bad_signature_type", f"only {SIGNATURE_SCHEME} signatures are accepted")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise NotificationRejected("bad_timestamp", "Wechatpay-Timestamp is not a number") from None
    current = now if now is not None else time.time()
    if abs(current - sent_at) > MAX_CLOCK_SKEW:
        raise NotificationRejected("stale", "the timestamp is too far from now")
    key = account.platform_key(serial)
    if key is None:
        raise NotificationRejected("unknown_serial", "no platform key with that serial")
    if not key.valid_at(datetime.fromtimestamp(current, UTC)):
        raise NotificationRejected("key_not_valid", "the platform key with that serial is not valid now")
    if not rsa_verify(key.public_key, f"{timestamp}\n{nonce_str}\n{body}\n", signature):
        raise NotificationRejected("bad_signature", "the signature does not match the body")


def decrypt_bytes(apiv3_key: bytes, resource: dict[str, Any]) -> bytes:
    """An AEAD_AES_256_GCM object (a notification's resource, an encrypted certificate), opened."""
    if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotificationRejected("bad_algorithm", "only AEAD_AES_256_GCM resources are accepted")
    try:
        return AESGCM(apiv3_key).decrypt(
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"]),
            (resource.get("associated_data") or "").encode(),
        )
    except (KeyError, ValueError, InvalidTag, TypeError, AttributeError):
        raise NotificationRejected("bad_ciphertext", "the resource does not decrypt with the APIv3 key") from None


def decrypt_resource(apiv3_key: bytes, resource: dict[str, Any]) -> dict[str, Any]:
    plaintext = decrypt_bytes(apiv3_key, resource)
    try:
        return json.loads(plaintext)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python follows
        raise NotificationRejected("bad_ciphertext", "the resource does not decrypt to JSON") from None


def encrypt_bytes(apiv3_key: bytes, plaintext: bytes, associated_data: str) -> dict[str, str]:
    """What WeChat does to a resource or a certificate it sends (used by the fake and test stubs)."""
    nonce_str = secrets.token_hex(6)  # 12 characters, as WeChat sends
    ciphertext = AESGCM(apiv3_key).encrypt(nonce_str.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "nonce": nonce_str,
        "associated_data": associated_data,
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def encrypt_resource(apiv3_key: bytes, payload: dict[str, Any], associated_data: str, original_type: str) -> dict:
    """What WeChat does to a notification's resource (used by the fake provider)."""
    resource = encrypt_bytes(apiv3_key, json.dumps(payload, ensure_ascii=False).encode(), associated_data)
    return {**resource, "original_type": original_type}


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
    except (ValueError, KeyError, TypeError, RecursionError):
        raise NotificationRejected("bad_body", "not a WeChat Pay notification") from None
    if not isinstance(event_type, str) or not isinstance(resource, dict):
        raise NotificationRejected("bad_body", "not a WeChat Pay notification")
    decrypted = decrypt_resource(account.apiv3_key, resource)
    if not isinstance(decrypted, dict):
        raise NotificationRejected("bad_body", "the resource is not an object")
    return Notification(event_type=event_type, resource=decrypted, notification_id=str(envelope.get("id", "")))


# Reading a decrypted resource. It is signed by WeChat Pay, but its fields are still checked for
# the shape we store (a wrong one is refused as bad_body, never a database error).


def resource_text(resource: Any, *path: str, max_length: int, required: bool = True) -> str:
    """The string at `path` (e.g. "payer", "openid"), at most `max_length` characters."""
    value = _at(resource, path)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > max_length or not _storable(value):
        raise NotificationRejected("bad_body", f"{'.'.join(path)} is not a text of at most {max_length} characters")
    return value


def _storable(text: str) -> bool:
    """PostgreSQL stores neither the NUL character nor a lone surrogate (text that is not Unicode)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def resource_fen(resource: Any, *path: str) -> int:
    """The amount in fen at `path` (e.g. "amount", "total"): an integer, never a float or a bool."""
    value = _at(resource, path)
    if type(value) is not int or value < 0:
        raise NotificationRejected("bad_body", f"{'.'.join(path)} is not an amount in fen")
    return value


def _at(resource: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(resource, dict):
            return None
        resource = resource.get(key)
    return resource


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


def _rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # SUCCESS, PROCESSING, CLOSED, ABNORMAL


class WeChatPayClient:
    """The real API v3 client. Every signed answer is verified like a notification, whatever its
    status (a 204's signature covers its empty body); an answer that should be signed and is not
    is not believed. WeChat signs no answer to a request whose own signature it refused (e.g.
    401 SIGN_ERROR): such an error is logged with WeChat's code and message and raised as
    `payment_rejected`, never acted on."""

    def __init__(self, base_url: str = "https://api.mch.weixin.qq.com", timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _send(
        self, account: WeChatPayAccount, method: str, path: str, payload: dict | None
    ) -> tuple[int, dict[str, str], str]:
        forbid_open_transaction(f"WeChat Pay {method} {path.split('?')[0]}")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        headers = {
            "Authorization": authorization_header(account, method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "groupshop",
        }
        serial = account.request_serial()
        if serial:
            headers["Wechatpay-Serial"] = serial
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
        return response.status_code, dict(response.headers), response.text

    def _check(
        self, account: WeChatPayAccount, method: str, path: str, status: int, headers: dict[str, str], text: str
    ) -> dict:
        """Verify an answer and read its JSON body ({} when empty or not JSON); raise for the
        answers no caller can use: unverifiable ones, unsigned refusals and server errors."""
        signed = any(name.lower() == "wechatpay-signature" for name in headers)
        if signed or status < 400:
            try:
                verify_signed_message(account, headers, text)
            except NotificationRejected as exc:
                raise UpstreamError(
                    "WeChat Pay's answer failed verification", code="payment_unverified", details={"reason": exc.reason}
                ) from None
        data = _json_object(text)
        if status < 400:
            return data
        wechat_code, message = str(data.get("code", "")), str(data.get("message", ""))
        request_id = next((v for k, v in headers.items() if k.lower() == "request-id"), "")
        log.warning(
            "WeChat Pay answered %s %s with HTTP %s%s: %s %s (mchid %s, request id %s)",
            method,
            path.split("?")[0],
            status,
            "" if signed else " (unsigned)",
            wechat_code,
            message,
            account.mchid,
            request_id,
        )
        if status >= 500:
            raise UpstreamError(
                "WeChat Pay failed", code="payment_upstream_error", details={"wechat_code": wechat_code}
            )
        if not signed:
            raise UpstreamError(
                f"WeChat Pay refused the request: {wechat_code} {message}".strip(),
                code="payment_rejected",
                details={"wechat_code": wechat_code, "message": message, "status": status},
            )
        return data

    def _call(self, account: WeChatPayAccount, method: str, path: str, payload: dict | None) -> tuple[int, dict]:
        status, headers, text = self._send(account, method, path, payload)
        return status, self._check(account, method, path, status, headers, text)

    def fetch_certificates(self, account: WeChatPayAccount) -> list[PlatformKey]:
        """WeChat Pay's current platform certificates (GET /v3/certificates), decrypted with the
        APIv3 key, each with its serial and the effective and expire times WeChat gives.

        The answer is verified with the keys the account knows plus the certificates it brings: a
        first download has nothing else to go by, and the AES-GCM tag under the APIv3 key vouches
        that the certificates come from WeChat Pay.
        """
        status, headers, text = self._send(account, "GET", CERTIFICATES_PATH, None)
        if status >= 400:
            self._check(account, "GET", CERTIFICATES_PATH, status, headers, text)
            raise UpstreamError(
                "WeChat Pay refused the certificate download",
                code="certificates_refused",
                details={"wechat_code": str(_json_object(text).get("code", ""))},
            )
        try:
            items = _json_object(text)["data"]
            certificates = [self._certificate(account, item) for item in items]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(
                "WeChat Pay's certificate list is not usable",
                code="certificates_invalid",
                details={"reason": str(exc) or type(exc).__name__},
            ) from None
        known = {normalize_serial(key.serial_no) for key in account.platform_keys}
        extended = dataclasses.replace(
            account,
            platform_keys=account.platform_keys
            + tuple(key for key in certificates if normalize_serial(key.serial_no) not in known),
        )
        self._check(extended, "GET", CERTIFICATES_PATH, status, headers, text)
        return certificates

    @staticmethod
    def _certificate(account: WeChatPayAccount, item: dict[str, Any]) -> PlatformKey:
        item = {str(name).strip(): value for name, value in item.items()}  # WeChat's own example has "expire_time "
        try:
            pem = decrypt_bytes(account.apiv3_key, item["encrypt_certificate"])
        except NotificationRejected as exc:
            raise ValueError(f"certificate {item.get('serial_no')}: {exc.message}") from None
        key = load_certificate(pem)
        serial = str(item["serial_no"])
        if normalize_serial(serial) != normalize_serial(key.serial_no):
            raise ValueError(f"certificate {serial}: the certificate's own serial is {key.serial_no}")
        return dataclasses.replace(
            key,
            serial_no=serial,
            valid_from=_rfc3339(item["effective_time"]),
            valid_until=_rfc3339(item["expire_time"]),
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
        """True when closed (also when WeChat had closed it already: ORDER_CLOSED); False when
        WeChat says the order was paid (ORDERPAID)."""
        status, data = self._call(
            account, "POST", f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close", {"mchid": account.mchid}
        )
        if status >= 400:
            if data.get("code") == "ORDERPAID":
                return False
            if data.get("code") == "ORDER_CLOSED":  # closed already (by us before, or by its time_expire)
                return True
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
