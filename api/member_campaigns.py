"""/api/v1: campaigns, draws, prizes and their upgrades (members)."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.member_orders import idempotency_key
from api.schemas.campaigns import (
    DrawSchema,
    MemberCampaignListSchema,
    MemberCampaignSchema,
    MemberPrizeArgsSchema,
    PrizePageSchema,
    PrizeSchema,
    UpgradeSchema,
)
from api.schemas.common import NoBodySchema
from api.schemas.orders import IDEMPOTENCY_KEY_PARAMETER, OrderSchema
from coupons import campaigns, prizes
from shop.core.db import transaction
from shop.core.pagination import Page
from shop.orders.models import Order

blp = Blueprint("member_campaigns", __name__, url_prefix="/api/v1", description="Campaigns and prizes (members)")


@blp.route("/campaigns")
@member_required
@blp.response(200, MemberCampaignListSchema)
def campaign_list() -> dict[str, Any]:
    """The merchant's lottery campaigns running or about to, with their tiers and odds, the
    upgrade offers, and the member's chances (draws left)."""
    caller = current_caller()
    return {"items": campaigns.member_campaigns(caller.merchant_id, caller.subject_id)}


@blp.route("/campaigns/<int:campaign_id>")
@member_required
@blp.response(200, MemberCampaignSchema)
def campaign_detail(campaign_id: int) -> dict[str, Any]:
    """One campaign with the member's chances."""
    caller = current_caller()
    return campaigns.member_campaign(caller.merchant_id, caller.subject_id, campaign_id)


@blp.route("/campaigns/<int:campaign_id>/draws", methods=["POST"])
@member_required
@blp.arguments(NoBodySchema)
@blp.response(201, DrawSchema)
@blp.alt_response(200, schema=DrawSchema, description="a retry with the same Idempotency-Key")
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def draw(args: dict[str, Any], campaign_id: int) -> tuple[dict[str, Any], int]:
    """Draw once (抽奖), spending one entry: the prize won, by server-side chance. 409
    campaign_not_active, no_entries, campaign_exhausted (nothing spent)."""
    caller = current_caller()
    key = idempotency_key()
    with transaction():
        result, replayed = campaigns.draw(caller.merchant_id, caller.subject_id, campaign_id, idempotency_key=key)
    return result, 200 if replayed else 201


@blp.route("/prizes")
@member_required
@blp.arguments(MemberPrizeArgsSchema, location="query")
@blp.response(200, PrizePageSchema)
def prize_list(args: dict[str, Any]) -> Page:
    """The member's prizes, newest first: each gift with its redemption code and the upgrades
    offered for it."""
    caller = current_caller()
    return prizes.prize_page(caller.merchant_id, member_id=caller.subject_id, **args)


@blp.route("/prizes/<int:prize_id>")
@member_required
@blp.response(200, PrizeSchema)
def prize_detail(prize_id: int) -> dict[str, Any]:
    """One of the member's prizes."""
    caller = current_caller()
    return prizes.get_prize(caller.merchant_id, prize_id, member_id=caller.subject_id)


@blp.route("/prizes/<int:prize_id>/upgrade", methods=["POST"])
@member_required
@blp.arguments(UpgradeSchema)
@blp.response(201, OrderSchema)
@blp.alt_response(200, schema=OrderSchema, description="a retry with the same Idempotency-Key and body")
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def upgrade(args: dict[str, Any], prize_id: int) -> tuple[Order, int]:
    """Buy an upgrade of this gift (加价升级): an order of kind prize_upgrade to pay at
    POST /orders/{id}/pay; the gift is held until it is paid (then exchanged) or cancelled. 409
    prize_not_upgradable, prize_sold_out, offer_paused."""
    caller = current_caller()
    key = idempotency_key()
    with transaction():
        placed = prizes.place_upgrade(
            caller.merchant_id, caller.subject_id, prize_id, args["offer_id"], idempotency_key=key
        )
    return placed.order, 200 if placed.replayed else 201
