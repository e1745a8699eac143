"""The coupon tables: the templates merchants configure and the coupons members hold.

A template's terms are those of `coupons.terms.TemplateTerms`; the database holds what a request
could get wrong in a race or a bug, not only what the API checks: amounts and rates in range, one
way of validity, `issued` never above `total_quantity` (the claim is a guarded UPDATE of it), a
status from its list. A coupon is one member's, in one status; its `source_ref` makes an issue
idempotent (one coupon per member and source, whatever the retries).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db, utcnow

TEMPLATE_STATUSES = ("active", "paused")
COUPON_STATUSES = ("available", "locked", "used", "expired")
# How a coupon reached its member: the claim centre, the welcome gift on first login (引流礼品),
# a staff grant, the birthday job, a campaign, a referral reward (裂变礼品).
CHANNELS = ("centre", "welcome", "grant", "birthday", "campaign", "referral")
# The channels a template is offered through by itself (grants, campaigns and referral rewards
# name their template).
OFFERED_CHANNELS = ("centre", "welcome", "birthday")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class CouponTemplate(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint(_in("kind", ("amount_off", "percent_off", "free_shipping", "gift")), name="kind"),
        CheckConstraint(_in("scope", ("all", "categories", "products")), name="scope"),
        CheckConstraint(_in("audience", ("everyone", "new_members", "members")), name="audience"),
        CheckConstraint(_in("status", TEMPLATE_STATUSES), name="status"),
        CheckConstraint(
            "threshold >= 0 AND amount >= 0 AND rate_bp BETWEEN 0 AND 9999 AND (cap IS NULL OR cap > 0)",
            name="amounts",
        ),
        CheckConstraint(
            "(valid_days IS NULL AND valid_from IS NOT NULL AND valid_until IS NOT NULL"
            " AND valid_until > valid_from)"
            " OR (valid_days IS NOT NULL AND valid_days BETWEEN 1 AND 365"
            " AND valid_from IS NULL AND valid_until IS NULL)",
            name="validity",
        ),
        CheckConstraint(
            "total_quantity > 0 AND issued BETWEEN 0 AND total_quantity AND per_member_limit >= 1"
            " AND (per_member_daily_limit IS NULL OR per_member_daily_limit BETWEEN 1 AND per_member_limit)",
            name="limits",
        ),
        Index("ix_coupon_templates_list", "merchant_id", "status", "id"),
    )

    name: Mapped[str] = mapped_column(String(40), nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    threshold: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    rate_bp: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    cap: Mapped[int | None] = mapped_column(BigInteger)
    gift_sku_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="RESTRICT"))
    scope: Mapped[str] = mapped_column(String(16), nullable=False, default="all", server_default="all")
    scope_ids: Mapped[list[int]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    excluded_product_ids: Mapped[list[int]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    offer_lines: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_days: Mapped[int | None] = mapped_column(Integer)
    from_next_day: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    total_quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    issued: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    per_member_limit: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    per_member_daily_limit: Mapped[int | None] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(16), nullable=False, default="everyone", server_default="everyone")
    audience_member_ids: Mapped[list[int]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    stackable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    channels: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class Coupon(IdMixin, MerchantScoped, db.Model):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(_in("status", COUPON_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint("valid_until > valid_from", name="validity"),
        # locked and used coupons name their order; available and expired ones none
        CheckConstraint("(order_id IS NOT NULL) = (status IN ('locked', 'used'))", name="order"),
        # an issue with a source (a grant, a campaign prize, a birthday) is made once per member
        Index(
            "uq_coupons_source",
            "merchant_id",
            "member_id",
            "source_ref",
            unique=True,
            postgresql_where=text("source_ref IS NOT NULL"),
        ),
        Index("ix_coupons_wallet", "merchant_id", "member_id", "status", "valid_until"),
        Index("ix_coupons_template_member", "template_id", "member_id", "claimed_at"),
        Index("ix_coupons_due", "valid_until", postgresql_where=text("status = 'available'")),
        Index("ix_coupons_order", "order_id", postgresql_where=text("order_id IS NOT NULL")),
    )

    template_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("coupon_templates.id", ondelete="RESTRICT"), nullable=False
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="available", server_default="available")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    source_ref: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="RESTRICT"))
    claimed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow
    )
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<Coupon {self.id} {self.status}>"


GRANT_STATUSES = ("pending", "done")


class CouponGrant(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A staff grant of one template to a list of members, issued by a job in chunks: `processed`
    of `total` members so far, `issued` of them got a coupon, the others were `skipped` (counts
    by reason: sold_out, not_claimable, member_gone). Each member's coupon has the source
    `grant:<id>`, so a chunk run twice issues nothing twice."""

    __tablename__ = "coupon_grants"
    __table_args__ = (
        CheckConstraint(_in("status", GRANT_STATUSES), name="status"),
        CheckConstraint(
            "total > 0 AND processed BETWEEN 0 AND total AND issued >= 0 AND issued <= processed", name="progress"
        ),
        Index("ix_coupon_grants_pending", "created_at", postgresql_where=text("status = 'pending'")),
        Index("ix_coupon_grants_list", "merchant_id", "id"),
    )

    template_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("coupon_templates.id", ondelete="RESTRICT"), nullable=False
    )
    staff_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"))
    member_ids: Mapped[list[int]] = mapped_column(JSONB, nullable=False)
    note: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    processed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    issued: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    skipped: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
