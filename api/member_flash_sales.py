"""/api/v1/flash-sales: flash sales (秒杀) members see and buy from."""

from __future__ import annotations

from typing import Any

from flask import request

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.member_orders import idempotency_key, selections_of
from api.schemas.offers import FlashOrderCreateSchema, MemberFlashSaleListSchema, MemberFlashSaleSchema
from api.schemas.orders import IDEMPOTENCY_KEY_PARAMETER, OrderSchema
from shop.core.db import utcnow
from shop.offers import flash_sales
from shop.offers import service as offers
from shop.offers.models import FLASH_SALE
from shop.offers.service import OfferView
from shop.orders.models import Order
from shop.orders.service import request_fingerprint

# In the environ of a request the flash lane (api.flash_lane) tried to place and handed on to the app:
# the view goes the usual way at once instead of trying the one-round-trip placement again.
TRIED = "groupshop.flash_lane.tried"

blp = Blueprint("member_flash_sales", __name__, url_prefix="/api/v1", description="Flash sales, 秒杀 (members)")


@blp.route("/flash-sales")
@member_required
@blp.response(200, MemberFlashSaleListSchema)
def flash_sales_list() -> dict[str, Any]:
    """Upcoming and running flash sales, the soonest first, with countdown data (seconds to the
    start and to the end, and the server's time) and the units the member holds of each."""
    caller = current_caller()
    return {
        "server_time": utcnow(),
        "items": offers.current_offers(caller.merchant_id, kind=FLASH_SALE, member_id=caller.subject_id),
    }


@blp.route("/flash-sales/<int:offer_id>")
@member_required
@blp.response(200, MemberFlashSaleSchema)
def flash_sale(offer_id: int) -> OfferView:
    """One flash sale, with countdown data."""
    caller = current_caller()
    return offers.offer_view(caller.merchant_id, offer_id, kind=FLASH_SALE, member_id=caller.subject_id)


@blp.route("/flash-sales/<int:offer_id>/orders", methods=["POST"])
@member_required
@blp.arguments(FlashOrderCreateSchema)
@blp.response(201, OrderSchema)
@blp.alt_response(200, schema=OrderSchema, description="a retry with the same Idempotency-Key and body")
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def place(args: dict[str, Any], offer_id: int) -> tuple[Order, int]:
    """Buy the sale's SKU at the flash price ("buy now", one SKU): 409 offer_not_active outside
    its window, sold_out when no unit is left, offer_limit_reached over the per-member limit. The
    order must be paid within the sale's payment_minutes; unpaid, its units go back to the sale."""
    caller = current_caller()
    placed = flash_sales.place_flash_order(
        caller.merchant_id,
        caller.subject_id,
        offer_id,
        **placement_terms(args, offer_id),
        pickup_point_id=args.get("pickup_point_id"),
        selections=selections_of(args),
        idempotency_key=idempotency_key(),
        quick_tried=bool(request.environ.get(TRIED)),
    )
    return placed.order, 200 if placed.replayed else 201


def placement_terms(args: dict[str, Any], offer_id: int) -> dict[str, Any]:
    """What a placement's body asks, as `place_flash_order` and `place_while_selling` take it (the
    fingerprint tells a retry from a reused key)."""
    return {
        "quantity": args["quantity"],
        "fulfilment": args["fulfilment"],
        "address": args.get("address"),
        "remark": args["remark"],
        "fingerprint": request_fingerprint({**args, "flash_sale": offer_id}),
    }
