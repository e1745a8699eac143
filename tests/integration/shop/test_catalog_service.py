"""Catalog rules at the service level: the stock adjustment guard, and the sales counter."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shop.catalog import service as catalog
from shop.catalog.models import Product, Sku, StockMovement
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.identity.models import Merchant
from tests.factories import make_merchant, make_product


@pytest.fixture
def merchant(ctx) -> Merchant:
    return make_merchant()


@pytest.fixture
def sku(merchant) -> Sku:
    return make_product(merchant, "Pear", skus=[{"specs": {}, "price": 800, "stock": 10}]).skus[0]


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _movements(sku_id: int) -> list[tuple[int, int, str]]:
    query = select(StockMovement).where(StockMovement.sku_id == sku_id).order_by(StockMovement.id)
    return [(m.delta, m.stock_after, m.reason) for m in db.session.execute(query).scalars()]


@pytest.mark.parametrize(
    ("delta", "stock_after"),
    [(5, 15), (-10, 0), (-1, 9), (catalog.MAX_STOCK - 10, catalog.MAX_STOCK)],
)
def test_an_adjustment_within_the_bounds_moves_the_stock_and_records_a_movement(sku, delta, stock_after):
    with transaction():
        movement = catalog.adjust_stock(sku.merchant_id, sku.id, delta=delta, reason="restock", note="n")
    assert (movement.delta, movement.stock_after) == (delta, stock_after)
    assert _stock(sku.id) == stock_after
    assert _movements(sku.id)[-1] == (delta, stock_after, "restock")


@pytest.mark.parametrize(
    ("delta", "code"),
    [(-11, "insufficient_stock"), (-(10**9), "insufficient_stock"), (catalog.MAX_STOCK - 9, "stock_limit")],
)
def test_an_adjustment_past_the_bounds_is_refused_and_changes_nothing(sku, delta, code):
    before = _movements(sku.id)
    with pytest.raises(Conflict) as refused, transaction():
        catalog.adjust_stock(sku.merchant_id, sku.id, delta=delta, reason="restock")
    assert refused.value.code == code
    assert refused.value.details["stock"] == 10
    assert _stock(sku.id) == 10
    assert _movements(sku.id) == before


def test_an_adjustment_of_nothing_is_invalid_input(sku):
    with pytest.raises(InvalidInput) as refused, transaction():
        catalog.adjust_stock(sku.merchant_id, sku.id, delta=0, reason="restock")
    assert refused.value.details == {"fields": {"delta": ["a stock adjustment changes the stock"]}}


def test_another_merchants_sku_cannot_be_adjusted_and_is_not_found(sku):
    other = make_merchant()
    for delta in (5, -5, catalog.MAX_STOCK):
        with pytest.raises(NotFound), transaction():
            catalog.adjust_stock(other.id, sku.id, delta=delta, reason="restock")
    assert _stock(sku.id) == 10


def test_move_stock_tells_a_refused_guard_by_returning_none(sku):
    with transaction():
        assert catalog.move_stock(sku.merchant_id, sku.id, -11, reason="order_reserved") is None
        assert catalog.move_stock(sku.merchant_id + 10**9, sku.id, 1, reason="restock") is None
        with_active = catalog.move_stock(sku.merchant_id, sku.id, -10, reason="order_reserved", only_active=True)
    assert with_active is not None and with_active.stock_after == 0


def _sales(product_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Product, product_id).sales


def test_sales_are_added_and_taken_back_per_product(merchant, sku):
    second = make_product(merchant, "Plum")
    with transaction():
        catalog.record_sales({sku.product_id: 5, second.id: 2})
    with transaction():
        catalog.record_sales({sku.product_id: -3, second.id: 0})
    assert (_sales(sku.product_id), _sales(second.id)) == (2, 2)


def test_taking_back_more_sales_than_were_recorded_fails_loudly_and_changes_nothing(sku):
    """A counter bug must not be hidden by clamping at zero: the CHECK (sales >= 0) refuses it."""
    with transaction():
        catalog.record_sales({sku.product_id: 2})
    with pytest.raises(IntegrityError, match="ck_products_sales"), transaction():
        catalog.record_sales({sku.product_id: -3})
    assert _sales(sku.product_id) == 2
    total = db.session.execute(select(func.sum(Product.sales))).scalar()
    assert total == 2
