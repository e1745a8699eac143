"""/api/v1/distribution: a distributor's dashboard, commissions, team, ranking, invite and
withdrawals (members; every endpoint but the application answers 403 `not_a_distributor` to a
member who is not an active distributor)."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.schemas.common import PageArgsSchema
from api.schemas.distribution import (
    ApplicationCreateSchema,
    ApplicationSchema,
    CommissionArgsSchema,
    CommissionPageSchema,
    ConfirmationSchema,
    InviteSchema,
    LedgerPageSchema,
    RankingSchema,
    SummarySchema,
    TeamArgsSchema,
    TeamMemberPageSchema,
    TeamSchema,
    WithdrawalCreateSchema,
    WithdrawalPageSchema,
    WithdrawalSchema,
)
from distribution import dashboard, distributors, withdrawals
from distribution.models import Withdrawal
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint(
    "member_distribution", __name__, url_prefix="/api/v1/distribution", description="Distribution (distributors)"
)


@blp.route("/application", methods=["GET"])
@member_required
@blp.response(200, ApplicationSchema)
def application() -> dict[str, Any]:
    """Where I stand: the program's join rule, what I spent, my status (null: never applied)."""
    caller = current_caller()
    return distributors.application(caller.merchant_id, caller.subject_id)


@blp.route("/application", methods=["POST"])
@member_required
@blp.arguments(ApplicationCreateSchema)
@blp.response(200, ApplicationSchema)
def apply(args: dict[str, Any]) -> dict[str, Any]:
    """Apply to become a distributor: with the join rule `open` I am active at once, with
    `application` staff decide, with `spending` I am in once I have spent enough (409
    spending_required otherwise). 409 program_disabled when the program is off; applying again
    changes nothing."""
    caller = current_caller()
    with transaction():
        distributors.apply(caller.merchant_id, caller.subject_id, **args)
    return distributors.application(caller.merchant_id, caller.subject_id)


@blp.route("/summary")
@member_required
@blp.response(200, SummarySchema)
def summary() -> dict[str, Any]:
    """Earnings today, this month and all time (China time); balances: pending (frozen until
    the order's after-sales window closes), withdrawable, withdrawing, withdrawn."""
    caller = current_caller()
    return dashboard.summary(caller.merchant_id, caller.subject_id)


@blp.route("/commissions")
@member_required
@blp.arguments(CommissionArgsSchema, location="query")
@blp.response(200, CommissionPageSchema)
def commissions(args: dict[str, Any]) -> Page:
    """My commissions, newest first, each with its order and the buyer masked."""
    caller = current_caller()
    return dashboard.my_commissions(caller.merchant_id, caller.subject_id, **args)


@blp.route("/ledger")
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, LedgerPageSchema)
def my_ledger(args: dict[str, Any]) -> Page:
    """Every movement of my money, newest first: commissions recorded, reversed, settled, clawed
    back, adjustments, withdrawals."""
    caller = current_caller()
    return dashboard.my_ledger(caller.merchant_id, caller.subject_id, **args)


@blp.route("/team")
@member_required
@blp.response(200, TeamSchema)
def team() -> dict[str, Any]:
    """My team by level: how many members, and the sales that earned me commissions."""
    caller = current_caller()
    return dashboard.team(caller.merchant_id, caller.subject_id)


@blp.route("/team/members")
@member_required
@blp.arguments(TeamArgsSchema, location="query")
@blp.response(200, TeamMemberPageSchema)
def team_members(args: dict[str, Any]) -> Page:
    """The members of one level of my team (names masked), the newest members first."""
    caller = current_caller()
    return dashboard.team_members(caller.merchant_id, caller.subject_id, **args)


@blp.route("/ranking")
@member_required
@blp.response(200, RankingSchema)
def ranking() -> dict[str, Any]:
    """This month's top distributors by earnings (names masked) and my place."""
    caller = current_caller()
    return dashboard.ranking(caller.merchant_id, caller.subject_id)


@blp.route("/invite")
@member_required
@blp.response(200, InviteSchema)
def invite() -> dict[str, Any]:
    """My invite code and what the mini-program puts in a share card or a QR code."""
    caller = current_caller()
    return dashboard.invite(caller.merchant_id, caller.subject_id)


@blp.route("/withdrawals", methods=["GET"])
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, WithdrawalPageSchema)
def my_withdrawals(args: dict[str, Any]) -> Page:
    """My withdrawals, newest first."""
    caller = current_caller()
    return withdrawals.list_own(caller.merchant_id, caller.subject_id, **args)


@blp.route("/withdrawals", methods=["POST"])
@member_required
@blp.arguments(WithdrawalCreateSchema)
@blp.response(201, WithdrawalSchema)
def withdraw(args: dict[str, Any]) -> Withdrawal:
    """Ask to withdraw: at least the program's minimum (422 below_minimum), at most the
    withdrawable balance (409 insufficient_balance; 409 balance_negative while it is below 0).
    The amount leaves the withdrawable balance at once; finance approve or reject it."""
    caller = current_caller()
    with transaction():
        return withdrawals.request_withdrawal(caller.merchant_id, caller.subject_id, args["amount"])


@blp.route("/withdrawals/<int:withdrawal_id>")
@member_required
@blp.response(200, WithdrawalSchema)
def my_withdrawal(withdrawal_id: int) -> Withdrawal:
    """One of my withdrawals."""
    caller = current_caller()
    return withdrawals.get_own(caller.merchant_id, caller.subject_id, withdrawal_id)


@blp.route("/withdrawals/<int:withdrawal_id>/confirmation")
@member_required
@blp.response(200, ConfirmationSchema)
def confirmation(withdrawal_id: int) -> dict[str, Any]:
    """What to pass to wx.requestMerchantTransfer to receive a transfer waiting for my
    confirmation (409 not_awaiting_confirmation otherwise). Unconfirmed after 24 hours, the
    transfer is cancelled and the money returns to my balance."""
    caller = current_caller()
    return withdrawals.confirmation(caller.merchant_id, caller.subject_id, withdrawal_id)
