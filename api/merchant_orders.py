"""/api/v1/merchant: orders, fulfilment, refunds, pickup points and order settings for staff."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response
from flask.views import MethodView

from api.auth import current_caller, staff_required
from api.blueprint import Blueprint
from api.schemas.common import ErrorSchema, NoBodySchema
from api.schemas.orders import (
    ExportArgsSchema,
    OrderSettingsSchema,
    OrderSettingsUpdateSchema,
    PickupCodeSchema,
    PickupPointCreateSchema,
    PickupPointListSchema,
    PickupPointSchema,
    PickupPointUpdateSchema,
    RefundDecisionSchema,
    RefundListArgsSchema,
    ShipSchema,
    StaffOrderListArgsSchema,
    StaffOrderPageSchema,
    StaffOrderSchema,
    StaffRefundIssueSchema,
    StaffRefundListSchema,
    StaffRefundSchema,
)
from api.throttle import RATE_LIMITED_DOC, pickup_attempt_allowed
from shop.checkout import pricing
from shop.core.db import db, transaction
from shop.core.pagination import Page
from shop.identity import pickup_points, settings
from shop.identity.models import MerchantSettings, PickupPoint
from shop.orders import fulfilment, refunds
from shop.orders import service as orders
from shop.orders.models import Order, Refund
from shop.orders.states import RefundKind

blp = Blueprint("merchant_orders", __name__, url_prefix="/api/v1/merchant", description="Orders (staff)")

EXPORT_LIMIT = 50_000


@blp.route("/orders")
@staff_required("orders:read")
@blp.arguments(StaffOrderListArgsSchema, location="query")
@blp.response(200, StaffOrderPageSchema)
def order_list(args: dict[str, Any]) -> Page:
    """Orders, newest first: filter by status and creation time, search by order or tracking number."""
    return orders.order_page(current_caller().merchant_id, **args)


# A spreadsheet takes a cell starting with one of these for a formula (CSV injection): a product
# title "=HYPERLINK(...)" would run in finance's Excel.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Text from staff or members, as a spreadsheet shows it and never runs it."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@blp.route("/orders/export.csv")
@staff_required("orders:read")
@blp.arguments(ExportArgsSchema, location="query")
@blp.doc(
    responses={
        "200": {"description": "CSV, one row per order", "content": {"text/csv": {"schema": {"type": "string"}}}}
    }
)
def export_orders(args: dict[str, Any]) -> Response:
    """Orders as CSV (amounts in fen), with the same filters as the list."""
    merchant_id = current_caller().merchant_id
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "order_no",
            "created_at",
            "status",
            "member_id",
            "fulfilment",
            "items",
            "goods_total",
            "shipping_fee",
            "discount_total",
            "payable_total",
            "paid_total",
            "refunded_total",
            "paid_at",
            "carrier",
            "tracking_no",
        ]
    )
    cursor = None
    written = 0
    while written < EXPORT_LIMIT:
        page = orders.order_page(merchant_id, cursor=cursor, limit=50, **args)
        for o in page.items:
            writer.writerow(
                [
                    o.order_no,
                    o.created_at.isoformat(),
                    o.status,
                    o.member_id,
                    o.fulfilment,
                    _cell(
                        "; ".join(f"{line.title} {' '.join(line.specs.values())} x{line.quantity}" for line in o.lines)
                    ),
                    o.goods_total,
                    o.shipping_fee,
                    o.discount_total,
                    o.payable_total,
                    o.paid_total,
                    o.refunded_total,
                    o.paid_at.isoformat() if o.paid_at else "",
                    _cell(o.carrier or ""),
                    _cell(o.tracking_no or ""),
                ]
            )
            written += 1
        db.session.expunge_all()
        cursor = page.next_cursor
        if cursor is None:
            break
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=orders.csv"},
    )


@blp.route("/orders/<int:order_id>")
@staff_required("orders:read")
@blp.response(200, StaffOrderSchema)
def order_detail(order_id: int) -> Order:
    """One order."""
    return orders.get_order(current_caller().merchant_id, order_id)


@blp.route("/orders/<int:order_id>/ship", methods=["POST"])
@staff_required("orders:fulfil")
@blp.arguments(ShipSchema)
@blp.response(200, StaffOrderSchema)
def ship(args: dict[str, Any], order_id: int) -> Order:
    """Ship a paid delivery order with its carrier and tracking number."""
    with transaction():
        return fulfilment.ship(current_caller().merchant_id, order_id, **args)


@blp.route("/orders/<int:order_id>/ready-for-pickup", methods=["POST"])
@staff_required("orders:fulfil")
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, StaffOrderSchema)
def ready_for_pickup(order_id: int) -> Order:
    """The goods of a paid pickup order are at the pickup point."""
    with transaction():
        return fulfilment.mark_ready(current_caller().merchant_id, order_id)


@blp.route("/orders/<int:order_id>/pickup", methods=["POST"])
@staff_required("orders:fulfil")
@blp.arguments(PickupCodeSchema)
@blp.response(200, StaffOrderSchema)
@blp.alt_response(429, schema=ErrorSchema, **RATE_LIMITED_DOC)
def pickup(args: dict[str, Any], order_id: int) -> Order:
    """Hand over a pickup order: the member's code must match, and works once. Codes tried are
    throttled per staff account (429 `rate_limited`)."""
    pickup_attempt_allowed(current_caller())
    with transaction():
        return fulfilment.verify_pickup(current_caller().merchant_id, order_id, args["code"])


@blp.route("/refunds")
@staff_required("orders:read")
@blp.arguments(RefundListArgsSchema, location="query")
@blp.response(200, StaffRefundListSchema)
def refund_list(args: dict[str, Any]) -> dict[str, list[Refund]]:
    """Refunds, newest first (the latest 200): members' requests and the refunds staff or the
    system issued; filter by status, or by order to see one order's refunds."""
    return {"items": refunds.refund_page(current_caller().merchant_id, **args)}


