"""The paid-upgrade job (coupons.issue_upgrade) in real worker processes: killed (SIGKILL) at each
of its crash points, it leaves either nothing or the whole exchange done, and the sweep run by a
fresh worker finishes it; two workers at once on its duplicates exchange the gift once. Either
way the member ends with exactly one prize of the better tier and the old one voided once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from coupons.jobs import issue_upgrade, sweep_upgrades
from coupons.models import CampaignTier, Prize, PrizeUpgrade
from shop.core.db import db, transaction, utcnow
from shop.orders.models import Order
from tests.factories import fake_pay
from tests.integration.coupons.test_campaign_races import Lottery, lottery, place_upgrade, third_prizes
from tests.resilience.helpers import OUTAGE_QUEUE, run_job_worker

pytestmark = pytest.mark.committing


def _paid_upgrade(app: Flask) -> tuple[Lottery, int, int]:
    """A member's third prize upgraded to first and paid through the fake provider (whose
    notification queued the job): (the campaign, the held prize's id, the order's id)."""
    game = lottery(app, members=1, offers=[(2, 0, 9900)])
    (held,) = third_prizes(app, game)
    order_id = place_upgrade(app, game, held)
    assert isinstance(order_id, int), order_id
    with app.app_context():
        order_no = db.session.get(Order, order_id).order_no
        paid = fake_pay(app.test_client(), order_no)
        assert paid.status_code == 200 and paid.json["status"] == "paid", paid.json
        db.session.remove()
    return game, held["id"], order_id


def _state(app: Flask, game: Lottery, held_id: int) -> dict[str, Any]:
    with app.app_context():
        try:
            better = db.session.execute(select(Prize.id, Prize.tier_id, Prize.status).where(Prize.origin == "upgrade"))
            upgrade = db.session.execute(select(PrizeUpgrade.status, PrizeUpgrade.to_prize_id)).one()
            return {
                "better": [tuple(row) for row in better],
                "held": db.session.get(Prize, held_id).status,
                "upgrade": tuple(upgrade),
                "taken": db.session.get(CampaignTier, game.tiers[0]).taken,
            }
        finally:
            db.session.remove()


def _exchanged_once(app: Flask, game: Lottery, held_id: int) -> None:
    state = _state(app, game, held_id)
    assert len(state["better"]) == 1, state
    better_id, tier_id, status = state["better"][0]
    assert (tier_id, status) == (game.tiers[0], "available")
    assert state["held"] == "voided"
    assert state["upgrade"] == ("issued", better_id)
    assert state["taken"] == 1


def _paid_a_while_ago(app: Flask, order_id: int) -> None:
    """The sweep leaves a payment less than a minute old to its job: make this one older."""
    with app.app_context():
        with transaction():
            db.session.execute(
                update(Order).where(Order.id == order_id).values(paid_at=utcnow() - timedelta(minutes=2))
            )
        db.session.remove()


@pytest.mark.parametrize(
    "crash_point, exchanged_before_the_crash",
    # killed before it did anything / with the exchange written but not committed / just after
    # the commit: the sweep does it, does it, and finds nothing left to do
    [("coupons.upgrade_started", False), ("coupons.upgrade_written", False), ("coupons.upgrade_committed", True)],
)
def test_an_upgrade_worker_killed_at_each_checkpoint_leaves_one_better_prize_after_the_sweep(
    make_app, private_redis, tmp_path, crash_point, exchanged_before_the_crash
):
    app = make_app()
    game, held_id, order_id = _paid_upgrade(app)

    killed = run_job_worker(app, private_redis, tmp_path / "killed.log", kill_at=crash_point)

    assert killed.returncode == -9, killed.log
    assert f"killed at the crash point {crash_point}" in killed.log
    if exchanged_before_the_crash:
        _exchanged_once(app, game, held_id)
    else:  # nothing half done: the gift still held for its paid upgrade, no better one
        assert _state(app, game, held_id) == {"better": [], "held": "held", "upgrade": ("pending", None), "taken": 1}

    _paid_a_while_ago(app, order_id)
    Queue(OUTAGE_QUEUE, connection=Redis.from_url(private_redis.url)).enqueue(sweep_upgrades)  # as cron would
    recovered = run_job_worker(app, private_redis, tmp_path / "recovered.log")

    assert recovered.returncode == 0, recovered.log
    assert "coupons.jobs.issue_upgrade(" not in recovered.log  # the lost job stays lost: the sweep found it
    _exchanged_once(app, game, held_id)


def test_two_workers_at_once_on_a_paid_upgrades_duplicate_jobs_exchange_the_gift_once(
    make_app, private_redis, tmp_path
):
    app = make_app()
    game, held_id, order_id = _paid_upgrade(app)  # its job is queued
    _paid_a_while_ago(app, order_id)
    queue = Queue(OUTAGE_QUEUE, connection=Redis.from_url(private_redis.url))
    for _ in range(3):  # retries and sweeps, all due together
        queue.enqueue(issue_upgrade, order_id)
        queue.enqueue(sweep_upgrades)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda n: run_job_worker(app, private_redis, tmp_path / f"worker{n}.log"), range(2)))

    assert [run.returncode for run in runs] == [0, 0], [run.log for run in runs]
    assert len(queue) == 0
    _exchanged_once(app, game, held_id)
