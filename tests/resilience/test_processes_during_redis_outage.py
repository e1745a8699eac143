"""`groupshop cron`, `groupshop worker` (with its scheduler) and the `make run` launcher outlive a
Redis stopped or hung, do their work once it answers again, and leave no process behind.

Real processes on the test database and a private redis-server, configured for short waits:
sweeps every 2 s at most (SWEEP_INTERVAL_MAX), retries every 1 s at most (REDIS_RETRY_MAX), 1 s
background timeout, and a worker TTL of 16 s, so that the worker's blocking dequeue waits 1 s and
its reads time out after 2 s (a hang longer than that reaches the worker itself). With the
defaults the recovery bound is 10 + 30 + 30 s = 70 s (checked below, not waited for)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import requests
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry
from sqlalchemy import update

from api.config import Settings
from api.devserver import DIE_WITH_PARENT
from shop.catalog.models import Sku
from shop.core.db import db, transaction, utcnow
from shop.core.runner import sweeps
from shop.identity.models import Merchant
from shop.orders.models import Order
from shop.payments.jobs import sweep_expired_orders
from tests.factories import free_port, member_headers, order_body, place
from tests.harness_jobs import rename_merchant
from tests.redis_server import PrivateRedis
from tests.resilience.helpers import OUTAGE_QUEUE, shop_with_stock, wait_for

pytestmark = pytest.mark.committing

ROOT = Path(__file__).resolve().parents[2]
SWEEP_INTERVAL_MAX = 2
REDIS_RETRY_MAX = 1
BACKGROUND_TIMEOUT = 1
WORKER_TTL = 16
WORKER_READ_TIMEOUT = (WORKER_TTL - 15) + BACKGROUND_TIMEOUT
# Long enough for several failed attempts of each process (an idle worker's blocking dequeue
# times out within WORKER_READ_TIMEOUT).
OUTAGE = WORKER_READ_TIMEOUT + 4 * REDIS_RETRY_MAX + 1
# Process start-up, job and polling time on a loaded machine, on top of the bound.
SLACK = 8
# What the worker process logs when a Redis read times out: in RQ's dequeue loop (it retries), in
# RQ's main loop (the round ends), or in api.worker.run_worker (a new round starts).
WORKER_TIMED_OUT = re.compile(
    r"could not connect to Redis instance: Timeout|Redis connection timeout, quitting|worker: Redis error \(Timeout"
)


def recovery_bound(sweep_every: float, retry_max: float) -> float:
    """Redis returns -> cron's next try (a retry wait) -> the expiry sweep is enqueued at once (it
    came due meanwhile) or within its interval -> the worker's next try (a retry wait) -> it runs."""
    return sweep_every + 2 * retry_max


def test_with_the_default_settings_an_order_due_in_an_outage_is_expired_within_70_s_of_redis_returning():
    every = next(every for func, every in sweeps().values() if func is sweep_expired_orders)
    settings = Settings()
    assert (every, settings.redis_retry_max, settings.sweep_interval_max) == (10, 30, 0)
    assert recovery_bound(every, settings.redis_retry_max) <= 70


