"""Refunds: asked for by the member (the whole order or some units), approved or rejected by staff,
paid back through the provider and settled by its notification exactly once; and the order state
machine every status change goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from api.worker import run_burst
from shop.catalog.models import Sku, StockMovement
from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster
from shop.core.db import db, transaction
from shop.core.errors import Conflict
from shop.core.events import OrderRefunded, RefundedLineInfo, bus
from shop.orders import refunds
from shop.orders.models import Order, Refund
from shop.orders.service import transition
from shop.orders.states import ORDER_MACHINE
from tests.factories import (
    fake_pay,
    make_staff,
    make_store,
    member_headers,
    order_body,
    place,
    staff_headers,
)

SHIPPING = 800  # the default flat fee under the free-shipping threshold


@pytest.fixture
def store(ctx, client):
    return make_store(
        client,
        apple={"title": "Apples", "specs": {"规格": "1斤"}, "price": 1000, "stock": 50},
        pear={"title": "Pears", "specs": {"规格": "2斤"}, "price": 2500, "stock": 20},
    )


class GoodsDiscount:
    """A pricing adjuster taking a fixed amount off the goods of the SKUs it is given."""

    name = "test-refund-discount"

    def __init__(self, amount: int, sku_ids: set[int]) -> None:
        self.amount = amount
        self.sku_ids = frozenset(sku_ids)

    def adjust(self, context):
        return [Adjustment(source=self.name, kind="goods", amount=self.amount, sku_ids=self.sku_ids)]


def _order(order_id: int) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _refund_row(refund_id: int) -> Refund:
    db.session.expire_all()
    return db.session.get(Refund, refund_id)


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _items(store, *pairs: tuple[str, int]) -> dict:
    body = order_body(store[pairs[0][0]], pairs[0][1])
    body["items"] = [{"sku_id": store[name], "quantity": quantity} for name, quantity in pairs]
    return body


def _paid(client, store, *pairs: tuple[str, int]) -> dict:
    placed = place(client, store["member"], _items(store, *pairs))
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


def _line_id(order: dict, store, name: str) -> int:
    return next(line["id"] for line in order["lines"] if line["sku_id"] == store[name])


def _ask(client, store, order_id: int, lines: list[tuple[int, int]] | None = None, headers=None):
    body: dict = {"reason": "not as described"}
    if lines is not None:
        body["lines"] = [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]
    return client.post(f"/api/v1/orders/{order_id}/refunds", json=body, headers=headers or store["member"])


def _requested(client, store, order_id: int, lines: list[tuple[int, int]] | None = None) -> dict:
    response = _ask(client, store, order_id, lines)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "requested"
    return response.json


def _approve(client, store, refund_id: int, headers=None):
    return client.post(f"/api/v1/merchant/refunds/{refund_id}/approve", headers=headers or store["staff"])


def _refunded(app, client, store, order_id: int, lines: list[tuple[int, int]] | None = None) -> dict:
    """Ask, approve, and let the jobs pay it back and the provider's notification settle it."""
    refund = _requested(client, store, order_id, lines)
    approved = _approve(client, store, refund["id"])
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "processing"
    run_burst(app)
    assert _refund_row(refund["id"]).status == "succeeded"
    return refund


def _provider(app):
    return app.extensions["groupshop.payments"]


# --- asking, approving, paying back -------------------------------------------------------------


