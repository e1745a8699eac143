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
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from flask import current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    ForeignKey,
    MetaData,
    bindparam,
    func,
    literal,
    select,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    configure_mappers,
    make_transient_to_detached,
    mapped_column,
)
from sqlalchemy.orm.exc import StaleDataError

from shop.core.integrity import translate

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        if session.in_transaction():  # a block that touched nothing has nothing to commit
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


@contextmanager
def transaction_if_used() -> Iterator[None]:
    """`transaction()` for a block that seldom touches the database (e.g. the veto handlers of an
    order a one-statement placement committed already: most have nothing to do for it), without
    making a session for the block, which costs more than such a block. Its first use of
    `db.session` makes one and begins its transaction; what it did is then committed at the end
    (or rolled back on an error, translated as `transaction()` translates) and the after-commit
    callbacks run, all by `transaction()` itself. Unlike in `transaction()`, the block is not known
    to be in one (`in_transaction_block`) before it touches the database, so a job it enqueues
    goes at once rather than after the commit. A context that has a session already gets the plain
    `transaction()`."""
    registry = db.session.registry
    if registry.has():
        with transaction():
            yield
        return
    try:
        yield
    except BaseException:
        if not registry.has():
            raise
        with transaction():  # rolls back what the block began and drops its callbacks
            raise
    if registry.has():
        with transaction():  # commits what the block began, then runs its callbacks
            pass


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


def bound_connection() -> Connection | None:
    """The connection the session is bound to (the test harness's, in its transaction), read
    without making the session; None when the session takes connections from the engine."""
    bind = db.session.session_factory.kw.get("bind")
    return bind if isinstance(bind, Connection) else None


@contextmanager
def statement_of_its_own() -> Iterator[Connection]:
    """A connection for one statement that is a transaction of its own: in autocommit, so no
    BEGIN and no COMMIT round trip (one round trip in all), outside the session's transaction.
    When the session is bound to a connection already in a transaction (the test harness's), the
    statement runs in it instead, under a savepoint (its error leaves that transaction usable)."""
    bind = bound_connection()
    if bind is not None:
        with bind.begin_nested():
            yield bind
        return
    with db.engine.connect() as connection:
        # Autocommit set on the driver's connection for the block, not through SQLAlchemy's
        # isolation_level option, which sets and resets two of the driver's settings around
        # every use (a placement's hot path pays for each). SQLAlchemy's BEGIN is a no-op with
        # psycopg and its ROLLBACK at the end finds nothing open.
        driver = connection.connection.driver_connection
        driver.autocommit = True
        try:
            yield connection
        finally:
            if not driver.closed:
                driver.autocommit = False


def new_row(cls: type[T], **values: Any) -> T:
    """A new instance of the mapped `cls` holding `values`, made without the ORM's bookkeeping per
    attribute (a plain constructor records every value as a change, which on the hot path costs
    more than the INSERT): for rows `insert_as_loaded` inserts next (it fills in the defaults of
    what is not given), or for detached copies only read. Not in any session."""
    manager = _MANAGERS.get(cls)
    if manager is None:
        configure_mappers()  # as a constructor would: an instance of an unconfigured class lacks its attributes
        manager = _MANAGERS[cls] = sa_inspect(cls).class_manager
    keys = frozenset(values)
    if (cls, keys) not in _CHECKED:  # a misspelt name is an error, as the constructor makes it
        unknown = sorted(keys - set(sa_inspect(cls).attrs.keys()))
        if unknown:
            raise TypeError(f"{cls.__name__} has no attribute {', '.join(unknown)}")
        _CHECKED.add((cls, keys))
    obj = manager.new_instance()
    obj.__dict__.update(values)
    return obj


_MANAGERS: dict[type, Any] = {}
_CHECKED: set[tuple[type, frozenset[str]]] = set()


def attach_as_loaded(obj: T) -> T:
    """Put `obj`, a new instance whose row is in the database already (inserted by a statement of
    our own), in the session as if a query had loaded it: its values taken as they are (no
    history), nothing to INSERT at the next flush."""
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


def column_default(default: Any) -> Any:
    """The value of a column's Python default (a ColumnDefault) as SQLAlchemy computes it for an
    INSERT: the constant, or the function called (ours take no execution context)."""
    return default.arg(None) if default.is_callable else default.arg


