"""Settlement: pending commissions past their due time (completion + freeze) become withdrawable,
in set-based batches.

One batch is one transaction of three statements:

1. pick up to `batch` due commissions (their ids as an array, so the UPDATE finds them by primary
   key whatever the planner thinks of the table's size) (`FOR UPDATE SKIP LOCKED`: a second worker takes other
   rows, never the same; a refund holding one makes the batch skip it), mark them settled with
   a new batch number, and answer the sums per distributor;
2. lock those distributors' rows in id order;
3. write one `commission_settled` entry per distributor (pending -, available +, how many
   commissions, the batch number) and add the sums to their kept available balance (and the
   team's sales it settled to their kept `team_sales`, which the tier conditions read).

A batch commits whole or not at all: a worker killed halfway leaves its commissions pending for
the next run. Settling is idempotent by construction (a settled commission is never picked
again), so a sweep, a retry and the CLI may all run at once. After each batch the tiers of the
distributors it paid are checked (`distribution.tiers.upgrade`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger

from distribution import tiers
from distribution.states import COMMISSION_MACHINE, CommissionAction
from shop.core.db import db, utcnow

DEFAULT_BATCH = 10_000
# The one transition a batch makes, read from the commission machine (pending -> settled).
(_SETTLEABLE,) = COMMISSION_MACHINE.statuses_allowing(CommissionAction.SETTLE)
_SETTLED = COMMISSION_MACHINE.step(_SETTLEABLE, CommissionAction.SETTLE).to

_SETTLE = text(
    """
    WITH batch AS (SELECT nextval('distribution_settlement_seq') AS id),
    picked AS (
        SELECT id FROM commissions
        WHERE status = :settleable AND due_at <= :now
        ORDER BY due_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ),
    settled AS (
        UPDATE commissions AS c
        SET status = :settled, settled_at = :now, settlement_id = (SELECT id FROM batch)
        WHERE c.id = ANY(ARRAY(SELECT id FROM picked))
        RETURNING c.merchant_id, c.distributor_id, c.amount, c.buyer_id, c.base_amount, c.level
    )
    SELECT (SELECT id FROM batch) AS batch_id, s.merchant_id, s.distributor_id,
           CAST(sum(s.amount) AS bigint) AS total, CAST(count(*) AS integer) AS n,
           CAST(sum(CASE WHEN s.buyer_id <> d.member_id AND s.level > 0 THEN s.base_amount ELSE 0 END)
                AS bigint) AS sales
    FROM settled AS s JOIN distributors AS d ON d.id = s.distributor_id
    GROUP BY s.merchant_id, s.distributor_id
    ORDER BY s.distributor_id
    """
)
_LOCK = text("SELECT id FROM distributors WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE").bindparams(
    bindparam("ids", type_=ARRAY(BigInteger))
)
_CREDIT = text(
    """
    WITH paid AS (
        SELECT * FROM unnest(:ids, :merchants, :totals, :counts, :sales) AS t(id, merchant_id, total, n, sales)
    ),
    entries AS (
        INSERT INTO distribution_ledger
            (merchant_id, distributor_id, kind, d_pending, d_available, d_withdrawing, d_withdrawn,
             settlement_id, commissions, reason, created_at)
        SELECT merchant_id, id, 'commission_settled', -total, total, 0, 0, :batch_id, n, '', :now FROM paid
    )
    UPDATE distributors AS d
    SET available = d.available + paid.total, team_sales = d.team_sales + paid.sales, updated_at = :now
    FROM paid WHERE d.id = paid.id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("merchants", type_=ARRAY(BigInteger)),
    bindparam("totals", type_=ARRAY(BigInteger)),
    bindparam("counts", type_=ARRAY(BigInteger)),
    bindparam("sales", type_=ARRAY(BigInteger)),
)


@dataclass(frozen=True)
class Batch:
    batch_id: int | None
    commissions: int
    distributors: int
    amount: int


def settle_batch(*, batch: int = DEFAULT_BATCH, now: datetime | None = None) -> Batch:
    """Settle up to `batch` due commissions (in the caller's transaction)."""
    now = now or utcnow()
    rows = db.session.execute(
        _SETTLE, {"now": now, "batch": batch, "settleable": str(_SETTLEABLE), "settled": str(_SETTLED)}
    ).all()
    if not rows:
        return Batch(None, 0, 0, 0)
    ids = [row.distributor_id for row in rows]
    db.session.execute(_LOCK, {"ids": ids})
    db.session.execute(
        _CREDIT,
        {
            "ids": ids,
            "merchants": [row.merchant_id for row in rows],
            "totals": [row.total for row in rows],
            "counts": [row.n for row in rows],
            "sales": [row.sales for row in rows],
            "batch_id": rows[0].batch_id,
            "now": now,
        },
    )
    tiers.upgrade(ids)
    return Batch(rows[0].batch_id, sum(row.n for row in rows), len(rows), sum(row.total for row in rows))