def test_a_partial_refund_is_paid_back_and_recorded_on_its_line_and_order(app, client, store):
    order = _paid(client, store, ("apple", 3), ("pear", 1))
    assert order["paid_total"] == 3000 + 2500 + SHIPPING
    apple_line = _line_id(order, store, "apple")
    refund = _requested(client, store, order["id"], [(apple_line, 2)])
    assert (refund["amount"], refund["shipping_amount"]) == (2000, 0)
    assert [(rl["order_line_id"], rl["quantity"], rl["amount"]) for rl in refund["lines"]] == [(apple_line, 2, 2000)]
    assert _order(order["id"]).refunded_total == 0  # nothing moves before staff approve

    approved = _approve(client, store, refund["id"])
    assert approved.status_code == 200 and approved.json["status"] == "processing"
    assert _provider(app).refund_submissions() == {}  # the provider is asked only after the commit, by a job
    run_burst(app)

    assert _provider(app).refund_submissions() == {refund["out_refund_no"]: 2000}
    stored = _refund_row(refund["id"])
    assert (stored.status, stored.provider_refund_id) == ("succeeded", f"fake_rf_{refund['out_refund_no']}")
    assert stored.succeeded_at is not None
    seen = client.get(f"/api/v1/orders/{order['id']}", headers=store["member"]).json
    assert (seen["status"], seen["refunded_total"]) == ("paid", 2000)
    lines = {line["sku_id"]: line for line in seen["lines"]}
    assert (lines[store["apple"]]["refunded_quantity"], lines[store["apple"]]["refunded_amount"]) == (2, 2000)
    assert (lines[store["pear"]]["refunded_quantity"], lines[store["pear"]]["refunded_amount"]) == (0, 0)
    listed = client.get(f"/api/v1/orders/{order['id']}/refunds", headers=store["member"]).json["items"]
    assert [(r["id"], r["status"]) for r in listed] == [(refund["id"], "succeeded")]


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("finance", 200), ("operator", 403)])
def test_finance_and_the_owner_approve_refunds_and_an_operator_may_not(app, client, store, role, status):
    if role != "owner":
        make_staff(store["merchant"], role, f"{role}-r")
    headers = staff_headers(client, store["merchant"].code, "owner" if role == "owner" else f"{role}-r")
    order = _paid(client, store, ("apple", 1))
    refund = _requested(client, store, order["id"])
    response = _approve(client, store, refund["id"], headers)
    assert response.status_code == status, response.json
    if status == 403:
        assert response.json["error"]["code"] == "role_forbidden"
        rejected = client.post(f"/api/v1/merchant/refunds/{refund['id']}/reject", json={"reason": "x"}, headers=headers)
        assert rejected.status_code == 403
        assert _refund_row(refund["id"]).status == "requested"
    else:
        assert _refund_row(refund["id"]).status == "processing"
        assert _refund_row(refund["id"]).decided_by is not None


@pytest.mark.parametrize("shipped", [False, True], ids=["before shipping", "after shipping"])
def test_partial_refunds_of_one_line_add_up_to_exactly_what_was_paid_for_it(app, client, store, shipped):
    discount = GoodsDiscount(200, {store["apple"]})  # 3 x 400 = 1200, paid 1000
    register_adjuster(discount)
    try:
        with transaction():
            db.session.execute(update(Sku).where(Sku.id == store["apple"]).values(price=400))
        order = _paid(client, store, ("apple", 3))
    finally:
        unregister_adjuster(discount.name)
    line = order["lines"][0]
    assert (line["goods_amount"], line["discount"], line["paid_amount"]) == (1200, 200, 1000)
    if shipped:
        _ship(client, store, order["id"])

    amounts = [_refunded(app, client, store, order["id"], [(line["id"], 1)])["amount"] for _ in range(3)]

    stored = _order(order["id"])
    refunded_line = stored.lines[0]
    assert (refunded_line.refunded_quantity, refunded_line.refunded_amount) == (3, 1000)
    assert stored.status == "refunded"
    if shipped:
        assert amounts == [333, 333, 334]
        assert stored.refunded_total == 1000  # the shipping went out and is not paid back
    else:
        assert amounts == [333, 333, 334 + SHIPPING]  # the last one returns everything, shipping too
        assert stored.refunded_total == stored.paid_total == 1000 + SHIPPING


def test_a_refund_is_never_more_than_what_is_left(app, client, store):
    order = _paid(client, store, ("apple", 3))
    line_id = order["lines"][0]["id"]
    too_many = _ask(client, store, order["id"], [(line_id, 4)])
    assert too_many.status_code == 422 and too_many.json["error"]["code"] == "refund_quantity_exceeded"

    _refunded(app, client, store, order["id"], [(line_id, 2)])
    response = _ask(client, store, order["id"], [(line_id, 2)])
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "refund_quantity_exceeded"
    assert response.json["error"]["details"]["refundable_quantity"] == 1
    split = _ask(client, store, order["id"], [(line_id, 1), (line_id, 1)])  # the same line twice counts twice
    assert split.status_code == 422 and split.json["error"]["code"] == "refund_quantity_exceeded"
    assert _order(order["id"]).refunded_total == 2000

    _refunded(app, client, store, order["id"], [(line_id, 1)])
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total, stored.lines[0].refunded_amount) == (
        "refunded",
        3000 + SHIPPING,
        3000,
    )
    nothing_left = _ask(client, store, order["id"])
    assert nothing_left.status_code == 409 and nothing_left.json["error"]["code"] == "not_refundable"


