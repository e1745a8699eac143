"""A merchant's WeChat Pay credentials, checked before they are stored."""

from __future__ import annotations

from shop.db import db
from shop.errors import InvalidInput
from shop.members import get_active_merchant_by_code
from shop.models import PaymentAccount
from shop.payments.wechatpay import load_private_key, load_public_key


def set_payment_account(
    merchant_code: str,
    *,
    mchid: str,
    merchant_serial_no: str,
    merchant_private_key: str,
    apiv3_key: str,
    platform_serial_no: str,
    platform_public_key: str,
) -> PaymentAccount:
    merchant = get_active_merchant_by_code(merchant_code)
    errors: dict[str, list[str]] = {}
    if len(apiv3_key.encode()) != 32:
        errors["apiv3_key"] = ["must be 32 bytes"]
    try:
        load_private_key(merchant_private_key)
    except ValueError:
        errors["merchant_private_key"] = ["not an RSA private key in PEM"]
    try:
        load_public_key(platform_public_key)
    except ValueError:
        errors["platform_public_key"] = ["not an RSA public key in PEM"]
    if errors:
        raise InvalidInput("the WeChat Pay credentials are not usable", details={"fields": errors})
    account = db.session.query(PaymentAccount).filter_by(merchant_id=merchant.id).one_or_none()
    if account is None:
        account = PaymentAccount(merchant_id=merchant.id)
        db.session.add(account)
    account.mchid = mchid
    account.merchant_serial_no = merchant_serial_no
    account.merchant_private_key = merchant_private_key
    account.apiv3_key = apiv3_key
    account.platform_serial_no = platform_serial_no
    account.platform_public_key = platform_public_key
    db.session.flush()
    return account
