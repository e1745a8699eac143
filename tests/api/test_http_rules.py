"""What every response carries (nosniff; no-store on tokens) and the documented request limits:
over them, the JSON error envelope, never a 500 or an HTML page."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from api.http_rules import MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES
from shop.catalog import service as catalog
from tests.factories import make_merchant, make_product, member_headers, order_body, place, staff_headers


@pytest.fixture
def shop(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, "脐橙")
    return merchant, product, member_headers(client, merchant.code)


# --- response headers


def test_every_response_says_nosniff_errors_included(shop, client, monkeypatch):
    merchant, product, member = shop
    responses = {
        "health": client.get("/healthz"),
        "catalog read (cached body)": client.get("/api/v1/products", headers=member),
        "detail": client.get(f"/api/v1/products/{product.id}", headers=member),
        "token": client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:bob"}),
        "docs page": client.get("/api/docs"),
        "openapi": client.get("/api/openapi.json"),
        "not found": client.get("/api/v1/nothing-here"),
        "method not allowed": client.delete("/api/v1/products"),
        "no token": client.get("/api/v1/products"),
        "validation": client.get("/api/v1/products?limit=0", headers=member),
        "url too long": client.get("/api/v1/products?q=" + "a" * MAX_URL_BYTES, headers=member),
    }

    def explode(merchant_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(catalog, "category_tree", explode)
    responses["internal error"] = client.get(
        "/api/v1/merchant/categories", headers=staff_headers(client, merchant.code)
    )
    assert responses["internal error"].status_code == 500
    assert {name: r.headers.get("X-Content-Type-Options") for name, r in responses.items()} == {
        name: "nosniff" for name in responses
    }


def test_responses_that_carry_a_token_are_never_stored(shop, client):
    merchant, _, member = shop
    member_login = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:carol"})
    staff_login = client.post(
        "/api/v1/merchant/auth/login",
        json={"merchant": merchant.code, "username": "owner", "password": "correct-horse-battery"},
    )
    for response in (member_login, staff_login):
        assert response.status_code == 200 and response.json["token"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"
    # the rule is for token responses, not every response
    products = client.get("/api/v1/products", headers=member)
    assert products.status_code == 200 and "no-store" not in products.headers.get("Cache-Control", "")


# --- limits


def _envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/json"
    assert response.json["error"]["code"] == code
    return response.json["error"]


def test_a_search_longer_than_its_maximum_is_a_validation_error_naming_q(shop, client):
    _, _, member = shop
    for q in (quote("橙" * 51), "a" * 3000):
        error = _envelope(client.get(f"/api/v1/products?q={q}", headers=member), 422, "validation_error")
        assert error["details"]["fields"] == {"q": ["Length must be between 1 and 50."]}
    assert client.get("/api/v1/products?q=" + quote("橙" * 50), headers=member).status_code == 200


def test_a_url_over_the_limit_is_refused_with_414_before_routing(shop, client):
    _, _, member = shop
    # a search of 500 Chinese characters is 4500 bytes once percent-encoded, as clients send it
    error = _envelope(client.get("/api/v1/products?q=" + quote("橙" * 500), headers=member), 414, "uri_too_long")
    assert error["details"]["limit"] == MAX_URL_BYTES and error["details"]["length"] > MAX_URL_BYTES
    _envelope(client.get("/api/v1/" + "x" * MAX_URL_BYTES), 414, "uri_too_long")
    _envelope(client.get("/api/v1/products/" + "9" * MAX_URL_BYTES, headers=member), 414, "uri_too_long")
    # just under the limit, the request is the route's to answer
    path = "/api/v1/nothing-"
    _envelope(client.get(path + "x" * (MAX_URL_BYTES - len(path))), 404, "not_found")


def test_a_header_over_the_limit_is_refused_with_431_naming_it(shop, client):
    _, _, member = shop
    error = _envelope(
        client.get("/api/v1/products", headers={**member, "X-Trace": "t" * MAX_HEADER_BYTES}), 431, "header_too_large"
    )
    assert error["details"] == {"header": "X-Trace", "limit": MAX_HEADER_BYTES}
    # a header the app ignores, within the limit, changes nothing
    within = client.get("/api/v1/products", headers={**member, "X-Trace": "t" * (MAX_HEADER_BYTES - 100)})
    assert within.status_code == 200


def test_an_authorization_header_too_long_is_an_invalid_token_or_over_the_limit(client):
    near = client.get("/api/v1/products", headers={"Authorization": "Bearer " + "a" * (MAX_HEADER_BYTES - 100)})
    _envelope(near, 401, "token_invalid")
    over = client.get("/api/v1/products", headers={"Authorization": "Bearer " + "a" * MAX_HEADER_BYTES})
    assert _envelope(over, 431, "header_too_large")["details"]["header"] == "Authorization"


def test_an_idempotency_key_too_long_is_refused_and_places_nothing(shop, client):
    _, product, member = shop
    body = order_body(product.skus[0].id)
    error = _envelope(place(client, member, body, key="k" * 5000), 422, "idempotency_key_required")
    assert error["details"]["fields"] == {"Idempotency-Key": ["8-64 characters of A-Z a-z 0-9 _ . : -"]}
    over = _envelope(place(client, member, body, key="k" * MAX_HEADER_BYTES), 431, "header_too_large")
    assert over["details"]["header"] == "Idempotency-Key"
    assert client.get("/api/v1/orders", headers=member).json["items"] == []


def test_too_many_headers_are_refused_with_431(shop, client):
    _, _, member = shop
    many = {f"X-Extra-{i}": "1" for i in range(MAX_HEADERS)}
    error = _envelope(client.get("/api/v1/products", headers={**member, **many}), 431, "too_many_headers")
    assert error["details"]["limit"] == MAX_HEADERS
    fewer = {f"X-Extra-{i}": "1" for i in range(MAX_HEADERS - 10)}
    assert client.get("/api/v1/products", headers={**member, **fewer}).status_code == 200


def test_a_body_over_one_mebibyte_is_refused_with_413(shop, client):
    _, _, member = shop
    response = client.post(
        "/api/v1/cart/items",
        data=b'{"sku_id": 1, "quantity": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}',
        headers={**member, "Content-Type": "application/json"},
    )
    _envelope(response, 413, "payload_too_large")
