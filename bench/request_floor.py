"""Benchmark: the floor of a request on this machine, layer by layer up to a flash sale's sold-out
answer and its placement, beside the raw PostgreSQL rate the flash-sale goal is measured against (issue 16: flash
orders/s at least 1.0x pgbench's guarded single-row UPDATE + INSERT at the same concurrency).

`make bench-request-floor` (or `.venv/bin/python bench/request_floor.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set (the database is created when missing), otherwise the
   embedded PostgreSQL and Redis under .data/bench, with a database of its own (groupshop_floor)
   created empty for the run; migrates it and, through the services, makes bench/flash_sale.py's
   merchant (a hot SKU and the raw SKU), 2,000 members with tokens, a flash sale of one unit
   that one of them buys in process (the sale then answers 409 `sold_out`), and one of 100,000
   units with a limit of 99 per member (it places an order for every request of the run);
2. starts two gunicorn servers (as `make run`: `--workers 2 --worker-class sync`): Flask alone
   (bench/floor_app.py `bare`), and the real API with probe routes (bench/floor_app.py `app`);
3. runs ROUNDS rounds, the order reversed every round, of: a POST of the flash placement's body
   to Flask alone; to the API behind a member's token; plus the placement's body schema; plus
   one Redis round trip, or instead one PostgreSQL statement (an INSERT in autocommit); the real
   flash placement endpoint of the sold-out sale (409 `sold_out`: the token, the schema, the
   gate's MGET, the Idempotency-Key looked up in PostgreSQL in one round trip) and of a sale with units for every
   round (201: flash_place() places the order); and pgbench's raw script (bench/orders.py's) on
   the raw SKU. wrk sends every POST with a new Idempotency-Key and one of the members' tokens,
   at CONCURRENCY connections;
4. writes the "Request floor" section of BENCHMARKS.md.

With sync workers a request holds its worker for its whole time, its waits on Redis and
PostgreSQL included: the rows say how much of the raw rate is left once each layer is paid for.
Knobs: those of bench/common.py (BENCH_DURATION, BENCH_ROUNDS, BENCH_WARMUP, BENCH_WORKERS,
BENCH_WORKER_CLASS, BENCH_THREADS), BENCH_RAW as in bench/orders.py, BENCH_NO_WRITE=1.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import campaigns
import common
import flash_sale
from common import (
    CONCURRENCY,
    Load,
    LoadGenerator,
    Result,
    Server,
    Target,
    command_line,
    gunicorn_description,
    machine,
    make_app,
    measure,
    migrate_and_seed,
    prepare_run_stores,
    publish,
    rounds_description,
)
from orders import RawPostgres, server_settings
from sqlalchemy import text

SECTION = "## Request floor (bench/request_floor.py)"
DATABASE = "groupshop_floor"
QUEUE = "groupshop-bench-floor"
MEMBERS = 2_000
BODY = json.dumps(flash_sale.BODY, ensure_ascii=False)
PROBES = "/api/v1/bench-floor"
# What bench/floor_app.py's `pg` probe writes to.
PROBE_TABLE = text(
    "CREATE TABLE IF NOT EXISTS bench_floor_rows"
    " (id bigserial PRIMARY KEY, member_id bigint NOT NULL, quantity int NOT NULL, created_at timestamptz NOT NULL)"
)
# (key, label, which server, path, expected status)
LAYERS = (
    ("bare", "Flask alone: read the JSON body, answer 201", "bare", "/bare", 201),
    ("auth", "the API: + its hooks and the member's token", "app", f"{PROBES}/auth", 201),
    ("schema", "+ the placement's body schema (flask-smorest)", "app", f"{PROBES}/schema", 201),
    ("redis", "+ one Redis round trip (a Lua call)", "app", f"{PROBES}/redis", 201),
    ("pg", "+ one PostgreSQL statement (an INSERT, autocommit, asynchronous commit)", "app", f"{PROBES}/pg", 201),
    ("sold_out", "the flash placement endpoint, sold out (409)", "app", None, 409),
    ("placed", "the flash placement endpoint, placing orders (201)", "app", None, 201),
)


def sold_out_sale(database_url: str, redis_url: str, seeded: flash_sale.Seeded, tokens: list[str]) -> int:
    """A running flash sale whose one unit the first member bought: it answers `sold_out`."""
    app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
    sale = flash_sale.create_sale(app, seeded, 1, "floor: sold out")
    headers = {"Authorization": f"Bearer {tokens[0]}", "Idempotency-Key": common.run_tag("floor")}
    bought = app.test_client().post(flash_sale.orders_path(sale), json=flash_sale.BODY, headers=headers)
    if bought.status_code != 201:
        raise SystemExit(f"the sale's unit was not bought: {bought.status_code} {bought.get_data(as_text=True)[:200]}")
    return sale


def render(
    results: dict[str, Result], paths: dict[str, str], loadgen: str, stores: str, versions: str, pg: dict[str, str]
) -> str:
    info = machine()
    raw = results["raw"]
    rows = []
    for key, label, _, _, expect in LAYERS:
        r = results[key]
        share = r.rps / raw.rps
        rows.append(
            f"| {label} | `POST {paths[key]}` → {expect} | {r.rps:,.0f} | {r.percentile(0.5):.1f} | "
            f"{r.percentile(0.99):.1f} | {share:.0%} |"
        )
    rows.append(
        f"| raw PostgreSQL: the guarded `UPDATE skus` + `INSERT stock_movements` | pgbench | {raw.rps:,.0f} | "
        f"{raw.percentile(0.5):.1f} | {raw.percentile(0.99):.1f} | 100% |"
    )
    by_round = "\n".join(
        f"  | {number} | "
        + " | ".join(f"{results[key].rounds[number - 1].rps:,.0f}" for key, *_ in LAYERS)
        + f" | {raw.rounds[number - 1].rps:,.0f} |"
        for number in range(1, len(raw.rounds) + 1)
    )
    head = " | ".join(key for key, *_ in LAYERS)
    per_layer = {key: 1000 * common.WORKERS / results[key].rps for key, *_ in LAYERS}
    budget = 1000 * common.WORKERS / raw.rps
    return f"""{SECTION}

Command: {command_line("bench-request-floor", "bench/request_floor.py")}, run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

What a flash placement has to pay before it does any work of its own, layer by layer, and what
the placement itself costs (a sale of 100,000 units, limit 99, bought by the same members round
after round), against the rate issue 16's goal is measured by (flash orders/s at least 1.0x the
raw rate).

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  wrk, gunicorn, PostgreSQL and Redis share these CPUs (other jobs may run on the machine too:
  compare the rows of this run with each other, not with other runs).
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`
  (every raw commit waits for its WAL flush), `shared_buffers={pg["shared_buffers"]}`.
- Servers: two `gunicorn` {gunicorn_description()}: Flask alone (bench/floor_app.py `bare`) and
  the real API with four probe routes (bench/floor_app.py `app`; benchmark only, never deployed).
- Load: {loadgen}; {CONCURRENCY} connections, each POST the flash placement's body
  (`{BODY}`) with a new Idempotency-Key and one of {MEMBERS:,} members' tokens; sync workers
  answer `Connection: close`, so wrk reconnects; {rounds_description()}.
- Raw PostgreSQL: {results["raw"].name}.

| layer | request | per second | p50 ms | p99 ms | of raw |
|---|---|---:|---:|---:|---:|
{chr(10).join(rows)}

- A sync worker holds its request from accept to close, its waits included: with
  {common.WORKERS} workers, the raw rate leaves **{budget:.2f} ms** of a worker per order. The
  layers take {", ".join(f"{key} {ms:.2f} ms" for key, ms in per_layer.items())}. So the schema and
  one autocommit statement already take {per_layer["pg"] / budget:.0%} of the budget, the sold-out
  answer (the gate's MGET, then the key looked up by one statement in autocommit: one round
  trip to PostgreSQL) {per_layer["sold_out"] / budget:.0%}, and a placement (flash_place(): one round
  trip writing the key, the order, its line, the member's count and the unit; then the order
  serialized) {per_layer["placed"] / budget:.0%}.
- Round by round (requests/s; the order reversed every round):

  | round | {head} | raw |
  | ---: | {" | ".join("---:" for _ in LAYERS)} | ---: |
{by_round}
"""


def main() -> int:
    os.chdir(common.ROOT)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    loadgen = LoadGenerator()
    print(f"load generator: {loadgen.description}", flush=True)
    servers: list[Server] = []
    raw: RawPostgres | None = None
    try:
        database_url, redis_url, stores = prepare_run_stores(DATABASE)
        seeded, versions = migrate_and_seed(database_url, redis_url, flash_sale.seed)
        pg = server_settings(database_url)
        tokens = campaigns.mint_members(database_url, redis_url, seeded.merchant_id, MEMBERS, prefix="bench-floor")
        sale = sold_out_sale(database_url, redis_url, seeded, tokens)
        env = {"QUEUE_NAME": QUEUE, "SECRET_KEY": common.BENCH_SECRET_KEY}
        bare = Server(database_url, redis_url, 300, app="floor_app:bare", **env)
        servers.append(bare)
        api = Server(database_url, redis_url, 300, app="floor_app:app", **env)
        servers.append(api)
        for server in servers:
            server.wait_ready()
        ports = {"bare": bare.port, "app": api.port}
        app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
        with app.app_context():
            from shop.core.db import db

            db.session.execute(PROBE_TABLE)
            db.session.commit()
        # Enough units and a limit high enough for every round's orders by the members' tokens.
        big = flash_sale.create_sale(app, seeded, 100_000, "floor: placing", per_member_limit=99)
        sales = {"sold_out": sale, "placed": big}
        paths = {key: path or flash_sale.orders_path(sales[key]) for key, _, _, path, _ in LAYERS}
        targets = [
            Target(
                key,
                label,
                ports[where],
                paths[key],
                "",
                method="POST",
                body=BODY,
                unique_key=True,
                expect=expect,
                tokens=tuple(tokens),
            )
            for key, label, where, _, expect in LAYERS
        ]
        raw = RawPostgres(database_url, {"sku": seeded.raw, "merchant": seeded.merchant_id})
        loads = [loadgen.load(target) for target in targets] + [Load("raw", raw.description, raw.run)]
        results = measure(loads)
        text = render(results, paths, loadgen.description, stores, versions, pg)
        print()
        for key, *_ in LAYERS:
            r = results[key]
            print(f"{r.name:<48} {r.rps:8.0f}/s  {r.rps / results['raw'].rps:6.0%} of raw")
        print(f"{'raw PostgreSQL':<48} {results['raw'].rps:8.0f}/s")
        return publish(text, SECTION, results, [])
    finally:
        for server in servers:
            server.stop()
        if raw is not None:
            raw.close()
        loadgen.close()
        embedded.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
