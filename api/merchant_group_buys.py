"""/api/v1/merchant/group-buys: group buys (拼团) on SKUs and their groups (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.common import NoBodySchema
from api.schemas.offers import (
    GroupBuyCreateSchema,
    GroupBuyPageSchema,
    GroupBuySchema,
    GroupBuyUpdateSchema,
    GroupListArgsSchema,
    OfferListArgsSchema,
    StaffGroupPageSchema,
)
from shop.core.db import transaction
from shop.core.pagination import Page
from shop.offers import group_buys
from shop.offers import service as offers
from shop.offers.models import GROUP_BUY
from shop.offers.service import OfferView

blp = Blueprint("merchant_group_buys", __name__, url_prefix="/api/v1/merchant", description="Group buys, 拼团 (staff)")


@blp.route("/group-buys")
class GroupBuys(MethodView):
    @staff_required("catalog:read")
    @blp.arguments(OfferListArgsSchema, location="query")
    @blp.response(200, GroupBuyPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The merchant's group buys, newest first, with their groups by status."""
        return offers.offer_page(current_caller().merchant_id, kind=GROUP_BUY, **args)

    @staff_required("catalog:write")
    @blp.arguments(GroupBuyCreateSchema)
    @blp.response(201, GroupBuySchema)
    def post(self, args: dict[str, Any]) -> OfferView:
        """A group buy on a SKU: the group size (2 to 50), the group price, an initiator's
        price or reward, the time a group has once its initiator paid, what happens to a group
        short at its time (refund, or complete it anyway: 模拟成团, which members are shown),
        and the units set aside from the SKU's stock (409 insufficient_stock beyond it)."""
        caller = current_caller()
        sku_id = args.pop("sku_id")
        with transaction():
            offer = offers.create_offer(
                caller.merchant_id, kind=GROUP_BUY, sku_id=sku_id, values=args, staff_id=caller.subject_id
            )
        return offers.offer_view(caller.merchant_id, offer.id, kind=GROUP_BUY)


@blp.route("/group-buys/<int:offer_id>")
class GroupBuyItem(MethodView):
    @staff_required("catalog:read")
    @blp.response(200, GroupBuySchema)
    def get(self, offer_id: int) -> OfferView:
        """One group buy, with its units and groups now."""
        return offers.offer_view(current_caller().merchant_id, offer_id, kind=GROUP_BUY)

    @staff_required("catalog:write")
    @blp.arguments(GroupBuyUpdateSchema)
    @blp.response(200, GroupBuySchema)
    def patch(self, args: dict[str, Any], offer_id: int) -> OfferView:
        """Change its terms (not the SKU nor the group size); the quota as for flash sales."""
        caller = current_caller()
        with transaction():
            offers.update_offer(caller.merchant_id, offer_id, kind=GROUP_BUY, changes=args, staff_id=caller.subject_id)
        return offers.offer_view(caller.merchant_id, offer_id, kind=GROUP_BUY)


@blp.route("/group-buys/<int:offer_id>/end", methods=["POST"])
@staff_required("catalog:write")
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, GroupBuySchema)
def end(offer_id: int) -> OfferView:
    """End it now: no new group; groups forming close at once (completed or refunded as the
    offer says) once their time, now the offer's end, is up; free units go back to the SKU."""
    caller = current_caller()
    with transaction():
        offers.end_offer(caller.merchant_id, offer_id, kind=GROUP_BUY, staff_id=caller.subject_id)
    return offers.offer_view(caller.merchant_id, offer_id, kind=GROUP_BUY)


@blp.route("/group-buys/<int:offer_id>/groups")
@staff_required("catalog:read")
@blp.arguments(GroupListArgsSchema, location="query")
@blp.response(200, StaffGroupPageSchema)
def groups(args: dict[str, Any], offer_id: int) -> Page:
    """The groups of a group buy, newest first, optionally in one status; each member who paid
    with their member id and order id."""
    return group_buys.group_page(current_caller().merchant_id, offer_id, staff=True, **args)
