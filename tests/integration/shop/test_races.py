"""Counters many people race for hold under real concurrency: each thread below runs the whole
HTTP stack on its own database connection, and everything commits for real."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from shop.catalog.models import Sku, StockMovement
from shop.core.db import db
from shop.core.events import MemberJoined, bus
from shop.identity.models import Member
from tests.factories import make_merchant, make_product, race, staff_headers

pytestmark = pytest.mark.committing


def test_concurrent_stock_removals_never_take_more_than_there_is(app):
    with app.app_context():
        merchant = make_merchant()
        product = make_product(merchant, skus=[{"specs": {}, "price": 100, "stock": 10}])
        sku_id = product.skus[0].id
        client = app.test_client()
        headers = staff_headers(client, merchant.code)
        db.session.remove()

    url = f"/api/v1/merchant/skus/{sku_id}/stock-adjustments"
    statuses = race(
        25, lambda i: app.test_client().post(url, json={"delta": -1, "reason": "damage"}, headers=headers).status_code
    )

    assert Counter(statuses) == {201: 10, 409: 15}
    with app.app_context():
        assert db.session.get(Sku, sku_id).stock == 0
        movements = db.session.execute(
            select(func.count(), func.sum(StockMovement.delta)).where(StockMovement.sku_id == sku_id)
        ).one()
        assert tuple(movements) == (11, 0)  # the initial 10, then ten removals of one


def test_simultaneous_first_logins_create_one_member_and_one_joined_event(app):
    joined: list[int] = []

    def on_joined(event: MemberJoined) -> None:
        joined.append(event.member_id)

    bus.subscribe(MemberJoined, on_joined)
    try:
        with app.app_context():
            merchant = make_merchant()
            db.session.remove()
        body = {"merchant": merchant.code, "code": "test:same-person"}
        responses = race(12, lambda i: app.test_client().post("/api/v1/auth/wx-login", json=body))
    finally:
        bus.unsubscribe(MemberJoined, on_joined)

    assert {r.status_code for r in responses} == {200}
    ids = {r.json["member"]["id"] for r in responses}
    assert len(ids) == 1
    assert sum(r.json["new_member"] for r in responses) == 1
    assert joined == list(ids)
    with app.app_context():
        count = db.session.execute(select(func.count()).where(Member.merchant_id == merchant.id)).scalar()
        assert count == 1
