"""commissions: level 0, the initiator (开团人) of a group buy that succeeded, on the lines of the
group's other members

Revision ID: 0016_initiator_commissions
Revises: 0015_offers
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016_initiator_commissions'
down_revision = '0015_offers'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_constraint(op.f('ck_commissions_level'), 'commissions', type_='check')
    op.create_check_constraint(op.f('ck_commissions_level'), 'commissions', 'level BETWEEN 0 AND 2')


def downgrade():
    op.drop_constraint(op.f('ck_commissions_level'), 'commissions', type_='check')
    op.create_check_constraint(op.f('ck_commissions_level'), 'commissions', 'level BETWEEN 1 AND 2')
