"""The hooks a feature package uses to give the coverage tests rows of its own, shown working:
`Endpoint.setup` (the invalid-input world of its endpoint) and `registry.add_shop_part` (both
tenant-isolation shops). A package's `*_cases.py` uses them as these tests do."""

from __future__ import annotations

from typing import Any

import pytest

from shop.catalog import service as catalog
from shop.catalog.models import Category
from shop.core.db import db, transaction
from tests.coverage import registry
from tests.coverage.invalid_input import Endpoint, World, build_world
from tests.coverage.isolation import Shop, open_shop


def _category_of(merchant_id: int, name: str) -> int:
    with transaction():
        return catalog.create_category(merchant_id, name=name).id


def test_an_endpoint_setup_gives_the_invalid_input_world_rows_of_its_own(ctx, client):
    seen: list[World] = []

    def setup(client: Any, world: World) -> dict[str, Any]:
        seen.append(world)
        merchant_id = db.session.get(Category, world.top_category_id).merchant_id
        return {"shelf_id": _category_of(merchant_id, "货架"), "by": world.member_id}

    endpoint = Endpoint(lambda w: "/api/v1/feature/things", "member", "json", lambda w: {}, setup=setup)
    world = build_world(client, endpoint)
    assert len(seen) == 1 and seen[0].code == world.code  # run once, on the endpoint's own world
    shelf = db.session.get(Category, world.extras["shelf_id"])
    top = db.session.get(Category, world.top_category_id)
    assert (shelf.name, shelf.merchant_id) == ("货架", top.merchant_id)
    assert world.extras["by"] == world.member_id
    assert build_world(client, None).extras == {}  # no endpoint (a generic test): no setup


@pytest.fixture
def shelf_part():
    calls: list[str] = []

    def part(client: Any, shop: Shop) -> dict[str, Any]:
        calls.append(shop.word)
        return {"shelf_id": _category_of(shop.merchant_id, f"{shop.word} 货架")}

    registry.add_shop_part(part)
    registry.add_shop_part(part)  # registering twice keeps one
    try:
        yield calls
    finally:
        registry._shop_parts.remove(part)


def test_a_shop_part_runs_once_for_each_isolation_shop_and_its_ids_reach_the_cases(ctx, client, shelf_part):
    alpha, bravo = open_shop(client, "alpha"), open_shop(client, "bravo")
    assert shelf_part == ["alpha", "bravo"]
    for shop in (alpha, bravo):
        shelf = db.session.get(Category, shop.extras["shelf_id"])
        assert (shelf.merchant_id, shelf.name) == (shop.merchant_id, f"{shop.word} 货架")
    assert alpha.extras["shelf_id"] != bravo.extras["shelf_id"]
