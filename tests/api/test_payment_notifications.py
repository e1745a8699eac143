"""The payment notification contract: only a genuine, matching notification marks an order paid,
and only once; anything else is refused with {"code": "FAIL", "message": ...}."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from shop.core.db import db
from shop.core.events import OrderLineInfo, OrderPaid, bus
from shop.orders.models import Order, Payment
from shop.payments.providers import PROVIDER_EXTENSION, WeChatPayProvider
from shop.payments.wechatpay import SIGNATURE_SCHEME, WeChatPayClient, encrypt_bytes, encrypt_resource
from tests.factories import make_merchant, make_product, member_headers, order_body, place


@pytest.fixture
def placed(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, skus=[{"specs": {}, "price": 2500, "stock": 10}])
    headers = member_headers(client, merchant.code)
    response = place(client, headers, order_body(product.skus[0].id, 2))
    assert response.status_code == 201, response.json
    order = db.session.get(Order, response.json["id"])
    return merchant, order


def _provider(app):
    return app.extensions["groupshop.payments"]


def _notify(client, merchant, headers, body):
    return client.post(f"/api/v1/payments/wechatpay/{merchant.code}/notify", data=body, headers=headers)


def _genuine(app, merchant, order, **overrides):
    member_openid = "o-payer"
    fields = {"out_trade_no": order.order_no, "total": order.payable_total, "openid": member_openid}
    fields.update(overrides)
    return _provider(app).payment_notification(merchant, **fields)


def _status(order_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Order, order_id).status


def test_a_genuine_notification_marks_the_order_paid_and_answers_204(app, client, placed):
    merchant, order = placed
    headers, body = _genuine(app, merchant, order, transaction_id="4200000001")
    response = _notify(client, merchant, headers, body)
    assert response.status_code == 204
    db.session.expire_all()
    paid = db.session.get(Order, order.id)
    assert (paid.status, paid.paid_total, paid.transaction_id) == ("paid", order.payable_total, "4200000001")
    assert order.payable_total == 5000 + 800  # goods, plus shipping under the free-shipping threshold
    assert paid.paid_at is not None


def test_the_order_paid_event_carries_the_per_line_amounts(app, client, placed):
    merchant, order = placed
    seen = []
    handler = lambda event: seen.append(event)  # noqa: E731
    bus.subscribe(OrderPaid, handler)
    try:
        _notify(client, merchant, *_genuine(app, merchant, order))
    finally:
        bus.unsubscribe(OrderPaid, handler)
    assert len(seen) == 1
    event = seen[0]
    assert isinstance(event, OrderPaid)
    assert (event.merchant_id, event.order_id, event.member_id, event.kind, event.paid_total) == (
        merchant.id,
        order.id,
        order.member_id,
        "goods",
        order.payable_total,
    )
    line = order.lines[0]
    assert event.lines == (
        OrderLineInfo(line_id=line.id, sku_id=line.sku_id, product_id=line.product_id, quantity=2, paid_amount=5000),
    )


def test_a_failing_subscriber_rolls_the_payment_back_and_the_provider_retries(app, client, placed):
    merchant, order = placed

    def broken(event):
        raise RuntimeError("subscriber failed")

    bus.subscribe(OrderPaid, broken)
    try:
        headers, body = _genuine(app, merchant, order, transaction_id="4200000002")
        failed = _notify(client, merchant, headers, body)
    finally:
        bus.unsubscribe(OrderPaid, broken)
    assert failed.status_code == 500 and failed.json["code"] == "FAIL"
    assert _status(order.id) == "pending_payment"
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 0
    assert _notify(client, merchant, headers, body).status_code == 204  # the retry goes through
    assert _status(order.id) == "paid"


def _tamper_body(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return headers, body.replace('"event_type"', '"event_type" ', 1)


def _unknown_serial(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return _provider(app).sign(body, serial="SOME-OTHER-SERIAL"), body


def _stale(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return _provider(app).sign(body, timestamp=int(time.time()) - 301), body


def _signtest(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, body


def _wrong_key(app, merchant, order):
    from cryptography.hazmat.primitives.asymmetric import rsa

    headers, body = _genuine(app, merchant, order)
    return _provider(app).sign(body, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), body


def _wrong_amount(app, merchant, order):
    return _genuine(app, merchant, order, total=order.payable_total - 1)


def _wrong_appid(app, merchant, order):
    return _genuine(app, merchant, order, appid="wx0000000000000000")


def _wrong_mchid(app, merchant, order):
    return _genuine(app, merchant, order, mchid="1999999999")


def _unknown_order(app, merchant, order):
    return _genuine(app, merchant, order, out_trade_no="26010100000000000000")


def _bad_ciphertext(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    envelope = json.loads(body)
    envelope["resource"] = encrypt_resource(b"x" * 32, {"out_trade_no": order.order_no}, "transaction", "transaction")
    body = json.dumps(envelope)
    return _provider(app).sign(body), body


def _missing_headers(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return {"Content-Type": "application/json"}, body


def _other_signature_type(app, merchant, order):
    headers, body = _genuine(app, merchant, order)
    return {**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, body


@pytest.mark.parametrize(
    ("forge", "status"),
    [
        (_tamper_body, 400),
        (_unknown_serial, 400),
        (_stale, 400),
        (_signtest, 400),
        (_wrong_key, 400),
        (_wrong_amount, 400),
        (_wrong_appid, 400),
        (_wrong_mchid, 400),
        (_unknown_order, 404),
        (_bad_ciphertext, 400),
        (_missing_headers, 400),
        (_other_signature_type, 400),
    ],
)
def test_a_notification_that_is_not_genuine_or_does_not_match_changes_nothing(app, client, placed, forge, status):
    merchant, order = placed
    headers, body = forge(app, merchant, order)
    response = _notify(client, merchant, headers, body)
    assert response.status_code == status
    assert response.json["code"] == "FAIL" and response.json["message"]
    assert _status(order.id) == "pending_payment"
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 0


def test_a_notification_for_another_merchants_account_is_refused(app, client, placed):
    merchant, order = placed
    other = make_merchant()
    headers, body = _genuine(app, merchant, order)
    response = _notify(client, other, headers, body)  # right signature, wrong merchant's URL
    assert response.status_code in (400, 404)
    assert _status(order.id) == "pending_payment"


def test_the_same_notification_fifteen_times_changes_state_once(app, client, placed):
    merchant, order = placed
    headers, body = _genuine(app, merchant, order, transaction_id="4200000015")
    seen = []
    handler = lambda event: seen.append(event.order_id)  # noqa: E731
    bus.subscribe(OrderPaid, handler)
    try:
        statuses = [_notify(client, merchant, headers, body).status_code for _ in range(15)]
    finally:
        bus.unsubscribe(OrderPaid, handler)
    assert statuses == [204] * 15
    assert seen == [order.id]
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 1
    assert _status(order.id) == "paid"


def test_the_dev_pay_endpoint_goes_through_the_same_verification(app, client, placed):
    merchant, order = placed
    response = client.post(f"/api/v1/payments/fake/orders/{order.order_no}/pay")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "paid"
    again = client.post(f"/api/v1/payments/fake/orders/{order.order_no}/pay")
    assert again.json["status"] == "paid"  # a second payment of a paid order is refunded, not applied
    db.session.expire_all()
    payments = db.session.execute(select(Payment.outcome).order_by(Payment.id)).scalars().all()
    assert payments == ["applied", "late"]


def test_the_dev_pay_endpoint_is_refused_outside_development_and_test(app, client, placed):
    merchant, order = placed
    settings = app.config["SETTINGS"]
    settings.env = "production"
    try:
        response = client.post(f"/api/v1/payments/fake/orders/{order.order_no}/pay")
    finally:
        settings.env = "test"
    assert response.status_code == 404
    assert _status(order.id) == "pending_payment"


def test_paying_starts_with_request_payment_params_that_expire_with_the_order(app, client, placed):
    merchant, order = placed
    headers = member_headers(client, merchant.code)
    response = client.post(f"/api/v1/orders/{order.id}/pay", headers=headers)
    assert response.status_code == 200, response.json
    params = response.json
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = _provider(app).account(merchant).merchant_private_key.public_key()
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    key.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_the_fake_signs_its_notifications_like_wechat_pay_with_the_signature_type(app, placed):
    merchant, order = placed
    headers, _ = _genuine(app, merchant, order)
    assert headers["Wechatpay-Signature-Type"] == SIGNATURE_SCHEME == "WECHATPAY2-SHA256-RSA2048"


@pytest.mark.parametrize("kind", ["notify", "refund-notify"])
def test_a_notification_for_a_merchant_without_a_payment_account_is_refused_not_a_server_error(app, ctx, client, kind):
    """With the real provider, a merchant that never stored its WeChat Pay account has nothing to
    verify a notification with: a 4xx {"code": "FAIL"}, not a 500."""
    merchant = make_merchant()
    saved = app.extensions[PROVIDER_EXTENSION]
    app.extensions[PROVIDER_EXTENSION] = WeChatPayProvider(WeChatPayClient("http://127.0.0.1:9"), "https://x.example")
    try:
        headers, body = saved.payment_notification(merchant, out_trade_no="26010100000000000001", total=1, openid="o")
        response = client.post(f"/api/v1/payments/wechatpay/{merchant.code}/{kind}", data=body, headers=headers)
    finally:
        app.extensions[PROVIDER_EXTENSION] = saved
    assert response.status_code == 400
    assert response.json["code"] == "FAIL" and response.json["message"]


# --- genuine (signed) notifications whose content has a shape we never store -----------------


def _nested(depth: int) -> str:
    """A JSON text nested deeper than Python's json module follows (sent as a raw string)."""
    return "[" * depth + "]" * depth


