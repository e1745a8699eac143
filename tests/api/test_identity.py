"""Identity and authorization over HTTP: member login with a wx.login code, member and staff
tokens, staff roles, and the wall between the two audiences."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
from flask import Flask, current_app
from sqlalchemy import func, select

from shop.catalog.models import Product, Sku
from shop.core.db import db, transaction
from shop.identity.models import Member, Merchant, Staff
from shop.identity.staff import hash_password
from shop.identity.wechat import FakeWeChatAuth, WxSession
from tests.factories import PASSWORD, make_merchant, make_product, make_staff, member_headers, staff_headers

WECHAT = "groupshop.wechat"
CATALOG_WRITERS = ["operator", "owner"]


# --- helpers


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the one error envelope with this status and code; return its body."""
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def wx_login(client: Any, merchant_code: str, name: str = "alice") -> Any:
    return client.post("/api/v1/auth/wx-login", json={"merchant": merchant_code, "code": f"test:{name}"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fake_session(merchant: Merchant, name: str) -> WxSession:
    """What the fake WeChat gives for test:<name> at this merchant's mini-program. Asked from an app
    context of its own: like the app, not inside the transaction the test's reads have open."""
    appid, secret = merchant.wx_appid, merchant.wx_secret
    with current_app.app_context():
        return FakeWeChatAuth().code2session(appid, secret, f"test:{name}")


def member_count(merchant_id: int | None = None) -> int:
    query = select(func.count(Member.id))
    if merchant_id is not None:
        query = query.where(Member.merchant_id == merchant_id)
    return db.session.execute(query).scalar_one()


def fresh(model: type[Any], row_id: int) -> Any:
    """The row as the database has it now, not as this session last saw it."""
    db.session.expire_all()
    return db.session.get(model, row_id)


def signed(app: Flask, key: str | None = None, algorithm: str = "HS256", **claims: Any) -> str:
    return jwt.encode(claims, app.config["SECRET_KEY"] if key is None else key, algorithm=algorithm)


def member_claims(member_id: int, merchant_id: int, *, lifetime: int = 3600) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(member_id),
        "mid": merchant_id,
        "role": "member",
        "typ": "member",
        "iat": now,
        "exp": now + lifetime,
    }


@contextmanager
def wechat_replaced(app: Flask, wechat: Any) -> Iterator[None]:
    original = app.extensions[WECHAT]
    app.extensions[WECHAT] = wechat
    try:
        yield
    finally:
        app.extensions[WECHAT] = original


@contextmanager
def ttl_set(app: Flask, attribute: str, seconds: int) -> Iterator[None]:
    settings = app.config["SETTINGS"]
    original = getattr(settings, attribute)
    setattr(settings, attribute, seconds)
    try:
        yield
    finally:
        setattr(settings, attribute, original)


def product_body(title: str = "赣南脐橙") -> dict[str, Any]:
    return {
        "title": title,
        "images": ["https://img.example.com/o.jpg"],
        "skus": [{"specs": {"规格": "5斤"}, "price": 3990, "market_price": 5990, "stock": 100}],
    }


def sku_stock(sku_id: int) -> int:
    return db.session.execute(select(Sku.stock).where(Sku.id == sku_id)).scalar_one()


def product_count(merchant_id: int) -> int:
    return db.session.execute(select(func.count(Product.id)).where(Product.merchant_id == merchant_id)).scalar_one()


# --- member login


def test_a_first_login_creates_a_member(ctx, client):
    merchant = make_merchant()
    response = wx_login(client, merchant.code, "alice")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["new_member"] is True
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ctx.config["SETTINGS"].member_token_ttl
    assert body["token"]
    member = fresh(Member, body["member"]["id"])
    assert member.merchant_id == merchant.id
    assert member.openid == fake_session(merchant, "alice").openid
    assert member.channel == "organic"
    assert member.last_login_at is not None
    assert body["member"]["nickname"] == "" and body["member"]["avatar_url"] == ""
    assert member_count(merchant.id) == 1


def test_a_second_login_returns_the_same_member(ctx, client):
    merchant = make_merchant()
    first = wx_login(client, merchant.code, "alice").json
    second = wx_login(client, merchant.code, "alice")
    assert second.status_code == 200, second.json
    assert second.json["new_member"] is False
    assert second.json["member"]["id"] == first["member"]["id"]
    assert member_count(merchant.id) == 1


def test_a_second_login_returns_a_token_for_the_same_member(ctx, client):
    merchant = make_merchant()
    first = wx_login(client, merchant.code, "alice").json
    second = wx_login(client, merchant.code, "alice").json
    me = client.get("/api/v1/me", headers=bearer(second["token"]))
    assert me.status_code == 200, me.json
    assert me.json["id"] == first["member"]["id"]


def test_different_names_are_different_members(ctx, client):
    merchant = make_merchant()
    alice = wx_login(client, merchant.code, "alice").json
    bob = wx_login(client, merchant.code, "bob").json
    assert alice["new_member"] is True and bob["new_member"] is True
    assert alice["member"]["id"] != bob["member"]["id"]
    assert member_count(merchant.id) == 2


def test_the_same_name_at_two_merchants_is_two_members(ctx, client):
    first_shop, second_shop = make_merchant(), make_merchant()
    at_first = wx_login(client, first_shop.code, "alice").json
    at_second = wx_login(client, second_shop.code, "alice").json
    assert at_first["new_member"] is True and at_second["new_member"] is True
    assert at_first["member"]["id"] != at_second["member"]["id"]
    assert fresh(Member, at_first["member"]["id"]).merchant_id == first_shop.id
    assert fresh(Member, at_second["member"]["id"]).merchant_id == second_shop.id
    assert member_count(first_shop.id) == 1 and member_count(second_shop.id) == 1


def test_the_member_token_names_the_member_and_merchant_and_lives_the_configured_time(ctx, client):
    merchant = make_merchant()
    body = wx_login(client, merchant.code).json
    claims = jwt.decode(body["token"], ctx.config["SECRET_KEY"], algorithms=["HS256"])
    assert claims["typ"] == "member"
    assert claims["sub"] == str(body["member"]["id"])
    assert claims["mid"] == merchant.id
    assert claims["exp"] - claims["iat"] == ctx.config["SETTINGS"].member_token_ttl


def test_an_unknown_merchant_is_404_with_its_code(ctx, client):
    before = member_count()
    response = client.post("/api/v1/auth/wx-login", json={"merchant": "no-such-shop", "code": "test:alice"})
    error = error_of(response, 404, "not_found")
    assert "merchant" in error["details"]["fields"]
    assert member_count() == before


def test_an_inactive_merchant_is_404_like_an_unknown_one(ctx, client):
    merchant = make_merchant()
    with transaction():
        db.session.get(Merchant, merchant.id).active = False
    response = wx_login(client, merchant.code)
    error = error_of(response, 404, "not_found")
    assert "merchant" in error["details"]["fields"]
    assert member_count(merchant.id) == 0


@pytest.mark.parametrize("code", ["abc", "test:", "TEST:alice", "081a2b3c4d"])
def test_an_invalid_wechat_code_is_422_with_the_code_field_at_fault(ctx, client, code):
    merchant = make_merchant()
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": code})
    error = error_of(response, 422, "wechat_code_invalid")
    assert error["details"]["fields"]["code"]
    assert member_count(merchant.id) == 0


def test_the_login_response_never_contains_the_session_key_but_the_member_row_keeps_it(ctx, client):
    merchant = make_merchant()
    session_key = fake_session(merchant, "alice").session_key
    for _ in range(2):  # first login and a returning one
        response = wx_login(client, merchant.code, "alice")
        assert response.status_code == 200, response.json
        text = response.get_data(as_text=True)
        assert "session_key" not in text
        assert session_key not in text
    me = client.get("/api/v1/me", headers=bearer(response.json["token"]))
    assert "session_key" not in me.get_data(as_text=True)
    assert session_key not in me.get_data(as_text=True)
    assert fresh(Member, response.json["member"]["id"]).session_key == session_key


class _RotatingWeChat:
    """A stand-in that hands out a new session_key (and a unionid) on every login."""

    def __init__(self) -> None:
        self.logins = 0

    def code2session(self, appid: str, secret: str, code: str) -> WxSession:
        self.logins += 1
        return WxSession(openid="o-rotating", session_key=f"key-{self.logins}", unionid="u-rotating")


def test_a_returning_login_stores_the_new_session_key(ctx, client):
    merchant = make_merchant()
    with wechat_replaced(ctx, _RotatingWeChat()):
        first = wx_login(client, merchant.code).json
        assert fresh(Member, first["member"]["id"]).session_key == "key-1"
        response = wx_login(client, merchant.code)
    second = response.json
    assert second["member"]["id"] == first["member"]["id"]
    assert second["new_member"] is False
    member = fresh(Member, first["member"]["id"])
    assert member.session_key == "key-2"
    assert member.unionid == "u-rotating"
    assert "key-2" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, {"merchant", "code"}),
        ({"merchant": "m"}, {"code"}),
        ({"code": "test:alice"}, {"merchant"}),
    ],
)
def test_missing_login_fields_are_422_with_the_fields_at_fault(ctx, client, body, missing):
    error = error_of(client.post("/api/v1/auth/wx-login", json=body), 422, "validation_error")
    assert set(error["details"]["fields"]) == missing
    assert error["details"]["locations"] == ["json"]


