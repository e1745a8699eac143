"""CATALOG_CACHE_TTL: seconds, or 0 for no catalog cache; never negative."""

from __future__ import annotations

import pytest

from api.config import Settings


@pytest.fixture(autouse=True)
def _development(monkeypatch):
    monkeypatch.setenv("GROUPSHOP_ENV", "development")


@pytest.mark.parametrize(("raw", "expected"), [("", 300), ("0", 0), ("60", 60)])
def test_the_catalog_cache_ttl(monkeypatch, raw, expected):
    monkeypatch.setenv("CATALOG_CACHE_TTL", raw)
    assert Settings.from_env().catalog_cache_ttl == expected


def test_a_negative_catalog_cache_ttl_is_refused(monkeypatch):
    monkeypatch.setenv("CATALOG_CACHE_TTL", "-1")
    with pytest.raises(RuntimeError, match="CATALOG_CACHE_TTL"):
        Settings.from_env()
