"""Sweeps find due work oldest first, by each merchant's own rules, and one item that keeps
failing never holds up the others."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from shop.core import runner
from shop.core.db import db, transaction, utcnow
from shop.core.errors import UpstreamError
from shop.identity import settings
from shop.orders import jobs as order_jobs
from shop.orders.models import Order, Refund
from shop.payments import jobs as payment_jobs
from shop.payments import reconcile
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    member_headers,
    order_body,
    paid_order,
    place,
    staff_headers,
)


def _paid_order(client, merchant, sku_id, quantity=1):
    headers = member_headers(client, merchant.code)
    return paid_order(client, headers, order_body(sku_id, quantity)), headers


def _backdate(order_id: int, **fields) -> None:
    with transaction():
        db.session.execute(update(Order).where(Order.id == order_id).values(**fields))


def test_one_order_that_cannot_be_expired_does_not_stop_the_others(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    headers = member_headers(client, merchant.code)
    first = place(client, headers, order_body(sku_id)).json
    second = place(client, headers, order_body(sku_id)).json
    _backdate(first["id"], expires_at=utcnow() - timedelta(hours=2))
    _backdate(second["id"], expires_at=utcnow() - timedelta(hours=1))
    real = payment_jobs.expire_order

    def flaky(order_id: int) -> str:
        if order_id == first["id"]:
            raise RuntimeError("this one is broken")
        return real(order_id)

    monkeypatch.setattr(payment_jobs, "expire_order", flaky)
    assert payment_jobs.sweep_expired_orders() == 1
    db.session.expire_all()
    assert (db.session.get(Order, first["id"]).status, db.session.get(Order, second["id"]).status) == (
        "pending_payment",
        "cancelled",
    )


def test_orders_the_provider_must_be_asked_about_never_hold_up_those_whose_payment_never_started(
    app, ctx, client, monkeypatch
):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    headers = member_headers(client, merchant.code)
    asked = [place(client, headers, order_body(sku_id)).json for _ in range(3)]
    for order in asked:
        assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
        _backdate(order["id"], expires_at=utcnow() - timedelta(minutes=5))  # the oldest, within the grace
    never_paid = place(client, headers, order_body(sku_id)).json
    _backdate(never_paid["id"], expires_at=utcnow() - timedelta(minutes=1))
    queried: list[str] = []

    def down(merchant, out_trade_no):
        queried.append(out_trade_no)
        raise UpstreamError("down", code="payment_unreachable")

    monkeypatch.setattr(app.extensions["groupshop.payments"], "query", down)
    monkeypatch.setattr(runner, "SWEEP_BATCH", 2)  # fewer than the orders to ask about
    assert payment_jobs.sweep_expired_orders() == 3  # the one that never paid, two asked about (no answer)
    db.session.expire_all()
    assert db.session.get(Order, never_paid["id"]).status == "cancelled"  # its stock is back at once
    assert all(db.session.get(Order, order["id"]).status == "pending_payment" for order in asked)
    assert len(queried) == 2


def test_an_unreachable_provider_keeps_an_order_open_for_a_while_then_it_expires(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    provider = app.extensions["groupshop.payments"]

    def down(merchant, out_trade_no):
        raise UpstreamError("down", code="payment_unreachable")

    monkeypatch.setattr(provider, "query", down)
    _backdate(order["id"], expires_at=utcnow() - timedelta(minutes=5))
    assert payment_jobs.expire_order(order["id"]) == "pending_payment"
    _backdate(order["id"], expires_at=utcnow() - reconcile.UNKNOWN_PAYMENT_GRACE - timedelta(minutes=1))
    assert payment_jobs.expire_order(order["id"]) == "cancelled"


def test_auto_confirm_uses_each_merchants_days_and_skips_orders_not_yet_due(app, ctx, client):
    patient, quick = make_merchant(), make_merchant()
    with transaction():
        settings.update_settings(patient.id, auto_confirm_days=60)
        settings.update_settings(quick.id, auto_confirm_days=1)
    ids = {}
    for merchant in (patient, quick):
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
        order, _ = _paid_order(client, merchant, sku_id)
        client.post(
            f"/api/v1/merchant/orders/{order['id']}/ship",
            json={"carrier": "SF", "tracking_no": "SF00000001"},
            headers=staff_headers(client, merchant.code),
        )
        _backdate(order["id"], shipped_at=utcnow() - timedelta(days=2))
        ids[merchant.code] = order["id"]
    runner.SWEEP_BATCH, saved = 1, runner.SWEEP_BATCH  # the not-yet-due order must not fill the batch
    try:
        assert order_jobs.sweep_auto_confirm() == 1
    finally:
        runner.SWEEP_BATCH = saved
    db.session.expire_all()
    assert db.session.get(Order, ids[quick.code]).status == "received"
    assert db.session.get(Order, ids[patient.code]).status == "shipped"


def _waiting_at_a_pickup_point(client):
    """A paid pickup order whose goods are at the point: (order, member headers, staff headers)."""
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    staff = staff_headers(client, merchant.code)
    point = client.post(
        "/api/v1/merchant/pickup-points",
        json={"name": "团长点", "address": "1 号", "contact_name": "李", "contact_phone": "13900000000"},
        headers=staff,
    ).json
    headers = member_headers(client, merchant.code)
    order = place(
        client,
        headers,
        {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "pickup", "pickup_point_id": point["id"]},
    ).json
    fake_pay(client, order["order_no"])
    client.post(f"/api/v1/merchant/orders/{order['id']}/ready-for-pickup", headers=staff)
    return order, headers, staff


def test_an_uncollected_pickup_order_is_confirmed_after_the_days(app, ctx, client):
    order, headers, staff = _waiting_at_a_pickup_point(client)
    _backdate(order["id"], ready_at=utcnow() - timedelta(days=8))
    assert order_jobs.sweep_auto_confirm() == 1
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).status == "received"


def test_a_pickup_code_does_not_hand_over_goods_while_a_refund_is_pending(app, ctx, client):
    order, headers, staff = _waiting_at_a_pickup_point(client)
    code = client.get(f"/api/v1/orders/{order['id']}", headers=headers).json["pickup_code"]
    client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "不要了"}, headers=headers)
    refused = client.post(f"/api/v1/merchant/orders/{order['id']}/pickup", json={"code": code}, headers=staff)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "refund_in_progress"


def test_a_refund_the_provider_refuses_is_recorded_and_does_not_block_the_others(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1000, "stock": 10}]).skus[0].id
    staff = staff_headers(client, merchant.code)
    refund_ids = []
    for _ in range(2):
        order, headers = _paid_order(client, merchant, sku_id)
        refund = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "r"}, headers=headers).json
        with transaction():  # approved long ago, its job lost
            db.session.execute(
                update(Refund)
                .where(Refund.id == refund["id"])
                .values(status="processing", created_at=utcnow() - timedelta(hours=1))
            )
        refund_ids.append(refund["id"])
    provider = app.extensions["groupshop.payments"]
    real = provider.refund

    def refuse_first(account, **kwargs):
        if (
            kwargs["out_refund_no"].endswith("R01")
            and kwargs["amount"]
            and refuse_first.first == kwargs["out_refund_no"]
        ):
            raise UpstreamError("WeChat Pay refused the refund: NOT_ENOUGH 余额不足", code="refund_refused")
        return real(account, **kwargs)

    db.session.expire_all()
    refuse_first.first = db.session.get(Refund, refund_ids[0]).out_refund_no
    monkeypatch.setattr(provider, "refund", refuse_first)
    assert payment_jobs.sweep_refunds() == 2
    db.session.expire_all()
    first, second = (db.session.get(Refund, rid) for rid in refund_ids)
    assert (first.status, first.attempts) == ("processing", 1)
    assert "NOT_ENOUGH" in first.last_error
    assert second.attempts == 1 and second.last_error == ""
    assert staff  # staff see last_error on the refund list
    listed = client.get("/api/v1/merchant/refunds?status=processing", headers=staff).json["items"]
    assert any("NOT_ENOUGH" in item["last_error"] for item in listed)


def test_closing_an_order_the_provider_says_was_paid_refunds_that_payment(app, ctx, client):
    from sqlalchemy import select

    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)
    app.extensions["groupshop.payments"].payment_notification(  # paid just before it closed; notice lost
        merchant, out_trade_no=order["order_no"], total=order["payable_total"], openid="o-payer"
    )
    assert payment_jobs.close_payment(order["id"]) == "late"
    refund = db.session.execute(select(Refund).where(Refund.order_id == order["id"])).scalar_one()
    assert (refund.kind, refund.amount) == ("late_payment", order["payable_total"])
    assert db.session.get(Order, order["id"]).provider_closed_at is not None
    assert payment_jobs.close_payment(order["id"]) == "nothing_to_do"  # settled: a repeat asks nothing


def _cancelled_with_prepay(app, client, merchant, sku_id):
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers).status_code == 200
    return order


def test_a_close_job_lost_is_done_by_the_close_sweep_once(app, ctx, client):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    lost = _cancelled_with_prepay(app, client, merchant, sku_id)  # its close job never runs
    recent = _cancelled_with_prepay(app, client, merchant, sku_id)
    old = _cancelled_with_prepay(app, client, merchant, sku_id)
    _backdate(lost["id"], cancelled_at=utcnow() - timedelta(minutes=30))
    _backdate(old["id"], cancelled_at=utcnow() - timedelta(days=3))
    provider = app.extensions["groupshop.payments"]

    assert payment_jobs.sweep_unclosed_payments() == 1  # not the one just cancelled, nor one from days ago
    assert provider.is_closed(lost["order_no"])
    assert not provider.is_closed(recent["order_no"]) and not provider.is_closed(old["order_no"])
    db.session.expire_all()
    assert db.session.get(Order, lost["id"]).provider_closed_at is not None
    assert payment_jobs.sweep_unclosed_payments() == 0


def _foreign_payment(provider, merchant, order):
    """What WeChat Pay answers a query with when the payment is not this merchant's."""
    provider.payment_notification(
        merchant, out_trade_no=order["order_no"], total=order["payable_total"], openid="o-x", appid="wxsomeoneelse"
    )


def test_a_payment_the_provider_reports_that_does_not_match_keeps_the_order_open_then_expires_it(
    app, ctx, client, caplog
):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}]).skus[0].id
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    _foreign_payment(app.extensions["groupshop.payments"], merchant, order)
    _backdate(order["id"], expires_at=utcnow() - timedelta(minutes=5))

    assert payment_jobs.expire_order(order["id"]) == "pending_payment"  # before: it raised, every sweep
    assert "does not match" in caplog.text
    _backdate(order["id"], expires_at=utcnow() - reconcile.UNKNOWN_PAYMENT_GRACE - timedelta(minutes=1))
    assert payment_jobs.expire_order(order["id"]) == "cancelled"
    assert payment_jobs.close_payment(order["id"]) == "payment_mismatch"  # logged for staff, not a crash
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).paid_at is None
