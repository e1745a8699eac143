"""A worker remembers the tokens it verified, yet a remembered token still expires on time and
nothing it has not verified gets in."""

from __future__ import annotations

from types import SimpleNamespace

import jwt

from api import auth
from tests.factories import make_merchant, member_headers


def _error_code(response) -> str:
    return response.json["error"]["code"]


def test_a_remembered_token_is_refused_once_it_expires(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    assert client.get("/api/v1/products", headers=headers).status_code == 200
    assert client.get("/api/v1/products", headers=headers).status_code == 200  # remembered

    token = headers["Authorization"].removeprefix("Bearer ")
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: expires_at + 1))
    response = client.get("/api/v1/products", headers=headers)
    assert response.status_code == 401
    assert _error_code(response) == "token_expired"


def test_a_remembered_token_is_not_accepted_under_another_key(app, ctx, client, monkeypatch):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    assert client.get("/api/v1/products", headers=headers).status_code == 200

    monkeypatch.setattr(app.config["SETTINGS"], "secret_key", "another-key-" + "k" * 40)
    response = client.get("/api/v1/products", headers=headers)
    assert response.status_code == 401
    assert _error_code(response) == "token_invalid"


def test_a_refused_token_is_not_remembered(app, ctx, client):
    merchant = make_merchant()
    headers = member_headers(client, merchant.code)
    claims = jwt.decode(headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-key-" + "k" * 40, algorithm="HS256")
    remembered = auth._verified.cache_info().currsize
    for _ in range(2):
        response = client.get("/api/v1/products", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert _error_code(response) == "token_invalid"
    assert auth._verified.cache_info().currsize == remembered
