"""Refunds: requested by the member (whole order or some lines) and approved or rejected by
staff, or issued by staff (an after-sales decision, a completed order included) or by the
system (e.g. a failed group buy) without a request; paid back through the provider with a
stable out_refund_no, settled by the provider's notification exactly once.

A line's refund is its share of what was really paid for it (`paid_amount`, after discounts),
computed cumulatively so that partial refunds of one line add up to exactly its paid amount.
Shipping goes back only with everything, and only while nothing has been sent (a paid order).

One open refund per order: while a member's request is undecided or any refund is being paid
back, asking for or issuing another is refused (409 `refund_in_progress`), under the order's
lock. What is left to refund counts only settled refunds, so two open ones could pay the same
units twice; and a double click on "refund" finds the first one processing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select

from shop.catalog.service import record_sales
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.events import OrderRefunded, RefundedLineInfo, bus
from shop.core.locking import locked
from shop.core.money import cumulative_share
from shop.core.runner import enqueue
from shop.orders.models import GOODS, Order, OrderLine, Refund, RefundLine
from shop.orders.service import give_back_stock, lock_order, refund_hold, transition
from shop.orders.states import (
    INITIAL_REFUND_STATUS,
    OPEN_REFUND_STATUSES,
    REFUND_MACHINE,
    OrderAction,
    OrderStatus,
    RefundAction,
    RefundKind,
    RefundStatus,
    machine_for,
)

# The job that pays a processing refund back (by name: shop.core.runner), run by payments.
SUBMIT_REFUND_JOB = "payments.submit_refund"
OPEN = tuple(status.value for status in OPEN_REFUND_STATUSES)
# Refunds of the order's goods (with lines); a late payment's refund gives back another payment.
ORDER_REFUND_KINDS = tuple(kind.value for kind in RefundKind if kind != RefundKind.LATE_PAYMENT)
SYSTEM_KINDS = (RefundKind.SYSTEM, RefundKind.GROUP_FAILED)  # started by the shop itself
# Kinds staff see and act on in the refund list (a late payment goes back on its own).
LISTED_KINDS = ORDER_REFUND_KINDS


def transition_refund(refund: Refund, action: RefundAction, *, now: datetime | None = None) -> bool:
    """Take `action` on a (locked) refund as REFUND_MACHINE says: True when it moved; False for a
    harmless repeat (nothing changes); an illegal move raises the one Conflict."""
    step = REFUND_MACHINE.step(refund.status, action)
    if not step.moved:
        return False
    refund.status = step.to.value
    if step.to == RefundStatus.SUCCEEDED:
        refund.succeeded_at = now or utcnow()
    db.session.flush()
    return True


def _line_refund_amount(line: OrderLine, quantity: int) -> int:
    """The line's paid amount, refunded unit by unit with cumulative rounding (shop.core.money)."""
    return cumulative_share(line.paid_amount, line.quantity, line.refunded_quantity, line.refunded_amount, quantity)


def open_refund(order_id: int) -> Refund | None:
    """The refund of this order's goods still being decided or paid back, if any (at most one)."""
    return db.session.execute(
        select(Refund).where(Refund.order_id == order_id, Refund.status.in_(OPEN), Refund.kind.in_(ORDER_REFUND_KINDS))
    ).scalar_one_or_none()


def any_open_refund(order_id: int) -> bool:
    """Is any refund of this order, a late payment's included, still open? (It keeps the order
    from becoming final.)"""
    return (
        db.session.execute(
            select(Refund.id).where(Refund.order_id == order_id, Refund.status.in_(OPEN)).limit(1)
        ).first()
        is not None
    )


def get_refund(merchant_id: int, refund_id: int, *, member_id: int | None = None) -> Refund:
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.merchant_id != merchant_id:
        raise NotFound("refund not found")
    if member_id is not None and db.session.get(Order, refund.order_id).member_id != member_id:
        raise NotFound("refund not found")
    return refund


def request_refund(
    merchant_id: int,
    member_id: int,
    order_id: int,
    *,
    lines: Sequence[Mapping[str, int]] | None,
    reason: str,
    now: datetime | None = None,
) -> Refund:
    """Ask for the whole order back (`lines` None) or some units of some lines."""
    now = now or utcnow()
    order = lock_order(order_id, merchant_id=merchant_id, member_id=member_id)
    if not machine_for(order.kind).allows(order.status, OrderAction.REQUEST_REFUND):
        raise Conflict(
            f"an order that is {order.status} cannot be refunded",
            code="not_refundable",
            details={"status": order.status},
        )
    if order.status == OrderStatus.RECEIVED and order.after_sales_until and order.after_sales_until <= now:
        raise Conflict("the after-sales window has closed", code="after_sales_closed")
    _not_held(order)
    _no_refund_in_progress(order)
    return _create_refund(order, lines, kind=RefundKind.MEMBER, reason=reason)


