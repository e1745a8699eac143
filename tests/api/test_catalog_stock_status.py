"""A product card in the member list says what the product detail says about stock: in_stock,
low_stock or sold_out, from the same active SKUs, in one SQL statement per page, and never stale
in the cache."""

from __future__ import annotations

from sqlalchemy import event

from shop.catalog import service as catalog
from shop.core.db import db, transaction
from tests.factories import make_merchant, make_product, member_headers, staff_headers

# (stocks of the active SKUs, stocks of SKUs then deactivated, what members see)
MIXES = [
    ((50,), (), "in_stock"),
    ((11,), (), "in_stock"),
    ((10,), (), "low_stock"),
    ((1,), (), "low_stock"),
    ((0,), (), "sold_out"),
    ((50, 0), (), "in_stock"),
    ((5, 0), (), "low_stock"),
    ((5, 50), (), "in_stock"),
    ((5, 3), (), "low_stock"),
    ((0, 0), (), "sold_out"),
    ((0, 5, 50), (), "in_stock"),
    ((0, 0, 7), (), "low_stock"),
    ((0,), (50,), "sold_out"),
    ((0,), (5,), "sold_out"),
    ((3,), (50,), "low_stock"),
    ((50,), (0, 5), "in_stock"),
]


def _product_with(merchant, title: str, active: tuple[int, ...], inactive: tuple[int, ...]):
    stocks = active + inactive
    product = make_product(
        merchant,
        title,
        skus=[{"specs": {"编号": str(i)}, "price": 1000, "stock": stock} for i, stock in enumerate(stocks)],
    )
    if inactive:
        keep = [{"id": sku.id} for sku in product.skus[: len(active)]]
        with transaction():
            catalog.update_product(merchant.id, product.id, staff_id=None, skus=keep)
    return product


def _cards(client, headers) -> dict[int, dict]:
    response = client.get("/api/v1/products?limit=50", headers=headers)
    assert response.status_code == 200, response.json
    return {card["id"]: card for card in response.json["items"]}


def test_a_card_shows_the_stock_status_of_the_detail_for_every_mix_of_skus(ctx, client):
    merchant = make_merchant()
    products = [_product_with(merchant, f"商品 {i}", active, inactive) for i, (active, inactive, _) in enumerate(MIXES)]
    headers = member_headers(client, merchant.code)
    cards = _cards(client, headers)
    seen = []
    for product, (active, inactive, _) in zip(products, MIXES, strict=True):
        detail = client.get(f"/api/v1/products/{product.id}", headers=headers).json
        seen.append((active, inactive, cards[product.id]["stock_status"], detail["stock_status"]))
    assert seen == [(active, inactive, expected, expected) for active, inactive, expected in MIXES]


def test_a_list_page_is_still_one_sql_statement(ctx, client):
    merchant = make_merchant()
    for i, (active, inactive, _) in enumerate(MIXES):
        _product_with(merchant, f"商品 {i}", active, inactive)
    headers = member_headers(client, merchant.code)
    statements: list[str] = []

    def _record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", _record)
    try:
        response = client.get("/api/v1/products?limit=5&sort=price_asc", headers=headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", _record)
    assert response.status_code == 200 and len(response.json["items"]) == 5
    # the test harness wraps each request in a savepoint of the test's transaction
    queries = [s for s in statements if "SAVEPOINT" not in s]
    assert len(queries) == 1, queries


def test_a_cached_card_follows_each_change_of_the_stock_status(ctx, client):
    merchant = make_merchant()
    product = _product_with(merchant, "脐橙", (50, 5), ())
    plenty, few = product.skus
    member = member_headers(client, merchant.code)
    staff = staff_headers(client, merchant.code)

    def status() -> str:
        return _cards(client, member)[product.id]["stock_status"]

    def adjust(sku, delta: int) -> None:
        response = client.post(
            f"/api/v1/merchant/skus/{sku.id}/stock-adjustments",
            json={"delta": delta, "reason": "correction"},
            headers=staff,
        )
        assert response.status_code == 201, response.json

    assert status() == "in_stock"
    adjust(plenty, -30)  # 20 left: still in stock, the cached card stays right
    assert status() == "in_stock"
    adjust(plenty, -20)  # none left: the product is as available as its other SKU
    assert status() == "low_stock"
    adjust(few, -5)
    assert status() == "sold_out"
    adjust(few, 8)
    assert status() == "low_stock"
    adjust(plenty, 40)
    assert status() == "in_stock"
    deactivate = client.patch(f"/api/v1/merchant/products/{product.id}", json={"skus": [{"id": few.id}]}, headers=staff)
    assert deactivate.status_code == 200, deactivate.json
    assert status() == "low_stock"
