"""/api/v1/merchant: referral rewards (裂变礼品) and who earned them (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.common import PageArgsSchema
from api.schemas.referrals import (
    ReferralGrantPageSchema,
    ReferralRewardCreateSchema,
    ReferralRewardPageSchema,
    ReferralRewardSchema,
    ReferralRewardUpdateSchema,
)
from coupons import referrals
from coupons.models import ReferralReward
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint("merchant_referrals", __name__, url_prefix="/api/v1/merchant", description="Referral rewards (staff)")


@blp.route("/referral-rewards")
class Rewards(MethodView):
    @staff_required("coupons:read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ReferralRewardPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The merchant's referral rewards, newest first."""
        return referrals.list_rewards(current_caller().merchant_id, **args)

    @staff_required("coupons:write")
    @blp.arguments(ReferralRewardCreateSchema)
    @blp.response(201, ReferralRewardSchema)
    def post(self, args: dict[str, Any]) -> ReferralReward:
        """A reward for the direct inviter when an invitee first logs in through the invite
        (joined) or completes a first paid order (first_order): a coupon or a campaign prize,
        once per invitee, never cash, never for oneself, nothing up a chain."""
        with transaction():
            return referrals.create_reward(current_caller().merchant_id, **args)


@blp.route("/referral-rewards/<int:reward_id>")
class RewardItem(MethodView):
    @staff_required("coupons:read")
    @blp.response(200, ReferralRewardSchema)
    def get(self, reward_id: int) -> ReferralReward:
        """One referral reward."""
        return referrals.get_reward(current_caller().merchant_id, reward_id)

    @staff_required("coupons:write")
    @blp.arguments(ReferralRewardUpdateSchema)
    @blp.response(200, ReferralRewardSchema)
    def patch(self, args: dict[str, Any], reward_id: int) -> ReferralReward:
        """Rename, pause (earned and not issued yet: skipped) or resume it, or change its delay."""
        with transaction():
            return referrals.update_reward(current_caller().merchant_id, reward_id, **args)


@blp.route("/referral-rewards/<int:reward_id>/grants")
@staff_required("coupons:read")
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, ReferralGrantPageSchema)
def grants(args: dict[str, Any], reward_id: int) -> Page:
    """Who earned the reward, for whom, and whether it was issued."""
    return referrals.grant_page(current_caller().merchant_id, reward_id=reward_id, **args)
