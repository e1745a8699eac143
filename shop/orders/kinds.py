"""The order's kind as order events carry it."""

from __future__ import annotations

from typing import Any


def order_kind(order: Any) -> str:
    """The kind: goods, prize_upgrade or top_up. Until the `orders.kind` column lands every order is
    "goods"; once it has, this reads the column (one place to change)."""
    return getattr(order, "kind", "goods")
