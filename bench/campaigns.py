"""Benchmark: a lottery draw stampede over HTTP, the first prize selling out mid-run, beside the raw
PostgreSQL rate of the draw's guarded tier count.

`make bench-campaigns` (or `.venv/bin/python bench/campaigns.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set (the database is created when missing), otherwise the
   embedded PostgreSQL and Redis under .data/bench, with a database of its own
   (groupshop_campaigns) created empty for the run; migrates it and creates, through the
   services, a merchant with a running campaign of the `once` rule (one draw per member, its
   entry made at the draw) and three gift tiers: first prize (10% odds, a quota, see below),
   second prize (20%, a quota the run never reaches) and a guaranteed third prize without a
   quota (70%, and every draw that falls on a tier that ran out); a second merchant with a
   campaign of one tier for the raw measurement; and MEMBERS members (rows copied in, tokens
   signed with the benchmark's key), so that every draw of the run is a new member's only one;
2. counts, in process (Flask test client on the same database), the SQL statements of a draw by
   its outcome (first prize won, second, third, first prize rolled after it ran out: falls back
   to the third), on a probe campaign of the same tiers whose rolls are chosen (the tests'
   `rig`); then profiles PROFILE_REQUESTS draws with real rolls on another probe campaign
   (bench/orders.py's cProfile summary);
3. starts gunicorn (as bench/orders.py) and loads it at 32 concurrent connections with
   `POST /api/v1/campaigns/{id}/draws`, each request as the next member who has not drawn (the
   members are handed out in blocks, one per load thread, and a thread never reuses one) with a
   new Idempotency-Key; interleaved in rounds with pgbench (or a Python psycopg client,
   bench/orders.py's RawPostgres) at 32 connections running the guarded `UPDATE campaign_tiers
   SET taken = taken + 1 WHERE id = :tier AND taken < quota` and an `INSERT INTO prizes` (a gift
   with its code) in one transaction, on the raw campaign's tier. After the draws' warm-up the
   first prize's quota is set (`taken + n`, one UPDATE) so that, at the warm-up's rate, it runs
   out halfway through the measured rounds;
4. stops the server and checks the books: no tier gave more than its quota (overruns 0) and each
   tier's `taken` equals its prizes; the first prize ran out during the measured rounds and later
   draws that rolled it fell back; every draw has its entry and one prize of the tier it records;
   no member drew more than their entries; the draws in the database are the 201s answered plus
   those still in flight when a run's clock stopped; the raw tier's `taken` equals its prizes and
   the raw client's transactions;
5. writes the "Lottery draws" section of BENCHMARKS.md (unless a request failed or a check did
   not hold: then it prints it and exits with 1).

Knobs: those of bench/common.py (BENCH_DURATION, BENCH_ROUNDS, BENCH_WARMUP, BENCH_WORKERS,
BENCH_WORKER_CLASS, BENCH_THREADS, BENCH_LOADGEN), BENCH_RAW as in bench/orders.py,
BENCH_DRAW_MEMBERS (default 30,000: more than the run can draw), BENCH_NO_WRITE=1 (print only).

What the first runs showed (goal: draws at 0.25x the raw rate): 0.24x on a quiet machine (0.19x
while other test suites shared its two cores: the draws are bound by CPU, the raw transaction by
its WAL flush). A win is 13 statements (a fall-back 15) against a placement's 5, and most of a
draw's time is Python, half of it SQLAlchemy: each statement is built per call, the draw row goes
through the unit of work (an INSERT, then two UPDATEs at the end), the prize comes back as an ORM
entity, and a savepoint wraps every award (2 round trips, 4 on a fall-back). Nothing in the
services was changed here; the timeline and the profile in the report show where the time goes.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
from common import (
    CONCURRENCY,
    GRID,
    HOST,
    ROUND_SECONDS,
    ROUNDS,
    WARMUP,
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
    command_line,
    gunicorn_description,
    machine,
    make_app,
    measure,
    migrate_and_seed,
    prepare_run_stores,
    publish,
    request,
    rounds_description,
    run_processes,
    wrk_threads,
)
from orders import PROFILE_REQUESTS, PROFILE_TOP, RawPostgres, libpq_url, profile_placements, server_settings
from orders import statement_kind as _statement_kind

SECTION = "## Lottery draws (bench/campaigns.py)"
DATABASE = "groupshop_campaigns"
QUEUE = "groupshop-bench-campaigns"  # the servers' QUEUE_NAME: a draw enqueues nothing
MEMBERS = common._env_int("BENCH_DRAW_MEMBERS", 30_000, 1_000, 1_000_000)
GOAL = 0.25
# The stampede's campaign, best tier first: (name, cost in fen, odds in bp, quota, guaranteed).
# The first prize's quota is set after the warm-up (SELL_OUT_AT); until then it cannot run out.
FIRST, SECOND, THIRD = "一等奖 按摩椅", "二等奖 茶具", "三等奖 纸巾"
TIERS = (
    (FIRST, 30_000, 1_000, 1_000_000, False),
    (SECOND, 10_000, 2_000, 1_000_000, False),
    (THIRD, 1_000, 7_000, None, True),
)
SELL_OUT_AT = 0.5  # the share of the measured draws (at the warm-up's rate) after which the first prize is out
RAW_QUOTA = 10_000_000  # the raw tier's (its codes are its `taken`, 8 digits: below 10^8)
COUNT_ROLLS = (0, 1_500, 5_000)  # in process: first, second, third prize, in turn
COUNT_FIRST_QUOTA = 5
COUNT_DRAWS = 60  # 20 of each roll: 5 first prizes won, 15 first prizes rolled after it ran out
PROFILE_FIRST_QUOTA = PROFILE_REQUESTS // 20  # 5% of the profiled draws, as in the stampede
OUTCOMES = {
    "first": "first prize won",
    "second": "second prize won",
    "third": "third prize rolled (guaranteed, no quota)",
    "fell_back": "first prize rolled after it ran out: falls back to the third",
}
RAW_SCRIPT = """\
BEGIN;
UPDATE campaign_tiers SET taken = taken + 1
  WHERE id = :tier AND quota IS NOT NULL AND taken < quota RETURNING taken \\gset
