"""A flash-sale order in one round trip to PostgreSQL: the `flash_place()` function (migration
0018_flash_place) places it in one statement, committed asynchronously, on a connection of its own
in autocommit (no BEGIN, no COMMIT).

It places what `orders.place_order` would, the same rows, for the common case of a stampede: a
"buy now" delivered to an address, with no selections, by a member every pricing adjuster is idle
for (`pricing.idle_condition`: e.g. no coupon in the wallet), of a sale running now on a SKU on
the shelf, with a price to pay. So the order's lines are the flash price times the quantity, its
fee the merchant's shipping rule (`pricing.shipping_fee`: free over the threshold), its expiry
the shorter of the merchant's time to pay and the sale's (`orders.service._minutes_to_pay`);
the function computes these in SQL, and tests/api/test_flash_fast.py holds its
orders equal to `place_order`'s. Anything else it leaves untouched and answers 'full' (a
retry of a key, a member with coupons, a sale not running, over the limit at once, a free
order...): the caller then places the order the usual way, which answers every case.

Placements of one process arriving while its previous statement runs share the next one
(`shop.core.batching`, group commit): flash_place() runs once for each, in one transaction, and
each caller gets its own row. What a statement costs PostgreSQL beyond its placements (the call,
the transaction and its commit) and what a round trip costs the process are then paid once for
several buyers. Should the statement fail (an order number drawn twice, a lock wait that
deadlocked), PostgreSQL rolls all of it back and each of its buyers is placed the usual way.

OrderPlaced is published once the order is in (its handlers see an order with no adjustment); a
handler's veto cancels it (the placement cannot be rolled back any more) and frees its key, so a
retry is placed anew; the member sees the veto's error, and the cancelled order in their list.
"""

from __future__ import annotations

import json
import re
import threading
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from shop.checkout import pricing
from shop.core.batching import Failed, Gathering
from shop.core.db import Direct, bound_connection, db, statement_of_its_own, transaction, transaction_if_used, utcnow
from shop.core.errors import Conflict
from shop.identity.settings import default_settings
from shop.offers.models import FLASH_SALE
from shop.offers.stock import limit_reached, sold_out
from shop.orders.models import GOODS, OrderLine, OrderStatus
from shop.orders.service import Placed, announce_placed, cancel_order, forget_order_key, new_order_no

_STATEMENTS: dict[str, Direct] = {}
# The last unit this process took of each sale: where the next placement's look for a free unit
# starts (flash_place() looks from the sale's first unit when none is free past it). Stale or
# lost, it only costs that longer look.
_AFTER: dict[int, int] = {}
# What flash_place() answers, in its order.
_COLUMNS = {
    "outcome": String,
    "order_id": BigInteger,
    "left_units": Integer,
    "per_member_limit": Integer,
    "ends_at": DateTime(timezone=True),
    "line_id": BigInteger,
    "sku_id": BigInteger,
    "product_id": BigInteger,
    "title": String,
    "specs": JSONB,
    "image": String,
    "unit_price": BigInteger,
    "goods_total": BigInteger,
    "shipping_fee": BigInteger,
    "expires_at": DateTime(timezone=True),
    "created_at": DateTime(timezone=True),
    "last_unit": BigInteger,
}
_Row = namedtuple("_Row", list(_COLUMNS))  # type: ignore[misc]


@dataclass(frozen=True)
class Answer:
    """What the function answered: the order placed, or a refusal to raise (`sold_out`,
    `offer_limit_reached`), or neither (place the order the usual way); `ends_at`: the sale's end,
    when it was read."""

    placed: Placed | None = None
    refusal: Conflict | None = None
    ends_at: datetime | None = None


# The placements of one statement, as a JSON array of objects (one per placement, with these keys
# and `n`, its position): flash_place() runs once for each, in their order, all in the statement's
# one transaction. One JSON document costs the driver far less to send than an array per argument.
_FIELDS = (
    ("p_merchant", "bigint"),
    ("p_member", "bigint"),
    ("p_offer", "bigint"),
    ("p_quantity", "integer"),
    ("p_key", "varchar"),
    ("p_hash", "varchar"),
    ("p_order_no", "varchar"),
    ("p_address", "jsonb"),
    ("p_remark", "varchar"),
    ("p_now", "timestamptz"),
    ("p_after", "bigint"),
    ("n", "integer"),
)
_PLACEMENT = re.compile(r"(?<![:\w]):(p_merchant|p_member|p_now)\b")


