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
    # Carried in every staff token and compared on every staff request: bumping it (a password
    # or role change) revokes the tokens issued before.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")


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


# --- orders and payment -------------------------------------------------------------------------

ORDER_STATUSES = (
    "pending_payment",
    "paid",
    "shipped",
    "ready_for_pickup",
    "received",
    "completed",
    "cancelled",
    "refunded",
)


DEFAULT_AUTO_CONFIRM_DAYS = 7


class MerchantSettings(db.Model):
    """Per-merchant rules for orders; a merchant without a row uses the defaults here."""

    __tablename__ = "merchant_settings"
    __table_args__ = (
        CheckConstraint("shipping_fee >= 0", name="shipping_fee"),
        CheckConstraint("order_ttl_minutes BETWEEN 1 AND 1440", name="order_ttl"),
        CheckConstraint("auto_confirm_days BETWEEN 1 AND 60", name="auto_confirm_days"),
        CheckConstraint("after_sales_days BETWEEN 0 AND 60", name="after_sales_days"),
    )

    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    shipping_fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=800, server_default="800")
    free_shipping_over: Mapped[int | None] = mapped_column(BigInteger, default=9900)
    order_ttl_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=30, server_default="30")
    auto_confirm_days: Mapped[int] = mapped_column(
        Integer, nullable=False, default=DEFAULT_AUTO_CONFIRM_DAYS, server_default=str(DEFAULT_AUTO_CONFIRM_DAYS)
    )
    after_sales_days: Mapped[int] = mapped_column(Integer, nullable=False, default=7, server_default="7")


class PaymentAccount(MerchantScoped, db.Model):
    """A merchant's WeChat Pay API v3 credentials (used by the real provider only). The keys
    WeChat Pay signs with are in `payment_platform_keys`."""

    __tablename__ = "payment_accounts"
    __table_args__ = (UniqueConstraint("merchant_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    mchid: Mapped[str] = mapped_column(String(32), nullable=False)
    merchant_serial_no: Mapped[str] = mapped_column(String(64), nullable=False)
    merchant_private_key: Mapped[str] = mapped_column(Text, nullable=False)
    apiv3_key: Mapped[str] = mapped_column(String(32), nullable=False)


class PaymentPlatformKey(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A key WeChat Pay signs a merchant's answers and notifications with: the WeChat Pay public
    key (serial PUB_KEY_ID_..., no expiry) or a platform certificate's key, valid from its
    effective time until its expire time. A merchant has several during a move from certificates
    to the public key and while a certificate is replaced."""

    __tablename__ = "payment_platform_keys"
    __table_args__ = (
        Index("uq_payment_platform_keys_merchant_serial", "merchant_id", func.upper(text("serial_no")), unique=True),
        CheckConstraint("source IN ('public_key', 'certificate')", name="source"),
        CheckConstraint("valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until", name="validity"),
    )

    serial_no: Mapped[str] = mapped_column(String(64), nullable=False)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)  # PEM (SubjectPublicKeyInfo)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PickupPoint(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A group leader's (团长) address where members collect their orders."""

    __tablename__ = "pickup_points"

    name: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(200), nullable=False)
    contact_name: Mapped[str] = mapped_column(String(32), nullable=False)
    contact_phone: Mapped[str] = mapped_column(String(20), nullable=False)
    leader_member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))


