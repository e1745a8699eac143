"""Merchants (tenants): creating one, finding an active one by its code."""

from __future__ import annotations

import re

from sqlalchemy import select

from shop.core.db import db
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.identity import staff
from shop.identity.models import Merchant
from shop.identity.staff import USERNAME_RULE, password_problem, username_problem

# A merchant's code names it in URLs (WeChat Pay's notification URL, logins): letters, digits, _ and -.
MERCHANT_CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"


# A mini-program AppID: "wx" and letters or digits (WeChat's are 18 characters).
APPID_PATTERN = r"wx[A-Za-z0-9]{6,30}"


def create_merchant(
    *, code: str, name: str, appid: str, secret: str, owner_username: str, owner_password: str
) -> Merchant:
    """A tenant and its owner account. What the API would refuse is refused here too (the CLI's
    `create-merchant` comes this way), with the fields at fault."""
    errors: dict[str, list[str]] = {}
    if not re.fullmatch(MERCHANT_CODE_PATTERN, code):
        errors["code"] = ["1-32 letters, digits, _ or -, starting with a letter or digit"]
    if not name.strip() or len(name) > 100 or not name.isprintable():
        errors["name"] = ["1-100 printable characters"]
    if not re.fullmatch(APPID_PATTERN, appid):
        errors["appid"] = ["the mini-program's AppID (wx followed by letters and digits)"]
    if len(secret) > 64 or not secret.isprintable():
        errors["secret"] = ["at most 64 printable characters"]
    if username_problem(owner_username):
        errors["owner"] = [USERNAME_RULE]
    if password_problem(owner_password):
        errors["owner_password"] = [password_problem(owner_password) or ""]
    if errors:
        raise InvalidInput("the merchant cannot be created as given", details={"fields": errors})
    if db.session.execute(select(Merchant.id).where(Merchant.code == code)).first():
        raise Conflict(
            "that merchant code is taken", code="merchant_code_taken", details={"fields": {"code": ["taken"]}}
        )
    merchant = Merchant(code=code, name=name, wx_appid=appid, wx_secret=secret)
    db.session.add(merchant)
    db.session.flush()
    staff.create_staff(merchant.id, username=owner_username, password=owner_password, role="owner", display_name="店主")
    return merchant


def get_active_merchant_by_code(code: str) -> Merchant:
    merchant = db.session.execute(select(Merchant).where(Merchant.code == code)).scalar_one_or_none()
    if merchant is None or not merchant.active:
        raise NotFound("merchant not found", details={"fields": {"merchant": ["unknown merchant"]}})
    return merchant
