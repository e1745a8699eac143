"""WORKER_TTL: RQ's worker TTL, at least 16 s so that its blocking dequeue waits at least 1 s."""

from __future__ import annotations

import pytest

from api.config import Settings


@pytest.fixture(autouse=True)
def _development(monkeypatch):
    monkeypatch.setenv("GROUPSHOP_ENV", "development")


@pytest.mark.parametrize(("raw", "expected"), [("", 60), ("16", 16), ("300", 300)])
def test_the_worker_ttl(monkeypatch, raw, expected):
    monkeypatch.setenv("WORKER_TTL", raw)
    assert Settings.from_env().worker_ttl == expected


@pytest.mark.parametrize("raw", ["15", "0", "-1"])
def test_a_worker_ttl_under_sixteen_seconds_is_refused(monkeypatch, raw):
    monkeypatch.setenv("WORKER_TTL", raw)
    with pytest.raises(RuntimeError, match="WORKER_TTL must be at least 16"):
        Settings.from_env()
