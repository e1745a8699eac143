"""Jobs used by the harness tests: importable by the worker like any real job module."""

from __future__ import annotations

from sqlalchemy import select

from shop.core.db import db, transaction
from shop.core.runner import job
from shop.identity.models import Merchant

RENAME_MERCHANT = "tests.rename_merchant"


@job(RENAME_MERCHANT)
def rename_merchant(merchant_id: int, name: str) -> str:
    with transaction():
        merchant = db.session.execute(select(Merchant).where(Merchant.id == merchant_id)).scalar_one()
        merchant.name = name
    return name
