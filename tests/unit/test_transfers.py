"""Reading WeChat Pay's answers about a transfer bill, and the out_bill_no rule, without a network
or a database (the calls and notifications: tests/integration/shop/test_transfers.py)."""

from __future__ import annotations

import dataclasses

import pytest

from shop.core.errors import UpstreamError
from shop.payments.transfers import (
    CANCELLABLE_STATES,
    FINAL_STATES,
    TRANSFER_STATES,
    TransferNotice,
    TransferResult,
    check_out_bill_no,
    transfer_result,
)

BILL_NO = "1330000071100999991182020050700019480001"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {
                "out_bill_no": "plfk2020042013",
                "transfer_bill_no": BILL_NO,
                "create_time": "2015-05-20T13:29:35.120+08:00",
                "state": "WAIT_USER_CONFIRM",
                "package_info": "affffddafdfafddffda==",
            },
            TransferResult(
                "plfk2020042013", BILL_NO, "WAIT_USER_CONFIRM", "affffddafdfafddffda==", None,
                "2015-05-20T13:29:35.120+08:00", None,
            ),
        ),
        (
            {
                "mch_id": "1900001109",
                "out_bill_no": "plfk2020042013",
                "transfer_bill_no": BILL_NO,
                "state": "FAIL",
                "fail_reason": "PAYEE_ACCOUNT_ABNORMAL",
                "create_time": "2015-05-20T13:29:35.120+08:00",
                "update_time": "2015-05-20T13:29:36.120+08:00",
            },
            TransferResult(
                "plfk2020042013", BILL_NO, "FAIL", None, "PAYEE_ACCOUNT_ABNORMAL",
                "2015-05-20T13:29:35.120+08:00", "2015-05-20T13:29:36.120+08:00",
            ),
        ),
        (
            {"transfer_bill_no": BILL_NO, "state": "CANCELING", "update_time": "2015-05-20T13:29:35+08:00"},
            TransferResult("plfk2020042013", BILL_NO, "CANCELING", update_time="2015-05-20T13:29:35+08:00"),
        ),
        (
            {"out_bill_no": "plfk2020042013", "state": "SUCCESS", "package_info": "", "fail_reason": 7},
            TransferResult("plfk2020042013", "", "SUCCESS"),
        ),
    ],
    ids=["a transfer's answer", "a query's answer", "a cancel's answer without out_bill_no", "empty or odd fields"],
)  # fmt: skip
def test_an_answer_about_the_bill_reads_as_the_bill_stands(answer, expected):
    assert transfer_result(answer, "plfk2020042013") == expected


@pytest.mark.parametrize(
    "answer",
    [
        {"out_bill_no": "plfk2020042014", "state": "SUCCESS"},
        {"out_bill_no": "plfk2020042013"},
        {"out_bill_no": "plfk2020042013", "state": ""},
        {"out_bill_no": "plfk2020042013", "state": 3},
        {},
    ],
    ids=["about another bill", "no state", "an empty state", "a state that is not text", "nothing"],
)
def test_an_answer_about_another_bill_or_without_a_state_is_not_believed(answer):
    with pytest.raises(UpstreamError) as refused:
        transfer_result(answer, "plfk2020042013")
    assert refused.value.code == "transfer_answer_invalid"


@pytest.mark.parametrize("out_bill_no", ["B1", "plfk2020042013", "A" * 32, "0123456789abcdefABCDEF"])
def test_an_out_bill_no_of_letters_and_digits_up_to_thirty_two_is_accepted(out_bill_no):
    check_out_bill_no(out_bill_no)


@pytest.mark.parametrize("out_bill_no", ["", "A" * 33, "B-1", "B_1", "B 1", "B/1", "../x", "B1?x=1", "单号", "B1\n"])
def test_any_other_out_bill_no_is_a_programming_error(out_bill_no):
    with pytest.raises(ValueError, match="out_bill_no"):
        check_out_bill_no(out_bill_no)


def test_results_and_notices_cannot_be_changed_once_made():
    result = TransferResult("B1", BILL_NO, "SUCCESS")
    notice = TransferNotice(1, "B1", BILL_NO, "SUCCESS", 100, None)
    for made in (result, notice):
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.state = "FAIL"


def test_the_final_and_cancellable_states_are_wechats_states():
    assert {"SUCCESS", "FAIL", "CANCELLED"} == FINAL_STATES
    assert set(FINAL_STATES) | set(CANCELLABLE_STATES) < set(TRANSFER_STATES)
    assert not FINAL_STATES & CANCELLABLE_STATES
