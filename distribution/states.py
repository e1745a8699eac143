"""The state machines of distribution (shop.core.states): distributors, commissions, withdrawals."""

from __future__ import annotations

from enum import StrEnum

from shop.core.states import Machine


class DistributorStatus(StrEnum):
    APPLIED = "applied"
    ACTIVE = "active"
    REJECTED = "rejected"
    DISABLED = "disabled"


class DistributorAction(StrEnum):
    APPLY = "apply"
    ACTIVATE = "activate"  # the program's join rule let them in at once (open, or spent enough)
    APPROVE = "approve"
    REJECT = "reject"
    DISABLE = "disable"
    ENABLE = "enable"


D, DA = DistributorStatus, DistributorAction
DISTRIBUTOR_MACHINE: Machine[DistributorStatus, DistributorAction] = Machine(
    name="distributor",
    statuses=DistributorStatus,
    actions=DistributorAction,
    moves={
        (D.REJECTED, DA.APPLY): D.APPLIED,
        (D.APPLIED, DA.ACTIVATE): D.ACTIVE,
        (D.REJECTED, DA.ACTIVATE): D.ACTIVE,
        (D.APPLIED, DA.APPROVE): D.ACTIVE,
        (D.REJECTED, DA.APPROVE): D.ACTIVE,
        (D.APPLIED, DA.REJECT): D.REJECTED,
        (D.ACTIVE, DA.DISABLE): D.DISABLED,
        (D.APPLIED, DA.DISABLE): D.DISABLED,
        (D.DISABLED, DA.ENABLE): D.ACTIVE,
    },
    repeats=frozenset(
        {
            (D.APPLIED, DA.APPLY),
            (D.ACTIVE, DA.APPLY),
            (D.ACTIVE, DA.ACTIVATE),
            (D.ACTIVE, DA.APPROVE),
            (D.REJECTED, DA.REJECT),
            (D.DISABLED, DA.DISABLE),
            (D.ACTIVE, DA.ENABLE),
        }
    ),
)


class CommissionStatus(StrEnum):
    PENDING = "pending"
    SETTLED = "settled"
    REVERSED = "reversed"


class CommissionAction(StrEnum):
    SETTLE = "settle"
    REVERSE = "reverse"  # wholly cancelled by refunds before settlement


C, CA = CommissionStatus, CommissionAction
COMMISSION_MACHINE: Machine[CommissionStatus, CommissionAction] = Machine(
    name="commission",
    statuses=CommissionStatus,
    actions=CommissionAction,
    moves={(C.PENDING, CA.SETTLE): C.SETTLED, (C.PENDING, CA.REVERSE): C.REVERSED},
    repeats=frozenset({(C.SETTLED, CA.SETTLE), (C.REVERSED, CA.REVERSE)}),
)


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAYING = "paying"
    WAIT_USER_CONFIRM = "wait_user_confirm"
    PAID = "paid"
    FAILED = "failed"


class WithdrawalAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SUBMIT = "submit"  # the transfer was accepted by the provider
    AWAIT_CONFIRM = "await_confirm"
    PAY = "pay"  # the transfer finished (SUCCESS)
    FAIL = "fail"  # failed, cancelled or never confirmed: the money goes back


W, WA = WithdrawalStatus, WithdrawalAction
WITHDRAWAL_MACHINE: Machine[WithdrawalStatus, WithdrawalAction] = Machine(
    name="withdrawal",
    statuses=WithdrawalStatus,
    actions=WithdrawalAction,
    moves={
        (W.REQUESTED, WA.APPROVE): W.APPROVED,
        (W.REQUESTED, WA.REJECT): W.REJECTED,
        (W.APPROVED, WA.SUBMIT): W.PAYING,
        (W.APPROVED, WA.AWAIT_CONFIRM): W.WAIT_USER_CONFIRM,
        (W.PAYING, WA.AWAIT_CONFIRM): W.WAIT_USER_CONFIRM,
        (W.APPROVED, WA.PAY): W.PAID,
        (W.PAYING, WA.PAY): W.PAID,
        (W.WAIT_USER_CONFIRM, WA.PAY): W.PAID,
        (W.APPROVED, WA.FAIL): W.FAILED,
        (W.PAYING, WA.FAIL): W.FAILED,
        (W.WAIT_USER_CONFIRM, WA.FAIL): W.FAILED,
    },
    repeats=frozenset(
        {
            (W.PAYING, WA.SUBMIT),
            (W.WAIT_USER_CONFIRM, WA.SUBMIT),
            (W.WAIT_USER_CONFIRM, WA.AWAIT_CONFIRM),
            (W.PAID, WA.SUBMIT),
            (W.PAID, WA.AWAIT_CONFIRM),
            (W.PAID, WA.PAY),
            (W.FAILED, WA.SUBMIT),
            (W.FAILED, WA.AWAIT_CONFIRM),
            (W.FAILED, WA.FAIL),
        }
    ),
)
