"""refunds: submission attempts, last error, the abnormal status

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("refunds", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("refunds", sa.Column("last_error", sa.String(length=200), server_default="", nullable=False))
    op.drop_constraint(op.f("ck_refunds_status"), "refunds", type_="check")
    op.create_check_constraint(
        op.f("ck_refunds_status"),
        "refunds",
        "status IN ('requested', 'rejected', 'processing', 'abnormal', 'succeeded', 'failed')",
    )


def downgrade():
    op.drop_constraint(op.f("ck_refunds_status"), "refunds", type_="check")
    op.create_check_constraint(
        op.f("ck_refunds_status"), "refunds", "status IN ('requested', 'rejected', 'processing', 'succeeded', 'failed')"
    )
    op.drop_column("refunds", "last_error")
    op.drop_column("refunds", "attempts")
