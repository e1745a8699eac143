"""`make run`: everything a developer needs, started from one command.

With no DATABASE_URL / REDIS_URL it starts the embedded PostgreSQL and Redis under the data
folder (GROUPSHOP_DATA_DIR, default .data); then it migrates, loads the demo data once, starts
gunicorn, an RQ worker (with its scheduler) and `groupshop cron` as child processes pointed at the
same servers, and prints where the docs are.

A child that exits (crashes) is started again after a wait that doubles from 1 s up to 30 s
(back to 1 s once a child has run for a minute); the others keep running. Ctrl-C or SIGTERM stops
everything it started: each child runs in its own process group and the whole group is stopped
(SIGTERM, then SIGKILL after 15 s); the launcher is a child subreaper (Linux), so processes whose
parent died before them (an RQ work horse, the worker's scheduler) become its own children and
are stopped too; then the embedded PostgreSQL and Redis. It prints "stopped" when nothing is left.
If the launcher itself is killed (even with SIGKILL), each child gets SIGTERM (Linux: see
api/die_with_parent.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
STOP_WAIT = 15.0
RESTART_MAX = 30.0
STABLE_AFTER = 60.0
PR_SET_CHILD_SUBREAPER = 36
DIE_WITH_PARENT = Path(__file__).resolve().with_name("die_with_parent.py")


def _banner(port: int, host: str, database_url: str, redis_url: str) -> str:
    from shop.demo import DEMO_APPID, DEMO_MERCHANT, DEMO_STAFF

    base = f"http://{host}:{port}"
    staff_lines = "\n".join(
        f"    {role:<9} username {username!r:<12} password {password!r}" for role, username, password, _ in DEMO_STAFF
    )
    return f"""
Groupshop is running.
  API docs:      {base}/api/docs   (OpenAPI: {base}/api/openapi.json)
  Health:        {base}/healthz
  Database:      {database_url}
  Redis:         {redis_url}

Demo merchant {DEMO_MERCHANT!r} (appid {DEMO_APPID}). Staff log in at POST /api/v1/merchant/auth/login
with {{"merchant": "{DEMO_MERCHANT}", "username": ..., "password": ...}}:
{staff_lines}
Members log in at POST /api/v1/auth/wx-login with {{"merchant": "{DEMO_MERCHANT}", "code": "test:<any name>"}}
(the fake WeChat login turns test:<name> into a stable openid).

Press Ctrl-C to stop.
"""


class Child:
    """One process the launcher keeps running, in a process group of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restart_at = 0.0
        self.wait = 1.0

    def start(self) -> None:
        # No preexec_fn: unsafe in a process with threads (see api/die_with_parent.py).
        self.process = subprocess.Popen(dying_with_parent(self.argv), env=self.env, process_group=0)
        self.started_at = time.monotonic()

    def signal_group(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def check(self, now: float) -> None:
        """Start the child when it is due; notice it exited and schedule its restart."""
        if self.process is None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        self.signal_group(signal.SIGTERM)  # what it leaves behind in its group (e.g. a scheduler)
        if now - self.started_at >= STABLE_AFTER:
            self.wait = 1.0
        print(f"process {self.name} exited with {code}; restarting it in {self.wait:.0f} s", flush=True)
        self.process = None
        self.restart_at = now + self.wait
        self.wait = min(RESTART_MAX, self.wait * 2)


def _prctl(option: int, value: int) -> None:
    """Linux's prctl(2); a no-op elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` started so that it gets SIGTERM if this process dies (even of SIGKILL), Linux only."""
    return [sys.executable, "-I", str(DIE_WITH_PARENT), str(os.getpid()), *argv]


def become_subreaper() -> None:
    """Orphaned descendants (a work horse whose worker died) get this process as their parent,
    so they can be found and stopped. Linux only; elsewhere process groups have to do."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def reap_orphans(children: list[Child]) -> None:
    """Collect exited processes that became ours as a subreaper (not the children we watch)."""
    ours = {child.process.pid for child in children if child.process is not None}
    for process in psutil.Process().children():
        if process.pid in ours:
            continue
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if process.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(process.pid, os.WNOHANG)


def stop_children(children: list[Child]) -> None:
    """SIGTERM every child's group, wait, SIGKILL what is left; then every other descendant."""
    running = [child for child in children if child.process is not None]
    for child in running:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"process {child.name} did not stop; killing it", flush=True)
        child.signal_group(signal.SIGKILL)  # the leader, and anything left in its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=5)
    leftovers = psutil.Process().children(recursive=True)
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=5)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    reap_orphans([])


class _Stopping(Exception):
    """Ctrl-C or SIGTERM came during start-up."""


def main() -> int:
    from api import embedded

    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def _check() -> None:
        """Start-up steps are not interrupted halfway (a server half started would be left
        running); a signal is acted on between them."""
        if stopping:
            raise _Stopping

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    children: list[Child] = []
    try:
        children = _start(embedded, _check)
        while not stopping:
            now = time.monotonic()
            for child in children:
                child.check(now)
            reap_orphans(children)
            time.sleep(0.5)
    except _Stopping:
        pass
    finally:
        stop_children(children)
        embedded.stop_all()
        print("stopped", flush=True)
    return 0


def _start(embedded: object, check: Callable[[], None]) -> list[Child]:
    from api.config import Settings

    os.chdir(ROOT)
    settings = Settings.from_env()
    env = dict(os.environ)
    if settings.database_url is None:
        env["DATABASE_URL"] = embedded.start_postgres(settings.data_dir)  # type: ignore[attr-defined]
        check()
    if settings.redis_url is None:
        env["REDIS_URL"] = embedded.start_redis(settings.data_dir)  # type: ignore[attr-defined]
        check()
    os.environ.update(env)
    become_subreaper()  # after the embedded servers: they must not become our children

    from flask_migrate import upgrade

    from api import create_app
    from api.http_rules import gunicorn_limit_args
    from api.serving import serving_args
    from shop.demo import load_demo_data

    app = create_app()
    with app.app_context():
        upgrade()
        loaded = load_demo_data()
    print("demo data loaded" if loaded else "demo data already present; reusing it", flush=True)
    check()

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    python = sys.executable
    flask = [python, "-m", "flask", "--app", "wsgi", "groupshop"]
    gunicorn = [python, "-m", "gunicorn", "wsgi:app", "--bind", f"{host}:{port}", "--workers", workers]
    children = [
        Child(
            "gunicorn",
            [*gunicorn, "--access-logfile", "-", "--graceful-timeout", "5", *gunicorn_limit_args(), *serving_args()],
            env,
        ),
        Child("worker", [*flask, "worker"], env),
        Child("cron", [*flask, "cron"], env),
    ]
    for child in children:
        child.start()
    print(_banner(port, host, env["DATABASE_URL"], env["REDIS_URL"]), flush=True)
    return children


if __name__ == "__main__":
    raise SystemExit(main())
