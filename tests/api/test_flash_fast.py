"""The one-round-trip flash placement (shop.offers.flash_fast, the flash_place() function): it
places the very order `place_order` would, in one statement, and leaves every other case to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from shop.checkout import pricing
from shop.core.db import db, utcnow
from shop.core.errors import Conflict
from shop.core.events import OrderPlaced, bus
from shop.identity.settings import MerchantSettings
from shop.offers import flash_fast, gate
from shop.offers.models import OfferBuyer, OfferUnit
from shop.orders.models import IdempotencyKey, Order, OrderLine
from tests.api.test_coupons import claimed
from tests.api.test_flash_sales import buy, make_sale, store_with_apple
from tests.factories import member_headers, sent_statements

ORDER_SAME = (
    "merchant_id", "kind", "status", "fulfilment", "goods_total", "shipping_fee", "discount_total",
    "payable_total", "paid_total", "refunded_total", "address", "pickup_point_id", "pickup_code", "remark",
    "transaction_id", "prepay_id", "paid_at", "carrier", "tracking_no", "shipped_at", "ready_at",
    "received_at", "after_sales_until", "completed_at", "cancelled_at", "cancel_reason",
    "provider_closed_at", "reference",
)  # fmt: skip
LINE_SAME = (
    "merchant_id", "order_kind", "sku_id", "product_id", "title", "specs", "image", "unit_price",
    "quantity", "goods_amount", "discount", "paid_amount", "refunded_quantity", "refunded_amount",
    "description", "offer_kind", "offer_id",
)  # fmt: skip


@contextmanager
def vetoing() -> Iterator[None]:
    """An OrderPlaced handler refuses every order (409 refused_by_test) while the block runs."""

    def refuse(event: OrderPlaced) -> None:
        raise Conflict("not today", code="refused_by_test")

    bus.subscribe(OrderPlaced, refuse)
    try:
        yield
    finally:
        bus.unsubscribe(OrderPlaced, refuse)


def usual_path(monkeypatch) -> None:
    """Make the fast path stand aside, as for a member an adjuster is not idle for."""
    monkeypatch.setattr(pricing, "idle_condition", lambda: None)


def rows_of(order_id: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    order = db.session.get(Order, order_id)
    db.session.refresh(order)
    (line,) = db.session.execute(select(OrderLine).where(OrderLine.order_id == order_id)).scalars().all()
    units = db.session.execute(select(OfferUnit).where(OfferUnit.order_id == order_id)).scalars().all()
    kept = {name: getattr(order, name) for name in ORDER_SAME}
    kept["expires_in"] = order.expires_at - order.created_at
    return kept, {name: getattr(line, name) for name in LINE_SAME}, len(units)


def set_settings(merchant_id: int, **values: Any) -> None:
    if not values:
        return
    db.session.execute(update(MerchantSettings).where(MerchantSettings.merchant_id == merchant_id).values(**values))
    db.session.commit()


@pytest.mark.parametrize(
    ("settings", "sale_terms", "quantity"),
    [
        ({}, {}, 1),
        ({"free_shipping_over": 1000}, {}, 2),  # 2 x 990 is over the threshold: no fee
        # the merchant's 30 minutes are shorter than the sale's 45
        ({"free_shipping_over": 5000, "shipping_fee": 1200}, {"payment_minutes": 45}, 1),
        ({"order_ttl_minutes": 10}, {"payment_minutes": 5}, 2),
    ],
)
def test_the_fast_order_is_the_usual_order(client, ctx, monkeypatch, settings, sale_terms, quantity):
    store = store_with_apple(client)
    set_settings(store["merchant"].id, **settings)
    sale = make_sale(client, store, **sale_terms)
    with sent_statements() as sent:
        fast = buy(client, store["member"], sale["id"], "fast-key-1", quantity, remark="门口")
    assert fast.status_code == 201, fast.json
    assert len(sent) == 1 and "flash_place" in sent[0]  # one round trip

    usual_path(monkeypatch)
    other = member_headers(client, store["merchant"].code, "usual")
    with sent_statements() as sent:
        usual = buy(client, other, sale["id"], "usual-key-1", quantity, remark="门口")
    assert usual.status_code == 201, usual.json
    assert not any("flash_place" in statement for statement in sent)

    fast_rows, usual_rows = rows_of(fast.json["id"]), rows_of(usual.json["id"])
    assert fast_rows == usual_rows
    assert fast_rows[2] == quantity
    # The answers are the same too, but for what is the order's own.
    own = ("id", "order_no", "created_at", "expires_at")
    assert {k: v for k, v in fast.json.items() if k not in own} | {"lines": None} == {
        k: v for k, v in usual.json.items() if k not in own
    } | {"lines": None}
    assert [{k: v for k, v in line.items() if k != "id"} for line in fast.json["lines"]] == [
        {k: v for k, v in line.items() if k != "id"} for line in usual.json["lines"]
    ]
    key = db.session.execute(select(IdempotencyKey).where(IdempotencyKey.key == "fast-key-1")).scalar_one()
    assert key.order_id == fast.json["id"]
    held = db.session.execute(select(OfferBuyer.quantity).where(OfferBuyer.offer_id == sale["id"])).scalars().all()
    assert sorted(held) == [quantity, quantity]


def test_a_retry_a_reused_key_the_limit_and_sold_out_answer_as_usual(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=3, per_member_limit=2)
    first = buy(client, store["member"], sale["id"], "fast-key-retry")
    assert first.status_code == 201
    retry = buy(client, store["member"], sale["id"], "fast-key-retry")
    assert (retry.status_code, retry.json["id"]) == (200, first.json["id"])
    reused = buy(client, store["member"], sale["id"], "fast-key-retry", 2)
    assert (reused.status_code, reused.json["error"]["code"]) == (409, "idempotency_key_reused")
    over = buy(client, store["member"], sale["id"], "fast-key-over", 2)
    assert (over.status_code, over.json["error"]["code"]) == (409, "offer_limit_reached")
    assert over.json["error"]["details"]["per_member_limit"] == 2

    second = member_headers(client, store["merchant"].code, "second")
    asked_too_many = buy(client, second, sale["id"], "fast-key-many", 2)
    assert asked_too_many.status_code == 201  # 2 of the 2 left
    third = member_headers(client, store["merchant"].code, "third")
    refused = buy(client, third, sale["id"], "fast-key-none")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
    assert refused.json["error"]["details"]["left"] == 0
    # The refused buyer counted nothing, and the gate knows the sale is sold out.
    counted = db.session.execute(
        select(OfferBuyer.member_id, OfferBuyer.quantity).where(OfferBuyer.offer_id == sale["id"])
    ).all()
    assert sorted(quantity for _, quantity in counted) == [1, 2]
    assert gate.look(store["merchant"].id, sale["id"]).sold_out
    # Skipping the gate (the sale was selling) never outlives a refusal: the next buyer is
    # refused by the gate without asking PostgreSQL to place anything.
    fourth = member_headers(client, store["merchant"].code, "fourth")
    with sent_statements() as sent:
        assert buy(client, fourth, sale["id"], "fast-key-late").json["error"]["code"] == "sold_out"
    assert not any("flash_place" in statement for statement in sent)


def test_a_buyer_short_of_units_keeps_no_count_and_does_not_close_the_sale(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=1, per_member_limit=2)
    refused = buy(client, store["member"], sale["id"], "fast-key-short", 2)
    assert (refused.status_code, refused.json["error"]["details"]["left"]) == (409, 1)
    assert db.session.execute(select(OfferBuyer).where(OfferBuyer.offer_id == sale["id"])).first() is None
    assert not gate.look(store["merchant"].id, sale["id"]).sold_out
    assert buy(client, store["member"], sale["id"], "fast-key-one").status_code == 201


def test_units_given_back_below_the_last_taken_sell_again_before_anyone_is_refused(client, ctx):
    """A placement looks for free units past the last one its process took, then from the sale's
    first unit: a unit given back below sells again, and a buyer is refused only when no unit is
    free at all; a hint that is stale (past every unit) only sends the look to the start."""
    store = store_with_apple(client)
    merchant = store["merchant"].code
    sale = make_sale(client, store, quota=3, per_member_limit=1)
    units = sorted(db.session.execute(select(OfferUnit.id).where(OfferUnit.offer_id == sale["id"])).scalars())

    def unit_of(answer) -> int:
        assert answer.status_code == 201, answer.json
        return db.session.execute(select(OfferUnit.id).where(OfferUnit.order_id == answer.json["id"])).scalar_one()

    def buyer(n: int) -> dict[str, str]:
        return member_headers(client, merchant, f"after-{n}")

    first = buy(client, buyer(1), sale["id"], "after-key-1")
    assert unit_of(first) == units[0]
    assert unit_of(buy(client, buyer(2), sale["id"], "after-key-2")) == units[1]
    assert flash_fast._AFTER[sale["id"]] == units[1]
    headers = member_headers(client, merchant, "after-1")
    assert client.post(f"/api/v1/orders/{first.json['id']}/cancel", headers=headers).status_code == 200

    assert unit_of(buy(client, buyer(3), sale["id"], "after-key-3")) == units[2]  # past the last taken
    assert unit_of(buy(client, buyer(4), sale["id"], "after-key-4")) == units[0]  # given back, below it
    refused = buy(client, buyer(5), sale["id"], "after-key-5")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
    assert sale["id"] not in flash_fast._AFTER

    other = make_sale(client, store, quota=2, per_member_limit=1)
    flash_fast._AFTER[other["id"]] = 10**12  # stale: past every unit
    assert buy(client, buyer(6), other["id"], "after-key-6").status_code == 201
    assert flash_fast._AFTER[other["id"]] < 10**12


def test_a_member_with_a_coupon_a_pickup_or_a_sale_not_running_goes_the_usual_way(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store)
    claimed(client, store, threshold=0, amount=100, offer_lines=True)  # in the wallet: the coupons adjuster is not idle
    with sent_statements() as sent:
        with_coupon = buy(client, store["member"], sale["id"], "fast-key-coupon")
    assert with_coupon.status_code == 201, with_coupon.json
    assert with_coupon.json["discount_total"] == 100  # the usual path priced the coupon in
    assert sum("flash_place" in statement for statement in sent) == 1  # asked, and it stood aside

    soon = utcnow() + timedelta(hours=1)
    later = make_sale(client, store, starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat())
    other = member_headers(client, store["merchant"].code, "early")
    early = buy(client, other, later["id"], "fast-key-early")
    assert (early.status_code, early.json["error"]["code"]) == (409, "offer_not_active")


def test_a_veto_of_orderplaced_cancels_the_fast_order(client, ctx, monkeypatch):
    store = store_with_apple(client)
    sale = make_sale(client, store)

    with vetoing():
        refused = buy(client, store["member"], sale["id"], "fast-key-veto")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "refused_by_test")
    (order,) = db.session.execute(select(Order).where(Order.merchant_id == store["merchant"].id)).scalars().all()
    assert (order.status, order.cancel_reason) == ("cancelled", "refused")
    assert db.session.execute(select(OfferUnit).where(OfferUnit.order_id == order.id)).first() is None
    # Its key was freed: the retry is placed anew, as after a veto that rolled everything back.
    retry = buy(client, store["member"], sale["id"], "fast-key-veto")
    assert retry.status_code == 201 and retry.json["id"] != order.id