INSERT INTO prizes (merchant_id, campaign_id, tier_id, member_id, origin, kind, code, status,
    redeem_until, created_at, updated_at)
  VALUES (:merchant, :campaign, :tier, :member, 'draw', 'gift', lpad(:taken::text, 8, '0'),
    'available', now() + interval '30 days', now(), now())
  ON CONFLICT (merchant_id, code) WHERE code IS NOT NULL DO NOTHING;
COMMIT;
"""
RAW_UPDATE = (
    "UPDATE campaign_tiers SET taken = taken + 1 WHERE id = %(tier)s AND quota IS NOT NULL AND taken < quota "
    "RETURNING taken"
)
RAW_INSERT = (
    "INSERT INTO prizes (merchant_id, campaign_id, tier_id, member_id, origin, kind, code, status, redeem_until, "
    "created_at, updated_at) VALUES (%(merchant)s, %(campaign)s, %(tier)s, %(member)s, 'draw', 'gift', "
    "lpad(%(after)s::text, 8, '0'), 'available', now() + interval '30 days', now(), now()) "
    "ON CONFLICT (merchant_id, code) WHERE code IS NOT NULL DO NOTHING"
)
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # shop.identity.invite_codes.ALPHABET


def draws_path(campaign_id: int) -> str:
    return f"/api/v1/campaigns/{campaign_id}/draws"


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    merchant_id: int
    merchant_code: str
    campaign: int
    tiers: tuple[int, int, int]  # first, second, third
    count_campaign: int
    count_tiers: tuple[int, int, int]
    profile_campaign: int
    raw_merchant: int
    raw_campaign: int
    raw_tier: int
    raw_member: int


def _campaign(merchant_id: int, name: str, first_quota: int, tiers: tuple = TIERS) -> tuple[int, tuple[int, ...]]:
    from coupons import campaigns

    now = dt.datetime.now(dt.UTC)
    made = campaigns.create_campaign(
        merchant_id,
        name=name,
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(days=2),
        entry_rule="once",
        tiers=[
            {
                "name": tier_name,
                "prize_kind": "gift",
                "cost": cost,
                "odds_bp": odds,
                "quota": first_quota if rank == 0 else quota,
                "guaranteed": guaranteed,
            }
            for rank, (tier_name, cost, odds, quota, guaranteed) in enumerate(tiers)
        ],
    )
    return made.id, tuple(tier.id for tier in campaigns.tiers_of(made.id))


def seed() -> Seeded:
    """Two merchants, the stampede's campaign, two probe campaigns and the raw one, through the
    services; the raw tier's member."""
    from shop.core.db import db, transaction
    from shop.identity.models import Member

    stamp = f"{dt.datetime.now(dt.UTC):%y%m%d%H%M%S}"
    with transaction():
        main = bench_merchant(f"bench-draws-{stamp}", "Bench draws", "wxbenchdraws00001")
        # A merchant of its own: the raw prizes' codes (its tier's `taken`) never meet the draws'.
        raw_owner = bench_merchant(f"bench-draws-raw-{stamp}", "Bench draws (raw)", "wxbenchdrawsraw01")
        campaign, tiers = _campaign(main.id, "周年庆抽奖 (stampede)", TIERS[0][3])
        count_campaign, count_tiers = _campaign(main.id, "probe: statements", COUNT_FIRST_QUOTA)
        profile_campaign, _ = _campaign(main.id, "probe: profile", PROFILE_FIRST_QUOTA)
        raw_campaign, (raw_tier,) = _campaign(
            raw_owner.id, "raw", RAW_QUOTA, tiers=(("raw", 30_000, 10_000, RAW_QUOTA, False),)
        )
        member = Member(merchant_id=raw_owner.id, openid="bench-draws-raw")
        db.session.add(member)
        db.session.flush()
    return Seeded(
        main.id,
        main.code,
        campaign,
        tiers,
        count_campaign,
        count_tiers,
        profile_campaign,
        raw_owner.id,
        raw_campaign,
        raw_tier,
        member.id,
    )


def _invite_code(number: int) -> str:
    """A distinct 8-character invite code per number (the members are copied in, not logged in)."""
    digits = []
    for _ in range(8):
        number, digit = divmod(number, len(CODE_ALPHABET))
        digits.append(CODE_ALPHABET[digit])
    return "".join(reversed(digits))


def mint_members(
    database_url: str, redis_url: str, merchant_id: int, count: int = MEMBERS, prefix: str = "bench-draws"
) -> list[str]:
    """`count` members of the merchant (COPY, openids `<prefix>-<n>`), and a member token for
    each, signed with the benchmark's key (the server gets it too), in the order of their ids."""
    import psycopg

    from api.auth import MEMBER, issue_token

    with psycopg.connect(libpq_url(database_url)) as conn:
        with conn.cursor().copy("COPY members (merchant_id, openid, invite_code) FROM STDIN") as copy:
            for number in range(count):
                copy.write_row((merchant_id, f"{prefix}-{number}", _invite_code(number)))
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM members WHERE merchant_id = %s AND openid LIKE %s ORDER BY id",
                (merchant_id, f"{prefix}-%"),
            )
        ]
    app = make_app(database_url, redis_url, 0, queue_name=QUEUE)
    with app.test_request_context():
        return [
            issue_token(kind=MEMBER, subject_id=member_id, merchant_id=merchant_id, role=MEMBER)[0] for member_id in ids
        ]


