"""`groupshop cron`: enqueue every registered sweep at its interval, whatever Redis does.

A small loop of our own rather than rq.cron.CronScheduler, which exits on the first Redis error.
A sweep that could not be enqueued stays due and is tried again after a wait that backs off up to
REDIS_RETRY_MAX seconds, so when Redis returns every overdue sweep is enqueued at once. A sweep
whose previous job is still waiting in the queue (no worker running) or still running (a long
run of the 10 s expiry sweep) is not enqueued again, so an idle queue does not fill up with copies
and two workers do not sweep the same rows at once. Sweeps are idempotent: running several cron processes is
fine.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job, JobStatus

from api.worker import Backoff, interruptible_sleep
from shop.core.cache import BACKGROUND_REDIS_EXTENSION
from shop.core.runner import sweeps

log = logging.getLogger(__name__)

WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass
class Sweep:
    name: str
    func: Callable[[], Any]
    every: float
    due: float = 0.0
    last_job_id: str | None = None


class Cron:
    def __init__(self, connection: Redis, queue_name: str, *, retry_max: float, interval_max: float = 0) -> None:
        self.queue = Queue(queue_name, connection=connection)
        self.backoff = Backoff(retry_max)
        self.stopping = False
        now = time.monotonic()
        self.sweeps = [
            Sweep(name, func, min(every, interval_max) if interval_max else every, due=now)
            for name, (func, every) in sorted(sweeps().items())
        ]

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def run_due(self) -> None:
        """Enqueue every due sweep; raises RedisError (the ones not reached stay due)."""
        for sweep in self.sweeps:
            now = time.monotonic()
            if sweep.due > now:
                continue
            if sweep.last_job_id and self._still_waiting(sweep.last_job_id):
                log.info("cron: %s not enqueued again: its last job is still waiting or running", sweep.name)
            else:
                sweep.last_job_id = self.queue.enqueue(sweep.func).id
                log.info("cron: enqueued %s", sweep.name)
            sweep.due = now + sweep.every

    def _still_waiting(self, job_id: str) -> bool:
        job = self.queue.fetch_job(job_id)
        if job is None:
            return False
        status = job.get_status(refresh=False)
        return status in WAITING or (status == JobStatus.STARTED and self._being_worked(job))

    def _being_worked(self, job: Job) -> bool:
        """A started job whose worker is still registered and still names it as its current job.
        One left `started` by a worker round that a Redis outage ended (its horse could not write
        the result) is not: RQ would call it abandoned only minutes later, and until then the sweep
        would never run again."""
        if not job.worker_name:
            return True
        key = Worker.redis_worker_namespace_prefix + job.worker_name
        connection = self.queue.connection
        if key not in set(Worker.all_keys(connection=connection)):
            return False
        worker = Worker.find_by_key(key, connection=connection)
        return worker is not None and worker.get_current_job_id() == job.id

    def run(self) -> None:
        log.info("cron: %d sweeps on queue %s", len(self.sweeps), self.queue.name)
        while not self.stopping:
            try:
                self.run_due()
            except RedisError as exc:
                wait = self.backoff.next()
                log.error("cron: Redis error (%s); trying again in %.1f s", exc, wait)
                interruptible_sleep(wait, lambda: self.stopping)
                continue
            self.backoff.reset()
            next_due = min(sweep.due for sweep in self.sweeps) if self.sweeps else time.monotonic() + 60
            interruptible_sleep(max(0.0, next_due - time.monotonic()), lambda: self.stopping)
        log.info("cron: stopped")


def run_cron(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    cron = Cron(
        app.extensions[BACKGROUND_REDIS_EXTENSION],
        settings.queue_name,
        retry_max=settings.redis_retry_max,
        interval_max=settings.sweep_interval_max,
    )
    signal.signal(signal.SIGINT, cron.stop)
    signal.signal(signal.SIGTERM, cron.stop)
    cron.run()