@pytest.mark.parametrize("extra", ["openid", "merchant_id", "session_key", "nickname"])
def test_unknown_login_fields_are_refused_and_nobody_is_created(ctx, client, extra):
    merchant = make_merchant()
    response = client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:alice", extra: "x"})
    error = error_of(response, 422, "validation_error")
    assert set(error["details"]["fields"]) == {extra}
    assert member_count(merchant.id) == 0


def test_login_fields_of_the_wrong_type_or_length_are_422(ctx, client):
    merchant = make_merchant()
    error = error_of(
        client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": 12345}), 422, "validation_error"
    )
    assert set(error["details"]["fields"]) == {"code"}
    error = error_of(
        client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": "test:" + "a" * 200}),
        422,
        "validation_error",
    )
    assert set(error["details"]["fields"]) == {"code"}


# --- member tokens


def test_me_answers_with_the_logged_in_member(ctx, client):
    merchant = make_merchant()
    login = wx_login(client, merchant.code, "alice").json
    wx_login(client, merchant.code, "bob")
    response = client.get("/api/v1/me", headers=bearer(login["token"]))
    assert response.status_code == 200, response.json
    assert response.json == login["member"]


def test_the_bearer_scheme_is_case_insensitive(ctx, client):
    merchant = make_merchant()
    token = wx_login(client, merchant.code).json["token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic x"},
    ],
)
def test_no_bearer_token_is_401_token_missing(ctx, client, headers):
    error_of(client.get("/api/v1/me", headers=headers), 401, "token_missing")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_a_garbage_token_is_401_token_invalid(ctx, client, token):
    error_of(client.get("/api/v1/me", headers=bearer(token)), 401, "token_invalid")


