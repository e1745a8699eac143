"""Refunds issued by staff or by the system (shop.orders.refunds.issue_refund), at the service:
what they pay back, what they refuse, and how they settle through the provider like a member's."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.worker import run_burst
from shop.catalog.models import Sku
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.events import OrderRefunded, RefundedLineInfo, bus
from shop.orders import fulfilment, refunds
from shop.orders.models import Order, Refund
from shop.orders.states import RefundKind
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    make_staff,
    make_store,
    member_headers,
    order_body,
    place,
    race,
    staff_headers,
)

SHIPPING = 800  # the default flat fee under the free-shipping threshold


@pytest.fixture
def store(ctx, client):
    store = make_store(
        client,
        apple={"title": "Apples", "specs": {"规格": "1斤"}, "price": 1000, "stock": 50},
        pear={"title": "Pears", "specs": {"规格": "2斤"}, "price": 2500, "stock": 20},
    )
    store["finance_id"] = make_staff(store["merchant"], "finance").id
    return store


@pytest.fixture
def refunded_events():
    seen: list[OrderRefunded] = []
    bus.subscribe(OrderRefunded, seen.append)
    yield seen
    bus.unsubscribe(OrderRefunded, seen.append)


def _paid(client, store, apples: int = 3, pears: int = 1) -> dict:
    body = order_body(store["apple"], apples)
    body["items"] = [{"sku_id": store["apple"], "quantity": apples}, {"sku_id": store["pear"], "quantity": pears}]
    placed = place(client, store["member"], body)
    assert placed.status_code == 201, placed.json
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.status_code == 200 and paid.json["status"] == "paid", paid.json
    return paid.json


def _ship(client, store, order_id: int) -> None:
    shipped = client.post(
        f"/api/v1/merchant/orders/{order_id}/ship",
        json={"carrier": "SF", "tracking_no": "SF0001"},
        headers=store["staff"],
    )
    assert shipped.status_code == 200, shipped.json


def _completed(client, store, order_id: int) -> None:
    _ship(client, store, order_id)
    received = client.post(f"/api/v1/orders/{order_id}/confirm-receipt", headers=store["member"])
    assert received.status_code == 200, received.json
    with transaction():
        assert fulfilment.finalize(order_id, now=utcnow() + timedelta(days=30)) is True
    assert _order(order_id).status == "completed"


def _line(order: dict, store, name: str) -> int:
    return next(line["id"] for line in order["lines"] if line["sku_id"] == store[name])


def _order(order_id: int) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _issue(store, order_id: int, lines=None, *, kind=RefundKind.STAFF, reason: str = "售后例外") -> Refund:
    with transaction():
        return refunds.issue_refund(
            store["merchant"].id,
            order_id,
            kind=kind,
            lines=lines,
            reason=reason,
            staff_id=store["finance_id"] if kind == RefundKind.STAFF else None,
        )


def _settled(app, refund_id: int) -> Refund:
    """Let the jobs submit it and the fake provider's notification settle it."""
    run_burst(app)
    db.session.expire_all()
    refund = db.session.get(Refund, refund_id)
    assert refund.status == "succeeded"
    return refund


# --- what is refunded ---------------------------------------------------------------------------


def test_a_staff_refund_of_some_units_goes_straight_to_processing_with_the_member_rounding(ctx, client, store):
    order = _paid(client, store, apples=3)
    refund = _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 2}])
    assert (refund.kind, refund.status, refund.amount, refund.shipping_amount) == ("staff", "processing", 2000, 0)
    assert (refund.decided_by, refund.restock) == (store["finance_id"], True)
    assert refund.decided_at is not None
    assert [(rl.order_line_id, rl.quantity, rl.amount) for rl in refund.lines] == [
        (_line(order, store, "apple"), 2, 2000)
    ]


