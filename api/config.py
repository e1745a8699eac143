"""Configuration from environment variables (each one is documented in the README)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "test", "production")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from None


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
    queue_name: str = "groupshop"
    payment_provider: str = "fake"
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    public_base_url: str = "http://127.0.0.1:8000"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get("GROUPSHOP_ENV", "development")
        if env not in ENVIRONMENTS:
            raise RuntimeError(f"GROUPSHOP_ENV must be one of {ENVIRONMENTS}, got {env!r}")
        secret = os.environ.get("SECRET_KEY", "")
        if not secret:
            if env == "production":
                raise RuntimeError("SECRET_KEY must be set in production")
            secret = "dev-only-" + (
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
            queue_name=os.environ.get("QUEUE_NAME", "groupshop"),
            payment_provider=payments,
            wechatpay_api_base=os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com"),
            public_base_url=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
        )
