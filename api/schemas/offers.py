"""The wire contract of offers: flash sales (秒杀) and group buys (拼团) staff configure and members
buy from, and the groups members open, join and share."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import MAX_FEN, MAX_ID, STORABLE_INSTANT, Fen, InputSchema, PageArgsSchema
from api.schemas.orders import ID, AddressSchema, OrderSchema, Selections
from shop.offers.models import MAX_QUOTA, MIN_PAYMENT_MINUTES, GroupStatus
from shop.offers.service import STATES

ID_RANGE = validate.Range(min=1, max=MAX_ID)
PRICE = validate.Range(min=1, max=MAX_FEN)
MAX_LIMIT = 1000
MAX_PAYMENT_MINUTES = 120


class _Window:
    """starts_at before ends_at, when both are sent."""

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", field_name="ends_at")


class FlashSaleFields(_Window, InputSchema):
    title = fields.String(validate=validate.Length(min=1, max=120))
    price = Fen(validate=PRICE, metadata={"description": "the flash price of one unit"})
    quota = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_QUOTA),
        metadata={"description": "units set aside from the SKU's stock for the sale"},
    )
    per_member_limit = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    starts_at = fields.AwareDateTime(validate=STORABLE_INSTANT)
    ends_at = fields.AwareDateTime(validate=STORABLE_INSTANT)
    payment_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=MIN_PAYMENT_MINUTES, max=MAX_PAYMENT_MINUTES),
        metadata={"description": f"an order's time to be paid, at least {MIN_PAYMENT_MINUTES} minutes"},
    )


class FlashSaleCreateSchema(FlashSaleFields):
    sku_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    title = fields.String(validate=validate.Length(min=1, max=120), metadata={"description": "default: the product's"})
    price = Fen(required=True, validate=PRICE, metadata={"description": "the flash price of one unit"})
    quota = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUOTA))
    per_member_limit = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    starts_at = fields.AwareDateTime(required=True, validate=STORABLE_INSTANT)
    ends_at = fields.AwareDateTime(required=True, validate=STORABLE_INSTANT)
    payment_minutes = fields.Integer(
        load_default=MIN_PAYMENT_MINUTES,
        strict=True,
        validate=validate.Range(min=MIN_PAYMENT_MINUTES, max=MAX_PAYMENT_MINUTES),
    )


class FlashSaleUpdateSchema(FlashSaleFields):
    """Any of the terms; the SKU stays. A quota change sets more aside or moves free units back."""


class OfferListArgsSchema(PageArgsSchema):
    state = fields.String(validate=validate.OneOf(STATES))


class FlashSaleSchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    price = Fen()
    quota = fields.Integer(metadata={"description": "units set aside"})
    left = fields.Integer(metadata={"description": "units nobody holds"})
    sold = fields.Integer(metadata={"description": "units held by orders (unpaid or paid)"})
    returned = fields.Integer(metadata={"description": "units moved back to the SKU once the sale was over"})
    per_member_limit = fields.Integer()
    payment_minutes = fields.Integer()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    state = fields.String(metadata={"description": " | ".join(STATES)})
    ended_early_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True, metadata={"description": "when its free units went back"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class FlashSalePageSchema(Schema):
    items = fields.List(fields.Nested(FlashSaleSchema))
    next_cursor = fields.String(allow_none=True)


class MemberFlashSaleSchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    price = Fen(metadata={"description": "the flash price"})
    quota = fields.Integer()
    left = fields.Integer()
    sold_out = fields.Boolean()
    per_member_limit = fields.Integer()
    bought = fields.Integer(attribute="held", metadata={"description": "units the member holds"})
    payment_minutes = fields.Integer()
    state = fields.String(metadata={"description": "upcoming | running (the list); ended, read by its id"})
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    starts_in = fields.Integer(metadata={"description": "seconds until it starts (0 once running)"})
    ends_in = fields.Integer(metadata={"description": "seconds until it ends"})


class MemberFlashSaleListSchema(Schema):
    server_time = fields.DateTime(metadata={"description": "count down from this, not the phone's clock"})
    items = fields.List(fields.Nested(MemberFlashSaleSchema))


class FlashOrderCreateSchema(InputSchema):
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    fulfilment = fields.String(required=True, validate=validate.OneOf(("delivery", "pickup")))
    pickup_point_id = fields.Integer(strict=True, validate=ID)
    address = fields.Nested(AddressSchema)
    remark = fields.String(load_default="", validate=validate.Length(max=200))
    coupons = fields.List(
        fields.Integer(strict=True, validate=ID),
        validate=validate.Length(max=10),
        metadata={"description": "as for POST /orders: absent, the best combination; [], none"},
    )
    selections = Selections()


# --- group buys (拼团) ------------------------------------------------------------------------------

MAX_HOURS = 720


class GroupBuyFields(_Window, InputSchema):
    title = fields.String(validate=validate.Length(min=1, max=120))
    price = Fen(validate=PRICE, metadata={"description": "the group price of one unit"})
    leader_price = Fen(
        allow_none=True,
        validate=PRICE,
        metadata={"description": "what the initiator (开团人) pays per unit instead, if anything"},
    )
    leader_commission_bp = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=10_000),
        metadata={
            "description": "the initiator's reward when the group succeeds, in basis points of what the other "
            "members paid (recorded by the distribution program); instead of a leader_price"
        },
    )
    time_limit_hours = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_HOURS))
    on_expiry = fields.String(
        validate=validate.OneOf(("refund", "complete")),
        metadata={
            "description": "a group short of its size at its time: refund its members, or complete it anyway "
            "(模拟成团, shown to members before they join)"
        },
    )
    quota = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_QUOTA),
        metadata={"description": "units set aside from the SKU's stock for the group buy"},
    )
    per_member_limit = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    starts_at = fields.AwareDateTime(validate=STORABLE_INSTANT)
    ends_at = fields.AwareDateTime(validate=STORABLE_INSTANT)

    @validates_schema
    def _one_leader_term(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("leader_price") is not None and data.get("leader_commission_bp") is not None:
            raise ValidationError(
                "a leader_price or a leader_commission_bp, not both", field_name="leader_commission_bp"
            )


class GroupBuyCreateSchema(GroupBuyFields):
    sku_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    price = Fen(required=True, validate=PRICE, metadata={"description": "the group price of one unit"})
    group_size = fields.Integer(required=True, strict=True, validate=validate.Range(min=2, max=50))
    time_limit_hours = fields.Integer(load_default=24, strict=True, validate=validate.Range(min=1, max=MAX_HOURS))
    on_expiry = fields.String(load_default="refund", validate=validate.OneOf(("refund", "complete")))
    quota = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUOTA))
    per_member_limit = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    starts_at = fields.AwareDateTime(required=True, validate=STORABLE_INSTANT)
    ends_at = fields.AwareDateTime(required=True, validate=STORABLE_INSTANT)


class GroupBuyUpdateSchema(GroupBuyFields):
    """Any of the terms; the SKU and the group size stay (groups are open at that size)."""


class GroupBuySchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    price = Fen()
    leader_price = Fen(allow_none=True)
    leader_commission_bp = fields.Integer(allow_none=True)
    group_size = fields.Integer()
    time_limit_hours = fields.Integer()
    on_expiry = fields.String()
    completes_when_short = fields.Boolean(metadata={"description": "模拟成团: groups short at their time complete"})
    quota = fields.Integer()
    left = fields.Integer()
    sold = fields.Integer()
    returned = fields.Integer()
    per_member_limit = fields.Integer()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    state = fields.String(metadata={"description": " | ".join(STATES)})
    groups = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "groups by status"})
    ended_early_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class GroupBuyPageSchema(Schema):
    items = fields.List(fields.Nested(GroupBuySchema))
    next_cursor = fields.String(allow_none=True)


class MemberGroupBuySchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    price = Fen(metadata={"description": "the group price"})
    leader_price = Fen(allow_none=True, metadata={"description": "what the initiator pays, if different"})
    group_size = fields.Integer()
    time_limit_hours = fields.Integer()
    completes_when_short = fields.Boolean(
        metadata={"description": "模拟成团: a group short of its size at its time is completed anyway"}
    )
    left = fields.Integer()
    sold_out = fields.Boolean()
    per_member_limit = fields.Integer()
    bought = fields.Integer(attribute="held")
    state = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    starts_in = fields.Integer()
    ends_in = fields.Integer()


class MemberGroupBuyListSchema(Schema):
    server_time = fields.DateTime()
    items = fields.List(fields.Nested(MemberGroupBuySchema))


class GroupMemberSchema(Schema):
    seat = fields.Integer()
    leader = fields.Boolean(metadata={"description": "the initiator (开团人)"})
    nickname = fields.String(metadata={"description": "masked"})
    avatar_url = fields.String()
    joined_at = fields.DateTime()


class StaffGroupMemberSchema(GroupMemberSchema):
    member_id = fields.Integer()
    order_id = fields.Integer(metadata={"description": "the order that paid for the seat"})


class MyGroupOrderSchema(Schema):
    id = fields.Integer()
    status = fields.String()


class ShareSchema(Schema):
    path = fields.String()
    page = fields.String()
    group_id = fields.String()


class GroupSchema(Schema):
    id = fields.Integer()
    offer_id = fields.Integer()
    status = fields.String(metadata={"description": "opening | forming | succeeded | failed | cancelled"})
    size = fields.Integer()
    joined = fields.Integer(metadata={"description": "paid seats"})
    seats_left = fields.Integer(metadata={"description": "seats anyone can still take (0 once the group closed)"})
    price = Fen(metadata={"description": "the price to join"})
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "set once the initiator has paid"})
    seconds_left = fields.Integer(
        allow_none=True, metadata={"description": "the countdown while forming; null before it opens and once closed"}
    )
    completes_when_short = fields.Boolean(
        metadata={"description": "模拟成团: the offer completes this group at its time even if short"}
    )
    simulated = fields.Boolean(metadata={"description": "it was completed short of its size (模拟成团)"})
    members = fields.List(fields.Nested(GroupMemberSchema))
    share = fields.Nested(ShareSchema)
    closed_at = fields.DateTime(allow_none=True)
    my_order = fields.Nested(
        MyGroupOrderSchema,
        allow_none=True,
        metadata={"description": "the caller's own latest order for this group (members), or null"},
    )
    created_at = fields.DateTime()


class GroupListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([status.value for status in GroupStatus]))


class GroupPageSchema(Schema):
    items = fields.List(fields.Nested(GroupSchema))
    next_cursor = fields.String(allow_none=True)


class StaffGroupSchema(GroupSchema):
    members = fields.List(fields.Nested(StaffGroupMemberSchema))

    class Meta:
        exclude = ("my_order",)


class StaffGroupPageSchema(Schema):
    items = fields.List(fields.Nested(StaffGroupSchema))
    next_cursor = fields.String(allow_none=True)


class GroupOrderCreateSchema(FlashOrderCreateSchema):
    """One SKU (the offer's), a quantity, and the fulfilment fields of POST /orders."""


class GroupQuoteSchema(InputSchema):
    """What opening or joining would cost: the order's quantity, fulfilment and coupons (as for
    POST /checkout/quote: no address, nothing reserved)."""

    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    fulfilment = fields.String(required=True, validate=validate.OneOf(("delivery", "pickup")))
    pickup_point_id = fields.Integer(strict=True, validate=ID)
    coupons = fields.List(
        fields.Integer(strict=True, validate=ID),
        validate=validate.Length(max=10),
        metadata={"description": "as for POST /checkout/quote: absent, the best combination; [], none"},
    )
    selections = Selections()


class GroupPlacedSchema(Schema):
    group = fields.Nested(GroupSchema)
    order = fields.Nested(OrderSchema)
