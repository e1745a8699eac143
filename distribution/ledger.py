"""The distribution ledger: writing entries, reading balances, and proving they reconcile.

Entries are never changed (a trigger refuses it); every function here only inserts. The kept
sums on the distributor's row (`available`, `withdrawing`, `withdrawn`) change in the same
transaction as the entry that moves them, under the distributor's row lock (taken in id order
when there are several, after any commission rows: see `distribution.commissions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from distribution.models import Commission, Distributor, LedgerEntry
from shop.core.db import db
from shop.core.errors import InvalidInput
from shop.core.locking import locked


@dataclass(frozen=True)
class Balances:
    pending: int
    available: int
    withdrawing: int
    withdrawn: int


def lock_distributors(ids: Iterable[int]) -> dict[int, Distributor]:
    """Lock these distributors' rows, in id order (the one order every path uses)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = db.session.execute(locked(select(Distributor).where(Distributor.id.in_(wanted)).order_by(Distributor.id)))
    return {row.id: row for row in rows.scalars()}


def post(
    distributor: Distributor, kind: str, *, available: int = 0, withdrawing: int = 0, withdrawn: int = 0, **refs: Any
) -> LedgerEntry:
    """Write one entry moving the kept buckets of a locked distributor, and move them."""
    entry = LedgerEntry(
        merchant_id=distributor.merchant_id,
        distributor_id=distributor.id,
        kind=kind,
        d_available=available,
        d_withdrawing=withdrawing,
        d_withdrawn=withdrawn,
        **refs,
    )
    db.session.add(entry)
    distributor.available += available
    distributor.withdrawing += withdrawing
    distributor.withdrawn += withdrawn
    db.session.flush()
    return entry


def adjust(distributor: Distributor, amount: int, reason: str, *, staff_id: int | None) -> LedgerEntry:
    """A manual adjustment of the available balance (positive or negative), with its reason."""
    if not reason.strip():
        raise InvalidInput(
            "an adjustment needs a reason", code="validation_error", details={"fields": {"reason": ["required"]}}
        )
    if amount == 0:
        raise InvalidInput(
            "an adjustment moves money", code="validation_error", details={"fields": {"amount": ["not 0"]}}
        )
    return post(distributor, "adjustment", available=amount, reason=reason.strip(), staff_id=staff_id)


def balances(distributor_id: int) -> Balances:
    """The four balances, as sums of the distributor's entries."""
    row = db.session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.d_pending), 0),
            func.coalesce(func.sum(LedgerEntry.d_available), 0),
            func.coalesce(func.sum(LedgerEntry.d_withdrawing), 0),
            func.coalesce(func.sum(LedgerEntry.d_withdrawn), 0),
        ).where(LedgerEntry.distributor_id == distributor_id)
    ).one()
    return Balances(*(int(value) for value in row))


@dataclass(frozen=True)
class Problem:
    distributor_id: int
    what: str
    expected: int
    found: int


def reconcile(merchant_id: int | None = None) -> tuple[int, list[Problem]]:
    """Check every distributor (of one merchant, or all): the kept sums equal the ledger's, the
    pending balance equals the pending commissions, each commission's entries add up to it, and
    the settled entries to the settled commissions. Answers (distributors checked, problems)."""
    ledger = (
        select(
            LedgerEntry.distributor_id.label("id"),
            func.sum(LedgerEntry.d_pending).label("pending"),
            func.sum(LedgerEntry.d_available).label("available"),
            func.sum(LedgerEntry.d_withdrawing).label("withdrawing"),
            func.sum(LedgerEntry.d_withdrawn).label("withdrawn"),
            func.sum(case((LedgerEntry.kind == "commission_settled", LedgerEntry.d_available), else_=0)).label(
                "settled"
            ),
            func.sum(case((LedgerEntry.kind == "commission_clawback", LedgerEntry.d_available), else_=0)).label(
                "clawed"
            ),
        )
        .group_by(LedgerEntry.distributor_id)
        .subquery()
    )
    owed = (
        select(
            Commission.distributor_id.label("id"),
            func.sum(case((Commission.status == "pending", Commission.amount), else_=0)).label("pending"),
            func.sum(case((Commission.status == "settled", Commission.amount), else_=0)).label("settled"),
            func.sum(Commission.clawed_back).label("clawed"),
        )
        .group_by(Commission.distributor_id)
        .subquery()
    )
    query = (
        select(
            Distributor.id,
            Distributor.available,
            Distributor.withdrawing,
            Distributor.withdrawn,
            *(func.coalesce(column, 0).label(f"l_{column.name}") for column in ledger.c if column.name != "id"),
            *(func.coalesce(column, 0).label(f"c_{column.name}") for column in owed.c if column.name != "id"),
        )
        .outerjoin(ledger, ledger.c.id == Distributor.id)
        .outerjoin(owed, owed.c.id == Distributor.id)
        .order_by(Distributor.id)
    )
    if merchant_id is not None:
        query = query.where(Distributor.merchant_id == merchant_id)
    problems: list[Problem] = []
    checked = 0
    for row in db.session.execute(query):
        checked += 1
        for what, expected, found in (
            ("available", row.l_available, row.available),
            ("withdrawing", row.l_withdrawing, row.withdrawing),
            ("withdrawn", row.l_withdrawn, row.withdrawn),
            ("pending commissions", row.l_pending, row.c_pending),
            ("settled commissions", row.l_settled, row.c_settled),
            ("clawed back", -row.l_clawed, row.c_clawed),
        ):
            if int(expected) != int(found):
                problems.append(Problem(row.id, what, int(expected), int(found)))
    problems.extend(_commission_problems(merchant_id))
    return checked, problems


def _commission_problems(merchant_id: int | None) -> list[Problem]:
    """Each commission against its own entries: recorded less reversed is its amount (0 once
    reversed), clawbacks are its clawed_back."""
    per = (
        select(
            LedgerEntry.commission_id.label("id"),
            func.sum(LedgerEntry.d_pending).label("pending"),
            func.sum(LedgerEntry.d_available).label("clawed"),
        )
        .where(LedgerEntry.commission_id.is_not(None))
        .group_by(LedgerEntry.commission_id)
        .subquery()
    )
    expected_pending = case((Commission.status == "reversed", 0), else_=Commission.amount)
    query = (
        select(
            Commission.id,
            Commission.distributor_id,
            expected_pending.label("expected"),
            per.c.pending,
            per.c.clawed,
            Commission.clawed_back,
        )
        .outerjoin(per, per.c.id == Commission.id)
        .where(
            (func.coalesce(per.c.pending, 0) != expected_pending)
            | (-func.coalesce(per.c.clawed, 0) != Commission.clawed_back)
        )
    )
    if merchant_id is not None:
        query = query.where(Commission.merchant_id == merchant_id)
    return [
        Problem(row.distributor_id, f"commission {row.id}", int(row.expected), int(row.pending or 0))
        for row in db.session.execute(query.limit(100))
    ]