def test_a_token_signed_with_another_key_is_401_token_invalid(ctx, client):
    merchant = make_merchant()
    member_id = wx_login(client, merchant.code).json["member"]["id"]
    forged = signed(ctx, "another-secret-key-that-is-also-long-enough", **member_claims(member_id, merchant.id))
    error_of(client.get("/api/v1/me", headers=bearer(forged)), 401, "token_invalid")


def test_an_unsigned_token_is_401_token_invalid(ctx, client):
    merchant = make_merchant()
    member_id = wx_login(client, merchant.code).json["member"]["id"]
    unsigned = jwt.encode(member_claims(member_id, merchant.id), key=None, algorithm="none")
    error_of(client.get("/api/v1/me", headers=bearer(unsigned)), 401, "token_invalid")


@pytest.mark.parametrize("dropped", ["exp", "sub", "mid", "typ"])
def test_a_token_without_a_required_claim_is_401_token_invalid(ctx, client, dropped):
    merchant = make_merchant()
    member_id = wx_login(client, merchant.code).json["member"]["id"]
    claims = member_claims(member_id, merchant.id)
    del claims[dropped]
    error_of(client.get("/api/v1/me", headers=bearer(signed(ctx, **claims))), 401, "token_invalid")


def test_an_expired_member_token_is_401_token_expired(ctx, client):
    merchant = make_merchant()
    member_id = wx_login(client, merchant.code).json["member"]["id"]
    expired = signed(ctx, **member_claims(member_id, merchant.id, lifetime=-60))
    error_of(client.get("/api/v1/me", headers=bearer(expired)), 401, "token_expired")


def test_a_token_issued_with_a_negative_lifetime_is_401_token_expired(ctx, client):
    merchant = make_merchant()
    with ttl_set(ctx, "member_token_ttl", -60):
        token = wx_login(client, merchant.code).json["token"]
    error_of(client.get("/api/v1/me", headers=bearer(token)), 401, "token_expired")
    assert client.get("/api/v1/me", headers=member_headers(client, merchant.code)).status_code == 200


