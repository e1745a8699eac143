from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import MAX_ID, Fen, FullMatch, InputSchema, PageArgsSchema
from shop.orders.models import ORDER_KINDS, ORDER_STATUSES, REFUND_KINDS, REFUND_STATUSES, Order

ID = validate.Range(min=1, max=MAX_ID)
# At most 20 characters in all (the column's size), the "+" included.
PHONE = [validate.Length(max=20), FullMatch(r"^\+?[0-9 -]{5,20}$")]


class ItemSchema(InputSchema):
    sku_id = fields.Integer(required=True, strict=True, validate=ID)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=999))


class CartAddSchema(ItemSchema):
    pass


class OfferSelectionSchema(InputSchema):
    kind = fields.String(
        required=True,
        validate=FullMatch(r"^[a-z][a-z0-9_]{0,15}$"),
        metadata={"description": "the kind of offer, e.g. group_buy, flash_sale"},
    )
    id = fields.Integer(required=True, strict=True, validate=ID)


class OrderItemSchema(ItemSchema):
    offer = fields.Nested(
        OfferSelectionSchema,
        metadata={
            "description": "buy this item at an offer's price; an unknown kind is 422 unknown_offer, an offer "
            "that is not available to the member now is 409 offer_unavailable"
        },
    )


# Selections: what the member chose per pricing adjuster ({adjuster name: {...}}); the adjuster
# reads its own. Bounded, since every quote and placement carries them to every adjuster.
SELECTION_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
MAX_SELECTIONS = 8
MAX_SELECTIONS_BYTES = 4096
MAX_SELECTIONS_DEPTH = 4


def _selections_bounded(value: dict[str, Any]) -> None:
    """At most MAX_SELECTIONS_DEPTH levels of objects and arrays below each selection, and at most
    MAX_SELECTIONS_BYTES of JSON in all (walked without recursion, so no depth can overflow)."""
    stack: list[tuple[Any, int]] = [(selection, 1) for selection in value.values()]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_SELECTIONS_DEPTH:
                raise ValidationError(f"nested at most {MAX_SELECTIONS_DEPTH} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_SELECTIONS_BYTES:
        raise ValidationError(f"at most {MAX_SELECTIONS_BYTES} bytes of JSON")


def Selections() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=FullMatch(SELECTION_NAME, error="not an adjuster name")),
        values=fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64))),
        validate=[validate.Length(max=MAX_SELECTIONS), _selections_bounded],
        metadata={
            "description": (
                "what the member chose per pricing adjuster: {adjuster name: object}, e.g. "
                '{"coupons": {"ids": [12]}}; each adjuster reads its own. A name no adjuster has is 422 '
                f"unknown_selection. At most {MAX_SELECTIONS} names, {MAX_SELECTIONS_BYTES} bytes of JSON, "
                f"{MAX_SELECTIONS_DEPTH} levels deep. Part of the Idempotency-Key's request."
            ),
            "example": {},
        },
    )


class CartQuantitySchema(InputSchema):
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=999),
        metadata={"description": "0 removes the line"},
    )


class CartLineSchema(Schema):
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    image = fields.String()
    unit_price = Fen()
    quantity = fields.Integer()
    line_total = Fen()
    available = fields.Boolean()
    unavailable_reason = fields.String(
        allow_none=True, metadata={"description": "off_shelf, sold_out or insufficient_stock"}
    )


class CartSchema(Schema):
    lines = fields.List(fields.Nested(CartLineSchema))
    goods_total = Fen()  # of the available lines
    available_count = fields.Integer()


class AddressSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    phone = fields.String(required=True, validate=PHONE)
    province = fields.String(required=True, validate=validate.Length(min=1, max=32))
    city = fields.String(required=True, validate=validate.Length(min=1, max=32))
    district = fields.String(load_default="", validate=validate.Length(max=32))
    detail = fields.String(required=True, validate=validate.Length(min=1, max=120))


