"""members: invite codes, first-touch inviter, birthday; member_invites: every open of an invite

Existing members get their invite codes here, in SQL and in batches of ids, so a table of millions
of rows is filled without a round trip per row: each code takes its 8 characters from the bytes of
gen_random_uuid() (PostgreSQL's strong random source; 256 is a multiple of the alphabet's 32, so
every character is equally likely). Codes that collide within a merchant are drawn again before
the unique constraint is added.

Revision ID: 0007c_invites
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007c_invites"
down_revision = "0007b_notification_outbox"
branch_labels = None
depends_on = None

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # shop.identity.invite_codes.ALPHABET, as it was
BATCH = 50_000

# Bytes 6 and 8 of a version-4 UUID carry its version and variant bits: the code skips them.
_CODE_FUNCTION = f"""
CREATE FUNCTION pg_temp.new_invite_code() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(substr('{ALPHABET}', get_byte(b, i) % 32 + 1, 1), '' ORDER BY i)
    FROM (SELECT uuid_send(gen_random_uuid()) AS b) AS r, unnest(ARRAY[0, 1, 2, 3, 4, 5, 9, 10]) AS i
$$
"""


def upgrade():
    op.add_column("members", sa.Column("invite_code", sa.String(length=16), nullable=True))
    op.add_column("members", sa.Column("invited_by_id", sa.BigInteger(), nullable=True))
    op.add_column("members", sa.Column("birthday", sa.Date(), nullable=True))

    bind = op.get_bind()
    bind.execute(sa.text(_CODE_FUNCTION))
    low, high = bind.execute(sa.text("SELECT min(id), max(id) FROM members")).one()
    if low is not None:
        for start in range(low, high + 1, BATCH):
            bind.execute(
                sa.text(
                    "UPDATE members SET invite_code = pg_temp.new_invite_code() "
                    "WHERE id >= :start AND id < :end AND invite_code IS NULL"
                ),
                {"start": start, "end": start + BATCH},
            )
    while True:  # a collision within a merchant (one in a million at a million members): draw again
        redrawn = bind.execute(
            sa.text(
                """
                UPDATE members SET invite_code = pg_temp.new_invite_code()
                WHERE id IN (
                    SELECT id FROM (
                        SELECT id, row_number() OVER (PARTITION BY merchant_id, invite_code ORDER BY id) AS n
                        FROM members
                    ) AS ranked
                    WHERE n > 1
                )
                """
            )
        ).rowcount
        if not redrawn:
            break
    bind.execute(sa.text("DROP FUNCTION pg_temp.new_invite_code()"))

    op.alter_column("members", "invite_code", nullable=False)
    op.create_unique_constraint(op.f("uq_members_merchant_id_invite_code"), "members", ["merchant_id", "invite_code"])
    op.create_foreign_key(
        op.f("fk_members_invited_by_id_members"), "members", "members", ["invited_by_id"], ["id"], ondelete="SET NULL"
    )
    op.create_check_constraint(op.f("ck_members_not_self_invited"), "members", "invited_by_id <> id")
    op.create_check_constraint(op.f("ck_members_birthday"), "members", "birthday >= DATE '1900-01-01'")
    op.create_index("ix_members_invited_by_id", "members", ["invited_by_id", "id"])

    op.create_table(
        "member_invites",
        sa.Column("inviter_id", sa.BigInteger(), nullable=False),
        sa.Column("invitee_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("new_member", sa.Boolean(), nullable=False),
        sa.Column("bound", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("merchant_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("inviter_id <> invitee_id", name=op.f("ck_member_invites_not_self_invited")),
        sa.ForeignKeyConstraint(
            ["invitee_id"], ["members.id"], name=op.f("fk_member_invites_invitee_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"], ["members.id"], name=op.f("fk_member_invites_inviter_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_member_invites_merchant_id_merchants"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_invites")),
    )
    op.create_index("ix_member_invites_inviter_id", "member_invites", ["inviter_id", "id"])
    op.create_index("ix_member_invites_invitee_id", "member_invites", ["invitee_id", "id"])
    op.create_index(op.f("ix_member_invites_merchant_id"), "member_invites", ["merchant_id"])


def downgrade():
    op.drop_table("member_invites")
    op.drop_index("ix_members_invited_by_id", table_name="members")
    op.drop_constraint(op.f("ck_members_birthday"), "members", type_="check")
    op.drop_constraint(op.f("ck_members_not_self_invited"), "members", type_="check")
    op.drop_constraint(op.f("fk_members_invited_by_id_members"), "members", type_="foreignkey")
    op.drop_constraint(op.f("uq_members_merchant_id_invite_code"), "members", type_="unique")
    op.drop_column("members", "birthday")
    op.drop_column("members", "invited_by_id")
    op.drop_column("members", "invite_code")
