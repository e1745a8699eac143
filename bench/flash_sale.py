"""Benchmark: a flash-sale (秒杀) stampede over HTTP, many buyers for few units of one hot SKU,
beside the raw PostgreSQL rate of the stock guard on one row.

`make bench-flash-sale` (or `.venv/bin/python bench/flash_sale.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set (the database is created when missing), otherwise the
   embedded PostgreSQL and Redis under .data/bench, with a database of its own (groupshop_flash)
   created empty for the run; migrates it and creates, through the services, a merchant with one
   hot SKU on the shelf and one more SKU for the raw measurement (10,000,000 in stock each), and
   BUYERS members (rows copied in, tokens signed with the benchmark's key: bench/campaigns.py's
   `mint_members`);
2. counts, in process (Flask test client on the same database), the SQL statements of a flash
   placement that gets its unit (201) and of one refused `sold_out` (409), and profiles
   PROFILE_REQUESTS of each (bench/orders.py's cProfile summary);
3. starts gunicorn (`--workers 2 --worker-class gthread --threads 2`, keep-alive: SERVER below) and
   runs ROUNDS stampedes:
   each on a new flash sale of UNITS units (per-member limit 1) on the hot SKU, created through
   the services, BUYERS requests `POST /api/v1/flash-sales/{id}/orders`, each buyer once (the
   same members every round: a limit is per sale), at CONCURRENCY connections. In the same rounds
   (order reversed every round), pgbench (or bench/orders.py's Python client) at CONCURRENCY
   connections runs bench/orders.py's raw script: the guarded `UPDATE skus SET stock = stock - 1
   WHERE id = :sku AND stock >= 1` and an `INSERT INTO stock_movements`, in one transaction;
4. after each stampede reads the sale's books: units held by orders, free units, orders and
   units ordered, the most one buyer holds; oversold (units or orders beyond the quota) and
   "unsold while demanded" (free units left although a buyer was refused `sold_out`) must be 0
   and the 201s exactly UNITS; at the end the hot SKU's stock must equal its movements and what
   the sales set aside, and the raw row must have lost one unit per raw transaction;
5. writes the "Flash-sale stampede" section of BENCHMARKS.md (unless an answer other than 201 or
   409 `sold_out` came back or a check did not hold: then it prints it and exits with 1).

The load generator is a small asyncio HTTP/1.1 client in this process, not wrk: wrk runs for a
duration, cannot stop when each buyer has gone once, and cannot tell a sold-out answer's latency
from a placement's (its `response` callback does not know which request it answers). Its CPU is
measured every round (with every other process's, from /proc) and reported.

Knobs: those of bench/common.py (BENCH_ROUNDS, BENCH_DURATION: the raw measurement runs
BENCH_DURATION / BENCH_ROUNDS seconds per round, BENCH_WARMUP: 0 skips the warm-up stampede and
the raw warm-up, BENCH_WORKERS, BENCH_WORKER_CLASS, BENCH_THREADS), BENCH_RAW as in
bench/orders.py, BENCH_FLASH_BUYERS (default 5,000), BENCH_FLASH_UNITS (default 500),
BENCH_NO_WRITE=1 (print only). Every target is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import campaigns
import common
from campaigns import statement_kind
from common import (
    CONCURRENCY,
    HOST,
    ROUND_SECONDS,
    ROUNDS,
    WARMUP,
    WORKERS,
    Load,
    Result,
    Round,
    Server,
    SqlCounter,
    bench_merchant,
    command_line,
    gunicorn_description,
    machine,
    make_app,
    measure,
    migrate_and_seed,
    prepare_run_stores,
    publish,
    request,
    round_from_latencies,
)
from orders import ADDRESS, PROFILE_REQUESTS, PROFILE_TOP, RawPostgres, libpq_url, profile_placements, server_settings

# The stampede's server: 2 gthread workers (one per core) of SERVER_THREADS threads, unless
# BENCH_WORKER_CLASS / BENCH_THREADS say otherwise. They keep a buyer's connection alive between
# requests, as a mini-program's HTTP client does, and a worker's threads placing at the same moment
# share statements (shop.core.batching): the more threads, the more placements one statement can
# carry (16 did best of 2, 8, 16 and 32 on 2026-12-02). Sync workers (`make run`'s) close every
# connection, and since gunicorn 27 a sync worker holds on to it after the answer until the client
# has closed its end too (`gunicorn.util.close_graceful`): the client's own turn would be timed with
# every placement, and each buyer would pay a connect.
SERVER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")
SERVER_THREADS = common._env_int("BENCH_THREADS", 16, 1, 64)

SECTION = "## Flash-sale stampede (bench/flash_sale.py)"
DATABASE = "groupshop_flash"
QUEUE = "groupshop-bench-flash"  # the servers' QUEUE_NAME: no worker reads it
BUYERS = common._env_int("BENCH_FLASH_BUYERS", 5_000, 1_000, 100_000)
UNITS = common._env_int("BENCH_FLASH_UNITS", 500, 1, 100_000)
if UNITS >= BUYERS:
    raise SystemExit("BENCH_FLASH_UNITS must be below BENCH_FLASH_BUYERS: the sale has to sell out")
WARMUP_SHARE = 5  # the warm-up stampede: a fifth of the buyers for a fifth of the units
STOCK = 10_000_000
PRICE, FLASH_PRICE = 1990, 990
PAYMENT_MINUTES = 60  # no order of the run expires while it runs (nor would any sweep run)
GOAL = 1.0  # flash placements per second on the hot SKU against the raw guard's transactions
COUNT_PLACED, COUNT_SOLD_OUT = 40, 20  # in-process answers whose statements are counted
TIMEOUT = 30.0  # seconds a buyer waits for an answer
BODY = {"quantity": 1, "fulfilment": "delivery", "address": ADDRESS}
PLACED, SOLD_OUT = "placed", "sold_out"
OUTCOMES = {PLACED: "201, the order with its unit", SOLD_OUT: "409 `sold_out`"}

# ---- to be written by hand: the design of the flash-sale path (shown at the end of the section) ----
DESIGN_NOTES = """
**What the flash path is now.** PostgreSQL holds the units and decides: a sale's quota is set aside
from the SKU as one row per unit (`offer_units`), and a placement takes free rows with `FOR UPDATE
SKIP LOCKED` after raising the buyer's count within the per-member limit (a guarded upsert), so
buyers of one hot sale take different rows instead of queueing on one counter, which is what the raw
transaction does (its rate is one row's commit, WAL flush included, at a time). The common placement
(a "buy now" delivered to an address, no selections, a member no pricing adjuster has anything for:
no coupon in the wallet) is **one round trip**: `flash_place()`, a PostgreSQL function (migrations
0018 and 0019), checks the sale and the SKU, counts the member, takes the units, writes the
Idempotency-Key, the order and its line, and answers the order's figures, in one statement on a
connection in autocommit, committed asynchronously (`synchronous_commit` off: what a crash can lose
is an unpaid order nobody has started paying, see `shop.offers.flash_sales.sale_without_flush_wait`).
It looks for free units past the last one the placing process took, and from the sale's first unit
only when none is free there (units given back lie below), so a buyer is still refused only when no
unit is free: taken units keep their entries in the free units' index until a vacuum, and a look from
the first unit walks past all of them, the more the bigger the sale. Anything else (a retry, a member
with coupons, a pickup, a sale not running) it leaves untouched, and `orders.place_order` places it
(6 statements). tests/api/test_flash_fast.py holds the two paths' orders equal. In front of it, a
sold-out gate in Redis: once PostgreSQL has refused a buyer for want of units, a mark (holding a
generation number) answers the next buyers 409 `sold_out` with one indexed read (the
Idempotency-Key, so a retry still gets its order; one statement in autocommit); every commit that
gives units back raises the generation, so the mark never outlives them. Redis losing its data or
being down only sends buyers to PostgreSQL, whose answer sets the mark again.

**The flash lane (api/flash_lane.py).** Most of what a placement cost a worker was the request's
machinery: Flask's dispatch, flask-smorest's and webargs' wrappers, marshmallow, SQLAlchemy around
one statement. So a running sale's common placement is answered by a WSGI layer in front of Flask,
which does only what the endpoint does for that case: the request limits
(`api.http_rules.oversized`), the member's token, the Idempotency-Key, the body loaded by the
endpoint's own schema, `flash_sales.place_while_selling` (the one-round-trip placement; for a sale
this process has not placed an order of within the last second, the gate read first, and its
sold-out refusal answered there too since 2026-12-02: in a stampede, nine buyers in ten are
refused), the order dumped by a planned OrderSchema dump (`api.schemas.dumping.planned_dump`).
Refusals and errors go through the app's own error handlers; anything else (a bad body, a retry,
coupons) goes to the app untouched. tests/api/test_flash_lane.py
holds its answers equal to the app's (body, status, headers). Cut again on 2026-12-02, each held by
tests: what a body asks (the schema's load and the request's fingerprint) is kept per body and sale,
since a stampede's buyers send the same few bodies; the placed order is answered as plain objects
with Order's attributes rather than ORM objects; the statement's connection is put in autocommit on
the driver rather than through SQLAlchemy's isolation option (which set and reset two driver
settings around every use), and no session is made for it; OrderPlaced's handlers run in
`shop.core.db.transaction_if_used`, which makes a session only when a handler touches the database.