def test_partial_refunds_of_a_discounted_line_add_up_to_exactly_what_was_paid(app, ctx, client, store):
    order = _paid(client, store, apples=3)
    with transaction():
        line = next(line for line in _order(order["id"]).lines if line.sku_id == store["apple"])
        line.discount, line.paid_amount = 1, 2999  # 3 units paid 2999 in all: 999.67 each
    amounts = []
    for _ in range(3):
        refund = _issue(store, order["id"], [{"line_id": line.id, "quantity": 1}])
        amounts.append(refund.amount)
        _settled(app, refund.id)
    assert amounts == [999, 1000, 1000] and sum(amounts) == 2999


def test_a_whole_paid_order_comes_back_with_its_shipping_and_its_stock(app, ctx, client, store, refunded_events):
    order = _paid(client, store, apples=3, pears=1)
    apples_before, pears_before = _stock(store["apple"]), _stock(store["pear"])
    refund = _issue(store, order["id"])
    assert (refund.amount, refund.shipping_amount) == (order["paid_total"], SHIPPING)
    _settled(app, refund.id)
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total) == ("refunded", order["paid_total"])
    assert (_stock(store["apple"]), _stock(store["pear"])) == (apples_before + 3, pears_before + 1)
    assert refunded_events == [
        OrderRefunded(
            merchant_id=store["merchant"].id,
            order_id=order["id"],
            member_id=stored.member_id,
            kind="goods",
            refund_id=refund.id,
            amount=order["paid_total"],
            lines=tuple(
                RefundedLineInfo(line_id=rl.order_line_id, quantity=rl.quantity, amount=rl.amount)
                for rl in refund.lines
            ),
            fully_refunded=True,
            refund_kind="staff",
            after_completion=False,
        )
    ]


def test_a_shipped_order_is_refunded_without_shipping_and_without_restocking(app, ctx, client, store):
    order = _paid(client, store, apples=3, pears=1)
    _ship(client, store, order["id"])
    before = _stock(store["apple"]), _stock(store["pear"])
    refund = _issue(store, order["id"])
    assert (refund.amount, refund.shipping_amount, refund.restock) == (order["paid_total"] - SHIPPING, 0, False)
    _settled(app, refund.id)
    assert (_stock(store["apple"]), _stock(store["pear"])) == before
    assert _order(order["id"]).status == "refunded"


def test_a_completed_order_may_be_refunded_in_part_and_stays_completed(app, ctx, client, store, refunded_events):
    order = _paid(client, store, apples=3, pears=1)
    _completed(client, store, order["id"])
    before = _stock(store["apple"])
    refund = _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}])
    _settled(app, refund.id)
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total) == ("completed", 1000)
    assert _stock(store["apple"]) == before  # the goods were delivered: nothing goes back on the shelf
    assert [(e.fully_refunded, e.after_completion, e.refund_kind) for e in refunded_events] == [(False, True, "staff")]


def test_the_rest_of_a_completed_order_refunded_makes_it_refunded(app, ctx, client, store, refunded_events):
    order = _paid(client, store, apples=2, pears=1)
    _completed(client, store, order["id"])
    first = _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}])
    _settled(app, first.id)
    rest = _issue(store, order["id"])
    assert {rl.order_line_id: rl.quantity for rl in rest.lines} == {
        _line(order, store, "apple"): 1,
        _line(order, store, "pear"): 1,
    }
    _settled(app, rest.id)
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total) == ("refunded", order["paid_total"] - SHIPPING)
    assert stored.completed_at is not None
    assert [(e.fully_refunded, e.after_completion) for e in refunded_events] == [(False, True), (True, True)]


def test_a_system_refund_records_no_staff_and_says_so_in_its_event(app, ctx, client, store, refunded_events):
    order = _paid(client, store, apples=1, pears=1)
    refund = _issue(store, order["id"], kind=RefundKind.SYSTEM, reason="拼团失败")
    assert (refund.kind, refund.status, refund.decided_by) == ("system", "processing", None)
    _settled(app, refund.id)
    assert [(e.refund_kind, e.fully_refunded) for e in refunded_events] == [("system", True)]


