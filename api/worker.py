"""RQ workers that run each job inside the app context and close its session afterwards, and the
long-running `groupshop worker` loop that outlives Redis outages.

RQ's own worker gives up on several Redis errors (a timeout in its main loop, an error while it
registers, heartbeats or tears down), and the scheduler process it forks for delayed jobs dies on
the first one. Here the worker runs in rounds: when a round ends for any reason other than a stop
signal, the loop waits (backing off up to REDIS_RETRY_MAX seconds) and starts a new one (which
unregisters the previous round's worker, if Redis could not be told when it ended); the
scheduler retries in place; and neither outlives the process that started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

from shop.core.cache import BACKGROUND_REDIS_EXTENSION, REDIS_EXTENSION
from shop.core.db import db
from shop.core.redisguard import guard_of

log = logging.getLogger(__name__)

# How often the worker cleans RQ's registries and restarts a scheduler that is not running.
MAINTENANCE_INTERVAL = 60
SCHEDULER_STOP_WAIT = 10.0
# Workers of ended rounds kept to be unregistered once Redis answers (the oldest are dropped: their
# registration expires by itself after the worker TTL + 60 s).
MAX_ENDED_ROUNDS = 100


class Backoff:
    """Waits that double from `initial` up to `cap` seconds, and start over after a success."""

    def __init__(self, cap: float, initial: float = 1.0) -> None:
        self.cap = cap
        self.initial = min(initial, cap)
        self._next = self.initial

    def next(self) -> float:
        wait = self._next
        self._next = min(self.cap, self._next * 2)
        return wait

    def reset(self) -> None:
        self._next = self.initial


def interruptible_sleep(seconds: float, stopped: Callable[[], bool]) -> None:
    """Sleep up to `seconds`, returning early once `stopped()` says so (checked every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while not stopped():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.2, left))


class _AppContextMixin:
    """Jobs in the app context; and the read timeout of the worker's connection (see below)."""

    app: Flask
    dequeue_timeout: int

    def __init__(self, *args: Any, command_timeout: float, **kwargs: Any) -> None:
        self.command_timeout = command_timeout
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    @property
    def connection_timeout(self) -> float:
        """The read timeout RQ sets on the worker's connection, for all its commands: the blocking
        dequeue's wait (worker TTL - 15 s) plus REDIS_BACKGROUND_TIMEOUT (RQ adds a fixed 10 s)."""
        return self.dequeue_timeout + self.command_timeout

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)  # type: ignore[misc]
            finally:
                db.session.remove()
                _drain_outbox(self.app)


def _drain_outbox(app: Flask) -> None:
    """A job's after-commit writes that Redis could not take are in this process's outbox; a
    work horse exits right after the job, so it waits a little for Redis to take them."""
    guard = guard_of(app.extensions[REDIS_EXTENSION])
    if guard is not None and guard.pending():
        settings = app.config["SETTINGS"]
        guard.drain(timeout=2 * settings.redis_cooloff + settings.redis_timeout)


