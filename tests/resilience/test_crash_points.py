"""A worker killed (SIGKILL) midway through a job leaves work that its sweep or a retry finishes,
exactly once.

Each test runs the job in a real worker process (`run_burst` in a fresh interpreter, on the test
database and a private Redis) armed to kill itself at a named crash point of the job
(`shop.core.runner.checkpoint`, armed by GROUPSHOP_KILL_AT), sees it die there, then runs a worker
again, unarmed, on what recovery enqueues, and reads in the database that the work happened once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select, update

from shop.catalog.models import Sku, StockMovement
from shop.core.db import db, transaction, utcnow
from shop.core.runner import enqueue
from shop.orders.models import Order, Refund
from shop.payments.jobs import EXPIRE_ORDER_JOB, sweep_expired_orders, sweep_refunds
from shop.payments.providers import PROVIDER_EXTENSION
from tests.factories import member_headers, order_body, paid_order, placed_order, staff_headers
from tests.resilience.helpers import OUTAGE_QUEUE, run_job_worker, shop_with_stock

pytestmark = pytest.mark.committing


def _stock_and_movements(sku_id: int, reason: str) -> tuple[int, int]:
    db.session.expire_all()
    moved = db.session.execute(
        select(func.count()).where(StockMovement.sku_id == sku_id, StockMovement.reason == reason)
    ).scalar_one()
    return db.session.get(Sku, sku_id).stock, moved


def test_an_expiry_killed_after_asking_the_provider_is_finished_once_by_the_sweep(make_app, private_redis, tmp_path):
    app = make_app()
    merchant, _, sku_id = shop_with_stock(app, stock=10)
    client = app.test_client()
    with app.app_context():
        order = placed_order(client, member_headers(client, merchant.code), order_body(sku_id, 3))
        with transaction():
            db.session.execute(
                update(Order).where(Order.id == order["id"]).values(expires_at=utcnow() - timedelta(minutes=1))
            )
    queue = Queue(OUTAGE_QUEUE, connection=Redis.from_url(private_redis.url))
    queue.enqueue(sweep_expired_orders)  # what `groupshop cron` enqueues every 10 s

    killed = run_job_worker(app, private_redis, tmp_path / "killed.log", kill_at="payments.expire_order.answered")

    assert killed.returncode == -9, killed.log
    assert "killed at the crash point payments.expire_order.answered" in killed.log
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "pending_payment"  # nothing recorded
        assert _stock_and_movements(sku_id, "order_released") == (7, 0)

    queue.enqueue(sweep_expired_orders)  # the next run of the sweep
    with app.app_context():
        enqueue(EXPIRE_ORDER_JOB, order["id"])  # and a retry of the job, for good measure
    recovered = run_job_worker(app, private_redis, tmp_path / "recovered.log")

    assert recovered.returncode == 0, recovered.log
    with app.app_context():
        stored = db.session.get(Order, order["id"])
        assert (stored.status, stored.cancel_reason) == ("cancelled", "expired")
        assert _stock_and_movements(sku_id, "order_released") == (10, 1)  # the stock came back once


def test_a_refund_killed_after_the_provider_took_it_is_settled_once_by_the_sweep(make_app, private_redis, tmp_path):
    app = make_app()
    merchant, _, sku_id = shop_with_stock(app, stock=10)
    client = app.test_client()
    with app.app_context():
        member = member_headers(client, merchant.code)
        order = paid_order(client, member, order_body(sku_id, 2))
        asked = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "坏了"}, headers=member)
        assert asked.status_code == 201, asked.json
        approved = client.post(
            f"/api/v1/merchant/refunds/{asked.json['id']}/approve", headers=staff_headers(client, merchant.code)
        )
        assert approved.json["status"] == "processing", approved.json  # the submission job is queued
    refund_id, out_refund_no, amount = asked.json["id"], approved.json["out_refund_no"], approved.json["amount"]
    provider = app.extensions[PROVIDER_EXTENSION]

    killed = run_job_worker(app, private_redis, tmp_path / "killed.log", kill_at="payments.refund_answered")

    assert killed.returncode == -9, killed.log
    assert "killed at the crash point payments.refund_answered" in killed.log
    with app.app_context():
        assert provider.refund_submissions() == {out_refund_no: amount}  # the provider has it
        db.session.expire_all()
        refund = db.session.get(Refund, refund_id)
        assert (refund.status, refund.attempts, refund.provider_refund_id) == ("processing", 1, None)
        assert db.session.get(Order, order["id"]).refunded_total == 0
        assert _stock_and_movements(sku_id, "refund_restock") == (8, 0)

    queue = Queue(OUTAGE_QUEUE, connection=Redis.from_url(private_redis.url))
    queue.empty()  # and the provider's notification is lost too: only the sweep is left to finish it
    with app.app_context(), transaction():
        db.session.execute(
            update(Refund).where(Refund.id == refund_id).values(created_at=utcnow() - timedelta(minutes=11))
        )
    queue.enqueue(sweep_refunds)  # what `groupshop cron` enqueues every ten minutes
    recovered = run_job_worker(app, private_redis, tmp_path / "recovered.log")

    assert recovered.returncode == 0, recovered.log
    with app.app_context():
        db.session.expire_all()
        refund = db.session.get(Refund, refund_id)
        assert (refund.status, refund.amount) == ("succeeded", amount)
        stored = db.session.get(Order, order["id"])
        assert (stored.status, stored.refunded_total) == ("refunded", amount)
        assert _stock_and_movements(sku_id, "refund_restock") == (10, 1)  # restocked once
        assert provider.refund_submissions() == {out_refund_no: amount}  # one refund at the provider