@blp.route("/orders/<int:order_id>/refunds", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(StaffRefundIssueSchema)
@blp.response(201, StaffRefundSchema)
def issue_refund(args: dict[str, Any], order_id: int) -> Refund:
    """Refund an order (all of it, or some units of some lines) without a member's request: an
    after-sales decision, a completed order included. The money goes straight back through the
    payment provider. Refused while another refund of the order is open (409
    `refund_in_progress`: decide a member's request first; a double click finds the first one);
    409 `order_not_paid`, `nothing_to_refund`; 422 `line_not_found`, `refund_quantity_exceeded`."""
    caller = current_caller()
    with transaction():
        return refunds.issue_refund(
            caller.merchant_id,
            order_id,
            kind=RefundKind.STAFF,
            lines=args.get("lines"),
            reason=args["reason"],
            staff_id=caller.subject_id,
        )


@blp.route("/refunds/<int:refund_id>/approve", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, StaffRefundSchema)
def approve_refund(refund_id: int) -> Refund:
    """Approve a refund: the money goes back through the payment provider."""
    caller = current_caller()
    with transaction():
        return refunds.decide_refund(caller.merchant_id, refund_id, staff_id=caller.subject_id, approve=True)


@blp.route("/refunds/<int:refund_id>/reject", methods=["POST"])
@staff_required("money:approve")
@blp.arguments(RefundDecisionSchema)
@blp.response(200, StaffRefundSchema)
def reject_refund(args: dict[str, Any], refund_id: int) -> Refund:
    """Reject a refund request, with a reason for the member."""
    caller = current_caller()
    with transaction():
        return refunds.decide_refund(
            caller.merchant_id, refund_id, staff_id=caller.subject_id, approve=False, reason=args["reason"]
        )


@blp.route("/pickup-points")
class PickupPoints(MethodView):
    @staff_required("orders:read")
    @blp.response(200, PickupPointListSchema)
    def get(self) -> dict[str, list[PickupPoint]]:
        """Every pickup point, open or closed."""
        return {"items": pickup_points.list_pickup_points(current_caller().merchant_id)}

    @staff_required("orders:fulfil")
    @blp.arguments(PickupPointCreateSchema)
    @blp.response(201, PickupPointSchema)
    def post(self, args: dict[str, Any]) -> PickupPoint:
        """Open a pickup point at a group leader's address."""
        with transaction():
            return pickup_points.create_pickup_point(current_caller().merchant_id, **args)


@blp.route("/pickup-points/<int:point_id>", methods=["PATCH"])
@staff_required("orders:fulfil")
@blp.arguments(PickupPointUpdateSchema)
@blp.response(200, PickupPointSchema)
def update_pickup_point(args: dict[str, Any], point_id: int) -> PickupPoint:
    """Change or close a pickup point."""
    with transaction():
        return pickup_points.update_pickup_point(current_caller().merchant_id, point_id, **args)


@blp.route("/settings/orders")
class OrderSettings(MethodView):
    @staff_required("orders:read")
    @blp.response(200, OrderSettingsSchema)
    def get(self) -> MerchantSettings:
        """Shipping fee, free-shipping threshold, unpaid expiry, auto-confirm and after-sales days."""
        return pricing.merchant_settings(current_caller().merchant_id)

    @staff_required("settings:manage")
    @blp.arguments(OrderSettingsUpdateSchema)
    @blp.response(200, OrderSettingsSchema)
    def patch(self, args: dict[str, Any]) -> MerchantSettings:
        """Change the order settings (owner only)."""
        with transaction():
            return settings.update_settings(current_caller().merchant_id, **args)
