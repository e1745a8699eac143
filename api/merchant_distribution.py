"""/api/v1/merchant/distribution: the program's settings, tiers and overrides (owner), the
distributors (operators), their commissions, money and withdrawals (finance)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.common import PageArgsSchema
from api.schemas.distribution import (
    BalanceAdjustmentSchema,
    CommissionPageSchema,
    DecisionSchema,
    DistributorListArgsSchema,
    DistributorPageSchema,
    DistributorSchema,
    LedgerEntrySchema,
    LedgerPageSchema,
    MerchantCommissionArgsSchema,
    OverrideArgsSchema,
    OverrideListSchema,
    OverrideSchema,
    OverrideSetSchema,
    ProgramSchema,
    ProgramUpdateSchema,
    ReconciliationSchema,
    TierChoiceSchema,
    TierCreateSchema,
    TierFieldsSchema,
    TierListSchema,
    TierSchema,
    WithdrawalArgsSchema,
    WithdrawalPageSchema,
    WithdrawalSchema,
)
from distribution import dashboard, distributors, ledger, program, withdrawals
from distribution.models import LedgerEntry, Override, Program, Tier, Withdrawal
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint(
    "merchant_distribution",
    __name__,
    url_prefix="/api/v1/merchant/distribution",
    description="Distribution: the program, distributors, commissions and withdrawals (staff)",
)


@blp.route("/settings")
class Settings(MethodView):
    @staff_required("distribution:read")
    @blp.response(200, ProgramSchema)
    def get(self) -> Program:
        """The program: on/off, levels and their rates, self-purchase, how members join, the
        binding rule, the freeze after completion, the withdrawal minimum and fee."""
        return program.get_program(current_caller().merchant_id)

    @staff_required("settings:manage")
    @blp.arguments(ProgramUpdateSchema)
    @blp.response(200, ProgramSchema)
    def patch(self, args: dict[str, Any]) -> Program:
        """Change the program (owner). More than 2 levels is refused: 422 levels_not_allowed."""
        with transaction():
            return program.update_program(current_caller().merchant_id, **args)


@blp.route("/tiers")
class Tiers(MethodView):
    @staff_required("distribution:read")
    @blp.response(200, TierListSchema)
    def get(self) -> dict[str, Any]:
        """The tiers, lowest rank first."""
        return {"items": program.list_tiers(current_caller().merchant_id)}

    @staff_required("settings:manage")
    @blp.arguments(TierCreateSchema)
    @blp.response(201, TierSchema)
    def post(self, args: dict[str, Any]) -> Tier:
        """Add a tier: its rates (null: the program's) and what reaching it takes (any or all of
        direct team size, team sales, own sales), checked after each settlement. 409
        tier_rank_taken."""
        with transaction():
            return program.create_tier(current_caller().merchant_id, **args)


@blp.route("/tiers/<int:tier_id>")
class TierItem(MethodView):
    @staff_required("settings:manage")
    @blp.arguments(TierFieldsSchema)
    @blp.response(200, TierSchema)
    def patch(self, args: dict[str, Any], tier_id: int) -> Tier:
        """Change a tier."""
        with transaction():
            return program.update_tier(current_caller().merchant_id, tier_id, **args)

    @staff_required("settings:manage")
    @blp.response(204)
    def delete(self, tier_id: int) -> None:
        """Delete a tier (its distributors keep the program's rates)."""
        with transaction():
            program.delete_tier(current_caller().merchant_id, tier_id)


@blp.route("/overrides")
class Overrides(MethodView):
    @staff_required("distribution:read")
    @blp.arguments(OverrideArgsSchema, location="query")
    @blp.response(200, OverrideListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The per-product (and per-SKU) overrides."""
        return {"items": program.list_overrides(current_caller().merchant_id, args.get("product_id"))}

    @staff_required("settings:manage")
    @blp.arguments(OverrideSetSchema)
    @blp.response(200, OverrideSchema)
    def put(self, args: dict[str, Any]) -> Override:
        """Set a product's (or one SKU's) commission at one level: mode rate (rate_bp), fixed
        (fixed_amount fen per unit) or none (no commission); replaces the one set before."""
        with transaction():
            return program.set_override(current_caller().merchant_id, **args)


@blp.route("/overrides/<int:override_id>", methods=["DELETE"])
@staff_required("settings:manage")
@blp.response(204)
def delete_override(override_id: int) -> None:
    """Remove an override (the tier's or program's rate applies again)."""
    with transaction():
        program.delete_override(current_caller().merchant_id, override_id)


@blp.route("/distributors")
@staff_required("distribution:read")
@blp.arguments(DistributorListArgsSchema, location="query")
@blp.response(200, DistributorPageSchema)
def list_distributors(args: dict[str, Any]) -> Page:
    """The distributors, newest first; filter by status, search by nickname or invite code."""
    return distributors.list_distributors(current_caller().merchant_id, **args)


@blp.route("/distributors/<int:distributor_id>")
@staff_required("distribution:read")
@blp.response(200, DistributorSchema)
def get_distributor(distributor_id: int) -> dict[str, Any]:
    """One distributor with their balances."""
    return distributors.describe(distributors.get_distributor(current_caller().merchant_id, distributor_id))


def _decision(action: str) -> None:
    @staff_required("distribution:manage")
    @blp.arguments(DecisionSchema)
    @blp.response(200, DistributorSchema)
    def decide(args: dict[str, Any], distributor_id: int) -> dict[str, Any]:
        with transaction():
            found = distributors.decide(current_caller().merchant_id, distributor_id, action, note=args.get("note"))
            return distributors.describe(found)

    decide.__name__ = f"{action}_distributor"
    decide.__doc__ = {
        "approve": "Approve an application (or a rejected one).",
        "reject": "Reject an application.",
        "disable": "Disable a distributor: no new commissions, no withdrawals; what is recorded stays theirs.",
        "enable": "Enable a disabled distributor again.",
    }[action]
    blp.route(f"/distributors/<int:distributor_id>/{action}", methods=["POST"])(decide)


for _action in ("approve", "reject", "disable", "enable"):
    _decision(_action)


@blp.route("/distributors/<int:distributor_id>/tier", methods=["PUT"])
@staff_required("distribution:manage")
@blp.arguments(TierChoiceSchema)
@blp.response(200, DistributorSchema)
def set_tier(args: dict[str, Any], distributor_id: int) -> dict[str, Any]:
    """Put a distributor in a tier (null: none)."""
    with transaction():
        found = distributors.set_tier(current_caller().merchant_id, distributor_id, args["tier_id"])
        return distributors.describe(found)


@blp.route("/distributors/<int:distributor_id>/ledger")
@staff_required("distribution:read")
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, LedgerPageSchema)
def distributor_ledger(args: dict[str, Any], distributor_id: int) -> Page:
    """Every movement of the distributor's money, newest first."""
    return dashboard.distributor_ledger(current_caller().merchant_id, distributor_id, **args)


@blp.route("/distributors/<int:distributor_id>/adjustments", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(BalanceAdjustmentSchema)
@blp.response(201, LedgerEntrySchema)
def adjust(args: dict[str, Any], distributor_id: int) -> LedgerEntry:
    """A manual adjustment of the withdrawable balance (positive or negative, never 0), with its
    reason (required)."""
    caller = current_caller()
    with transaction():
        return distributors.adjust(
            caller.merchant_id, distributor_id, args["amount"], args["reason"], staff_id=caller.subject_id
        )


@blp.route("/commissions")
@staff_required("distribution:read")
@blp.arguments(MerchantCommissionArgsSchema, location="query")
@blp.response(200, CommissionPageSchema)
def list_commissions(args: dict[str, Any]) -> Page:
    """Every commission, newest first; filter by status, distributor or order."""
    return dashboard.merchant_commissions(current_caller().merchant_id, **args)


@blp.route("/withdrawals")
@staff_required("distribution:read")
@blp.arguments(WithdrawalArgsSchema, location="query")
@blp.response(200, WithdrawalPageSchema)
def list_withdrawals(args: dict[str, Any]) -> Page:
    """Withdrawals, newest first; filter by status or distributor."""
    return withdrawals.list_withdrawals(current_caller().merchant_id, **args)


@blp.route("/withdrawals/<int:withdrawal_id>")
@staff_required("distribution:read")
@blp.response(200, WithdrawalSchema)
def get_withdrawal(withdrawal_id: int) -> Withdrawal:
    """One withdrawal."""
    return withdrawals.get_withdrawal(current_caller().merchant_id, withdrawal_id)


@blp.route("/withdrawals/<int:withdrawal_id>/approve", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(DecisionSchema)
@blp.response(200, WithdrawalSchema)
def approve_withdrawal(args: dict[str, Any], withdrawal_id: int) -> Withdrawal:
    """Approve a requested withdrawal: a job transfers the payout to the distributor's WeChat
    change (商家转账). Deciding twice: 409 illegal_transition."""
    caller = current_caller()
    with transaction():
        return withdrawals.decide(
            caller.merchant_id, withdrawal_id, "approve", staff_id=caller.subject_id, note=args.get("note", "")
        )


@blp.route("/withdrawals/<int:withdrawal_id>/reject", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(DecisionSchema)
@blp.response(200, WithdrawalSchema)
def reject_withdrawal(args: dict[str, Any], withdrawal_id: int) -> Withdrawal:
    """Reject a requested withdrawal: the amount returns to the withdrawable balance."""
    caller = current_caller()
    with transaction():
        return withdrawals.decide(
            caller.merchant_id, withdrawal_id, "reject", staff_id=caller.subject_id, note=args.get("note", "")
        )


@blp.route("/reconciliation")
@staff_required("money:approve")
@blp.response(200, ReconciliationSchema)
def reconciliation() -> dict[str, Any]:
    """Check every distributor's balances against their ledger and commissions."""
    checked, problems = ledger.reconcile(current_caller().merchant_id)
    return {"distributors": checked, "problems": problems}
