"""Invalid-input and tenant-isolation cases of the payments endpoints: the fake provider's hook
and WeChat Pay's callbacks.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shop.core.db import db
from shop.identity.models import Merchant
from tests.coverage import registry
from tests.coverage.invalid_input import (
    PREFIX,
    RAW,
    UNKNOWN,
    Bad,
    Endpoint,
    World,
    merchant_of,
    provider,
    with_,
)
from tests.coverage.isolation import PathCase, Shop

FAKE_PAY = ("/api/v1/payments/fake/orders/<order_no>/pay", "POST")
NOTIFY = ("/api/v1/payments/wechatpay/<merchant_code>/notify", "POST")
REFUND_NOTIFY = ("/api/v1/payments/wechatpay/<merchant_code>/refund-notify", "POST")


def _payment_notice(w: World, **changes: Any) -> dict[str, Any]:
    """A payment notification as WeChat Pay sends it (signed, resource encrypted) for the unpaid order."""
    notice = {
        "out_trade_no": w.orders.pending_order_no,
        "total": w.orders.pending_total,
        "openid": "o-payer",
        **changes,
    }
    headers, body = provider().payment_notification(merchant_of(w), **notice)
    return {"headers": headers, "data": body}


def _refund_notice(w: World, **changes: Any) -> dict[str, Any]:
    """A refund notification as WeChat Pay sends it, for the processing refund."""
    notice = {
        "out_trade_no": w.orders.refunding_order_no,
        "out_refund_no": w.orders.out_refund_no,
        "refund": w.orders.refund_amount,
        "total": w.orders.refunding_total,
        **changes,
    }
    headers, body = provider().refund_notification(merchant_of(w), **notice)
    return {"headers": headers, "data": body}


def with_notice(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    """A genuine payment notification, with what WeChat Pay says in it changed."""
    return lambda w, valid: _payment_notice(w, **changes)


def with_refund_notice(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: _refund_notice(w, **changes)


def tampered(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """The signed body, changed after it was signed (one space where none was)."""
    return {**valid, "data": valid["data"].replace('"event_type"', '"event_type" ', 1)}


def unsigned(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    return {**valid, "headers": {k: v for k, v in valid["headers"].items() if k != "Wechatpay-Signature"}}


def stale(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    return {**valid, "headers": provider().sign(valid["data"], timestamp=int(time.time()) - 301)}


def signed_text(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """Genuinely signed, but not a notification at all."""
    return {"headers": provider().sign("not json"), "data": "not json"}


registry.add_endpoints(
    {
        FAKE_PAY: Endpoint(
            lambda w: f"{PREFIX}/payments/fake/orders/{w.orders.pending_order_no}/pay",
            None,
            "json",
            lambda w: {},
            orders=("pending",),
        ),
        NOTIFY: Endpoint(
            lambda w: f"{PREFIX}/payments/wechatpay/{w.code}/notify",
            None,
            RAW,
            _payment_notice,
            ok=204,
            orders=("pending",),
        ),
        REFUND_NOTIFY: Endpoint(
            lambda w: f"{PREFIX}/payments/wechatpay/{w.code}/refund-notify",
            None,
            RAW,
            _refund_notice,
            ok=204,
            orders=("refund_processing",),
        ),
    }
)

registry.add_cases(
    [
        Bad(FAKE_PAY, "the amount is the order's", with_(total=1), ("total",), UNKNOWN),
        Bad(
            FAKE_PAY,
            "the transaction id is the provider's",
            with_(transaction_id="4200000001"),
            ("transaction_id",),
            UNKNOWN,
        ),
        # the payment provider's callbacks
        Bad(NOTIFY, "a body changed after it was signed", tampered, (), "does not match", code="FAIL", status=400),
        Bad(NOTIFY, "no signature", unsigned, (), "are required", code="FAIL", status=400),
        Bad(NOTIFY, "signed five minutes ago", stale, (), "too far from now", code="FAIL", status=400),
        Bad(
            NOTIFY,
            "signed, but not a notification",
            signed_text,
            (),
            "not a WeChat Pay notification",
            code="FAIL",
            status=400,
        ),
        Bad(
            NOTIFY,
            "paid less than the order's total",
            with_notice(total=1),
            (),
            "not the amount due",
            code="FAIL",
            status=400,
        ),
        Bad(
            NOTIFY,
            "paid to another appid",
            with_notice(appid="wx0000000000000000"),
            (),
            "appid",
            code="FAIL",
            status=400,
        ),
        Bad(NOTIFY, "paid to another mchid", with_notice(mchid="1900000000"), (), "mchid", code="FAIL", status=400),
        Bad(
            NOTIFY,
            "an order number no order has",
            with_notice(out_trade_no="000000000000"),
            (),
            "no such order",
            code="FAIL",
            status=404,
        ),
        Bad(
            REFUND_NOTIFY, "a body changed after it was signed", tampered, (), "does not match", code="FAIL", status=400
        ),
        Bad(REFUND_NOTIFY, "no signature", unsigned, (), "are required", code="FAIL", status=400),
        Bad(
            REFUND_NOTIFY,
            "refunded less than the refund's amount",
            with_refund_notice(refund=1),
            (),
            "not the amount asked for",
            code="FAIL",
            status=400,
        ),
        Bad(
            REFUND_NOTIFY,
            "a refund number no refund has",
            with_refund_notice(out_refund_no="R000000000000"),
            (),
            "no such refund",
            code="FAIL",
            status=404,
        ),
    ]
)


def shop_payment_notice(shop: Shop, **changes: Any) -> dict[str, Any]:
    """WeChat Pay's notification (signed, resource encrypted) that the shop's unpaid order was paid."""
    merchant = db.session.get(Merchant, shop.merchant_id)
    notice = {"out_trade_no": shop.pending_order_no, "total": shop.pending_total, "openid": "o-payer", **changes}
    headers, body = provider().payment_notification(merchant, **notice)
    return {"headers": headers, "data": body}


def shop_refund_notice(shop: Shop) -> dict[str, Any]:
    """WeChat Pay's notification that the shop's refund under way succeeded."""
    headers, body = provider().refund_notification(
        db.session.get(Merchant, shop.merchant_id),
        out_trade_no=shop.refunding_order_no,
        out_refund_no=shop.out_refund_no,
        refund=shop.refund_amount,
        total=shop.refunding_total,
    )
    return {"headers": headers, "data": body}


# --- tenant isolation ---------------------------------------------------------------------------

registry.add_path_cases(
    [
        # the payment provider's callbacks, and the fake provider's dev-only hook
        PathCase(
            "POST",
            "/api/v1/payments/wechatpay/<merchant_code>/notify",
            "provider",
            {"merchant_code": "code"},
            shop_payment_notice,
            ok=204,
        ),
        PathCase(
            "POST",
            "/api/v1/payments/wechatpay/<merchant_code>/refund-notify",
            "provider",
            {"merchant_code": "code"},
            shop_refund_notice,
            ok=204,
        ),
        PathCase("POST", "/api/v1/payments/fake/orders/<order_no>/pay", "nobody", {"order_no": "pending_order_no"}),
    ]
)
