"""Refunds: requested by the member (whole order or some lines), approved or rejected by staff,
paid back through the provider with a stable out_refund_no, settled by the provider's
notification exactly once.

A line's refund is its share of what was really paid for it (`paid_amount`, after discounts),
computed cumulatively so that partial refunds of one line add up to exactly its paid amount.
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
from shop.orders.kinds import order_kind
from shop.orders.models import Order, OrderLine, Refund, RefundLine
from shop.orders.service import lock_order, release_stock, transition

# The job that pays a processing refund back (by name: shop.core.runner), run by payments.
SUBMIT_REFUND_JOB = "payments.submit_refund"
REFUNDABLE = ("paid", "shipped", "ready_for_pickup", "received")
OPEN = ("requested", "processing", "abnormal")
REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"processing", "rejected"}),
    "processing": frozenset({"succeeded", "failed", "abnormal"}),
    # ABNORMAL: the money could not reach the payer (e.g. a closed bank card); it stays open until
    # the merchant resolves it with WeChat Pay, whose notification then says SUCCESS or CLOSED.
    "abnormal": frozenset({"succeeded", "failed"}),
    "rejected": frozenset(),
    "succeeded": frozenset(),
    "failed": frozenset(),
}


def transition_refund(refund: Refund, to: str) -> Refund:
    """Move a (locked) refund to `to`; anything not in REFUND_TRANSITIONS is refused."""
    if to not in REFUND_TRANSITIONS.get(refund.status, frozenset()):
        raise Conflict(
            f"a refund that is {refund.status} cannot become {to}",
            code="illegal_transition",
            details={"status": refund.status, "to": to},
        )
    refund.status = to
    if to == "succeeded":
        refund.succeeded_at = utcnow()
    db.session.flush()
    return refund


def _line_refund_amount(line: OrderLine, quantity: int) -> int:
    """The line's paid amount, refunded unit by unit with cumulative rounding (shop.core.money)."""
    return cumulative_share(line.paid_amount, line.quantity, line.refunded_quantity, line.refunded_amount, quantity)


def open_refund(order_id: int) -> Refund | None:
    """The member's refund of this order still being decided or paid, if any (at most one)."""
    return db.session.execute(
        select(Refund).where(Refund.order_id == order_id, Refund.status.in_(OPEN), Refund.kind == "member")
    ).scalar_one_or_none()


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
    if order.status not in REFUNDABLE:
        raise Conflict(
            f"an order that is {order.status} cannot be refunded",
            code="not_refundable",
            details={"status": order.status},
        )
    if order.status == "received" and order.after_sales_until and order.after_sales_until <= now:
        raise Conflict("the after-sales window has closed", code="after_sales_closed")
    if open_refund(order.id):
        raise Conflict("a refund of this order is already in progress", code="refund_in_progress")
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
                merchant_id=merchant_id,
                order_line_id=line_id,
                quantity=quantity,
                amount=_line_refund_amount(line, quantity),
            )
        )
    everything_left = all(wanted.get(line.id, 0) == line.quantity - line.refunded_quantity for line in order.lines)
    # Shipping (what was paid for it, after any shipping discount) goes back only when nothing
    # has been sent and everything is returned.
    shipping_paid = order.paid_total - sum(line.paid_amount for line in order.lines)
    shipping = shipping_paid if order.status == "paid" and everything_left else 0
    amount = sum(rl.amount for rl in refund_lines) + shipping
    if amount <= 0:
        raise Conflict("nothing is left to refund", code="nothing_to_refund")
    count = db.session.execute(select(func.count()).where(Refund.order_id == order.id)).scalar_one()
    refund = Refund(
        merchant_id=merchant_id,
        order_id=order.id,
        out_refund_no=f"{order.order_no}R{count + 1:02d}",
        kind="member",
        status="requested",
        amount=amount,
        shipping_amount=shipping,
        reason=reason,
        restock=order.status == "paid",
    )
    refund.lines = refund_lines
    db.session.add(refund)
    db.session.flush()
    return refund


def decide_refund(merchant_id: int, refund_id: int, *, staff_id: int, approve: bool, reason: str = "") -> Refund:
    refund = get_refund(merchant_id, refund_id)
    lock_order(refund.order_id)  # order before refund, everywhere (shop.core.locking)
    refund = lock_refund(refund_id)
    if refund.status != "requested":
        raise Conflict(
            f"the refund is already {refund.status}", code="refund_already_decided", details={"status": refund.status}
        )
    refund.decided_by = staff_id
    refund.decided_at = utcnow()
    if approve:
        transition_refund(refund, "processing")
        _submit_later(refund)
    else:
        refund.reject_reason = reason
        transition_refund(refund, "rejected")
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
        kind="late_payment",
        status="processing",
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


def settle_refund(order: Order, refund: Refund, outcome: str) -> str:
    """Apply the provider's outcome (succeeded / failed / abnormal) to a refund, once. The order
    and the refund are locked (in that order); stock goes back before sales are taken back, SKUs
    before products, as everywhere (shop.core.locking)."""
    if refund.status == outcome or refund.status not in ("processing", "abnormal"):
        return "refund_duplicate"  # a repeated notification: already settled
    transition_refund(refund, outcome)
    if outcome != "succeeded":
        return f"refund_{outcome}"
    if refund.kind == "late_payment":
        return "refund_applied"
    lines = {line.id: line for line in order.lines}
    for refund_line in refund.lines:
        line = lines[refund_line.order_line_id]
        line.refunded_quantity += refund_line.quantity
        line.refunded_amount += refund_line.amount
    order.refunded_total += refund.amount
    if refund.restock:
        release_stock(
            order.merchant_id,
            [(lines[rl.order_line_id].sku_id, rl.quantity) for rl in refund.lines],
            reason="refund_restock",
        )
    returned: dict[int, int] = {}
    for refund_line in refund.lines:
        product_id = lines[refund_line.order_line_id].product_id
        returned[product_id] = returned.get(product_id, 0) - refund_line.quantity
    record_sales(returned)
    db.session.flush()
    fully_refunded = all(line.refunded_quantity == line.quantity for line in order.lines)
    if fully_refunded:
        transition(order, "refunded")
    bus.publish(
        OrderRefunded(
            merchant_id=order.merchant_id,
            order_id=order.id,
            member_id=order.member_id,
            kind=order_kind(order),
            refund_id=refund.id,
            amount=refund.amount,
            lines=tuple(
                RefundedLineInfo(line_id=rl.order_line_id, quantity=rl.quantity, amount=rl.amount)
                for rl in refund.lines
            ),
            fully_refunded=fully_refunded,
            refund_kind=refund.kind,
        )
    )
    return "refund_applied"


def refund_page(merchant_id: int, *, status: str | None = None, order_id: int | None = None) -> list[Refund]:
    query = select(Refund).where(Refund.merchant_id == merchant_id, Refund.kind == "member")
    if status:
        query = query.where(Refund.status == status)
    if order_id is not None:
        query = query.where(Refund.order_id == order_id)
    return list(db.session.execute(query.order_by(Refund.id.desc()).limit(200)).scalars())


def lock_refund(refund_id: int) -> Refund:
    """The refund, locked and re-read. Lock its order first (`lock_order`)."""
    return db.session.execute(locked(select(Refund).where(Refund.id == refund_id))).scalar_one()
