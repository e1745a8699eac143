"""Offers staff make on SKUs (group buys, flash sales): create, change, end, list; their state.

Both kinds set units aside from the SKU (shop.offers.stock) when made, and change the set-aside
when the quota changes; ending one (or its window running out, by the sweep) closes it: its free
units go back to the SKU. Every change bumps the merchant's cached catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from shop.catalog.models import Product, Sku
from shop.catalog.service import catalog_namespace
from shop.core.cache import bump_after_commit
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.offers import stock
from shop.offers.models import GROUP_BUY, Group, GroupStatus, Offer

UPCOMING, RUNNING, ENDED = "upcoming", "running", "ended"
STATES = (UPCOMING, RUNNING, ENDED)


def state_of(offer: Offer, now: datetime) -> str:
    if now >= offer.ends_at:
        return ENDED
    return RUNNING if now >= offer.starts_at else UPCOMING


def get_offer(merchant_id: int, offer_id: int, *, kind: str, lock: bool = False) -> Offer:
    """The merchant's offer of that kind; 404 for another merchant's, another kind's or none."""
    query = select(Offer).where(Offer.id == offer_id)
    offer = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if offer is None or offer.merchant_id != merchant_id or offer.kind != kind:
        raise NotFound("offer not found")
    return offer


def _fields(**messages: str) -> InvalidInput:
    return InvalidInput(
        "the offer's terms are not usable",
        code="validation_error",
        details={"fields": {field: [message] for field, message in messages.items()}},
    )


def _check_window(starts_at: datetime, ends_at: datetime, now: datetime, *, moved: str = "ends_at") -> None:
    """`moved`: the end the request changed, named when the window is the wrong way round."""
    if ends_at <= starts_at:
        raise _fields(**{moved: "must be after starts_at" if moved == "ends_at" else "must be before ends_at"})
    if ends_at - starts_at < MIN_WINDOW:
        raise _fields(**{moved: "the window lasts at least a minute"})
    if ends_at <= now:
        raise _fields(ends_at="must be in the future")


MIN_WINDOW = timedelta(minutes=1)


def _check_terms(kind: str, terms: Mapping[str, Any], quota: int | None = None) -> None:
    """Terms that make no sense together: an initiator's price not below the group price (the
    initiator is the one who gets a better deal); a new group buy with fewer units than one
    group's seats (`quota`: lowered later, it may trim what is left of a sale)."""
    if kind != GROUP_BUY:
        return
    if terms.get("leader_price") is not None and terms["leader_price"] >= terms["price"]:
        raise _fields(leader_price="below the group price: it is the initiator's better deal")
    if quota is not None and quota < terms["group_size"]:
        raise _fields(quota=f"at least the group size ({terms['group_size']}): a group needs a unit per seat")


def create_offer(merchant_id: int, *, kind: str, sku_id: int, values: Mapping[str, Any], staff_id: int | None) -> Offer:
    """A new offer on one of the merchant's SKUs; its quota is set aside from the SKU's stock
    (409 `insufficient_stock` when the SKU has less)."""
    now = utcnow()
    row = db.session.execute(
        select(Sku, Product.title).join(Product, Product.id == Sku.product_id).where(Sku.id == sku_id)
    ).first()
    if row is None or row[0].merchant_id != merchant_id:
        raise _fields(sku_id="no such SKU")
    sku, product_title = row
    _check_window(values["starts_at"], values["ends_at"], now)
    _check_terms(kind, values, values["quota"])
    offer = Offer(
        merchant_id=merchant_id,
        kind=kind,
        sku_id=sku.id,
        product_id=sku.product_id,
        title=values.get("title") or product_title,
        **{key: value for key, value in values.items() if key != "title"},
    )
    db.session.add(offer)
    db.session.flush()
    stock.set_aside(offer, offer.quota, staff_id=staff_id)
    bump_after_commit(catalog_namespace(merchant_id))
    return offer


