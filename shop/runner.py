"""The job runner door.

`enqueue` queues a job to run after the current transaction commits (never before: a job must
find the state that asked for it). Jobs take ids, not objects, so their arguments serialize;
they are idempotent because the database, not the queue, says whether the work is done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app

from shop.db import after_commit

QUEUE_EXTENSION = "groupshop.queue"


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    delay: timedelta | None = None,
    job_id: str | None = None,
) -> None:
    """Run `func(*args)` on a worker once the current transaction has committed.

    With `delay` the job is scheduled for later; with `job_id` a second enqueue of the same id
    while the first is pending is harmless (the job itself must still be idempotent).
    """
    queue = current_app.extensions[QUEUE_EXTENSION]

    def _send() -> None:
        kwargs: dict[str, Any] = {"job_id": job_id} if job_id else {}
        if delay is not None:
            queue.enqueue_in(delay, func, *args, **kwargs)
        else:
            queue.enqueue(func, *args, **kwargs)

    after_commit(_send)


# Periodic sweeps: each finds due work a lost job missed. The `groupshop cron` process enqueues
# every registered sweep at its interval; sweeps are idempotent, so several cron processes are fine.
_sweeps: dict[str, tuple[Callable[[], Any], int]] = {}


def register_sweep(func: Callable[[], Any], every_seconds: int) -> None:
    _sweeps[f"{func.__module__}.{func.__qualname__}"] = (func, every_seconds)


def sweeps() -> dict[str, tuple[Callable[[], Any], int]]:
    return dict(_sweeps)