class AppScheduler(RQScheduler):
    """RQ's scheduler (moves due delayed jobs to their queue) that retries on Redis errors instead
    of exiting, and stops when the worker that forked it is gone."""

    def __init__(self, *args: Any, retry_max: float, command_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_max = retry_max
        # Its own read timeout: it never blocks on purpose, unlike the worker's dequeue.
        self._pool_kwargs = {**self._pool_kwargs, "socket_timeout": command_timeout}

    def work(self) -> None:
        self._install_signal_handlers()
        parent = os.getppid()
        backoff = Backoff(self.retry_max)
        registered = False
        while not self._stop_requested:
            if os.getppid() != parent:
                self.log.warning("Scheduler %s: its worker is gone; stopping", self.name)
                break
            try:
                if not registered:
                    self.register_birth()
                    registered = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except RedisError as exc:
                wait = backoff.next()
                self.log.error("Scheduler %s: Redis error (%s); retrying in %.1f s", self.name, exc, wait)
                self._connection = None  # a fresh pool on the next try
                interruptible_sleep(wait, lambda: self._stop_requested)
                continue
            backoff.reset()
            interruptible_sleep(self.interval, lambda: self._stop_requested)
        try:
            self.stop()
        except RedisError as exc:  # its locks expire by themselves
            self.log.warning("Scheduler %s: could not release its locks (%s)", self.name, exc)


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job; the engine's fork guard keeps it off the parent's connections.

    Its scheduler is an `AppScheduler` with a name stable for the worker process, so a new round
    reclaims the scheduler lock the previous round held instead of waiting for it to expire.
    """

    stop_signalled = False
    stop_requested_elsewhere: Callable[[], bool] = staticmethod(lambda: False)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self.stop_requested_elsewhere():  # a signal came before RQ's handlers were in place
            self.stop_signalled = self._stop_requested = True

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)

    def request_force_stop(self, signum: int, frame: Any) -> None:
        self.stop_signalled = True
        super().request_force_stop(signum, frame)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        if burst:
            super()._start_scheduler(burst, logging_level, date_format, log_format)
            return
        settings = self.app.config["SETTINGS"]
        scheduler = AppScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
            name=f"{socket.gethostname()}:{os.getpid()}:scheduler",
            retry_max=settings.redis_retry_max,
            command_timeout=settings.redis_background_timeout,
        )
        self.scheduler = scheduler
        if scheduler.acquire_locks():
            scheduler.start()

    def stop_scheduler(self) -> None:
        """SIGTERM the scheduler and wait for it a while; SIGKILL it if it does not go.

        Called twice per round (RQ's teardown, then run_worker's `finally`): once the scheduler
        has exited (and been reaped) its pid may belong to another process, so nothing is sent.
        """
        process = self.scheduler._process if self.scheduler else None
        if process is None or not process.pid or process.exitcode is not None:
            return
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGTERM)
        process.join(SCHEDULER_STOP_WAIT)
        if process.is_alive():
            self.log.warning("Worker %s: scheduler %s did not stop; killing it", self.name, process.pid)
            process.kill()
            process.join()


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in-process (tests, burst runs); arguments still go through Redis."""


def make_worker(app: Flask, *, simple: bool = False) -> AppWorker | AppSimpleWorker:
    settings = app.config["SETTINGS"]
    connection = app.extensions[BACKGROUND_REDIS_EXTENSION]
    cls = AppSimpleWorker if simple else AppWorker
    worker = cls(
        [Queue(settings.queue_name, connection=connection)],
        connection=connection,
        worker_ttl=settings.worker_ttl,
        maintenance_interval=MAINTENANCE_INTERVAL,
        command_timeout=settings.redis_background_timeout,
    )
    worker.max_connection_wait_time = settings.redis_retry_max
    worker.app = app
    return worker


def run_burst(app: Flask) -> bool:
    """Run every queued job now, in this process, then return (used by tests)."""
    return make_worker(app, simple=True).work(burst=True)


def run_worker(app: Flask) -> None:
    """`groupshop worker`: work (with the scheduler) until SIGTERM/SIGINT, whatever Redis does."""
    settings = app.config["SETTINGS"]
    backoff = Backoff(settings.redis_retry_max)
    stopping = False

    def _stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stray_horses: list[int] = []
    ended: list[AppWorker] = []  # rounds that ended on an error, maybe still registered in Redis
    while not stopping:
        worker: AppWorker | None = None
        started = time.monotonic()
        try:
            worker = make_worker(app)  # asks Redis for its address already
            ended = _unregister(ended)
            worker.stop_requested_elsewhere = lambda: stopping
            worker.work(with_scheduler=True)
        except RedisError as exc:
            log.error("worker: Redis error (%s)", exc)
        finally:
            if worker is not None and worker.horse_pid:  # the round ended while a job ran
                stray_horses.append(worker.horse_pid)
            if worker is not None and worker.scheduler is not None:
                worker.stop_scheduler()
            if worker is not None:
                ended = [*ended, worker][-MAX_ENDED_ROUNDS:]
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        stray_horses = _reap(stray_horses)
        if stopping or (worker is not None and worker.stop_signalled):
            break
        if time.monotonic() - started > backoff.cap:
            backoff.reset()
        wait = backoff.next()
        log.warning("worker: stopped working (Redis unavailable?); starting again in %.1f s", wait)
        interruptible_sleep(wait, lambda: stopping)
    for pid in stray_horses:  # let a job still running finish, as a warm shutdown does
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _unregister(workers: list[AppWorker]) -> list[AppWorker]:
    """Tell Redis that the workers of earlier rounds are dead: a round ended by a Redis error could
    not (RQ's teardown failed too), and it would be listed as a live worker until its key expired.
    Saying it twice is harmless. Returns the ones Redis could not be told about yet."""
    left = []
    for worker in workers:
        try:
            worker.register_death()
        except RedisError:
            left.append(worker)
    return left


def _reap(pids: list[int]) -> list[int]:
    """Collect the horses that have exited; return the ones still running."""
    running = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done == 0:
            running.append(pid)
    return running
