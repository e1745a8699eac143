"""/api/v1: cart, checkout, orders, payment and refunds for members; pickups for group leaders."""

from __future__ import annotations

import re
from typing import Any

from flask import request
from flask.views import MethodView

from api.auth import current_caller, member_required
from api.blueprint import Blueprint
from api.schemas.common import ErrorSchema, NoBodySchema
from api.schemas.orders import (
    IDEMPOTENCY_KEY_FORMAT,
    IDEMPOTENCY_KEY_PARAMETER,
    IDEMPOTENCY_KEY_PATTERN,
    CartAddSchema,
    CartQuantitySchema,
    CartSchema,
    CheckoutSchema,
    LeaderPickupSchema,
    MemberOrderListArgsSchema,
    OrderCreateSchema,
    OrderPageSchema,
    OrderSchema,
    PaymentParamsSchema,
    PickupCodeSchema,
    PickupPointListSchema,
    QuoteSchema,
    RefundListSchema,
    RefundRequestSchema,
    RefundSchema,
)
from api.throttle import RATE_LIMITED_DOC, pickup_attempt_allowed
from shop.checkout import cart as carts
from shop.checkout import pricing
from shop.checkout.pricing import Quote
from shop.core.db import transaction
from shop.core.errors import InvalidInput
from shop.core.pagination import Page
from shop.identity import pickup_points as points
from shop.identity.models import PickupPoint
from shop.orders import fulfilment, refunds
from shop.orders import service as orders
from shop.orders.models import Order, Refund
from shop.payments.providers import payment_provider
from shop.payments.service import start_payment

blp = Blueprint("member_orders", __name__, url_prefix="/api/v1", description="Cart, orders and payment (members)")

IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@blp.route("/cart")
@member_required
@blp.response(200, CartSchema)
def cart() -> dict[str, Any]:
    """The cart at current prices; lines that can no longer be bought are marked unavailable."""
    caller = current_caller()
    return carts.view_cart(caller.merchant_id, caller.subject_id)


@blp.route("/cart/items", methods=["POST"])
@member_required
@blp.arguments(CartAddSchema)
@blp.response(200, CartSchema)
def add_to_cart(args: dict[str, Any]) -> dict[str, Any]:
    """Add a quantity of a SKU (adds to what is already in the cart)."""
    caller = current_caller()
    with transaction():
        carts.add_to_cart(caller.merchant_id, caller.subject_id, args["sku_id"], args["quantity"])
    return carts.view_cart(caller.merchant_id, caller.subject_id)


@blp.route("/cart/items/<int:sku_id>")
class CartItem(MethodView):
    @member_required
    @blp.arguments(CartQuantitySchema)
    @blp.response(200, CartSchema)
    def put(self, args: dict[str, Any], sku_id: int) -> dict[str, Any]:
        """Set the quantity of a SKU in the cart (0 removes it)."""
        caller = current_caller()
        with transaction():
            carts.set_cart_quantity(caller.merchant_id, caller.subject_id, sku_id, args["quantity"])
        return carts.view_cart(caller.merchant_id, caller.subject_id)

    @member_required
    @blp.response(200, CartSchema)
    def delete(self, sku_id: int) -> dict[str, Any]:
        """Remove a SKU from the cart."""
        caller = current_caller()
        with transaction():
            carts.remove_from_cart(caller.merchant_id, caller.subject_id, sku_id)
        return carts.view_cart(caller.merchant_id, caller.subject_id)


@blp.route("/pickup-points")
@member_required
@blp.response(200, PickupPointListSchema)
def pickup_points() -> dict[str, list[PickupPoint]]:
    """Open pickup points to choose from at checkout."""
    return {"items": points.list_pickup_points(current_caller().merchant_id, only_active=True)}


@blp.route("/checkout/quote", methods=["POST"])
@member_required
@blp.arguments(CheckoutSchema)
@blp.response(200, QuoteSchema)
def quote(args: dict[str, Any]) -> Quote:
    """What the member would pay: lines (at offer prices where items ask for offers), shipping,
    discounts, payable total, and what each pricing adjuster offers (`options`). Reserves nothing."""
    caller = current_caller()
    items = orders.cart_items(caller.merchant_id, caller.subject_id) if args["from_cart"] else args["items"]
    check_quoted_pickup(caller.merchant_id, args)
    return pricing.quote(
        caller.merchant_id,
        caller.subject_id,
        items,
        fulfilment=args["fulfilment"],
        selections=selections_of(args),
        purpose="quote",
    )


def check_quoted_pickup(merchant_id: int, args: dict[str, Any]) -> None:
    """A quote for pickup names an open pickup point of the merchant's (422 pickup_point_invalid),
    as the order placed from it must."""
    if args["fulfilment"] == "pickup":
        pricing.check_pickup_point(merchant_id, args.get("pickup_point_id"))


