"""The distribution engine through its services, on orders placed and paid through the API:
binding, commissions on payment, refunds before and after settlement, settlement, the ledger."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from distribution import binding, commissions, distributors, ledger, program, settlement
from distribution.models import Binding, BindingLog, Commission, LedgerEntry
from shop.core.db import db, transaction, utcnow
from shop.identity.models import Member
from tests.factories import (
    completed_order,
    make_merchant,
    make_product,
    order_body,
    paid_order,
    reload,
    staff_headers,
)


def _login(client, merchant, name, invite=None):
    body = {"merchant": merchant.code, "code": f"test:{name}"}
    if invite:
        body["invite"] = invite
    response = client.post("/api/v1/auth/wx-login", json=body)
    assert response.status_code == 200, response.json
    member = db.session.get(Member, response.json["member"]["id"])
    return {"Authorization": f"Bearer {response.json['token']}"}, member


def _shop(**settings):
    merchant = make_merchant()
    product = make_product(merchant, skus=[{"specs": {}, "price": 10000, "stock": 100}])
    with transaction():
        program.update_program(merchant.id, enabled=True, levels=2, rates_bp=[1000, 500], join_rule="open", **settings)
    return merchant, product.skus[0].id


def _distributor(merchant, member):
    with transaction():
        return distributors.apply(merchant.id, member.id)


def _chain(client):
    """alice <- bob <- carol (bob and alice distributors)."""
    merchant, sku = _shop()
    _, alice = _login(client, merchant, "alice")
    _distributor(merchant, alice)
    _, bob = _login(client, merchant, "bob", invite=alice.invite_code)
    _distributor(merchant, bob)
    carol_headers, carol = _login(client, merchant, "carol", invite=bob.invite_code)
    return merchant, sku, alice, bob, carol, carol_headers


def _commissions(order_id):
    db.session.expire_all()
    return [
        (c.level, c.distributor_id, c.amount, c.status)
        for c in db.session.execute(
            select(Commission).where(Commission.order_id == order_id).order_by(Commission.level)
        ).scalars()
    ]


def test_a_paid_order_pays_two_levels_up_the_bindings(ctx, client):
    merchant, sku, alice, bob, carol, carol_headers = _chain(client)
    assert db.session.get(Binding, carol.id).distributor_member_id == bob.id
    order = paid_order(client, carol_headers, order_body(sku, 2))
    d_alice = distributors.distributor_of(merchant.id, alice.id)
    d_bob = distributors.distributor_of(merchant.id, bob.id)
    assert _commissions(order["id"]) == [(1, d_bob.id, 2000, "pending"), (2, d_alice.id, 1000, "pending")]
    assert ledger.balances(d_bob.id).pending == 2000


def test_a_replayed_payment_records_nothing_more(ctx, client):
    merchant, sku, alice, bob, carol, carol_headers = _chain(client)
    order = paid_order(client, carol_headers, order_body(sku, 1))
    from shop.core.events import OrderLineInfo
    from shop.orders.models import OrderLine

    line = db.session.execute(select(OrderLine).where(OrderLine.order_id == order["id"])).scalar_one()
    info = OrderLineInfo(line.id, line.sku_id, line.product_id, line.quantity, line.paid_amount)
    with transaction():
        assert commissions.record(merchant.id, order["id"], carol.id, [info]) == 0
    assert db.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 2


def test_a_completed_orders_commissions_settle_into_the_withdrawable_balance(ctx, client):
    merchant, sku, alice, bob, carol, carol_headers = _chain(client)
    staff = staff_headers(client, merchant.code)
    completed_order(client, staff, carol_headers, order_body(sku, 4))
    d_bob = distributors.distributor_of(merchant.id, bob.id)
    with transaction():
        done = settlement.settle_batch(now=utcnow() + timedelta(seconds=5))
    assert (done.commissions, done.distributors, done.amount) == (2, 2, 6000)
    assert reload(type(d_bob), d_bob.id).available == 4000
    with transaction():
        assert settlement.settle_batch(now=utcnow() + timedelta(seconds=5)).commissions == 0
    checked, problems = ledger.reconcile(merchant.id)
    assert (checked, problems) == (2, [])


def test_binding_refuses_self_cycles_and_a_second_distributor_under_first_wins(ctx, client):
    merchant, sku, alice, bob, carol, carol_headers = _chain(client)
    _distributor(merchant, carol)
    with transaction():
        assert binding.bind(merchant.id, alice.id, bob.id) == binding.CYCLE
        assert binding.bind(merchant.id, alice.id, alice.id) == binding.SELF
        assert binding.bind(merchant.id, carol.id, alice.id) == binding.ALREADY_BOUND
    reasons = [row.reason for row in db.session.execute(select(BindingLog).order_by(BindingLog.id)).scalars()]
    assert reasons[-3:] == [binding.CYCLE, binding.SELF, binding.ALREADY_BOUND]
