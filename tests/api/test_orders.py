"""Placing orders: stock reserved once, snapshots, idempotency keys, expiry and late payment."""

from __future__ import annotations

import re
from datetime import timedelta

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import event, select

from api.worker import run_burst
from shop.catalog import service as catalog
from shop.catalog.models import Sku, StockMovement
from shop.core.cache import redis_client
from shop.core.db import db, transaction
from shop.core.events import OrderCancelled, OrderPaid, bus
from shop.orders import service as orders
from shop.orders.models import Order, Payment, Refund
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    member_headers,
    order_body,
    place,
    sent_statements,
    staff_headers,
)


def _shop(stock: int = 10, price: int = 2500):
    merchant = make_merchant()
    product = make_product(merchant, "赣南脐橙", skus=[{"specs": {"规格": "5斤"}, "price": price, "stock": stock}])
    return merchant, product, product.skus[0].id


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def test_placing_an_order_reserves_stock_and_snapshots_each_line(ctx, client):
    merchant, product, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    response = place(client, headers, order_body(sku_id, 3, remark="放门口"))
    assert response.status_code == 201, response.json
    order = response.json
    assert order["status"] == "pending_payment"
    assert re.fullmatch(r"[0-9A-Za-z]{6,32}", order["order_no"])  # a valid WeChat out_trade_no
    assert (order["goods_total"], order["shipping_fee"], order["payable_total"]) == (7500, 800, 8300)
    line = order["lines"][0]
    assert isinstance(line["id"], int)
    assert {k: v for k, v in line.items() if k != "id"} == {
        "sku_id": sku_id,
        "product_id": product.id,
        "title": "赣南脐橙",
        "description": "",
        "specs": {"规格": "5斤"},
        "image": "https://img.example.com/x.jpg",
        "offer": None,
        "unit_price": 2500,
        "quantity": 3,
        "goods_amount": 7500,
        "discount": 0,
        "paid_amount": 7500,
        "refunded_quantity": 0,
        "refunded_amount": 0,
    }
    assert _stock(sku_id) == 7
    movement = db.session.execute(select(StockMovement).order_by(StockMovement.id.desc())).scalars().first()
    assert (movement.delta, movement.reason, movement.stock_after) == (-3, "order_reserved", 7)

    staff = staff_headers(client, merchant.code)
    client.patch(
        f"/api/v1/merchant/products/{product.id}",
        json={"title": "新名字", "skus": [{"id": sku_id, "price": 9999}]},
        headers=staff,
    )
    again = client.get(f"/api/v1/orders/{order['id']}", headers=headers).json
    assert (again["lines"][0]["title"], again["lines"][0]["unit_price"]) == ("赣南脐橙", 2500)


def test_a_placement_reads_the_settings_with_its_skus_and_no_sku_it_does_not_price(ctx, client):
    merchant = make_merchant()
    product = make_product(
        merchant,
        "纯棉T恤",
        skus=[{"specs": {"尺码": size}, "price": 5900, "stock": 10} for size in ("M", "L", "XL")],
    )
    headers = member_headers(client, merchant.code)
    statements: list[str] = []

    def _record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", _record)
    try:
        response = place(client, headers, order_body(product.skus[0].id))
    finally:
        event.remove(db.engine, "before_cursor_execute", _record)
    assert response.status_code == 201, response.json
    # the settings (here: no row, so the defaults) are read with the SKUs, in pricing's one query,
    # and serve the shipping fee and the expiry alike
    reads = [s for s in statements if "merchant_settings" in s]
    assert len(reads) == 1 and "FROM skus JOIN products" in reads[0], reads
    # pricing loads the SKU with its product, not the product's other SKUs
    assert not [s for s in statements if "skus.product_id IN" in s]


def test_an_order_for_more_than_the_stock_is_refused_and_reserves_nothing(ctx, client):
    merchant, _, sku_id = _shop(stock=2)
    other = make_product(merchant, "纸巾", skus=[{"specs": {}, "price": 100, "stock": 5}]).skus[0].id
    headers = member_headers(client, merchant.code)
    body = order_body(sku_id, 3)
    body["items"].append({"sku_id": other, "quantity": 1})
    response = place(client, headers, body)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "insufficient_stock"
    assert response.json["error"]["details"]["sku_id"] == sku_id
    assert (_stock(sku_id), _stock(other)) == (2, 5)
    assert db.session.execute(select(Order)).first() is None


