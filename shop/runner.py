"""The job runner door.

`enqueue` inside a `transaction()` block queues the job once that transaction commits (never
before: a job must find the state that asked for it), and drops it if it rolls back. Outside any
`transaction()` block there is nothing to wait for, and the job is sent at once: so a call made
between two transactions (the fake provider's refund, which "notifies" through a job) still
sends it. Jobs take ids, not objects, so their arguments serialize; they are idempotent because
the database, not the queue, says whether the work is done.

If Redis cannot take the job when the transaction commits, the job is kept in the process's
outbox and enqueued when Redis answers again (shop/redisguard.py); a delayed job keeps its due
time. A process that exits before that loses it: the job's sweep finds the work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from shop.db import after_commit, in_transaction_block, utcnow
from shop.redisguard import guard_of

QUEUE_EXTENSION = "groupshop.queue"


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    delay: timedelta | None = None,
    job_id: str | None = None,
) -> None:
    """Run `func(*args)` on a worker once the current transaction has committed (at once when no
    `transaction()` block is open).

    With `delay` the job is scheduled for later; with `job_id` a second enqueue of the same id
    while the first is pending is harmless (the job itself must still be idempotent).
    """
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
            guard.defer_job(f"{func.__name__}{args!r}", lambda: _enqueue(due))

    def _enqueue(due: datetime | None) -> None:
        if due is not None and due > utcnow():
            queue.enqueue_at(due, func, *args, **kwargs)
        else:
            queue.enqueue(func, *args, **kwargs)

    if in_transaction_block():
        after_commit(_send)
    else:
        _send()


# Periodic sweeps: each finds due work a lost job missed. The `groupshop cron` process enqueues
# every registered sweep at its interval; sweeps are idempotent, so several cron processes are fine.
_sweeps: dict[str, tuple[Callable[[], Any], int]] = {}


def register_sweep(func: Callable[[], Any], every_seconds: int) -> None:
    _sweeps[f"{func.__module__}.{func.__qualname__}"] = (func, every_seconds)


def sweeps() -> dict[str, tuple[Callable[[], Any], int]]:
    return dict(_sweeps)
