"""Coupons over HTTP: staff configure templates, members claim them and use them at checkout, and
the order's life (paid, cancelled, refunded) decides what becomes of each coupon."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from coupons.models import Coupon
from shop.core.db import db, utcnow
from tests.factories import (
    fake_pay,
    make_staff,
    make_store,
    member_headers,
    order_body,
    paid_order,
    place,
    placed_order,
    refunded_order,
    settled_refund,
    staff_headers,
)

M = "/api/v1/merchant"


def template_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "满100减10",
        "kind": "amount_off",
        "threshold": 10000,
        "amount": 1000,
        "valid_days": 7,
        "total_quantity": 100,
        "channels": ["centre"],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def create_template(client, store: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{M}/coupon-templates", json=template_body(**overrides), headers=store["staff"])
    assert response.status_code == 201, response.json
    return response.json


def claim(client, headers: dict[str, str], template_id: int):
    return client.post(f"/api/v1/coupon-centre/{template_id}/claim", headers=headers)


def claimed(client, store: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    template = create_template(client, store, **overrides)
    response = claim(client, store["member"], template["id"])
    assert response.status_code == 201, response.json
    return response.json


def quote(client, store: dict[str, Any], body: dict[str, Any], headers: dict[str, str] | None = None):
    """A quote of an order body (the address is the order's, not the quote's)."""
    wanted = {k: v for k, v in body.items() if k != "address"}
    return client.post("/api/v1/checkout/quote", json=wanted, headers=headers or store["member"])


def coupon_status(coupon_id: int) -> str:
    db.session.expire_all()
    return db.session.execute(select(Coupon.status).where(Coupon.id == coupon_id)).scalar_one()


@pytest.fixture
def store(ctx, client):
    return make_store(client, tea={"price": 6000, "stock": 50}, cake={"price": 3000, "stock": 50})


# --- templates (staff) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"name": "全场85折", "kind": "percent_off", "amount": ..., "rate_bp": 1500, "cap": 2000, "threshold": 0},
        {"name": "包邮券", "kind": "free_shipping", "amount": ..., "threshold": 5000},
        {
            "name": "首单",
            "valid_days": None,
            "valid_from": "2026-01-01T00:00:00+08:00",
            "valid_until": "2030-01-01T00:00:00+08:00",
        },
    ],
)
def test_staff_create_each_kind_of_template_and_read_it_back(client, store, overrides):
    made = create_template(client, store, **overrides)
    assert made["issued"] == 0 and made["status"] == "active"
    for name, value in template_body(**overrides).items():
        if name not in ("valid_from", "valid_until"):
            assert made[name] == value, name
    read = client.get(f"{M}/coupon-templates/{made['id']}", headers=store["staff"])
    assert read.status_code == 200 and read.json == made
    listed = client.get(f"{M}/coupon-templates", headers=store["staff"]).json
    assert [t["id"] for t in listed["items"]] == [made["id"]]


def test_a_gift_template_names_a_sku_of_the_merchant(client, store):
    made = create_template(client, store, name="买蛋糕送茶", kind="gift", amount=..., gift_sku_id=store["tea"])
    assert made["gift_sku_id"] == store["tea"]
    other = make_store(client, leaf={"price": 100, "stock": 1})
    refused = client.post(
        f"{M}/coupon-templates",
        json=template_body(kind="gift", amount=..., gift_sku_id=other["leaf"]),
        headers=store["staff"],
    )
    assert refused.status_code == 422 and "gift_sku_id" in refused.json["error"]["details"]["fields"]


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"amount": 0}, {"amount"}),
        ({"kind": "percent_off", "amount": ..., "rate_bp": 10_000}, {"rate_bp"}),
        ({"kind": "percent_off", "amount": ..., "rate_bp": 0}, {"rate_bp"}),
        (
            {"valid_days": None, "valid_from": "2030-01-02T00:00:00+08:00", "valid_until": "2030-01-01T00:00:00+08:00"},
            {"valid_until"},
        ),
        ({"total_quantity": 5, "per_member_limit": 6}, {"per_member_limit"}),
        ({"per_member_limit": 2, "per_member_daily_limit": 3}, {"per_member_daily_limit"}),
        ({"scope": "products", "scope_ids": []}, {"scope_ids"}),
        ({"audience": "members"}, {"audience_member_ids"}),
        ({"amount": 20000}, {"amount"}),  # more off than the threshold
        ({"valid_from": "2030-01-01T00:00:00"}, {"valid_from"}),  # no time zone
    ],
)
def test_unusable_terms_are_refused_with_the_fields_at_fault(client, store, overrides, fields):
    response = client.post(f"{M}/coupon-templates", json=template_body(**overrides), headers=store["staff"])
    assert response.status_code == 422, response.json
    assert set(response.json["error"]["details"]["fields"]) == fields
    assert client.get(f"{M}/coupon-templates", headers=store["staff"]).json["items"] == []


def test_a_scope_naming_another_merchants_products_is_refused(client, store):
    other = make_store(client, leaf={"price": 100, "stock": 1})
    body = template_body(scope="products", scope_ids=[store["tea_product"], other["leaf_product"]])
    response = client.post(f"{M}/coupon-templates", json=body, headers=store["staff"])
    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"scope_ids": {"1": ["not found"]}}


def test_finance_reads_templates_but_cannot_write_them(client, store):
    made = create_template(client, store)
    make_staff(store["merchant"], "finance", "fin1")
    make_staff(store["merchant"], "operator", "op1")
    finance = staff_headers(client, store["merchant"].code, "fin1")
    operator = staff_headers(client, store["merchant"].code, "op1")
    assert client.get(f"{M}/coupon-templates/{made['id']}", headers=finance).status_code == 200
    assert client.post(f"{M}/coupon-templates", json=template_body(), headers=finance).status_code == 403
    assert (
        client.patch(f"{M}/coupon-templates/{made['id']}", json={"status": "paused"}, headers=finance).status_code
        == 403
    )
    assert client.post(f"{M}/coupon-templates", json=template_body(), headers=operator).status_code == 201


def test_once_issued_only_quantity_end_date_and_status_change(client, store):
    coupon = claimed(client, store, total_quantity=10)
    url = f"{M}/coupon-templates/{coupon['template_id']}"
    refused = client.patch(url, json={"threshold": 5000, "total_quantity": 20}, headers=store["staff"])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "template_in_use"
    assert set(refused.json["error"]["details"]["fields"]) == {"threshold"}
    below = client.patch(url, json={"total_quantity": 0}, headers=store["staff"])
    assert below.status_code == 422
    changed = client.patch(
        url, json={"total_quantity": 1, "name": "新名字", "status": "paused"}, headers=store["staff"]
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["total_quantity"], changed.json["status"], changed.json["threshold"]) == (1, "paused", 10000)
    unchanged = client.patch(url, json={"threshold": 10000}, headers=store["staff"])  # the same value is no change
    assert unchanged.status_code == 200


def test_a_template_without_coupons_can_change_its_terms(client, store):
    made = create_template(client, store)
    response = client.patch(
        f"{M}/coupon-templates/{made['id']}", json={"threshold": 5000, "amount": 500}, headers=store["staff"]
    )
    assert response.status_code == 200 and (response.json["threshold"], response.json["amount"]) == (5000, 500)


# --- the claim centre and the wallet ------------------------------------------------------------


def test_members_claim_from_the_centre_and_find_the_coupon_in_their_wallet(client, store):
    offered = create_template(client, store, per_member_limit=2, per_member_daily_limit=1)
    create_template(client, store, name="生日券", channels=["birthday"])  # not in the centre
    centre = client.get("/api/v1/coupon-centre", headers=store["member"]).json["items"]
    assert [(i["template"]["id"], i["claimable"], i["remaining"], i["held"]) for i in centre] == [
        (offered["id"], True, 100, 0)
    ]
    response = claim(client, store["member"], offered["id"])
    assert response.status_code == 201
    coupon = response.json
    assert (coupon["status"], coupon["channel"], coupon["template"]["name"]) == ("available", "centre", "满100减10")
    valid = coupon["valid_until"]
    assert valid > coupon["valid_from"]
    again = claim(client, store["member"], offered["id"])  # daily limit 1
    assert again.status_code == 409 and again.json["error"]["code"] == "coupon_limit_reached"
    centre = client.get("/api/v1/coupon-centre", headers=store["member"]).json["items"]
    assert (centre[0]["claimable"], centre[0]["reason"], centre[0]["held"]) == (False, "limit_reached", 1)
    wallet = client.get("/api/v1/coupons?status=available", headers=store["member"]).json
    assert [c["id"] for c in wallet["items"]] == [coupon["id"]]
    assert client.get("/api/v1/coupons?status=used", headers=store["member"]).json["items"] == []


def test_claims_are_refused_when_sold_out_paused_not_started_ended_or_not_for_the_member(client, store):
    last = create_template(client, store, total_quantity=1)
    other = member_headers(client, store["merchant"].code, "other")
    assert claim(client, other, last["id"]).status_code == 201
    sold_out = claim(client, store["member"], last["id"])
    assert (sold_out.status_code, sold_out.json["error"]["code"]) == (409, "coupon_sold_out")

    now = utcnow()
    cases = {
        "paused": create_template(client, store, status="paused"),
        "not_started": create_template(
            client,
            store,
            valid_days=None,
            valid_from=(now + timedelta(days=1)).isoformat(),
            valid_until=(now + timedelta(days=2)).isoformat(),
        ),
        "not_offered": create_template(client, store, channels=["welcome"]),
    }
    for reason, template in cases.items():
        response = claim(client, store["member"], template["id"])
        assert (response.status_code, response.json["error"]["code"]) == (409, "coupon_not_claimable"), reason
        assert response.json["error"]["details"]["reason"] == reason
    listed = create_template(client, store, audience="members", audience_member_ids=[_member_id(client, other)])
    refused = claim(client, store["member"], listed["id"])
    assert refused.json["error"]["details"]["reason"] == "audience"
    assert claim(client, other, listed["id"]).status_code == 201
    assert listed["id"] not in [
        i["template"]["id"] for i in client.get("/api/v1/coupon-centre", headers=store["member"]).json["items"]
    ]


def _member_id(client, headers: dict[str, str]) -> int:
    return client.get("/api/v1/me", headers=headers).json["id"]


def test_a_new_members_coupon_is_for_members_who_never_paid_an_order(client, store):
    first_order = create_template(client, store, audience="new_members", per_member_limit=1, total_quantity=5)
    veteran = member_headers(client, store["merchant"].code, "veteran")
    paid_order(client, veteran, order_body(store["cake"]))
    refused = claim(client, veteran, first_order["id"])
    assert refused.status_code == 409 and refused.json["error"]["details"]["reason"] == "audience"
    assert claim(client, store["member"], first_order["id"]).status_code == 201


def test_another_merchants_template_is_not_found(client, store):
    other = make_store(client, leaf={"price": 100, "stock": 1})
    theirs = create_template(client, other)
    response = claim(client, store["member"], theirs["id"])
    assert response.status_code == 404
    assert client.get(f"{M}/coupon-templates/{theirs['id']}", headers=store["staff"]).status_code == 404


def test_a_coupon_past_its_validity_is_expired_in_the_wallet_before_any_sweep(client, store):
    coupon = claimed(client, store)
    row = db.session.get(Coupon, coupon["id"])
    row.valid_from, row.valid_until = utcnow() - timedelta(days=2), utcnow() - timedelta(seconds=1)
    db.session.flush()
    assert client.get("/api/v1/coupons?status=available", headers=store["member"]).json["items"] == []
    expired = client.get("/api/v1/coupons?status=expired", headers=store["member"]).json["items"]
    assert [(c["id"], c["status"]) for c in expired] == [(coupon["id"], "expired")]


# --- at checkout --------------------------------------------------------------------------------


def test_the_quote_uses_the_best_coupon_and_lists_every_wallet_coupon(client, store):
    ten_off = claimed(client, store)  # 满100减10
    twenty_off = claimed(client, store, name="满200减30", threshold=20000, amount=3000)
    body = order_body(store["tea"], 2)  # 12,000 fen
    answer = quote(client, store, body).json
    assert answer["discount_total"] == 1000
    assert [(a["source"], a["reference"], a["amount"]) for a in answer["adjustments"]] == [
        ("coupons", str(ten_off["id"]), 1000)
    ]
    options = {o["id"]: o for o in answer["options"]["coupons"]}
    assert (options[ten_off["id"]]["applicable"], options[ten_off["id"]]["selected"]) == (True, True)
    missed = options[twenty_off["id"]]
    assert (missed["applicable"], missed["reason"], missed["short_by"]) == (False, "threshold_not_met", 8000)
    assert answer["payable_total"] == 12000 - 1000 + answer["shipping_fee"]
    none = quote(client, store, {**body, "coupons": []}).json
    assert none["discount_total"] == 0 and all(not o["selected"] for o in none["options"]["coupons"])


def test_a_quote_sends_as_many_statements_with_a_full_wallet_as_with_an_empty_one(client, store):
    from tests.factories import sent_statements

    body = {
        **order_body(store["tea"]),
        "items": [{"sku_id": store["tea"], "quantity": 2}, {"sku_id": store["cake"], "quantity": 1}],
    }
    quote(client, store, body)  # warm: the first request of a member may read more
    with sent_statements() as empty:
        assert quote(client, store, body).status_code == 200
    for n in range(12):
        claimed(client, store, name=f"券{n}", threshold=1000 * n, amount=100 + n, stackable=n % 2 == 0)
    with sent_statements() as full:
        answer = quote(client, store, body)
    assert answer.status_code == 200 and len(answer.json["options"]["coupons"]) == 12
    assert len(full) == len(empty)
    assert sum("coupons" in statement for statement in full) == 1  # the wallet, in one statement


def test_a_named_coupon_is_used_or_refused_with_the_reason(client, store):
    ten_off = claimed(client, store)
    body = order_body(store["cake"], 1)  # 3,000 fen: under the threshold
    refused = quote(client, store, {**body, "coupons": [ten_off["id"]]})
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "coupon_not_applicable")
    assert refused.json["error"]["details"] == {
        "coupon_id": ten_off["id"],
        "reason": "threshold_not_met",
        "short_by": 7000,
    }
    unknown = quote(client, store, {**body, "coupons": [ten_off["id"] + 1000]})
    assert unknown.status_code == 422 and "coupons" in unknown.json["error"]["details"]["fields"]
    stranger = member_headers(client, store["merchant"].code, "stranger")
    theirs = quote(client, store, {**order_body(store["tea"], 2), "coupons": [ten_off["id"]]}, headers=stranger)
    assert theirs.status_code == 422  # another member's coupon is not in your wallet
    both = quote(client, store, {**body, "coupons": [ten_off["id"]], "selections": {"coupons": {"ids": []}}})
    assert both.status_code == 422


def test_two_coupons_that_do_not_stack_are_refused_together_and_stackable_ones_add_up(client, store):
    a = claimed(client, store, name="A", threshold=0, amount=500)
    b = claimed(client, store, name="B", threshold=0, amount=700)
    body = order_body(store["tea"], 1)
    refused = quote(client, store, {**body, "coupons": [a["id"], b["id"]]})
    assert (refused.status_code, refused.json["error"]["code"]) == (422, "coupons_do_not_stack")
    c = claimed(client, store, name="C", threshold=0, amount=300, stackable=True)
    d = claimed(client, store, name="D", threshold=0, amount=200, stackable=True)
    stacked = quote(client, store, {**body, "coupons": [c["id"], d["id"]]}).json
    assert stacked["discount_total"] == 500
    best = quote(client, store, body).json  # alone, B (700) beats C+D (500)
    assert [a["reference"] for a in best["adjustments"]] == [str(b["id"])]


def test_a_percent_coupon_rounds_down_with_its_cap_and_spreads_over_the_lines_to_the_fen(client, store):
    claimed(client, store, name="9折", kind="percent_off", amount=..., threshold=0, rate_bp=1000, cap=700)
    body = {
        **order_body(store["tea"], 1),
        "items": [{"sku_id": store["tea"], "quantity": 1}, {"sku_id": store["cake"], "quantity": 1}],
    }
    answer = quote(client, store, body).json  # 10% of 9,000 = 900, capped at 700
    assert answer["discount_total"] == 700
    discounts = {line["sku_id"]: line["discount"] for line in answer["lines"]}
    assert sum(discounts.values()) == 700 and discounts[store["tea"]] > discounts[store["cake"]]
    assert all(line["paid_amount"] == line["goods_amount"] - line["discount"] for line in answer["lines"])


def test_a_product_scoped_coupon_counts_only_its_lines_towards_the_threshold(client, store):
    claimed(
        client, store, name="茶叶券", scope="products", scope_ids=[store["tea_product"]], threshold=7000, amount=1000
    )
    body = {
        **order_body(store["tea"], 1),
        "items": [{"sku_id": store["tea"], "quantity": 1}, {"sku_id": store["cake"], "quantity": 1}],
    }
    answer = quote(client, store, body).json  # tea 6,000 < 7,000 though the order is 9,000
    option = answer["options"]["coupons"][0]
    assert (option["applicable"], option["reason"], option["short_by"]) == (False, "threshold_not_met", 1000)


def test_a_category_scoped_coupon_takes_the_lines_of_its_sub_categories(client, store):
    from shop.catalog import service as catalog
    from shop.core.db import transaction
    from tests.factories import make_product

    merchant = store["merchant"]
    with transaction():
        drinks = catalog.create_category(merchant.id, name="饮品")
        tea = catalog.create_category(merchant.id, name="茶", parent_id=drinks.id)
    leaf = make_product(merchant, "龙井", skus=[{"specs": {}, "price": 8000, "stock": 5}], category_id=tea.id)
    claimed(client, store, name="饮品券", scope="categories", scope_ids=[drinks.id], threshold=5000, amount=500)
    body = {
        **order_body(store["cake"]),
        "items": [{"sku_id": leaf.skus[0].id, "quantity": 1}, {"sku_id": store["cake"], "quantity": 1}],
    }
    answer = quote(client, store, body).json
    discounts = {line["sku_id"]: line["discount"] for line in answer["lines"]}
    assert discounts == {leaf.skus[0].id: 500, store["cake"]: 0}


def test_a_free_shipping_coupon_takes_the_fee_and_a_gift_coupon_one_unit(client, store):
    claimed(client, store, name="包邮", kind="free_shipping", amount=..., threshold=0)
    answer = quote(client, store, order_body(store["cake"], 1)).json
    assert answer["shipping_fee"] > 0 and answer["payable_total"] == 3000
    assert answer["adjustments"][0]["kind"] == "shipping"
    gift_store = make_store(client, tea={"price": 6000, "stock": 5}, cake={"price": 3000, "stock": 5})
    claimed(client, gift_store, name="送蛋糕", kind="gift", amount=..., threshold=0, gift_sku_id=gift_store["cake"])
    without = quote(client, gift_store, order_body(gift_store["tea"], 1)).json
    assert without["options"]["coupons"][0]["reason"] == "add_gift_sku"
    body = {
        **order_body(gift_store["tea"]),
        "items": [{"sku_id": gift_store["tea"], "quantity": 1}, {"sku_id": gift_store["cake"], "quantity": 2}],
    }
    answer = quote(client, gift_store, body).json
    cake = next(line for line in answer["lines"] if line["sku_id"] == gift_store["cake"])
    assert cake["discount"] == 3000 and answer["discount_total"] == 3000


# --- the coupon through the order's life --------------------------------------------------------


def test_placing_locks_the_coupon_paying_uses_it_and_the_stats_count_it(client, store):
    coupon = claimed(client, store)
    order = placed_order(client, store["member"], order_body(store["tea"], 2))
    assert order["discount_total"] == 1000
    assert coupon_status(coupon["id"]) == "locked"
    again = quote(client, store, {**order_body(store["tea"], 2), "coupons": [coupon["id"]]})
    assert (again.status_code, again.json["error"]["code"]) == (409, "coupon_unavailable")
    assert quote(client, store, order_body(store["tea"], 2)).json["discount_total"] == 0  # not offered while locked
    assert fake_pay(client, order["order_no"]).json["status"] == "paid"
    assert coupon_status(coupon["id"]) == "used"
    used = client.get("/api/v1/coupons?status=used", headers=store["member"]).json["items"]
    assert [(c["id"], c["order_id"]) for c in used] == [(coupon["id"], order["id"])]
    stats = client.get(f"{M}/coupon-templates/{coupon['template_id']}/stats", headers=store["staff"]).json
    assert stats == {
        "template_id": coupon["template_id"],
        "total_quantity": 100,
        "issued": 1,
        "available": 0,
        "locked": 0,
        "used": 1,
        "expired": 0,
        "discount_given": 1000,
        "orders": 1,
        "sales": order["payable_total"],
    }


def test_cancelling_an_unpaid_order_gives_the_coupon_back(client, store):
    coupon = claimed(client, store)
    order = placed_order(client, store["member"], order_body(store["tea"], 2))
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"])
    assert response.status_code == 200, response.json
    assert coupon_status(coupon["id"]) == "available"
    assert quote(client, store, order_body(store["tea"], 2)).json["discount_total"] == 1000


def test_an_order_placed_with_a_coupon_and_the_same_key_but_other_coupons_is_refused(client, store):
    coupon = claimed(client, store)
    body = order_body(store["tea"], 2)
    first = place(client, store["member"], body, key="coupon-key-0001")
    assert first.status_code == 201
    other = place(client, store["member"], {**body, "coupons": []}, key="coupon-key-0001")
    assert (other.status_code, other.json["error"]["code"]) == (409, "idempotency_key_reused")
    replay = place(client, store["member"], body, key="coupon-key-0001")
    assert replay.status_code == 200 and replay.json["id"] == first.json["id"]
    assert coupon_status(coupon["id"]) == "locked"


def test_a_full_refund_gives_the_coupon_back_and_a_partial_one_does_not(app, client, store):
    coupon = claimed(client, store, per_member_limit=2)
    order, _ = refunded_order(app, client, store["staff"], store["member"], order_body(store["tea"], 2))
    assert order["discount_total"] == 1000
    assert coupon_status(coupon["id"]) == "available"
    paid = paid_order(client, store["member"], order_body(store["tea"], 2))
    assert paid["discount_total"] == 1000 and coupon_status(coupon["id"]) == "used"
    settled_refund(app, client, store["staff"], store["member"], paid["id"], lines=[(paid["lines"][0]["id"], 1)])
    assert coupon_status(coupon["id"]) == "used"