def test_a_line_of_another_order_cannot_be_refunded(client, store):
    order = _paid(client, store, ("apple", 1))
    other = _paid(client, store, ("pear", 1))
    response = _ask(client, store, order["id"], [(other["lines"][0]["id"], 1)])
    assert response.status_code == 422 and response.json["error"]["code"] == "line_not_found"


def test_a_member_cannot_ask_for_a_refund_of_another_members_order(client, store):
    order = _paid(client, store, ("apple", 1))
    stranger = member_headers(client, store["merchant"].code, "stranger")
    assert _ask(client, store, order["id"], headers=stranger).status_code == 404
    assert client.get(f"/api/v1/orders/{order['id']}/refunds", headers=stranger).status_code == 404


@pytest.mark.parametrize("approved", [False, True], ids=["requested", "processing"])
def test_a_second_request_while_one_is_open_is_refused(client, store, approved):
    order = _paid(client, store, ("apple", 3))
    line_id = order["lines"][0]["id"]
    first = _requested(client, store, order["id"], [(line_id, 1)])
    if approved:
        assert _approve(client, store, first["id"]).status_code == 200
    second = _ask(client, store, order["id"], [(line_id, 1)])
    assert second.status_code == 409 and second.json["error"]["code"] == "refund_in_progress"
    assert db.session.execute(select(Refund.id).where(Refund.order_id == order["id"])).scalars().all() == [first["id"]]


def test_staff_cannot_ship_while_a_refund_is_open(client, store):
    order = _paid(client, store, ("apple", 1))
    _requested(client, store, order["id"])
    response = client.post(
        f"/api/v1/merchant/orders/{order['id']}/ship",
        json={"carrier": "SF", "tracking_no": "SF0001"},
        headers=store["staff"],
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "refund_in_progress"
    assert _order(order["id"]).status == "paid"


def test_a_rejected_refund_pays_nothing_and_a_new_request_is_then_possible(app, client, store):
    order = _paid(client, store, ("apple", 2))
    refund = _requested(client, store, order["id"])
    rejected = client.post(
        f"/api/v1/merchant/refunds/{refund['id']}/reject", json={"reason": "已签收且无质量问题"}, headers=store["staff"]
    )
    assert rejected.status_code == 200, rejected.json
    assert (rejected.json["status"], rejected.json["reject_reason"]) == ("rejected", "已签收且无质量问题")
    run_burst(app)
    assert _provider(app).refund_submissions() == {}
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total, stored.lines[0].refunded_quantity) == ("paid", 0, 0)

    again = _approve(client, store, refund["id"])
    assert again.status_code == 409 and again.json["error"]["code"] == "refund_already_decided"
    assert _refund_row(refund["id"]).status == "rejected"

    retry = _requested(client, store, order["id"])
    assert retry["out_refund_no"] != refund["out_refund_no"]
    listed = client.get("/api/v1/merchant/refunds?status=requested", headers=store["staff"]).json["items"]
    assert [r["id"] for r in listed] == [retry["id"]]


def test_a_refund_is_decided_only_once(app, client, store):
    order = _paid(client, store, ("apple", 1))
    refund = _requested(client, store, order["id"])
    assert _approve(client, store, refund["id"]).status_code == 200
    for action in ("approve", "reject"):
        response = client.post(f"/api/v1/merchant/refunds/{refund['id']}/{action}", json={}, headers=store["staff"])
        assert response.status_code == 409 and response.json["error"]["code"] == "refund_already_decided"
    run_burst(app)
    assert _provider(app).refund_submissions() == {refund["out_refund_no"]: refund["amount"]}


# --- the whole order, before and after shipping ------------------------------------------------


def _restock_movements(sku_ids: list[int]) -> list[tuple[int, int]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(StockMovement.sku_id, StockMovement.delta)
        .where(StockMovement.sku_id.in_(sku_ids), StockMovement.reason == "refund_restock")
        .order_by(StockMovement.sku_id)
    ).all()
    return [tuple(row) for row in rows]


