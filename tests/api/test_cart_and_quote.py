"""The cart, the checkout quote (shipping by the merchant's rule, discounts from pricing adjusters
spread over the lines to the fen), and finding orders again: lists, filters and the CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import update

from shop.catalog.models import Sku
from shop.checkout.pricing import Adjustment, register_adjuster, unregister_adjuster
from shop.core.db import db, transaction
from shop.orders.models import Order, OrderLine
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    make_staff,
    make_store,
    member_headers,
    order_body,
    place,
    staff_headers,
)


@pytest.fixture
def store(ctx, client):
    return make_store(
        client,
        tea={"title": "Tea", "specs": {"规格": "罐"}, "price": 1000, "stock": 100},
        cups={"title": "Cups", "specs": {"颜色": "白"}, "price": 333, "stock": 100},
        pot={"title": "Pot", "specs": {"规格": "大"}, "price": 500, "stock": 100},
    )


def _add(client, store, name: str, quantity: int, headers=None):
    return client.post(
        "/api/v1/cart/items", json={"sku_id": store[name], "quantity": quantity}, headers=headers or store["member"]
    )


def _cart(client, store) -> dict:
    response = client.get("/api/v1/cart", headers=store["member"])
    assert response.status_code == 200, response.json
    return response.json


def _quote(client, store, body: dict):
    return client.post("/api/v1/checkout/quote", json=body, headers=store["member"])


def _buy_now(store, *pairs: tuple[str, int], fulfilment: str = "delivery") -> dict:
    return {"items": [{"sku_id": store[name], "quantity": q} for name, q in pairs], "fulfilment": fulfilment}


# --- the cart -----------------------------------------------------------------------------------


def test_adding_to_the_cart_adds_to_what_is_there(client, store):
    assert _add(client, store, "tea", 2).status_code == 200
    response = _add(client, store, "tea", 3)
    assert response.status_code == 200, response.json
    (line,) = response.json["lines"]
    assert (line["sku_id"], line["quantity"], line["unit_price"], line["line_total"]) == (store["tea"], 5, 1000, 5000)
    assert (line["available"], line["unavailable_reason"]) == (True, None)
    assert (response.json["goods_total"], response.json["available_count"]) == (5000, 5)
    _add(client, store, "cups", 1)
    cart = _cart(client, store)
    assert [(line["sku_id"], line["quantity"]) for line in cart["lines"]] == [(store["tea"], 5), (store["cups"], 1)]
    assert (cart["goods_total"], cart["available_count"]) == (5333, 6)


def test_the_cart_holds_at_most_999_of_one_item(client, store):
    assert _add(client, store, "tea", 990).status_code == 200
    response = _add(client, store, "tea", 10)
    assert response.status_code == 422 and response.json["error"]["code"] == "cart_quantity_limit"
    assert _cart(client, store)["lines"][0]["quantity"] == 990


def test_setting_a_quantity_replaces_it_and_zero_removes_the_line(client, store):
    _add(client, store, "tea", 2)
    _add(client, store, "cups", 1)
    url = f"/api/v1/cart/items/{store['tea']}"
    response = client.put(url, json={"quantity": 7}, headers=store["member"])
    assert response.status_code == 200, response.json
    assert {line["sku_id"]: line["quantity"] for line in response.json["lines"]} == {store["tea"]: 7, store["cups"]: 1}
    response = client.put(url, json={"quantity": 0}, headers=store["member"])
    assert response.status_code == 200, response.json
    assert [line["sku_id"] for line in response.json["lines"]] == [store["cups"]]
    assert response.json["goods_total"] == 333


def test_deleting_removes_the_line_and_a_missing_line_is_404(client, store):
    _add(client, store, "tea", 2)
    _add(client, store, "cups", 1)
    response = client.delete(f"/api/v1/cart/items/{store['tea']}", headers=store["member"])
    assert response.status_code == 200, response.json
    assert [line["sku_id"] for line in response.json["lines"]] == [store["cups"]]
    assert client.delete(f"/api/v1/cart/items/{store['tea']}", headers=store["member"]).status_code == 404


def test_each_member_has_their_own_cart(client, store):
    _add(client, store, "tea", 2)
    other = member_headers(client, store["merchant"].code, "other")
    assert client.get("/api/v1/cart", headers=other).json["lines"] == []
    assert client.delete(f"/api/v1/cart/items/{store['tea']}", headers=other).status_code == 404
    assert _cart(client, store)["lines"][0]["quantity"] == 2


def test_an_item_off_the_shelf_or_of_another_merchant_cannot_be_added(client, store):
    client.put(
        f"/api/v1/merchant/products/{store['tea_product']}/shelf", json={"on_shelf": False}, headers=store["staff"]
    )
    off = _add(client, store, "tea", 1)
    assert off.status_code == 409 and off.json["error"]["code"] == "sku_unavailable"
    other = make_merchant()
    foreign = make_product(other, skus=[{"specs": {}, "price": 100, "stock": 5}])
    response = client.post(
        "/api/v1/cart/items", json={"sku_id": foreign.skus[0].id, "quantity": 1}, headers=store["member"]
    )
    assert response.status_code == 404
    assert _cart(client, store)["lines"] == []


def _take_off_shelf(client, store):
    response = client.put(
        f"/api/v1/merchant/products/{store['tea_product']}/shelf", json={"on_shelf": False}, headers=store["staff"]
    )
    assert response.status_code == 200, response.json


def _deactivate_sku(client, store):
    with transaction():
        db.session.execute(update(Sku).where(Sku.id == store["tea"]).values(active=False))


def _sell_out(client, store):
    response = client.post(
        f"/api/v1/merchant/skus/{store['tea']}/stock-adjustments",
        json={"delta": -100, "reason": "damage"},
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json


def _run_short(client, store):
    response = client.post(
        f"/api/v1/merchant/skus/{store['tea']}/stock-adjustments",
        json={"delta": -98, "reason": "stocktake"},
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_take_off_shelf, "off_shelf"),
        (_deactivate_sku, "off_shelf"),
        (_sell_out, "sold_out"),
        (_run_short, "insufficient_stock"),
    ],
)
def test_a_line_that_can_no_longer_be_bought_is_marked_and_left_out_of_the_total(client, store, change, reason):
    _add(client, store, "tea", 3)
    _add(client, store, "cups", 2)
    change(client, store)
    cart = _cart(client, store)
    lines = {line["sku_id"]: line for line in cart["lines"]}
    assert (lines[store["tea"]]["available"], lines[store["tea"]]["unavailable_reason"]) == (False, reason)
    assert lines[store["tea"]]["quantity"] == 3  # kept, so the member sees what happened
    assert (lines[store["cups"]]["available"], lines[store["cups"]]["unavailable_reason"]) == (True, None)
    assert (cart["goods_total"], cart["available_count"]) == (666, 2)


def test_a_line_is_available_again_when_stock_comes_back(client, store):
    _add(client, store, "tea", 3)
    _run_short(client, store)
    assert _cart(client, store)["lines"][0]["unavailable_reason"] == "insufficient_stock"
    client.post(
        f"/api/v1/merchant/skus/{store['tea']}/stock-adjustments",
        json={"delta": 1, "reason": "restock"},
        headers=store["staff"],
    )
    cart = _cart(client, store)
    assert (cart["lines"][0]["available"], cart["goods_total"]) == (True, 3000)


# --- the quote ----------------------------------------------------------------------------------


def test_a_quote_from_the_cart_prices_what_is_in_it_and_reserves_nothing(client, store):
    _add(client, store, "tea", 2)
    _add(client, store, "cups", 3)
    response = _quote(client, store, {"from_cart": True, "fulfilment": "delivery"})
    assert response.status_code == 200, response.json
    quote = response.json
    assert [
        (line["sku_id"], line["quantity"], line["goods_amount"], line["paid_amount"]) for line in quote["lines"]
    ] == [
        (store["tea"], 2, 2000, 2000),
        (store["cups"], 3, 999, 999),
    ]
    assert (quote["goods_total"], quote["shipping_fee"], quote["discount_total"], quote["payable_total"]) == (
        2999,
        800,
        0,
        3799,
    )
    assert quote["adjustments"] == []
    assert quote["goods_total"] == _cart(client, store)["goods_total"]
    db.session.expire_all()
    assert db.session.get(Sku, store["tea"]).stock == 100
    assert len(_cart(client, store)["lines"]) == 2  # quoting leaves the cart alone


def test_a_buy_now_quote_merges_repeated_items(client, store):
    response = _quote(client, store, _buy_now(store, ("tea", 1), ("pot", 2), ("tea", 2)))
    assert response.status_code == 200, response.json
    assert [(line["sku_id"], line["quantity"]) for line in response.json["lines"]] == sorted(
        [(store["tea"], 3), (store["pot"], 2)]
    )
    assert response.json["goods_total"] == 4000


@pytest.mark.parametrize(
    "body",
    [
        {"fulfilment": "delivery"},
        {"from_cart": True, "items": [{"sku_id": 1, "quantity": 1}], "fulfilment": "delivery"},
    ],
    ids=["neither", "both"],
)
def test_a_quote_needs_items_or_the_cart_but_not_both(client, store, body):
    response = _quote(client, store, body)
    assert response.status_code == 422 and "items" in response.json["error"]["details"]["fields"]


def test_a_quote_from_an_empty_cart_is_refused(client, store):
    response = _quote(client, store, {"from_cart": True, "fulfilment": "delivery"})
    assert response.status_code == 422 and response.json["error"]["code"] == "empty_order"


@pytest.mark.parametrize(
    ("quantity", "fulfilment", "shipping"),
    [
        (1, "delivery", 800),  # 1000: flat fee
        (98, "delivery", 800),  # 9800: just under the free-shipping threshold
        (99, "delivery", 0),  # 9900: at the threshold ships free
        (100, "delivery", 0),
        (1, "pickup", 0),  # nothing to ship
        (100, "pickup", 0),
    ],
)
def test_shipping_follows_the_merchant_rule(client, store, quantity, fulfilment, shipping):
    body = _buy_now(store, ("tea", quantity), fulfilment=fulfilment)
    with transaction():
        db.session.execute(update(Sku).where(Sku.id == store["tea"]).values(price=100))
    if fulfilment == "pickup":
        point = client.post(
            "/api/v1/merchant/pickup-points",
            json={"name": "团点", "address": "1 号", "contact_name": "张", "contact_phone": "13700137000"},
            headers=store["staff"],
        )
        body["pickup_point_id"] = point.json["id"]
    response = _quote(client, store, body)
    assert response.status_code == 200, response.json
    assert response.json["shipping_fee"] == shipping
    assert response.json["payable_total"] == 100 * quantity + shipping


def test_a_pickup_quote_needs_an_open_pickup_point(client, store):
    response = _quote(client, store, _buy_now(store, ("tea", 1), fulfilment="pickup"))
    assert response.status_code == 422 and response.json["error"]["code"] == "pickup_point_invalid"


# --- the pricing adjuster door ------------------------------------------------------------------


class TestAdjuster:
    """A goods discount on some SKUs and a shipping discount, as coupons will give."""

    __test__ = False
    name = "test-adjuster"

    def __init__(self, goods: int, sku_ids: set[int] | None, shipping: int = 0) -> None:
        self.goods, self.sku_ids, self.shipping = goods, sku_ids, shipping
        self.seen: list = []

    def adjust(self, context):
        self.seen.append((context.goods_total, context.shipping_fee, context.fulfilment, context.member_id))
        adjustments = [
            Adjustment(
                source=self.name,
                kind="goods",
                amount=self.goods,
                reference="coupon-42",
                description="满减",
                sku_ids=None if self.sku_ids is None else frozenset(self.sku_ids),
            )
        ]
        if self.shipping:
            adjustments.append(Adjustment(source=self.name, kind="shipping", amount=self.shipping, description="包邮"))
        return adjustments


@pytest.fixture
def adjuster():
    registered: list[str] = []

    def register(goods: int, sku_ids: set[int] | None, shipping: int = 0) -> TestAdjuster:
        instance = TestAdjuster(goods, sku_ids, shipping)
        register_adjuster(instance)
        registered.append(instance.name)
        return instance

    try:
        yield register
    finally:
        for name in registered:
            unregister_adjuster(name)


def _lines(quote: dict) -> dict[int, tuple[int, int, int]]:
    return {line["sku_id"]: (line["goods_amount"], line["discount"], line["paid_amount"]) for line in quote["lines"]}


def test_a_goods_discount_is_spread_over_the_eligible_lines_to_the_fen(client, store, adjuster):
    applied = adjuster(101, {store["tea"], store["cups"]}, shipping=300)
    response = _quote(client, store, _buy_now(store, ("tea", 1), ("cups", 3), ("pot", 2)))
    assert response.status_code == 200, response.json
    quote = response.json
    # 101 over 1000 : 999 -> 50.53 : 50.47; the spare fen goes to the larger remainder
    assert _lines(quote) == {
        store["tea"]: (1000, 51, 949),
        store["cups"]: (999, 50, 949),
        store["pot"]: (1000, 0, 1000),
    }
    goods = [a for a in quote["adjustments"] if a["kind"] == "goods"]
    assert sum(line["discount"] for line in quote["lines"]) == goods[0]["amount"] == 101
    assert all(line["paid_amount"] == line["goods_amount"] - line["discount"] for line in quote["lines"])
    assert [(a["source"], a["kind"], a["amount"]) for a in quote["adjustments"]] == [
        ("test-adjuster", "goods", 101),
        ("test-adjuster", "shipping", 300),
    ]
    assert (quote["goods_total"], quote["shipping_fee"], quote["discount_total"], quote["payable_total"]) == (
        2999,
        800,
        401,
        2999 - 101 + 800 - 300,
    )
    assert applied.seen == [(2999, 800, "delivery", applied.seen[0][3])]


@pytest.mark.parametrize("amount", [1, 2, 3, 997, 1998, 1999])
def test_the_spread_always_adds_up_to_the_discount(client, store, adjuster, amount):
    adjuster(amount, {store["tea"], store["cups"]})
    quote = _quote(client, store, _buy_now(store, ("tea", 1), ("cups", 3), ("pot", 2))).json
    lines = _lines(quote)
    assert lines[store["tea"]][1] + lines[store["cups"]][1] == amount
    assert lines[store["pot"]][1] == 0
    assert all(0 <= discount <= goods for goods, discount, _ in lines.values())
    assert quote["payable_total"] == 2999 - amount + 800


def test_a_discount_is_never_more_than_the_goods_or_the_shipping_it_reduces(client, store, adjuster):
    adjuster(5000, {store["tea"], store["cups"]}, shipping=5000)
    quote = _quote(client, store, _buy_now(store, ("tea", 1), ("cups", 3), ("pot", 2))).json
    assert _lines(quote) == {
        store["tea"]: (1000, 1000, 0),
        store["cups"]: (999, 999, 0),
        store["pot"]: (1000, 0, 1000),
    }
    assert [(a["kind"], a["amount"]) for a in quote["adjustments"]] == [("goods", 1999), ("shipping", 800)]
    assert (quote["discount_total"], quote["payable_total"]) == (2799, 1000)


def test_a_discount_on_skus_not_in_the_order_gives_nothing(client, store, adjuster):
    adjuster(300, {store["pot"]}, shipping=0)
    quote = _quote(client, store, _buy_now(store, ("tea", 1))).json
    assert (quote["adjustments"], quote["discount_total"], quote["payable_total"]) == ([], 0, 1800)


def test_a_pickup_order_has_no_shipping_to_discount(client, store, adjuster):
    adjuster(0, None, shipping=300)
    point = client.post(
        "/api/v1/merchant/pickup-points",
        json={"name": "团点", "address": "1 号", "contact_name": "张", "contact_phone": "13700137000"},
        headers=store["staff"],
    ).json
    body = {**_buy_now(store, ("tea", 1), fulfilment="pickup"), "pickup_point_id": point["id"]}
    quote = _quote(client, store, body).json
    assert (quote["shipping_fee"], quote["adjustments"], quote["payable_total"]) == (0, [], 1000)


def test_a_placed_order_keeps_its_per_line_amounts_and_adjustments(client, store, adjuster):
    adjuster(101, {store["tea"], store["cups"]}, shipping=300)
    body = order_body(store["tea"], 1)
    body["items"] += [{"sku_id": store["cups"], "quantity": 3}, {"sku_id": store["pot"], "quantity": 2}]
    placed = place(client, store["member"], body)
    assert placed.status_code == 201, placed.json
    assert _lines(placed.json) == {
        store["tea"]: (1000, 51, 949),
        store["cups"]: (999, 50, 949),
        store["pot"]: (1000, 0, 1000),
    }
    assert (placed.json["discount_total"], placed.json["payable_total"]) == (401, 3398)

    db.session.expire_all()
    order = db.session.get(Order, placed.json["id"])
    assert {line.sku_id: (line.unit_price, line.quantity, line.discount, line.paid_amount) for line in order.lines} == {
        store["tea"]: (1000, 1, 51, 949),
        store["cups"]: (333, 3, 50, 949),
        store["pot"]: (500, 2, 0, 1000),
    }
    assert sorted((a.source, a.kind, a.amount, a.reference) for a in order.adjustments) == [
        ("test-adjuster", "goods", 101, "coupon-42"),
        ("test-adjuster", "shipping", 300, ""),
    ]
    assert (order.goods_total, order.shipping_fee, order.discount_total, order.payable_total) == (2999, 800, 401, 3398)
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.json["paid_total"] == 3398


# --- finding orders -----------------------------------------------------------------------------


@pytest.fixture
def orders(client, store):
    """Two orders of the buyer (one paid and shipped, one unpaid) and one paid order of someone else."""
    other = member_headers(client, store["merchant"].code, "other")
    paid = place(client, store["member"], order_body(store["tea"], 2)).json
    fake_pay(client, paid["order_no"])
    client.post(
        f"/api/v1/merchant/orders/{paid['id']}/ship",
        json={"carrier": "YTO", "tracking_no": "YT9876543210"},
        headers=store["staff"],
    )
    unpaid = place(client, store["member"], order_body(store["pot"], 1)).json
    theirs = place(client, other, order_body(store["cups"], 30)).json
    fake_pay(client, theirs["order_no"])
    return {"shipped": paid, "unpaid": unpaid, "theirs": theirs, "other": other}


def _export(client, headers, query: str = "") -> list[list[str]]:
    response = client.get(f"/api/v1/merchant/orders/export.csv{query}", headers=headers)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")  # so that Excel reads the UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_csv_export_has_a_header_and_one_row_per_order_in_fen(client, store, orders):
    rows = _export(client, store["staff"])
    header, body = rows[0], rows[1:]
    assert header == [
        "order_no",
        "created_at",
        "status",
        "member_id",
        "fulfilment",
        "items",
        "goods_total",
        "shipping_fee",
        "discount_total",
        "payable_total",
        "paid_total",
        "refunded_total",
        "paid_at",
        "carrier",
        "tracking_no",
    ]
    by_no = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert len(body) == 3
    assert set(by_no) == {orders[name]["order_no"] for name in ("shipped", "unpaid", "theirs")}
    shipped = by_no[orders["shipped"]["order_no"]]
    assert shipped["status"] == "shipped"
    money = ("goods_total", "shipping_fee", "discount_total", "payable_total", "paid_total", "refunded_total")
    assert [shipped[column] for column in money] == ["2000", "800", "0", "2800", "2800", "0"]
    assert (shipped["carrier"], shipped["tracking_no"]) == ("YTO", "YT9876543210")
    assert shipped["paid_at"] != "" and "Tea" in shipped["items"] and "x2" in shipped["items"]
    unpaid = by_no[orders["unpaid"]["order_no"]]
    assert [unpaid[column] for column in money] == ["500", "800", "0", "1300", "0", "0"]
    assert (unpaid["status"], unpaid["paid_at"]) == ("pending_payment", "")
    theirs = by_no[orders["theirs"]["order_no"]]
    assert [theirs[column] for column in ("goods_total", "shipping_fee", "payable_total")] == ["9990", "0", "9990"]


def test_the_csv_export_filters_by_status_and_shows_only_this_merchants_orders(ctx, client, store, orders):
    rows = _export(client, store["staff"], "?status=paid")
    assert [row[0] for row in rows[1:]] == [orders["theirs"]["order_no"]]
    # the list's other filters too: kind, an order number prefix
    assert [row[0] for row in _export(client, store["staff"], "?kind=goods&status=paid")[1:]] == [
        orders["theirs"]["order_no"]
    ]
    assert _export(client, store["staff"], "?kind=top_up")[1:] == []
    prefix = orders["unpaid"]["order_no"]
    assert [row[0] for row in _export(client, store["staff"], f"?q={prefix}")[1:]] == [prefix]
    other = make_merchant()
    assert _export(client, staff_headers(client, other.code)) == [rows[0]]
    make_staff(store["merchant"], "finance", "fin-csv")
    assert len(_export(client, staff_headers(client, store["merchant"].code, "fin-csv"))) == 4
    assert client.get("/api/v1/merchant/orders/export.csv", headers=store["member"]).status_code in (401, 403)


def _staff_list(client, store, query: str) -> list[str]:
    response = client.get(f"/api/v1/merchant/orders{query}", headers=store["staff"])
    assert response.status_code == 200, response.json
    return [item["order_no"] for item in response.json["items"]]


def test_the_staff_order_list_filters_by_status(client, store, orders):
    assert _staff_list(client, store, "") == [orders[n]["order_no"] for n in ("theirs", "unpaid", "shipped")]
    assert _staff_list(client, store, "?status=paid") == [orders["theirs"]["order_no"]]
    assert _staff_list(client, store, "?status=pending_payment") == [orders["unpaid"]["order_no"]]
    assert _staff_list(client, store, "?status=completed") == []
    bad = client.get("/api/v1/merchant/orders?status=lost", headers=store["staff"])
    assert bad.status_code == 422 and "status" in bad.json["error"]["details"]["fields"]


def test_the_staff_order_list_finds_an_order_by_its_number_prefix_or_tracking_number(client, store, orders):
    number = orders["unpaid"]["order_no"]
    assert _staff_list(client, store, f"?q={number}") == [number]
    assert _staff_list(client, store, f"?q={number[:-3]}") == [number]
    assert _staff_list(client, store, f"?q={number[3:]}") == []  # a prefix, not any substring
    assert _staff_list(client, store, "?q=YT9876543210") == [orders["shipped"]["order_no"]]
    assert _staff_list(client, store, "?q=%25") == []  # a wildcard is a literal character


def test_the_member_order_list_shows_only_their_own_orders(client, store, orders):
    def mine(headers, query: str = "") -> list[str]:
        response = client.get(f"/api/v1/orders{query}", headers=headers)
        assert response.status_code == 200, response.json
        return [item["order_no"] for item in response.json["items"]]

    assert mine(store["member"]) == [orders["unpaid"]["order_no"], orders["shipped"]["order_no"]]
    assert mine(store["member"], "?status=shipped") == [orders["shipped"]["order_no"]]
    assert mine(store["member"], "?status=paid") == []  # the paid order is someone else's
    assert mine(orders["other"], "?status=paid") == [orders["theirs"]["order_no"]]
    assert mine(orders["other"], "?status=pending_payment") == []


def test_text_that_a_spreadsheet_would_run_is_exported_as_text(client, store):
    """CSV injection: a title or carrier starting with = + - @ is prefixed with a quote."""
    order = place(client, store["member"], order_body(store["tea"], 1)).json
    with transaction():
        db.session.execute(
            update(OrderLine).where(OrderLine.order_id == order["id"]).values(title='=HYPERLINK("http://x","y")')
        )
        db.session.execute(update(Order).where(Order.id == order["id"]).values(carrier="@SUM(1)", tracking_no="-2+3"))
    row = next(r for r in _export(client, store["staff"])[1:] if r[0] == order["order_no"])
    assert row[5].startswith("'=HYPERLINK")
    assert (row[13], row[14]) == ("'@SUM(1)", "'-2+3")
