"""Tables of offers: group buys (拼团) and flash sales (秒杀) on SKUs, their units and buyers, and
the groups of group buys with their orders.

An offer's units are set aside from its SKU's stock when it is made (`move_stock` with reason
`offer_set_aside`), one row each in `offer_units`, and go back to the SKU (`offer_returned`) once
the offer is over (closed) and nobody holds them, so a SKU's stock still equals the sum of its
movements.
An order takes free units with `FOR UPDATE SKIP LOCKED` instead of a guarded UPDATE of one
counter: buyers of one hot offer never queue on a single row. `offer_buyers` counts each
member's units for the per-member limit, with a guarded upsert.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db, utcnow
from shop.core.states import Machine

GROUP_BUY, FLASH_SALE = "group_buy", "flash_sale"
OFFER_KINDS = (GROUP_BUY, FLASH_SALE)
# What a group buy does with a group still short of its size when its time is up: refund its
# paid orders, or complete it anyway (模拟成团), which members are told before they join.
ON_EXPIRY = ("refund", "complete")
MIN_PAYMENT_MINUTES = 5  # a flash order's payment timeout, never less (paying needs 90 s left)
MAX_QUOTA = 100_000  # units one offer may set aside (a row each)


class Offer(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A group buy or a flash sale on one SKU: its price, the units set aside, a per-member limit,
    a window; the columns of the other kind are NULL."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("kind IN ('group_buy', 'flash_sale')", name="kind"),
        CheckConstraint("price > 0 AND (leader_price IS NULL OR leader_price > 0)", name="price"),
        CheckConstraint(f"quota BETWEEN 1 AND {MAX_QUOTA} AND returned BETWEEN 0 AND quota", name="quota"),
        CheckConstraint("per_member_limit >= 1", name="per_member_limit"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint(
            f"(kind = 'flash_sale') = (payment_minutes IS NOT NULL) AND payment_minutes >= {MIN_PAYMENT_MINUTES}",
            name="payment_minutes",
        ),
        CheckConstraint(
            "(kind = 'group_buy') = (group_size IS NOT NULL AND time_limit_hours IS NOT NULL "
            "AND on_expiry IS NOT NULL) AND group_size BETWEEN 2 AND 50 AND time_limit_hours BETWEEN 1 AND 720 "
            "AND on_expiry IN ('refund', 'complete')",
            name="group_terms",
        ),
        CheckConstraint(
            "kind = 'group_buy' OR (leader_price IS NULL AND leader_commission_bp IS NULL)", name="leader_terms"
        ),
        CheckConstraint("leader_commission_bp BETWEEN 0 AND 10000", name="leader_commission"),
        Index("ix_offers_kind", "merchant_id", "kind", "ends_at", "id"),
        Index("ix_offers_unclosed", "ends_at", postgresql_where=text("closed_at IS NULL")),
    )

    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    sku_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="RESTRICT"), nullable=False)
    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("products.id", ondelete="RESTRICT"), nullable=False)
    title: Mapped[str] = mapped_column(String(120), nullable=False)
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # Units set aside from the SKU, and how many of them went back to it once the offer was over.
    quota: Mapped[int] = mapped_column(Integer, nullable=False)
    returned: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    per_member_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_early_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # staff ended it
    # Over, and its free units back in the SKU; units given back later go straight there too.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Flash sales: how long an order has to be paid.
    payment_minutes: Mapped[int | None] = mapped_column(SmallInteger)
    # Group buys.
    group_size: Mapped[int | None] = mapped_column(SmallInteger)
    time_limit_hours: Mapped[int | None] = mapped_column(SmallInteger)
    on_expiry: Mapped[str | None] = mapped_column(String(16))
    leader_price: Mapped[int | None] = mapped_column(BigInteger)  # what the initiator (开团人) pays
    leader_commission_bp: Mapped[int | None] = mapped_column(Integer)  # the initiator's reward, on success
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class OfferUnit(IdMixin, db.Model):
    """One unit set aside for an offer: free (no order) or held by an order, unpaid or paid. Its
    merchant is not indexed: the rows are found by offer or order, and every index is one more
    write when an order takes a unit."""

    __tablename__ = "offer_units"
    __table_args__ = (
        Index("ix_offer_units_free", "offer_id", "id", postgresql_where=text("order_id IS NULL")),
        Index("ix_offer_units_order", "order_id", postgresql_where=text("order_id IS NOT NULL")),
    )

    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="RESTRICT"), nullable=False
    )
    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id", ondelete="CASCADE"), nullable=False)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="RESTRICT"))


class OfferBuyer(MerchantScoped, db.Model):
    """How many units of an offer a member holds (unpaid or paid, not cancelled nor refunded)."""

    __tablename__ = "offer_buyers"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity"),)

    offer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)


class GroupStatus(StrEnum):
    OPENING = "opening"  # its initiator's order is not paid yet; nobody can join
    FORMING = "forming"  # the initiator paid; the clock runs; members join by paying
    SUCCEEDED = "succeeded"  # full (or completed at its time by 模拟成团): its orders go to fulfilment
    FAILED = "failed"  # short at its time: its paid orders are refunded
    CANCELLED = "cancelled"  # its initiator's order was cancelled or expired unpaid


class GroupAction(StrEnum):
    START = "start"  # the initiator paid
    FILL = "fill"  # the last seat was paid
    COMPLETE = "complete"  # time is up and the offer completes short groups (模拟成团)
    FAIL = "fail"  # time is up and the offer refunds short groups
    CANCEL = "cancel"  # the initiator's order went unpaid


G, GA = GroupStatus, GroupAction
_CLOSED = (G.SUCCEEDED, G.FAILED, G.CANCELLED)

GROUP_MACHINE: Machine[GroupStatus, GroupAction] = Machine(
    name="group",
    statuses=GroupStatus,
    actions=GroupAction,
    moves={
        (G.OPENING, GA.START): G.FORMING,
        (G.OPENING, GA.CANCEL): G.CANCELLED,
        (G.FORMING, GA.FILL): G.SUCCEEDED,
        (G.FORMING, GA.COMPLETE): G.SUCCEEDED,
        (G.FORMING, GA.FAIL): G.FAILED,
    },
    # The close job and its sweep both come once time is up; a cancellation after the start.
    repeats=frozenset(
        {
            *((status, action) for status in _CLOSED for action in (GA.COMPLETE, GA.FAIL, GA.CANCEL)),
            (G.FORMING, GA.CANCEL),
        }
    ),
)


class Group(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One group of a group buy: opened by its initiator's order, joined by paying. `joined` counts
    the paid seats and never passes `size`: a payment claims its seat with a guarded UPDATE."""

    __tablename__ = "groups"
    __table_args__ = (
        CheckConstraint("status IN ('opening', 'forming', 'succeeded', 'failed', 'cancelled')", name="status"),
        CheckConstraint("size BETWEEN 2 AND 50 AND joined BETWEEN 0 AND size", name="seats"),
        CheckConstraint("status IN ('opening', 'cancelled') OR expires_at IS NOT NULL", name="clock"),
        Index("ix_groups_offer", "offer_id", "status", "id"),
        Index("ix_groups_due", "expires_at", postgresql_where=text("status = 'forming'")),
    )

    offer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("offers.id", ondelete="RESTRICT"), nullable=False)
    leader_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    size: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    joined: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=G.OPENING.value)
    # Completed at its time short of its size (模拟成团): shown to every member, never hidden.
    simulated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class GroupOrder(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """An order placed to open or join a group. `seat` (1 for the initiator) is set when its
    payment claims one; a member holds at most one seat of a group."""

    __tablename__ = "group_orders"
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_group_orders_order"),
        UniqueConstraint("group_id", "seat", name="uq_group_orders_seat"),
        Index(
            "uq_group_orders_member_seat",
            "group_id",
            "member_id",
            unique=True,
            postgresql_where=text("seat IS NOT NULL"),
        ),
        Index("ix_group_orders_group", "group_id", "id"),
    )

    group_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    leader: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    seat: Mapped[int | None] = mapped_column(SmallInteger)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