def update_offer(merchant_id: int, offer_id: int, *, kind: str, changes: Mapping[str, Any], staff_id: int) -> Offer:
    """Change an offer's terms. Its window: the start only before it starts, and never one that
    has ended into the past; a closed offer no more (409 `offer_closed`). Its quota: more is set
    aside from the SKU; less moves free units back (409 `quota_below_sold` below what buyers
    hold). A group buy's group terms not while groups form (409 `groups_forming`)."""
    now = utcnow()
    if "ends_at" in changes:
        _groups_end_by(merchant_id, offer_id, changes["ends_at"])
    offer = get_offer(merchant_id, offer_id, kind=kind, lock=True)
    if offer.closed_at is not None:
        raise Conflict("the offer is over", code="offer_closed", details={"closed_at": offer.closed_at.isoformat()})
    changes = dict(changes)
    if "starts_at" in changes and changes["starts_at"] != offer.starts_at and now >= offer.starts_at:
        raise Conflict(
            "the offer has started: its start cannot change",
            code="offer_started",
            details={"fields": {"starts_at": ["the offer has started"]}},
        )
    if "starts_at" in changes or "ends_at" in changes:
        _check_window(
            changes.get("starts_at", offer.starts_at),
            changes.get("ends_at", offer.ends_at),
            now,
            moved="ends_at" if "ends_at" in changes else "starts_at",
        )
    terms_changed = [key for key in GROUP_TERMS if key in changes and changes[key] != getattr(offer, key)]
    quota = changes.pop("quota", offer.quota)
    for key, value in changes.items():
        setattr(offer, key, value)
    if offer.leader_price is not None and offer.leader_commission_bp is not None:
        field = "leader_commission_bp" if "leader_commission_bp" in changes else "leader_price"
        raise _fields(**{field: "a leader_price or a leader_commission_bp, not both (set the other to null)"})
    _check_terms(offer.kind, {key: getattr(offer, key) for key in ("leader_price", "price", "group_size")})
    if offer.kind == GROUP_BUY and terms_changed:
        _keep_terms_of_forming_groups(offer.id, terms_changed)
    if quota > offer.quota:
        stock.set_aside(offer, quota - offer.quota, staff_id=staff_id)
    elif quota < offer.quota:
        wanted = offer.quota - quota
        moved = stock.take_back(offer, wanted, staff_id=staff_id)
        if moved < wanted:
            raise Conflict(
                "buyers hold more units than that",
                code="quota_below_sold",
                details={"fields": {"quota": ["below the units buyers hold"]}, "lowest": offer.quota - moved},
            )
    offer.quota = quota
    db.session.flush()
    bump_after_commit(catalog_namespace(merchant_id))
    return offer


def end_offer(merchant_id: int, offer_id: int, *, kind: str, staff_id: int) -> Offer:
    """End it now (an offer over already stays as it ended); its free units go back to the SKU.
    Orders placed stay; their units go back to the SKU if they are cancelled or refunded."""
    now = utcnow()
    _groups_end_by(merchant_id, offer_id, now)
    offer = get_offer(merchant_id, offer_id, kind=kind, lock=True)
    if offer.ends_at > now:
        offer.ends_at = now
        offer.ended_early_at = now
        if offer.starts_at >= now:  # ended before it started: its window is the second before
            offer.starts_at = now - timedelta(seconds=1)
    stock.close(offer, now, staff_id=staff_id)
    bump_after_commit(catalog_namespace(merchant_id))
    return offer


# What members of a group paid on: no change while one forms.
GROUP_TERMS = ("price", "leader_price", "leader_commission_bp", "group_size", "time_limit_hours", "on_expiry")


def _keep_terms_of_forming_groups(offer_id: int, changed: Sequence[str]) -> None:
    """409 `groups_forming` for a change of the group terms (price, time, 模拟成团 or not) while a
    group of the (locked) offer is forming: its members paid on those terms. (A group whose
    initiator has not paid yet opens on the terms of the moment it is paid.)"""
    forming = db.session.execute(
        select(func.count())
        .select_from(Group)
        .where(Group.offer_id == offer_id, Group.status == GroupStatus.FORMING.value)
    ).scalar_one()
    if forming:
        raise Conflict(
            "groups are forming on these terms: change them once those groups have closed (or end the offer"
            " and make a new one)",
            code="groups_forming",
            details={"fields": {key: ["groups are forming on it"] for key in changed}, "groups": forming},
        )


