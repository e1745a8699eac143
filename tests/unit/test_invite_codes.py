"""Invite codes fit a mini-program QR code's scene and a share card's path; nicknames shown to
other members are masked. No database."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from shop.identity import invite_codes
from shop.identity.invite_codes import (
    ALPHABET,
    PATH_MAX_BYTES,
    SCENE_CHARACTERS,
    SCENE_MAX_LENGTH,
    new_invite_code,
    normalize,
    share_payload,
)

LOOK_ALIKES = set("0O1Il")


def test_codes_are_eight_characters_of_an_alphabet_without_look_alikes():
    codes = [new_invite_code() for _ in range(2000)]
    assert all(len(code) == 8 and set(code) <= set(ALPHABET) for code in codes)
    assert not LOOK_ALIKES & set(ALPHABET)
    assert len(ALPHABET) == 32 == len(set(ALPHABET))


def test_codes_are_random_not_a_sequence():
    codes = [new_invite_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)  # 2^40 codes: a repeat in 2000 draws would mean no randomness
    # every character of the alphabet turns up in every position
    for position in range(8):
        assert {code[position] for code in codes} == set(ALPHABET)


def test_the_share_payload_fits_wechats_limits():
    for _ in range(500):
        share = share_payload(new_invite_code())
        assert SCENE_CHARACTERS.fullmatch(share["scene"])
        assert len(share["scene"]) <= SCENE_MAX_LENGTH
        assert len(share["path"].encode()) <= PATH_MAX_BYTES
        assert not share["page"].startswith("/")  # getUnlimited refuses a page with a leading slash


def test_the_share_payload_names_the_code_in_the_documented_convention():
    share = share_payload("ABCD2345")
    assert share == {"path": "pages/index/index?invite=ABCD2345", "page": "pages/index/index", "scene": "i=ABCD2345"}
    assert re.fullmatch(r"i=(.+)", share["scene"]).group(1) == "ABCD2345"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("ABCD2345", "ABCD2345"),
        ("abcd2345", "ABCD2345"),  # typed in lower case
        ("ABCD234", None),  # too short
        ("ABCD23456", None),  # too long
        ("ABCD2340", None),  # 0 is not in the alphabet
        ("ABCD234O", None),  # nor O
        ("i=ABCD2345", None),  # the scene, not the code
        ("ABCD2345\n", None),
        ("", None),
        ("ＡＢＣＤ２３４５", None),  # full-width letters
    ],
)
def test_what_a_member_sends_is_a_code_or_nothing(sent, stored):
    assert normalize(sent) == stored


def test_the_migration_draws_from_the_same_alphabet():
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0007c_invites.py"
    spec = importlib.util.spec_from_file_location("migration_0007c", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.ALPHABET == invite_codes.ALPHABET
