"""The limiter's counting steps behave the same in Redis (Lua scripts) and in the in-process
fallback; the Limiter falls back to the latter when Redis is out, or fails open when asked to;
with Redis hung, the request-path client's breaker keeps logins from waiting for it more than
once per cool-off."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from shop.core.cache import redis_client
from shop.core.errors import RateLimited, Unauthorized
from shop.core.ratelimit import MEMORY_MS, Limiter, LoginPolicy, MemoryStore, RedisStore, account_key
from shop.core.redisguard import guarded_redis

T0 = 1_700_000_000_000  # ms
KEY = "gs:rl:test:subject"


@pytest.fixture(params=["redis", "memory"])
def store(request, ctx):
    return RedisStore(redis_client) if request.param == "redis" else MemoryStore()


def test_a_rate_allows_a_burst_then_one_per_interval(store):
    # 3 a minute: a burst of 3, then one more every 20 s.
    assert [store.rate(KEY, 20_000, 60_000, T0) for _ in range(3)] == [0, 0, 0]
    assert store.rate(KEY, 20_000, 60_000, T0) == 20_000
    assert store.rate(KEY, 20_000, 60_000, T0 + 5_000) == 15_000  # refusals do not count
    assert store.rate(KEY, 20_000, 60_000, T0 + 20_000) == 0
    assert store.rate(KEY, 20_000, 60_000, T0 + 20_000) == 20_000


def test_a_rate_is_full_again_after_a_quiet_window(store):
    for _ in range(3):
        store.rate(KEY, 20_000, 60_000, T0)
    later = T0 + 60_000
    assert [store.rate(KEY, 20_000, 60_000, later) for _ in range(4)] == [0, 0, 0, 20_000]


def test_rates_of_different_keys_are_separate(store):
    assert store.rate(KEY, 60_000, 60_000, T0) == 0
    assert store.rate(KEY + "-other", 60_000, 60_000, T0) == 0
    assert store.rate(KEY, 60_000, 60_000, T0) == 60_000


def lockout_args(now: int) -> tuple[str, int, int, int, int]:
    return KEY, 3, 10_000, 25_000, now  # 3 failures; 10 s, doubling, capped at 25 s


def test_the_attempt_after_the_allowed_failures_starts_a_lockout_even_if_none_has_ended(store):
    """Concurrent guesses: each counts as a failure when it begins, so the fourth cannot start."""
    assert [store.begin(*lockout_args(T0)) for _ in range(3)] == [0, 0, 0]
    assert store.begin(*lockout_args(T0)) == 10_000
    assert store.begin(*lockout_args(T0 + 4_000)) == 6_000
    # The three in flight then fail: the lockout is already there, none starts another.
    assert [store.fail(*lockout_args(T0 + 5_000)) for _ in range(3)] == [0, 0, 0]
    assert store.begin(*lockout_args(T0 + 10_000)) == 0


def test_the_last_allowed_failure_starts_the_lockout_and_each_next_one_doubles_up_to_the_cap(store):
    now = T0
    for expected in (10_000, 20_000, 25_000, 25_000):
        for i in range(3):
            assert store.begin(*lockout_args(now)) == 0
            assert store.fail(*lockout_args(now)) == (expected if i == 2 else 0)
        assert store.begin(*lockout_args(now)) == expected
        now += expected


def test_clearing_forgets_the_failures_and_the_backoff(store):
    for _ in range(3):
        store.begin(*lockout_args(T0))
        store.fail(*lockout_args(T0))
    store.clear(KEY)
    for _ in range(3):
        assert store.begin(*lockout_args(T0)) == 0
        store.fail(*lockout_args(T0))
    assert store.begin(*lockout_args(T0)) == 10_000  # the base again, not doubled


def test_an_abandoned_attempt_gives_its_count_back(store):
    for _ in range(10):
        assert store.begin(*lockout_args(T0)) == 0
        store.release(KEY)
    assert store.begin(*lockout_args(T0)) == 0


def test_a_quiet_day_forgets_the_backoff(store, ctx):
    for _ in range(3):
        store.begin(*lockout_args(T0))
        store.fail(*lockout_args(T0))
    if isinstance(store, RedisStore):
        assert 0 < redis_client().pttl(KEY) <= MEMORY_MS
        redis_client().delete(KEY)  # what the expiry does a day later
        later = T0
    else:
        later = T0 + MEMORY_MS
    for _ in range(3):
        assert store.begin(*lockout_args(later)) == 0
        store.fail(*lockout_args(later))
    assert store.begin(*lockout_args(later)) == 10_000


def test_the_in_process_store_keeps_a_bounded_number_of_keys():
    store = MemoryStore(max_keys=3)
    for i in range(10):
        store.rate(f"k{i}", 60_000, 60_000, T0)
    assert store.rate("k9", 60_000, 60_000, T0) == 60_000  # the newest are kept
    assert store.rate("k0", 60_000, 60_000, T0) == 0  # the oldest were dropped


def test_account_keys_cannot_collide_through_the_separator():
    assert account_key("s", "a:b", "c") != account_key("s", "a", "b:c")
    assert account_key("s", "m", "u") != account_key("t", "m", "u")


# --- the Limiter


class Clock:
    def __init__(self) -> None:
        self.now = T0 / 1000

    def __call__(self) -> float:
        return self.now


def dead_redis() -> Redis:
    return Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))


POLICY = LoginPolicy(
    per_ip_per_minute=100, failures_before_lockout=2, lockout_seconds=30, lockout_max_seconds=60, fallback_per_minute=3
)


def attempt(limiter: Limiter, username: str = "owner", *, wrong: bool = True, ip: str = "192.0.2.1") -> None:
    with limiter.password_check("staff_login", ip=ip, merchant_code="m", username=username, policy=POLICY):
        if wrong:
            raise Unauthorized("wrong", code="bad_credentials")


def outcome(call: Callable[[], None]) -> str:
    try:
        call()
    except RateLimited as error:
        return error.details["limit"]
    except Unauthorized:
        return "401"
    return "ok"


def test_a_cheap_read_fails_open_when_redis_is_out_and_a_login_does_not(ctx):
    limiter = Limiter(client=dead_redis, clock=Clock())
    for _ in range(5):
        limiter.hit("reads", "192.0.2.1", 1, fail_open=True)  # never refused
    limiter.hit("logins", "192.0.2.1", 1, fail_open=False)
    with pytest.raises(RateLimited) as refused:
        limiter.hit("logins", "192.0.2.1", 1, fail_open=False)
    assert refused.value.details == {"limit": "logins", "retry_after": 60}
    assert refused.value.retry_after == 60


def test_with_redis_out_every_password_check_shares_a_small_process_wide_budget(ctx):
    limiter = Limiter(client=dead_redis, clock=Clock())
    results = [outcome(lambda i=i: attempt(limiter, f"user{i}", ip=f"192.0.2.{i}")) for i in range(5)]
    assert results == ["401", "401", "401", "staff_login_fallback", "staff_login_fallback"]


class HungRedis:
    """A TCP server that accepts connections and never answers, as a Redis stopped with SIGSTOP
    does; it counts the connections, i.e. the client's attempts (after a timeout the client drops
    its connection, so each attempt opens a new one)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._accepted.append(self._listener.accept()[0])

    def attempts(self) -> int:
        time.sleep(0.1)  # an attempt the client gave up on has been accepted long before
        return len(self._accepted)

    def close(self) -> None:
        self._listener.close()
        for connection in self._accepted:
            connection.close()


