"""/api/v1/merchant/flash-sales: flash sales (秒杀) on SKUs (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.common import NoBodySchema
from api.schemas.offers import (
    FlashSaleCreateSchema,
    FlashSalePageSchema,
    FlashSaleSchema,
    FlashSaleUpdateSchema,
    OfferListArgsSchema,
)
from shop.core.db import transaction
from shop.core.pagination import Page
from shop.offers import service as offers
from shop.offers.models import FLASH_SALE
from shop.offers.service import OfferView

blp = Blueprint(
    "merchant_flash_sales", __name__, url_prefix="/api/v1/merchant", description="Flash sales, 秒杀 (staff)"
)


@blp.route("/flash-sales")
class FlashSales(MethodView):
    @staff_required("catalog:read")
    @blp.arguments(OfferListArgsSchema, location="query")
    @blp.response(200, FlashSalePageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The merchant's flash sales, newest first; `state` filters upcoming, running or ended."""
        return offers.offer_page(current_caller().merchant_id, kind=FLASH_SALE, **args)

    @staff_required("catalog:write")
    @blp.arguments(FlashSaleCreateSchema)
    @blp.response(201, FlashSaleSchema)
    def post(self, args: dict[str, Any]) -> OfferView:
        """A flash sale on a SKU: its quota is set aside from the SKU's stock (409
        insufficient_stock when the SKU has less), and units of its orders that expire unpaid or
        are cancelled come back to the quota. Unsold units go back to the SKU when it is over."""
        caller = current_caller()
        sku_id = args.pop("sku_id")
        with transaction():
            offer = offers.create_offer(
                caller.merchant_id, kind=FLASH_SALE, sku_id=sku_id, values=args, staff_id=caller.subject_id
            )
        return offers.offer_view(caller.merchant_id, offer.id, kind=FLASH_SALE)


@blp.route("/flash-sales/<int:offer_id>")
class FlashSaleItem(MethodView):
    @staff_required("catalog:read")
    @blp.response(200, FlashSaleSchema)
    def get(self, offer_id: int) -> OfferView:
        """One flash sale, with its units now."""
        return offers.offer_view(current_caller().merchant_id, offer_id, kind=FLASH_SALE)

    @staff_required("catalog:write")
    @blp.arguments(FlashSaleUpdateSchema)
    @blp.response(200, FlashSaleSchema)
    def patch(self, args: dict[str, Any], offer_id: int) -> OfferView:
        """Change its terms: the start only before it starts; more quota is set aside from the
        SKU, less moves free units back (409 quota_below_sold below what buyers hold)."""
        caller = current_caller()
        with transaction():
            offers.update_offer(caller.merchant_id, offer_id, kind=FLASH_SALE, changes=args, staff_id=caller.subject_id)
        return offers.offer_view(caller.merchant_id, offer_id, kind=FLASH_SALE)


@blp.route("/flash-sales/<int:offer_id>/end", methods=["POST"])
@staff_required("catalog:write")
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, FlashSaleSchema)
def end(offer_id: int) -> OfferView:
    """End it now: its free units go back to the SKU; orders placed stay."""
    caller = current_caller()
    with transaction():
        offers.end_offer(caller.merchant_id, offer_id, kind=FLASH_SALE, staff_id=caller.subject_id)
    return offers.offer_view(caller.merchant_id, offer_id, kind=FLASH_SALE)
