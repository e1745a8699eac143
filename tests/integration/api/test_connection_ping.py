"""Pooled connections: one returned a moment ago is handed out without a ping (a round trip per
request saved); one that sat idle is pinged first, and a dead one is replaced unseen."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

import api
from api import install_fork_guard


@pytest.fixture
def engine(app):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1, max_overflow=0, pool_pre_ping=False)
    install_fork_guard(engine)
    engine.pings = []
    real = engine.dialect.do_ping

    def do_ping(dbapi_connection):
        engine.pings.append(dbapi_connection)
        return real(dbapi_connection)

    engine.dialect.do_ping = do_ping
    yield engine
    engine.dispose()


def _backend(conn) -> int:
    return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_used_a_moment_ago_is_not_pinged(engine, monkeypatch):
    monkeypatch.setattr(api, "IDLE_PING_SECONDS", 60.0)
    with engine.connect() as conn:
        first = _backend(conn)
    with engine.connect() as conn:
        assert _backend(conn) == first
    assert len(engine.pings) == 1  # the first checkout of a new connection only


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(engine, monkeypatch, app):
    monkeypatch.setattr(api, "IDLE_PING_SECONDS", 60.0)
    with engine.connect() as conn:
        first = _backend(conn)
    # The server drops it while it sits in the pool (a restart, an idle timeout, a proxy).
    killer = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    killer.dispose()
    monkeypatch.setattr(api, "IDLE_PING_SECONDS", 0.0)  # everything counts as idle now
    with engine.connect() as conn:
        assert _backend(conn) != first  # replaced at checkout, no error reached the caller
    assert len(engine.pings) >= 2
