"""The order machine, pair by pair (no database): the table written out here by hand is the spec."""

import pytest

from shop.core.errors import Conflict
from shop.orders.models import ORDER_STATUSES
from shop.orders.states import ORDER_MACHINE, OrderAction, OrderStatus

S, A = OrderStatus, OrderAction
REFUNDABLE_BY_MEMBER = (S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.RECEIVED)
REFUNDABLE_BY_STAFF = (*REFUNDABLE_BY_MEMBER, S.COMPLETED)

LEGAL = {
    (S.PENDING_PAYMENT, A.PAY): S.PAID,
    (S.PENDING_PAYMENT, A.CANCEL): S.CANCELLED,
    (S.PENDING_PAYMENT, A.EXPIRE): S.CANCELLED,
    (S.PAID, A.SHIP): S.SHIPPED,
    (S.PAID, A.MARK_READY): S.READY_FOR_PICKUP,
    (S.SHIPPED, A.CONFIRM_RECEIPT): S.RECEIVED,
    (S.READY_FOR_PICKUP, A.PICK_UP): S.RECEIVED,
    (S.SHIPPED, A.AUTO_CONFIRM): S.RECEIVED,
    (S.READY_FOR_PICKUP, A.AUTO_CONFIRM): S.RECEIVED,
    (S.RECEIVED, A.COMPLETE): S.COMPLETED,
    **{(status, A.REQUEST_REFUND): status for status in REFUNDABLE_BY_MEMBER},
    **{(status, A.ISSUE_REFUND): status for status in REFUNDABLE_BY_STAFF},
    **{(status, A.REFUND_ALL): S.REFUNDED for status in REFUNDABLE_BY_STAFF},
}
REPEATS = {
    (S.PAID, A.PAY),
    (S.PAID, A.EXPIRE),
    (S.SHIPPED, A.EXPIRE),
    (S.READY_FOR_PICKUP, A.EXPIRE),
    (S.RECEIVED, A.EXPIRE),
    (S.COMPLETED, A.EXPIRE),
    (S.CANCELLED, A.EXPIRE),
    (S.REFUNDED, A.EXPIRE),
    (S.RECEIVED, A.PICK_UP),
    (S.RECEIVED, A.AUTO_CONFIRM),
    (S.COMPLETED, A.AUTO_CONFIRM),
    (S.REFUNDED, A.AUTO_CONFIRM),
    (S.COMPLETED, A.COMPLETE),
    (S.REFUNDED, A.COMPLETE),
}
PAIRS = [(status, action) for status in S for action in A]


def test_the_statuses_are_the_strings_the_column_and_the_api_have_always_held():
    wire = ("pending_payment", "paid", "shipped", "ready_for_pickup", "received", "completed", "cancelled", "refunded")
    assert tuple(status.value for status in S) == wire
    assert wire == ORDER_STATUSES


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_status_and_action_pair_is_a_move_a_repeat_or_the_one_conflict(status, action):
    if (status, action) in LEGAL:
        step = ORDER_MACHINE.step(status.value, action)
        assert (step.to, step.moved) == (LEGAL[status, action], True)
    elif (status, action) in REPEATS:
        step = ORDER_MACHINE.step(status.value, action)
        assert (step.to, step.moved) == (status, False)
    else:
        with pytest.raises(Conflict) as refused:
            ORDER_MACHINE.step(status.value, action)
        assert refused.value.code == "illegal_transition"
        assert refused.value.details == {"machine": "order", "status": status.value, "action": action.value}


def test_the_machine_has_no_move_or_repeat_the_spec_here_does_not_list():
    assert dict(ORDER_MACHINE.moves) == LEGAL
    assert set(ORDER_MACHINE.repeats) == REPEATS


def test_final_statuses_leave_only_by_a_refund_of_a_completed_order():
    for final in (S.CANCELLED, S.REFUNDED):
        assert not any(status == final for status, _ in LEGAL)
    assert {target for (status, _), target in LEGAL.items() if status == S.COMPLETED} == {S.COMPLETED, S.REFUNDED}


def test_a_member_may_ask_for_a_refund_exactly_where_refundable_orders_are():
    assert ORDER_MACHINE.statuses_allowing(A.REQUEST_REFUND) == set(REFUNDABLE_BY_MEMBER)
    assert ORDER_MACHINE.statuses_allowing(A.ISSUE_REFUND) == set(REFUNDABLE_BY_MEMBER) | {S.COMPLETED}