def _env(app: Flask, private_redis: PrivateRedis, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env.update(
        DATABASE_URL=app.config["SETTINGS"].database_url,
        REDIS_URL=private_redis.url,
        GROUPSHOP_ENV="test",
        SECRET_KEY=app.config["SETTINGS"].secret_key,
        QUEUE_NAME=OUTAGE_QUEUE,
        REDIS_TIMEOUT="0.2",
        REDIS_COOLOFF="1",
        REDIS_BACKGROUND_TIMEOUT=str(BACKGROUND_TIMEOUT),
        REDIS_RETRY_MAX=str(REDIS_RETRY_MAX),
        WORKER_TTL=str(WORKER_TTL),
        SWEEP_INTERVAL_MAX=str(SWEEP_INTERVAL_MAX),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill_everything(processes: list[subprocess.Popen[bytes]]) -> None:
    """After a failed test: leave nothing running."""
    for process in processes:
        if process.poll() is None:
            descendants = psutil.Process(process.pid).children(recursive=True)
            process.kill()
            for child in descendants:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            process.wait()


def _backdate_expiry(outage_app: Flask, order_id: int) -> None:
    with outage_app.app_context(), transaction():
        db.session.execute(update(Order).where(Order.id == order_id).values(expires_at=utcnow() - timedelta(minutes=1)))


def _state(outage_app: Flask, order_id: int) -> tuple[str, int]:
    with outage_app.app_context():
        order = db.session.get(Order, order_id)
        stock = db.session.get(Sku, order.lines[0].sku_id).stock
        db.session.remove()
        return order.status, stock


def test_cron_and_the_worker_outlive_redis_stopped_and_hung_and_the_sweep_expires_the_orders_that_came_due(
    app, make_app, private_redis, tmp_path
):
    outage_app = make_app()
    client = outage_app.test_client()
    merchant, _, sku_id = shop_with_stock(outage_app, stock=10)
    member = member_headers(client, merchant.code)
    first = place(client, member, order_body(sku_id, 2)).json  # no job: the expiry sweep finds them
    second = place(client, member, order_body(sku_id, 3)).json
    assert _state(outage_app, first["id"]) == ("pending_payment", 5)

    env = _env(app, private_redis)
    cron = _spawn(["-m", "flask", "--app", "wsgi", "groupshop", "cron"], env, tmp_path / "cron.log")
    worker = _spawn(["-m", "flask", "--app", "wsgi", "groupshop", "worker"], env, tmp_path / "worker.log")
    plain = Redis.from_url(private_redis.url)
    try:
        finished = FinishedJobRegistry(OUTAGE_QUEUE, connection=plain)
        wait_for(lambda: finished.count > 0, 60)  # cron enqueues, the worker works

        bound = recovery_bound(SWEEP_INTERVAL_MAX, REDIS_RETRY_MAX) + SLACK
        worker_log = tmp_path / "worker.log"

        # Stopped: Redis comes back empty (the sweep's queued runs are gone); the order came due meanwhile.
        private_redis.stop()
        _backdate_expiry(outage_app, first["id"])
        time.sleep(OUTAGE)
        assert cron.poll() is None and worker.poll() is None
        private_redis.start()
        took = wait_for(lambda: _state(outage_app, first["id"]) == ("cancelled", 7), 60)
        assert took < bound, f"the sweep cancelled the order {took:.1f} s after Redis returned"

        # Hung: the connections stay open and nothing answers until SIGCONT; until the worker
        # process itself (its dequeue or main loop, not only its scheduler or a work horse) has
        # met a read timeout. A horse caught by the hang takes a few timeouts to finish first.
        logged = worker_log.stat().st_size
        private_redis.hang()
        _backdate_expiry(outage_app, second["id"])
        time.sleep(OUTAGE)

        def worker_timed_out() -> bool:
            return WORKER_TIMED_OUT.search(worker_log.read_bytes()[logged:].decode(errors="replace")) is not None

        wait_for(worker_timed_out, 30, lambda: worker_log.read_bytes()[logged:].decode(errors="replace")[-3000:])
        assert cron.poll() is None and worker.poll() is None
        private_redis.resume()
        took = wait_for(lambda: _state(outage_app, second["id"]) == ("cancelled", 10), 60)
        assert took < bound, f"the sweep cancelled the order {took:.1f} s after Redis answered again"

        # The worker's scheduler moves delayed jobs again (before: not until ~8 minutes later).
        Queue(OUTAGE_QUEUE, connection=plain).enqueue_in(timedelta(seconds=1), rename_merchant, merchant.id, "renamed")

        def renamed() -> bool:
            with outage_app.app_context():
                name = db.session.get(Merchant, merchant.id).name
                db.session.remove()
                return name == "renamed"

        wait_for(renamed, 10)
        assert len(Worker.all(connection=plain)) == 1

        # SIGTERM: both exit cleanly, and so does everything the worker started (its scheduler).
        descendants = [
            *psutil.Process(worker.pid).children(recursive=True),
            *psutil.Process(cron.pid).children(recursive=True),
        ]
        assert descendants  # the scheduler at least
        cron.terminate()
        worker.terminate()
        assert (cron.wait(15), worker.wait(15)) == (0, 0)
        _, alive = psutil.wait_procs(descendants, timeout=5)
        assert alive == []
    finally:
        _kill_everything([cron, worker])


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


def _children_by_role(launcher: psutil.Process, adopted: frozenset[int] = frozenset()) -> dict[str, int]:
    """The launcher's children, each the leader of its process group, once they run their command
    (not while the death-signal wrapper, api/die_with_parent.py, is still starting). Not the
    orphans it adopted: the scheduler of a worker that died is no group leader, but its work horse
    is (RQ gives it a group of its own) and looks like the worker: pass those pids as `adopted`."""
    roles = {}
    for child in launcher.children():
        if child.pid in adopted:
            continue
        try:
            cmdline = " ".join(child.cmdline())
            if os.getpgid(child.pid) != child.pid or DIE_WITH_PARENT.name in cmdline:
                continue
        except (psutil.Error, ProcessLookupError):
            continue
        for role in ("gunicorn", "worker", "cron"):
            if cmdline.endswith(role) or (role == "gunicorn" and "gunicorn" in cmdline):
                roles[role] = child.pid
    return roles


def _health(port: int) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
    except requests.RequestException:
        status = 0
    return status, time.monotonic() - started


def test_the_launcher_restarts_a_crashed_child_keeps_running_without_redis_and_stops_every_process_it_started(
    app, private_redis, tmp_path
):
    port = free_port()
    env = _env(app, private_redis, PORT=str(port), WEB_CONCURRENCY="1", GROUPSHOP_DATA_DIR=str(tmp_path))
    launcher = _spawn(["-m", "api.devserver"], env, tmp_path / "run.log")
    try:
        wait_for(lambda: _health(port)[0] == 200, 90)
        parent = psutil.Process(launcher.pid)
        wait_for(lambda: len(_children_by_role(parent)) == 3, 10)
        before = _children_by_role(parent)
        crashed = psutil.Process(before["worker"])
        wait_for(lambda: any(_pgid(child) == crashed.pid for child in crashed.children()), 30)  # its scheduler
        crashed.suspend()  # it forks no work horse while its children are noted
        # SIGSTOP lands when the worker next leaves the kernel: until it shows stopped it may still
        # fork a horse that the note below would miss (an orphan taken for the restarted worker).
        wait_for(lambda: crashed.status() == psutil.STATUS_STOPPED, 5)
        family = crashed.children(recursive=True)  # its scheduler, maybe a work horse (in a group of its own)
        scheduler = next(child for child in family if _pgid(child) == crashed.pid)
        adopted = frozenset(child.pid for child in family)

        crashed.kill()  # a crash: the launcher restarts it, the others keep running
        wait_for(lambda: _children_by_role(parent, adopted).get("worker") not in (None, crashed.pid), 15)
        scheduler.wait(10)  # and what the crashed worker left in its group is stopped
        after_crash = _children_by_role(parent, adopted)
        assert (after_crash["gunicorn"], after_crash["cron"]) == (before["gunicorn"], before["cron"])

        private_redis.stop()
        time.sleep(3)
        status, took = _health(port)
        assert (status, took < 1.0) == (503, True)
        # Nothing died for lack of Redis.
        assert _children_by_role(parent, adopted) == after_crash, (tmp_path / "run.log").read_text()[-5000:]
        private_redis.start()
        wait_for(lambda: _health(port)[0] == 200, 5)
        assert _children_by_role(parent, adopted) == after_crash, (tmp_path / "run.log").read_text()[-5000:]

        everything = parent.children(recursive=True)
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(40) == 0
        _, alive = psutil.wait_procs(everything, timeout=5)
        assert alive == []
        assert "\nstopped\n" in (tmp_path / "run.log").read_text()
        assert "exited with" in (tmp_path / "run.log").read_text()
    finally:
        _kill_everything([launcher])
