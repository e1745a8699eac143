"""POST /api/v1/merchant/orders/{order_id}/refunds: staff refund an order without a member's
request. Who may, whose orders, what a bad body gets, and where the refund shows up."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.worker import run_burst
from shop.core.db import db
from shop.orders.models import Order, Refund
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


@pytest.fixture
def store(ctx, client):
    merchant = make_merchant()
    sku_id = make_product(merchant, "Apples", skus=[{"specs": {"规格": "1斤"}, "price": 1000, "stock": 50}]).skus[0].id
    return {
        "merchant": merchant,
        "sku_id": sku_id,
        "owner": staff_headers(client, merchant.code),
        "member": member_headers(client, merchant.code, "buyer"),
    }


def _paid(client, store, quantity: int = 3) -> dict:
    placed = place(client, store["member"], order_body(store["sku_id"], quantity))
    assert placed.status_code == 201, placed.json
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.status_code == 200, paid.json
    return paid.json


def _refund(client, order_id: int, headers, body=None):
    return client.post(
        f"/api/v1/merchant/orders/{order_id}/refunds",
        json={"reason": "售后"} if body is None else body,
        headers=headers,
    )


def _refund_count() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Refund)).scalar_one()


def test_the_owner_refunds_some_units_and_gets_the_refund_back_processing(client, store):
    order = _paid(client, store)
    body = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": 2}], "reason": "少发了两斤"}
    response = _refund(client, order["id"], store["owner"], body)
    assert response.status_code == 201, response.json
    refund = response.json
    assert (refund["kind"], refund["status"], refund["amount"], refund["shipping_amount"]) == (
        "staff",
        "processing",
        2000,
        0,
    )
    assert refund["reason"] == "少发了两斤" and refund["decided_at"] == refund["created_at"]  # born decided
    assert refund["decided_by"] == client.get("/api/v1/merchant/me", headers=store["owner"]).json["id"]
    assert refund["lines"] == [{"order_line_id": order["lines"][0]["id"], "quantity": 2, "amount": 2000}]
    assert {"attempts", "last_error"} <= set(refund)


def test_without_lines_everything_not_yet_refunded_comes_back(client, store):
    order = _paid(client, store)
    response = _refund(client, order["id"], store["owner"])
    assert response.status_code == 201, response.json
    assert response.json["amount"] == order["paid_total"]


@pytest.mark.parametrize(("role", "status"), [("finance", 201), ("operator", 403)])
def test_finance_may_refund_an_operator_may_not(client, store, role, status):
    make_staff(store["merchant"], role, f"{role}1")
    order = _paid(client, store)
    response = _refund(client, order["id"], staff_headers(client, store["merchant"].code, f"{role}1"))
    assert response.status_code == status, response.json
    if status == 403:
        assert response.json["error"]["code"] == "role_forbidden"
        assert _refund_count() == 0


def test_a_member_cannot_use_the_staff_endpoint(client, store):
    order = _paid(client, store)
    response = _refund(client, order["id"], store["member"])
    assert response.status_code == 403, response.json
    assert _refund_count() == 0


def test_another_merchants_order_is_not_found_and_keeps_its_money(client, store):
    order = _paid(client, store)
    other = make_merchant()
    response = _refund(client, order["id"], staff_headers(client, other.code))
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert _refund_count() == 0


BAD_BODIES = [
    ("no reason", {}, ("reason",)),
    ("an empty reason", {"reason": ""}, ("reason",)),
    ("a reason too long", {"reason": "x" * 201}, ("reason",)),
    ("an empty list of lines", {"reason": "x", "lines": []}, ("lines",)),
    ("a line without its id", {"reason": "x", "lines": [{"quantity": 1}]}, ("lines", "0", "line_id")),
    ("a line id as a string", {"reason": "x", "lines": [{"line_id": "1", "quantity": 1}]}, ("lines", "0", "line_id")),
    ("no units", {"reason": "x", "lines": [{"line_id": 1, "quantity": 0}]}, ("lines", "0", "quantity")),
    (
        "units past the maximum",
        {"reason": "x", "lines": [{"line_id": 1, "quantity": 1000}]},
        ("lines", "0", "quantity"),
    ),
    ("an amount is the server's", {"reason": "x", "amount": 1}, ("amount",)),
    ("a kind is the server's", {"reason": "x", "kind": "system"}, ("kind",)),
]


@pytest.mark.parametrize(("name", "body", "path"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_bad_body_is_refused_with_the_field_at_fault(client, store, name, body, path):
    order = _paid(client, store)
    response = _refund(client, order["id"], store["owner"], body)
    assert response.status_code == 422, response.json
    found = response.json["error"]["details"]["fields"]
    for key in path:
        assert key in found, (path, response.json)
        found = found[key]
    assert _refund_count() == 0


def test_a_line_of_another_order_is_refused_with_its_field(client, store):
    order, other = _paid(client, store), _paid(client, store)
    body = {"reason": "x", "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}]}
    body["lines"].append({"line_id": other["lines"][0]["id"], "quantity": 1})
    response = _refund(client, order["id"], store["owner"], body)
    assert response.status_code == 422 and response.json["error"]["code"] == "line_not_found"
    assert response.json["error"]["details"]["fields"] == {"lines": {"1": {"line_id": ["not on this order"]}}}
    assert _refund_count() == 0


def test_more_units_than_bought_are_refused(client, store):
    order = _paid(client, store, quantity=2)
    body = {"reason": "x", "lines": [{"line_id": order["lines"][0]["id"], "quantity": 3}]}
    response = _refund(client, order["id"], store["owner"], body)
    assert response.status_code == 422 and response.json["error"]["code"] == "refund_quantity_exceeded"
    assert "lines" in response.json["error"]["details"]["fields"]


def test_an_unpaid_order_is_refused(client, store):
    placed = place(client, store["member"], order_body(store["sku_id"], 1)).json
    response = _refund(client, placed["id"], store["owner"])
    assert response.status_code == 409 and response.json["error"]["code"] == "order_not_paid"


def test_a_double_click_refunds_once(app, client, store):
    order = _paid(client, store)
    first = _refund(client, order["id"], store["owner"])
    again = _refund(client, order["id"], store["owner"])
    assert first.status_code == 201
    assert again.status_code == 409 and again.json["error"]["code"] == "refund_in_progress"
    assert again.json["error"]["details"]["refund_id"] == first.json["id"]
    run_burst(app)
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).refunded_total == order["paid_total"]
    after = _refund(client, order["id"], store["owner"])
    assert after.status_code == 409 and after.json["error"]["code"] == "nothing_to_refund"


def test_staff_see_it_among_the_order_s_refunds_and_the_member_sees_it_on_their_order(app, client, store):
    order, other = _paid(client, store), _paid(client, store)
    asked = client.post(f"/api/v1/orders/{other['id']}/refunds", json={"reason": "坏了"}, headers=store["member"])
    assert asked.status_code == 201
    issued = _refund(client, order["id"], store["owner"]).json
    run_burst(app)

    everything = client.get("/api/v1/merchant/refunds", headers=store["owner"]).json["items"]
    assert [(r["id"], r["kind"]) for r in everything] == [(issued["id"], "staff"), (asked.json["id"], "member")]
    one_order = client.get(
        "/api/v1/merchant/refunds", query_string={"order_id": order["id"]}, headers=store["owner"]
    ).json["items"]
    assert [(r["id"], r["status"]) for r in one_order] == [(issued["id"], "succeeded")]
    members_view = client.get(f"/api/v1/orders/{order['id']}/refunds", headers=store["member"]).json["items"]
    assert [(r["id"], r["kind"], r["status"]) for r in members_view] == [(issued["id"], "staff", "succeeded")]
    assert "decided_by" not in members_view[0]


@pytest.mark.parametrize("order_id", ["0", "abc", str(2**63)])
def test_a_bad_order_filter_on_the_refund_list_is_refused(client, store, order_id):
    response = client.get("/api/v1/merchant/refunds", query_string={"order_id": order_id}, headers=store["owner"])
    assert response.status_code == 422, response.json
    assert "order_id" in response.json["error"]["details"]["fields"]


def test_the_refund_list_filtered_by_another_merchants_order_is_empty(client, store):
    order = _paid(client, store)
    assert _refund(client, order["id"], store["owner"]).status_code == 201
    other = staff_headers(client, make_merchant().code)
    listed = client.get("/api/v1/merchant/refunds", query_string={"order_id": order["id"]}, headers=other)
    assert listed.status_code == 200 and listed.json["items"] == []
