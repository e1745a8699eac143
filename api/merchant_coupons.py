"""/api/v1/merchant: coupon templates, their numbers, and grants to members (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.coupons import (
    GrantCreateSchema,
    GrantSchema,
    TemplateCreateSchema,
    TemplateListArgsSchema,
    TemplatePageSchema,
    TemplateSchema,
    TemplateStatsSchema,
    TemplateUpdateSchema,
)
from coupons import service as coupons
from coupons.models import CouponGrant, CouponTemplate
from shop.core.db import transaction
from shop.core.pagination import Page

blp = Blueprint(
    "merchant_coupons", __name__, url_prefix="/api/v1/merchant", description="Coupons: templates and grants (staff)"
)


@blp.route("/coupon-templates")
class Templates(MethodView):
    @staff_required("coupons:read")
    @blp.arguments(TemplateListArgsSchema, location="query")
    @blp.response(200, TemplatePageSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """The merchant's coupon templates, newest first."""
        return coupons.list_templates(current_caller().merchant_id, **args)

    @staff_required("coupons:write")
    @blp.arguments(TemplateCreateSchema)
    @blp.response(201, TemplateSchema)
    def post(self, args: dict[str, Any]) -> CouponTemplate:
        """Create a template: its kind and amounts, scope, validity, quantity and limits, audience,
        whether it stacks, and where it is offered (claim centre, first login, birthday). 422 names
        every field at fault (ids of another merchant included)."""
        with transaction():
            return coupons.create_template(current_caller().merchant_id, **args)


@blp.route("/coupon-templates/<int:template_id>")
class TemplateItem(MethodView):
    @staff_required("coupons:read")
    @blp.response(200, TemplateSchema)
    def get(self, template_id: int) -> CouponTemplate:
        """One template, with how many were issued."""
        return coupons.get_template(current_caller().merchant_id, template_id)

    @staff_required("coupons:write")
    @blp.arguments(TemplateUpdateSchema)
    @blp.response(200, TemplateSchema)
    def patch(self, args: dict[str, Any], template_id: int) -> CouponTemplate:
        """Change a template; `status: paused` stops issuing it (coupons held stay usable). Once
        coupons are issued only the quantity (never below what was issued), the end date, the
        status, the name, description and channels may change: 409 template_in_use."""
        with transaction():
            return coupons.update_template(current_caller().merchant_id, template_id, **args)


@blp.route("/coupon-templates/<int:template_id>/stats")
@staff_required("coupons:read")
@blp.response(200, TemplateStatsSchema)
def template_stats(template_id: int) -> dict[str, Any]:
    """Issued, held, used and expired coupons of the template; the discount given and the sales of
    the orders that used it."""
    return coupons.template_stats(current_caller().merchant_id, template_id)


@blp.route("/coupon-grants", methods=["POST"])
@staff_required("coupons:write")
@blp.arguments(GrantCreateSchema)
@blp.response(202, GrantSchema)
def create_grant(args: dict[str, Any]) -> CouponGrant:
    """Grant a template to a list of members (up to 10,000): a job issues it, skipping the
    members it cannot (sold out); follow it at GET /coupon-grants/{id}."""
    caller = current_caller()
    with transaction():
        return coupons.create_grant(
            caller.merchant_id, args["template_id"], args["member_ids"], staff_id=caller.subject_id, note=args["note"]
        )


@blp.route("/coupon-grants/<int:grant_id>")
@staff_required("coupons:read")
@blp.response(200, GrantSchema)
def grant(grant_id: int) -> CouponGrant:
    """A grant's progress."""
    return coupons.get_grant(current_caller().merchant_id, grant_id)
