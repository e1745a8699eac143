"""Rate limits and login lockouts, counted in Redis (one atomic Lua script per step).

Two mechanisms:

- A rate (`Limiter.hit`): at most `per_minute` requests per key, as a generic cell rate algorithm
  (GCRA): a burst of `per_minute`, then one more every 60/`per_minute` seconds. One key per
  (limit, client), holding one timestamp; a refusal says exactly when the next request fits.
- A password check (`Limiter.password_check`): the client's rate, then the account's lockout
  state, both before the password is hashed. An attempt counts as a failure from the moment it
  starts, so concurrent guesses cannot all slip past the check while the first ones are still
  hashing; a success clears the count, an attempt that ends in an unrelated error gives its
  count back. After `failures_before_lockout` failures with no success between them the account
  is locked for `lockout_seconds`, doubling with each further lockout up to
  `lockout_max_seconds`. A quiet day (24 h without an attempt) forgets everything.

When Redis cannot be reached: a check that protects something expensive (every password check,
every login) falls back to the same rules counted in this process, and password checks also
share one small process-wide budget (`fallback_per_minute`), so the limit is never lifted; a
check that only protects a cheap read may fail open instead (`fail_open=True`; no production
caller uses it yet, the distinction is there so that no one makes a login fail open by mistake).
The limiter keeps no outage state of its own: the request-path client (shop/core/redisguard.py) fails
fast with `RedisUnavailable` while Redis is out and lets one probe through per REDIS_COOLOFF, so
an outage costs at most one slow Redis attempt per cool-off and process, not one per login.

Nothing here knows about HTTP: the API layer supplies the client's address and turns
`RateLimited` into a 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from redis import Redis
from redis.exceptions import RedisError

from shop.core.cache import redis_client
from shop.core.errors import RateLimited, Unauthorized

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
# How long an account's failures and lockout count are remembered after its last attempt.
MEMORY_MS = 24 * 3600 * 1000
# Entries the in-process fallback keeps (least recently used go first).
FALLBACK_MAX_KEYS = 10_000
# The Redis-outage warning is logged at most this often per process.
OUTAGE_LOG_EVERY = 60.0


Outcome = Literal["success", "failure", "abandoned"]


@dataclass(frozen=True)
class LoginPolicy:
    per_ip_per_minute: int
    failures_before_lockout: int
    lockout_seconds: int
    lockout_max_seconds: int
    fallback_per_minute: int


class Store(Protocol):
    """The counting steps, each atomic; the answer is 0 (allowed) or the wait in milliseconds."""

    def rate(self, key: str, interval_ms: int, window_ms: int, now_ms: int) -> int: ...

    def begin(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int: ...

    def fail(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int: ...

    def release(self, key: str) -> None: ...

    def clear(self, key: str) -> None: ...


_LOCK_LUA = """
local function lock(key, now, base, cap)
  local locks = redis.call('HINCRBY', key, 'locks', 1)
  local duration = math.floor(math.min(base * 2 ^ math.min(locks - 1, 40), cap))
  redis.call('HSET', key, 'until', now + duration, 'fails', 0)
  redis.call('PEXPIRE', key, math.max(tonumber(ARGV[5]), duration))
  return duration
end
"""

# KEYS[1]: the bucket. ARGV: now, the emission interval, the burst window (all ms).
_RATE_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allow_at = tat + interval - window
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now)
return 0
"""

# KEYS[1]: the account. ARGV: now, failures before lockout, base and cap of the lockout, memory (ms).
_BEGIN_LUA = (
    _LOCK_LUA
    + """
local now = tonumber(ARGV[1])
local locked_until = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if locked_until > now then return locked_until - now end
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
if fails > tonumber(ARGV[2]) then return lock(KEYS[1], now, tonumber(ARGV[3]), tonumber(ARGV[4])) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 0
"""
)

_FAIL_LUA = (
    _LOCK_LUA
    + """
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails')) or 0
if fails >= tonumber(ARGV[2]) then
  return lock(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]))
end
return 0
"""
)

_RELEASE_LUA = """
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails')) or 0
if fails > 0 then redis.call('HINCRBY', KEYS[1], 'fails', -1) end
return 0
"""