def _statement() -> Direct | None:
    """The call for placements given as one JSON array, with the adjusters' idle condition (its
    binds naming each placement's own values) as an argument; None when an adjuster cannot say."""
    idle = pricing.idle_condition()
    if idle is None:
        return None
    statement = _STATEMENTS.get(idle)
    if statement is None:
        fields = ", ".join(f"{name} {kind}" for name, kind in _FIELDS)
        each = _PLACEMENT.sub(r"a.\1", idle)
        statement = _STATEMENTS[idle] = Direct(
            text(
                f"SELECT f.* FROM jsonb_to_recordset(CAST(:p_placements AS jsonb)) AS a({fields})"
                " CROSS JOIN LATERAL flash_place(a.p_merchant, a.p_member, a.p_offer, a.p_quantity, a.p_key,"
                f" a.p_hash, a.p_order_no, a.p_address, a.p_remark, {each}, :p_default_fee,"
                " :p_default_free_over, :p_default_ttl, a.p_now, a.p_after) AS f ORDER BY a.n"
            ).columns(**_COLUMNS)
        )
    return statement


def _run_many(statement: Direct, placements: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """One statement (a transaction of its own) placing `placements`: one row each, in their order."""
    for n, placement in enumerate(placements):
        placement["n"] = n
    params: dict[str, Any] = {"p_placements": json.dumps(placements, ensure_ascii=False), **_defaults()}
    with statement_of_its_own() as connection:
        rows = statement.execute(params, connection=connection)
    return rows


# Per statement (idle condition) and engine: the placements of this process's threads gathered
# into shared statements (shop.core.batching).
_GATHERINGS: dict[tuple[int, int], Gathering[dict[str, Any], tuple[Any, ...]]] = {}
_GATHERINGS_LOCK = threading.Lock()
GATHER_MOST = 16  # placements one statement carries at most


def _gathering(statement: Direct) -> Gathering[dict[str, Any], tuple[Any, ...]]:
    key = (id(statement), id(db.engine))
    gathering = _GATHERINGS.get(key)
    if gathering is None:
        with _GATHERINGS_LOCK:
            gathering = _GATHERINGS.get(key)
            if gathering is None:
                gathering = _GATHERINGS[key] = Gathering(
                    lambda placements: _run_many(statement, placements), most=GATHER_MOST
                )
    return gathering


def _placed_row(statement: Direct, placement: dict[str, Any]) -> tuple[Any, ...] | Failed:
    """flash_place()'s row for one placement, run with the placements of other threads of this
    process that wait at the same time (or alone); Failed when the statement raised. In the test
    harness (the session bound to one connection in a transaction), alone, on that connection."""
    if bound_connection() is not None:
        try:
            return _run_many(statement, [placement])[0]
        except Exception as error:
            return Failed(error)
    return _gathering(statement).run(placement)


def forget_sales() -> None:
    """Forget where each sale's units were taken up to (tests whose ids start over)."""
    _AFTER.clear()


@cache
def _defaults() -> dict[str, int | None]:
    """The settings of a merchant who never changed them (no row): the function's fallback. The
    same for every merchant (the table's column defaults), so read once."""
    settings = default_settings(0)
    return {
        "p_default_fee": settings.shipping_fee,
        "p_default_free_over": settings.free_shipping_over,
        "p_default_ttl": settings.order_ttl_minutes,
    }


def place(
    merchant_id: int,
    member_id: int,
    offer_id: int,
    *,
    quantity: int,
    address: Mapping[str, str],
    remark: str,
    idempotency_key: str,
    fingerprint: str,
) -> Answer:
    statement = _statement()
    if statement is None:
        return Answer()
    now = utcnow()
    placement = {
        "p_merchant": merchant_id,
        "p_member": member_id,
        "p_offer": offer_id,
        "p_quantity": quantity,
        "p_key": idempotency_key,
        "p_hash": fingerprint,
        "p_order_no": new_order_no(merchant_id, now),
        "p_now": now.isoformat(),
        "p_address": dict(address),
        "p_remark": remark,
        "p_after": _AFTER.get(offer_id),
    }
    values = _placed_row(statement, placement)
    if isinstance(values, Failed):
        if isinstance(values.error, DBAPIError):
            # Nothing of the statement was written (e.g. an order number drawn twice, or a lock
            # wait that deadlocked with another statement's placements): the usual path answers.
            return Answer()
        raise values.error
    row = _Row(*values)
    if row.outcome == "limit":
        return Answer(refusal=limit_reached(offer_id, row.per_member_limit), ends_at=row.ends_at)
    if row.outcome == "sold_out":
        _AFTER.pop(offer_id, None)
        return Answer(refusal=sold_out(offer_id, left=row.left_units), ends_at=row.ends_at)
    if row.outcome != "placed":
        return Answer(ends_at=row.ends_at)
    _AFTER[offer_id] = row.last_unit
    order = _order_of(row, merchant_id, member_id, offer_id, quantity, address, remark, placement["p_order_no"])
    try:
        with transaction_if_used():
            announce_placed(order)
    except Exception:
        # Refused (or failed) after its commit: cancelled, its units back, and its key freed so
        # a retry is placed anew (the usual path would have rolled it all back).
        with transaction():
            cancel_order(order.id, reason="refused", merchant_id=merchant_id)
            forget_order_key(order.id)
        raise
    return Answer(placed=Placed(order=order, replayed=False), ends_at=row.ends_at)


@dataclass(slots=True)
class PlacedLine:
    """An order line as flash_place() inserted it: OrderLine's columns, read as plain attributes
    (an ORM object's instrumented ones cost more to make and to read than the rest of the answer)."""

    id: int
    order_id: int
    merchant_id: int
    order_kind: str
    sku_id: int
    product_id: int
    title: str
    specs: dict[str, Any]
    image: str
    unit_price: int
    quantity: int
    goods_amount: int
    discount: int
    paid_amount: int
    refunded_quantity: int
    refunded_amount: int
    description: str
    offer_kind: str | None
    offer_id: int | None

    offer = property(OrderLine.offer.fget)  # type: ignore[attr-defined]


@dataclass(slots=True)
class PlacedOrder:
    """An order as flash_place() inserted it: Order's columns, its lines, no adjustments. What
    `place_order` answers is the ORM object; this is what the serializers and OrderPlaced's
    handlers read of it, with the same attributes."""

    id: int
    merchant_id: int
    member_id: int
    order_no: str
    kind: str
    reference: str | None
    status: str
    fulfilment: str
    goods_total: int
    shipping_fee: int
    discount_total: int
    payable_total: int
    paid_total: int
    refunded_total: int
    address: dict[str, str]
    pickup_point_id: int | None
    pickup_code: str | None
    remark: str
    expires_at: datetime
    transaction_id: str | None
    prepay_id: str | None
    paid_at: datetime | None
    carrier: str | None
    tracking_no: str | None
    shipped_at: datetime | None
    ready_at: datetime | None
    received_at: datetime | None
    after_sales_until: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    provider_closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: list[PlacedLine]
    adjustments: list[Any]


def _order_of(
    row: _Row,
    merchant_id: int,
    member_id: int,
    offer_id: int,
    quantity: int,
    address: Mapping[str, str],
    remark: str,
    order_no: str,
) -> PlacedOrder:
    """The order the function inserted, with the rows' values `place_order`'s ORM object holds
    (not in any session: it is only serialized and announced)."""
    r = row
    goods_total = r.goods_total
    line = PlacedLine(
        id=r.line_id,
        order_id=r.order_id,
        merchant_id=merchant_id,
        order_kind=GOODS,
        sku_id=r.sku_id,
        product_id=r.product_id,
        title=r.title,
        specs=r.specs,
        image=r.image,
        unit_price=r.unit_price,
        quantity=quantity,
        goods_amount=goods_total,
        discount=0,
        paid_amount=goods_total,
        refunded_quantity=0,
        refunded_amount=0,
        description="",
        offer_kind=FLASH_SALE,
        offer_id=offer_id,
    )
    return PlacedOrder(
        id=r.order_id,
        merchant_id=merchant_id,
        member_id=member_id,
        order_no=order_no,
        kind=GOODS,
        reference=None,
        status=OrderStatus.PENDING_PAYMENT.value,
        fulfilment="delivery",
        goods_total=goods_total,
        shipping_fee=r.shipping_fee,
        discount_total=0,
        payable_total=goods_total + r.shipping_fee,
        paid_total=0,
        refunded_total=0,
        address=dict(address),
        pickup_point_id=None,
        pickup_code=None,
        remark=remark,
        expires_at=r.expires_at,
        transaction_id=None,
        prepay_id=None,
        paid_at=None,
        carrier=None,
        tracking_no=None,
        shipped_at=None,
        ready_at=None,
        received_at=None,
        after_sales_until=None,
        completed_at=None,
        cancelled_at=None,
        cancel_reason=None,
        provider_closed_at=None,
        created_at=r.created_at,
        updated_at=r.created_at,
        lines=[line],
        adjustments=[],
    )
