"""Tables of the catalog: categories, products, SKUs and the stock ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db, utcnow

PRODUCT_STATUSES = ("draft", "on_shelf", "off_shelf")


class Category(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """Two levels: a category with a parent is a sub-category, and sub-categories have no children."""

    __tablename__ = "categories"
    __table_args__ = (Index("ix_categories_merchant_parent", "merchant_id", "parent_id"),)

    parent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("categories.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(32), nullable=False)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class Product(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'on_shelf', 'off_shelf')", name="status"),
        CheckConstraint("price_min >= 0 AND price_max >= price_min", name="price_range"),
        CheckConstraint("sales >= 0", name="sales"),
        Index("ix_products_list_newest", "merchant_id", "status", "id"),
        Index("ix_products_list_price", "merchant_id", "status", "price_min", "id"),
        Index("ix_products_list_sales", "merchant_id", "status", "sales", "id"),
        Index("ix_products_category", "merchant_id", "category_id"),
    )

    category_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("categories.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    images: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft", server_default="draft")
    # Derived from the active SKUs by the catalog service whenever they change; kept here because
    # the product list sorts and pages by price.
    price_min: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    price_max: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    sales: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )

    skus: Mapped[list[Sku]] = relationship(
        back_populates="product", order_by="Sku.id", lazy="selectin", cascade="all, delete-orphan"
    )

    @property
    def cover(self) -> str:
        return self.images[0] if self.images else ""


class Sku(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "skus"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("market_price >= 0", name="market_price_non_negative"),
        Index("ix_skus_product", "product_id"),
    )

    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    specs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    code: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    market_price: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    stock: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))

    product: Mapped[Product] = relationship(back_populates="skus")


class StockMovement(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """Every change of a SKU's stock, with why and by whom; the stock is the sum of these."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_sku", "sku_id", "id"),)

    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="CASCADE"), nullable=False)
    delta: Mapped[int] = mapped_column(Integer, nullable=False)
    stock_after: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    note: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"))
