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


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Poll `condition` until it holds; return how long that took (fail after `seconds`)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started