def test_a_signed_token_for_a_member_of_another_merchant_finds_nobody(ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    their_member = wx_login(client, theirs.code).json["member"]["id"]
    token = signed(ctx, **member_claims(their_member, mine.id))
    error_of(client.get("/api/v1/me", headers=bearer(token)), 404, "not_found")


def test_patch_me_changes_the_nickname_and_avatar(ctx, client):
    merchant = make_merchant()
    login = wx_login(client, merchant.code).json
    response = client.patch(
        "/api/v1/me",
        headers=bearer(login["token"]),
        json={"nickname": "小王", "avatar_url": "https://img.example.com/a.png"},
    )
    assert response.status_code == 200, response.json
    assert response.json["id"] == login["member"]["id"]
    assert response.json["nickname"] == "小王"
    assert response.json["avatar_url"] == "https://img.example.com/a.png"
    assert client.get("/api/v1/me", headers=bearer(login["token"])).json == response.json
    member = fresh(Member, login["member"]["id"])
    assert (member.nickname, member.avatar_url) == ("小王", "https://img.example.com/a.png")


def test_patch_me_with_one_field_leaves_the_other(ctx, client):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    client.patch(
        "/api/v1/me", headers=headers, json={"nickname": "小王", "avatar_url": "https://img.example.com/a.png"}
    )
    response = client.patch("/api/v1/me", headers=headers, json={"nickname": "老王"})
    assert response.status_code == 200, response.json
    assert response.json["nickname"] == "老王"
    assert response.json["avatar_url"] == "https://img.example.com/a.png"


@pytest.mark.parametrize("nickname", ["\u200b\u200b", "   ", "\u200d\u2060 \u200e"])
def test_a_nickname_of_nothing_visible_is_refused_and_an_empty_one_clears_it(ctx, client, nickname):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code, "ghost")
    assert client.patch("/api/v1/me", headers=headers, json={"nickname": "小王"}).status_code == 200

    refused = client.patch("/api/v1/me", headers=headers, json={"nickname": nickname})

    assert refused.status_code == 422 and "nickname" in refused.json["error"]["details"]["fields"]
    assert client.get("/api/v1/me", headers=headers).json["nickname"] == "小王"
    assert client.patch("/api/v1/me", headers=headers, json={"nickname": ""}).json["nickname"] == ""


def test_patch_me_changes_only_the_callers_profile(ctx, client):
    merchant = make_merchant()
    alice = member_headers(client, merchant.code, "alice")
    bob_login = wx_login(client, merchant.code, "bob").json
    assert client.patch("/api/v1/me", headers=alice, json={"nickname": "Alice"}).status_code == 200
    assert fresh(Member, bob_login["member"]["id"]).nickname == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [("merchant_id", 999), ("openid", "o-someone-else"), ("session_key", "k"), ("id", 1), ("channel", "ads")],
)
def test_patch_me_refuses_fields_it_does_not_own_and_changes_nothing(ctx, client, field, value):
    merchant = make_merchant()
    login = wx_login(client, merchant.code).json
    member_id = login["member"]["id"]
    before = fresh(Member, member_id)
    openid, merchant_id = before.openid, before.merchant_id
    response = client.patch(
        "/api/v1/me", headers=bearer(login["token"]), json={"nickname": "should not stick", field: value}
    )
    error = error_of(response, 422, "validation_error")
    assert set(error["details"]["fields"]) == {field}
    after = fresh(Member, member_id)
    assert after.nickname == ""
    assert (after.openid, after.merchant_id, after.channel) == (openid, merchant_id, "organic")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"avatar_url": "not a url"}, "avatar_url"),
        ({"avatar_url": "ftp://img.example.com/a.png"}, "avatar_url"),
        ({"nickname": "n" * 65}, "nickname"),
        ({"nickname": 42}, "nickname"),
    ],
)
def test_patch_me_refuses_invalid_values(ctx, client, body, field):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    error = error_of(client.patch("/api/v1/me", headers=headers, json=body), 422, "validation_error")
    assert set(error["details"]["fields"]) == {field}


def test_patch_me_needs_a_member_token(ctx, client):
    error_of(client.patch("/api/v1/me", json={"nickname": "x"}), 401, "token_missing")


# --- staff login


