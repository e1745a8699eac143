"""Tests of what happens while Redis is stopped or hung: each one runs its own app(s) and
processes against a private redis-server it stops, restarts and hangs (tests/redis_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from api import create_app
from api.config import Settings
from shop.core.cache import LOCAL_CACHE_EXTENSION
from shop.core.db import db
from tests.conftest import FreshContextClient
from tests.redis_server import PrivateRedis
from tests.resilience.helpers import OUTAGE_COOLOFF, OUTAGE_QUEUE, OUTAGE_TIMEOUT


@pytest.fixture(autouse=True)
def _database(database):
    """The tables are truncated after each test (they all commit), and the suite's Redis flushed."""


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture
def make_app(app: Flask, private_redis: PrivateRedis) -> Iterator[Callable[[], Flask]]:
    """Apps (think: separate API processes) on the test database and the private Redis, with a
    0.2 s Redis timeout and a 1 s cool-off."""
    made: list[Flask] = []

    def _make() -> Flask:
        settings = Settings(
            env="test",
            database_url=app.config["SETTINGS"].database_url,
            redis_url=private_redis.url,
            secret_key=app.config["SETTINGS"].secret_key,
            queue_name=OUTAGE_QUEUE,
            redis_timeout=OUTAGE_TIMEOUT,
            redis_cooloff=OUTAGE_COOLOFF,
        )
        outage_app = create_app(settings)
        outage_app.test_client_class = FreshContextClient
        made.append(outage_app)
        return outage_app

    yield _make
    for made_app in made:
        local = made_app.extensions.get(LOCAL_CACHE_EXTENSION)
        if local is not None:
            local.close()
        with made_app.app_context():
            db.engine.dispose()
