import itertools

import pytest

from shop.core.errors import Conflict
from shop.orders.models import REFUND_STATUSES, Refund
from shop.orders.refunds import REFUND_TRANSITIONS, transition_refund


@pytest.mark.parametrize(("start", "to"), list(itertools.product(REFUND_STATUSES, REFUND_STATUSES)))
def test_a_refund_moves_only_along_its_state_machine(start, to, monkeypatch):
    monkeypatch.setattr("shop.orders.refunds.db.session.flush", lambda: None)
    refund = Refund(status=start)
    if to in REFUND_TRANSITIONS[start]:
        assert transition_refund(refund, to).status == to
    else:
        with pytest.raises(Conflict) as caught:
            transition_refund(refund, to)
        assert caught.value.code == "illegal_transition"
        assert refund.status == start


def test_every_refund_status_has_its_transitions_listed():
    assert set(REFUND_TRANSITIONS) == set(REFUND_STATUSES)
