"""Benchmark: settling 1,000,000 due commissions through the real code path, beside one raw SQL
`UPDATE` of the same rows; and what recording commissions adds to handling one payment
notification.

`make bench-settlement` (or `.venv/bin/python bench/settlement.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set (the database is created when missing, and must hold no
   commissions and no ledger entries: settlement settles every merchant's due commissions, and the
   run empties the ledger),
   otherwise the embedded PostgreSQL and Redis under .data/bench, with a database of its own
   (groupshop_settlement) created empty for the run; migrates it;
2. creates through the services three merchants: one for the settlement, with one product of 10
   SKUs; two for the notifications, each with one product of 3 SKUs on the shelf and the same
   2-level program (`update_program(enabled=True, levels=2, rates_bp=[1000, 500],
   join_rule="open")`), two distributors who applied (open: active at once), the lower one bound
   to the upper one, and a buyer bound to the lower one (`distribution.binding.bind`); then the
   program of the first of the two is switched off (`enabled=False`: same rows, same bindings);
3. builds, set-based (one `INSERT ... SELECT` from `generate_series` per table), the settlement
   merchant's data: DISTRIBUTORS members who are active distributors, BUYERS members, COMMISSIONS /
   20 completed goods orders of 10 lines, and for every line a level-1 and a level-2 commission
   (10% and 5% of the line, to the buyer's distributor and the one above), `pending`, due 10 s
   apart order by order (a 7-day freeze after completion), the last an hour ago; and each commission's
   `commission_pending` ledger entry (what `distribution.commissions.record` writes);
4. times, in alternating order (raw, real, real, raw for BENCH_SETTLE_PAIRS=2; raw, real for 1):
   - real: `distribution.jobs.settle()` in an app context, the default batch (10,000; the sweep's
     and the job's), each batch one transaction of the three statements of
     distribution/settlement.py plus `tiers.upgrade` (no tiers here: one SELECT);
   - raw: `UPDATE commissions SET status='settled', settled_at=now(), settlement_id=1 WHERE
     status='pending' AND due_at <= now()`, one statement, one transaction (psycopg);
   before each part, the same preparation: every commission back to `pending` (one UPDATE of
   every row, so each part meets the same table: every row updated once since the last vacuum),
   after a real part the ledger emptied (TRUNCATE: its trigger refuses DELETE) and rebuilt with
   the pending entries, the distributors' kept `available` and `team_sales` back to 0, `VACUUM ANALYZE` of the
   three tables and a `CHECKPOINT` (every part starts with clean buffers and pays its own
   full-page writes); autovacuum is off for the three tables while the parts run (it would start
   in the middle of one part and not of another) and reset afterwards; before the first part one
   untimed raw UPDATE (the first full updates after the bulk load grow the table and its indexes:
   without it, the first run's first raw part took 23 s and its last 14 s);
   and reports the WAL written and the checkpoints started during each part, and for the real
   parts the time inside each statement of a batch;
5. checks after each real part that every commission was settled exactly once (each has one
   batch number, and per batch and distributor the `commission_settled` entry's count and amount
   equal that batch's commissions of that distributor), that the kept `available` sums equal the
   settled amounts and that `distribution.ledger.reconcile()` finds no problem; after each raw
   part, that it updated every row;
5b. times 2 x 10 more batches (`settle_batch` in its own transaction) from the same state,
   alternately with no tier and with one tier that nobody reaches, to show what
   `tiers.upgrade` costs a batch once a merchant has tiers; checks the ledger still reconciles;
6. places NOTIFICATIONS (+ WARM) orders of 3 lines per notification merchant through the API
   (Flask test client) and delivers, in process, the fake provider's signed and encrypted payment
   notification of each (`FakeWeChatPay.payment_notification`, as `POST
   /api/v1/payments/fake/orders/{no}/pay` builds it) to the real endpoint `POST
   /api/v1/payments/wechatpay/{merchant}/notify`, alternating program off and on one by one;
   times each request; counts the SQL statements of the warm-up ones; checks that every order is
   paid, that the merchant with the program on has 6 commissions and 6 pending entries per order
   and reconciles, and that the other has none;
7. writes the "Commission settlement" section of BENCHMARKS.md (unless a check failed).

Knobs: BENCH_COMMISSIONS (default 1,000,000, a multiple of 20), BENCH_SETTLE_PAIRS (1 or 2,
default 2), BENCH_SETTLE_BATCH (default distribution.settlement.DEFAULT_BATCH),
BENCH_NOTIFICATIONS (per side, default 300), BENCH_NO_WRITE=1 (print only). The whole run takes
about 5 minutes on 2 cores (a minute of it building the data, two of preparing the parts).

What the first runs showed (2026-11-30, PostgreSQL 15, 2 cores; distribution/ was not changed
by this benchmark, the proposals are for its owners):

- The goal holds, without much to spare: settling ran at 54-65% of the raw UPDATE's rows/s over
  five runs (the pairs of one run differ by up to 8 points; the later runs, with the team sales
  of migration 0012, were the slower ones). Of a 10,000-row batch (160-210 ms) about 80% is
  statement 1, which does the raw UPDATE's work for its rows (the update cannot be HOT: `status`
  is in the partial index's predicate, so every row gets new entries in the five other indexes)
  plus a WAL record per row for the `FOR UPDATE` lock and a primary-key probe per row; the ledger
  statement ~12%, the commits and Python ~8%, `tiers.upgrade` without tiers ~3%. The late batches
  are a little slower (the dead entries at the head of `ix_commissions_due` are stepped over:
  ~4 ms for the first batch's index scan, ~14 ms after 900,000 were settled).
- Statement 1 joins the picked ids back to `commissions` with `FROM picked WHERE c.id =
  picked.id`, and the planner picks the join by costs: a nested loop over the primary key at
  1,000,000 rows and 5,000 or 10,000 per batch, but a hash join over a sequential scan of the whole
  table at 50,000 per batch (1.5 s per batch instead of 0.8 s), and at 10,000 per batch once the
  table is smaller (400,000 rows: 0.45 s instead of 0.18 s; also a sweep that finds a few due
  rows reads the whole table when the statistics expect many). `WHERE c.id = ANY(ARRAY(SELECT id
  FROM picked))` is an index scan on the primary key whatever the sizes, with the same rows
  locked and updated (measured: 0.84 s instead of 1.5 s at 50,000; the same as now at 10,000 on
  1,000,000 rows, where a whole run at BENCH_SETTLE_BATCH=50000 gave 39% of the raw rate).
- Once a merchant had a tier, `tiers.upgrade` (run in every batch, for every distributor it
  paid) summed each one's team sales over all their commissions, every batch: a batch took about
  four times as long (~760 ms instead of ~200 ms), settling fell to ~15% of the raw rate. Since
  migration 0012 the settlement keeps the team sales on the distributor's row (`team_sales`,
  added by the batch's ledger statement) and a tier costs a batch ~1.2 times (the "With a tier"
  line of the section); the checks now include that kept sum.
- Recording commissions adds ~9 ms to a payment notification (~10 ms without); ~3.5 ms of it in
  SQL (6 more statements). In process, the `order_paid` handler takes ~11 ms with the program on:
  ~4 ms in `cursor.execute`, ~3.6 ms compiling statements, 3.2 ms of which is the multi-row
  `INSERT INTO commissions VALUES (...), (...) ... RETURNING` feeding the ledger's `INSERT ...
  SELECT`, compiled anew on every call (its shape depends on the number of rows, so SQLAlchemy
  never caches it). One fixed statement over `unnest` arrays, as settlement's ledger statement
  does, would be compiled once and prepared by psycopg.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import common
from common import (
    SqlCounter,
    bench_merchant,
    libpq_url,
    machine,
    make_app,
    migrate_and_seed,
    prepare_run_stores,
    publish,
)

SECTION = "## Commission settlement (bench/settlement.py)"
DATABASE = "groupshop_settlement"
QUEUE = "groupshop-bench-settlement"  # the app's QUEUE_NAME: nothing is enqueued, no worker reads it
GOAL = 0.5
LINES = 10  # per settlement order
LEVELS = 2
RATES_BP = (1000, 500)
DISTRIBUTORS = 2_000
BUYERS = 20_000
COMMISSIONS = common._env_int("BENCH_COMMISSIONS", 1_000_000, LINES * LEVELS, 20_000_000)
if COMMISSIONS % (LINES * LEVELS):
    raise SystemExit(f"BENCH_COMMISSIONS must be a multiple of {LINES * LEVELS}")
ORDERS = COMMISSIONS // (LINES * LEVELS)
PAIRS = common._env_int("BENCH_SETTLE_PAIRS", 2, 1, 2)
NOTIFICATIONS = common._env_int("BENCH_NOTIFICATIONS", 300, 10, 5_000)
WARM = 20  # notifications per side before the timed ones (their statements are counted)
CART = 3  # lines per notification order
PRICES = (1990, 2990, 3990)
ADDRESS = {
    "name": "王小二",
    "phone": "13800138000",
    "province": "广东",
    "city": "深圳",
    "district": "南山",
    "detail": "科技园 1 号",
}
SETTLE_TABLES = ("commissions", "distributors", "distribution_ledger")

RAW_UPDATE = (
    "UPDATE commissions SET status = 'settled', settled_at = now(), settlement_id = 1 "
    "WHERE status = 'pending' AND due_at <= now()"
)
RESET = "UPDATE commissions SET status = 'pending', settled_at = NULL, settlement_id = NULL"
PENDING_ENTRIES = """
INSERT INTO distribution_ledger
    (merchant_id, distributor_id, kind, d_pending, d_available, d_withdrawing, d_withdrawn,
     commission_id, order_id, commissions, reason, created_at)