class RedisStore:
    """The counts in Redis, shared by every process. Raises RedisError when Redis is out."""

    def __init__(self, client: Callable[[], Redis]) -> None:
        self._client = client

    def _run(self, script: str, key: str, *args: int) -> int:
        client = self._client()
        return int(client.register_script(script)(keys=[key], args=list(args), client=client))

    def rate(self, key: str, interval_ms: int, window_ms: int, now_ms: int) -> int:
        return self._run(_RATE_LUA, key, now_ms, interval_ms, window_ms)

    def begin(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int:
        return self._run(_BEGIN_LUA, key, now_ms, max_failures, base_ms, cap_ms, MEMORY_MS)

    def fail(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int:
        return self._run(_FAIL_LUA, key, now_ms, max_failures, base_ms, cap_ms, MEMORY_MS)

    def release(self, key: str) -> None:
        self._run(_RELEASE_LUA, key)

    def clear(self, key: str) -> None:
        self._client().delete(key)


@dataclass
class _Account:
    fails: int = 0
    locks: int = 0
    until: int = 0
    expires: int = 0


class MemoryStore:
    """The same steps counted in this process only (the fallback when Redis is out), bounded in size."""

    def __init__(self, max_keys: int = FALLBACK_MAX_KEYS) -> None:
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._rates: OrderedDict[str, int] = OrderedDict()  # key -> theoretical arrival time (ms)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()

    def _remember(self, table: OrderedDict, key: str, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._max_keys:
            table.popitem(last=False)

    def _account(self, key: str, now_ms: int) -> _Account:
        account = self._accounts.get(key)
        if account is None or account.expires <= now_ms:
            account = _Account()
        self._remember(self._accounts, key, account)
        return account

    @staticmethod
    def _lock_account(account: _Account, now_ms: int, base_ms: int, cap_ms: int) -> int:
        account.locks += 1
        duration = min(base_ms * 2 ** min(account.locks - 1, 40), cap_ms)
        account.until, account.fails = now_ms + duration, 0
        account.expires = now_ms + max(MEMORY_MS, duration)
        return duration

    def rate(self, key: str, interval_ms: int, window_ms: int, now_ms: int) -> int:
        with self._lock:
            tat = max(self._rates.get(key, now_ms), now_ms)
            allow_at = tat + interval_ms - window_ms
            if allow_at > now_ms:
                return allow_at - now_ms
            self._remember(self._rates, key, tat + interval_ms)
            return 0

    def begin(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int:
        with self._lock:
            account = self._account(key, now_ms)
            if account.until > now_ms:
                return account.until - now_ms
            account.fails += 1
            if account.fails > max_failures:
                return self._lock_account(account, now_ms, base_ms, cap_ms)
            account.expires = now_ms + MEMORY_MS
            return 0

    def fail(self, key: str, max_failures: int, base_ms: int, cap_ms: int, now_ms: int) -> int:
        with self._lock:
            account = self._accounts.get(key)
            if account is None or account.expires <= now_ms or account.fails < max_failures:
                return 0
            return self._lock_account(account, now_ms, base_ms, cap_ms)

    def release(self, key: str) -> None:
        with self._lock:
            account = self._accounts.get(key)
            if account is not None and account.fails > 0:
                account.fails -= 1

    def clear(self, key: str) -> None:
        with self._lock:
            self._accounts.pop(key, None)
            self._rates.pop(key, None)


def account_key(scope: str, merchant_code: str, username: str) -> str:
    """The Redis key of one account's lockout; hashed, so any characters in the names are safe."""
    digest = hashlib.sha256(f"{merchant_code}\x00{username}".encode()).hexdigest()[:32]
    return f"gs:rl:{scope}_lockout:{digest}"


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def _refuse(limit: str, wait_ms: int, message: str) -> RateLimited:
    seconds = _seconds(wait_ms)
    return RateLimited(
        f"{message}; try again in {seconds} s", details={"limit": limit, "retry_after": seconds}, retry_after=seconds
    )


@dataclass(frozen=True)
class _Attempt:
    store: Store
    key: str
    policy: LoginPolicy


class Limiter:
    """One per app; `clock` (seconds) is replaceable so tests move time instead of sleeping."""

    def __init__(self, client: Callable[[], Redis] = redis_client, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.shared: Store = RedisStore(client)
        self.fallback: Store = MemoryStore()
        self._outage_logged_at = -math.inf

    def reset_fallback(self) -> None:
        """Forget the in-process counts (tests)."""
        self.fallback = MemoryStore()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _outage(self, error: RedisError) -> None:
        """Say (at most once per OUTAGE_LOG_EVERY) that the counts are kept in this process."""
        now = time.monotonic()
        if now - self._outage_logged_at >= OUTAGE_LOG_EVERY:
            self._outage_logged_at = now
            log.warning("rate limiter: Redis unavailable (%s); counting in this process instead", error)

    @staticmethod
    def _rate_key(limit: str, key: str) -> str:
        return f"gs:rl:{limit}:{key}"

    @staticmethod
    def _check_rate(
        store: Store, limit: str, key: str, per_minute: int, now_ms: int, message: str = "too many requests"
    ) -> None:
        wait = store.rate(Limiter._rate_key(limit, key), max(1, MINUTE_MS // per_minute), MINUTE_MS, now_ms)
        if wait:
            raise _refuse(limit, wait, message)

    def hit(
        self, limit: str, key: str, per_minute: int, *, fail_open: bool, message: str = "too many requests"
    ) -> None:
        """Count one request of `key` (e.g. a client address) against `limit`; raise RateLimited when over.

        With Redis out, `fail_open=True` lets the request through (meant for cheap reads; no
        production caller uses it yet, and a login must never); otherwise the same limit is
        counted in this process.
        """
        now = self._now_ms()
        try:
            self._check_rate(self.shared, limit, key, per_minute, now, message)
            return
        except RedisError as error:
            self._outage(error)
        if fail_open:
            return
        self._check_rate(self.fallback, limit, key, per_minute, now, message)

    def _begin(self, store: Store, scope: str, ip: str, key: str, policy: LoginPolicy, now: int) -> None:
        self._check_rate(
            store, f"{scope}_per_ip", ip, policy.per_ip_per_minute, now, "too many login attempts from this address"
        )
        wait = store.begin(
            key, policy.failures_before_lockout, policy.lockout_seconds * 1000, policy.lockout_max_seconds * 1000, now
        )
        if wait:
            raise _refuse(f"{scope}_lockout", wait, "too many failed logins for this account")

    def begin_password_check(
        self, scope: str, *, ip: str, merchant_code: str, username: str, policy: LoginPolicy
    ) -> _Attempt:
        """Refuse (RateLimited) before any hashing when the client or the account is over its limit;
        otherwise count the attempt as a failure until `end_password_check` says otherwise."""
        key = account_key(scope, merchant_code, username)
        now = self._now_ms()
        try:
            self._begin(self.shared, scope, ip, key, policy, now)
            return _Attempt(self.shared, key, policy)
        except RedisError as error:
            self._outage(error)
        self._check_rate(
            self.fallback, f"{scope}_fallback", "*", policy.fallback_per_minute, now, "too many logins at the moment"
        )
        self._begin(self.fallback, scope, ip, key, policy, now)
        return _Attempt(self.fallback, key, policy)

    def end_password_check(self, attempt: _Attempt, outcome: Outcome) -> None:
        """outcome: "success" (clears the count), "failure" (may start a lockout) or "abandoned"
        (an error that says nothing about the password: the attempt's count is given back)."""
        policy = attempt.policy
        try:
            if outcome == "success":
                attempt.store.clear(attempt.key)
            elif outcome == "failure":
                attempt.store.fail(
                    attempt.key,
                    policy.failures_before_lockout,
                    policy.lockout_seconds * 1000,
                    policy.lockout_max_seconds * 1000,
                    self._now_ms(),
                )
            else:
                attempt.store.release(attempt.key)
        except RedisError as error:
            # The attempt was already counted as a failure when it began: losing this step can
            # only delay a lockout by one attempt (the next begin starts it) or keep one count.
            self._outage(error)

    @contextmanager
    def password_check(
        self, scope: str, *, ip: str, merchant_code: str, username: str, policy: LoginPolicy
    ) -> Iterator[None]:
        """Wrap the password verification: checked before, recorded after.

        A wrong password is signalled by `Unauthorized` (any code) from inside the block.
        """
        attempt = self.begin_password_check(scope, ip=ip, merchant_code=merchant_code, username=username, policy=policy)
        try:
            yield
        except Unauthorized:
            self.end_password_check(attempt, "failure")
            raise
        except BaseException:
            self.end_password_check(attempt, "abandoned")
            raise
        self.end_password_check(attempt, "success")

    def unlock(self, scope: str, merchant_code: str, username: str) -> None:
        """Forget an account's failures and lockout (an operator's escape hatch)."""
        key = account_key(scope, merchant_code, username)
        self.fallback.clear(key)
        self.shared.clear(key)
