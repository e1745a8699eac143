"""The database handle and the one commit point.

Services change state and flush; they never commit. `transaction()` is the commit point for
views and jobs alike: it commits on success, rolls back on any exception, and only after a
successful commit runs the callbacks registered with `after_commit` (enqueue a job, bump a cache
version), so nothing outside the database learns of work that did not happen. A constraint
violation leaves it as the domain error `shop.integrity` names for that constraint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import BigInteger, DateTime, MetaData, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from shop.integrity import translate

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
            raise translate(exc) from exc
        raise
    finally:
        session.info.pop(_IN_TRANSACTION, None)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the commit stands; the periodic sweeps catch what this missed
            log.exception("after-commit callback %r failed", callback)