def test_staff_login_returns_a_token_and_the_account_without_its_password(ctx, client):
    merchant = make_merchant()
    response = client.post(
        "/api/v1/merchant/auth/login", json={"merchant": merchant.code, "username": "owner", "password": PASSWORD}
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ctx.config["SETTINGS"].staff_token_ttl
    assert body["staff"]["username"] == "owner"
    assert body["staff"]["role"] == "owner"
    assert body["staff"]["active"] is True
    assert body["staff"]["last_login_at"] is not None
    owner = db.session.execute(
        select(Staff).where(Staff.merchant_id == merchant.id, Staff.username == "owner")
    ).scalar_one()
    text = response.get_data(as_text=True)
    assert "password" not in text
    assert "argon2" not in text
    assert owner.password_hash not in text
    me = client.get("/api/v1/merchant/me", headers=bearer(body["token"]))
    assert me.status_code == 200, me.json
    assert me.json["id"] == owner.id == body["staff"]["id"]
    assert "argon2" not in me.get_data(as_text=True)


def test_the_staff_token_names_the_account_and_merchant(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    token = staff_headers(client, merchant.code, operator.username)["Authorization"].split()[1]
    claims = jwt.decode(token, ctx.config["SECRET_KEY"], algorithms=["HS256"])
    assert (claims["typ"], claims["sub"], claims["mid"], claims["role"]) == (
        "staff",
        str(operator.id),
        merchant.id,
        "operator",
    )
    assert claims["exp"] - claims["iat"] == ctx.config["SETTINGS"].staff_token_ttl


def _staff_login(client: Any, merchant: str, username: str, password: str) -> Any:
    return client.post(
        "/api/v1/merchant/auth/login", json={"merchant": merchant, "username": username, "password": password}
    )


def test_wrong_password_unknown_user_and_unknown_merchant_all_look_the_same(ctx, client):
    merchant = make_merchant()
    attempts = [
        _staff_login(client, merchant.code, "owner", "wrong-password"),
        _staff_login(client, merchant.code, "nobody", PASSWORD),
        _staff_login(client, "no-such-shop", "owner", PASSWORD),
    ]
    errors = [error_of(response, 401, "bad_credentials") for response in attempts]
    assert errors[0] == errors[1] == errors[2]
    assert "token" not in str(errors[0])


def test_a_password_of_another_merchants_owner_does_not_log_in(ctx, client):
    mine, theirs = make_merchant(), make_merchant()
    other_owner = db.session.execute(
        select(Staff).where(Staff.merchant_id == theirs.id, Staff.username == "owner")
    ).scalar_one()
    with transaction():
        other_owner.password_hash = hash_password("theirs-pass-1")
    error_of(_staff_login(client, mine.code, "owner", "theirs-pass-1"), 401, "bad_credentials")


def test_a_deactivated_account_cannot_log_in(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    assert (
        client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"active": False}).status_code == 200
    )
    error_of(_staff_login(client, merchant.code, operator.username, PASSWORD), 401, "bad_credentials")


def test_staff_login_refuses_missing_and_unknown_fields(ctx, client):
    merchant = make_merchant()
    error = error_of(
        client.post("/api/v1/merchant/auth/login", json={"merchant": merchant.code, "username": "owner"}),
        422,
        "validation_error",
    )
    assert set(error["details"]["fields"]) == {"password"}
    error = error_of(
        client.post(
            "/api/v1/merchant/auth/login",
            json={"merchant": merchant.code, "username": "owner", "password": PASSWORD, "role": "owner"},
        ),
        422,
        "validation_error",
    )
    assert set(error["details"]["fields"]) == {"role"}


# --- staff management


def test_the_owner_lists_the_staff_of_their_merchant_only(ctx, client):
    merchant, other = make_merchant(), make_merchant()
    operator = make_staff(merchant, "operator")
    make_staff(other, "operator", username="elsewhere")
    response = client.get("/api/v1/merchant/staff", headers=staff_headers(client, merchant.code))
    assert response.status_code == 200, response.json
    assert [(s["username"], s["role"]) for s in response.json["items"]] == [
        ("owner", "owner"),
        (operator.username, "operator"),
    ]
    assert "argon2" not in response.get_data(as_text=True)
    assert "password" not in response.get_data(as_text=True)


def test_the_owner_creates_a_staff_account_that_can_log_in(ctx, client):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    response = client.post(
        "/api/v1/merchant/staff",
        headers=owner,
        json={"username": "xiaoli", "password": "a-new-password", "role": "operator", "display_name": "小李"},
    )
    assert response.status_code == 201, response.json
    assert response.json["username"] == "xiaoli"
    assert response.json["role"] == "operator"
    assert response.json["display_name"] == "小李"
    assert response.json["active"] is True
    assert "password" not in response.get_data(as_text=True)
    assert "a-new-password" not in response.get_data(as_text=True)
    created = fresh(Staff, response.json["id"])
    assert created.merchant_id == merchant.id
    assert created.password_hash != "a-new-password"
    login = _staff_login(client, merchant.code, "xiaoli", "a-new-password")
    assert login.status_code == 200, login.json
    assert login.json["staff"]["id"] == created.id


def test_a_taken_username_is_409_username_taken(ctx, client):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    body = {"username": "xiaoli", "password": "a-new-password", "role": "operator"}
    assert client.post("/api/v1/merchant/staff", headers=owner, json=body).status_code == 201
    error = error_of(client.post("/api/v1/merchant/staff", headers=owner, json=body), 409, "username_taken")
    assert "username" in error["details"]["fields"]
    error_of(
        client.post("/api/v1/merchant/staff", headers=owner, json={**body, "username": "owner"}), 409, "username_taken"
    )
    count = db.session.execute(
        select(func.count(Staff.id)).where(Staff.merchant_id == merchant.id, Staff.username == "xiaoli")
    ).scalar_one()
    assert count == 1


def test_the_same_username_at_another_merchant_is_free(ctx, client):
    merchant, other = make_merchant(), make_merchant()
    make_staff(other, "operator", username="xiaoli")
    response = client.post(
        "/api/v1/merchant/staff",
        headers=staff_headers(client, merchant.code),
        json={"username": "xiaoli", "password": "a-new-password", "role": "finance"},
    )
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "xiaoli", "password": "a-new-password", "role": "admin"}, "role"),
        ({"username": "xiaoli", "password": "short", "role": "operator"}, "password"),
        ({"username": "x y", "password": "a-new-password", "role": "operator"}, "username"),
        ({"username": "xiaoli", "password": "a-new-password", "role": "operator", "merchant_id": 1}, "merchant_id"),
    ],
)
def test_creating_staff_validates_the_body(ctx, client, body, field):
    merchant = make_merchant()
    response = client.post("/api/v1/merchant/staff", headers=staff_headers(client, merchant.code), json=body)
    error = error_of(response, 422, "validation_error")
    assert set(error["details"]["fields"]) == {field}


