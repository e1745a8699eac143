"""Orders and payments under real concurrency: every thread runs the whole HTTP stack, on its own
pooled database connection, and everything commits for real."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from shop.catalog.models import Sku, StockMovement
from shop.core.db import db
from shop.core.events import OrderPaid, bus
from shop.orders.models import Order, Payment
from tests.factories import make_merchant, make_product, member_headers, order_body, race

pytestmark = pytest.mark.committing


def _phone(app, i: int):
    """Buyer i's own client, from its own address (wx-login is throttled per address)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.0.{i // 250}.{i % 250 + 1}"
    return client


def _setup(app, stock: int, buyers: int):
    with app.app_context():
        merchant = make_merchant()
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 990, "stock": stock}]).skus[0].id
        headers = [member_headers(_phone(app, i), merchant.code, f"buyer{i}") for i in range(buyers)]
        db.session.remove()
    return merchant, sku_id, headers


def test_two_hundred_buyers_racing_for_fifty_units_make_exactly_fifty_orders(app):
    merchant, sku_id, headers = _setup(app, stock=50, buyers=200)

    def buy(i: int) -> int:
        response = app.test_client().post(
            "/api/v1/orders", json=order_body(sku_id, 1), headers={**headers[i], "Idempotency-Key": f"race-{i:06d}"}
        )
        assert response.status_code in (201, 409), response.json
        if response.status_code == 409:
            assert response.json["error"]["code"] == "insufficient_stock"
        return response.status_code

    statuses = Counter(race(200, buy))

    assert statuses == {201: 50, 409: 150}
    with app.app_context():
        assert db.session.get(Sku, sku_id).stock == 0
        assert db.session.execute(select(func.count()).select_from(Order)).scalar() == 50
        reserved = db.session.execute(
            select(func.sum(StockMovement.delta)).where(StockMovement.reason == "order_reserved")
        ).scalar()
        assert reserved == -50


def test_the_same_idempotency_key_sent_at_once_makes_one_order(app):
    merchant, sku_id, headers = _setup(app, stock=20, buyers=1)

    def send(i: int):
        return app.test_client().post(
            "/api/v1/orders", json=order_body(sku_id, 2), headers={**headers[0], "Idempotency-Key": "double-tap-01"}
        )

    responses = race(10, send)
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json["id"] for r in responses}) == 1
    with app.app_context():
        assert db.session.get(Sku, sku_id).stock == 18
        assert db.session.execute(select(func.count()).select_from(Order)).scalar() == 1


def test_five_identical_notifications_at_once_change_state_once(app):
    merchant, sku_id, headers = _setup(app, stock=5, buyers=1)
    order = (
        app.test_client()
        .post("/api/v1/orders", json=order_body(sku_id, 1), headers={**headers[0], "Idempotency-Key": "pay-race-01"})
        .json
    )
    with app.app_context():
        notification = app.extensions["groupshop.payments"].payment_notification(
            merchant,
            out_trade_no=order["order_no"],
            total=order["payable_total"],
            openid="o-payer",
            transaction_id="4200000055",
        )
        db.session.remove()
    paid_events: list[int] = []
    handler = lambda event: paid_events.append(event.order_id)  # noqa: E731
    bus.subscribe(OrderPaid, handler)
    try:
        responses = race(
            5,
            lambda i: app.test_client().post(
                f"/api/v1/payments/wechatpay/{merchant.code}/notify", data=notification[1], headers=notification[0]
            ),
        )
    finally:
        bus.unsubscribe(OrderPaid, handler)
    assert [r.status_code for r in responses] == [204] * 5
    assert paid_events == [order["id"]]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Payment)).scalar() == 1
        assert db.session.get(Order, order["id"]).status == "paid"


def test_expiry_racing_a_payment_either_pays_or_refunds_never_both(app):
    from datetime import timedelta

    from shop.core.db import transaction
    from shop.orders import service as orders

    merchant, sku_id, headers = _setup(app, stock=5, buyers=1)
    order = (
        app.test_client()
        .post("/api/v1/orders", json=order_body(sku_id, 3), headers={**headers[0], "Idempotency-Key": "expiry-race-1"})
        .json
    )
    with app.app_context():
        due = db.session.get(Order, order["id"]).expires_at + timedelta(seconds=1)
        notification = app.extensions["groupshop.payments"].payment_notification(
            merchant, out_trade_no=order["order_no"], total=order["payable_total"], openid="o-payer"
        )
        db.session.remove()

    def act(i: int):
        if i == 0:
            with app.app_context():
                with transaction():
                    orders.cancel_order(order["id"], reason="expired", now=due)
                db.session.remove()
            return None
        return (
            app.test_client()
            .post(f"/api/v1/payments/wechatpay/{merchant.code}/notify", data=notification[1], headers=notification[0])
            .status_code
        )

    race(2, act)
    with app.app_context():
        final = db.session.get(Order, order["id"])
        stock = db.session.get(Sku, sku_id).stock
        outcome = db.session.execute(select(Payment.outcome)).scalar_one()
        if final.status == "paid":
            assert (stock, outcome) == (2, "applied")
        else:
            assert (final.status, stock, outcome) == ("cancelled", 5, "late")


def test_simultaneous_cart_adds_never_pass_the_line_limit(app):
    merchant, sku_id, headers = _setup(app, stock=5, buyers=1)
    statuses = race(
        8,
        lambda i: (
            app.test_client()
            .post("/api/v1/cart/items", json={"sku_id": sku_id, "quantity": 200}, headers=headers[0])
            .status_code
        ),
    )
    assert sorted(statuses) == [200] * 4 + [422] * 4  # 4 x 200 = 800 fits under 999; a 5th would not
    cart = app.test_client().get("/api/v1/cart", headers=headers[0]).json
    assert cart["lines"][0]["quantity"] == 800
