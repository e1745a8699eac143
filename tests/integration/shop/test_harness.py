"""The harness itself: isolation between tests, and jobs through a real RQ worker."""

from __future__ import annotations

import pytest
from rq import Queue
from sqlalchemy import select

from api.worker import run_burst
from shop.core.cache import redis_client
from shop.core.db import after_commit, db, transaction
from shop.core.runner import enqueue
from shop.identity.models import Merchant
from tests.factories import make_merchant
from tests.harness_jobs import RENAME_MERCHANT


def _queue(app) -> Queue:
    return Queue(app.config["SETTINGS"].queue_name, connection=redis_client())


def test_a_committed_row_exists_within_its_test(ctx):
    make_merchant("harness-commit")
    with transaction():
        pass
    assert db.session.execute(select(Merchant).where(Merchant.code == "harness-commit")).scalar_one()
    redis_client().set("harness-key", "1")


def test_a_committed_row_is_gone_by_the_next_test(ctx):
    assert db.session.execute(select(Merchant).where(Merchant.code == "harness-commit")).first() is None
    assert redis_client().get("harness-key") is None


def test_a_job_enqueued_after_commit_runs_through_a_real_worker(ctx):
    merchant = make_merchant()
    with transaction():
        enqueue(RENAME_MERCHANT, merchant.id, "renamed by a job")
        assert _queue(ctx).count == 0  # not before the commit
    assert _queue(ctx).count == 1
    job = _queue(ctx).jobs[0]
    assert job.args == (merchant.id, "renamed by a job")  # arguments went through Redis
    assert run_burst(ctx)
    db.session.expire_all()
    assert db.session.get(Merchant, merchant.id).name == "renamed by a job"
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == "renamed by a job"


def test_a_rolled_back_transaction_enqueues_nothing(ctx):
    merchant = make_merchant()
    with pytest.raises(RuntimeError), transaction():
        enqueue(RENAME_MERCHANT, merchant.id, "never")
        raise RuntimeError("boom")
    assert _queue(ctx).count == 0
    assert db.session.get(Merchant, merchant.id).name != "never"


def test_after_commit_callbacks_run_once_and_only_after_commit(ctx):
    calls = []
    with transaction():
        after_commit(lambda: calls.append("ran"))
        assert calls == []
    assert calls == ["ran"]
    with transaction():
        pass
    assert calls == ["ran"]


def test_transactions_do_not_nest(ctx):
    with pytest.raises(RuntimeError), transaction(), transaction():
        pass


def test_a_job_enqueued_outside_any_transaction_is_sent_at_once(ctx):
    merchant = make_merchant()
    enqueue(RENAME_MERCHANT, merchant.id, "sent between transactions")
    assert _queue(ctx).count == 1  # nothing to wait for: no transaction() is open
    assert run_burst(ctx)
    db.session.expire_all()
    assert db.session.get(Merchant, merchant.id).name == "sent between transactions"