**Shared statements (group commit, since 2026-12-02).** A placement's own work in PostgreSQL (the
key, the count, the unit, the order and its line) is small beside what every statement costs around
it: the function's call, a transaction, its commit; and in the worker, a connection checkout, the
driver's round trip and its wake-ups. So the placements one server process makes at the same moment
share one statement (`shop.core.batching.Gathering`, used by `shop.offers.flash_fast`): a placement
arriving while none runs goes at once, alone; those arriving while one runs wait for it to end, and
the first of them then runs them all (up to 16) in one statement, `flash_place()` once per
buyer in one transaction (the placements sent as one JSON array: an array per argument cost the
driver more, dumped element by element in Python), each buyer answered its own row. A lone buyer waits for nothing;
a stampede's buyers share the statement and its commit. Should that statement fail (an order number
drawn twice, a lock wait that deadlocked with another statement's), PostgreSQL rolls all of it back
and its buyers are placed the usual way. On a scratch database (pgbench at 4 connections, the
function alone), 8 placements in one statement took 0.35 ms of PostgreSQL's CPU each against 0.60 ms
one by one. tests/integration/shop/test_flash_sale_races.py holds each buyer to their own order
when statements are shared, and a failed shared statement to writing nothing.

**The server.** gunicorn with 2 gthread workers of 16 threads (2 before the shared statements; in
runs of 4 rounds on 2026-12-02, 16 did best of 8, 16 and 32: the more threads, the more placements a
statement can carry) and keep-alive, where `make run` has 2 sync workers: a sync worker closes
every connection, and since gunicorn 27 holds on to it after the answer until the client has closed
its end (`gunicorn.util.close_graceful`), so each buyer would pay a connect and the client's own
turn would be timed with every placement; and it makes one placement at a time, so nothing is
shared. Both load `api/serving.py` as gunicorn's config: gunicorn wrote a response's head and its
body with a `sendall` each, so every answer cost the worker two system calls and the client two
wake-ups; a body sent whole now goes with its head in one. The app's connection pool keeps 30
connections per process (10 kept and 20 opened and closed on demand before): a stampede on 16
threads opened and closed PostgreSQL sessions every round, each paying a backend and
`flash_place()`'s first use.

