"""What staff do with the catalog: categories, products, SKUs, shelf and stock."""

from __future__ import annotations

from sqlalchemy import func, select

from shop.catalog.models import Product, StockMovement
from shop.core.db import db
from tests.factories import make_merchant, staff_headers

NEW_PRODUCT = {
    "title": "阳光玫瑰",
    "description": "一串约 1 斤",
    "images": ["https://img.example.com/a.jpg", "https://img.example.com/b.jpg"],
    "skus": [
        {"specs": {"规格": "1串"}, "price": 2990, "market_price": 3990, "stock": 30, "code": "SM-1"},
        {"specs": {"规格": "2串"}, "price": 5490, "market_price": 7990, "stock": 0},
    ],
}


def _create(client, headers, **overrides) -> dict:
    response = client.post("/api/v1/merchant/products", json={**NEW_PRODUCT, **overrides}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def test_a_new_product_is_a_draft_with_its_price_range_and_initial_stock_recorded(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    product = _create(client, headers)
    assert product["status"] == "draft"
    assert (product["price_min"], product["price_max"]) == (2990, 5490)
    assert [s["stock"] for s in product["skus"]] == [30, 0]
    movements = client.get(f"/api/v1/merchant/skus/{product['skus'][0]['id']}/stock-movements", headers=headers)
    assert [(m["delta"], m["reason"], m["stock_after"]) for m in movements.json["items"]] == [(30, "initial", 30)]


def test_categories_have_two_levels_and_can_be_renamed_and_deleted_when_empty(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    top = client.post("/api/v1/merchant/categories", json={"name": "生鲜"}, headers=headers).json
    sub = client.post("/api/v1/merchant/categories", json={"name": "水果", "parent_id": top["id"]}, headers=headers)
    assert sub.status_code == 201
    too_deep = client.post(
        "/api/v1/merchant/categories", json={"name": "苹果", "parent_id": sub.json["id"]}, headers=headers
    )
    assert too_deep.status_code == 422
    assert "parent_id" in too_deep.json["error"]["details"]["fields"]
    renamed = client.patch(f"/api/v1/merchant/categories/{sub.json['id']}", json={"name": "鲜果"}, headers=headers)
    assert renamed.json["name"] == "鲜果"
    _create(client, headers, category_id=sub.json["id"])
    in_use = client.delete(f"/api/v1/merchant/categories/{sub.json['id']}", headers=headers)
    assert in_use.status_code == 409 and in_use.json["error"]["code"] == "category_in_use"
    assert client.delete(f"/api/v1/merchant/categories/{top['id']}", headers=headers).status_code == 409
    empty = client.post("/api/v1/merchant/categories", json={"name": "空"}, headers=headers).json
    assert client.delete(f"/api/v1/merchant/categories/{empty['id']}", headers=headers).status_code == 204
    tree = client.get("/api/v1/merchant/categories", headers=headers).json["items"]
    assert [c["name"] for c in tree] == ["生鲜"]


def test_updating_skus_changes_prices_adds_new_ones_and_deactivates_the_missing(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    product = _create(client, headers)
    small, large = product["skus"]
    response = client.patch(
        f"/api/v1/merchant/products/{product['id']}",
        json={
            "skus": [
                {"id": small["id"], "price": 2790},
                {"specs": {"规格": "3串"}, "price": 7990, "stock": 5},
            ]
        },
        headers=headers,
    )
    assert response.status_code == 200, response.json
    skus = {s["id"]: s for s in response.json["skus"]}
    assert skus[small["id"]]["price"] == 2790 and skus[small["id"]]["active"]
    assert not skus[large["id"]]["active"]
    assert (response.json["price_min"], response.json["price_max"]) == (2790, 7990)
    new = next(s for s in response.json["skus"] if s["id"] not in (small["id"], large["id"]))
    assert new["stock"] == 5


def test_stock_cannot_be_set_through_a_product_update(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    product = _create(client, headers)
    sku = product["skus"][0]
    response = client.patch(
        f"/api/v1/merchant/products/{product['id']}",
        json={"skus": [{"id": sku["id"], "stock": 999}]},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "stock_not_editable"
    after = client.get(f"/api/v1/merchant/products/{product['id']}", headers=headers).json
    assert after["skus"][0]["stock"] == 30


def test_shelf_on_and_off(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    product = _create(client, headers)
    url = f"/api/v1/merchant/products/{product['id']}/shelf"
    assert client.put(url, json={"on_shelf": False}, headers=headers).status_code == 409  # a draft
    assert client.put(url, json={"on_shelf": True}, headers=headers).json["status"] == "on_shelf"
    assert client.put(url, json={"on_shelf": False}, headers=headers).json["status"] == "off_shelf"
    listed = client.get("/api/v1/merchant/products?status=off_shelf", headers=headers).json["items"]
    assert [p["id"] for p in listed] == [product["id"]]


def test_stock_adjustments_are_recorded_and_never_go_below_zero(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    product = _create(client, headers)
    sku_id = product["skus"][0]["id"]
    url = f"/api/v1/merchant/skus/{sku_id}/stock-adjustments"
    added = client.post(url, json={"delta": 20, "reason": "restock", "note": "到货"}, headers=headers)
    assert added.status_code == 201 and added.json["stock_after"] == 50
    removed = client.post(url, json={"delta": -45, "reason": "damage"}, headers=headers)
    assert removed.json["stock_after"] == 5
    refused = client.post(url, json={"delta": -6, "reason": "correction"}, headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "insufficient_stock"
    history = client.get(f"/api/v1/merchant/skus/{sku_id}/stock-movements?limit=2", headers=headers).json
    assert [m["delta"] for m in history["items"]] == [-45, 20]
    older = client.get(
        f"/api/v1/merchant/skus/{sku_id}/stock-movements?cursor={history['next_cursor']}", headers=headers
    ).json
    assert [m["delta"] for m in older["items"]] == [30]
    assert sum(m["delta"] for m in history["items"] + older["items"]) == 5
    total = db.session.execute(select(func.sum(StockMovement.delta)).where(StockMovement.sku_id == sku_id)).scalar()
    assert total == 5


def test_the_staff_list_filters_by_status_and_searches_titles(ctx, client):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)
    first = _create(client, headers, title="红富士苹果")
    _create(client, headers, title="洗衣液")
    found = client.get("/api/v1/merchant/products?q=苹果", headers=headers).json["items"]
    assert [p["id"] for p in found] == [first["id"]]
    drafts = client.get("/api/v1/merchant/products?status=draft", headers=headers).json["items"]
    assert len(drafts) == 2
    assert db.session.execute(select(func.count()).select_from(Product)).scalar() >= 2
