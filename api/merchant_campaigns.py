"""/api/v1/merchant: lottery campaigns, their tiers and upgrade offers, draws, economics, and the
redemption of prizes in store (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.campaigns import (
    CampaignCreateSchema,
    CampaignPageSchema,
    CampaignSchema,
    CampaignUpdateSchema,
    DrawPageSchema,
    EconomicsSchema,
    PrizePageSchema,
    PrizeSchema,
    PrizeTierSchema,
    PrizeTierUpdateSchema,
    RedeemedPrizeSchema,
    RedeemSchema,
    StaffPrizeArgsSchema,
    UpgradeOfferCreateSchema,
    UpgradeOfferListSchema,
    UpgradeOfferSchema,
    UpgradeOfferUpdateSchema,
)
from api.schemas.common import PageArgsSchema
from coupons import campaigns, prizes
from coupons.models import UpgradeOffer
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint(
    "merchant_campaigns",
    __name__,
    url_prefix="/api/v1/merchant",
    description="Campaigns: lottery, upgrades, redemption (staff)",
)


@blp.route("/campaigns")
class Campaigns(MethodView):
    @staff_required("coupons:read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, CampaignPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The merchant's campaigns, newest first."""
        return campaigns.list_campaigns(current_caller().merchant_id, **args)

    @staff_required("coupons:write")
    @blp.arguments(CampaignCreateSchema)
    @blp.response(201, CampaignSchema)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Create a lottery campaign with its prize tiers (best first): odds adding up to 10,000
        bp, a quota for each tier but the guaranteed one, a gift (with its cost) or a coupon
        template; the entry rule and the window."""
        merchant_id = current_caller().merchant_id
        with transaction():
            campaign = campaigns.create_campaign(merchant_id, **args)
            return campaigns.describe(campaign)


@blp.route("/campaigns/<int:campaign_id>")
class CampaignItem(MethodView):
    @staff_required("coupons:read")
    @blp.response(200, CampaignSchema)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """One campaign with its tiers (what is left of each) and upgrade offers."""
        merchant_id = current_caller().merchant_id
        return campaigns.describe(campaigns.get_campaign(merchant_id, campaign_id))

    @staff_required("coupons:write")
    @blp.arguments(CampaignUpdateSchema)
    @blp.response(200, CampaignSchema)
    def patch(self, args: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        """Change the name, wording, window, entry cap, qualifying amount, voucher days, or pause it."""
        with transaction():
            return campaigns.update_campaign(current_caller().merchant_id, campaign_id, **args)


@blp.route("/campaigns/<int:campaign_id>/tiers/<int:tier_id>", methods=["PATCH"])
@staff_required("coupons:write")
@blp.arguments(PrizeTierUpdateSchema)
@blp.response(200, PrizeTierSchema)
def update_tier(args: dict[str, Any], campaign_id: int, tier_id: int) -> dict[str, Any]:
    """Change a tier's name, wording, cost or quota (never below what it gave: 409 quota_below_taken)."""
    with transaction():
        return campaigns.update_tier(current_caller().merchant_id, campaign_id, tier_id, **args)


@blp.route("/campaigns/<int:campaign_id>/upgrade-offers")
class Offers(MethodView):
    @staff_required("coupons:read")
    @blp.response(200, UpgradeOfferListSchema)
    def get(self, campaign_id: int) -> dict[str, list[UpgradeOffer]]:
        """The campaign's upgrade offers: `{"items": [...]}`."""
        merchant_id = current_caller().merchant_id
        campaigns.get_campaign(merchant_id, campaign_id)
        return {"items": campaigns.list_offers(merchant_id, campaign_id)}

    @staff_required("coupons:write")
    @blp.arguments(UpgradeOfferCreateSchema)
    @blp.response(201, UpgradeOfferSchema)
    def post(self, args: dict[str, Any], campaign_id: int) -> UpgradeOffer:
        """Offer "tier X -> tier Y for P fen" (加价升级): gift tiers of this campaign, Y ranked
        above X, P at least 1 fen."""
        with transaction():
            return campaigns.create_offer(current_caller().merchant_id, campaign_id, **args)


@blp.route("/campaigns/<int:campaign_id>/upgrade-offers/<int:offer_id>", methods=["PATCH"])
@staff_required("coupons:write")
@blp.arguments(UpgradeOfferUpdateSchema)
@blp.response(200, UpgradeOfferSchema)
def update_offer(args: dict[str, Any], campaign_id: int, offer_id: int) -> UpgradeOffer:
    """Change an offer's price (for upgrades placed from now on) or pause it."""
    with transaction():
        return campaigns.update_offer(current_caller().merchant_id, campaign_id, offer_id, **args)


@blp.route("/campaigns/<int:campaign_id>/draws")
@staff_required("coupons:read")
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, DrawPageSchema)
def draws(args: dict[str, Any], campaign_id: int) -> Page:
    """The campaign's draws, newest first: who drew, the roll, the tier, the prize."""
    return campaigns.draw_page(current_caller().merchant_id, campaign_id, **args)


@blp.route("/campaigns/<int:campaign_id>/economics")
@staff_required("coupons:read")
@blp.response(200, EconomicsSchema)
def economics(campaign_id: int) -> dict[str, Any]:
    """Does the campaign pay for itself (一分钱不花)? Entries, draws and prizes per tier with their
    cost, upgrades taken and their take-up, upgrade revenue (paid minus refunded) against the cost
    of the prizes."""
    return campaigns.economics(current_caller().merchant_id, campaign_id)


@blp.route("/prizes")
@staff_required("coupons:read")
@blp.arguments(StaffPrizeArgsSchema, location="query")
@blp.response(200, PrizePageSchema)
def prize_list(args: dict[str, Any]) -> Page:
    """The merchant's prizes, newest first; by campaign, status or code (what a code is before
    redeeming it)."""
    return prizes.prize_page(current_caller().merchant_id, **args)


@blp.route("/prizes/<int:prize_id>")
@staff_required("coupons:read")
@blp.response(200, PrizeSchema)
def prize_detail(prize_id: int) -> dict[str, Any]:
    """One prize."""
    return prizes.get_prize(current_caller().merchant_id, prize_id)


@blp.route("/prizes/redeem", methods=["POST"])
@staff_required("prizes:redeem")
@blp.arguments(RedeemSchema)
@blp.response(200, RedeemedPrizeSchema)
def redeem(args: dict[str, Any]) -> dict[str, Any]:
    """Redeem a gift in store by its 8-digit code (核销), once: a repeat answers the first
    redemption with already_redeemed true (a code shown twice: hand nothing over again). 404 for a
    code unknown here; 409 prize_not_redeemable (voided, or held by an upgrade being paid),
    prize_expired, refund_in_progress."""
    caller = current_caller()
    with transaction():
        prize, replayed = prizes.redeem(caller.merchant_id, args["code"], staff_id=caller.subject_id)
    return {**prize, "already_redeemed": replayed}
