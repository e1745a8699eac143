"""The refund machine, pair by pair (no database), and transition_refund applying it."""

from datetime import UTC, datetime

import pytest

from shop.core.errors import Conflict
from shop.orders.models import REFUND_STATUSES, Refund
from shop.orders.refunds import transition_refund
from shop.orders.states import (
    INITIAL_REFUND_STATUS,
    REFUND_MACHINE,
    RefundAction,
    RefundKind,
    RefundStatus,
)

R, RA = RefundStatus, RefundAction
SETTLEMENTS = (RA.SETTLE_SUCCEEDED, RA.SETTLE_FAILED, RA.SETTLE_ABNORMAL)
LEGAL = {
    (R.REQUESTED, RA.APPROVE): R.PROCESSING,
    (R.REQUESTED, RA.REJECT): R.REJECTED,
    (R.PROCESSING, RA.SETTLE_SUCCEEDED): R.SUCCEEDED,
    (R.PROCESSING, RA.SETTLE_FAILED): R.FAILED,
    (R.PROCESSING, RA.SETTLE_ABNORMAL): R.ABNORMAL,
    (R.ABNORMAL, RA.SETTLE_SUCCEEDED): R.SUCCEEDED,
    (R.ABNORMAL, RA.SETTLE_FAILED): R.FAILED,
}
REPEATS = (
    {(R.SUCCEEDED, a) for a in SETTLEMENTS} | {(R.FAILED, a) for a in SETTLEMENTS} | {(R.ABNORMAL, RA.SETTLE_ABNORMAL)}
)
PAIRS = [(status, action) for status in R for action in RA]
MOMENT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("start", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_a_refund_moves_only_along_its_state_machine(start, action, monkeypatch):
    monkeypatch.setattr("shop.orders.refunds.db.session.flush", lambda: None)
    refund = Refund(status=start.value)
    if (start, action) in LEGAL:
        assert transition_refund(refund, action, now=MOMENT) is True
        assert refund.status == LEGAL[start, action]
        assert refund.succeeded_at == (MOMENT if refund.status == R.SUCCEEDED else None)
    elif (start, action) in REPEATS:
        assert transition_refund(refund, action, now=MOMENT) is False
        assert (refund.status, refund.succeeded_at) == (start, None)
    else:
        with pytest.raises(Conflict) as caught:
            transition_refund(refund, action, now=MOMENT)
        assert caught.value.code == "illegal_transition"
        assert caught.value.details == {"machine": "refund", "status": start.value, "action": action.value}
        assert refund.status == start


def test_the_machine_has_exactly_the_moves_and_repeats_written_here():
    assert dict(REFUND_MACHINE.moves) == LEGAL
    assert set(REFUND_MACHINE.repeats) == REPEATS


def test_the_statuses_are_the_strings_the_column_and_the_api_have_always_held():
    wire = ("requested", "rejected", "processing", "abnormal", "succeeded", "failed")
    assert tuple(status.value for status in R) == wire
    assert wire == REFUND_STATUSES


@pytest.mark.parametrize(
    ("kind", "first"),
    [
        (RefundKind.MEMBER, R.REQUESTED),
        (RefundKind.STAFF, R.PROCESSING),
        (RefundKind.SYSTEM, R.PROCESSING),
        (RefundKind.LATE_PAYMENT, R.PROCESSING),
    ],
)
def test_a_member_s_refund_waits_for_a_decision_and_others_go_straight_to_the_provider(kind, first):
    assert INITIAL_REFUND_STATUS[kind] is first


def test_a_rejected_or_requested_refund_is_never_settled():
    for start in (R.REQUESTED, R.REJECTED):
        for action in SETTLEMENTS:
            assert not REFUND_MACHINE.allows(start, action) and not REFUND_MACHINE.is_repeat(start, action)
