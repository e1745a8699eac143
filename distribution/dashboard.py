"""What distributors see of their earnings, their team and the ranking, and the staff's lists of
commissions. Buyers are masked (王** style, `shop.core.masking`): a distributor learns that a
member of their team bought, never who exactly.

Earnings count what a commission is worth now (after refunds, less clawbacks), on the day it was
recorded, in China time; reversed commissions count nothing. Balances are the ledger's sums.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from distribution import ledger
from distribution.distributors import active_distributor, get_distributor
from distribution.models import Binding, Commission, Distributor, LedgerEntry
from shop.core.db import db, utcnow
from shop.core.masking import mask_name
from shop.core.pagination import Page, keyset_page
from shop.identity.invite_codes import share_payload
from shop.identity.members import CHINA
from shop.identity.models import Member
from shop.orders.models import Order

RANKING_SIZE = 50
_EARNED = Commission.amount - Commission.clawed_back


def _day_starts(now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(CHINA)
    today = datetime.combine(local.date(), time(), CHINA)
    month = today.replace(day=1)
    return today.astimezone(UTC), month.astimezone(UTC)


def summary(merchant_id: int, member_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    distributor = active_distributor(merchant_id, member_id)
    today, month = _day_starts(now or utcnow())
    earned = case((Commission.status == "reversed", 0), else_=_EARNED)
    row = db.session.execute(
        select(
            func.coalesce(func.sum(case((Commission.created_at >= today, earned), else_=0)), 0),
            func.coalesce(func.sum(case((Commission.created_at >= month, earned), else_=0)), 0),
            func.coalesce(func.sum(earned), 0),
            func.count().filter(Commission.status != "reversed"),
        ).where(Commission.distributor_id == distributor.id)
    ).one()
    balances = ledger.balances(distributor.id)
    return {
        "distributor_id": distributor.id,
        "status": distributor.status,
        "tier_id": distributor.tier_id,
        "earnings": {"today": int(row[0]), "this_month": int(row[1]), "all_time": int(row[2])},
        "commissions": int(row[3]),
        "balances": {
            "pending": balances.pending,
            "withdrawable": balances.available,
            "withdrawing": balances.withdrawing,
            "withdrawn": balances.withdrawn,
        },
    }


def commission_view(commission: Commission, order: Order | None, buyer: Member | None) -> dict[str, Any]:
    return {
        "id": commission.id,
        "distributor_id": commission.distributor_id,
        "order_id": commission.order_id,
        "order_no": order.order_no if order else "",
        "order_status": order.status if order else "",
        "line_id": commission.line_id,
        "level": commission.level,
        "buyer": mask_name(buyer.nickname if buyer else None),
        "product_id": commission.product_id,
        "sku_id": commission.sku_id,
        "quantity": commission.quantity,
        "base_amount": commission.base_amount,
        "rate_bp": commission.rate_bp,
        "fixed_amount": commission.fixed_amount,
        "original_amount": commission.original_amount,
        "amount": commission.amount,
        "clawed_back": commission.clawed_back,
        "status": commission.status,
        "due_at": commission.due_at,
        "settled_at": commission.settled_at,
        "created_at": commission.created_at,
    }


def _views(page: Page) -> Page:
    commissions: list[Commission] = page.items
    orders = (
        {
            o.id: o
            for o in db.session.execute(select(Order).where(Order.id.in_({c.order_id for c in commissions}))).scalars()
        }
        if commissions
        else {}
    )
    buyers = (
        {
            m.id: m
            for m in db.session.execute(
                select(Member).where(Member.id.in_({c.buyer_id for c in commissions}))
            ).scalars()
        }
        if commissions
        else {}
    )
    return Page(
        items=[commission_view(c, orders.get(c.order_id), buyers.get(c.buyer_id)) for c in commissions],
        next_cursor=page.next_cursor,
    )


def my_commissions(
    merchant_id: int, member_id: int, *, status: str | None = None, cursor: str | None = None, limit: int = 20
) -> Page:
    distributor = active_distributor(merchant_id, member_id)
    query = select(Commission).where(Commission.distributor_id == distributor.id)
    if status:
        query = query.where(Commission.status == status)
    return _views(keyset_page(query, [Commission.id], cursor=cursor, limit=limit))


def merchant_commissions(
    merchant_id: int,
    *,
    status: str | None = None,
    distributor_id: int | None = None,
    order_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    query = select(Commission).where(Commission.merchant_id == merchant_id)
    if status:
        query = query.where(Commission.status == status)
    if distributor_id:
        query = query.where(Commission.distributor_id == distributor_id)
    if order_id:
        query = query.where(Commission.order_id == order_id)
    return _views(keyset_page(query, [Commission.id], cursor=cursor, limit=limit))


def team(merchant_id: int, member_id: int) -> dict[str, Any]:
    """The team by level: level 1 is the members bound to the distributor, level 2 the members
    bound to those; for each, how many and what they bought that earned the distributor a
    commission (net of refunds)."""
    distributor = active_distributor(merchant_id, member_id)
    first = aliased(Binding)
    second = aliased(Binding)
    level1 = db.session.execute(
        select(func.count()).select_from(first).where(first.distributor_member_id == member_id)
    ).scalar_one()
    level2 = db.session.execute(
        select(func.count())
        .select_from(second)
        .join(first, first.member_id == second.distributor_member_id)
        .where(first.distributor_member_id == member_id)
    ).scalar_one()
    sales = dict(
        db.session.execute(
            select(Commission.level, func.coalesce(func.sum(Commission.base_amount), 0))
            .where(
                Commission.distributor_id == distributor.id,
                Commission.status != "reversed",
                Commission.buyer_id != member_id,
            )
            .group_by(Commission.level)
        ).all()
    )
    return {
        "levels": [
            {"level": 1, "members": level1, "sales": int(sales.get(1, 0))},
            {"level": 2, "members": level2, "sales": int(sales.get(2, 0))},
        ]
    }


def team_members(
    merchant_id: int, member_id: int, *, level: int = 1, cursor: str | None = None, limit: int = 20
) -> Page:
    """The members of one level of the team, the newest members (highest id) first, names masked."""
    active_distributor(merchant_id, member_id)
    first = aliased(Binding)
    if level == 1:
        query = select(Binding).where(Binding.distributor_member_id == member_id)
    else:
        query = (
            select(Binding)
            .join(first, first.member_id == Binding.distributor_member_id)
            .where(first.distributor_member_id == member_id)
        )
    page = keyset_page(query, [Binding.member_id], cursor=cursor, limit=limit)
    members = (
        {
            m.id: m
            for m in db.session.execute(
                select(Member).where(Member.id.in_([b.member_id for b in page.items]))
            ).scalars()
        }
        if page.items
        else {}
    )
    return Page(
        items=[
            {
                "member": mask_name(members[b.member_id].nickname if b.member_id in members else None),
                "level": level,
                "bound_at": b.bound_at,
            }
            for b in page.items
        ],
        next_cursor=page.next_cursor,
    )


def ranking(merchant_id: int, member_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """This month's top distributors by earnings (names masked), and the caller's own place."""
    me = active_distributor(merchant_id, member_id)
    _, month = _day_starts(now or utcnow())
    earned = (
        select(Commission.distributor_id, func.sum(_EARNED).label("earned"))
        .where(Commission.merchant_id == merchant_id, Commission.created_at >= month, Commission.status != "reversed")
        .group_by(Commission.distributor_id)
        .subquery()
    )
    ranked = select(
        earned.c.distributor_id,
        earned.c.earned,
        func.rank().over(order_by=earned.c.earned.desc()).label("rank"),
    ).subquery()
    rows = db.session.execute(
        select(ranked.c.distributor_id, ranked.c.earned, ranked.c.rank, Member.nickname)
        .join(Distributor, Distributor.id == ranked.c.distributor_id)
        .join(Member, Member.id == Distributor.member_id)
        .order_by(ranked.c.rank, ranked.c.distributor_id)
        .limit(RANKING_SIZE)
    ).all()
    mine = db.session.execute(select(ranked.c.rank, ranked.c.earned).where(ranked.c.distributor_id == me.id)).first()
    return {
        "period": "this_month",
        "items": [
            {
                "rank": int(row.rank),
                "name": mask_name(row.nickname),
                "earned": int(row.earned),
                "me": row.distributor_id == me.id,
            }
            for row in rows
        ],
        "me": {"rank": int(mine.rank) if mine else None, "earned": int(mine.earned) if mine else 0},
    }


def invite(merchant_id: int, member_id: int) -> dict[str, Any]:
    active_distributor(merchant_id, member_id)
    member = db.session.get(Member, member_id)
    return {"invite_code": member.invite_code, "share": share_payload(member.invite_code)}


def distributor_ledger(merchant_id: int, distributor_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    """Staff: a distributor's ledger, newest first (404 for another merchant's)."""
    get_distributor(merchant_id, distributor_id)
    return ledger_page(distributor_id, cursor=cursor, limit=limit)


def ledger_page(distributor_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    query = select(LedgerEntry).where(LedgerEntry.distributor_id == distributor_id)
    return keyset_page(query, [LedgerEntry.id], cursor=cursor, limit=limit)


def my_ledger(merchant_id: int, member_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    return ledger_page(active_distributor(merchant_id, member_id).id, cursor=cursor, limit=limit)
