"""Redis access and versioned caches.

A cache namespace (e.g. one merchant's catalog) has a version number in Redis; writers bump it
after their transaction commits. An entry is stored tagged with the version its reader saw before
producing it, and is served only while that is still the current version. A reader that raced a
writer can only store data tagged with the old version, which no reader accepts any more, so a
cached answer is never older than the last committed change it could have seen.

A hit costs one round trip: the version and the entry are read together with one MGET; or none,
from the process's own copy (`LocalCache`): every process that serves cached reads keeps the
entries it read, with their version, and a listener thread subscribed to the bump channel. A
writer publishes the namespace after its bump, and each listener drops that namespace's copy, so
the next read asks Redis again. The copy is trusted only while the listener is subscribed: it is
emptied whenever the subscription drops or a health check fails, so while Redis is out, hung or
restarted, reads go the MGET way (and then to PostgreSQL). Another process's change reaches this
copy as fast as Redis delivers the message (milliseconds); this process's own at its commit.

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
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from shop.core.db import after_commit
from shop.core.redisguard import CONNECTION_OPTIONS, RedisUnavailable, guard_of

log = logging.getLogger(__name__)

REDIS_EXTENSION = "groupshop.redis"
BACKGROUND_REDIS_EXTENSION = "groupshop.redis.background"
LOCAL_CACHE_EXTENSION = "groupshop.cache.local"
BUMP_CHANNEL = "gs:c:bumps"


def redis_client() -> Redis:
    """The request path's client: short timeouts, and it fails fast while Redis is out."""
    return current_app.extensions[REDIS_EXTENSION]


def _version_key(namespace: str) -> str:
    return f"gs:ver:{namespace}"


def bump_after_commit(namespace: str) -> None:
    """Invalidate every cached entry of `namespace` once the current transaction commits."""

    client = redis_client()
    guard = guard_of(client)
    local: LocalCache | None = current_app.extensions.get(LOCAL_CACHE_EXTENSION)  # no listener needed here
    sender = local.sender_here() if local is not None else ""

    def _incr() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(_version_key(namespace))
        # Signed with this process's listener, which skips its own (applied at the commit).
        pipe.publish(BUMP_CHANNEL, f"{namespace}|{sender}")
        pipe.execute()
        if guard is not None:
            guard.bumped(namespace)

    def _bump() -> None:
        try:
            _incr()
        except RedisError:
            if guard is None:
                raise
            guard.defer_bump(namespace, _incr)

    def _after_commit() -> None:
        if local is not None:
            local.forget(namespace)  # this process's own change: at once, before the message
        _bump()

    after_commit(_after_commit)


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
    local = local_cache()
    if local is not None:
        hit = local.get(namespace, key)
        if hit is not None:
            return hit
        generation = local.generation(namespace)
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
        value = entry[len(tag) :]
        if local is not None:
            local.put(namespace, key, value, ttl, generation)
        return value
    value = produce()
    try:
        client.set(entry_key, tag + value, ex=ttl)
    except RedisUnavailable:
        return value
    except RedisError:
        log.warning("cache write failed for %s", namespace)
        return value
    if local is not None:
        local.put(namespace, key, value, ttl, generation)
    return value


def peek_local(namespace: str, key: str) -> bytes | None:
    """The entry from this process's copy alone (None: ask `cached`), never a Redis round trip."""
    local = local_cache()
    if local is None:
        return None
    guard = guard_of(redis_client())
    if guard is not None and guard.bump_pending(namespace):
        return None
    return local.get(namespace, key)


def local_cache() -> LocalCache | None:
    """This app's process-local copy (None when turned off), its listener started in this process."""
    local = current_app.extensions.get(LOCAL_CACHE_EXTENSION)
    if local is not None:
        local.ensure_listening()
    return local


