"""A merchant's order settings (shipping fee, free-shipping threshold, order expiry,
auto-confirm and after-sales days): one row, created on first change; defaults otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db, new_row
from shop.core.locking import locked
from shop.identity.models import MerchantSettings


def lock_settings(merchant_id: int) -> MerchantSettings:
    """The merchant's settings row, locked (it must exist)."""
    query = locked(select(MerchantSettings).where(MerchantSettings.merchant_id == merchant_id))
    return db.session.execute(query).scalar_one()


_table = MerchantSettings.__table__
_READ = select(*_table.c).where(_table.c.merchant_id == bindparam("p_merchant"))

# The settings' columns under their own labels, for a query that reads them beside other rows
# (pricing reads them with the SKUs it prices: one round trip fewer per placement); the row's
# values go back through `settings_from_row`.
SETTINGS_PREFIX = "settings_"
SETTINGS_COLUMNS = tuple(column.label(SETTINGS_PREFIX + column.name) for column in _table.c)


def merchant_settings(merchant_id: int) -> MerchantSettings:
    """The merchant's settings to read (a detached copy, not for changing: see update_settings);
    the defaults when the merchant never changed them. One prebuilt query, no ORM loading."""
    row = db.session.execute(_READ, {"p_merchant": merchant_id}).first()
    return _settings(merchant_id, None if row is None else row._asdict())


def default_settings(merchant_id: int) -> MerchantSettings:
    """The settings of a merchant who never changed them (no row yet)."""
    return _settings(merchant_id, None)


def settings_from_row(merchant_id: int, row: Mapping[str, Any]) -> MerchantSettings:
    """The settings read through SETTINGS_COLUMNS (outer-joined: all None when the merchant has
    no row, which means the defaults)."""
    if row[SETTINGS_PREFIX + "merchant_id"] is None:
        return _settings(merchant_id, None)
    return _settings(merchant_id, {column.name: row[SETTINGS_PREFIX + column.name] for column in _table.c})


def _settings(merchant_id: int, values: dict[str, Any] | None) -> MerchantSettings:
    if values is None:  # the defaults are the table's own column defaults
        return new_row(MerchantSettings, merchant_id=merchant_id, **_SETTINGS_DEFAULTS)
    return new_row(MerchantSettings, **values)


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
