"""Secrets and environment at startup: production refuses a short SECRET_KEY; GROUPSHOP_ENV left
unset against a remote database is a warning; the login limits are read and checked."""

from __future__ import annotations

import logging

import pytest

from api.config import Settings

PRODUCTION_VARIABLES = ("SECRET_KEY", "DATABASE_URL", "WECHAT_AUTH", "PAYMENT_PROVIDER")
LIMIT_VARIABLES = (
    "LOGIN_MAX_PER_IP_PER_MINUTE",
    "LOGIN_FAILURES_BEFORE_LOCKOUT",
    "LOGIN_LOCKOUT_SECONDS",
    "LOGIN_LOCKOUT_MAX_SECONDS",
    "LOGIN_FALLBACK_MAX_PER_MINUTE",
    "WX_LOGIN_MAX_PER_IP_PER_MINUTE",
    "TRUSTED_PROXIES",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("GROUPSHOP_ENV", *PRODUCTION_VARIABLES, *LIMIT_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def production(monkeypatch, secret: str) -> None:
    monkeypatch.setenv("GROUPSHOP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secret)


@pytest.mark.parametrize("secret", ["x" * 31, "short", "é" * 15])  # "é" is 2 bytes: 30 bytes
def test_production_refuses_a_secret_key_shorter_than_32_bytes(monkeypatch, secret):
    production(monkeypatch, secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be at least 32 bytes"):
        Settings.from_env()


@pytest.mark.parametrize("secret", ["x" * 32, "é" * 16, "k" * 64])
def test_production_accepts_a_secret_key_of_32_bytes_or_more(monkeypatch, secret):
    production(monkeypatch, secret)
    assert Settings.from_env().secret_key == secret


def test_production_refuses_the_development_key(monkeypatch):
    monkeypatch.setenv("GROUPSHOP_ENV", "development")
    development_key = Settings.from_env().secret_key
    production(monkeypatch, development_key)
    with pytest.raises(RuntimeError, match="development"):
        Settings.from_env()


def test_production_still_needs_a_secret_key(monkeypatch):
    production(monkeypatch, "")
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        Settings.from_env()


def test_a_production_settings_object_built_by_hand_is_checked_too():
    with pytest.raises(RuntimeError, match="SECRET_KEY must be at least 32 bytes"):
        Settings(env="production", secret_key="too-short", wechat_auth="http", payment_provider="wechatpay")


def test_short_keys_are_still_allowed_outside_production(monkeypatch):
    monkeypatch.setenv("GROUPSHOP_ENV", "test")
    monkeypatch.setenv("SECRET_KEY", "short")
    assert Settings.from_env().secret_key == "short"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://shop:pw@db.internal.example.com:5432/shop",
        "postgres://shop@10.0.3.7/shop",
        "postgresql+psycopg://shop@[2001:db8::1]:5432/shop",
    ],
)
def test_an_unset_environment_with_a_remote_database_is_a_warning(monkeypatch, caplog, url):
    monkeypatch.setenv("DATABASE_URL", url)
    with caplog.at_level(logging.WARNING, logger="api.config"):
        settings = Settings.from_env()
    assert settings.env == "development"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "GROUPSHOP_ENV" in r.getMessage()]
    assert len(warnings) == 1
    assert "production" in warnings[0].getMessage()
    assert "pw" not in warnings[0].getMessage().replace("production", "")


@pytest.mark.parametrize(
    ("env", "url"),
    [
        (None, "postgresql://shop@localhost/shop"),
        (None, "postgresql://shop@127.0.0.1:5432/shop"),
        (None, "postgresql://shop@[::1]/shop"),
        (None, "postgresql:///shop?host=/var/run/postgresql"),
        (None, None),
        ("development", "postgresql://shop@db.internal.example.com/shop"),
        ("test", "postgresql://shop@db.internal.example.com/shop"),
    ],
)
def test_no_warning_for_a_local_database_or_an_explicit_environment(monkeypatch, caplog, env, url):
    if env:
        monkeypatch.setenv("GROUPSHOP_ENV", env)
    if url:
        monkeypatch.setenv("DATABASE_URL", url)
    with caplog.at_level(logging.WARNING, logger="api.config"):
        Settings.from_env()
    assert not [r for r in caplog.records if "GROUPSHOP_ENV" in r.getMessage()]


def test_the_login_limits_have_defaults(monkeypatch):
    settings = Settings.from_env()
    assert settings.login_max_per_ip_per_minute == 20
    assert settings.login_failures_before_lockout == 5
    assert settings.login_lockout_seconds == 60
    assert settings.login_lockout_max_seconds == 3600
    assert settings.login_fallback_max_per_minute == 30
    assert settings.wx_login_max_per_ip_per_minute == 60
    assert settings.trusted_proxies == 0


def test_the_login_limits_come_from_the_environment(monkeypatch):
    values = dict(zip(LIMIT_VARIABLES, ("7", "3", "30", "600", "10", "100", "2"), strict=True))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.login_max_per_ip_per_minute == 7
    assert settings.login_failures_before_lockout == 3
    assert settings.login_lockout_seconds == 30
    assert settings.login_lockout_max_seconds == 600
    assert settings.login_fallback_max_per_minute == 10
    assert settings.wx_login_max_per_ip_per_minute == 100
    assert settings.trusted_proxies == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGIN_MAX_PER_IP_PER_MINUTE", "0"),
        ("LOGIN_FAILURES_BEFORE_LOCKOUT", "0"),
        ("LOGIN_LOCKOUT_SECONDS", "0"),
        ("LOGIN_FALLBACK_MAX_PER_MINUTE", "-1"),
        ("WX_LOGIN_MAX_PER_IP_PER_MINUTE", "0"),
        ("TRUSTED_PROXIES", "-1"),
        ("LOGIN_LOCKOUT_MAX_SECONDS", "59"),  # below the 60 s base
        ("LOGIN_MAX_PER_IP_PER_MINUTE", "lots"),
    ],
)
def test_a_login_limit_that_would_turn_throttling_off_is_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=name):
        Settings.from_env()
