"""Pickup points: a group leader's (团长) address where members collect their orders."""

from __future__ import annotations

from sqlalchemy import select

from shop.core.db import db
from shop.core.errors import InvalidInput, NotFound
from shop.identity.models import Member, PickupPoint


def list_pickup_points(merchant_id: int, *, only_active: bool = False) -> list[PickupPoint]:
    query = select(PickupPoint).where(PickupPoint.merchant_id == merchant_id)
    if only_active:
        query = query.where(PickupPoint.active)
    return list(db.session.execute(query.order_by(PickupPoint.id)).scalars())


def _check_leader(merchant_id: int, leader_member_id: int | None) -> None:
    if leader_member_id is None:
        return
    member = db.session.get(Member, leader_member_id)
    if member is None or member.merchant_id != merchant_id:
        raise InvalidInput(
            "no such member", code="member_not_found", details={"fields": {"leader_member_id": ["no such member"]}}
        )


def create_pickup_point(merchant_id: int, **fields) -> PickupPoint:
    _check_leader(merchant_id, fields.get("leader_member_id"))
    point = PickupPoint(merchant_id=merchant_id, **fields)
    db.session.add(point)
    db.session.flush()
    return point


def update_pickup_point(merchant_id: int, point_id: int, **fields) -> PickupPoint:
    point = db.session.get(PickupPoint, point_id)
    if point is None or point.merchant_id != merchant_id:
        raise NotFound("pickup point not found")
    if "leader_member_id" in fields:
        _check_leader(merchant_id, fields["leader_member_id"])
    for name, value in fields.items():
        setattr(point, name, value)
    db.session.flush()
    return point
