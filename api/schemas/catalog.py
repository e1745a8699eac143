from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas.common import MAX_ID, Fen, InputSchema, PageArgsSchema
from shop.catalog.service import SORTS

ID_RANGE = validate.Range(min=1, max=MAX_ID)  # an id column is a bigint

# --- categories


class CategorySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    sort_order = fields.Integer()
    children = fields.List(fields.Nested(lambda: CategorySchema(exclude=("children",))))


class CategoryTreeSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema))


class CategoryCreateSchema(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=32))
    parent_id = fields.Integer(strict=True, allow_none=True, validate=ID_RANGE)
    sort_order = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=-10000, max=10000))


class CategoryUpdateSchema(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=32))
    sort_order = fields.Integer(strict=True, validate=validate.Range(min=-10000, max=10000))


# --- what members see

STOCK_STATUS = fields.String(metadata={"description": "in_stock, low_stock or sold_out (the exact stock is not shown)"})


class ProductListArgsSchema(PageArgsSchema):
    category_id = fields.Integer(validate=ID_RANGE, metadata={"description": "includes sub-categories"})
    q = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": "words in the title"})
    sort = fields.String(load_default="newest", validate=validate.OneOf(SORTS))


class ProductCardSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    cover = fields.String()
    price_min = Fen()
    price_max = Fen()
    sales = fields.Integer()
    category_id = fields.Integer(allow_none=True)
    stock_status = STOCK_STATUS


class ProductPageSchema(Schema):
    items = fields.List(fields.Nested(ProductCardSchema))
    next_cursor = fields.String(allow_none=True)


class MemberSkuSchema(Schema):
    id = fields.Integer()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    price = Fen()
    market_price = Fen()
    stock_status = STOCK_STATUS


class SpecOptionSchema(Schema):
    name = fields.String()
    values = fields.List(fields.String())


class ProductOfferSchema(Schema):
    kind = fields.String(metadata={"description": "group_buy | flash_sale"})
    id = fields.Integer(metadata={"description": "GET /api/v1/group-buys/{id} or /api/v1/flash-sales/{id}"})
    sku_id = fields.Integer()
    title = fields.String()
    price = Fen(metadata={"description": "the group or flash price"})
    leader_price = Fen(allow_none=True)
    group_size = fields.Integer(allow_none=True)
    completes_when_short = fields.Boolean(allow_none=True, metadata={"description": "模拟成团 (group buys)"})
    per_member_limit = fields.Integer()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()


class ProductDetailSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    images = fields.List(fields.String())
    category_id = fields.Integer(allow_none=True)
    price_min = Fen()
    price_max = Fen()
    market_price_max = Fen()
    sales = fields.Integer()
    stock_status = STOCK_STATUS
    spec_options = fields.List(fields.Nested(SpecOptionSchema))
    skus = fields.List(fields.Nested(MemberSkuSchema))
    offers = fields.List(
        fields.Nested(ProductOfferSchema),
        metadata={"description": "group buys and flash sales on its SKUs, upcoming or running"},
    )


# --- staff

SPECS = fields.Dict(
    keys=fields.String(validate=validate.Length(min=1, max=16)),
    values=fields.String(validate=validate.Length(min=1, max=32)),
    validate=validate.Length(max=3),
    metadata={"description": "spec name -> value, e.g. {'颜色': '红', '尺码': 'M'}"},
)
IMAGES = fields.List(
    fields.Url(schemes={"https", "http"}, validate=validate.Length(max=512)), validate=validate.Length(max=9)
)


class SkuInputSchema(InputSchema):
    id = fields.Integer(strict=True, validate=ID_RANGE, metadata={"description": "omit for a new SKU"})
    specs = SPECS
    code = fields.String(validate=validate.Length(max=64))
    price = Fen()
    market_price = Fen()
    stock = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"description": "initial stock of a new SKU; later changes are stock adjustments"},
    )

    @validates_schema
    def _new_sku_needs_price(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "id" not in data and "price" not in data:
            raise ValidationError("a new SKU needs a price", field_name="price")


class ProductCreateSchema(InputSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    images = IMAGES
    category_id = fields.Integer(strict=True, allow_none=True, validate=ID_RANGE)
    skus = fields.List(fields.Nested(SkuInputSchema), required=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _no_ids_on_create(self, data: dict[str, Any], **kwargs: Any) -> None:
        if any("id" in sku for sku in data.get("skus", [])):
            raise ValidationError("new products have new SKUs: leave out id", field_name="skus")


class ProductUpdateSchema(InputSchema):
    title = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(validate=validate.Length(max=20000))
    images = IMAGES
    category_id = fields.Integer(strict=True, allow_none=True, validate=ID_RANGE)
    skus = fields.List(fields.Nested(SkuInputSchema), validate=validate.Length(min=1, max=200))


class StaffSkuSchema(Schema):
    id = fields.Integer()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    code = fields.String()
    price = Fen()
    market_price = Fen()
    stock = fields.Integer()
    active = fields.Boolean()


class StaffProductSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    images = fields.List(fields.String())
    category_id = fields.Integer(allow_none=True)
    status = fields.String()
    price_min = Fen()
    price_max = Fen()
    sales = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    skus = fields.List(fields.Nested(StaffSkuSchema))


class StaffProductPageSchema(Schema):
    items = fields.List(fields.Nested(StaffProductSchema))
    next_cursor = fields.String(allow_none=True)


class StaffProductListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf(("draft", "on_shelf", "off_shelf")))
    category_id = fields.Integer(validate=ID_RANGE)
    q = fields.String(validate=validate.Length(min=1, max=50))


class ShelfSchema(InputSchema):
    on_shelf = fields.Boolean(required=True)


STOCK_REASONS = ("restock", "correction", "damage", "return_to_stock", "stocktake")


class StockAdjustSchema(InputSchema):
    delta = fields.Integer(
        required=True,
        strict=True,
        validate=[validate.Range(min=-10_000_000, max=10_000_000), validate.NoneOf([0], error="must not be 0")],
    )
    reason = fields.String(required=True, validate=validate.OneOf(STOCK_REASONS))
    note = fields.String(load_default="", validate=validate.Length(max=200))


class StockMovementSchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer()
    delta = fields.Integer()
    stock_after = fields.Integer()
    reason = fields.String()
    note = fields.String()
    staff_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class StockMovementPageSchema(Schema):
    items = fields.List(fields.Nested(StockMovementSchema))
    next_cursor = fields.String(allow_none=True)
