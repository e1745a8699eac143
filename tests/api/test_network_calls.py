"""No network call inside a database transaction or under a row lock (ARCHITECTURE.md).

The fake providers refuse to run while the session has a transaction open, so the whole suite
fails wherever the rule is broken. Each path that calls out (login, the expiry's query, closing
at the provider, submitting a refund) is shown here calling with none open, and recording the
answer right when something happened in between.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from api.worker import run_burst
from shop.catalog.models import Sku, StockMovement
from shop.core.db import TransactionOpen, db, transaction, utcnow
from shop.core.events import OrderRefunded, bus
from shop.identity.models import Merchant
from shop.orders.models import Order, Refund
from shop.payments import jobs as payment_jobs
from shop.payments.wechatpay import RefundResult
from tests.factories import fake_pay, make_merchant, make_product, member_headers, order_body, place, staff_headers

PAYMENTS = "groupshop.payments"
WECHAT = "groupshop.wechat"


def _spy(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, after: Callable[..., Any] | None = None) -> list:
    """Wrap `target.name`: each call records whether a transaction was open; `after(answer, *args,
    **kwargs)` may act while the call is "on the network" and change the answer."""
    calls: list[bool] = []
    real = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(db.session().in_transaction())
        answer = real(*args, **kwargs)
        return after(answer, *args, **kwargs) if after else answer

    monkeypatch.setattr(target, name, wrapper)
    return calls


def _shop(stock: int = 10):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 1000, "stock": stock}]).skus[0].id
    return merchant, sku_id


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _expire_now(order_id: int) -> None:
    with transaction():
        db.session.execute(update(Order).where(Order.id == order_id).values(expires_at=utcnow() - timedelta(minutes=5)))


# --- the guard ----------------------------------------------------------------------------------


def _calls(app, merchant: Merchant) -> dict[str, Callable[[], Any]]:
    provider = app.extensions[PAYMENTS]
    account = provider.account(merchant)  # read now: a read at call time would begin a transaction
    appid = merchant.wx_appid
    return {
        "prepay": lambda: provider.prepay(
            account, out_trade_no="N0001", description="d", total=1, openid="o1", time_expire=utcnow()
        ),
        "close": lambda: provider.close(account, "N0001"),
        "query": lambda: provider.query(account, "N0001"),
        "refund": lambda: provider.refund(
            account, out_trade_no="N0001", out_refund_no="N0001R01", amount=1, total=1, reason="r"
        ),
        "code2session": lambda: app.extensions[WECHAT].code2session(appid, "s", "test:alice"),
    }


@pytest.mark.parametrize("call", ["prepay", "close", "query", "refund", "code2session"])
def test_a_fake_provider_called_inside_a_transaction_refuses(ctx, call):
    merchant = make_merchant()
    with pytest.raises(TransactionOpen, match="transaction open"), transaction():
        _calls(ctx, merchant)[call]()


@pytest.mark.parametrize("call", ["prepay", "close", "query", "refund", "code2session"])
def test_a_transaction_a_plain_read_began_counts_until_it_ends(ctx, call):
    calls = _calls(ctx, make_merchant())
    db.session.execute(select(func.count()).select_from(Merchant)).scalar()  # a read begins a transaction
    with pytest.raises(TransactionOpen):
        calls[call]()
    db.session.rollback()  # ended: now the call goes through
    assert calls[call]() is not None


def test_in_production_a_call_inside_a_transaction_is_logged_not_refused(ctx, monkeypatch, caplog):
    merchant = make_merchant()
    monkeypatch.setitem(ctx.config, "STRICT_NETWORK_CALLS", False)
    with transaction():
        assert _calls(ctx, merchant)["query"]() is not None
    assert "WeChat Pay query was called with a database transaction open" in caplog.text


def test_the_real_clients_are_guarded_too(ctx):
    from shop.identity.wechat import HttpWeChatAuth
    from shop.payments.wechatpay import WeChatPayClient

    account = ctx.extensions[PAYMENTS].account(make_merchant())
    with pytest.raises(TransactionOpen), transaction():
        HttpWeChatAuth("http://127.0.0.1:9").code2session("wx1", "s", "code")
    with pytest.raises(TransactionOpen), transaction():
        WeChatPayClient("http://127.0.0.1:9").query(account, "N0001")


# --- the four paths -----------------------------------------------------------------------------


def test_a_login_exchanges_the_code_with_no_transaction_open(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    calls = _spy(monkeypatch, app.extensions[WECHAT], "code2session")
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:alice"})
    assert response.status_code == 200, response.json
    assert response.json["new_member"] is True
    assert calls == [False]


def test_a_login_to_a_merchant_closed_while_wechat_answered_is_refused(app, ctx, client, monkeypatch):
    merchant = make_merchant()

    def close_the_shop(answer, *args, **kwargs):
        with app.app_context(), transaction():
            db.session.execute(update(Merchant).where(Merchant.id == merchant.id).values(active=False))
        return answer

    _spy(monkeypatch, app.extensions[WECHAT], "code2session", after=close_the_shop)
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:alice"})
    assert response.status_code == 404, response.json


def test_an_expiring_order_is_asked_about_at_the_provider_with_no_transaction_open(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id, 2)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    _expire_now(order["id"])
    calls = _spy(monkeypatch, app.extensions[PAYMENTS], "query")
    assert payment_jobs.expire_order(order["id"]) == "cancelled"
    assert calls == [False]
    assert _stock(sku_id) == 10


def test_an_order_paid_while_its_expiry_asked_the_provider_stays_paid(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id, 2)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    _expire_now(order["id"])

    def paid_meanwhile(answer, *args, **kwargs):
        assert answer["trade_state"] == "NOTPAY"
        assert fake_pay(client, order["order_no"]).json["status"] == "paid"  # the notification lands
        return answer

    _spy(monkeypatch, app.extensions[PAYMENTS], "query", after=paid_meanwhile)
    assert payment_jobs.expire_order(order["id"]) == "paid"
    db.session.expire_all()
    assert db.session.get(Order, order["id"]).status == "paid"
    assert _stock(sku_id) == 8  # still sold, never released
    assert db.session.execute(select(func.count()).select_from(Refund)).scalar() == 0


def test_a_cancelled_order_is_closed_at_the_provider_with_no_transaction_open(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers).status_code == 200
    calls = _spy(monkeypatch, app.extensions[PAYMENTS], "close")
    assert payment_jobs.close_payment(order["id"]) == "closed"
    assert calls == [False]
    assert app.extensions[PAYMENTS].is_closed(order["order_no"])


def test_a_paid_order_the_provider_will_not_close_is_queried_with_no_transaction_open(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id)).json
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers).status_code == 200
    provider = app.extensions[PAYMENTS]
    provider.payment_notification(merchant, out_trade_no=order["order_no"], total=order["payable_total"], openid="o")
    closes = _spy(monkeypatch, provider, "close")
    queries = _spy(monkeypatch, provider, "query")
    assert payment_jobs.close_payment(order["id"]) == "late"
    assert (closes, queries) == ([False], [False])


def _refund_approved(client, merchant, sku_id, quantity: int = 2) -> tuple[dict, dict]:
    headers = member_headers(client, merchant.code)
    order = place(client, headers, order_body(sku_id, quantity)).json
    assert fake_pay(client, order["order_no"]).json["status"] == "paid"
    refund = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "r"}, headers=headers).json
    approved = client.post(
        f"/api/v1/merchant/refunds/{refund['id']}/approve", headers=staff_headers(client, merchant.code)
    )
    assert approved.status_code == 200, approved.json
    return order, refund


def test_a_refund_is_submitted_to_the_provider_with_no_transaction_open(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    order, refund = _refund_approved(client, merchant, sku_id)
    calls = _spy(monkeypatch, app.extensions[PAYMENTS], "refund")
    run_burst(app)  # the submission job, then the provider's notification
    db.session.expire_all()
    stored = db.session.get(Refund, refund["id"])
    assert (stored.status, stored.attempts, stored.last_error) == ("succeeded", 1, "")
    assert stored.provider_refund_id == f"fake_rf_{refund['out_refund_no']}"
    assert calls == [False]
    assert _stock(sku_id) == 10


def test_a_refund_the_notification_settled_while_it_was_submitted_is_settled_once(app, ctx, client, monkeypatch):
    merchant, sku_id = _shop()
    order, refund = _refund_approved(client, merchant, sku_id)

    def settled_meanwhile(answer, *args, **kwargs):
        with app.app_context():  # another worker: the provider's notification arrives first
            assert payment_jobs.fake_refund_notification(refund["out_refund_no"]) == "refund_applied"
        return RefundResult(refund_id=answer.refund_id, status="SUCCESS")  # then the answer: SUCCESS

    _spy(monkeypatch, app.extensions[PAYMENTS], "refund", after=settled_meanwhile)
    refunded: list[OrderRefunded] = []
    recorder = lambda event: refunded.append(event)  # noqa: E731
    bus.subscribe(OrderRefunded, recorder)
    try:
        assert payment_jobs.submit_refund(refund["id"]) == "refund_duplicate"
        run_burst(app)  # the job queued by the approval, and the notification again: no change
    finally:
        bus.unsubscribe(OrderRefunded, recorder)
    db.session.expire_all()
    stored = db.session.get(Refund, refund["id"])
    assert (stored.status, stored.provider_refund_id) == ("succeeded", f"fake_rf_{refund['out_refund_no']}")
    assert [event.refund_id for event in refunded] == [refund["id"]]
    assert db.session.get(Order, order["id"]).refunded_total == refund["amount"]
    assert _stock(sku_id) == 10
    restocked = db.session.execute(
        select(func.sum(StockMovement.delta)).where(
            StockMovement.sku_id == sku_id, StockMovement.reason == "refund_restock"
        )
    ).scalar()
    assert restocked == 2


def test_a_refund_the_provider_refuses_records_the_error_after_the_call(app, ctx, client, monkeypatch):
    from shop.core.errors import UpstreamError

    merchant, sku_id = _shop()
    _, refund = _refund_approved(client, merchant, sku_id)
    calls: list[bool] = []

    def refuse(*args: Any, **kwargs: Any) -> RefundResult:
        calls.append(db.session().in_transaction())
        raise UpstreamError("WeChat Pay refused the refund: NOT_ENOUGH 余额不足", code="refund_refused")

    monkeypatch.setattr(app.extensions[PAYMENTS], "refund", refuse)
    assert payment_jobs.submit_refund(refund["id"]) == "retry_later"
    db.session.expire_all()
    stored = db.session.get(Refund, refund["id"])
    assert (stored.status, stored.attempts) == ("processing", 1)
    assert stored.last_error.startswith("refund_refused: WeChat Pay refused")
    assert calls == [False]