def test_a_whole_refund_before_shipping_returns_the_shipping_and_the_stock(app, client, store):
    before = {name: _stock(store[name]) for name in ("apple", "pear")}
    order = _paid(client, store, ("apple", 2), ("pear", 1))
    assert {name: _stock(store[name]) for name in before} == {"apple": before["apple"] - 2, "pear": before["pear"] - 1}
    refund = _requested(client, store, order["id"])
    assert (refund["amount"], refund["shipping_amount"], refund["restock"]) == (2000 + 2500 + SHIPPING, SHIPPING, True)
    assert sorted((rl["quantity"], rl["amount"]) for rl in refund["lines"]) == [(1, 2500), (2, 2000)]
    assert _approve(client, store, refund["id"]).status_code == 200
    run_burst(app)

    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total) == ("refunded", stored.paid_total)
    assert {name: _stock(store[name]) for name in before} == before
    assert _restock_movements([store["apple"], store["pear"]]) == sorted(
        [(store["apple"], 2), (store["pear"], 1)], key=lambda row: row[0]
    )


def test_a_whole_refund_after_shipping_keeps_the_shipping_and_does_not_restock(app, client, store):
    before = _stock(store["apple"])
    order = _paid(client, store, ("apple", 2))
    _ship(client, store, order["id"])
    refund = _requested(client, store, order["id"])
    assert (refund["amount"], refund["shipping_amount"], refund["restock"]) == (2000, 0, False)
    assert _approve(client, store, refund["id"]).status_code == 200
    run_burst(app)

    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total, stored.paid_total) == ("refunded", 2000, 2000 + SHIPPING)
    assert _stock(store["apple"]) == before - 2
    assert _restock_movements([store["apple"]]) == []


def test_the_refunded_event_carries_the_per_line_amounts(app, client, store):
    order = _paid(client, store, ("apple", 3), ("pear", 2))
    apple, pear = _line_id(order, store, "apple"), _line_id(order, store, "pear")
    seen: list[OrderRefunded] = []
    recorder = lambda event: seen.append(event)  # noqa: E731
    bus.subscribe(OrderRefunded, recorder)
    try:
        refund = _refunded(app, client, store, order["id"], [(apple, 1), (pear, 2)])
    finally:
        bus.unsubscribe(OrderRefunded, recorder)
    assert len(seen) == 1
    event = seen[0]
    assert (event.merchant_id, event.order_id, event.member_id, event.kind, event.refund_id, event.amount) == (
        store["merchant"].id,
        order["id"],
        _order(order["id"]).member_id,
        "goods",
        refund["id"],
        1000 + 5000,
    )
    assert (event.fully_refunded, event.after_completion, event.refund_kind) == (False, False, "member")
    assert sorted(event.lines, key=lambda line: line.line_id) == sorted(
        [
            RefundedLineInfo(line_id=apple, quantity=1, amount=1000),
            RefundedLineInfo(line_id=pear, quantity=2, amount=5000),
        ],
        key=lambda line: line.line_id,
    )


# --- the provider's notification ---------------------------------------------------------------


def _refund_notify(app, client, store, order: dict, refund: dict, status: str = "SUCCESS"):
    headers, body = _provider(app).refund_notification(
        store["merchant"],
        out_trade_no=order["order_no"],
        out_refund_no=refund["out_refund_no"],
        refund=refund["amount"],
        total=order["paid_total"],
        status=status,
    )
    return client.post(f"/api/v1/payments/wechatpay/{store['merchant'].code}/refund-notify", data=body, headers=headers)


def _snapshot(order_id: int, sku_id: int) -> tuple:
    order = _order(order_id)
    movements = db.session.execute(select(StockMovement.id).where(StockMovement.sku_id == sku_id)).scalars().all()
    return (
        order.status,
        order.refunded_total,
        [(line.refunded_quantity, line.refunded_amount) for line in order.lines],
        _stock(sku_id),
        len(movements),
    )


