"""Flash sales (秒杀) over HTTP: staff set a quota aside from a SKU for a window at a flash price;
members see the countdown, buy within the per-member limit, and units of orders that expire
unpaid or are cancelled come back to the sale, never to the SKU while it runs; when it is over,
what is left goes back to the SKU, and the SKU's stock is still the sum of its movements."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from shop.catalog.models import Sku, StockMovement
from shop.core.cache import redis_client
from shop.core.db import db, utcnow
from shop.offers import gate
from shop.offers.jobs import sweep_ended_offers, sweep_gates
from shop.offers.models import Offer, OfferUnit
from shop.orders.models import Order
from shop.payments.jobs import sweep_expired_orders
from tests.api.test_login_throttling import redis_down
from tests.factories import ADDRESS, fake_pay, make_store, member_headers, reload, sent_statements

M = "/api/v1/merchant"


def iso(moment) -> str:
    return moment.isoformat()


def sale_body(sku_id: int, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "sku_id": sku_id,
        "price": 990,
        "quota": 5,
        "per_member_limit": 2,
        "starts_at": iso(now - timedelta(minutes=1)),
        "ends_at": iso(now + timedelta(hours=1)),
        **extra,
    }


def make_sale(client, store: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = client.post(f"{M}/flash-sales", json=sale_body(store["apple"], **extra), headers=store["staff"])
    assert response.status_code == 201, response.json
    return response.json


def buy(client, headers: dict[str, str], sale_id: int, key: str, quantity: int = 1, **extra: Any):
    body = {"quantity": quantity, "fulfilment": "delivery", "address": dict(ADDRESS), **extra}
    return client.post(f"/api/v1/flash-sales/{sale_id}/orders", json=body, headers={**headers, "Idempotency-Key": key})


def sku_stock(sku_id: int) -> int:
    return reload(Sku, sku_id).stock


def movements_sum(sku_id: int) -> int:
    return db.session.execute(select(func.sum(StockMovement.delta)).where(StockMovement.sku_id == sku_id)).scalar_one()


def store_with_apple(client) -> dict[str, Any]:
    return make_store(client, apple={"price": 1990, "stock": 20})


def test_a_sale_sets_its_quota_aside_and_members_buy_at_the_flash_price_within_the_limit(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store)
    terms = (sale["quota"], sale["left"], sale["sold"], sale["state"], sale["payment_minutes"])
    assert terms == (5, 5, 0, "running", 5)
    assert sku_stock(store["apple"]) == 15

    listed = client.get("/api/v1/flash-sales", headers=store["member"])
    assert listed.status_code == 200, listed.json
    (item,) = listed.json["items"]
    assert (item["id"], item["price"], item["left"], item["bought"], item["state"], item["starts_in"]) == (
        sale["id"],
        990,
        5,
        0,
        "running",
        0,
    )
    assert 3500 < item["ends_in"] <= 3600 and listed.json["server_time"]

    placed = buy(client, store["member"], sale["id"], "flash-key-1", quantity=2)
    assert placed.status_code == 201, placed.json
    order = placed.json
    assert (order["lines"][0]["unit_price"], order["goods_total"]) == (990, 1980)
    assert order["lines"][0]["offer"] == {"kind": "flash_sale", "id": sale["id"], "unit_price": 990}
    expires = reload(Order, order["id"]).expires_at
    assert timedelta(minutes=4) < expires - utcnow() <= timedelta(minutes=5)
    # A retry answers the same order; one more unit passes the limit.
    again = buy(client, store["member"], sale["id"], "flash-key-1", quantity=2)
    assert (again.status_code, again.json["id"]) == (200, order["id"])
    over = buy(client, store["member"], sale["id"], "flash-key-2")
    assert (over.status_code, over.json["error"]["code"]) == (409, "offer_limit_reached")

    seen = client.get(f"/api/v1/flash-sales/{sale['id']}", headers=store["member"]).json
    assert (seen["left"], seen["bought"]) == (3, 2)
    assert sku_stock(store["apple"]) == 15  # the SKU's own stock is not touched by flash orders


def test_sold_out_is_a_409_and_a_cancelled_order_gives_its_units_back_to_the_sale(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=2, per_member_limit=2)
    first = buy(client, store["member"], sale["id"], "flash-key-a", quantity=2).json
    other = member_headers(client, store["merchant"].code, "bob")
    refused = buy(client, other, sale["id"], "flash-key-b")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")

    cancelled = client.post(f"/api/v1/orders/{first['id']}/cancel", headers=store["member"])
    assert cancelled.status_code == 200, cancelled.json
    assert sku_stock(store["apple"]) == 18  # back to the sale, not to the SKU
    again = buy(client, other, sale["id"], "flash-key-c", quantity=2)
    assert again.status_code == 201, again.json
    # The first member's count went down with the cancellation.
    assert client.get(f"/api/v1/flash-sales/{sale['id']}", headers=store["member"]).json["bought"] == 0


def test_an_order_that_expires_unpaid_gives_its_units_back_to_the_quota(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=1)
    order = buy(client, store["member"], sale["id"], "flash-exp").json
    db.session.execute(update(Order).where(Order.id == order["id"]).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    sweep_expired_orders()
    assert reload(Order, order["id"]).status == "cancelled"
    view = client.get(f"{M}/flash-sales/{sale['id']}", headers=store["staff"]).json
    assert (view["left"], view["sold"]) == (1, 0)
    assert sku_stock(store["apple"]) == 19
    other = member_headers(client, store["merchant"].code, "carol")
    assert buy(client, other, sale["id"], "flash-exp-2").status_code == 201


def test_outside_its_window_a_sale_refuses_with_offer_not_active(client, ctx):
    store = store_with_apple(client)
    now = utcnow()
    upcoming = make_sale(client, store, starts_at=iso(now + timedelta(hours=1)), ends_at=iso(now + timedelta(hours=2)))
    assert upcoming["state"] == "upcoming"
    refused = buy(client, store["member"], upcoming["id"], "flash-early")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "offer_not_active")
    listed = client.get("/api/v1/flash-sales", headers=store["member"]).json["items"]
    assert listed[0]["state"] == "upcoming" and 3500 < listed[0]["starts_in"] <= 3600


def test_when_a_sale_is_over_its_unsold_units_go_back_to_the_sku_and_stock_is_the_sum_of_movements(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=5)
    order = buy(client, store["member"], sale["id"], "flash-end").json
    assert fake_pay(client, order["order_no"]).status_code == 200
    ended = client.post(f"{M}/flash-sales/{sale['id']}/end", headers=store["staff"])
    assert ended.status_code == 200, ended.json
    assert (ended.json["state"], ended.json["left"], ended.json["sold"], ended.json["returned"]) == ("ended", 0, 1, 4)
    assert sku_stock(store["apple"]) == 19 == movements_sum(store["apple"])
    refused = buy(client, store["member"], sale["id"], "flash-late")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "offer_not_active")


def test_the_sweep_closes_a_sale_whose_window_ran_out_and_later_give_backs_go_to_the_sku(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=3)
    order = buy(client, store["member"], sale["id"], "flash-sweep").json
    db.session.execute(
        update(Offer)
        .where(Offer.id == sale["id"])
        .values(starts_at=utcnow() - timedelta(hours=2), ends_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert sweep_ended_offers() >= 1
    assert sku_stock(store["apple"]) == 19  # the two free units went back
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"])
    assert cancelled.status_code == 200
    assert sku_stock(store["apple"]) == 20 == movements_sum(store["apple"])
    assert reload(Offer, sale["id"]).returned == 3


def test_staff_change_the_quota_within_what_buyers_hold(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=3)
    assert buy(client, store["member"], sale["id"], "flash-key-q", quantity=2).status_code == 201
    more = client.patch(f"{M}/flash-sales/{sale['id']}", json={"quota": 10}, headers=store["staff"])
    assert (more.status_code, more.json["quota"], more.json["left"]) == (200, 10, 8)
    assert sku_stock(store["apple"]) == 10
    too_low = client.patch(f"{M}/flash-sales/{sale['id']}", json={"quota": 1}, headers=store["staff"])
    assert (too_low.status_code, too_low.json["error"]["code"]) == (409, "quota_below_sold")
    less = client.patch(f"{M}/flash-sales/{sale['id']}", json={"quota": 2}, headers=store["staff"])
    assert (less.status_code, less.json["quota"], less.json["left"]) == (200, 2, 0)
    assert sku_stock(store["apple"]) == 18
    too_much = client.patch(f"{M}/flash-sales/{sale['id']}", json={"quota": 100}, headers=store["staff"])
    assert (too_much.status_code, too_much.json["error"]["code"]) == (409, "insufficient_stock")


def test_bad_terms_are_422_with_the_fields_and_a_quota_above_the_stock_is_409(client, ctx):
    store = store_with_apple(client)
    now = utcnow()
    cases = [
        ({"price": 0}, "price"),
        ({"per_member_limit": 0}, "per_member_limit"),
        ({"payment_minutes": 4}, "payment_minutes"),
        ({"ends_at": iso(now - timedelta(hours=2))}, "ends_at"),
        ({"quota": 0}, "quota"),
    ]
    for extra, field in cases:
        response = client.post(f"{M}/flash-sales", json=sale_body(store["apple"], **extra), headers=store["staff"])
        assert response.status_code == 422, (extra, response.json)
        assert field in response.json["error"]["details"]["fields"], (extra, response.json)
    other = make_store(client, pear={"price": 100, "stock": 5})
    foreign = client.post(f"{M}/flash-sales", json=sale_body(other["pear"]), headers=store["staff"])
    assert (foreign.status_code, list(foreign.json["error"]["details"]["fields"])) == (422, ["sku_id"])
    big = client.post(f"{M}/flash-sales", json=sale_body(store["apple"], quota=21), headers=store["staff"])
    assert (big.status_code, big.json["error"]["code"]) == (409, "insufficient_stock")
    assert sku_stock(store["apple"]) == 20
    # Another merchant's sale is not found, for staff and for members.
    theirs = make_sale(client, other | {"apple": other["pear"]})
    assert client.get(f"{M}/flash-sales/{theirs['id']}", headers=store["staff"]).status_code == 404
    assert buy(client, store["member"], theirs["id"], "flash-foreign").status_code == 404


# --- the sold-out gate (shop.offers.gate) ----------------------------------------------------------


def sold_out_sale(client, store: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sale of one unit, bought by the store's member; a second member was refused sold_out."""
    sale = make_sale(client, store, quota=1)
    order = buy(client, store["member"], sale["id"], "flash-gate-first")
    assert order.status_code == 201, order.json
    other = member_headers(client, store["merchant"].code, "dave")
    assert buy(client, other, sale["id"], "flash-gate-refused").json["error"]["code"] == "sold_out"
    return sale, order.json


