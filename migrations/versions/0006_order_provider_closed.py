"""orders: when the provider's side of a cancelled order was settled (closed, or its payment handled)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("orders", sa.Column("provider_closed_at", sa.DateTime(timezone=True), nullable=True))
    # What the close sweep looks for: cancelled orders with a prepay whose close is not yet known.
    op.create_index(
        "ix_orders_unclosed",
        "orders",
        ["cancelled_at"],
        postgresql_where=sa.text("status = 'cancelled' AND prepay_id IS NOT NULL AND provider_closed_at IS NULL"),
    )


def downgrade():
    op.drop_index("ix_orders_unclosed", table_name="orders")
    op.drop_column("orders", "provider_closed_at")
