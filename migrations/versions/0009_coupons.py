"""coupons: the templates merchants configure and the coupons members hold

Revision ID: 0009_coupons
Revises: 0008_order_key_reserves_id
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_coupons"
down_revision = "0008_order_key_reserves_id"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "coupon_templates",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rate_bp", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=True),
        sa.Column("gift_sku_id", sa.BigInteger(), nullable=True),
        sa.Column("scope", sa.String(length=16), server_default="all", nullable=False),
        sa.Column("scope_ids", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("excluded_product_ids", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("offer_lines", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("from_next_day", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("total_quantity", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), server_default="0", nullable=False),
        sa.Column("per_member_limit", sa.Integer(), server_default="1", nullable=False),
        sa.Column("per_member_daily_limit", sa.Integer(), nullable=True),
        sa.Column("audience", sa.String(length=16), server_default="everyone", nullable=False),
        sa.Column("audience_member_ids", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("stackable", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("channels", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "audience IN ('everyone', 'new_members', 'members')", name=op.f("ck_coupon_templates_audience")
        ),
        sa.CheckConstraint(
            "kind IN ('amount_off', 'percent_off', 'free_shipping', 'gift')", name=op.f("ck_coupon_templates_kind")
        ),
        sa.CheckConstraint("scope IN ('all', 'categories', 'products')", name=op.f("ck_coupon_templates_scope")),
        sa.CheckConstraint("status IN ('active', 'paused')", name=op.f("ck_coupon_templates_status")),
        sa.CheckConstraint(
            "(valid_days IS NULL AND valid_from IS NOT NULL AND valid_until IS NOT NULL"
            " AND valid_until > valid_from)"
            " OR (valid_days IS NOT NULL AND valid_days BETWEEN 1 AND 365"
            " AND valid_from IS NULL AND valid_until IS NULL)",
            name=op.f("ck_coupon_templates_validity"),
        ),
        sa.CheckConstraint(
            "threshold >= 0 AND amount >= 0 AND rate_bp BETWEEN 0 AND 9999 AND (cap IS NULL OR cap > 0)",
            name=op.f("ck_coupon_templates_amounts"),
        ),
        sa.CheckConstraint(
            "total_quantity > 0 AND issued BETWEEN 0 AND total_quantity AND per_member_limit >= 1 AND (per_member_daily_limit IS NULL OR per_member_daily_limit BETWEEN 1 AND per_member_limit)",
            name=op.f("ck_coupon_templates_limits"),
        ),
        sa.ForeignKeyConstraint(
            ["gift_sku_id"], ["skus.id"], name=op.f("fk_coupon_templates_gift_sku_id_skus"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_coupon_templates_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    with op.batch_alter_table("coupon_templates", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_templates_list", ["merchant_id", "status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_templates_merchant_id"), ["merchant_id"], unique=False)

    op.create_table(
        "coupons",
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="available", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("(order_id IS NOT NULL) = (status IN ('locked', 'used'))", name=op.f("ck_coupons_order")),
        sa.CheckConstraint(
            "channel IN ('centre', 'welcome', 'grant', 'birthday', 'campaign', 'referral')",
            name=op.f("ck_coupons_channel"),
        ),
        sa.CheckConstraint("status IN ('available', 'locked', 'used', 'expired')", name=op.f("ck_coupons_status")),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_coupons_validity")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_coupons_merchant_id_merchants"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_coupons_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupons_due", ["valid_until"], unique=False, postgresql_where=sa.text("status = 'available'")
        )
        batch_op.create_index(batch_op.f("ix_coupons_merchant_id"), ["merchant_id"], unique=False)
        batch_op.create_index(
            "ix_coupons_order", ["order_id"], unique=False, postgresql_where=sa.text("order_id IS NOT NULL")
        )
        batch_op.create_index("ix_coupons_template_member", ["template_id", "member_id", "claimed_at"], unique=False)
        batch_op.create_index("ix_coupons_wallet", ["merchant_id", "member_id", "status", "valid_until"], unique=False)
        batch_op.create_index(
            "uq_coupons_source",
            ["merchant_id", "member_id", "source_ref"],
            unique=True,
            postgresql_where=sa.text("source_ref IS NOT NULL"),
        )


def downgrade():
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("uq_coupons_source", postgresql_where=sa.text("source_ref IS NOT NULL"))
        batch_op.drop_index("ix_coupons_wallet")
        batch_op.drop_index("ix_coupons_template_member")
        batch_op.drop_index("ix_coupons_order", postgresql_where=sa.text("order_id IS NOT NULL"))
        batch_op.drop_index(batch_op.f("ix_coupons_merchant_id"))
        batch_op.drop_index("ix_coupons_due", postgresql_where=sa.text("status = 'available'"))

    op.drop_table("coupons")
    with op.batch_alter_table("coupon_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_templates_merchant_id"))
        batch_op.drop_index("ix_coupon_templates_list")

    op.drop_table("coupon_templates")