def test_once_the_database_said_sold_out_the_next_buyers_are_refused_without_a_statement(client, ctx):
    store = store_with_apple(client)
    sale, order = sold_out_sale(client, store)
    late = member_headers(client, store["merchant"].code, "erin")
    with sent_statements() as sent:
        refused = buy(client, late, sale["id"], "flash-gate-late")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
    assert [s for s in sent if "idempotency_keys" not in s] == []  # only the retry check
    # A retry of the order placed before still gets it.
    retry = buy(client, store["member"], sale["id"], "flash-gate-first")
    assert (retry.status_code, retry.json["id"]) == (200, order["id"])


def test_a_unit_given_back_lifts_the_mark_at_once(client, ctx):
    store = store_with_apple(client)
    sale, order = sold_out_sale(client, store)
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
    late = member_headers(client, store["merchant"].code, "frank")
    assert buy(client, late, sale["id"], "flash-gate-after").status_code == 201


def test_with_the_gate_keys_gone_or_redis_down_the_database_decides(app, client, ctx):
    store = store_with_apple(client)
    sale, order = sold_out_sale(client, store)
    redis_client().flushdb()  # Redis lost its data mid-sale
    buyers = [member_headers(client, store["merchant"].code, f"gone{i}") for i in range(2)]
    assert buy(client, buyers[0], sale["id"], "flash-gate-gone-0").json["error"]["code"] == "sold_out"
    assert gate.look(store["merchant"].id, sale["id"]).sold_out  # set again from the database's answer
    with redis_down(app):
        refused = buy(client, buyers[1], sale["id"], "flash-gate-down-1")
        assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
        assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
        assert buy(client, buyers[1], sale["id"], "flash-gate-down-2").status_code == 201


