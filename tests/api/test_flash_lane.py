"""The flash lane (api.flash_lane): the common placement of a running sale answered in front of
Flask, exactly as the app answers it; everything else left to the app, which answers as always."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from api.flash_lane import LANE_EXTENSION, FlashLane
from api.schemas.orders import OrderSchema
from shop.core.db import db
from shop.offers import gate
from shop.offers.models import OfferUnit
from shop.orders.models import Order
from tests.api.test_flash_fast import vetoing
from tests.api.test_flash_sales import ADDRESS, buy, make_sale, store_with_apple
from tests.factories import member_headers, sent_statements

OWN = ("id", "order_no", "created_at", "expires_at", "lines")


def lane(client) -> FlashLane:
    return client.application.extensions[LANE_EXTENSION]


def selling(client, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A store and a running sale (5 units unless `extra` says, limit 2) with one order placed
    (by the lane, which takes a sale's first buyer too)."""
    store = store_with_apple(client)
    sale = make_sale(client, store, **{"per_member_limit": 2, **extra})
    before = lane(client).taken
    first = buy(client, member_headers(client, store["merchant"].code, "first"), sale["id"], "lane-first")
    assert first.status_code == 201, first.json
    assert lane(client).taken == before + 1
    return store, sale


def by_the_app(client, headers: dict[str, str], sale_id: int, key: str, **body: Any):
    """A placement the lane leaves to the app (a query string it does not read), as `buy` sends it."""
    payload = {"quantity": 1, "fulfilment": "delivery", "address": dict(ADDRESS), **body}
    return client.post(
        f"/api/v1/flash-sales/{sale_id}/orders?via=app", json=payload, headers={**headers, "Idempotency-Key": key}
    )


def test_the_lane_answers_a_placement_as_the_app_does(client, ctx):
    store = store_with_apple(client)
    sale = make_sale(client, store, per_member_limit=2)
    before = lane(client).taken
    by_app = by_the_app(
        client, member_headers(client, store["merchant"].code, "first"), sale["id"], "lane-app", remark="门口"
    )
    assert by_app.status_code == 201 and lane(client).taken == before, by_app.json
    by_lane = buy(client, store["member"], sale["id"], "lane-key-1", remark="门口")
    assert by_lane.status_code == 201, by_lane.json
    assert lane(client).taken == before + 1

    order = db.session.get(Order, by_lane.json["id"])
    db.session.refresh(order)
    assert by_lane.json == OrderSchema().dump(order)  # the order as the endpoint documents it
    assert by_lane.get_data() == client.application.json.response(by_lane.json).get_data()  # byte for byte
    assert by_lane.headers["Content-Length"] == str(len(by_lane.get_data()))
    assert {k: v for k, v in by_lane.json.items() if k not in OWN} == {
        k: v for k, v in by_app.json.items() if k not in OWN
    }
    assert [{k: v for k, v in line.items() if k != "id"} for line in by_lane.json["lines"]] == [
        {k: v for k, v in line.items() if k != "id"} for line in by_app.json["lines"]
    ]
    assert sorted(by_lane.headers.keys()) == sorted(by_app.headers.keys())
    for name in ("Content-Type", "X-Content-Type-Options"):
        assert by_lane.headers[name] == by_app.headers[name]
    assert by_lane.headers["X-Content-Type-Options"] == "nosniff"