SELECT merchant_id, distributor_id, 'commission_pending', amount, 0, 0, 0, id, order_id, 0, '', created_at
FROM commissions ORDER BY id
"""


def server_settings(database_url: str) -> dict[str, str]:
    import psycopg

    names = ("fsync", "synchronous_commit", "shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem")
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def _batch() -> int:
    from distribution.settlement import DEFAULT_BATCH

    return common._env_int("BENCH_SETTLE_BATCH", DEFAULT_BATCH, 100, 1_000_000)


# --- data through the services ----------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    code: str
    skus: tuple[int, ...]


@dataclass(frozen=True)
class Seeded:
    settle: Shop
    off: Shop
    on: Shop
    stamp: str


def _merchant(code: str, name: str, appid: str, prices: tuple[int, ...]) -> Shop:
    from shop.catalog import service as catalog

    merchant = bench_merchant(code, name, appid)
    made = catalog.create_product(
        merchant.id,
        staff_id=None,
        title=f"{name} product",
        skus=[{"specs": {"款式": f"{n + 1}"}, "price": price, "stock": 10_000_000} for n, price in enumerate(prices)],
        images=["https://img.example.com/bench.jpg"],
    )
    catalog.set_shelf(merchant.id, made.id, on_shelf=True)
    return Shop(merchant.id, code, tuple(sku.id for sku in made.skus))


def seed() -> Seeded:
    from shop.core.db import transaction

    stamp = f"{dt.datetime.now(dt.UTC):%y%m%d%H%M%S}"
    with transaction():
        settle = _merchant(
            f"bench-settle-{stamp}", "Bench settlement", "wxbenchsettle0001", tuple(990 + 100 * n for n in range(LINES))
        )
        off = _merchant(f"bench-settle-off-{stamp}", "Bench program off", "wxbenchsettleoff1", PRICES)
        on = _merchant(f"bench-settle-on-{stamp}", "Bench program on", "wxbenchsettleon01", PRICES)
    return Seeded(settle, off, on, stamp)


@dataclass
class Buyers:
    tokens: dict[str, str] = field(default_factory=dict)  # side -> the buyer's bearer token
    openids: dict[str, str] = field(default_factory=dict)
    distributors: dict[str, tuple[int, int]] = field(default_factory=dict)  # side -> (level 1, level 2) ids


def seed_chains(database_url: str, redis_url: str, seeded: Seeded) -> Buyers:
    """Per notification merchant: the program, lead <- distributor <- buyer; the 'off' one's
    program is switched off afterwards (bindings are refused while a program is off)."""
    from flask import current_app

    from api.auth import MEMBER, issue_token
    from distribution import binding, distributors, program
    from shop.core.db import db, transaction
    from shop.identity.members import login_with_wx_code

    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    buyers = Buyers()
    with app.app_context():
        wechat = current_app.extensions["groupshop.wechat"]
        for side, shop in (("off", seeded.off), ("on", seeded.on)):
            with transaction():
                program.update_program(
                    shop.merchant_id, enabled=True, levels=LEVELS, rates_bp=list(RATES_BP), join_rule="open"
                )
            members = {
                name: login_with_wx_code(shop.code, f"test:{side}-{name}", wechat).member
                for name in ("lead", "distributor", "buyer")
            }
            with transaction():
                lead = distributors.apply(shop.merchant_id, members["lead"].id)
                lower = distributors.apply(shop.merchant_id, members["distributor"].id)
                for member, above in (("distributor", "lead"), ("buyer", "distributor")):
                    refused = binding.bind(shop.merchant_id, members[member].id, members[above].id)
                    if refused is not None:
                        raise SystemExit(f"binding {member} to {above} was refused: {refused}")
                if lead.status != "active" or lower.status != "active":
                    raise SystemExit("the distributors are not active")
                buyers.distributors[side] = (lower.id, lead.id)
            if side == "off":
                with transaction():
                    program.update_program(shop.merchant_id, enabled=False)
            buyers.openids[side] = members["buyer"].openid
            with app.test_request_context():
                buyers.tokens[side] = issue_token(
                    kind=MEMBER, subject_id=members["buyer"].id, merchant_id=shop.merchant_id, role=MEMBER
                )[0]
        db.session.remove()
        db.engine.dispose()
    return buyers


# --- the settlement merchant's data, set-based -------------------------------------------------

BULK = [
    (
        "members (distributors)",
        """
        INSERT INTO members (merchant_id, openid, invite_code, nickname, channel, created_at)
        SELECT %(m)s, 'bench-settle-d-' || n, 'SD' || n, '分销员' || n, 'organic', now() - interval '60 days'
        FROM generate_series(1, %(d)s) AS n ORDER BY n
        """,
    ),
    (
        "members (buyers)",
        """
        INSERT INTO members (merchant_id, openid, invite_code, nickname, channel, created_at)
        SELECT %(m)s, 'bench-settle-b-' || n, 'SB' || n, '买家' || n, 'organic', now() - interval '60 days'
        FROM generate_series(1, %(b)s) AS n ORDER BY n
        """,
    ),
    (
        "distributors",
        """
        INSERT INTO distributors (merchant_id, member_id, status, approved_at, created_at, updated_at)
        SELECT %(m)s, id, 'active', created_at, created_at, created_at FROM members
        WHERE merchant_id = %(m)s AND openid LIKE 'bench-settle-d-%%' ORDER BY id
        """,
    ),
    (
        "mapping tables",
        """
        CREATE TEMP TABLE bench_d AS
        SELECT split_part(m.openid, '-', 4)::int AS n, d.id AS distributor_id
        FROM members m JOIN distributors d ON d.member_id = m.id
        WHERE m.merchant_id = %(m)s AND m.openid LIKE 'bench-settle-d-%%';
        CREATE UNIQUE INDEX ON bench_d (n);
        ANALYZE bench_d;
        CREATE TEMP TABLE bench_b AS
        SELECT split_part(openid, '-', 4)::int AS n, id AS member_id,
               -- the buyer's distributor and the one above it (an order's commissions go to both)
               (split_part(openid, '-', 4)::int * 7919) %% %(d)s + 1 AS d1
        FROM members WHERE merchant_id = %(m)s AND openid LIKE 'bench-settle-b-%%';
        CREATE UNIQUE INDEX ON bench_b (n);
        ANALYZE bench_b;
        CREATE TEMP TABLE bench_s AS
        SELECT row_number() OVER (ORDER BY id)::int AS j, id AS sku_id, product_id, price FROM skus
        WHERE merchant_id = %(m)s;
        ANALYZE bench_s;
        """,
    ),
    (
        "orders",
        """
        INSERT INTO orders (merchant_id, member_id, order_no, kind, status, fulfilment, goods_total, shipping_fee,
                            discount_total, payable_total, paid_total, refunded_total, address, remark, expires_at,
                            transaction_id, prepay_id, paid_at, shipped_at, received_at, after_sales_until,
                            completed_at, created_at, updated_at)
        SELECT %(m)s, b.member_id, 'BS' || %(stamp)s || lpad(o.n::text, 8, '0'), 'goods', 'completed', 'delivery',
               t.total, 0, 0, t.total, t.total, 0, %(address)s::jsonb, '', o.at + interval '15 minutes',
               'BSTX' || %(stamp)s || lpad(o.n::text, 8, '0'), 'wx_bench_' || o.n, o.at + interval '1 minute',
               o.at + interval '1 day', o.at + interval '3 days', o.at + interval '10 days',
               o.at + interval '10 days', o.at, o.at + interval '10 days'
        FROM (SELECT n, now() - interval '17 days' - interval '1 hour' - (%(o)s - n) * interval '10 seconds' AS at
              FROM generate_series(1, %(o)s) AS n) AS o
        JOIN bench_b b ON b.n = (o.n - 1) %% %(b)s + 1
        CROSS JOIN LATERAL (SELECT sum(s.price * (1 + (o.n + s.j) %% 3))::bigint AS total FROM bench_s s) AS t
        ORDER BY o.n;
        CREATE TEMP TABLE bench_o AS
        SELECT substr(order_no, length(order_no) - 7)::int AS n, id AS order_id, member_id, completed_at
        FROM orders WHERE merchant_id = %(m)s;
        CREATE UNIQUE INDEX ON bench_o (n);
        ANALYZE bench_o;
        ANALYZE orders;
        """,
    ),
    (
        "order lines",
        """
        INSERT INTO order_lines (merchant_id, order_id, order_kind, sku_id, product_id, title, description, specs,
                                 image, unit_price, quantity, goods_amount, discount, paid_amount, refunded_quantity,
                                 refunded_amount)
        SELECT %(m)s, o.order_id, 'goods', s.sku_id, s.product_id, 'Bench settlement product', '',
               jsonb_build_object('款式', s.j::text), 'https://img.example.com/bench.jpg', s.price,
               1 + (o.n + s.j) %% 3, s.price * (1 + (o.n + s.j) %% 3), 0, s.price * (1 + (o.n + s.j) %% 3), 0, 0
        FROM bench_o o CROSS JOIN bench_s s
        ORDER BY o.n, s.j;
        ANALYZE order_lines;
        """,
    ),
    (
        "commissions",
        """
        INSERT INTO commissions (merchant_id, distributor_id, order_id, line_id, buyer_id, level, product_id, sku_id,
                                 quantity, base_amount, rate_bp, fixed_amount, original_amount, amount, clawed_back,
                                 status, due_at, created_at)
        SELECT %(m)s, d.distributor_id, o.order_id, l.id, o.member_id, v.level, l.product_id, l.sku_id, l.quantity,
               l.paid_amount, v.rate_bp, NULL, l.paid_amount * v.rate_bp / 10000, l.paid_amount * v.rate_bp / 10000, 0,
               'pending', o.completed_at + interval '7 days', o.completed_at - interval '10 days' + interval '1 minute'
        FROM bench_o o
        JOIN bench_b b ON b.member_id = o.member_id
        JOIN order_lines l ON l.order_id = o.order_id
        CROSS JOIN (VALUES (1, %(rate1)s), (2, %(rate2)s)) AS v(level, rate_bp)
        JOIN bench_d d ON d.n = CASE WHEN v.level = 1 THEN b.d1 ELSE b.d1 %% %(d)s + 1 END
        ORDER BY o.n, l.id, v.level
        """,
    ),
    ("ledger (commission_pending entries)", PENDING_ENTRIES),
]


def bulk_seed(database_url: str, seeded: Seeded) -> dict[str, Any]:
    """The settlement merchant's members, distributors, orders, lines, commissions and their
    pending entries, one transaction; answers the seconds each took and the sizes."""
    import json

    import psycopg

    params = {
        "m": seeded.settle.merchant_id,
        "d": DISTRIBUTORS,
        "b": BUYERS,
        "o": ORDERS,
        "stamp": seeded.stamp,
        "address": json.dumps(ADDRESS, ensure_ascii=False),
        "rate1": RATES_BP[0],
        "rate2": RATES_BP[1],
    }
    took: dict[str, float] = {}
    # Client-side binding: CREATE TABLE AS takes no server-side parameters.
    with psycopg.connect(libpq_url(database_url), cursor_factory=psycopg.ClientCursor) as conn:
        for name, sql in BULK:
            began = time.perf_counter()
            for statement in (s for s in sql.split(";") if s.strip()):
                conn.execute(statement, params)
            took[name] = time.perf_counter() - began
            print(f"  {name}: {took[name]:.1f} s", flush=True)
        conn.commit()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        sizes = {
            table: conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
            for table in ("commissions", "order_lines", "orders", "distribution_ledger")
        }
        counted = conn.execute(
            "SELECT count(*), count(DISTINCT distributor_id), count(DISTINCT order_id), sum(amount),"
            " extract(epoch FROM now() - min(due_at)) / 86400, extract(epoch FROM now() - max(due_at)) / 60"
            " FROM commissions"
            " WHERE merchant_id = %s AND status = 'pending'",
            (seeded.settle.merchant_id,),
        ).fetchone()
    return {"took": took, "sizes": sizes, "counted": counted}


# --- the timed parts --------------------------------------------------------------------------


@dataclass
class Part:
    kind: str  # real or raw
    seconds: float
    rows: int
    prepare_seconds: float
    batches: list[tuple[float, int]] = field(default_factory=list)  # (seconds, commissions) per batch
    statements: int = 0
    checks: list[tuple[str, bool]] = field(default_factory=list)
    wal_bytes: int = 0
    checkpoints: int = 0  # started while the part ran (max_wal_size reached, or the timeout)
    sql_seconds: dict[str, float] = field(default_factory=dict)  # real: inside cursor.execute, by statement
    statement_counts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


# The statements of a settlement batch, told apart by their text (distribution/settlement.py).
STATEMENT_KINDS = (
    ("WITH batch AS", "1. pick and UPDATE the commissions"),
    ("FOR NO KEY UPDATE", "2. lock the distributors"),
    ("WITH paid AS", "3. ledger entries and kept sums"),
)
OTHER_STATEMENT = "`tiers.upgrade`'s SELECT"


def _statement_kind(sql: str) -> str:
    return next((name for marker, name in STATEMENT_KINDS if marker in sql), OTHER_STATEMENT)


@dataclass
class WalMark:
    lsn: str
    checkpoints: int


def wal_mark(conn) -> WalMark:
    """Where the WAL is and how many checkpoints have started (an autocommit connection)."""
    if conn.execute("SELECT to_regclass('pg_catalog.pg_stat_checkpointer') IS NOT NULL").fetchone()[0]:
        counted = "SELECT num_timed + num_requested FROM pg_stat_checkpointer"  # PostgreSQL 17 and later
    else:
        counted = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    return WalMark(lsn, conn.execute(counted).fetchone()[0])


def wal_since(conn, mark: WalMark) -> tuple[int, int]:
    now = wal_mark(conn)
    written = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)::bigint", (now.lsn, mark.lsn)).fetchone()[0]
    return written, now.checkpoints - mark.checkpoints


def _autovacuum(database_url: str, on: bool) -> None:
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for table in SETTLE_TABLES:
            conn.execute(
                f"ALTER TABLE {table} RESET (autovacuum_enabled)"
                if on
                else f"ALTER TABLE {table} SET (autovacuum_enabled = false)"
            )


def prepare(database_url: str, merchant_id: int, *, rebuild_ledger: bool) -> float:
    """Every part starts from here: all pending, the pending entries only, nothing available,
    vacuumed, analyzed, checkpointed. (The ledger is rebuilt only after a real part wrote to it.)"""
    import psycopg

    began = time.perf_counter()
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(RESET)
        if rebuild_ledger:
            conn.execute("TRUNCATE distribution_ledger")
            conn.execute(PENDING_ENTRIES)
        conn.execute("UPDATE distributors SET available = 0, team_sales = 0 WHERE merchant_id = %s", (merchant_id,))
        conn.commit()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(SETTLE_TABLES)}")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - began


def warm_up(database_url: str) -> float:
    """One untimed raw UPDATE of every commission: with the first part's reset, the table and its
    indexes have been through two full updates (and their sizes) before anything is timed."""
    import psycopg

    began = time.perf_counter()
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(RAW_UPDATE)
        conn.commit()
    return time.perf_counter() - began


def run_raw(database_url: str, merchant_id: int, *, rebuild_ledger: bool) -> Part:
    import psycopg

    prepared = prepare(database_url, merchant_id, rebuild_ledger=rebuild_ledger)
    with (
        psycopg.connect(libpq_url(database_url), autocommit=True) as admin,
        psycopg.connect(libpq_url(database_url)) as conn,
    ):
        mark = wal_mark(admin)
        began = time.perf_counter()
        rows = conn.execute(RAW_UPDATE).rowcount
        conn.commit()
        seconds = time.perf_counter() - began
        wal, checkpoints = wal_since(admin, mark)
    part = Part("raw", seconds, rows, prepared, wal_bytes=wal, checkpoints=checkpoints)
    part.checks.append((f"raw UPDATE: {rows:,} rows updated (== commissions: {COMMISSIONS:,})", rows == COMMISSIONS))
    return part


def run_real(database_url: str, redis_url: str, merchant_id: int, batch: int, *, rebuild_ledger: bool) -> Part:
    import psycopg
    from sqlalchemy import event

    from distribution import jobs
    from shop.core.db import db

    prepared = prepare(database_url, merchant_id, rebuild_ledger=rebuild_ledger)
    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    marks: list[tuple[float, int]] = []
    by_kind: dict[str, float] = {}
    counts: dict[str, int] = {}
    started: list[tuple[str, float]] = []

    def _before(conn, cursor, statement, parameters, context, executemany) -> None:
        started.append((_statement_kind(statement), time.perf_counter()))

    def _after(conn, cursor, statement, parameters, context, executemany) -> None:
        kind, at = started.pop()
        by_kind[kind] = by_kind.get(kind, 0.0) + time.perf_counter() - at
        counts[kind] = counts.get(kind, 0) + 1

    with app.app_context(), psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        engine = db.engine
        with engine.connect() as conn:  # the pool's connection, opened before the clock starts
            conn.exec_driver_sql("SELECT 1")
        event.listen(engine, "before_cursor_execute", _before)
        event.listen(engine, "after_cursor_execute", _after)
        mark = wal_mark(admin)
        try:
            began = time.perf_counter()
            settled = jobs.settle(batch, progress=lambda n: marks.append((time.perf_counter(), n)))
            seconds = time.perf_counter() - began
        finally:
            event.remove(engine, "before_cursor_execute", _before)
            event.remove(engine, "after_cursor_execute", _after)
        wal, checkpoints = wal_since(admin, mark)
        db.session.remove()
        batches, last = [], began
        for at, n in marks:
            batches.append((at - last, n))
            last = at
        part = Part("real", seconds, settled, prepared, batches, sum(counts.values()), [], wal, checkpoints, by_kind)
        part.statement_counts = counts
        part.checks = verify_settled(merchant_id, settled, batch, sum(n for _, n in marks))
        db.session.remove()
        engine.dispose()
    return part


TIER_BATCHES = 10  # per side


def tier_cost(
    database_url: str, redis_url: str, merchant_id: int, batch: int, *, rebuild_ledger: bool
) -> dict[str, Any]:
    """What `tiers.upgrade` costs a batch once the merchant has a tier: 2 x TIER_BATCHES batches
    (`settle_batch` in its own transaction, as `jobs.settle` runs it), alternately without a tier
    and with one that nobody reaches (created before the batch and deleted after it, untimed)."""
    from sqlalchemy import text

    from distribution import program, settlement
    from distribution.ledger import reconcile
    from shop.core.db import db, transaction

    prepared = prepare(database_url, merchant_id, rebuild_ledger=rebuild_ledger)
    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    ms: dict[str, list[float]] = {"none": [], "tier": []}
    settled = 0
    with app.app_context():
        for number in range(2 * TIER_BATCHES):
            tier_id = None
            if number % 2:
                with transaction():
                    tier_id = program.create_tier(
                        merchant_id, name="金牌", rank=1, min_team_size=1_000_000, min_team_sales=10**12
                    ).id
            began = time.perf_counter()
            with transaction():
                done = settlement.settle_batch(batch=batch)
            ms["tier" if tier_id else "none"].append((time.perf_counter() - began) * 1000)
            settled += done.commissions
            if tier_id is not None:
                with transaction():
                    program.delete_tier(merchant_id, tier_id)
        pending = db.session.execute(text("SELECT count(*) FROM commissions WHERE status = 'pending'")).scalar_one()
        checked, problems = reconcile(merchant_id)
        db.session.remove()
        db.engine.dispose()
    wanted = min(COMMISSIONS, 2 * TIER_BATCHES * batch)
    checks = [
        (
            f"tier measurement: {settled:,} settled in {2 * TIER_BATCHES} batches, {pending:,} still pending "
            f"(== {COMMISSIONS:,} - {wanted:,}); `reconcile()`: {checked:,} distributors, {len(problems)} problems",
            settled == wanted and pending == COMMISSIONS - wanted and checked == DISTRIBUTORS and not problems,
        )
    ]
    return {"ms": ms, "checks": checks, "prepared": prepared}


def verify_settled(merchant_id: int, settled: int, batch: int, progressed: int) -> list[tuple[str, bool]]:
    from sqlalchemy import text

    from distribution.ledger import reconcile
    from shop.core.db import db

    def one(sql: str) -> Any:
        return db.session.execute(text(sql)).one()

    states = one(
        "SELECT count(*) FILTER (WHERE status = 'settled' AND settlement_id IS NOT NULL AND settled_at IS NOT NULL),"
        " count(*), count(DISTINCT settlement_id), coalesce(sum(amount), 0) FROM commissions"
    )
    entries = one(
        "SELECT count(*), coalesce(sum(commissions), 0), coalesce(sum(d_available), 0), coalesce(sum(d_pending), 0),"
        " count(DISTINCT (settlement_id, distributor_id)) FROM distribution_ledger WHERE kind = 'commission_settled'"
    )
    mismatched = one(
        """
        SELECT count(*) FROM (
            SELECT settlement_id, distributor_id, count(*) AS n, sum(amount) AS total
            FROM commissions GROUP BY settlement_id, distributor_id
        ) AS c
        FULL JOIN (
            SELECT settlement_id, distributor_id, sum(commissions) AS n, sum(d_available) AS total, count(*) AS entries
            FROM distribution_ledger WHERE kind = 'commission_settled' GROUP BY settlement_id, distributor_id
        ) AS l USING (settlement_id, distributor_id)
        WHERE c.n IS DISTINCT FROM l.n OR c.total IS DISTINCT FROM l.total OR l.entries <> 1
        """
    )[0]
    kept, team_sales = db.session.execute(
        text(
            "SELECT coalesce(sum(available), 0), coalesce(sum(team_sales), 0) FROM distributors WHERE merchant_id = :m"
        ),
        {"m": merchant_id},
    ).one()
    team_settled = db.session.execute(
        text(
            "SELECT coalesce(sum(c.base_amount), 0) FROM commissions AS c JOIN distributors AS d"
            " ON d.id = c.distributor_id WHERE c.status = 'settled' AND c.buyer_id <> d.member_id"
        )
    ).scalar_one()
    checked, problems = reconcile(merchant_id)
    expected_batches = math.ceil(COMMISSIONS / batch)
    shown = "; ".join(f"{p.distributor_id} {p.what}: {p.expected} != {p.found}" for p in problems[:3])
    return [
        (
            f"settle() answered {settled:,} settled, its batches reported {progressed:,}; "
            f"commissions settled: {states[0]:,} of {states[1]:,}",
            settled == progressed == states[0] == states[1] == COMMISSIONS,
        ),
        (
            f"batch numbers on the commissions: {states[2]:,} (== ⌈{COMMISSIONS:,} / {batch:,}⌉ = "
            f"{expected_batches:,}; each commission carries one)",
            states[2] == expected_batches,
        ),
        (
            f"`commission_settled` entries: {entries[0]:,}, one per batch and distributor ({entries[4]:,} pairs), "
            f"counting {entries[1]:,} commissions (== settled) worth {entries[2]:,} fen (== the commissions' "
            f"{states[3]:,}; pending moved by {entries[3]:,})",
            entries[0] == entries[4] and entries[1] == COMMISSIONS and entries[2] == states[3] == -entries[3],
        ),
        (
            f"batch-and-distributor pairs whose entry differs from its commissions (count or amount), or with other "
            f"than one entry: {mismatched}",
            mismatched == 0,
        ),
        (f"kept `available` on the distributors: {kept:,} fen (== settled)", kept == states[3]),
        (
            f"kept `team_sales` on the distributors: {team_sales:,} fen (== the settled commissions' bases, "
            f"their teams' purchases: {team_settled:,})",
            team_sales == team_settled,
        ),
        (
            f"`distribution.ledger.reconcile()`: {checked:,} distributors checked, {len(problems)} problems"
            + (f" ({shown})" if shown else ""),
            checked == DISTRIBUTORS and not problems,
        ),
    ]


# --- payment notifications --------------------------------------------------------------------


def _place_orders(client, shop: Shop, token: str, count: int, tag: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "items": [{"sku_id": sku, "quantity": 1} for sku in shop.skus[:CART]],
        "fulfilment": "delivery",
        "address": ADDRESS,
    }
    for number in range(count):
        placed = client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": f"{tag}:{number}"})
        if placed.status_code != 201:
            raise SystemExit(f"placing an order answered {placed.status_code}: {placed.get_data(as_text=True)[:300]}")


def notifications(database_url: str, redis_url: str, seeded: Seeded, buyers: Buyers) -> dict[str, Any]:
    """Pay WARM + NOTIFICATIONS orders per side through the notification endpoint, alternating
    off and on; the milliseconds of each timed one, and the statements of the warm-up ones."""
    from sqlalchemy import select

    from shop.core.db import db
    from shop.identity.models import Merchant
    from shop.orders.models import Order
    from shop.payments.providers import payment_provider

    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    client = app.test_client()
    shops = {"off": seeded.off, "on": seeded.on}
    for side, shop in shops.items():
        _place_orders(client, shop, buyers.tokens[side], WARM + NOTIFICATIONS, common.run_tag(f"n{side}"))
    with app.app_context():
        engine = db.engine
        unpaid = {
            side: db.session.execute(
                select(Order.order_no, Order.payable_total)
                .where(Order.merchant_id == shop.merchant_id, Order.status == "pending_payment")
                .order_by(Order.id)
            ).all()
            for side, shop in shops.items()
        }
        merchants = {side: db.session.get(Merchant, shop.merchant_id) for side, shop in shops.items()}
        provider = payment_provider()

        def build(side: str, number: int) -> tuple[dict[str, str], str]:
            order_no, total = unpaid[side][number]
            return provider.payment_notification(
                merchants[side], out_trade_no=order_no, total=total, openid=buyers.openids[side]
            )

        # Built shortly before they are sent (a notification's timestamp must be recent).
        built = {side: [build(side, n) for n in range(WARM + NOTIFICATIONS)] for side in shops}
        db.session.remove()
    ms: dict[str, list[float]] = {"off": [], "on": []}
    statements: dict[str, int] = {"off": 0, "on": 0}
    sql_ms: dict[str, float] = {"off": 0.0, "on": 0.0}
    answers: dict[int, int] = {}

    def send(side: str, number: int) -> float:
        headers, body = built[side][number]
        path = f"/api/v1/payments/wechatpay/{shops[side].code}/notify"
        began = time.perf_counter()
        response = client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
        took = (time.perf_counter() - began) * 1000
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        if response.status_code != 204:
            raise SystemExit(
                f"the notification answered {response.status_code}: {response.get_data(as_text=True)[:300]}"
            )
        return took

    for number in range(WARM):
        for side in ("off", "on") if number % 2 == 0 else ("on", "off"):
            with SqlCounter().counting(engine) as counted:
                send(side, number)
            statements[side] += len(counted.statements)
            sql_ms[side] += counted.seconds * 1000
    for number in range(WARM, WARM + NOTIFICATIONS):
        for side in ("off", "on") if number % 2 == 0 else ("on", "off"):
            ms[side].append(send(side, number))
    engine.dispose()
    checks = verify_notifications(database_url, redis_url, seeded, buyers, answers)
    return {
        "ms": ms,
        "statements": {side: n / WARM for side, n in statements.items()},
        "sql_ms": {side: n / WARM for side, n in sql_ms.items()},
        "checks": checks,
    }


def verify_notifications(
    database_url: str, redis_url: str, seeded: Seeded, buyers: Buyers, answers: dict[int, int]
) -> list[tuple[str, bool]]:
    from sqlalchemy import text

    from distribution.ledger import reconcile
    from shop.core.db import db

    per_side = WARM + NOTIFICATIONS
    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    with app.app_context():

        def counts(shop: Shop) -> tuple[int, int, int, int]:
            return db.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM orders WHERE merchant_id = :m AND status = 'paid'),"
                    " (SELECT count(*) FROM commissions WHERE merchant_id = :m),"
                    " (SELECT count(*) FROM distribution_ledger"
                    "  WHERE merchant_id = :m AND kind = 'commission_pending'),"
                    " (SELECT count(DISTINCT order_id) FROM commissions WHERE merchant_id = :m)"
                ),
                {"m": shop.merchant_id},
            ).one()

        off, on = counts(seeded.off), counts(seeded.on)
        by_level = [
            tuple(row)
            for row in db.session.execute(
                text(
                    "SELECT level, distributor_id FROM commissions WHERE merchant_id = :m"
                    " GROUP BY level, distributor_id ORDER BY level, distributor_id"
                ),
                {"m": seeded.on.merchant_id},
            )
        ]
        checked, problems = reconcile(seeded.on.merchant_id)
        db.session.remove()
        db.engine.dispose()
    wanted = per_side * CART * LEVELS
    lower, lead = buyers.distributors["on"]
    return [
        (
            f"notifications answered 204: {answers.get(204, 0):,} of {2 * per_side:,}",
            answers.get(204, 0) == 2 * per_side,
        ),
        (
            f"orders paid: {off[0]:,} (program off), {on[0]:,} (program on), of {per_side:,} each",
            off[0] == on[0] == per_side,
        ),
        (
            f"program on: {on[1]:,} commissions on {on[3]:,} orders and {on[2]:,} `commission_pending` entries "
            f"(== {per_side:,} orders x {CART} lines x {LEVELS} levels = {wanted:,}); level 1 to the buyer's "
            f"distributor, level 2 to the one above",
            on[1] == on[2] == wanted and on[3] == per_side and by_level == [(1, lower), (2, lead)],
        ),
        (f"program off: {off[1]:,} commissions, {off[2]:,} entries", off[1] == off[2] == 0),
        (
            f"program on: `reconcile()` checked {checked} distributors, {len(problems)} problems",
            checked == 2 and not problems,
        ),
    ]


# --- the report -------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MiB"


def _command() -> str:
    shown = []
    for name in ("DATABASE_URL", "REDIS_URL"):
        value = os.environ.get(name)
        if value:
            hidden = re.sub(r"//([^:@/]+):[^@]*@", r"//\1:***@", value)  # no password in the report
            shown.append(f"{name}={hidden}")
    for name in (
        "BENCH_COMMISSIONS",
        "BENCH_SETTLE_PAIRS",
        "BENCH_SETTLE_BATCH",
        "BENCH_NOTIFICATIONS",
    ):
        if os.environ.get(name):
            shown.append(f"{name}={os.environ[name]}")
    prefix = " ".join(shown)
    return f"`{prefix + ' ' if prefix else ''}make bench-settlement` (`.venv/bin/python bench/settlement.py`)"


def render(
    parts: list[Part],
    tiered: dict[str, Any] | None,
    notified: dict[str, Any],
    data: dict[str, Any],
    batch: int,
    stores: str,
    versions: str,
    pg: dict[str, str],
    checks: list[tuple[str, bool]],
) -> str:
    info = machine()
    real = [p for p in parts if p.kind == "real"]
    raw = [p for p in parts if p.kind == "raw"]
    real_rate = sum(p.rows for p in real) / sum(p.seconds for p in real)
    raw_rate = sum(p.rows for p in raw) / sum(p.seconds for p in raw)
    ratio = real_rate / raw_rate
    rows = "\n".join(
        f"| {n} | {'`distribution.jobs.settle()`' if p.kind == 'real' else 'raw `UPDATE`'} | {p.rows:,} | "
        f"{p.seconds:.1f} | {p.rate:,.0f} | {p.wal_bytes / 2**20:,.0f} | {p.checkpoints} | {p.prepare_seconds:.0f} |"
        for n, p in enumerate(parts, start=1)
    )
    order = ", ".join(p.kind for p in parts)
    pairs = [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
    by_pair = ", ".join(
        f"{(a if a.kind == 'real' else b).rate / (b if a.kind == 'real' else a).rate:.1%} (parts {2 * n + 1} and "
        f"{2 * n + 2})"
        for n, (a, b) in enumerate(pairs)
    )
    batch_lines = []
    empty = COMMISSIONS % batch == 0
    for n, p in enumerate(real, start=1):
        times = [s * 1000 for s, _ in p.batches]
        full = [s * 1000 for s, c in p.batches if c == batch]
        head, tail = full[:10], full[-10:]
        spent = "; ".join(
            f"{kind} {p.sql_seconds.get(kind, 0.0):.1f} s ({p.statement_counts.get(kind, 0)} statements)"
            for kind in [*(name for _, name in STATEMENT_KINDS), OTHER_STATEMENT]
        )
        rest = p.seconds - sum(p.sql_seconds.values())
        batch_lines.append(
            f"- Real part {n}: {len(p.batches)} batches with commissions"
            f"{' and an empty one that ends the loop' if empty else ''}: median {statistics.median(times):,.0f} ms, "
            f"slowest {max(times):,.0f} ms; the first 10 full batches took {statistics.mean(head):,.0f} ms on "
            f"average, the last 10 {statistics.mean(tail):,.0f} ms. Inside `cursor.execute`: {spent}; the rest "
            f"(commits, SQLAlchemy, Python) {rest:.1f} s."
        )
    ms = notified["ms"]
    off_med, on_med = statistics.median(ms["off"]), statistics.median(ms["on"])
    off_p95, on_p95 = _pct(ms["off"], 0.95), _pct(ms["on"], 0.95)
    off_mean, on_mean = statistics.mean(ms["off"]), statistics.mean(ms["on"])
    st, sql = notified["statements"], notified["sql_ms"]
    side_rows = "\n".join(
        f"| {label} | {len(ms[side]):,} | {statistics.median(ms[side]):.2f} | {_pct(ms[side], 0.95):.2f} | "
        f"{statistics.mean(ms[side]):.2f} | {st[side]:g} | {sql[side]:.2f} |"
        for side, label in (("off", "off"), ("on", f"on: {CART * LEVELS} commissions"))
    )
    rates = [f"{rate / 100:g}%" for rate in RATES_BP]
    with_tier = ""
    if tiered is not None:
        none_ms, tier_ms = statistics.median(tiered["ms"]["none"]), statistics.median(tiered["ms"]["tier"])
        tier_seconds = tier_ms / 1000 * math.ceil(COMMISSIONS / batch)
        with_tier = f"""- With a tier: the same batch, `settlement.settle_batch` in its own transaction,
  {TIER_BATCHES} times while the merchant has no tier and {TIER_BATCHES} times while it has one that nobody reaches
  (team size 1,000,000 or team sales 10^12 fen), alternately, from the same state as the parts:
  **median {none_ms:,.0f} ms per batch without a tier, {tier_ms:,.0f} ms with one** ({tier_ms / none_ms:.1f}
  times): `tiers.upgrade` then reads the tier figures (team size, team sales, own sales) of
  every distributor the batch paid, on every batch. At that pace, settling the
  {COMMISSIONS:,} would take about {tier_seconds:,.0f} s ({COMMISSIONS / tier_seconds / raw_rate:.0%} of the raw rate).