class CheckoutSchema(InputSchema):
    items = fields.List(
        fields.Nested(OrderItemSchema),
        validate=validate.Length(min=1, max=50),
        metadata={"description": "buy now; or set from_cart"},
    )
    from_cart = fields.Boolean(load_default=False)
    fulfilment = fields.String(required=True, validate=validate.OneOf(("delivery", "pickup")))
    pickup_point_id = fields.Integer(strict=True, validate=ID)
    coupons = fields.List(
        fields.Integer(strict=True, validate=ID),
        validate=validate.Length(max=10),
        metadata={
            "description": "wallet coupon ids to use, in order: absent, the best combination; [], none. "
            "Sent to pricing as selections.coupons; quote.options.coupons lists every wallet coupon, "
            "applicable or why not"
        },
    )
    selections = Selections()

    @validates_schema
    def _items_or_cart(self, data: dict[str, Any], **kwargs: Any) -> None:
        if bool(data.get("items")) == bool(data.get("from_cart")):
            raise ValidationError("send items (buy now) or from_cart: true, not both", field_name="items")


class OrderCreateSchema(CheckoutSchema):
    address = fields.Nested(AddressSchema)
    remark = fields.String(load_default="", validate=validate.Length(max=200))


# The Idempotency-Key header of a placement: the one definition the view checks and the OpenAPI
# document shows (with the column's size, 64, as its maximum).
IDEMPOTENCY_KEY_MIN, IDEMPOTENCY_KEY_MAX = 8, 64
IDEMPOTENCY_KEY_PATTERN = rf"^[A-Za-z0-9_.:-]{{{IDEMPOTENCY_KEY_MIN},{IDEMPOTENCY_KEY_MAX}}}$"
IDEMPOTENCY_KEY_FORMAT = f"{IDEMPOTENCY_KEY_MIN}-{IDEMPOTENCY_KEY_MAX} characters of A-Z a-z 0-9 _ . : -"
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": IDEMPOTENCY_KEY_PATTERN,
        "minLength": IDEMPOTENCY_KEY_MIN,
        "maxLength": IDEMPOTENCY_KEY_MAX,
        "example": "7f1c2a9e-4b7d-4c1e-9a55-0d6f2b8e1a30",
    },
    "description": (
        f"{IDEMPOTENCY_KEY_FORMAT} (a UUID will do); a missing or malformed key is refused with 422 "
        "idempotency_key_required. Make a new key for each new order and send the same key again only to "
        "retry that order. A key is the member's own and is remembered for at least 24 hours: the same key "
        "with the same body answers 200 with the order it placed the first time (nothing is placed or "
        "reserved again; a retry that arrives while the first request runs waits for it), and the same key "
        "with a different body answers 409 idempotency_key_reused. A request that was refused placed "
        "nothing and does not use up its key."
    ),
}


class AdjustmentSchema(Schema):
    source = fields.String()
    reference = fields.String()
    description = fields.String()
    kind = fields.String(metadata={"description": "goods or shipping"})
    amount = Fen()


class OfferSchema(Schema):
    kind = fields.String(metadata={"description": "group_buy, flash_sale, ..."})
    id = fields.Integer()
    unit_price = Fen(metadata={"description": "the offer's unit price, which replaced the SKU's"})
    note = fields.String(metadata={"description": "e.g. a per-member limit"})


class LineSchema(Schema):
    sku_id = fields.Integer(allow_none=True, metadata={"description": "null on a line of a non-goods order"})
    product_id = fields.Integer(allow_none=True)
    title = fields.String()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    image = fields.String()
    unit_price = Fen(metadata={"description": "before discounts: the offer's price when there is an offer"})
    quantity = fields.Integer()
    goods_amount = Fen()
    discount = Fen()
    paid_amount = Fen()
    offer = fields.Nested(OfferSchema, allow_none=True)


class QuoteLineSchema(LineSchema):
    sku_price = Fen(metadata={"description": "the SKU's own price (the same as unit_price without an offer)"})


# An adjuster's options: each an object of the adjuster's own shape (e.g. a wallet coupon with
# "applicable" and, when not, why), documented by the adjuster's package.
# Passed through as the adjuster made it (JSON-ready): a field per key would cost more than the rest
# of a quote with a full wallet.
AdjusterOption = fields.Raw(metadata={"type": "object", "additionalProperties": True})