def _post(client, sale_id: int, headers: dict[str, str], body: Any = None, *, path: str | None = None, **extra: Any):
    url = path or f"/api/v1/flash-sales/{sale_id}/orders"
    if body is None:
        body = {"quantity": 1, "fulfilment": "delivery", "address": dict(ADDRESS)}
    return client.post(url, json=body, headers=headers, **extra)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "token_missing"),
        ("a staff token", 403, "members_only"),
        ("a forged token", 401, "token_invalid"),
        ("no key", 422, "idempotency_key_required"),
        ("a quantity of 0", 422, "validation_error"),
        ("an unknown field", 422, "validation_error"),
        ("not JSON", 415, None),
        ("broken JSON", 400, None),
        ("a JSON array", 422, None),
        ("a query string", 201, None),
        ("coupons: none", 201, None),
        ("a pickup", 422, None),
        ("a header too large", 431, "header_too_large"),
    ],
)
def test_the_lane_leaves_anything_else_to_the_app(client, ctx, case, status, code):
    store, sale = selling(client)
    key = {"Idempotency-Key": f"lane-{case.replace(' ', '-').replace(':', '')}"}
    member = {**store["member"], **key}
    before = lane(client).taken
    if case == "no token":
        answer = _post(client, sale["id"], key)
    elif case == "a staff token":
        answer = _post(client, sale["id"], {**store["staff"], **key})
    elif case == "a forged token":
        answer = _post(client, sale["id"], {"Authorization": store["member"]["Authorization"][:-3] + "abc", **key})
    elif case == "no key":
        answer = _post(client, sale["id"], store["member"])
    elif case == "a quantity of 0":
        answer = _post(client, sale["id"], member, {"quantity": 0, "fulfilment": "delivery", "address": dict(ADDRESS)})
    elif case == "an unknown field":
        answer = _post(client, sale["id"], member, {"fulfilment": "delivery", "address": dict(ADDRESS), "price": 1})
    elif case == "not JSON":
        answer = client.post(
            f"/api/v1/flash-sales/{sale['id']}/orders", data="quantity=1", headers=member, content_type="text/plain"
        )
    elif case == "broken JSON":
        answer = client.post(
            f"/api/v1/flash-sales/{sale['id']}/orders", data="{", headers=member, content_type="application/json"
        )
    elif case == "a JSON array":
        answer = _post(client, sale["id"], member, [1])
    elif case == "a query string":
        answer = _post(client, sale["id"], member, path=f"/api/v1/flash-sales/{sale['id']}/orders?x=1")
    elif case == "coupons: none":
        body = {"fulfilment": "delivery", "address": dict(ADDRESS), "coupons": []}
        answer = _post(client, sale["id"], member, body)
    elif case == "a pickup":
        answer = _post(client, sale["id"], member, {"fulfilment": "pickup", "pickup_point_id": 999999})
    else:
        answer = _post(client, sale["id"], {**member, "X-Filler": "x" * 9000})
    assert lane(client).taken == before, case
    assert answer.status_code == status, (case, answer.json)
    if code is not None:
        assert answer.json["error"]["code"] == code
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_lane_reads_a_body_once_and_answers_every_buyer_who_sends_it(client, ctx):
    """The terms of a body are kept (a stampede's buyers send the same few bodies): every buyer of
    that body gets an order of their own, with an address of its own; a body the lane leaves to the
    app is left to it every time it comes, and a changed body is read anew."""
    store, sale = selling(client, quota=10)
    merchant = store["merchant"].code
    body = {"quantity": 1, "fulfilment": "delivery", "address": dict(ADDRESS)}
    before = lane(client).taken
    answers = [
        _post(
            client,
            sale["id"],
            {**member_headers(client, merchant, f"same-body-{n}"), "Idempotency-Key": f"same-body-{n}"},
            body,
        )
        for n in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.json for a in answers]
    assert lane(client).taken == before + 3
    assert len({a.json["id"] for a in answers}) == 3
    assert all(a.json["address"] == ADDRESS for a in answers)
    orders = [db.session.get(Order, a.json["id"]) for a in answers]
    assert all(o.address == ADDRESS for o in orders)

    left = {"fulfilment": "delivery", "address": dict(ADDRESS), "coupons": []}
    for n in range(2):
        headers = {**member_headers(client, merchant, f"left-{n}"), "Idempotency-Key": f"left-body-{n}"}
        answer = _post(client, sale["id"], headers, left)
        assert answer.status_code == 201, answer.json
    assert lane(client).taken == before + 3  # both through the app

    remark = {**body, "remark": "放门口"}
    headers = {**member_headers(client, merchant, "remark"), "Idempotency-Key": "remark-body-1"}
    answer = _post(client, sale["id"], headers, remark)
    assert answer.status_code == 201, answer.json
    assert answer.json["remark"] == "放门口"
    assert lane(client).taken == before + 4


def test_a_retry_of_a_lane_order_is_answered_by_the_app_with_that_order(client, ctx):
    store, sale = selling(client)
    placed = buy(client, store["member"], sale["id"], "lane-retry")
    taken = lane(client).taken
    again = buy(client, store["member"], sale["id"], "lane-retry")
    assert (again.status_code, again.json["id"]) == (200, placed.json["id"])
    assert lane(client).taken == taken


def test_refusals_in_the_lane_are_the_apps_errors_and_sold_out_sets_the_gate(client, ctx):
    store, sale = selling(client)  # 1 of 5 units sold
    assert buy(client, store["member"], sale["id"], "lane-limit-1", 2).status_code == 201
    over = buy(client, store["member"], sale["id"], "lane-limit-2")
    assert (over.status_code, over.json["error"]["code"]) == (409, "offer_limit_reached")
    assert over.headers["X-Content-Type-Options"] == "nosniff"

    other = member_headers(client, store["merchant"].code, "other")
    assert buy(client, other, sale["id"], "lane-last", 2).status_code == 201  # the last 2 units
    late = member_headers(client, store["merchant"].code, "late")
    refused = buy(client, late, sale["id"], "lane-late")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "sold_out")
    assert gate.look(store["merchant"].id, sale["id"]).sold_out  # the next buyers are refused by the gate


