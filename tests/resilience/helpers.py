"""Helpers of the Redis outage tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from shop.core.runner import KILL_AT_ENV
from tests.factories import make_merchant, make_product

OUTAGE_QUEUE = "groupshop-outage"
OUTAGE_TIMEOUT = 0.2
OUTAGE_COOLOFF = 1.0


def shop_with_stock(outage_app: Flask, stock: int = 1000) -> tuple[Any, int, int]:
    """A merchant with one product on the shelf: (merchant, product id, SKU id)."""
    with outage_app.app_context():
        merchant = make_merchant()
        product = make_product(merchant, "旧标题", skus=[{"specs": {}, "price": 500, "stock": stock}])
        return merchant, product.id, product.skus[0].id


def wait_for(condition: Callable[[], bool], seconds: float, explain: Callable[[], str] | None = None) -> float:
    """Poll `condition` until it holds; return how long that took (fail after `seconds`, with what
    `explain` says)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started >= seconds:
            raise AssertionError(f"not within {seconds} s" + (f"\n{explain()}" if explain else ""))
        time.sleep(0.05)
    return time.monotonic() - started


ROOT = Path(__file__).resolve().parents[2]
# Runs every job queued on the app's queue in this fresh process, then exits.
_WORKER = "from wsgi import app; from api.worker import run_burst; run_burst(app)"


@dataclass(frozen=True)
class WorkerRun:
    returncode: int  # -9: killed by SIGKILL
    log: str


def run_job_worker(
    app: Flask, private_redis: Any, log_path: Path, *, kill_at: str | None = None, timeout: float = 120
) -> WorkerRun:
    """Run the jobs queued on `app`'s queue (a private Redis) in a real worker process, which kills
    itself (SIGKILL) at the crash point `kill_at` when a job reaches it (shop.core.runner.checkpoint)."""
    settings = app.config["SETTINGS"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_") and k != KILL_AT_ENV}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=private_redis.url,
        GROUPSHOP_ENV="test",
        SECRET_KEY=settings.secret_key,
        QUEUE_NAME=settings.queue_name,
        PYTHONPATH=str(ROOT),
    )
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    with log_path.open("wb") as out:
        process = subprocess.run(
            [sys.executable, "-c", _WORKER], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
        )
    return WorkerRun(process.returncode, log_path.read_text(errors="replace"))
