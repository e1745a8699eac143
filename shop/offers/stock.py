"""The units of offers: set aside from a SKU, taken by orders, given back, returned to the SKU.

An order takes an offer's free units with `FOR UPDATE SKIP LOCKED`, so buyers of one hot offer
take different rows instead of queueing on one counter, and never wait for one another: a buyer
who finds fewer free units than asked is refused (409 `sold_out`, with how many were free), also
when the others are held by placements still in flight (`any_unit_free` tells the two apart
afterwards: the sold-out gate is set only when every unit is taken for good). Waiting for held
units instead would let two short buyers wait for each other. Before the units, the member's
count of the offer is raised with a guarded upsert (the per-member limit): a buyer over the
limit locks no unit.

Lock order (shop.core.locking): the order, the group of an initiator's order, the offer (a
give-back, a staff change, closing), the member's `offer_buyers` row, the offer's units, then
SKUs; a placement locks no offer row. Units given back stay the offer's while it runs; `close`
moves its free units back to the SKU (`offer_returned`) once it is over, units given back after
that go straight there, and `return_stranded` takes those a placement in flight at the close
left free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, delete, func, select, text, update

from shop.catalog.service import catalog_namespace, move_stock
from shop.core.cache import bump_after_commit
from shop.core.db import Direct, db, utcnow
from shop.core.errors import Conflict
from shop.core.locking import locked
from shop.offers import gate
from shop.offers.models import Offer, OfferBuyer, OfferUnit
from shop.orders.models import Order, OrderLine

# One statement: the member's count of the offer raised by the quantity within the offer's
# per-member limit (a guarded upsert; nothing counted when that would pass it), then, only if it
# was, the free units taken without waiting for any unit another buyer holds (SKIP LOCKED).
_COUNT_AND_TAKE = Direct(
    text(
        "WITH counted AS ("
        " INSERT INTO offer_buyers (offer_id, member_id, merchant_id, quantity)"
        " SELECT o.id, :p_member, o.merchant_id, :p_quantity FROM offers o"
        " WHERE o.id = :p_offer AND :p_quantity <= o.per_member_limit"
        " ON CONFLICT (offer_id, member_id) DO UPDATE SET quantity = offer_buyers.quantity + excluded.quantity"
        " WHERE offer_buyers.quantity + excluded.quantity"
        " <= (SELECT per_member_limit FROM offers WHERE id = excluded.offer_id)"
        " RETURNING quantity"
        "), taken AS ("
        " UPDATE offer_units SET order_id = :p_order WHERE id IN ("
        " SELECT id FROM offer_units WHERE offer_id = :p_offer AND order_id IS NULL"
        " AND EXISTS (SELECT FROM counted)"
        " ORDER BY id LIMIT :p_quantity FOR UPDATE SKIP LOCKED) RETURNING id"
        ") SELECT (SELECT count(*) FROM counted) AS counted, (SELECT count(*) FROM taken) AS taken"
    ).columns(counted=BigInteger, taken=BigInteger)
)


def sold_out(offer_id: int, *, left: int = 0) -> Conflict:
    """409 `sold_out`; `left`: the units that were free, fewer than asked for (0: none)."""
    return Conflict("sold out", code="sold_out", details={"offer_id": offer_id, "left": left})


def limit_reached(offer_id: int, limit: int) -> Conflict:
    return Conflict(
        f"at most {limit} per member",
        code="offer_limit_reached",
        details={"offer_id": offer_id, "per_member_limit": limit},
    )


def take_units(order: Order, offer_id: int, quantity: int) -> None:
    """The member's count, then `quantity` units of the offer, for the order being placed; 409
    `offer_limit_reached` or `sold_out` (the placement rolls back)."""
    ((counted, taken),) = _COUNT_AND_TAKE.execute(
        {"p_offer": offer_id, "p_member": order.member_id, "p_quantity": quantity, "p_order": order.id}
    )
    if not counted:
        limit = db.session.execute(select(Offer.per_member_limit).where(Offer.id == offer_id)).scalar_one()
        raise limit_reached(offer_id, limit)
    if taken < quantity:
        raise sold_out(offer_id, left=taken)


def give_back_units(order: Order, offer_id: int, quantity: int) -> int:
    """`quantity` of the (locked) order's units of the offer come back, and the member's count is
    lowered: to the offer while it runs, to its SKU once it is closed. Returns how many came back
    (none when the order holds none: a repeat). The offer's row is locked first, so closing it
    cannot miss units freed at the same time; then the member's row, then the units."""
    offer = db.session.execute(locked(select(Offer).where(Offer.id == offer_id))).scalar_one()
    held = (
        db.session.execute(
            select(OfferUnit.id)
            .where(OfferUnit.order_id == order.id, OfferUnit.offer_id == offer_id)
            .order_by(OfferUnit.id)
            .limit(quantity)
        )
        .scalars()
        .all()
    )
    if not held:
        return 0
    db.session.execute(
        update(OfferBuyer)
        .where(OfferBuyer.offer_id == offer_id, OfferBuyer.member_id == order.member_id)
        .values(quantity=func.greatest(OfferBuyer.quantity - len(held), 0))
    )
    if offer.closed_at is None:
        db.session.execute(update(OfferUnit).where(OfferUnit.id.in_(held)).values(order_id=None))
        gate.units_back_after_commit(offer.merchant_id, offer.id)
    else:
        db.session.execute(delete(OfferUnit).where(OfferUnit.id.in_(held)))
        move_stock(offer.merchant_id, offer.sku_id, len(held), reason="offer_returned")
        offer.returned += len(held)
        db.session.flush()
    return len(held)


