"""A merchant's WeChat Pay credentials and the platform keys WeChat Pay signs with, checked
before they are stored.

Platform keys are kept by serial (compared without regard to case), several per merchant, each
with its validity: the WeChat Pay public key (`PUB_KEY_ID_...`, no expiry) and platform
certificates (valid from their effective time until their expire time). Keys are added by hand
(a public key with its id, or a certificate PEM whose serial and validity are read from it) or
downloaded from WeChat Pay's `/v3/certificates` (see `shop.payments.jobs`). A key no longer
valid is refused when it signs, so an expired certificate may stay until it is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, exists, select

from shop.core.db import db, utcnow
from shop.core.errors import InvalidInput, NotFound
from shop.core.locking import locked
from shop.identity.merchants import get_active_merchant_by_code
from shop.identity.models import Merchant
from shop.payments.models import PaymentAccount, PaymentPlatformKey
from shop.payments.wechatpay import (
    PlatformKey,
    key_source,
    load_certificate,
    load_private_key,
    load_public_key,
    normalize_serial,
    public_key_pem,
)

log = logging.getLogger(__name__)
MAX_SERIAL_LENGTH = 64


def set_payment_account(
    merchant_code: str,
    *,
    mchid: str,
    merchant_serial_no: str,
    merchant_private_key: str,
    apiv3_key: str,
    platform_serial_no: str | None = None,
    platform_public_key: str | None = None,
    platform_certificate: str | None = None,
) -> PaymentAccount:
    """Store (or replace) the credentials, and the platform key given with them if any (as
    `add_platform_key` would). Changing the mchid drops the platform keys stored for the old one."""
    merchant = get_active_merchant_by_code(merchant_code)
    errors: dict[str, list[str]] = {}
    if len(apiv3_key.encode()) != 32:
        errors["apiv3_key"] = ["must be 32 bytes"]
    if not mchid.strip():
        errors["mchid"] = ["required"]
    if not merchant_serial_no.strip():
        errors["merchant_serial_no"] = ["required"]
    try:
        load_private_key(merchant_private_key)
    except ValueError:
        errors["merchant_private_key"] = ["not an RSA private key in PEM"]
    key = None
    if platform_serial_no is not None or platform_public_key is not None or platform_certificate is not None:
        try:
            key = _platform_key(platform_serial_no, platform_public_key, platform_certificate)
        except InvalidInput as exc:
            for name, messages in exc.details["fields"].items():
                errors[name if name.startswith("platform_") else f"platform_{name}"] = messages
    if errors:
        raise InvalidInput("the WeChat Pay credentials are not usable", details={"fields": errors})
    account = lock_payment_account(merchant.id)
    if account is None:
        account = PaymentAccount(merchant_id=merchant.id)
        db.session.add(account)
    elif account.mchid != mchid:
        db.session.query(PaymentPlatformKey).filter_by(merchant_id=merchant.id).delete()
    account.mchid = mchid
    account.merchant_serial_no = merchant_serial_no
    account.merchant_private_key = merchant_private_key
    account.apiv3_key = apiv3_key
    db.session.flush()
    if key is not None:
        _add(merchant.id, key)
    return account


def add_platform_key(
    merchant_code: str,
    *,
    serial_no: str | None = None,
    public_key: str | None = None,
    certificate: str | None = None,
) -> PaymentPlatformKey:
    """Add a WeChat Pay public key (PEM, with its `PUB_KEY_ID_...` id as `serial_no`) or a
    platform certificate (PEM; its key, serial and validity are read from it). Adding a key
    stored already updates its validity; another key under a stored serial is refused."""
    merchant = get_active_merchant_by_code(merchant_code)
    key = _platform_key(serial_no, public_key, certificate)
    if lock_payment_account(merchant.id) is None:
        raise InvalidInput(
            "set up the merchant's WeChat Pay account first", details={"fields": {"merchant": ["no payment account"]}}
        )
    return _add(merchant.id, key)


def list_platform_keys(merchant_code: str) -> list[PaymentPlatformKey]:
    merchant = get_active_merchant_by_code(merchant_code)
    return list(
        db.session.execute(
            select(PaymentPlatformKey)
            .where(PaymentPlatformKey.merchant_id == merchant.id)
            .order_by(PaymentPlatformKey.source.desc(), PaymentPlatformKey.valid_until.desc().nulls_last())
        ).scalars()
    )


def remove_platform_key(merchant_code: str, serial_no: str) -> None:
    merchant = get_active_merchant_by_code(merchant_code)
    lock_payment_account(merchant.id)
    row = _find(merchant.id, serial_no)
    if row is None:
        raise NotFound("no platform key with that serial", details={"serial_no": serial_no})
    db.session.delete(row)
    db.session.flush()


def store_platform_certificates(merchant_id: int, certificates: Iterable[PlatformKey]) -> dict[str, str]:
    """Record certificates downloaded from WeChat Pay: new ones are added, known ones take the
    validity WeChat gives now (it moves an old certificate's expire time forward when it is
    replaced). Returns each serial's outcome: added, updated, unchanged or conflict (another key
    is stored under that serial: kept, and logged)."""
    if lock_payment_account(merchant_id) is None:
        return {}
    outcomes = {}
    for key in certificates:
        outcome, _ = _store(merchant_id, key)
        if outcome == "conflict":
            log.error("merchant %s: certificate %s is stored with another key; kept", merchant_id, key.serial_no)
        outcomes[key.serial_no] = outcome
    return outcomes


def certificate_mode_merchant_ids() -> list[int]:
    """Merchants whose WeChat Pay account has no valid WeChat Pay public key: they verify with
    platform certificates, which WeChat Pay replaces, so theirs are downloaded again regularly."""
    return list(db.session.execute(certificate_mode_merchants()).scalars())


def certificate_mode_merchants() -> Select:
    """The query of `certificate_mode_merchant_ids` (merchant ids, ascending), for a sweep."""
    now = utcnow()
    public_key = exists().where(
        PaymentPlatformKey.merchant_id == PaymentAccount.merchant_id,
        PaymentPlatformKey.source == "public_key",
        (PaymentPlatformKey.valid_from.is_(None)) | (PaymentPlatformKey.valid_from <= now),
        (PaymentPlatformKey.valid_until.is_(None)) | (PaymentPlatformKey.valid_until > now),
    )
    return (
        select(PaymentAccount.merchant_id)
        .join(Merchant, Merchant.id == PaymentAccount.merchant_id)
        .where(Merchant.active.is_(True), ~public_key)
        .order_by(PaymentAccount.merchant_id)
    )


# --- helpers ------------------------------------------------------------------------------------


def _platform_key(serial_no: str | None, public_key: str | None, certificate: str | None) -> PlatformKey:
    """A key from what was given, or InvalidInput naming the fields at fault."""
    if (public_key is None) == (certificate is None):
        raise InvalidInput(
            "give a WeChat Pay public key or a platform certificate",
            details={"fields": {"platform_key": ["give exactly one of a public key or a certificate"]}},
        )
    errors: dict[str, list[str]] = {}
    serial = (serial_no or "").strip()
    if len(serial) > MAX_SERIAL_LENGTH or not serial.isprintable() or " " in serial:
        errors["serial_no"] = [f"at most {MAX_SERIAL_LENGTH} characters, no spaces"]
    key = None
    if certificate is not None:
        try:
            key = load_certificate(certificate)
        except ValueError as exc:
            errors["certificate"] = [str(exc)]
        if key is not None and serial and normalize_serial(serial) != normalize_serial(key.serial_no):
            errors["serial_no"] = [f"the certificate's serial is {key.serial_no}"]
    else:
        if not serial:
            errors["serial_no"] = ["required with a public key (its PUB_KEY_ID_... id)"]
        try:
            key = PlatformKey(serial, load_public_key(public_key), key_source(serial))
        except ValueError:
            errors["public_key"] = ["not an RSA public key in PEM"]
    if errors:
        raise InvalidInput("the platform key is not usable", details={"fields": errors})
    return key


def _find(merchant_id: int, serial_no: str) -> PaymentPlatformKey | None:
    wanted = normalize_serial(serial_no)
    rows = db.session.execute(select(PaymentPlatformKey).where(PaymentPlatformKey.merchant_id == merchant_id)).scalars()
    return next((row for row in rows if normalize_serial(row.serial_no) == wanted), None)


def _add(merchant_id: int, key: PlatformKey) -> PaymentPlatformKey:
    outcome, row = _store(merchant_id, key)
    if outcome == "conflict":
        raise InvalidInput(
            "another key is stored under that serial; remove it first",
            details={"fields": {"serial_no": [f"{key.serial_no} names another key"]}},
        )
    return row


def _store(merchant_id: int, key: PlatformKey) -> tuple[str, PaymentPlatformKey]:
    """Add the key, or update the validity of the same key stored under its serial."""
    pem = public_key_pem(key.public_key)
    row = _find(merchant_id, key.serial_no)
    if row is None:
        row = PaymentPlatformKey(
            merchant_id=merchant_id,
            serial_no=key.serial_no,
            public_key=pem,
            source=key.source,
            valid_from=key.valid_from,
            valid_until=key.valid_until,
        )
        db.session.add(row)
        db.session.flush()
        return "added", row
    if load_public_key(row.public_key).public_numbers() != key.public_key.public_numbers():
        return "conflict", row
    validity: tuple[datetime | None, datetime | None] = (key.valid_from, key.valid_until)
    if (row.valid_from, row.valid_until, row.source) == (*validity, key.source):
        return "unchanged", row
    row.valid_from, row.valid_until = validity
    row.source = key.source
    db.session.flush()
    return "updated", row


def lock_payment_account(merchant_id: int) -> PaymentAccount | None:
    """The merchant's payment account, locked (before any of its platform keys), or None."""
    query = locked(select(PaymentAccount).where(PaymentAccount.merchant_id == merchant_id))
    return db.session.execute(query).scalar_one_or_none()
