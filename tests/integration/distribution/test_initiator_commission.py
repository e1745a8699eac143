"""The initiator (开团人) of a group buy that succeeds earns the offer's leader_commission_bp on what
the group's other members paid, as a level-0 commission of the distribution program: per line,
rounded down, once, lowered by refunds, and only for an active distributor."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from distribution import distributors, program
from distribution.models import Commission
from shop.core.db import db, transaction, utcnow
from shop.core.events import GroupSucceeded, bus
from shop.identity.models import Member
from tests.factories import ADDRESS, fake_pay, make_merchant, make_product, settled_refund, staff_headers


def _login(client, merchant, name):
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": f"test:{name}"})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}, db.session.get(Member, response.json["member"]["id"])


def _group_buy(client, *, leader_distributor: bool = True, bp: int | None = 1000):
    merchant = make_merchant()
    sku = make_product(merchant, skus=[{"specs": {}, "price": 3000, "stock": 50}]).skus[0].id
    with transaction():
        program.update_program(merchant.id, enabled=True, levels=2, rates_bp=[1000, 500], join_rule="open")
    now = utcnow()
    offer = client.post(
        "/api/v1/merchant/group-buys",
        json={
            "sku_id": sku,
            "price": 1999,
            "group_size": 3,
            "quota": 20,
            "per_member_limit": 5,
            "leader_commission_bp": bp,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
        headers=staff_headers(client, merchant.code),
    ).json
    headers, leader = _login(client, merchant, "leader")
    if leader_distributor:
        with transaction():
            distributors.apply(merchant.id, leader.id)
    body = {"fulfilment": "delivery", "address": dict(ADDRESS)}
    opened = client.post(
        f"/api/v1/group-buys/{offer['id']}/groups", json=body, headers={**headers, "Idempotency-Key": "lead-open-1"}
    ).json
    fake_pay(client, opened["order"]["order_no"])
    joiners = []
    for name in ("bob", "carol"):
        member_headers, _ = _login(client, merchant, name)
        joined = client.post(
            f"/api/v1/groups/{opened['group']['id']}/orders",
            json={**body, "quantity": 2} if name == "carol" else body,
            headers={**member_headers, "Idempotency-Key": f"join-{name}-1"},
        ).json
        fake_pay(client, joined["order"]["order_no"])
        joiners.append((member_headers, joined["order"]))
    return merchant, leader, opened, joiners


def _initiator_commissions(merchant_id: int):
    db.session.expire_all()
    return [
        (c.order_id, c.level, c.base_amount, c.amount, c.status)
        for c in db.session.execute(
            select(Commission)
            .where(Commission.merchant_id == merchant_id, Commission.level == 0)
            .order_by(Commission.id)
        ).scalars()
    ]


def test_the_initiator_earns_on_the_other_members_lines_once(ctx, client):
    merchant, leader, opened, joiners = _group_buy(client)
    (_, bobs), (_, carols) = joiners
    # 10% of 1,999 = 199 (rounded down); of 3,998 = 399; nothing on the initiator's own order.
    assert _initiator_commissions(merchant.id) == [
        (bobs["id"], 0, 1999, 199, "pending"),
        (carols["id"], 0, 3998, 399, "pending"),
    ]
    event = GroupSucceeded(
        merchant_id=merchant.id,
        group_id=opened["group"]["id"],
        offer_id=1,
        product_id=1,
        leader_id=leader.id,
        order_ids=(opened["order"]["id"], bobs["id"], carols["id"]),
        leader_commission_bp=1000,
    )
    with transaction():
        bus.publish(event)  # a replay
    assert len(_initiator_commissions(merchant.id)) == 2


def test_a_refund_lowers_the_initiators_commission(app, ctx, client):
    merchant, leader, opened, joiners = _group_buy(client)
    carol_headers, carols = joiners[1]
    settled_refund(app, client, staff_headers(client, merchant.code), carol_headers, carols["id"])
    assert _initiator_commissions(merchant.id)[1][3:] == (0, "reversed")


def test_nothing_for_an_initiator_who_is_not_a_distributor_or_without_a_rate(ctx, client):
    merchant, *_ = _group_buy(client, leader_distributor=False)
    assert _initiator_commissions(merchant.id) == []
    merchant, *_ = _group_buy(client, bp=None)
    assert _initiator_commissions(merchant.id) == []
