"""/api/v1/payments: the payment provider's callbacks, and the fake provider's dev-only "pay"."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, request
from flask_smorest import abort
from sqlalchemy import update

from api.blueprint import Blueprint
from api.schemas.common import NoBodySchema
from api.schemas.orders import OrderSchema
from shop.core.db import db, transaction
from shop.core.errors import Conflict, NotFound
from shop.identity.models import Member, Merchant
from shop.orders.models import Order
from shop.payments.errors import NotificationRejected
from shop.payments.providers import FakeWeChatPay, payment_provider
from shop.payments.service import handle_notification

P = ParamSpec("P")
R = TypeVar("R")

blp = Blueprint("payments", __name__, url_prefix="/api/v1/payments", description="Payment provider callbacks")

NOTIFICATION_DOC = {
    "requestBody": {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "a WeChat Pay v3 notification (signed, resource AES-256-GCM encrypted)",
    },
    "responses": {
        "204": {"description": "handled (also when it was a duplicate)"},
        "400": {
            "description": 'refused: {"code": "FAIL", "message": ...}',
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
}


def _fail(status: int, message: str) -> tuple[dict[str, str], int]:
    return {"code": "FAIL", "message": message}, status


def _notify() -> tuple[dict[str, str], int] | tuple[str, int]:
    body = request.get_data(as_text=True)
    try:
        with transaction():
            handle_notification(payment_provider(), request.view_args["merchant_code"], dict(request.headers), body)
    except NotificationRejected as exc:
        current_app.logger.warning("payment notification refused: %s", exc.reason)
        return _fail(400 if exc.reason not in ("unknown_order", "unknown_refund") else 404, exc.message)
    except Exception:
        current_app.logger.exception("payment notification failed")
        return _fail(500, "internal error; retry later")
    return "", 204


@blp.route("/wechatpay/<merchant_code>/notify", methods=["POST"])
@blp.doc(summary="WeChat Pay payment notification", **NOTIFICATION_DOC)
def payment_notification(merchant_code: str) -> tuple[dict[str, str], int] | tuple[str, int]:
    """WeChat Pay calls this when an order is paid."""
    return _notify()


@blp.route("/wechatpay/<merchant_code>/refund-notify", methods=["POST"])
@blp.doc(summary="WeChat Pay refund notification", **NOTIFICATION_DOC)
def refund_notification(merchant_code: str) -> tuple[dict[str, str], int] | tuple[str, int]:
    """WeChat Pay calls this when a refund has succeeded or failed."""
    return _notify()


def _fake_provider_only(view: Callable[P, R]) -> Callable[P, R]:
    """Anywhere but development and test with the fake provider, the dev hook does not exist (a
    404 whatever is sent): checked before the body is read."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        env = current_app.config["SETTINGS"].env
        if env not in ("development", "test") or not isinstance(payment_provider(), FakeWeChatPay):
            abort(404)
        return view(*args, **kwargs)

    return wrapper


@blp.route("/fake/orders/<order_no>/pay", methods=["POST"])
@_fake_provider_only
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, OrderSchema)
def fake_pay(order_no: str) -> Order | None:
    """Dev and test only: pay an order through the fake provider. The notification it sends is
    signed and encrypted like WeChat Pay's and goes through the real notification handler."""
    provider = payment_provider()
    order = db.session.query(Order).filter_by(order_no=order_no).one_or_none()
    if order is None:
        raise NotFound("order not found")
    merchant = db.session.get(Merchant, order.merchant_id)
    member = db.session.get(Member, order.member_id)
    headers, body = provider.payment_notification(
        merchant, out_trade_no=order.order_no, total=order.payable_total, openid=member.openid
    )
    db.session.rollback()
    try:
        with transaction():
            # As if the member had tapped "pay" first: the order has a prepay at the provider.
            db.session.execute(
                update(Order)
                .where(Order.id == order.id, Order.prepay_id.is_(None))
                .values(prepay_id=f"wx_fake_{order.order_no}")
            )
            handle_notification(provider, merchant.code, headers, body)
    except NotificationRejected as exc:
        raise Conflict(exc.message, code=f"payment_{exc.reason}") from None
    db.session.expire_all()
    return db.session.get(Order, order.id)