class CartItem(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("member_id", "sku_id"),
        CheckConstraint("quantity BETWEEN 1 AND 999", name="quantity"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="CASCADE"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)


class Order(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("order_no"),
        UniqueConstraint("transaction_id"),
        CheckConstraint(
            "status IN ('pending_payment', 'paid', 'shipped', 'ready_for_pickup', 'received', 'completed', "
            "'cancelled', 'refunded')",
            name="status",
        ),
        CheckConstraint("fulfilment IN ('delivery', 'pickup')", name="fulfilment"),
        CheckConstraint(
            "goods_total >= 0 AND shipping_fee >= 0 AND discount_total >= 0 AND payable_total >= 0", name="amounts"
        ),
        CheckConstraint("refunded_total >= 0 AND refunded_total <= paid_total", name="refunded"),
        Index("ix_orders_member", "merchant_id", "member_id", "id"),
        Index("ix_orders_status", "merchant_id", "status", "id"),
        Index("ix_orders_due", "status", "expires_at"),
        Index(
            "ix_orders_unclosed",
            "cancelled_at",
            postgresql_where=text("status = 'cancelled' AND prepay_id IS NOT NULL AND provider_closed_at IS NULL"),
        ),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    order_no: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    fulfilment: Mapped[str] = mapped_column(String(10), nullable=False)
    goods_total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shipping_fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount_total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    payable_total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    paid_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    refunded_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    pickup_point_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("pickup_points.id"))
    pickup_code: Mapped[str | None] = mapped_column(String(8))
    remark: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    carrier: Mapped[str | None] = mapped_column(String(32))
    tracking_no: Mapped[str | None] = mapped_column(String(64))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    after_sales_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    # A cancelled order with a prepay is closed at the provider afterwards (a job, and a sweep for
    # a lost job); this says when that was settled: closed, or the payment found there handled.
    provider_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )

    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.id", lazy="selectin")
    adjustments: Mapped[list[OrderAdjustment]] = relationship(order_by="OrderAdjustment.id", lazy="selectin")


class OrderLine(IdMixin, MerchantScoped, db.Model):
    """A line snapshots what was bought at what price; `discount` is its share of the order's discounts,
    so `paid_amount` is what this line really cost (refunds and commissions start from it)."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="quantity_price"),
        CheckConstraint("paid_amount = goods_amount - discount AND paid_amount >= 0", name="paid_amount"),
        CheckConstraint("refunded_quantity BETWEEN 0 AND quantity", name="refunded_quantity"),
        CheckConstraint("refunded_amount BETWEEN 0 AND paid_amount", name="refunded_amount"),
        Index("ix_order_lines_order", "order_id"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id"), nullable=False)
    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("products.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    specs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    image: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    goods_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    paid_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    refunded_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    refunded_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")


class OrderAdjustment(IdMixin, MerchantScoped, db.Model):
    """A discount a pricing adjuster gave the order (a coupon, a promotion)."""

    __tablename__ = "order_adjustments"

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    reference: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    description: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # goods or shipping
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class IdempotencyKey(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """An `Idempotency-Key` a member sent with an order: the same key and body return the same order."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("merchant_id", "member_id", "key"),
        Index("ix_idempotency_created", "created_at"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"))


class Payment(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A payment the provider confirmed. The unique transaction id makes a notification count once."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("transaction_id"),)

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), nullable=False, index=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    transaction_id: Mapped[str] = mapped_column(String(64), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    payer_openid: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # applied or late (refunded)
    success_time: Mapped[str] = mapped_column(String(40), nullable=False, default="")


REFUND_STATUSES = ("requested", "rejected", "processing", "abnormal", "succeeded", "failed")


class Refund(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("out_refund_no"),
        CheckConstraint(
            "status IN ('requested', 'rejected', 'processing', 'abnormal', 'succeeded', 'failed')", name="status"
        ),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_refunds_order", "order_id"),
        Index("ix_refunds_status", "merchant_id", "status", "id"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"), nullable=False)
    payment_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("payments.id"))
    out_refund_no: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # member, late_payment
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    reject_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    restock: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    # Submissions to the provider so far, and why the last one did not go through (for staff).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    decided_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list[RefundLine]] = relationship(order_by="RefundLine.id", lazy="selectin")


class RefundLine(IdMixin, MerchantScoped, db.Model):
    __tablename__ = "refund_lines"
    __table_args__ = (CheckConstraint("quantity >= 0 AND amount >= 0", name="positive"),)

    refund_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("refunds.id", ondelete="CASCADE"), nullable=False)
    order_line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_lines.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
