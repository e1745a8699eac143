"""RQ workers that run each job inside the app context and close its session afterwards."""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import Queue, SimpleWorker, Worker

from shop.cache import REDIS_EXTENSION
from shop.db import db


class _AppContextMixin:
    app: Flask

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)  # type: ignore[misc]
            finally:
                db.session.remove()


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job; the engine's fork guard keeps it off the parent's connections."""


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in-process (tests, burst runs); arguments still go through Redis."""


def make_worker(app: Flask, *, simple: bool = False) -> Worker:
    settings = app.config["SETTINGS"]
    connection = app.extensions[REDIS_EXTENSION]
    cls = AppSimpleWorker if simple else AppWorker
    worker = cls([Queue(settings.queue_name, connection=connection)], connection=connection)
    worker.app = app
    return worker


def run_burst(app: Flask) -> bool:
    """Run every queued job now, in this process, then return (used by tests)."""
    return make_worker(app, simple=True).work(burst=True)