@pytest.mark.parametrize("role", ["operator", "finance"])
def test_operators_and_finance_may_not_manage_staff(ctx, client, role):
    merchant = make_merchant()
    account = make_staff(merchant, role)
    owner_id = db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant.id, Staff.username == "owner")
    ).scalar_one()
    headers = staff_headers(client, merchant.code, account.username)
    attempts = [
        client.get("/api/v1/merchant/staff", headers=headers),
        client.post(
            "/api/v1/merchant/staff",
            headers=headers,
            json={"username": "sneaky", "password": "a-new-password", "role": "owner"},
        ),
        client.patch(f"/api/v1/merchant/staff/{owner_id}", headers=headers, json={"active": False}),
        client.patch(f"/api/v1/merchant/staff/{account.id}", headers=headers, json={"role": "owner"}),
    ]
    for response in attempts:
        error = error_of(response, 403, "role_forbidden")
        assert error["details"] == {"required": ["owner"]}
    assert db.session.execute(select(Staff.id).where(Staff.username == "sneaky")).first() is None
    assert fresh(Staff, owner_id).active is True
    assert fresh(Staff, account.id).role == role


def _catalog_writes(product: Product) -> list[tuple[str, str, dict[str, Any]]]:
    sku_id = product.skus[0].id
    return [
        ("post", "/api/v1/merchant/products", product_body()),
        ("post", f"/api/v1/merchant/skus/{sku_id}/stock-adjustments", {"delta": 5, "reason": "restock"}),
        ("patch", f"/api/v1/merchant/products/{product.id}", {"title": "renamed"}),
        ("put", f"/api/v1/merchant/products/{product.id}/shelf", {"on_shelf": False}),
        ("post", "/api/v1/merchant/categories", {"name": "新品"}),
    ]


def test_finance_may_not_write_the_catalog(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, "苹果")
    sku_id = product.skus[0].id
    stock = sku_stock(sku_id)
    headers = staff_headers(client, merchant.code, make_staff(merchant, "finance").username)
    for method, path, body in _catalog_writes(product):
        response = getattr(client, method)(path, headers=headers, json=body)
        error = error_of(response, 403, "role_forbidden")
        assert error["details"] == {"required": CATALOG_WRITERS}, path
    assert product_count(merchant.id) == 1
    assert sku_stock(sku_id) == stock
    refreshed = fresh(Product, product.id)
    assert (refreshed.title, refreshed.status) == ("苹果", "on_shelf")


def test_finance_may_read_the_catalog(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, "苹果")
    headers = staff_headers(client, merchant.code, make_staff(merchant, "finance").username)
    for path in (
        "/api/v1/merchant/me",
        "/api/v1/merchant/categories",
        "/api/v1/merchant/products",
        f"/api/v1/merchant/products/{product.id}",
        f"/api/v1/merchant/skus/{product.skus[0].id}/stock-movements",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.json)
    listed = client.get("/api/v1/merchant/products", headers=headers).json["items"]
    assert [p["id"] for p in listed] == [product.id]


@pytest.mark.parametrize("role", ["operator", "owner"])
def test_operators_and_owners_may_write_the_catalog(ctx, client, role):
    merchant = make_merchant()
    product = make_product(merchant, "苹果")
    sku_id = product.skus[0].id
    stock = sku_stock(sku_id)
    username = "owner" if role == "owner" else make_staff(merchant, role).username
    headers = staff_headers(client, merchant.code, username)
    expected = [201, 201, 200, 200, 201]
    for (method, path, body), status in zip(_catalog_writes(product), expected, strict=True):
        response = getattr(client, method)(path, headers=headers, json=body)
        assert response.status_code == status, (path, response.json)
    assert product_count(merchant.id) == 2
    assert sku_stock(sku_id) == stock + 5
    assert fresh(Product, product.id).title == "renamed"


