"""Health, the OpenAPI document and the one error envelope."""

from __future__ import annotations

import re

import pytest
from redis import Redis

from api import create_app
from api.config import Settings
from shop.catalog import service as catalog
from shop.core.cache import REDIS_EXTENSION


def test_healthz_answers_ok_when_the_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_answers_503_when_redis_is_down(app, client):
    real = app.extensions[REDIS_EXTENSION]
    app.extensions[REDIS_EXTENSION] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    try:
        response = client.get("/healthz")
    finally:
        app.extensions[REDIS_EXTENSION] = real
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "ok", "redis": "down"}


@pytest.mark.committing
def test_healthz_answers_503_when_the_database_is_down(app):
    settings = Settings(
        env="test",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/nothing",
        redis_url=app.config["SETTINGS"].redis_url,
        secret_key="x" * 40,
    )
    broken = create_app(settings)
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "down" and response.json["redis"] == "ok"


def test_an_unexpected_error_is_a_500_envelope_without_a_traceback(ctx, client, monkeypatch):
    from tests.factories import make_merchant, staff_headers

    merchant = make_merchant()
    headers = staff_headers(client, merchant.code)

    def explode(merchant_id):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(catalog, "category_tree", explode)
    response = client.get("/api/v1/merchant/categories", headers=headers)
    assert response.status_code == 500
    assert response.json == {
        "error": {"code": "internal_error", "message": "something went wrong on our side", "details": None}
    }
    assert b"hunter2" not in response.data and b"Traceback" not in response.data


def test_unknown_routes_and_methods_use_the_envelope(client):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong_method = client.delete("/api/v1/products")
    assert wrong_method.status_code == 405 and wrong_method.json["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]


def test_the_browsable_docs_are_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


# Actions whose URL says everything: they take no body.
BODILESS_ACTIONS = ("/cancel", "/pay", "/confirm-receipt", "/approve", "/ready-for-pickup")


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_every_endpoint_is_in_the_openapi_document_with_its_schemas(app, client):
    spec = client.get("/api/openapi.json").json
    assert spec["info"]["title"] == "Groupshop API"
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    checked = 0
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/v1") or rule.rule == "/healthz"):
            continue
        path = _spec_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path].get(method.lower())
            assert operation, f"{method} {rule.rule} is not documented"
            assert operation.get("summary"), f"{method} {rule.rule} has no summary"
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, f"{method} {rule.rule} documents no success response"
            if success != ["204"]:
                assert operation["responses"][success[0]].get("content"), f"{method} {rule.rule}: no response schema"
            if method in ("POST", "PUT", "PATCH") and not rule.rule.endswith(BODILESS_ACTIONS):
                assert operation.get("requestBody", {}).get("content"), f"{method} {rule.rule}: no request schema"
            # Payment callbacks prove who they are by their signature, not a token.
            public = rule.rule.startswith("/api/v1/payments/") or rule.rule in (
                "/healthz",
                "/api/v1/ping",
                "/api/v1/auth/wx-login",
                "/api/v1/merchant/auth/login",
            )
            if not public:
                assert operation.get("security") == [{"bearerAuth": []}], f"{method} {rule.rule}: no security"
            checked += 1
    assert checked >= 20
