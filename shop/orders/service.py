"""Carts, order placement, cancellation and expiry, and the order state machine.

Stock is reserved in SQL with a guard (`stock >= :q`) backed by `CHECK (stock >= 0)`, in SKU id
order, in the same transaction that creates the order. Every change of an order's status goes
through `transition`, an action on the order machine (shop.orders.states), which refuses an
illegal move in one place and tells a harmless repeat from it. Rows are locked in the
order `shop.core.locking` writes down.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm.attributes import set_committed_value

from shop.catalog.service import move_stock, record_sales
from shop.checkout import pricing
from shop.checkout.cart import cart_items
from shop.checkout.models import CartItem
from shop.core.db import Direct, db, insert_as_loaded, new_row, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound, Superseded
from shop.core.events import AdjustmentInfo, OrderCancelled, OrderCompleted, OrderLineInfo, OrderPaid, OrderPlaced, bus
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.core.runner import enqueue
from shop.orders.models import GOODS, IdempotencyKey, Order, OrderAdjustment, OrderLine, Payment
from shop.orders.states import OrderAction, OrderStatus, machine_for

# The time each status is stamped with when an order enters it.
_STAMPS = {
    OrderStatus.PAID: "paid_at",
    OrderStatus.SHIPPED: "shipped_at",
    OrderStatus.READY_FOR_PICKUP: "ready_at",
    OrderStatus.RECEIVED: "received_at",
    OrderStatus.COMPLETED: "completed_at",
    OrderStatus.CANCELLED: "cancelled_at",
}


def transition(order: Order, action: OrderAction, *, now: datetime | None = None, **fields: Any) -> bool:
    """Take `action` on a (locked) order as its kind's machine says: True when it moved (the new
    status stamped with its time, `fields` set); False for a harmless repeat, which changes
    nothing; an illegal move raises the machine's one Conflict (409 `illegal_transition`)."""
    step = machine_for(order.kind).step(order.status, action)
    if not step.moved:
        return False
    if step.to != order.status:
        order.status = step.to.value
        stamp = _STAMPS.get(step.to)
        if stamp:
            setattr(order, stamp, now or utcnow())
    for name, value in fields.items():
        setattr(order, name, value)
    db.session.flush()
    return True


def get_order(merchant_id: int, order_id: int, *, member_id: int | None = None) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or order.merchant_id != merchant_id or (member_id is not None and order.member_id != member_id):
        raise NotFound("order not found")
    return order


# --- placing an order ---------------------------------------------------------------------------

# Jobs this module asks for (by name: shop.core.runner); payments runs them. An unpaid order asks
# for no job to expire it: its `expires_at` is the timer, read by payments' expiry sweep every
# few seconds (shop/payments/jobs.py), so placing an order sends nothing to Redis.
CLOSE_PAYMENT_JOB = "payments.close_payment"


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool


