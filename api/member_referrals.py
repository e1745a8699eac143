"""/api/v1: the referral rewards a member earned for the people they invited (members)."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.schemas.common import PageArgsSchema
from api.schemas.referrals import MemberReferralSummarySchema, ReferralGrantPageSchema
from coupons import referrals
from shop.core.pagination import Page

blp = Blueprint("member_referrals", __name__, url_prefix="/api/v1", description="Referral rewards (members)")


@blp.route("/referral-rewards")
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, ReferralGrantPageSchema)
def earned(args: dict[str, Any]) -> Page:
    """The rewards the member earned for their invitees (裂变礼品), newest first: pending (issued
    when due), issued (the coupon or prize), or skipped (sold out meanwhile)."""
    caller = current_caller()
    return referrals.grant_page(caller.merchant_id, inviter_id=caller.subject_id, **args)


@blp.route("/referral-rewards/summary")
@member_required
@blp.response(200, MemberReferralSummarySchema)
def summary() -> dict[str, Any]:
    """What inviting someone earns now, and how many rewards the member has."""
    caller = current_caller()
    return referrals.member_summary(caller.merchant_id, caller.subject_id)
