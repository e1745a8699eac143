"""Group buys (拼团): a member opens a group with their order, shares it, and others join by
placing an order for it and paying; a seat counts once paid. A full group succeeds and its
orders go to fulfilment; until then they are held (409 `group_forming`). At its time (its time
limit after the initiator paid, or the offer's end, whichever comes first) a group still short
is completed anyway (模拟成团, when the offer says so, shown to members before they join) or
fails: its paid orders are refunded by the system (refund kind `group_failed`, the units back
to the offer).

Seats: a payment claims one in the payment's transaction, under the order's lock and then the
group's (shop.core.locking: order before group), with a guarded UPDATE of `groups.joined`. A
payment that finds the group full or closed is refused by `accept_payment`: the order is
cancelled (units back to the offer) and the money goes back as a late payment, with no
`order_paid`. Closing a group changes the group alone, under its lock; what it means for each
order (a refund, a cancellation of an unpaid one) is a job per order, in its own transaction,
found again by a sweep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update

from shop.checkout import pricing
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, NotFound
from shop.core.events import GroupFailed, GroupJoined, GroupSucceeded, OrderPaid, bus
from shop.core.locking import locked, xact_lock
from shop.core.masking import mask_name
from shop.core.pagination import Page, keyset_page
from shop.core.runner import enqueue
from shop.identity.models import Member
from shop.offers.models import (
    GROUP_BUY,
    GROUP_MACHINE,
    Group,
    GroupAction,
    GroupOrder,
    GroupStatus,
    Offer,
)
from shop.offers.service import RUNNING, get_offer, state_of
from shop.offers.stock import UnitKeeper, limit_reached
from shop.orders.models import GOODS, Order, OrderLine, Refund
from shop.orders.refunds import OPEN, issue_refund, open_refund
from shop.orders.service import Placed, cancel_order, lock_order, place_order
from shop.orders.states import OrderStatus, RefundKind, RefundStatus

# Jobs this module asks for (by name: shop.core.runner), run by shop.offers.jobs.
CLOSE_GROUP_JOB = "offers.close_group"
SETTLE_GROUP_ORDER_JOB = "offers.settle_group_order"
SHARE_PAGE = "pages/group/index"


def group_closed(group: Group, reason: str) -> Conflict:
    return Conflict("the group cannot be joined", code="group_closed", details={"group_id": group.id, "reason": reason})


def transition_group(group: Group, action: GroupAction, now: datetime) -> bool:
    """Take `action` on a (locked) group as GROUP_MACHINE says: True when it moved."""
    step = GROUP_MACHINE.step(group.status, action)
    if not step.moved:
        return False
    group.status = step.to.value
    if step.to in (GroupStatus.SUCCEEDED, GroupStatus.FAILED, GroupStatus.CANCELLED):
        group.closed_at = now
    db.session.flush()
    return True


def get_group(merchant_id: int, group_id: int, *, lock: bool = False) -> Group:
    query = select(Group).where(Group.id == group_id)
    group = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if group is None or group.merchant_id != merchant_id:
        raise NotFound("group not found")
    return group


# --- pricing and units -----------------------------------------------------------------------------


def _unseatable(group: Group, now: datetime) -> Conflict | None:
    """Why no one can take a seat of the group now (not open, closed, full, out of time), if so."""
    if group.status != GroupStatus.FORMING:
        return group_closed(group, "not_open" if group.status == GroupStatus.OPENING else group.status)
    if group.joined >= group.size:
        return group_closed(group, "full")
    if group.expires_at is not None and group.expires_at <= now:
        return group_closed(group, "expired")
    return None


def _unjoinable(group: Group, member_id: int, now: datetime) -> Conflict | None:
    """Why the member cannot join the group now, if they cannot."""
    unseatable = _unseatable(group, now)
    if unseatable is not None:
        return unseatable
    held = db.session.execute(
        select(GroupOrder.id)
        .join(Order, Order.id == GroupOrder.order_id)
        .where(
            GroupOrder.group_id == group.id,
            GroupOrder.member_id == member_id,
            Order.status.notin_((OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)),
        )
        .limit(1)
    ).first()
    if held is not None:
        return Conflict(
            "you are in this group already (or your order for it waits to be paid)",
            code="already_in_group",
            details={"group_id": group.id},
        )
    return None


class GroupBuyResolver:
    """Prices lines that ask for a group buy: the group price to join (`{"group": id}` in the
    line's offer), the initiator's price to open (`{"group": "open"}`); only through the group
    endpoints, which put that there."""

    kind = GROUP_BUY

    def resolve(self, context: pricing.OfferContext, requests: Sequence[pricing.OfferRequest]) -> list[pricing.Offer]:
        answers = []
        for request in requests:
            offer = db.session.get(Offer, request.offer_id)
            if offer is None or offer.merchant_id != context.merchant_id or offer.kind != GROUP_BUY:
                raise NotFound("group buy not found")
            target = request.selection.get("group")
            if target is None:
                raise pricing.offer_unavailable(
                    request, GROUP_BUY, "group_required", "open a group or join one to buy at the group price"
                )
            if offer.sku_id != request.sku_id:
                raise pricing.offer_unavailable(request, GROUP_BUY, "other_sku", "the group buy is on another SKU")
            state = state_of(offer, context.now)
            if state != RUNNING:
                raise Conflict(
                    "the group buy is not running",
                    code="offer_not_active",
                    details={"offer_id": offer.id, "state": state},
                )
            if request.quantity > offer.per_member_limit:
                raise limit_reached(offer.id, offer.per_member_limit)
            price, pay_within = offer.price, None
            if target == "open":
                price = offer.leader_price or offer.price
                pay_within = _minutes_until(offer.ends_at, context.now)  # paid after, it opens nothing
            else:
                group = db.session.get(Group, target)
                if group is None or group.offer_id != offer.id:
                    raise NotFound("group not found")
                if context.purpose == "placement":  # one member's joins of a group, one at a time
                    xact_lock(f"group-join:{group.id}:{context.member_id}")
                refused = _unjoinable(group, context.member_id, context.now)
                if refused is not None:
                    raise refused
                assert group.expires_at is not None
                # Paid after the group's time, a seat could not be had: the order lasts no longer.
                pay_within = _minutes_until(group.expires_at, context.now)
            answers.append(
                pricing.Offer(
                    kind=GROUP_BUY,
                    id=offer.id,
                    unit_price=price,
                    note=_note(offer),
                    pay_within=pay_within,
                )
            )
        return answers


def _minutes_until(moment: datetime, now: datetime) -> int:
    return max(1, math.floor((moment - now).total_seconds() / 60))


def _note(offer: Offer) -> str:
    """What the member reads on the line: the group's size, and 模拟成团 whenever it applies."""
    short = "，到时未满也成团（模拟成团）" if offer.on_expiry == "complete" else ""
    return f"{offer.group_size}人团{short}"


class GroupKeeper(UnitKeeper):
    """A group buy's say on its orders: units as any offer's; a seat claimed by the payment;
    fulfilment, and refunds other than the group's own, held until the group has closed."""

    def take(self, order: Order, lines: Sequence[OrderLine]) -> None:
        if order.payable_total == 0:
            # A free order would be paid at its placement, before it is a group's: no seat.
            raise _free_order_refused()
        super().take(order, lines)

    def give_back(self, order: Order, units: Sequence[tuple[OrderLine, int]]) -> None:
        _cancel_unopened_group(order)  # the group before the offer (shop.core.locking)
        super().give_back(order, units)

    def payment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        """A payment its seat would refuse is not started (no money taken to be sent back): the
        group buy ended before the initiator paid, or the group is full, closed or out of time."""
        entry = db.session.execute(select(GroupOrder).where(GroupOrder.order_id == order.id)).scalar_one_or_none()
        if entry is None:
            return None
        group = db.session.get(Group, entry.group_id)
        assert group is not None
        now = utcnow()
        if not entry.leader:
            return _unseatable(group, now)
        offer = db.session.get(Offer, group.offer_id)
        assert offer is not None
        if offer.ends_at <= now:
            return Conflict(
                "the group buy has ended: this group can no longer open",
                code="offer_not_active",
                details={"offer_id": offer.id, "group_id": group.id, "state": "ended"},
            )
        if group.status != GroupStatus.OPENING:
            return group_closed(group, group.status)
        return None

    def accept_payment(self, order: Order, lines: Sequence[OrderLine]) -> bool:
        return claim_seat(order, utcnow())

    def refund_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        group = _group_of(order.id)
        if group is not None and group.status in (GroupStatus.OPENING, GroupStatus.FORMING):
            return Conflict(
                "the group is still forming: if it fails, every order of it is refunded",
                code="group_forming",
                details={"group_id": group.id, "status": group.status},
            )
        return None

    def fulfilment_hold(self, order: Order, lines: Sequence[OrderLine]) -> Conflict | None:
        group = _group_of(order.id)
        if group is None or group.status == GroupStatus.SUCCEEDED:
            return None
        if group.status == GroupStatus.FAILED:
            return Conflict(
                "the group failed: its orders are refunded, not sent",
                code="group_failed",
                details={"group_id": group.id, "status": group.status},
            )
        return Conflict(
            "the group is still forming: its orders are sent once it is full",
            code="group_forming",
            details={"group_id": group.id, "status": group.status},
        )


def _group_of(order_id: int) -> Group | None:
    return db.session.execute(
        select(Group).join(GroupOrder, GroupOrder.group_id == Group.id).where(GroupOrder.order_id == order_id)
    ).scalar_one_or_none()


# --- opening and joining ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPlaced:
    group: Group
    order: Order
    replayed: bool


def _place(
    merchant_id: int,
    member_id: int,
    offer_id: int,
    target: int | str,
    *,
    quantity: int,
    order_fields: Mapping[str, Any],
) -> Placed:
    items = _items(get_offer(merchant_id, offer_id, kind=GROUP_BUY), quantity, target)
    if order_fields.get("selections") is not None:
        return place_order(merchant_id, member_id, items=items, **order_fields)
    # The coupons are the server's choice: one that makes the order free (which a group order
    # cannot be: its seat is claimed by a payment) is not chosen; the order goes without coupons.
    try:
        with db.session.begin_nested():
            return place_order(merchant_id, member_id, items=items, **order_fields)
    except Conflict as refused:
        if refused.code != "group_order_free":
            raise
    without = {**order_fields, "selections": _NO_COUPONS}
    return place_order(merchant_id, member_id, items=items, **without)


# The selections of a group order placed or quoted without coupons (when the server's choice would
# make it free).
_NO_COUPONS: Mapping[str, Any] = {"coupons": {"ids": []}}


def _items(offer: Offer, quantity: int, target: int | str) -> list[dict[str, Any]]:
    """The one line of a group order: the offer's SKU, asking for the group (`target`: its id, or
    "open" for the initiator's order)."""
    return [
        {"sku_id": offer.sku_id, "quantity": quantity, "offer": {"kind": GROUP_BUY, "id": offer.id, "group": target}}
    ]


def _free_order_refused() -> Conflict:
    return Conflict(
        "a group order is paid through WeChat Pay: leave out the coupons that make it free",
        code="group_order_free",
        details={"payable_total": 0},
    )


def quote_open(
    merchant_id: int, member_id: int, offer_id: int, *, quantity: int, fulfilment: str, selections: Any = None
) -> pricing.Quote:
    """What opening a group of the offer would cost the member (as `open_group` would price it:
    the initiator's price, the coupons, shipping). Reserves nothing."""
    offer = get_offer(merchant_id, offer_id, kind=GROUP_BUY)
    return _quote(merchant_id, member_id, _items(offer, quantity, "open"), fulfilment, selections)


def quote_join(
    merchant_id: int, member_id: int, group_id: int, *, quantity: int, fulfilment: str, selections: Any = None
) -> pricing.Quote:
    """What joining the group would cost the member, with the refusals joining would meet
    (group_closed, already_in_group, offer_limit_reached...). Reserves nothing."""
    group = get_group(merchant_id, group_id)
    offer = get_offer(merchant_id, group.offer_id, kind=GROUP_BUY)
    return _quote(merchant_id, member_id, _items(offer, quantity, group.id), fulfilment, selections)


def _quote(
    merchant_id: int, member_id: int, items: list[dict[str, Any]], fulfilment: str, selections: Any
) -> pricing.Quote:
    """The quote the placement (`_place`) would come to: with the coupons chosen by the server, one
    that would make the order free is left out, as the placement leaves it out; with the member's
    own choice, a free order is refused as the placement refuses it."""
    quote = pricing.quote(merchant_id, member_id, items, fulfilment=fulfilment, selections=selections)
    if quote.payable_total > 0:
        return quote
    if selections is not None:
        raise _free_order_refused()
    return pricing.quote(merchant_id, member_id, items, fulfilment=fulfilment, selections=_NO_COUPONS)


def open_group(
    merchant_id: int, member_id: int, offer_id: int, *, quantity: int, order_fields: Mapping[str, Any]
) -> GroupPlaced:
    """The initiator's order and its group (opening until that order is paid). `order_fields`:
    place_order's fulfilment, address, pickup_point_id, remark, selections, idempotency_key and
    fingerprint. A retry answers the group and order of the first request."""
    placed = _place(merchant_id, member_id, offer_id, "open", quantity=quantity, order_fields=order_fields)
    if placed.replayed:
        group = _group_of(placed.order.id)
        if group is None:  # the key placed an order that is not a group's: another request
            raise Conflict("this Idempotency-Key was used with a different request", code="idempotency_key_reused")
        return GroupPlaced(group=group, order=placed.order, replayed=True)
    offer = db.session.get(Offer, offer_id)
    assert offer is not None and offer.group_size is not None
    group = Group(merchant_id=merchant_id, offer_id=offer.id, leader_id=member_id, size=offer.group_size)
    db.session.add(group)
    db.session.flush()
    db.session.add(
        GroupOrder(
            merchant_id=merchant_id, group_id=group.id, order_id=placed.order.id, member_id=member_id, leader=True
        )
    )
    db.session.flush()
    return GroupPlaced(group=group, order=placed.order, replayed=False)


def join_group(
    merchant_id: int, member_id: int, group_id: int, *, quantity: int, order_fields: Mapping[str, Any]
) -> GroupPlaced:
    """An order to join the group: 409 group_closed when it is full, closed or not open yet
    (its initiator has not paid), already_in_group for a member in it. The seat is the
    payment's to claim."""
    group = get_group(merchant_id, group_id)
    placed = _place(merchant_id, member_id, group.offer_id, group.id, quantity=quantity, order_fields=order_fields)
    if placed.replayed:
        earlier = _group_of(placed.order.id)
        if earlier is None or earlier.id != group.id:
            raise Conflict("this Idempotency-Key was used with a different request", code="idempotency_key_reused")
        return GroupPlaced(group=group, order=placed.order, replayed=True)
    db.session.add(
        GroupOrder(merchant_id=merchant_id, group_id=group.id, order_id=placed.order.id, member_id=member_id)
    )
    db.session.flush()
    return GroupPlaced(group=group, order=placed.order, replayed=False)


# --- payment: the seat ---------------------------------------------------------------------------


def claim_seat(order: Order, now: datetime) -> bool:
    """The (locked, unpaid) order's payment claims its seat: the initiator's starts the group's
    clock; a joiner's takes the next seat with a guarded UPDATE. False when there is none to
    have (full, closed, out of time, or the member has one already)."""
    entry = db.session.execute(select(GroupOrder).where(GroupOrder.order_id == order.id)).scalar_one_or_none()
    if entry is None:
        return True
    group = db.session.execute(locked(select(Group).where(Group.id == entry.group_id))).scalar_one()
    if entry.leader:
        # The offer after the group (shop.core.locking), so staff ending it now is seen.
        offer = db.session.execute(locked(select(Offer).where(Offer.id == group.offer_id))).scalar_one()
        assert offer.time_limit_hours is not None
        if group.status != GroupStatus.OPENING or offer.ends_at <= now:
            return False
        group.expires_at = min(now + timedelta(hours=offer.time_limit_hours), offer.ends_at)
        transition_group(group, GroupAction.START, now)
        seat = _take_seat(group.id, now)
        enqueue(CLOSE_GROUP_JOB, group.id, delay=group.expires_at - now, job_id=f"close-group-{group.id}")
    else:
        if _unjoinable_seat(group, entry.member_id, now):
            return False
        seat = _take_seat(group.id, now)
    if seat is None:
        return False
    entry.seat = seat
    entry.joined_at = now
    db.session.flush()
    return True


def _unjoinable_seat(group: Group, member_id: int, now: datetime) -> bool:
    if group.status != GroupStatus.FORMING or (group.expires_at is not None and group.expires_at <= now):
        return True
    seated = db.session.execute(
        select(GroupOrder.id).where(
            GroupOrder.group_id == group.id, GroupOrder.member_id == member_id, GroupOrder.seat.is_not(None)
        )
    ).first()
    return seated is not None


def _take_seat(group_id: int, now: datetime) -> int | None:
    """The guarded UPDATE: the next seat, or None when the group is full or not forming."""
    return db.session.execute(
        update(Group)
        .where(Group.id == group_id, Group.status == GroupStatus.FORMING.value, Group.joined < Group.size)
        .values(joined=Group.joined + 1, updated_at=now)
        .returning(Group.joined)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def on_order_paid(event: OrderPaid) -> None:
    """After a group order is paid (its seat claimed): GroupJoined, and a full group succeeds."""
    if event.kind != GOODS:
        return
    entry = db.session.execute(select(GroupOrder).where(GroupOrder.order_id == event.order_id)).scalar_one_or_none()
    if entry is None or entry.seat is None:
        return
    group = db.session.execute(locked(select(Group).where(Group.id == entry.group_id))).scalar_one()
    offer = db.session.get(Offer, group.offer_id)
    assert offer is not None
    bus.publish(
        GroupJoined(
            **_about(group, offer),
            member_id=entry.member_id,
            order_id=entry.order_id,
            leader=entry.leader,
            members=group.joined,
            size=group.size,
        )
    )
    if group.joined >= group.size:
        _succeed(group, offer, GroupAction.FILL, utcnow())


def _cancel_unopened_group(order: Order) -> None:
    """The initiator's order went unpaid (cancelled or expired): its group never opened."""
    entry = db.session.execute(
        select(GroupOrder).where(GroupOrder.order_id == order.id, GroupOrder.leader.is_(True))
    ).scalar_one_or_none()
    if entry is None:
        return
    group = db.session.execute(locked(select(Group).where(Group.id == entry.group_id))).scalar_one()
    if group.status == GroupStatus.OPENING and order.status == OrderStatus.CANCELLED:
        transition_group(group, GroupAction.CANCEL, utcnow())


# --- closing -------------------------------------------------------------------------------------


def _about(group: Group, offer: Offer) -> dict[str, int]:
    """What every group event carries: whose group, of which offer and product."""
    return {
        "merchant_id": group.merchant_id,
        "group_id": group.id,
        "offer_id": offer.id,
        "product_id": offer.product_id,
    }


def _paid_order_ids(group_id: int) -> tuple[int, ...]:
    return tuple(
        db.session.execute(
            select(GroupOrder.order_id)
            .where(GroupOrder.group_id == group_id, GroupOrder.seat.is_not(None))
            .order_by(GroupOrder.seat)
        ).scalars()
    )


def _settle_orders_later(group_id: int) -> None:
    """Each order of the closed group gets its job: refund, cancel if unpaid, or nothing."""
    for order_id in db.session.execute(select(GroupOrder.order_id).where(GroupOrder.group_id == group_id)).scalars():
        enqueue(SETTLE_GROUP_ORDER_JOB, order_id, job_id=f"settle-group-order-{order_id}")


def _succeed(group: Group, offer: Offer, action: GroupAction, now: datetime) -> None:
    if not transition_group(group, action, now):
        return
    group.simulated = action == GroupAction.COMPLETE
    db.session.flush()
    bus.publish(
        GroupSucceeded(
            **_about(group, offer),
            leader_id=group.leader_id,
            order_ids=_paid_order_ids(group.id),
            simulated=group.simulated,
            leader_commission_bp=offer.leader_commission_bp,
        )
    )
    _settle_orders_later(group.id)


def close_group(group_id: int, now: datetime | None = None) -> str | None:
    """The group's time is up: complete it (模拟成团) or fail it, once; None when it is not due
    or closed already (the job and the sweep may both come). A group never opened whose offer has
    ended is cancelled."""
    now = now or utcnow()
    group = db.session.execute(locked(select(Group).where(Group.id == group_id))).scalar_one_or_none()
    if group is not None and group.status == GroupStatus.OPENING:
        return _cancel_if_offer_ended(group, now)
    if group is None or group.status != GroupStatus.FORMING or group.expires_at is None or group.expires_at > now:
        return None
    offer = db.session.get(Offer, group.offer_id)
    assert offer is not None
    if offer.on_expiry == "complete":
        _succeed(group, offer, GroupAction.COMPLETE, now)
        return group.status
    transition_group(group, GroupAction.FAIL, now)
    bus.publish(
        GroupFailed(
            **_about(group, offer),
            leader_id=group.leader_id,
            order_ids=_paid_order_ids(group.id),
            reason="expired",
        )
    )
    _settle_orders_later(group.id)
    return group.status


def _cancel_if_offer_ended(group: Group, now: datetime) -> str | None:
    """A group whose initiator has not paid when its offer ends never opens: cancelled, and its
    order with it (by its settle job), rather than left payable for a payment to be sent back."""
    offer = db.session.execute(locked(select(Offer).where(Offer.id == group.offer_id))).scalar_one()
    if offer.ends_at > now or not transition_group(group, GroupAction.CANCEL, now):
        return None
    _settle_orders_later(group.id)
    return group.status


def settle_group_order(order_id: int) -> str:
    """What the closed group means for one of its orders, once: unpaid, it is cancelled (its
    units back to the offer); paid in a failed group, it is refunded whole by the system
    (`group_failed`); otherwise nothing. A refund of the order already open waits for the next
    sweep."""
    group = _group_of(order_id)
    if group is None or group.status in (GroupStatus.OPENING, GroupStatus.FORMING):
        return "open"
    order = lock_order(order_id)
    if order.status == OrderStatus.PENDING_PAYMENT:
        cancel_order(order.id, reason="group_closed")
        return "cancelled"
    if group.status != GroupStatus.FAILED or order.status != OrderStatus.PAID:
        return "kept"
    if open_refund(order.id) is not None:
        return "refund_open"
    issue_refund(order.merchant_id, order.id, kind=RefundKind.GROUP_FAILED, lines=None, reason="group_failed")
    return "refunded"


def due_groups(now: datetime | None = None) -> Any:
    """Forming groups whose time is up, and groups never opened (the initiator has not paid) of
    offers that have ended (for the sweep)."""
    now = now or utcnow()
    ended = select(Offer.id).where(Offer.id == Group.offer_id, Offer.ends_at <= now).exists()
    return (
        select(Group.id)
        .where(
            or_(
                and_(Group.status == GroupStatus.FORMING.value, Group.expires_at <= now),
                and_(Group.status == GroupStatus.OPENING.value, ended),
            )
        )
        .order_by(Group.id)
    )


def unsettled_group_orders() -> Any:
    """Orders of closed groups still waiting for what closing means for them: unpaid ones, and
    paid ones of failed groups with no group_failed refund yet (for the sweep)."""
    refunded = exists().where(  # one the provider failed is issued again
        Refund.order_id == Order.id,
        Refund.kind == RefundKind.GROUP_FAILED.value,
        Refund.status != RefundStatus.FAILED.value,
    )
    deciding = exists().where(Refund.order_id == Order.id, Refund.status.in_(OPEN))  # after it is decided
    return (
        select(GroupOrder.order_id)
        .join(Group, Group.id == GroupOrder.group_id)
        .join(Order, Order.id == GroupOrder.order_id)
        .where(
            Group.status.in_([s.value for s in (GroupStatus.SUCCEEDED, GroupStatus.FAILED, GroupStatus.CANCELLED)]),
            or_(
                Order.status == OrderStatus.PENDING_PAYMENT.value,
                and_(
                    Group.status == GroupStatus.FAILED.value,
                    Order.status == OrderStatus.PAID.value,
                    ~refunded,
                    ~deciding,
                ),
            ),
        )
        .order_by(GroupOrder.order_id)
    )


# --- views -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupView:
    group: Group
    offer: Offer
    members: list[dict[str, Any]]
    now: datetime
    my_order: dict[str, Any] | None = None  # the viewing member's latest order for the group

    def __getattr__(self, name: str) -> Any:
        return getattr(self.group, name)

    @property
    def closed(self) -> bool:
        return self.group.status not in (GroupStatus.OPENING, GroupStatus.FORMING)

    @property
    def seats_left(self) -> int:
        """Seats anyone can still take: none once the group has closed (a group completed short,
        模拟成团, says so with `simulated` and `joined`)."""
        return 0 if self.closed else self.group.size - self.group.joined

    @property
    def seconds_left(self) -> int | None:
        """The countdown of a forming group; None before it opens and once it has closed."""
        if self.group.expires_at is None or self.closed:
            return None
        return max(0, math.ceil((self.group.expires_at - self.now).total_seconds()))

    @property
    def price(self) -> int:
        return self.offer.price

    @property
    def completes_when_short(self) -> bool:
        """The offer completes groups short of their size at their time (模拟成团)."""
        return self.offer.on_expiry == "complete"

    @property
    def share(self) -> dict[str, str]:
        """What the mini-program's share card carries: the group's page, with its id."""
        return {"path": f"{SHARE_PAGE}?group_id={self.group.id}", "page": SHARE_PAGE, "group_id": str(self.group.id)}


def _views(groups: Sequence[Group], *, viewer_id: int | None = None, staff: bool = False) -> list[GroupView]:
    """Views of groups, their seated members read in one statement: as members see them (masked
    names; `viewer_id`: with that member's own order for each group), or as staff do (with each
    member's id and order id)."""
    now = utcnow()
    ids = [group.id for group in groups]
    offers = (
        {
            offer.id: offer
            for offer in db.session.execute(
                select(Offer).where(Offer.id.in_({group.offer_id for group in groups}))
            ).scalars()
        }
        if groups
        else {}
    )
    members: dict[int, list[dict[str, Any]]] = {group_id: [] for group_id in ids}
    if ids:
        rows = db.session.execute(
            select(
                GroupOrder.group_id,
                GroupOrder.seat,
                GroupOrder.leader,
                GroupOrder.joined_at,
                Member.nickname,
                Member.avatar_url,
                GroupOrder.member_id,
                GroupOrder.order_id,
            )
            .join(Member, Member.id == GroupOrder.member_id)
            .where(GroupOrder.group_id.in_(ids), GroupOrder.seat.is_not(None))
            .order_by(GroupOrder.group_id, GroupOrder.seat)
        ).all()
        for group_id, seat, leader, joined_at, nickname, avatar, member_id, order_id in rows:
            member = {
                "seat": seat,
                "leader": leader,
                "joined_at": joined_at,
                "nickname": mask_name(nickname),
                "avatar_url": avatar,
            }
            if staff:
                member.update(member_id=member_id, order_id=order_id)
            members[group_id].append(member)
    mine: dict[int, dict[str, Any]] = {}
    if ids and viewer_id is not None:
        for group_id, order_id, status in db.session.execute(
            select(GroupOrder.group_id, Order.id, Order.status)
            .join(Order, Order.id == GroupOrder.order_id)
            .where(GroupOrder.group_id.in_(ids), GroupOrder.member_id == viewer_id)
            .order_by(GroupOrder.group_id, Order.id)
        ):
            mine[group_id] = {"id": order_id, "status": status}  # the latest wins
    return [
        GroupView(
            group=group, offer=offers[group.offer_id], members=members[group.id], now=now, my_order=mine.get(group.id)
        )
        for group in groups
    ]


def group_view(merchant_id: int, group_id: int, *, viewer_id: int | None = None) -> GroupView:
    """A group's progress as anyone with its id sees it: masked names and avatars of the members
    who paid (the initiator first), seats left, time left, and whether it may complete short;
    with the viewing member's own order for it (`my_order`), if they have one."""
    return _views([get_group(merchant_id, group_id)], viewer_id=viewer_id)[0]


def group_page(
    merchant_id: int,
    offer_id: int,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
    viewer_id: int | None = None,
    staff: bool = False,
) -> Page:
    """The groups of one of the merchant's group buys, newest first (404 for another's): as a
    member (`viewer_id`) or staff see them (`_views`)."""
    get_offer(merchant_id, offer_id, kind=GROUP_BUY)
    query = select(Group).where(Group.offer_id == offer_id)
    if status:
        query = query.where(Group.status == status)
    page = keyset_page(query, [Group.id], cursor=cursor, limit=limit)
    return Page(items=_views(list(page.items), viewer_id=viewer_id, staff=staff), next_cursor=page.next_cursor)


def member_group_page(merchant_id: int, member_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    """The groups the member opened or joined (an order of theirs for it, not cancelled), newest
    first: where a mini-program finds a group again to share it or follow it."""
    mine = (
        select(GroupOrder.group_id)
        .join(Order, Order.id == GroupOrder.order_id)
        .where(GroupOrder.member_id == member_id, Order.status != OrderStatus.CANCELLED.value)
    )
    query = select(Group).where(Group.merchant_id == merchant_id, Group.id.in_(mine))
    page = keyset_page(query, [Group.id], cursor=cursor, limit=limit)
    return Page(items=_views(list(page.items), viewer_id=member_id), next_cursor=page.next_cursor)
