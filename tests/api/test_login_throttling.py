"""Logins cannot be brute-forced or used to starve the server: staff logins are throttled per
client IP and locked out per (merchant, username) after repeated failures, both checked before
any password is hashed; wx-login is throttled per IP; with Redis out, password checks fall back to
a small in-process limit instead of none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api import create_app
from api.throttle import LIMITER_EXTENSION
from shop.core.cache import REDIS_EXTENSION
from shop.core.db import db
from shop.identity import staff
from tests.factories import PASSWORD, make_merchant, make_staff


class FakeClock:
    """The limiter's clock, moved by hand instead of sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(app: Flask, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(1_700_000_000.0)
    monkeypatch.setattr(app.extensions[LIMITER_EXTENSION], "clock", fake)
    return fake


@pytest.fixture
def limits(app: Flask, monkeypatch: pytest.MonkeyPatch):
    """Set some of the login limits (Settings fields) for this test only."""
    settings = app.config["SETTINGS"]

    def set_limits(**values: int) -> None:
        for name, value in values.items():
            assert hasattr(settings, name), name
            monkeypatch.setattr(settings, name, value)

    return set_limits


@pytest.fixture(autouse=True)
def _forget_in_process_counts(app: Flask) -> Iterator[None]:
    """The in-process fallback lives as long as the app; each test starts with it empty."""
    app.extensions[LIMITER_EXTENSION].reset_fallback()
    yield
    app.extensions[LIMITER_EXTENSION].reset_fallback()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the Argon2 verifications (the expensive part of a login)."""
    calls: list[int] = []
    real = staff.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(1)
        return real(password_hash, password)

    monkeypatch.setattr(staff, "verify_password", counting)
    return calls


def login(client: Any, merchant: str, username: str = "owner", password: str = PASSWORD, **kwargs: Any) -> Any:
    return client.post(
        "/api/v1/merchant/auth/login",
        json={"merchant": merchant, "username": username, "password": password},
        **kwargs,
    )


def wx_login(client: Any, merchant: str, name: str = "alice", **kwargs: Any) -> Any:
    return client.post("/api/v1/auth/wx-login", json={"merchant": merchant, "code": f"test:{name}"}, **kwargs)


def refused(response: Any, limit: str) -> int:
    """Assert a 429 rate_limited envelope naming `limit`; return its Retry-After (seconds)."""
    body = response.get_json()
    assert response.status_code == 429, body
    assert body["error"]["code"] == "rate_limited", body
    assert body["error"]["details"]["limit"] == limit, body
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert body["error"]["details"]["retry_after"] == retry_after
    return retry_after


# --- the flood of the issue


@pytest.mark.committing
def test_two_hundred_wrong_passwords_at_sixteen_concurrent_hash_only_a_handful(app, clock, verifications):
    with app.app_context():
        merchant = make_merchant()
        db.session.remove()
    settings = app.config["SETTINGS"]

    def guess(i: int) -> Any:
        return login(app.test_client(), merchant.code, password=f"guess-{i:04d}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(guess, range(200)))

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= settings.login_failures_before_lockout, statuses
    assert statuses[429] >= 200 - settings.login_failures_before_lockout, statuses
    assert len(verifications) == statuses[401]  # a refused guess never reached Argon2
    for response in responses:
        if response.status_code == 429:
            assert response.json["error"]["details"]["limit"] in ("staff_login_per_ip", "staff_login_lockout")
            assert int(response.headers["Retry-After"]) >= 1

    # During the lockout even the right password, from the owner's own address, is refused (that
    # is the point) ...
    owner = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
    retry_after = refused(login(app.test_client(), merchant.code, **owner), "staff_login_lockout")
    assert retry_after <= settings.login_lockout_seconds
    # ... and once it is over, the right password works.
    clock.advance(settings.login_lockout_seconds)
    response = login(app.test_client(), merchant.code, **owner)
    assert response.status_code == 200, response.json


# --- per client IP


def test_the_per_ip_limit_refuses_before_hashing_and_says_when_to_retry(ctx, client, clock, limits, verifications):
    merchant = make_merchant()
    limits(login_max_per_ip_per_minute=3, login_failures_before_lockout=100)
    for name in ("alice", "bob", "carol"):  # different accounts: the per-account lockout plays no part
        assert login(client, merchant.code, name, "wrong-password").status_code == 401
    assert len(verifications) == 3

    assert refused(login(client, merchant.code, "dave", "wrong-password"), "staff_login_per_ip") == 20
    assert refused(login(client, merchant.code), "staff_login_per_ip") == 20  # the right password waits too
    assert len(verifications) == 3

    clock.advance(20)  # 3 a minute: one more every 20 s
    assert login(client, merchant.code).status_code == 200
    refused(login(client, merchant.code), "staff_login_per_ip")


def test_a_forged_x_forwarded_for_does_not_reset_the_per_ip_limit_by_default(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_max_per_ip_per_minute=2, login_failures_before_lockout=100)
    for i in range(2):
        response = login(client, merchant.code, "nobody", "x", headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert response.status_code == 401
    refused(login(client, merchant.code, headers={"X-Forwarded-For": "10.0.0.99"}), "staff_login_per_ip")


def test_different_client_addresses_have_separate_budgets(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_max_per_ip_per_minute=1)
    first = {"environ_base": {"REMOTE_ADDR": "192.0.2.1"}}
    second = {"environ_base": {"REMOTE_ADDR": "192.0.2.2"}}
    assert login(client, merchant.code, **first).status_code == 200
    refused(login(client, merchant.code, **first), "staff_login_per_ip")
    assert login(client, merchant.code, **second).status_code == 200


@pytest.mark.committing
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(app, clock):
    settings = app.config["SETTINGS"]
    proxied = create_app(
        type(settings)(
            env="test",
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            secret_key=settings.secret_key,
            wechat_auth="fake",
            queue_name=settings.queue_name,
            trusted_proxies=1,
            wx_login_max_per_ip_per_minute=1,
        )
    )
    proxied.extensions[LIMITER_EXTENSION].clock = clock
    client = proxied.test_client()
    with proxied.app_context():
        merchant = make_merchant()
        db.session.remove()
    via_proxy = {"environ_base": {"REMOTE_ADDR": "10.1.1.1"}}
    response = wx_login(client, merchant.code, headers={"X-Forwarded-For": "198.51.100.7"}, **via_proxy)
    assert response.status_code == 200, response.json
    refused(
        wx_login(client, merchant.code, headers={"X-Forwarded-For": "198.51.100.7"}, **via_proxy), "wx_login_per_ip"
    )
    # Another client behind the same proxy has its own budget.
    response = wx_login(client, merchant.code, headers={"X-Forwarded-For": "198.51.100.8"}, **via_proxy)
    assert response.status_code == 200, response.json


# --- per account: lockout with backoff


def test_repeated_failures_lock_the_account_with_a_doubling_capped_backoff(ctx, client, clock, limits, verifications):
    merchant = make_merchant()
    limits(
        login_max_per_ip_per_minute=1000,
        login_failures_before_lockout=3,
        login_lockout_seconds=60,
        login_lockout_max_seconds=200,
    )
    for expected_lockout in (60, 120, 200, 200):
        for _ in range(3):
            assert login(client, merchant.code, password="wrong-password").status_code == 401
        hashed = len(verifications)
        assert refused(login(client, merchant.code), "staff_login_lockout") == expected_lockout
        clock.advance(expected_lockout - 1)
        assert refused(login(client, merchant.code, password="wrong-password"), "staff_login_lockout") == 1
        assert len(verifications) == hashed
        clock.advance(1)

    assert login(client, merchant.code).status_code == 200
    # A success starts over: three more failures, and the lockout is back to its base.
    for _ in range(3):
        assert login(client, merchant.code, password="wrong-password").status_code == 401
    assert refused(login(client, merchant.code), "staff_login_lockout") == 60


def test_a_successful_login_clears_the_failure_count(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_failures_before_lockout=3)
    for _ in range(2):
        assert login(client, merchant.code, password="wrong-password").status_code == 401
    assert login(client, merchant.code).status_code == 200
    for _ in range(2):
        assert login(client, merchant.code, password="wrong-password").status_code == 401
    assert login(client, merchant.code).status_code == 200


def test_a_lockout_locks_one_account_not_its_colleagues_or_namesakes(ctx, client, clock, limits):
    merchant, other = make_merchant(), make_merchant()
    operator = make_staff(merchant, "operator")
    limits(login_failures_before_lockout=2)
    for _ in range(2):
        assert login(client, merchant.code, password="wrong-password").status_code == 401
    refused(login(client, merchant.code), "staff_login_lockout")
    assert login(client, merchant.code, operator.username).status_code == 200
    assert login(client, other.code).status_code == 200  # "owner" at another merchant


def test_an_unknown_username_is_locked_out_exactly_like_a_real_one(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_failures_before_lockout=2)

    def statuses(username: str) -> list[int]:
        return [login(client, merchant.code, username, "wrong-password").status_code for _ in range(4)]

    assert statuses("owner") == statuses("no-such-user") == [401, 401, 429, 429]


def test_a_password_change_does_not_lift_a_lockout_but_the_lockout_ends(ctx, client, clock, limits):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = {"Authorization": f"Bearer {login(client, merchant.code).json['token']}"}
    limits(login_failures_before_lockout=2, login_lockout_seconds=30)
    for _ in range(2):
        assert login(client, merchant.code, operator.username, "wrong-password").status_code == 401
    changed = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"password": "new-password-1"})
    assert changed.status_code == 200, changed.json
    refused(login(client, merchant.code, operator.username, "new-password-1"), "staff_login_lockout")
    clock.advance(30)
    assert login(client, merchant.code, operator.username, "new-password-1").status_code == 200


# --- wx-login


def test_wx_login_is_throttled_per_ip(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(wx_login_max_per_ip_per_minute=2)
    assert wx_login(client, merchant.code, "alice").status_code == 200
    assert wx_login(client, merchant.code, "bob").status_code == 200
    assert refused(wx_login(client, merchant.code, "carol"), "wx_login_per_ip") == 30
    clock.advance(30)
    assert wx_login(client, merchant.code, "carol").status_code == 200


def test_staff_and_member_logins_have_separate_budgets(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(wx_login_max_per_ip_per_minute=1, login_max_per_ip_per_minute=1)
    assert wx_login(client, merchant.code).status_code == 200
    assert login(client, merchant.code).status_code == 200
    refused(wx_login(client, merchant.code), "wx_login_per_ip")
    refused(login(client, merchant.code), "staff_login_per_ip")


# --- Redis out: an in-process limit, never none


@contextmanager
def redis_down(app: Flask) -> Iterator[None]:
    """Point the app's Redis client at a closed port for the duration of the block."""
    real = app.extensions[REDIS_EXTENSION]
    app.extensions[REDIS_EXTENSION] = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    try:
        yield
    finally:
        app.extensions[REDIS_EXTENSION] = real