def request_fingerprint(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def new_order_no(merchant_id: int, now: datetime) -> str:
    """A valid WeChat `out_trade_no` (6-32 of [0-9A-Za-z]): time, merchant, then randomness."""
    return f"{now:%y%m%d%H%M%S}{merchant_id % 10000:04d}{secrets.randbelow(10**10):010d}"


@dataclass(frozen=True)
class KeyClaim:
    """What claiming an Idempotency-Key found: a new key, now ours, with the id its order must
    take (`order_id`); or a replay, with the order the key placed before (`earlier`)."""

    order_id: int
    earlier: Order | None = None


_keys = IdempotencyKey.__table__
# Built once, run directly with parameters (building a statement costs more than sending it).
_CLAIM_KEY = Direct(
    insert(_keys)
    .values(
        merchant_id=bindparam("p_merchant"),
        member_id=bindparam("p_member"),
        key=bindparam("p_key"),
        request_hash=bindparam("p_hash"),
        created_at=bindparam("p_at"),
        order_id=func.nextval(func.pg_get_serial_sequence("orders", "id")),
    )
    .on_conflict_do_nothing(index_elements=["merchant_id", "member_id", "key"])
    .returning(_keys.c.order_id)
)


def claim_idempotency_key(merchant_id: int, member_id: int, key: str, fingerprint: str) -> KeyClaim:
    """Claim the key for a new order, reserving that order's id in the same statement (so the
    key never needs updating once the order is in); or find the order it placed before.

    A concurrent request with the same key blocks on the unique index until ours commits, then
    sees our row; if ours rolled back, it claims the key itself. The key's foreign key to the
    order is checked at commit (it is deferred): the order is inserted later in this transaction.
    """
    claimed = _CLAIM_KEY.execute(
        {"p_merchant": merchant_id, "p_member": member_id, "p_key": key, "p_hash": fingerprint, "p_at": utcnow()}
    )
    if claimed:
        return KeyClaim(order_id=claimed[0][0])
    existing = db.session.execute(
        select(IdempotencyKey).where(
            IdempotencyKey.merchant_id == merchant_id, IdempotencyKey.member_id == member_id, IdempotencyKey.key == key
        )
    ).scalar_one()
    if existing.request_hash != fingerprint:
        raise Conflict(
            "this Idempotency-Key was used with a different request",
            code="idempotency_key_reused",
            details={"header": "Idempotency-Key"},
        )
    earlier = db.session.get(Order, existing.order_id)
    if earlier is None:  # cannot be: a committed key names a committed order (its foreign key)
        raise NotFound("the order of this Idempotency-Key is gone")
    return KeyClaim(order_id=earlier.id, earlier=earlier)


class StockLine(Protocol):
    sku_id: int
    quantity: int
    title: str


_KEY_USED = Direct(
    select(_keys.c.order_id).where(
        _keys.c.merchant_id == bindparam("p_merchant"),
        _keys.c.member_id == bindparam("p_member"),
        _keys.c.key == bindparam("p_key"),
    )
)


def placed_with_key(merchant_id: int, member_id: int, key: str, *, connection: Connection | None = None) -> bool:
    """Has this Idempotency-Key of the member placed an order already (a retry to answer)? Asked
    in the session's transaction, or on `connection` (`statement_of_its_own`: one round trip)."""
    params = {"p_merchant": merchant_id, "p_member": member_id, "p_key": key}
    return bool(_KEY_USED.execute(params, connection=connection))


def forget_order_key(order_id: int) -> None:
    """The order's Idempotency-Key no longer answers with it: a retry with the key places anew.
    For an order refused after its commit (a one-round-trip flash placement an OrderPlaced
    handler vetoed: cancelled, not rolled back)."""
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.order_id == order_id))


def check_stock(lines: Sequence[pricing.PricedLine]) -> None:
    """Refuse at once what the stock read with the prices cannot cover (a sold-out SKU refuses
    placements without writing an order first). A hint only: `reserve_stock`'s guarded UPDATE
    decides. Lines of an offer whose kind keeps its own units are not the SKU's to check."""
    wanted: dict[int, int] = {}
    lines = [line for line in lines if line.offer is None or line.offer.kind not in _keepers]
    for line in lines:
        wanted[line.sku_id] = wanted.get(line.sku_id, 0) + line.quantity
    for line in sorted(lines, key=lambda item: item.sku_id):
        if line.stock is not None and line.stock < wanted[line.sku_id]:
            raise _not_enough_stock(line)


def _not_enough_stock(line: StockLine) -> Conflict:
    return Conflict("not enough stock", code="insufficient_stock", details={"sku_id": line.sku_id, "title": line.title})


def reserve_stock(merchant_id: int, lines: Sequence[StockLine], *, reason: str) -> None:
    """Take each line's quantity off its SKU, in SKU id order (so concurrent orders lock rows in the
    same order), or fail the whole order."""
    for line in sorted(lines, key=lambda item: item.sku_id):
        if move_stock(merchant_id, line.sku_id, -line.quantity, reason=reason, only_active=True) is None:
            raise _not_enough_stock(line)


def release_stock(merchant_id: int, items: Sequence[tuple[int, int]], *, reason: str) -> None:
    """Give (sku_id, quantity) back, in SKU id order."""
    for sku_id, quantity in sorted(items):
        if quantity > 0 and move_stock(merchant_id, sku_id, quantity, reason=reason) is None:
            raise Conflict("the stock cannot take that much back", code="stock_limit", details={"sku_id": sku_id})


