"""Tables of the shop: tenants, people and the catalog. Every row belongs to one merchant."""

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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import IdMixin, TimestampMixin, db, utcnow

STAFF_ROLES = ("owner", "operator", "finance")
PRODUCT_STATUSES = ("draft", "on_shelf", "off_shelf")


class Merchant(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "merchants"

    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    wx_appid: Mapped[str] = mapped_column(String(32), nullable=False)
    # The mini-program AppSecret; only code2session reads it, it never leaves the server.
    wx_secret: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))


class MerchantScoped:
    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="RESTRICT"), nullable=False, index=True
    )


class Staff(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("merchant_id", "username"),
        CheckConstraint("role IN ('owner', 'operator', 'finance')", name="role"),
    )

    username: Mapped[str] = mapped_column(String(64), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    display_name: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Member(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A member is (merchant, WeChat openid)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("merchant_id", "openid"),)

    openid: Mapped[str] = mapped_column(String(64), nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64))
    # WeChat's session_key: kept to decrypt data the mini-program sends later; never serialized.
    session_key: Mapped[str | None] = mapped_column(String(64))
    nickname: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    avatar_url: Mapped[str] = mapped_column(String(512), nullable=False, default="", server_default="")
    channel: Mapped[str] = mapped_column(String(32), nullable=False, default="organic", server_default="organic")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
