"""Order rules at the service level: placement reserves stock and snapshots the lines, the
Idempotency-Key replays or refuses, and cancelling or expiring gives the stock back exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shop.catalog.models import Product, Sku, StockMovement
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.events import OrderCancelled
from shop.orders import service as orders
from shop.orders.models import IdempotencyKey, Order
from tests.factories import make_member, make_merchant, make_product, paid_by_service, placed_by_service


@pytest.fixture
def shop(ctx):
    merchant = make_merchant()
    product = make_product(merchant, "Kiwi", skus=[{"specs": {"规格": "6个"}, "price": 1500, "stock": 10}])
    return merchant, make_member(merchant), product.skus[0].id


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _movements(sku_id: int, reason: str) -> list[int]:
    query = select(StockMovement.delta).where(StockMovement.sku_id == sku_id, StockMovement.reason == reason)
    return list(db.session.execute(query.order_by(StockMovement.id)).scalars())


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_placing_reserves_the_stock_and_snapshots_the_lines_and_totals(shop):
    merchant, member, sku_id = shop
    placed = placed_by_service(merchant.id, member.id, [(sku_id, 3)], remark="放门口")
    order = placed.order
    assert placed.replayed is False
    assert (order.status, order.goods_total, order.shipping_fee, order.payable_total) == (
        "pending_payment",
        4500,
        800,
        5300,
    )
    assert order.expires_at > order.created_at
    (line,) = order.lines
    assert (line.sku_id, line.title, line.specs, line.unit_price, line.quantity, line.paid_amount) == (
        sku_id,
        "Kiwi",
        {"规格": "6个"},
        1500,
        3,
        4500,
    )
    assert _stock(sku_id) == 7
    assert _movements(sku_id, "order_reserved") == [-3]


def test_placing_more_than_the_stock_is_refused_and_reserves_nothing(shop):
    merchant, member, sku_id = shop
    with pytest.raises(Conflict) as refused:
        placed_by_service(merchant.id, member.id, [(sku_id, 11)])
    assert refused.value.code == "insufficient_stock"
    assert _stock(sku_id) == 10
    assert (_count(Order), _count(IdempotencyKey)) == (0, 0)


def test_a_delivery_without_an_address_is_refused(shop):
    merchant, member, sku_id = shop
    with pytest.raises(InvalidInput) as refused, transaction():
        orders.place_order(
            merchant.id,
            member.id,
            items=[{"sku_id": sku_id, "quantity": 1}],
            fulfilment="delivery",
            address=None,
            idempotency_key="no-address",
            fingerprint="f",
        )
    assert refused.value.code == "address_required"
    assert _stock(sku_id) == 10


def test_the_same_key_and_request_replays_the_order_and_reserves_once(shop):
    merchant, member, sku_id = shop
    first = placed_by_service(merchant.id, member.id, [(sku_id, 2)], key="k-1")
    again = placed_by_service(merchant.id, member.id, [(sku_id, 2)], key="k-1")
    assert (again.replayed, again.order.id) == (True, first.order.id)
    assert _stock(sku_id) == 8
    assert _count(Order) == 1


def test_the_same_key_with_another_request_is_refused(shop):
    merchant, member, sku_id = shop
    placed_by_service(merchant.id, member.id, [(sku_id, 2)], key="k-1")
    with pytest.raises(Conflict) as refused:
        placed_by_service(merchant.id, member.id, [(sku_id, 3)], key="k-1")
    assert refused.value.code == "idempotency_key_reused"
    assert (_stock(sku_id), _count(Order)) == (8, 1)


def test_a_key_is_the_members_own(shop):
    """Another member (or another merchant's member) using the same key places their own order."""
    merchant, member, sku_id = shop
    neighbour = make_member(merchant, "bob")
    mine = placed_by_service(merchant.id, member.id, [(sku_id, 1)], key="k-1")
    theirs = placed_by_service(merchant.id, neighbour.id, [(sku_id, 1)], key="k-1")
    assert theirs.replayed is False and theirs.order.id != mine.order.id
    assert _stock(sku_id) == 8


def test_the_member_cancels_an_unpaid_order_and_the_stock_comes_back_once(shop, events):
    merchant, member, sku_id = shop
    order = placed_by_service(merchant.id, member.id, [(sku_id, 4)]).order
    with transaction():
        cancelled = orders.cancel_order(order.id, reason="member", merchant_id=merchant.id, member_id=member.id)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "member")
    with pytest.raises(Conflict), transaction():
        orders.cancel_order(order.id, reason="member", merchant_id=merchant.id, member_id=member.id)
    assert _stock(sku_id) == 10
    assert _movements(sku_id, "order_released") == [4]
    assert [(e.order_id, e.reason) for e in events.of(OrderCancelled)] == [(order.id, "member")]


def test_only_the_orders_member_may_cancel_it(shop):
    merchant, member, sku_id = shop
    order = placed_by_service(merchant.id, member.id, [(sku_id, 1)]).order
    neighbour = make_member(merchant, "bob")
    for merchant_id, member_id in ((merchant.id, neighbour.id), (merchant.id + 10**9, member.id)):
        with pytest.raises(NotFound), transaction():
            orders.cancel_order(order.id, reason="member", merchant_id=merchant_id, member_id=member_id)
    assert (db.session.get(Order, order.id).status, _stock(sku_id)) == ("pending_payment", 9)


def test_expiry_before_the_due_time_does_nothing_and_after_it_releases_once(shop, events):
    merchant, member, sku_id = shop
    order = placed_by_service(merchant.id, member.id, [(sku_id, 3)]).order
    with transaction():
        early = order.expires_at - timedelta(seconds=1)
        assert orders.cancel_order(order.id, reason="expired", now=early).status == "pending_payment"
    later = order.expires_at + timedelta(seconds=1)
    for _ in range(3):  # the delayed job, the sweep and a retry
        with transaction():
            assert orders.cancel_order(order.id, reason="expired", now=later).status == "cancelled"
    assert _stock(sku_id) == 10
    assert _movements(sku_id, "order_released") == [3]
    assert [e.reason for e in events.of(OrderCancelled)] == ["expired"]


def test_an_order_paid_before_its_expiry_runs_is_not_expired_and_keeps_its_stock(shop, events):
    merchant, member, sku_id = shop
    order = placed_by_service(merchant.id, member.id, [(sku_id, 2)]).order
    paid_by_service(order.id)
    with transaction():
        assert orders.cancel_order(order.id, reason="expired", now=order.expires_at + timedelta(hours=1)).status == (
            "paid"
        )
    assert _stock(sku_id) == 8
    assert events.names() == ["OrderPlaced", "OrderPaid"]
    db.session.expire_all()
    assert db.session.get(Product, db.session.get(Sku, sku_id).product_id).sales == 2


def test_a_paid_order_cannot_be_cancelled_by_its_member(shop):
    merchant, member, sku_id = shop
    order = placed_by_service(merchant.id, member.id, [(sku_id, 1)]).order
    paid_by_service(order.id)
    with pytest.raises(Conflict), transaction():
        orders.cancel_order(order.id, reason="member", merchant_id=merchant.id, member_id=member.id)
    assert (db.session.get(Order, order.id).status, _stock(sku_id)) == ("paid", 9)