class QuoteSchema(Schema):
    lines = fields.List(fields.Nested(QuoteLineSchema))
    fulfilment = fields.String()
    goods_total = Fen(metadata={"description": "at unit prices (offer prices where there are offers)"})
    shipping_fee = Fen(metadata={"description": "free over the merchant's threshold of the paid goods amount"})
    discount_total = Fen()
    payable_total = Fen()
    adjustments = fields.List(fields.Nested(AdjustmentSchema))
    options = fields.Dict(
        keys=fields.String(),
        values=fields.List(AdjusterOption),
        metadata={
            "description": "what each pricing adjuster offers the member, by adjuster name, e.g. "
            "options.coupons: every wallet coupon, applicable or why not; free-form objects per adjuster",
            "example": {"coupons": [{"id": 12, "applicable": False, "reason": "threshold_not_met"}]},
        },
    )


class OrderLineSchema(LineSchema):
    id = fields.Integer()
    description = fields.String(metadata={"description": "what a line of a non-goods order is for"})
    refunded_quantity = fields.Integer()
    refunded_amount = Fen()


class AddressOutSchema(Schema):
    name = fields.String()
    phone = fields.String()
    province = fields.String()
    city = fields.String()
    district = fields.String()
    detail = fields.String()


class OrderSchema(Schema):
    id = fields.Integer()
    order_no = fields.String()
    kind = fields.String(metadata={"description": " | ".join(ORDER_KINDS) + ": only goods are shipped or picked up"})
    status = fields.String(metadata={"description": " | ".join(ORDER_STATUSES)})
    fulfilment = fields.String(metadata={"description": "delivery | pickup | none (an order that is not goods)"})
    goods_total = Fen()
    shipping_fee = Fen()
    discount_total = Fen()
    payable_total = Fen()
    paid_total = Fen()
    refunded_total = Fen()
    address = fields.Nested(AddressOutSchema, allow_none=True)
    pickup_point_id = fields.Integer(allow_none=True)
    pickup_code = fields.Method(
        "_pickup_code", allow_none=True, metadata={"description": "shown once the order is paid"}
    )
    remark = fields.String()
    expires_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    carrier = fields.String(allow_none=True)
    tracking_no = fields.String(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    ready_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    after_sales_until = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    lines = fields.List(fields.Nested(OrderLineSchema))
    adjustments = fields.List(fields.Nested(AdjustmentSchema))

    def _pickup_code(self, order: Order) -> str | None:
        return order.pickup_code if order.status in ("paid", "ready_for_pickup", "received") else None


class StaffOrderSchema(OrderSchema):
    member_id = fields.Integer()
    reference = fields.String(
        allow_none=True, metadata={"description": "what a non-goods order is about, set by its owner package"}
    )
    transaction_id = fields.String(allow_none=True)

    def _pickup_code(self, order: Order) -> str | None:
        return None  # staff verify the code the member shows; they never read it from here


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_cursor = fields.String(allow_none=True)


class StaffOrderPageSchema(Schema):
    items = fields.List(fields.Nested(StaffOrderSchema))
    next_cursor = fields.String(allow_none=True)


class MemberOrderListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))


class StaffOrderListArgsSchema(MemberOrderListArgsSchema):
    kind = fields.String(validate=validate.OneOf(ORDER_KINDS))
    q = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "order number prefix or tracking number"}
    )
    created_from = fields.DateTime()
    created_to = fields.DateTime()


class ExportArgsSchema(InputSchema):
    """The staff list's filters."""

    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    kind = fields.String(validate=validate.OneOf(ORDER_KINDS))
    q = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "order number prefix or tracking number"}
    )
    created_from = fields.DateTime()
    created_to = fields.DateTime()


class PaymentParamsSchema(Schema):
    appId = fields.String()
    timeStamp = fields.String()
    nonceStr = fields.String()
    package = fields.String()
    signType = fields.String()
    paySign = fields.String()


class ShipSchema(InputSchema):
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=32))
    tracking_no = fields.String(required=True, validate=FullMatch(r"^[A-Za-z0-9-]{4,64}$"))