@pytest.mark.parametrize("decided", ["undecided", "rejected"])
def test_a_notification_for_a_refund_never_submitted_is_refused_and_changes_nothing(app, client, store, decided):
    order = _paid(client, store, ("apple", 3))
    refund = _requested(client, store, order["id"], [(order["lines"][0]["id"], 1)])
    if decided == "rejected":
        rejected = client.post(
            f"/api/v1/merchant/refunds/{refund['id']}/reject", json={"reason": "no"}, headers=store["staff"]
        )
        assert rejected.status_code == 200, rejected.json
    before = _snapshot(order["id"], store["apple"])
    response = _refund_notify(app, client, store, order, refund)
    assert response.status_code == 400
    assert response.json["code"] == "FAIL"
    assert _snapshot(order["id"], store["apple"]) == before
    assert _refund_row(refund["id"]).status == ("requested" if decided == "undecided" else "rejected")


def test_a_refund_notification_delivered_again_changes_nothing_and_is_acknowledged(app, client, store):
    order = _paid(client, store, ("apple", 3))
    refund = _refunded(app, client, store, order["id"], [(order["lines"][0]["id"], 1)])
    settled = _snapshot(order["id"], store["apple"])
    assert settled[:3] == ("paid", 1000, [(1, 1000)])
    for _ in range(2):
        assert _refund_notify(app, client, store, order, refund).status_code == 204
    assert _snapshot(order["id"], store["apple"]) == settled


def test_a_notification_that_arrives_before_the_job_settles_the_refund_once(app, client, store):
    order = _paid(client, store, ("apple", 2))
    refund = _requested(client, store, order["id"])
    assert _approve(client, store, refund["id"]).status_code == 200
    seen: list[OrderRefunded] = []
    recorder = lambda event: seen.append(event)  # noqa: E731
    bus.subscribe(OrderRefunded, recorder)
    try:
        first = _refund_notify(app, client, store, order, refund)
        second = _refund_notify(app, client, store, order, refund)
        run_burst(app)  # the submit job finds the refund settled and leaves it
    finally:
        bus.unsubscribe(OrderRefunded, recorder)
    assert (first.status_code, second.status_code) == (204, 204)
    assert len(seen) == 1
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total) == ("refunded", 2000 + SHIPPING)
    assert _stock(store["apple"]) == 50
    assert _restock_movements([store["apple"]]) == [(store["apple"], 2)]
    assert _provider(app).refund_submissions() == {}


def test_a_refund_notification_with_another_amount_is_refused(app, client, store):
    order = _paid(client, store, ("apple", 2))
    refund = _requested(client, store, order["id"])
    assert _approve(client, store, refund["id"]).status_code == 200
    response = _refund_notify(app, client, store, order, {**refund, "amount": refund["amount"] - 1})
    assert response.status_code == 400 and response.json["code"] == "FAIL"
    assert _refund_row(refund["id"]).status == "processing"
    assert _order(order["id"]).refunded_total == 0


def test_a_failed_refund_changes_nothing_and_can_be_asked_for_again(app, client, store):
    order = _paid(client, store, ("apple", 2))
    refund = _requested(client, store, order["id"])
    assert _approve(client, store, refund["id"]).status_code == 200
    assert _refund_notify(app, client, store, order, refund, status="CLOSED").status_code == 204
    assert _refund_row(refund["id"]).status == "failed"
    stored = _order(order["id"])
    assert (stored.status, stored.refunded_total, stored.lines[0].refunded_quantity) == ("paid", 0, 0)
    _requested(client, store, order["id"])


def test_an_abnormal_refund_stays_open_until_the_provider_settles_it(app, client, store):
    order = _paid(client, store, ("apple", 2))
    refund = _requested(client, store, order["id"])
    assert _approve(client, store, refund["id"]).status_code == 200
    assert _refund_notify(app, client, store, order, refund, status="ABNORMAL").status_code == 204
    assert _refund_row(refund["id"]).status == "abnormal"
    again = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "再退"}, headers=store["member"])
    assert again.status_code == 409 and again.json["error"]["code"] == "refund_in_progress"
    # the merchant resolves it with WeChat Pay, which then notifies SUCCESS
    assert _refund_notify(app, client, store, order, refund, status="SUCCESS").status_code == 204
    assert _refund_row(refund["id"]).status == "succeeded"
    assert _order(order["id"]).refunded_total == refund["amount"]


# --- when a refund is refused ------------------------------------------------------------------


def _unpaid(client, store) -> dict:
    placed = place(client, store["member"], _items(store, ("apple", 1)))
    assert placed.status_code == 201
    return placed.json


def _cancelled(client, store) -> dict:
    order = _unpaid(client, store)
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
    return order