def _groups_end_by(merchant_id: int, offer_id: int, ends_at: datetime) -> None:
    """A group buy's groups still forming have no more time than the offer: an earlier end moves
    theirs (the groups' sweep closes them once it has passed). Their rows are locked before the
    offer's, as a payment's seat takes them (shop.core.locking)."""
    db.session.execute(
        update(Group)
        .where(
            Group.merchant_id == merchant_id,
            Group.offer_id == offer_id,
            Group.status == GroupStatus.FORMING.value,
            Group.expires_at > ends_at,
        )
        .values(expires_at=ends_at)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class OfferView:
    """An offer as staff and members see it: the row, its state, and its units now."""

    offer: Offer
    now: datetime
    state: str
    left: int
    held: int | None = None  # the member's units (member views)
    groups: dict[str, int] | None = None  # a group buy's groups by status (staff views)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.offer, name)

    @property
    def sold(self) -> int:
        """Units buyers hold (unpaid or paid)."""
        return self.offer.quota - self.offer.returned - self.left

    @property
    def sold_out(self) -> bool:
        return self.left == 0

    @property
    def completes_when_short(self) -> bool:
        """A group buy completes groups short of their size at their time (模拟成团)."""
        return self.offer.on_expiry == "complete"

    @property
    def starts_in(self) -> int:
        """Whole seconds until it starts (0 once started), for a countdown."""
        return max(0, math.ceil((self.offer.starts_at - self.now).total_seconds()))

    @property
    def ends_in(self) -> int:
        return max(0, math.ceil((self.offer.ends_at - self.now).total_seconds()))


def views(offers: list[Offer], now: datetime, *, member_id: int | None = None) -> list[OfferView]:
    ids = [offer.id for offer in offers]
    left = stock.units_left(ids)
    held = stock.held_by(member_id, ids) if member_id is not None else {}
    groups = group_counts([offer.id for offer in offers if offer.kind == GROUP_BUY]) if member_id is None else {}
    return [
        OfferView(
            offer=offer,
            now=now,
            state=state_of(offer, now),
            left=left.get(offer.id, 0),
            held=held.get(offer.id, 0) if member_id is not None else None,
            groups=groups.get(offer.id, {}) if offer.kind == GROUP_BUY and member_id is None else None,
        )
        for offer in offers
    ]


def group_counts(offer_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Groups per group buy and status."""
    counts: dict[int, dict[str, int]] = {}
    if not offer_ids:
        return counts
    for offer_id, status, count in db.session.execute(
        select(Group.offer_id, Group.status, func.count())
        .where(Group.offer_id.in_(offer_ids))
        .group_by(Group.offer_id, Group.status)
    ):
        counts.setdefault(offer_id, {})[status] = count
    return counts


def offer_page(
    merchant_id: int, *, kind: str, state: str | None = None, cursor: str | None = None, limit: int = 20
) -> Page:
    """The merchant's offers of a kind, newest first, optionally in one state."""
    now = utcnow()
    query = select(Offer).where(Offer.merchant_id == merchant_id, Offer.kind == kind)
    if state == UPCOMING:
        query = query.where(Offer.starts_at > now)
    elif state == RUNNING:
        query = query.where(Offer.starts_at <= now, Offer.ends_at > now)
    elif state == ENDED:
        query = query.where(Offer.ends_at <= now)
    page = keyset_page(query, [Offer.id], cursor=cursor, limit=limit)
    return Page(items=views(list(page.items), now), next_cursor=page.next_cursor)


def offer_view(merchant_id: int, offer_id: int, *, kind: str, member_id: int | None = None) -> OfferView:
    offer = get_offer(merchant_id, offer_id, kind=kind)
    return views([offer], utcnow(), member_id=member_id)[0]


def current_offers(merchant_id: int, *, kind: str, member_id: int | None, limit: int = 50) -> list[OfferView]:
    """Offers of a kind members can see: upcoming and running, the soonest to end first."""
    now = utcnow()
    offers = list(
        db.session.execute(
            select(Offer)
            .where(Offer.merchant_id == merchant_id, Offer.kind == kind, Offer.ends_at > now)
            .order_by(Offer.starts_at, Offer.id)
            .limit(limit)
        ).scalars()
    )
    return views(offers, now, member_id=member_id)


def offers_on_product(merchant_id: int, product_id: int) -> list[dict[str, Any]]:
    """The group buys and flash sales on a product that are upcoming or running, as its detail
    shows them (cached with the catalog: their times are absolute, so the page counts down by
    itself; units left are read from the offer's own endpoint)."""
    now = utcnow()
    offers = db.session.execute(
        select(Offer)
        .where(Offer.merchant_id == merchant_id, Offer.product_id == product_id, Offer.ends_at > now)
        .order_by(Offer.starts_at, Offer.id)
    ).scalars()
    return [
        {
            "kind": offer.kind,
            "id": offer.id,
            "sku_id": offer.sku_id,
            "title": offer.title,
            "price": offer.price,
            "leader_price": offer.leader_price,
            "group_size": offer.group_size,
            "completes_when_short": offer.on_expiry == "complete" if offer.kind == GROUP_BUY else None,
            "per_member_limit": offer.per_member_limit,
            "starts_at": offer.starts_at,
            "ends_at": offer.ends_at,
        }
        for offer in offers
    ]
