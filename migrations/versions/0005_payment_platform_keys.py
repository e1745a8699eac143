"""payment platform keys: several WeChat Pay keys per merchant, by serial, with their validity

The one platform key of each payment account (payment_accounts.platform_serial_no and
platform_public_key) moves into payment_platform_keys, and those two columns are dropped: a
`PUB_KEY_ID_...` serial is the WeChat Pay public key, any other a platform certificate's key
whose validity was never recorded (NULL: not bounded).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payment_platform_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.Column("serial_no", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('public_key', 'certificate')", name=op.f("ck_payment_platform_keys_source")),
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until",
            name=op.f("ck_payment_platform_keys_validity"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_payment_platform_keys_merchant_id_merchants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_platform_keys")),
    )
    op.create_index(op.f("ix_payment_platform_keys_merchant_id"), "payment_platform_keys", ["merchant_id"])
    op.create_index(
        "uq_payment_platform_keys_merchant_serial",
        "payment_platform_keys",
        ["merchant_id", sa.text("upper(serial_no)")],
        unique=True,
    )
    op.execute(
        """
        INSERT INTO payment_platform_keys (merchant_id, serial_no, public_key, source)
        SELECT merchant_id, platform_serial_no, platform_public_key,
               CASE WHEN upper(platform_serial_no) LIKE 'PUB\\_KEY\\_ID\\_%' THEN 'public_key' ELSE 'certificate' END
        FROM payment_accounts
        WHERE platform_serial_no <> ''
        """
    )
    op.drop_column("payment_accounts", "platform_serial_no")
    op.drop_column("payment_accounts", "platform_public_key")


def downgrade():
    # One key per account again: the public key if the merchant has one, else the certificate
    # that stays valid longest; a merchant without keys gets empty values.
    op.add_column(
        "payment_accounts", sa.Column("platform_serial_no", sa.String(length=64), server_default="", nullable=False)
    )
    op.add_column("payment_accounts", sa.Column("platform_public_key", sa.Text(), server_default="", nullable=False))
    op.execute(
        """
        UPDATE payment_accounts AS a
        SET platform_serial_no = k.serial_no, platform_public_key = k.public_key
        FROM (
            SELECT DISTINCT ON (merchant_id) merchant_id, serial_no, public_key
            FROM payment_platform_keys
            ORDER BY merchant_id, source = 'public_key' DESC, valid_until DESC NULLS LAST, id DESC
        ) AS k
        WHERE k.merchant_id = a.merchant_id
        """
    )
    op.alter_column("payment_accounts", "platform_serial_no", server_default=None)
    op.alter_column("payment_accounts", "platform_public_key", server_default=None)
    op.drop_table("payment_platform_keys")
