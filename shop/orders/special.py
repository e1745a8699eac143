"""Orders that are not goods: a campaign's prize upgrade, a stored-value top-up (`ORDER_KINDS`).

Their owner packages (coupons: campaigns, stored value) build them through this door and nothing
else: `place_special_order` makes an unpaid order whose lines name no SKU (a title, a description,
an amount), with no fulfilment, stock, shipping, sales count or pricing adjusters. It is then paid
like any order (`POST /api/v1/orders/{id}/pay`, the provider's notification, expiry, refunds by the
provider path); `order_paid` (and every other order event) carries its `kind` and `reference`, so
the owner package knows it is one of its own. The owner finishes it with `complete_special_order`
(e.g. when the upgraded prize is redeemed); completed, it can no longer be refunded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput
from shop.identity.settings import merchant_settings
from shop.orders.models import GOODS, ORDER_KINDS, Order, OrderLine
from shop.orders.refunds import open_refund
from shop.orders.service import (
    Placed,
    announce_placed,
    claim_idempotency_key,
    complete_order,
    lock_order,
    new_order_no,
    request_fingerprint,
)
from shop.orders.states import OrderStatus

SPECIAL_KINDS = tuple(kind for kind in ORDER_KINDS if kind != GOODS)
MAX_SPECIAL_LINES = 20
MAX_LINE_AMOUNT = 10**9  # fen: ten million yuan, far above any top-up or upgrade


@dataclass(frozen=True)
class SpecialLine:
    """One line of a non-goods order: what the member pays `amount` (fen, at least 1) for."""

    title: str
    amount: int
    description: str = ""


def _check_lines(lines: Sequence[SpecialLine]) -> None:
    problems: dict[str, list[str]] = {}
    if not lines:
        problems["lines"] = ["at least one line"]
    elif len(lines) > MAX_SPECIAL_LINES:
        problems["lines"] = [f"at most {MAX_SPECIAL_LINES} lines"]
    for index, line in enumerate(lines):
        if not line.title or len(line.title) > 120:
            problems[f"lines.{index}.title"] = ["1-120 characters"]
        if len(line.description) > 200:
            problems[f"lines.{index}.description"] = ["at most 200 characters"]
        if not isinstance(line.amount, int) or isinstance(line.amount, bool) or not 1 <= line.amount <= MAX_LINE_AMOUNT:
            problems[f"lines.{index}.amount"] = [f"whole fen from 1 to {MAX_LINE_AMOUNT}"]
    if problems:
        raise InvalidInput(
            "these order lines cannot be placed", code="invalid_special_order", details={"fields": problems}
        )


def place_special_order(
    merchant_id: int,
    member_id: int,
    kind: str,
    lines: Sequence[SpecialLine],
    *,
    idempotency_key: str,
    reference: str | None = None,
    fingerprint: str | None = None,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> Placed:
    """Place an unpaid order of `kind` (not goods) for `lines`; it expires after `ttl` (the
    merchant's order TTL by default) unless paid, like any order.

    `idempotency_key` is the member's, shared with goods orders: the same key and request answer
    the first order (`replayed`), another request with it is 409 `idempotency_key_reused`. The
    request is `fingerprint` when given (the owner's own request body), else kind, reference and
    lines. `reference` (at most 64 characters) names the owner's object (e.g. "prize:42"); it comes
    back on the order and in its events. Nothing here locks anything but the new rows.
    """
    if kind not in SPECIAL_KINDS:
        raise ValueError(f"{kind!r} is not a kind of special order ({', '.join(SPECIAL_KINDS)})")
    if reference is not None and len(reference) > 64:
        raise ValueError("a reference is at most 64 characters")
    _check_lines(lines)
    now = now or utcnow()
    fingerprint = fingerprint or request_fingerprint(
        {
            "kind": kind,
            "reference": reference,
            "lines": [{"title": ln.title, "amount": ln.amount, "description": ln.description} for ln in lines],
        }
    )
    claim = claim_idempotency_key(merchant_id, member_id, idempotency_key, fingerprint)
    if claim.earlier is not None:
        return Placed(order=claim.earlier, replayed=True)
    if ttl is None:
        ttl = timedelta(minutes=merchant_settings(merchant_id).order_ttl_minutes)
    total = sum(line.amount for line in lines)
    order = Order(
        id=claim.order_id,
        merchant_id=merchant_id,
        member_id=member_id,
        order_no=new_order_no(merchant_id, now),
        kind=kind,
        reference=reference,
        status=OrderStatus.PENDING_PAYMENT.value,
        fulfilment="none",
        goods_total=total,
        shipping_fee=0,
        discount_total=0,
        payable_total=total,
        expires_at=now + ttl,
        created_at=now,
    )
    order.lines = [
        OrderLine(
            merchant_id=merchant_id,
            order_kind=kind,
            sku_id=None,
            product_id=None,
            title=line.title,
            description=line.description,
            specs={},
            image="",
            unit_price=line.amount,
            quantity=1,
            goods_amount=line.amount,
            discount=0,
            paid_amount=line.amount,
        )
        for line in lines
    ]
    db.session.add(order)
    db.session.flush()
    announce_placed(order)  # its handlers may veto: their error rolls the placement back
    return Placed(order=order, replayed=False)


def complete_special_order(
    merchant_id: int, order_id: int, *, kind: str | None = None, now: datetime | None = None
) -> Order:
    """The owner package has delivered what the (paid) order bought: it is completed, for good
    (no refund after this), and `order_completed` fires with its kind. Completing it again is a
    harmless repeat (the order as it is). `kind`, when given, must be the order's (an owner
    completes only its own kind): else 409 `wrong_kind`, as for a goods order. An unpaid, cancelled
    or refunded order is 409 `illegal_transition`; one with a refund being decided or paid, 409
    `refund_in_progress`."""
    order = lock_order(order_id, merchant_id=merchant_id)
    if order.kind == GOODS or (kind is not None and order.kind != kind):
        raise Conflict(
            "this order is not of that kind",
            code="wrong_kind",
            details={"kind": order.kind, "expected": kind or "a non-goods kind"},
        )
    if order.status == OrderStatus.COMPLETED:
        return order
    if open_refund(order.id):
        raise Conflict("a refund of this order is in progress", code="refund_in_progress")
    complete_order(order, now or utcnow())
    return order