def test_the_gates_sold_out_answer_in_the_lane_is_the_apps_and_a_retry_still_gets_its_order(client, ctx, monkeypatch):
    store, sale = selling(client, quota=1)  # its only unit sold
    late = member_headers(client, store["merchant"].code, "late")
    assert buy(client, late, sale["id"], "lane-first-refusal").json["error"]["code"] == "sold_out"  # sets the gate
    assert gate.look(store["merchant"].id, sale["id"]).sold_out

    later = member_headers(client, store["merchant"].code, "later")
    before = lane(client).taken
    by_app = by_the_app(client, later, sale["id"], "lane-refused-by-app")
    app_dispatch = lane(client).inner

    def not_the_app(environ, start_response):
        raise AssertionError("the lane handed the refusal to the app")

    monkeypatch.setattr(lane(client), "inner", not_the_app)
    with sent_statements() as sent:
        by_lane = buy(client, later, sale["id"], "lane-refused-by-lane")
    monkeypatch.setattr(lane(client), "inner", app_dispatch)
    assert lane(client).taken == before  # refusals are not counted as the lane's orders
    assert (
        (by_lane.status_code, by_lane.json)
        == (by_app.status_code, by_app.json)
        == (
            409,
            {
                "error": {
                    "code": "sold_out",
                    "message": by_app.json["error"]["message"],
                    "details": {"offer_id": sale["id"], "left": 0},
                }
            },
        )
    )
    assert sorted(by_lane.headers.items()) == sorted(by_app.headers.items())
    assert [statement.split()[0] for statement in sent] == ["SELECT"]  # the key looked up, nothing written

    first = member_headers(client, store["merchant"].code, "first")  # the buyer of the only unit retries
    again = buy(client, first, sale["id"], "lane-first")
    assert again.status_code == 200 and again.json["status"] == "pending_payment"


def test_a_veto_of_a_lane_order_is_answered_by_the_apps_handlers(client, ctx):
    store, sale = selling(client)
    taken = lane(client).taken
    with vetoing():
        refused = buy(client, store["member"], sale["id"], "lane-veto")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "refused_by_test")
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    assert lane(client).taken == taken
    orders = db.session.execute(select(Order).where(Order.member_id == refused_member(store))).scalars().all()
    (order,) = orders
    assert (order.status, order.cancel_reason) == ("cancelled", "refused")
    assert db.session.execute(select(OfferUnit).where(OfferUnit.order_id == order.id)).first() is None


def refused_member(store: dict[str, Any]) -> int:
    from api.auth import decode_token

    return decode_token(store["member"]["Authorization"].split(" ", 1)[1]).subject_id


def _raw(client, sale_id: int, headers: dict[str, str], data: bytes, **environ: Any):
    """A placement sent as these exact bytes, with environ overrides (Content-Length, ...)."""
    return client.post(
        f"/api/v1/flash-sales/{sale_id}/orders",
        data=data,
        headers={**headers, "Content-Type": "application/json"},
        environ_overrides=environ,
    )


@pytest.mark.parametrize("case", ["a UTF-8 BOM", "UTF-16", "a short body", "chunked", "a non-ASCII length"])
def test_bodies_the_app_reads_its_own_way_are_left_to_it(client, ctx, case):
    """What the app's parser refuses or reads differently is never placed by the lane."""
    import json

    store, sale = selling(client)
    member = {**store["member"], "Idempotency-Key": f"lane-raw-{case.replace(' ', '-')}"}
    body = json.dumps({"quantity": 1, "fulfilment": "delivery", "address": dict(ADDRESS)}, ensure_ascii=False)
    before = lane(client).taken
    if case == "a UTF-8 BOM":
        answer = _raw(client, sale["id"], member, b"\xef\xbb\xbf" + body.encode())
    elif case == "UTF-16":
        answer = _raw(client, sale["id"], member, body.encode("utf-16"))
    elif case == "a short body":
        data = body.encode()
        answer = _raw(client, sale["id"], member, data, CONTENT_LENGTH=str(len(data) + 5))
    elif case == "chunked":
        answer = _raw(client, sale["id"], member, body.encode(), HTTP_TRANSFER_ENCODING="chunked")
    else:
        answer = _raw(client, sale["id"], member, body.encode(), CONTENT_LENGTH="１２")
    assert lane(client).taken == before, case
    assert answer.status_code != 500, (case, answer.json)
    if case in ("a UTF-8 BOM", "UTF-16", "a short body"):
        assert 400 <= answer.status_code < 500, (case, answer.json)
        placed = db.session.execute(select(Order).where(Order.member_id == refused_member(store))).scalars().all()
        assert placed == [], case  # nothing placed from a body the app refuses


def test_a_request_the_lane_hands_back_is_not_tried_twice(client, ctx):
    """The lane's placement answered 'not mine' (here: a retry of an order placed through the app):
    the app answers it without asking flash_place again."""
    from tests.factories import sent_statements

    store, sale = selling(client)
    first = buy(client, store["member"], sale["id"], "lane-once")
    assert first.status_code == 201
    with sent_statements() as sent:
        again = buy(client, store["member"], sale["id"], "lane-once")
    assert (again.status_code, again.json["id"]) == (200, first.json["id"])
    assert sum("flash_place(" in statement for statement in sent) == 1, sent
