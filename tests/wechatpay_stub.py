"""A local stand-in for WeChat Pay's API v3, for tests: a real HTTP server on 127.0.0.1 that
does what WeChat Pay does.

- It checks the `Authorization` signature of every request with the merchant's public key; a
  request it refuses gets 401 SIGN_ERROR, unsigned (WeChat signs no answer to a request whose
  own signature failed).
- It signs every other answer, 204s with an empty body included, and names the signing key in
  `Wechatpay-Serial`, with `Wechatpay-Signature-Type` as the real service sends. Like WeChat Pay
  while a merchant moves from platform certificates to the WeChat Pay public key, it signs with
  the public key only when the request names it in its own `Wechatpay-Serial` header, and with
  the platform certificate otherwise (`sign_with` forces one key, as WeChat does during its
  gradual rollout or while a certificate is replaced).
- `/v3/certificates` lists the platform certificates it is given, AES-256-GCM encrypted under
  the APIv3 key, with their effective and expire times.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from shop.payments.wechatpay import SIGNATURE_SCHEME, encrypt_bytes, nonce, normalize_serial, rsa_sign

MCHID = "1230000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "7132D72A03E93CDDF8C03BBD1F37EEDF8EF1AF53"  # the platform certificate's serial
PUBLIC_KEY_ID = "PUB_KEY_ID_0112300001092025010100000000000000"  # the WeChat Pay public key's id
APIV3_KEY = b"0123456789abcdef0123456789abcdef"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def certificate_pem(
    key: rsa.RSAPrivateKey, serial: str, *, not_before: datetime | None = None, not_after: datetime | None = None
) -> str:
    """A platform certificate for `key` with that (hexadecimal) serial, self-signed: the client
    trusts a certificate for the APIv3-key encryption it came in, or because it was given by hand."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(serial, 16))
        .not_valid_before(not_before or now - timedelta(days=30))
        .not_valid_after(not_after or now + timedelta(days=5 * 365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def verify(public_key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def signed_headers(key: rsa.RSAPrivateKey, serial: str, body: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The `Wechatpay-*` headers WeChat Pay puts on an answer or a notification."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce_str = nonce()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Signature": rsa_sign(key, f"{ts}\n{nonce_str}\n{body}\n"),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SIGNATURE_SCHEME,
    }


@dataclass
class Keys:
    merchant: rsa.RSAPrivateKey  # the merchant's API key (requests)
    platform: rsa.RSAPrivateKey  # the platform certificate's key (PLATFORM_SERIAL)
    public: rsa.RSAPrivateKey  # the WeChat Pay public key's private half (PUBLIC_KEY_ID)
    stranger: rsa.RSAPrivateKey  # anyone else


def make_keys() -> Keys:
    return Keys(merchant=rsa_key(), platform=rsa_key(), public=rsa_key(), stranger=rsa_key())


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None
    authorized: bool
    auth: dict[str, str]
    wechatpay_serial: str | None  # the request's own Wechatpay-Serial header


@dataclass
class Certificate:
    """An entry of `/v3/certificates`."""

    serial_no: str
    pem: str
    effective_time: str
    expire_time: str
    apiv3_key: bytes = APIV3_KEY


def beijing_time(days_from_now: float) -> str:
    """An RFC 3339 time as WeChat writes them (+08:00, seconds), days from now."""
    moment = datetime.now(UTC) + timedelta(days=days_from_now)
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


@dataclass
class StubWeChatPay:
    keys: Keys
    mchid: str = MCHID
    merchant_serial: str = MERCHANT_SERIAL
    # serial -> key the stub may sign with
    signers: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    certificate_serial: str = PLATFORM_SERIAL
    sign_with: str | None = None  # force this serial (the rollout, a certificate being replaced)
    certificates: list[Certificate] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    answers: dict[tuple[str, str], tuple[int, dict | None]] = field(default_factory=dict)
    mischief: str = ""  # how to spoil the answer's signature, for the verification tests

    def __post_init__(self) -> None:
        if not self.signers:
            self.signers = {PLATFORM_SERIAL: self.keys.platform, PUBLIC_KEY_ID: self.keys.public}

    def answer(self, method: str, path: str, status: int, payload: dict | None) -> None:
        self.answers[(method, path)] = (status, payload)

    def _check_authorization(self, method: str, path: str, body: str, header: str) -> tuple[bool, dict[str, str]]:
        scheme, _, params = header.partition(" ")
        auth = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if scheme != SIGNATURE_SCHEME or set(auth) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return False, auth
        fresh = abs(time.time() - int(auth["timestamp"])) <= 300
        message = f"{method}\n{path}\n{auth['timestamp']}\n{auth['nonce_str']}\n{body}\n"
        signed = verify(self.keys.merchant.public_key(), message, auth["signature"])
        return signed and fresh and auth["mchid"] == self.mchid and auth["serial_no"] == self.merchant_serial, auth

    def _signing_serial(self, requested: str | None) -> str:
        if self.sign_with:
            return self.sign_with
        if requested and normalize_serial(requested).startswith("PUB_KEY_ID_"):
            named = {normalize_serial(serial): serial for serial in self.signers}
            if normalize_serial(requested) in named:
                return named[normalize_serial(requested)]
        return self.certificate_serial

    def _signed(self, text: str, requested: str | None) -> dict[str, str]:
        serial = self._signing_serial(requested)
        key = self.keys.stranger if self.mischief == "wrong_key" else self.signers[serial]
        headers = signed_headers(
            key, serial, text, timestamp=int(time.time()) - (1000 if self.mischief == "stale" else 0)
        )
        if self.mischief == "unknown_serial":
            headers["Wechatpay-Serial"] = "UNKNOWN-SERIAL"
        if self.mischief == "unsigned":
            return {}
        return headers

    def _certificate_list(self) -> dict[str, Any]:
        return {
            "data": [
                {
                    "serial_no": entry.serial_no,
                    "effective_time": entry.effective_time,
                    "expire_time": entry.expire_time,
                    "encrypt_certificate": encrypt_bytes(entry.apiv3_key, entry.pem.encode(), "certificate"),
                }
                for entry in self.certificates
            ]
        }

    def __call__(self, environ, start_response):
        request = Request(environ)
        text = request.get_data(as_text=True)
        path = environ.get("RAW_URI") or environ["PATH_INFO"]
        authorized, auth = self._check_authorization(
            request.method, path, text, request.headers.get("Authorization", "")
        )
        requested = request.headers.get("Wechatpay-Serial")
        self.calls.append(Call(request.method, path, json.loads(text) if text else None, authorized, auth, requested))
        headers: dict[str, str] = {"Request-ID": "08F78BB5AF0610D302"}
        if not authorized:
            out = json.dumps({"code": "SIGN_ERROR", "message": "签名错误"}, ensure_ascii=False)
            return Response(out, status=401, headers=headers, content_type="application/json")(environ, start_response)
        if (request.method, path) == ("GET", "/v3/certificates") and ("GET", path) not in self.answers:
            status, payload = 200, self._certificate_list()
        else:
            status, payload = self.answers.get(
                (request.method, path.split("?")[0]), (404, {"code": "NOT_FOUND", "message": "no such stub"})
            )
        out = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        headers.update(self._signed(out, requested))
        if self.mischief == "tampered" and out:
            out = out.replace("}", ', "extra": 1}', 1)
        return Response(out, status=status, headers=headers, content_type="application/json")(environ, start_response)


@contextmanager
def serve(stub: StubWeChatPay) -> Iterator[str]:
    """Run the stub on a free local port; yields its base URL."""
    server = make_server("127.0.0.1", 0, stub, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
