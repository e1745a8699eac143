"""Orders that are not goods, through the door their owner packages use: a test-only owner of
top-ups places one with `place_special_order`, it is paid through the fake provider's signed
notification, the owner learns it from `order_paid` (with the kind) and completes it. No stock,
sales, shipping or fulfilment anywhere; expiry and refunds take the same paths as goods."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.worker import run_burst
from shop.catalog.models import Product, StockMovement
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput
from shop.core.events import OrderCancelled, OrderCompleted, OrderPaid, OrderPlaced, OrderRefunded, bus
from shop.orders import fulfilment, refunds
from shop.orders import service as orders
from shop.orders.models import Order
from shop.orders.special import SpecialLine, complete_special_order, place_special_order
from tests.factories import fake_pay, make_merchant, make_product, member_headers, order_body, place, staff_headers


class TopUps:
    """A test-only owner package of `top_up` orders (as stored value will be): it places them and,
    told by `order_paid`, credits the balance and completes the order; it ignores other kinds."""

    KIND = "top_up"

    def __init__(self) -> None:
        self.events: list[tuple[type, dict]] = []
        self.credited: dict[int, int] = {}

    def on_paid(self, paid: OrderPaid) -> None:
        event = dataclasses.asdict(paid)
        self.events.append((OrderPaid, event))
        if event["kind"] != self.KIND:
            return
        order = db.session.get(Order, event["order_id"])
        self.credited[event["member_id"]] = self.credited.get(event["member_id"], 0) + order.paid_total

    def record(self, name: type):
        return lambda event: self.events.append((name, dataclasses.asdict(event)))

    def buy(self, merchant_id: int, member_id: int, package: str, amount: int, key: str, **kwargs) -> Order:
        with transaction():
            placed = place_special_order(
                merchant_id,
                member_id,
                self.KIND,
                [SpecialLine(title=f"充值 {package}", amount=amount, description="充100送20")],
                idempotency_key=key,
                reference=f"topup-package:{package}",
                **kwargs,
            )
        return placed.order

    def seen(self, name: type) -> list[dict]:
        return [event for event_name, event in self.events if event_name == name]


@pytest.fixture
def owner():
    owner = TopUps()
    handlers = [
        (OrderPaid, owner.on_paid),
        (OrderCancelled, owner.record(OrderCancelled)),
        (OrderCompleted, owner.record(OrderCompleted)),
        (OrderRefunded, owner.record(OrderRefunded)),
    ]
    for name, handler in handlers:
        bus.subscribe(name, handler)
    yield owner
    for name, handler in handlers:
        bus.unsubscribe(name, handler)


@pytest.fixture
def world(ctx, client):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1000, "stock": 20}]).skus[0].id
    member = member_headers(client, merchant.code, "saver")
    staff = staff_headers(client, merchant.code)
    member_id = client.get("/api/v1/me", headers=member).json["id"]
    return {"merchant": merchant, "sku_id": sku_id, "member": member, "member_id": member_id, "staff": staff}


def _order(order_id: int) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _goods_ledger() -> tuple[int, int]:
    """Stock movements and units sold, merchant-wide: a non-goods order must change neither."""
    db.session.expire_all()
    movements = db.session.execute(select(func.count()).select_from(StockMovement)).scalar_one()
    sales = db.session.execute(select(func.coalesce(func.sum(Product.sales), 0))).scalar_one()
    return movements, sales


def test_a_top_up_is_placed_paid_learned_from_order_paid_and_completed_by_its_owner(client, world, owner):
    before = _goods_ledger()
    order = owner.buy(world["merchant"].id, world["member_id"], "100", 10000, "topup-key-0001")
    stored = _order(order.id)
    assert (stored.kind, stored.status, stored.fulfilment) == ("top_up", "pending_payment", "none")
    assert (stored.goods_total, stored.shipping_fee, stored.discount_total, stored.payable_total) == (
        10000,
        0,
        0,
        10000,
    )
    assert stored.reference == "topup-package:100"
    (line,) = stored.lines
    assert (line.sku_id, line.product_id, line.order_kind, line.title, line.description) == (
        None,
        None,
        "top_up",
        "充值 100",
        "充100送20",
    )
    assert (line.unit_price, line.quantity, line.paid_amount) == (10000, 1, 10000)

    paid = fake_pay(client, stored.order_no)
    assert paid.status_code == 200, paid.json
    assert _order(order.id).status == "paid"
    (event,) = owner.seen(OrderPaid)
    assert (event["kind"], event["order_id"], event["reference"]) == ("top_up", order.id, "topup-package:100")
    assert event["lines"] == (
        {"line_id": line.id, "sku_id": None, "product_id": None, "quantity": 1, "paid_amount": 10000},
    )
    assert owner.credited == {world["member_id"]: 10000}

    with transaction():
        done = complete_special_order(world["merchant"].id, order.id, kind="top_up")
    assert (done.status, done.completed_at is not None) == ("completed", True)
    (completed,) = owner.seen(OrderCompleted)
    assert (completed["kind"], completed["order_id"]) == ("top_up", order.id)
    with transaction():  # a repeat (a retried job) is harmless and says nothing again
        assert complete_special_order(world["merchant"].id, order.id).status == "completed"
    assert len(owner.seen(OrderCompleted)) == 1
    assert _goods_ledger() == before

    with pytest.raises(Conflict) as refused, transaction():  # completed: no refund any more
        refunds.request_refund(world["merchant"].id, world["member_id"], order.id, lines=None, reason="changed mind")
    assert refused.value.code == "not_refundable"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (fulfilment.ship, {"carrier": "SF", "tracking_no": "SF0001"}),
        (fulfilment.mark_ready, {}),
    ],
    ids=["ship", "ready_for_pickup"],
)
def test_fulfilment_refuses_a_paid_non_goods_order(client, world, owner, call, args):
    order = owner.buy(world["merchant"].id, world["member_id"], "50", 5000, f"topup-ful-{call.__name__}")
    fake_pay(client, order.order_no)
    with pytest.raises(Conflict) as refused, transaction():
        call(world["merchant"].id, order.id, **args)
    assert (refused.value.code, refused.value.details) == ("no_fulfilment", {"kind": "top_up"})
    with pytest.raises(Conflict) as refused, transaction():
        fulfilment.confirm_receipt(world["merchant"].id, world["member_id"], order.id)
    assert refused.value.code == "no_fulfilment"
    with transaction():  # the jobs find nothing to do, and raise nothing
        assert fulfilment.auto_confirm(order.id) is False
        assert fulfilment.finalize(order.id) is False
    assert _order(order.id).status == "paid"


def test_an_unpaid_non_goods_order_expires_without_moving_stock(world, owner):
    before = _goods_ledger()
    order = owner.buy(world["merchant"].id, world["member_id"], "30", 3000, "topup-expire-1", ttl=timedelta(minutes=5))
    stored = _order(order.id)
    assert stored.expires_at - stored.created_at == timedelta(minutes=5)
    with transaction():
        assert orders.cancel_order(order.id, reason="expired", now=stored.expires_at - timedelta(seconds=1)).status == (
            "pending_payment"
        )
    with transaction():
        orders.cancel_order(order.id, reason="expired", now=stored.expires_at + timedelta(seconds=1))
    assert (_order(order.id).status, _order(order.id).cancel_reason) == ("cancelled", "expired")
    (event,) = owner.seen(OrderCancelled)
    assert (event["kind"], event["reason"]) == ("top_up", "expired")
    assert _goods_ledger() == before
    with pytest.raises(Conflict) as refused, transaction():
        complete_special_order(world["merchant"].id, order.id)
    assert refused.value.code == "illegal_transition"


def test_a_paid_non_goods_order_is_refunded_through_the_provider(app, client, world, owner):
    before = _goods_ledger()
    order = owner.buy(world["merchant"].id, world["member_id"], "200", 20000, "topup-refund-1")
    fake_pay(client, order.order_no)
    asked = client.post(f"/api/v1/orders/{order.id}/refunds", json={"reason": "mistake"}, headers=world["member"])
    assert asked.status_code == 201, asked.json
    assert (asked.json["amount"], asked.json["shipping_amount"], asked.json["restock"]) == (20000, 0, False)
    with pytest.raises(Conflict) as refused, transaction():  # the owner cannot complete it meanwhile
        complete_special_order(world["merchant"].id, order.id)
    assert refused.value.code == "refund_in_progress"

    approved = client.post(f"/api/v1/merchant/refunds/{asked.json['id']}/approve", headers=world["staff"])
    assert approved.status_code == 200, approved.json
    run_burst(app)

    stored = _order(order.id)
    assert (stored.status, stored.refunded_total) == ("refunded", 20000)
    (event,) = owner.seen(OrderRefunded)
    assert (event["kind"], event["amount"]) == ("top_up", 20000)
    assert _goods_ledger() == before


def test_the_idempotency_key_answers_the_same_special_order_and_refuses_another_request(world, owner):
    first = owner.buy(world["merchant"].id, world["member_id"], "100", 10000, "topup-same-key")
    with transaction():
        again = place_special_order(
            world["merchant"].id,
            world["member_id"],
            "top_up",
            [SpecialLine(title="充值 100", amount=10000, description="充100送20")],
            idempotency_key="topup-same-key",
            reference="topup-package:100",
        )
    assert (again.replayed, again.order.id) == (True, first.id)
    with pytest.raises(Conflict) as refused:
        owner.buy(world["merchant"].id, world["member_id"], "100", 9999, "topup-same-key")
    assert refused.value.code == "idempotency_key_reused"


def test_a_goods_order_key_cannot_be_replayed_as_a_special_order(client, world, owner):
    placed = place(client, world["member"], order_body(world["sku_id"]), key="shared-key-0001")
    assert placed.status_code == 201
    with pytest.raises(Conflict) as refused:
        owner.buy(world["merchant"].id, world["member_id"], "100", 10000, "shared-key-0001")
    assert refused.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([SpecialLine(title="x", amount=0)], "lines.0.amount"),
        ([SpecialLine(title="x", amount=-5)], "lines.0.amount"),
        ([SpecialLine(title="", amount=100)], "lines.0.title"),
        ([SpecialLine(title="x" * 121, amount=100)], "lines.0.title"),
        ([SpecialLine(title="x", amount=100, description="d" * 201)], "lines.0.description"),
        ([SpecialLine(title="x", amount=100)] * 21, "lines"),
    ],
)
def test_special_lines_that_cannot_be_placed_are_422_with_the_field(world, lines, field):
    with pytest.raises(InvalidInput) as refused, transaction():
        place_special_order(world["merchant"].id, world["member_id"], "prize_upgrade", lines, idempotency_key="bad-1")
    assert refused.value.code == "invalid_special_order"
    assert field in refused.value.details["fields"]
    assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_goods_is_not_a_special_kind_and_a_goods_order_is_not_completed_by_an_owner(client, world):
    with pytest.raises(ValueError), transaction():
        place_special_order(
            world["merchant"].id, world["member_id"], "goods", [SpecialLine("x", 100)], idempotency_key="goods-1"
        )
    placed = place(client, world["member"], order_body(world["sku_id"])).json
    fake_pay(client, placed["order_no"])
    with pytest.raises(Conflict) as refused, transaction():
        complete_special_order(world["merchant"].id, placed["id"])
    assert refused.value.code == "wrong_kind"


def test_an_owner_completes_only_its_own_kind(client, world, owner):
    order = owner.buy(world["merchant"].id, world["member_id"], "10", 1000, "topup-kind-1")
    fake_pay(client, order.order_no)
    with pytest.raises(Conflict) as refused, transaction():
        complete_special_order(world["merchant"].id, order.id, kind="prize_upgrade")
    assert refused.value.details == {"kind": "top_up", "expected": "prize_upgrade"}
    assert _order(order.id).status == "paid"


@pytest.mark.parametrize(
    ("line_kind", "with_sku", "constraint"),
    [
        ("top_up", True, "ck_order_lines_sku"),  # a line of a non-goods order naming a SKU
        ("goods", True, "fk_order_lines_order_kind"),  # a goods line on a non-goods order
        ("goods", False, "ck_order_lines_sku"),  # a goods line naming no SKU
    ],
)
def test_the_database_ties_a_line_without_a_sku_to_a_non_goods_order(world, line_kind, with_sku, constraint):
    from sqlalchemy.exc import IntegrityError

    from shop.orders.models import OrderLine

    order = TopUps().buy(world["merchant"].id, world["member_id"], "10", 1000, "topup-db-1")
    product_id = db.session.execute(select(Product.id).where(Product.merchant_id == world["merchant"].id)).scalar()
    line = OrderLine(
        merchant_id=world["merchant"].id,
        order_id=order.id,
        order_kind=line_kind,
        sku_id=world["sku_id"] if with_sku else None,
        product_id=product_id if with_sku else None,
        title="x",
        unit_price=1,
        quantity=1,
        goods_amount=1,
        discount=0,
        paid_amount=1,
    )
    with pytest.raises(IntegrityError, match=constraint), db.session.begin_nested():
        db.session.add(line)
        db.session.flush()


def test_a_special_order_is_announced_like_any_order_and_a_veto_rolls_it_back(world, owner, events):
    order = owner.buy(world["merchant"].id, world["member_id"], "50", 5000, "topup-key-0100")
    (placed,) = events.of(OrderPlaced)
    assert (placed.order_id, placed.kind, placed.payable_total) == (order.id, "top_up", 5000)

    def refuse(event: OrderPlaced) -> None:
        raise Conflict("top-ups are closed today", code="top_ups_closed")

    bus.subscribe(OrderPlaced, refuse)
    try:
        with pytest.raises(Conflict) as refused:
            owner.buy(world["merchant"].id, world["member_id"], "50", 5000, "topup-key-0101")
    finally:
        bus.unsubscribe(OrderPlaced, refuse)
    assert refused.value.code == "top_ups_closed"
    count = db.session.execute(select(func.count()).select_from(Order).where(Order.kind == "top_up")).scalar_one()
    assert count == 1  # the vetoed one is not there