class PickupCodeSchema(InputSchema):
    code = fields.String(required=True, validate=FullMatch(r"^[0-9]{8}$", error="8 digits"))


class RefundLineInSchema(InputSchema):
    line_id = fields.Integer(required=True, strict=True, validate=ID)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=999))


class RefundRequestSchema(InputSchema):
    lines = fields.List(
        fields.Nested(RefundLineInSchema),
        validate=validate.Length(min=1, max=50),
        metadata={"description": "omit to refund everything not yet refunded"},
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class StaffRefundIssueSchema(RefundRequestSchema):
    """Staff refund an order themselves (no request to decide): the same body as a member's request."""


class RefundDecisionSchema(InputSchema):
    reason = fields.String(load_default="", validate=validate.Length(max=200))


class RefundLineSchema(Schema):
    order_line_id = fields.Integer()
    quantity = fields.Integer()
    amount = Fen()


class RefundSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    out_refund_no = fields.String()
    kind = fields.String(
        metadata={
            "description": " | ".join(REFUND_KINDS) + ": asked for by the member, issued by staff or by the system "
            "(e.g. a failed group buy), or a late payment sent back"
        }
    )
    status = fields.String(metadata={"description": " | ".join(REFUND_STATUSES)})
    amount = Fen()
    shipping_amount = Fen()
    reason = fields.String()
    reject_reason = fields.String()
    restock = fields.Boolean()
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    succeeded_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(RefundLineSchema))


class RefundListSchema(Schema):
    items = fields.List(fields.Nested(RefundSchema))


class StaffRefundSchema(RefundSchema):
    decided_by = fields.Integer(
        allow_none=True, metadata={"description": "the staff account that approved, rejected or issued it"}
    )
    attempts = fields.Integer(metadata={"description": "submissions to the payment provider so far"})
    last_error = fields.String(metadata={"description": "why the last submission did not go through"})


class StaffRefundListSchema(Schema):
    items = fields.List(fields.Nested(StaffRefundSchema))


class RefundListArgsSchema(InputSchema):
    status = fields.String(validate=validate.OneOf(REFUND_STATUSES))
    order_id = fields.Integer(validate=ID, metadata={"description": "only this order's refunds"})


class PickupLineSchema(Schema):
    title = fields.String()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    quantity = fields.Integer()


class LeaderPickupSchema(Schema):
    """What a group leader needs to hand an order over: what to give, nothing about the money."""

    id = fields.Integer()
    order_no = fields.String()
    status = fields.String()
    received_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(PickupLineSchema))


class PickupPointSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String()
    contact_name = fields.String()
    contact_phone = fields.String()
    leader_member_id = fields.Integer(allow_none=True)
    active = fields.Boolean()


class PickupPointListSchema(Schema):
    items = fields.List(fields.Nested(PickupPointSchema))


class PickupPointCreateSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    address = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    contact_phone = fields.String(required=True, validate=PHONE)
    leader_member_id = fields.Integer(strict=True, allow_none=True, validate=ID)


class PickupPointUpdateSchema(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=64))
    address = fields.String(validate=validate.Length(min=1, max=200))
    contact_name = fields.String(validate=validate.Length(min=1, max=32))
    contact_phone = fields.String(validate=PHONE)
    leader_member_id = fields.Integer(strict=True, allow_none=True, validate=ID)
    active = fields.Boolean()


class OrderSettingsSchema(Schema):
    shipping_fee = Fen()
    free_shipping_over = Fen(allow_none=True)
    order_ttl_minutes = fields.Integer()
    auto_confirm_days = fields.Integer()
    after_sales_days = fields.Integer()


class OrderSettingsUpdateSchema(InputSchema):
    shipping_fee = Fen()
    free_shipping_over = Fen(allow_none=True)
    # At least 5 minutes: paying needs 90 seconds of the order's life to be left (see start_payment).
    order_ttl_minutes = fields.Integer(strict=True, validate=validate.Range(min=5, max=1440))
    auto_confirm_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=60))
    after_sales_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=60))
