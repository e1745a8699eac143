"""What members see of the catalog: paged lists, filters, search, sorts, detail, and a cache
that never serves what a committed change made stale."""

from __future__ import annotations

from shop.catalog import service as catalog
from shop.core.db import transaction
from tests.factories import make_merchant, make_product, member_headers, staff_headers


def _all_pages(client, headers, query: str) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        url = f"/api/v1/products?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        items.extend(response.json["items"])
        cursor = response.json["next_cursor"]
        pages += 1
        assert pages < 50
        if cursor is None:
            return items


def _shop_with_products(ctx):
    merchant = make_merchant()
    with transaction():
        fruit = catalog.create_category(merchant.id, name="水果")
        citrus = catalog.create_category(merchant.id, name="柑橘", parent_id=fruit.id)
        daily = catalog.create_category(merchant.id, name="日用")
    prices = [3990, 1990, 5990, 990, 2990, 4990, 1490]
    products = []
    for i, price in enumerate(prices):
        category = citrus.id if i % 3 == 0 else (fruit.id if i % 3 == 1 else daily.id)
        products.append(
            make_product(
                merchant,
                f"{'脐橙' if i % 2 == 0 else '纸巾'} {i}",
                skus=[
                    {"specs": {"规格": "小"}, "price": price, "market_price": price + 1000, "stock": i},
                    {"specs": {"规格": "大"}, "price": price + 500, "market_price": price + 1500, "stock": 0},
                ],
                category_id=category,
            )
        )
    draft = make_product(merchant, "草稿 脐橙", on_shelf=False)
    return merchant, (fruit, citrus, daily), products, draft


def test_the_list_pages_through_every_shelved_product_exactly_once(ctx, client):
    merchant, _, products, draft = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    items = _all_pages(client, headers, "limit=2")
    assert [i["id"] for i in items] == sorted((p.id for p in products), reverse=True)
    assert draft.id not in {i["id"] for i in items}


def test_list_items_carry_the_price_range_and_a_stock_status(ctx, client):
    merchant, _, products, _ = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    items = {i["id"]: i for i in _all_pages(client, headers, "limit=50")}
    first = items[products[0].id]
    assert (first["price_min"], first["price_max"]) == (3990, 4490)
    assert first["stock_status"] == "sold_out"  # stock 0 on both SKUs
    assert items[products[3].id]["stock_status"] == "low_stock"  # 3 left of its small size
    assert "stock" not in first
    assert first["cover"] == "https://img.example.com/x.jpg"


def test_sorting_by_price_both_ways_and_by_sales(ctx, client):
    merchant, _, products, _ = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    ascending = [i["price_min"] for i in _all_pages(client, headers, "sort=price_asc&limit=3")]
    assert ascending == sorted(ascending) and len(ascending) == len(products)
    descending = [i["price_min"] for i in _all_pages(client, headers, "sort=price_desc&limit=3")]
    assert descending == sorted(descending, reverse=True)
    by_sales = _all_pages(client, headers, "sort=sales&limit=2")
    assert len(by_sales) == len(products)


def test_a_top_level_category_includes_its_sub_categories(ctx, client):
    merchant, (fruit, citrus, daily), products, _ = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    in_fruit = {i["id"] for i in _all_pages(client, headers, f"category_id={fruit.id}")}
    in_citrus = {i["id"] for i in _all_pages(client, headers, f"category_id={citrus.id}")}
    in_daily = {i["id"] for i in _all_pages(client, headers, f"category_id={daily.id}")}
    assert in_citrus < in_fruit
    assert in_fruit.isdisjoint(in_daily)
    assert in_fruit | in_daily == {p.id for p in products}


def test_keyword_search_matches_titles_and_treats_wildcards_literally(ctx, client):
    merchant, _, products, _ = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    found = _all_pages(client, headers, "q=脐橙")
    assert {i["id"] for i in found} == {p.id for p in products if "脐橙" in p.title}
    assert _all_pages(client, headers, "q=%25") == []  # a literal %, not "everything"


def test_product_detail_shows_skus_with_spec_options_but_no_exact_stock(ctx, client):
    merchant, _, products, draft = _shop_with_products(ctx)
    headers = member_headers(client, merchant.code)
    response = client.get(f"/api/v1/products/{products[4].id}", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert body["spec_options"] == [{"name": "规格", "values": ["小", "大"]}]
    assert [s["stock_status"] for s in body["skus"]] == ["low_stock", "sold_out"]
    assert body["stock_status"] == "low_stock"
    assert all("stock" not in s for s in body["skus"])
    assert (body["price_min"], body["price_max"]) == (2990, 3490)
    assert client.get(f"/api/v1/products/{draft.id}", headers=headers).status_code == 404


def test_the_category_tree_has_two_levels(ctx, client):
    merchant, (fruit, citrus, daily), _, _ = _shop_with_products(ctx)
    response = client.get("/api/v1/categories", headers=member_headers(client, merchant.code))
    tree = response.json["items"]
    assert [c["id"] for c in tree] == [fruit.id, daily.id]
    assert [c["id"] for c in tree[0]["children"]] == [citrus.id]


def test_a_cached_list_reflects_every_committed_change_at_once(ctx, client):
    merchant, _, products, _ = _shop_with_products(ctx)
    member = member_headers(client, merchant.code)
    staff = staff_headers(client, merchant.code)
    product = products[3]

    def card():
        items = _all_pages(client, member, "limit=50")
        return next((i for i in items if i["id"] == product.id), None)

    assert card()["title"] == "纸巾 3"
    client.patch(f"/api/v1/merchant/products/{product.id}", json={"title": "新标题"}, headers=staff)
    assert card()["title"] == "新标题"

    sku = product.skus[0]
    movement = client.post(
        f"/api/v1/merchant/skus/{sku.id}/stock-adjustments",
        json={"delta": -3, "reason": "damage"},
        headers=staff,
    )
    assert movement.status_code == 201, movement.json
    assert card()["stock_status"] == "sold_out"
    detail = client.get(f"/api/v1/products/{product.id}", headers=member).json
    assert detail["skus"][0]["stock_status"] == "sold_out"

    client.put(f"/api/v1/merchant/products/{product.id}/shelf", json={"on_shelf": False}, headers=staff)
    assert card() is None
    assert client.get(f"/api/v1/products/{product.id}", headers=member).status_code == 404