class MemberPool:
    """Members who have not drawn yet, in order. A run splits them into blocks (one per load
    thread or connection), each used from its start; what a block did not use goes back."""

    def __init__(self, tokens: list[str]) -> None:
        self.unused = tokens
        self.used = 0

    def take(self, count: int) -> list[str]:
        if count > len(self.unused):
            raise SystemExit(f"BENCH_DRAW_MEMBERS={MEMBERS} is too few: raise it")
        taken, self.unused = self.unused[:count], self.unused[count:]
        self.used += count
        return taken

    def blocks(self, parts: int) -> list[list[str]]:
        size = len(self.unused) // parts
        return [self.unused[i * size : (i + 1) * size] for i in range(parts)]

    def settle(self, blocks: list[list[str]], used: list[int]) -> None:
        """Each block used `used[i]` members from its start (a request each, answered or not)."""
        if any(u >= len(b) for b, u in zip(blocks, used, strict=True)):
            raise SystemExit(f"a load thread ran out of members: raise BENCH_DRAW_MEMBERS (now {MEMBERS})")
        spent = sum(min(u, len(b)) for b, u in zip(blocks, used, strict=True))
        rest = self.unused[sum(len(b) for b in blocks) :]
        self.unused = [t for b, u in zip(blocks, used, strict=True) for t in b[u:]] + rest
        self.used += spent


# --- statements per draw and the profile (in process) ------------------------------------------


def statement_kind(sql: str) -> str:
    if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
        return sql.rsplit(" ", 1)[0]
    if "pg_advisory_xact_lock" in sql:
        return "SELECT pg_advisory_xact_lock(…)"
    if "flash_place(" in sql:
        return "SELECT flash_place(…) for each of the placements given as arrays (unnest … LATERAL)"
    kind = _statement_kind(sql)
    head, returning, columns = kind.partition(" RETURNING ")
    if returning and columns.count(",") >= 3:  # an ORM entity's every column
        kind = f"{head} RETURNING {columns.split('.', 1)[0]}.* ({columns.count(',') + 1} columns)"
    return kind


def _outcome(answer: dict[str, Any], first: int, second: int) -> str:
    if answer["fell_back"]:
        return "fell_back"
    return {first: "first", second: "second"}.get(answer["tier_id"], "third")


