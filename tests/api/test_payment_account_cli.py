"""The command-line face of WeChat Pay accounts: credentials, platform keys and the certificate
download, as an operator runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shop.payments.providers import PROVIDER_EXTENSION, WeChatPayProvider
from shop.payments.wechatpay import WeChatPayClient
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
    serve,
)


@pytest.fixture
def files(tmp_path: Path, keys: Keys) -> dict[str, str]:
    contents = {
        "apiclient_key.pem": private_pem(keys.merchant),
        "pub_key.pem": public_pem(keys.public),
        "wechatpay_cert.pem": certificate_pem(keys.platform, PLATFORM_SERIAL),
    }
    for name, text in contents.items():
        (tmp_path / name).write_text(text)
    return {name: str(tmp_path / name) for name in contents}


def _run(app, *args: str):
    return app.test_cli_runner().invoke(args=["groupshop", *args])


def _set_account(app, merchant, files, *extra: str):
    return _run(
        app,
        "set-payment-account",
        "--merchant", merchant.code, "--mchid", MCHID, "--serial-no", MERCHANT_SERIAL,
        "--private-key", files["apiclient_key.pem"], "--apiv3-key", APIV3_KEY.decode(),
        *extra,
    )  # fmt: skip


def test_platform_keys_are_added_listed_and_removed_from_the_command_line(app, ctx, files):
    merchant = make_merchant()
    stored = _set_account(
        app, merchant, files, "--platform-serial", PUBLIC_KEY_ID, "--platform-public-key", files["pub_key.pem"]
    )
    assert stored.exit_code == 0, stored.output
    added = _run(app, "add-platform-key", "--merchant", merchant.code, "--certificate", files["wechatpay_cert.pem"])
    assert added.exit_code == 0, added.output
    assert f"certificate {PLATFORM_SERIAL} stored" in added.output
    listed = _run(app, "list-platform-keys", "--merchant", merchant.code).output.splitlines()
    assert [line.split()[:2] for line in listed] == [[PUBLIC_KEY_ID, "public_key"], [PLATFORM_SERIAL, "certificate"]]
    assert "Wechatpay-Serial" in listed[0] and "Wechatpay-Serial" not in listed[1]
    assert all("valid" in line for line in listed)
    removed = _run(app, "remove-platform-key", "--merchant", merchant.code, "--serial", PUBLIC_KEY_ID.lower())
    assert removed.exit_code == 0, removed.output
    listed = _run(app, "list-platform-keys", "--merchant", merchant.code).output.splitlines()
    assert len(listed) == 1 and listed[0].startswith(PLATFORM_SERIAL) and "Wechatpay-Serial" in listed[0]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["add-platform-key", "--serial", PUBLIC_KEY_ID], "invalid_input"),  # no key given
        (["remove-platform-key", "--serial", "NOPE"], "not_found"),
    ],
)
def test_a_refused_command_says_why_without_a_traceback(app, ctx, files, command, expected):
    merchant = make_merchant()
    assert _set_account(app, merchant, files).exit_code == 0
    result = _run(app, command[0], "--merchant", merchant.code, *command[1:])
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output


def test_unusable_credentials_name_the_platform_fields(app, ctx, files):
    merchant = make_merchant()
    result = _set_account(app, merchant, files, "--platform-public-key", files["apiclient_key.pem"])
    assert result.exit_code == 1
    assert "platform_public_key" in result.output and "platform_serial_no" in result.output


def test_fetching_certificates_needs_the_real_provider(app, ctx, files):
    merchant = make_merchant()
    result = _run(app, "fetch-platform-certificates", "--merchant", merchant.code)
    assert result.exit_code == 1 and "PAYMENT_PROVIDER" in result.output


@pytest.fixture
def wechatpay(app, keys) -> Iterator[StubWeChatPay]:
    stub = StubWeChatPay(keys)
    with serve(stub) as base_url:
        saved = app.extensions[PROVIDER_EXTENSION]
        app.extensions[PROVIDER_EXTENSION] = WeChatPayProvider(WeChatPayClient(base_url, timeout=5), "https://x.test")
        try:
            yield stub
        finally:
            app.extensions[PROVIDER_EXTENSION] = saved


def test_fetching_certificates_stores_them_and_says_what_changed(app, ctx, files, keys, wechatpay):
    merchant = make_merchant()
    assert _set_account(app, merchant, files).exit_code == 0
    wechatpay.certificates = [
        Certificate(
            PLATFORM_SERIAL, certificate_pem(keys.platform, PLATFORM_SERIAL), beijing_time(-10), beijing_time(1800)
        )
    ]
    fetched = _run(app, "fetch-platform-certificates", "--merchant", merchant.code)
    assert fetched.exit_code == 0, fetched.output
    assert fetched.output.split() == [PLATFORM_SERIAL, "added"]
    listed = _run(app, "list-platform-keys", "--merchant", merchant.code).output
    assert listed.startswith(f"{PLATFORM_SERIAL}  certificate")
