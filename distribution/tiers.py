"""Tier upgrades, checked after each settlement for the distributors it paid.

A tier's conditions are any of: direct team size (members bound to the distributor), team sales
(what their team paid for lines that earned them a commission, counted as the commissions settle:
the distributor's kept `team_sales`) and own sales (what they paid for their own goods orders, net
of refunds). Only distributors below their merchant's best tier are looked at. `match` says whether
any or all of the conditions it sets must hold; a tier that sets none is given by staff only.
A distributor moves to the best tier (highest rank) they qualify for, never down.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import aliased

from distribution.models import Binding, Distributor, Tier
from shop.core.db import db
from shop.orders.models import Order


def qualifies(tier: Tier, team_size: int, team_sales: int, own_sales: int) -> bool:
    checks = [
        value >= minimum
        for value, minimum in (
            (team_size, tier.min_team_size),
            (team_sales, tier.min_team_sales),
            (own_sales, tier.min_own_sales),
        )
        if minimum is not None
    ]
    if not checks:
        return False
    return all(checks) if tier.match == "all" else any(checks)


def metrics(distributor_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """(team size, team sales, own sales) of each distributor."""
    if not distributor_ids:
        return {}
    team = (
        select(func.count())
        .where(Binding.distributor_member_id == Distributor.member_id)
        .correlate(Distributor)
        .scalar_subquery()
    )
    own = (
        select(func.coalesce(func.sum(Order.paid_total - Order.refunded_total), 0))
        .where(
            and_(
                Order.member_id == Distributor.member_id,
                Order.merchant_id == Distributor.merchant_id,
                Order.kind == "goods",
                Order.paid_at.is_not(None),
            )
        )
        .correlate(Distributor)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Distributor.id, team, Distributor.team_sales, own).where(Distributor.id.in_(list(distributor_ids)))
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}


def upgrade(distributor_ids: Sequence[int]) -> int:
    """Move these distributors up to the best tier they now qualify for; how many moved.
    (Their rows are locked by the caller, or the UPDATE's own lock serializes.)"""
    if not distributor_ids:
        return 0
    current = aliased(Tier)
    best = select(func.max(Tier.rank)).where(Tier.merchant_id == Distributor.merchant_id).scalar_subquery()
    candidates = db.session.execute(
        select(Distributor.id, Distributor.merchant_id, Distributor.tier_id)
        .outerjoin(current, current.id == Distributor.tier_id)
        .where(Distributor.id.in_(list(distributor_ids)))
        .where(func.coalesce(current.rank, 0) < best)  # NULL (no tiers) is never true
    ).all()
    if not candidates:
        return 0
    merchants = {row.merchant_id for row in candidates}
    by_merchant: dict[int, list[Tier]] = {}
    for tier in db.session.execute(
        select(Tier).where(Tier.merchant_id.in_(merchants)).order_by(Tier.rank.desc())
    ).scalars():
        by_merchant.setdefault(tier.merchant_id, []).append(tier)
    ranks = {tier.id: tier.rank for tiers in by_merchant.values() for tier in tiers}
    figures = metrics([row.id for row in candidates])
    moved = 0
    for row in candidates:
        current = ranks.get(row.tier_id, 0) if row.tier_id else 0
        for tier in by_merchant.get(row.merchant_id, []):
            if tier.rank <= current:
                break
            if qualifies(tier, *figures[row.id]):
                db.session.execute(
                    update(Distributor)
                    .where(Distributor.id == row.id)
                    .values(tier_id=tier.id)
                    .execution_options(synchronize_session=False)
                )
                moved += 1
                break
    return moved
