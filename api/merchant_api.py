"""/api/v1/merchant: what merchant staff call (owner, operator, finance)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, issue_token, staff_required
from api.blueprint import Blueprint
from api.schemas.catalog import (
    CategoryCreateSchema,
    CategorySchema,
    CategoryTreeSchema,
    CategoryUpdateSchema,
    ProductCreateSchema,
    ProductUpdateSchema,
    ShelfSchema,
    StaffProductListArgsSchema,
    StaffProductPageSchema,
    StaffProductSchema,
    StockAdjustSchema,
    StockMovementPageSchema,
    StockMovementSchema,
)
from api.schemas.common import ErrorSchema, PageArgsSchema
from api.schemas.identity import (
    StaffCreateSchema,
    StaffListSchema,
    StaffLoginSchema,
    StaffSchema,
    StaffTokenSchema,
    StaffUpdateSchema,
)
from api.throttle import RATE_LIMITED_DOC, staff_password_check
from shop.catalog import service as catalog
from shop.catalog.models import Category, Product, StockMovement
from shop.core.db import transaction
from shop.core.pagination import Page
from shop.identity import staff
from shop.identity.models import Staff

blp = Blueprint("merchant", __name__, url_prefix="/api/v1/merchant", description="Merchant staff")


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(StaffLoginSchema)
@blp.response(200, StaffTokenSchema)
@blp.alt_response(429, schema=ErrorSchema, **RATE_LIMITED_DOC)
def login(args: dict[str, Any]) -> dict[str, Any]:
    """Staff log in with the merchant code, username and password.

    Throttled per client address and per account (a lockout after repeated failures), both
    checked before the password is hashed: 429 `rate_limited` with Retry-After.
    """
    with staff_password_check(args["merchant"], args["username"]), transaction():
        account = staff.authenticate(args["merchant"], args["username"], args["password"])
    token, ttl = issue_token(
        kind="staff",
        subject_id=account.id,
        merchant_id=account.merchant_id,
        role=account.role,
        token_version=account.token_version,
    )
    return {"token": token, "expires_in": ttl, "staff": account}


@blp.route("/me")
@staff_required("catalog:read")
@blp.response(200, StaffSchema)
def me() -> Staff:
    """The logged-in staff account."""
    caller = current_caller()
    return staff.get_staff(caller.merchant_id, caller.subject_id)


@blp.route("/staff")
class StaffCollection(MethodView):
    @staff_required("staff:manage")
    @blp.response(200, StaffListSchema)
    def get(self) -> dict[str, list[Staff]]:
        """All staff accounts of the merchant (owner only)."""
        return {"items": staff.list_staff(current_caller().merchant_id)}

    @staff_required("staff:manage")
    @blp.arguments(StaffCreateSchema)
    @blp.response(201, StaffSchema)
    def post(self, args: dict[str, Any]) -> Staff:
        """Create a staff account (owner only)."""
        with transaction():
            return staff.create_staff(current_caller().merchant_id, **args)


@blp.route("/staff/<int:staff_id>", methods=["PATCH"])
@staff_required("staff:manage")
@blp.arguments(StaffUpdateSchema)
@blp.response(200, StaffSchema)
def update_staff(args: dict[str, Any], staff_id: int) -> Staff:
    """Change a staff account's role, password, name or active flag (owner only)."""
    caller = current_caller()
    with transaction():
        return staff.update_staff(caller.merchant_id, staff_id, acting_staff_id=caller.subject_id, **args)


@blp.route("/categories")
class Categories(MethodView):
    @staff_required("catalog:read")
    @blp.response(200, CategoryTreeSchema)
    def get(self) -> dict[str, list[dict[str, Any]]]:
        """The category tree."""
        return {"items": catalog.category_tree(current_caller().merchant_id)}

    @staff_required("catalog:write")
    @blp.arguments(CategoryCreateSchema)
    @blp.response(201, CategorySchema(exclude=("children",)))
    def post(self, args: dict[str, Any]) -> Category:
        """Create a category; with parent_id, a sub-category of a top-level one."""
        with transaction():
            return catalog.create_category(current_caller().merchant_id, **args)


@blp.route("/categories/<int:category_id>")
class CategoryItem(MethodView):
    @staff_required("catalog:write")
    @blp.arguments(CategoryUpdateSchema)
    @blp.response(200, CategorySchema(exclude=("children",)))
    def patch(self, args: dict[str, Any], category_id: int) -> Category:
        """Rename or reorder a category."""
        with transaction():
            return catalog.update_category(current_caller().merchant_id, category_id, **args)

    @staff_required("catalog:write")
    @blp.response(204)
    def delete(self, category_id: int) -> None:
        """Delete a category that has no sub-categories and no products."""
        with transaction():
            catalog.delete_category(current_caller().merchant_id, category_id)


@blp.route("/products")
class Products(MethodView):
    @staff_required("catalog:read")
    @blp.arguments(StaffProductListArgsSchema, location="query")
    @blp.response(200, StaffProductPageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """All products, any status, newest first; filter by status or category, search titles."""
        return catalog.staff_product_page(current_caller().merchant_id, **args)

    @staff_required("catalog:write")
    @blp.arguments(ProductCreateSchema)
    @blp.response(201, StaffProductSchema)
    def post(self, args: dict[str, Any]) -> Product:
        """Create a product (a draft) with its SKUs and their initial stock."""
        caller = current_caller()
        with transaction():
            return catalog.create_product(caller.merchant_id, staff_id=caller.subject_id, **args)


@blp.route("/products/<int:product_id>")
class ProductItem(MethodView):
    @staff_required("catalog:read")
    @blp.response(200, StaffProductSchema)
    def get(self, product_id: int) -> Product:
        """One product with every SKU and its exact stock."""
        return catalog.get_product(current_caller().merchant_id, product_id)

    @staff_required("catalog:write")
    @blp.arguments(ProductUpdateSchema)
    @blp.response(200, StaffProductSchema)
    def patch(self, args: dict[str, Any], product_id: int) -> Product:
        """Change a product; `skus`, when sent, is the complete new set of SKUs."""
        caller = current_caller()
        clear_category = "category_id" in args and args["category_id"] is None
        if clear_category:
            args.pop("category_id")
        with transaction():
            return catalog.update_product(
                caller.merchant_id, product_id, staff_id=caller.subject_id, clear_category=clear_category, **args
            )


@blp.route("/products/<int:product_id>/shelf", methods=["PUT"])
@staff_required("catalog:write")
@blp.arguments(ShelfSchema)
@blp.response(200, StaffProductSchema)
def shelf(args: dict[str, Any], product_id: int) -> Product:
    """Put a product on the shelf or take it off."""
    with transaction():
        return catalog.set_shelf(current_caller().merchant_id, product_id, on_shelf=args["on_shelf"])


@blp.route("/skus/<int:sku_id>/stock-adjustments", methods=["POST"])
@staff_required("catalog:write")
@blp.arguments(StockAdjustSchema)
@blp.response(201, StockMovementSchema)
def adjust_stock(args: dict[str, Any], sku_id: int) -> StockMovement:
    """Add or remove stock with a reason; never below zero."""
    caller = current_caller()
    with transaction():
        return catalog.adjust_stock(caller.merchant_id, sku_id, staff_id=caller.subject_id, **args)


@blp.route("/skus/<int:sku_id>/stock-movements")
@staff_required("catalog:read")
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, StockMovementPageSchema)
def stock_movements(args: dict[str, Any], sku_id: int) -> Page:
    """Every stock change of a SKU, newest first."""
    return catalog.stock_movements(current_caller().merchant_id, sku_id, **args)
