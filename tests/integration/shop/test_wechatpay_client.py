"""The WeChat Pay API v3 client against a local stand-in for WeChat Pay, and the verification of
signed messages and notifications.

The stand-in is a real HTTP server on 127.0.0.1 that does what WeChat Pay does: it checks the
`Authorization` signature of every request with the merchant's public key, and signs every answer
with its platform key, so the client's own verification of the answers runs too.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from shop.errors import Conflict, UpstreamError
from shop.payments.wechatpay import (
    SIGNATURE_SCHEME,
    NotificationRejected,
    WeChatPayAccount,
    WeChatPayClient,
    encrypt_resource,
    nonce,
    parse_notification,
    request_payment_params,
    rsa_sign,
    verify_signed_message,
)

MCHID = "1230000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "7132D72A03E93CDDF8C03BBD1F37EEDF8EF1AF53"
APIV3_KEY = b"0123456789abcdef0123456789abcdef"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    stranger: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(merchant=_rsa_key(), platform=_rsa_key(), stranger=_rsa_key())


def _account(keys: Keys, *, merchant_key: rsa.RSAPrivateKey | None = None, apiv3_key: bytes = APIV3_KEY):
    return WeChatPayAccount(
        appid=APPID,
        mchid=MCHID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key or keys.merchant,
        apiv3_key=apiv3_key,
        platform_public_keys={PLATFORM_SERIAL: keys.platform.public_key()},
        notify_url="https://shop.example.com/api/v1/payments/wechatpay/m1/notify",
        refund_notify_url="https://shop.example.com/api/v1/payments/wechatpay/m1/refund-notify",
    )


@pytest.fixture
def account(keys: Keys) -> WeChatPayAccount:
    return _account(keys)


def _verify(public_key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


# --- the stand-in -------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None
    authorized: bool
    auth: dict[str, str]


@dataclass
class StubWeChatPay:
    """Plays WeChat Pay: checks request signatures, answers what it is told, signs the answers."""

    merchant_public_key: rsa.RSAPublicKey
    platform_key: rsa.RSAPrivateKey
    stranger_key: rsa.RSAPrivateKey
    calls: list[Call] = field(default_factory=list)
    answers: dict[tuple[str, str], tuple[int, dict | None]] = field(default_factory=dict)
    mischief: str = ""  # how to spoil the answer's signature, for the verification tests

    def answer(self, method: str, path: str, status: int, payload: dict | None) -> None:
        self.answers[(method, path)] = (status, payload)

    def _check_authorization(self, method: str, path: str, body: str, header: str) -> tuple[bool, dict[str, str]]:
        scheme, _, params = header.partition(" ")
        auth = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if scheme != SIGNATURE_SCHEME or set(auth) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return False, auth
        fresh = abs(time.time() - int(auth["timestamp"])) <= 300
        message = f"{method}\n{path}\n{auth['timestamp']}\n{auth['nonce_str']}\n{body}\n"
        signed = _verify(self.merchant_public_key, message, auth["signature"])
        return signed and fresh and auth["mchid"] == MCHID and auth["serial_no"] == MERCHANT_SERIAL, auth

    def _signed_headers(self, text: str) -> dict[str, str]:
        timestamp = str(int(time.time()) - (1000 if self.mischief == "stale" else 0))
        nonce_str = nonce()
        key = self.stranger_key if self.mischief == "wrong_key" else self.platform_key
        headers = {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce_str,
            "Wechatpay-Signature": rsa_sign(key, f"{timestamp}\n{nonce_str}\n{text}\n"),
            "Wechatpay-Serial": "UNKNOWN-SERIAL" if self.mischief == "unknown_serial" else PLATFORM_SERIAL,
            "Request-ID": "08F78BB5AF0610D302",
        }
        if self.mischief == "unsigned":
            headers = {"Request-ID": headers["Request-ID"]}
        return headers

    def __call__(self, environ, start_response):
        request = Request(environ)
        text = request.get_data(as_text=True)
        path = environ.get("RAW_URI") or environ["PATH_INFO"]
        authorized, auth = self._check_authorization(
            request.method, path, text, request.headers.get("Authorization", "")
        )
        self.calls.append(Call(request.method, path, json.loads(text) if text else None, authorized, auth))
        if not authorized:
            status, payload = 401, {"code": "SIGN_ERROR", "message": "签名错误"}
        else:
            status, payload = self.answers.get(
                (request.method, path.split("?")[0]), (404, {"code": "NOT_FOUND", "message": "no such stub"})
            )
        out = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        headers = self._signed_headers(out) if out else {}
        if self.mischief == "tampered" and out:
            out = out.replace("}", ', "extra": 1}', 1)
        return Response(out, status=status, headers=headers, content_type="application/json")(environ, start_response)


@pytest.fixture
def wechatpay(keys: Keys) -> Iterator[tuple[StubWeChatPay, WeChatPayClient]]:
    stub = StubWeChatPay(keys.merchant.public_key(), keys.platform, keys.stranger)
    server = make_server("127.0.0.1", 0, stub, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub, WeChatPayClient(f"http://127.0.0.1:{server.server_port}", timeout=5)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


JSAPI = "/v3/pay/transactions/jsapi"
REFUNDS = "/v3/refund/domestic/refunds"
PREPAY_ID = "wx201410272009395522657a690389285100"


# --- calls --------------------------------------------------------------------------------------


def test_prepay_sends_a_signed_jsapi_order_and_returns_the_prepay_id(wechatpay, account):
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    expires = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    prepay_id = client.prepay(
        account, out_trade_no="2505061200000001234567890", description="赣南脐橙 5斤装", total=3990,
        openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", time_expire=expires,
    )  # fmt: skip
    assert prepay_id == PREPAY_ID
    (call,) = stub.calls
    assert (call.method, call.path, call.authorized) == ("POST", JSAPI, True)
    body = call.body
    assert (body["appid"], body["mchid"], body["out_trade_no"]) == (APPID, MCHID, "2505061200000001234567890")
    assert body["amount"] == {"total": 3990, "currency": "CNY"}
    assert body["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert body["description"] == "赣南脐橙 5斤装"
    assert body["notify_url"] == account.notify_url
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", body["time_expire"])  # RFC 3339, seconds
    assert datetime.fromisoformat(body["time_expire"]) == expires


def test_prepay_refused_by_wechat_pay_is_a_conflict(wechatpay, account):
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 400, {"code": "PARAM_ERROR", "message": "time_expire 格式错误"})
    with pytest.raises(Conflict) as refused:
        client.prepay(
            account, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
        )
    assert refused.value.code == "prepay_refused"
    assert refused.value.details["wechat_code"] == "PARAM_ERROR"


def test_a_request_signed_with_another_key_is_refused_by_wechat_pay(wechatpay, keys):
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    impostor = _account(keys, merchant_key=keys.stranger)
    with pytest.raises(Conflict) as refused:
        client.prepay(
            impostor, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
        )
    assert refused.value.details["wechat_code"] == "SIGN_ERROR"
    assert [call.authorized for call in stub.calls] == [False]


def test_the_payment_parameters_are_signed_for_wx_request_payment(account, keys):
    params = request_payment_params(account, PREPAY_ID)
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert (params["appId"], params["package"], params["signType"]) == (APPID, f"prepay_id={PREPAY_ID}", "RSA")
    assert abs(int(params["timeStamp"]) - time.time()) < 60
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert _verify(keys.merchant.public_key(), message, params["paySign"])
    forged = message.replace(PREPAY_ID, PREPAY_ID[:-1] + "1")
    assert forged != message
    assert not _verify(keys.merchant.public_key(), forged, params["paySign"])
    assert request_payment_params(account, PREPAY_ID)["nonceStr"] != params["nonceStr"]


def test_query_signs_the_path_with_its_query_string(wechatpay, account):
    stub, client = wechatpay
    path = "/v3/pay/transactions/out-trade-no/N20250506001"
    stub.answer("GET", path, 200, {"out_trade_no": "N20250506001", "trade_state": "NOTPAY"})
    assert client.query(account, "N20250506001")["trade_state"] == "NOTPAY"
    (call,) = stub.calls
    assert (call.method, call.path, call.body, call.authorized) == ("GET", f"{path}?mchid={MCHID}", None, True)


def test_close_asks_wechat_pay_to_close_the_order(wechatpay, account):
    stub, client = wechatpay
    path = "/v3/pay/transactions/out-trade-no/N20250506001/close"
    stub.answer("POST", path, 204, None)
    assert client.close(account, "N20250506001") is True
    (call,) = stub.calls
    assert (call.method, call.path, call.body, call.authorized) == ("POST", path, {"mchid": MCHID}, True)


@pytest.mark.parametrize(("code", "raises"), [("ORDERPAID", False), ("ORDER_NOT_EXIST", True), ("SYSTEM_ERROR", True)])
def test_closing_an_order_that_was_paid_meanwhile_is_not_an_error(wechatpay, account, code, raises):
    stub, client = wechatpay
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N20250506001/close", 400, {"code": code, "message": "x"})
    if raises:
        with pytest.raises(UpstreamError) as failed:
            client.close(account, "N20250506001")
        assert failed.value.code == "payment_close_failed"
    else:
        client.close(account, "N20250506001")


@pytest.mark.parametrize("status", ["PROCESSING", "SUCCESS"])
def test_refund_asks_for_the_amount_with_a_stable_refund_number(wechatpay, account, status):
    stub, client = wechatpay
    stub.answer(
        "POST",
        REFUNDS,
        200,
        {"refund_id": "50000000382019052709732678859", "out_refund_no": "N20250506001R01", "status": status},
    )
    result = client.refund(
        account, out_trade_no="N20250506001", out_refund_no="N20250506001R01", amount=1000, total=3800,
        reason="商品破损",
    )  # fmt: skip
    assert (result.refund_id, result.status) == ("50000000382019052709732678859", status)
    (call,) = stub.calls
    assert (call.method, call.path, call.authorized) == ("POST", REFUNDS, True)
    assert call.body == {
        "out_trade_no": "N20250506001",
        "out_refund_no": "N20250506001R01",
        "reason": "商品破损",
        "notify_url": account.refund_notify_url,
        "amount": {"refund": 1000, "total": 3800, "currency": "CNY"},
    }


def test_a_refund_wechat_pay_refuses_is_an_upstream_error(wechatpay, account):
    stub, client = wechatpay
    stub.answer("POST", REFUNDS, 403, {"code": "NOT_ENOUGH", "message": "基本账户余额不足"})
    with pytest.raises(UpstreamError) as refused:
        client.refund(account, out_trade_no="N1", out_refund_no="N1R01", amount=1, total=1, reason="r")
    assert refused.value.code == "refund_refused" and refused.value.details["wechat_code"] == "NOT_ENOUGH"


@pytest.mark.parametrize(
    ("mischief", "reason"),
    [
        ("tampered", "bad_signature"),
        ("wrong_key", "bad_signature"),
        ("unknown_serial", "unknown_serial"),
        ("stale", "stale"),
        ("unsigned", "missing_headers"),
    ],
)
def test_an_answer_that_fails_verification_is_not_believed(wechatpay, account, mischief, reason):
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    stub.mischief = mischief
    with pytest.raises(UpstreamError) as unverified:
        client.prepay(
            account, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
        )
    assert unverified.value.code == "payment_unverified"
    assert unverified.value.details == {"reason": reason}
    assert [call.authorized for call in stub.calls] == [True]


def test_a_server_error_is_an_upstream_error(wechatpay, account):
    stub, client = wechatpay
    stub.answer("POST", REFUNDS, 500, {"code": "SYSTEM_ERROR", "message": "系统错误"})
    with pytest.raises(UpstreamError) as failed:
        client.refund(account, out_trade_no="N1", out_refund_no="N1R01", amount=1, total=1, reason="r")
    assert failed.value.code == "payment_upstream_error"


def test_an_unreachable_wechat_pay_is_an_upstream_error(account):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WeChatPayClient(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(UpstreamError) as unreachable:
        client.prepay(
            account, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
        )
    assert unreachable.value.code == "payment_unreachable"


# --- verifying signed messages and notifications ------------------------------------------------


def _notification(
    keys: Keys,
    *,
    timestamp: int | None = None,
    serial: str = PLATFORM_SERIAL,
    apiv3_key: bytes = APIV3_KEY,
    body: str | None = None,
) -> tuple[dict[str, str], str]:
    resource = {"out_trade_no": "N20250506001", "trade_state": "SUCCESS", "amount": {"total": 3800}}
    if body is None:
        body = json.dumps(
            {
                "id": "EV-2018022511223320873",
                "create_time": "2025-05-06T12:00:00+08:00",
                "resource_type": "encrypt-resource",
                "event_type": "TRANSACTION.SUCCESS",
                "summary": "支付成功",
                "resource": encrypt_resource(apiv3_key, resource, "transaction", "transaction"),
            },
            ensure_ascii=False,
        )
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce_str = nonce()
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Signature": rsa_sign(keys.platform, f"{ts}\n{nonce_str}\n{body}\n"),
        "Wechatpay-Serial": serial,
    }
    return headers, body


def test_a_genuine_notification_is_verified_and_decrypted(account, keys):
    headers, body = _notification(keys)
    notification = parse_notification(account, headers, body)
    assert (notification.event_type, notification.notification_id) == ("TRANSACTION.SUCCESS", "EV-2018022511223320873")
    assert notification.resource == {
        "out_trade_no": "N20250506001",
        "trade_state": "SUCCESS",
        "amount": {"total": 3800},
    }


def test_header_names_are_case_insensitive(account, keys):
    headers, body = _notification(keys)
    assert parse_notification(account, {k.lower(): v for k, v in headers.items()}, body).event_type


def _tampered(keys):
    headers, body = _notification(keys)
    return headers, body.replace('"summary": "支付成功"', '"summary": "支付成功!"')


def _unknown_serial(keys):
    return _notification(keys, serial="SOME-OTHER-PLATFORM-SERIAL")


def _stale(keys):
    return _notification(keys, timestamp=int(time.time()) - 301)


def _from_the_future(keys):
    return _notification(keys, timestamp=int(time.time()) + 301)


def _signtest(keys):
    headers, body = _notification(keys)
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, body


def _not_a_number(keys):
    headers, body = _notification(keys)
    return {**headers, "Wechatpay-Timestamp": "yesterday"}, body


def _garbled_signature(keys):
    headers, body = _notification(keys)
    return {**headers, "Wechatpay-Signature": "not base64 at all!"}, body


def _signed_by_a_stranger(keys):
    headers, body = _notification(keys)
    ts, nonce_str = headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"]
    return {**headers, "Wechatpay-Signature": rsa_sign(keys.stranger, f"{ts}\n{nonce_str}\n{body}\n")}, body


def _wrong_apiv3_key(keys):
    return _notification(keys, apiv3_key=b"ffffffffffffffffffffffffffffffff")


def _not_json(keys):
    return _notification(keys, body="<xml>not a v3 notification</xml>")


def _wrong_algorithm(keys):
    headers, body = _notification(keys)
    envelope = json.loads(body)
    envelope["resource"]["algorithm"] = "AEAD_AES_128_GCM"
    return _notification(keys, body=json.dumps(envelope))


def _missing(name: str):
    def build(keys):
        headers, body = _notification(keys)
        return {k: v for k, v in headers.items() if k != name}, body

    build.__name__ = f"_missing_{name}"
    return build


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (_tampered, "bad_signature"),
        (_signed_by_a_stranger, "bad_signature"),
        (_garbled_signature, "bad_signature"),
        (_unknown_serial, "unknown_serial"),
        (_stale, "stale"),
        (_from_the_future, "stale"),
        (_signtest, "signtest"),
        (_not_a_number, "bad_timestamp"),
        (_missing("Wechatpay-Timestamp"), "missing_headers"),
        (_missing("Wechatpay-Nonce"), "missing_headers"),
        (_missing("Wechatpay-Signature"), "missing_headers"),
        (_missing("Wechatpay-Serial"), "missing_headers"),
        (_wrong_apiv3_key, "bad_ciphertext"),
        (_wrong_algorithm, "bad_algorithm"),
        (_not_json, "bad_body"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_notification_that_must_not_be_acted_on_is_rejected_with_its_reason(account, keys, build, reason):
    headers, body = build(keys)
    with pytest.raises(NotificationRejected) as rejected:
        parse_notification(account, headers, body)
    assert rejected.value.reason == reason


@pytest.mark.parametrize(("age", "accepted"), [(0, True), (299, True), (-299, True), (301, False), (-301, False)])
def test_the_timestamp_may_be_at_most_five_minutes_off(account, keys, age, accepted):
    sent_at = 1_750_000_000
    headers, body = _notification(keys, timestamp=sent_at)
    if accepted:
        verify_signed_message(account, headers, body, now=sent_at + age)
    else:
        with pytest.raises(NotificationRejected) as rejected:
            verify_signed_message(account, headers, body, now=sent_at + age)
        assert rejected.value.reason == "stale"


def test_a_signtest_probe_is_refused_before_anything_else_is_checked(account):
    headers = {
        "Wechatpay-Timestamp": "1",  # stale too, but the probe is what is reported
        "Wechatpay-Nonce": "n",
        "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc",
        "Wechatpay-Serial": "WHATEVER",
    }
    with pytest.raises(NotificationRejected) as rejected:
        verify_signed_message(account, headers, "{}")
    assert rejected.value.reason == "signtest"