def test_a_sold_out_sku_is_refused_before_any_row_of_the_order_is_written(ctx, client):
    merchant, _, sku_id = _shop(stock=1)
    headers = member_headers(client, merchant.code)
    with sent_statements() as sent:
        response = place(client, headers, order_body(sku_id, 2))
    assert (response.status_code, response.json["error"]["code"]) == (409, "insufficient_stock")
    assert response.json["error"]["details"]["sku_id"] == sku_id
    written = [s for s in sent if s.startswith(("INSERT INTO orders", "WITH", "UPDATE skus"))]
    assert written == []  # refused on the stock read with the prices: no order rows, no stock UPDATE
    assert _stock(sku_id) == 1


def test_an_order_from_a_cart_of_more_than_50_different_items_is_refused(ctx, client):
    merchant = make_merchant()
    product = make_product(
        merchant, "贴纸", skus=[{"specs": {"号": str(i)}, "price": 100, "stock": 5} for i in range(51)]
    )
    headers = member_headers(client, merchant.code)
    for sku in product.skus:
        assert (
            client.post("/api/v1/cart/items", json={"sku_id": sku.id, "quantity": 1}, headers=headers).status_code
            == 200
        )
    body = {"from_cart": True, "fulfilment": "delivery", "address": order_body(1)["address"]}
    response = place(client, headers, body)
    assert (response.status_code, response.json["error"]["code"]) == (422, "too_many_lines")
    assert response.json["error"]["details"]["limit"] == 50
    assert db.session.execute(select(Order)).first() is None


def test_an_order_from_the_cart_empties_the_bought_lines(ctx, client):
    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    client.post("/api/v1/cart/items", json={"sku_id": sku_id, "quantity": 2}, headers=headers)
    body = order_body(sku_id)
    del body["items"]
    body["from_cart"] = True
    response = place(client, headers, body)
    assert response.status_code == 201, response.json
    assert response.json["lines"][0]["quantity"] == 2
    assert client.get("/api/v1/cart", headers=headers).json["lines"] == []


def test_the_same_idempotency_key_and_body_return_the_same_order(ctx, client):
    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    first = place(client, headers, order_body(sku_id, 2), key="checkout-0001")
    retry = place(client, headers, order_body(sku_id, 2), key="checkout-0001")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json["id"] == first.json["id"]
    assert _stock(sku_id) == 8  # reserved once


def test_the_same_idempotency_key_with_another_body_is_a_409(ctx, client):
    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    place(client, headers, order_body(sku_id, 2), key="checkout-0002")
    clash = place(client, headers, order_body(sku_id, 3), key="checkout-0002")
    assert clash.status_code == 409
    assert clash.json["error"]["code"] == "idempotency_key_reused"
    assert _stock(sku_id) == 8


def test_idempotency_keys_belong_to_one_member(ctx, client):
    merchant, _, sku_id = _shop()
    alice = member_headers(client, merchant.code, "alice")
    bob = member_headers(client, merchant.code, "bob")
    a = place(client, alice, order_body(sku_id), key="shared-key-1")
    b = place(client, bob, order_body(sku_id), key="shared-key-1")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json["id"] != b.json["id"]


def test_a_failed_order_frees_its_key_for_a_retry(ctx, client):
    merchant, _, sku_id = _shop(stock=1)
    headers = member_headers(client, merchant.code)
    assert place(client, headers, order_body(sku_id, 2), key="retry-key-1").status_code == 409
    staff = staff_headers(client, merchant.code)
    client.post(
        f"/api/v1/merchant/skus/{sku_id}/stock-adjustments", json={"delta": 5, "reason": "restock"}, headers=staff
    )
    assert place(client, headers, order_body(sku_id, 2), key="retry-key-1").status_code == 201


def test_placing_an_order_sends_nothing_to_redis_and_its_expires_at_is_its_timer(app, ctx, client):
    from shop.core.runner import sweeps
    from shop.payments import jobs as payment_jobs

    merchant, _, sku_id = _shop()
    queue = Queue(app.config["SETTINGS"].queue_name, connection=redis_client())
    order = place(client, member_headers(client, merchant.code), order_body(sku_id)).json
    assert (queue.count, ScheduledJobRegistry(queue=queue).get_job_ids()) == (0, [])
    stored = db.session.get(Order, order["id"])
    assert stored.expires_at - stored.created_at == timedelta(minutes=30)  # the default order TTL
    assert payment_jobs.sweep_expired_orders() == 0  # not due yet
    every = next(every for func, every in sweeps().values() if func is payment_jobs.sweep_expired_orders)
    assert every == payment_jobs.EXPIRY_SWEEP_EVERY <= 10  # so an order is expired within seconds of its time


