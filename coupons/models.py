"""The coupon tables: the templates merchants configure and the coupons members hold.

A template's terms are those of `coupons.terms.TemplateTerms`; the database holds what a request
could get wrong in a race or a bug, not only what the API checks: amounts and rates in range, one
way of validity, `issued` never above `total_quantity` (the claim is a guarded UPDATE of it), a
status from its list. A coupon is one member's, in one status; its `source_ref` makes an issue
idempotent (one coupon per member and source, whatever the retries).
"""

from __future__ import annotations

from datetime import datetime

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


# --- campaigns (抽奖 and 加价升级) ----------------------------------------------------------------
# A campaign is a lottery: prize tiers with odds (summing to 10,000 bp) and quotas, one of them
# perhaps guaranteed (everyone who draws wins at least it). Members get entries by the campaign's
# rule and spend one per draw. A prize is a voucher (a gift redeemed in store with its code) or a
# coupon put into the wallet. An upgrade offer trades a gift of one tier for one of a better tier
# against a small payment: a real order of kind `prize_upgrade`.

CAMPAIGN_STATUSES = ("active", "paused")
ENTRY_RULES = ("once", "per_order", "per_group")
ENTRY_STATUSES = ("open", "drawn", "withdrawn")
PRIZE_KINDS = ("gift", "coupon")
# gift vouchers: available -> held (an upgrade of it is being bought) -> available again or
# voided (exchanged for the better prize); available -> redeemed (in store); coupon prizes are
# `delivered` (into the wallet) at once.
PRIZE_STATUSES = ("available", "held", "redeemed", "voided", "delivered")
PRIZE_ORIGINS = ("draw", "upgrade", "referral")
OFFER_STATUSES = ("active", "paused")
UPGRADE_STATUSES = ("pending", "issued", "completed", "cancelled", "refunded")


