"""The wire contract of campaigns (lottery, prizes, upgrades): staff configure, members draw and
upgrade, staff redeem. Amounts in fen, odds in basis points (all tiers together: 10,000). Types
and ranges are checked here; whether the tiers make sense together (odds adding up, one
guaranteed tier, this merchant's templates, an upgrade within one campaign) is the service's 422,
field by field."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.common import MAX_ID, STORABLE_INSTANT, Fen, FullMatch, InputSchema, PageArgsSchema
from coupons.campaigns import MAX_TIERS, ODDS_TOTAL
from coupons.models import CAMPAIGN_STATUSES, ENTRY_RULES, OFFER_STATUSES, PRIZE_KINDS, PRIZE_STATUSES
from coupons.prizes import CODE_DIGITS

ID_RANGE = validate.Range(min=1, max=MAX_ID)
MAX_QUOTA = 10_000_000
MAX_ENTRIES = 1000
WINDOW = STORABLE_INSTANT
# A redemption code: ASCII digits (`\d` would take any script's digits, full-width ones too).
CODE = FullMatch(rf"[0-9]{{{CODE_DIGITS}}}", error=f"{CODE_DIGITS} digits")


def _id(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=ID_RANGE, **kwargs)


def _query_id(**kwargs) -> fields.Integer:
    """An id in the query string (text, so not strict)."""
    return fields.Integer(validate=ID_RANGE, **kwargs)


class PrizeTierInputSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    description = fields.String(load_default="", validate=validate.Length(max=200))
    prize_kind = fields.String(
        required=True,
        validate=validate.OneOf(PRIZE_KINDS),
        metadata={"description": "gift (a voucher redeemed in store with its code) or coupon (into the wallet)"},
    )
    template_id = _id(allow_none=True, load_default=None, metadata={"description": "coupon: the coupon template"})
    cost = Fen(load_default=0, metadata={"description": "what one prize costs the merchant"})
    quota = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_QUOTA),
        metadata={"description": "how many can be given; null only for the guaranteed tier (no limit)"},
    )
    odds_bp = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=0, max=ODDS_TOTAL),
        metadata={"description": f"chance in basis points; all tiers together {ODDS_TOTAL}"},
    )
    guaranteed = fields.Boolean(
        load_default=False,
        metadata={"description": "everyone who draws wins at least this tier (a draw on a tier run out falls back)"},
    )


class CampaignFields(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    description = fields.String(validate=validate.Length(max=500))
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    starts_at = fields.AwareDateTime(validate=WINDOW)
    ends_at = fields.AwareDateTime(validate=WINDOW)
    max_entries = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_ENTRIES),
        metadata={"description": "entries a member may get (1 for the once rule)"},
    )
    min_paid = Fen(metadata={"description": "per_order: the goods paid for that give an entry"})
    redeem_days = fields.Integer(
        strict=True, validate=validate.Range(min=1, max=365), metadata={"description": "a gift's days to be redeemed"}
    )


class CampaignCreateSchema(CampaignFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    description = fields.String(load_default="", validate=validate.Length(max=500))
    status = fields.String(load_default="active", validate=validate.OneOf(CAMPAIGN_STATUSES))
    starts_at = fields.AwareDateTime(required=True, validate=WINDOW)
    ends_at = fields.AwareDateTime(required=True, validate=WINDOW)
    entry_rule = fields.String(
        required=True,
        validate=validate.OneOf(ENTRY_RULES),
        metadata={
            "description": "once (one draw each), per_order (a paid goods order), per_group (a joined group buy)"
        },
    )
    max_entries = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_ENTRIES))
    min_paid = Fen(load_default=0)
    redeem_days = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=1, max=365))
    tiers = fields.List(
        fields.Nested(PrizeTierInputSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_TIERS),
        metadata={"description": "prize tiers, best first (the first is first prize)"},
    )


class CampaignUpdateSchema(CampaignFields):
    """Any of the fields; tiers change one by one (PATCH .../tiers/{id}), their odds and prizes never."""


class PrizeTierUpdateSchema(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    description = fields.String(validate=validate.Length(max=200))
    cost = Fen()
    quota = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_QUOTA))


class PrizeTierSchema(Schema):
    id = fields.Integer()
    rank = fields.Integer()
    name = fields.String()
    description = fields.String()
    prize_kind = fields.String()
    template_id = fields.Integer(allow_none=True)
    cost = Fen()
    quota = fields.Integer(allow_none=True)
    taken = fields.Integer(metadata={"description": "given or held by an upgrade being paid (tiers with a quota)"})
    left = fields.Integer(allow_none=True)
    odds_bp = fields.Integer()
    guaranteed = fields.Boolean()


class UpgradeOfferCreateSchema(InputSchema):
    from_tier_id = _id(required=True)
    to_tier_id = _id(required=True)
    price = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(max=10_000_000_00),
        metadata={"description": "amount in fen (1/100 yuan): what the upgrade costs, at least 1"},
    )


class UpgradeOfferUpdateSchema(InputSchema):
    price = fields.Integer(strict=True, validate=validate.Range(max=10_000_000_00))
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))


class UpgradeOfferSchema(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer()
    from_tier_id = fields.Integer()
    to_tier_id = fields.Integer()
    price = Fen()
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class UpgradeOfferListSchema(Schema):
    """A campaign's upgrade offers (a handful: one per pair of its tiers at most), in an object as
    every list the API answers, so fields can be added beside them."""

    items = fields.List(fields.Nested(UpgradeOfferSchema))


class CampaignSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    status = fields.String()
    state = fields.String(metadata={"description": "paused, scheduled, running or ended"})
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    entry_rule = fields.String()
    max_entries = fields.Integer()
    min_paid = Fen()
    redeem_days = fields.Integer()
    tiers = fields.List(fields.Nested(PrizeTierSchema))
    upgrade_offers = fields.List(fields.Nested(UpgradeOfferSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CampaignPageSchema(Schema):
    items = fields.List(fields.Nested(CampaignSchema))
    next_cursor = fields.String(allow_none=True)


class PrizeOfferSchema(Schema):
    offer_id = fields.Integer()
    to_tier_id = fields.Integer()
    to_tier_rank = fields.Integer()
    to_tier_name = fields.String()
    price = Fen()
    sold_out = fields.Boolean()


class PendingUpgradeSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()


class PrizeSchema(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer()
    campaign_name = fields.String()
    tier_id = fields.Integer()
    tier_rank = fields.Integer()
    tier_name = fields.String()
    description = fields.String()
    kind = fields.String()
    origin = fields.String(metadata={"description": "draw, upgrade or referral"})
    code = fields.String(allow_none=True, metadata={"description": "gift: the 8-digit redemption code (核销码)"})
    coupon_id = fields.Integer(allow_none=True, metadata={"description": "coupon: the coupon in the wallet"})
    status = fields.String(metadata={"description": "available, held, redeemed, voided, delivered, expired"})
    redeem_until = fields.DateTime(allow_none=True)
    redeemed_at = fields.DateTime(allow_none=True)
    voided_at = fields.DateTime(allow_none=True)
    void_reason = fields.String(allow_none=True)
    member_id = fields.Integer()
    created_at = fields.DateTime()
    upgrade_offers = fields.List(fields.Nested(PrizeOfferSchema))
    pending_upgrade = fields.Nested(PendingUpgradeSchema, allow_none=True)


class RedeemedPrizeSchema(PrizeSchema):
    already_redeemed = fields.Boolean(
        metadata={"description": "true: this code was redeemed before (at redeemed_at): hand nothing over again"}
    )


class PrizePageSchema(Schema):
    items = fields.List(fields.Nested(PrizeSchema))
    next_cursor = fields.String(allow_none=True)


class MemberPrizeArgsSchema(PageArgsSchema):
    status = fields.String(
        validate=validate.OneOf((*PRIZE_STATUSES, "expired")),
        metadata={"description": "available (not past its date), expired, held, redeemed, voided, delivered"},
    )


class StaffPrizeArgsSchema(MemberPrizeArgsSchema):
    campaign_id = _query_id()
    code = fields.String(validate=CODE)


class RedeemSchema(InputSchema):
    code = fields.String(required=True, validate=CODE)


class UpgradeSchema(InputSchema):
    offer_id = _id(required=True)


class DrawSchema(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer()
    member_id = fields.Integer()
    roll = fields.Integer(metadata={"description": "the number drawn, 0-9,999"})
    won = fields.Boolean()
    fell_back = fields.Boolean(metadata={"description": "the tier rolled had run out: the guaranteed tier instead"})
    tier_id = fields.Integer(allow_none=True)
    prize = fields.Nested(PrizeSchema, allow_none=True)
    created_at = fields.DateTime()


class DrawPageSchema(Schema):
    items = fields.List(fields.Nested(DrawSchema))
    next_cursor = fields.String(allow_none=True)


class MemberTierSchema(Schema):
    id = fields.Integer()
    rank = fields.Integer()
    name = fields.String()
    description = fields.String()
    prize_kind = fields.String()
    odds_bp = fields.Integer()
    guaranteed = fields.Boolean()
    sold_out = fields.Boolean()


class MemberOfferSchema(Schema):
    id = fields.Integer()
    from_tier_id = fields.Integer()
    to_tier_id = fields.Integer()
    price = Fen()


class MemberCampaignSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    state = fields.String()
    exhausted = fields.Boolean(
        metadata={"description": "the guaranteed tier has nothing left: draws answer 409 campaign_exhausted"}
    )
    entry_rule = fields.String()
    max_entries = fields.Integer()
    min_paid = Fen()
    tiers = fields.List(fields.Nested(MemberTierSchema))
    upgrade_offers = fields.List(fields.Nested(MemberOfferSchema))
    chances = fields.Integer(metadata={"description": "draws the member has left"})
    drawn = fields.Integer()
    withdrawn = fields.Integer(metadata={"description": "entries taken back (their order was refunded)"})


class MemberCampaignListSchema(Schema):
    items = fields.List(fields.Nested(MemberCampaignSchema))


class EntryCountsSchema(Schema):
    total = fields.Integer()
    open = fields.Integer()
    drawn = fields.Integer()
    withdrawn = fields.Integer()


class TierEconomicsSchema(Schema):
    tier_id = fields.Integer()
    rank = fields.Integer()
    name = fields.String()
    cost = Fen()
    quota = fields.Integer(allow_none=True)
    taken = fields.Integer()
    drawn = fields.Integer()
    fell_back_to = fields.Integer(metadata={"description": "draws given this tier because theirs had run out"})
    by_upgrade = fields.Integer()
    by_referral = fields.Integer()
    live = fields.Integer(metadata={"description": "prizes given and not voided"})
    redeemed = fields.Integer()
    expired = fields.Integer(metadata={"description": "gifts past their date, never redeemed: they cost nothing"})
    voided = fields.Integer()
    cost_of_live = Fen(metadata={"description": "what the live prizes cost, at their tier's cost when given"})


class UpgradeEconomicsSchema(Schema):
    taken = fields.Integer(metadata={"description": "upgrades paid for and kept"})
    pending = fields.Integer()
    cancelled = fields.Integer()
    refunded = fields.Integer()
    eligible_prizes = fields.Integer(metadata={"description": "prizes drawn of a tier that has an upgrade offer"})
    take_up_bp = fields.Integer()


class EconomicsSchema(Schema):
    campaign_id = fields.Integer()
    entries = fields.Nested(EntryCountsSchema)
    draws = fields.Integer()
    misses = fields.Integer(metadata={"description": "draws that won nothing (no guaranteed tier)"})
    tiers = fields.List(fields.Nested(TierEconomicsSchema))
    upgrades = fields.Nested(UpgradeEconomicsSchema)
    upgrade_revenue = Fen(metadata={"description": "paid minus refunded over the campaign's upgrade orders"})
    prize_cost = Fen(metadata={"description": "what the prizes given (not voided) cost the merchant"})
    redeemed_cost = Fen()
    net = fields.Integer(metadata={"description": "fen: upgrade_revenue minus prize_cost (negative: a cost)"})
    covered = fields.Boolean(metadata={"description": "一分钱不花: the upgrade money covers the prizes"})
    coverage_bp = fields.Integer(allow_none=True)