def test_expiry_releases_the_stock_exactly_once_and_closes_the_payment(app, ctx, client):
    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id, 4)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    cancelled = []
    handler = lambda event: cancelled.append(event.reason)  # noqa: E731
    bus.subscribe(OrderCancelled, handler)
    try:
        with transaction():
            early = orders.cancel_order(order["id"], reason="expired")
        assert early.status == "pending_payment"  # not due yet: nothing happens
        later = db.session.get(Order, order["id"]).expires_at + timedelta(seconds=1)
        for _ in range(3):  # the sweep, a second sweep process and a retry
            with transaction():
                orders.cancel_order(order["id"], reason="expired", now=later)
    finally:
        bus.unsubscribe(OrderCancelled, handler)
    assert cancelled == ["expired"]
    assert _stock(sku_id) == 10
    assert db.session.get(Order, order["id"]).status == "cancelled"
    run_burst(app)
    assert app.extensions["groupshop.payments"].is_closed(order["order_no"])


def test_the_sweep_expires_an_order_once_it_is_due_and_once_only(app, ctx, client):
    from shop.payments import jobs as payment_jobs

    merchant, _, sku_id = _shop()
    order = place(client, member_headers(client, merchant.code), order_body(sku_id, 2)).json
    with transaction():
        db.session.get(Order, order["id"]).expires_at -= timedelta(hours=1)
    assert payment_jobs.sweep_expired_orders() == 1
    assert payment_jobs.sweep_expired_orders() == 0
    assert _stock(sku_id) == 10


def test_a_member_can_cancel_an_unpaid_order_but_not_a_paid_one(ctx, client):
    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    unpaid = place(client, headers, order_body(sku_id, 2)).json
    response = client.post(f"/api/v1/orders/{unpaid['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert response.json["cancel_reason"] == "cancelled_by_member"
    assert _stock(sku_id) == 10
    paid = place(client, headers, order_body(sku_id, 1)).json
    fake_pay(client, paid["order_no"])
    refused = client.post(f"/api/v1/orders/{paid['id']}/cancel", headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "illegal_transition"


def test_a_payment_after_expiry_is_recorded_and_refunded_automatically(app, ctx, client):
    merchant, _, sku_id = _shop()
    order = place(client, member_headers(client, merchant.code), order_body(sku_id, 2)).json
    with transaction():
        orders.cancel_order(order["id"], reason="expired", now=db.session.get(Order, order["id"]).expires_at)
    run_burst(app)  # closes it at the provider

    paid_late = fake_pay(client, order["order_no"])
    assert paid_late.status_code == 200
    assert paid_late.json["status"] == "cancelled"
    payment = db.session.execute(select(Payment)).scalar_one()
    assert (payment.outcome, payment.amount) == ("late", order["payable_total"])
    refund = db.session.execute(select(Refund)).scalar_one()
    assert (refund.kind, refund.status, refund.amount) == ("late_payment", "processing", order["payable_total"])
    assert refund.out_refund_no == f"L{payment.transaction_id}"

    run_burst(app)  # submit_refund, then the provider's REFUND.SUCCESS notification
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "succeeded"
    assert app.extensions["groupshop.payments"].refund_submissions() == {refund.out_refund_no: refund.amount}
    assert _stock(sku_id) == 10  # released once, by the expiry
    assert db.session.get(Order, order["id"]).status == "cancelled"


def test_catalog_reads_see_stock_run_out_through_orders(ctx, client):
    merchant, product, sku_id = _shop(stock=2)
    headers = member_headers(client, merchant.code)
    assert client.get(f"/api/v1/products/{product.id}", headers=headers).json["stock_status"] == "low_stock"
    place(client, headers, order_body(sku_id, 2))
    detail = client.get(f"/api/v1/products/{product.id}", headers=headers).json
    assert detail["stock_status"] == "sold_out"
    assert catalog.stock_status(_stock(sku_id)) == "sold_out"


def test_an_order_paid_but_never_notified_is_marked_paid_not_expired(app, ctx, client):
    from shop.payments import jobs as payment_jobs

    merchant, _, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id, 2)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    provider = app.extensions["groupshop.payments"]
    provider.payment_notification(  # the member paid; the notification was lost on the way
        merchant, out_trade_no=order["order_no"], total=order["payable_total"], openid="o-payer"
    )
    with transaction():
        db.session.get(Order, order["id"]).expires_at -= timedelta(hours=1)
    assert payment_jobs.expire_order(order["id"]) == "paid"
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).status == "paid"
    assert _stock(sku_id) == 8
    assert not provider.is_closed(order["order_no"])


