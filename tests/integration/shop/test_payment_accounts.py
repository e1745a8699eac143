"""The real WeChat Pay provider reads each merchant's stored credentials and platform keys and
verifies with them; platform certificates are downloaded and kept current."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from shop.core.runner import sweeps
from shop.payments import jobs as payment_jobs
from shop.payments.accounts import (
    add_platform_key,
    certificate_mode_merchant_ids,
    list_platform_keys,
    remove_platform_key,
    set_payment_account,
)
from shop.payments.errors import NotificationRejected
from shop.payments.models import PaymentPlatformKey
from shop.payments.providers import PROVIDER_EXTENSION, WeChatPayProvider
from shop.payments.wechatpay import WeChatPayClient, encrypt_resource, nonce, parse_notification, rsa_sign
from tests.factories import make_merchant
from tests.wechatpay_stub import (
    APIV3_KEY,
    MCHID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    PUBLIC_KEY_ID,
    Certificate,
    Keys,
    StubWeChatPay,
    beijing_time,
    certificate_pem,
    private_pem,
    public_pem,
    rsa_key,
    serve,
    signed_headers,
)

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
    assert parse_notification(provider.account(merchant), headers, body).resource == resource
    with pytest.raises(NotificationRejected):
        parse_notification(provider.account(merchant), {**headers, "Wechatpay-Serial": "OTHER"}, body)


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


# --- several platform keys per merchant -----------------------------------------------------------


def _merchant_with_account(keys: Keys, **platform):
    merchant = make_merchant()
    with transaction():
        set_payment_account(
            merchant.code,
            mchid=MCHID,
            merchant_serial_no=MERCHANT_SERIAL,
            merchant_private_key=private_pem(keys.merchant),
            apiv3_key=APIV3_KEY.decode(),
            **platform,
        )
    return merchant


def _provider(base_url: str = "http://127.0.0.1:9") -> WeChatPayProvider:
    return WeChatPayProvider(WeChatPayClient(base_url, timeout=5), "https://shop.example.com")


def _signed_notification(merchant, key, serial: str) -> tuple[dict[str, str], str]:
    resource = {"appid": merchant.wx_appid, "mchid": MCHID, "out_trade_no": "X1", "trade_state": "SUCCESS"}
    body = json.dumps(
        {
            "id": "n1",
            "event_type": "TRANSACTION.SUCCESS",
            "resource": encrypt_resource(APIV3_KEY, resource, "transaction", "transaction"),
        }
    )
    return signed_headers(key, serial, body), body


def _refusal(provider, merchant, headers, body) -> str:
    with pytest.raises(NotificationRejected) as rejected:
        parse_notification(provider.account(merchant), headers, body)
    return rejected.value.reason


def test_a_merchant_moving_to_the_public_key_verifies_notifications_signed_by_either_key(ctx, keys):
    merchant = _merchant_with_account(keys, platform_certificate=certificate_pem(keys.platform, PLATFORM_SERIAL))
    with transaction():
        add_platform_key(merchant.code, serial_no=PUBLIC_KEY_ID, public_key=public_pem(keys.public))
    provider = _provider()
    for key, serial in (
        (keys.platform, PLATFORM_SERIAL),
        (keys.public, PUBLIC_KEY_ID),
        (keys.platform, PLATFORM_SERIAL.lower()),
    ):
        assert (
            parse_notification(provider.account(merchant), *_signed_notification(merchant, key, serial)).resource[
                "out_trade_no"
            ]
            == "X1"
        )
    assert (
        _refusal(provider, merchant, *_signed_notification(merchant, keys.public, PLATFORM_SERIAL)) == "bad_signature"
    )
    assert provider.account(merchant).request_serial() == PUBLIC_KEY_ID


def test_a_certificate_is_stored_with_the_serial_and_validity_read_from_it(ctx, keys):
    merchant = _merchant_with_account(keys)
    start, end = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2029, 1, 2, 3, 4, 5, tzinfo=UTC)
    with transaction():
        row = add_platform_key(
            merchant.code, certificate=certificate_pem(keys.platform, "0AB1C2", not_before=start, not_after=end)
        )
    assert (row.serial_no, row.source, row.valid_from, row.valid_until) == ("0AB1C2", "certificate", start, end)
    (stored,) = _provider().account(merchant).platform_keys
    assert stored.public_key.public_numbers() == keys.platform.public_key().public_numbers()


def test_an_expired_certificate_no_longer_verifies(ctx, keys):
    now = datetime.now(UTC)
    merchant = _merchant_with_account(
        keys,
        platform_certificate=certificate_pem(
            keys.platform, PLATFORM_SERIAL, not_before=now - timedelta(days=1800), not_after=now - timedelta(minutes=1)
        ),
    )
    headers, body = _signed_notification(merchant, keys.platform, PLATFORM_SERIAL)
    assert _refusal(_provider(), merchant, headers, body) == "key_not_valid"


def test_a_stored_serial_keeps_its_key_whatever_the_case_it_is_given_in(ctx, keys):
    merchant = _merchant_with_account(
        keys, platform_serial_no=PUBLIC_KEY_ID, platform_public_key=public_pem(keys.public)
    )
    with transaction():  # the same key again: nothing new
        add_platform_key(merchant.code, serial_no=PUBLIC_KEY_ID.lower(), public_key=public_pem(keys.public))
    with pytest.raises(InvalidInput) as refused, transaction():
        add_platform_key(merchant.code, serial_no=PUBLIC_KEY_ID.lower(), public_key=public_pem(keys.stranger))
    assert set(refused.value.details["fields"]) == {"serial_no"}
    assert [key.serial_no for key in list_platform_keys(merchant.code)] == [PUBLIC_KEY_ID]


@pytest.mark.parametrize(
    ("given", "fields"),
    [
        ({}, {"platform_key"}),
        ({"public_key": "pem", "certificate": "pem"}, {"platform_key"}),
        ({"public_key": "not a key"}, {"serial_no", "public_key"}),
        ({"certificate": "not a certificate"}, {"certificate"}),
        ({"serial_no": "PUB_KEY_ID_1 2", "public_key": "x"}, {"serial_no", "public_key"}),
        ({"serial_no": "ABCDEF", "certificate": "cert"}, {"serial_no"}),
    ],
)
def test_an_unusable_platform_key_is_refused_with_the_fields_named(ctx, keys, given, fields):
    merchant = _merchant_with_account(keys)
    if given.get("certificate") == "cert":
        given["certificate"] = certificate_pem(keys.platform, "0AB1C2")
    with pytest.raises(InvalidInput) as refused, transaction():
        add_platform_key(merchant.code, **given)
    assert set(refused.value.details["fields"]) == fields


def test_a_platform_key_needs_the_payment_account_first(ctx, keys):
    merchant = make_merchant()
    with pytest.raises(InvalidInput) as refused, transaction():
        add_platform_key(merchant.code, serial_no=PUBLIC_KEY_ID, public_key=public_pem(keys.public))
    assert set(refused.value.details["fields"]) == {"merchant"}


def test_a_removed_key_no_longer_verifies(ctx, keys):
    merchant = _merchant_with_account(
        keys, platform_serial_no=PUBLIC_KEY_ID, platform_public_key=public_pem(keys.public)
    )
    with transaction():
        remove_platform_key(merchant.code, PUBLIC_KEY_ID.lower())
    headers, body = _signed_notification(merchant, keys.public, PUBLIC_KEY_ID)
    assert _refusal(_provider(), merchant, headers, body) == "unknown_serial"
    with pytest.raises(NotFound), transaction():
        remove_platform_key(merchant.code, PUBLIC_KEY_ID)


def test_a_new_mchid_drops_the_platform_keys_of_the_old_one(ctx, keys):
    merchant = _merchant_with_account(
        keys, platform_serial_no=PUBLIC_KEY_ID, platform_public_key=public_pem(keys.public)
    )
    with transaction():
        set_payment_account(
            merchant.code,
            mchid="1900000999",
            merchant_serial_no=MERCHANT_SERIAL,
            merchant_private_key=private_pem(keys.merchant),
            apiv3_key=APIV3_KEY.decode(),
        )
    assert list_platform_keys(merchant.code) == []


# --- downloading platform certificates ------------------------------------------------------------


@pytest.fixture
def wechatpay(app, keys) -> Iterator[StubWeChatPay]:
    """The app's provider is the real one, talking to the stand-in."""
    stub = StubWeChatPay(keys)
    with serve(stub) as base_url:
        saved = app.extensions[PROVIDER_EXTENSION]
        app.extensions[PROVIDER_EXTENSION] = _provider(base_url)
        try:
            yield stub
        finally:
            app.extensions[PROVIDER_EXTENSION] = saved


