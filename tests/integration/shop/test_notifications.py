"""The notification outbox: queue_notification stores a message once per dedupe key (also when
two transactions race), refuses bad input naming the fields, and only for the merchant's members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from shop.core.db import db, transaction, utcnow
from shop.core.errors import InvalidInput, NotFound
from shop.identity.models import Member, OutboxNotification
from shop.identity.notifications import queue_notification
from tests.factories import make_merchant, race


def _member(merchant_id: int, openid: str = "o-1") -> int:
    with transaction():
        member = Member(merchant_id=merchant_id, openid=openid, nickname="", created_at=utcnow())
        db.session.add(member)
        db.session.flush()
        return member.id


def _stored(merchant_id: int) -> list[OutboxNotification]:
    db.session.expire_all()
    return list(
        db.session.execute(
            select(OutboxNotification)
            .where(OutboxNotification.merchant_id == merchant_id)
            .order_by(OutboxNotification.id)
        ).scalars()
    )


def test_a_message_is_stored_pending_for_later_and_the_same_message_again_is_stored_once(ctx):
    merchant = make_merchant()
    member_id = _member(merchant.id)
    later = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    payload = {"thing1": {"value": "拼团成功"}, "amount": 1990, "nested": [1, {"ok": True}, None]}
    with transaction():
        assert queue_notification(
            merchant.id, member_id, kind="group_succeeded", payload=payload, dedupe_key="group:7", send_after=later
        )
        assert not queue_notification(
            merchant.id, member_id, kind="group_succeeded", payload={"other": 1}, dedupe_key="group:7"
        )
    (stored,) = _stored(merchant.id)
    assert (stored.member_id, stored.kind, stored.payload, stored.dedupe_key) == (
        member_id,
        "group_succeeded",
        payload,
        "group:7",
    )
    assert (stored.status, stored.attempts, stored.send_after) == ("pending", 0, later)


def test_without_a_time_it_is_due_now_and_keys_are_per_merchant(ctx):
    first, second = make_merchant(), make_merchant()
    members = _member(first.id), _member(second.id)
    before = utcnow()
    with transaction():
        assert queue_notification(first.id, members[0], kind="k", payload={}, dedupe_key="same")
        assert queue_notification(second.id, members[1], kind="k", payload={}, dedupe_key="same")
    (stored,) = _stored(first.id)
    assert before <= stored.send_after <= utcnow()
    assert len(_stored(second.id)) == 1


def test_a_message_queued_in_a_transaction_that_rolls_back_is_not_stored(ctx):
    merchant = make_merchant()
    member_id = _member(merchant.id)
    with pytest.raises(RuntimeError), transaction():
        queue_notification(merchant.id, member_id, kind="k", payload={}, dedupe_key="gone")
        raise RuntimeError("the change it announces failed")
    assert _stored(merchant.id) == []


def test_a_member_of_another_merchant_is_not_found(ctx):
    merchant, other = make_merchant(), make_merchant()
    stranger = _member(other.id)
    with pytest.raises(NotFound), transaction():
        queue_notification(merchant.id, stranger, kind="k", payload={}, dedupe_key="x")
    with pytest.raises(NotFound), transaction():
        queue_notification(merchant.id, 10**12, kind="k", payload={}, dedupe_key="x")
    assert _stored(merchant.id) == [] and _stored(other.id) == []


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


NAIVE = datetime(2031, 1, 1)
GOOD = {"kind": "order_shipped", "payload": {"a": 1}, "dedupe_key": "k-1", "send_after": None}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": ""}, "kind"),
        ({"kind": "Order Shipped"}, "kind"),
        ({"kind": "x" * 65}, "kind"),
        ({"kind": 7}, "kind"),
        ({"dedupe_key": ""}, "dedupe_key"),
        ({"dedupe_key": "   "}, "dedupe_key"),
        ({"dedupe_key": "k" * 129}, "dedupe_key"),
        ({"dedupe_key": "a\x00b"}, "dedupe_key"),
        ({"dedupe_key": "a\ud800"}, "dedupe_key"),
        ({"payload": ["not", "an", "object"]}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"payload": {"v": "a\x00b"}}, "payload"),  # PostgreSQL refuses NUL in jsonb
        ({"payload": {"a\x00": 1}}, "payload"),
        ({"payload": {"v": "\udc00"}}, "payload"),  # a lone surrogate
        ({"payload": {1: "int key"}}, "payload"),
        ({"payload": {"v": float("nan")}}, "payload"),
        ({"payload": {"v": {1, 2}}}, "payload"),
        ({"payload": {"v": NAIVE}}, "payload"),
        ({"payload": {"v": "字" * 1400}}, "payload"),  # over 4 KiB as UTF-8
        ({"payload": _deep(9)}, "payload"),
        ({"send_after": NAIVE}, "send_after"),
        ({"send_after": "2031-01-01T00:00:00Z"}, "send_after"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(ctx, change, field):
    merchant = make_merchant()
    member_id = _member(merchant.id)
    arguments = {**GOOD, **change}
    with pytest.raises(InvalidInput) as refused, transaction():
        queue_notification(merchant.id, member_id, **arguments)
    assert list(refused.value.details["fields"]) == [field]
    assert _stored(merchant.id) == []


@pytest.mark.parametrize("ids", [(0, 1), (1, 0), (True, 1), ("1", 1), (-5, 1)])
def test_ids_that_are_not_positive_integers_are_refused(ctx, ids):
    merchant_id, member_id = ids
    with pytest.raises(InvalidInput) as refused, transaction():
        queue_notification(merchant_id, member_id, kind="k", payload={}, dedupe_key="k")
    assert set(refused.value.details["fields"]) <= {"merchant_id", "member_id"}


def test_the_largest_allowed_payload_and_depth_are_stored(ctx):
    merchant = make_merchant()
    member_id = _member(merchant.id)
    with transaction():
        assert queue_notification(merchant.id, member_id, kind="k", payload=_deep(8), dedupe_key="deep")
        assert queue_notification(
            merchant.id, member_id, kind="k", payload={"v": "x" * 4000}, dedupe_key="big", send_after=None
        )
    assert len(_stored(merchant.id)) == 2


@pytest.mark.committing
def test_two_transactions_queueing_the_same_message_at_once_store_it_once(app):
    with app.app_context():
        merchant = make_merchant()
        member_id = _member(merchant.id)
        db.session.remove()

    def queue(i: int) -> bool:
        with app.app_context():
            try:
                with transaction():
                    stored = queue_notification(
                        merchant.id,
                        member_id,
                        kind="commission_settled",
                        payload={"attempt": i},
                        dedupe_key="commission:42",
                        send_after=utcnow() + timedelta(minutes=i),
                    )
                return stored
            finally:
                db.session.remove()

    results = race(2, queue)
    assert sorted(results) == [False, True]
    with app.app_context():
        (stored,) = _stored(merchant.id)
        assert stored.dedupe_key == "commission:42" and stored.status == "pending"
        db.session.remove()
