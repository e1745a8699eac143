"""/api/v1: the claim centre and the member's wallet (members)."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.schemas.common import NoBodySchema
from api.schemas.coupons import CentreSchema, WalletArgsSchema, WalletCouponSchema, WalletPageSchema
from coupons import service as coupons
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint("member_coupons", __name__, url_prefix="/api/v1", description="Coupons (members)")


@blp.route("/coupon-centre")
@member_required
@blp.response(200, CentreSchema)
def centre() -> dict[str, Any]:
    """The claim centre (领券中心): coupons the member may claim, with what is left, how many they
    hold and whether they can claim one now (or why not)."""
    caller = current_caller()
    return {"items": coupons.centre(caller.merchant_id, caller.subject_id)}


@blp.route("/coupon-centre/<int:template_id>/claim", methods=["POST"])
@member_required
@blp.arguments(NoBodySchema)
@blp.response(201, WalletCouponSchema)
def claim(args: dict[str, Any], template_id: int) -> dict[str, Any]:
    """Claim one coupon: 409 coupon_not_claimable (paused, not started, ended, not for this
    member: `details.reason`), coupon_sold_out, coupon_limit_reached."""
    caller = current_caller()
    with transaction():
        return coupons.claim(caller.merchant_id, caller.subject_id, template_id)


@blp.route("/coupons")
@member_required
@blp.arguments(WalletArgsSchema, location="query")
@blp.response(200, WalletPageSchema)
def wallet(args: dict[str, Any]) -> Page:
    """The member's coupons, newest first; `status` filters (a coupon past its validity is expired)."""
    caller = current_caller()
    return coupons.wallet(caller.merchant_id, caller.subject_id, **args)
