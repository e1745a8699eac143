"""Invites over HTTP: wx-login's invite and channel, POST /api/v1/invites/{code}/open, the
member's code and share payload on /me, GET /api/v1/me/invites, and the birthday on PATCH /me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from shop.core.db import db, transaction, utcnow
from shop.identity.invite_codes import CODE_PATTERN, SCENE_CHARACTERS
from shop.identity.models import Member, MemberInvite
from tests.factories import make_merchant, member_headers, staff_headers

LOGIN = "/api/v1/auth/wx-login"
CHINA = timezone(timedelta(hours=8))


def wx_login(client, merchant_code: str, name: str, **extra: Any):
    return client.post(LOGIN, json={"merchant": merchant_code, "code": f"test:{name}", **extra})


def logged_in(client, merchant_code: str, name: str, **extra: Any) -> tuple[dict[str, str], dict[str, Any]]:
    response = wx_login(client, merchant_code, name, **extra)
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}, response.json


def me(client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def rows() -> list[tuple[int, int, str, bool, bool]]:
    found = db.session.execute(select(MemberInvite).order_by(MemberInvite.id)).scalars()
    return [(r.inviter_id, r.invitee_id, r.channel, r.new_member, r.bound) for r in found]


def member_row(member_id: int) -> Member:
    db.session.expire_all()
    return db.session.get(Member, member_id)


def everything_of_members() -> tuple[list[tuple], list[tuple]]:
    db.session.expire_all()
    members = db.session.execute(select(Member).order_by(Member.id)).scalars()
    return (
        [(m.id, m.invited_by_id, m.channel, m.birthday, m.nickname, m.invite_code) for m in members],
        rows(),
    )


def open_code(client, headers: dict[str, str], code: str, **body: Any):
    return client.post(f"/api/v1/invites/{code}/open", headers=headers, json=body or None)


def error_of(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


# --- the member's code and share payload


def test_me_shows_the_invite_code_and_the_share_payload(ctx, client):
    merchant = make_merchant()
    headers, login = logged_in(client, merchant.code, "alice")
    body = me(client, headers)
    code = body["invite_code"]
    assert CODE_PATTERN.fullmatch(code)
    assert body["share"] == {
        "path": f"pages/index/index?invite={code}",
        "page": "pages/index/index",
        "scene": f"i={code}",
    }
    assert SCENE_CHARACTERS.fullmatch(body["share"]["scene"]) and len(body["share"]["scene"]) <= 32
    assert login["member"]["invite_code"] == code
    assert login["invite"] is None  # no invite sent
    assert body["birthday"] is None


def test_members_of_one_merchant_have_different_codes(ctx, client):
    merchant = make_merchant()
    codes = {me(client, member_headers(client, merchant.code, f"m{i}"))["invite_code"] for i in range(20)}
    assert len(codes) == 20


# --- wx-login with an invite


def test_a_new_member_invited_at_login_gets_the_inviter_and_a_masked_inviter_is_shown(ctx, client):
    merchant = make_merchant()
    alice, _ = logged_in(client, merchant.code, "alice")
    client.patch("/api/v1/me", headers=alice, json={"nickname": "王小二"})
    alice_me = me(client, alice)

    _, bob = logged_in(client, merchant.code, "bob", invite=alice_me["invite_code"], channel="qrcode")

    assert bob["new_member"] is True
    assert bob["invite"] == {"recorded": True, "bound": True, "reason": None, "inviter": {"nickname": "王*二"}}
    member = member_row(bob["member"]["id"])
    assert (member.invited_by_id, member.channel) == (alice_me["id"], "qrcode")
    assert rows() == [(alice_me["id"], member.id, "qrcode", True, True)]


def test_an_existing_members_login_with_an_invite_is_history_only(ctx, client):
    merchant = make_merchant()
    alice, _ = logged_in(client, merchant.code, "alice")
    _, bob = logged_in(client, merchant.code, "bob")
    with transaction():
        db.session.get(Member, bob["member"]["id"]).created_at = utcnow() - timedelta(days=3)

    _, again = logged_in(client, merchant.code, "bob", invite=me(client, alice)["invite_code"], channel="poster")

    assert again["new_member"] is False
    assert again["invite"]["recorded"] is True and again["invite"]["bound"] is False
    assert member_row(bob["member"]["id"]).invited_by_id is None
    assert rows() == [(me(client, alice)["id"], bob["member"]["id"], "poster", False, False)]


def test_first_touch_is_kept_over_later_invites(ctx, client):
    merchant = make_merchant()
    alice, carol = member_headers(client, merchant.code, "alice"), member_headers(client, merchant.code, "carol")
    alice_me, carol_me = me(client, alice), me(client, carol)
    bob, _ = logged_in(client, merchant.code, "bob", invite=alice_me["invite_code"])

    opened = open_code(client, bob, carol_me["invite_code"], channel="share_card")

    assert opened.status_code == 200, opened.json
    assert (opened.json["recorded"], opened.json["bound"]) == (True, False)
    assert member_row(me(client, bob)["id"]).invited_by_id == alice_me["id"]


@pytest.mark.parametrize("invite", ["ZZZZZZZZ", "not a code at all", "i=ABCD2345", "0000OOOO"])
def test_an_unknown_code_at_login_is_ignored_and_the_login_succeeds(ctx, client, invite):
    merchant = make_merchant()
    response = wx_login(client, merchant.code, "newcomer", invite=invite)
    assert response.status_code == 200, response.json
    assert response.json["invite"] == {"recorded": False, "bound": False, "reason": "invite_not_found", "inviter": None}
    assert member_row(response.json["member"]["id"]).invited_by_id is None
    assert rows() == []


def test_another_merchants_code_at_login_is_ignored_like_an_unknown_one(ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    stranger_code = me(client, member_headers(client, theirs.code, "stranger"))["invite_code"]
    before = everything_of_members()

    response = wx_login(client, mine.code, "newcomer", invite=stranger_code)

    assert response.status_code == 200, response.json
    assert response.json["invite"]["reason"] == "invite_not_found"
    assert member_row(response.json["member"]["id"]).invited_by_id is None
    after = everything_of_members()
    assert after[1] == before[1] == []
    assert [m for m in after[0] if m[0] != response.json["member"]["id"]] == before[0]


def test_ones_own_code_at_login_is_ignored(ctx, client):
    merchant = make_merchant()
    alice, _ = logged_in(client, merchant.code, "alice")
    response = wx_login(client, merchant.code, "alice", invite=me(client, alice)["invite_code"])
    assert response.status_code == 200
    assert response.json["invite"]["reason"] == "self_invite"
    assert rows() == []


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("QR", None),
        ("qr code", None),
        ("qr-code", None),
        ("", None),
        ("c" * 33, None),
        ("qrcode\n", None),
        ("二维码", None),
        (5, "Not a valid string."),
        (None, "Field may not be null."),
    ],
)
def test_a_channel_that_is_not_a_short_token_is_422_with_the_field_and_creates_nobody(ctx, client, channel, message):
    merchant = make_merchant()
    error = error_of(wx_login(client, merchant.code, "newcomer", channel=channel), 422, "validation_error")
    assert list(error["details"]["fields"]) == ["channel"]
    if message:
        assert error["details"]["fields"]["channel"] == [message]
    assert db.session.execute(select(Member).where(Member.merchant_id == merchant.id)).first() is None


@pytest.mark.parametrize("channel", ["a", "qrcode", "share_card", "poster_2024", "c" * 32])
def test_a_short_token_is_a_channel(ctx, client, channel):
    merchant = make_merchant()
    _, body = logged_in(client, merchant.code, "newcomer", channel=channel)
    assert member_row(body["member"]["id"]).channel == channel


@pytest.mark.parametrize("invite", ["", "x" * 65, 12345678, None])
def test_an_invite_that_is_no_string_of_a_sane_length_is_422(ctx, client, invite):
    merchant = make_merchant()
    error = error_of(wx_login(client, merchant.code, "newcomer", invite=invite), 422, "validation_error")
    assert list(error["details"]["fields"]) == ["invite"]


# --- POST /api/v1/invites/{code}/open


def test_opening_a_code_on_the_first_day_binds_and_says_who_invited(ctx, client):
    merchant = make_merchant()
    alice = member_headers(client, merchant.code, "alice")
    client.patch("/api/v1/me", headers=alice, json={"nickname": "Alice"})
    bob = member_headers(client, merchant.code, "bob")

    response = open_code(client, bob, me(client, alice)["invite_code"].lower(), channel="qrcode")

    assert response.status_code == 200, response.json
    assert response.json == {"recorded": True, "bound": True, "reason": None, "inviter": {"nickname": "A***e"}}
    assert member_row(me(client, bob)["id"]).invited_by_id == me(client, alice)["id"]
    again = open_code(client, bob, me(client, alice)["invite_code"])
    assert (again.json["recorded"], again.json["reason"]) == (False, "repeat")
    assert len(rows()) == 1


def test_opening_without_a_body_is_fine(ctx, client):
    merchant = make_merchant()
    alice, bob = member_headers(client, merchant.code, "alice"), member_headers(client, merchant.code, "bob")
    response = client.post(f"/api/v1/invites/{me(client, alice)['invite_code']}/open", headers=bob)
    assert response.status_code == 200, response.json
    assert rows()[0][2] == "invite"


def test_opening_ones_own_code_is_200_and_records_nothing(ctx, client):
    merchant = make_merchant()
    alice = member_headers(client, merchant.code, "alice")
    response = open_code(client, alice, me(client, alice)["invite_code"])
    assert response.status_code == 200
    assert response.json == {"recorded": False, "bound": False, "reason": "self_invite", "inviter": None}
    assert rows() == []


@pytest.mark.parametrize("code", ["ZZZZZZZZ", "abc", "x" * 200, "%00", "1000000000000"])
def test_opening_an_unknown_code_is_404_not_found(ctx, client, code):
    merchant = make_merchant()
    alice = member_headers(client, merchant.code, "alice")
    error_of(open_code(client, alice, code), 404, "not_found")
    assert rows() == []


def test_a_member_opening_another_merchants_code_is_404_and_changes_nothing(ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    alice = member_headers(client, mine.code, "alice")
    stranger = member_headers(client, theirs.code, "stranger")
    stranger_code = me(client, stranger)["invite_code"]
    before = everything_of_members()

    foreign = open_code(client, alice, stranger_code, channel="qrcode")
    missing = open_code(client, alice, "ZZZZZZZZ", channel="qrcode")

    error_of(foreign, 404, "not_found")
    assert (missing.status_code, missing.json) == (foreign.status_code, foreign.json)
    assert everything_of_members() == before


def test_opening_needs_a_member_token(ctx, client):
    merchant = make_merchant()
    code = me(client, member_headers(client, merchant.code, "alice"))["invite_code"]
    error_of(client.post(f"/api/v1/invites/{code}/open", json={}), 401, "token_missing")
    error_of(open_code(client, staff_headers(client, merchant.code), code), 403, "members_only")
    assert rows() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "QR"}, "channel"),
        ({"channel": 1}, "channel"),
        ({"channel": ""}, "channel"),
        ({"inviter_id": 1}, "inviter_id"),
        ({"bound": True}, "bound"),
    ],
)
def test_opening_with_a_bad_body_is_422_and_records_nothing(ctx, client, body, field):
    merchant = make_merchant()
    alice, bob = member_headers(client, merchant.code, "alice"), member_headers(client, merchant.code, "bob")
    response = client.post(f"/api/v1/invites/{me(client, alice)['invite_code']}/open", headers=bob, json=body)
    error = error_of(response, 422, "validation_error")
    assert list(error["details"]["fields"]) == [field]
    assert rows() == []
    assert member_row(me(client, bob)["id"]).invited_by_id is None


# --- GET /api/v1/me/invites


def test_my_invites_lists_the_members_i_brought_newest_first_masked_and_paged(ctx, client):
    merchant = make_merchant()
    alice, carol = member_headers(client, merchant.code, "alice"), member_headers(client, merchant.code, "carol")
    code = me(client, alice)["invite_code"]
    names = ["张三", "李四", "王五"]
    for i, name in enumerate(names):
        friend, _ = logged_in(client, merchant.code, f"friend{i}", invite=code)
        client.patch("/api/v1/me", headers=friend, json={"nickname": name})
    logged_in(client, merchant.code, "carols-friend", invite=me(client, carol)["invite_code"])

    first = client.get("/api/v1/me/invites", headers=alice, query_string={"limit": 2})
    second = client.get("/api/v1/me/invites", headers=alice, query_string={"cursor": first.json["next_cursor"]})

    assert first.status_code == second.status_code == 200
    shown = [item["nickname"] for item in first.json["items"] + second.json["items"]]
    assert shown == ["王*", "李*", "张*"]
    assert second.json["next_cursor"] is None
    assert set(first.json["items"][0]) == {"nickname", "avatar_url", "joined_at"}
    assert (
        client.get("/api/v1/me/invites", headers=carol).json["items"][0]["nickname"] == "匿名"
    )  # no nickname set: shown as anonymous
    assert len(client.get("/api/v1/me/invites", headers=carol).json["items"]) == 1


def test_my_invites_never_shows_another_merchants_members(ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    alice = member_headers(client, mine.code, "alice")
    stranger = member_headers(client, theirs.code, "stranger")
    logged_in(client, theirs.code, "their-friend", invite=me(client, stranger)["invite_code"])
    assert client.get("/api/v1/me/invites", headers=alice).json == {"items": [], "next_cursor": None}


def test_my_invites_needs_a_member_token(ctx, client):
    error_of(client.get("/api/v1/me/invites"), 401, "token_missing")


# --- birthday


def test_a_member_sets_and_clears_a_birthday(ctx, client):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    response = client.patch("/api/v1/me", headers=headers, json={"birthday": "1990-05-17"})
    assert response.status_code == 200, response.json
    assert response.json["birthday"] == "1990-05-17"
    assert me(client, headers)["birthday"] == "1990-05-17"
    kept = client.patch("/api/v1/me", headers=headers, json={"nickname": "小王"})
    assert kept.json["birthday"] == "1990-05-17"
    cleared = client.patch("/api/v1/me", headers=headers, json={"birthday": None})
    assert cleared.json["birthday"] is None
    assert member_row(me(client, headers)["id"]).birthday is None


def test_today_in_china_is_a_valid_birthday(ctx, client):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    today = datetime.now(UTC).astimezone(CHINA).date().isoformat()
    assert client.patch("/api/v1/me", headers=headers, json={"birthday": today}).status_code == 200
    assert client.patch("/api/v1/me", headers=headers, json={"birthday": "1900-01-01"}).status_code == 200


@pytest.mark.parametrize(
    "birthday",
    [
        "2999-01-01",
        (datetime.now(UTC).astimezone(CHINA).date() + timedelta(days=1)).isoformat(),
        "1899-12-31",
        "2000-02-30",
        "1990-5-17",
        "19900517",
        "17/05/1990",
        "1990-05-17T00:00:00",
        "",
        19900517,
        True,
    ],
)
def test_a_birthday_that_is_not_a_past_date_since_1900_is_422_with_the_field(ctx, client, birthday):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    client.patch("/api/v1/me", headers=headers, json={"birthday": "1990-05-17"})
    response = client.patch("/api/v1/me", headers=headers, json={"nickname": "不该改", "birthday": birthday})
    error = error_of(response, 422, "validation_error")
    assert list(error["details"]["fields"]) == ["birthday"]
    after = member_row(me(client, headers)["id"])
    assert (after.birthday.isoformat(), after.nickname) == ("1990-05-17", "")
