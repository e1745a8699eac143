"""Shop events: the door through which feature packages (`coupons`, `distribution`, later the
group-buy package) react to what happens in `shop` without `shop` importing them.

Each event is a frozen dataclass whose fields are plain values (ints, strs, bools and tuples of
small frozen line dataclasses), never ORM objects: a handler learns what happened and reads or
writes through services, it cannot reach around them through a shared object.

    bus.subscribe(OrderPaid, on_order_paid)      # on_order_paid(event: OrderPaid) -> None
    bus.publish(OrderPaid(merchant_id=..., ...))

Subscribing is idempotent (the same handler twice is called once), so a package's `install()`
may run again; an event type not declared here is refused at subscribe (a typo must not become a
handler that never runs).

Handlers run synchronously, in the order they subscribed, inside the transaction of the change
that published the event, after the shop's own row locks (shop.core.locking), so their writes
commit or roll back with it. Work that must happen later is enqueued by the handler with
`shop.core.runner.enqueue`, which waits for the commit.

The rule for errors:

- Only `OrderPlaced` handlers may veto (`VETO_EVENTS`). A DomainError an OrderPlaced handler
  raises propagates: the placement rolls back (the order, its stock, its idempotency key) and the
  caller answers with that error's 4xx. Use it for "this coupon was used meanwhile".
- Every other handler must not raise for a business condition: the change it reacts to has
  happened (a payment WeChat Pay took, a refund it made) and must be recorded whatever a
  subscriber thinks. Each such handler runs in a SAVEPOINT of its own. A DomainError from it is a
  programming error of its package: it is logged (ERROR, with the handler's name and the event),
  only that handler's writes (and the jobs it enqueued) are rolled back, and the other handlers
  and the change go on. Any
  other exception (a bug, a lost database connection) still propagates and aborts the whole
  transaction, as before, so the caller's retry (a notification, a job) tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shop.core.db import db, pending_after_commit
from shop.core.errors import DomainError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; publish a subclass."""


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], None]


# --- lines carried by order events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderLineInfo:
    """One order line as order events carry it.

    line_id: the order line; sku_id / product_id: what was bought (None on a line of a non-goods
    order, which names no SKU); quantity: units; paid_amount: fen paid for them after discounts,
    without shipping (on OrderCompleted: net of what was refunded, and quantity likewise)."""

    line_id: int
    sku_id: int | None
    product_id: int | None
    quantity: int
    paid_amount: int


@dataclass(frozen=True, slots=True)
class AdjustmentInfo:
    """A price adjustment applied to a placed order: source is the adjuster's name, reference its
    own id for what it applied (e.g. the wallet coupon), kind "goods" or "shipping", amount fen off."""

    source: str
    reference: str
    kind: str
    amount: int


@dataclass(frozen=True, slots=True)
class RefundedLineInfo:
    """One line of a refund: the order line, the units and the fen refunded for it."""

    line_id: int
    quantity: int
    amount: int


# --- members -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberJoined(Event):
    """A member logged in for the first time at a merchant (the member row was just created).

    merchant_id, member_id; channel: where they came from ("" when unknown)."""

    merchant_id: int
    member_id: int
    channel: str


@dataclass(frozen=True, slots=True)
class InviterRecorded(Event):
    """A member's first-touch inviter was recorded (members.invited_by_id set, once, never
    changed). Published by the invites module (issue 12 item 5).

    merchant_id, member_id: the member; inviter_id: the member who invited them."""

    merchant_id: int
    member_id: int
    inviter_id: int


@dataclass(frozen=True, slots=True)
class MemberBound(Event):
    """A member was bound to a distributor (锁粉) by the program's binding rule, or moved from one
    to another. Published by distribution (its `member_invited` subscriber).

    merchant_id, member_id: the member now bound; distributor_member_id: the distributor (a
    member) they are bound to; previous_id: the distributor they were bound to before, or None."""

    merchant_id: int
    member_id: int
    distributor_member_id: int
    previous_id: int | None


@dataclass(frozen=True, slots=True)
class MemberInvited(Event):
    """A member arrived through another member's invite (at login with `invite`, or opening an
    invite link while logged in). Self-invites and other merchants' codes are never published.
    Published by the invites module (issue 12 item 5); referral rewards and binding react to it.

    merchant_id; member_id: who arrived; inviter_id: whose invite it was; new_member: True when
    this arrival created the member (their first login), False for an existing member."""

    merchant_id: int
    member_id: int
    inviter_id: int
    new_member: bool


# --- orders ------------------------------------------------------------------------------------
# Every order event carries `kind`: "goods" (today's orders), "prize_upgrade" or "top_up".


@dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    """An order was placed (flushed, stock reserved), before a free order is settled and before
    anything is enqueued. The only event whose handlers may veto: a DomainError rolls the
    placement back and is the caller's answer.

    merchant_id, order_id, member_id, kind; order_no; goods_total, discount_total,
    shipping_fee, payable_total: the order's totals in fen; lines: OrderLineInfo per line
    (paid_amount after discounts); adjustments: AdjustmentInfo per adjustment applied."""

    merchant_id: int
    order_id: int
    member_id: int
    kind: str
    order_no: str
    goods_total: int
    discount_total: int
    shipping_fee: int
    payable_total: int
    lines: tuple[OrderLineInfo, ...]
    adjustments: tuple[AdjustmentInfo, ...]


