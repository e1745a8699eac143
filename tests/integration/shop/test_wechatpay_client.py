"""The WeChat Pay API v3 client against a local stand-in for WeChat Pay, and the verification of
signed messages and notifications.

The stand-in (tests/wechatpay_stub.py) is a real HTTP server on 127.0.0.1 that does what WeChat
Pay does: it checks the `Authorization` signature of every request with the merchant's public key,
and signs every answer it can with the platform key the request names (or the platform
certificate), so the client's own verification of the answers runs too.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shop.core.errors import Conflict, UpstreamError
from shop.payments.errors import NotificationRejected
from shop.payments.wechatpay import (
    SIGNATURE_SCHEME,
    PlatformKey,
    WeChatPayAccount,
    WeChatPayClient,
    encrypt_resource,
    load_certificate,
    nonce,
    parse_notification,
    request_payment_params,
    rsa_sign,
    verify_signed_message,
)
from tests.wechatpay_stub import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    PUBLIC_KEY_ID,
    Certificate,
    Keys,
    StubWeChatPay,
    beijing_time,
    certificate_pem,
    rsa_key,
    serve,
    signed_headers,
)
from tests.wechatpay_stub import verify as _verify


def _certificate_key(keys: Keys, **validity) -> PlatformKey:
    return PlatformKey(PLATFORM_SERIAL, keys.platform.public_key(), "certificate", **validity)


def _public_key(keys: Keys) -> PlatformKey:
    return PlatformKey(PUBLIC_KEY_ID, keys.public.public_key(), "public_key")


def _account(keys: Keys, *, merchant_key=None, apiv3_key: bytes = APIV3_KEY, platform_keys=None) -> WeChatPayAccount:
    """A merchant in certificate mode unless told otherwise."""
    return WeChatPayAccount(
        appid=APPID,
        mchid=MCHID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key or keys.merchant,
        apiv3_key=apiv3_key,
        platform_keys=(_certificate_key(keys),) if platform_keys is None else tuple(platform_keys),
        notify_url="https://shop.example.com/api/v1/payments/wechatpay/m1/notify",
        refund_notify_url="https://shop.example.com/api/v1/payments/wechatpay/m1/refund-notify",
    )


@pytest.fixture
def account(keys: Keys) -> WeChatPayAccount:
    return _account(keys)


@pytest.fixture
def wechatpay(keys: Keys) -> Iterator[tuple[StubWeChatPay, WeChatPayClient]]:
    stub = StubWeChatPay(keys)
    with serve(stub) as base_url:
        yield stub, WeChatPayClient(base_url, timeout=5)


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


def test_an_unsigned_refusal_names_wechats_code_and_message_and_is_logged(wechatpay, keys, caplog):
    """WeChat signs no answer to a request whose signature it refused (401 SIGN_ERROR): that is
    WeChat's refusal, with its code, not an answer that failed verification."""
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    impostor = _account(keys, merchant_key=keys.stranger)
    with caplog.at_level(logging.WARNING, logger="shop.payments.wechatpay"), pytest.raises(UpstreamError) as refused:
        client.prepay(
            impostor, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
        )
    assert refused.value.code == "payment_rejected"
    assert refused.value.details == {"wechat_code": "SIGN_ERROR", "message": "签名错误", "status": 401}
    assert "SIGN_ERROR" in refused.value.message
    assert [call.authorized for call in stub.calls] == [False]
    (record,) = [r for r in caplog.records if r.name == "shop.payments.wechatpay"]
    assert "SIGN_ERROR" in record.getMessage() and "签名错误" in record.getMessage()
    assert "401" in record.getMessage() and "unsigned" in record.getMessage()


@pytest.mark.parametrize("status", [400, 403, 404])
def test_an_unsigned_client_error_is_never_read_as_wechats_business_answer(wechatpay, account, status):
    """An unsigned 4xx cannot be trusted: not even ORDERPAID counts as "paid" when it is unsigned."""
    stub, client = wechatpay
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N1/close", status, {"code": "ORDERPAID", "message": "x"})
    stub.mischief = "unsigned"
    with pytest.raises(UpstreamError) as refused:
        client.close(account, "N1")
    assert refused.value.code == "payment_rejected"
    assert refused.value.details["wechat_code"] == "ORDERPAID"


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


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("ORDERPAID", False), ("ORDER_CLOSED", True), ("ORDER_NOT_EXIST", "raises"), ("SYSTEM_ERROR", "raises")],
)
def test_closing_an_order_that_was_paid_or_closed_meanwhile_is_not_an_error(wechatpay, account, code, outcome):
    """ORDERPAID: not closed, it was paid; ORDER_CLOSED (closed by us before, or by its
    time_expire): counts as closed."""
    stub, client = wechatpay
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N20250506001/close", 400, {"code": code, "message": "x"})
    if outcome == "raises":
        with pytest.raises(UpstreamError) as failed:
            client.close(account, "N20250506001")
        assert failed.value.code == "payment_close_failed"
    else:
        assert client.close(account, "N20250506001") is outcome


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


