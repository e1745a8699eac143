"""The RQ worker's process housekeeping: its scheduler is signalled only while it runs, it gets
the worker's log options, the worker's connection read timeout follows the settings, and a round
ended by a Redis error does not stay listed as a live worker."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.scheduler import RQScheduler

from api import worker as worker_module
from api.worker import AppScheduler, AppWorker, make_worker, run_worker


def _sleep_until_terminated(ready: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the handler an earlier test's RQ worker left
    ready.set()
    time.sleep(60)


def test_stopping_the_scheduler_again_after_it_exited_signals_no_process(app, monkeypatch):
    worker = make_worker(app)
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    scheduler = fork.Process(target=_sleep_until_terminated, args=(ready,))
    scheduler.start()
    assert ready.wait(10)
    worker.scheduler = SimpleNamespace(_process=scheduler)
    sent: list[tuple[int, int]] = []
    real_kill = os.kill

    def kill(pid: int, signum: int) -> None:
        sent.append((pid, signum))
        real_kill(pid, signum)

    monkeypatch.setattr(os, "kill", kill)
    worker.stop_scheduler()  # RQ's teardown
    assert scheduler.exitcode == -signal.SIGTERM
    worker.stop_scheduler()  # run_worker's `finally`: the pid may be another process's by now
    assert sent == [(scheduler.pid, signal.SIGTERM)]


def test_the_scheduler_gets_the_date_and_log_formats_the_worker_was_given(app, monkeypatch):
    given: dict[str, Any] = {}
    real_init = RQScheduler.__init__

    def init(self: RQScheduler, *args: Any, **kwargs: Any) -> None:
        given.update(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(RQScheduler, "__init__", init)
    monkeypatch.setattr(AppScheduler, "start", lambda self: None)  # no process: only its options matter
    worker = make_worker(app)
    worker._start_scheduler(False, "INFO", "%d %H", "%(levelname)s %(message)s")
    assert isinstance(worker.scheduler, AppScheduler)
    assert (given["date_format"], given["log_format"]) == ("%d %H", "%(levelname)s %(message)s")
    worker.scheduler.release_locks()


@pytest.mark.parametrize(("worker_ttl", "command_timeout", "read_timeout"), [(60, 10, 55), (16, 1, 2), (30, 2.5, 17.5)])
def test_the_workers_read_timeout_is_its_dequeue_wait_plus_the_background_timeout(
    app, worker_ttl, command_timeout, read_timeout
):
    connection = Redis.from_url(app.config["SETTINGS"].redis_url, socket_timeout=command_timeout)
    AppWorker(
        [Queue("q", connection=connection)],
        connection=connection,
        worker_ttl=worker_ttl,
        command_timeout=command_timeout,
    )
    assert connection.connection_pool.connection_kwargs["socket_timeout"] == read_timeout
    connection.close()


def test_a_round_ended_by_a_redis_timeout_is_unregistered_when_the_next_round_starts(app, monkeypatch):
    """Redis hung: RQ's main loop quit on a timeout and its teardown could not unregister the
    worker either; the next round must not leave it listed as alive (until its key expires)."""
    rounds: list[str] = []
    listed: list[set[str]] = []

    def work(self: AppWorker, with_scheduler: bool = False, **options: Any) -> bool:
        rounds.append(self.name)
        self.register_birth()
        if len(rounds) == 1:
            raise RedisTimeoutError("Timeout reading from socket")
        listed.append({worker.name for worker in Worker.all(connection=self.connection)})
        os.kill(os.getpid(), signal.SIGTERM)  # run_worker's handler: stop after this round
        self.register_death()
        return False

    monkeypatch.setattr(AppWorker, "work", work)
    monkeypatch.setattr(worker_module, "interruptible_sleep", lambda seconds, stopped: None)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_worker(app)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert len(rounds) == 2
    assert listed == [{rounds[1]}]