@dataclass(frozen=True)
class _Compiled:
    dialect: Any
    sql: str
    names: tuple[str, ...]  # the result's columns
    converters: dict[str, Callable[[Any], Any]]  # parameter -> its type's bind processor
    fixed: dict[str, Any]  # parameter -> the value written into the statement (func.x("orders"))
    defaults: tuple[tuple[str, Any], ...]  # (parameter, ColumnDefault) a column's Python default fills


class Direct:
    """A prebuilt statement of the hot path (placing an order), run on the session's own DBAPI
    connection, in its transaction, without SQLAlchemy's work per execution (cache lookup,
    parameter and result objects), which for a short statement costs more CPU than the driver's
    own (bench/orders.py profiles a placement). It is compiled once per dialect and does what
    `session.execute` does for it:
    pending ORM changes are flushed first (autoflush), the columns' Python defaults (an INSERT's
    `created_at`, an UPDATE's `onupdate`) are filled in, the parameters go through their types'
    bind processors (JSONB and the like), the engine's cursor events fire (so statement counters
    see it; their `context` is a plain namespace, not an ExecutionContext), and a driver error
    goes through SQLAlchemy's own handling (IntegrityError ..., a lost connection invalidated).
    Not done: `echo` logging. Rows come back as plain tuples in the statement's column
    order (`names`), in the driver's own types: so no column types whose results need
    processing (Enum, Numeric as float); and defaults must not need an execution context."""

    def __init__(self, statement: Any, *, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: _Compiled | None = None

    def _for(self, dialect: Any) -> _Compiled:
        if self._compiled is not None and self._compiled.dialect is dialect:
            return self._compiled
        compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
        # The columns whose Python default (or onupdate) SQLAlchemy would compute per execution.
        prefetch = {column.key: column.default for column in compiled.insert_prefetch}
        prefetch.update({column.key: column.onupdate for column in compiled.update_prefetch})
        converters, fixed, defaults = {}, {}, []
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                converters[name] = processor
            if bind.key in prefetch:
                defaults.append((name, prefetch[bind.key]))
            elif not bind.required:
                fixed[name] = bind.effective_value
        self._compiled = _Compiled(
            dialect=dialect,
            sql=compiled.string,
            names=tuple(column[0] for column in compiled._result_columns),
            converters=converters,
            fixed=fixed,
            defaults=tuple(defaults),
        )
        return self._compiled

    @property
    def names(self) -> tuple[str, ...]:
        return self._for(db.engine.dialect).names

    def execute(self, params: dict[str, Any], *, connection: Connection | None = None) -> list[tuple[Any, ...]]:
        """Run with `params` (a dict this call may change) in the session's transaction (begun if
        none is), or on `connection` (e.g. `statement_of_its_own`'s); the rows returned."""
        if connection is None:
            session = db.session()
            if session.autoflush:  # as session.execute would: pending ORM changes are written first
                session.flush()
            connection = session.connection()
        plan = self._for(connection.dialect)
        for name, default in plan.defaults:
            if name not in params:
                params[name] = column_default(default)
        if plan.fixed:
            params.update(plan.fixed)
        for name, convert in plan.converters.items():
            if name in params:
                params[name] = convert(params[name])
        sql = plan.sql
        context = SimpleNamespace()  # for the cursor events' listeners to keep their notes on
        cursor = connection.connection.driver_connection.cursor()
        try:
            for listener in connection.dispatch.before_cursor_execute:
                sql, params = listener(connection, cursor, sql, params, context, False)
            try:
                cursor.execute(sql, params)
            except connection.dialect.loaded_dbapi.Error as exc:
                # SQLAlchemy's own handling: its exception classes (IntegrityError ...), a lost
                # connection invalidated with the pool's older ones, the handle_error events.
                connection._handle_dbapi_exception(exc, sql, params, cursor, None)
                raise  # not reached: it raises
            for listener in connection.dispatch.after_cursor_execute:
                listener(connection, cursor, sql, params, context, False)
            # Rows only from a statement that returns some (asking the cursor for its description
            # builds an object per column).
            return cursor.fetchall() if plan.names else []
        finally:
            cursor.close()


@dataclass(frozen=True)
class _InsertPlan:
    """How insert_as_loaded inserts one class with one set of given attributes."""

    table: Any
    given: tuple[tuple[str, str], ...]  # (attribute, column) the objects carry
    known: tuple[tuple[str, str, Any], ...]  # (attribute, column, ColumnDefault) Python fills in
    nulls: tuple[str, ...]  # attributes with no default at all: NULL, left out of the statement
    returned: tuple[tuple[str, str], ...]  # (attribute, column) the database fills in


_PLANS: dict[tuple[type, tuple[str, ...]], _InsertPlan] = {}


def _insert_plan(cls: type, keys: tuple[str, ...]) -> _InsertPlan:
    plan = _PLANS.get((cls, keys))
    if plan is not None:
        return plan
    mapper = sa_inspect(cls)
    table = mapper.local_table
    given, known, nulls, returned = [], [], [], []
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        if column.table is not table:
            continue
        if attr.key in keys:
            given.append((attr.key, column.key))
        elif column.default is not None and (column.default.is_scalar or column.default.is_callable):
            # A constant or a Python function (utcnow, dict): sent with the row, not read back.
            known.append((attr.key, column.key, column.default))
        elif column.default is None and column.server_default is None and not column.primary_key:
            nulls.append(attr.key)
        else:  # an id, a server default or an SQL expression: the database's answer is read back
            returned.append((attr.key, column.key))
    # setdefault: two threads building one plan at once end up sharing the first one stored
    return _PLANS.setdefault((cls, keys), _InsertPlan(table, tuple(given), tuple(known), tuple(nulls), tuple(returned)))


# One statement per shape (the plans of its rows, in order); a placement has a handful of shapes
# (an order with 1, 2, ... lines), so the cache is small; it is bounded all the same.
_TOGETHER: dict[tuple[tuple[type, tuple[str, ...]], ...], Direct] = {}
_TOGETHER_MAX = 512


def _together(shape: tuple[tuple[type, tuple[str, ...]], ...], plans: Sequence[_InsertPlan]) -> Direct:
    """One statement inserting one row per plan, its parameters named r<row>_<column>: a plain
    INSERT for one row; for several, each row an INSERT in a CTE of its own (they all run, in one
    statement and one round trip: foreign keys between them are checked at its end) and a SELECT
    of what each returns, so every row's answer has its own place (a multi-row VALUES would not
    say which id went to which row)."""
    direct = _TOGETHER.get(shape)
    if direct is not None:
        return direct
    inserts = []
    for row, plan in enumerate(plans):
        table = plan.table
        columns = [column for _, column in plan.given] + [column for _, column, _ in plan.known]
        insert = sa_insert(table).values(
            {column: bindparam(f"r{row}_{column}", type_=table.c[column].type) for column in columns}
        )
        if plan.returned:
            insert = insert.returning(*(table.c[column] for _, column in plan.returned))
        inserts.append(insert)
    if len(inserts) == 1:
        statement = inserts[0]
    else:
        ctes = [insert.cte(f"r{row}") for row, insert in enumerate(inserts)]
        answers = [
            select(cte.c[column]).scalar_subquery().label(f"r{row}_{column}")
            for row, (cte, plan) in enumerate(zip(ctes, plans, strict=True))
            for _, column in plan.returned
        ]
        statement = select(*(answers or [literal(1)])).add_cte(*ctes)
    if len(_TOGETHER) >= _TOGETHER_MAX:
        _TOGETHER.clear()
    direct = _TOGETHER[shape] = Direct(statement)
    return direct


def insert_as_loaded(*groups: Sequence[Any]) -> None:
    """INSERT new ORM objects (groups of them, e.g. an order, its lines, its adjustments: parents
    first) with ONE statement, and attach them to the session as if loaded: no flush, no unit of
    work, which on the hot path costs more than the SQL. Python defaults are sent with the rows;
    only what the database fills in (ids, server defaults) is read back.

    For plain rows only: relationships are not cascaded (set the children's foreign keys, then
    `set_committed_value` the collections)."""
    objects = [obj for group in groups for obj in group]
    if not objects:
        return
    shape = tuple((type(obj), tuple(sorted(obj.__dict__))) for obj in objects)
    plans = [_insert_plan(cls, keys) for cls, keys in shape]
    params: dict[str, Any] = {}
    for row, (obj, plan) in enumerate(zip(objects, plans, strict=True)):
        values = obj.__dict__
        for key, column in plan.given:
            params[f"r{row}_{column}"] = values[key]
        for key, column, default in plan.known:
            values[key] = params[f"r{row}_{column}"] = column_default(default)
        for key in plan.nulls:
            values[key] = None
    rows = _together(shape, plans).execute(params)
    answer = iter(rows[0] if rows else ())  # what the database filled in, row by row
    for obj, plan in zip(objects, plans, strict=True):
        for key, _ in plan.returned:
            obj.__dict__[key] = next(answer)
        attach_as_loaded(obj)  # every column attribute is in its dict now
