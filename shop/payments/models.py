"""Tables of payments: a merchant's WeChat Pay account and the keys WeChat Pay signs with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db


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
