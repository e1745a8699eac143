"""A staff password change, role change or deactivation revokes the tokens issued before it: each
staff token carries the account's token version, checked on every staff request."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from shop.core.db import db, transaction
from shop.identity.models import Staff
from shop.identity.staff import update_staff
from tests.factories import PASSWORD, make_merchant, make_staff, staff_headers


def login(client: Any, merchant: str, username: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/api/v1/merchant/auth/login", json={"merchant": merchant, "username": username, "password": password}
    )


def error_code(response: Any) -> str:
    return response.get_json()["error"]["code"]


def owner_id(merchant_id: int) -> int:
    return db.session.execute(
        select(Staff.id).where(Staff.merchant_id == merchant_id, Staff.username == "owner")
    ).scalar_one()


def test_a_password_change_revokes_the_older_tokens_and_a_new_login_works(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    old = staff_headers(client, merchant.code, operator.username)
    assert client.get("/api/v1/merchant/me", headers=old).status_code == 200

    changed = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json={"password": "a-new-password"})
    assert changed.status_code == 200, changed.json

    for response in (
        client.get("/api/v1/merchant/me", headers=old),
        client.get("/api/v1/merchant/products", headers=old),
    ):
        assert response.status_code == 401, response.json
        assert error_code(response) == "token_revoked"
    new = staff_headers(client, merchant.code, operator.username, "a-new-password")
    assert client.get("/api/v1/merchant/me", headers=new).status_code == 200
    assert client.get("/api/v1/merchant/me", headers=old).status_code == 401


def test_an_owner_changing_their_own_password_revokes_their_other_sessions(ctx, client):
    merchant = make_merchant()
    laptop = staff_headers(client, merchant.code)
    phone = staff_headers(client, merchant.code)
    me = client.get("/api/v1/merchant/me", headers=laptop).json["id"]
    changed = client.patch(f"/api/v1/merchant/staff/{me}", headers=laptop, json={"password": "a-new-password"})
    assert changed.status_code == 200, changed.json
    for headers in (laptop, phone):
        response = client.get("/api/v1/merchant/me", headers=headers)
        assert (response.status_code, error_code(response)) == (401, "token_revoked")
    assert login(client, merchant.code, "owner", PASSWORD).status_code == 401
    assert login(client, merchant.code, "owner", "a-new-password").status_code == 200


@pytest.mark.parametrize(("before", "after"), [("operator", "finance"), ("finance", "owner"), ("owner", "operator")])
def test_a_role_change_revokes_the_older_tokens(ctx, client, before, after):
    merchant = make_merchant()
    account = make_staff(merchant, before)
    owner = staff_headers(client, merchant.code)
    old = staff_headers(client, merchant.code, account.username)
    changed = client.patch(f"/api/v1/merchant/staff/{account.id}", headers=owner, json={"role": after})
    assert changed.status_code == 200, changed.json
    response = client.get("/api/v1/merchant/me", headers=old)
    assert (response.status_code, error_code(response)) == (401, "token_revoked")
    new = login(client, merchant.code, account.username)
    assert new.status_code == 200, new.json
    assert new.json["staff"]["role"] == after


@pytest.mark.parametrize(
    "change", [{"display_name": "小李"}, {"role": "operator"}, {"active": True}, {"display_name": "x", "active": True}]
)
def test_changes_that_are_not_a_password_role_or_deactivation_keep_the_tokens(ctx, client, change):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")  # {"role": "operator"} is no change of role
    owner = staff_headers(client, merchant.code)
    headers = staff_headers(client, merchant.code, operator.username)
    changed = client.patch(f"/api/v1/merchant/staff/{operator.id}", headers=owner, json=change)
    assert changed.status_code == 200, changed.json
    assert client.get("/api/v1/merchant/me", headers=headers).status_code == 200


def test_a_reactivated_account_does_not_get_its_old_tokens_back(ctx, client):
    merchant = make_merchant()
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    old = staff_headers(client, merchant.code, operator.username)
    url = f"/api/v1/merchant/staff/{operator.id}"
    assert client.patch(url, headers=owner, json={"active": False}).status_code == 200
    assert client.patch(url, headers=owner, json={"active": True}).status_code == 200
    response = client.get("/api/v1/merchant/me", headers=old)
    assert (response.status_code, error_code(response)) == (401, "token_revoked")
    assert login(client, merchant.code, operator.username).status_code == 200


def test_the_staff_token_carries_the_accounts_current_version(ctx, client):
    merchant = make_merchant()
    staff_id = owner_id(merchant.id)
    first = login(client, merchant.code, "owner").json["token"]
    assert jwt.decode(first, ctx.config["SECRET_KEY"], algorithms=["HS256"])["ver"] == 1
    with transaction():
        update_staff(merchant.id, staff_id, acting_staff_id=staff_id, password="a-new-password")
    second = login(client, merchant.code, "owner", "a-new-password").json["token"]
    assert jwt.decode(second, ctx.config["SECRET_KEY"], algorithms=["HS256"])["ver"] == 2
    assert db.session.get(Staff, staff_id).token_version == 2


def _signed(ctx, staff_id: int, merchant_id: int, **extra: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": str(staff_id), "mid": merchant_id, "role": "owner", "typ": "staff", "iat": now, "exp": now + 60}
    token = jwt.encode({**claims, **extra}, ctx.config["SECRET_KEY"], algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_a_signed_token_with_another_version_is_revoked_and_a_malformed_one_invalid(ctx, client):
    merchant = make_merchant()
    staff_id = owner_id(merchant.id)
    assert client.get("/api/v1/merchant/me", headers=_signed(ctx, staff_id, merchant.id, ver=1)).status_code == 200
    for version, code in ((0, "token_revoked"), (2, "token_revoked"), ("1", "token_invalid"), (None, "token_invalid")):
        response = client.get("/api/v1/merchant/me", headers=_signed(ctx, staff_id, merchant.id, ver=version))
        assert (response.status_code, error_code(response)) == (401, code), version


def test_a_token_from_before_versions_counts_as_version_one(ctx, client):
    """Tokens issued before this change carry no version; they stay valid until the first bump."""
    merchant = make_merchant()
    staff_id = owner_id(merchant.id)
    headers = _signed(ctx, staff_id, merchant.id)
    assert client.get("/api/v1/merchant/me", headers=headers).status_code == 200
    with transaction():
        update_staff(merchant.id, staff_id, acting_staff_id=staff_id, password="a-new-password")
    response = client.get("/api/v1/merchant/me", headers=headers)
    assert (response.status_code, error_code(response)) == (401, "token_revoked")
