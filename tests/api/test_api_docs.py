"""The browsable docs work with no Internet (Swagger UI is served by the app), and the OpenAPI
document states the Idempotency-Key format the server enforces."""

from __future__ import annotations

import re

from tests.factories import make_merchant, make_product, member_headers, order_body, place

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def test_the_docs_page_names_no_other_host(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "SwaggerUIBundle" in html
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE), html
    # Swagger UI would otherwise send the document to validator.swagger.io for its badge
    assert '"validatorUrl": null' in html


def test_the_docs_stylesheet_and_scripts_are_served_by_the_app(client):
    html = client.get("/api/docs").get_data(as_text=True)
    assets = ASSET.findall(html)
    assert sorted(a.rsplit("/", 1)[1] for a in assets) == [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    ]
    for url in assets:
        assert url.startswith("/api/docs/assets/swagger-ui-")
        response = client.get(url)
        assert response.status_code == 200, url
        expected = "text/css" if url.endswith(".css") else ("text/javascript", "application/javascript")
        assert response.mimetype in expected, (url, response.mimetype)
        assert len(response.data) > 10_000
        assert "max-age=31536000" in response.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_docs_asset_that_does_not_exist_is_a_404_envelope(client):
    folder = ASSET.findall(client.get("/api/docs").get_data(as_text=True))[0].rsplit("/", 1)[0]
    for name in ("nothing.js", "..%2F..%2F__init__.py", "../../__init__.py"):
        response = client.get(f"{folder}/{name}")
        assert response.status_code == 404, name
        assert response.json["error"]["code"] == "not_found"


def _operations_with_header(spec: dict, name: str) -> dict[str, dict]:
    found = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":  # the path's own, e.g. {order_id}
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == name:
                    found[f"{method.upper()} {path}"] = parameter
    return found


def test_the_openapi_document_gives_the_idempotency_key_format_and_replay_rules(client):
    spec = client.get("/api/openapi.json").json
    documented = _operations_with_header(spec, "Idempotency-Key")
    assert "POST /api/v1/orders" in documented
    for operation, parameter in documented.items():
        assert parameter["required"] is True, operation
        schema = parameter["schema"]
        assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 8, 64), operation
        assert re.fullmatch(schema["pattern"].strip("^$"), schema["example"]), operation
        description = parameter["description"]
        for promise in ("8-64 characters", "200", "409 idempotency_key_reused", "422 idempotency_key_required"):
            assert promise in description, (operation, promise)


def test_the_server_accepts_exactly_the_keys_the_documented_pattern_accepts(ctx, client):
    merchant = make_merchant()
    product = make_product(merchant, "脐橙", skus=[{"specs": {}, "price": 1000, "stock": 50}])
    headers = member_headers(client, merchant.code)
    spec = client.get("/api/openapi.json").json
    pattern = _operations_with_header(spec, "Idempotency-Key")["POST /api/v1/orders"]["schema"]["pattern"]
    keys = ["1234567", "12345678", "k" * 64, "k" * 65, "a:b.c_d-e", "my order 1", "order/0001", "é" * 8]
    outcome = {}
    for key in keys:
        response = place(client, headers, order_body(product.skus[0].id), key=key)
        assert response.status_code in (201, 422), response.json
        outcome[key] = response.status_code == 201
    assert outcome == {key: re.search(pattern, key) is not None for key in keys}
