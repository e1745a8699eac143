"""Tables of orders: orders, lines, adjustments, idempotency keys, payments and refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db, utcnow
from shop.orders.states import OrderStatus, RefundKind, RefundStatus

# The values as plain strings (the columns hold them; the machines are in shop.orders.states).
ORDER_STATUSES = tuple(status.value for status in OrderStatus)
# What an order is for. `goods`: products delivered or picked up (placed by `place_order`).
# The others name no SKU, have no fulfilment, stock or shipping, and are placed and completed
# by the package that owns them (`shop.orders.special`): a campaign's prize upgrade, a stored-value
# top-up.
GOODS = "goods"
ORDER_KINDS = (GOODS, "prize_upgrade", "top_up")


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
        CheckConstraint("kind IN ('goods', 'prize_upgrade', 'top_up')", name="kind"),
        CheckConstraint(
            "fulfilment IN ('delivery', 'pickup', 'none') AND (fulfilment = 'none') = (kind <> 'goods')",
            name="fulfilment",
        ),
        UniqueConstraint("id", "kind", name="uq_orders_id_kind"),  # the lines' (order_id, order_kind) key
        CheckConstraint(
            "goods_total >= 0 AND shipping_fee >= 0 AND discount_total >= 0 AND payable_total >= 0", name="amounts"
        ),
        CheckConstraint("refunded_total >= 0 AND refunded_total <= paid_total", name="refunded"),
        Index("ix_orders_member", "merchant_id", "member_id", "id"),
        Index("ix_orders_status", "merchant_id", "status", "id"),
        Index("ix_orders_due", "status", "expires_at"),
        Index("ix_orders_kind", "merchant_id", "kind", "id", postgresql_where=text("kind <> 'goods'")),
        Index(
            "ix_orders_unclosed",
            "cancelled_at",
            postgresql_where=text("status = 'cancelled' AND prepay_id IS NOT NULL AND provider_closed_at IS NULL"),
        ),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    order_no: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default=GOODS, server_default=GOODS)
    # What the owning package's order is about (e.g. its prize or top-up package), for non-goods orders.
    reference: Mapped[str | None] = mapped_column(String(64))
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

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.id",
        lazy="selectin",
        primaryjoin="Order.id == OrderLine.order_id",
        foreign_keys="OrderLine.order_id",
    )
    adjustments: Mapped[list[OrderAdjustment]] = relationship(order_by="OrderAdjustment.id", lazy="selectin")


class OrderLine(IdMixin, MerchantScoped, db.Model):
    """A line snapshots what was bought at what price; `discount` is its share of the order's discounts,
    so `paid_amount` is what this line really cost (refunds and commissions start from it).

    A line of a goods order names its SKU and product (and the offer whose price it got, if any); a
    line of another kind of order names neither, only a title, a description and its amount.
    `order_kind` is the order's kind, held equal to it by a foreign key, so a CHECK can tie the two.
    """

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="quantity_price"),
        CheckConstraint("paid_amount = goods_amount - discount AND paid_amount >= 0", name="paid_amount"),
        CheckConstraint("refunded_quantity BETWEEN 0 AND quantity", name="refunded_quantity"),
        CheckConstraint("refunded_amount BETWEEN 0 AND paid_amount", name="refunded_amount"),
        CheckConstraint("(sku_id IS NOT NULL AND product_id IS NOT NULL) = (order_kind = 'goods')", name="sku"),
        CheckConstraint(
            "(offer_kind IS NULL) = (offer_id IS NULL) AND (offer_kind IS NULL OR sku_id IS NOT NULL)", name="offer"
        ),
        ForeignKeyConstraint(
            ["order_id", "order_kind"],
            ["orders.id", "orders.kind"],
            name="fk_order_lines_order_kind",
            ondelete="CASCADE",
        ),
        Index("ix_order_lines_order", "order_id"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    order_kind: Mapped[str] = mapped_column(String(16), nullable=False, default=GOODS, server_default=GOODS)
    sku_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("skus.id"))
    product_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("products.id"))
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    # The offer (a group buy, a flash sale) whose price replaced the SKU's, if any.
    offer_kind: Mapped[str | None] = mapped_column(String(16))
    offer_id: Mapped[int | None] = mapped_column(BigInteger)
    specs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    image: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    goods_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    paid_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    refunded_quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    refunded_amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")

    @property
    def offer(self) -> dict[str, Any] | None:
        """The offer this line was bought at, as the quote showed it (kind, id, unit price)."""
        if self.offer_kind is None:
            return None
        return {"kind": self.offer_kind, "id": self.offer_id, "unit_price": self.unit_price}


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
    # Reserved from the orders' sequence when the key is claimed, before the order exists: the
    # key is the first row a placement writes (it serialises retries), the order comes later in
    # the same transaction, so the foreign key is checked at commit.
    order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED")
    )


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


REFUND_STATUSES = tuple(status.value for status in RefundStatus)
REFUND_KINDS = tuple(kind.value for kind in RefundKind)


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
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # a RefundKind: member, staff, system, late_payment
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