def issue_refund(
    merchant_id: int,
    order_id: int,
    *,
    kind: RefundKind,
    lines: Sequence[Mapping[str, int]] | None,
    reason: str,
    staff_id: int | None = None,
    now: datetime | None = None,
) -> Refund:
    """Pay the whole order (`lines` None) or some units of some lines back, started by staff
    (`kind` staff, `staff_id` recorded as the decision) or by the system (`kind` system, or
    group_failed for an order of a group buy that failed): no
    request to decide, the refund goes straight to processing and to the provider.

    Staff may refund a completed order (an after-sales exception) and an order whose after-sales
    window has closed. Refused: an order never paid (409 `order_not_paid`), one with nothing
    left (409 `nothing_to_refund`), a refund of the order still open, a member's undecided
    request included (409 `refund_in_progress`: decide it first), a line not on the order (422
    `line_not_found`), more units than are left (422 `refund_quantity_exceeded`).
    """
    if kind != RefundKind.STAFF and kind not in SYSTEM_KINDS:
        raise ValueError(f"issue_refund is for staff and system refunds, not {kind!r}")
    if (kind == RefundKind.STAFF) != (staff_id is not None):
        raise ValueError("a staff refund names its staff member, a system refund none")
    now = now or utcnow()
    order = lock_order(order_id, merchant_id=merchant_id)
    if not machine_for(order.kind).allows(order.status, OrderAction.ISSUE_REFUND):
        if order.paid_at is None:
            raise Conflict("the order was never paid", code="order_not_paid", details={"status": order.status})
        raise Conflict("nothing is left to refund", code="nothing_to_refund", details={"status": order.status})
    if kind != RefundKind.GROUP_FAILED:
        _not_held(order)
    _no_refund_in_progress(order)
    refund = _create_refund(order, lines, kind=kind, reason=reason, now=now)
    if staff_id is not None:
        refund.decided_by = staff_id
        refund.decided_at = now  # born decided, at the moment it was made
    db.session.flush()
    _submit_later(refund)
    return refund


def _not_held(order: Order) -> None:
    """An offer may hold the order's refund back (a group still forming: 409 group_forming)."""
    held = refund_hold(order)
    if held is not None:
        raise held


def _no_refund_in_progress(order: Order) -> None:
    """One open refund per order (see the module docstring); the order is locked."""
    current = open_refund(order.id)
    if current is not None:
        raise Conflict(
            "a refund of this order is already in progress",
            code="refund_in_progress",
            details={"refund_id": current.id, "kind": current.kind, "status": current.status},
        )


def _create_refund(
    order: Order,
    lines: Sequence[Mapping[str, int]] | None,
    *,
    kind: RefundKind,
    reason: str,
    now: datetime | None = None,
) -> Refund:
    """The refund of `lines` (everything not yet refunded when None) of a locked order, in the
    kind's first status; shipping with everything of an order not yet sent; restocked when
    nothing was sent."""
    by_id = {line.id: line for line in order.lines}
    wanted: dict[int, int] = {}
    if lines is None:
        wanted = {
            line.id: line.quantity - line.refunded_quantity
            for line in order.lines
            if line.quantity > line.refunded_quantity
        }
    else:
        for index, item in enumerate(lines):
            line = by_id.get(item["line_id"])
            if line is None:
                raise InvalidInput(
                    "no such line on this order",
                    code="line_not_found",
                    details={"fields": {"lines": {str(index): {"line_id": ["not on this order"]}}}},
                )
            wanted[line.id] = wanted.get(line.id, 0) + item["quantity"]
    refund_lines = []
    for line_id, quantity in wanted.items():
        line = by_id[line_id]
        if quantity > line.quantity - line.refunded_quantity:
            raise InvalidInput(
                "more than was bought and not yet refunded",
                code="refund_quantity_exceeded",
                details={
                    "fields": {"lines": ["quantity exceeds what can be refunded"]},
                    "line_id": line_id,
                    "refundable_quantity": line.quantity - line.refunded_quantity,
                },
            )
        refund_lines.append(
            RefundLine(
                merchant_id=order.merchant_id,
                order_line_id=line_id,
                quantity=quantity,
                amount=_line_refund_amount(line, quantity),
            )
        )
    everything_left = all(wanted.get(line.id, 0) == line.quantity - line.refunded_quantity for line in order.lines)
    # Shipping (what was paid for it, after any shipping discount) goes back only when nothing
    # has been sent and everything is returned.
    not_sent = order.status == OrderStatus.PAID
    shipping_paid = order.paid_total - sum(line.paid_amount for line in order.lines)
    shipping = shipping_paid if not_sent and everything_left else 0
    amount = sum(rl.amount for rl in refund_lines) + shipping
    if amount <= 0:
        raise Conflict("nothing is left to refund", code="nothing_to_refund")
    count = db.session.execute(select(func.count()).where(Refund.order_id == order.id)).scalar_one()
    refund = Refund(
        merchant_id=order.merchant_id,
        order_id=order.id,
        out_refund_no=f"{order.order_no}R{count + 1:02d}",
        kind=kind.value,
        status=INITIAL_REFUND_STATUS[kind].value,
        amount=amount,
        shipping_amount=shipping,
        reason=reason,
        restock=not_sent and order.kind == GOODS,  # the other kinds took no stock
        created_at=now or utcnow(),
    )
    refund.lines = refund_lines
    db.session.add(refund)
    db.session.flush()
    return refund