**Before and after, on this machine the same day.** With the command above and
`BENCH_ROUNDS=4 BENCH_NO_WRITE=1`, at commit a11a7b0 (before the shared statements, 2 threads):
72.6% of the raw rate (1,073 orders/s against 1,479; rounds from 59% to 83%), with gunicorn's
workers taking 1.11 ms of CPU per buyer and PostgreSQL 0.23 ms; with 2 workers of 4, 3 of 2, 4 of 1
and 4 of 2 threads, 76.9% to 80.9%. With the shared statements and 16 threads: 90.7% and 80.8%;
with the pool kept: 88.1%; the placements as one JSON array: 93.1%; the gate's refusals in the
lane: 88.2% and 90.3% (the sold-out answers from 1,385/s to 1,739/s, the workers' CPU per buyer from
1.04 ms to 0.80 ms); the Redis clients told their version (redis-py 8 read it from the installed
packages' metadata for every connection it opened, a walk of sys.path: a fifth of the workers' time
while threads opened connections): 82.2%, 76.3% and 101.0% (rounds from 60% to 112%, the idle CPU
share from 10% to 21% between those runs: this machine's other load). This run's figures are above.
When every buyer gets a unit (`BENCH_FLASH_UNITS=4999`, 2 rounds, before the shared statements), a
placement took 0.88 ms of the workers' CPU and 0.63 ms of PostgreSQL's. **The goal is not met
reliably**: the placements are bound by the CPUs, the raw transaction by one row's commit (1,479 to
1,573 transactions/s on this machine, 238 to 496 on 2026-12-02's slower disk), and the rounds vary
by a third.

**Tried and dropped.** A connection kept per thread (it doubles the connections a thread holds, and
the race tests ran the pool dry); units taken from a random point of the sale (three index descents
cost what the walk past taken units saved); dropping the foreign keys that repeat others, and
merging the function's inserts into one statement (no measurable change either); switching
Python's GC off or freezing it (none); a statement carrying at most 4 or 8 placements instead of 16
(60.7% and 85.0% in runs of 4 rounds with 32 threads). Not tried: an atomic gate in Redis deciding
who gets a unit before PostgreSQL writes the orders: PostgreSQL's cost is now mostly the
placements' own rows, which such a gate keeps.
"""
# -----------------------------------------------------------------------------------------------------


# The round-by-round table's columns, with their alignment (":" on the right: numbers).
ROUND_COLUMNS = (
    ("round", "---:"),
    ("order", "---"),
    ("201s", "---:"),
    ("sell-out s", "---:"),
    ("orders/s", "---:"),
    ("all answers, ms", "---"),
    ("sold-out answers", "---:"),
    ("sold-out, ms", "---"),
    ("raw tx/s", "---:"),
    ("orders / raw", "---:"),
    ("oversold", "---:"),
    ("unsold while demanded", "---:"),
)
ROUND_TABLE_HEAD = "\n".join("  | " + " | ".join(column[part] for column in ROUND_COLUMNS) + " |" for part in (0, 1))


def orders_path(sale_id: int) -> str:
    return f"/api/v1/flash-sales/{sale_id}/orders"


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    merchant_id: int
    merchant_code: str
    hot: int
    raw: int


def seed() -> Seeded:
    """A merchant for the run, its hot SKU on the shelf and the raw SKU off it, through the services."""
    from shop.catalog import service as catalog
    from shop.core.db import transaction

    code = f"bench-flash-{dt.datetime.now(dt.UTC):%y%m%d%H%M%S}"
    image = ["https://img.example.com/bench.jpg"]
    with transaction():
        merchant = bench_merchant(code, "Bench flash sales", "wxbenchflash00001")
        made = {}
        for key, title in (("hot", "Bench flash product"), ("raw", "Bench raw row (pgbench only)")):
            sku = {"specs": {"款式": "1"}, "price": PRICE, "market_price": 2990, "stock": STOCK}
            made[key] = catalog.create_product(merchant.id, staff_id=None, title=title, skus=[sku], images=image)
        catalog.set_shelf(merchant.id, made["hot"].id, on_shelf=True)
    return Seeded(merchant.id, code, made["hot"].skus[0].id, made["raw"].skus[0].id)


def mint_buyers(database_url: str, redis_url: str, seeded: Seeded) -> list[str]:
    """BUYERS members of the merchant and their tokens (bench/campaigns.py's `mint_members`)."""
    return campaigns.mint_members(database_url, redis_url, seeded.merchant_id, BUYERS, prefix="bench-flash")


def create_sale(app: Any, seeded: Seeded, units: int, title: str, *, per_member_limit: int = 1) -> int:
    """A running flash sale of `units` units of the hot SKU (per-member limit 1 unless said), through
    the services."""
    from shop.core.db import transaction, utcnow
    from shop.offers import service as offers
    from shop.offers.models import FLASH_SALE

    now = utcnow()
    values = {
        "title": title,
        "price": FLASH_PRICE,
        "quota": units,
        "per_member_limit": per_member_limit,
        "starts_at": now - dt.timedelta(minutes=1),
        "ends_at": now + dt.timedelta(hours=2),
        "payment_minutes": PAYMENT_MINUTES,
    }
    with app.app_context(), transaction():
        offer = offers.create_offer(
            seeded.merchant_id,
            kind=FLASH_SALE,
            sku_id=seeded.hot,
            values=values,
            staff_id=None,
        )
        return offer.id


# --- statements per answer and the profile (in process) ------------------------------------------


def count_answers(app: Any, seeded: Seeded, tokens: list[str]) -> dict[str, Any]:
    """Statements (with commits and rollbacks) and Redis commands per flash placement and per
    `sold_out` refusal, one request at a time, each a new buyer of its sale, with every distinct
    sequence of statements and how many answers ran it; then a profile of each."""
    from sqlalchemy import event

    from shop.core.cache import redis_client
    from shop.core.db import db

    with app.app_context():
        engine, redis = db.engine, redis_client()
    client = app.test_client()
    tag = common.run_tag("c")
    numbers = iter(range(10**9))
    ends: Counter = Counter()
    redis_calls: Counter = Counter()
    real_execute = redis.execute_command

    def buy(sale: int, member: int, expect: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[member]}", "Idempotency-Key": f"{tag}:{next(numbers)}"}
        response = client.post(orders_path(sale), json=BODY, headers=headers)
        got = PLACED if response.status_code == 201 else response.json.get("error", {}).get("code", "?")
        assert got == expect, f"{response.status_code}: {response.get_data(as_text=True)[:300]}"

    def _commit(conn: Any) -> None:
        ends["commit"] += 1

    def _rollback(conn: Any) -> None:
        ends["rollback"] += 1

    def _execute(*args: Any, **options: Any) -> Any:  # the request path's client, outside pipelines
        redis_calls[str(args[0]).lower()] += 1
        return real_execute(*args, **options)

    open_sale = create_sale(app, seeded, 1 + COUNT_PLACED, "probe: statements, placed")
    gone_sale = create_sale(app, seeded, 1, "probe: statements, sold out")
    buy(open_sale, 0, PLACED)  # warm
    buy(gone_sale, 0, PLACED)  # its only unit: from now on it refuses
    got: dict[str, Any] = {}
    event.listen(engine, "commit", _commit)
    event.listen(engine, "rollback", _rollback)
    redis.execute_command = _execute
    try:
        for key, sale, count in ((PLACED, open_sale, COUNT_PLACED), (SOLD_OUT, gone_sale, COUNT_SOLD_OUT)):
            sequences: Counter = Counter()
            ends.clear()
            redis_calls.clear()
            began = time.perf_counter()
            with SqlCounter().counting(engine) as counted:
                for member in range(1, count + 1):
                    mark = len(counted.statements)
                    buy(sale, member, key)
                    sequences[tuple(statement_kind(s) for s in counted.statements[mark:])] += 1
            elapsed = time.perf_counter() - began
            got[key] = {
                "answers": count,
                "statements": len(counted.statements) / count,
                "sequences": sequences.most_common(),
                "checkouts": counted.checkouts / count,
                "commits": ends["commit"] / count,
                "rollbacks": ends["rollback"] / count,
                "redis": {name: calls / count for name, calls in sorted(redis_calls.items())},
                "ms": elapsed / count * 1000,
                "sql_ms": counted.seconds / count * 1000,
            }
    finally:
        event.remove(engine, "commit", _commit)
        event.remove(engine, "rollback", _rollback)
        del redis.execute_command
    profile_sale = create_sale(app, seeded, PROFILE_REQUESTS, "probe: profile, placed")
    got[PLACED]["profile"] = profile_placements(lambda n: buy(profile_sale, n, PLACED))
    got[SOLD_OUT]["profile"] = profile_placements(lambda n: buy(gone_sale, COUNT_SOLD_OUT + 1 + n, SOLD_OUT))
    got["placed_in_process"] = 2 + COUNT_PLACED + PROFILE_REQUESTS
    return got


# --- the load generator: each buyer once --------------------------------------------------------


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """(status, whether the server closes the connection, body) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise ValueError("chunked answers are not read by this client")
    return status, close, (await reader.readexactly(length) if length else b"")


def _outcome(status: int, body: bytes) -> str:
    if status == 201:
        return PLACED
    try:
        return f"{status} {json.loads(body)['error']['code']}" if status != 409 or b"sold_out" not in body else SOLD_OUT
    except (ValueError, KeyError, TypeError):
        return str(status)


async def _stampede(port: int, path: str, tokens: list[str], tag: str) -> list[tuple[float, float, str]]:
    """Every buyer once, at CONCURRENCY connections that each take the next buyer not yet sent:
    (sent, answered, outcome) per buyer, perf_counter seconds. A connection the server closes
    (sync workers close every one) is opened again for the next buyer; its connect is timed."""
    body = json.dumps(BODY).encode()
    fixed = f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
    fixed += f"Content-Length: {len(body)}\r\n"
    pending = iter(range(len(tokens)))
    answers: list[tuple[float, float, str]] = []

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for n in pending:  # one iterator shared by the connections: each buyer goes once
            message = f"{fixed}Authorization: Bearer {tokens[n]}\r\nIdempotency-Key: {tag}:{n}\r\n\r\n".encode()
            sent = time.perf_counter()
            close = True
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(message + body)
                async with asyncio.timeout(TIMEOUT):  # no task per answer, as wait_for would make
                    status, close, payload = await _answer(reader)
                outcome = _outcome(status, payload)
            except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                outcome = f"socket: {type(exc).__name__}"
            answers.append((sent, time.perf_counter(), outcome))
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    return answers


STUB_ANSWER = b'{"error": {"code": "sold_out", "message": "sold out", "details": {"offer_id": 1}}}'
STUB_RESPONSE = (
    b"HTTP/1.1 409 CONFLICT\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
    % (len(STUB_ANSWER), STUB_ANSWER)
)


def _stub_server(port: int) -> None:
    """A server that answers every request at once with a `sold_out` and closes (one process)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(STUB_RESPONSE)
        await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, HOST, port, backlog=256)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def client_ceiling(tokens: list[str]) -> dict[str, float]:
    """The load generator alone: a stampede of every buyer against a stub server in another
    process that answers at once; its requests/s and this process's CPU per request."""
    import multiprocessing

    port = common.free_port()
    stub = multiprocessing.get_context("spawn").Process(target=_stub_server, args=(port,), daemon=True)
    stub.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request("GET", port, "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the stub server did not answer") from None
                time.sleep(0.1)
        cpu = time.process_time()
        answers = asyncio.run(_stampede(port, "/stub", tokens, "stub"))
        cpu = time.process_time() - cpu
    finally:
        stub.terminate()
        stub.join(timeout=10)
    seconds = max(end for _, end, _ in answers) - min(sent for sent, _, _ in answers)
    wrong = sum(got != SOLD_OUT for _, _, got in answers)
    if wrong:
        raise SystemExit(f"the stub server's answers were not all read: {wrong} of {len(answers)}")
    return {"rps": len(answers) / seconds, "cpu_us": cpu / len(answers) * 1e6}


# --- CPU by process, from /proc -----------------------------------------------------------------

CPU_GROUPS = ("gunicorn workers", "PostgreSQL", "Redis", "load generator (this process)", "other processes")


def cpu_ticks(server_pid: int) -> dict[int, tuple[str, int]]:
    """pid -> (its group, user + system clock ticks so far), for every process we may read."""
    me = os.getpid()
    ticks: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(fields[1])
        if pid == me:
            group = CPU_GROUPS[3]
        elif server_pid in (pid, ppid):
            group = CPU_GROUPS[0]
        elif comm.startswith(("postgres", "postmaster")):
            group = CPU_GROUPS[1]
        elif comm.startswith("redis"):
            group = CPU_GROUPS[2]
        else:
            group = CPU_GROUPS[4]
        ticks[pid] = (group, int(fields[11]) + int(fields[12]))
    return ticks


def cpu_used(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process new since counts all it used)."""
    hertz = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, ticks) in after.items():
        used[group] += (ticks - before.get(pid, (group, 0))[1]) / hertz
    return used


# --- the stampede -------------------------------------------------------------------------------


@dataclass
class Run:
    """One stampede: what the buyers got and what the sale's books say afterwards."""

    sale: int
    buyers: int
    units: int
    answers: list[tuple[float, float, str]]
    client_cpu: float  # seconds of this process's CPU during the stampede
    cpu: dict[str, float]  # CPU seconds per process group during the stampede
    books: dict[str, int] = field(default_factory=dict)

    def latencies(self, outcome: str | None = None) -> list[float]:
        return [(end - sent) * 1000 for sent, end, got in self.answers if outcome is None or got == outcome]

    def count(self, outcome: str) -> int:
        return sum(got == outcome for _, _, got in self.answers)

    @property
    def started(self) -> float:
        return min(sent for sent, _, _ in self.answers)

    @property
    def seconds(self) -> float:
        """From the first buyer's request to the last answer."""
        return max(end for _, end, _ in self.answers) - self.started

    @property
    def sell_out(self) -> float:
        """From the first buyer's request to the last 201: the time the units took to sell."""
        return max((end for _, end, got in self.answers if got == PLACED), default=self.started) - self.started

    @property
    def sold_out_span(self) -> float:
        """From the first refused buyer's request to the last refusal."""
        spans = [(sent, end) for sent, end, got in self.answers if got == SOLD_OUT]
        return max(end for _, end in spans) - min(sent for sent, _ in spans) if spans else 0.0

    @property
    def others(self) -> Counter:
        return Counter(got for _, _, got in self.answers if got not in (PLACED, SOLD_OUT))

    @property
    def oversold(self) -> int:
        """Units ordered beyond the quota, plus orders beyond it."""
        return max(0, self.books["units_ordered"] - self.units) + max(0, self.books["orders"] - self.units)

    @property
    def unsold_while_demanded(self) -> int:
        """Units still free at the end although a buyer was refused `sold_out`."""
        return self.books["free"] if self.count(SOLD_OUT) else 0

    def round(self) -> Round:
        """All the stampede's answers, for bench/common.py's rounds (errors: neither 201 nor sold_out)."""
        return round_from_latencies(self.latencies(), self.seconds, sum(self.others.values()))


def sale_books(database_url: str, sale: int) -> dict[str, int]:
    """The sale's units (held, free, all), its orders and the units they ordered, units not held
    by the order that ordered them, and the most units one buyer holds."""
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM offer_units WHERE offer_id = %(s)s AND order_id IS NOT NULL),"
            " (SELECT count(*) FROM offer_units WHERE offer_id = %(s)s AND order_id IS NULL),"
            " (SELECT count(*) FROM offer_units WHERE offer_id = %(s)s),"
            " (SELECT count(DISTINCT order_id) FROM order_lines WHERE offer_id = %(s)s),"
            " (SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE offer_id = %(s)s),"
            " (SELECT count(*) FROM order_lines l WHERE l.offer_id = %(s)s AND l.quantity <>"
            "   (SELECT count(*) FROM offer_units u WHERE u.offer_id = l.offer_id AND u.order_id = l.order_id)),"
            " (SELECT coalesce(max(quantity), 0) FROM offer_buyers WHERE offer_id = %(s)s)",
            {"s": sale},
        ).fetchone()
    keys = ("held", "free", "rows", "orders", "units_ordered", "unmatched_lines", "most_by_one")
    return dict(zip(keys, row, strict=True))