# --- offers' say on their orders (a door: shop.offers keeps them) --------------------------------


class OfferKeeper(Protocol):
    """What an offer kind (shop.offers: a flash sale, a group buy) says about the orders bought at
    it. Registered per kind; an offer kind with no keeper sells the SKU's own stock and has no
    say on payment or fulfilment.

    - `take` runs at placement, after the order's rows are inserted and before any SKU is
      reserved: the lines take units the offer set aside, not `skus.stock`; it refuses with a
      domain error (409) and the placement rolls back.
    - `give_back` gets (line, quantity) pairs of the locked order being cancelled, expired or
      restocked by a refund; it never raises for a business reason.
    - `payment_hold` says why the unpaid order cannot be paid now (409, e.g. the group it would
      open or join has closed), or None: asked before a payment is started, so no money is taken
      that would only be sent back. A hint: `accept_payment` decides.
    - `accept_payment` runs when a payment arrives for the locked, unpaid order, before it is
      marked paid: it claims what the payment needs (a group's seat) or returns False (the group
      is full or closed): the order is then cancelled and the payment refunded, as a late one.
    - `fulfilment_hold` says why the locked, paid order must not be shipped or made ready for
      pickup yet (409, e.g. `group_forming`), or None; `refund_hold` why it must not be refunded
      now by a member's request or staff (a group still forming refunds itself if it fails)."""

    kind: str

    def take(self, order: Order, lines: Sequence[OrderLine]) -> None: ...

    def give_back(self, order: Order, units: Sequence[tuple[OrderLine, int]]) -> None: ...

    def payment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None: ...

    def accept_payment(self, order: Order, lines: Sequence[OrderLine]) -> bool: ...

    def fulfilment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None: ...

    def refund_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None: ...


_keepers: dict[str, OfferKeeper] = {}


def register_offer_keeper(keeper: OfferKeeper) -> None:
    """Idempotent: the keeper of a kind registered again replaces the earlier one."""
    _keepers[keeper.kind] = keeper


def unregister_offer_keeper(kind: str) -> None:
    _keepers.pop(kind, None)


def _offer_lines(order: Order) -> dict[str, list[OrderLine]]:
    """The order's lines bought at an offer whose kind has a keeper, by kind (in kind order)."""
    by_kind: dict[str, list[OrderLine]] = {}
    for line in order.lines:
        if _keeper(line) is not None:
            by_kind.setdefault(line.offer_kind, []).append(line)
    return dict(sorted(by_kind.items()))


def offers_accept_payment(order: Order) -> bool:
    """Do the offers of the (locked, unpaid) order accept its payment (`accept_payment`)?"""
    return all(_keepers[kind].accept_payment(order, lines) for kind, lines in _offer_lines(order).items())


def payment_hold(order: Order) -> Conflict | None:
    """Why an offer of the unpaid order refuses to have it paid now, if one does."""
    return _first_hold(order, lambda keeper, lines: keeper.payment_hold(order, lines))


def fulfilment_hold(order: Order) -> Conflict | None:
    """Why an offer holds the (locked, paid) order back from fulfilment, if one does."""
    return _first_hold(order, lambda keeper, lines: keeper.fulfilment_hold(order, lines))


def refund_hold(order: Order) -> Conflict | None:
    """Why an offer holds the (locked) order back from a member's or staff's refund, if one does."""
    return _first_hold(order, lambda keeper, lines: keeper.refund_hold(order, lines))


def _first_hold(order: Order, ask: Callable[[OfferKeeper, Sequence[OrderLine]], Conflict | None]) -> Conflict | None:
    for kind, lines in _offer_lines(order).items():
        held = ask(_keepers[kind], lines)
        if held is not None:
            return held
    return None


def _keeper(line: OrderLine) -> OfferKeeper | None:
    return _keepers.get(line.offer_kind) if line.offer_kind else None


