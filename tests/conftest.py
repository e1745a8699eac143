"""The test harness: real PostgreSQL and Redis.

- TEST_DATABASE_URL / TEST_REDIS_URL when set (CI), otherwise embedded servers under
  .data/test. The database is created if missing and its schema rebuilt from the migrations once
  per run; the Redis database is flushed before every test, so give the suite one of its own.
- Each database test runs inside a transaction that is rolled back: the code under test commits
  through `transaction()` as usual, which only releases a savepoint here.
- Tests marked `committing` commit for real on separate connections (to race them); the tables
  are truncated after each such test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import scoped_session, sessionmaker

from api import create_app
from api.config import Settings, normalize_database_url
from shop.core.cache import LOCAL_CACHE_EXTENSION, redis_client
from shop.core.db import db
from shop.offers import flash_sales

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = "groupshop_test"


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalize_database_url(url)
        target = make_url(url)
        admin = target.set(database="postgres")
        from api.embedded import create_database

        create_database(admin.render_as_string(hide_password=False), target.database)
        return url
    from api import embedded

    return normalize_database_url(embedded.start_postgres(ROOT / ".data" / "test", database=TEST_DB))


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    from api import embedded

    return embedded.start_redis(ROOT / ".data" / "test", name="redis-test")


def _rebuild_schema(app: Flask) -> None:
    from flask_migrate import upgrade

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))


class FreshContextClient(FlaskClient):
    """Each request gets its own app context, and so its own session, as in production (Flask
    would otherwise reuse the test's app context, and its session, for every request)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    settings = Settings(
        env="test",
        database_url=_database_url(),
        redis_url=_redis_url(),
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        wechat_auth="fake",
        queue_name="groupshop-test",
    )
    app = create_app(settings)
    app.test_client_class = FreshContextClient
    _rebuild_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()
    from api import embedded

    embedded.stop_all()  # whatever this run started (nothing when the TEST_* URLs are set)


def _truncate_all(app: Flask) -> None:
    with app.app_context():
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database(app: Flask, request: pytest.FixtureRequest) -> Iterator[None]:
    """Roll back everything the test did (or truncate, for `committing` tests); flush Redis."""
    with app.app_context():
        redis_client().flushdb()
    local = app.extensions.get(LOCAL_CACHE_EXTENSION)
    if local is not None:
        local.clear()  # Redis was flushed: what this process copied from it is gone too
    flash_sales.forget_open_sales()  # ids may start over (committing tests truncate)
    if request.node.get_closest_marker("committing"):
        yield
        _truncate_all(app)
        return
    with app.app_context():
        connection = db.engine.connect()
    outer = connection.begin()
    original = db.session
    from flask_sqlalchemy.session import _app_ctx_id

    db.session = scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False),
        scopefunc=_app_ctx_id,
    )
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
        db.session = original
        outer.rollback()
        connection.close()


@pytest.fixture
def ctx(app: Flask, database: None) -> Iterator[Flask]:
    """An app context around the test, for calling services directly."""
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app: Flask, database: None):
    return app.test_client()


@pytest.fixture(scope="session")
def keys():
    """RSA keys for the WeChat Pay tests (a merchant's, the platform's, a public key, a stranger's),
    made once per run: generating them is the slow part."""
    from tests.wechatpay_stub import make_keys

    return make_keys()


@pytest.fixture
def events():
    """Every shop event published during the test (tests/event_recorder.py): `events.of(ORDER_PAID)`,
    `events.names()`."""
    from tests.event_recorder import recording

    yield from recording()