@dataclass(frozen=True, slots=True)
class OrderPaid(Event):
    """An order was paid (by the provider's notification, reconciliation, or at once when it
    costs nothing). A goods order's sales are counted already.

    merchant_id, order_id, member_id, kind; paid_total: fen paid (0 for a free order); lines:
    OrderLineInfo per line (paid_amount after discounts, without shipping: commissions use it);
    reference: what the owner package of a non-goods order gave `place_special_order` (its own
    record, e.g. a top-up package), None for goods."""

    merchant_id: int
    order_id: int
    member_id: int
    kind: str
    paid_total: int
    lines: tuple[OrderLineInfo, ...]
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    """An unpaid order was cancelled and its stock released.

    merchant_id, order_id, member_id, kind; reason: "expired", "member" or "merchant"."""

    merchant_id: int
    order_id: int
    member_id: int
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCompleted(Event):
    """An order's after-sales window closed: it is final (commissions settle on it).

    merchant_id, order_id, member_id, kind; lines: OrderLineInfo per line with what stays sold,
    net of refunds (quantity and paid_amount less the refunded ones)."""

    merchant_id: int
    order_id: int
    member_id: int
    kind: str
    lines: tuple[OrderLineInfo, ...]


@dataclass(frozen=True, slots=True)
class OrderRefunded(Event):
    """A refund of an order succeeded at the provider and was applied (stock, sales, amounts).

    merchant_id, order_id, member_id, kind; refund_id; amount: fen refunded by this refund;
    lines: RefundedLineInfo per line it covers; fully_refunded: every unit of the order is now
    refunded (the order is "refunded"); after_completion: the order was already completed (a
    staff after-sales exception); refund_kind: who started it ("member", later "staff" or
    "system")."""

    merchant_id: int
    order_id: int
    member_id: int
    kind: str
    refund_id: int
    amount: int
    lines: tuple[RefundedLineInfo, ...]
    fully_refunded: bool
    after_completion: bool = False
    refund_kind: str = "member"


# --- group buys (published by shop.offers) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupJoined(Event):
    """A member joined a group buy by paying their order (the leader too, opening it).
    Published by shop.offers in the payment's transaction.

    merchant_id, group_id, offer_id, product_id; member_id, order_id: the joiner and their
    order; leader: True for the member who opened the group; members: how many have joined now;
    size: how many the group needs."""

    merchant_id: int
    group_id: int
    offer_id: int
    product_id: int
    member_id: int
    order_id: int
    leader: bool
    members: int
    size: int


@dataclass(frozen=True, slots=True)
class GroupSucceeded(Event):
    """A group buy reached its size (or its time, completing short: 模拟成团): its orders go on
    to fulfilment. Published by shop.offers.

    merchant_id, group_id, offer_id, product_id; leader_id: the member who opened it (the
    initiator, 开团人); order_ids: the paid orders of the group, in joining order (the
    initiator's first); simulated: completed at its time short of its size (模拟成团), as the
    offer said it would; leader_commission_bp: the initiator's reward the offer names (basis
    points of what the group's other members paid), or None."""

    merchant_id: int
    group_id: int
    offer_id: int
    product_id: int
    leader_id: int
    order_ids: tuple[int, ...]
    simulated: bool = False
    leader_commission_bp: int | None = None


@dataclass(frozen=True, slots=True)
class GroupFailed(Event):
    """A group buy expired short of its size: its paid orders are refunded by the system.
    Published by shop.offers.

    merchant_id, group_id, offer_id, product_id; leader_id; order_ids: the paid orders to
    refund; reason: e.g. "expired"."""

    merchant_id: int
    group_id: int
    offer_id: int
    product_id: int
    leader_id: int
    order_ids: tuple[int, ...]
    reason: str


KNOWN_EVENTS: frozenset[type[Event]] = frozenset(
    {
        MemberJoined,
        InviterRecorded,
        MemberBound,
        MemberInvited,
        OrderPlaced,
        OrderPaid,
        OrderCancelled,
        OrderCompleted,
        OrderRefunded,
        GroupJoined,
        GroupSucceeded,
        GroupFailed,
    }
)
VETO_EVENTS: frozenset[type[Event]] = frozenset({OrderPlaced})


def handler_name(handler: Handler) -> str:
    module = getattr(handler, "__module__", None) or type(handler).__module__
    qualname = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{qualname}"


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call `handler(event)` for every published `event_type`; a second subscription of the
        same handler changes nothing. ValueError for a type that is not a declared event."""
        if event_type not in KNOWN_EVENTS:
            raise ValueError(f"unknown event type {event_type!r}")
        handlers = self._handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.get(event_type, [])
        if handler in handlers:
            handlers.remove(handler)

    def subscribed(self, event_type: type[E], handler: Callable[[E], None]) -> bool:
        return handler in self._handlers.get(event_type, [])

    def publish(self, event: Event) -> None:
        """Call every handler of the event's type, in subscription order (the rule for errors is
        in the module docstring)."""
        event_type = type(event)
        if event_type not in KNOWN_EVENTS:
            raise TypeError(f"{event_type!r} is not a declared event")
        handlers = list(self._handlers.get(event_type, ()))
        if event_type in VETO_EVENTS:
            for handler in handlers:
                handler(event)
            return
        for handler in handlers:
            pending = pending_after_commit()
            mark = len(pending)
            try:
                with db.session.begin_nested():
                    handler(event)
            except DomainError as error:
                del pending[mark:]  # the jobs it enqueued go with its writes
                log.error(
                    "event handler %s raised %s (%s) for %r: a programming error of its package "
                    "(only OrderPlaced handlers may refuse); its writes were rolled back, the change stands",
                    handler_name(handler),
                    type(error).__name__,
                    error.message,
                    event,
                    exc_info=error,
                )


bus = EventBus()
