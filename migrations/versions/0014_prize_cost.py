"""prizes: cost, what the prize costs the merchant as its tier said when it was given (filled from
the tiers); an index by campaign; guaranteed tiers without a quota count what they give too
(filled from their prizes and the upgrades holding one)

Revision ID: 0014_prize_cost
Revises: 0013_campaigns
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_prize_cost'
down_revision = '0013_campaigns'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('prizes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_index('ix_prizes_campaign', ['campaign_id', 'tier_id'], unique=False)
        batch_op.create_check_constraint('ck_prizes_cost', 'cost >= 0')
    op.execute("UPDATE prizes SET cost = t.cost FROM campaign_tiers t WHERE t.id = prizes.tier_id")
    op.execute(
        """
        UPDATE campaign_tiers t SET taken =
            (SELECT count(*) FROM prizes p WHERE p.tier_id = t.id AND p.status <> 'voided')
          + (SELECT count(*) FROM prize_upgrades u WHERE u.to_tier_id = t.id AND u.status = 'pending')
        WHERE t.quota IS NULL
        """
    )


def downgrade():
    op.execute("UPDATE campaign_tiers SET taken = 0 WHERE quota IS NULL")
    with op.batch_alter_table('prizes', schema=None) as batch_op:
        batch_op.drop_constraint('ck_prizes_cost', type_='check')
        batch_op.drop_index('ix_prizes_campaign')
        batch_op.drop_column('cost')