def selections_of(args: dict[str, Any]) -> dict[str, Any] | None:
    """The pricing selections of a quote or placement: `coupons: [ids]` is the coupons adjuster's
    (`{"coupons": {"ids": [...]}}`), sent either way but not both."""
    selections = dict(args.get("selections") or {})
    if "coupons" in args:
        if "coupons" in selections:
            raise InvalidInput(
                "send the coupons once: coupons or selections.coupons",
                code="validation_error",
                details={"fields": {"coupons": ["also sent as selections.coupons"]}},
            )
        selections["coupons"] = {"ids": args["coupons"]}
    return selections or None


def idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            f"send an Idempotency-Key header ({IDEMPOTENCY_KEY_FORMAT}), new for each new request"
            " (an order, a draw, an upgrade), the same when retrying one",
            code="idempotency_key_required",
            details={
                "fields": {"Idempotency-Key": [IDEMPOTENCY_KEY_FORMAT]},
                "locations": ["headers"],
            },
        )
    return key


@blp.route("/orders")
class Orders(MethodView):
    @member_required
    @blp.arguments(MemberOrderListArgsSchema, location="query")
    @blp.response(200, OrderPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The member's orders, newest first."""
        caller = current_caller()
        return orders.order_page(caller.merchant_id, member_id=caller.subject_id, **args)

    @member_required
    @blp.arguments(OrderCreateSchema)
    @blp.response(201, OrderSchema)
    @blp.alt_response(200, schema=OrderSchema, description="a retry with the same Idempotency-Key and body")
    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, args: dict[str, Any]) -> tuple[Order, int]:
        """Place an order from the cart or "buy now": reserves stock; unpaid, it expires."""
        caller = current_caller()
        key = idempotency_key()
        selections = selections_of(args)

        def place() -> orders.Placed:
            with transaction():
                return orders.place_order(
                    caller.merchant_id,
                    caller.subject_id,
                    items=args.get("items"),
                    from_cart=args["from_cart"],
                    fulfilment=args["fulfilment"],
                    address=args.get("address"),
                    pickup_point_id=args.get("pickup_point_id"),
                    remark=args["remark"],
                    selections=selections,
                    idempotency_key=key,
                    fingerprint=orders.request_fingerprint(args),
                )

        placed = orders.in_turn(place, chosen_by_server=selections is None)
        return placed.order, 200 if placed.replayed else 201


@blp.route("/orders/<int:order_id>")
@member_required
@blp.response(200, OrderSchema)
def order_detail(order_id: int) -> Order:
    """One of the member's orders."""
    caller = current_caller()
    return orders.get_order(caller.merchant_id, order_id, member_id=caller.subject_id)


@blp.route("/orders/<int:order_id>/cancel", methods=["POST"])
@member_required
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, OrderSchema)
def cancel(order_id: int) -> Order:
    """Cancel an unpaid order (its stock goes back)."""
    caller = current_caller()
    with transaction():
        return orders.cancel_order(
            order_id, reason="cancelled_by_member", merchant_id=caller.merchant_id, member_id=caller.subject_id
        )


@blp.route("/orders/<int:order_id>/pay", methods=["POST"])
@member_required
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, PaymentParamsSchema)
def pay(order_id: int) -> dict[str, Any]:
    """Start paying: returns the parameters for wx.requestPayment."""
    caller = current_caller()
    return start_payment(payment_provider(), caller.merchant_id, caller.subject_id, order_id)


@blp.route("/orders/<int:order_id>/confirm-receipt", methods=["POST"])
@member_required
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, OrderSchema)
def confirm_receipt(order_id: int) -> Order:
    """The member got the parcel; the after-sales window starts."""
    caller = current_caller()
    with transaction():
        return fulfilment.confirm_receipt(caller.merchant_id, caller.subject_id, order_id)


@blp.route("/orders/<int:order_id>/refunds")
class OrderRefunds(MethodView):
    @member_required
    @blp.response(200, RefundListSchema)
    def get(self, order_id: int) -> dict[str, list[Refund]]:
        """The refunds of one of the member's orders."""
        caller = current_caller()
        orders.get_order(caller.merchant_id, order_id, member_id=caller.subject_id)
        return {"items": refunds.refund_page(caller.merchant_id, order_id=order_id, late_payments=True)}

    @member_required
    @blp.arguments(RefundRequestSchema)
    @blp.response(201, RefundSchema)
    def post(self, args: dict[str, Any], order_id: int) -> Refund:
        """Ask for a refund of the whole order or of some units of some lines."""
        caller = current_caller()
        with transaction():
            return refunds.request_refund(
                caller.merchant_id, caller.subject_id, order_id, lines=args.get("lines"), reason=args["reason"]
            )


@blp.route("/leader/pickups", methods=["POST"])
@member_required
@blp.arguments(PickupCodeSchema)
@blp.response(200, LeaderPickupSchema)
@blp.alt_response(429, schema=ErrorSchema, **RATE_LIMITED_DOC)
def leader_pickup(args: dict[str, Any]) -> Order:
    """A group leader hands over an order waiting at their pickup point (the code works once).
    Codes tried are throttled per leader (429 `rate_limited`)."""
    caller = current_caller()
    pickup_attempt_allowed(caller)
    with transaction():
        return fulfilment.verify_pickup_as_leader(caller.merchant_id, caller.subject_id, args["code"])
