"""Request-path Redis that never holds a request up: short timeouts, a circuit breaker, and an
in-process outbox for the writes that could not be sent.

Everything a request asks of Redis is optional for the request itself: the catalog cache (the
answer comes from PostgreSQL instead), the job queue (a sweep finds what a lost job missed) and
cache version bumps. So after a connection failure or a timeout the client's breaker opens: for
`cooloff` seconds every command fails at once with `RedisUnavailable` instead of waiting for a
socket timeout. Then one command is let through as a probe (half-open); if Redis answers the
breaker closes, otherwise it opens for another cool-off.

Writes the caller must not lose (enqueue a job, bump a cache version) are handed to the guard's
outbox when Redis cannot take them; they are replayed as soon as Redis answers again: when the
breaker closes, by a small retry thread while anything is pending, and by a work horse before it
exits (`drain`). The outbox lives in the process's memory: a process that dies before Redis comes
back loses it, which is why every job has a sweep and every cache entry a TTL.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis
from redis import Redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

# A failure of these means Redis could not be reached (or did not answer in time); any other
# RedisError (a wrong type, a script error) is an answer, so it does not open the breaker.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
MAX_PENDING = 10_000


class RedisUnavailable(RedisConnectionError):
    """Raised without trying Redis: the breaker is open after a recent failure."""


class CircuitBreaker:
    """Closed: every call goes through. Open: calls fail fast until `cooloff` seconds have passed
    since the failure; then one call is let through as a probe (the others keep failing fast),
    and its outcome closes the breaker or opens it for another cool-off."""

    def __init__(self, cooloff: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooloff = cooloff
        self._clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._retry_at = 0.0
        self._on_recover: list[Callable[[], None]] = []

    @property
    def is_open(self) -> bool:
        return self._open

    def on_recover(self, callback: Callable[[], None]) -> None:
        """Run `callback` each time the breaker closes after having been open."""
        self._on_recover.append(callback)

    def allow(self) -> bool:
        """May a call go to Redis now? While open, True once per cool-off (the probe)."""
        with self._lock:
            if not self._open:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.cooloff  # one probe per cool-off, even if it never reports
            return True

    def succeeded(self) -> None:
        with self._lock:
            recovered = self._open
            self._open = False
        if recovered:
            log.warning("Redis answers again; using it")
            for callback in self._on_recover:
                try:
                    callback()
                except Exception:  # a recovery hook never fails the call that succeeded
                    log.exception("Redis recovery hook %r failed", callback)

    def failed(self, error: BaseException) -> None:
        with self._lock:
            was_open = self._open
            self._open = True
            self._retry_at = self._clock() + self.cooloff
        if not was_open:
            log.warning("Redis unreachable (%s); skipping it for %.1f s at a time", error, self.cooloff)

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()


_nesting = threading.local()


class _Guarded:
    """Run a call to Redis through a breaker: fail fast while it is open, report the outcome.
    A call made inside another (a pipeline loading its scripts) is part of it: not checked again."""

    breaker: CircuitBreaker

    def _guarded(self, call: Callable[[], Any]) -> Any:
        if getattr(_nesting, "depth", 0):
            return call()
        if not self.breaker.allow():
            raise RedisUnavailable("Redis skipped: it failed less than a cool-off ago")
        _nesting.depth = 1
        try:
            result = call()
        except UNREACHABLE as exc:
            self.breaker.failed(exc)
            raise
        except RedisError:  # Redis answered, with an error
            self.breaker.succeeded()
            raise
        finally:
            _nesting.depth = 0
        self.breaker.succeeded()
        return result


class GuardedPipeline(_Guarded, Pipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return self._guarded(lambda: Pipeline.execute(self, raise_on_error))
        except RedisUnavailable:
            self.reset()
            raise

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        return self._guarded(lambda: Pipeline.immediate_execute_command(self, *args, **options))


class GuardedRedis(_Guarded, Redis):
    """A Redis client whose commands and pipelines go through its breaker (see module docstring)."""

    guard: RedisGuard

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self._guarded(lambda: Redis.execute_command(self, *args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        pipe = GuardedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.breaker = self.breaker
        return pipe


class RedisGuard:
    """The breaker of one client and the outbox of what it could not send.

    The outbox holds jobs to enqueue (in order) and cache namespaces whose version must be bumped
    (one bump invalidates however many changes were made meanwhile).
    """

    def __init__(self, client: GuardedRedis, cooloff: float) -> None:
        self.client = client
        self.breaker = CircuitBreaker(cooloff)
        self.breaker.on_recover(self._wake_retrier)
        self._reset_state()
        _guards.add(self)

    def _reset_state(self) -> None:
        self._lock = threading.Lock()
        self._replaying = threading.Lock()
        self._wake = threading.Event()
        self._jobs: list[tuple[str, Callable[[], None]]] = []
        self._bumps: dict[str, Callable[[], None]] = {}
        self._retrier: threading.Thread | None = None

    # --- the outbox ------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return len(self._jobs) + len(self._bumps)

    def bump_pending(self, namespace: str) -> bool:
        """Has this process a version bump of `namespace` that Redis has not received yet?"""
        return namespace in self._bumps

    def defer_job(self, label: str, send: Callable[[], None]) -> None:
        with self._lock:
            if len(self._jobs) >= MAX_PENDING:
                dropped, _ = self._jobs.pop(0)
                log.error("Redis outbox full: dropping %s (its sweep will find the work)", dropped)
            self._jobs.append((label, send))
            self._ensure_retrier()
        log.warning("Redis unavailable: %s kept, to be enqueued when it answers", label)

    def defer_bump(self, namespace: str, bump: Callable[[], None]) -> None:
        with self._lock:
            self._bumps[namespace] = bump
            self._ensure_retrier()
        log.warning("Redis unavailable: the cache version bump of %s kept for when it answers", namespace)

    def bumped(self, namespace: str) -> None:
        """A bump of `namespace` reached Redis: a pending one for it is no longer needed."""
        if namespace in self._bumps:
            with self._lock:
                self._bumps.pop(namespace, None)

    def _next(self) -> tuple[str, str, Callable[[], None]] | None:
        with self._lock:
            if self._bumps:
                namespace, action = next(iter(self._bumps.items()))
                return "bump", namespace, action
            if self._jobs:
                label, action = self._jobs[0]
                return "job", label, action
            return None

    def _done(self, kind: str, key: str, action: Callable[[], None]) -> None:
        with self._lock:
            if kind == "bump":
                if self._bumps.get(key) is action:
                    del self._bumps[key]
            elif self._jobs and self._jobs[0][1] is action:
                self._jobs.pop(0)

    def replay(self) -> int:
        """Send what is pending, bumps first then jobs oldest first; stop at the first Redis
        failure (that item and the rest stay pending). Returns how many items were sent."""
        if not self._replaying.acquire(blocking=False):
            return 0  # another thread is at it
        sent = 0
        try:
            while (item := self._next()) is not None:
                kind, key, action = item
                try:
                    action()
                except RedisError as exc:
                    log.info("Redis outbox: %s %s deferred again (%s)", kind, key, exc)
                    break
                except Exception:  # not Redis: trying again will not help
                    log.exception("Redis outbox: %s %s failed; dropping it", kind, key)
                self._done(kind, key, action)
                sent += 1
        finally:
            self._replaying.release()
        if sent:
            log.warning("Redis outbox: sent %d write(s) kept while Redis was unavailable", sent)
        return sent

    def drain(self, timeout: float) -> bool:
        """Replay until nothing is pending or `timeout` seconds have passed (for a process about
        to exit, e.g. a work horse). True when nothing is left."""
        deadline = time.monotonic() + timeout
        while True:
            self.replay()
            if not self.pending():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("exiting with %d Redis write(s) not sent; the sweeps will find the work", self.pending())
                return False
            time.sleep(min(left, max(0.05, self.breaker.cooloff / 2)))

    def _ensure_retrier(self) -> None:
        """Start the retry thread unless it runs (called with the lock held)."""
        if self._retrier is None:
            self._retrier = threading.Thread(target=self._retry_loop, name="redis-outbox", daemon=True)
            self._retrier.start()

    def _wake_retrier(self) -> None:
        self._wake.set()

    def _retry_loop(self) -> None:
        """While anything is pending, try again every cool-off, or at once when the breaker closes:
        a process that gets no request after Redis returns still sends what it kept."""
        while True:
            self._wake.wait(self.breaker.cooloff)
            self._wake.clear()
            self.replay()
            with self._lock:
                if not self._jobs and not self._bumps:
                    self._retrier = None
                    return

    def _after_fork_in_child(self) -> None:
        # The parent keeps (and replays) its outbox; a child starting with a copy would send it twice.
        self._reset_state()
        self.breaker.reset_after_fork()


_guards: weakref.WeakSet[RedisGuard] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for guard in list(_guards):
        guard._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def reconnect_retry() -> Retry:
    """Retry a command once on a connection error only (not on a timeout): a pooled connection
    that Redis closed when it restarted fails once, and the retry opens a fresh one."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def _driver_options() -> dict[str, Any]:
    """redis-py 8 looks its own version up in the installed packages' metadata for every connection
    it opens (a walk of sys.path, zip files included: a stampede's workers, opening connections as
    their threads came, spent a fifth of their time there); told it once, it does not. Older
    versions take it as `lib_version` (and read it once themselves)."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:
        return {"lib_version": redis.__version__}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


# Options for every client this project makes (`Redis.from_url(url, **CONNECTION_OPTIONS, ...)`).
CONNECTION_OPTIONS = _driver_options()


def guarded_redis(url: str, *, timeout: float, cooloff: float) -> GuardedRedis:
    """A request-path client: `timeout` seconds to connect and to answer, and a breaker."""
    client = GuardedRedis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=reconnect_retry(), **CONNECTION_OPTIONS
    )
    client.guard = RedisGuard(client, cooloff)
    client.breaker = client.guard.breaker
    return client


def guard_of(client: Redis) -> RedisGuard | None:
    return getattr(client, "guard", None)
