"""The wire contract of distribution: the program settings, tiers and overrides (staff), the
distributors and their money (staff), and the distributor's own dashboard, team, ranking, invite
and withdrawals (members). Amounts in fen, rates in basis points. Types and ranges are checked
here; rules across fields (levels, a rule's amount, ids of this merchant) are the service's 422."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.common import MAX_FEN, MAX_ID, Fen, InputSchema, PageArgsSchema
from distribution.models import (
    BINDING_RULES,
    COMMISSION_STATUSES,
    DISTRIBUTOR_STATUSES,
    ENTRY_KINDS,
    JOIN_RULES,
    OVERRIDE_MODES,
    TIER_MATCHES,
    WITHDRAWAL_STATUSES,
    Program,
    Tier,
)

ID_RANGE = validate.Range(min=1, max=MAX_ID)
RATE = validate.Range(min=0, max=10_000)


def _id(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=ID_RANGE, **kwargs)


def _query_id(**kwargs) -> fields.Integer:
    """An id in a query string (text there, so not strict)."""
    return fields.Integer(validate=ID_RANGE, **kwargs)


def _rate(**kwargs) -> fields.Integer:
    metadata = dict(kwargs.pop("metadata", {}))
    metadata.setdefault("description", "basis points, 0 to 10,000 (1,000 = 10%)")
    return fields.Integer(strict=True, validate=RATE, metadata=metadata, **kwargs)


# --- program settings --------------------------------------------------------------------------


class ProgramSchema(Schema):
    enabled = fields.Boolean()
    levels = fields.Integer()
    rates_bp = fields.Method("_rates")
    self_purchase = fields.Boolean()
    join_rule = fields.String()
    join_min_spent = Fen()
    binding_rule = fields.String()
    lapse_days = fields.Integer(allow_none=True)
    freeze_days = fields.Integer()
    min_withdrawal = Fen()
    withdrawal_fee_bp = fields.Integer()
    transfer_scene_id = fields.String()

    def _rates(self, program: Program) -> list[int]:
        return [program.level1_rate_bp, program.level2_rate_bp][: program.levels]


class ProgramUpdateSchema(InputSchema):
    enabled = fields.Boolean()
    levels = fields.Integer(
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "1 or 2; more is refused (422 levels_not_allowed, with the reason)"},
    )
    rates_bp = fields.List(
        _rate(),
        validate=validate.Length(min=1),
        metadata={"description": "the rate of each level, level 1 first (at most 2)"},
    )
    self_purchase = fields.Boolean(metadata={"description": "whether a distributor earns on their own purchases"})
    join_rule = fields.String(
        validate=validate.OneOf(JOIN_RULES),
        metadata={
            "description": "open (anyone who applies), application (staff approve), spending (after join_min_spent)"
        },
    )
    join_min_spent = Fen()
    binding_rule = fields.String(
        validate=validate.OneOf(BINDING_RULES),
        metadata={
            "description": "first (for good), first_lapsing (until lapse_days without a purchase),"
            " last (the latest invite wins)"
        },
    )
    lapse_days = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=3650))
    freeze_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "days after an order completes before its commissions settle"},
    )
    min_withdrawal = Fen(validate=validate.Range(min=1, max=MAX_FEN))
    withdrawal_fee_bp = _rate()
    transfer_scene_id = fields.String(
        validate=validate.Regexp(r"^[0-9]{1,16}\Z"),
        metadata={"description": "WeChat Pay transfer scene (1005: 佣金报酬)"},
    )


# --- tiers and overrides -------------------------------------------------------------------------


class TierSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    rank = fields.Integer()
    rates_bp = fields.Method("_rates")
    min_team_size = fields.Integer(allow_none=True)
    min_team_sales = Fen(allow_none=True)
    min_own_sales = Fen(allow_none=True)
    match = fields.String()
    created_at = fields.DateTime()

    def _rates(self, tier: Tier) -> list[int | None]:
        return [tier.level1_rate_bp, tier.level2_rate_bp]


class TierListSchema(Schema):
    items = fields.List(fields.Nested(TierSchema))


class TierFieldsSchema(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    rank = fields.Integer(
        strict=True, validate=validate.Range(min=1, max=100), metadata={"description": "higher is better"}
    )
    rates_bp = fields.List(
        _rate(allow_none=True),
        validate=validate.Length(min=1),
        metadata={"description": "this tier's rate per level (null: the program's), at most 2"},
    )
    min_team_size = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=10_000_000))
    min_team_sales = Fen(allow_none=True)
    min_own_sales = Fen(allow_none=True)
    match = fields.String(validate=validate.OneOf(TIER_MATCHES))


class TierCreateSchema(TierFieldsSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    rank = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))


class OverrideSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    sku_id = fields.Integer(allow_none=True)
    level = fields.Integer()
    mode = fields.String()
    rate_bp = fields.Integer(allow_none=True)
    fixed_amount = Fen(allow_none=True)


class OverrideListSchema(Schema):
    items = fields.List(fields.Nested(OverrideSchema))


class OverrideArgsSchema(InputSchema):
    product_id = _query_id()


class OverrideSetSchema(InputSchema):
    product_id = _id(required=True)
    sku_id = _id(allow_none=True, metadata={"description": "one SKU of the product (its override beats the product's)"})
    level = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    mode = fields.String(required=True, validate=validate.OneOf(OVERRIDE_MODES))
    rate_bp = _rate(allow_none=True)
    fixed_amount = Fen(allow_none=True, metadata={"description": "per unit"})


# --- distributors (staff) ------------------------------------------------------------------------


class DistributorSchema(Schema):
    id = fields.Integer()
    member_id = fields.Integer()
    nickname = fields.String()
    invite_code = fields.String()
    status = fields.String()
    tier_id = fields.Integer(allow_none=True)
    real_name = fields.String()
    note = fields.String(metadata={"description": "the member's, with their application"})
    staff_note = fields.String(metadata={"description": "staff's, with their last decision"})
    approved_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    available = fields.Integer(metadata={"description": "withdrawable fen (below 0 after a clawback)"})
    withdrawing = Fen()
    withdrawn = Fen()
    team_sales = Fen(metadata={"description": "what their team paid, counted as commissions settle (tiers read it)"})


class DistributorPageSchema(Schema):
    items = fields.List(fields.Nested(DistributorSchema))
    next_cursor = fields.String(allow_none=True)


class DistributorListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(DISTRIBUTOR_STATUSES))
    q = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "nickname or invite code"})


class DecisionSchema(InputSchema):
    note = fields.String(validate=validate.Length(max=200))


class TierChoiceSchema(InputSchema):
    tier_id = _id(required=True, allow_none=True)


class BalanceAdjustmentSchema(InputSchema):
    amount = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=-MAX_FEN, max=MAX_FEN),
        metadata={"description": "fen added to (or, negative, taken from) the withdrawable balance; not 0"},
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class LedgerEntrySchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": ", ".join(ENTRY_KINDS)})
    pending = fields.Integer(attribute="d_pending")
    available = fields.Integer(attribute="d_available")
    withdrawing = fields.Integer(attribute="d_withdrawing")
    withdrawn = fields.Integer(attribute="d_withdrawn")
    commission_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    withdrawal_id = fields.Integer(allow_none=True)
    settlement_id = fields.Integer(allow_none=True)
    commissions = fields.Integer(metadata={"description": "commission_settled: how many commissions it settled"})
    reason = fields.String()
    created_at = fields.DateTime()


class LedgerPageSchema(Schema):
    items = fields.List(fields.Nested(LedgerEntrySchema))
    next_cursor = fields.String(allow_none=True)


# --- commissions ---------------------------------------------------------------------------------


class CommissionSchema(Schema):
    id = fields.Integer()
    distributor_id = fields.Integer(metadata={"description": "who earns it"})
    order_id = fields.Integer()
    order_no = fields.String()
    order_status = fields.String()
    line_id = fields.Integer()
    level = fields.Integer()
    buyer = fields.String(metadata={"description": "masked"})
    product_id = fields.Integer(allow_none=True)
    sku_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    base_amount = Fen(metadata={"description": "what was paid for the line, net of refunds"})
    rate_bp = fields.Integer(allow_none=True)
    fixed_amount = Fen(allow_none=True)
    original_amount = Fen()
    amount = Fen(metadata={"description": "what it is worth now"})
    clawed_back = Fen()
    status = fields.String(metadata={"description": ", ".join(COMMISSION_STATUSES)})
    due_at = fields.DateTime(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class CommissionPageSchema(Schema):
    items = fields.List(fields.Nested(CommissionSchema))
    next_cursor = fields.String(allow_none=True)


class CommissionArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(COMMISSION_STATUSES))


class MerchantCommissionArgsSchema(CommissionArgsSchema):
    distributor_id = _query_id()
    order_id = _query_id()


# --- withdrawals ---------------------------------------------------------------------------------


class WithdrawalSchema(Schema):
    id = fields.Integer()
    distributor_id = fields.Integer()
    amount = Fen()
    fee = Fen()
    payout = Fen()
    status = fields.String(metadata={"description": ", ".join(WITHDRAWAL_STATUSES)})
    out_bill_no = fields.String()
    transfer_state = fields.String(allow_none=True)
    fail_reason = fields.String(allow_none=True)
    decision_note = fields.String()
    decided_at = fields.DateTime(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class WithdrawalPageSchema(Schema):
    items = fields.List(fields.Nested(WithdrawalSchema))
    next_cursor = fields.String(allow_none=True)


class WithdrawalCreateSchema(InputSchema):
    amount = Fen(required=True, validate=validate.Range(min=1, max=MAX_FEN))


class WithdrawalArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(WITHDRAWAL_STATUSES))
    distributor_id = _query_id()


class ConfirmationSchema(Schema):
    withdrawal_id = fields.Integer()
    mch_id = fields.String()
    app_id = fields.String()
    package_info = fields.String(metadata={"description": "for wx.requestMerchantTransfer"})
    expires_at = fields.DateTime()


# --- the distributor's own views -----------------------------------------------------------------


class EarningsSchema(Schema):
    today = Fen()
    this_month = Fen()
    all_time = Fen()


class BalancesSchema(Schema):
    pending = Fen(metadata={"description": "recorded, not settled yet (frozen)"})
    withdrawable = fields.Integer(metadata={"description": "below 0 after a clawback: blocks withdrawals"})
    withdrawing = Fen()
    withdrawn = Fen()


class SummarySchema(Schema):
    distributor_id = fields.Integer()
    status = fields.String()
    tier_id = fields.Integer(allow_none=True)
    earnings = fields.Nested(EarningsSchema)
    commissions = fields.Integer()
    balances = fields.Nested(BalancesSchema)


class TeamLevelSchema(Schema):
    level = fields.Integer()
    members = fields.Integer()
    sales = Fen()


class TeamSchema(Schema):
    levels = fields.List(fields.Nested(TeamLevelSchema))


class TeamMemberSchema(Schema):
    member = fields.String(metadata={"description": "masked"})
    level = fields.Integer()
    bound_at = fields.DateTime()


class TeamMemberPageSchema(Schema):
    items = fields.List(fields.Nested(TeamMemberSchema))
    next_cursor = fields.String(allow_none=True)


class TeamArgsSchema(PageArgsSchema):
    level = fields.Integer(load_default=1, validate=validate.Range(min=1, max=2))


class RankingItemSchema(Schema):
    rank = fields.Integer()
    name = fields.String(metadata={"description": "masked"})
    earned = Fen()
    me = fields.Boolean()


class RankingMeSchema(Schema):
    rank = fields.Integer(allow_none=True)
    earned = Fen()


class RankingSchema(Schema):
    period = fields.String()
    items = fields.List(fields.Nested(RankingItemSchema))
    me = fields.Nested(RankingMeSchema)


class SharePayloadSchema(Schema):
    path = fields.String()
    page = fields.String()
    scene = fields.String()


class InviteSchema(Schema):
    invite_code = fields.String()
    share = fields.Nested(SharePayloadSchema)


class ApplicationSchema(Schema):
    status = fields.String(
        allow_none=True, metadata={"description": "null: never applied; " + ", ".join(DISTRIBUTOR_STATUSES)}
    )
    join_rule = fields.String()
    join_min_spent = Fen()
    spent = Fen()
    program_enabled = fields.Boolean()
    applied_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)


class ApplicationCreateSchema(InputSchema):
    real_name = fields.String(validate=validate.Length(max=40))
    note = fields.String(validate=validate.Length(max=200))


class ReconciliationProblemSchema(Schema):
    distributor_id = fields.Integer()
    what = fields.String()
    expected = fields.Integer()
    found = fields.Integer()


class ReconciliationSchema(Schema):
    distributors = fields.Integer()
    problems = fields.List(fields.Nested(ReconciliationProblemSchema))
