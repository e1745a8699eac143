"""A merchant's order settings (shipping fee, free-shipping threshold, order expiry,
auto-confirm and after-sales days): one row, created on first change; defaults otherwise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db
from shop.core.locking import locked
from shop.identity.models import MerchantSettings


def lock_settings(merchant_id: int) -> MerchantSettings:
    """The merchant's settings row, locked (it must exist)."""
    query = locked(select(MerchantSettings).where(MerchantSettings.merchant_id == merchant_id))
    return db.session.execute(query).scalar_one()


def merchant_settings(merchant_id: int) -> MerchantSettings:
    settings = db.session.get(MerchantSettings, merchant_id)
    if settings is None:  # the defaults are the table's own column defaults
        settings = MerchantSettings(merchant_id=merchant_id, **_SETTINGS_DEFAULTS)
    return settings


_SETTINGS_DEFAULTS = {
    column.name: column.default.arg
    for column in MerchantSettings.__table__.columns
    if column.default is not None and not callable(column.default.arg)
}


def update_settings(merchant_id: int, **fields: Any) -> MerchantSettings:
    """Change the merchant's order settings; the row is created on first use, race-free."""
    # Insert the defaults first (two first changes at once: one inserts, the other finds the row),
    # then change the locked row: an INSERT leaves out attributes set to None and the column default
    # (free shipping over 99 yuan) would silently replace "no free shipping".
    db.session.execute(
        insert(MerchantSettings)
        .values(merchant_id=merchant_id, **_SETTINGS_DEFAULTS)
        .on_conflict_do_nothing(index_elements=["merchant_id"])
    )
    settings = lock_settings(merchant_id)
    for name, value in fields.items():
        setattr(settings, name, value)
    db.session.flush()
    return settings