def test_a_mark_left_by_a_lost_message_is_cleared_by_the_sweep(client, ctx, monkeypatch):
    store = store_with_apple(client)
    sale, order = sold_out_sale(client, store)
    monkeypatch.setattr(gate, "units_back_after_commit", lambda merchant_id, offer_id: None)
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
    late = member_headers(client, store["merchant"].code, "gina")
    assert buy(client, late, sale["id"], "flash-gate-lost-1").json["error"]["code"] == "sold_out"
    assert sweep_gates() == 1
    assert buy(client, late, sale["id"], "flash-gate-lost-2").status_code == 201


def test_the_product_detail_shows_its_offers_and_drops_one_that_ended(client, ctx):
    store = store_with_apple(client)
    product = f"/api/v1/products/{store['apple_product']}"
    assert client.get(product, headers=store["member"]).json["offers"] == []  # cached now
    sale = make_sale(client, store)
    (shown,) = client.get(product, headers=store["member"]).json["offers"]
    assert (shown["kind"], shown["id"], shown["price"], shown["sku_id"]) == (
        "flash_sale",
        sale["id"],
        990,
        store["apple"],
    )
    assert client.post(f"{M}/flash-sales/{sale['id']}/end", headers=store["staff"]).status_code == 200
    assert client.get(product, headers=store["member"]).json["offers"] == []


