"""each_due, the body of every sweep: one failing item never stops the others, a run takes at
most its batch, oldest first, and the ids are read before any job runs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from shop.core import runner
from shop.core.db import db, in_transaction_block
from shop.core.runner import each_due
from shop.identity.models import Merchant
from tests.factories import make_merchant


@pytest.fixture
def merchants(ctx):
    made = [make_merchant().id for _ in range(5)]
    return made, select(Merchant.id).where(Merchant.id.in_(made)).order_by(Merchant.id)


def test_an_item_that_fails_is_logged_and_skipped_and_the_others_still_run(merchants, caplog):
    ids, query = merchants
    ran: list[int] = []

    def job(merchant_id: int) -> None:
        if merchant_id == ids[1]:
            raise RuntimeError("this one keeps failing")
        ran.append(merchant_id)

    with caplog.at_level(logging.ERROR, logger="shop.core.runner"):
        assert each_due(query, job) == 4
    assert ran == [ids[0], *ids[2:]]
    (record,) = caplog.records
    assert f"job({ids[1]}) failed in its sweep" in record.getMessage()


@pytest.mark.parametrize(
    ("batch", "default", "expected"),
    [
        (2, runner.SWEEP_BATCH, 2),  # the batch given
        (None, 3, 3),  # SWEEP_BATCH, read when the sweep runs
        (None, 500, 5),  # fewer due than the batch
    ],
)
def test_a_run_takes_at_most_its_batch_oldest_first(merchants, monkeypatch, batch, default, expected):
    ids, query = merchants
    monkeypatch.setattr(runner, "SWEEP_BATCH", default)
    ran: list[int] = []
    assert each_due(query, ran.append, batch=batch) == expected
    assert ran == ids[:expected]


def test_all_due_lifts_the_batch_for_a_list_that_stays_due(merchants, monkeypatch):
    ids, query = merchants
    monkeypatch.setattr(runner, "SWEEP_BATCH", 2)
    ran: list[int] = []
    assert each_due(query, ran.append, all_due=True) == 5
    assert ran == ids


def test_jobs_run_outside_the_transaction_that_read_their_ids(merchants):
    _, query = merchants
    seen: list[bool] = []
    each_due(query, lambda merchant_id: seen.append(in_transaction_block() or db.session().in_transaction()))
    assert seen == [False] * 5
