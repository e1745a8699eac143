"""Refund rules at the service level: what a member may ask back (whole order or some units, in
the after-sales window, one at a time), the amounts (each line's paid amount shared out
cumulatively, so the parts add up to the whole; shipping back only when nothing was sent), and
staff's decision (once)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.identity.models import Staff
from shop.orders import fulfilment, refunds
from shop.orders.models import Order, Refund
from shop.orders.refunds import settle_refund
from shop.orders.states import RefundAction
from tests.factories import make_member, make_merchant, make_product, paid_by_service, placed_by_service

SHIPPING = 800  # the default flat fee under the free-shipping threshold


@pytest.fixture
def shop(ctx):
    merchant = make_merchant()
    kiwi = make_product(merchant, "Kiwi", skus=[{"specs": {}, "price": 1000, "stock": 50}]).skus[0].id
    pear = make_product(merchant, "Pear", skus=[{"specs": {}, "price": 2500, "stock": 50}]).skus[0].id
    owner = db.session.query(Staff).filter_by(merchant_id=merchant.id).one()
    return merchant, make_member(merchant), owner, kiwi, pear


def _paid(shop, *items: tuple[int, int]) -> Order:
    merchant, member, _, _, _ = shop
    order = placed_by_service(merchant.id, member.id, list(items)).order
    return paid_by_service(order.id)


def _ask(shop, order: Order, lines: list[tuple[int, int]] | None = None, **kwargs) -> Refund:
    merchant, member, _, _, _ = shop
    wanted = None if lines is None else [{"line_id": line_id, "quantity": q} for line_id, q in lines]
    with transaction():
        return refunds.request_refund(merchant.id, member.id, order.id, lines=wanted, reason="坏了", **kwargs)


def _settled(shop, refund: Refund) -> None:
    """Staff approve, and the provider pays it back (what the submission and notification do)."""
    merchant, _, owner, _, _ = shop
    with transaction():
        refunds.decide_refund(merchant.id, refund.id, staff_id=owner.id, approve=True)
    with transaction():
        locked = refunds.lock_refund_and_order(refund.id)
        assert locked is not None
        refund_row, order = locked
        settle_refund(order, refund_row, RefundAction.SETTLE_SUCCEEDED)


def test_the_whole_paid_order_comes_back_with_its_shipping_and_restocked(shop):
    order = _paid(shop, (shop[3], 2), (shop[4], 1))
    refund = _ask(shop, order)
    assert (refund.status, refund.amount, refund.shipping_amount, refund.restock) == (
        "requested",
        2000 + 2500 + SHIPPING,
        SHIPPING,
        True,
    )
    assert sorted((line.quantity, line.amount) for line in refund.lines) == [(1, 2500), (2, 2000)]
    assert refund.out_refund_no == f"{order.order_no}R01"


def test_some_units_come_back_without_the_shipping(shop):
    order = _paid(shop, (shop[3], 2), (shop[4], 1))
    kiwi_line = next(line for line in order.lines if line.sku_id == shop[3])
    refund = _ask(shop, order, [(kiwi_line.id, 1)])
    assert (refund.amount, refund.shipping_amount) == (1000, 0)


class GoodsDiscount:
    """A pricing adjuster taking a fixed amount off the goods, so a line's paid amount need not
    divide by its quantity."""

    name = "test-service-discount"

    def __init__(self, amount: int) -> None:
        self.amount = amount

    def adjust(self, context):
        return [Adjustment(source=self.name, kind="goods", amount=self.amount)]


@pytest.fixture
def discount():
    def give(amount: int) -> None:
        register_adjuster(GoodsDiscount(amount))

    yield give
    unregister_adjuster(GoodsDiscount.name)


@pytest.mark.parametrize(
    ("price", "quantity", "off", "asks", "amounts"),
    [
        (1000, 3, 2000, [1, 1, 1], [333, 333, 334]),
        (1000, 3, 2000, [2, 1], [666, 334]),
        (1001, 2, 1001, [1, 1], [500, 501]),
        (999, 4, 2997, [1, 2, 1], [249, 500, 250]),
    ],
)
def test_units_refunded_in_parts_add_up_to_the_line_paid_amount(shop, discount, price, quantity, off, asks, amounts):
    """Each refund takes the line's cumulative share: nothing is lost or made by rounding."""
    merchant, member, _, _, _ = shop
    sku = make_product(merchant, "Odd", skus=[{"specs": {}, "price": price, "stock": 50}]).skus[0].id
    discount(off)
    order = paid_by_service(placed_by_service(merchant.id, member.id, [(sku, quantity)]).order.id)
    (line,) = order.lines
    assert line.paid_amount == price * quantity - off
    got = []
    for units in asks:
        refund = _ask(shop, order, [(line.id, units)])
        got.append(refund.amount - refund.shipping_amount)  # the last one returns the shipping too
        _settled(shop, refund)
    assert got == amounts
    db.session.expire_all()
    stored = db.session.get(Order, order.id)
    assert (stored.status, stored.refunded_total) == ("refunded", stored.paid_total)


