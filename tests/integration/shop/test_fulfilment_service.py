"""Fulfilment rules at the service level: a paid delivery is shipped and its member confirms
receipt; a paid pickup order waits at its point and is handed over once, for its code; nothing
moves while a refund is open; the after-sales window starts at receipt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.identity import pickup_points
from shop.orders import fulfilment, refunds
from shop.orders.models import Order
from tests.factories import make_member, make_merchant, make_product, paid_by_service, placed_by_service


@pytest.fixture
def shop(ctx):
    merchant = make_merchant()
    sku = make_product(merchant, "Kiwi", skus=[{"specs": {}, "price": 1000, "stock": 50}]).skus[0].id
    member = make_member(merchant)
    with transaction():
        point = pickup_points.create_pickup_point(
            merchant.id,
            name="幸福里",
            address="幸福路 1 号",
            contact_name="李",
            contact_phone="13900139000",
            leader_member_id=member.id,
        )
    return merchant, member, sku, point.id


def _paid(shop, fulfilment_kind: str = "delivery") -> Order:
    merchant, member, sku, point_id = shop
    pickup = {"pickup_point_id": point_id} if fulfilment_kind == "pickup" else {}
    order = placed_by_service(merchant.id, member.id, [(sku, 1)], fulfilment=fulfilment_kind, **pickup).order
    return paid_by_service(order.id)


def _status(order_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Order, order_id).status


def test_a_paid_delivery_is_shipped_with_its_parcel_and_received_by_its_member(shop):
    merchant, member, _, _ = shop
    order = _paid(shop)
    with transaction():
        shipped = fulfilment.ship(merchant.id, order.id, carrier="顺丰", tracking_no="SF1")
    assert (shipped.status, shipped.carrier, shipped.tracking_no) == ("shipped", "顺丰", "SF1")
    now = utcnow()
    with transaction():
        received = fulfilment.confirm_receipt(merchant.id, member.id, order.id, now=now)
    assert received.status == "received"
    assert received.after_sales_until == now + timedelta(days=7)  # the merchant's default after-sales days


@pytest.mark.parametrize("status", ["pending_payment", "shipped"])
def test_only_a_paid_order_is_shipped(shop, status):
    merchant, member, sku, _ = shop
    if status == "pending_payment":
        order = placed_by_service(merchant.id, member.id, [(sku, 1)]).order
    else:
        order = _paid(shop)
        with transaction():
            fulfilment.ship(merchant.id, order.id, carrier="SF", tracking_no="SF1")
    with pytest.raises(Conflict), transaction():
        fulfilment.ship(merchant.id, order.id, carrier="SF", tracking_no="SF2")
    assert _status(order.id) == status


def test_a_pickup_order_is_not_shipped_and_a_delivery_does_not_wait_at_a_point(shop):
    merchant, _, _, _ = shop
    pickup, delivery = _paid(shop, "pickup"), _paid(shop)
    for call in (
        lambda: fulfilment.ship(merchant.id, pickup.id, carrier="SF", tracking_no="SF1"),
        lambda: fulfilment.mark_ready(merchant.id, delivery.id),
    ):
        with pytest.raises(Conflict) as refused, transaction():
            call()
        assert refused.value.code == "wrong_fulfilment"
    assert (_status(pickup.id), _status(delivery.id)) == ("paid", "paid")


def test_receipt_is_confirmed_only_of_a_shipped_order_and_only_by_its_member(shop):
    merchant, member, _, _ = shop
    order = _paid(shop)
    with pytest.raises(Conflict) as refused, transaction():
        fulfilment.confirm_receipt(merchant.id, member.id, order.id)
    assert refused.value.code == "illegal_transition"
    with transaction():
        fulfilment.ship(merchant.id, order.id, carrier="SF", tracking_no="SF1")
    neighbour = make_member(merchant, "bob")
    with pytest.raises(NotFound), transaction():
        fulfilment.confirm_receipt(merchant.id, neighbour.id, order.id)
    assert _status(order.id) == "shipped"


def test_nothing_is_shipped_while_a_refund_is_open(shop):
    merchant, member, _, _ = shop
    order = _paid(shop)
    with transaction():
        refunds.request_refund(merchant.id, member.id, order.id, lines=None, reason="不要了")
    with pytest.raises(Conflict), transaction():
        fulfilment.ship(merchant.id, order.id, carrier="SF", tracking_no="SF1")
    assert _status(order.id) == "paid"


def test_a_pickup_order_is_handed_over_once_for_its_code(shop):
    merchant, _, _, _ = shop
    order = _paid(shop, "pickup")
    with transaction():
        assert fulfilment.mark_ready(merchant.id, order.id).status == "ready_for_pickup"
    wrong = f"{(int(order.pickup_code) + 1) % 10**8:08d}"
    with pytest.raises(InvalidInput) as refused, transaction():
        fulfilment.verify_pickup(merchant.id, order.id, wrong)
    assert refused.value.code == "pickup_code_wrong"
    assert _status(order.id) == "ready_for_pickup"
    with transaction():
        assert fulfilment.verify_pickup(merchant.id, order.id, order.pickup_code).status == "received"
    with pytest.raises(Conflict) as again, transaction():
        fulfilment.verify_pickup(merchant.id, order.id, order.pickup_code)
    assert again.value.code == "already_collected"


def test_a_pickup_order_not_ready_yet_is_not_handed_over(shop):
    merchant, _, _, _ = shop
    order = _paid(shop, "pickup")
    with pytest.raises(Conflict) as refused, transaction():
        fulfilment.verify_pickup(merchant.id, order.id, order.pickup_code)
    assert refused.value.code == "illegal_transition"
    assert _status(order.id) == "paid"


def test_another_merchant_cannot_ship_or_hand_over(shop):
    delivery, pickup = _paid(shop), _paid(shop, "pickup")
    other = make_merchant()
    for call in (
        lambda: fulfilment.ship(other.id, delivery.id, carrier="SF", tracking_no="SF1"),
        lambda: fulfilment.mark_ready(other.id, pickup.id),
        lambda: fulfilment.verify_pickup(other.id, pickup.id, pickup.pickup_code),
    ):
        with pytest.raises(NotFound), transaction():
            call()
    assert (_status(delivery.id), _status(pickup.id)) == ("paid", "paid")


def test_the_leader_of_the_point_hands_over_by_code_alone(shop):
    merchant, member, _, _ = shop
    order = _paid(shop, "pickup")
    with transaction():
        fulfilment.mark_ready(merchant.id, order.id)
    neighbour = make_member(merchant, "bob")  # leads no point
    with pytest.raises(NotFound), transaction():
        fulfilment.verify_pickup_as_leader(merchant.id, neighbour.id, order.pickup_code)
    with transaction():
        handed = fulfilment.verify_pickup_as_leader(merchant.id, member.id, order.pickup_code)
    assert (handed.id, handed.status) == (order.id, "received")
