"""prizes: cost, what the prize costs the merchant as its tier said when it was given (filled from
the tiers); an index by campaign

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


def downgrade():
    with op.batch_alter_table('prizes', schema=None) as batch_op:
        batch_op.drop_constraint('ck_prizes_cost', type_='check')
        batch_op.drop_index('ix_prizes_campaign')
        batch_op.drop_column('cost')
