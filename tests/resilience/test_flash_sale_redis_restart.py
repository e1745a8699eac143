"""A flash sale while its Redis restarts (a private redis-server, stopped and started again empty):
buyers keep being served from PostgreSQL, which stays the source of truth, nothing is oversold,
units that came back while Redis was away sell, and once Redis answers again the sold-out gate is
rebuilt from the database's answer."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from shop.core.db import db, utcnow
from shop.offers import gate
from tests.factories import ADDRESS, member_headers, staff_headers
from tests.redis_server import PrivateRedis
from tests.resilience.helpers import OUTAGE_COOLOFF, shop_with_stock, wait_for

pytestmark = pytest.mark.committing


def _buy(client, headers: dict[str, str], sale_id: int, key: str):
    return client.post(
        f"/api/v1/flash-sales/{sale_id}/orders",
        json={"quantity": 1, "fulfilment": "delivery", "address": dict(ADDRESS)},
        headers={**headers, "Idempotency-Key": key},
    )


def test_a_redis_restart_mid_sale_oversells_nothing_and_the_gate_comes_back(make_app, private_redis: PrivateRedis):
    outage_app = make_app()
    client = outage_app.test_client()
    merchant, _, sku_id = shop_with_stock(outage_app, stock=10)
    now = utcnow()
    sale = client.post(
        "/api/v1/merchant/flash-sales",
        json={
            "sku_id": sku_id,
            "price": 500,
            "quota": 3,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
        headers=staff_headers(client, merchant.code),
    ).json
    buyers = [member_headers(client, merchant.code, f"b{i}") for i in range(8)]
    outcomes = Counter()
    for i in range(4):  # three units, then sold out: the gate knows
        response = _buy(client, buyers[i], sale["id"], f"restart-a-{i:04d}")
        outcomes[response.status_code] += 1
    assert outcomes == {201: 3, 409: 1}
    first_order = _buy(client, buyers[0], sale["id"], "restart-a-0000").json  # a retry: its order
    with outage_app.app_context():
        assert gate.look(merchant.id, sale["id"]).sold_out
        db.session.remove()

    private_redis.stop()
    # Redis away: the database decides; a unit given back sells again.
    refused = _buy(client, buyers[4], sale["id"], "restart-b-0004")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
    cancelled = client.post(f"/api/v1/orders/{first_order['id']}/cancel", headers=buyers[0])
    assert cancelled.status_code == 200, cancelled.json
    assert _buy(client, buyers[5], sale["id"], "restart-b-0005").status_code == 201

    private_redis.start()  # back, empty: no gate keys
    tries = iter(range(1000))

    def gate_rebuilt() -> bool:
        refused = _buy(client, buyers[6], sale["id"], f"restart-c-{next(tries):04d}")
        assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
        with outage_app.app_context():
            try:
                return gate.look(merchant.id, sale["id"]).sold_out
            finally:
                db.session.remove()

    wait_for(gate_rebuilt, OUTAGE_COOLOFF * 10)
    view = client.get(f"/api/v1/merchant/flash-sales/{sale['id']}", headers=staff_headers(client, merchant.code)).json
    assert (view["sold"], view["left"]) == (3, 0)  # never more than the quota
