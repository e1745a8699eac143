"""Builders for test data (they go through the services, like the API does), and small helpers:
requests as the API sees them, `race` for real concurrency, `free_port` for servers a test starts."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shop.catalog import service as catalog
from shop.catalog.models import Product
from shop.core.db import transaction
from shop.identity import staff
from shop.identity.merchants import create_merchant
from shop.identity.models import Merchant

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