def set_aside(offer: Offer, quantity: int, *, staff_id: int | None = None) -> None:
    """Move `quantity` units of the offer's SKU into it (409 `insufficient_stock` when the SKU
    has fewer)."""
    if move_stock(offer.merchant_id, offer.sku_id, -quantity, reason="offer_set_aside", staff_id=staff_id) is None:
        raise Conflict(
            "the SKU has not that much stock to set aside",
            code="insufficient_stock",
            details={"sku_id": offer.sku_id, "fields": {"quota": ["more than the SKU's stock"]}},
        )
    db.session.execute(
        text(
            "INSERT INTO offer_units (merchant_id, offer_id)"
            " SELECT :merchant, :offer FROM generate_series(1, :quantity)"
        ),
        {"merchant": offer.merchant_id, "offer": offer.id, "quantity": quantity},
    )
    gate.units_back_after_commit(offer.merchant_id, offer.id)


def take_back(offer: Offer, quantity: int, *, staff_id: int | None = None) -> int:
    """Move up to `quantity` free units of the offer back to its SKU (not the ones a buyer is
    taking right now); returns how many moved."""
    free = (
        select(OfferUnit.id)
        .where(OfferUnit.offer_id == offer.id, OfferUnit.order_id.is_(None))
        .order_by(OfferUnit.id.desc())
        .limit(quantity)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    moved = len(db.session.execute(delete(OfferUnit).where(OfferUnit.id.in_(free)).returning(OfferUnit.id)).all())
    if moved:
        move_stock(offer.merchant_id, offer.sku_id, moved, reason="offer_returned", staff_id=staff_id)
    return moved


def any_unit_free(offer_id: int) -> bool:
    """Is a unit of the offer free, or held by a placement not committed yet (which may roll
    back)? Read in a new statement, so what others committed since is seen."""
    return (
        db.session.execute(
            select(OfferUnit.id).where(OfferUnit.offer_id == offer_id, OfferUnit.order_id.is_(None)).limit(1)
        ).first()
        is not None
    )


def units_left(offer_ids: Sequence[int]) -> dict[int, int]:
    """Free units per offer (none listed for an offer with none)."""
    if not offer_ids:
        return {}
    rows = db.session.execute(
        select(OfferUnit.offer_id, func.count())
        .where(OfferUnit.offer_id.in_(offer_ids), OfferUnit.order_id.is_(None))
        .group_by(OfferUnit.offer_id)
    ).all()
    return dict(rows)  # type: ignore[arg-type]


def running_with_free_units(now: datetime | None = None) -> list[tuple[int, int]]:
    """(merchant_id, offer_id) of the offers running now that have a free unit."""
    now = now or utcnow()
    free = select(OfferUnit.id).where(OfferUnit.offer_id == Offer.id, OfferUnit.order_id.is_(None)).exists()
    return [
        (merchant_id, offer_id)
        for merchant_id, offer_id in db.session.execute(
            select(Offer.merchant_id, Offer.id).where(Offer.starts_at <= now, Offer.ends_at > now, free)
        )
    ]


def held_by(member_id: int, offer_ids: Sequence[int]) -> dict[int, int]:
    """How many units of each offer the member holds."""
    if not offer_ids:
        return {}
    rows = db.session.execute(
        select(OfferBuyer.offer_id, OfferBuyer.quantity).where(
            OfferBuyer.member_id == member_id, OfferBuyer.offer_id.in_(offer_ids)
        )
    ).all()
    return dict(rows)  # type: ignore[arg-type]


def close(offer: Offer, now: datetime, *, staff_id: int | None = None) -> int:
    """The (locked) offer is over: its free units go back to its SKU, and so will units given
    back later. Returns the units moved; nothing on an offer already closed."""
    if offer.closed_at is not None:
        return 0
    moved = take_back(offer, offer.quota, staff_id=staff_id)
    offer.returned += moved
    offer.closed_at = now
    db.session.flush()
    bump_after_commit(catalog_namespace(offer.merchant_id))  # product details list it no more
    return moved


def close_ended(now: datetime | None = None, *, limit: int = 100) -> int:
    """Close the offers whose window has ended (`close`), skipping one locked by a change or a
    give-back (the next run takes it); returns how many were closed."""
    now = now or utcnow()
    offers = (
        db.session.execute(
            select(Offer)
            .where(Offer.closed_at.is_(None), Offer.ends_at <= now)
            .order_by(Offer.ends_at, Offer.id)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True)
        )
        .scalars()
        .all()
    )
    for offer in offers:
        close(offer, now)
    return len(offers)


