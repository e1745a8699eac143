"""Tables of checkout: the member's cart."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db


class CartItem(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("member_id", "sku_id"),
        CheckConstraint("quantity BETWEEN 1 AND 999", name="quantity"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="CASCADE"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
