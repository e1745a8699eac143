"""Bad input over HTTP: a 4xx with the error envelope naming the fields at fault, never a 500,
and nothing changes.

Each package registers its endpoints (each that takes input: a JSON body or a query string, with
a valid request) and its specific bad cases in its own `*_cases.py` module (tests/api/
identity_cases.py, catalog_cases.py, checkout_cases.py, orders_cases.py, payments_cases.py; a
feature package in its own folder), through tests/coverage/registry.py; what a case is lives in
tests/coverage/invalid_input.py. The coverage test at the end walks the app's url map so a new
endpoint without an entry fails the suite. Every endpoint gets the generic cases made here (a body
that is not JSON, JSON that is not an object, an unknown field, the NUL character, ...) and its
own: wrong types, missing and out-of-range values, server-owned fields, business rules.

An action whose URL says everything (cancel, pay, approve, ...) takes an empty body at most: a
field sent there is refused like any unknown field. The payment provider's callbacks read their
signed body themselves and answer in the provider's own shape, {"code": "FAIL", "message": ...}.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.schemas.common import MAX_ID
from shop.catalog.models import Sku
from shop.catalog.service import MAX_STOCK
from shop.core.db import db, transaction

# The names the entries of the old central file used (helpers, key constants such as WX_LOGIN), so
# that a block written against it still reads here.
from tests.api.catalog_cases import *  # noqa: F403
from tests.api.checkout_cases import *  # noqa: F403
from tests.api.identity_cases import *  # noqa: F403
from tests.api.orders_cases import *  # noqa: F403
from tests.api.payments_cases import *  # noqa: F403
from tests.coverage import registry
from tests.coverage.invalid_input import *  # noqa: F403
from tests.coverage.invalid_input import (
    PREFIX,
    RAW,
    UNKNOWN,
    Bad,
    Endpoint,
    World,
    build_world,
    everything,
    with_,
)

ALL_ENDPOINTS = registry.endpoints()
SPECIFIC_CASES = registry.cases()


def _endpoint_under_test(request: pytest.FixtureRequest) -> Endpoint | None:
    """The endpoint a test parametrized by `key` or `case` is about (None for any other test)."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec else {}
    key = params.get("key") or getattr(params.get("case"), "key", None)
    return ALL_ENDPOINTS[key] if key else None


@pytest.fixture
def world(ctx, client, request) -> World:
    return build_world(client, _endpoint_under_test(request))


