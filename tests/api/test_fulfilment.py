"""Getting paid orders to members: shipping, receipt (by the member or automatically), the
after-sales window and completion; self-pickup with a one-time code; the merchant's order settings."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from api.worker import run_burst
from shop.core.db import db, transaction
from shop.core.events import OrderCompleted, OrderLineInfo, bus
from shop.orders import fulfilment
from shop.orders import jobs as order_jobs
from shop.orders.models import Order
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    make_staff,
    member_headers,
    order_body,
    place,
    staff_headers,
)

SHIP = {"carrier": "SF", "tracking_no": "SF1234567890"}
POINT = {"name": "幸福里团点", "address": "幸福里 3 栋 101", "contact_name": "李团长", "contact_phone": "13900139000"}


def _order(order_id: int) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _placed(client, headers, body) -> dict:
    response = place(client, headers, body)
    assert response.status_code == 201, response.json
    return response.json


def _paid(client, headers, body) -> dict:
    order = _placed(client, headers, body)
    paid = fake_pay(client, order["order_no"])
    assert paid.status_code == 200, paid.json
    assert paid.json["status"] == "paid"
    return paid.json


def _ship(client, staff, order_id: int):
    return client.post(f"/api/v1/merchant/orders/{order_id}/ship", json=SHIP, headers=staff)


def _member_id(client, headers) -> int:
    return client.get("/api/v1/me", headers=headers).json["id"]


@pytest.fixture
def store(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, skus=[{"specs": {"规格": "标准"}, "price": 1000, "stock": 50}])
    return {
        "merchant": merchant,
        "sku_id": product.skus[0].id,
        "staff": staff_headers(client, merchant.code),
        "member": member_headers(client, merchant.code, "buyer"),
    }


def _shipped(client, store) -> dict:
    order = _paid(client, store["member"], order_body(store["sku_id"]))
    response = _ship(client, store["staff"], order["id"])
    assert response.status_code == 200, response.json
    return response.json


def _received(client, store) -> dict:
    order = _shipped(client, store)
    response = client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"])
    assert response.status_code == 200, response.json
    return response.json


# --- delivery -----------------------------------------------------------------------------------


def test_staff_ship_a_paid_delivery_order_with_its_carrier_and_tracking_number(client, store):
    order = _paid(client, store["member"], order_body(store["sku_id"]))
    response = _ship(client, store["staff"], order["id"])
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["carrier"], response.json["tracking_no"]) == (
        "shipped",
        "SF",
        "SF1234567890",
    )
    stored = _order(order["id"])
    assert stored.status == "shipped" and stored.shipped_at is not None
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=store["member"]).json
    assert (seen["status"], seen["tracking_no"]) == ("shipped", "SF1234567890")


def _unpaid(client, store) -> dict:
    return _placed(client, store["member"], order_body(store["sku_id"]))


def _cancelled(client, store) -> dict:
    order = _unpaid(client, store)
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
    return order


@pytest.mark.parametrize(
    ("make", "status"),
    [(_unpaid, "pending_payment"), (_cancelled, "cancelled"), (_shipped, "shipped"), (_received, "received")],
)
def test_only_a_paid_order_can_be_shipped(client, store, make, status):
    order = make(client, store)
    response = _ship(client, store["staff"], order["id"])
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "illegal_transition"
    assert response.json["error"]["details"] == {"machine": "order", "status": status, "action": "ship"}
    assert _order(order["id"]).status == status


def test_a_pickup_order_is_not_shipped(client, store):
    point = client.post("/api/v1/merchant/pickup-points", json=POINT, headers=store["staff"]).json
    body = {
        "items": [{"sku_id": store["sku_id"], "quantity": 1}],
        "fulfilment": "pickup",
        "pickup_point_id": point["id"],
    }
    order = _paid(client, store["member"], body)
    response = _ship(client, store["staff"], order["id"])
    assert response.status_code == 409 and response.json["error"]["code"] == "wrong_fulfilment"
    assert _order(order["id"]).status == "paid"


def test_an_operator_may_ship_but_finance_may_not(ctx, client, store):
    make_staff(store["merchant"], "operator", "op1")
    make_staff(store["merchant"], "finance", "fi1")
    order = _paid(client, store["member"], order_body(store["sku_id"]))
    refused = _ship(client, staff_headers(client, store["merchant"].code, "fi1"), order["id"])
    assert refused.status_code == 403 and refused.json["error"]["code"] == "role_forbidden"
    assert _ship(client, staff_headers(client, store["merchant"].code, "op1"), order["id"]).status_code == 200


def test_the_member_confirms_receipt_and_the_after_sales_window_starts(client, store):
    order = _shipped(client, store)
    response = client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"])
    assert response.status_code == 200, response.json
    assert response.json["status"] == "received"
    stored = _order(order["id"])
    assert stored.status == "received"
    assert stored.after_sales_until == stored.received_at + timedelta(days=7)


def test_receipt_cannot_be_confirmed_before_shipping_twice_or_by_another_member(client, store):
    paid = _paid(client, store["member"], order_body(store["sku_id"]))
    early = client.post(f"/api/v1/orders/{paid['id']}/confirm-receipt", headers=store["member"])
    assert early.status_code == 409 and early.json["error"]["code"] == "illegal_transition"

    order = _shipped(client, store)
    stranger = member_headers(client, store["merchant"].code, "stranger")
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=stranger).status_code == 404
    assert _order(order["id"]).status == "shipped"
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    again = client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"])
    assert again.status_code == 409 and again.json["error"]["code"] == "illegal_transition"


@pytest.mark.parametrize(
    ("after_shipping", "confirmed"),
    [
        (timedelta(days=7, seconds=1), True),
        (timedelta(days=30), True),
        (timedelta(days=7, seconds=-1), False),
        (timedelta(days=6, hours=23), False),
        (timedelta(0), False),
    ],
)
def test_receipt_is_confirmed_automatically_seven_days_after_shipping(client, store, after_shipping, confirmed):
    order = _shipped(client, store)
    shipped_at = _order(order["id"]).shipped_at
    now = shipped_at + after_shipping
    with transaction():
        assert fulfilment.auto_confirm(order["id"], now=now) is confirmed
    stored = _order(order["id"])
    if confirmed:
        assert stored.status == "received"
        assert stored.received_at == now
        assert stored.after_sales_until == now + timedelta(days=7)
    else:
        assert (stored.status, stored.received_at) == ("shipped", None)


def test_auto_confirm_leaves_an_order_the_member_already_confirmed_alone(client, store):
    order = _received(client, store)
    received_at = _order(order["id"]).received_at
    with transaction():
        assert fulfilment.auto_confirm(order["id"], now=received_at + timedelta(days=30)) is False
    stored = _order(order["id"])
    assert (stored.status, stored.received_at) == ("received", received_at)


def test_the_auto_confirm_job_does_nothing_before_it_is_due(app, client, store):
    order = _shipped(client, store)
    assert order_jobs.auto_confirm(order["id"]) is False
    assert _order(order["id"]).status == "shipped"


def test_the_sweep_confirms_only_orders_shipped_long_enough_ago(app, client, store):
    due = _shipped(client, store)
    recent = _shipped(client, store)
    fresh = _shipped(client, store)
    with transaction():
        for order_id, days in ((due["id"], 8), (recent["id"], 2)):
            db.session.execute(
                update(Order).where(Order.id == order_id).values(shipped_at=Order.shipped_at - timedelta(days=days))
            )
    assert order_jobs.sweep_auto_confirm() == 1
    assert [_order(o["id"]).status for o in (due, recent, fresh)] == ["received", "shipped", "shipped"]
    assert order_jobs.sweep_auto_confirm() == 0  # a second sweep finds nothing left to do


def test_finalizing_after_the_after_sales_window_completes_the_order_with_its_line_amounts(client, store):
    second = make_product(store["merchant"], "Second", skus=[{"specs": {}, "price": 2500, "stock": 5}])
    body = order_body(store["sku_id"], 3)
    body["items"].append({"sku_id": second.skus[0].id, "quantity": 1})
    order = _paid(client, store["member"], body)
    assert _ship(client, store["staff"], order["id"]).status_code == 200
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    window_end = _order(order["id"]).after_sales_until

    seen: list[OrderCompleted] = []
    recorder = lambda event: seen.append(event)  # noqa: E731
    bus.subscribe(OrderCompleted, recorder)
    try:
        with transaction():
            assert fulfilment.finalize(order["id"], now=window_end - timedelta(seconds=1)) is False
        assert _order(order["id"]).status == "received" and seen == []
        with transaction():
            assert fulfilment.finalize(order["id"], now=window_end + timedelta(seconds=1)) is True
        with transaction():
            assert fulfilment.finalize(order["id"], now=window_end + timedelta(days=1)) is False  # once
    finally:
        bus.unsubscribe(OrderCompleted, recorder)

    stored = _order(order["id"])
    assert stored.status == "completed" and stored.completed_at == window_end + timedelta(seconds=1)
    assert len(seen) == 1
    event = seen[0]
    assert (event.merchant_id, event.order_id, event.member_id, event.kind) == (
        store["merchant"].id,
        order["id"],
        stored.member_id,
        "goods",
    )
    lines = {line.sku_id: line for line in stored.lines}
    first_line, second_line = lines[store["sku_id"]], lines[second.skus[0].id]
    assert sorted(event.lines, key=lambda line: line.line_id) == sorted(
        [
            OrderLineInfo(first_line.id, store["sku_id"], first_line.product_id, quantity=3, paid_amount=3000),
            OrderLineInfo(second_line.id, second.skus[0].id, second.id, quantity=1, paid_amount=2500),
        ],
        key=lambda line: line.line_id,
    )


def test_the_completed_event_counts_only_what_was_not_refunded(app, ctx, client, store):
    order = _received(client, store)
    more = _paid(client, store["member"], order_body(store["sku_id"], 3))
    assert _ship(client, store["staff"], more["id"]).status_code == 200
    assert client.post(f"/api/v1/orders/{more['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    line_id = more["lines"][0]["id"]
    refund = client.post(
        f"/api/v1/orders/{more['id']}/refunds",
        json={"lines": [{"line_id": line_id, "quantity": 1}], "reason": "one was bad"},
        headers=store["member"],
    )
    assert refund.status_code == 201, refund.json
    assert (
        client.post(f"/api/v1/merchant/refunds/{refund.json['id']}/approve", headers=store["staff"]).status_code == 200
    )
    run_burst(app)
    assert _order(more["id"]).refunded_total == 1000

    seen: list[OrderCompleted] = []
    recorder = lambda event: seen.append(event)  # noqa: E731
    bus.subscribe(OrderCompleted, recorder)
    try:
        with transaction():
            assert fulfilment.finalize(more["id"], now=_order(more["id"]).after_sales_until + timedelta(seconds=1))
    finally:
        bus.unsubscribe(OrderCompleted, recorder)
    assert [[(line.line_id, line.paid_amount, line.quantity) for line in event.lines] for event in seen] == [
        [(line_id, 2000, 2)]
    ]
    assert _order(order["id"]).status == "received"  # the other order was not touched


def test_finalizing_waits_while_a_refund_is_open(client, store):
    order = _received(client, store)
    requested = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "broken"}, headers=store["member"])
    assert requested.status_code == 201, requested.json
    later = _order(order["id"]).after_sales_until + timedelta(days=1)
    with transaction():
        assert fulfilment.finalize(order["id"], now=later) is False
    assert _order(order["id"]).status == "received"

    rejected = client.post(
        f"/api/v1/merchant/refunds/{requested.json['id']}/reject", json={"reason": "not broken"}, headers=store["staff"]
    )
    assert rejected.status_code == 200, rejected.json
    with transaction():
        assert fulfilment.finalize(order["id"], now=later) is True
    assert _order(order["id"]).status == "completed"


def test_the_finalize_sweep_completes_orders_whose_window_has_closed(client, store):
    closed = _received(client, store)
    open_ = _received(client, store)
    with transaction():
        db.session.execute(
            update(Order)
            .where(Order.id == closed["id"])
            .values(after_sales_until=Order.after_sales_until - timedelta(days=8))
        )
    assert order_jobs.sweep_finalize() == 1
    assert [_order(o["id"]).status for o in (closed, open_)] == ["completed", "received"]


# --- pickup -------------------------------------------------------------------------------------


def _point(client, staff, **extra) -> dict:
    response = client.post("/api/v1/merchant/pickup-points", json={**POINT, **extra}, headers=staff)
    assert response.status_code == 201, response.json
    return response.json


def _pickup_body(sku_id: int, point_id: int, quantity: int = 1) -> dict:
    return {"items": [{"sku_id": sku_id, "quantity": quantity}], "fulfilment": "pickup", "pickup_point_id": point_id}


def _ready(client, store, point_id: int) -> dict:
    order = _paid(client, store["member"], _pickup_body(store["sku_id"], point_id))
    response = client.post(f"/api/v1/merchant/orders/{order['id']}/ready-for-pickup", headers=store["staff"])
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready_for_pickup"
    return order


def test_staff_open_a_pickup_point_led_by_a_member(client, store):
    leader = member_headers(client, store["merchant"].code, "leader")
    leader_id = _member_id(client, leader)
    point = _point(client, store["staff"], leader_member_id=leader_id)
    assert (point["leader_member_id"], point["active"], point["name"]) == (leader_id, True, POINT["name"])
    listed = client.get("/api/v1/pickup-points", headers=store["member"]).json["items"]
    assert [p["id"] for p in listed] == [point["id"]]


def test_a_pickup_point_leader_must_be_a_member_of_this_merchant(client, store):
    other = make_merchant()
    outsider_id = _member_id(client, member_headers(client, other.code, "outsider"))
    response = client.post(
        "/api/v1/merchant/pickup-points", json={**POINT, "leader_member_id": outsider_id}, headers=store["staff"]
    )
    assert response.status_code == 422 and "leader_member_id" in response.json["error"]["details"]["fields"]


def test_a_pickup_order_ships_nothing_and_shows_its_code_only_once_paid(client, store):
    point = _point(client, store["staff"])
    placed = _placed(client, store["member"], _pickup_body(store["sku_id"], point["id"], 2))
    assert (placed["fulfilment"], placed["pickup_point_id"]) == ("pickup", point["id"])
    assert (placed["goods_total"], placed["shipping_fee"], placed["payable_total"]) == (2000, 0, 2000)
    assert placed["address"] is None
    assert placed["pickup_code"] is None
    assert client.get(f"/api/v1/orders/{placed['id']}", headers=store["member"]).json["pickup_code"] is None
    code = _order(placed["id"]).pickup_code
    assert code is not None and len(code) == 8 and code.isdigit()

    paid = fake_pay(client, placed["order_no"])
    assert paid.json["pickup_code"] == code
    assert client.get(f"/api/v1/orders/{placed['id']}", headers=store["member"]).json["pickup_code"] == code
    staff_view = client.get(f"/api/v1/merchant/orders/{placed['id']}", headers=store["staff"]).json
    assert staff_view["pickup_code"] is None  # staff check the code the member shows


def test_a_pickup_order_needs_an_open_pickup_point_of_this_merchant(client, store):
    closed = _point(client, store["staff"])
    client.patch(f"/api/v1/merchant/pickup-points/{closed['id']}", json={"active": False}, headers=store["staff"])
    other = make_merchant()
    foreign = _point(client, staff_headers(client, other.code))
    for point_id in (closed["id"], foreign["id"]):
        response = place(client, store["member"], _pickup_body(store["sku_id"], point_id))
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "pickup_point_invalid"


def test_staff_hand_over_a_ready_order_with_its_code_once(client, store):
    point = _point(client, store["staff"])
    order = _ready(client, store, point["id"])
    code = _order(order["id"]).pickup_code
    url = f"/api/v1/merchant/orders/{order['id']}/pickup"

    response = client.post(url, json={"code": code}, headers=store["staff"])
    assert response.status_code == 200, response.json
    assert response.json["status"] == "received"
    stored = _order(order["id"])
    assert stored.status == "received"
    assert stored.after_sales_until == stored.received_at + timedelta(days=7)

    again = client.post(url, json={"code": code}, headers=store["staff"])
    assert again.status_code == 409 and again.json["error"]["code"] == "already_collected"
    assert _order(order["id"]).received_at == stored.received_at


def test_a_wrong_pickup_code_is_refused_and_changes_nothing(client, store):
    point = _point(client, store["staff"])
    order = _ready(client, store, point["id"])
    code = _order(order["id"]).pickup_code
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    response = client.post(
        f"/api/v1/merchant/orders/{order['id']}/pickup", json={"code": wrong}, headers=store["staff"]
    )
    assert response.status_code == 422 and response.json["error"]["code"] == "pickup_code_wrong"
    assert _order(order["id"]).status == "ready_for_pickup"


def test_pickup_codes_cannot_be_guessed_at_the_speed_of_the_api(app, client, store, monkeypatch):
    from api.throttle import LIMITER_EXTENSION, PICKUP_ATTEMPTS_PER_MINUTE

    # The limit refills one attempt a second: with the clock stopped, a slow machine does not refill it mid-test.
    stopped = time.time()
    monkeypatch.setattr(app.extensions[LIMITER_EXTENSION], "clock", lambda: stopped)
    point = _point(client, store["staff"])
    order = _ready(client, store, point["id"])
    code = _order(order["id"]).pickup_code
    url = f"/api/v1/merchant/orders/{order['id']}/pickup"
    wrong = [f"{(int(code) + n) % 10**8:08d}" for n in range(1, PICKUP_ATTEMPTS_PER_MINUTE + 2)]
    statuses = [client.post(url, json={"code": guess}, headers=store["staff"]).status_code for guess in wrong]
    assert statuses[:PICKUP_ATTEMPTS_PER_MINUTE] == [422] * PICKUP_ATTEMPTS_PER_MINUTE
    refused = client.post(url, json={"code": code}, headers=store["staff"])
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert _order(order["id"]).status == "ready_for_pickup"
    colleague = staff_headers(client, store["merchant"].code, make_staff(store["merchant"], "operator").username)
    assert client.post(url, json={"code": code}, headers=colleague).status_code == 200  # the limit is per account


def test_an_order_not_yet_at_the_pickup_point_cannot_be_handed_over(client, store):
    point = _point(client, store["staff"])
    order = _paid(client, store["member"], _pickup_body(store["sku_id"], point["id"]))
    code = _order(order["id"]).pickup_code
    response = client.post(f"/api/v1/merchant/orders/{order['id']}/pickup", json={"code": code}, headers=store["staff"])
    assert response.status_code == 409 and response.json["error"]["code"] == "illegal_transition"
    assert _order(order["id"]).status == "paid"


def test_only_a_paid_pickup_order_can_be_marked_ready(client, store):
    point = _point(client, store["staff"])
    unpaid = _placed(client, store["member"], _pickup_body(store["sku_id"], point["id"]))
    response = client.post(f"/api/v1/merchant/orders/{unpaid['id']}/ready-for-pickup", headers=store["staff"])
    assert response.status_code == 409 and response.json["error"]["code"] == "illegal_transition"
    delivery = _paid(client, store["member"], order_body(store["sku_id"]))
    response = client.post(f"/api/v1/merchant/orders/{delivery['id']}/ready-for-pickup", headers=store["staff"])
    assert response.status_code == 409 and response.json["error"]["code"] == "wrong_fulfilment"


def test_the_leader_hands_over_orders_at_their_own_points_only(client, store):
    merchant = store["merchant"]
    leader = member_headers(client, merchant.code, "leader")
    rival = member_headers(client, merchant.code, "rival")
    mine = _point(client, store["staff"], leader_member_id=_member_id(client, leader))
    _point(client, store["staff"], leader_member_id=_member_id(client, rival), name="另一个团点")
    order = _ready(client, store, mine["id"])
    code = _order(order["id"]).pickup_code

    for outsider in (rival, store["member"]):
        refused = client.post("/api/v1/leader/pickups", json={"code": code}, headers=outsider)
        assert refused.status_code == 404, refused.json
    assert _order(order["id"]).status == "ready_for_pickup"

    response = client.post("/api/v1/leader/pickups", json={"code": code}, headers=leader)
    assert response.status_code == 200, response.json
    assert (response.json["id"], response.json["status"]) == (order["id"], "received")
    again = client.post("/api/v1/leader/pickups", json={"code": code}, headers=leader)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_collected"


def test_the_leader_cannot_hand_over_an_order_that_is_not_ready(client, store):
    leader = member_headers(client, store["merchant"].code, "leader")
    point = _point(client, store["staff"], leader_member_id=_member_id(client, leader))
    order = _paid(client, store["member"], _pickup_body(store["sku_id"], point["id"]))
    response = client.post("/api/v1/leader/pickups", json={"code": _order(order["id"]).pickup_code}, headers=leader)
    assert response.status_code == 404
    assert _order(order["id"]).status == "paid"


# --- order settings -----------------------------------------------------------------------------

NEW_SETTINGS = {
    "auto_confirm_days": 3,
    "after_sales_days": 2,
    "order_ttl_minutes": 10,
    "shipping_fee": 500,
    "free_shipping_over": 20000,
}


@pytest.mark.parametrize("role", ["operator", "finance"])
def test_only_the_owner_changes_the_order_settings(ctx, client, store, role):
    make_staff(store["merchant"], role, f"{role}-x")
    headers = staff_headers(client, store["merchant"].code, f"{role}-x")
    response = client.patch("/api/v1/merchant/settings/orders", json=NEW_SETTINGS, headers=headers)
    assert response.status_code == 403 and response.json["error"]["code"] == "role_forbidden"
    current = client.get("/api/v1/merchant/settings/orders", headers=headers).json
    assert current == {
        "auto_confirm_days": 7,
        "after_sales_days": 7,
        "order_ttl_minutes": 30,
        "shipping_fee": 800,
        "free_shipping_over": 9900,
    }


def test_changed_order_settings_take_effect(client, store):
    response = client.patch("/api/v1/merchant/settings/orders", json=NEW_SETTINGS, headers=store["staff"])
    assert response.status_code == 200, response.json
    assert response.json == NEW_SETTINGS
    assert client.get("/api/v1/merchant/settings/orders", headers=store["staff"]).json == NEW_SETTINGS

    def quote(quantity: int) -> dict:
        body = {"items": [{"sku_id": store["sku_id"], "quantity": quantity}], "fulfilment": "delivery"}
        return client.post("/api/v1/checkout/quote", json=body, headers=store["member"]).json

    assert quote(10)["shipping_fee"] == 500  # 10000 used to ship free; now the threshold is 20000
    assert quote(20)["shipping_fee"] == 0

    placed = _placed(client, store["member"], order_body(store["sku_id"]))
    stored = _order(placed["id"])
    assert stored.shipping_fee == 500
    assert stored.expires_at - stored.created_at == timedelta(minutes=10)

    fake_pay(client, placed["order_no"])
    assert _ship(client, store["staff"], placed["id"]).status_code == 200
    shipped_at = _order(placed["id"]).shipped_at
    with transaction():
        assert fulfilment.auto_confirm(placed["id"], now=shipped_at + timedelta(days=3) - timedelta(seconds=1)) is False
    with transaction():
        assert fulfilment.auto_confirm(placed["id"], now=shipped_at + timedelta(days=3, seconds=1)) is True
    stored = _order(placed["id"])
    assert stored.after_sales_until == stored.received_at + timedelta(days=2)


def test_free_shipping_can_be_switched_off_on_the_first_change_of_settings(client, store):
    response = client.patch(
        "/api/v1/merchant/settings/orders", json={"free_shipping_over": None}, headers=store["staff"]
    )
    assert response.status_code == 200, response.json
    assert response.json["free_shipping_over"] is None
    assert client.get("/api/v1/merchant/settings/orders", headers=store["staff"]).json["free_shipping_over"] is None
    body = {"items": [{"sku_id": store["sku_id"], "quantity": 50}], "fulfilment": "delivery"}
    assert client.post("/api/v1/checkout/quote", json=body, headers=store["member"]).json["shipping_fee"] == 800
