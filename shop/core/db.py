"""The database handle and the one commit point.

Services change state and flush; they never commit. `transaction()` is the commit point for
views and jobs alike: it commits on success, rolls back on any exception, and only after a
successful commit runs the callbacks registered with `after_commit` (enqueue a job, bump a cache
version), so nothing outside the database learns of work that did not happen. A constraint
violation leaves it as the domain error `shop.core.integrity` names for that constraint.

A network call never runs inside a transaction or under a row lock (a slow WeChat would hold the
locks and a pooled connection for as long as it takes): `forbid_open_transaction` is the check every
network client makes before each call (the real WeChat and WeChat Pay clients and their fakes), so
the test suite fails wherever that rule is broken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    MetaData,
    func,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, make_transient_to_detached, mapped_column
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from shop.core.integrity import translate

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Objects stay readable after commit: views serialize what the service returned without a
# second round of SELECTs.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

_AFTER_COMMIT = "groupshop.after_commit"
_IN_TRANSACTION = "groupshop.in_transaction"


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow
    )


def after_commit(callback: Callable[[], None], session: Session | None = None) -> None:
    """Run `callback` once the current transaction has committed; dropped if it rolls back."""
    session = session or db.session()
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def pending_after_commit(session: Session | None = None) -> list[Callable[[], None]]:
    """The callbacks waiting for the current transaction's commit, in order (the event bus trims
    off those a failed handler added, with its savepoint)."""
    return (session or db.session()).info.setdefault(_AFTER_COMMIT, [])


@contextmanager
def transaction() -> Iterator[Session]:
    """Commit what the block did, or roll it all back; then run the after-commit callbacks."""
    session = db.session()
    if session.info.get(_IN_TRANSACTION):
        raise RuntimeError("transaction() does not nest: services flush, only the caller commits")
    session.info[_IN_TRANSACTION] = True
    try:
        yield session
        session.commit()
    except BaseException as exc:
        session.rollback()
        session.info.pop(_AFTER_COMMIT, None)
        if isinstance(exc, IntegrityError | StaleDataError):
            # A check lost a race to a concurrent request: answer as if they had come in turn.
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc
        raise
    finally:
        session.info.pop(_IN_TRANSACTION, None)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the commit stands; the periodic sweeps catch what this missed
            log.exception("after-commit callback %r failed", callback)


def in_transaction_block(session: Session | None = None) -> bool:
    """Whether a `transaction()` block is running on the current session."""
    return bool((session or db.session()).info.get(_IN_TRANSACTION))


class TransactionOpen(RuntimeError):
    """A programming error: a network call was made with a database transaction open."""


def forbid_open_transaction(what: str) -> None:
    """Refuse a network call made with a transaction open on the current session (a `transaction()`
    block, or one a plain read began and nobody ended): the row locks and the connection it holds
    would wait on the network. A programming error: in development and tests it raises
    TransactionOpen, so the suite fails where the rule is broken; in production (the app's
    STRICT_NETWORK_CALLS off) it is logged and the call goes ahead, slow rather than refused.
    Outside an app context there is no session, so nothing to check."""
    if not has_app_context():
        return
    session = db.session()
    if session.info.get(_IN_TRANSACTION) or session.in_transaction():
        message = (
            f"{what} was called with a database transaction open: commit (or end) it first, call, "
            "then record the answer in a second transaction"
        )
        if not current_app.config.get("STRICT_NETWORK_CALLS", True):
            log.error(message, stack_info=True)
            return
        raise TransactionOpen(message)


class MerchantScoped:
    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="RESTRICT"), nullable=False, index=True
    )


_INSERTS: dict[Any, Any] = {}


def insert_as_loaded(objects: Sequence[Any]) -> None:
    """INSERT new ORM objects of one class with one statement (RETURNING every column, so server
    and Python defaults come back) and attach them to the session as if loaded: no flush, no unit
    of work, which on the hot path (an order and its lines) costs more than the SQL.

    For plain rows only: relationships are not cascaded (insert parents first, then children with
    their foreign keys set, then `set_committed_value` the collections). Every object must carry
    the same attributes (one statement for all)."""
    if not objects:
        return
    mapper = sa_inspect(type(objects[0]))
    table = mapper.local_table
    attrs = [attr for attr in mapper.column_attrs if attr.columns[0].table is table]
    given = [attr for attr in attrs if attr.key in objects[0].__dict__]
    missing = [attr for attr in attrs if attr.key not in objects[0].__dict__]
    params = [{attr.columns[0].key: obj.__dict__[attr.key] for attr in given} for obj in objects]
    # What the database fills in (ids, defaults) comes back; what was given is set as given.
    shape = (table, tuple(attr.key for attr in given))
    statement = _INSERTS.get(shape)
    if statement is None:
        returned = [attr.columns[0] for attr in missing] or [table.c.id]
        statement = _INSERTS[shape] = sa_insert(table).returning(*returned, sort_by_parameter_order=True)
    # One object: a plain execute (executemany's batching machinery costs more than it saves).
    rows = db.session.execute(statement, params[0] if len(params) == 1 else params).all()
    for obj, row in zip(objects, rows, strict=True):
        values = row._mapping
        for attr in missing:
            set_committed_value(obj, attr.key, values[attr.columns[0]])
        for attr in given:
            set_committed_value(obj, attr.key, obj.__dict__[attr.key])
        make_transient_to_detached(obj)
        db.session.add(obj)