def test_a_deactivated_accounts_token_is_revoked_at_once(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    headers = staff_headers(client, merchant.code, operator.username)
    assert client.get("/api/v1/merchant/products", headers=headers).status_code == 200
    response = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"active": False})
    assert response.status_code == 200, response.json
    assert response.json["active"] is False
    error_of(client.get("/api/v1/merchant/products", headers=headers), 401, "token_revoked")
    error_of(client.post("/api/v1/merchant/products", headers=headers, json=product_body()), 401, "token_revoked")
    assert product_count(merchant.id) == 0


def test_a_role_change_applies_at_once_the_old_token_is_revoked_and_a_new_login_has_the_new_role(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    headers = staff_headers(client, merchant.code, operator.username)
    assert client.post("/api/v1/merchant/products", headers=headers, json=product_body("一")).status_code == 201

    demoted = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"role": "finance"})
    assert demoted.status_code == 200, demoted.json
    assert demoted.json["role"] == "finance"
    error_of(client.post("/api/v1/merchant/products", headers=headers, json=product_body("二")), 401, "token_revoked")
    headers = staff_headers(client, merchant.code, operator.username)
    error_of(client.post("/api/v1/merchant/products", headers=headers, json=product_body("二")), 403, "role_forbidden")
    assert client.get("/api/v1/merchant/me", headers=headers).json["role"] == "finance"

    promoted = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"role": "owner"})
    assert promoted.status_code == 200, promoted.json
    error_of(client.get("/api/v1/merchant/staff", headers=headers), 401, "token_revoked")
    headers = staff_headers(client, merchant.code, operator.username)
    assert client.get("/api/v1/merchant/staff", headers=headers).status_code == 200
    assert product_count(merchant.id) == 1


@pytest.mark.parametrize("change", [{"active": False}, {"role": "operator"}, {"role": "finance"}])
def test_an_owner_cannot_deactivate_or_demote_themself(ctx, client, change):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    owner_id = client.get("/api/v1/merchant/me", headers=owner).json["id"]
    error_of(client.patch(f"/api/v1/merchant/staff/{owner_id}", headers=owner, json=change), 409, "self_demotion")
    account = fresh(Staff, owner_id)
    assert (account.role, account.active) == ("owner", True)
    assert client.get("/api/v1/merchant/staff", headers=owner).status_code == 200


def test_a_refused_self_demotion_changes_nothing_else_either(ctx, client):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    owner_id = client.get("/api/v1/merchant/me", headers=owner).json["id"]
    response = client.patch(
        f"/api/v1/merchant/staff/{owner_id}",
        headers=owner,
        json={"role": "finance", "display_name": "not me", "password": "another-password"},
    )
    error_of(response, 409, "self_demotion")
    assert fresh(Staff, owner_id).display_name == "店主"
    assert _staff_login(client, merchant.code, "owner", PASSWORD).status_code == 200


def test_an_owner_may_still_edit_their_own_name_and_password(ctx, client):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    owner_id = client.get("/api/v1/merchant/me", headers=owner).json["id"]
    response = client.patch(
        f"/api/v1/merchant/staff/{owner_id}",
        headers=owner,
        json={"display_name": "老板", "role": "owner", "active": True, "password": "another-password"},
    )
    assert response.status_code == 200, response.json
    assert (response.json["display_name"], response.json["role"], response.json["active"]) == ("老板", "owner", True)
    error_of(_staff_login(client, merchant.code, "owner", PASSWORD), 401, "bad_credentials")
    assert _staff_login(client, merchant.code, "owner", "another-password").status_code == 200


def test_an_owner_may_demote_another_owner(ctx, client):
    merchant = make_merchant()
    partner = make_staff(merchant, "owner")
    response = client.patch(
        f"/api/v1/merchant/staff/{partner.id}", headers=staff_headers(client, merchant.code), json={"role": "operator"}
    )
    assert response.status_code == 200, response.json
    assert fresh(Staff, partner.id).role == "operator"


def test_patching_staff_of_another_merchant_is_404_like_a_missing_id(ctx, client):
    merchant, other = make_merchant(), make_merchant()
    theirs = make_staff(other, "operator")
    owner = staff_headers(client, merchant.code)
    foreign = error_of(
        client.patch(f"/api/v1/merchant/staff/{theirs.id}", headers=owner, json={"active": False}), 404, "not_found"
    )
    missing = error_of(
        client.patch("/api/v1/merchant/staff/987654321", headers=owner, json={"active": False}), 404, "not_found"
    )
    assert foreign == missing
    account = fresh(Staff, theirs.id)
    assert (account.active, account.merchant_id) == (True, other.id)


