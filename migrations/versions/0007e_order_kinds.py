"""orders: kinds (goods, prize_upgrade, top_up); lines naming no SKU on non-goods orders; offers on lines

Revision ID: 0007e_order_kinds
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007e_order_kinds"
down_revision = "0007c_invites"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("orders", sa.Column("kind", sa.String(16), server_default="goods", nullable=False))
    op.add_column("orders", sa.Column("reference", sa.String(64), nullable=True))
    op.create_check_constraint(op.f("ck_orders_kind"), "orders", "kind IN ('goods', 'prize_upgrade', 'top_up')")
    # A non-goods order is neither delivered nor picked up: its fulfilment is 'none', and only its.
    op.drop_constraint(op.f("ck_orders_fulfilment"), "orders", type_="check")
    op.create_check_constraint(
        op.f("ck_orders_fulfilment"),
        "orders",
        "fulfilment IN ('delivery', 'pickup', 'none') AND (fulfilment = 'none') = (kind <> 'goods')",
    )
    # The target of the lines' (order_id, order_kind) key.
    op.create_unique_constraint(op.f("uq_orders_id_kind"), "orders", ["id", "kind"])
    # The staff list's kind filter for the few non-goods orders (goods are nearly all of them).
    op.create_index(
        "ix_orders_kind", "orders", ["merchant_id", "kind", "id"], postgresql_where=sa.text("kind <> 'goods'")
    )

    op.alter_column("order_lines", "sku_id", existing_type=sa.BigInteger(), nullable=True)
    op.alter_column("order_lines", "product_id", existing_type=sa.BigInteger(), nullable=True)
    op.add_column("order_lines", sa.Column("order_kind", sa.String(16), server_default="goods", nullable=False))
    op.add_column("order_lines", sa.Column("description", sa.String(200), server_default="", nullable=False))
    op.add_column("order_lines", sa.Column("offer_kind", sa.String(16), nullable=True))
    op.add_column("order_lines", sa.Column("offer_id", sa.BigInteger(), nullable=True))
    # The line's copy of its order's kind is held equal to it by this key, so the CHECK below ties
    # a line without a SKU to a non-goods order.
    op.create_foreign_key(
        op.f("fk_order_lines_order_kind"),
        "order_lines",
        "orders",
        ["order_id", "order_kind"],
        ["id", "kind"],
        ondelete="CASCADE",
    )
    op.create_check_constraint(
        op.f("ck_order_lines_sku"),
        "order_lines",
        "(sku_id IS NOT NULL AND product_id IS NOT NULL) = (order_kind = 'goods')",
    )
    op.create_check_constraint(
        op.f("ck_order_lines_offer"),
        "order_lines",
        "(offer_kind IS NULL) = (offer_id IS NULL) AND (offer_kind IS NULL OR sku_id IS NOT NULL)",
    )


def downgrade():
    op.execute("DELETE FROM orders WHERE kind <> 'goods'")
    op.drop_constraint(op.f("ck_order_lines_offer"), "order_lines", type_="check")
    op.drop_constraint(op.f("ck_order_lines_sku"), "order_lines", type_="check")
    op.drop_constraint(op.f("fk_order_lines_order_kind"), "order_lines", type_="foreignkey")
    op.drop_column("order_lines", "offer_id")
    op.drop_column("order_lines", "offer_kind")
    op.drop_column("order_lines", "description")
    op.drop_column("order_lines", "order_kind")
    op.alter_column("order_lines", "product_id", existing_type=sa.BigInteger(), nullable=False)
    op.alter_column("order_lines", "sku_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_index("ix_orders_kind", table_name="orders")
    op.drop_constraint(op.f("uq_orders_id_kind"), "orders", type_="unique")
    op.drop_constraint(op.f("ck_orders_fulfilment"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_fulfilment"), "orders", "fulfilment IN ('delivery', 'pickup')")
    op.drop_constraint(op.f("ck_orders_kind"), "orders", type_="check")
    op.drop_column("orders", "reference")
    op.drop_column("orders", "kind")