STRANDED_WITHIN = timedelta(hours=1)


def return_stranded(now: datetime | None = None, *, limit: int = 100) -> int:
    """Free units of offers closed within the last hour go back to their SKUs: closing skips the
    units a placement in flight holds (it never waits on a buyer), and one that then rolls back
    leaves them free on the closed offer. Returns the units moved."""
    now = now or utcnow()
    free = select(OfferUnit.id).where(OfferUnit.offer_id == Offer.id, OfferUnit.order_id.is_(None)).exists()
    offers = (
        db.session.execute(
            select(Offer)
            .where(Offer.closed_at >= now - STRANDED_WITHIN, free)
            .order_by(Offer.id)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True)
        )
        .scalars()
        .all()
    )
    moved = 0
    for offer in offers:
        count = take_back(offer, offer.quota)
        offer.returned += count
        moved += count
    db.session.flush()
    return moved


class UnitKeeper:
    """The door orders take offer units through (shop.orders.service.OfferKeeper), for one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def take(self, order: Order, lines: Sequence[OrderLine]) -> None:
        for offer_id, quantity in sorted(_per_offer((line, line.quantity) for line in lines).items()):
            take_units(order, offer_id, quantity)

    def give_back(self, order: Order, units: Sequence[tuple[OrderLine, int]]) -> None:
        for offer_id, quantity in sorted(_per_offer(units).items()):
            give_back_units(order, offer_id, quantity)

    def payment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        return None

    def accept_payment(self, order: Order, lines: Sequence[OrderLine]) -> bool:
        return True

    def fulfilment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        return None

    def refund_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        return None


def _per_offer(units: Iterable[tuple[OrderLine, int]]) -> dict[int, int]:
    wanted: dict[int, int] = {}
    for line, quantity in units:
        assert line.offer_id is not None
        wanted[line.offer_id] = wanted.get(line.offer_id, 0) + quantity
    return wanted
