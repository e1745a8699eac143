"""Builders for test data (they go through the services, like the API does), and small helpers:
requests as the API sees them, orders in each state (`placed_order`, `paid_order`, `shipped_order`,
`received_order`, `completed_order`, `refunded_order`: each goes through the API like a member
and staff would, and asserts each step worked), `make_store` for a merchant with named SKUs, staff
and a member, `race` for real concurrency, `free_port` for servers a test starts, `sent_statements`
for the SQL a block sends."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from shop.catalog import service as catalog
from shop.catalog.models import Product
from shop.core.db import db, transaction
from shop.identity import staff
from shop.identity.merchants import create_merchant
from shop.identity.models import Member, Merchant

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_merchant(code: str | None = None) -> Merchant:
    n = next(_seq)
    code = code or f"m{n}"
    with transaction():
        return create_merchant(
            code=code,
            name=f"Merchant {code}",
            appid=f"wxtest{n:010d}",
            secret="s",
            owner_username="owner",
            owner_password=PASSWORD,
        )


def make_staff(merchant: Merchant, role: str, username: str | None = None):
    with transaction():
        return staff.create_staff(merchant.id, username=username or f"{role}{next(_seq)}", password=PASSWORD, role=role)


def make_product(
    merchant: Merchant,
    title: str = "Product",
    *,
    skus: list[dict[str, Any]] | None = None,
    on_shelf: bool = True,
    category_id: int | None = None,
) -> Product:
    skus = skus or [{"specs": {"规格": "标准"}, "price": 1000, "market_price": 1500, "stock": 50}]
    with transaction():
        product = catalog.create_product(
            merchant.id,
            staff_id=None,
            title=title,
            skus=skus,
            category_id=category_id,
            images=["https://img.example.com/x.jpg"],
        )
        if on_shelf:
            catalog.set_shelf(merchant.id, product.id, on_shelf=True)
    return product


def member_headers(client, merchant_code: str, name: str = "alice") -> dict[str, str]:
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant_code, "code": f"test:{name}"})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def staff_headers(client, merchant_code: str, username: str = "owner", password: str = PASSWORD) -> dict[str, str]:
    response = client.post(
        "/api/v1/merchant/auth/login", json={"merchant": merchant_code, "username": username, "password": password}
    )
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


ADDRESS = {
    "name": "王小二",
    "phone": "13800138000",
    "province": "广东",
    "city": "深圳",
    "district": "南山",
    "detail": "科技园 1 号",
}


def order_body(sku_id: int, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [{"sku_id": sku_id, "quantity": quantity}],
        "fulfilment": "delivery",
        "address": dict(ADDRESS),
    }
    body.update(extra)
    return body


def place(client, headers: dict[str, str], body: dict[str, Any], key: str | None = None):
    return client.post(
        "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": key or f"key-{next(_seq):08d}"}
    )


def fake_pay(client, order_no: str):
    return client.post(f"/api/v1/payments/fake/orders/{order_no}/pay")


def placed_order(client, member: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """An unpaid order, as the member sees it."""
    placed = place(client, member, body)
    assert placed.status_code == 201, placed.json
    return placed.json


def paid_order(client, member: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """An order paid through the fake provider, as the member sees it."""
    order = placed_order(client, member, body)
    paid = fake_pay(client, order["order_no"])
    assert paid.status_code == 200 and paid.json["status"] == "paid", paid.json
    return paid.json


PARCEL = {"carrier": "SF", "tracking_no": "SF1234567890"}


def ship(client, staff: dict[str, str], order_id: int, shipping: dict[str, str] | None = None):
    return client.post(f"/api/v1/merchant/orders/{order_id}/ship", json=shipping or PARCEL, headers=staff)


def shipped_order(
    client, staff: dict[str, str], member: dict[str, str], body: dict[str, Any], shipping: dict[str, str] | None = None
) -> dict[str, Any]:
    """A paid delivery order the staff shipped, as staff see it."""
    order = paid_order(client, member, body)
    shipped = ship(client, staff, order["id"], shipping)
    assert shipped.status_code == 200, shipped.json
    return shipped.json


def received_order(client, staff: dict[str, str], member: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """A shipped order whose receipt the member confirmed (its after-sales window is open)."""
    order = shipped_order(client, staff, member, body)
    received = client.post(f"/api/v1/orders/{order['id']}/confirm-receipt", headers=member)
    assert received.status_code == 200, received.json
    return received.json


def completed_order(client, staff: dict[str, str], member: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """A received order finalized once its after-sales window closed; its member view, before."""
    from datetime import timedelta

    from shop.orders.fulfilment import finalize
    from shop.orders.models import Order

    order = received_order(client, staff, member, body)
    with transaction():
        window_end = db.session.get(Order, order["id"]).after_sales_until
        assert finalize(order["id"], now=window_end + timedelta(seconds=1))
    return order


def settled_refund(
    app,
    client,
    staff: dict[str, str],
    member: dict[str, str],
    order_id: int,
    lines: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The member asks for a refund of the paid order (of `lines`, (line id, quantity) pairs, or
    all of it), staff approve, the job pays it back and the fake provider's notification settles
    it: the refund as the member saw it asked for."""
    from api.worker import run_burst
    from shop.orders.models import Refund

    asked: dict[str, Any] = {"reason": "not as described"}
    if lines is not None:
        asked["lines"] = [{"line_id": line_id, "quantity": quantity} for line_id, quantity in lines]
    requested = client.post(f"/api/v1/orders/{order_id}/refunds", json=asked, headers=member)
    assert requested.status_code == 201 and requested.json["status"] == "requested", requested.json
    approved = client.post(f"/api/v1/merchant/refunds/{requested.json['id']}/approve", headers=staff)
    assert approved.status_code == 200 and approved.json["status"] == "processing", approved.json
    run_burst(app)
    assert reload(Refund, requested.json["id"]).status == "succeeded"
    return requested.json