def test_more_units_than_are_left_are_refused(shop):
    order = _paid(shop, (shop[3], 2))
    line = order.lines[0]
    _settled(shop, _ask(shop, order, [(line.id, 1)]))
    with pytest.raises(InvalidInput) as refused:
        _ask(shop, order, [(line.id, 2)])
    assert refused.value.code == "refund_quantity_exceeded"
    assert refused.value.details["refundable_quantity"] == 1


def test_a_line_of_another_order_is_refused(shop):
    order = _paid(shop, (shop[3], 1))
    other = _paid(shop, (shop[3], 1))
    with pytest.raises(InvalidInput) as refused:
        _ask(shop, order, [(other.lines[0].id, 1)])
    assert refused.value.code == "line_not_found"


def test_one_refund_at_a_time(shop):
    order = _paid(shop, (shop[3], 2))
    line = order.lines[0]
    _ask(shop, order, [(line.id, 1)])
    with pytest.raises(Conflict) as refused:
        _ask(shop, order, [(line.id, 1)])
    assert refused.value.code == "refund_in_progress"


def test_an_unpaid_order_is_not_refundable(shop):
    merchant, member, _, kiwi, _ = shop
    order = placed_by_service(merchant.id, member.id, [(kiwi, 1)]).order
    with pytest.raises(Conflict) as refused:
        _ask(shop, order)
    assert (refused.value.code, refused.value.details) == ("not_refundable", {"status": "pending_payment"})


def test_a_received_order_is_refundable_until_its_after_sales_window_closes_without_shipping(shop):
    merchant, member, _, kiwi, _ = shop
    order = _paid(shop, (kiwi, 1))
    with transaction():
        fulfilment.ship(merchant.id, order.id, carrier="SF", tracking_no="SF1")
    with transaction():
        received = fulfilment.confirm_receipt(merchant.id, member.id, order.id)
    window_end = received.after_sales_until
    with pytest.raises(Conflict) as refused:
        _ask(shop, order, now=window_end)
    assert refused.value.code == "after_sales_closed"
    refund = _ask(shop, order, now=window_end - timedelta(seconds=1))
    assert (refund.amount, refund.shipping_amount, refund.restock) == (1000, 0, False)


def test_another_members_order_is_not_found(shop):
    merchant, _, _, kiwi, _ = shop
    order = _paid(shop, (kiwi, 1))
    neighbour = make_member(merchant, "bob")
    with pytest.raises(NotFound), transaction():
        refunds.request_refund(merchant.id, neighbour.id, order.id, lines=None, reason="mine now")


def test_staff_approve_once_and_the_refund_is_submitted(shop):
    merchant, _, owner, kiwi, _ = shop
    refund = _ask(shop, _paid(shop, (kiwi, 1)))
    with transaction():
        approved = refunds.decide_refund(merchant.id, refund.id, staff_id=owner.id, approve=True)
    assert (approved.status, approved.decided_by) == ("processing", owner.id)
    assert approved.decided_at is not None
    for approve in (True, False):
        with pytest.raises(Conflict) as refused, transaction():
            refunds.decide_refund(merchant.id, refund.id, staff_id=owner.id, approve=approve)
        assert refused.value.code == "refund_already_decided"


def test_staff_reject_with_a_reason_and_the_member_may_ask_again(shop):
    merchant, _, owner, kiwi, _ = shop
    order = _paid(shop, (kiwi, 1))
    refund = _ask(shop, order)
    with transaction():
        rejected = refunds.decide_refund(merchant.id, refund.id, staff_id=owner.id, approve=False, reason="已发货")
    assert (rejected.status, rejected.reject_reason) == ("rejected", "已发货")
    again = _ask(shop, order)
    assert (again.status, again.out_refund_no) == ("requested", f"{order.order_no}R02")


def test_another_merchants_staff_cannot_decide(shop):
    _, _, _, kiwi, _ = shop
    refund = _ask(shop, _paid(shop, (kiwi, 1)))
    other = make_merchant()
    with pytest.raises(NotFound), transaction():
        refunds.decide_refund(other.id, refund.id, staff_id=1, approve=True)
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "requested"
