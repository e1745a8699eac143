"""Payouts through WeChat Pay's merchant transfer (商家转账): the fake provider's bills and their
notifications, the real provider's requests against the local WeChat Pay stand-in, and the
verification of transfer notifications, which refuses exactly what payment notifications refuse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from shop.core.cache import redis_client
from shop.core.db import TransactionOpen, db, transaction
from shop.core.errors import Conflict, NotFound, UpstreamError
from shop.identity.models import Merchant
from shop.payments.accounts import set_payment_account
from shop.payments.errors import NotificationRejected
from shop.payments.providers import FAKE_APIV3_KEY, FAKE_MCHID, PROVIDER_EXTENSION, FakeWeChatPay, WeChatPayProvider
from shop.payments.service import handle_notification
from shop.payments.transfers import TransferNotice, TransferResult, read_transfer_notification
from shop.payments.wechatpay import (
    PlatformKey,
    WeChatPayAccount,
    WeChatPayClient,
    decrypt_resource,
    encrypt_resource,
)
from tests.factories import make_merchant
from tests.wechatpay_stub import (
    APIV3_KEY,
    APPID,
    MCHID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    PUBLIC_KEY_ID,
    Keys,
    StubWeChatPay,
    private_pem,
    public_pem,
    serve,
    signed_headers,
)

BILLS = "/v3/fund-app/mch-transfer/transfer-bills"
REPORT_INFOS = [
    {"info_type": "岗位类型", "info_content": "推广员"},
    {"info_type": "报酬说明", "info_content": "5月佣金"},
]
NOTIFY_URL = "https://shop.example.com/api/v1/payments/wechatpay/m1/transfer-notify"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def fake(ctx: Flask) -> FakeWeChatPay:
    provider = ctx.extensions[PROVIDER_EXTENSION]
    assert isinstance(provider, FakeWeChatPay)
    return provider


@pytest.fixture
def merchant(ctx: Flask) -> Merchant:
    return make_merchant()


def _transfer(fake: FakeWeChatPay, merchant: Merchant, out_bill_no: str = "B20250601001", **changes: Any):
    request = {
        "out_bill_no": out_bill_no,
        "openid": OPENID,
        "amount": 1500,
        "scene_id": "1005",
        "remark": "5月推广佣金",
        "notify_url": NOTIFY_URL,
        "report_infos": REPORT_INFOS,
    }
    request.update(changes)
    return fake.transfer(fake.account(merchant), **request)


def _read(provider: Any, merchant_code: str, headers: dict[str, str], body: str) -> TransferNotice:
    with transaction():
        return read_transfer_notification(provider, merchant_code, headers, body)


# --- the fake provider's bills ------------------------------------------------------------------


def test_a_transfer_waits_for_the_user_with_a_package_for_wx_request_merchant_transfer(fake, merchant):
    result = _transfer(fake, merchant)
    assert (result.out_bill_no, result.transfer_bill_no, result.state) == (
        "B20250601001",
        "fake_tb_B20250601001",
        "WAIT_USER_CONFIRM",
    )
    assert result.package_info == "fake_package_B20250601001"
    assert result.fail_reason is None and result.create_time
    bill = fake.transfer_bill("B20250601001")
    assert (bill["mch_id"], bill["appid"], bill["openid"], bill["transfer_amount"]) == (
        FAKE_MCHID,
        merchant.wx_appid,
        OPENID,
        1500,
    )
    assert (bill["transfer_scene_id"], bill["notify_url"]) == ("1005", NOTIFY_URL)


def test_the_same_out_bill_no_submitted_again_is_the_same_transfer(fake, merchant):
    first = _transfer(fake, merchant)
    again = _transfer(fake, merchant)
    assert again == first
    assert redis_client().hlen(fake.TRANSFERS_KEY) == 1
    assert _transfer(fake, merchant, "B20250601002").transfer_bill_no != first.transfer_bill_no


@pytest.mark.parametrize(
    "changes",
    [{"amount": 1501}, {"amount": 150000}, {"openid": "o-someone-else"}],
    ids=["another amount", "ten times the amount", "another payee"],
)
def test_the_same_out_bill_no_with_other_details_is_refused_and_the_bill_is_kept(fake, merchant, changes):
    _transfer(fake, merchant)
    with pytest.raises(UpstreamError) as refused:
        _transfer(fake, merchant, **changes)
    assert refused.value.code == "transfer_refused"
    assert refused.value.details == {"wechat_code": "INVALID_REQUEST"}
    bill = fake.transfer_bill("B20250601001")
    assert (bill["transfer_amount"], bill["openid"], bill["state"]) == (1500, OPENID, "WAIT_USER_CONFIRM")


def test_the_same_out_bill_no_from_another_merchant_is_refused(fake, merchant):
    _transfer(fake, merchant)
    with pytest.raises(UpstreamError) as refused:
        _transfer(fake, make_merchant())
    assert refused.value.details == {"wechat_code": "INVALID_REQUEST"}


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0},
        {"amount": -100},
        {"amount": True},
        {"amount": 15.0},
        {"openid": ""},
        {"scene_id": ""},
        {"report_infos": []},
        {"report_infos": [{"info_type": "岗位类型"}]},
        {"report_infos": [{"info_type": "岗位类型", "info_content": ""}]},
    ],
)
def test_what_wechat_pay_refuses_as_a_parameter_error_the_fake_refuses_too(fake, merchant, changes):
    with pytest.raises(UpstreamError) as refused:
        _transfer(fake, merchant, **changes)
    assert (refused.value.code, refused.value.details) == ("transfer_refused", {"wechat_code": "PARAM_ERROR"})
    assert fake.transfer_bill("B20250601001") is None


def test_a_remark_is_cut_to_wechats_thirty_two_characters(fake, merchant):
    _transfer(fake, merchant, remark="佣" * 40)
    assert fake.transfer_bill("B20250601001")["transfer_remark"] == "佣" * 32


@pytest.mark.parametrize(
    ("move", "state", "fail_reason"),
    [
        (lambda fake, merchant, no: fake.confirm_transfer(no), "SUCCESS", None),
        (lambda fake, merchant, no: fake.fail_transfer(no), "FAIL", "PAYEE_ACCOUNT_ABNORMAL"),
        (lambda fake, merchant, no: fake.fail_transfer(no, "TRANSFER_RISK"), "FAIL", "TRANSFER_RISK"),
        (lambda fake, merchant, no: fake.expire_transfer(no), "CANCELLED", None),
        (lambda fake, merchant, no: fake.cancel_transfer(fake.account(merchant), no), "CANCELLED", None),
    ],
    ids=["confirmed", "failed", "failed with a reason", "expired", "cancelled by the merchant"],
)
def test_a_bill_moves_on_as_the_user_or_wechat_pay_moves_it(fake, merchant, move, state, fail_reason):
    _transfer(fake, merchant)
    moved = move(fake, merchant, "B20250601001")
    assert (moved.state, moved.fail_reason) == (state, fail_reason)
    queried = fake.query_transfer(fake.account(merchant), "B20250601001")
    assert (queried.state, queried.fail_reason, queried.package_info) == (state, fail_reason, None)
    assert queried.create_time and queried.update_time
    again = _transfer(fake, merchant)  # submitted again: the bill as it stands, nothing to confirm
    assert (again.state, again.package_info, again.transfer_bill_no) == (state, None, "fake_tb_B20250601001")


def test_a_query_of_a_waiting_bill_carries_no_package_as_wechats_query_does_not(fake, merchant):
    _transfer(fake, merchant)
    queried = fake.query_transfer(fake.account(merchant), "B20250601001")
    assert queried == TransferResult(
        out_bill_no="B20250601001",
        transfer_bill_no="fake_tb_B20250601001",
        state="WAIT_USER_CONFIRM",
        create_time=queried.create_time,
        update_time=queried.update_time,
    )


@pytest.mark.parametrize("move", ["confirm_transfer", "fail_transfer", "expire_transfer"])
def test_a_move_to_the_state_a_bill_is_in_already_changes_nothing(fake, merchant, move):
    _transfer(fake, merchant)
    first = getattr(fake, move)("B20250601001")
    assert getattr(fake, move)("B20250601001") == first


def test_a_failed_bill_keeps_its_first_fail_reason(fake, merchant):
    _transfer(fake, merchant)
    fake.fail_transfer("B20250601001", "TRANSFER_RISK")
    assert fake.fail_transfer("B20250601001", "OTHER").fail_reason == "TRANSFER_RISK"
    assert fake.transfer_bill("B20250601001")["fail_reason"] == "TRANSFER_RISK"


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("confirm_transfer", "fail_transfer"),
        ("confirm_transfer", "expire_transfer"),
        ("fail_transfer", "confirm_transfer"),
        ("expire_transfer", "confirm_transfer"),
        ("expire_transfer", "fail_transfer"),
    ],
)
def test_a_bill_in_a_final_state_moves_no_further(fake, merchant, first, then):
    _transfer(fake, merchant)
    state = getattr(fake, first)("B20250601001").state
    with pytest.raises(Conflict) as refused:
        getattr(fake, then)("B20250601001")
    assert refused.value.code == "transfer_state"
    assert fake.transfer_bill("B20250601001")["state"] == state


@pytest.mark.parametrize("first", ["confirm_transfer", "fail_transfer"])
def test_the_merchant_cannot_cancel_a_bill_that_ended_otherwise(fake, merchant, first):
    _transfer(fake, merchant)
    state = getattr(fake, first)("B20250601001").state
    with pytest.raises(UpstreamError) as refused:
        fake.cancel_transfer(fake.account(merchant), "B20250601001")
    assert (refused.value.code, refused.value.details) == ("transfer_cancel_failed", {"wechat_code": "INVALID_REQUEST"})
    assert fake.transfer_bill("B20250601001")["state"] == state


def test_cancelling_twice_answers_the_cancelled_bill(fake, merchant):
    _transfer(fake, merchant)
    account = fake.account(merchant)
    first = fake.cancel_transfer(account, "B20250601001")
    assert fake.cancel_transfer(account, "B20250601001") == first
    assert first.state == "CANCELLED"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda fake, account: fake.query_transfer(account, "B404"), "transfer_query_failed"),
        (lambda fake, account: fake.cancel_transfer(account, "B404"), "transfer_cancel_failed"),
    ],
    ids=["query", "cancel"],
)
def test_an_unknown_bill_is_wechats_not_found(fake, merchant, call, code):
    with pytest.raises(UpstreamError) as refused:
        call(fake, fake.account(merchant))
    assert (refused.value.code, refused.value.details) == (code, {"wechat_code": "NOT_FOUND"})


@pytest.mark.parametrize("move", ["confirm_transfer", "fail_transfer", "expire_transfer"])
def test_moving_an_unknown_bill_is_not_found(fake, move):
    with pytest.raises(NotFound):
        getattr(fake, move)("B404")


# --- network calls ------------------------------------------------------------------------------


def _real_provider() -> WeChatPayProvider:
    return WeChatPayProvider(WeChatPayClient("http://127.0.0.1:9"), "https://shop.example.com")


def _calls(provider: Any, account: WeChatPayAccount) -> dict[str, Callable[[], Any]]:
    return {
        "transfer": lambda: provider.transfer(
            account,
            out_bill_no="B20250601001",
            openid=OPENID,
            amount=1500,
            scene_id="1005",
            remark="佣金",
            notify_url=NOTIFY_URL,
            report_infos=REPORT_INFOS,
        ),
        "query_transfer": lambda: provider.query_transfer(account, "B20250601001"),
        "cancel_transfer": lambda: provider.cancel_transfer(account, "B20250601001"),
    }


@pytest.mark.parametrize("which", ["fake", "real"])
@pytest.mark.parametrize("call", ["transfer", "query_transfer", "cancel_transfer"])
def test_each_transfer_call_refuses_with_a_transaction_open(fake, merchant, which, call):
    provider = fake if which == "fake" else _real_provider()
    account = fake.account(merchant)  # no database read: nothing begins a transaction
    with pytest.raises(TransactionOpen, match="transaction open"), transaction():
        _calls(provider, account)[call]()
    assert fake.transfer_bill("B20250601001") is None


@pytest.mark.parametrize("call", ["transfer", "query_transfer", "cancel_transfer"])
def test_a_transaction_a_plain_read_began_counts_for_the_fakes_transfer_calls(fake, merchant, call):
    calls = _calls(fake, fake.account(merchant))
    db.session.execute(select(Merchant.id)).all()  # a read begins a transaction
    with pytest.raises(TransactionOpen):
        calls[call]()
    db.session.rollback()
    calls["transfer"]()
    assert calls[call]().out_bill_no == "B20250601001"


@pytest.mark.parametrize("out_bill_no", ["", "B-20250601", "B/1", "B1?mchid=1", "B" * 33, "单号1"])
@pytest.mark.parametrize("which", ["fake", "real"])
@pytest.mark.parametrize("call", ["transfer", "query_transfer", "cancel_transfer"])
def test_an_out_bill_no_that_is_not_letters_and_digits_is_never_sent(fake, merchant, which, call, out_bill_no):
    provider = fake if which == "fake" else _real_provider()
    account = fake.account(merchant)
    calls = {
        "transfer": lambda: provider.transfer(
            account, out_bill_no=out_bill_no, openid=OPENID, amount=1, scene_id="1005", remark="r",
            notify_url=NOTIFY_URL, report_infos=REPORT_INFOS,
        ),
        "query_transfer": lambda: provider.query_transfer(account, out_bill_no),
        "cancel_transfer": lambda: provider.cancel_transfer(account, out_bill_no),
    }  # fmt: skip
    with pytest.raises(ValueError, match="out_bill_no"):
        calls[call]()


# --- the fake's notifications -------------------------------------------------------------------


def _decrypted(body: str) -> tuple[dict[str, Any], dict[str, Any]]:
    envelope = json.loads(body)
    return envelope, decrypt_resource(FAKE_APIV3_KEY, envelope["resource"])


@pytest.mark.parametrize(
    ("move", "state", "fail_reason"),
    [
        ("confirm_transfer", "SUCCESS", None),
        ("fail_transfer", "FAIL", "PAYEE_ACCOUNT_ABNORMAL"),
        ("expire_transfer", "CANCELLED", None),
    ],
)
def test_a_fake_notification_of_a_final_state_reads_back_as_the_bill_stands(fake, merchant, move, state, fail_reason):
    _transfer(fake, merchant)
    getattr(fake, move)("B20250601001")
    headers, body = fake.transfer_notification(merchant, out_bill_no="B20250601001")
    notice = _read(fake, merchant.code, headers, body)
    assert notice == TransferNotice(
        merchant_id=merchant.id,
        out_bill_no="B20250601001",
        transfer_bill_no="fake_tb_B20250601001",
        state=state,
        amount=1500,
        fail_reason=fail_reason,
        openid=OPENID,
    )
    envelope, resource = _decrypted(body)
    assert (envelope["event_type"], envelope["resource_type"], envelope["summary"]) == (
        "MCHTRANSFER.BILL.FINISHED",
        "encrypt-resource",
        "商家转账单据终态通知",
    )
    assert envelope["resource"]["original_type"] == "mch_payment"
    expected_fields = {
        "mch_id", "out_bill_no", "transfer_bill_no", "transfer_amount", "state", "openid", "create_time", "update_time",
    }  # fmt: skip
    assert set(resource) == expected_fields | ({"fail_reason"} if state == "FAIL" else set())
    assert (resource["mch_id"], resource["transfer_amount"], resource["state"]) == (FAKE_MCHID, 1500, state)


def test_the_same_notification_read_twice_gives_the_same_notice(fake, merchant):
    """WeChat Pay may deliver a notification more than once: reading is free of side effects, the
    caller makes acting on it happen once."""
    _transfer(fake, merchant)
    fake.confirm_transfer("B20250601001")
    headers, body = fake.transfer_notification(merchant, out_bill_no="B20250601001")
    assert _read(fake, merchant.code, headers, body) == _read(fake, merchant.code, headers, body)


def test_no_notification_is_built_for_a_bill_still_waiting_for_the_user(fake, merchant):
    _transfer(fake, merchant)
    with pytest.raises(Conflict):
        fake.transfer_notification(merchant, out_bill_no="B20250601001")
    with pytest.raises(NotFound):
        fake.transfer_notification(merchant, out_bill_no="B404")


def test_the_payment_and_refund_notifications_keep_their_summaries(fake, merchant):
    _, paid = fake.payment_notification(merchant, out_trade_no="N1", total=100, openid=OPENID)
    _, refunded = fake.refund_notification(merchant, out_trade_no="N1", out_refund_no="N1R1", refund=100, total=100)
    assert json.loads(paid)["summary"] == "支付成功"
    assert json.loads(refunded)["summary"] == "退款状态变更"


def test_under_the_fake_whose_merchants_share_one_account_a_notice_names_the_merchant_it_came_to(fake, merchant):
    """The fake gives every merchant the same mchid and keys, so it cannot refuse another
    merchant's notification the way a real account does (see the real provider's tests below):
    the notice names the merchant whose URL it came to, and the caller's lookup of the bill by
    (merchant_id, out_bill_no) finds nothing."""
    other = make_merchant()
    _transfer(fake, merchant)
    fake.confirm_transfer("B20250601001")
    headers, body = fake.transfer_notification(merchant, out_bill_no="B20250601001")
    assert _read(fake, other.code, headers, body).merchant_id == other.id


# --- refused notifications: the same reasons as payment notifications ---------------------------


def _transfer_resource(**changes: Any) -> dict[str, Any]:
    """A transfer notification's resource as WeChat Pay's documentation lists it; a change to
    None drops the field."""
    resource = {
        "mch_id": FAKE_MCHID,
        "out_bill_no": "B20250601001",
        "transfer_bill_no": "1330000071100999991182020050700019480001",
        "transfer_amount": 1500,
        "state": "SUCCESS",
        "openid": OPENID,
        "create_time": "2025-06-01T10:00:00+08:00",
        "update_time": "2025-06-01T10:01:00+08:00",
    }
    resource.update(changes)
    return {k: v for k, v in resource.items() if v is not None}


@dataclass(frozen=True)
class Kind:
    """One kind of notification: its event, its resource (genuine, or with `changes`), the
    fields the faults below spoil, and how it is read (and refused)."""

    event: str
    other_event: str
    original_type: str
    resource: Callable[..., dict[str, Any]]
    account_field: str
    required_field: str
    amount_as_text: dict[str, Any]
    read: Callable[[str, dict[str, str], str], Any]


@pytest.fixture
def kinds(fake, merchant) -> dict[str, Kind]:
    def payment_resource(**changes: Any) -> dict[str, Any]:
        resource = {
            "appid": merchant.wx_appid,
            "mchid": FAKE_MCHID,
            "out_trade_no": "26060100000000000001",
            "transaction_id": "4200000000000000000000000001",
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "payer": {"openid": OPENID},
            "amount": {"total": 1500, "payer_total": 1500, "currency": "CNY", "payer_currency": "CNY"},
        }
        resource.update(changes)
        return {k: v for k, v in resource.items() if v is not None}

    def read_payment(code: str, headers: dict[str, str], body: str) -> Any:
        with transaction():
            return handle_notification(fake, code, headers, body)

    return {
        "transfer": Kind(
            event="MCHTRANSFER.BILL.FINISHED",
            other_event="TRANSACTION.SUCCESS",
            original_type="mch_payment",
            resource=_transfer_resource,
            account_field="mch_id",
            required_field="transfer_bill_no",
            amount_as_text={"transfer_amount": "1500"},
            read=lambda code, headers, body: _read(fake, code, headers, body),
        ),
        "payment": Kind(
            event="TRANSACTION.SUCCESS",
            other_event="MCHTRANSFER.BILL.FINISHED",
            original_type="transaction",
            resource=payment_resource,
            account_field="mchid",
            required_field="out_trade_no",
            amount_as_text={"amount": {"total": "1500"}},
            read=read_payment,
        ),
    }


def _genuine(fake: FakeWeChatPay, merchant: Merchant, kind: Kind, **changes: Any) -> tuple[dict[str, str], str]:
    return fake.notification(merchant, kind.event, kind.resource(**changes), kind.original_type)


def _tampered(fake, merchant, kind, keys):
    headers, body = _genuine(fake, merchant, kind)
    return headers, body.replace('"event_type"', '"event_type" ', 1)


def _signed_by_a_stranger(fake, merchant, kind, keys):
    _, body = _genuine(fake, merchant, kind)
    return fake.sign(body, key=keys.stranger), body


def _unknown_serial(fake, merchant, kind, keys):
    _, body = _genuine(fake, merchant, kind)
    return fake.sign(body, serial="SOME-OTHER-SERIAL"), body


def _replayed(fake, merchant, kind, keys):
    _, body = _genuine(fake, merchant, kind)
    return fake.sign(body, timestamp=int(time.time()) - 301), body


def _signtest(fake, merchant, kind, keys):
    headers, body = _genuine(fake, merchant, kind)
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, body


def _unsigned(fake, merchant, kind, keys):
    _, body = _genuine(fake, merchant, kind)
    return {"Content-Type": "application/json"}, body


def _under_another_apiv3_key(fake, merchant, kind, keys):
    envelope = json.loads(_genuine(fake, merchant, kind)[1])
    envelope["resource"] = encrypt_resource(b"x" * 32, kind.resource(), kind.original_type, kind.original_type)
    body = json.dumps(envelope, ensure_ascii=False)
    return fake.sign(body), body


def _not_a_notification(fake, merchant, kind, keys):
    return fake.sign("not json"), "not json"


def _another_event(fake, merchant, kind, keys):
    return fake.notification(merchant, kind.other_event, kind.resource(), kind.original_type)


def _another_merchant_number(fake, merchant, kind, keys):
    return _genuine(fake, merchant, kind, **{kind.account_field: "1999999999"})


def _no_merchant_number(fake, merchant, kind, keys):
    return _genuine(fake, merchant, kind, **{kind.account_field: None})


def _a_required_field_missing(fake, merchant, kind, keys):
    return _genuine(fake, merchant, kind, **{kind.required_field: None})


def _an_amount_as_text(fake, merchant, kind, keys):
    return _genuine(fake, merchant, kind, **kind.amount_as_text)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_tampered, "bad_signature"),
        (_signed_by_a_stranger, "bad_signature"),
        (_unknown_serial, "unknown_serial"),
        (_replayed, "stale"),
        (_signtest, "signtest"),
        (_unsigned, "missing_headers"),
        (_under_another_apiv3_key, "bad_ciphertext"),
        (_not_a_notification, "bad_body"),
        (_another_event, "unknown_event"),
        (_another_merchant_number, "wrong_account"),
        (_no_merchant_number, "wrong_account"),
        (_a_required_field_missing, "bad_body"),
        (_an_amount_as_text, "bad_body"),
    ],
)
def test_a_spoiled_transfer_notification_is_refused_with_the_reason_a_payment_notification_gets(
    fake, merchant, kinds, keys, spoil, reason
):
    refused = {}
    for name, kind in kinds.items():
        headers, body = spoil(fake, merchant, kind, keys)
        with pytest.raises(NotificationRejected) as caught:
            kind.read(merchant.code, headers, body)
        refused[name] = caught.value.reason
    assert refused == {"transfer": reason, "payment": reason}


def test_the_genuine_notifications_those_faults_spoil_are_accepted(fake, merchant, kinds):
    headers, body = _genuine(fake, merchant, kinds["transfer"])
    assert _read(fake, merchant.code, headers, body).state == "SUCCESS"


def test_a_notification_to_an_unknown_merchant_is_refused_as_a_payments_is(fake, merchant, kinds):
    for kind in kinds.values():
        headers, body = _genuine(fake, merchant, kind)
        with pytest.raises(NotificationRejected) as caught:
            kind.read("no-such-merchant", headers, body)
        assert caught.value.reason == "unknown_merchant"


@pytest.mark.parametrize("state", ["ACCEPTED", "WAIT_USER_CONFIRM", "TRANSFERING", "CANCELING", "PAID"])
def test_a_transfer_notification_of_a_state_that_is_not_final_is_refused(fake, merchant, state):
    headers, body = fake.notification(merchant, "MCHTRANSFER.BILL.FINISHED", _transfer_resource(state=state), "x")
    with pytest.raises(NotificationRejected) as caught:
        _read(fake, merchant.code, headers, body)
    assert caught.value.reason == "not_final"


@pytest.mark.parametrize(
    "changes",
    [
        {"out_bill_no": "B" * 33},
        {"out_bill_no": 42},
        {"transfer_bill_no": ""},
        {"transfer_amount": -1},
        {"transfer_amount": 15.0},
        {"state": None},
        {"fail_reason": "x\x00y"},
    ],
)
def test_a_genuine_transfer_notification_with_a_field_we_never_store_is_refused(fake, merchant, changes):
    resource = _transfer_resource(**changes)
    headers, body = fake.notification(merchant, "MCHTRANSFER.BILL.FINISHED", resource, "mch_payment")
    with pytest.raises(NotificationRejected) as caught:
        _read(fake, merchant.code, headers, body)
    assert caught.value.reason == "bad_body"


def test_a_merchant_without_a_payment_account_cannot_have_its_notifications_read(fake, merchant, kinds):
    """With the real provider, nothing to verify with: refused as a payment notification is."""
    provider = _real_provider()
    headers, body = _genuine(fake, merchant, kinds["transfer"])
    with pytest.raises(NotificationRejected) as transfer:
        _read(provider, merchant.code, headers, body)
    headers, body = _genuine(fake, merchant, kinds["payment"])
    with pytest.raises(NotificationRejected) as payment, transaction():
        handle_notification(provider, merchant.code, headers, body)
    assert transfer.value.reason == payment.value.reason == "not_configured"


# --- the real provider: merchants' own accounts -------------------------------------------------


def _store_account(merchant: Merchant, *, mchid: str, platform_key, serial: str, apiv3_key: bytes, keys: Keys):
    with transaction():
        set_payment_account(
            merchant.code,
            mchid=mchid,
            merchant_serial_no=MERCHANT_SERIAL,
            merchant_private_key=private_pem(keys.merchant),
            apiv3_key=apiv3_key.decode(),
            platform_serial_no=serial,
            platform_public_key=public_pem(platform_key),
        )


def _wechat_notification(platform_key, serial: str, apiv3_key: bytes, mch_id: str) -> tuple[dict[str, str], str]:
    """A transfer notification as WeChat Pay sends one for the merchant `mch_id`."""
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2025-06-01T10:01:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "MCHTRANSFER.BILL.FINISHED",
            "summary": "商家转账单据终态通知",
            "resource": encrypt_resource(apiv3_key, _transfer_resource(mch_id=mch_id), "mch_payment", "mch_payment"),
        },
        ensure_ascii=False,
    )
    return {**signed_headers(platform_key, serial, body), "Content-Type": "application/json"}, body


@pytest.mark.parametrize(
    ("other_account", "reason"),
    [
        ("its own platform key and key id", "unknown_serial"),
        ("its own platform key under the same key id", "bad_signature"),
        ("its own APIv3 key", "bad_ciphertext"),
        ("its own merchant number", "wrong_account"),
    ],
)
def test_a_notification_posted_under_another_merchants_code_is_refused(keys, merchant, other_account, reason):
    other = make_merchant()
    _store_account(
        merchant, mchid=MCHID, platform_key=keys.public, serial=PUBLIC_KEY_ID, apiv3_key=APIV3_KEY, keys=keys
    )
    setup = {"mchid": MCHID, "platform_key": keys.public, "serial": PUBLIC_KEY_ID, "apiv3_key": APIV3_KEY}
    setup.update(
        {
            "its own platform key and key id": {"platform_key": keys.platform, "serial": "PUB_KEY_ID_0119990001"},
            "its own platform key under the same key id": {"platform_key": keys.platform},
            "its own APIv3 key": {"apiv3_key": b"fedcba9876543210fedcba9876543210"},
            "its own merchant number": {"mchid": "1999999999"},
        }[other_account]
    )
    _store_account(other, keys=keys, **setup)
    provider = _real_provider()
    headers, body = _wechat_notification(keys.public, PUBLIC_KEY_ID, APIV3_KEY, MCHID)
    assert _read(provider, merchant.code, headers, body).merchant_id == merchant.id
    with pytest.raises(NotificationRejected) as caught:
        _read(provider, other.code, headers, body)
    assert caught.value.reason == reason


# --- the real provider's requests, against the local WeChat Pay stand-in ------------------------


@pytest.fixture
def wechatpay(keys: Keys) -> Iterator[tuple[StubWeChatPay, WeChatPayProvider]]:
    stub = StubWeChatPay(keys)
    with serve(stub) as base_url:
        yield stub, WeChatPayProvider(WeChatPayClient(base_url, timeout=5), "https://shop.example.com")


@pytest.fixture
def account(keys: Keys) -> WeChatPayAccount:
    return WeChatPayAccount(
        appid=APPID,
        mchid=MCHID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=keys.merchant,
        apiv3_key=APIV3_KEY,
        platform_keys=(PlatformKey(PLATFORM_SERIAL, keys.platform.public_key(), "certificate"),),
    )


def _send_transfer(provider: WeChatPayProvider, account: WeChatPayAccount, **changes: Any) -> TransferResult:
    request = {
        "out_bill_no": "plfk2020042013",
        "openid": OPENID,
        "amount": 400000,
        "scene_id": "1005",
        "remark": "5月推广佣金",
        "notify_url": NOTIFY_URL,
        "report_infos": REPORT_INFOS,
    }
    request.update(changes)
    return provider.transfer(account, **request)


WAITING = {
    "out_bill_no": "plfk2020042013",
    "transfer_bill_no": "1330000071100999991182020050700019480001",
    "create_time": "2015-05-20T13:29:35.120+08:00",
    "state": "WAIT_USER_CONFIRM",
    "package_info": "affffddafdfafddffda==",
}


def test_a_transfer_is_posted_signed_with_the_body_wechat_pay_documents(wechatpay, account):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 200, WAITING)
    result = _send_transfer(provider, account)
    assert result == TransferResult(
        out_bill_no="plfk2020042013",
        transfer_bill_no="1330000071100999991182020050700019480001",
        state="WAIT_USER_CONFIRM",
        package_info="affffddafdfafddffda==",
        create_time="2015-05-20T13:29:35.120+08:00",
    )
    (call,) = stub.calls
    assert (call.method, call.path, call.authorized) == ("POST", BILLS, True)
    assert (call.auth["mchid"], call.auth["serial_no"]) == (MCHID, MERCHANT_SERIAL)
    assert call.wechatpay_serial == PLATFORM_SERIAL
    assert call.body == {
        "appid": APPID,
        "out_bill_no": "plfk2020042013",
        "transfer_scene_id": "1005",
        "openid": OPENID,
        "transfer_amount": 400000,
        "transfer_remark": "5月推广佣金",
        "notify_url": NOTIFY_URL,
        "transfer_scene_report_infos": REPORT_INFOS,
    }


def test_a_transfer_submitted_again_is_the_same_request_and_wechat_answers_the_same_bill(wechatpay, account):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 200, WAITING)
    assert _send_transfer(provider, account) == _send_transfer(provider, account)
    first, second = stub.calls
    assert first.body == second.body and first.auth["signature"] != second.auth["signature"]


def test_a_long_remark_is_cut_to_thirty_two_characters_before_it_is_sent(wechatpay, account):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 200, WAITING)
    _send_transfer(provider, account, remark="佣" * 40)
    assert stub.calls[0].body["transfer_remark"] == "佣" * 32


def test_a_query_gets_the_bill_by_its_out_bill_no(wechatpay, account):
    stub, provider = wechatpay
    path = f"{BILLS}/out-bill-no/plfk2020042013"
    stub.answer(
        "GET",
        path,
        200,
        {
            "mch_id": MCHID,
            "out_bill_no": "plfk2020042013",
            "transfer_bill_no": "1330000071100999991182020050700019480001",
            "appid": APPID,
            "state": "FAIL",
            "transfer_amount": 400000,
            "transfer_remark": "5月推广佣金",
            "fail_reason": "PAYEE_ACCOUNT_ABNORMAL",
            "openid": OPENID,
            "create_time": "2015-05-20T13:29:35.120+08:00",
            "update_time": "2015-05-20T13:29:35.120+08:00",
        },
    )
    result = provider.query_transfer(account, "plfk2020042013")
    assert (result.state, result.fail_reason, result.package_info) == ("FAIL", "PAYEE_ACCOUNT_ABNORMAL", None)
    assert result.update_time == "2015-05-20T13:29:35.120+08:00"
    (call,) = stub.calls
    assert (call.method, call.path, call.body, call.authorized) == ("GET", path, None, True)


def test_a_cancel_posts_to_the_bills_cancel_path_with_no_body(wechatpay, account):
    stub, provider = wechatpay
    path = f"{BILLS}/out-bill-no/plfk2020042013/cancel"
    stub.answer(
        "POST",
        path,
        200,
        {
            "out_bill_no": "plfk2020042013",
            "transfer_bill_no": "1330000071100999991182020050700019480001",
            "state": "CANCELING",
            "update_time": "2015-05-20T13:29:35.120+08:00",
        },
    )
    result = provider.cancel_transfer(account, "plfk2020042013")
    assert (result.state, result.update_time, result.create_time) == (
        "CANCELING",
        "2015-05-20T13:29:35.120+08:00",
        None,
    )
    (call,) = stub.calls
    assert (call.method, call.path, call.body, call.authorized) == ("POST", path, None, True)


@pytest.mark.parametrize(
    ("call", "method", "path", "status", "wechat_code", "code"),
    [
        ("transfer", "POST", BILLS, 400, "PARAM_ERROR", "transfer_refused"),
        ("transfer", "POST", BILLS, 400, "INVALID_REQUEST", "transfer_refused"),
        ("transfer", "POST", BILLS, 403, "NOT_ENOUGH", "transfer_refused"),
        ("transfer", "POST", BILLS, 429, "FREQUENCY_LIMITED", "transfer_refused"),
        ("query_transfer", "GET", f"{BILLS}/out-bill-no/B20250601001", 404, "NOT_FOUND", "transfer_query_failed"),
        (
            "cancel_transfer",
            "POST",
            f"{BILLS}/out-bill-no/B20250601001/cancel",
            400,
            "INVALID_REQUEST",
            "transfer_cancel_failed",
        ),
        ("transfer", "POST", BILLS, 500, "SYSTEM_ERROR", "payment_upstream_error"),
        ("query_transfer", "GET", f"{BILLS}/out-bill-no/B20250601001", 500, "SYSTEM_ERROR", "payment_upstream_error"),
    ],
)
def test_wechat_pay_refusals_become_upstream_errors_naming_wechats_code(
    wechatpay, account, call, method, path, status, wechat_code, code
):
    stub, provider = wechatpay
    stub.answer(method, path, status, {"code": wechat_code, "message": "refused"})
    with pytest.raises(UpstreamError) as refused:
        _calls(provider, account)[call]()
    assert refused.value.code == code
    assert refused.value.details["wechat_code"] == wechat_code


@pytest.mark.parametrize(
    ("mischief", "code"),
    [("tampered", "payment_unverified"), ("wrong_key", "payment_unverified"), ("stale", "payment_unverified")],
)
def test_an_answer_that_fails_verification_is_not_believed(wechatpay, account, mischief, code):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 200, WAITING)
    stub.mischief = mischief
    with pytest.raises(UpstreamError) as refused:
        _send_transfer(provider, account)
    assert refused.value.code == code


def test_an_unsigned_refusal_is_wechats_refusal_of_the_request(wechatpay, account):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 400, {"code": "PARAM_ERROR", "message": "refused"})
    stub.mischief = "unsigned"
    with pytest.raises(UpstreamError) as refused:
        _send_transfer(provider, account)
    assert (refused.value.code, refused.value.details["wechat_code"]) == ("payment_rejected", "PARAM_ERROR")


@pytest.mark.parametrize(
    "answer",
    [
        {**WAITING, "out_bill_no": "plfk2020042014"},
        {**WAITING, "state": ""},
        {k: v for k, v in WAITING.items() if k != "state"},
    ],
    ids=["another bill", "an empty state", "no state"],
)
def test_an_answer_about_another_bill_or_without_a_state_is_not_believed(wechatpay, account, answer):
    stub, provider = wechatpay
    stub.answer("POST", BILLS, 200, answer)
    with pytest.raises(UpstreamError) as refused:
        _send_transfer(provider, account)
    assert refused.value.code == "transfer_answer_invalid"