def _other_signature_type(keys):
    headers, body = _notification(keys)
    return {**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, body


def test_a_notification_signed_with_another_scheme_is_refused(account, keys):
    headers, body = _other_signature_type(keys)
    with pytest.raises(NotificationRejected) as rejected:
        parse_notification(account, headers, body)
    assert rejected.value.reason == "bad_signature_type"
    headers["Wechatpay-Signature-Type"] = SIGNATURE_SCHEME
    assert parse_notification(account, headers, body).event_type == "TRANSACTION.SUCCESS"


# --- (a) requests name the platform key they want answers signed with ---------------------------


def _prepay(client, account):
    return client.prepay(
        account, out_trade_no="N1234567", description="x", total=1, openid="o", time_expire=datetime.now(UTC)
    )


def test_a_merchant_on_the_public_key_names_it_and_gets_answers_it_can_verify(wechatpay, keys):
    """WeChat signs with the public key only when the request names it in Wechatpay-Serial;
    unnamed, the answer comes signed by the certificate, which this merchant does not keep."""
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    account = _account(keys, platform_keys=[_public_key(keys)])
    assert _prepay(client, account) == PREPAY_ID
    (call,) = stub.calls
    assert call.wechatpay_serial == PUBLIC_KEY_ID


def test_every_call_names_the_preferred_platform_key(wechatpay, keys):
    stub, client = wechatpay
    stub.answer("GET", "/v3/pay/transactions/out-trade-no/N1", 200, {"trade_state": "NOTPAY"})
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N1/close", 204, None)
    stub.answer("POST", REFUNDS, 200, {"refund_id": "5000", "status": "PROCESSING"})
    account = _account(keys, platform_keys=[_certificate_key(keys), _public_key(keys)])
    client.query(account, "N1")
    client.close(account, "N1")
    client.refund(account, out_trade_no="N1", out_refund_no="N1R01", amount=1, total=1, reason="r")
    assert [call.wechatpay_serial for call in stub.calls] == [PUBLIC_KEY_ID] * 3
    assert all(call.authorized for call in stub.calls)


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _cert(keys, serial, *, start_days, end_days):
    return PlatformKey(
        serial,
        keys.platform.public_key(),
        "certificate",
        NOW + timedelta(days=start_days),
        NOW + timedelta(days=end_days),
    )


@pytest.mark.parametrize(
    ("held", "named"),
    [
        (["public", "old"], PUBLIC_KEY_ID),  # the public key wins over any certificate
        (["old", "new"], "NEW"),  # the certificate that stays valid longest
        (["old", "future"], "OLD"),  # a certificate not valid yet is not named
        (["expired"], None),  # nothing valid: no header
        (["unknown", "old"], "OLD"),  # unknown validity counts as the oldest
        (["unknown"], "UNKNOWN"),
        ([], None),
    ],
)
def test_the_serial_requests_name_is_the_public_key_else_the_longest_valid_certificate(keys, held, named):
    catalogue = {
        "public": _public_key(keys),
        "old": _cert(keys, "OLD", start_days=-1800, end_days=3),
        "new": _cert(keys, "NEW", start_days=-2, end_days=1800),
        "future": _cert(keys, "FUTURE", start_days=1, end_days=1800),
        "expired": _cert(keys, "EXPIRED", start_days=-1800, end_days=-1),
        "unknown": PlatformKey("UNKNOWN", keys.platform.public_key(), "certificate"),
    }
    account = _account(keys, platform_keys=[catalogue[name] for name in held])
    assert account.request_serial(NOW) == named


# --- (b) several platform keys: the move to the public key, certificate replacement --------------


@pytest.mark.parametrize("signer", [PLATFORM_SERIAL, PUBLIC_KEY_ID])
def test_during_the_move_to_the_public_key_answers_signed_by_either_key_are_believed(wechatpay, keys, signer):
    """During WeChat's gradual rollout an answer may come signed by the certificate although the
    request named the public key (and the other way round)."""
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    stub.sign_with = signer
    account = _account(keys, platform_keys=[_certificate_key(keys), _public_key(keys)])
    assert _prepay(client, account) == PREPAY_ID


@pytest.mark.parametrize("signer", ["certificate", "public_key"])
def test_during_the_move_notifications_signed_by_either_key_are_accepted(keys, signer):
    account = _account(keys, platform_keys=[_certificate_key(keys), _public_key(keys)])
    headers, body = _notification(keys)
    if signer == "public_key":
        headers = signed_headers(keys.public, PUBLIC_KEY_ID, body)
    assert parse_notification(account, headers, body).resource["out_trade_no"] == "N20250506001"


def test_while_a_certificate_is_replaced_notifications_signed_by_the_old_or_the_new_are_accepted(keys):
    new_key = rsa_key()
    now = datetime.now(UTC)
    old = PlatformKey(
        "0AB1", keys.platform.public_key(), "certificate", now - timedelta(days=1800), now + timedelta(days=2)
    )
    new = PlatformKey("5CD2", new_key.public_key(), "certificate", now - timedelta(days=3), now + timedelta(days=1800))
    account = _account(keys, platform_keys=[old, new])
    _, body = _notification(keys)
    for key, serial in ((keys.platform, "0AB1"), (new_key, "5CD2")):
        assert parse_notification(account, signed_headers(key, serial, body), body).event_type
    with pytest.raises(NotificationRejected) as rejected:  # the serial decides which key checks it
        parse_notification(account, signed_headers(new_key, "0AB1", body), body)
    assert rejected.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [(timedelta(days=-1800), timedelta(seconds=-1)), (timedelta(hours=1), timedelta(days=1800))],
    ids=["expired", "not_yet_valid"],
)
def test_a_key_outside_its_validity_is_refused(keys, valid_from, valid_until):
    now = datetime.now(UTC)
    account = _account(
        keys, platform_keys=[_certificate_key(keys, valid_from=now + valid_from, valid_until=now + valid_until)]
    )
    headers, body = _notification(keys)
    with pytest.raises(NotificationRejected) as rejected:
        parse_notification(account, headers, body)
    assert rejected.value.reason == "key_not_valid"


