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
from api.schemas.distribution import WithdrawalSchema
from api.schemas.orders import OrderSchema
from distribution import withdrawals
from distribution.models import Withdrawal
from shop.core.db import db, transaction
from shop.core.errors import Conflict, NotFound
from shop.identity.models import Member, Merchant
from shop.orders.models import Order
from shop.payments.errors import NotificationRejected
from shop.payments.providers import FakeWeChatPay, payment_provider
from shop.payments.service import handle_notification
from shop.payments.transfers import read_transfer_notification

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


@blp.route("/wechatpay/<merchant_code>/transfer-notify", methods=["POST"])
@blp.doc(summary="WeChat Pay merchant transfer notification", **NOTIFICATION_DOC)
def transfer_notification(merchant_code: str) -> tuple[dict[str, str], int] | tuple[str, int]:
    """WeChat Pay calls this when a transfer (a distributor's withdrawal, 商家转账) reached its
    final state: SUCCESS (paid), FAIL or CANCELLED (the money returns to the balance). Applied
    once: a duplicate changes nothing and is answered 204 too."""
    return _transfer_notify(merchant_code, dict(request.headers), request.get_data(as_text=True))


def _transfer_notify(
    merchant_code: str, headers: dict[str, str], body: str
) -> tuple[dict[str, str], int] | tuple[str, int]:
    try:
        with transaction():
            notice = read_transfer_notification(payment_provider(), merchant_code, headers, body)
            found = withdrawals.apply_transfer_state(
                notice.merchant_id,
                notice.out_bill_no,
                notice.state,
                transfer_bill_no=notice.transfer_bill_no,
                fail_reason=notice.fail_reason,
                amount=notice.amount,
                openid=notice.openid,
            )
            if found is None:
                raise NotificationRejected("unknown_withdrawal", "no withdrawal has that out_bill_no")
    except NotificationRejected as exc:
        current_app.logger.warning("transfer notification refused: %s", exc.reason)
        return _fail(404 if exc.reason == "unknown_withdrawal" else 400, exc.message)
    except Conflict as exc:  # the amount or the payee is not the withdrawal's
        current_app.logger.error("transfer notification refused: %s", exc.message)
        return _fail(400, exc.message)
    except Exception:
        current_app.logger.exception("transfer notification failed")
        return _fail(500, "internal error; retry later")
    return "", 204


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


@blp.route("/fake/transfers/<out_bill_no>/confirm", methods=["POST"])
@_fake_provider_only
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, WithdrawalSchema)
def fake_transfer_confirm(out_bill_no: str) -> Withdrawal:
    """Dev and test only: the distributor confirms a transfer waiting for them (as
    wx.requestMerchantTransfer would). The notification that follows is signed and encrypted like
    WeChat Pay's and goes through the real transfer-notify handler."""
    return _fake_transfer(out_bill_no, "confirm")


@blp.route("/fake/transfers/<out_bill_no>/fail", methods=["POST"])
@_fake_provider_only
@blp.arguments(NoBodySchema, as_kwargs=True, required=False)
@blp.response(200, WithdrawalSchema)
def fake_transfer_fail(out_bill_no: str) -> Withdrawal:
    """Dev and test only: WeChat Pay fails a transfer (PAYEE_ACCOUNT_ABNORMAL); its notification
    goes through the real handler, and the money returns to the distributor's balance."""
    return _fake_transfer(out_bill_no, "fail")


def _fake_transfer(out_bill_no: str, outcome: str) -> Withdrawal:
    provider = payment_provider()
    withdrawal = db.session.query(Withdrawal).filter_by(out_bill_no=out_bill_no).one_or_none()
    if withdrawal is None or provider.transfer_bill(out_bill_no) is None:
        raise NotFound("transfer not found")
    merchant = db.session.get(Merchant, withdrawal.merchant_id)
    db.session.rollback()
    if outcome == "confirm":
        provider.confirm_transfer(out_bill_no)
    else:
        provider.fail_transfer(out_bill_no)
    headers, body = provider.transfer_notification(merchant, out_bill_no=out_bill_no)
    answer = _transfer_notify(merchant.code, headers, body)
    if answer[1] != 204:
        raise Conflict(f"the transfer notification was refused: {answer[0]}", code="transfer_notification_refused")
    db.session.expire_all()
    return db.session.get(Withdrawal, withdrawal.id)
