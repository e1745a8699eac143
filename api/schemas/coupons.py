"""The wire contract of coupons: templates (staff), grants (staff), the claim centre and the
wallet (members). Amounts in fen, rates in basis points. Types are checked here; whether the
terms make sense together (amounts of a fen at least, one way of validity, limits within the
total, ids of this merchant) is the service's 422, field by field."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.common import MAX_ID, STORABLE_INSTANT, Fen, InputSchema, PageArgsSchema
from coupons.models import COUPON_STATUSES, GRANT_STATUSES, OFFERED_CHANNELS, TEMPLATE_STATUSES
from coupons.rules import KINDS, SCOPES
from coupons.service import MAX_GRANT
from coupons.terms import AUDIENCES, MAX_AUDIENCE, MAX_QUANTITY, MAX_SCOPE_IDS, MAX_VALID_DAYS

ID_RANGE = validate.Range(min=1, max=MAX_ID)


def _id(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=ID_RANGE, **kwargs)


def _ids(maximum: int, **kwargs) -> fields.List:
    return fields.List(_id(), validate=validate.Length(max=maximum), **kwargs)


def _count(maximum: int, **kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=maximum), **kwargs)


class TemplateTermsFields(InputSchema):
    """The fields a template is made of (all optional here: the create schema requires some)."""

    name = fields.String(validate=validate.Length(min=1, max=40))
    description = fields.String(validate=validate.Length(max=200))
    kind = fields.String(
        validate=validate.OneOf(KINDS),
        metadata={"description": "amount_off (满减), percent_off (折扣), free_shipping (包邮), gift (兑换)"},
    )
    threshold = Fen(metadata={"description": "the in-scope goods must cost at least this (after offer prices)"})
    amount = Fen(metadata={"description": "amount_off: fen off"})
    rate_bp = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={"description": "percent_off: basis points OFF, 1 to 9,999 (1,500 = 15% off), rounded down"},
    )
    cap = Fen(allow_none=True, metadata={"description": "percent_off: at most this many fen off"})
    gift_sku_id = _id(allow_none=True, metadata={"description": "gift: the SKU one unit of which is free"})
    scope = fields.String(validate=validate.OneOf(SCOPES))
    scope_ids = _ids(MAX_SCOPE_IDS, metadata={"description": "category ids (with their sub-categories) or product ids"})
    excluded_product_ids = _ids(MAX_SCOPE_IDS)
    offer_lines = fields.Boolean(
        metadata={"description": "whether lines at an offer price (group buy, flash sale) count"}
    )
    valid_from = fields.AwareDateTime(
        allow_none=True, validate=STORABLE_INSTANT, metadata={"description": "a fixed window: from"}
    )
    valid_until = fields.AwareDateTime(
        allow_none=True, validate=STORABLE_INSTANT, metadata={"description": "a fixed window: until"}
    )
    valid_days = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_VALID_DAYS),
        metadata={"description": "or valid for N days after the claim"},
    )
    from_next_day = fields.Boolean(metadata={"description": "valid_days counted from the next midnight in China"})
    total_quantity = _count(MAX_QUANTITY)
    per_member_limit = _count(MAX_QUANTITY)
    per_member_daily_limit = _count(MAX_QUANTITY, allow_none=True)
    audience = fields.String(validate=validate.OneOf(AUDIENCES))
    audience_member_ids = _ids(MAX_AUDIENCE)
    stackable = fields.Boolean(metadata={"description": "may be used with other stackable coupons on one order"})
    channels = fields.List(
        fields.String(validate=validate.OneOf(OFFERED_CHANNELS)),
        validate=validate.Length(max=len(OFFERED_CHANNELS)),
        metadata={"description": "where it is offered by itself: centre (领券中心), welcome (first login), birthday"},
    )
    status = fields.String(validate=validate.OneOf(TEMPLATE_STATUSES))


class TemplateCreateSchema(TemplateTermsFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    total_quantity = _count(MAX_QUANTITY, required=True)


class TemplateUpdateSchema(TemplateTermsFields):
    """Any of the fields; once coupons are issued only total_quantity, valid_until, status, name,
    description and channels may change (409 template_in_use)."""


class TemplateListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(TEMPLATE_STATUSES))


class TemplatePublicSchema(Schema):
    """A template as members see it."""

    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    kind = fields.String()
    threshold = Fen()
    amount = Fen()
    rate_bp = fields.Integer()
    cap = Fen(allow_none=True)
    gift_sku_id = fields.Integer(allow_none=True)
    scope = fields.String()
    scope_ids = fields.List(fields.Integer())
    excluded_product_ids = fields.List(fields.Integer())
    offer_lines = fields.Boolean()
    valid_from = fields.DateTime(allow_none=True)
    valid_until = fields.DateTime(allow_none=True)
    valid_days = fields.Integer(allow_none=True)
    from_next_day = fields.Boolean()
    per_member_limit = fields.Integer()
    per_member_daily_limit = fields.Integer(allow_none=True)
    stackable = fields.Boolean()


class TemplateSchema(TemplatePublicSchema):
    total_quantity = fields.Integer()
    issued = fields.Integer()
    audience = fields.String()
    audience_member_ids = fields.List(fields.Integer())
    channels = fields.List(fields.String())
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TemplatePageSchema(Schema):
    items = fields.List(fields.Nested(TemplateSchema))
    next_cursor = fields.String(allow_none=True)


class TemplateStatsSchema(Schema):
    template_id = fields.Integer()
    total_quantity = fields.Integer()
    issued = fields.Integer()
    available = fields.Integer(metadata={"description": "held by members, usable"})
    locked = fields.Integer(metadata={"description": "in an unpaid order"})
    used = fields.Integer()
    expired = fields.Integer()
    discount_given = Fen(metadata={"description": "what the used coupons took off their orders"})
    orders = fields.Integer(metadata={"description": "orders that used one"})
    sales = Fen(metadata={"description": "what those orders paid, less refunds"})


class GrantCreateSchema(InputSchema):
    template_id = _id(required=True)
    member_ids = fields.List(
        _id(),
        required=True,
        validate=validate.Length(min=1, max=MAX_GRANT),
        metadata={"description": f"1 to {MAX_GRANT} members of this shop (repeats count once)"},
    )
    note = fields.String(load_default="", validate=validate.Length(max=200))


class GrantSchema(Schema):
    id = fields.Integer()
    template_id = fields.Integer()
    note = fields.String()
    status = fields.String(metadata={"description": " or ".join(GRANT_STATUSES)})
    total = fields.Integer(metadata={"description": "members named"})
    processed = fields.Integer(metadata={"description": "members handled so far"})
    issued = fields.Integer(metadata={"description": "coupons issued"})
    skipped = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "members who got none, by reason: sold_out, not_claimable, member_gone"},
    )
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class CentreItemSchema(Schema):
    template = fields.Nested(TemplatePublicSchema)
    remaining = fields.Integer(metadata={"description": "coupons left to claim"})
    held = fields.Integer(metadata={"description": "how many of it the member holds (any status)"})
    claimable = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "why not: sold_out, limit_reached, not_started"})


class CentreSchema(Schema):
    items = fields.List(fields.Nested(CentreItemSchema))


class WalletCouponSchema(Schema):
    id = fields.Integer()
    template_id = fields.Integer()
    status = fields.String(metadata={"description": " or ".join(COUPON_STATUSES)})
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    channel = fields.String()
    claimed_at = fields.DateTime()
    used_at = fields.DateTime(allow_none=True)
    order_id = fields.Integer(allow_none=True, metadata={"description": "the order it is locked in or used by"})
    template = fields.Nested(TemplatePublicSchema)


class WalletArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(COUPON_STATUSES))


class WalletPageSchema(Schema):
    items = fields.List(fields.Nested(WalletCouponSchema))
    next_cursor = fields.String(allow_none=True)