# --- (c) certificates: serials without regard to case, PEMs, /v3/certificates --------------------


def test_serials_are_compared_without_regard_to_case(keys):
    account = _account(
        keys, platform_keys=[PlatformKey(PLATFORM_SERIAL.lower(), keys.platform.public_key(), "certificate")]
    )
    headers, body = _notification(keys)  # serial in upper case, as WeChat writes it
    assert parse_notification(account, headers, body).event_type
    lowered = {**headers, "Wechatpay-Serial": PLATFORM_SERIAL.lower()}
    assert parse_notification(_account(keys), lowered, body).event_type


def test_a_platform_certificate_pem_gives_its_key_serial_and_validity(keys):
    start, end = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2029, 1, 2, 3, 4, 5, tzinfo=UTC)
    key = load_certificate(certificate_pem(keys.platform, "0ABC12", not_before=start, not_after=end))
    assert (key.serial_no, key.source, key.valid_from, key.valid_until) == ("0ABC12", "certificate", start, end)
    assert key.public_key.public_numbers() == keys.platform.public_key().public_numbers()
    with pytest.raises(ValueError):
        load_certificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def _listing(keys, new_key, *, apiv3_key=APIV3_KEY, new_serial="5CD2") -> list[Certificate]:
    """The list while a certificate is replaced: the old one expiring in 5 days, the new one in use."""
    return [
        Certificate(PLATFORM_SERIAL, certificate_pem(keys.platform, PLATFORM_SERIAL),
                    beijing_time(-1800), beijing_time(5), apiv3_key),
        Certificate(new_serial, certificate_pem(new_key, "5CD2"), beijing_time(-1), beijing_time(1800), apiv3_key),
    ]  # fmt: skip


