"""The distribution tables: a merchant's program, its tiers and overrides, distributors, bindings,
commissions, the ledger and withdrawals.

Money is fen, rates basis points. The database holds what a race or a bug could get wrong, not
only what the API checks: rates within 0-10,000, at most two levels, a commission once per (order
line, level), one binding per member, statuses from their lists, ledger entries never changed
(a trigger refuses UPDATE and DELETE of `distribution_ledger`).

Balances. Every movement of a distributor's money is one `distribution_ledger` row whose deltas
say which buckets it moves: `pending` (commissions recorded, not settled yet), `available`
(withdrawable; may go below zero after a clawback), `withdrawing` (asked for, not paid out yet)
and `withdrawn`. A balance is the sum of its bucket's deltas. The `available`, `withdrawing` and
`withdrawn` sums are also kept on the distributor's row (changed in the same statement as the
entry is written, under the row's lock: a withdrawal checks them and cannot overdraw); `pending`
is not, so recording a commission on a payment never waits for a distributor's row. The
reconciliation (`distribution.ledger.reconcile`) proves the kept sums and the pending
commissions equal the ledger's sums, for every distributor.
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
    Sequence,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shop.core.db import IdMixin, MerchantScoped, TimestampMixin, db, utcnow

MAX_LEVELS = 2
# A commission's level 0: the initiator (开团人) of a group buy that succeeded, on the lines of the
# group's other members, at the rate the offer names (not a level of the binding chain).
INITIATOR_LEVEL = 0
JOIN_RULES = ("open", "application", "spending")
BINDING_RULES = ("first", "first_lapsing", "last")
OVERRIDE_MODES = ("rate", "fixed", "none")
TIER_MATCHES = ("any", "all")
DISTRIBUTOR_STATUSES = ("applied", "active", "rejected", "disabled")
COMMISSION_STATUSES = ("pending", "settled", "reversed")
WITHDRAWAL_STATUSES = ("requested", "approved", "rejected", "paying", "wait_user_confirm", "paid", "failed")
# The kinds of ledger entry, and which buckets each moves (the check below holds them to it).
ENTRY_KINDS = (
    "commission_pending",  # pending +
    "commission_reversed",  # pending - (a refund before settlement)
    "commission_settled",  # pending -, available + (one entry per distributor and settlement batch)
    "commission_clawback",  # available - (a refund after settlement)
    "adjustment",  # available +/- (staff, with a reason)
    "withdrawal_requested",  # available -, withdrawing +
    "withdrawal_paid",  # withdrawing -, withdrawn +
    "withdrawal_returned",  # withdrawing -, available + (rejected, failed, cancelled, unconfirmed)
)

# One number per settlement batch: its ledger entries and the commissions it settled carry it.
SETTLEMENT_SEQ = Sequence("distribution_settlement_seq", metadata=db.metadata)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _rate(column: str) -> str:
    return f"({column} IS NULL OR {column} BETWEEN 0 AND 10000)"


class Program(db.Model):
    """A merchant's distribution program; no row means the defaults (off)."""

    __tablename__ = "distribution_programs"
    __table_args__ = (
        CheckConstraint(f"levels BETWEEN 1 AND {MAX_LEVELS}", name="levels"),
        CheckConstraint("level1_rate_bp BETWEEN 0 AND 10000 AND level2_rate_bp BETWEEN 0 AND 10000", name="rates"),
        CheckConstraint(_in("join_rule", JOIN_RULES), name="join_rule"),
        CheckConstraint(_in("binding_rule", BINDING_RULES), name="binding_rule"),
        CheckConstraint(
            "join_min_spent >= 0 AND freeze_days BETWEEN 0 AND 365 AND min_withdrawal >= 1"
            " AND withdrawal_fee_bp BETWEEN 0 AND 10000 AND (lapse_days IS NULL OR lapse_days BETWEEN 1 AND 3650)",
            name="amounts",
        ),
    )

    merchant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    levels: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1, server_default="1")
    level1_rate_bp: Mapped[int] = mapped_column(Integer, nullable=False, default=1000, server_default="1000")
    level2_rate_bp: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    self_purchase: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    join_rule: Mapped[str] = mapped_column(
        String(16), nullable=False, default="application", server_default="application"
    )
    join_min_spent: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    binding_rule: Mapped[str] = mapped_column(String(16), nullable=False, default="first", server_default="first")
    lapse_days: Mapped[int | None] = mapped_column(Integer)
    freeze_days: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    min_withdrawal: Mapped[int] = mapped_column(BigInteger, nullable=False, default=100, server_default="100")
    withdrawal_fee_bp: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    transfer_scene_id: Mapped[str] = mapped_column(String(16), nullable=False, default="1005", server_default="1005")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class Tier(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A distributor tier: its own rates (None: the program's) and what it takes to reach it.
    Higher `rank` is better; a distributor moves up (never down) after a settlement."""

    __tablename__ = "distribution_tiers"
    __table_args__ = (
        UniqueConstraint("merchant_id", "rank", name="uq_distribution_tiers_rank"),
        CheckConstraint("rank BETWEEN 1 AND 100", name="rank"),
        CheckConstraint(f"{_rate('level1_rate_bp')} AND {_rate('level2_rate_bp')}", name="rates"),
        CheckConstraint(_in("match", TIER_MATCHES), name="match"),
        CheckConstraint(
            "(min_team_size IS NULL OR min_team_size >= 0) AND (min_team_sales IS NULL OR min_team_sales >= 0)"
            " AND (min_own_sales IS NULL OR min_own_sales >= 0)",
            name="conditions",
        ),
    )

    name: Mapped[str] = mapped_column(String(40), nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    level1_rate_bp: Mapped[int | None] = mapped_column(Integer)
    level2_rate_bp: Mapped[int | None] = mapped_column(Integer)
    min_team_size: Mapped[int | None] = mapped_column(Integer)
    min_team_sales: Mapped[int | None] = mapped_column(BigInteger)
    min_own_sales: Mapped[int | None] = mapped_column(BigInteger)
    match: Mapped[str] = mapped_column(String(8), nullable=False, default="any", server_default="any")


class Override(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A product's (or one SKU's) commission at one level: a rate, a fixed fen per unit, or none.
    A SKU's override beats its product's, which beats the tier's and the program's rate."""

    __tablename__ = "distribution_overrides"
    __table_args__ = (
        CheckConstraint(_in("mode", OVERRIDE_MODES), name="mode"),
        CheckConstraint(f"level BETWEEN 1 AND {MAX_LEVELS}", name="level"),
        CheckConstraint(
            "(mode = 'rate' AND rate_bp BETWEEN 0 AND 10000 AND fixed_amount IS NULL)"
            " OR (mode = 'fixed' AND fixed_amount >= 0 AND rate_bp IS NULL)"
            " OR (mode = 'none' AND rate_bp IS NULL AND fixed_amount IS NULL)",
            name="value",
        ),
        Index(
            "uq_distribution_overrides_product",
            "product_id",
            "level",
            unique=True,
            postgresql_where=text("sku_id IS NULL"),
        ),
        Index(
            "uq_distribution_overrides_sku", "sku_id", "level", unique=True, postgresql_where=text("sku_id IS NOT NULL")
        ),
    )

    product_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    sku_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("skus.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    rate_bp: Mapped[int | None] = mapped_column(Integer)
    fixed_amount: Mapped[int | None] = mapped_column(BigInteger)


class Distributor(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A member in the program: applied, active, rejected or disabled; their tier; the kept sums
    of three of their ledger buckets (see the module docstring)."""

    __tablename__ = "distributors"
    __table_args__ = (
        UniqueConstraint("member_id", name="uq_distributors_member"),
        CheckConstraint(_in("status", DISTRIBUTOR_STATUSES), name="status"),
        CheckConstraint("withdrawing >= 0 AND withdrawn >= 0", name="balances"),
        Index("ix_distributors_list", "merchant_id", "status", "id"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    tier_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("distribution_tiers.id", ondelete="SET NULL"))
    real_name: Mapped[str] = mapped_column(String(40), nullable=False, default="", server_default="")
    note: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")  # theirs
    staff_note: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    available: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    withdrawing: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    withdrawn: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    # What their team paid for lines that earned them a commission, counted when it settles (the
    # tier conditions read it; settlement adds each batch's share in the statement that credits).
    team_sales: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )


class Binding(MerchantScoped, db.Model):
    """Whose customer a member is (锁粉): one row per bound member, changed only by the
    program's binding rule; every attempt is in `distribution_binding_log`."""

    __tablename__ = "distribution_bindings"
    __table_args__ = (
        CheckConstraint("distributor_member_id <> member_id", name="not_self"),
        Index("ix_distribution_bindings_distributor", "distributor_member_id", "member_id"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    distributor_member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False
    )
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # The binding's last sign of life (bound, or the member paid an order): a lapsing binding
    # lapses `lapse_days` after it.
    active_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class BindingLog(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """One binding attempt: bound (with the previous distributor, when it moved) or refused, why."""

    __tablename__ = "distribution_binding_log"
    __table_args__ = (Index("ix_distribution_binding_log_member", "member_id", "id"),)

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    distributor_member_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False
    )
    previous_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(8), nullable=False)  # bound or refused
    reason: Mapped[str | None] = mapped_column(String(32))


class Commission(IdMixin, MerchantScoped, db.Model):
    """A distributor's commission on one order line at one level (1, 2: up the bindings; 0: as the
    initiator of the line's group buy). `amount` is what it is worth now
    (a refund before settlement lowers it; `original_amount` is what the payment recorded);
    `base_amount` and `quantity` what it is computed on now (the line net of refunds)."""

    __tablename__ = "commissions"
    __table_args__ = (
        UniqueConstraint("line_id", "level", name="uq_commissions_line_level"),
        CheckConstraint(_in("status", COMMISSION_STATUSES), name="status"),
        CheckConstraint(f"level BETWEEN {INITIATOR_LEVEL} AND {MAX_LEVELS}", name="level"),
        CheckConstraint(
            "amount >= 0 AND amount <= original_amount AND base_amount >= 0 AND quantity >= 0"
            " AND clawed_back >= 0 AND clawed_back <= amount",
            name="amounts",
        ),
        CheckConstraint(
            "(rate_bp IS NOT NULL AND rate_bp BETWEEN 0 AND 10000 AND fixed_amount IS NULL)"
            " OR (rate_bp IS NULL AND fixed_amount >= 0)",
            name="rule",
        ),
        Index("ix_commissions_distributor", "distributor_id", "id"),
        Index("ix_commissions_order", "order_id"),
        Index("ix_commissions_due", "due_at", "id", postgresql_where=text("status = 'pending' AND due_at IS NOT NULL")),
    )

    distributor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("distributors.id", ondelete="RESTRICT"), nullable=False
    )
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False)
    line_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("order_lines.id", ondelete="RESTRICT"), nullable=False)
    buyer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id", ondelete="RESTRICT"), nullable=False)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    sku_id: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    base_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rate_bp: Mapped[int | None] = mapped_column(Integer)
    fixed_amount: Mapped[int | None] = mapped_column(BigInteger)  # fen per unit
    original_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    clawed_back: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="pending", server_default="pending")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # completion + freeze
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settlement_id: Mapped[int | None] = mapped_column(BigInteger)  # the batch that settled it
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow
    )


