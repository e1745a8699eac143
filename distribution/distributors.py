"""Distributors: members in the program, how they join (the program's join rule), staff decisions
(approve, reject, disable, enable, tier) and the lookups every distributor endpoint starts with.

A member joins by applying: with the join rule `open` they are active at once; `application`
waits for staff; `spending` lets them in once their paid goods orders (net of refunds) reach
`join_min_spent` (checked when they apply and after each order they pay). A distributor's row is
created once (`uq_distributors_member`, INSERT ... ON CONFLICT) and then locked to change: two
applications at once leave one row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert

from distribution import ledger
from distribution.models import Distributor, LedgerEntry, Program, Tier
from distribution.program import get_program
from distribution.states import DISTRIBUTOR_MACHINE, DistributorAction, DistributorStatus
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.identity.models import Member
from shop.orders.models import Order

NOT_A_DISTRIBUTOR = "not_a_distributor"


def distributor_of(merchant_id: int, member_id: int) -> Distributor | None:
    return db.session.execute(
        select(Distributor).where(Distributor.member_id == member_id, Distributor.merchant_id == merchant_id)
    ).scalar_one_or_none()


def active_distributor(merchant_id: int, member_id: int) -> Distributor:
    """The caller's distributor row; 403 `not_a_distributor` for anyone who is not an active one."""
    found = distributor_of(merchant_id, member_id)
    if found is None or found.status != DistributorStatus.ACTIVE:
        raise Forbidden(
            "only active distributors may do this",
            code=NOT_A_DISTRIBUTOR,
            details={"status": None if found is None else found.status},
        )
    return found


def member_spent(merchant_id: int, member_id: int) -> int:
    """Fen the member paid for goods orders, net of refunds."""
    return int(
        db.session.execute(
            select(func.coalesce(func.sum(Order.paid_total - Order.refunded_total), 0)).where(
                Order.merchant_id == merchant_id,
                Order.member_id == member_id,
                Order.kind == "goods",
                Order.paid_at.is_not(None),
            )
        ).scalar_one()
    )


def _lock_or_create(merchant_id: int, member_id: int, status: str) -> tuple[Distributor, bool]:
    made = db.session.execute(
        insert(Distributor)
        .values(merchant_id=merchant_id, member_id=member_id, status=status)
        .on_conflict_do_nothing(index_elements=[Distributor.member_id])
        .returning(Distributor.id)
    ).scalar_one_or_none()
    found = db.session.execute(locked(select(Distributor).where(Distributor.member_id == member_id))).scalar_one()
    return found, made is not None


def _move(distributor: Distributor, action: DistributorAction) -> bool:
    step = DISTRIBUTOR_MACHINE.step(distributor.status, action)
    if step.moved:
        distributor.status = step.to
        if step.to == DistributorStatus.ACTIVE and distributor.approved_at is None:
            distributor.approved_at = utcnow()
    return step.moved


def apply(merchant_id: int, member_id: int, *, real_name: str = "", note: str = "") -> Distributor:
    """A member asks to become a distributor (answered with their row, whatever its status). One
    the merchant rejected applies again only where staff decide (join rule `application`)."""
    program = get_program(merchant_id)
    if not program.enabled:
        raise Conflict("the merchant's distribution program is not open", code="program_disabled")
    member = db.session.get(Member, member_id)
    if member is None or member.merchant_id != merchant_id:
        raise NotFound("member not found")
    existing = distributor_of(merchant_id, member_id)
    if existing is not None and existing.status == DistributorStatus.ACTIVE:
        return existing  # in already: nothing to check again (spending may have fallen since)
    if existing is not None and existing.status == DistributorStatus.REJECTED and program.join_rule != "application":
        return existing  # the merchant said no: only staff (approve) can change that
    admitted = program.join_rule == "open"
    if program.join_rule == "spending":
        spent = member_spent(merchant_id, member_id)
        if spent < program.join_min_spent:
            raise Conflict(
                "members become distributors after spending enough",
                code="spending_required",
                details={"required": program.join_min_spent, "spent": spent},
            )
        admitted = True
    distributor, made = _lock_or_create(merchant_id, member_id, DistributorStatus.APPLIED)
    if distributor.status == DistributorStatus.DISABLED:
        raise Conflict("this distributor was disabled by the merchant", code="distributor_disabled")
    if real_name:
        distributor.real_name = real_name
    if note:
        distributor.note = note
    if not made:
        _move(distributor, DistributorAction.APPLY)
    if admitted:
        _move(distributor, DistributorAction.ACTIVATE)
    db.session.flush()
    return distributor


def admit_by_spending(merchant_id: int, member_id: int, program: Program | None = None) -> bool:
    """After a member paid an order: make them a distributor if the program admits by spending and
    they have now spent enough (never one the merchant rejected or disabled)."""
    program = program or get_program(merchant_id)
    if not program.enabled or program.join_rule != "spending":
        return False
    existing = distributor_of(merchant_id, member_id)
    if existing is not None and existing.status != DistributorStatus.APPLIED:
        return False
    if member_spent(merchant_id, member_id) < program.join_min_spent:
        return False
    distributor, _ = _lock_or_create(merchant_id, member_id, DistributorStatus.APPLIED)
    moved = distributor.status == DistributorStatus.APPLIED and _move(distributor, DistributorAction.ACTIVATE)
    db.session.flush()
    return moved


def get_distributor(merchant_id: int, distributor_id: int, *, lock: bool = False) -> Distributor:
    query = select(Distributor).where(Distributor.id == distributor_id)
    found = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if found is None or found.merchant_id != merchant_id:
        raise NotFound("distributor not found")
    return found


def decide(merchant_id: int, distributor_id: int, action: str, *, note: str | None = None) -> Distributor:
    """Staff: approve, reject, disable or enable a distributor (409 illegal_transition otherwise)."""
    distributor = get_distributor(merchant_id, distributor_id, lock=True)
    _move(distributor, DistributorAction(action))
    if note is not None:
        distributor.staff_note = note
    db.session.flush()
    return distributor


def adjust(merchant_id: int, distributor_id: int, amount: int, reason: str, *, staff_id: int | None) -> LedgerEntry:
    """Staff: a manual adjustment of the distributor's withdrawable balance, with its reason."""
    distributor = get_distributor(merchant_id, distributor_id, lock=True)
    return ledger.adjust(distributor, amount, reason, staff_id=staff_id)


def set_tier(merchant_id: int, distributor_id: int, tier_id: int | None) -> Distributor:
    distributor = get_distributor(merchant_id, distributor_id, lock=True)
    if tier_id is not None:
        tier = db.session.get(Tier, tier_id)
        if tier is None or tier.merchant_id != merchant_id:
            raise InvalidInput("no such tier", code="validation_error", details={"fields": {"tier_id": ["not found"]}})
    distributor.tier_id = tier_id
    db.session.flush()
    return distributor


def list_distributors(
    merchant_id: int, *, status: str | None = None, q: str | None = None, cursor: str | None = None, limit: int = 20
) -> Page:
    """The merchant's distributors (as `describe` shows them), newest first; `q` matches the
    nickname or the invite code."""
    query = (
        select(Distributor)
        .join(Member, Member.id == Distributor.member_id)
        .where(Distributor.merchant_id == merchant_id)
    )
    if status:
        query = query.where(Distributor.status == status)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Member.nickname.ilike(pattern), Member.invite_code == q.upper()))
    page = keyset_page(query, [Distributor.id], cursor=cursor, limit=limit)
    members = members_of(page.items)
    return Page(items=[describe(d, members.get(d.member_id)) for d in page.items], next_cursor=page.next_cursor)


def members_of(distributors: list[Distributor]) -> dict[int, Member]:
    ids = sorted({d.member_id for d in distributors})
    if not ids:
        return {}
    return {m.id: m for m in db.session.execute(select(Member).where(Member.id.in_(ids))).scalars()}


def describe(distributor: Distributor, member: Member | None = None) -> dict[str, Any]:
    member = member or db.session.get(Member, distributor.member_id)
    return {
        "id": distributor.id,
        "member_id": distributor.member_id,
        "nickname": member.nickname if member else "",
        "invite_code": member.invite_code if member else "",
        "status": distributor.status,
        "tier_id": distributor.tier_id,
        "real_name": distributor.real_name,
        "note": distributor.note,
        "staff_note": distributor.staff_note,
        "approved_at": distributor.approved_at,
        "created_at": distributor.created_at,
        "available": distributor.available,
        "withdrawing": distributor.withdrawing,
        "withdrawn": distributor.withdrawn,
        "team_sales": distributor.team_sales,
    }


def application(merchant_id: int, member_id: int) -> dict[str, Any]:
    """Where the member stands: the program's join rule, what they spent, their status (None:
    they never applied)."""
    program = get_program(merchant_id)
    found = distributor_of(merchant_id, member_id)
    return {
        "status": None if found is None else found.status,
        "join_rule": program.join_rule,
        "join_min_spent": program.join_min_spent,
        "spent": member_spent(merchant_id, member_id),
        "program_enabled": program.enabled,
        "applied_at": None if found is None else found.created_at,
        "approved_at": None if found is None else found.approved_at,
    }