def _send(
    client,
    key: tuple[str, str],
    world: World,
    payload: Any,
    header_changes: dict[str, str | None] | None = None,
    **raw: Any,
):
    """Send `payload` as the JSON body (or the query string) of the endpoint; `raw` overrides it.

    `header_changes` changes the endpoint's headers: a value replaces a header, None leaves it out.
    """
    endpoint = ALL_ENDPOINTS[key]
    method = key[1]
    headers = endpoint.headers(world)
    for name, value in (header_changes or {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    kwargs: dict[str, Any] = {"headers": headers}
    if raw:
        kwargs.update(raw)
    elif endpoint.location == "query":
        kwargs["query_string"] = payload
    elif endpoint.location == RAW:
        kwargs.update(payload)  # the provider's own headers and body
    else:
        kwargs["json"] = payload
    return client.open(endpoint.path(world), method=method, **kwargs)


@pytest.mark.parametrize("key", list(ALL_ENDPOINTS), ids=" ".join)
def test_the_valid_request_of_each_endpoint_succeeds(client, world, key):
    """The control: each case below breaks one thing of a request that works."""
    response = _send(client, key, world, ALL_ENDPOINTS[key].valid(world))
    assert response.status_code == ALL_ENDPOINTS[key].ok, response.json


def _generic_cases() -> list[Bad]:
    """What every endpoint refuses, whatever its fields."""
    cases = []
    for key, endpoint in ALL_ENDPOINTS.items():
        if endpoint.location == "json":
            cases += [
                Bad(key, "a list instead of an object", lambda w, valid: [valid], ("_schema",), "Invalid input type."),
                Bad(key, "a string instead of an object", lambda w, valid: "text", ("_schema",), "Invalid input type."),
                Bad(
                    key,
                    "null instead of an object",
                    None,
                    ("_schema",),
                    "Invalid input type.",
                    raw={"data": "null", "content_type": "application/json"},
                ),
                Bad(key, "merchant_id is the token's", with_(merchant_id=1), ("merchant_id",), UNKNOWN),
                Bad(
                    key,
                    "a body that is not JSON",
                    None,
                    ("_schema",),
                    "Invalid JSON body.",
                    code="bad_request",
                    status=400,
                    raw={"data": '{"oops": ', "content_type": "application/json"},
                ),
                Bad(
                    key,
                    "JSON nested deeper than anyone writes",
                    None,
                    ("_schema",),
                    "Invalid JSON body.",
                    code="bad_request",
                    status=400,
                    raw={"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"},
                ),
            ]
        if endpoint.text_field:
            name = endpoint.text_field
            cases.append(
                Bad(
                    key,
                    f"the NUL character in {name}",
                    lambda w, valid, name=name: {**valid, name: "a\x00b"},
                    (name,),
                    "must not contain the NUL character",
                )
            )
            if endpoint.location == "json":  # a query string cannot carry one: it arrives decoded
                cases.append(
                    Bad(
                        key,
                        f"a lone surrogate in {name}",
                        lambda w, valid, name=name: {**valid, name: "a\ud800b"},
                        (name,),
                        "must not contain a lone surrogate (invalid Unicode)",
                    )
                )
    return cases


ALL_CASES = SPECIFIC_CASES + _generic_cases()


def _dig(fields: dict[str, Any], path: tuple[str, ...]) -> Any:
    found: Any = fields
    for key in path:
        assert isinstance(found, dict) and key in found, f"details.fields has no {'.'.join(path)}: {fields}"
        found = found[key]
    return found


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_bad_input_is_refused_with_the_fields_named_and_changes_nothing(client, world, case):
    valid = ALL_ENDPOINTS[case.key].valid(world)
    before = everything()

    if case.raw is not None:
        response = _send(client, case.key, world, None, case.headers, **case.raw)
    else:
        assert case.data is not None
        response = _send(client, case.key, world, case.data(world, valid), case.headers)

    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    if ALL_ENDPOINTS[case.key].location == RAW:  # the provider's callback answers as the provider expects
        assert set(response.json) == {"code", "message"}, response.json
        assert response.json["code"] == case.code
        assert case.message is None or case.message in response.json["message"], response.json
        assert everything() == before
        return
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and error["message"]
    if case.fields is not None:
        at_fault = _dig(error["details"]["fields"], case.fields)
        if case.message is not None:
            assert case.message in at_fault, at_fault
    assert everything() == before


@pytest.mark.parametrize("key", [k for k, e in ALL_ENDPOINTS.items() if e.location == "json"], ids=" ".join)
def test_a_body_sent_as_a_form_is_refused_not_ignored(client, world, key):
    before = everything()
    response = _send(
        client, key, world, None, data="nickname=x&title=y", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415, response.json
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert everything() == before


def test_a_stock_adjustment_past_the_maximum_stock_is_refused_without_overflowing(client, world):
    with transaction():
        db.session.get(Sku, world.sku_id).stock = MAX_STOCK - 3  # what many restocks would add up to
    before = everything()
    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": 10_000_000, "reason": "restock"},
    )
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "stock_limit"
    assert everything() == before

    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": 3, "reason": "restock"},
    )
    assert response.status_code == 201
    assert response.json["stock_after"] == MAX_STOCK


def test_a_stock_adjustment_below_zero_is_refused(client, world):
    before = everything()
    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": -41, "reason": "damage"},
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "insufficient_stock"
    assert everything() == before


@pytest.mark.parametrize(
    "url",
    [
        f"{PREFIX}/products/{MAX_ID + 1}",
        f"{PREFIX}/merchant/products/{MAX_ID + 1}",
        f"{PREFIX}/merchant/skus/{10**30}/stock-movements",
    ],
)
def test_an_id_past_the_bigint_range_in_the_path_is_not_found(client, world, url):
    headers = world.member if "/merchant/" not in url else world.owner
    response = client.get(url, headers=headers)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_a_member_cannot_set_a_price_anywhere(client, world):
    """No member endpoint takes a price: the profile and the login refuse it, and the catalog is unchanged."""
    before = client.get(f"{PREFIX}/products/{world.product_id}", headers=world.member).json
    for response in (
        client.patch(f"{PREFIX}/me", headers=world.member, json={"price": 1}),
        client.patch(f"{PREFIX}/me", headers=world.member, json={"skus": [{"id": world.sku_id, "price": 1}]}),
        client.post(f"{PREFIX}/auth/wx-login", json={"merchant": world.code, "code": "test:alice", "price": 1}),
    ):
        assert response.status_code == 422
        assert response.json["error"]["code"] == "validation_error"
        assert list(response.json["error"]["details"]["fields"].values()) == [[UNKNOWN]]
    assert client.get(f"{PREFIX}/products/{world.product_id}", headers=world.member).json == before
    # and members have no way into the staff catalog endpoints at all
    response = client.patch(
        f"{PREFIX}/merchant/products/{world.product_id}", headers=world.member, json={"title": "mine now"}
    )
    assert response.status_code == 403


def _view(app, rule, method: str):
    view = app.view_functions[rule.endpoint]
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, method.lower()) if view_class is not None else view


