"""Redis stopped or hung does not hold the API up: catalog reads and placements answer at
PostgreSQL speed, /healthz says 503 at once, nothing answers 5xx, and what Redis could not take
(a shipped order's delayed auto-confirm job, cache version bumps) reaches it soon after it
answers again. Placing an order needs no Redis at all (its expiry is the expiry sweep's).

Each test runs its own app(s) against a private redis-server it stops and hangs (SIGSTOP), with a
0.2 s Redis timeout and a 1 s cool-off."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from shop.core.redisguard import guard_of
from shop.identity.settings import merchant_settings
from tests.factories import fake_pay, member_headers, order_body, paid_order, place, ship, staff_headers
from tests.redis_server import PrivateRedis
from tests.resilience.helpers import OUTAGE_COOLOFF, OUTAGE_QUEUE, shop_with_stock, wait_for

pytestmark = pytest.mark.committing

COOLOFF = OUTAGE_COOLOFF
QUEUE = OUTAGE_QUEUE


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _registry(private_redis: PrivateRedis) -> ScheduledJobRegistry:
    """Looked at with a plain client: the apps' clients skip Redis while their breaker is open."""
    return ScheduledJobRegistry(queue=Queue(QUEUE, connection=Redis.from_url(private_redis.url)))


def _scheduled(private_redis: PrivateRedis) -> set[str]:
    return set(_registry(private_redis).get_job_ids())


def _count_redis_attempts(outage_app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every command or pipeline the app's request-path client sends takes a connection from its
    pool first; the breaker refuses before that. Returns the list the times are appended to."""
    pool = outage_app.extensions["groupshop.redis"].connection_pool
    real = pool.get_connection
    attempts: list[float] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting)
    return attempts


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_with_redis_out_catalog_reads_and_placements_answer_at_postgresql_speed(
    make_app, private_redis, outage, monkeypatch
):
    outage_app = make_app()
    client = outage_app.test_client()
    merchant, product_id, sku_id = shop_with_stock(outage_app)
    member = member_headers(client, merchant.code)
    assert client.get("/api/v1/products", headers=member).status_code == 200  # cached now

    private_redis.stop() if outage == "stopped" else private_redis.hang()
    attempts = _count_redis_attempts(outage_app, monkeypatch)
    started = time.monotonic()
    durations, statuses, placed = [], [], []
    for i in range(40):
        url = "/api/v1/products" if i % 2 else f"/api/v1/products/{product_id}"
        response, took = _timed(lambda url=url: client.get(url, headers=member))
        durations.append(took)
        statuses.append(response.status_code)
        if i % 4 == 0:
            response, took = _timed(lambda: place(client, member, order_body(sku_id)))
            durations.append(took)
            statuses.append(response.status_code)
            placed.append(response.json["id"])
            order_no = response.json["order_no"]
    elapsed = time.monotonic() - started
    tried = len(attempts)
    health, health_took = _timed(lambda: client.get("/healthz"))
    # The fake provider keeps its state in Redis: without it, a retryable 503 (it was a 500).
    paying = fake_pay(client, order_no)

    assert set(statuses) == {200, 201}
    # Redis is tried once, then once per cool-off (a probe), whatever the number of requests
    # (before: every command of the 50 requests tried it).
    assert tried <= elapsed / COOLOFF + 2, (tried, elapsed)
    # Wide margins for a loaded machine, still far from the 5 s socket timeout of a read and the
    # 0.7 requests per second measured before.
    assert max(durations) < 2.5, sorted(durations)[-5:]
    assert len(durations) / elapsed > 3, (len(durations), elapsed)
    assert (health.status_code, health.json["redis"]) == (503, "down")
    assert health_took < 2.5
    assert (paying.status_code, paying.json["error"]["code"]) == (503, "unavailable")

    # The placements left nothing for Redis: their expiry is the sweep's (their expires_at).
    assert len(placed) == 10
    assert guard_of(outage_app.extensions["groupshop.redis"]).pending() == 0
    private_redis.start() if outage == "stopped" else private_redis.resume()
    assert _scheduled(private_redis) == set()
    # The app tries Redis again after a cool-off.
    wait_for(lambda: client.get("/healthz").status_code == 200, COOLOFF + 2)
    assert client.get("/api/v1/products", headers=member).status_code == 200


def test_a_catalog_change_committed_while_redis_hangs_reaches_the_readers_of_other_processes_within_a_cooloff(
    make_app, private_redis
):
    writer_app, reader_app = make_app(), make_app()
    writer, reader = writer_app.test_client(), reader_app.test_client()
    merchant, product_id, _ = shop_with_stock(writer_app)
    staff, member = staff_headers(writer, merchant.code), member_headers(reader, merchant.code)

    def title() -> str:
        response = reader.get(f"/api/v1/products/{product_id}", headers=member)
        assert response.status_code == 200
        return response.json["title"]

    assert title() == "旧标题"  # cached by the reader process

    private_redis.hang()
    changed = writer.patch(f"/api/v1/merchant/products/{product_id}", json={"title": "新标题"}, headers=staff)
    assert changed.status_code == 200
    writer_guard = guard_of(writer_app.extensions["groupshop.redis"])
    assert writer_guard.bump_pending(f"catalog:{merchant.id}")  # Redis did not get the bump
    assert title() == "新标题"  # read from PostgreSQL while Redis is out
    private_redis.resume()

    # Without the writer's outbox the reader would serve its cached old title until the entry's
    # TTL (CATALOG_CACHE_TTL, 300 s) runs out; with it, within a cool-off of Redis answering.
    took = wait_for(lambda: title() == "新标题" and writer_guard.pending() == 0, COOLOFF + 2)
    assert took < COOLOFF + 2
    assert all(title() == "新标题" for _ in range(5))


def test_an_order_shipped_while_redis_is_down_gets_its_auto_confirm_job_when_redis_returns_due_at_the_same_time(
    make_app, private_redis
):
    outage_app = make_app()
    client = outage_app.test_client()
    merchant, _, sku_id = shop_with_stock(outage_app)
    member, staff = member_headers(client, merchant.code), staff_headers(client, merchant.code)
    order = paid_order(client, member, order_body(sku_id))
    private_redis.stop()
    shipped = ship(client, staff, order["id"])
    assert shipped.status_code == 200, shipped.json
    private_redis.start()
    job_id = f"auto-confirm-{order['id']}"
    wait_for(lambda: job_id in _scheduled(private_redis), COOLOFF + 2)
    due = _registry(private_redis).get_scheduled_time(job_id)
    shipped_at = datetime.fromisoformat(shipped.json["shipped_at"])
    with outage_app.app_context():
        days = merchant_settings(merchant.id).auto_confirm_days
    # As when sent at once: the merchant's auto-confirm days and 5 s after the shipment.
    assert abs((due - shipped_at - timedelta(days=days)).total_seconds() - 5) < 2