def take_stock(merchant_id: int, order: Order, lines: Sequence[OrderLine], *, reason: str) -> None:
    """Reserve what the order's lines need: offer lines from their offers' keepers, first (in
    kind order), then the other lines from their SKUs (`reserve_stock`)."""
    by_kind: dict[str, list[OrderLine]] = {}
    plain: list[OrderLine] = []
    for line in lines:
        if _keeper(line) is not None:
            by_kind.setdefault(line.offer_kind, []).append(line)
        else:
            plain.append(line)
    for kind in sorted(by_kind):
        _keepers[kind].take(order, by_kind[kind])
    reserve_stock(merchant_id, plain, reason=reason)


def give_back_stock(order: Order, units: Sequence[tuple[OrderLine, int]], *, reason: str) -> None:
    """Give (line, quantity) of a locked order back where they came from: an offer's units to its
    keeper (in kind order), the rest to the SKUs (`release_stock`)."""
    by_kind: dict[str, list[tuple[OrderLine, int]]] = {}
    plain: list[tuple[int, int]] = []
    for line, quantity in units:
        if quantity <= 0:
            continue
        if _keeper(line) is not None:
            by_kind.setdefault(line.offer_kind, []).append((line, quantity))
        else:
            plain.append((line.sku_id, quantity))
    for kind in sorted(by_kind):
        _keepers[kind].give_back(order, by_kind[kind])
    release_stock(order.merchant_id, plain, reason=reason)


PLACEMENT_ATTEMPTS = 3


def in_turn(place: Callable[[], Placed], *, chosen_by_server: bool) -> Placed:
    """Run `place` (a placement in a transaction of its own) again when what the server chose for
    it, such as the coupons, was taken by a placement of the same member's at the same time
    (`Superseded`): the answer it would have got had they come one after the other. Only for a
    request that left the choice to the server; up to PLACEMENT_ATTEMPTS (the second attempt
    waits for the other placement to end, the third sees what it took)."""
    for attempt in range(1, PLACEMENT_ATTEMPTS + 1):
        try:
            return place()
        except Superseded:
            if not chosen_by_server or attempt == PLACEMENT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def place_order(
    merchant_id: int,
    member_id: int,
    *,
    items: Sequence[Mapping[str, int]] | None,
    from_cart: bool = False,
    fulfilment: str,
    address: Mapping[str, str] | None = None,
    pickup_point_id: int | None = None,
    remark: str = "",
    selections: Mapping[str, Any] | None = None,
    idempotency_key: str,
    fingerprint: str,
    now: datetime | None = None,
) -> Placed:
    now = now or utcnow()
    claim = claim_idempotency_key(merchant_id, member_id, idempotency_key, fingerprint)
    if claim.earlier is not None:
        return Placed(order=claim.earlier, replayed=True)
    if fulfilment == "delivery" and not address:
        raise InvalidInput(
            "a delivery needs an address",
            code="address_required",
            details={"fields": {"address": ["required for delivery"]}},
        )
    if fulfilment == "pickup":
        pricing.check_pickup_point(merchant_id, pickup_point_id)
    wanted = cart_items(merchant_id, member_id) if from_cart else list(items or [])
    # The merchant's settings (shipping fee, expiry) are read with the SKUs, in pricing's query.
    quote = pricing.quote(
        merchant_id,
        member_id,
        wanted,
        fulfilment=fulfilment,
        selections=selections,
        purpose="placement",
        now=now,
    )
    settings = quote.settings
    assert settings is not None  # pricing reads them with the SKUs
    check_stock(quote.lines)
    order = new_row(
        Order,
        id=claim.order_id,
        merchant_id=merchant_id,
        member_id=member_id,
        order_no=new_order_no(merchant_id, now),
        kind=GOODS,
        status=OrderStatus.PENDING_PAYMENT.value,
        fulfilment=fulfilment,
        goods_total=quote.goods_total,
        shipping_fee=quote.shipping_fee,
        discount_total=quote.discount_total,
        payable_total=quote.payable_total,
        address=dict(address) if fulfilment == "delivery" and address else None,
        pickup_point_id=pickup_point_id if fulfilment == "pickup" else None,
        pickup_code=f"{secrets.randbelow(10**8):08d}" if fulfilment == "pickup" else None,
        remark=remark,
        expires_at=now + timedelta(minutes=_minutes_to_pay(settings.order_ttl_minutes, quote.lines)),
        created_at=now,
    )
    lines = [
        new_row(
            OrderLine,
            order_id=order.id,
            merchant_id=merchant_id,
            order_kind=GOODS,
            sku_id=line.sku_id,
            product_id=line.product_id,
            title=line.title,
            specs=line.specs,
            image=line.image,
            unit_price=line.unit_price,
            quantity=line.quantity,
            goods_amount=line.goods_amount,
            discount=line.discount,
            paid_amount=line.paid_amount,
            offer_kind=line.offer.kind if line.offer else None,
            offer_id=line.offer.id if line.offer else None,
        )
        for line in quote.lines
    ]
    adjustments = [
        new_row(
            OrderAdjustment,
            order_id=order.id,
            merchant_id=merchant_id,
            source=a.source,
            reference=a.reference,
            description=a.description,
            kind=a.kind,
            amount=a.amount,
        )
        for a in quote.adjustments
    ]
    # The order, its lines and adjustments: one statement, no unit of work.
    insert_as_loaded([order], lines, adjustments)
    set_committed_value(order, "lines", lines)
    set_committed_value(order, "adjustments", adjustments)
    # The stock after the order's rows (which nobody else sees yet): a SKU's row lock is then held
    # only from its UPDATE to the commit, so placements of one hot SKU wait on each other less.
    # Not enough stock rolls the order's rows back with everything else.
    take_stock(merchant_id, order, lines, reason="order_reserved")
    if from_cart:
        db.session.execute(
            delete(CartItem).where(
                CartItem.member_id == member_id, CartItem.sku_id.in_([line.sku_id for line in quote.lines])
            )
        )
    announce_placed(order)
    if order.payable_total == 0:
        settle_free_order(order)
    return Placed(order=order, replayed=False)