def test_platform_certificates_are_downloaded_decrypted_and_dated(wechatpay, account, keys):
    stub, client = wechatpay
    new_key = rsa_key()
    stub.certificates = _listing(keys, new_key)
    old, new = client.fetch_certificates(account)
    assert (old.serial_no, old.source) == (PLATFORM_SERIAL, "certificate")
    listed = stub.certificates[1]
    assert (new.valid_from, new.valid_until) == (
        datetime.fromisoformat(listed.effective_time),
        datetime.fromisoformat(listed.expire_time),
    )  # WeChat's dates, not the certificate's (WeChat moves an old one's expiry forward)
    assert new.public_key.public_numbers() == new_key.public_key().public_numbers()
    (call,) = stub.calls
    assert (call.method, call.path, call.authorized, call.wechatpay_serial) == (
        "GET", "/v3/certificates", True, PLATFORM_SERIAL,
    )  # fmt: skip


def test_a_first_download_is_verified_with_the_certificates_it_brings(wechatpay, keys):
    stub, client = wechatpay
    stub.certificates = _listing(keys, rsa_key())
    fetched = client.fetch_certificates(_account(keys, platform_keys=[]))
    assert [key.serial_no for key in fetched] == [PLATFORM_SERIAL, "5CD2"]
    assert stub.calls[0].wechatpay_serial is None


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        ("wrong_apiv3_key", "certificates_invalid"),
        ("serial_mismatch", "certificates_invalid"),
        ("signed_by_a_stranger", "payment_unverified"),
        ("unsigned", "payment_unverified"),
    ],
)
def test_a_certificate_list_that_does_not_check_out_is_refused(wechatpay, keys, spoil, code):
    stub, client = wechatpay
    stub.certificates = _listing(
        keys,
        rsa_key(),
        apiv3_key=b"f" * 32 if spoil == "wrong_apiv3_key" else APIV3_KEY,
        new_serial="77EE" if spoil == "serial_mismatch" else "5CD2",
    )
    stub.mischief = {"signed_by_a_stranger": "wrong_key", "unsigned": "unsigned"}.get(spoil, "")
    with pytest.raises(UpstreamError) as refused:
        client.fetch_certificates(_account(keys, platform_keys=[]))
    assert refused.value.code == code


def test_a_merchant_on_the_public_key_only_is_told_wechats_refusal_of_the_download(wechatpay, keys):
    stub, client = wechatpay
    stub.answer("GET", "/v3/certificates", 404, {"code": "RESOURCE_NOT_EXISTS", "message": "证书不存在"})
    with pytest.raises(UpstreamError) as refused:
        client.fetch_certificates(_account(keys, platform_keys=[_public_key(keys)]))
    assert (refused.value.code, refused.value.details) == (
        "certificates_refused",
        {"wechat_code": "RESOURCE_NOT_EXISTS"},
    )


# --- (d) signed answers are verified whatever their status; 204s included ----------------------


@pytest.mark.parametrize(("mischief", "reason"), [("wrong_key", "bad_signature"), ("unsigned", "missing_headers")])
def test_a_204_is_believed_only_when_its_signature_over_the_empty_body_checks_out(wechatpay, account, mischief, reason):
    stub, client = wechatpay
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N1/close", 204, None)
    stub.mischief = mischief
    with pytest.raises(UpstreamError) as unverified:
        client.close(account, "N1")
    assert (unverified.value.code, unverified.value.details) == ("payment_unverified", {"reason": reason})


def test_a_signed_refusal_that_fails_verification_is_not_believed(wechatpay, account):
    stub, client = wechatpay
    stub.answer("POST", "/v3/pay/transactions/out-trade-no/N1/close", 400, {"code": "ORDERPAID", "message": "x"})
    stub.mischief = "wrong_key"
    with pytest.raises(UpstreamError) as unverified:
        client.close(account, "N1")
    assert unverified.value.code == "payment_unverified"


# --- (f) the Wechatpay-Signature-Type header -----------------------------------------------------


def test_answers_carry_the_signature_type_and_another_type_is_refused(wechatpay, account, keys):
    stub, client = wechatpay
    stub.answer("POST", JSAPI, 200, {"prepay_id": PREPAY_ID})
    assert _prepay(client, account) == PREPAY_ID
    body = json.dumps({"prepay_id": PREPAY_ID})
    headers = signed_headers(keys.platform, PLATFORM_SERIAL, body)
    assert headers["Wechatpay-Signature-Type"] == SIGNATURE_SCHEME
    verify_signed_message(account, headers, body)
    with pytest.raises(NotificationRejected) as rejected:
        verify_signed_message(account, {**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, body)
    assert rejected.value.reason == "bad_signature_type"