def _completed(client, store) -> dict:
    order = _paid(client, store, ("apple", 1))
    _ship(client, store, order["id"])
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    from shop.orders.fulfilment import finalize

    with transaction():
        assert finalize(order["id"], now=_order(order["id"]).after_sales_until + timedelta(seconds=1))
    return order


@pytest.mark.parametrize(
    ("make", "status"),
    [(_unpaid, "pending_payment"), (_cancelled, "cancelled"), (_completed, "completed")],
)
def test_an_order_that_was_never_paid_or_is_final_is_not_refundable(client, store, make, status):
    order = make(client, store)
    response = _ask(client, store, order["id"])
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "not_refundable"
    assert response.json["error"]["details"] == {"status": status}
    assert db.session.execute(select(Refund.id).where(Refund.order_id == order["id"])).first() is None


def test_no_refund_after_the_after_sales_window_closes(client, store):
    order = _paid(client, store, ("apple", 1))
    _ship(client, store, order["id"])
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    window_end = _order(order["id"]).after_sales_until
    with transaction(), pytest.raises(Conflict) as closed:
        refunds.request_refund(
            store["merchant"].id,
            _order(order["id"]).member_id,
            order["id"],
            lines=None,
            reason="too late",
            now=window_end + timedelta(seconds=1),
        )
    assert closed.value.code == "after_sales_closed"

    with transaction():
        db.session.execute(
            update(Order)
            .where(Order.id == order["id"])
            .values(after_sales_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = _ask(client, store, order["id"])
    assert response.status_code == 409 and response.json["error"]["code"] == "after_sales_closed"
    assert db.session.execute(select(Refund.id).where(Refund.order_id == order["id"])).first() is None


def test_a_refund_is_possible_until_the_after_sales_window_closes(client, store):
    order = _paid(client, store, ("apple", 1))
    _ship(client, store, order["id"])
    assert client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=store["member"]).status_code == 200
    with transaction():
        db.session.execute(
            update(Order)
            .where(Order.id == order["id"])
            .values(after_sales_until=datetime.now(UTC) + timedelta(minutes=5))
        )
    refund = _requested(client, store, order["id"])
    assert (refund["amount"], refund["restock"]) == (1000, False)


# --- the order state machine (the table itself: tests/unit/test_order_machine.py) ----------------

PAIRS = list(ORDER_MACHINE.pairs())
STAMPS = {
    "paid": "paid_at",
    "shipped": "shipped_at",
    "ready_for_pickup": "ready_at",
    "received": "received_at",
    "completed": "completed_at",
    "cancelled": "cancelled_at",
}


@pytest.mark.parametrize(("source", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_transition_applies_a_legal_action_with_its_stamp_and_nothing_else(ctx, source, action):
    order = Order(status=source.value)
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    if ORDER_MACHINE.allows(source, action):
        target = ORDER_MACHINE.step(source, action).to
        assert transition(order, action, now=moment, remark="moved") is True
        assert (order.status, order.remark) == (target, "moved")
        stamped = {name for name in STAMPS.values() if getattr(order, name) is not None}
        assert stamped == ({STAMPS[target]} if target != source and target in STAMPS else set())
        assert all(getattr(order, name) == moment for name in stamped)
    elif ORDER_MACHINE.is_repeat(source, action):
        assert transition(order, action, now=moment, remark="moved") is False
        assert (order.status, order.remark) == (source, None)
        assert all(getattr(order, name) is None for name in STAMPS.values())
    else:
        with pytest.raises(Conflict) as refused:
            transition(order, action, now=moment, remark="moved")
        assert refused.value.code == "illegal_transition"
        assert refused.value.details == {"machine": "order", "status": source, "action": action}
        assert (order.status, order.remark) == (source, None)


def test_refunded_units_no_longer_count_as_sold(app, client, store):
    from shop.catalog.models import Product

    order = _paid(client, store, ("apple", 3))
    product_id = order["lines"][0]["product_id"]
    db.session.expire_all()
    before = db.session.get(Product, product_id).sales
    refund = _requested(client, store, order["id"])
    _approve(client, store, refund["id"])
    run_burst(app)
    db.session.expire_all()
    assert db.session.get(Product, product_id).sales == before - refund["lines"][0]["quantity"]
