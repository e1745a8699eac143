"""Redis access and versioned caches.

A cache namespace (e.g. one merchant's catalog) has a version number in Redis. Readers build keys
from the current version; writers bump it after their transaction commits. A reader that raced
a writer can only store data under the old version, which nobody reads any more, so a cached
answer is never older than the last committed change it could have seen.
"""

from __future__ import annotations

import logging

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from shop.db import after_commit

log = logging.getLogger(__name__)

REDIS_EXTENSION = "groupshop.redis"


def redis_client() -> Redis:
    return current_app.extensions[REDIS_EXTENSION]


def _version_key(namespace: str) -> str:
    return f"gs:ver:{namespace}"


def current_version(namespace: str) -> int:
    value = redis_client().get(_version_key(namespace))
    return int(value) if value else 0


def bump_after_commit(namespace: str) -> None:
    """Invalidate every cached entry of `namespace` once the current transaction commits."""

    def _bump() -> None:
        redis_client().incr(_version_key(namespace))

    after_commit(_bump)


def cached(namespace: str, key: str, ttl: int, produce) -> bytes:
    """Return the bytes cached under (namespace version, key), producing and storing them on a miss.

    Redis being down degrades to no caching rather than an error.
    """
    client = redis_client()
    try:
        version = current_version(namespace)
        full_key = f"gs:c:{namespace}:{version}:{key}"
        hit = client.get(full_key)
    except RedisError:
        log.warning("cache unavailable; serving %s uncached", namespace)
        return produce()
    if hit is not None:
        return hit
    value = produce()
    try:
        client.set(full_key, value, ex=ttl)
    except RedisError:
        log.warning("cache write failed for %s", namespace)
    return value