def test_a_staff_refund_after_the_after_sales_window_closed_is_allowed(app, ctx, client, store):
    order = _paid(client, store, apples=1, pears=1)
    _ship(client, store, order["id"])
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    with transaction():
        _order(order["id"]).after_sales_until = utcnow() - timedelta(minutes=1)
    member = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "晚了"}, headers=store["member"])
    assert member.status_code == 409 and member.json["error"]["code"] == "after_sales_closed"
    assert _issue(store, order["id"]).status == "processing"


def test_the_submission_goes_through_the_same_job_and_provider_as_a_member_refund(app, ctx, client, store):
    order = _paid(client, store, apples=1, pears=1)
    refund = _issue(store, order["id"])
    run_burst(app)
    provider = app.extensions["groupshop.payments"]
    assert provider.refund_submissions() == {refund.out_refund_no: refund.amount}
    db.session.expire_all()
    settled = db.session.get(Refund, refund.id)
    assert (settled.status, settled.attempts, settled.provider_refund_id) == (
        "succeeded",
        1,
        f"fake_rf_{refund.out_refund_no}",
    )


# --- what is refused ----------------------------------------------------------------------------


def _refused(store, order_id: int, lines=None):
    with pytest.raises((Conflict, InvalidInput, NotFound)) as caught:
        _issue(store, order_id, lines)
    return caught.value


def test_an_order_never_paid_is_refused(ctx, client, store):
    placed = place(client, store["member"], order_body(store["apple"], 1)).json
    assert _refused(store, placed["id"]).code == "order_not_paid"
    assert client.post(f"/api/v1/orders/{placed['id']}/cancel", headers=store["member"]).status_code == 200
    error = _refused(store, placed["id"])
    assert (error.code, error.details) == ("order_not_paid", {"status": "cancelled"})


def test_an_order_refunded_in_full_has_nothing_left(app, ctx, client, store):
    order = _paid(client, store, apples=1, pears=1)
    _settled(app, _issue(store, order["id"]).id)
    error = _refused(store, order["id"])
    assert (error.code, error.details) == ("nothing_to_refund", {"status": "refunded"})


def test_a_line_not_on_the_order_is_refused_with_its_field(ctx, client, store):
    order = _paid(client, store)
    other = _paid(client, store)
    error = _refused(store, order["id"], [{"line_id": other["lines"][0]["id"], "quantity": 1}])
    assert isinstance(error, InvalidInput) and error.code == "line_not_found"
    assert error.details == {"fields": {"lines": {"0": {"line_id": ["not on this order"]}}}}


def test_more_units_than_are_left_are_refused(app, ctx, client, store):
    order = _paid(client, store, apples=3)
    apple = _line(order, store, "apple")
    _settled(app, _issue(store, order["id"], [{"line_id": apple, "quantity": 2}]).id)
    error = _refused(store, order["id"], [{"line_id": apple, "quantity": 1}, {"line_id": apple, "quantity": 1}])
    assert isinstance(error, InvalidInput) and error.code == "refund_quantity_exceeded"
    assert (error.details["line_id"], error.details["refundable_quantity"]) == (apple, 1)


def test_another_merchants_order_is_not_found(ctx, client, store):
    order = _paid(client, store)
    other_id = make_merchant().id
    with pytest.raises(NotFound), transaction():
        refunds.issue_refund(other_id, order["id"], kind=RefundKind.SYSTEM, lines=None, reason="x", staff_id=None)


@pytest.mark.parametrize(
    ("kind", "staff_id"),
    [(RefundKind.MEMBER, None), (RefundKind.LATE_PAYMENT, None), (RefundKind.STAFF, None), (RefundKind.SYSTEM, 1)],
)
def test_only_staff_with_an_account_and_the_system_without_one_issue_refunds(ctx, client, store, kind, staff_id):
    order = _paid(client, store)
    with pytest.raises(ValueError):
        refunds.issue_refund(store["merchant"].id, order["id"], kind=kind, lines=None, reason="x", staff_id=staff_id)