class LocalCache:
    """Entries this process read from the versioned cache, served without asking Redis while a
    listener thread is subscribed to BUMP_CHANNEL (see the module docstring).

    Entries are stored only if no bump of their namespace arrived since the read that found them
    began (`generation`), so an answer read before a change and stored after its message is not
    kept. At most `max_entries` (least recently used out first), each for its TTL at most.
    """

    def __init__(self, redis_url: str, max_entries: int, *, health_check_interval: float = 2.0) -> None:
        self.redis_url = redis_url
        self.max_entries = max_entries
        self.health_check_interval = health_check_interval
        self._entries: OrderedDict[tuple[str, str], tuple[int, float, bytes]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._epoch = 0  # bumped whenever the subscription is (re)made or lost
        self._live = False
        self._lock = threading.Lock()
        self._pid: int | None = None
        self.sender = ""  # names this process's bumps on the channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the request path -----------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._live

    def generation(self, namespace: str) -> tuple[int, int]:
        with self._lock:
            return self._epoch, self._generations.get(namespace, 0)

    def get(self, namespace: str, key: str) -> bytes | None:
        if not self._live:
            return None
        with self._lock:
            item = self._entries.get((namespace, key))
            if item is None:
                return None
            generation, expires_at, value = item
            if not self._live or generation != self._generations.get(namespace, 0) or expires_at <= time.monotonic():
                del self._entries[(namespace, key)]
                return None
            self._entries.move_to_end((namespace, key))
            return value

    def put(self, namespace: str, key: str, value: bytes, ttl: int, seen: tuple[int, int]) -> None:
        """Keep `value`, read when `generation()` was `seen`, unless a bump came in since."""
        with self._lock:
            epoch, generation = seen
            if not self._live or epoch != self._epoch or generation != self._generations.get(namespace, 0):
                return
            self._entries[(namespace, key)] = (generation, time.monotonic() + ttl, value)
            self._entries.move_to_end((namespace, key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, namespace: str) -> None:
        """A bump of `namespace`: its entries are no longer served."""
        with self._lock:
            self._generations[namespace] = self._generations.get(namespace, 0) + 1
            for entry in [entry for entry in self._entries if entry[0] == namespace]:
                del self._entries[entry]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generations.clear()
            self._epoch += 1

    def _set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            self._entries.clear()
            self._generations.clear()
            self._epoch += 1

    # --- the listener -----------------------------------------------------------------------

    def sender_here(self) -> str:
        """This process's name on the channel, if its listener runs here (else nobody skips)."""
        return self.sender if self._pid == os.getpid() else ""

    def ensure_listening(self) -> None:
        """Start the listener in this process (once; again in a forked child, whose copy of the
        parent's state is dropped: the parent's thread did not come along)."""
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid
            self.sender = f"{pid}.{secrets.token_hex(4)}"
            self._live = False
            self._entries.clear()
            self._generations.clear()
            self._epoch += 1
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._listen, name="cache-bump-listener", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._set_live(False)
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        stop = self._stop
        wait = 0.1
        while not stop.is_set():
            client = Redis.from_url(
                self.redis_url,
                socket_timeout=self.health_check_interval + 1,
                socket_connect_timeout=1,
                **CONNECTION_OPTIONS,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(BUMP_CHANNEL)
                self._receive(pubsub, stop)
                wait = 0.1
            except (RedisError, OSError, ValueError) as exc:
                if self._live:
                    log.warning("cache bump listener lost Redis (%s); the local cache is off until it is back", exc)
            finally:
                self._set_live(False)
                try:
                    pubsub.close()
                    client.close()
                except (RedisError, OSError):
                    pass
            stop.wait(wait)
            wait = min(wait * 2, 5.0)

    def _receive(self, pubsub: Any, stop: threading.Event) -> None:
        """Apply messages until `stop`; PING every health_check_interval and give up (raise) when
        nothing at all, not even the PONG, came back for two of them: a hung server keeps the
        socket open, and a poll for messages alone would wait for it for ever."""
        interval = self.health_check_interval
        last_heard = last_ping = time.monotonic()
        while not stop.is_set():
            message = pubsub.get_message(timeout=min(0.5, interval / 2))
            now = time.monotonic()
            if message is not None:
                last_heard = now
                if message["type"] == "subscribe":
                    self._set_live(True)
                elif message["type"] == "message":
                    namespace, _, sender = message["data"].decode().rpartition("|")
                    if sender != self.sender:
                        self.forget(namespace or sender)
            elif now - last_heard > 2 * interval + 0.5:
                raise TimeoutError(f"Redis did not answer a PING for {now - last_heard:.1f} s")
            if now - last_ping >= interval:
                pubsub.ping()
                last_ping = now