def _signed_with(
    app, merchant, order, *, event_type="TRANSACTION.SUCCESS", change=None, resource=None, plaintext=None, body=None
):
    """A notification signed (and its resource encrypted) with the fake's keys: the genuine one
    changed by `change`, or with `resource` (or the raw `plaintext`) as its resource, or
    `event_type` as its event, or `body` as the whole body."""
    _, genuine_body = _genuine(app, merchant, order)
    provider = _provider(app)
    if body is not None:
        return provider.sign(body), body
    payload = {
        "appid": merchant.wx_appid,
        "mchid": "1900000109",
        "out_trade_no": order.order_no,
        "transaction_id": "4200000000000000000000000001",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-30T10:00:00+08:00",
        "payer": {"openid": "o-payer"},
        "amount": {"total": order.payable_total},
    }
    if change:
        change(payload)
    envelope = json.loads(genuine_body)
    envelope["event_type"] = event_type
    key = b"groupshop-fake-apiv3-key-32bytes"
    if plaintext is None:  # ASCII JSON: a lone surrogate travels as the escape "\ud800", as WeChat could send it
        plaintext = json.dumps(payload if resource is None else resource)
    envelope["resource"] = {**encrypt_bytes(key, plaintext.encode(), "transaction"), "original_type": "transaction"}
    body = json.dumps(envelope)
    return provider.sign(body), body