def test_with_redis_down_password_checks_get_a_small_in_process_limit(ctx, client, clock, limits, verifications):
    merchant = make_merchant()
    limits(login_fallback_max_per_minute=4, login_max_per_ip_per_minute=1000, login_failures_before_lockout=1000)
    with redis_down(ctx):
        for name in ("a1", "a2", "a3", "a4"):
            assert login(client, merchant.code, name, "wrong-password").status_code == 401
        refused(login(client, merchant.code), "staff_login_fallback")
        assert len(verifications) == 4
        clock.advance(15)  # 4 a minute
        assert login(client, merchant.code).status_code == 200


def test_with_redis_down_the_lockout_still_applies_in_process(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_failures_before_lockout=2, login_lockout_seconds=45)
    with redis_down(ctx):
        for _ in range(2):
            assert login(client, merchant.code, password="wrong-password").status_code == 401
        assert refused(login(client, merchant.code), "staff_login_lockout") == 45


def test_with_redis_down_wx_login_is_still_throttled_per_ip(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(wx_login_max_per_ip_per_minute=1)
    with redis_down(ctx):
        assert wx_login(client, merchant.code).status_code == 200
        refused(wx_login(client, merchant.code), "wx_login_per_ip")


def test_the_unlock_login_command_lifts_a_lockout(ctx, client, clock, limits):
    merchant = make_merchant()
    limits(login_failures_before_lockout=2)
    for _ in range(2):
        assert login(client, merchant.code, password="wrong-password").status_code == 401
    refused(login(client, merchant.code), "staff_login_lockout")
    result = ctx.test_cli_runner().invoke(
        args=["groupshop", "unlock-login", "--merchant", merchant.code, "--username", "owner"]
    )
    assert result.exit_code == 0, result.output
    assert login(client, merchant.code).status_code == 200
