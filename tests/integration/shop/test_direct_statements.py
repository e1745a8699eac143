"""shop.core.db.Direct: a prebuilt statement run on the session's own DBAPI connection behaves as
`session.execute` would: in the session's transaction, with its types' bind processors and the
values written into it, seen by cursor events, and a constraint violation raised as SQLAlchemy's
IntegrityError (so `transaction()` turns it into the domain error)."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from shop.catalog.models import Category, Product
from shop.core.db import Direct, db, new_row, statement_of_its_own, transaction
from shop.core.errors import DomainError
from tests.factories import make_merchant, sent_statements

_categories, _products = Category.__table__, Product.__table__

ADD_PRODUCT = Direct(
    insert(_products)
    .values(
        merchant_id=bindparam("p_merchant", type_=BigInteger),
        title=bindparam("p_title"),
        images=bindparam("p_images", type_=_products.c.images.type),
        status=func.lower("DRAFT"),  # a value written into the statement
    )
    .returning(_products.c.id, _products.c.images, _products.c.status)
)
COUNT = Direct(select(func.count()).select_from(_products).where(_products.c.merchant_id == bindparam("p_m")))


def test_it_runs_in_the_sessions_transaction_with_bind_processors_and_written_in_values(ctx):
    merchant = make_merchant()
    with sent_statements() as seen, pytest.raises(RuntimeError), transaction():
        [(product_id, images, status)] = ADD_PRODUCT.execute(
            {"p_merchant": merchant.id, "p_title": "茶", "p_images": ["https://img.example.com/a.jpg"]}
        )
        assert (images, status) == (["https://img.example.com/a.jpg"], "draft")  # JSONB both ways
        stored = db.session.execute(select(Product).where(Product.id == product_id)).scalar_one()
        assert (stored.description, stored.sales, stored.created_at is not None) == ("", 0, True)
        assert COUNT.execute({"p_m": merchant.id}) == [(1,)]
        raise RuntimeError("roll it back")
    assert seen[0].startswith("INSERT INTO products") and seen[-1].startswith("SELECT count(*)")  # events fired
    assert "created_at" in seen[0] and "description" in seen[0]  # the columns' Python defaults, sent
    assert COUNT.execute({"p_m": merchant.id}) == [(0,)]  # rolled back with the session's transaction
    assert ADD_PRODUCT.names == ("id", "images", "status")
    db.session.rollback()


def test_a_constraint_violation_is_sqlalchemys_integrity_error_and_the_transaction_translates_it(ctx):
    with pytest.raises(IntegrityError) as raised:
        ADD_PRODUCT.execute({"p_merchant": 0, "p_title": "茶", "p_images": []})  # no merchant 0
    assert raised.value.orig.diag.constraint_name is not None
    db.session.rollback()
    with pytest.raises(DomainError), transaction():  # a foreign key: 404 or 409, never a 500
        ADD_PRODUCT.execute({"p_merchant": 0, "p_title": "茶", "p_images": []})
    assert db.session.execute(select(func.count()).select_from(_categories)).scalar_one() >= 0


def test_pending_orm_changes_are_flushed_before_it_runs_as_session_execute_would(ctx):
    merchant = make_merchant()
    with transaction():
        db.session.add(Category(merchant_id=merchant.id, name="待写"))  # pending, not flushed
        # a Direct read sees it: the pending row was written first (and so locks in its turn)
        found = Direct(select(func.count()).select_from(_categories).where(_categories.c.name == "待写")).execute({})
        assert found == [(1,)]


def test_new_row_refuses_a_name_the_class_does_not_have(ctx):
    with pytest.raises(TypeError, match="has no attribute titel"):
        new_row(Product, titel="茶")


@pytest.mark.committing
def test_a_statement_of_its_own_commits_alone_and_its_connection_goes_back_transactional(app):
    """Outside the test harness, statement_of_its_own lends a pooled connection in autocommit (each
    statement its own transaction: no BEGIN, no COMMIT) and hands it back as the pool lent it:
    the next transaction on it is one again, and rolls back whole."""
    with app.app_context():
        merchant_id = make_merchant().id
        db.session.commit()
        with statement_of_its_own() as connection:
            driver = connection.connection.driver_connection
            assert driver.autocommit
            first = connection.execute(select(func.clock_timestamp(), func.now())).one()
            second = connection.execute(select(func.now())).scalar_one()
            assert second > first[1]  # a transaction per statement: now() moved on
        assert driver.autocommit is False
        db.session.remove()
        with pytest.raises(RuntimeError), transaction():
            db.session.connection()  # the pool's connections, that one among them, in a transaction
            ADD_PRODUCT.execute({"p_merchant": merchant_id, "p_title": "茶", "p_images": []})
            raise RuntimeError("rolled back")
        assert COUNT.execute({"p_m": merchant_id}) == [(0,)]
        db.session.remove()