class Campaign(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(_in("entry_rule", ENTRY_RULES), name="entry_rule"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint(
            "max_entries BETWEEN 1 AND 1000 AND (entry_rule <> 'once' OR max_entries = 1)", name="max_entries"
        ),
        CheckConstraint("min_paid >= 0 AND redeem_days BETWEEN 1 AND 365", name="terms"),
        Index("ix_campaigns_list", "merchant_id", "id"),
    )

    name: Mapped[str] = mapped_column(String(40), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    entry_rule: Mapped[str] = mapped_column(String(16), nullable=False)
    max_entries: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    min_paid: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    redeem_days: Mapped[int] = mapped_column(Integer, nullable=False, default=30, server_default="30")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class CampaignTier(IdMixin, MerchantScoped, db.Model):
    """One prize tier. `taken` counts its prizes given (or held by an upgrade being paid for, or
    traded in by an upgrade that may still be refunded) and never passes the quota: a draw or an
    upgrade takes one with a guarded UPDATE. Only the guaranteed tier may have no quota; then it
    keeps no count (0), and setting a quota on it counts what it gave."""

    __tablename__ = "campaign_tiers"
    __table_args__ = (
        CheckConstraint(_in("prize_kind", PRIZE_KINDS), name="prize_kind"),
        CheckConstraint("(prize_kind = 'coupon') = (template_id IS NOT NULL)", name="template"),
        CheckConstraint("rank BETWEEN 1 AND 20 AND odds_bp BETWEEN 0 AND 10000 AND cost >= 0", name="terms"),
        CheckConstraint("(quota IS NULL AND guaranteed) OR (quota >= 0 AND taken <= quota)", name="quota"),
        CheckConstraint("taken >= 0", name="taken"),
        UniqueConstraint("campaign_id", "rank", name="uq_campaign_tiers_rank"),
        Index("uq_campaign_tiers_guaranteed", "campaign_id", unique=True, postgresql_where=text("guaranteed")),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    rank: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    prize_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    template_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("coupon_templates.id", ondelete="RESTRICT"))
    cost: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    quota: Mapped[int | None] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    odds_bp: Mapped[int] = mapped_column(Integer, nullable=False)
    guaranteed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")


class CampaignEntry(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One chance to draw: `source` says what gave it ("once", "order:<id>", "group:<id>"), once
    per member and source."""

    __tablename__ = "campaign_entries"
    __table_args__ = (
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
        UniqueConstraint("campaign_id", "member_id", "source", name="uq_campaign_entries_source"),
        Index("ix_campaign_entries_member", "campaign_id", "member_id", "status", "id"),
        Index("ix_campaign_entries_source", "merchant_id", "source", postgresql_where=text("status = 'open'")),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignDraw(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A draw, as it happened: the roll (0-9,999, from `secrets`), the tier it fell on, the tier
    awarded (the guaranteed one when the rolled tier had run out; none when there was nothing to
    fall back to), for the member's Idempotency-Key (the member's across campaigns)."""

    __tablename__ = "campaign_draws"
    __table_args__ = (
        CheckConstraint("roll BETWEEN 0 AND 9999", name="roll"),
        UniqueConstraint("member_id", "idempotency_key", name="uq_campaign_draws_key"),
        Index("ix_campaign_draws_campaign", "campaign_id", "tier_id"),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_entries.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    roll: Mapped[int] = mapped_column(Integer, nullable=False)
    rolled_tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"))
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"))
    fell_back: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")


class Prize(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A member's prize of a tier. A gift is a voucher with an 8-digit code that staff of the
    merchant redeem once in store before `redeem_until`; a coupon prize is the coupon issued into
    the wallet (source `prize:<id>`)."""

    __tablename__ = "prizes"
    __table_args__ = (
        CheckConstraint(_in("kind", PRIZE_KINDS), name="kind"),
        CheckConstraint(_in("status", PRIZE_STATUSES), name="status"),
        CheckConstraint(_in("origin", PRIZE_ORIGINS), name="origin"),
        CheckConstraint(
            "(kind = 'gift' AND code IS NOT NULL AND redeem_until IS NOT NULL AND status <> 'delivered')"
            " OR (kind = 'coupon' AND code IS NULL AND status IN ('delivered', 'voided'))",
            name="kind_fields",
        ),
        CheckConstraint("(status = 'redeemed') = (redeemed_at IS NOT NULL)", name="redeemed"),
        Index("uq_prizes_code", "merchant_id", "code", unique=True, postgresql_where=text("code IS NOT NULL")),
        Index("ix_prizes_member", "merchant_id", "member_id", "id"),
        Index("ix_prizes_tier", "tier_id", "status"),
        Index("ix_prizes_campaign", "campaign_id", "tier_id"),
        CheckConstraint("cost >= 0", name="cost"),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    tier_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"), nullable=False
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    origin: Mapped[str] = mapped_column(String(16), nullable=False)
    draw_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("campaign_draws.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # what the prize costs the merchant, as its tier said when it was given (a later change of the
    # tier's cost is for prizes given from then on)
    cost: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    code: Mapped[str | None] = mapped_column(String(8))
    coupon_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("coupons.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    redeem_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff.id", ondelete="SET NULL"))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class UpgradeOffer(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """加价升级: the holder of an unredeemed gift of `from_tier` may pay `price` fen to exchange it
    for a gift of `to_tier` (of the same campaign)."""

    __tablename__ = "upgrade_offers"
    __table_args__ = (
        CheckConstraint(_in("status", OFFER_STATUSES), name="status"),
        CheckConstraint("price >= 1 AND from_tier_id <> to_tier_id", name="terms"),
        UniqueConstraint("from_tier_id", "to_tier_id", name="uq_upgrade_offers_tiers"),
        Index("ix_upgrade_offers_campaign", "campaign_id", "id"),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    from_tier_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"), nullable=False
    )
    to_tier_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"), nullable=False
    )
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class PrizeUpgrade(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One member buying an upgrade: its order (kind `prize_upgrade`), the held gift it trades and,
    once paid and issued, the better gift. pending (order unpaid, or paid and not issued yet) ->
    issued -> completed (the better gift redeemed); pending -> cancelled (order cancelled or
    expired); pending or issued -> refunded."""

    __tablename__ = "prize_upgrades"
    __table_args__ = (
        CheckConstraint(_in("status", UPGRADE_STATUSES), name="status"),
        CheckConstraint(
            "(status NOT IN ('issued', 'completed') OR to_prize_id IS NOT NULL)"
            " AND (status NOT IN ('pending', 'cancelled') OR to_prize_id IS NULL)",
            name="issued",
        ),
        Index("ix_prize_upgrades_due", "updated_at", postgresql_where=text("status = 'pending'")),
        Index("ix_prize_upgrades_campaign", "campaign_id", "status"),
        Index(
            "uq_prize_upgrades_pending",
            "from_prize_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    offer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("upgrade_offers.id", ondelete="RESTRICT"), nullable=False
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    from_prize_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("prizes.id", ondelete="CASCADE"), nullable=False)
    to_tier_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaign_tiers.id", ondelete="CASCADE"), nullable=False
    )
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False, unique=True
    )
    price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    to_prize_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prizes.id", ondelete="SET NULL"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


# --- referral rewards (裂变) -----------------------------------------------------------------------

REFERRAL_TRIGGERS = ("joined", "first_order")
REFERRAL_REWARD_KINDS = ("coupon", "prize")
REFERRAL_GRANT_STATUSES = ("pending", "issued", "skipped")


class ReferralReward(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """What a direct inviter earns when an invitee first logs in through the invite (`joined`) or
    their first paid goods order completes (`first_order`): a coupon of `template_id` or a prize of
    the campaign tier `tier_id`. Never cash, never per head beyond the one reward per invitee."""

    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint(_in("status", OFFER_STATUSES), name="status"),
        CheckConstraint(_in("trigger", REFERRAL_TRIGGERS), name="trigger"),
        CheckConstraint(_in("reward_kind", REFERRAL_REWARD_KINDS), name="reward_kind"),
        CheckConstraint(
            "(reward_kind = 'coupon') = (template_id IS NOT NULL) AND (reward_kind = 'prize') = (tier_id IS NOT NULL)",
            name="reward",
        ),
        CheckConstraint("delay_minutes BETWEEN 0 AND 43200", name="delay"),
        Index("ix_referral_rewards_list", "merchant_id", "trigger", "status"),
    )

    name: Mapped[str] = mapped_column(String(40), nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    reward_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    template_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("coupon_templates.id", ondelete="RESTRICT"))
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("campaign_tiers.id", ondelete="RESTRICT"))
    delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class ReferralGrant(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One reward earned: once per (reward, invitee), issued by a job when due (`due_at`), or
    skipped with the reason (sold out, paused, ...)."""

    __tablename__ = "referral_grants"
    __table_args__ = (
        CheckConstraint(_in("status", REFERRAL_GRANT_STATUSES), name="status"),
        CheckConstraint("inviter_id <> invitee_id", name="not_self"),
        UniqueConstraint("reward_id", "invitee_id", name="uq_referral_grants_invitee"),
        Index("ix_referral_grants_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index("ix_referral_grants_inviter", "merchant_id", "inviter_id", "id"),
    )

    reward_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("referral_rewards.id", ondelete="CASCADE"), nullable=False
    )
    inviter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    invitee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    order_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    coupon_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("coupons.id", ondelete="SET NULL"))
    prize_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("prizes.id", ondelete="SET NULL"))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