def test_an_unpaid_order_past_its_expiry_is_closed_by_the_job(app, ctx, client):
    from shop.payments import jobs as payment_jobs

    merchant, _, sku_id = _shop()
    order = place(client, member_headers(client, merchant.code), order_body(sku_id, 2)).json
    assert payment_jobs.expire_order(order["id"]) == "pending_payment"  # not due yet
    with transaction():
        db.session.get(Order, order["id"]).expires_at -= timedelta(hours=1)
    assert payment_jobs.expire_order(order["id"]) == "cancelled"
    assert payment_jobs.expire_order(order["id"]) == "cancelled"
    assert _stock(sku_id) == 10


def test_checkout_from_the_cart_takes_only_the_lines_that_can_be_bought(ctx, client):
    merchant, product, sku_id = _shop(stock=10, price=1000)
    short = make_product(merchant, "只剩一件", skus=[{"specs": {}, "price": 500, "stock": 1}]).skus[0].id
    gone = make_product(merchant, "下架了", skus=[{"specs": {}, "price": 700, "stock": 9}])
    headers = member_headers(client, merchant.code)
    for sku, quantity in ((sku_id, 2), (short, 3), (gone.skus[0].id, 1)):
        client.post("/api/v1/cart/items", json={"sku_id": sku, "quantity": quantity}, headers=headers)
    client.put(
        f"/api/v1/merchant/products/{gone.id}/shelf",
        json={"on_shelf": False},
        headers=staff_headers(client, merchant.code),
    )
    cart = client.get("/api/v1/cart", headers=headers).json
    quote = client.post(
        "/api/v1/checkout/quote", json={"from_cart": True, "fulfilment": "delivery"}, headers=headers
    ).json
    assert [line["sku_id"] for line in quote["lines"]] == [sku_id]
    assert quote["goods_total"] == cart["goods_total"] == 2000
    body = order_body(sku_id)
    del body["items"]
    placed = place(client, headers, {**body, "from_cart": True})
    assert placed.status_code == 201 and [line["sku_id"] for line in placed.json["lines"]] == [sku_id]
    left = client.get("/api/v1/cart", headers=headers).json["lines"]
    assert {line["sku_id"] for line in left} == {short, gone.skus[0].id}


def test_an_order_that_costs_nothing_is_paid_at_once(app, ctx, client):
    from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster

    class EverythingFree:
        name = "test-free"

        def adjust(self, context):
            return [Adjustment(source=self.name, kind="goods", amount=context.goods_total, description="全免")]

    merchant, _, sku_id = _shop(price=1200)
    staff = staff_headers(client, merchant.code)
    point = client.post(
        "/api/v1/merchant/pickup-points",
        json={"name": "点", "address": "1 号", "contact_name": "李", "contact_phone": "13900000000"},
        headers=staff,
    ).json
    paid = []
    handler = lambda event: paid.append(event.order_id)  # noqa: E731
    register_adjuster(EverythingFree())
    bus.subscribe(OrderPaid, handler)
    try:
        response = place(
            client,
            member_headers(client, merchant.code),
            {"items": [{"sku_id": sku_id, "quantity": 2}], "fulfilment": "pickup", "pickup_point_id": point["id"]},
        )
    finally:
        bus.unsubscribe(OrderPaid, handler)
        unregister_adjuster("test-free")
    assert response.status_code == 201, response.json
    order = response.json
    assert (order["status"], order["payable_total"], order["discount_total"]) == ("paid", 0, 2400)
    assert paid == [order["id"]]
    payment = db.session.execute(select(Payment)).scalar_one()
    assert (payment.provider, payment.amount, payment.outcome) == ("free", 0, "applied")
    registry = ScheduledJobRegistry(queue=Queue(app.config["SETTINGS"].queue_name, connection=redis_client()))
    assert f"expire-order-{order['id']}" not in registry.get_job_ids()


def test_one_sku_on_several_items_is_held_to_the_line_limit(ctx, client):
    merchant, _, sku_id = _shop(stock=10_000)
    headers = member_headers(client, merchant.code)
    body = {**order_body(sku_id), "items": [{"sku_id": sku_id, "quantity": 999}] * 5}
    response = place(client, headers, body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "line_quantity_limit"
    assert "items" in response.json["error"]["details"]["fields"]
    assert _stock(sku_id) == 10_000  # nothing reserved
    ok = {**order_body(sku_id), "items": [{"sku_id": sku_id, "quantity": 500}, {"sku_id": sku_id, "quantity": 499}]}
    assert place(client, headers, ok).status_code == 201
    assert _stock(sku_id) == 10_000 - 999
