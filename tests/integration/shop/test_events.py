"""The rule for event handlers, on real PostgreSQL: a non-veto handler that raises a DomainError is
contained in its savepoint (logged with its name, only its writes rolled back, the change and the
other handlers go on); any other exception still aborts the transaction."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from shop.core.db import db, transaction
from shop.core.errors import Conflict
from shop.core.events import OrderCancelled, OrderPaid, bus
from shop.identity.models import Merchant
from tests.factories import make_merchant


@pytest.fixture
def subscribed():
    added: list[tuple[type, object]] = []

    def subscribe(event_type, handler):
        bus.subscribe(event_type, handler)
        added.append((event_type, handler))

    yield subscribe
    for event_type, handler in added:
        bus.unsubscribe(event_type, handler)


def _paid(merchant_id: int) -> OrderPaid:
    return OrderPaid(merchant_id=merchant_id, order_id=1, member_id=1, kind="goods", paid_total=100, lines=())


def _name(merchant_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Merchant, merchant_id).name


def refuses_after_writing(event: OrderPaid) -> None:
    db.session.execute(update(Merchant).where(Merchant.id == event.merchant_id).values(name="written by the handler"))
    raise Conflict("a business reason", code="not_allowed_here")


def test_a_domain_error_in_a_non_veto_handler_rolls_back_only_its_writes_and_is_logged_by_name(ctx, subscribed, caplog):
    merchant = make_merchant()
    later: list[OrderPaid] = []
    subscribed(OrderPaid, refuses_after_writing)
    subscribed(OrderPaid, later.append)
    event = _paid(merchant.id)
    with caplog.at_level(logging.ERROR, logger="shop.core.events"), transaction():
        db.session.execute(update(Merchant).where(Merchant.id == merchant.id).values(name="the change itself"))
        bus.publish(event)
    assert _name(merchant.id) == "the change itself"  # committed; the handler's write is gone
    assert later == [event]  # the next handler still ran
    (record,) = [r for r in caplog.records if r.name == "shop.core.events"]
    assert "test_events.refuses_after_writing" in record.getMessage()
    assert "Conflict" in record.getMessage() and "OrderPaid" in record.getMessage()


def test_a_handler_that_raises_something_else_still_aborts_the_whole_transaction(ctx, subscribed):
    merchant = make_merchant()

    def broken(event: OrderCancelled) -> None:
        raise RuntimeError("a bug")

    subscribed(OrderCancelled, broken)
    with pytest.raises(RuntimeError), transaction():
        db.session.execute(update(Merchant).where(Merchant.id == merchant.id).values(name="never"))
        bus.publish(OrderCancelled(merchant_id=merchant.id, order_id=1, member_id=1, kind="goods", reason="member"))
    assert _name(merchant.id) != "never"


def test_a_handler_that_behaves_keeps_its_writes(ctx, subscribed):
    merchant = make_merchant()

    def writes(event: OrderPaid) -> None:
        db.session.execute(update(Merchant).where(Merchant.id == event.merchant_id).values(name="kept"))

    subscribed(OrderPaid, writes)
    with transaction():
        bus.publish(_paid(merchant.id))
    assert _name(merchant.id) == "kept"


def test_the_jobs_a_contained_handler_enqueued_are_dropped_with_its_writes(ctx, subscribed):
    from rq import Queue

    from shop.core.cache import redis_client
    from shop.core.runner import enqueue
    from tests.harness_jobs import RENAME_MERCHANT

    merchant = make_merchant()
    queue = Queue(ctx.config["SETTINGS"].queue_name, connection=redis_client())

    def enqueues_then_refuses(event: OrderPaid) -> None:
        enqueue(RENAME_MERCHANT, event.merchant_id, "never")
        raise Conflict("a business reason")

    def enqueues(event: OrderPaid) -> None:
        enqueue(RENAME_MERCHANT, event.merchant_id, "kept")

    subscribed(OrderPaid, enqueues_then_refuses)
    subscribed(OrderPaid, enqueues)
    with transaction():
        bus.publish(_paid(merchant.id))
    assert [job.args for job in queue.jobs] == [(merchant.id, "kept")]
