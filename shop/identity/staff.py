"""Staff accounts: password login (Argon2id) and the owner's management of their team."""

from __future__ import annotations

import re
from collections.abc import Collection

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select

from shop.core.db import db, utcnow
from shop.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from shop.core.locking import locked
from shop.identity.models import Merchant, Staff

# The one password rule: the API's schemas, these services and the CLI all ask `password_problem`.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("groupshop-not-a-password")


def use_cheap_hashing() -> None:
    """Tests only: Argon2 at its cheapest parameters, so hundreds of logins take no time."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    _DUMMY_HASH = _hasher.hash("groupshop-not-a-password")


# A staff username: what the API accepts, and what `create-merchant` applies to the owner.
USERNAME_PATTERN = r"[A-Za-z0-9_.-]{3,64}"
USERNAME_RULE = "3-64 letters, digits, _ . or -"


def username_problem(username: str) -> str | None:
    """Why this is refused as a staff username, or None when it is acceptable."""
    return None if re.fullmatch(USERNAME_PATTERN, username) else USERNAME_RULE


def password_problem(password: str) -> str | None:
    """Why this password is refused as a staff password, or None when it is acceptable."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"at most {PASSWORD_MAX_LENGTH} characters"
    return None


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise InvalidInput(
            "the password does not follow the rule", code="weak_password", details={"fields": {"password": [problem]}}
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(merchant_code: str, username: str, password: str) -> Staff:
    staff = db.session.execute(
        select(Staff)
        .join(Merchant, Merchant.id == Staff.merchant_id)
        .where(Merchant.code == merchant_code, Merchant.active, Staff.username == username)
    ).scalar_one_or_none()
    if staff is None or not staff.active:
        verify_password(_DUMMY_HASH, password)
        raise Unauthorized("wrong merchant, username or password", code="bad_credentials")
    if not verify_password(staff.password_hash, password):
        raise Unauthorized("wrong merchant, username or password", code="bad_credentials")
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.last_login_at = utcnow()
    db.session.flush()
    return staff


# The roles that manage staff accounts (api.auth's "staff:manage").
STAFF_MANAGERS = frozenset({"owner"})


def get_staff(merchant_id: int, staff_id: int) -> Staff:
    staff = db.session.get(Staff, staff_id)
    if staff is None or staff.merchant_id != merchant_id:
        raise NotFound("staff account not found")
    return staff


def list_staff(merchant_id: int) -> list[Staff]:
    return list(db.session.execute(select(Staff).where(Staff.merchant_id == merchant_id).order_by(Staff.id)).scalars())


def create_staff(merchant_id: int, *, username: str, password: str, role: str, display_name: str = "") -> Staff:
    if username_problem(username):
        raise InvalidInput(
            "the username does not follow the rule",
            code="invalid_username",
            details={"fields": {"username": [USERNAME_RULE]}},
        )
    _check_password(password)
    exists = db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant_id, Staff.username == username)
    ).first()
    if exists:
        raise Conflict(
            "that username is taken", code="username_taken", details={"fields": {"username": ["already in use"]}}
        )
    staff = Staff(
        merchant_id=merchant_id,
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name,
    )
    db.session.add(staff)
    db.session.flush()
    return staff


def update_staff(
    merchant_id: int,
    staff_id: int,
    *,
    acting_staff_id: int,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    display_name: str | None = None,
) -> Staff:
    """Change what is given. A new password, another role or a deactivation revokes the account's
    older tokens (its token_version goes up; api.auth compares it on every staff request).

    Decided under the locks of the merchant's owners and of both accounts (shop.core.locking), so two
    owners demoting (or deactivating) each other at once cannot leave the merchant without one:
    the second finds, under the lock, that it may no longer manage staff. (An owner cannot demote
    themselves, so the one acting is always an owner that remains.)
    """
    accounts = lock_staff(merchant_id, {staff_id, acting_staff_id}, with_roles=STAFF_MANAGERS)
    acting = accounts.get(acting_staff_id)
    if acting is None or not acting.active or acting.role not in STAFF_MANAGERS:
        raise Forbidden("your account may no longer manage staff", code="role_forbidden")
    staff = accounts.get(staff_id)
    if staff is None:
        raise NotFound("staff account not found")
    if staff.id == acting_staff_id and (role not in (None, staff.role) or active is False):
        raise Conflict("you cannot demote or deactivate yourself", code="self_demotion")

    if password is not None:
        _check_password(password)
    revoke = password is not None or role not in (None, staff.role) or (active is False and staff.active)
    if role is not None:
        staff.role = role
    if active is not None:
        staff.active = active
    if password is not None:
        staff.password_hash = hash_password(password)
    if display_name is not None:
        staff.display_name = display_name
    if revoke:
        staff.token_version = Staff.token_version + 1  # in SQL: two changes at once both count
    db.session.flush()
    return staff


def lock_staff(merchant_id: int, ids: Collection[int], *, with_roles: Collection[str]) -> dict[int, Staff]:
    """The merchant's staff accounts named by `ids` and every one holding one of `with_roles`,
    locked in id order and re-read, by id (an id of another merchant's account is left out)."""
    query = (
        select(Staff)
        .where(Staff.merchant_id == merchant_id, or_(Staff.id.in_(list(ids)), Staff.role.in_(list(with_roles))))
        .order_by(Staff.id)
    )
    return {staff.id: staff for staff in db.session.execute(locked(query)).scalars()}