@pytest.mark.parametrize(("field", "value"), [("merchant_id", 1), ("username", "renamed"), ("id", 5)])
def test_patching_staff_refuses_unknown_fields(ctx, client, field, value):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    response = client.patch(
        f"/api/v1/merchant/staff/{operator.id}",
        headers=staff_headers(client, merchant.code),
        json={"role": "finance", field: value},
    )
    error = error_of(response, 422, "validation_error")
    assert set(error["details"]["fields"]) == {field}
    account = fresh(Staff, operator.id)
    assert (account.role, account.username, account.merchant_id) == ("operator", operator.username, merchant.id)


def test_an_expired_staff_token_is_401_token_expired(ctx, client):
    merchant = make_merchant()
    with ttl_set(ctx, "staff_token_ttl", -60):
        headers = staff_headers(client, merchant.code)
    error_of(client.get("/api/v1/merchant/me", headers=headers), 401, "token_expired")


def test_a_signed_staff_token_with_an_unknown_role_is_401_token_invalid(ctx, client):
    merchant = make_merchant()
    owner_id = db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant.id, Staff.username == "owner")
    ).scalar_one()
    now = int(time.time())
    token = signed(ctx, sub=str(owner_id), mid=merchant.id, role="admin", typ="staff", iat=now, exp=now + 60)
    error_of(client.get("/api/v1/merchant/me", headers=bearer(token)), 401, "token_invalid")


def test_a_signed_staff_token_naming_another_merchant_is_revoked(ctx, client):
    merchant, other = make_merchant(), make_merchant()
    operator = make_staff(merchant, "operator")
    now = int(time.time())
    token = signed(ctx, sub=str(operator.id), mid=other.id, role="owner", typ="staff", iat=now, exp=now + 60)
    error_of(client.get("/api/v1/merchant/staff", headers=bearer(token)), 401, "token_revoked")


def test_staff_endpoints_need_a_token(ctx, client):
    error_of(client.get("/api/v1/merchant/products"), 401, "token_missing")
    error_of(client.get("/api/v1/merchant/staff", headers=bearer("garbage")), 401, "token_invalid")


# --- the two audiences


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/merchant/me"),
        ("get", "/api/v1/merchant/staff"),
        ("post", "/api/v1/merchant/staff"),
        ("get", "/api/v1/merchant/products"),
        ("post", "/api/v1/merchant/products"),
        ("get", "/api/v1/merchant/categories"),
    ],
)
def test_a_member_token_on_merchant_endpoints_is_403_staff_only(ctx, client, method, path):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    body = product_body() if path.endswith("products") else {"username": "x", "password": "p", "role": "owner"}
    kwargs: dict[str, Any] = {"headers": headers}
    if method == "post":
        kwargs["json"] = body
    error_of(getattr(client, method)(path, **kwargs), 403, "staff_only")
    assert product_count(merchant.id) == 0


def test_a_member_whose_id_equals_a_staff_id_is_still_not_staff(ctx, client):
    merchant = make_merchant()
    login = wx_login(client, merchant.code).json
    now = int(time.time())
    owner_id = db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant.id, Staff.username == "owner")
    ).scalar_one()
    # A member token carrying the owner's id as subject: still a member token.
    token = signed(ctx, sub=str(owner_id), mid=merchant.id, role="owner", typ="member", iat=now, exp=now + 60)
    error_of(client.get("/api/v1/merchant/staff", headers=bearer(token)), 403, "staff_only")
    error_of(client.get("/api/v1/merchant/staff", headers=bearer(login["token"])), 403, "staff_only")


@pytest.mark.parametrize("role", ["owner", "operator", "finance"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/me"), ("patch", "/api/v1/me"), ("get", "/api/v1/categories"), ("get", "/api/v1/products")],
)
def test_a_staff_token_on_member_endpoints_is_403_members_only(ctx, client, role, method, path):
    merchant = make_merchant()
    username = "owner" if role == "owner" else make_staff(merchant, role).username
    headers = staff_headers(client, merchant.code, username)
    kwargs: dict[str, Any] = {"headers": headers}
    if method == "patch":
        kwargs["json"] = {"nickname": "staff pretending"}
    error_of(getattr(client, method)(path, **kwargs), 403, "members_only")


def test_a_username_with_a_trailing_newline_is_refused_not_a_500(ctx, client):
    from tests.factories import make_merchant, staff_headers

    merchant = make_merchant()
    response = client.post(
        "/api/v1/merchant/staff",
        json={"username": "a" * 64 + "\n", "password": "long-enough-pw", "role": "operator"},
        headers=staff_headers(client, merchant.code),
    )
    assert response.status_code == 422
    assert "username" in response.json["error"]["details"]["fields"]