class Stampede:
    """`run(seconds)` (the seconds are the raw measurement's; a stampede lasts until every buyer
    has had an answer): a new sale, every buyer once, then the sale's books. The first run is the
    warm-up (a smaller stampede) when BENCH_WARMUP is not 0."""

    def __init__(self, app: Any, port: int, server_pid: int, database_url: str, seeded: Seeded, tokens: list[str]):
        self.app, self.port, self.server_pid = app, port, server_pid
        self.database_url, self.seeded, self.tokens = database_url, seeded, tokens
        self.warmup: list[Run] = []
        self.runs: list[Run] = []

    def run(self, seconds: int) -> Round:
        warming = bool(WARMUP) and not self.warmup and not self.runs
        buyers, units = (BUYERS // WARMUP_SHARE, UNITS // WARMUP_SHARE) if warming else (BUYERS, UNITS)
        number = len(self.runs) + 1
        sale = create_sale(self.app, self.seeded, max(1, units), "warm-up" if warming else f"stampede {number}")
        tokens = self.tokens[:buyers]
        before, cpu_before = cpu_ticks(self.server_pid), time.process_time()
        answers = asyncio.run(_stampede(self.port, orders_path(sale), tokens, common.run_tag(f"f{number}-")))
        client_cpu = time.process_time() - cpu_before
        got = Run(sale, buyers, max(1, units), answers, client_cpu, cpu_used(before, cpu_ticks(self.server_pid)))
        got.books = sale_books(self.database_url, sale)
        (self.warmup if warming else self.runs).append(got)
        print(
            f"  {'warm-up ' if warming else ''}stampede: {got.count(PLACED)} x 201 in {got.sell_out:.2f} s "
            f"({got.count(PLACED) / got.sell_out if got.sell_out else 0:.0f} orders/s), "
            f"{got.count(SOLD_OUT)} sold_out, "
            f"{sum(got.others.values())} other; oversold {got.oversold}, unsold while demanded "
            f"{got.unsold_while_demanded}; client CPU {client_cpu:.2f} s",
            flush=True,
        )
        return got.round()


def outcome_result(runs: list[Run], outcome: str) -> Result:
    """Rounds of one outcome's answers: over the sell-out for the 201s (orders/s), over the
    refusals' span for the sold-out answers."""
    rounds = []
    for run in runs:
        latencies = run.latencies(outcome)
        if latencies:
            seconds = run.sell_out if outcome == PLACED else run.sold_out_span
            rounds.append(round_from_latencies(latencies, seconds, 0))
    return Result(OUTCOMES[outcome], rounds=rounds)


# --- after the run ------------------------------------------------------------------------------


def verify(
    database_url: str, seeded: Seeded, stampede: Stampede, in_process: int, raw_transactions: int
) -> list[tuple[str, bool]]:
    """The books after the run: (what was checked, with the figures; whether it held)."""
    import psycopg

    runs = [*stampede.warmup, *stampede.runs]
    with psycopg.connect(libpq_url(database_url)) as conn:

        def one(sql: str, *args: Any) -> Any:
            return conn.execute(sql, args).fetchone()

        hot_stock, hot_ledger = one(
            "SELECT stock, (SELECT coalesce(sum(delta), 0) FROM stock_movements WHERE sku_id = s.id) "
            "FROM skus s WHERE id = %s",
            seeded.hot,
        )
        set_aside, sales = one(
            "SELECT coalesce(sum(quota - returned), 0), count(*) FROM offers WHERE sku_id = %s", seeded.hot
        )
        orders = one("SELECT count(*) FROM orders WHERE merchant_id = %s", seeded.merchant_id)[0]
        raw_left, raw_moves, raw_sum = one(
            "SELECT stock, (SELECT count(*) FROM stock_movements WHERE sku_id = s.id AND reason = 'bench_raw'), "
            "(SELECT coalesce(sum(delta), 0) FROM stock_movements WHERE sku_id = s.id AND reason = 'bench_raw') "
            "FROM skus s WHERE id = %s",
            seeded.raw,
        )
    placed = [run.count(PLACED) for run in runs]
    oversold = sum(run.oversold for run in runs)
    unsold = sum(run.unsold_while_demanded for run in runs)
    others = sum((run.others for run in runs), Counter())
    listed = ", ".join(f"{n:,}" for n in placed)
    return [
        (
            f"201s per stampede (warm-up first when there was one): {listed}; each exactly its sale's quota",
            all(n == run.units for n, run in zip(placed, runs, strict=True)),
        ),
        (
            f"**oversold: {oversold}** over the {len(runs)} stampedes (units ordered beyond the quota, and orders "
            "beyond it); every unit ordered is one unit row held by the order that ordered it "
            f"(lines whose units differ: {sum(run.books['unmatched_lines'] for run in runs)}); the most one buyer "
            f"holds of a sale: {max(run.books['most_by_one'] for run in runs)} (limit 1)",
            oversold == 0
            and all(
                run.books["unmatched_lines"] == 0
                and run.books["held"] == run.books["units_ordered"]
                and run.books["most_by_one"] <= 1
                and run.books["rows"] == run.units
                for run in runs
            ),
        ),
        (
            f"**unsold while demanded: {unsold}** (units still free at the end of a stampede in which a buyer "
            "was refused `sold_out`)",
            unsold == 0,
        ),
        (
            "answers other than 201 and 409 `sold_out` (socket errors and timeouts included): "
            + (", ".join(f"{what} × {n}" for what, n in others.most_common()) if others else "none"),
            not others,
        ),
        (
            f"hot SKU: stock {hot_stock:,} = the sum of its movements ({hot_ledger:,}) = {STOCK:,} less what its "
            f"{sales} sales set aside ({set_aside:,}): the flash orders took nothing off the SKU itself",
            hot_stock == hot_ledger == STOCK - set_aside,
        ),
        (
            f"orders of the merchant: {orders:,} = {in_process} placed in process + 1 check + "
            f"{sum(placed):,} answered 201 in the stampedes",
            orders == in_process + 1 + sum(placed),
        ),
        (
            f"raw row: {STOCK - raw_left:,} taken, {raw_moves:,} `bench_raw` movements summing to {raw_sum:,}, "
            f"{raw_transactions:,} transactions reported by the raw client",
            STOCK - raw_left == raw_moves == -raw_sum == raw_transactions,
        ),
    ]


# --- the report -------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def flash_fast_most() -> int:
    """Placements one flash_fast statement carries at most."""
    from shop.offers.flash_fast import GATHER_MOST

    return GATHER_MOST


def _command() -> str:
    return command_line("bench-flash-sale", "bench/flash_sale.py")


def _statements(got: dict[str, Any]) -> str:
    """The mean, what goes around the statements, and each distinct sequence with its answers."""
    parts = []
    for sequence, answers in got["sequences"]:
        listed = "\n".join(f"    {n}. `{kind}`" for n, kind in enumerate(sequence, 1))
        ran = f"{len(sequence)} statement" + ("" if len(sequence) == 1 else "s")
        parts.append(f"  {answers} of the {got['answers']} answers ran {ran}:\n\n{listed}")
    redis = ", ".join(f"`{name}` {calls:g}" for name, calls in got["redis"].items()) or "none"
    return (
        f"**{got['statements']:g}** on average ({got['checkouts']:g} connection checkout, {got['commits']:g} "
        f"`COMMIT`, {got['rollbacks']:g} `ROLLBACK`, each after psycopg's `BEGIN` before its transaction's "
        f"first statement, none for a statement in autocommit; Redis "
        f"commands: {redis}; {got['ms']:.1f} ms per answer in process, {got['sql_ms']:.1f} ms of it inside "
        "`cursor.execute`).\n\n" + "\n\n".join(parts)
    )


def _profile(profile: dict[str, Any], what: str) -> str:
    groups = "\n".join(f"  | {label} | {share:.0%} |" for label, share in profile["groups"])
    top = "\n".join(
        f"  | {n} | `{where}` | {calls / PROFILE_REQUESTS:g} | {share:.1%} |"
        for n, (where, calls, share) in enumerate(profile["top"], 1)
    )
    return (
        f"{what} ({PROFILE_REQUESTS} one at a time in process, {profile['ms']:.1f} ms each with the profiler "
        "on), own time by package:\n\n  | package | share of own time |\n  |---|---:|\n"
        f"{groups}\n\n  and the {PROFILE_TOP} functions with the most own time:\n\n"
        f"  | # | function | calls per answer | share of own time |\n  |---:|---|---:|---:|\n{top}"
    )


def render(
    results: dict[str, Result],
    sql: dict[str, Any],
    checks: list[tuple[str, bool]],
    seeded: Seeded,
    stampede: Stampede,
    ceiling: dict[str, float],
    raw: RawPostgres,
    stores: str,
    versions: str,
    pg: dict[str, str],
) -> str:
    info = machine()
    runs = stampede.runs
    everything, rawr = results["flash"], results["raw"]
    placed, refused = outcome_result(runs, PLACED), outcome_result(runs, SOLD_OUT)
    rows = "\n".join(
        f"| {label} | {what} | {r.rps:,.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | "
        f"{r.requests:,} | {r.errors:,} |"
        for label, what, r in (
            (
                "flash placements (201)",
                "orders/s: the 201s over the time the units took to sell (first request to last 201)",
                placed,
            ),
            (
                "sold-out answers (409)",
                "answers/s over their span (first refused request to last refusal)",
                refused,
            ),
            ("all answers of the stampede", "requests/s from the first request to the last answer", everything),
            ("raw PostgreSQL, one row", "the guarded `UPDATE skus` + `INSERT stock_movements`, one transaction", rawr),
        )
    )
    ratios = [p / r.rps for p, r in zip((x.rps for x in placed.rounds), rawr.rounds, strict=True)]
    overall = placed.rps / rawr.rps
    median = statistics.median(ratios)
    oversold = sum(run.oversold for run in runs)
    unsold = sum(run.unsold_while_demanded for run in runs)
    goal_met = overall >= GOAL and oversold == 0 and unsold == 0
    per_round = []
    for n, (run, r) in enumerate(zip(runs, rawr.rounds, strict=True), 1):
        order = "stampede, raw" if n % 2 else "raw, stampede"
        alone = Result("", rounds=[run.round()])
        refusals = (
            Result("", rounds=[round_from_latencies(run.latencies(SOLD_OUT), 1, 0)]) if run.count(SOLD_OUT) else None
        )
        orders_s = run.count(PLACED) / run.sell_out
        soldout = f"{refusals.percentile(0.5):.1f} / {refusals.percentile(0.99):.1f}" if refusals else "—"
        per_round.append(
            f"  | {n} | {order} | {run.count(PLACED):,} | {run.sell_out:.2f} | {orders_s:,.0f} | "
            f"{alone.percentile(0.5):.1f} / {alone.percentile(0.99):.1f} | {run.count(SOLD_OUT):,} | {soldout} | "
            f"{r.rps:,.0f} | {orders_s / r.rps:.1%} | {run.oversold} | {run.unsold_while_demanded} |"
        )
    table = "\n".join(per_round)
    cpu = {group: statistics.fmean(run.cpu[group] for run in runs) for group in CPU_GROUPS}
    wall = statistics.fmean(run.seconds for run in runs)
    capacity = wall * int(info["nproc"])
    cpu_rows = "\n".join(
        f"  | {group} | {seconds:.2f} | {seconds / capacity:.0%} | {seconds / BUYERS * 1000:.2f} |"
        for group, seconds in cpu.items()
    )
    idle = max(0.0, capacity - sum(cpu.values()))
    client_us = statistics.fmean(run.client_cpu for run in runs) / BUYERS * 1e6
    verdicts = "\n".join(f"  - {'✓' if ok else '✗ FAILED'} {text}" for text, ok in checks)
    script = "\n".join(f"  {line}" for line in ["```sql", *raw.shown.rstrip().splitlines(), "```"])
    threads = SERVER_THREADS if SERVER_CLASS == "gthread" else 1
    if (SERVER_CLASS, WORKERS, threads) == ("gthread", 2, 16):
        why = (
            "one process per core, each with 16 threads, keeping the buyers' connections alive (as a "
            "mini-program's client does; `make run`'s sync workers close each one, see the design notes); "
            "the placements a worker's threads make at the same moment share one statement"
        )
    else:
        why = "chosen through BENCH_WORKER_CLASS / BENCH_WORKERS / BENCH_THREADS"
    warm = stampede.warmup[0] if stampede.warmup else None
    warmup = (
        f"A warm-up stampede ({warm.buyers:,} buyers for {warm.units:,} units, not in the figures) and "
        f"{WARMUP} s of raw warm-up, then "
        if warm
        else ""
    )
    body = json.dumps(BODY, ensure_ascii=False)
    headroom = (
        "it is not what limits the stampede"
        if ceiling["rps"] >= 3 * everything.rps
        else "**it may be what limits the stampede** (less than 3× its rate)"
    )
    notes = DESIGN_NOTES.strip() or "(not written yet: `DESIGN_NOTES` in bench/flash_sale.py)"
    return f"""{SECTION}

Command: {_command()}, run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

Design: see the flash-sale path notes below.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The load generator, gunicorn, PostgreSQL and Redis share these CPUs (and other jobs may run on the
  machine at the time: the CPU table below shows what they took, so compare the rows of this run with
  each other rather than with other runs).
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`
  (every commit waits for its WAL flush), `shared_buffers={pg["shared_buffers"]}`.
- Data, created for the run through the services: a merchant (`{seeded.merchant_code}`) with one hot SKU
  on the shelf at {PRICE} fen with {STOCK:,} in stock, and one more SKU, a row of the same table, for the
  raw measurement; {BUYERS:,} members (rows copied in, member tokens signed with the benchmark's key).
  Every round a new flash sale on the hot SKU (`shop.offers.service.create_offer`, running, flash
  price {FLASH_PRICE} fen, **quota {UNITS:,}** units set aside from the SKU, per-member limit 1, payment
  within {PAYMENT_MINUTES} minutes); the same {BUYERS:,} members buy in every round (a limit is per sale).
- Server: `gunicorn wsgi:app` {gunicorn_description()}, `QUEUE_NAME={QUEUE}`: {why}. At most
  {WORKERS} statements placing orders are in the database at once (one per worker, carrying up to
  {flash_fast_most()} placements), whatever the client's concurrency.
- Load: **{BUYERS:,} buyers for {UNITS:,} units**, each buyer one request `POST /api/v1/flash-sales/{{id}}/orders`
  with their member token, a new `Idempotency-Key` and the body `{body}`, sent by a Python asyncio
  HTTP/1.1 client (in bench/flash_sale.py) over {CONCURRENCY} concurrent connections, each taking the next
  buyer not yet sent until every buyer has had an answer (a connection the server closes is opened
  again for the next buyer, its connect in that buyer's latency). wrk is not used: it runs for a
  duration, and its `response` callback cannot tell which request it answers, so it can neither stop
  when each buyer has gone once nor time the sold-out answers apart. **The client alone** (the same
  {BUYERS:,} requests against a stub server in another process that answers `sold_out` at once) drives
  {ceiling["rps"]:,.0f} requests/s with {ceiling["cpu_us"]:.0f} µs of CPU per request,
  {ceiling["rps"] / everything.rps:.0f}× the stampede's rate: {headroom}, but it takes its share
  of the CPUs ({client_us:.0f} µs per request during the stampedes, see the CPU table).
  {warmup}{ROUNDS} rounds of one stampede and
  {ROUND_SECONDS} s of raw PostgreSQL (order reversed every round).
- Raw PostgreSQL: {raw.description}, on the same database, at the same {CONCURRENCY} connections, in the
  same rounds (bench/orders.py's):

{script}

| measurement | what | per second | p50 ms | p99 ms | requests | errors |
|---|---|---:|---:|---:|---:|---:|
{rows}

Errors: for the stampede, any answer but 201 and 409 `sold_out`, a socket error or a timeout ({TIMEOUT:g} s);
for the raw client, a failed or aborted transaction (its figures are transactions/s). The raw
transactions on their row take turns: each holds the row lock through its commit's WAL flush. A flash
placement takes its unit with `FOR UPDATE SKIP LOCKED` among the sale's unit rows, so placements in
flight do not queue on one row.

- **Flash orders/s / raw PostgreSQL: {overall:.1%}** over all rounds ({placed.rps:,.0f} orders/s against
  {rawr.rps:,.0f} transactions/s), median of the rounds {median:.1%}. Goal: at least {GOAL:.1f}× the raw rate
  with 0 oversold and 0 unsold while demanded: **{_met(goal_met)}** (oversold {oversold}, unsold while
  demanded {unsold}).
- **Sold-out answers**: {refused.rps:,.0f}/s, p50 {refused.percentile(0.5):.1f} ms, p99
  {refused.percentile(0.99):.1f} ms ({refused.requests:,} answers), against the placements' p50
  {placed.percentile(0.5):.1f} ms, p99 {placed.percentile(0.99):.1f} ms; a refusal costs
  {sql[SOLD_OUT]["ms"]:.1f} ms in process against {sql[PLACED]["ms"]:.1f} ms for a placement.
- Round by round (latencies: p50 / p99 ms):

{ROUND_TABLE_HEAD}
{table}

- CPU during a stampede (mean of the rounds, {wall:.2f} s each from the first request to the last answer;
  from /proc, user + system), of the {info["nproc"]} CPUs' {capacity:.2f} CPU-seconds:

  | process | CPU s | share of the CPUs | CPU ms per buyer |
  |---|---:|---:|---:|
{cpu_rows}
  | idle (or waiting) | {idle:.2f} | {idle / capacity:.0%} | |

- **SQL statements per flash placement (201)** (in process, Flask test client on the same database, each
  answer a new buyer of a running sale): {_statements(sql[PLACED])}

  **Per `sold_out` refusal** (a sale whose only unit is taken, one refusal after another, each a new
  buyer): {_statements(sql[SOLD_OUT])}

{_profile(sql[PLACED]["profile"], "- Profile of flash placements")}

{_profile(sql[SOLD_OUT]["profile"], "- Profile of `sold_out` refusals")}
- Checks after the run (every stampede's answers were all in before its books were read):
{verdicts}

**Flash-sale path notes.** {notes}
"""


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    os.chdir(common.ROOT)
    common.WORKER_CLASS, common.THREADS = SERVER_CLASS, SERVER_THREADS  # this benchmark's server (above)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    print(f"gunicorn: {gunicorn_description()}", flush=True)
    server: Server | None = None
    raw: RawPostgres | None = None
    try:
        database_url, redis_url, stores = prepare_run_stores(DATABASE)
        seeded, versions = migrate_and_seed(database_url, redis_url, seed)
        pg = server_settings(database_url)
        began = time.perf_counter()
        tokens = mint_buyers(database_url, redis_url, seeded)
        print(f"{BUYERS:,} members and their tokens in {time.perf_counter() - began:.1f} s", flush=True)
        ceiling = client_ceiling(tokens)
        print(
            f"the load generator alone: {ceiling['rps']:,.0f} requests/s against a stub server, "
            f"{ceiling['cpu_us']:.0f} µs of CPU per request",
            flush=True,
        )
        app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
        sql = count_answers(app, seeded, tokens)
        for key, label in OUTCOMES.items():
            print(f"statements per answer, {label}: {sql[key]['statements']:g} ({sql[key]['ms']:.1f} ms)", flush=True)
            for sequence, answers in sql[key]["sequences"]:
                print(f"  {answers} answers ran:", flush=True)
                for kind in sequence:
                    print(f"    {kind}", flush=True)

        server = Server(database_url, redis_url, 300, QUEUE_NAME=QUEUE, SECRET_KEY=common.BENCH_SECRET_KEY)
        server.wait_ready()
        check = create_sale(app, seeded, 1, "check")
        key = {"Idempotency-Key": common.run_tag("check")}
        status, body = request("POST", server.port, orders_path(check), BODY, tokens[0], key)
        if status != 201:
            raise SystemExit(f"a flash placement answered {status}: {body[:300]!r}")
        raw = RawPostgres(database_url, {"sku": seeded.raw, "merchant": seeded.merchant_id})
        print(f"raw PostgreSQL: {raw.description}", flush=True)
        stampede = Stampede(app, server.port, server.proc.pid, database_url, seeded, tokens)
        loads = [Load("flash", "flash stampede", stampede.run), Load("raw", "raw PostgreSQL", raw.run)]
        results = measure(loads, fail_on_errors=False)
        server.stop()

        checks = verify(database_url, seeded, stampede, sql["placed_in_process"], raw.transactions)
        text = render(results, sql, checks, seeded, stampede, ceiling, raw, stores, versions, pg)
        print()
        placed, refused = outcome_result(stampede.runs, PLACED), outcome_result(stampede.runs, SOLD_OUT)
        rawr = results["raw"]
        for r in (placed, refused, results["flash"], rawr):
            print(
                f"{r.name:<32} {r.rps:9.1f} /s  p50 {r.percentile(0.5):7.2f} ms  p99 {r.percentile(0.99):7.2f} ms"
                f"  ({r.requests:,}, errors {r.errors})"
            )
        ratios = [p.rps / r.rps for p, r in zip(placed.rounds, rawr.rounds, strict=True)]
        print(
            f"flash orders/s / raw tx/s: {placed.rps / rawr.rps:.1%} overall, median of the rounds "
            f"{statistics.median(ratios):.1%} (goal {GOAL:.1f}x)"
        )
        print("by round: " + ", ".join(f"{x:.0%}" for x in ratios))
        return publish(text, SECTION, results, checks)
    finally:
        if server is not None:
            server.stop()
        if raw is not None:
            raw.close()
        embedded.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
