"""The order and refund machines (shop.core.states): every status an order or a refund can be in,
every action that moves one, and which repeats are harmless.

The rule for repeats: an action the system may repeat on its own (a provider's notification, a
timer, a job retried) is a harmless repeat once it is done or overtaken, so the repeat changes
nothing and answers quietly. A person's command is never a harmless repeat here: shipping twice
or confirming receipt twice is refused, so the person sees what happened (a caller may answer a
repeat with a more helpful code of its own, as a pickup code used twice does: `already_collected`).
"""

from __future__ import annotations

from enum import StrEnum

from shop.core.states import Machine


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    READY_FOR_PICKUP = "ready_for_pickup"
    RECEIVED = "received"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class OrderAction(StrEnum):
    PAY = "pay"  # the provider confirmed the payment (or a free order is settled)
    CANCEL = "cancel"  # the member (or staff) cancels an unpaid order
    EXPIRE = "expire"  # the unpaid order's time is up (timer, sweep, reconcile)
    SHIP = "ship"  # staff hand a delivery to the carrier
    MARK_READY = "mark_ready"  # the goods of a pickup order are at the pickup point
    CONFIRM_RECEIPT = "confirm_receipt"  # the member says the parcel arrived
    PICK_UP = "pick_up"  # the member collects at the pickup point (the code checked)
    AUTO_CONFIRM = "auto_confirm"  # receipt confirmed for the member after N days
    COMPLETE = "complete"  # the after-sales window closed: the order is final
    REQUEST_REFUND = "request_refund"  # the member may ask for money back (the order stays as it is)
    ISSUE_REFUND = "issue_refund"  # staff or the system may pay money back (the order stays as it is)
    REFUND_ALL = "refund_all"  # a refund settled and nothing is left unrefunded


S, A = OrderStatus, OrderAction
# Statuses in which the member still has the goods' money at stake: asking for a refund is legal.
_MEMBER_REFUNDABLE = (S.PAID, S.SHIPPED, S.READY_FOR_PICKUP, S.RECEIVED)
# Staff and the system may also refund a completed order (an after-sales exception, 售后例外).
_ISSUABLE = (*_MEMBER_REFUNDABLE, S.COMPLETED)

# What every order shares, goods or not: paying, cancelling and expiring an unpaid order; and the
# system's repeats of these (a payment notification again, the expiry timer after the order moved
# on, the finalize timer once the order is final).
_UNPAID_MOVES = {
    (S.PENDING_PAYMENT, A.PAY): S.PAID,
    (S.PENDING_PAYMENT, A.CANCEL): S.CANCELLED,
    (S.PENDING_PAYMENT, A.EXPIRE): S.CANCELLED,
}
_SYSTEM_REPEATS = frozenset(
    {
        (S.PAID, A.PAY),
        *((status, A.EXPIRE) for status in S if status is not S.PENDING_PAYMENT),
        *((status, A.COMPLETE) for status in (S.COMPLETED, S.REFUNDED)),
    }
)

ORDER_MACHINE: Machine[OrderStatus, OrderAction] = Machine(
    name="order",
    statuses=OrderStatus,
    actions=OrderAction,
    moves={
        **_UNPAID_MOVES,
        (S.PAID, A.SHIP): S.SHIPPED,
        (S.PAID, A.MARK_READY): S.READY_FOR_PICKUP,
        (S.SHIPPED, A.CONFIRM_RECEIPT): S.RECEIVED,
        (S.READY_FOR_PICKUP, A.PICK_UP): S.RECEIVED,
        (S.SHIPPED, A.AUTO_CONFIRM): S.RECEIVED,
        (S.READY_FOR_PICKUP, A.AUTO_CONFIRM): S.RECEIVED,
        (S.RECEIVED, A.COMPLETE): S.COMPLETED,
        **{(status, A.REQUEST_REFUND): status for status in _MEMBER_REFUNDABLE},
        **{(status, A.ISSUE_REFUND): status for status in _ISSUABLE},
        **{(status, A.REFUND_ALL): S.REFUNDED for status in _ISSUABLE},
    },
    repeats=_SYSTEM_REPEATS
    | {
        # The pickup code used again: the goods were handed over (the caller says
        # `already_collected`).
        (S.RECEIVED, A.PICK_UP),
        # The auto-confirm timer, once receipt is confirmed or the order final.
        *((status, A.AUTO_CONFIRM) for status in (S.RECEIVED, S.COMPLETED, S.REFUNDED)),
    },
)