def refunded_order(
    app, client, staff: dict[str, str], member: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A paid order refunded in full (see `settled_refund`): (the order as paid, the refund)."""
    order = paid_order(client, member, body)
    return order, settled_refund(app, client, staff, member, order["id"])


def make_store(client, member: str = "buyer", **skus: dict[str, Any]) -> dict[str, Any]:
    """A merchant with one product per named SKU (`apple={"price": 1000, "stock": 50, "title": ...}`),
    the owner's headers ("staff") and a member's ("member"): {"merchant", "staff", "member", name:
    SKU id, f"{name}_product": product id}."""
    merchant = make_merchant()
    store: dict[str, Any] = {"merchant": merchant}
    for name, spec in skus.items():
        sku = {"specs": {"规格": "标准"}, **{k: v for k, v in spec.items() if k != "title"}}
        product = make_product(merchant, spec.get("title", name), skus=[sku])
        store[name] = product.skus[0].id
        store[f"{name}_product"] = product.id
    store["staff"] = staff_headers(client, merchant.code)
    store["member"] = member_headers(client, merchant.code, member)
    return store


def reload(model: Any, row_id: int) -> Any:
    """The row as the database has it now (what other sessions committed included)."""
    db.session.expire_all()
    return db.session.get(model, row_id)


# --- the same, through the services (for service-level tests, in an app context) -----------------


def make_member(merchant: Merchant, name: str = "alice") -> Member:
    """A member of the merchant, logged in through the fake WeChat like the API does."""
    from flask import current_app

    from shop.identity import members

    return members.login_with_wx_code(merchant.code, f"test:{name}", current_app.extensions["groupshop.wechat"]).member


def placed_by_service(
    merchant_id: int,
    member_id: int,
    items: list[tuple[int, int]],
    *,
    key: str | None = None,
    fulfilment: str = "delivery",
    pickup_point_id: int | None = None,
    remark: str = "",
) -> Any:
    """`orders.place_order` in its own transaction, as the API calls it: the `Placed` (order, replayed)."""
    from shop.orders import service as orders

    request = {
        "items": [{"sku_id": sku_id, "quantity": quantity} for sku_id, quantity in items],
        "fulfilment": fulfilment,
        "address": dict(ADDRESS) if fulfilment == "delivery" else None,
        "pickup_point_id": pickup_point_id,
        "remark": remark,
    }
    with transaction():
        return orders.place_order(
            merchant_id,
            member_id,
            items=request["items"],
            fulfilment=fulfilment,
            address=request["address"],
            pickup_point_id=pickup_point_id,
            remark=remark,
            idempotency_key=key or f"key-{next(_seq):08d}",
            fingerprint=orders.request_fingerprint(request),
        )


def paid_by_service(order_id: int) -> Any:
    """The unpaid order, paid in full (`orders.mark_paid`, as the payment service calls it)."""
    from shop.orders import service as orders

    with transaction():
        order = orders.lock_order(order_id)
        orders.mark_paid(order, order.payable_total, f"42{next(_seq):08d}")
    return order


def in_app(app: Any, call: Callable[[], Any]) -> Any:
    """`call()` in an app context of its own (its own connection), the session removed after:
    how a race's request or a check stands apart from the others."""
    with app.app_context():
        try:
            return call()
        finally:
            db.session.remove()


def race(n: int, call: Callable[[int], Any], timeout: float = 60) -> list[Any]:
    """Run call(0..n-1) on n threads released together by a barrier; return the results in order."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(timeout=timeout)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def free_port() -> int:
    """A local TCP port nothing listens on right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sent_statements() -> Iterator[list[str]]:
    """The SQL statements sent while the block runs, in order (a test's savepoints left out)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "SAVEPOINT" not in statement:
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
