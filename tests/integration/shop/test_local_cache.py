"""The process-local copy of the versioned cache: a hit costs no Redis round trip while the bump
listener is subscribed; a bump (this process's at its commit, another's by its message) retires
the copy; an answer read before a bump and stored after it is not kept."""

from __future__ import annotations

import time

import pytest
from flask import current_app

from shop.core.cache import BUMP_CHANNEL, LocalCache, bump_after_commit, cached, local_cache, redis_client
from shop.core.db import transaction

NS = "catalog:local-test"


def _wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


@pytest.fixture
def local(ctx) -> LocalCache:
    cache = local_cache()
    assert cache is not None
    _wait_until(lambda: cache.live)
    return cache


@pytest.fixture
def redis_calls(local, monkeypatch) -> list[str]:
    """The MGETs the cache sends to Redis from now on."""
    calls: list[str] = []
    client = redis_client()
    real = client.mget

    def mget(*keys):
        calls.append("mget")
        return real(*keys)

    monkeypatch.setattr(client, "mget", mget)
    return calls


def test_a_second_read_is_served_without_asking_redis(local, redis_calls):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"first"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"first"
    assert redis_calls == ["mget"]


def test_this_process_bump_retires_the_copy_at_its_commit(local, redis_calls):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    with transaction():
        bump_after_commit(NS)
    assert cached(NS, "k", 60, lambda: b"second") == b"second"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"second"
    assert redis_calls == ["mget", "mget"]


def test_another_process_bump_arrives_by_message(local, redis_calls):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    # What another API process does after its commit: bump the version, publish the namespace.
    other = redis_client()
    other.incr(f"gs:ver:{NS}")
    other.publish(BUMP_CHANNEL, f"{NS}|another-process")
    _wait_until(lambda: local.get(NS, "k") is None)
    assert cached(NS, "k", 60, lambda: b"second") == b"second"


def test_this_process_skips_its_own_message(local, redis_calls):
    with transaction():
        bump_after_commit(NS)
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    time.sleep(0.2)  # the bump's message has come back by now, and was skipped
    assert local.get(NS, "k") == b"first"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"first"
    assert redis_calls == ["mget"]


def test_an_answer_read_before_a_bump_and_stored_after_it_is_not_kept(local, redis_calls):
    def produce_while_a_writer_commits() -> bytes:
        with transaction():
            bump_after_commit(NS)
        return b"maybe stale"

    assert cached(NS, "k", 60, produce_while_a_writer_commits) == b"maybe stale"
    assert local.get(NS, "k") is None
    assert cached(NS, "k", 60, lambda: b"fresh") == b"fresh"
    assert cached(NS, "k", 60, lambda: b"not asked for") == b"fresh"


def test_the_copy_is_not_served_while_the_listener_is_down(local, redis_calls):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    local._set_live(False)  # what losing the subscription does
    try:
        assert local.get(NS, "k") is None
        assert cached(NS, "k", 60, lambda: b"not asked for") == b"first"  # from Redis
        assert redis_calls == ["mget", "mget"]
    finally:
        local._set_live(True)


def test_an_entry_lives_no_longer_than_its_ttl(local, redis_calls, monkeypatch):
    assert cached(NS, "k", 60, lambda: b"first") == b"first"
    later = time.monotonic() + 61
    monkeypatch.setattr("shop.core.cache.time.monotonic", lambda: later)
    assert local.get(NS, "k") is None


def test_the_copy_keeps_at_most_its_number_of_entries(local):
    small = LocalCache(current_app.config["SETTINGS"].redis_url, max_entries=3)
    small._live = True
    for n in range(5):
        small.put(NS, f"k{n}", b"v", 60, small.generation(NS))
    assert [small.get(NS, f"k{n}") for n in range(5)] == [None, None, b"v", b"v", b"v"]


def test_with_the_cache_off_nothing_is_kept(local, redis_calls):
    assert cached(NS, "k", 0, lambda: b"first") == b"first"
    assert cached(NS, "k", 0, lambda: b"second") == b"second"
    assert redis_calls == []
    assert local.get(NS, "k") is None
