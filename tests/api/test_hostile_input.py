"""What an attacker or a sloppy client sends that the schemas alone do not catch: JSON that
Python cannot read, unknown query parameters, a chunked body over the limit, tokens whose claims
are signed but out of range. Each gets a 4xx envelope and changes nothing, never a 500."""

from __future__ import annotations

import io
import time

import jwt
import pytest

from shop.core.db import db
from shop.identity.models import Member
from tests.factories import make_merchant, member_headers, staff_headers

HUGE = "9" * 4301  # Python's json refuses to convert an integer literal of more than 4300 digits
# A body sent chunked, as gunicorn hands it on: no Content-Length, a stream the server ends.
CHUNKED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/wx-login", "/api/v1/merchant/auth/login", "/api/v1/cart/items", "/api/v1/orders"]
)
def test_an_integer_too_long_to_read_is_a_400(ctx, client, path):
    merchant = make_merchant()
    headers = {**member_headers(client, merchant.code), "Content-Type": "application/json", "Idempotency-Key": "k" * 8}
    body = f'{{"merchant": "{merchant.code}", "code": {HUGE}, "sku_id": {HUGE}, "quantity": 1}}'
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/api/v1/merchant/orders?stauts=paid", "staff"),
        ("/api/v1/products?sortt=sales", "member"),
        ("/api/v1/orders?page=2", "member"),
    ],
)
def test_an_unknown_query_parameter_is_refused_not_ignored(ctx, client, path, who):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code) if who == "staff" else member_headers(client, merchant.code)
    response = client.get(path, headers=headers)
    assert response.status_code == 422, response.json
    unknown = path.split("?")[1].split("=")[0]
    assert unknown in response.json["error"]["details"]["fields"]


def test_a_chunked_body_over_the_limit_is_refused_not_cut_short(app, ctx, client):
    merchant = make_merchant()
    headers = {**member_headers(client, merchant.code, "chunky"), "Content-Type": "application/json"}
    body = b'{"nickname": "chunky"}' + b" " * app.config["MAX_CONTENT_LENGTH"]
    response = client.patch("/api/v1/me", input_stream=io.BytesIO(body), headers=headers, environ_overrides=CHUNKED)
    assert response.status_code == 413, response.json
    assert response.json["error"]["code"] == "payload_too_large"
    db.session.expire_all()
    assert db.session.query(Member).filter_by(merchant_id=merchant.id).one().nickname == ""
    small = client.patch(
        "/api/v1/me",
        input_stream=io.BytesIO(b'{"nickname": "chunky"}'),
        headers=headers,
        environ_overrides=CHUNKED,
    )
    assert small.status_code == 200 and small.json["nickname"] == "chunky"


def _token(app, **claims) -> dict[str, str]:
    now = int(time.time())
    base = {"sub": "1", "mid": 1, "role": "member", "typ": "member", "iat": now, "exp": now + 600}
    token = jwt.encode({**base, **claims}, app.config["SETTINGS"].secret_key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "99999999999999999999999"},
        {"sub": "9" * 5000},  # more digits than Python converts
        {"sub": "１"},  # a full-width digit
        {"sub": "-1"},
        {"sub": 1},  # we issue a string
        {"mid": 10**20},
        {"mid": 1.5},
        {"mid": True},
        {"mid": 0},
    ],
)
def test_a_signed_token_with_claims_we_never_issue_is_invalid(app, client, claims):
    for path in ("/api/v1/me", "/api/v1/products", "/api/v1/cart"):
        response = client.get(path, headers=_token(app, **claims))
        assert response.status_code == 401, (path, response.json)
        assert response.json["error"]["code"] == "token_invalid"


def test_a_signed_token_that_expires_at_infinity_is_invalid(app, client):
    now = int(time.time())
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = jwt.utils.base64url_encode(
        f'{{"sub":"1","mid":1,"role":"member","typ":"member","iat":{now},"exp":Infinity}}'.encode()
    )
    signing_input = header + b"." + payload
    signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
        signing_input, app.config["SETTINGS"].secret_key.encode()
    )
    token = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path", "who", "name"),
    [
        ("/api/v1/merchant/orders?status=paid&status=cancelled", "staff", "status"),
        ("/api/v1/products?limit=2&limit=5", "member", "limit"),
    ],
)
def test_a_query_parameter_given_twice_is_refused_not_half_read(ctx, client, path, who, name):
    merchant = make_merchant()
    headers = staff_headers(client, merchant.code) if who == "staff" else member_headers(client, merchant.code)
    response = client.get(path, headers=headers)
    assert response.status_code == 422, response.json
    assert response.json["error"]["details"]["fields"] == {name: ["given more than once; send it once"]}
    assert response.json["error"]["details"]["locations"] == ["query"]
