"""The member's cart: SKUs and quantities, checked against the catalog when read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import lazyload

from shop.catalog.models import Product, Sku
from shop.checkout import pricing
from shop.checkout.models import CartItem
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound

MAX_CART_QUANTITY = pricing.MAX_LINE_QUANTITY


def _sellable_sku(merchant_id: int, sku_id: int) -> Sku:
    row = db.session.execute(
        select(Sku, Product.status)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id == sku_id, Sku.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise NotFound("SKU not found", details={"fields": {"sku_id": ["no such SKU"]}})
    sku, product_status = row
    if not sku.active or product_status != "on_shelf":
        raise Conflict("that item is not on sale", code="sku_unavailable", details={"sku_id": sku_id})
    return sku


def add_to_cart(merchant_id: int, member_id: int, sku_id: int, quantity: int) -> None:
    """Add to the line (or start it); the limit holds in SQL, so two taps at once cannot pass it."""
    _sellable_sku(merchant_id, sku_id)
    added = db.session.execute(
        insert(CartItem)
        .values(merchant_id=merchant_id, member_id=member_id, sku_id=sku_id, quantity=quantity, created_at=utcnow())
        .on_conflict_do_update(
            index_elements=["member_id", "sku_id"],
            set_={"quantity": CartItem.quantity + quantity},
            where=CartItem.quantity + quantity <= MAX_CART_QUANTITY,
        )
        .returning(CartItem.id)
    ).scalar_one_or_none()
    if added is None:
        raise InvalidInput(
            f"at most {MAX_CART_QUANTITY} of one item",
            code="cart_quantity_limit",
            details={"fields": {"quantity": [f"at most {MAX_CART_QUANTITY} in the cart"]}},
        )


def set_cart_quantity(merchant_id: int, member_id: int, sku_id: int, quantity: int) -> None:
    if quantity == 0:
        remove_from_cart(merchant_id, member_id, sku_id)
        return
    _sellable_sku(merchant_id, sku_id)
    db.session.execute(
        insert(CartItem)
        .values(merchant_id=merchant_id, member_id=member_id, sku_id=sku_id, quantity=quantity, created_at=utcnow())
        .on_conflict_do_update(index_elements=["member_id", "sku_id"], set_={"quantity": quantity})
    )


def remove_from_cart(merchant_id: int, member_id: int, sku_id: int) -> None:
    removed = db.session.execute(
        delete(CartItem).where(
            CartItem.merchant_id == merchant_id, CartItem.member_id == member_id, CartItem.sku_id == sku_id
        )
    ).rowcount
    if not removed:
        raise NotFound("that item is not in the cart")


def view_cart(merchant_id: int, member_id: int) -> dict[str, Any]:
    """Lines at current prices; a line whose SKU left the shelf or ran short is marked unavailable."""
    rows = db.session.execute(
        select(CartItem, Sku, Product)
        .join(Sku, Sku.id == CartItem.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(CartItem.merchant_id == merchant_id, CartItem.member_id == member_id)
        .order_by(CartItem.id)
        .options(lazyload(Product.skus))  # the lines need their product, not all its SKUs
    ).all()
    lines = []
    for item, sku, product in rows:
        if not sku.active or product.status != "on_shelf":
            reason = "off_shelf"
        elif sku.stock <= 0:
            reason = "sold_out"
        elif sku.stock < item.quantity:
            reason = "insufficient_stock"
        else:
            reason = None
        lines.append(
            {
                "sku_id": sku.id,
                "product_id": product.id,
                "title": product.title,
                "specs": sku.specs,
                "image": product.cover,
                "unit_price": sku.price,
                "quantity": item.quantity,
                "line_total": sku.price * item.quantity,
                "available": reason is None,
                "unavailable_reason": reason,
            }
        )
    available = [line for line in lines if line["available"]]
    return {
        "lines": lines,
        "goods_total": sum(line["line_total"] for line in available),
        "available_count": sum(line["quantity"] for line in available),
    }


def cart_items(merchant_id: int, member_id: int) -> list[dict[str, int]]:
    """The cart lines that can be bought now (what checkout "from the cart" takes): on the shelf,
    active, and with enough stock; the rest stay in the cart, marked unavailable."""
    rows = db.session.execute(
        select(CartItem.sku_id, CartItem.quantity)
        .join(Sku, Sku.id == CartItem.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(
            CartItem.merchant_id == merchant_id,
            CartItem.member_id == member_id,
            Sku.active,
            Product.status == "on_shelf",
            Sku.stock >= CartItem.quantity,
        )
        .order_by(CartItem.id)
    ).all()
    if not rows:
        raise InvalidInput(
            "nothing in the cart can be bought now",
            code="empty_order",
            details={"fields": {"from_cart": ["no available lines in the cart"]}},
        )
    return [{"sku_id": sku_id, "quantity": quantity} for sku_id, quantity in rows]
