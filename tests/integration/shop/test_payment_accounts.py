"""The real WeChat Pay provider reads each merchant's stored credentials and verifies with them."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shop.db import transaction
from shop.errors import Conflict, InvalidInput
from shop.payments.accounts import set_payment_account
from shop.payments.providers import WeChatPayProvider
from shop.payments.wechatpay import NotificationRejected, WeChatPayClient, encrypt_resource, nonce, rsa_sign
from tests.factories import make_merchant

APIV3 = "0123456789abcdef0123456789abcdef"


def _pem_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, private, public


def test_a_stored_account_verifies_notifications_signed_by_the_platform_key(ctx):
    merchant = make_merchant()
    _, merchant_private, _ = _pem_pair()
    platform_key, _, platform_public = _pem_pair()
    with transaction():
        set_payment_account(
            merchant.code,
            mchid="1230000109",
            merchant_serial_no="MSERIAL",
            merchant_private_key=merchant_private,
            apiv3_key=APIV3,
            platform_serial_no="PUB_KEY_ID_0001",
            platform_public_key=platform_public,
        )
    provider = WeChatPayProvider(WeChatPayClient("http://127.0.0.1:9"), "https://shop.example.com")
    account = provider.account(merchant)
    assert account.mchid == "1230000109"
    assert account.notify_url == f"https://shop.example.com/api/v1/payments/wechatpay/{merchant.code}/notify"

    resource = {"appid": merchant.wx_appid, "mchid": "1230000109", "out_trade_no": "X1", "trade_state": "SUCCESS"}
    body = json.dumps(
        {
            "id": "n1",
            "event_type": "TRANSACTION.SUCCESS",
            "resource": encrypt_resource(APIV3.encode(), resource, "transaction", "transaction"),
        }
    )
    ts, nonce_str = str(int(time.time())), nonce()
    signature = rsa_sign(platform_key, f"{ts}\n{nonce_str}\n{body}\n")
    headers = {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": "PUB_KEY_ID_0001",
    }
    assert provider.parse_notification(merchant, headers, body).resource == resource
    with pytest.raises(NotificationRejected):
        provider.parse_notification(merchant, {**headers, "Wechatpay-Serial": "OTHER"}, body)


def test_unusable_credentials_are_refused_with_the_fields_named(ctx):
    merchant = make_merchant()
    with pytest.raises(InvalidInput) as caught, transaction():
        set_payment_account(
            merchant.code,
            mchid="1",
            merchant_serial_no="S",
            merchant_private_key="nope",
            apiv3_key="short",
            platform_serial_no="P",
            platform_public_key="nope",
        )
    assert set(caught.value.details["fields"]) == {"apiv3_key", "merchant_private_key", "platform_public_key"}


def test_a_merchant_without_an_account_cannot_take_real_payments(ctx):
    merchant = make_merchant()
    provider = WeChatPayProvider(WeChatPayClient("http://127.0.0.1:9"), "https://shop.example.com")
    with pytest.raises(Conflict) as caught:
        provider.account(merchant)
    assert caught.value.code == "payment_not_configured"
