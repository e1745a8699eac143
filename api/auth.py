"""Signed tokens and who may call what.

A token is a JWT (HS256, the app's SECRET_KEY) carrying the merchant (`mid`), the subject (member
or staff id), the role and an expiry; a staff token also carries the account's token version
(`ver`), which must still be the account's on every staff request: a password change, a role change
or a deactivation bumps it, and so revokes every token issued before. Views get the caller from
`current_caller()`; every service call they make is scoped by `caller.merchant_id` (and, for
members, `caller.subject_id`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

import jwt
from flask import current_app, g, request
from flask_smorest import Blueprint

from api.http_rules import forbid_storing_response
from api.schemas.common import MAX_ID
from shop.core.db import db
from shop.core.errors import Forbidden, Unauthorized
from shop.identity.models import Staff
from shop.identity.staff import STAFF_MANAGERS

MEMBER = "member"
STAFF_ROLES = ("owner", "operator", "finance")
# Staff tokens issued before token versions existed carry no `ver`; every account started at 1.
FIRST_TOKEN_VERSION = 1

# What each staff role may do. Later issues add their permissions here.
PERMISSIONS: dict[str, frozenset[str]] = {
    "catalog:read": frozenset(STAFF_ROLES),
    "catalog:write": frozenset({"owner", "operator"}),
    "staff:manage": STAFF_MANAGERS,
    "money:approve": frozenset({"owner", "finance"}),
    "orders:read": frozenset(STAFF_ROLES),
    "orders:fulfil": frozenset({"owner", "operator"}),
    "settings:manage": frozenset({"owner"}),
    "coupons:read": frozenset(STAFF_ROLES),
    "coupons:write": frozenset({"owner", "operator"}),
    "prizes:redeem": frozenset({"owner", "operator"}),
    "distribution:read": frozenset(STAFF_ROLES),
    "distribution:manage": frozenset({"owner", "operator"}),
}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    kind: str  # "member" or "staff"
    subject_id: int
    merchant_id: int
    role: str
    token_version: int | None = None  # staff tokens only

    def can(self, permission: str) -> bool:
        return self.kind == "staff" and self.role in PERMISSIONS.get(permission, frozenset())


def issue_token(
    *, kind: str, subject_id: int, merchant_id: int, role: str, token_version: int | None = None
) -> tuple[str, int]:
    """Return (token, expires_in seconds). A staff token needs the account's current token_version.
    The response that carries it is marked no-store."""
    forbid_storing_response()
    settings = current_app.config["SETTINGS"]
    ttl = settings.member_token_ttl if kind == MEMBER else settings.staff_token_ttl
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(subject_id),
        "mid": merchant_id,
        "role": role,
        "typ": kind,
        "iat": now,
        "exp": now + ttl,
    }
    if kind != MEMBER:
        if token_version is None:
            raise ValueError("a staff token needs the account's token_version")
        claims["ver"] = token_version
    return jwt.encode(claims, settings.secret_key, algorithm="HS256"), ttl


def decode_token(token: str, secret_key: str | None = None) -> Caller:
    """The caller a token names (401 when invalid or expired); `secret_key`: the app's, by default."""
    caller, expires_at = _verified(token, secret_key or current_app.config["SETTINGS"].secret_key)
    if expires_at <= time.time():  # a remembered token still expires on time
        raise Unauthorized("the token has expired; log in again", code="token_expired")
    return caller


# The header of every token `issue_token` signs (PyJWT's, sorted and compact), base64url-encoded.
_OUR_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_OUR_CLAIMS = frozenset({"sub", "mid", "role", "typ", "iat", "exp", "ver"})
_REQUIRED = ("exp", "sub", "mid", "typ")


def _issued_here(token: str, secret_key: str) -> dict[str, Any] | None:
    """The claims of a token exactly as `issue_token` makes them, signed with `secret_key` and in
    force now; None for anything else, which `jwt.decode` then judges (and refuses, or accepts).

    PyJWT checks every character of a segment in Python, which costs more than the rest of a flash
    placement's request checks; a token of our own making needs only its signature (HMAC-SHA256,
    compared in constant time) and its times: what PyJWT would check, for the one shape we issue."""
    header, _, rest = token.partition(".")
    payload, _, signature = rest.partition(".")
    if header != _OUR_HEADER or not (_SEGMENT.fullmatch(payload) and _SEGMENT.fullmatch(signature)):
        return None
    expected = hmac.new(secret_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unbase64(signature), expected):
            return None
        claims = json.loads(_unbase64(payload))
    except ValueError:  # not base64 (a length no encoding has), not JSON, not UTF-8
        return None
    if type(claims) is not dict or not _OUR_CLAIMS.issuperset(claims) or not all(c in claims for c in _REQUIRED):
        return None
    issued, expires = claims.get("iat"), claims["exp"]
    if type(expires) is not int or (issued is not None and type(issued) is not int) or type(claims["sub"]) is not str:
        return None
    now = time.time()
    if expires <= now or (issued is not None and issued > now):
        return None  # expired, or not yet valid: PyJWT says which
    return claims


