"""Flash sales (秒杀): a window, a flash price, a quota set aside from the SKU, a per-member limit,
and a payment timeout per order whose expiry gives the units back to the quota.

A flash order is a single-SKU "buy now" placed through `orders.place_order` with the sale as the
line's offer: the resolver below prices it (409 `offer_not_active` outside the window), the
units come from the sale (shop.offers.stock, through orders' offer-stock door), and the order
expires after the sale's `payment_minutes`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select

from shop.checkout import pricing
from shop.core.db import db, statement_of_its_own, transaction
from shop.core.errors import Conflict, NotFound
from shop.offers import flash_fast, gate
from shop.offers.models import FLASH_SALE, Offer
from shop.offers.service import RUNNING, state_of
from shop.offers.stock import any_unit_free, limit_reached, sold_out
from shop.orders.service import Placed, in_turn, place_order, placed_with_key


def not_active(offer: Offer, state: str) -> Conflict:
    return Conflict(
        "the sale is not running" if state != "ended" else "the sale has ended",
        code="offer_not_active",
        details={
            "offer_id": offer.id,
            "state": state,
            "starts_at": offer.starts_at.isoformat(),
            "ends_at": offer.ends_at.isoformat(),
        },
    )


class FlashSaleResolver:
    """Prices the lines that ask for a flash sale: its price while it runs, within the limit."""

    kind = FLASH_SALE

    def resolve(self, context: pricing.OfferContext, requests: Sequence[pricing.OfferRequest]) -> list[pricing.Offer]:
        answers = []
        for request in requests:
            offer = db.session.get(Offer, request.offer_id)  # read already by a flash placement
            if offer is None or offer.merchant_id != context.merchant_id or offer.kind != FLASH_SALE:
                raise NotFound("flash sale not found")
            if offer.sku_id != request.sku_id:
                raise pricing.offer_unavailable(request, FLASH_SALE, "other_sku", "the flash sale is on another SKU")
            state = state_of(offer, context.now)
            if state != RUNNING:
                raise not_active(offer, state)
            if request.quantity > offer.per_member_limit:
                raise limit_reached(offer.id, offer.per_member_limit)
            answers.append(
                pricing.Offer(
                    kind=FLASH_SALE,
                    id=offer.id,
                    unit_price=offer.price,
                    note=f"限购 {offer.per_member_limit} 件",
                    pay_within=offer.payment_minutes,
                )
            )
        return answers


def sale_without_flush_wait(merchant_id: int, offer_id: int) -> Offer:
    """The merchant's flash sale (404 otherwise), read by the statement that also makes this
    transaction's commit not wait for its WAL to reach the disk (PostgreSQL's asynchronous
    commit, `SET LOCAL synchronous_commit`: the WAL is written within `wal_writer_delay`, 200 ms
    by default). What a database crash in that window can lose is an unpaid order nobody has
    started paying: the first step of paying (`start_payment`) commits synchronously, which
    flushes the WAL up to it, this order included. Its units go back with it (they were taken
    in the same transaction), and the member's retry places it again (its key is gone too)."""
    row = db.session.execute(
        select(Offer, func.set_config("synchronous_commit", "off", True)).where(Offer.id == offer_id)
    ).first()
    if row is None or row[0].merchant_id != merchant_id or row[0].kind != FLASH_SALE:
        raise NotFound("offer not found")
    return row[0]


