"""The catalog's hot path: a read found in this process's cache copy is answered before its query
string is parsed; only a query string once answered 200 can be found, so bad input still gets its
422, and a change is seen at once."""

from __future__ import annotations

import time

import pytest

from api import member_api
from shop.core.cache import local_cache
from tests.factories import make_merchant, make_product, member_headers, staff_headers


@pytest.fixture
def parses(app, monkeypatch) -> list[dict]:
    """The product list's query strings parsed from now on."""
    seen: list[dict] = []
    real = member_api._PRODUCT_LIST_ARGS.load

    def load(data, *args, **kwargs):
        seen.append(dict(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(member_api._PRODUCT_LIST_ARGS, "load", load)
    return seen


def _live(app) -> None:
    with app.app_context():
        local = local_cache()
        deadline = time.monotonic() + 5
        while not local.live:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_a_repeated_list_read_is_answered_without_parsing_its_query(app, client, ctx, parses):
    merchant = make_merchant()
    make_product(merchant, on_shelf=True)
    member = member_headers(client, merchant.code)
    _live(app)
    first = client.get("/api/v1/products?limit=20&sort=newest", headers=member)
    again = client.get("/api/v1/products?sort=newest&limit=20", headers=member)  # same query, other order
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert len(parses) == 1


@pytest.mark.parametrize(
    "query",
    ["limit=20&bogus=1", "limit=20&limit=20", "limit=0", "sort=cheapest"],
)
def test_bad_query_strings_are_refused_even_next_to_a_cached_one(app, client, ctx, query):
    merchant = make_merchant()
    member = member_headers(client, merchant.code)
    _live(app)
    assert client.get("/api/v1/products?limit=20", headers=member).status_code == 200
    for _ in range(2):
        response = client.get(f"/api/v1/products?{query}", headers=member)
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "validation_error"


def test_a_staff_change_is_seen_by_the_next_read(app, client, ctx):
    merchant = make_merchant()
    product = make_product(merchant, on_shelf=True, title="Old title")
    member = member_headers(client, merchant.code)
    staff = staff_headers(client, merchant.code)
    _live(app)
    url = f"/api/v1/products/{product.id}"
    assert client.get(url, headers=member).json["title"] == "Old title"
    assert client.get(url, headers=member).json["title"] == "Old title"  # from the copy now
    changed = client.patch(f"/api/v1/merchant/products/{product.id}", json={"title": "New title"}, headers=staff)
    assert changed.status_code == 200, changed.json
    assert client.get(url, headers=member).json["title"] == "New title"


def test_no_token_no_answer_even_from_the_copy(app, client, ctx):
    merchant = make_merchant()
    member = member_headers(client, merchant.code)
    _live(app)
    assert client.get("/api/v1/products?limit=20", headers=member).status_code == 200
    assert client.get("/api/v1/products?limit=20").status_code == 401
