"""The job runner door.

`enqueue` inside a `transaction()` block queues the job once that transaction commits (never
before: a job must find the state that asked for it), and drops it if it rolls back. Outside any
`transaction()` block there is nothing to wait for, and the job is sent at once: so a call made
between two transactions (the fake provider's refund, which "notifies" through a job) still
sends it. Jobs take ids, not objects, so their arguments serialize; they are idempotent because
the database, not the queue, says whether the work is done.

If Redis cannot take the job when the transaction commits, the job is kept in the process's
outbox and enqueued when Redis answers again (shop/core/redisguard.py); a delayed job keeps its due
time. A process that exits before that loses it: the job's sweep finds the work.

Jobs are asked for by name. A room's `jobs` module registers its functions (`register_job`), and
a service enqueues `"payments.close_payment"` without importing the module that runs it: so the
service never imports its jobs (which import services), and a room may ask for work a room above
it does (orders asks payments to close a payment) without an import going the wrong way.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import Select

from shop.core.db import after_commit, db, in_transaction_block, transaction, utcnow
from shop.core.redisguard import guard_of

QUEUE_EXTENSION = "groupshop.queue"
log = logging.getLogger(__name__)
Job = Callable[..., Any]
_jobs: dict[str, Job] = {}


def register_job(name: str, func: Job) -> Job:
    """Make `func` the job called `name` (idempotent for the same function; a second function
    under one name is a programming error)."""
    known = _jobs.get(name)
    if known is not None and known is not func:
        raise ValueError(f"job {name!r} is already {known.__module__}.{known.__qualname__}")
    _jobs[name] = func
    return func


def job(name: str) -> Callable[[Job], Job]:
    """Decorator form of `register_job`."""
    return lambda func: register_job(name, func)


def job_function(name: str) -> Job:
    """The function registered as `name`; KeyError (a programming error) when none is."""
    try:
        return _jobs[name]
    except KeyError:
        raise KeyError(f"no job is registered as {name!r}; is its room's jobs module imported?") from None


def registered_jobs() -> dict[str, Job]:
    return dict(_jobs)


def enqueue(
    name: str,
    *args: Any,
    delay: timedelta | None = None,
    job_id: str | None = None,
) -> None:
    """Run the job registered as `name` with `args` on a worker once the current transaction
    has committed (at once when no `transaction()` block is open).

    With `delay` the job is scheduled for later; with `job_id` a second enqueue of the same id
    while the first is pending is harmless (the job itself must still be idempotent).
    """
    func = job_function(name)  # an unknown name fails here, in the caller, not after the commit
    queue = current_app.extensions[QUEUE_EXTENSION]
    guard = guard_of(queue.connection)
    kwargs: dict[str, Any] = {"job_id": job_id} if job_id else {}

    def _send() -> None:
        due = utcnow() + delay if delay is not None else None
        try:
            _enqueue(due)
        except RedisError:
            if guard is None:
                raise
            guard.defer_job(f"{name}{args!r}", lambda: _enqueue(due))

    def _enqueue(due: datetime | None) -> None:
        if due is not None and due > utcnow():
            queue.enqueue_at(due, func, *args, **kwargs)
        else:
            queue.enqueue(func, *args, **kwargs)

    if in_transaction_block():
        after_commit(_send)
    else:
        _send()


# Crash points: a job calls `checkpoint(name)` where a crash would leave work half done (after a
# transaction commits, before or after a provider call). It does nothing, unless the process was
# started with KILL_AT_ENV naming that point: then the process kills itself with SIGKILL, as a
# power cut or the OOM killer would, and a test proves the sweep or the retry finishes the work
# exactly once (tests/resilience/test_crash_points.py).
KILL_AT_ENV = "GROUPSHOP_KILL_AT"


def checkpoint(name: str) -> None:
    """A named point of a job where a crash test may kill this process (see KILL_AT_ENV)."""
    armed = os.environ.get(KILL_AT_ENV)
    if armed and name in armed.split(","):
        log.warning("killed at the crash point %s (%s is set)", name, KILL_AT_ENV)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


# Periodic sweeps: each finds due work a lost job missed. The `groupshop cron` process enqueues
# every registered sweep at its interval; sweeps are idempotent, so several cron processes are fine.
_sweeps: dict[str, tuple[Callable[[], Any], int]] = {}


def _sweep_name(func: Callable[[], Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def register_sweep(func: Callable[[], Any], every_seconds: int) -> None:
    """Have `groupshop cron` enqueue `func` every `every_seconds` (idempotent: registered by its
    module and name, so importing or installing again keeps one entry)."""
    _sweeps[_sweep_name(func)] = (func, every_seconds)


def unregister_sweep(func: Callable[[], Any]) -> None:
    _sweeps.pop(_sweep_name(func), None)


def sweeps() -> dict[str, tuple[Callable[[], Any], int]]:
    return dict(_sweeps)


SWEEP_BATCH = 500


def each_due(query: Select, job: Callable[[int], object], *, batch: int | None = None, all_due: bool = False) -> int:
    """The body of a sweep, for every package: run `job(id)` for each id `query` selects, each on
    its own, and return how many succeeded.

    - `query` selects one id column, ordered oldest first (`order_by` is the caller's), and only
      what is due: the job makes an item stop being due (the database says what is done), so the
      next sweep does not see it again.
    - At most `batch` ids per run (SWEEP_BATCH unless given), so one run stays short; the rest
      waits for the next run. `all_due=True` lifts the limit, for a short list whose items stay
      due after their job (merchants whose certificates are refreshed every run): with a limit,
      the ones past it would never be reached.
    - The ids are read in a transaction of their own, closed before the first job: `job` opens its
      own `transaction()` (a job function of a jobs module is exactly that) and may call the network.
    - A job that raises is logged with its id and skipped, never fatal: the others still run and
      the next sweep tries it again.
    """
    if not all_due:
        query = query.limit(SWEEP_BATCH if batch is None else batch)
    with transaction():
        due = list(db.session.execute(query).scalars())
    done = 0
    for item_id in due:
        try:
            job(item_id)
            done += 1
        except Exception:
            log.exception("%s(%s) failed in its sweep; the next sweep tries again", job.__name__, item_id)
    return done