def test_an_undecided_member_request_is_in_the_way_until_staff_decide_it(app, ctx, client, store):
    order = _paid(client, store, apples=2)
    asked = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "坏了"}, headers=store["member"])
    assert asked.status_code == 201
    error = _refused(store, order["id"])
    assert (error.code, error.details) == (
        "refund_in_progress",
        {"refund_id": asked.json["id"], "kind": "member", "status": "requested"},
    )
    rejected = client.post(
        f"/api/v1/merchant/refunds/{asked.json['id']}/reject", json={"reason": "换货"}, headers=store["staff"]
    )
    assert rejected.status_code == 200
    assert _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}]).amount == 1000


def test_a_processing_staff_refund_blocks_a_second_one_a_member_request_and_shipping(app, ctx, client, store):
    order = _paid(client, store, apples=2)
    first = _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}])
    error = _refused(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}])
    assert (error.code, error.details["refund_id"]) == ("refund_in_progress", first.id)
    member = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert member.status_code == 409 and member.json["error"]["code"] == "refund_in_progress"
    shipped = client.post(
        f"/api/v1/merchant/orders/{order['id']}/ship",
        json={"carrier": "SF", "tracking_no": "SF0001"},
        headers=store["staff"],
    )
    assert shipped.status_code == 409 and shipped.json["error"]["code"] == "refund_in_progress"
    _settled(app, first.id)
    assert _issue(store, order["id"], [{"line_id": _line(order, store, "apple"), "quantity": 1}]).amount == 1000


def test_a_staff_refund_cannot_be_approved_or_rejected_it_was_decided_when_issued(ctx, client, store):
    order = _paid(client, store)
    refund = _issue(store, order["id"])
    for verb in ("approve", "reject"):
        response = client.post(f"/api/v1/merchant/refunds/{refund.id}/{verb}", json={}, headers=store["staff"])
        assert response.status_code == 409 and response.json["error"]["code"] == "refund_already_decided"


# --- racing ---------------------------------------------------------------------------------------


@pytest.mark.committing
def test_staff_racing_to_refund_the_same_order_refund_it_once(app):
    with app.app_context():
        merchant = make_merchant()
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1990, "stock": 10}]).skus[0].id
        client = app.test_client()
        member = member_headers(client, merchant.code, "buyer")
        order = place(client, member, order_body(sku_id, 2)).json
        assert fake_pay(client, order["order_no"]).status_code == 200
        staff = staff_headers(client, merchant.code)
        db.session.remove()
    url = f"/api/v1/merchant/orders/{order['id']}/refunds"

    responses = race(6, lambda i: app.test_client().post(url, json={"reason": f"双击 {i}"}, headers=staff))

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 5}
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"refund_in_progress"}
    run_burst(app)
    with app.app_context():
        stored = db.session.get(Order, order["id"])
        assert (stored.status, stored.refunded_total) == ("refunded", stored.paid_total)
        assert db.session.execute(select(func.count()).select_from(Refund)).scalar() == 1
        submitted = app.extensions["groupshop.payments"].refund_submissions()
        assert list(submitted.values()) == [stored.paid_total]


@pytest.mark.committing
def test_a_member_request_racing_a_staff_refund_leaves_one_open_refund(app):
    with app.app_context():
        merchant = make_merchant()
        sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1990, "stock": 10}]).skus[0].id
        client = app.test_client()
        member = member_headers(client, merchant.code, "buyer")
        order = place(client, member, order_body(sku_id, 2)).json
        assert fake_pay(client, order["order_no"]).status_code == 200
        staff = staff_headers(client, merchant.code)
        db.session.remove()
    calls = [
        lambda: app.test_client().post(
            f"/api/v1/merchant/orders/{order['id']}/refunds", json={"reason": "s"}, headers=staff
        ),
        lambda: app.test_client().post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "m"}, headers=member),
    ]

    responses = race(2, lambda i: calls[i]())

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"refund_in_progress"}
    with app.app_context():
        open_refunds = db.session.execute(
            select(func.count()).select_from(Refund).where(Refund.status.in_(refunds.OPEN))
        ).scalar()
        assert open_refunds == 1
