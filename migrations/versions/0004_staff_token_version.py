"""staff: a token version, bumped when a password or role changes, so older tokens stop working

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("staff", sa.Column("token_version", sa.Integer(), server_default="1", nullable=False))


def downgrade():
    op.drop_column("staff", "token_version")