def decide_refund(merchant_id: int, refund_id: int, *, staff_id: int, approve: bool, reason: str = "") -> Refund:
    refund = get_refund(merchant_id, refund_id)
    lock_order(refund.order_id)  # order before refund, everywhere (shop.core.locking)
    refund = lock_refund(refund_id)
    action = RefundAction.APPROVE if approve else RefundAction.REJECT
    if not REFUND_MACHINE.allows(refund.status, action):
        # Issued refunds are born decided: the same answer as a request decided twice.
        raise Conflict(
            f"the refund is already {refund.status}", code="refund_already_decided", details={"status": refund.status}
        )
    refund.decided_by = staff_id
    refund.decided_at = utcnow()
    if not approve:
        refund.reject_reason = reason
    transition_refund(refund, action)
    if approve:
        _submit_later(refund)
    return refund


def _submit_later(refund: Refund) -> None:
    enqueue(SUBMIT_REFUND_JOB, refund.id, job_id=f"submit-refund-{refund.id}")


def refund_late_payment(order: Order, payment_id: int, transaction_id: str, amount: int) -> Refund:
    """A payment that arrived after the order closed goes straight back, once."""
    refund = Refund(
        merchant_id=order.merchant_id,
        order_id=order.id,
        payment_id=payment_id,
        out_refund_no=f"L{transaction_id}"[:64],
        kind=RefundKind.LATE_PAYMENT.value,
        status=INITIAL_REFUND_STATUS[RefundKind.LATE_PAYMENT].value,
        amount=amount,
        reason="payment arrived after the order closed",
        restock=False,
    )
    db.session.add(refund)
    db.session.flush()
    _submit_later(refund)
    return refund


def lock_refund_and_order(refund_id: int) -> tuple[Refund, Order] | None:
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        return None
    order = lock_order(refund.order_id)
    return lock_refund(refund_id), order


def settle_refund(order: Order, refund: Refund, action: RefundAction) -> str:
    """Apply the provider's outcome (a settle_* action) to a refund, once: a repeated
    notification is a harmless repeat (`refund_duplicate`). The order and the refund are locked
    (in that order); stock goes back before sales are taken back, SKUs before products, as
    everywhere (shop.core.locking)."""
    if not transition_refund(refund, action):
        return "refund_duplicate"  # a repeated notification: already settled
    if action != RefundAction.SETTLE_SUCCEEDED:
        return f"refund_{refund.status}"
    if refund.kind == RefundKind.LATE_PAYMENT:
        return "refund_applied"
    after_completion = order.completed_at is not None
    lines = {line.id: line for line in order.lines}
    for refund_line in refund.lines:
        line = lines[refund_line.order_line_id]
        line.refunded_quantity += refund_line.quantity
        line.refunded_amount += refund_line.amount
    order.refunded_total += refund.amount
    if refund.restock:
        give_back_stock(order, [(lines[rl.order_line_id], rl.quantity) for rl in refund.lines], reason="refund_restock")
    if order.kind == GOODS:  # the other kinds sold no product
        returned: dict[int, int] = {}
        for refund_line in refund.lines:
            product_id = lines[refund_line.order_line_id].product_id
            returned[product_id] = returned.get(product_id, 0) - refund_line.quantity
        record_sales(returned)
    db.session.flush()
    fully_refunded = all(line.refunded_quantity == line.quantity for line in order.lines)
    if fully_refunded:
        transition(order, OrderAction.REFUND_ALL)
    bus.publish(
        OrderRefunded(
            merchant_id=order.merchant_id,
            order_id=order.id,
            member_id=order.member_id,
            kind=order.kind,
            refund_id=refund.id,
            amount=refund.amount,
            lines=tuple(
                RefundedLineInfo(line_id=rl.order_line_id, quantity=rl.quantity, amount=rl.amount)
                for rl in refund.lines
            ),
            fully_refunded=fully_refunded,
            refund_kind=refund.kind,
            after_completion=after_completion,
        )
    )
    return "refund_applied"


def refund_page(
    merchant_id: int, *, status: str | None = None, order_id: int | None = None, late_payments: bool = False
) -> list[Refund]:
    """Refunds of orders' goods, newest first (the latest 200): members' requests and the
    refunds staff or the system issued; a late payment's refund only with `late_payments` (what
    a member sees of their order: a payment the order refused, e.g. for a group's last seat
    another payment took, and its way back)."""
    kinds = (*LISTED_KINDS, RefundKind.LATE_PAYMENT.value) if late_payments else LISTED_KINDS
    query = select(Refund).where(Refund.merchant_id == merchant_id, Refund.kind.in_(kinds))
    if status:
        query = query.where(Refund.status == status)
    if order_id is not None:
        query = query.where(Refund.order_id == order_id)
    return list(db.session.execute(query.order_by(Refund.id.desc()).limit(200)).scalars())


def lock_refund(refund_id: int) -> Refund:
    """The refund, locked and re-read. Lock its order first (`lock_order`)."""
    return db.session.execute(locked(select(Refund).where(Refund.id == refund_id))).scalar_one()