def place_flash_order(
    merchant_id: int,
    member_id: int,
    offer_id: int,
    *,
    quantity: int,
    fulfilment: str,
    address: Mapping[str, str] | None,
    pickup_point_id: int | None,
    remark: str,
    selections: Mapping[str, Any] | None,
    idempotency_key: str,
    fingerprint: str,
    quick_tried: bool = False,
) -> Placed:
    """Buy `quantity` of the sale's SKU at the flash price (404 for another merchant's sale).
    `quick_tried`: the one-round-trip placement handed this very request back already (the flash
    lane tried it): it goes the usual way at once.

    Owns its transaction (like `start_payment`): the sold-out gate (shop.offers.gate) is asked
    before it, and told after it rolled back on finding no unit. A sale the gate knows is sold
    out is refused without a statement, except for a retry of an order placed before (its key
    is looked up: the retry gets its order)."""
    quick = not quick_tried and _quick(quantity, fulfilment, address, selections)
    seen: gate.Seen | None = None
    if not (quick and _seen_open(merchant_id, offer_id)):
        seen = gate.look(merchant_id, offer_id)
        if seen.sold_out:
            _refuse_unless_retry(merchant_id, member_id, offer_id, idempotency_key)
    if quick:
        assert address is not None
        placed = _place_quick(
            merchant_id,
            member_id,
            offer_id,
            seen,
            quantity=quantity,
            address=address,
            remark=remark,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        if placed is not None:
            return placed
    if seen is None:
        seen = gate.look(merchant_id, offer_id)
    ends_at = None

    def place() -> Placed:
        nonlocal ends_at
        with transaction():
            offer = sale_without_flush_wait(merchant_id, offer_id)
            ends_at = offer.ends_at
            return place_order(
                merchant_id,
                member_id,
                items=[{"sku_id": offer.sku_id, "quantity": quantity, "offer": {"kind": FLASH_SALE, "id": offer.id}}],
                fulfilment=fulfilment,
                address=address,
                pickup_point_id=pickup_point_id,
                remark=remark,
                selections=selections,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )

    try:
        return in_turn(place, chosen_by_server=selections is None)
    except Conflict as exc:
        if exc.code == "sold_out" and ends_at is not None:
            _tell_gate(exc, merchant_id, offer_id, seen, ends_at)
        raise


class WhileSelling(NamedTuple):
    """What `place_while_selling` did: `placed`, the order; or `tried` without one: the
    one-round-trip placement was asked and handed the request back untouched."""

    placed: Placed | None
    tried: bool


def place_while_selling(
    merchant_id: int,
    member_id: int,
    offer_id: int,
    *,
    quantity: int,
    fulfilment: str,
    address: Mapping[str, str] | None,
    remark: str,
    selections: Mapping[str, Any] | None,
    idempotency_key: str,
    fingerprint: str,
) -> WhileSelling:
    """What `place_flash_order` does when the order is the one-round-trip kind: the order placed,
    or a refusal raised (`sold_out`, `offer_limit_reached`) with the gate asked and told as
    `place_flash_order` asks and tells it. No order when it is not that case (not tried), when the
    key is a retry of an order of a sale the gate knows is sold out (not tried), or when the
    placement handed it back untouched (tried: a retry, a member with coupons...): nothing was
    written, and `place_flash_order` answers it (told `quick_tried` in the last case). For
    api.flash_lane, which answers the common placement of a stampede, and its sold-out refusals,
    without the rest of the request's machinery."""
    if not _quick(quantity, fulfilment, address, selections):
        return WhileSelling(None, tried=False)
    assert address is not None
    seen: gate.Seen | None = None
    if not _seen_open(merchant_id, offer_id):
        seen = gate.look(merchant_id, offer_id)
        if seen.sold_out:
            _refuse_unless_retry(merchant_id, member_id, offer_id, idempotency_key)
            return WhileSelling(None, tried=False)
    placed = _place_quick(
        merchant_id,
        member_id,
        offer_id,
        seen,
        quantity=quantity,
        address=address,
        remark=remark,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    return WhileSelling(placed, tried=True)


def _refuse_unless_retry(merchant_id: int, member_id: int, offer_id: int, idempotency_key: str) -> None:
    """For a sale the gate knows is sold out: raise `sold_out`, unless the key placed an order
    before (a retry, which gets its order: return). One indexed read, in autocommit."""
    with statement_of_its_own() as connection:
        retry = placed_with_key(merchant_id, member_id, idempotency_key, connection=connection)
    if not retry:
        raise sold_out(offer_id)


def _quick(quantity: int, fulfilment: str, address: Mapping[str, str] | None, selections: Any) -> bool:
    """An order flash_fast may place: a delivery to an address, no selections, a line within the limit."""
    return not selections and fulfilment == "delivery" and bool(address) and quantity <= pricing.MAX_LINE_QUANTITY


def _place_quick(
    merchant_id: int,
    member_id: int,
    offer_id: int,
    seen: gate.Seen | None,
    *,
    quantity: int,
    address: Mapping[str, str],
    remark: str,
    idempotency_key: str,
    fingerprint: str,
) -> Placed | None:
    """flash_fast's placement: the order, a refusal raised (the gate told of a sold-out sale), or
    None (handed back untouched: the usual path answers)."""
    answer = flash_fast.place(
        merchant_id,
        member_id,
        offer_id,
        quantity=quantity,
        address=address,
        remark=remark,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if answer.placed is not None:
        _OPEN[(merchant_id, offer_id)] = time.monotonic() + OPEN_FOR
        return answer.placed
    if answer.refusal is not None:
        if answer.refusal.code == "sold_out":
            _OPEN.pop((merchant_id, offer_id), None)
            _tell_gate(answer.refusal, merchant_id, offer_id, seen, answer.ends_at)
        raise answer.refusal
    return None


# Sales this process placed a one-round-trip order of lately, and until when (monotonic): their
# next buyers skip the gate's read (a sale selling is not sold out; PostgreSQL decides anyway, and
# its first sold_out answer drops the sale from here and sets the gate).
_OPEN: dict[tuple[int, int], float] = {}
OPEN_FOR = 1.0


def forget_open_sales() -> None:
    """Forget which sales were seen selling, and where their units were taken up to (tests whose
    ids start over)."""
    _OPEN.clear()
    flash_fast.forget_sales()


def _seen_open(merchant_id: int, offer_id: int) -> bool:
    until = _OPEN.get((merchant_id, offer_id))
    if until is None:
        return False
    if until > time.monotonic():
        return True
    _OPEN.pop((merchant_id, offer_id), None)  # another thread may have dropped it already
    return False


def _tell_gate(refusal: Conflict, merchant_id: int, offer_id: int, seen: gate.Seen | None, until: datetime) -> None:
    """A buyer was refused sold_out: set the gate's mark if no unit is free for good. The gate's
    generation is read before the fresh look at the units (when the buyer did not read it before
    placing), so a unit given back after that look raises it and the mark is refused."""
    if seen is None:
        seen = gate.look(merchant_id, offer_id)
    if _sold_for_good(refusal, offer_id):
        gate.mark_sold_out(merchant_id, offer_id, seen, until)


def _sold_for_good(refusal: Conflict, offer_id: int) -> bool:
    """No unit was free for the refused buyer, and none is now but for placements in flight that
    may roll back: a buyer asking for more than is left, or one refused while the last units are
    being taken, closes nothing."""
    if (refusal.details or {}).get("left"):
        return False
    with transaction():
        return not any_unit_free(offer_id)
