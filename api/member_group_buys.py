"""/api/v1/group-buys and /api/v1/groups: group buys (拼团) members open, share and join."""

from __future__ import annotations

from typing import Any

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.member_orders import check_quoted_pickup, idempotency_key, selections_of
from api.schemas.common import PageArgsSchema
from api.schemas.offers import (
    GroupOrderCreateSchema,
    GroupPageSchema,
    GroupPlacedSchema,
    GroupQuoteSchema,
    GroupSchema,
    MemberGroupBuyListSchema,
    MemberGroupBuySchema,
)
from api.schemas.orders import IDEMPOTENCY_KEY_PARAMETER, QuoteSchema
from shop.checkout.pricing import Quote
from shop.core.db import transaction, utcnow
from shop.core.pagination import Page
from shop.offers import group_buys
from shop.offers import service as offers
from shop.offers.group_buys import GroupPlaced, GroupView
from shop.offers.models import GROUP_BUY, GroupStatus
from shop.offers.service import OfferView
from shop.orders.service import request_fingerprint

blp = Blueprint("member_group_buys", __name__, url_prefix="/api/v1", description="Group buys, 拼团 (members)")


@blp.route("/group-buys")
@member_required
@blp.response(200, MemberGroupBuyListSchema)
def group_buys_list() -> dict[str, Any]:
    """Upcoming and running group buys, the soonest first: terms (size, price, the initiator's
    price, whether short groups complete anyway: 模拟成团), units left and countdown data."""
    caller = current_caller()
    return {
        "server_time": utcnow(),
        "items": offers.current_offers(caller.merchant_id, kind=GROUP_BUY, member_id=caller.subject_id),
    }


@blp.route("/group-buys/<int:offer_id>")
@member_required
@blp.response(200, MemberGroupBuySchema)
def group_buy(offer_id: int) -> OfferView:
    """One group buy."""
    caller = current_caller()
    return offers.offer_view(caller.merchant_id, offer_id, kind=GROUP_BUY, member_id=caller.subject_id)


@blp.route("/group-buys/<int:offer_id>/groups", methods=["GET"])
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, GroupPageSchema)
def forming_groups(args: dict[str, Any], offer_id: int) -> Page:
    """Groups of the group buy still forming, to join (newest first)."""
    caller = current_caller()
    return group_buys.group_page(
        caller.merchant_id, offer_id, status=GroupStatus.FORMING.value, viewer_id=caller.subject_id, **args
    )


def _placement(args: dict[str, Any], target: str, target_id: int) -> dict[str, Any]:
    return {
        "fulfilment": args["fulfilment"],
        "address": args.get("address"),
        "pickup_point_id": args.get("pickup_point_id"),
        "remark": args["remark"],
        "selections": selections_of(args),
        "idempotency_key": idempotency_key(),
        "fingerprint": request_fingerprint({**args, target: target_id}),
    }


def _answer(placed: GroupPlaced) -> tuple[dict[str, Any], int]:
    view = group_buys.group_view(placed.group.merchant_id, placed.group.id, viewer_id=placed.order.member_id)
    return {"group": view, "order": placed.order}, 200 if placed.replayed else 201


@blp.route("/group-buys/<int:offer_id>/groups", methods=["POST"])
@member_required
@blp.arguments(GroupOrderCreateSchema)
@blp.response(201, GroupPlacedSchema)
@blp.alt_response(200, schema=GroupPlacedSchema, description="a retry with the same Idempotency-Key and body")
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def open_group(args: dict[str, Any], offer_id: int) -> tuple[dict[str, Any], int]:
    """Open a group (开团): the initiator's order, at the initiator's price if the offer has one.
    The group opens to others once this order is paid; its clock starts then. Share the group's
    id (`group.share`)."""
    caller = current_caller()
    with transaction():
        placed = group_buys.open_group(
            caller.merchant_id,
            caller.subject_id,
            offer_id,
            quantity=args["quantity"],
            order_fields=_placement(args, "open_group_buy", offer_id),
        )
    return _answer(placed)


def _quote_terms(args: dict[str, Any]) -> dict[str, Any]:
    check_quoted_pickup(current_caller().merchant_id, args)
    return {"quantity": args["quantity"], "fulfilment": args["fulfilment"], "selections": selections_of(args)}


@blp.route("/group-buys/<int:offer_id>/quote", methods=["POST"])
@member_required
@blp.arguments(GroupQuoteSchema)
@blp.response(200, QuoteSchema)
def quote_open(args: dict[str, Any], offer_id: int) -> Quote:
    """What opening a group would cost me: the initiator's price, the coupons that apply (the best
    one unless `coupons` says), shipping, the payable total; with the refusals opening would meet.
    Reserves nothing. Coupons that would make a group order free are not chosen for you (a group
    order is paid through WeChat Pay)."""
    caller = current_caller()
    return group_buys.quote_open(caller.merchant_id, caller.subject_id, offer_id, **_quote_terms(args))


@blp.route("/groups/<int:group_id>/quote", methods=["POST"])
@member_required
@blp.arguments(GroupQuoteSchema)
@blp.response(200, QuoteSchema)
def quote_join(args: dict[str, Any], group_id: int) -> Quote:
    """What joining the group would cost me, as for opening one; 409 group_closed,
    already_in_group or offer_limit_reached when joining would be refused."""
    caller = current_caller()
    return group_buys.quote_join(caller.merchant_id, caller.subject_id, group_id, **_quote_terms(args))


@blp.route("/groups")
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, GroupPageSchema)
def my_groups(args: dict[str, Any]) -> Page:
    """The groups I opened or joined (with an order not cancelled), newest first."""
    caller = current_caller()
    return group_buys.member_group_page(caller.merchant_id, caller.subject_id, **args)


@blp.route("/groups/<int:group_id>")
@member_required
@blp.response(200, GroupSchema)
def group(group_id: int) -> GroupView:
    """A group's progress: masked names and avatars of its paid members, seats left, time left,
    whether it completes short (模拟成团) and whether it was completed that way; `my_order`: my
    own order for it, if I have one (to pay it, or to follow it)."""
    caller = current_caller()
    return group_buys.group_view(caller.merchant_id, group_id, viewer_id=caller.subject_id)


@blp.route("/groups/<int:group_id>/orders", methods=["POST"])
@member_required
@blp.arguments(GroupOrderCreateSchema)
@blp.response(201, GroupPlacedSchema)
@blp.alt_response(200, schema=GroupPlacedSchema, description="a retry with the same Idempotency-Key and body")
@blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
def join_group(args: dict[str, Any], group_id: int) -> tuple[dict[str, Any], int]:
    """Join a group (参团) by placing an order for it; the seat is yours once it is paid (409
    group_closed when it is full, closed or not open yet; already_in_group). When several pay for
    the last seat, one gets it and the others are refunded automatically."""
    caller = current_caller()
    with transaction():
        placed = group_buys.join_group(
            caller.merchant_id,
            caller.subject_id,
            group_id,
            quantity=args["quantity"],
            order_fields=_placement(args, "join_group", group_id),
        )
    return _answer(placed)
