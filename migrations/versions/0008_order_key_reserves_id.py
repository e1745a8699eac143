"""idempotency keys: the order id is reserved when the key is claimed (the foreign key is checked
at commit), so placing an order no longer updates the key afterwards

Revision ID: 0008_order_key_reserves_id
Revises: 0007e_order_kinds
"""

from alembic import op

revision = "0008_order_key_reserves_id"
down_revision = "0007e_order_kinds"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "ALTER TABLE idempotency_keys ALTER CONSTRAINT fk_idempotency_keys_order_id_orders "
        "DEFERRABLE INITIALLY DEFERRED"
    )


def downgrade():
    op.execute(
        "ALTER TABLE idempotency_keys ALTER CONSTRAINT fk_idempotency_keys_order_id_orders NOT DEFERRABLE"
    )