def _minutes_to_pay(usual: int, lines: Sequence[pricing.PricedLine]) -> int:
    """The merchant's usual time to pay, or an offer's shorter one (a flash sale's)."""
    offered = [line.offer.pay_within for line in lines if line.offer is not None and line.offer.pay_within]
    return min([usual, *offered])


def announce_placed(order: Order) -> None:
    """Publish OrderPlaced for a new order (flushed, not yet paid): its handlers may veto, and
    their error rolls the placement back."""
    bus.publish(_placed_event(order))


def complete_order(order: Order, now: datetime) -> None:
    """The (locked) order is final: completed, and OrderCompleted published with what stays paid
    (net of refunds). Goods orders by fulfilment's finalize; the other kinds by their owner."""
    transition(order, OrderAction.COMPLETE, now=now)
    bus.publish(
        OrderCompleted(
            merchant_id=order.merchant_id,
            order_id=order.id,
            member_id=order.member_id,
            kind=order.kind,
            lines=_line_infos(order, net_of_refunds=True),
        )
    )


def cancel_order(
    order_id: int,
    *,
    reason: str,
    merchant_id: int | None = None,
    member_id: int | None = None,
    now: datetime | None = None,
) -> Order:
    """Cancel an unpaid order: stock back exactly once, and the payment closed at the provider.

    With reason "expired" it is a no-op unless the order is unpaid and past its expiry, so the
    expiry sweep, a second sweep and a retry can all call it safely.
    """
    now = now or utcnow()
    order = lock_order(order_id, merchant_id=merchant_id, member_id=member_id)
    expiring = reason == "expired"
    if expiring and order.expires_at > now:
        return order  # not yet due
    if not transition(order, OrderAction.EXPIRE if expiring else OrderAction.CANCEL, now=now, cancel_reason=reason):
        return order  # an expiry after the order was paid or cancelled: a harmless repeat
    if order.kind == GOODS:  # the other kinds took no stock
        give_back_stock(order, [(line, line.quantity) for line in order.lines], reason="order_released")
    bus.publish(
        OrderCancelled(
            merchant_id=order.merchant_id,
            order_id=order.id,
            member_id=order.member_id,
            kind=order.kind,
            reason=reason,
        )
    )
    enqueue(CLOSE_PAYMENT_JOB, order.id, job_id=f"close-payment-{order.id}")
    return order