"""
    verdicts = "\n".join(f"  - {'✓' if ok else '✗ FAILED'} {text}" for text, ok in checks)
    counted = data["counted"]
    sizes = data["sizes"]
    seeded_seconds = sum(data["took"].values())
    return f"""{SECTION}

Command: {_command()}, run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The benchmark (one Python process, one statement at a time) and PostgreSQL share these CPUs.
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`,
  `shared_buffers={pg["shared_buffers"]}`.
- Data, built set-based for the run ({seeded_seconds:.0f} s): one merchant, {DISTRIBUTORS:,} active
  distributors, {BUYERS:,} buyers, {ORDERS:,} completed goods orders of {LINES} lines; a level-1 ({rates[0]})
  and a level-2 ({rates[1]}) commission on every line: **{counted[0]:,} pending commissions, all due**
  (due between {counted[4]:.1f} days and {counted[5]:.0f} minutes ago, in the order of the orders),
  over {counted[1]:,} distributors and {counted[2]:,} orders, worth {counted[3]:,} fen; and their {counted[0]:,}
  `commission_pending` ledger entries. Sizes with indexes: commissions {_mib(sizes["commissions"])},
  order lines {_mib(sizes["order_lines"])}, ledger {_mib(sizes["distribution_ledger"])}.
- Real: `distribution.jobs.settle()` in an app context (what the sweep and the job run), batch
  {batch:,} (`distribution.settlement.DEFAULT_BATCH`), each batch its own transaction: the pick-and-UPDATE
  of the commissions (`FOR UPDATE SKIP LOCKED`), the distributors' row locks, the ledger entries
  and the kept sums, then `tiers.upgrade` (the merchant has no tiers: one SELECT). Wall time from
  the call to its return, every commit included.
- Raw: `{RAW_UPDATE}`,
  one statement in one transaction (psycopg), its commit included.
- Each part starts from the same state: every commission set back to `pending` (one UPDATE of every
  row), the ledger emptied (TRUNCATE) and rebuilt with the pending entries when a real part wrote to
  it, the kept `available` and `team_sales` sums back to 0, `VACUUM ANALYZE` of commissions, distributors and the
  ledger, then `CHECKPOINT`; autovacuum off for those three tables during the parts (reset
  afterwards). Before the first part, one untimed raw UPDATE of every row ({data["warm_up"]:.0f} s):
  the first updates after the bulk load grow the table and its indexes, which no timed part should
  pay for. Parts in this order: {order}. WAL: bytes written while the part ran; checkpoints: started
  while it ran (`max_wal_size={pg["max_wal_size"]}`, `checkpoint_timeout={pg["checkpoint_timeout"]}`).

| # | part | commissions settled | wall s | rows/s | WAL MiB | checkpoints | preparation s (not timed) |
|---:|---|---:|---:|---:|---:|---:|---:|
{rows}

- **Real / raw: {ratio:.1%}** of the raw rows/s ({real_rate:,.0f} against {raw_rate:,.0f}, over
  all parts of each; goal at least {GOAL:.0%}: {_met(ratio >= GOAL)}). Pair by pair: {by_pair}.
{chr(10).join(batch_lines)}
{with_tier}- Payment notifications, in process (Flask test client, one at a time): the fake provider's signed
  and encrypted `TRANSACTION.SUCCESS` notification (as `POST /api/v1/payments/fake/orders/{{no}}/pay`
  builds it) sent to `POST /api/v1/payments/wechatpay/{{merchant}}/notify`, for orders of {CART} lines
  (one unit each) placed through the API; two merchants with the same 2-level program
  ({rates[0]} / {rates[1]}), the same products and the buyer bound two levels deep, the program
  off for one (`enabled=False`) and on for the other; {WARM} warm-up notifications per side,
  then {NOTIFICATIONS} timed per side, alternating off and on one by one. Time from the request to
  the answer (204), the transaction's commit included.

| program | notifications | median ms | p95 ms | mean ms | SQL statements | ms in `cursor.execute` |
|---|---:|---:|---:|---:|---:|---:|
{side_rows}

(SQL statements and the time inside `cursor.execute`: per notification, mean of the {WARM} warm-up
ones of each side, counted with SQLAlchemy's cursor events.)

- **Recording the commissions adds {on_med - off_med:.2f} ms at the median** ({on_med / off_med - 1:+.0%}),
  {on_p95 - off_p95:.2f} ms at p95, {on_mean - off_mean:.2f} ms on average, and
  {st["on"] - st["off"]:g} SQL statements, to one payment notification; of that, {sql["on"] - sql["off"]:.2f} ms more
  is spent inside `cursor.execute`, the rest in Python (the chain and the rules read, the rows built,
  SQLAlchemy compiling the statements). With the program off the handler still runs (the binding's
  `touch` and the program's read).
- Checks:
{verdicts}
"""


def main() -> int:
    os.chdir(common.ROOT)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    batch = _batch()
    try:
        database_url, redis_url, stores = prepare_run_stores(DATABASE)
        seeded, versions = migrate_and_seed(database_url, redis_url, _checked_seed)
        pg = server_settings(database_url)
        buyers = seed_chains(database_url, redis_url, seeded)
        print(f"building {COMMISSIONS:,} due commissions ...", flush=True)
        data = bulk_seed(database_url, seeded)
        if data["counted"][0] != COMMISSIONS:
            raise SystemExit(f"built {data['counted'][0]:,} commissions, not {COMMISSIONS:,}")

        kinds = ["raw", "real"] if PAIRS == 1 else ["raw", "real", "real", "raw"]
        parts: list[Part] = []
        _autovacuum(database_url, on=False)
        try:
            data["warm_up"] = warm_up(database_url)
            print(f"warm-up raw UPDATE (not counted): {data['warm_up']:.1f} s", flush=True)
            ledger_written = False  # by a real part: the next part needs the pending entries back
            merchant_id = seeded.settle.merchant_id
            for kind in kinds:
                if kind == "raw":
                    part = run_raw(database_url, merchant_id, rebuild_ledger=ledger_written)
                else:
                    part = run_real(database_url, redis_url, merchant_id, batch, rebuild_ledger=ledger_written)
                ledger_written = kind == "real"
                parts.append(part)
                print(
                    f"{kind:<5} {part.rows:>10,} rows {part.seconds:8.2f} s {part.rate:>10,.0f} rows/s"
                    f"  WAL {part.wal_bytes / 2**20:,.0f} MiB, {part.checkpoints} checkpoints"
                    f"  (prepared in {part.prepare_seconds:.0f} s)",
                    flush=True,
                )
            tiered: dict[str, Any] | None = None  # needs 2 x TIER_BATCHES full batches of due commissions
            if 2 * TIER_BATCHES * batch <= COMMISSIONS:
                print(f"a tier's cost: {TIER_BATCHES} batches with one, {TIER_BATCHES} without ...", flush=True)
                tiered = tier_cost(database_url, redis_url, merchant_id, batch, rebuild_ledger=ledger_written)
                for side in ("none", "tier"):
                    print(f"  {side}: median {statistics.median(tiered['ms'][side]):,.0f} ms per batch", flush=True)
        finally:
            _autovacuum(database_url, on=True)

        print(f"payment notifications: {WARM} + {NOTIFICATIONS} per side ...", flush=True)
        notified = notifications(database_url, redis_url, seeded, buyers)
        checks = [(f"part {n} ({p.kind}): {text}", ok) for n, p in enumerate(parts, 1) for text, ok in p.checks]
        checks += (tiered["checks"] if tiered else []) + notified["checks"]
        text = render(parts, tiered, notified, data, batch, stores, versions, pg, checks)
        real = [p for p in parts if p.kind == "real"]
        raw = [p for p in parts if p.kind == "raw"]
        ratio = (sum(p.rows for p in real) / sum(p.seconds for p in real)) / (
            sum(p.rows for p in raw) / sum(p.seconds for p in raw)
        )
        print(f"real / raw: {ratio:.1%} (goal {GOAL:.0%})")
        for side in ("off", "on"):
            values = notified["ms"][side]
            median, p95 = statistics.median(values), _pct(values, 0.95)
            print(f"notification, program {side:<3}: median {median:.2f} ms, p95 {p95:.2f} ms")
        return publish(text, SECTION, {}, checks)
    finally:
        embedded.stop_all()


def _checked_seed() -> Seeded:
    """Refuse a database that holds commissions or ledger entries already (settlement settles
    every merchant's, and the run empties the ledger), then seed."""
    from sqlalchemy import text

    from shop.core.db import db

    held = db.session.execute(
        text("SELECT (SELECT count(*) FROM commissions) + (SELECT count(*) FROM distribution_ledger)")
    ).scalar_one()
    if held:
        raise SystemExit(
            "this database holds commissions or ledger entries already: point DATABASE_URL at an empty "
            "database of the benchmark's own (or unset it for the embedded one, made empty for the run)"
        )
    return seed()


if __name__ == "__main__":
    raise SystemExit(main())
