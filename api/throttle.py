"""Login throttling at the HTTP edge: who the client is, and the limits from the settings.

The client is `request.remote_addr`. Behind reverse proxies, TRUSTED_PROXIES (default 0) says how
many of them append to X-Forwarded-For; werkzeug's ProxyFix then takes the address the nearest
untrusted hop reported, so a client cannot pick its own address by sending the header.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from api.auth import Caller
from api.config import Settings
from shop.core.ratelimit import Limiter, LoginPolicy

LIMITER_EXTENSION = "groupshop.login_limiter"
STAFF_LOGIN = "staff_login"
# For @blp.alt_response on the throttled endpoints (OpenAPI).
RATE_LIMITED_DOC: dict[str, Any] = {
    "description": "rate_limited: too many attempts; details.limit names the limit, Retry-After says when to retry",
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def install_throttling(app: Flask, settings: Settings) -> None:
    app.extensions[LIMITER_EXTENSION] = Limiter()
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]


def limiter() -> Limiter:
    return current_app.extensions[LIMITER_EXTENSION]


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        per_ip_per_minute=settings.login_max_per_ip_per_minute,
        failures_before_lockout=settings.login_failures_before_lockout,
        lockout_seconds=settings.login_lockout_seconds,
        lockout_max_seconds=settings.login_lockout_max_seconds,
        fallback_per_minute=settings.login_fallback_max_per_minute,
    )


def staff_password_check(merchant_code: str, username: str) -> AbstractContextManager[None]:
    """Around a staff password verification: 429 before hashing when this client or this account
    is over its limit; afterwards the outcome is recorded (a wrong password counts towards a lockout)."""
    return limiter().password_check(
        STAFF_LOGIN,
        ip=client_ip(),
        merchant_code=merchant_code,
        username=username,
        policy=login_policy(_settings()),
    )


def wx_login_allowed() -> None:
    """429 when this client has asked for too many member logins (never fails open)."""
    limiter().hit(
        "wx_login_per_ip",
        client_ip(),
        _settings().wx_login_max_per_ip_per_minute,
        fail_open=False,
        message="too many logins from this address",
    )


# Pickup codes are 8 digits: guessed at the speed of the API, one person's would fall in days.
PICKUP_ATTEMPTS_PER_MINUTE = 60


def pickup_attempt_allowed(caller: Caller) -> None:
    """429 when this caller (a staff account or a group leader) tries pickup codes faster than a
    counter hands over goods: guessing a member's code becomes a matter of years."""
    limiter().hit(
        "pickup_codes",
        f"{caller.merchant_id}:{caller.kind}:{caller.subject_id}",
        PICKUP_ATTEMPTS_PER_MINUTE,
        fail_open=False,
        message="too many pickup codes tried; wait a little",
    )