def test_a_buyer_asking_for_more_than_is_left_does_not_close_the_sale_to_others(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=3, per_member_limit=3)
    assert buy(client, store["member"], sale["id"], "flash-part-1", quantity=2).status_code == 201
    greedy = member_headers(client, store["merchant"].code, "greedy")
    refused = buy(client, greedy, sale["id"], "flash-part-2", quantity=2)
    assert (refused.status_code, refused.json["error"]["details"]["left"]) == (409, 1)
    assert not gate.look(store["merchant"].id, sale["id"]).sold_out
    modest = member_headers(client, store["merchant"].code, "modest")
    assert buy(client, modest, sale["id"], "flash-part-3").status_code == 201


def test_units_a_rolled_back_placement_left_free_on_a_closed_sale_go_back_to_the_sku(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, quota=4)
    order = buy(client, store["member"], sale["id"], "flash-strand-1").json
    assert client.post(f"{M}/flash-sales/{sale['id']}/end", headers=store["staff"]).status_code == 200
    assert sku_stock(store["apple"]) == 19
    # As if a placement in flight at the close held the unit and then rolled back.
    db.session.execute(update(OfferUnit).where(OfferUnit.order_id == order["id"]).values(order_id=None))
    db.session.commit()
    sweep_ended_offers()
    assert sku_stock(store["apple"]) == 20 == movements_sum(store["apple"])
    assert reload(Offer, sale["id"]).returned == 4
