"""Group buys under real concurrency: payments arrive as WeChat Pay notifications on their own
connections and commit for real. The last seat goes to exactly one payer and the others are
refunded; a group whose time runs out while its job, its sweep and a last payment race is
closed once, and each of its orders ends either kept or refunded."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from api.worker import run_burst
from shop.core.db import db, utcnow
from shop.core.events import GroupFailed, GroupSucceeded, bus
from shop.offers import jobs
from shop.offers.models import Group, GroupOrder, OfferUnit
from shop.orders.models import Order, Refund
from tests.factories import ADDRESS, make_merchant, make_product, member_headers, race, staff_headers

pytestmark = pytest.mark.committing


def _phone(app, i: int):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.2.{i // 250}.{i % 250 + 1}"
    return client


def _notify(app, merchant, order: dict, transaction_id: str):
    """A signed payment notification for the order, as WeChat Pay would send it."""
    with app.app_context():
        headers, body = app.extensions["groupshop.payments"].payment_notification(
            merchant,
            out_trade_no=order["order_no"],
            total=order["payable_total"],
            openid="o-payer",
            transaction_id=transaction_id,
        )
        db.session.remove()
    return lambda: app.test_client().post(
        f"/api/v1/payments/wechatpay/{merchant.code}/notify", data=body, headers=headers
    )


def _group(app, *, size: int, joiners: int, on_expiry: str = "refund"):
    """A forming group of `size` whose initiator paid, and `joiners` members with unpaid join orders."""
    with app.app_context():
        merchant = make_merchant()
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 2990, "stock": 100}]).skus[0].id
        now = utcnow()
        client = app.test_client()
        offer = client.post(
            "/api/v1/merchant/group-buys",
            json={
                "sku_id": sku_id,
                "price": 1500,
                "group_size": size,
                "quota": 60,
                "on_expiry": on_expiry,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            headers=staff_headers(client, merchant.code),
        ).json
        heads = [member_headers(_phone(app, i), merchant.code, f"m{i}") for i in range(joiners + 1)]
        body = {"fulfilment": "delivery", "address": dict(ADDRESS)}
        opened = client.post(
            f"/api/v1/group-buys/{offer['id']}/groups", json=body, headers={**heads[0], "Idempotency-Key": "open-0001"}
        ).json
        db.session.remove()
    _notify(app, merchant, opened["order"], "4200000000")()
    group_id = opened["group"]["id"]
    orders = []
    for i in range(1, joiners + 1):
        response = app.test_client().post(
            f"/api/v1/groups/{group_id}/orders", json=body, headers={**heads[i], "Idempotency-Key": f"join-{i:05d}"}
        )
        assert response.status_code == 201, response.json
        orders.append(response.json["order"])
    return merchant, group_id, opened["order"], orders


def _state(app, group_id: int) -> tuple[str, int, bool]:
    with app.app_context():
        group = db.session.get(Group, group_id)
        db.session.remove()
        return group.status, group.joined, group.simulated


def test_ten_payments_for_the_last_seat_one_gets_it_and_nine_are_refunded(app):
    merchant, group_id, _, orders = _group(app, size=2, joiners=10)
    succeeded: list[int] = []
    handler = lambda event: succeeded.append(event.group_id)  # noqa: E731
    bus.subscribe(GroupSucceeded, handler)
    try:
        sends = [_notify(app, merchant, order, f"42000001{i:02d}") for i, order in enumerate(orders)]
        responses = race(10, lambda i: sends[i]())
    finally:
        bus.unsubscribe(GroupSucceeded, handler)
    assert [r.status_code for r in responses] == [204] * 10
    assert _state(app, group_id) == ("succeeded", 2, False)
    assert succeeded == [group_id]
    with app.app_context():
        statuses = Counter(
            db.session.execute(select(Order.status).where(Order.id.in_([o["id"] for o in orders]))).scalars()
        )
        assert statuses == {"paid": 1, "cancelled": 9}
        kinds = Counter(
            db.session.execute(
                select(Refund.kind)
                .join(Order, Order.id == Refund.order_id)
                .where(Order.id.in_([o["id"] for o in orders]))
            ).scalars()
        )
        assert kinds == {"late_payment": 9}
        seats = db.session.execute(
            select(func.count()).where(GroupOrder.group_id == group_id, GroupOrder.seat.is_not(None))
        ).scalar_one()
        assert seats == 2
        held = db.session.execute(
            select(func.count()).where(OfferUnit.order_id.in_([o["id"] for o in orders]))
        ).scalar_one()
        assert held == 1  # the nine cancelled orders gave their units back
        db.session.remove()


@pytest.mark.parametrize("on_expiry", ["refund", "complete"])
def test_the_close_job_its_sweep_and_a_last_second_payment_close_the_group_once(app, on_expiry):
    merchant, group_id, first, orders = _group(app, size=3, joiners=2, on_expiry=on_expiry)
    _notify(app, merchant, orders[0], "4200000200")()
    with app.app_context():
        db.session.execute(
            update(Group).where(Group.id == group_id).values(expires_at=utcnow() + timedelta(milliseconds=300))
        )
        db.session.commit()
        db.session.remove()
    closed: list[str] = []
    on_success = lambda event: closed.append("succeeded")  # noqa: E731
    on_failure = lambda event: closed.append("failed")  # noqa: E731
    bus.subscribe(GroupSucceeded, on_success)
    bus.subscribe(GroupFailed, on_failure)
    last = _notify(app, merchant, orders[1], "4200000201")

    def act(i: int):
        if i == 0:
            return last().status_code
        import time

        time.sleep(0.35)
        with app.app_context():
            try:
                return jobs.close_group(group_id) if i == 1 else jobs.sweep_groups()
            finally:
                db.session.remove()

    try:
        race(3, act)
        with app.app_context():
            jobs.sweep_groups()
            run_burst(app)
            run_burst(app)
            db.session.remove()
    finally:
        bus.unsubscribe(GroupSucceeded, on_success)
        bus.unsubscribe(GroupFailed, on_failure)

    status, joined, simulated = _state(app, group_id)
    assert len(closed) == 1 and closed[0] == status
    with app.app_context():
        ids = [first["id"], *(o["id"] for o in orders)]
        final = dict(db.session.execute(select(Order.id, Order.status).where(Order.id.in_(ids))).all())
        db.session.remove()
    if status == "succeeded":
        # Full by the last payment, or completed short (模拟成团) with the payment refunded.
        assert simulated == (joined < 3)
        assert all(final[i] in ("paid", "cancelled") for i in ids)
        assert sum(final[i] == "paid" for i in ids) == joined
    else:
        assert on_expiry == "refund" and joined < 3
        assert all(final[i] in ("refunded", "cancelled") for i in ids), final
