"""Coupons under races on real connections (each request or call commits on its own): the last
coupons of a template, one member's limits, one coupon in two orders, one source issued twice."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, insert, select

from coupons import service
from coupons.models import Coupon, CouponTemplate
from shop.core.db import db, transaction
from shop.core.errors import Conflict
from shop.identity.models import Member
from tests.factories import in_app as _in_app
from tests.factories import make_merchant, make_product, member_headers, order_body, race, staff_headers

pytestmark = pytest.mark.committing
_seq = itertools.count(1)


def _shop(app: Flask, **terms: Any) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        merchant = make_merchant()
        product = make_product(merchant, skus=[{"specs": {}, "price": 12000, "stock": 500}])
        with transaction():
            template = service.create_template(
                merchant.id,
                name="满100减10",
                kind="amount_off",
                threshold=10000,
                amount=1000,
                valid_days=7,
                channels=["centre"],
                **{"total_quantity": 100, **terms},
            )
        return {"merchant": merchant, "template_id": template.id, "sku_id": product.skus[0].id}

    return _in_app(app, build)


def _members(app: Flask, merchant_id: int, n: int) -> list[int]:
    def build() -> list[int]:
        tag = next(_seq)
        with transaction():
            rows = [{"merchant_id": merchant_id, "openid": f"racer-{tag}-{i}"} for i in range(n)]
            return list(db.session.execute(insert(Member).returning(Member.id), rows).scalars())

    return _in_app(app, build)


def _claim(app: Flask, merchant_id: int, member_id: int, template_id: int) -> str:
    def call() -> str:
        try:
            with transaction():
                service.claim(merchant_id, member_id, template_id)
            return "issued"
        except Conflict as refused:
            return refused.code

    return _in_app(app, call)


def _issued(app: Flask, template_id: int) -> tuple[int, int]:
    def read() -> tuple[int, int]:
        counted = db.session.execute(select(func.count()).where(Coupon.template_id == template_id)).scalar_one()
        return counted, db.session.get(CouponTemplate, template_id).issued

    return _in_app(app, read)


def test_a_thousand_members_claiming_the_last_hundred_get_exactly_a_hundred(app):
    shop = _shop(app, total_quantity=100)
    members = _members(app, shop["merchant"].id, 1000)
    outcomes = race(1000, lambda i: _claim(app, shop["merchant"].id, members[i], shop["template_id"]), timeout=120)
    assert outcomes.count("issued") == 100
    assert set(outcomes) == {"issued", "coupon_sold_out"}
    assert _issued(app, shop["template_id"]) == (100, 100)


def test_one_members_concurrent_claims_never_pass_the_per_member_limits(app):
    shop = _shop(app, total_quantity=1000, per_member_limit=3, per_member_daily_limit=2)
    member = _members(app, shop["merchant"].id, 1)[0]
    outcomes = race(30, lambda i: _claim(app, shop["merchant"].id, member, shop["template_id"]))
    assert outcomes.count("issued") == 2  # the daily limit is the tighter one today
    assert set(outcomes) == {"issued", "coupon_limit_reached"}
    assert _issued(app, shop["template_id"]) == (2, 2)


def test_one_coupon_in_two_orders_placed_at_once_makes_one_order(app):
    shop = _shop(app)
    code = shop["merchant"].code

    def login() -> dict[str, str]:
        return member_headers(app.test_client(), code, "twice")

    headers = _in_app(app, login)
    member_id = _in_app(app, lambda: app.test_client().get("/api/v1/me", headers=headers).json["id"])
    assert _claim(app, shop["merchant"].id, member_id, shop["template_id"]) == "issued"
    coupon_id = _in_app(app, lambda: db.session.execute(select(Coupon.id)).scalar_one())

    def place(i: int):
        body = {**order_body(shop["sku_id"], 1), "coupons": [coupon_id]}
        return app.test_client().post(
            "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": f"two-orders-{i:04d}"}
        )

    responses = race(2, place)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.json for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json["error"]["code"] == "coupon_unavailable"
    placed = next(r for r in responses if r.status_code == 201).json
    assert placed["discount_total"] == 1000
    owner = _in_app(app, lambda: staff_headers(app.test_client(), code))
    orders = _in_app(app, lambda: app.test_client().get("/api/v1/merchant/orders", headers=owner).json["items"])
    assert [o["id"] for o in orders] == [placed["id"]]  # the refused placement left nothing
    coupon = _in_app(app, lambda: db.session.get(Coupon, coupon_id))
    assert (coupon.status, coupon.order_id) == ("locked", placed["id"])


def test_orders_placed_at_once_with_the_coupons_left_to_the_server_are_all_placed_and_one_takes_the_coupon(app):
    """As one after the other: the first takes the coupon, the others are placed without it
    (not refused over a coupon their member never chose)."""
    shop = _shop(app)
    code = shop["merchant"].code
    headers = _in_app(app, lambda: member_headers(app.test_client(), code, "auto"))
    member_id = _in_app(app, lambda: app.test_client().get("/api/v1/me", headers=headers).json["id"])
    assert _claim(app, shop["merchant"].id, member_id, shop["template_id"]) == "issued"

    def place(i: int):
        return app.test_client().post(
            "/api/v1/orders",
            json=order_body(shop["sku_id"], 1),
            headers={**headers, "Idempotency-Key": f"auto-orders-{i:04d}"},
        )

    responses = race(4, place)

    assert [r.status_code for r in responses] == [201] * 4, [r.json for r in responses]
    assert sorted(r.json["discount_total"] for r in responses) == [0, 0, 0, 1000]
    coupon = _in_app(app, lambda: db.session.execute(select(Coupon)).scalar_one())
    taker = next(r.json["id"] for r in responses if r.json["discount_total"])
    assert (coupon.status, coupon.order_id) == ("locked", taker)


def test_two_issues_of_one_source_make_one_coupon(app):
    shop = _shop(app)
    member = _members(app, shop["merchant"].id, 1)[0]

    def issue(i: int) -> int:
        def call() -> int:
            with transaction():
                coupon = service.issue(
                    shop["merchant"].id, member, shop["template_id"], channel="campaign", source_ref="prize:77"
                )
                return coupon.id

        return _in_app(app, call)

    ids = race(8, issue)
    assert len(set(ids)) == 1
    assert _issued(app, shop["template_id"]) == (1, 1)
