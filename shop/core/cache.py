"""Redis access and versioned caches.

A cache namespace (e.g. one merchant's catalog) has a version number in Redis; writers bump it
after their transaction commits. An entry is stored tagged with the version its reader saw before
producing it, and is served only while that is still the current version. A reader that raced a
writer can only store data tagged with the old version, which no reader accepts any more, so a
cached answer is never older than the last committed change it could have seen.

A hit costs one round trip: the version and the entry are read together with one MGET.

When Redis is unreachable (the client's breaker is open, see shop/core/redisguard.py) every read is
produced from PostgreSQL and nothing is stored. A version bump that cannot be sent is kept in the
process's outbox and sent when Redis answers again (at once on recovery, or within a cool-off);
meanwhile this process does not read the namespace from the cache at all. Other processes may
serve an entry older than that change until the bump arrives, so for at most REDIS_COOLOFF
seconds after Redis answers again, or, if the committing process exited before that, until the
entry's TTL (CATALOG_CACHE_TTL) runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from shop.core.db import after_commit
from shop.core.redisguard import RedisUnavailable, guard_of

log = logging.getLogger(__name__)

REDIS_EXTENSION = "groupshop.redis"
BACKGROUND_REDIS_EXTENSION = "groupshop.redis.background"


def redis_client() -> Redis:
    """The request path's client: short timeouts, and it fails fast while Redis is out."""
    return current_app.extensions[REDIS_EXTENSION]


def _version_key(namespace: str) -> str:
    return f"gs:ver:{namespace}"


def bump_after_commit(namespace: str) -> None:
    """Invalidate every cached entry of `namespace` once the current transaction commits."""

    client = redis_client()
    guard = guard_of(client)

    def _incr() -> None:
        client.incr(_version_key(namespace))
        if guard is not None:
            guard.bumped(namespace)

    def _bump() -> None:
        try:
            _incr()
        except RedisError:
            if guard is None:
                raise
            guard.defer_bump(namespace, _incr)

    after_commit(_bump)


def _entry_key(namespace: str, key: str) -> str:
    return f"gs:c:{namespace}:{key}"


def cached(namespace: str, key: str, ttl: int, produce: Callable[[], bytes]) -> bytes:
    """Return the bytes cached under (namespace, key) for the namespace's current version, producing
    and storing them on a miss. The stored value is b"<version>:" followed by the bytes.

    A `ttl` of 0 (CATALOG_CACHE_TTL=0) turns the cache off: every call produces, and Redis is not
    touched. Redis being down degrades to no caching rather than an error.
    """
    if ttl <= 0:
        return produce()
    client = redis_client()
    guard = guard_of(client)
    if guard is not None and guard.bump_pending(namespace):
        return produce()  # this process changed it and Redis does not know yet
    entry_key = _entry_key(namespace, key)
    try:
        version, entry = client.mget(_version_key(namespace), entry_key)
    except RedisUnavailable:
        return produce()
    except RedisError:
        log.warning("cache unavailable; serving %s uncached", namespace)
        return produce()
    tag = b"%d:" % (int(version) if version else 0)
    if entry is not None and entry.startswith(tag):
        return entry[len(tag) :]
    value = produce()
    try:
        client.set(entry_key, tag + value, ex=ttl)
    except RedisUnavailable:
        pass
    except RedisError:
        log.warning("cache write failed for %s", namespace)
    return value