def count_draws(database_url: str, redis_url: str, seeded: Seeded, pool: MemberPool) -> dict[str, Any]:
    """Statements per draw by outcome (rolls chosen), where the time of each goes (a timeline of
    every draw: the Python before each statement, the statement, the COMMIT, the response), the
    Redis commands; then a profile of draws with real rolls."""
    from redis.connection import AbstractConnection
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from coupons import campaigns
    from shop.core.db import db

    app = make_app(database_url, redis_url, 300, queue_name=QUEUE)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    tag = common.run_tag("c")
    tokens = iter(pool.take(1 + COUNT_DRAWS + PROFILE_REQUESTS))
    numbers = iter(range(10**9))

    def draw(campaign_id: int) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {next(tokens)}", "Idempotency-Key": f"{tag}:{next(numbers)}"}
        response = client.post(draws_path(campaign_id), headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json

    marks: list[tuple[str, float]] = []  # (s)tatement sent, (e)xecuted, (c)ommit sent, (a)fter commit

    def _mark(what: str) -> Any:
        def listener(*args: Any) -> None:
            if what != "a" or (marks and marks[-1][0] == "c"):  # not a savepoint's release
                marks.append((what, time.perf_counter()))

        return listener

    listeners = [
        (engine, "before_cursor_execute", _mark("s")),
        (engine, "after_cursor_execute", _mark("e")),
        (engine, "commit", _mark("c")),
        (Session, "after_commit", _mark("a")),
    ]
    redis_calls: Counter = Counter()
    real_pack, real_pack_many = AbstractConnection.pack_command, AbstractConnection.pack_commands

    def _count(args: Any) -> None:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        redis_calls[name.lower()] += 1

    def _pack(self, *args: Any) -> Any:  # every command this process sends goes through one of these
        _count(args)
        return real_pack(self, *args)

    def _pack_many(self, commands: Any) -> Any:  # a pipeline's
        commands = list(commands)
        for args in commands:
            _count(args)
        return real_pack_many(self, commands)

    real_roll = campaigns.roll
    rolls = iter([COUNT_ROLLS[-1], *(COUNT_ROLLS[n % len(COUNT_ROLLS)] for n in range(COUNT_DRAWS))])
    campaigns.roll = lambda: next(rolls)
    first, second, _ = seeded.count_tiers
    by_outcome: dict[str, list[tuple[str, ...]]] = {key: [] for key in OUTCOMES}
    timelines: dict[str, list[list[float]]] = {key: [] for key in OUTCOMES}
    try:
        draw(seeded.count_campaign)  # warm
        for target, name, listener in listeners:
            event.listen(target, name, listener)
        AbstractConnection.pack_command, AbstractConnection.pack_commands = _pack, _pack_many
        began = time.perf_counter()
        with SqlCounter().counting(engine) as counted:
            for _ in range(COUNT_DRAWS):
                mark = len(counted.statements)
                marks.clear()
                start = time.perf_counter()
                answer = draw(seeded.count_campaign)
                end = time.perf_counter()
                outcome = _outcome(answer, first, second)
                by_outcome[outcome].append(tuple(statement_kind(s) for s in counted.statements[mark:]))
                timelines[outcome].append(_timeline(marks, start, end))
        elapsed = time.perf_counter() - began
    finally:
        campaigns.roll = real_roll
        AbstractConnection.pack_command, AbstractConnection.pack_commands = real_pack, real_pack_many
        for target, name, listener in listeners:
            if event.contains(target, name, listener):
                event.remove(target, name, listener)
    profile = profile_placements(lambda n: draw(seeded.profile_campaign))
    engine.dispose()
    commits = sum(what == "c" for what, _ in marks)  # of the last draw
    return {
        "outcomes": {
            key: {
                "draws": len(seqs),
                "statements": sum(map(len, seqs)) / len(seqs),
                "sequence": seqs[0],
                "same_every_time": len(set(seqs)) == 1,
                # ms per step, mean over the draws (the same steps every time when same_every_time)
                "timeline": [statistics.fmean(step) * 1000 for step in zip(*timelines[key], strict=True)]
                if len(set(seqs)) == 1
                else [],
            }
            for key, seqs in by_outcome.items()
            if seqs
        },
        "statements": len(counted.statements) / COUNT_DRAWS,
        "checkouts": counted.checkouts / COUNT_DRAWS,
        "commits": commits,
        "redis": {name: calls / COUNT_DRAWS for name, calls in sorted(redis_calls.items())},
        "ms": elapsed / COUNT_DRAWS * 1000,
        "sql_ms": counted.seconds / COUNT_DRAWS * 1000,
        "profile": profile,
    }


def _timeline(marks: list[tuple[str, float]], start: float, end: float) -> list[float]:
    """Seconds: before the first statement; for each statement, the Python before it and the
    statement itself; after the last one until the COMMIT; the COMMIT; after it, the response."""
    kinds = "".join(what for what, _ in marks)
    if not re.fullmatch(r"(se)+ca", kinds):
        raise SystemExit(f"unexpected order of a draw's events: {kinds}")
    at = [when for _, when in marks]
    steps = [at[0] - start]
    for i in range(0, len(at) - 2, 2):
        if i:
            steps.append(at[i] - at[i - 1])  # the Python between the last statement and this one
        steps.append(at[i + 1] - at[i])
    steps += [at[-2] - at[-3], at[-1] - at[-2], end - at[-1]]
    return steps


# --- the stampede -------------------------------------------------------------------------------

# wrk: each thread reads its block of member tokens (a file of its own) and uses them in order, one
# per request, with a new Idempotency-Key; `done` writes how many each thread used (requests built,
# answered or not) and reports the figures as bench/common.py's scripts do.
DRAW_LUA = """
local run = os.getenv("BENCH_RUN")
local prefix = os.getenv("BENCH_DRAW_TOKENS")
local used_file = os.getenv("BENCH_DRAW_USED")
local expect = tonumber(os.getenv("BENCH_EXPECT"))
local threads = {}
local grid = {__GRID__}

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

init = function(args)
  counter = 0
  unexpected = 0
  tokens = {}
  for line in io.lines(prefix .. tid) do
    table.insert(tokens, line)
  end
end

request = function()
  counter = counter + 1
  local headers = {}
  headers["Idempotency-Key"] = string.format("%s:%d:%d", run, tid, counter)
  local token = tokens[counter]
  if token ~= nil then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("POST", nil, headers, nil)
end

response = function(status, headers, body)
  if status ~= expect then
    unexpected = unexpected + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  local out = io.open(used_file, "w")
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    out:write(string.format("%d %d\\n", thread:get("tid"), thread:get("counter")))
  end
  out:close()
  io.write(string.format("BENCH_RESULT requests=%d duration_us=%d errors=%d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout + bad))
  io.write(string.format("BENCH_Q 0 %d\\n", latency.min))
  for _, p in ipairs(grid) do
    io.write(string.format("BENCH_Q %s %.1f\\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH_Q 100 %d\\n", latency.max))
end
""".replace("__GRID__", ", ".join(str(p) for p in GRID))


def _draw_process(
    port: int, path: str, tag: str, blocks: Any, used_dir: str, connections: int, start_at: float, seconds: float, out
) -> None:
    """The Python fallback's load process: `connections` threads, each with a keep-alive
    connection and a block of members (from the `blocks` queue) used in order."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def _loop(index: int) -> None:
        number, tokens = blocks.get()
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine = latencies[index]
        used = 0
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        while time.time() < deadline and used < len(tokens):
            used += 1
            headers = {"Authorization": f"Bearer {tokens[used - 1]}", "Idempotency-Key": f"{tag}:{number}:{used}"}
            begun = time.perf_counter()
            try:
                conn.request("POST", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                continue
            if response.status != 201:
                errors[index] += 1
            mine.append((time.perf_counter() - begun) * 1000)
        conn.close()
        Path(used_dir, str(number)).write_text(str(used))

    threads = [threading.Thread(target=_loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=start_at - time.time() + seconds + 30)
    out.put(([x for mine in latencies for x in mine], sum(errors), time.time()))


@dataclass
class Stampede:
    """`run(seconds)`: draws over HTTP, every request the next member who has not drawn. After the
    first run (the warm-up), the first prize's quota is set to run out halfway through the rounds;
    after each run the first prize's `taken` is noted."""

    loadgen: LoadGenerator
    port: int
    database_url: str
    seeded: Seeded
    pool: MemberPool
    quota: int | None = None
    quota_set_after: int = 0  # first-prize draws taken before the quota was set
    taken_after: list[int] = field(default_factory=list)  # per run, warm-up first
    answered: int = 0  # 201s the load generator counted

    def __post_init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-draws-")
        self.lua = Path(self._tmp.name) / "draw.lua"
        self.lua.write_text(DRAW_LUA)
        self.path = draws_path(self.seeded.campaign)

    def run(self, seconds: int) -> Round:
        got = self._wrk(seconds) if self.loadgen.wrk else self._python(seconds)
        self.answered += got.requests - got.errors
        taken = self._first_taken()
        self.taken_after.append(taken)
        if self.quota is None:
            expected = got.rps * ROUNDS * ROUND_SECONDS
            odds = TIERS[0][2] / 10_000
            self.quota_set_after = taken
            self.quota = self._set_quota(max(1, round(expected * odds * SELL_OUT_AT)))
            print(f"  first prize: {taken} taken in the warm-up; quota set to {self.quota}", flush=True)
        return got

    def _wrk(self, seconds: int) -> Round:
        blocks = self.pool.blocks(wrk_threads())
        folder = Path(tempfile.mkdtemp(dir=self._tmp.name))
        for number, block in enumerate(blocks, 1):
            (folder / f"tokens-{number}").write_text("\n".join(block) + "\n")
        used_file = folder / "used.txt"
        os.environ.update(BENCH_DRAW_TOKENS=str(folder / "tokens-"), BENCH_DRAW_USED=str(used_file))
        target = Target("draw", "draw stampede", self.port, self.path, "", "POST", unique_key=True, expect=201)
        got = common.run_wrk(self.loadgen.wrk, self.lua, target, seconds)
        used = dict(line.split() for line in used_file.read_text().splitlines())
        self.pool.settle(blocks, [int(used.get(str(n), 0)) for n in range(1, len(blocks) + 1)])
        return got

    def _python(self, seconds: int) -> Round:
        import multiprocessing

        blocks = self.pool.blocks(CONCURRENCY)
        queue = multiprocessing.get_context("spawn").Queue()
        for number, block in enumerate(blocks):
            queue.put((number, block))
        folder = tempfile.mkdtemp(dir=self._tmp.name)
        args = (self.port, self.path, common.run_tag("p"), queue, folder)
        got = run_processes(_draw_process, args, self.loadgen.processes, seconds, self.path)
        used = [int(p.read_text()) if (p := Path(folder, str(n))).exists() else 0 for n in range(len(blocks))]
        self.pool.settle(blocks, used)
        return got

    def _first_taken(self) -> int:
        import psycopg

        with psycopg.connect(libpq_url(self.database_url)) as conn:
            return conn.execute("SELECT taken FROM campaign_tiers WHERE id = %s", (self.seeded.tiers[0],)).fetchone()[0]

    def _set_quota(self, more: int) -> int:
        import psycopg

        with psycopg.connect(libpq_url(self.database_url)) as conn:
            return conn.execute(
                "UPDATE campaign_tiers SET quota = taken + %s WHERE id = %s RETURNING quota",
                (more, self.seeded.tiers[0]),
            ).fetchone()[0]

    def close(self) -> None:
        self._tmp.cleanup()


# --- after the run ------------------------------------------------------------------------------


def verify(
    database_url: str, seeded: Seeded, stampede: Stampede, checked: int, raw_transactions: int
) -> tuple[list[tuple[str, bool]], dict[str, Any]]:
    """The books after the run: (what was checked, with the figures; whether it held), and the
    figures the report shows."""
    import psycopg

    campaign = seeded.campaign
    with psycopg.connect(libpq_url(database_url)) as conn:

        def one(sql: str, *args: Any) -> Any:
            return conn.execute(sql, args).fetchone()

        tiers = conn.execute(
            "SELECT t.id, t.name, t.quota, t.taken, (SELECT count(*) FROM prizes p WHERE p.tier_id = t.id) "
            "FROM campaign_tiers t WHERE t.campaign_id = %s ORDER BY t.rank",
            (campaign,),
        ).fetchall()
        draws, fell_back, first_fell_back, misses = one(
            "SELECT count(*), count(*) FILTER (WHERE fell_back), "
            "count(*) FILTER (WHERE fell_back AND rolled_tier_id = %s), count(*) FILTER (WHERE tier_id IS NULL) "
            "FROM campaign_draws WHERE campaign_id = %s",
            seeded.tiers[0],
            campaign,
        )
        by_tier = dict(
            conn.execute(
                "SELECT tier_id, count(*) FROM campaign_draws WHERE campaign_id = %s GROUP BY tier_id", (campaign,)
            ).fetchall()
        )
        matched = one(
            "SELECT count(*) FROM campaign_draws d JOIN prizes p ON p.draw_id = d.id AND p.tier_id = d.tier_id "
            "WHERE d.campaign_id = %s",
            campaign,
        )[0]
        prizes = one("SELECT count(*) FROM prizes WHERE campaign_id = %s", campaign)[0]
        entries = dict(
            conn.execute(
                "SELECT status, count(*) FROM campaign_entries WHERE campaign_id = %s GROUP BY status", (campaign,)
            ).fetchall()
        )
        drawn_entries = one(
            "SELECT count(*) FROM campaign_draws d JOIN campaign_entries e ON e.id = d.entry_id "
            "WHERE d.campaign_id = %s AND e.status = 'drawn' AND e.member_id = d.member_id",
            campaign,
        )[0]
        over_entries, most = one(
            "SELECT count(*) FILTER (WHERE d.n > coalesce(e.n, 0)), coalesce(max(d.n), 0) FROM "
            "(SELECT member_id, count(*) AS n FROM campaign_draws WHERE campaign_id = %s GROUP BY member_id) d "
            "LEFT JOIN (SELECT member_id, count(*) AS n FROM campaign_entries WHERE campaign_id = %s "
            "AND status <> 'withdrawn' GROUP BY member_id) e USING (member_id)",
            campaign,
            campaign,
        )
        members = one("SELECT count(DISTINCT member_id) FROM campaign_draws WHERE campaign_id = %s", campaign)[0]
        raw_taken = one("SELECT taken FROM campaign_tiers WHERE id = %s", seeded.raw_tier)[0]
        raw_prizes = one("SELECT count(*) FROM prizes WHERE tier_id = %s", seeded.raw_tier)[0]
    checks: list[tuple[str, bool]] = []
    overruns = 0
    for tier_id, name, quota, taken, given in tiers:
        if quota is None:
            checks.append(
                (
                    f"{name} (guaranteed, no quota, so no count): {given:,} prizes"
                    f" = {by_tier.get(tier_id, 0):,} draws that won it",
                    given == by_tier.get(tier_id, 0) and taken == 0,
                )
            )
            continue
        over = max(0, given - quota)
        overruns += over
        checks.append(
            (
                f"{name}: {given:,} prizes, `taken` {taken:,}, quota {quota:,}: overruns {over}",
                over == 0 and given == taken <= quota,
            )
        )
    first_quota, first_taken = tiers[0][2], tiers[0][3]
    taken_after = stampede.taken_after
    out_in = next((n for n, taken in enumerate(taken_after) if taken >= first_quota), None)  # 0: the warm-up
    measured = len(taken_after) - 1
    checks.append(
        (
            f"the first prize ran out during the measured rounds: quota {first_quota:,} reached in "
            + (f"round {out_in} of {measured}" if out_in else "no round" if out_in is None else "the warm-up")
            + f"; {first_fell_back:,} later draws rolled it and fell back to the third prize",
            first_taken == first_quota and out_in is not None and out_in >= 1 and first_fell_back > 0,
        )
    )
    checks.append(
        (
            f"draws: {draws:,} by {members:,} members; each draw has its entry, `drawn` ({drawn_entries:,}), "
            f"and one prize of the tier it records ({matched:,}; prizes of the campaign: {prizes:,}; "
            f"draws that won nothing: {misses})",
            draws == drawn_entries == matched == prizes and misses == 0,
        )
    )
    checks.append(
        (
            f"entries: {entries.get('drawn', 0):,} drawn, {entries.get('open', 0):,} open; members who drew more "
            f"than their entries: {over_entries} (most draws by one member: {most})",
            over_entries == 0 and most <= 1 and entries.get("open", 0) == 0,
        )
    )
    runs = len(taken_after)
    late = draws - checked - stampede.answered
    checks.append(
        (
            f"draws in the database: {draws:,} = {checked} check + {stampede.answered:,} answered 201 to the load "
            f"generator + {late:,} finished after a run's clock stopped (at most {CONCURRENCY} per run, {runs} runs)",
            0 <= late <= CONCURRENCY * runs,
        )
    )
    checks.append(
        (
            f"members handed out to the load generator: {stampede.pool.used:,}, at least the draws ({draws:,}): "
            "no member was handed out twice",
            stampede.pool.used >= draws,
        )
    )
    checks.append(
        (
            f"raw tier: `taken` {raw_taken:,} = prizes {raw_prizes:,} = {raw_transactions:,} transactions reported "
            "by the raw client",
            raw_taken == raw_prizes == raw_transactions,
        )
    )
    figures = {
        "tiers": tiers,
        "draws": draws,
        "fell_back": fell_back,
        "first_fell_back": first_fell_back,
        "by_tier": by_tier,
        "overruns": overruns,
        "out_in": out_in,
    }
    return checks, figures


# --- the report -------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _command() -> str:
    return command_line("bench-campaigns", "bench/campaigns.py", hidden=("BENCH_DRAW_TOKENS", "BENCH_DRAW_USED"))


TIMELINE_OUTCOME = "second"  # the path of a win with a quota: the guarded UPDATE and the prize


def _timeline_table(got: dict[str, Any] | None) -> str:
    if not got or not got["timeline"]:
        return "  (the draws of this outcome did not all run the same statements: no timeline)"
    steps, sequence = got["timeline"], got["sequence"]
    rows = [("", "the request until the first statement (routing, the token, the view)", steps[0], None)]
    for k, kind in enumerate(sequence, 1):
        what = f"`{kind}`" + (" (and psycopg's `BEGIN` before it)" if k == 1 else "")
        rows.append((str(k), what, None if k == 1 else steps[2 * k - 2], steps[2 * k - 1]))
    n = len(sequence)
    rows.append(("", "after the last statement until the `COMMIT` (the answer's views)", steps[2 * n], None))
    rows.append(("", "`COMMIT` (its WAL flush)", None, steps[2 * n + 1]))
    rows.append(("", "after the `COMMIT` (the response: schema, JSON)", steps[2 * n + 2], None))
    python = sum(row[2] or 0 for row in rows)
    database = sum(row[3] or 0 for row in rows)
    rows.append(("", f"**total {python + database:.2f} ms**", python, database))

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    return "\n".join(
        ["  | # | step | Python before it, ms | in the database (round trip), ms |", "  |---:|---|---:|---:|"]
        + [f"  | {n} | {what} | {ms(py)} | {ms(db)} |" for n, what, py, db in rows]
    )


def render(
    results: dict[str, Result],
    sql: dict[str, Any],
    checks: list[tuple[str, bool]],
    figures: dict[str, Any],
    seeded: Seeded,
    stampede: Stampede,
    loadgen: LoadGenerator,
    raw: RawPostgres,
    stores: str,
    versions: str,
    pg: dict[str, str],
) -> str:
    info = machine()
    draw, rawr = results["draw"], results["raw"]
    rows = "\n".join(
        f"| {label} | {what} | {r.rps:,.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | "
        f"{r.requests:,} | {r.errors:,} |"
        for label, what, r in (
            ("draw stampede", "`POST /api/v1/campaigns/{id}/draws`, each request a new member's only draw", draw),
            ("raw PostgreSQL", "the guarded `UPDATE campaign_tiers` + `INSERT prizes`, one transaction", rawr),
        )
    )
    ratios = [d.rps / r.rps for d, r in zip(draw.rounds, rawr.rounds, strict=True)]
    median = statistics.median(ratios)
    overall = draw.rps / rawr.rps
    quota = stampede.quota or 0
    per_round = []
    for n, (d, r) in enumerate(zip(draw.rounds, rawr.rounds, strict=True), 1):
        order = "draws, raw" if n % 2 else "raw, draws"
        taken = stampede.taken_after[n]
        mark = " (ran out)" if figures["out_in"] == n else ""
        alone = Result("", rounds=[d])
        per_round.append(
            f"  | {n} | {order} | {d.rps:,.0f} | {alone.percentile(0.5):.1f} | {alone.percentile(0.99):.1f} | "
            f"{r.rps:,.0f} | {d.rps / r.rps:.1%} | {taken:,} of {quota:,}{mark} |"
        )
    table = "\n".join(per_round)
    tiers = "\n".join(
        f"  | {rank} | {name} | {odds / 100:g}% | "
        + ("none (guaranteed)" if quota_ is None else f"{quota_:,}")
        + f" | {taken:,} | {given:,} | {max(0, given - quota_) if quota_ is not None else '—'} |"
        for rank, ((_, name, quota_, taken, given), (_, _, odds, _, _)) in enumerate(
            zip(figures["tiers"], TIERS, strict=True), 1
        )
    )
    outcomes = []
    for key, label in OUTCOMES.items():
        got = sql["outcomes"].get(key)
        if got is None:
            continue
        listed = "; ".join(f"{n}. `{kind}`" for n, kind in enumerate(got["sequence"], 1))
        same = "" if got["same_every_time"] else " (not the same every time; the first shown)"
        outcomes.append(f"  - {label}: **{got['statements']:g}** ({got['draws']} draws{same}): {listed}")
    outcome_lines = "\n".join(outcomes)
    timeline = _timeline_table(sql["outcomes"].get(TIMELINE_OUTCOME))
    timeline_draws = sql["outcomes"].get(TIMELINE_OUTCOME, {}).get("draws", 0)
    redis = ", ".join(f"`{name}` {calls:g}" for name, calls in sql["redis"].items()) or "none"
    profile = sql["profile"]
    groups = "\n".join(f"  | {label} | {share:.0%} |" for label, share in profile["groups"])
    top = "\n".join(
        f"  | {n} | `{where}` | {calls / PROFILE_REQUESTS:g} | {share:.1%} |"
        for n, (where, calls, share) in enumerate(profile["top"], 1)
    )
    verdicts = "\n".join(f"  - {'✓' if ok else '✗ FAILED'} {text}" for text, ok in checks)
    script = "\n".join(f"  {line}" for line in ["```sql", *raw.shown.rstrip().splitlines(), "```"])
    if loadgen.wrk:
        load = (
            f"{loadgen.version}, `-t{wrk_threads()} -c{CONCURRENCY} --latency` with a Lua script whose `request` "
            "function gives every request the next member of its thread's block (a member token) and a new "
            "`Idempotency-Key`, and whose `response` function counts every answer other than 201 as an error"
        )
    else:
        load = loadgen.description + "; each connection takes the members of its own block in order"
    if (WORKER_CLASS, WORKERS) == ("sync", 2):
        why = "as bench/catalog.py and `make run`: one process per core"
    else:
        why = "chosen through BENCH_WORKER_CLASS / BENCH_WORKERS / BENCH_THREADS"
    draws = figures["draws"]
    return f"""{SECTION}

Command: {_command()}, run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The load generator, gunicorn, PostgreSQL and Redis share these CPUs (and other jobs ran on the
  machine at the time, so compare the rows of this run with each other rather than with other runs).
- Stores: {stores}; {versions}; `fsync={pg["fsync"]}`, `synchronous_commit={pg["synchronous_commit"]}`
  (every commit waits for its WAL flush), `shared_buffers={pg["shared_buffers"]}`.
- Data, created for the run through the services: a merchant (`{seeded.merchant_code}`) with a running
  campaign, entry rule `once` (a member's one entry is made at the draw), whose tiers are gifts (a
  voucher with an 8-digit code); {MEMBERS:,} members of the merchant (rows copied in, member tokens signed
  with the benchmark's key) of whom {draws:,} drew, each once. The first prize's quota is {TIERS[0][3]:,} until the
  warm-up has run, then `taken + {quota - stampede.quota_set_after:,}` ({stampede.quota_set_after:,} were taken
  in the warm-up): at the warm-up's rate, it runs out halfway through the measured rounds. A second merchant
  holds the raw measurement's campaign of one tier (its own codes) and its member.
- Server: `gunicorn wsgi:app` {gunicorn_description()}, `QUEUE_NAME={QUEUE}`: {why}. With
  {WORKERS} sync workers at most {WORKERS} draws are in the database at once, whatever the client's concurrency.
- Load: {load}; {CONCURRENCY} concurrent connections; no body. {rounds_description()}; the raw
  measurement takes its turn in the same rounds.
- Raw PostgreSQL: {raw.description}, on the same database, on the raw tier's row (quota {RAW_QUOTA:,}; the
  code is its new `taken`, so no two collide), in the same rounds:

{script}

| measurement | what | requests/s | p50 ms | p99 ms | requests | errors |
|---|---|---:|---:|---:|---:|---:|
{rows}

Errors: for the draws, any answer but 201 (a member drawing twice would get 409 `no_entries`), a
socket error or a timeout; for the raw client, a failed or aborted transaction (its requests/s are
transactions/s). The raw transactions on their row take turns: each holds the row lock through its
commit's WAL flush. A draw that wins the first or second prize holds that tier's row lock from its
guarded `UPDATE` to its `COMMIT`; one that falls on the third prize takes no tier lock.

- **Draws / raw PostgreSQL: {overall:.1%}** over all rounds, **median of the rounds {median:.1%}** (goal at
  least {GOAL:.0%}: {_met(median >= GOAL)}); the raw transaction runs {rawr.rps / draw.rps:.1f} times as often as
  a whole draw. Round by round:

  | round | order | draws/s | p50 ms | p99 ms | raw tx/s | draws / raw | first prize taken at its end |
  |---:|---|---:|---:|---:|---:|---:|---|
{table}

- Tiers after the run (**quota overruns: {figures["overruns"]}**):

  | rank | tier | odds | quota | `taken` | prizes | overruns |
  |---:|---|---:|---:|---:|---:|---:|
{tiers}

  {figures["fell_back"]:,} of the {draws:,} draws fell back to the third prize (they rolled the first prize
  after it ran out).
- **SQL statements per draw** (in process, Flask test client on the same database, on a probe campaign
  of the same tiers whose rolls are chosen in turn, its first prize's quota {COUNT_FIRST_QUOTA};
  {COUNT_DRAWS} draws; mean {sql["statements"]:.1f}), by outcome, in order:

{outcome_lines}

  Where one draw's time goes, in process, mean of the {timeline_draws} draws that won the second
  prize (the path of a win: the guarded `UPDATE` and the prize), one at a time (timestamps at each
  statement's start and end, at the `COMMIT` and after it):

{timeline}

  Around them: {sql["checkouts"]:g} connection checkout, psycopg's `BEGIN` before the first statement and
  {sql["commits"]:g} `COMMIT`. Redis commands per draw: {redis}. One draw at a time in process took
  {sql["ms"]:.1f} ms, {sql["sql_ms"]:.1f} ms of it inside `cursor.execute`.
- Profile (cProfile, {PROFILE_REQUESTS} draws one at a time in process with real rolls, each a new member,
  on a probe campaign whose first prize runs out after {PROFILE_FIRST_QUOTA}; {profile["ms"]:.1f} ms each
  with the profiler on): own time by package,

  | package | share of own time |
  |---|---:|
{groups}

  and the {PROFILE_TOP} functions with the most own time:

  | # | function | calls per draw | share of own time |
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
    stampede: Stampede | None = None
    try:
        database_url, redis_url, stores = prepare_run_stores(DATABASE)
        seeded, versions = migrate_and_seed(database_url, redis_url, seed)
        pg = server_settings(database_url)
        began = time.perf_counter()
        pool = MemberPool(mint_members(database_url, redis_url, seeded.merchant_id))
        print(f"{MEMBERS:,} members and their tokens in {time.perf_counter() - began:.1f} s", flush=True)
        sql = count_draws(database_url, redis_url, seeded, pool)
        for key, got in sql["outcomes"].items():
            print(f"statements per draw, {OUTCOMES[key]}: {got['statements']:g}", flush=True)
            for kind in got["sequence"]:
                print(f"  {kind}", flush=True)

        server = Server(database_url, redis_url, 300, QUEUE_NAME=QUEUE, SECRET_KEY=common.BENCH_SECRET_KEY)
        server.wait_ready()
        (token,) = pool.take(1)
        key = {"Idempotency-Key": common.run_tag("check")}
        status, body = request("POST", server.port, draws_path(seeded.campaign), None, token, key)
        if status != 201:
            raise SystemExit(f"a draw answered {status}: {body[:300]!r}")
        raw = RawPostgres(
            database_url,
            {
                "tier": seeded.raw_tier,
                "campaign": seeded.raw_campaign,
                "merchant": seeded.raw_merchant,
                "member": seeded.raw_member,
            },
            script=RAW_SCRIPT,
            update=RAW_UPDATE,
            insert=RAW_INSERT,
        )
        print(f"raw PostgreSQL: {raw.description}", flush=True)
        stampede = Stampede(loadgen, server.port, database_url, seeded, pool)
        loads = [Load("draw", "draw stampede", stampede.run), Load("raw", "raw PostgreSQL", raw.run)]
        if not WARMUP:
            print("BENCH_WARMUP=0: the first round sets the first prize's quota", flush=True)
        results = measure(loads, fail_on_errors=False)
        server.stop()  # graceful: the workers finish the requests they hold

        checks, figures = verify(database_url, seeded, stampede, 1, raw.transactions)
        text = render(results, sql, checks, figures, seeded, stampede, loadgen, raw, stores, versions, pg)
        print()
        for r in results.values():
            print(
                f"{r.name:<16} {r.rps:9.1f} req/s  p50 {r.percentile(0.5):7.2f} ms  p99 {r.percentile(0.99):7.2f} ms"
                f"  errors {r.errors}"
            )
        draw, rawr = results["draw"], results["raw"]
        ratios = [d.rps / r.rps for d, r in zip(draw.rounds, rawr.rounds, strict=True)]
        print(f"draws / raw: {draw.rps / rawr.rps:.1%} overall, median of the rounds {statistics.median(ratios):.1%}")
        print("by round: " + ", ".join(f"{x:.0%}" for x in ratios))
        print(f"quota overruns: {figures['overruns']}")
        return publish(text, SECTION, results, checks)
    finally:
        if server is not None:
            server.stop()
        if raw is not None:
            raw.close()
        if stampede is not None:
            stampede.close()
        loadgen.close()
        embedded.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
