"""The fake provider's callbacks: what WeChat Pay would POST, signed and encrypted, delivered
through the real notification handler."""

from __future__ import annotations

from sqlalchemy import select

from shop.core.db import db, transaction
from shop.identity.models import Merchant
from shop.orders.models import Order, Refund
from shop.payments.providers import FakeWeChatPay
from shop.payments.service import handle_notification


def deliver_refund_notification(provider: FakeWeChatPay, out_refund_no: str) -> str:
    """The fake provider's refund callback: signed and encrypted, through the real handler."""
    with transaction():
        refund = db.session.execute(select(Refund).where(Refund.out_refund_no == out_refund_no)).scalar_one()
        order = db.session.get(Order, refund.order_id)
        merchant = db.session.get(Merchant, refund.merchant_id)
        headers, body = provider.refund_notification(
            merchant,
            out_trade_no=order.order_no,
            out_refund_no=out_refund_no,
            refund=refund.amount,
            total=order.paid_total or order.payable_total,
        )
    with transaction():
        return handle_notification(provider, merchant.code, headers, body).outcome