class LedgerEntry(IdMixin, MerchantScoped, db.Model):
    """One movement of a distributor's money (immutable; see the module docstring)."""

    __tablename__ = "distribution_ledger"
    __table_args__ = (
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'commission_pending' AND d_pending > 0 AND d_available = 0 AND d_withdrawing = 0"
            " AND d_withdrawn = 0)"
            " OR (kind = 'commission_reversed' AND d_pending < 0 AND d_available = 0 AND d_withdrawing = 0"
            " AND d_withdrawn = 0)"
            " OR (kind = 'commission_settled' AND d_pending = -d_available AND d_withdrawing = 0 AND d_withdrawn = 0)"
            " OR (kind = 'commission_clawback' AND d_available < 0 AND d_pending = 0 AND d_withdrawing = 0"
            " AND d_withdrawn = 0)"
            " OR (kind = 'adjustment' AND d_available <> 0 AND d_pending = 0 AND d_withdrawing = 0 AND d_withdrawn = 0)"
            " OR (kind = 'withdrawal_requested' AND d_withdrawing > 0 AND d_available = -d_withdrawing"
            " AND d_pending = 0 AND d_withdrawn = 0)"
            " OR (kind = 'withdrawal_paid' AND d_withdrawn > 0 AND d_withdrawing = -d_withdrawn"
            " AND d_pending = 0 AND d_available = 0)"
            " OR (kind = 'withdrawal_returned' AND d_available > 0 AND d_withdrawing = -d_available"
            " AND d_pending = 0 AND d_withdrawn = 0)",
            name="buckets",
        ),
        CheckConstraint("reason <> '' OR kind <> 'adjustment'", name="reason"),
        Index("ix_distribution_ledger_distributor", "distributor_id", "id"),
        Index("ix_distribution_ledger_commission", "commission_id", postgresql_where=text("commission_id IS NOT NULL")),
        Index("ix_distribution_ledger_settlement", "settlement_id", postgresql_where=text("settlement_id IS NOT NULL")),
    )

    distributor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("distributors.id", ondelete="RESTRICT"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    d_pending: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    d_available: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    d_withdrawing: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    d_withdrawn: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    commission_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("commissions.id", ondelete="RESTRICT"))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    withdrawal_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("withdrawals.id", ondelete="RESTRICT"))
    # A settlement batch (`distribution_settlement_seq`): the commissions it settled carry the same id.
    settlement_id: Mapped[int | None] = mapped_column(BigInteger)
    commissions: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")  # how many settled
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow
    )


class Withdrawal(IdMixin, TimestampMixin, MerchantScoped, db.Model):
    """A distributor's withdrawal: `amount` leaves their available balance when asked; `fee` is
    kept, `payout` (= amount - fee) is transferred to their WeChat wallet under `out_bill_no`."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("out_bill_no", name="uq_withdrawals_out_bill_no"),
        CheckConstraint(_in("status", WITHDRAWAL_STATUSES), name="status"),
        CheckConstraint("amount > 0 AND fee >= 0 AND payout = amount - fee AND payout > 0", name="amounts"),
        Index("ix_withdrawals_distributor", "distributor_id", "id"),
        Index("ix_withdrawals_list", "merchant_id", "status", "id"),
    )

    distributor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("distributors.id", ondelete="RESTRICT"), nullable=False
    )
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    payout: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="requested", server_default="requested")
    out_bill_no: Mapped[str] = mapped_column(String(32), nullable=False)
    transfer_bill_no: Mapped[str | None] = mapped_column(String(64))
    transfer_state: Mapped[str | None] = mapped_column(String(32))
    package_info: Mapped[str | None] = mapped_column(String(1024))
    fail_reason: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extra: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )
