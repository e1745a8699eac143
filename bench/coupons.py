"""Benchmark: a claim stampede on one coupon template, beside the raw PostgreSQL rate of its guarded
count; and the quote of a 20-line cart with a 30-coupon wallet, beside the same quote with none.

`make bench-coupons` (or `.venv/bin/python bench/coupons.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set, otherwise the embedded PostgreSQL and Redis under
   .data/bench, with a database of its own (groupshop_coupons) created empty for the run; migrates
   it and creates, through the services, a merchant with 20 SKUs on the shelf, a template in the
   claim centre for the stampede (10,000,000 of it, no per-member limit that the run could reach),
   a second one for the raw measurement, CLAIMERS members, and two more members: one holding 30
   coupons of 30 templates (amounts off with thresholds met and missed, stackable percents,
   free shipping, product-scoped ones: `best_combination` has every kind of work to do) and one
   holding none;
2. counts, in process (Flask test client on the same database), the SQL statements of one quote
   with the full wallet and one with the empty wallet: the coupons adjuster reads the wallet in
   one statement, so the two must be equal;
3. starts gunicorn (as bench/orders.py) and loads it at 32 concurrent connections, interleaved in
   rounds with the raw client: (a) `POST /api/v1/coupon-centre/{id}/claim`, each request as one
   of the CLAIMERS members picked at random (expect 201); (b) the 20-line quote as the member with
   30 coupons, (c) as the member with none (expect 200); (d) pgbench (or a Python psycopg client,
   bench/orders.py's RawPostgres) running the claim's guarded `UPDATE coupon_templates SET issued
   = issued + 1 WHERE ... issued < total_quantity` and the `INSERT INTO coupons` in one
   transaction, on the raw template's row;
4. stops the server and checks the books: the stampede template's `issued` equals its coupons and
   the 201s answered (plus those still in flight when a run's clock stopped), never above its
   quantity; the raw template's `issued` equals its coupons and the raw client's transactions;
5. writes the "Coupons" section of BENCHMARKS.md (unless a request failed or a check did not hold).

Knobs: those of bench/common.py and BENCH_RAW as in bench/orders.py; BENCH_NO_WRITE=1 prints only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from typing import Any

import common
from common import (
    CONCURRENCY,
    WORKERS,
    Load,
    LoadGenerator,
    Result,
    Server,
    SqlCounter,
    Target,
    bench_merchant,
    gunicorn_description,
    machine,
    make_app,
    measure,
    migrate_and_seed,
    prepare_stores,
    publish,
    request,
    rounds_description,
)
from orders import RawPostgres, libpq_url, server_settings

SECTION = "## Coupons (bench/coupons.py)"
DATABASE = "groupshop_coupons"
QUEUE = "groupshop-bench-coupons"
QUOTE_PATH = "/api/v1/checkout/quote"
CLAIMERS = 200
LINES = 20
WALLET = 30
QUANTITY = 10_000_000
SQL_SAMPLE_REQUESTS = 20
GOAL_CLAIM = 0.25
GOAL_QUOTE = 0.5
RAW_SCRIPT = """\
BEGIN;
UPDATE coupon_templates SET issued = issued + 1 WHERE id = :template AND issued < total_quantity RETURNING issued \\gset
INSERT INTO coupons (merchant_id, template_id, member_id, status, valid_from, valid_until, channel, claimed_at)
  VALUES (:merchant, :template, :member, 'available', now(), now() + interval '7 days', 'centre', now());
COMMIT;
"""
RAW_UPDATE = (
    "UPDATE coupon_templates SET issued = issued + 1 WHERE id = %(template)s AND issued < total_quantity "
    "RETURNING issued"
)
RAW_INSERT = (
    "INSERT INTO coupons (merchant_id, template_id, member_id, status, valid_from, valid_until, channel, claimed_at) "
    "VALUES (%(merchant)s, %(template)s, %(member)s, 'available', now(), now() + interval '7 days', 'centre', now())"
)


Tokens = dict[str, str]  # member name -> a bearer token the server accepts


@dataclass(frozen=True)
class Seeded:
    merchant_id: int
    merchant_code: str
    skus: tuple[int, ...]
    products: tuple[int, ...]
    stampede: int
    raw: int
    raw_member: int


def quote_body(seeded: Seeded) -> dict[str, Any]:
    return {"items": [{"sku_id": sku, "quantity": 1} for sku in seeded.skus], "fulfilment": "delivery"}


def _wallet_templates(products: tuple[int, ...]) -> list[dict[str, Any]]:
    """30 templates a member could hold at once: what a busy shop's wallet looks like."""
    made: list[dict[str, Any]] = []
    for n in range(10):  # 满减, half of them out of reach of a 20-line cart of ~30,000 fen
        made.append({"kind": "amount_off", "threshold": 10_000 * (n + 1), "amount": 500 + 100 * n})
    for n in range(10):  # stackable percents with caps
        made.append({"kind": "percent_off", "rate_bp": 300 + 50 * n, "cap": 1000 + 100 * n, "stackable": True})
    for n in range(5):  # free shipping over a threshold
        made.append({"kind": "free_shipping", "threshold": 5_000 * n})
    for n in range(5):  # on a few products only
        made.append({"kind": "amount_off", "amount": 300, "scope": "products", "scope_ids": [products[n]]})
    return made


