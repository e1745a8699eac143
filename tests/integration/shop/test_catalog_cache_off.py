"""CATALOG_CACHE_TTL=0 turns the catalog cache off: every read is produced afresh, nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from shop.catalog.models import Product
from shop.core.cache import REDIS_EXTENSION, cached, redis_client
from shop.core.db import db, transaction
from tests.factories import make_merchant, make_product, member_headers


def _counting(calls: list[int]):
    def produce() -> bytes:
        calls.append(1)
        return f"answer {len(calls)}".encode()

    return produce


class _NoRedis:
    def __getattr__(self, name: str):
        raise AssertionError(f"the cache is off, yet Redis was asked for {name!r}")


def test_a_zero_ttl_produces_every_time_and_leaves_redis_alone(ctx, monkeypatch):
    monkeypatch.setitem(ctx.extensions, REDIS_EXTENSION, _NoRedis())
    calls: list[int] = []
    produce = _counting(calls)
    assert cached("catalog:1", "k", 0, produce) == b"answer 1"
    assert cached("catalog:1", "k", 0, produce) == b"answer 2"


def _rename_behind_the_caches_back(product_id: int, title: str) -> None:
    """A change that does not bump the catalog version: only an uncached read can see it."""
    with transaction():
        db.session.execute(update(Product).where(Product.id == product_id).values(title=title))


@pytest.mark.parametrize(("ttl", "title_seen"), [(0, "After"), (300, "Before")])
def test_the_member_list_with_the_cache_off_or_on(app, ctx, client, monkeypatch, ttl, title_seen):
    monkeypatch.setattr(app.config["SETTINGS"], "catalog_cache_ttl", ttl)
    merchant = make_merchant()
    product = make_product(merchant, "Before")
    headers = member_headers(client, merchant.code)

    first = client.get("/api/v1/products", headers=headers)
    assert first.status_code == 200
    assert [item["title"] for item in first.json["items"]] == ["Before"]

    _rename_behind_the_caches_back(product.id, "After")
    second = client.get("/api/v1/products", headers=headers)
    assert [item["title"] for item in second.json["items"]] == [title_seen]
    assert bool(redis_client().keys("gs:c:*")) is (ttl > 0)