@pytest.fixture
def hung_redis() -> Iterator[HungRedis]:
    server = HungRedis()
    yield server
    server.close()


COOLOFF = 1.0
TIMEOUT = 0.2


def test_with_redis_hung_logins_cost_one_slow_redis_attempt_per_cooloff_and_process(ctx, hung_redis):
    client = guarded_redis(hung_redis.url, timeout=TIMEOUT, cooloff=COOLOFF)
    limiter = Limiter(client=lambda: client, clock=Clock())

    def logins(count: int) -> tuple[list[str], float]:
        started = time.monotonic()
        results = [outcome(lambda i=i: attempt(limiter, f"user{i}", ip=f"192.0.2.{i}")) for i in range(count)]
        return results, time.monotonic() - started

    results, took = logins(20)
    assert results == ["401"] * 3 + ["staff_login_fallback"] * 17  # counted in this process
    assert hung_redis.attempts() == 1  # the first login waited for Redis; the others did not
    assert took < COOLOFF  # one timeout (0.2 s), not twenty (4 s)

    time.sleep(COOLOFF)
    results, took = logins(10)
    assert results == ["staff_login_fallback"] * 10
    assert hung_redis.attempts() == 2  # one probe after the cool-off (REDIS_COOLOFF, not a limiter's own)
    assert took < COOLOFF


def test_once_redis_answers_again_logins_are_counted_there_after_one_cooloff(ctx):
    client = guarded_redis(ctx.config["SETTINGS"].redis_url, timeout=1.0, cooloff=COOLOFF)
    limiter = Limiter(client=lambda: client, clock=Clock())
    key = account_key("staff_login", "m", "owner")
    client.breaker.failed(RedisConnectionError("gone"))  # as after a command that failed

    assert outcome(lambda: attempt(limiter)) == "401"
    assert not redis_client().exists(key)  # counted in this process: Redis was not tried
    time.sleep(COOLOFF)
    assert outcome(lambda: attempt(limiter)) == "401"
    assert redis_client().exists(key)  # Redis is used again as soon as the client's breaker lets it


def test_a_password_check_that_ends_in_another_error_does_not_count(ctx):
    limiter = Limiter(clock=Clock())

    def broken() -> None:
        with limiter.password_check("staff_login", ip="192.0.2.1", merchant_code="m", username="u", policy=POLICY):
            raise RuntimeError("the database went away")

    for _ in range(5):
        with pytest.raises(RuntimeError):
            broken()
    assert outcome(lambda: attempt(limiter, "u")) == "401"


def test_a_success_clears_the_failures_in_redis(ctx):
    limiter = Limiter(clock=Clock())
    assert outcome(lambda: attempt(limiter)) == "401"
    assert outcome(lambda: attempt(limiter, wrong=False)) == "ok"
    assert outcome(lambda: attempt(limiter)) == "401"
    assert outcome(lambda: attempt(limiter)) == "401"
    assert outcome(lambda: attempt(limiter)) == "staff_login_lockout"


def test_unlock_lifts_a_lockout(ctx):
    limiter = Limiter(clock=Clock())
    assert [outcome(lambda: attempt(limiter)) for _ in range(2)] == ["401", "401"]
    assert outcome(lambda: attempt(limiter, wrong=False)) == "staff_login_lockout"
    limiter.unlock("staff_login", "m", "owner")
    assert outcome(lambda: attempt(limiter, wrong=False)) == "ok"