def seed() -> tuple[Seeded, list[int]]:
    from coupons import service as coupons
    from shop.catalog import service as catalog
    from shop.core.db import transaction

    code = f"bench-coupons-{dt.datetime.now(dt.UTC):%y%m%d%H%M%S}"
    with transaction():
        merchant = bench_merchant(code, "Bench coupons", "wxbenchcoupons001")
        skus: list[int] = []
        products: list[int] = []
        for number in range(LINES // 5):
            made = catalog.create_product(
                merchant.id,
                staff_id=None,
                title=f"Bench product {number + 1}",
                skus=[{"specs": {"款式": f"{n + 1}"}, "price": 990 + 200 * n, "stock": 1_000_000} for n in range(5)],
                images=["https://img.example.com/bench.jpg"],
            )
            catalog.set_shelf(merchant.id, made.id, on_shelf=True)
            skus += [sku.id for sku in made.skus]
            products.append(made.id)
        common_terms = {"valid_days": 30, "total_quantity": QUANTITY, "per_member_limit": QUANTITY}
        stampede = coupons.create_template(
            merchant.id, name="抢券", kind="amount_off", amount=100, channels=["centre"], **common_terms
        )
        raw = coupons.create_template(merchant.id, name="raw", kind="amount_off", amount=100, **common_terms)
        wallet = [
            coupons.create_template(merchant.id, name=f"券{n + 1}", **{**common_terms, **terms})
            for n, terms in enumerate(_wallet_templates(tuple(products * 2)))
        ]
    return Seeded(merchant.id, code, tuple(skus), tuple(products), stampede.id, raw.id, 0), [t.id for t in wallet]


def _seed_members(database_url: str, redis_url: str, seeded: Seeded, wallet: list[int]) -> tuple[Seeded, Tokens]:
    """The members (logged in through the service, as the API does; CLAIMERS logins over HTTP would
    meet the per-address login limit) with tokens signed by the benchmark's key, and the rich
    member's 30 coupons."""
    from flask import current_app

    from api.auth import MEMBER, issue_token
    from coupons import service as coupons
    from shop.core.db import db, transaction
    from shop.identity.members import login_with_wx_code

    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    names = ["rich", "poor", "raw", *(f"claimer{n}" for n in range(CLAIMERS))]
    with app.app_context():
        wechat = current_app.extensions["groupshop.wechat"]
        for name in names:  # the login commits itself (it calls WeChat outside any transaction)
            ids[name] = login_with_wx_code(seeded.merchant_code, f"test:{name}", wechat).member.id
        with app.test_request_context():
            for name in names:
                tokens[name] = issue_token(
                    kind=MEMBER, subject_id=ids[name], merchant_id=seeded.merchant_id, role=MEMBER
                )[0]
        with transaction():
            for template_id in wallet:
                coupons.issue(
                    seeded.merchant_id, ids["rich"], template_id, channel="grant", source_ref=f"bench:{template_id}"
                )
        db.session.remove()
        db.engine.dispose()
    return Seeded(**{**seeded.__dict__, "raw_member": ids["raw"]}), tokens


def count_quotes(database_url: str, redis_url: str, seeded: Seeded, tokens: Tokens) -> dict[str, Any]:
    """Statements per quote, in process, with the full wallet and with none."""
    from shop.core.db import db

    app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    counts: dict[str, Any] = {}
    for name in ("rich", "poor"):
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        first = client.post(QUOTE_PATH, json=quote_body(seeded), headers=headers)
        assert first.status_code == 200, first.get_data(as_text=True)
        with SqlCounter().counting(engine) as counted:
            for _ in range(SQL_SAMPLE_REQUESTS):
                assert client.post(QUOTE_PATH, json=quote_body(seeded), headers=headers).status_code == 200
        counts[name] = {
            "statements": len(counted.statements) / SQL_SAMPLE_REQUESTS,
            "options": len(first.json["options"]["coupons"]),
            "applicable": sum(o["applicable"] for o in first.json["options"]["coupons"]),
            "used": [a["description"] for a in first.json["adjustments"]],
            "discount": first.json["discount_total"],
            "goods": first.json["goods_total"],
        }
    engine.dispose()
    return counts


def verify(
    database_url: str, seeded: Seeded, answered: int, runs: int, raw_transactions: int
) -> list[tuple[str, bool]]:
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:

        def counts(template_id: int) -> tuple[int, int, int]:
            issued, total = conn.execute(
                "SELECT issued, total_quantity FROM coupon_templates WHERE id = %s", (template_id,)
            ).fetchone()
            held = conn.execute("SELECT count(*) FROM coupons WHERE template_id = %s", (template_id,)).fetchone()[0]
            return issued, total, held

        issued, total, held = counts(seeded.stampede)
        raw_issued, _, raw_held = counts(seeded.raw)
    late = issued - answered
    return [
        (
            f"stampede template: issued {issued:,} = coupons {held:,}, at most its quantity {total:,}",
            issued == held <= total,
        ),
        (
            f"claims answered 201: {answered:,}; issued {issued:,}: {late:,} finished after a run's clock stopped "
            f"(at most {CONCURRENCY} per run, {runs} runs)",
            0 <= late <= CONCURRENCY * runs,
        ),
        (
            f"raw template: issued {raw_issued:,} = coupons {raw_held:,} = {raw_transactions:,} transactions "
            "reported by the raw client",
            raw_issued == raw_held == raw_transactions,
        ),
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def render(
    results: dict[str, Result],
    sql: dict[str, Any],
    checks: list[tuple[str, bool]],
    loadgen: LoadGenerator,
    raw: RawPostgres,
    stores: str,
    versions: str,
    pg: dict[str, str],
) -> str:
    info = machine()
    claim, rich, poor, rawr = results["claim"], results["rich"], results["poor"], results["raw"]
    rows = "\n".join(
        f"| {r.name} | {what} | {r.rps:,.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | "
        f"{r.requests:,} | {r.errors:,} |"
        for r, what in (
            (claim, f"`POST /api/v1/coupon-centre/{{id}}/claim` as one of {CLAIMERS} members at random"),
            (rawr, "the guarded `UPDATE coupon_templates` + `INSERT coupons`, one transaction"),
            (rich, f"`POST {QUOTE_PATH}`, {LINES} lines, a wallet of {WALLET} coupons"),
            (poor, f"`POST {QUOTE_PATH}`, the same {LINES} lines, an empty wallet"),
        )
    )
    claim_ratio, quote_ratio = claim.rps / rawr.rps, rich.rps / poor.rps
    by_round = ", ".join(f"{c.rps / r.rps:.0%}" for c, r in zip(claim.rounds, rawr.rounds, strict=True))
    quote_rounds = ", ".join(f"{a.rps / b.rps:.0%}" for a, b in zip(rich.rounds, poor.rounds, strict=True))
    same = sql["rich"]["statements"] == sql["poor"]["statements"]
    verdicts = "\n".join(f"  - {'✓' if ok else '✗ FAILED'} {text}" for text, ok in checks)
    script = "\n".join(f"  {line}" for line in ["```sql", *raw.shown.rstrip().splitlines(), "```"])
    used = ", ".join(sql["rich"]["used"]) or "none"
    return f"""{SECTION}

Command: `make bench-coupons` (`.venv/bin/python bench/coupons.py`, no options), run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The load generator, gunicorn, PostgreSQL and Redis share these CPUs; compare the rows of this run
  with each other.
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`.
- Server: `gunicorn wsgi:app` {gunicorn_description()} ({WORKERS} workers), `QUEUE_NAME={QUEUE}`.
- Load: {loadgen.description}; {CONCURRENCY} concurrent connections. {rounds_description()}; the raw
  client takes its turn in the same rounds.
- Data: a merchant with {LINES} SKUs on the shelf; the stampede's template (amount off, in the claim
  centre, {QUANTITY:,} of it, so no claim is refused during the run); {CLAIMERS} claiming members; a member
  holding {WALLET} coupons of {WALLET} templates (10 amounts off with thresholds from 100 to 1,000 yuan, 10
  stackable percents with caps, 5 free-shipping ones, 5 scoped to one product) and a member holding none.
- Raw PostgreSQL: {raw.description}, on the same database, on a template row of its own:

{script}

| measurement | what | requests/s | p50 ms | p99 ms | requests | errors |
|---|---|---:|---:|---:|---:|---:|
{rows}

- **Claims / raw PostgreSQL: {claim_ratio:.1%}** (goal at least {GOAL_CLAIM:.0%}: {_met(claim_ratio >= GOAL_CLAIM)}).
  Round by round: {by_round}.
- **Quote with {WALLET} coupons / with none: {quote_ratio:.1%}** (goal at least {GOAL_QUOTE:.0%}:
  {_met(quote_ratio >= GOAL_QUOTE)}). Round by round: {quote_rounds}. With the full wallet the quote lists
  {sql["rich"]["options"]} coupons, {sql["rich"]["applicable"]} of them applicable, and uses {used}:
  {sql["rich"]["discount"]:,} fen off {sql["rich"]["goods"]:,}.
- **SQL statements per quote: {sql["rich"]["statements"]:g} with {WALLET} coupons, {sql["poor"]["statements"]:g} with
  none** (in process, mean of {SQL_SAMPLE_REQUESTS} quotes each): {
        "the same: the wallet is one statement" if same else "NOT the same"
    }.
- Checks after the run (server stopped first):
{verdicts}
"""


def main() -> int:
    os.chdir(common.ROOT)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    loadgen = LoadGenerator()
    print(f"load generator: {loadgen.description}", flush=True)
    server: Server | None = None
    raw: RawPostgres | None = None
    try:
        database_url, redis_url, stores = prepare_stores(DATABASE, fresh=True)
        (seeded, wallet), versions = migrate_and_seed(database_url, redis_url, seed)
        seeded, tokens = _seed_members(database_url, redis_url, seeded, wallet)
        pg = server_settings(database_url)
        sql = count_quotes(database_url, redis_url, seeded, tokens)
        print(f"statements per quote: {sql['rich']['statements']:g} (30 coupons), {sql['poor']['statements']:g} (none)")

        server = Server(database_url, redis_url, 300, QUEUE_NAME=QUEUE, SECRET_KEY=common.BENCH_SECRET_KEY)
        server.wait_ready()
        claimers = tuple(tokens[f"claimer{n}"] for n in range(CLAIMERS))
        rich, poor = tokens["rich"], tokens["poor"]
        claim_path = f"/api/v1/coupon-centre/{seeded.stampede}/claim"
        status, body = request("POST", server.port, claim_path, None, claimers[0])
        if status != 201:
            raise SystemExit(f"a claim answered {status}: {body[:300]!r}")
        raw = RawPostgres(
            database_url,
            {"template": seeded.raw, "merchant": seeded.merchant_id, "member": seeded.raw_member},
            script=RAW_SCRIPT,
            update=RAW_UPDATE,
            insert=RAW_INSERT,
        )
        quote = json.dumps(quote_body(seeded))
        targets = [
            Target("claim", "claim stampede", server.port, claim_path, "", "POST", expect=201, tokens=claimers),
            Target("rich", "quote, 30 coupons", server.port, QUOTE_PATH, rich, "POST", quote),
            Target("poor", "quote, no coupon", server.port, QUOTE_PATH, poor, "POST", quote),
        ]
        loads = [loadgen.load(t) for t in targets] + [Load("raw", "raw PostgreSQL", raw.run)]
        results = measure(loads, fail_on_errors=False)
        server.stop()

        runs = [*results["claim"].warmup, *results["claim"].rounds]
        answered = 1 + sum(r.requests - r.errors for r in runs)
        checks = verify(database_url, seeded, answered, len(runs), raw.transactions)
        text = render(results, sql, checks, loadgen, raw, stores, versions, pg)
        print()
        for r in results.values():
            print(f"{r.name:<20} {r.rps:9.1f} req/s  p50 {r.percentile(0.5):7.2f} ms  p99 {r.percentile(0.99):7.2f} ms")
        print(f"claims / raw: {results['claim'].rps / results['raw'].rps:.1%}")
        print(f"quote 30 coupons / none: {results['rich'].rps / results['poor'].rps:.1%}")
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
