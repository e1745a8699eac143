"""A settlement worker killed (SIGKILL) midway: the batch in flight is not half-settled, the
batches it committed stay settled once, and the next run (the sweep, a retry) settles the rest
exactly once. The ledger reconciles after each crash."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from distribution.jobs import settle, sweep_settlement
from distribution.ledger import reconcile
from distribution.models import Commission, LedgerEntry
from shop.core.db import db
from tests.integration.distribution.test_races import _program_with_chain
from tests.resilience.helpers import OUTAGE_QUEUE, run_job_worker

pytestmark = pytest.mark.committing


def _state() -> tuple[dict[str, int], int]:
    db.session.expire_all()
    statuses = dict(db.session.execute(select(Commission.status, func.count()).group_by(Commission.status)).all())
    batches = db.session.execute(
        select(func.count(func.distinct(LedgerEntry.settlement_id))).where(LedgerEntry.kind == "commission_settled")
    ).scalar_one()
    return statuses, batches


@pytest.mark.parametrize(
    "crash_point, settled_before_the_crash, batches",
    # killed before its first batch committed / just after it committed; the sweep's rerun
    # settles the rest in one batch of its default size
    [("distribution.settle.batch_written", 0, 1), ("distribution.settle.batch_committed", 4, 2)],
)
def test_a_settlement_worker_killed_midway_leaves_nothing_half_done_and_the_rerun_finishes_once(
    make_app, private_redis, tmp_path, crash_point, settled_before_the_crash, batches
):
    app = make_app()
    _program_with_chain(app, orders=5, lines=2)  # 20 due commissions
    queue = Queue(OUTAGE_QUEUE, connection=Redis.from_url(private_redis.url))
    queue.enqueue(settle, batch=4)  # the job, 4 commissions a batch

    killed = run_job_worker(app, private_redis, tmp_path / "killed.log", kill_at=crash_point)

    assert killed.returncode == -9, killed.log
    assert f"killed at the crash point {crash_point}" in killed.log
    with app.app_context():
        statuses, _ = _state()
        assert statuses.get("settled", 0) == settled_before_the_crash
        assert statuses["pending"] == 20 - settled_before_the_crash
        assert reconcile()[1] == []

    queue.enqueue(sweep_settlement)
    recovered = run_job_worker(app, private_redis, tmp_path / "recovered.log")

    assert recovered.returncode == 0, recovered.log
    with app.app_context():
        statuses, made = _state()
        assert statuses == {"settled": 20}
        credited = db.session.execute(
            select(func.sum(LedgerEntry.d_available)).where(LedgerEntry.kind == "commission_settled")
        ).scalar_one()
        assert credited == db.session.execute(select(func.sum(Commission.amount))).scalar_one()
        assert made == batches
        assert reconcile()[1] == []
