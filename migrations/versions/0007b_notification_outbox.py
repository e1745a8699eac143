"""notification outbox: messages to members to be sent later (subscription messages)

Revision ID: 0007b_notification_outbox
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007b_notification_outbox"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_notification_outbox_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notification_outbox_attempts")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_notification_outbox_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_notification_outbox_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("merchant_id", "dedupe_key", name=op.f("uq_notification_outbox_merchant_id_dedupe_key")),
    )
    op.create_index(op.f("ix_notification_outbox_merchant_id"), "notification_outbox", ["merchant_id"])
    op.create_index(op.f("ix_notification_outbox_member_id"), "notification_outbox", ["member_id"])
    op.create_index(
        "ix_notification_outbox_due",
        "notification_outbox",
        ["send_after"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade():
    op.drop_table("notification_outbox")