@pytest.mark.parametrize(
    "shape",
    [
        {"change": lambda r: r.update(transaction_id="4" * 65)},
        {"change": lambda r: r.update(transaction_id={"a": 1})},
        {"change": lambda r: r.update(payer={"openid": "o" * 65})},
        {"change": lambda r: r.update(success_time="2026" * 11)},
        {"change": lambda r: r.update(amount=2500)},
        {"change": lambda r: r["amount"].update(total=float(r["amount"]["total"]))},
        {"change": lambda r: r["amount"].update(total=True)},
        {"change": lambda r: r.update(out_trade_no={"no": 1})},
        {"change": lambda r: r.update(out_trade_no=r["out_trade_no"] + "\x00")},
        {"change": lambda r: r.update(transaction_id="4200\x00")},
        {"change": lambda r: r.update(payer={"openid": "o\ud800"})},
        {"change": lambda r: r.update(success_time="2026\x00")},
        {"plaintext": _nested(100_000)},
        {"plaintext": '{"a": ' + _nested(100_000) + "}"},
        {"body": '{"event_type": "TRANSACTION.SUCCESS", "resource": ' + _nested(100_000) + "}"},
        {"resource": ["not", "an", "object"]},
        {"resource": "a string"},
        {"event_type": 7},
    ],
)
def test_a_signed_notification_with_content_of_the_wrong_shape_is_refused_and_changes_nothing(
    app, client, placed, shape
):
    merchant, order = placed
    headers, body = _signed_with(app, merchant, order, **shape)
    response = _notify(client, merchant, headers, body)
    assert response.status_code == 400, response.json
    assert response.json["code"] == "FAIL"
    assert _status(order.id) == "pending_payment"
    assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 0


def test_the_shape_checks_accept_a_genuine_notification(app, client, placed):
    merchant, order = placed
    headers, body = _signed_with(app, merchant, order)
    assert _notify(client, merchant, headers, body).status_code == 204
    assert _status(order.id) == "paid"