def _argument_locations(view) -> set[str]:
    """Where flask-smorest's @blp.arguments read from: {"json"}, {"query"}, ..."""
    arguments = getattr(view, "_apidoc", {}).get("arguments", {})
    return {parameter["in"] for parameter in arguments.get("parameters", [])}


def _input_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method in ("POST", "PUT", "PATCH") or _argument_locations(_view(app, rule, method)):
                routes.add((rule.rule, method))
    return routes


def test_the_url_map_walk_sees_query_arguments(app):
    """The coverage test below relies on `_apidoc`: make sure it finds what we know is there."""
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    assert _argument_locations(_view(app, rules["/api/v1/products"], "GET")) == {"query"}
    assert _argument_locations(_view(app, rules["/api/v1/merchant/products"], "GET")) == {"query"}
    assert _argument_locations(_view(app, rules["/api/v1/merchant/products"], "POST")) == {"json"}
    assert _argument_locations(_view(app, rules["/api/v1/me"], "GET")) == set()


def test_every_endpoint_that_takes_input_has_invalid_input_cases(app):
    routes = _input_routes(app)
    assert routes - set(ALL_ENDPOINTS) == set(), "register these endpoints and their cases (tests/coverage/registry.py)"
    assert set(ALL_ENDPOINTS) - routes == set(), "registered endpoints that no longer take input"
    assert set(ALL_ENDPOINTS) - {case.key for case in SPECIFIC_CASES} == set(), "these endpoints have no specific case"
    assert {case.key for case in SPECIFIC_CASES} - set(ALL_ENDPOINTS) == set(), "cases of endpoints never registered"
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                locations = _argument_locations(_view(app, rule, method))
                if (rule.rule, method) in ALL_ENDPOINTS:
                    location = ALL_ENDPOINTS[(rule.rule, method)].location
                    assert locations == (set() if location == RAW else {location}), (rule.rule, method)
    # Only a payment provider's callback reads its body itself; every other endpoint declares it.
    raw = {rule for (rule, _), endpoint in ALL_ENDPOINTS.items() if endpoint.location == RAW}
    assert all(rule.startswith(PREFIX + "/payments/wechatpay/") for rule in raw), raw