def _stored(merchant_id: int) -> dict[str, tuple]:
    rows = db.session.execute(select(PaymentPlatformKey).where(PaymentPlatformKey.merchant_id == merchant_id)).scalars()
    return {row.serial_no: (row.source, row.valid_from, row.valid_until) for row in rows}


def test_a_refresh_stores_the_certificates_and_follows_a_replacement(app, ctx, keys, wechatpay):
    merchant = _merchant_with_account(keys)  # nothing to verify with yet: the first download vouches for itself
    new_key = rsa_key()
    old = Certificate(
        PLATFORM_SERIAL, certificate_pem(keys.platform, PLATFORM_SERIAL), beijing_time(-1800), beijing_time(1000)
    )
    wechatpay.certificates = [old]
    assert payment_jobs.refresh_platform_certificates(merchant.id) == {PLATFORM_SERIAL: "added"}
    assert payment_jobs.refresh_platform_certificates(merchant.id) == {PLATFORM_SERIAL: "unchanged"}
    # WeChat lists the new certificate and brings the old one's expiry forward
    old.expire_time = beijing_time(5)
    new = Certificate("5CD2", certificate_pem(new_key, "5CD2"), beijing_time(-1), beijing_time(1800))
    wechatpay.certificates = [old, new]
    assert payment_jobs.refresh_platform_certificates(merchant.id) == {PLATFORM_SERIAL: "updated", "5CD2": "added"}
    stored = _stored(merchant.id)
    assert stored[PLATFORM_SERIAL] == (
        "certificate",
        datetime.fromisoformat(old.effective_time),
        datetime.fromisoformat(old.expire_time),
    )
    assert stored["5CD2"][0] == "certificate"
    provider = app.extensions[PROVIDER_EXTENSION]
    assert provider.account(merchant).request_serial() == "5CD2"
    for key, serial in ((keys.platform, PLATFORM_SERIAL), (new_key, "5CD2")):
        assert parse_notification(provider.account(merchant), *_signed_notification(merchant, key, serial)).event_type


