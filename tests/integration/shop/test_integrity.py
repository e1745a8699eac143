"""Constraint violations leave `transaction()` as domain errors: the meaning `shop.core.integrity` gives
each named constraint, or a 4xx by kind for one it does not name. Never an IntegrityError (a 500)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy import ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint, delete, insert, text, update
from sqlalchemy.exc import IntegrityError

from shop.catalog.models import Category, Product
from shop.core import integrity
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.identity.models import Staff
from tests.factories import make_merchant, make_product


def _unique_keys() -> set[str]:
    """Every key a second row could collide on: unique constraints and indexes, and primary keys
    that are not generated (a generated id cannot collide)."""
    names: set[str] = set()
    for table in db.metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                names.add(constraint.name)
            elif isinstance(constraint, PrimaryKeyConstraint):
                columns = list(constraint.columns)
                if not (len(columns) == 1 and columns[0].autoincrement is True):
                    names.add(constraint.name)
        names.update(index.name for index in table.indexes if index.unique)
    return names


def test_every_key_of_the_schema_has_a_meaning_when_it_is_taken():
    assert _unique_keys() - set(integrity.DUPLICATE) == set()


def test_every_constraint_given_a_meaning_exists_in_the_schema():
    foreign_keys = {
        c.name for t in db.metadata.sorted_tables for c in t.constraints if isinstance(c, ForeignKeyConstraint)
    }
    assert set(integrity.DUPLICATE) - _unique_keys() == set()
    assert set(integrity.MISSING) | set(integrity.IN_USE) <= foreign_keys


def test_a_taken_key_is_the_conflict_named_for_it(ctx):
    merchant = make_merchant()
    with pytest.raises(Conflict) as raised, transaction():
        db.session.execute(
            insert(Staff).values(merchant_id=merchant.id, username="owner", password_hash="x", role="operator")
        )
    assert raised.value.code == "username_taken"
    assert raised.value.details == {"fields": {"username": ["that username is taken"]}}


def test_pointing_at_a_row_that_is_gone_is_the_error_named_for_the_reference(ctx):
    merchant = make_merchant()
    with pytest.raises(InvalidInput) as raised, transaction():
        db.session.add(Product(merchant_id=merchant.id, title="x", category_id=10**12))
        db.session.flush()
    assert raised.value.code == "category_not_found"
    assert "category_id" in raised.value.details["fields"]


def test_deleting_a_row_still_referenced_is_the_in_use_conflict_named_for_the_reference(ctx):
    merchant = make_merchant()
    with transaction():
        category = Category(merchant_id=merchant.id, name="top")
        db.session.add(category)
        db.session.flush()
        db.session.add(Category(merchant_id=merchant.id, name="sub", parent_id=category.id))
    make_product(merchant, category_id=category.id)
    with pytest.raises(Conflict) as raised, transaction():
        db.session.execute(delete(Category).where(Category.id == category.id))
    assert raised.value.code == "category_in_use"


def test_a_constraint_without_a_meaning_still_answers_by_its_kind(ctx):
    with transaction():
        db.session.execute(text("CREATE TABLE tmp_parent (id int PRIMARY KEY)"))
        db.session.execute(
            text("CREATE TABLE tmp_child (id int PRIMARY KEY, parent_id int CONSTRAINT tmp_fk REFERENCES tmp_parent)")
        )
        db.session.execute(text("INSERT INTO tmp_parent VALUES (1)"))
        db.session.execute(text("INSERT INTO tmp_child VALUES (1, 1)"))
    cases = [
        ("INSERT INTO tmp_parent VALUES (1)", Conflict, "conflict"),
        ("INSERT INTO tmp_child VALUES (2, 99)", NotFound, "not_found"),
        ("UPDATE tmp_child SET parent_id = 98", NotFound, "not_found"),
        ("DELETE FROM tmp_parent", Conflict, "in_use"),
    ]
    for statement, error, code in cases:
        with pytest.raises(error) as raised, transaction():
            db.session.execute(text(statement))
        assert raised.value.code == code, statement


def test_a_check_or_not_null_violation_is_a_bug_and_stays_an_error(ctx):
    with transaction():
        db.session.execute(text("CREATE TABLE tmp_checked (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0))"))
    for statement in ("INSERT INTO tmp_checked VALUES (1, -1)", "INSERT INTO tmp_checked VALUES (2, NULL)"):
        with pytest.raises(IntegrityError), transaction():
            db.session.execute(text(statement))


def test_an_orm_write_to_a_row_deleted_meanwhile_is_not_found(ctx):
    merchant = make_merchant()
    with transaction():
        category = Category(merchant_id=merchant.id, name="gone soon")
        db.session.add(category)
    with pytest.raises(NotFound), transaction():
        # another request deletes it behind this session's back
        db.session.execute(
            delete(Category).where(Category.id == category.id).execution_options(synchronize_session=False)
        )
        category.name = "renamed"
        db.session.flush()


def test_a_violation_outside_transaction_gets_the_envelope_not_a_500(app, ctx):
    merchant = make_merchant()
    try:
        db.session.execute(update(Staff).where(Staff.merchant_id == merchant.id).values(username="dup"))
        db.session.execute(
            insert(Staff).values(merchant_id=merchant.id, username="dup", password_hash="x", role="operator")
        )
    except Exception as exc:  # the error the handler sees
        error = exc
    with app.test_request_context():
        response = app.handle_user_exception(error)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "username_taken"


@pytest.mark.parametrize(
    ("error", "status"),
    [(RedisConnectionError("Redis is down"), 503), (ResponseError("WRONGTYPE a bug of ours"), 500)],
)
def test_redis_out_is_a_503_and_a_redis_answer_we_did_not_expect_is_a_500(app, error, status):
    with app.test_request_context():
        response = app.handle_user_exception(error)
    assert response.status_code == status


def test_a_feature_package_gives_its_own_constraints_their_meaning(ctx):
    with transaction():
        db.session.execute(text("CREATE TABLE tmp_voucher (id int PRIMARY KEY, code text CONSTRAINT tmp_uq UNIQUE)"))
        db.session.execute(text("INSERT INTO tmp_voucher VALUES (1, 'A')"))
    taken = integrity.Meaning(Conflict, "voucher_code_taken", "that voucher code is taken", "code")
    integrity.register(duplicate={"tmp_uq": taken})
    try:
        integrity.register(duplicate={"tmp_uq": taken})  # installing twice is harmless
        with pytest.raises(Conflict) as raised, transaction():
            db.session.execute(text("INSERT INTO tmp_voucher VALUES (2, 'A')"))
        assert (raised.value.code, raised.value.details) == (
            "voucher_code_taken",
            {"fields": {"code": ["that voucher code is taken"]}},
        )
        other = integrity.Meaning(Conflict, "other", "something else")
        with pytest.raises(ValueError, match="already means 'voucher_code_taken'"):
            integrity.register(duplicate={"tmp_uq": other})
        with pytest.raises(ValueError, match="already means 'username_taken'"):
            integrity.register(duplicate={"uq_staff_merchant_id_username": other})  # shop's own: not to be taken
    finally:
        integrity.unregister("tmp_uq")
    assert "tmp_uq" not in integrity.DUPLICATE
