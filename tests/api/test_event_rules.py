"""The rule for event handlers over HTTP: an OrderPlaced handler may veto a placement (its 4xx is
the answer, nothing of the order is left); a handler of any other event may not stop what
happened (a DomainError in an OrderPaid handler is contained: the payment is applied)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select, update

from shop.catalog.models import Sku
from shop.core.db import db
from shop.core.errors import Conflict
from shop.core.events import AdjustmentInfo, OrderLineInfo, OrderPaid, OrderPlaced, bus
from shop.identity.models import Merchant
from shop.orders.models import IdempotencyKey, Order, Payment
from tests.factories import make_merchant, make_product, member_headers, order_body, place


@pytest.fixture
def subscribed():
    added: list[tuple[type, object]] = []

    def subscribe(event_type, handler):
        bus.subscribe(event_type, handler)
        added.append((event_type, handler))

    yield subscribe
    for event_type, handler in added:
        bus.unsubscribe(event_type, handler)


@pytest.fixture
def shop_(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, skus=[{"specs": {}, "price": 2500, "stock": 10}])
    return merchant, product.skus[0].id, member_headers(client, merchant.code)


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar()


def coupon_used_meanwhile(event: OrderPlaced) -> None:
    raise Conflict("that coupon was used meanwhile", code="coupon_used", details={"coupon": "c-1"})


def test_an_order_placed_handler_vetoes_the_placement_with_its_4xx_and_nothing_is_left(client, shop_, subscribed):
    merchant, sku_id, headers = shop_
    subscribed(OrderPlaced, coupon_used_meanwhile)
    response = place(client, headers, order_body(sku_id, 3), key="veto-key-1")
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "coupon_used"
    assert response.json["error"]["details"] == {"coupon": "c-1"}
    assert _count(Order) == 0  # the order does not exist
    assert _stock(sku_id) == 10  # its stock is back
    assert _count(IdempotencyKey) == 0  # and its key is not used up

    bus.unsubscribe(OrderPlaced, coupon_used_meanwhile)
    again = place(client, headers, order_body(sku_id, 3), key="veto-key-1")
    assert again.status_code == 201, again.json  # a new placement, not a replay of the refusal
    assert _stock(sku_id) == 7


def test_the_order_placed_event_describes_the_order_before_anything_is_enqueued(client, shop_, subscribed):
    merchant, sku_id, headers = shop_
    seen: list[OrderPlaced] = []
    subscribed(OrderPlaced, seen.append)
    response = place(client, headers, order_body(sku_id, 2))
    assert response.status_code == 201, response.json
    order = db.session.get(Order, response.json["id"])
    line = order.lines[0]
    assert seen == [
        OrderPlaced(
            merchant_id=merchant.id,
            order_id=order.id,
            member_id=order.member_id,
            kind="goods",
            order_no=order.order_no,
            goods_total=5000,
            discount_total=0,
            shipping_fee=order.shipping_fee,
            payable_total=order.payable_total,
            lines=(
                OrderLineInfo(line_id=line.id, sku_id=sku_id, product_id=line.product_id, quantity=2, paid_amount=5000),
            ),
            adjustments=(),
        )
    ]


def test_a_free_order_is_placed_then_paid_and_a_veto_stops_it_before_it_is_paid(client, shop_, subscribed):
    from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster

    class EverythingFree:
        name = "test-event-free"

        def adjust(self, context):
            return [
                Adjustment(source=self.name, kind="goods", amount=context.goods_total, reference="all"),
                Adjustment(source=self.name, kind="shipping", amount=context.shipping_fee, reference="ship"),
            ]

    merchant, sku_id, headers = shop_
    order_of_events: list[str] = []
    subscribed(OrderPlaced, lambda event: order_of_events.append(f"placed {event.adjustments[0].source}"))
    subscribed(OrderPaid, lambda event: order_of_events.append(f"paid {event.paid_total}"))
    register_adjuster(EverythingFree())
    try:
        placed = place(client, headers, order_body(sku_id, 1))
        assert placed.status_code == 201, placed.json
        assert placed.json["status"] == "paid"
        assert order_of_events == ["placed test-event-free", "paid 0"]

        subscribed(OrderPlaced, coupon_used_meanwhile)
        refused = place(client, headers, order_body(sku_id, 1))
    finally:
        unregister_adjuster("test-event-free")
    assert refused.status_code == 409
    assert order_of_events == ["placed test-event-free", "paid 0", "placed test-event-free"]  # never paid
    assert _count(Payment) == 1 and _count(Order) == 1
    assert _stock(sku_id) == 9


def test_the_order_placed_event_lists_the_adjustments_applied(client, shop_, subscribed):
    from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster

    class Coupon:
        name = "test-event-coupon"

        def adjust(self, context):
            return [Adjustment(source=self.name, kind="goods", amount=300, reference="wallet-7", description="满减")]

    merchant, sku_id, headers = shop_
    seen: list[OrderPlaced] = []
    subscribed(OrderPlaced, seen.append)
    register_adjuster(Coupon())
    try:
        assert place(client, headers, order_body(sku_id, 2)).status_code == 201
    finally:
        unregister_adjuster("test-event-coupon")
    (event,) = seen
    assert event.adjustments == (
        AdjustmentInfo(source="test-event-coupon", reference="wallet-7", kind="goods", amount=300),
    )
    assert (event.goods_total, event.discount_total, event.lines[0].paid_amount) == (5000, 300, 4700)


def _provider(app):
    return app.extensions["groupshop.payments"]


def refuses_and_writes(event: OrderPaid) -> None:
    db.session.execute(update(Merchant).where(Merchant.id == event.merchant_id).values(name="handler was here"))
    raise Conflict("commission program closed", code="program_closed")


def test_an_order_paid_handler_raising_a_domain_error_cannot_stop_the_payment(app, client, shop_, subscribed, caplog):
    merchant, sku_id, headers = shop_
    order = db.session.get(Order, place(client, headers, order_body(sku_id, 2)).json["id"])
    after: list[int] = []
    subscribed(OrderPaid, refuses_and_writes)
    subscribed(OrderPaid, lambda event: after.append(event.order_id))
    notification_headers, body = _provider(app).payment_notification(
        merchant, out_trade_no=order.order_no, total=order.payable_total, openid="o-payer", transaction_id="4200000777"
    )
    with caplog.at_level(logging.ERROR, logger="shop.core.events"):
        response = client.post(
            f"/api/v1/payments/wechatpay/{merchant.code}/notify", data=body, headers=notification_headers
        )
    assert response.status_code == 204  # as for any applied notification
    db.session.expire_all()
    paid = db.session.get(Order, order.id)
    assert (paid.status, paid.transaction_id) == ("paid", "4200000777")
    assert _count(Payment) == 1
    assert db.session.get(Merchant, merchant.id).name == merchant.name  # the handler's write is gone
    assert after == [order.id]  # the handlers after it ran
    messages = [r.getMessage() for r in caplog.records if r.name == "shop.core.events"]
    assert len(messages) == 1 and "test_event_rules.refuses_and_writes" in messages[0]
