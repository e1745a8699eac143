"""The circuit breaker and the outbox of the request path's Redis client (no I/O)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shop.core.redisguard import CircuitBreaker, RedisGuard, RedisUnavailable, _Guarded


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_after_a_failure_the_breaker_skips_redis_for_a_cooloff_then_lets_one_probe_through():
    clock = Clock()
    breaker = CircuitBreaker(5.0, clock=clock)
    assert breaker.allow()
    breaker.failed(RedisConnectionError("refused"))
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # the others keep skipping while it runs
    breaker.failed(RedisConnectionError("still refused"))
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()


def test_a_probe_that_succeeds_closes_the_breaker_and_runs_the_recovery_hooks_once():
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock=clock)
    recovered = []
    breaker.on_recover(lambda: recovered.append(clock.now))
    breaker.succeeded()
    assert recovered == []  # it was not open
    breaker.failed(RedisConnectionError("refused"))
    clock.now += 1.0
    assert breaker.allow()
    breaker.succeeded()
    breaker.succeeded()
    assert recovered == [101.0]
    assert all(breaker.allow() for _ in range(3))


def test_a_probe_that_never_reports_back_lets_another_probe_through_a_cooloff_later():
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock=clock)
    breaker.failed(RedisConnectionError("refused"))
    clock.now += 1.0
    assert breaker.allow()
    clock.now += 0.5
    assert not breaker.allow()
    clock.now += 0.5
    assert breaker.allow()


def test_a_command_sent_inside_the_probe_is_part_of_it_not_refused_as_a_second_probe():
    clock = Clock()
    guarded = _Guarded()
    guarded.breaker = CircuitBreaker(1.0, clock=clock)
    guarded.breaker.failed(RedisConnectionError("refused"))
    clock.now += 1.0
    # e.g. a pipeline that sends SCRIPT EXISTS while it executes
    assert guarded._guarded(lambda: guarded._guarded(lambda: "answered")) == "answered"
    assert not guarded.breaker.is_open


def test_while_the_breaker_is_open_a_call_fails_at_once_without_trying_redis():
    guarded = _Guarded()
    guarded.breaker = CircuitBreaker(60.0)
    guarded.breaker.failed(RedisConnectionError("refused"))
    tried = []
    with pytest.raises(RedisUnavailable):
        guarded._guarded(lambda: tried.append(1))
    assert tried == []


class _Guard(RedisGuard):
    """An outbox without its retry thread, replayed by hand."""

    def _ensure_retrier(self) -> None:
        pass


@pytest.fixture
def guard() -> _Guard:
    return _Guard(client=None, cooloff=1.0)  # type: ignore[arg-type]


def test_the_outbox_sends_bumps_then_jobs_in_order_and_keeps_what_fails_for_the_next_replay(guard):
    sent, redis_up = [], [False]

    def action(name):
        def _send():
            if not redis_up[0]:
                raise RedisConnectionError("refused")
            sent.append(name)

        return _send

    guard.defer_job("job 1", action("job 1"))
    guard.defer_job("job 2", action("job 2"))
    guard.defer_bump("catalog:1", action("bump catalog:1"))
    guard.defer_bump("catalog:1", action("bump catalog:1 again"))  # one bump covers both changes
    assert guard.pending() == 3
    assert guard.bump_pending("catalog:1")
    assert guard.replay() == 0
    assert guard.pending() == 3
    redis_up[0] = True
    assert guard.replay() == 3
    assert sent == ["bump catalog:1 again", "job 1", "job 2"]
    assert guard.pending() == 0
    assert not guard.bump_pending("catalog:1")


def test_a_bump_that_reaches_redis_directly_makes_the_pending_one_unnecessary(guard):
    guard.defer_bump("catalog:7", lambda: None)
    guard.bumped("catalog:7")
    assert guard.pending() == 0


def test_a_replayed_write_that_fails_for_another_reason_than_redis_is_dropped_not_retried_forever(guard):
    def broken():
        raise ValueError("cannot serialize")

    guard.defer_job("broken", broken)
    guard.defer_job("fine", lambda: None)
    assert guard.replay() == 2
    assert guard.pending() == 0


def test_draining_gives_up_after_its_timeout_when_redis_stays_away(guard):
    def refused():
        raise RedisConnectionError("refused")

    guard.defer_job("job", refused)
    assert guard.drain(timeout=0.2) is False
    assert guard.pending() == 1


def test_the_projects_clients_open_connections_without_reading_package_metadata(monkeypatch):
    """redis-py 8 reads its version from the installed packages' metadata for each connection it
    opens unless told it: the clients are told it once (CONNECTION_OPTIONS)."""
    import redis.utils

    from api import background_redis
    from api.config import Settings
    from shop.core.redisguard import guarded_redis

    def looked_up() -> str:
        raise AssertionError("a connection looked redis-py's version up")

    monkeypatch.setattr(redis.utils, "get_lib_version", looked_up)
    settings = Settings(env="test", redis_url="redis://127.0.0.1:1/0", secret_key="x" * 40)
    for client in (guarded_redis("redis://127.0.0.1:1/0", timeout=1, cooloff=1), background_redis(settings)):
        connections = [client.connection_pool.make_connection() for _ in range(3)]  # made, never connected
        assert all(connection.driver_info is not None for connection in connections)