def _unbase64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@lru_cache(maxsize=4096)
def _verified(token: str, secret_key: str) -> tuple[Caller, int]:
    """Check a token's signature and claims; return the caller and the expiry.

    The same bytes with the same key always check out the same way, so each process remembers
    the last few thousand tokens it accepted (verifying costs more than the rest of a cached
    catalog read) and `decode_token` only checks their expiry again. A refused token raises and
    is not remembered.
    """
    claims = _issued_here(token, secret_key)
    try:
        if claims is None:
            claims = jwt.decode(token, secret_key, algorithms=["HS256"], options={"require": list(_REQUIRED)})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; log in again", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid", code="token_invalid") from None
    kind = claims.get("typ")
    role = claims.get("role")
    if kind not in (MEMBER, "staff") or (kind == "staff" and role not in STAFF_ROLES):
        raise Unauthorized("the token is not valid", code="token_invalid")
    version = None
    if kind == "staff":
        version = claims.get("ver", FIRST_TOKEN_VERSION)
        if type(version) is not int:
            raise Unauthorized("the token is not valid", code="token_invalid")
    subject, merchant = claims["sub"], claims["mid"]
    # What we issue: "sub" a string of ASCII digits, "mid" an integer, both row ids (a bigint).
    # (A bigint has at most 19 digits; Python refuses to convert thousands of them: check first.)
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit() and len(subject) <= 19):
        raise Unauthorized("the token is not valid", code="token_invalid")
    if type(merchant) is not int:
        raise Unauthorized("the token is not valid", code="token_invalid")
    if not (0 < int(subject) <= MAX_ID and 0 < merchant <= MAX_ID):
        raise Unauthorized("the token is not valid", code="token_invalid")
    try:
        expires_at = int(claims["exp"])
    except (TypeError, ValueError, OverflowError):  # a float "exp" can be Infinity or NaN
        raise Unauthorized("the token is not valid", code="token_invalid") from None
    caller = Caller(kind=kind, subject_id=int(subject), merchant_id=merchant, role=role, token_version=version)
    return caller, expires_at


def _caller_from_request() -> Caller:
    return caller_of(request.headers.get("Authorization", ""))


def caller_of(authorization: str, secret_key: str | None = None) -> Caller:
    """The caller an Authorization header names (401 when it names none, or not validly)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("log in first: send Authorization: Bearer <token>", code="token_missing")
    return decode_token(token.strip(), secret_key)


def current_caller() -> Caller:
    return g.caller


def _current_staff(caller: Caller) -> Caller:
    """A deactivated account loses access at once; a password or role change revokes older tokens."""
    staff = db.session.get(Staff, caller.subject_id)
    if staff is None or staff.merchant_id != caller.merchant_id or not staff.active:
        raise Unauthorized("this staff account is no longer active", code="token_revoked")
    if staff.token_version != caller.token_version:
        raise Unauthorized("this token was revoked (the password or role changed); log in again", code="token_revoked")
    return Caller(
        kind="staff",
        subject_id=staff.id,
        merchant_id=staff.merchant_id,
        role=staff.role,
        token_version=staff.token_version,
    )


def member_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        caller = _caller_from_request()
        if caller.kind != MEMBER:
            raise Forbidden("this endpoint is for members", code="members_only")
        g.caller = caller
        return view(*args, **kwargs)

    return _documented(wrapper)


def _documented(wrapper: Any) -> Any:
    """Mark the operation as needing a bearer token in the OpenAPI document."""
    return Blueprint.doc(security=[{"bearerAuth": []}])(wrapper)


def staff_required(permission: str) -> Callable[[F], F]:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = _caller_from_request()
            if caller.kind != "staff":
                raise Forbidden("this endpoint is for merchant staff", code="staff_only")
            caller = _current_staff(caller)
            if not caller.can(permission):
                raise Forbidden(
                    f"the {caller.role} role may not do this",
                    code="role_forbidden",
                    details={"required": sorted(PERMISSIONS[permission])},
                )
            g.caller = caller
            return view(*args, **kwargs)

        return _documented(wrapper)

    return decorate
