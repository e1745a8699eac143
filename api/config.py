"""Configuration from environment variables (each one is documented in the README)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

ENVIRONMENTS = ("development", "test", "production")
MIN_PRODUCTION_SECRET_BYTES = 32
DEVELOPMENT_SECRET_PREFIX = "dev-only-"
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
MIN_WORKER_TTL = 16  # RQ's worker dequeues for WORKER_TTL - 15 s
# Login limits (README: "Login limits"): each must be at least its minimum, so none can switch
# the throttling off.
LOGIN_LIMITS: dict[str, tuple[int, int]] = {  # field: (default, minimum)
    "login_max_per_ip_per_minute": (20, 1),
    "login_failures_before_lockout": (5, 1),
    "login_lockout_seconds": (60, 1),
    "login_lockout_max_seconds": (3600, 1),
    "login_fallback_max_per_minute": (30, 1),
    "wx_login_max_per_ip_per_minute": (60, 1),
    "trusted_proxies": (0, 0),
}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from None


def _seconds(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A positive number of seconds (fractions allowed)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not minimum < value < float("inf"):
        raise RuntimeError(f"{name} must be a number of seconds greater than {minimum:g}, got {raw!r}")
    return value


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the URL was given with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass
class Settings:
    env: str = "development"
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    data_dir: Path = Path(".data")
    member_token_ttl: int = 7 * 24 * 3600
    staff_token_ttl: int = 12 * 3600
    wechat_auth: str = "fake"
    wechat_api_base: str = "https://api.weixin.qq.com"
    catalog_cache_ttl: int = 300
    # Entries of the versioned cache each process keeps and serves without asking Redis while its
    # bump listener is subscribed (shop/core/cache.py); 0 turns the process-local copy off.
    cache_local_entries: int = 2000
    queue_name: str = "groupshop"
    payment_provider: str = "fake"
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    public_base_url: str = "http://127.0.0.1:8000"
    login_max_per_ip_per_minute: int = LOGIN_LIMITS["login_max_per_ip_per_minute"][0]
    login_failures_before_lockout: int = LOGIN_LIMITS["login_failures_before_lockout"][0]
    login_lockout_seconds: int = LOGIN_LIMITS["login_lockout_seconds"][0]
    login_lockout_max_seconds: int = LOGIN_LIMITS["login_lockout_max_seconds"][0]
    login_fallback_max_per_minute: int = LOGIN_LIMITS["login_fallback_max_per_minute"][0]
    wx_login_max_per_ip_per_minute: int = LOGIN_LIMITS["wx_login_max_per_ip_per_minute"][0]
    trusted_proxies: int = LOGIN_LIMITS["trusted_proxies"][0]
    # Redis on the request path (cache, enqueue after commit, version bumps): connect/answer
    # timeout, and how long to skip Redis after a failure before trying again.
    redis_timeout: float = 0.5
    redis_cooloff: float = 5.0
    # Redis in the worker, its scheduler and cron: timeout of a command (the worker's, for all its
    # commands: its blocking dequeue's wait plus this), and the longest wait between two attempts
    # while Redis is out.
    redis_background_timeout: float = 10.0
    redis_retry_max: float = 30.0
    # RQ's worker TTL: the worker's blocking dequeue waits this - 15 s (at least 1 s).
    worker_ttl: int = 60
    # When set (seconds), no sweep waits longer than this between two runs (tests, demos).
    sweep_interval_max: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Checked however the settings were made (from the environment or by hand)."""
        if self.env == "production":
            _check_production_secret(self.secret_key)
        for name, (_, minimum) in LOGIN_LIMITS.items():
            if getattr(self, name) < minimum:
                raise RuntimeError(f"{name.upper()} must be at least {minimum}, got {getattr(self, name)}")
        if self.cache_local_entries < 0:
            raise RuntimeError(f"CACHE_LOCAL_ENTRIES must be 0 (off) or more, got {self.cache_local_entries}")
        if self.worker_ttl < MIN_WORKER_TTL:
            raise RuntimeError(f"WORKER_TTL must be at least {MIN_WORKER_TTL} seconds, got {self.worker_ttl}")
        if self.login_lockout_max_seconds < self.login_lockout_seconds:
            raise RuntimeError(
                f"LOGIN_LOCKOUT_MAX_SECONDS ({self.login_lockout_max_seconds}) must not be below "
                f"LOGIN_LOCKOUT_SECONDS ({self.login_lockout_seconds})"
            )

    @classmethod
    def from_env(cls) -> Settings:
        env_given = os.environ.get("GROUPSHOP_ENV")
        env = env_given or "development"
        if env not in ENVIRONMENTS:
            raise RuntimeError(f"GROUPSHOP_ENV must be one of {ENVIRONMENTS}, got {env!r}")
        secret = os.environ.get("SECRET_KEY", "")
        if env == "production":
            _check_production_secret(secret)
        if not secret:
            secret = DEVELOPMENT_SECRET_PREFIX + (
                "insecure-never-use-in-production" if env == "development" else secrets.token_hex(16)
            )
        wechat = os.environ.get("WECHAT_AUTH", "http" if env == "production" else "fake")
        if wechat not in ("fake", "http"):
            raise RuntimeError("WECHAT_AUTH must be 'fake' or 'http'")
        if env == "production" and wechat == "fake":
            raise RuntimeError("the fake WeChat login is refused in production")
        catalog_cache_ttl = _int("CATALOG_CACHE_TTL", 300)
        if catalog_cache_ttl < 0:
            raise RuntimeError("CATALOG_CACHE_TTL must be 0 (no caching) or a number of seconds")
        payments = os.environ.get("PAYMENT_PROVIDER", "wechatpay" if env == "production" else "fake")
        if payments not in ("fake", "wechatpay"):
            raise RuntimeError("PAYMENT_PROVIDER must be 'fake' or 'wechatpay'")
        if env == "production" and payments == "fake":
            raise RuntimeError("the fake payment provider is refused in production")
        database_url = os.environ.get("DATABASE_URL") or None
        if not env_given and database_url and not _is_local_database(database_url):
            log.warning(
                "GROUPSHOP_ENV is not set, so this runs as development (a fixed SECRET_KEY, fake WeChat login "
                "and payments allowed) against the database at %s, which is not on this machine; set "
                "GROUPSHOP_ENV=production for a real deployment (or GROUPSHOP_ENV=development to say you mean it)",
                _database_host(database_url),
            )
        sweep_interval_max = _int("SWEEP_INTERVAL_MAX", 0)
        if sweep_interval_max < 0:
            raise RuntimeError("SWEEP_INTERVAL_MAX must be 0 (each sweep's own interval) or a number of seconds")
        return cls(
            env=env,
            database_url=normalize_database_url(database_url) if database_url else None,
            redis_url=os.environ.get("REDIS_URL") or None,
            secret_key=secret,
            data_dir=Path(os.environ.get("GROUPSHOP_DATA_DIR", ".data")),
            member_token_ttl=_int("MEMBER_TOKEN_TTL", 7 * 24 * 3600),
            staff_token_ttl=_int("STAFF_TOKEN_TTL", 12 * 3600),
            wechat_auth=wechat,
            wechat_api_base=os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com"),
            catalog_cache_ttl=catalog_cache_ttl,
            cache_local_entries=_int("CACHE_LOCAL_ENTRIES", 2000),
            queue_name=os.environ.get("QUEUE_NAME", "groupshop"),
            payment_provider=payments,
            wechatpay_api_base=os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com"),
            public_base_url=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
            **{name: _int(name.upper(), default) for name, (default, _) in LOGIN_LIMITS.items()},
            redis_timeout=_seconds("REDIS_TIMEOUT", 0.5),
            redis_cooloff=_seconds("REDIS_COOLOFF", 5.0),
            redis_background_timeout=_seconds("REDIS_BACKGROUND_TIMEOUT", 10.0),
            redis_retry_max=_seconds("REDIS_RETRY_MAX", 30.0),
            worker_ttl=_int("WORKER_TTL", 60),
            sweep_interval_max=sweep_interval_max,
        )


def _check_production_secret(secret: str) -> None:
    if not secret:
        raise RuntimeError("SECRET_KEY must be set in production")
    if len(secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
        raise RuntimeError(
            f"SECRET_KEY must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production (it signs every "
            f"token); generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    if secret.startswith(DEVELOPMENT_SECRET_PREFIX):
        raise RuntimeError("SECRET_KEY is the development key; production needs its own random key")


def _database_host(url: str) -> str:
    """The host a PostgreSQL URL points to (a path for a Unix socket), never its password."""
    parts = urlsplit(url)
    try:
        host = parts.hostname or ""
    except ValueError:
        return "an unparsable URL"
    return host or parse_qs(parts.query).get("host", [""])[0]


def _is_local_database(url: str) -> bool:
    host = _database_host(url)
    return host in LOCAL_HOSTS or host.startswith("/")
