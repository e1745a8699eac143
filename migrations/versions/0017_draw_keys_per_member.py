"""campaign_draws: an Idempotency-Key is the member's across campaigns (a key used on one campaign
and sent again to another is refused, not taken for a new draw)

Revision ID: 0017_draw_keys_per_member
Revises: 0016_initiator_commissions
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0017_draw_keys_per_member'
down_revision = '0016_initiator_commissions'
branch_labels = None
depends_on = None


def upgrade():
    # Draws made before with one key on several campaigns keep the first; the later ones get a key
    # of their own (their id), so the new constraint holds.
    op.execute(
        "UPDATE campaign_draws AS d SET idempotency_key = left(d.idempotency_key, 40) || '~draw' || d.id"
        " WHERE EXISTS (SELECT FROM campaign_draws e WHERE e.member_id = d.member_id"
        " AND e.idempotency_key = d.idempotency_key AND e.id < d.id)"
    )
    op.drop_constraint(op.f('uq_campaign_draws_key'), 'campaign_draws', type_='unique')
    op.create_unique_constraint(op.f('uq_campaign_draws_key'), 'campaign_draws', ['member_id', 'idempotency_key'])


def downgrade():
    op.drop_constraint(op.f('uq_campaign_draws_key'), 'campaign_draws', type_='unique')
    op.create_unique_constraint(
        op.f('uq_campaign_draws_key'), 'campaign_draws', ['campaign_id', 'member_id', 'idempotency_key']
    )
