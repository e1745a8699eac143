"""Helpers of the Redis outage tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.factories import make_merchant, make_product

OUTAGE_QUEUE = "groupshop-outage"
OUTAGE_TIMEOUT = 0.2
OUTAGE_COOLOFF = 1.0


def shop_with_stock(outage_app: Flask, stock: int = 1000) -> tuple[Any, int, int]:
    """A merchant with one product on the shelf: (merchant, product id, SKU id)."""
    with outage_app.app_context():
        merchant = make_merchant()
        product = make_product(merchant, "旧标题", skus=[{"specs": {}, "price": 500, "stock": stock}])
        return merchant, product.id, product.skus[0].id


def wait_for(condition: Callable[[], bool], seconds: float, explain: Callable[[], str] | None = None) -> float:
    """Poll `condition` until it holds; return how long that took (fail after `seconds`, with what
    `explain` says)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started >= seconds:
            raise AssertionError(f"not within {seconds} s" + (f"\n{explain()}" if explain else ""))
        time.sleep(0.05)
    return time.monotonic() - started
