"""Tables of identity: merchants, their staff, settings and pickup points, members, and the
outbox of notifications to members."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db
from shop.identity.invite_codes import new_invite_code

STAFF_ROLES = ("owner", "operator", "finance")


class Merchant(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "merchants"

    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    wx_appid: Mapped[str] = mapped_column(String(32), nullable=False)
    # The mini-program AppSecret; only code2session reads it, it never leaves the server.
    wx_secret: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))


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
    __table_args__ = (
        UniqueConstraint("merchant_id", "openid"),
        UniqueConstraint("merchant_id", "invite_code"),
        CheckConstraint("invited_by_id <> id", name="not_self_invited"),
        CheckConstraint("birthday >= DATE '1900-01-01'", name="birthday"),
        # the members one member invited, newest first (GET /api/v1/me/invites)
        Index("ix_members_invited_by_id", "invited_by_id", "id"),
    )

    openid: Mapped[str] = mapped_column(String(64), nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64))
    # WeChat's session_key: kept to decrypt data the mini-program sends later; never serialized.
    session_key: Mapped[str | None] = mapped_column(String(64))
    nickname: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    avatar_url: Mapped[str] = mapped_column(String(512), nullable=False, default="", server_default="")
    channel: Mapped[str] = mapped_column(String(32), nullable=False, default="organic", server_default="organic")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the member shares (shop.identity.invite_codes); the login sets it, retrying on a collision.
    invite_code: Mapped[str] = mapped_column(String(16), nullable=False, default=new_invite_code)
    # First touch: the member whose invite brought this one, set once (shop.identity.invites), never
    # overwritten; every open of an invite is in member_invites.
    invited_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="SET NULL"))
    birthday: Mapped[date | None] = mapped_column(Date)


class MemberInvite(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One open of an invite code: who shared it, who opened it, through which channel, whether the
    open created the member (`new_member`) and whether it set their inviter (`bound`). Later rules
    (锁粉 binding, 裂变 rewards) choose first or last touch from these rows."""

    __tablename__ = "member_invites"
    __table_args__ = (
        Index("ix_member_invites_inviter_id", "inviter_id", "id"),
        Index("ix_member_invites_invitee_id", "invitee_id", "id"),
        CheckConstraint("inviter_id <> invitee_id", name="not_self_invited"),
    )

    inviter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    invitee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    new_member: Mapped[bool] = mapped_column(Boolean, nullable=False)
    bound: Mapped[bool] = mapped_column(Boolean, nullable=False)


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


class PickupPoint(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A group leader's (团长) address where members collect their orders."""

    __tablename__ = "pickup_points"

    name: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(200), nullable=False)
    contact_name: Mapped[str] = mapped_column(String(32), nullable=False)
    contact_phone: Mapped[str] = mapped_column(String(20), nullable=False)
    leader_member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))


NOTIFICATION_STATUSES = ("pending", "sent", "failed")


class OutboxNotification(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A message to a member to be sent later (a WeChat subscription message, 订阅消息), queued by
    a service inside its transaction (shop.identity.notifications.queue_notification). Sending
    comes in a later issue: until then rows stay "pending".

    `dedupe_key` is the caller's name for the message (e.g. "order-paid:123"): the same message
    queued twice, also by two transactions at once, is stored once."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        UniqueConstraint("merchant_id", "dedupe_key"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        # What the sender will look for: pending messages whose time has come.
        Index("ix_notification_outbox_due", "send_after", postgresql_where=text("status = 'pending'")),
    )

    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(64), nullable=False)  # the template, e.g. "order_shipped"
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    dedupe_key: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    send_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