def mark_provider_closed(order_id: int, now: datetime | None = None) -> bool:
    """Record that the provider's side of a cancelled order is settled (closed there, or the
    payment found there handled); False when it was already recorded."""
    return bool(
        db.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.CANCELLED, Order.provider_closed_at.is_(None))
            .values(provider_closed_at=now or utcnow())
        ).rowcount
    )


def purge_idempotency_keys(older_than: timedelta = timedelta(days=2), now: datetime | None = None) -> int:
    """Keys are kept at least 24 hours; older ones go."""
    return db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < (now or utcnow()) - older_than)
    ).rowcount


# --- lists --------------------------------------------------------------------------------------


def order_page(
    merchant_id: int,
    *,
    member_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    query = select(Order).where(Order.merchant_id == merchant_id)
    if member_id is not None:
        query = query.where(Order.member_id == member_id)
    if status:
        query = query.where(Order.status == status)
    if kind:
        query = query.where(Order.kind == kind)
    if q:
        query = query.where(Order.order_no.startswith(q, autoescape=True) | (Order.tracking_no == q))
    if created_from:
        query = query.where(Order.created_at >= created_from)
    if created_to:
        query = query.where(Order.created_at < created_to)
    return keyset_page(query, [Order.id], cursor=cursor, limit=limit)


def lock_order(order_id: int, *, merchant_id: int | None = None, member_id: int | None = None) -> Order:
    """The order, locked for the rest of the transaction; 404 unless it is the caller's."""
    order = db.session.execute(locked(select(Order).where(Order.id == order_id))).scalar_one_or_none()
    if (
        order is None
        or (merchant_id is not None and order.merchant_id != merchant_id)
        or (member_id is not None and order.member_id != member_id)
    ):
        raise NotFound("order not found")
    return order


def mark_paid(order: Order, amount: int, transaction_id: str) -> None:
    """The (locked, unpaid) order is paid: count the sales and tell the subscribers. On an order
    already paid (a harmless repeat) nothing happens."""
    if not transition(order, OrderAction.PAY, paid_total=amount, transaction_id=transaction_id):
        return
    if order.kind == GOODS:  # the other kinds sell no product
        sold: dict[int, int] = {}
        for line in order.lines:
            sold[line.product_id] = sold.get(line.product_id, 0) + line.quantity
        record_sales(sold)
    bus.publish(
        OrderPaid(
            merchant_id=order.merchant_id,
            order_id=order.id,
            member_id=order.member_id,
            kind=order.kind,
            paid_total=amount,
            lines=_line_infos(order),
            reference=order.reference,
        )
    )


def _line_infos(order: Order, *, net_of_refunds: bool = False) -> tuple[OrderLineInfo, ...]:
    """The order's lines as events carry them; `net_of_refunds`: what stays bought and paid."""
    return tuple(
        OrderLineInfo(
            line_id=line.id,
            sku_id=line.sku_id,
            product_id=line.product_id,
            quantity=line.quantity - (line.refunded_quantity if net_of_refunds else 0),
            paid_amount=line.paid_amount - (line.refunded_amount if net_of_refunds else 0),
        )
        for line in order.lines
    )


def _placed_event(order: Order) -> OrderPlaced:
    return OrderPlaced(
        merchant_id=order.merchant_id,
        order_id=order.id,
        member_id=order.member_id,
        kind=order.kind,
        order_no=order.order_no,
        goods_total=order.goods_total,
        discount_total=order.discount_total,
        shipping_fee=order.shipping_fee,
        payable_total=order.payable_total,
        lines=_line_infos(order),
        adjustments=tuple(
            AdjustmentInfo(source=a.source, reference=a.reference, kind=a.kind, amount=a.amount)
            for a in order.adjustments
        ),
    )


def settle_free_order(order: Order) -> None:
    """An order that costs nothing (discounts cover it all) is paid at once: WeChat Pay cannot
    take 0 fen. It is recorded as a payment like any other, so reports and refunds see it."""
    transaction_id = f"FREE-{order.order_no}"
    db.session.add(
        Payment(
            merchant_id=order.merchant_id,
            order_id=order.id,
            provider="free",
            transaction_id=transaction_id,
            amount=0,
            outcome="applied",
        )
    )
    mark_paid(order, 0, transaction_id)
