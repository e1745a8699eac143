"""shop.core.db.transaction_if_used: a block that does not touch the database makes no session; one
that does is committed (or rolled back) with its after-commit callbacks exactly as by
`transaction()`."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from shop.core.db import after_commit, db, transaction, transaction_if_used
from shop.core.errors import Conflict
from shop.identity.models import Merchant
from tests.factories import make_merchant


def _name(merchant_id: int) -> str:
    with transaction():
        return db.session.execute(select(Merchant.name).where(Merchant.id == merchant_id)).scalar_one()


def test_a_block_that_touches_nothing_makes_no_session(app, ctx):
    with app.app_context():
        with transaction_if_used():
            pass
        assert not db.session.registry.has()


def test_what_the_block_writes_is_committed_then_its_callbacks_run(app, ctx):
    merchant_id = make_merchant().id
    ran: list[str] = []
    with app.app_context():
        with transaction_if_used():
            db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name="改了"))
            after_commit(lambda: ran.append(_name_in_new_context(app, merchant_id)))
            assert ran == []
        assert not db.session().in_transaction()
    assert ran == ["改了"]  # the callback ran after the commit and saw it
    assert _name(merchant_id) == "改了"


def test_an_error_rolls_back_what_the_block_wrote_and_drops_its_callbacks(app, ctx):
    merchant = make_merchant()
    before = merchant.name
    ran: list[str] = []
    with app.app_context():
        with pytest.raises(Conflict), transaction_if_used():
            db.session.execute(update(Merchant).where(Merchant.id == merchant.id).values(name="不该留下"))
            after_commit(lambda: ran.append("ran"))
            raise Conflict("refused", code="refused")
        assert not db.session().in_transaction()
    assert ran == []
    assert _name(merchant.id) == before


def test_a_constraint_violation_is_translated_as_transaction_translates_it(app, ctx):
    first, second = make_merchant(), make_merchant()
    with app.app_context(), pytest.raises(Conflict), transaction_if_used():
        db.session.execute(update(Merchant).where(Merchant.id == second.id).values(code=first.code))
    assert db.session.get(Merchant, second.id).code != first.code


def test_a_context_with_a_session_gets_the_plain_transaction(app, ctx):
    merchant_id = make_merchant().id
    db.session()  # this context has its session
    with transaction_if_used():
        db.session.execute(update(Merchant).where(Merchant.id == merchant_id).values(name="同一个"))
        with pytest.raises(RuntimeError, match="does not nest"), transaction():
            pass
    assert _name(merchant_id) == "同一个"


def _name_in_new_context(app, merchant_id: int) -> str:
    with app.app_context():
        name = _name(merchant_id)
        db.session.remove()
        return name