def test_a_refused_download_changes_nothing(ctx, keys, wechatpay):
    merchant = _merchant_with_account(keys, platform_certificate=certificate_pem(keys.platform, PLATFORM_SERIAL))
    wechatpay.certificates = [
        Certificate("5CD2", certificate_pem(rsa_key(), "5CD2"), beijing_time(-1), beijing_time(1800), b"f" * 32)
    ]
    with pytest.raises(UpstreamError) as refused:
        payment_jobs.refresh_platform_certificates(merchant.id)
    assert refused.value.code == "certificates_invalid"
    assert list(_stored(merchant.id)) == [PLATFORM_SERIAL]


def test_the_sweep_refreshes_merchants_in_certificate_mode_only(ctx, keys, wechatpay):
    on_certificates = _merchant_with_account(keys, platform_certificate=certificate_pem(keys.platform, PLATFORM_SERIAL))
    on_public_key = _merchant_with_account(
        keys, platform_serial_no=PUBLIC_KEY_ID, platform_public_key=public_pem(keys.public)
    )
    broken = make_merchant()  # its requests are refused (SIGN_ERROR): logged, and the others go on
    with transaction():
        set_payment_account(
            broken.code,
            mchid=MCHID,
            merchant_serial_no=MERCHANT_SERIAL,
            merchant_private_key=private_pem(rsa_key()),
            apiv3_key=APIV3_KEY.decode(),
        )
    assert certificate_mode_merchant_ids() == sorted([on_certificates.id, broken.id])
    wechatpay.certificates = [
        Certificate(
            PLATFORM_SERIAL, certificate_pem(keys.platform, PLATFORM_SERIAL), beijing_time(-1800), beijing_time(5)
        ),
        Certificate("5CD2", certificate_pem(rsa_key(), "5CD2"), beijing_time(-1), beijing_time(1800)),
    ]
    assert payment_jobs.sweep_platform_certificates() == 1
    assert set(_stored(on_certificates.id)) == {PLATFORM_SERIAL, "5CD2"}
    assert set(_stored(on_public_key.id)) == {PUBLIC_KEY_ID}
    assert _stored(broken.id) == {}
    assert [call.authorized for call in wechatpay.calls] == [True, False]


def test_the_certificate_sweep_runs_every_twelve_hours_and_not_with_the_fake(ctx, keys):
    assert sweeps()["shop.payments.jobs.sweep_platform_certificates"][1] == 12 * 3600
    _merchant_with_account(keys)
    assert payment_jobs.sweep_platform_certificates() == 0
