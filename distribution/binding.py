"""Binding (锁粉): whose customer a member is, by the merchant's binding rule.

A member who arrives through a distributor's invite (shop's `member_invited`: a login with
`invite`, or `POST /invites/{code}/open`) is bound to that distributor when the rule allows:

- `first`: the first binding is for good;
- `first_lapsing`: the first binding holds while the member keeps buying; `lapse_days` after
  the later of the binding and their last paid order, the next distributor's invite takes them;
- `last`: the latest distributor's invite wins.

Never to oneself, never across merchants, never into a cycle (a distributor bound, directly or up
the chain, under the member they would take), never to a member who is not an active
distributor, never while the program is off. Every attempt while it is on is a
`distribution_binding_log` row with its outcome and, when refused, the reason; a binding made or
moved publishes `member_bound`.
Nothing here ever raises for a business reason: a login never fails over a binding.

Locks: only to bind (the rule is read first without any): the merchant's binding advisory lock
(transaction-scoped, so two bindings cannot close a cycle between them), then the member's binding
row. Nothing else; an attempt the rule refuses locks nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import aliased

from distribution.models import Binding, BindingLog, Distributor
from distribution.program import get_program
from shop.core.db import db, utcnow
from shop.core.events import MemberBound, MemberInvited, bus
from shop.core.locking import locked
from shop.identity.models import Member

BOUND = "bound"
REFUSED = "refused"
# Why a binding was refused.
PROGRAM_DISABLED = "program_disabled"
NOT_A_DISTRIBUTOR = "not_a_distributor"
SELF = "self"
OTHER_MERCHANT = "other_merchant"
CYCLE = "cycle"
ALREADY_BOUND = "already_bound"  # to another distributor, and the rule keeps it
SAME_DISTRIBUTOR = "same_distributor"

_BIND_LOCK_NAMESPACE = 0x1418
_CHAIN_LIMIT = 10_000


def on_member_invited(event: MemberInvited) -> None:
    bind(event.merchant_id, event.member_id, event.inviter_id)


def bind(merchant_id: int, member_id: int, distributor_member_id: int, *, now: datetime | None = None) -> str | None:
    """Bind the member to the distributor if the rule allows; the refusal's reason, or None when
    bound. Logged either way."""
    now = now or utcnow()
    program = get_program(merchant_id)
    if not program.enabled:
        return PROGRAM_DISABLED  # no program, no binding attempt to record
    reason = _refusal(merchant_id, member_id, distributor_member_id)
    previous: int | None = None
    if reason is None:
        # The rule first, without any lock (most attempts stop here: the member is bound already);
        # then, only to write, the merchant's lock and the member's row, and the rule and the
        # cycle checked again under them.
        current = db.session.get(Binding, member_id)
        reason = _rule_refusal(program.binding_rule, program.lapse_days, current, distributor_member_id, now)
    if reason is None:
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, CAST(:merchant AS integer))"),
            {"namespace": _BIND_LOCK_NAMESPACE, "merchant": merchant_id % 2**31},
        )
        current = db.session.execute(locked(select(Binding).where(Binding.member_id == member_id))).scalar_one_or_none()
        if current is not None:
            previous = current.distributor_member_id
        reason = _rule_refusal(program.binding_rule, program.lapse_days, current, distributor_member_id, now)
        if reason is None and _in_chain_above(distributor_member_id, member_id):
            reason = CYCLE
        if reason is None:
            if current is None:
                db.session.execute(
                    insert(Binding).values(
                        merchant_id=merchant_id,
                        member_id=member_id,
                        distributor_member_id=distributor_member_id,
                        bound_at=now,
                        active_at=now,
                    )
                )
            else:
                current.distributor_member_id = distributor_member_id
                current.bound_at = current.active_at = now
    db.session.add(
        BindingLog(
            merchant_id=merchant_id,
            member_id=member_id,
            distributor_member_id=distributor_member_id,
            previous_id=previous if reason is None else None,
            outcome=BOUND if reason is None else REFUSED,
            reason=reason,
        )
    )
    db.session.flush()
    if reason is None:
        bus.publish(
            MemberBound(
                merchant_id=merchant_id,
                member_id=member_id,
                distributor_member_id=distributor_member_id,
                previous_id=previous,
            )
        )
    return reason


def _refusal(merchant_id: int, member_id: int, distributor_member_id: int) -> str | None:
    if member_id == distributor_member_id:
        return SELF
    rows = db.session.execute(
        select(Member.id, Member.merchant_id).where(Member.id.in_([member_id, distributor_member_id]))
    ).all()
    if len(rows) != 2 or any(row.merchant_id != merchant_id for row in rows):
        return OTHER_MERCHANT
    status = db.session.execute(
        select(Distributor.status).where(Distributor.member_id == distributor_member_id)
    ).scalar_one_or_none()
    return None if status == "active" else NOT_A_DISTRIBUTOR


def _rule_refusal(
    rule: str, lapse_days: int | None, current: Binding | None, distributor_member_id: int, now: datetime
) -> str | None:
    if current is None:
        return None
    if current.distributor_member_id == distributor_member_id:
        return SAME_DISTRIBUTOR
    if rule == "last":
        return None
    if rule == "first_lapsing" and lapse_days and now - current.active_at > timedelta(days=lapse_days):
        return None
    return ALREADY_BOUND


def _in_chain_above(start_id: int, wanted_id: int) -> bool:
    """Whether `wanted_id` is `start_id` or the distributor it is bound to, theirs, and so on."""
    up = select(Binding.member_id, Binding.distributor_member_id, literal(1).label("depth")).where(
        Binding.member_id == start_id
    )
    up = up.cte("up", recursive=True)
    parent = aliased(Binding)
    up = up.union_all(
        select(parent.member_id, parent.distributor_member_id, up.c.depth + 1).where(
            parent.member_id == up.c.distributor_member_id, up.c.depth < _CHAIN_LIMIT
        )
    )
    found = db.session.execute(
        select(func.count()).select_from(up).where(up.c.distributor_member_id == wanted_id)
    ).scalar_one()
    return found > 0


def touch(member_id: int, now: datetime) -> None:
    """The member paid an order: their binding is alive (a lapsing binding counts from here)."""
    db.session.execute(
        update(Binding)
        .where(Binding.member_id == member_id, Binding.active_at < now)
        .values(active_at=now)
        .execution_options(synchronize_session=False)
    )


def upline(merchant_id: int, member_id: int, levels: int) -> list[int]:
    """The distributors (member ids) above the member, nearest first, at most `levels` of them:
    one query, a join per level."""
    if levels <= 0:
        return []
    steps = [aliased(Binding) for _ in range(levels)]
    query = select(*(step.distributor_member_id for step in steps)).select_from(steps[0])
    for below, step in pairwise(steps):
        query = query.outerjoin(step, step.member_id == below.distributor_member_id)
    row = db.session.execute(query.where(steps[0].member_id == member_id, steps[0].merchant_id == merchant_id)).first()
    chain: list[int] = []
    for above in row or ():
        if above is None or above in chain or above == member_id:
            break
        chain.append(above)
    return chain