# A non-goods order (a prize upgrade, a top-up: shop.orders.special) is never shipped or picked
# up: once paid, its owner package completes it, or it is refunded.
SPECIAL_ORDER_MACHINE: Machine[OrderStatus, OrderAction] = Machine(
    name="special_order",
    statuses=OrderStatus,
    actions=OrderAction,
    moves={
        **_UNPAID_MOVES,
        (S.PAID, A.COMPLETE): S.COMPLETED,
        (S.PAID, A.REQUEST_REFUND): S.PAID,
        # Completed means delivered by its owner (a balance credited, a prize upgraded): final.
        (S.PAID, A.ISSUE_REFUND): S.PAID,
        (S.PAID, A.REFUND_ALL): S.REFUNDED,
    },
    repeats=_SYSTEM_REPEATS,
)


def machine_for(kind: str | None) -> Machine[OrderStatus, OrderAction]:
    """The order machine for an order of `kind` (None: an order not flushed yet, a goods one)."""
    return ORDER_MACHINE if kind in (None, "goods") else SPECIAL_ORDER_MACHINE


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # a member's request, waiting for staff
    REJECTED = "rejected"
    PROCESSING = "processing"  # being paid back through the provider
    # The money could not reach the payer (e.g. a closed bank card); it stays open until the
    # merchant resolves it with WeChat Pay, whose notification then says SUCCESS or CLOSED.
    ABNORMAL = "abnormal"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SETTLE_SUCCEEDED = "settle_succeeded"  # the provider paid it back
    SETTLE_FAILED = "settle_failed"  # the provider closed it unpaid
    SETTLE_ABNORMAL = "settle_abnormal"  # the provider could not reach the payer


class RefundKind(StrEnum):
    MEMBER = "member"  # asked for by the member, decided by staff
    STAFF = "staff"  # started by staff (`money:approve`), no request to decide
    SYSTEM = "system"  # started by the shop itself
    GROUP_FAILED = "group_failed"  # started by the shop for an order of a group buy that failed
    LATE_PAYMENT = "late_payment"  # a payment that arrived after the order closed, sent back


# A refund is born requested when a member asks, processing when staff or the system start it:
# there is no decision to wait for.
INITIAL_REFUND_STATUS = {
    RefundKind.MEMBER: RefundStatus.REQUESTED,
    RefundKind.STAFF: RefundStatus.PROCESSING,
    RefundKind.SYSTEM: RefundStatus.PROCESSING,
    RefundKind.GROUP_FAILED: RefundStatus.PROCESSING,
    RefundKind.LATE_PAYMENT: RefundStatus.PROCESSING,
}
# Refunds still being decided or paid back.
OPEN_REFUND_STATUSES = (RefundStatus.REQUESTED, RefundStatus.PROCESSING, RefundStatus.ABNORMAL)

R, RA = RefundStatus, RefundAction
_SETTLEMENTS = (RA.SETTLE_SUCCEEDED, RA.SETTLE_FAILED, RA.SETTLE_ABNORMAL)

REFUND_MACHINE: Machine[RefundStatus, RefundAction] = Machine(
    name="refund",
    statuses=RefundStatus,
    actions=RefundAction,
    moves={
        (R.REQUESTED, RA.APPROVE): R.PROCESSING,
        (R.REQUESTED, RA.REJECT): R.REJECTED,
        (R.PROCESSING, RA.SETTLE_SUCCEEDED): R.SUCCEEDED,
        (R.PROCESSING, RA.SETTLE_FAILED): R.FAILED,
        (R.PROCESSING, RA.SETTLE_ABNORMAL): R.ABNORMAL,
        (R.ABNORMAL, RA.SETTLE_SUCCEEDED): R.SUCCEEDED,
        (R.ABNORMAL, RA.SETTLE_FAILED): R.FAILED,
    },
    repeats=frozenset(
        {
            # The provider's notification arrives again (or after the submission's answer already
            # settled the refund): its first final word stands.
            *((status, action) for status in (R.SUCCEEDED, R.FAILED) for action in _SETTLEMENTS),
            (R.ABNORMAL, RA.SETTLE_ABNORMAL),
        }
    ),
)
