"""The process-local cache copy across processes (apps on one Redis, as API processes are) and
through Redis outages: another process's change reaches the copy by message; while Redis is
hung or stopped, the copy is dropped and not served; it comes back with Redis."""

from __future__ import annotations

import pytest

from shop.core.cache import LOCAL_CACHE_EXTENSION, bump_after_commit, cached
from shop.core.db import transaction
from tests.resilience.helpers import wait_for

NS = "catalog:outage-local"


def _read(app, produce):
    with app.app_context():
        return cached(NS, "k", 60, produce)


def _local(app):
    return app.extensions[LOCAL_CACHE_EXTENSION]


def test_a_change_in_one_process_retires_the_copy_of_another(make_app):
    reader, writer = make_app(), make_app()
    _read(reader, lambda: b"warm")  # starts the reader's listener
    wait_for(lambda: _local(reader).live, 5)
    with reader.app_context(), transaction():
        bump_after_commit(NS)  # whatever was there before the test
    assert _read(reader, lambda: b"first") == b"first"
    assert _read(reader, lambda: b"not asked for") == b"first"
    assert _local(reader).get(NS, "k") == b"first"

    with writer.app_context(), transaction():
        bump_after_commit(NS)

    took = wait_for(lambda: _local(reader).get(NS, "k") is None, 2)
    assert took < 1
    assert _read(reader, lambda: b"second") == b"second"


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_while_redis_is_out_the_copy_is_dropped_and_comes_back_with_redis(make_app, private_redis, outage):
    app = make_app()
    _read(app, lambda: b"warm")
    wait_for(lambda: _local(app).live, 5)
    with app.app_context(), transaction():
        bump_after_commit(NS)
    assert _read(app, lambda: b"first") == b"first"
    assert _local(app).get(NS, "k") == b"first"

    private_redis.stop() if outage == "stopped" else private_redis.hang()
    try:
        # A hung server is noticed by the listener's PING (every 2 s; two unanswered: it gives up).
        wait_for(lambda: not _local(app).live, 8)
        assert _local(app).get(NS, "k") is None
        # Not from the copy, and Redis cannot answer: produced (from PostgreSQL, in a real read).
        assert _read(app, lambda: b"produced") == b"produced"
    finally:
        private_redis.start() if outage == "stopped" else private_redis.resume()

    wait_for(lambda: _local(app).live, 12)
    assert _read(app, lambda: b"after") in (b"first", b"after")  # Redis kept or lost it
    # Once Redis answers the request path again (its breaker's cool-off), reads are copied again.
    wait_for(lambda: _read(app, lambda: b"after") is not None and _local(app).get(NS, "k") is not None, 5)
