"""The pricing door over HTTP: the member's selections reach the adjusters from the quote and the
placement, are validated (422 with the fields, nothing placed) and belong to the Idempotency-Key's
request; items may ask for offers; the quote shows the adjusters' options; orders show their kind
and staff filter by it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shop.checkout.pricing import (
    AdjusterResult,
    Adjustment,
    Offer,
    register_adjuster,
    register_offer_resolver,
    unregister_adjuster,
    unregister_offer_resolver,
)
from shop.core.db import db, transaction
from shop.orders.models import Order
from shop.orders.special import SpecialLine, place_special_order
from tests.factories import fake_pay, make_merchant, make_product, member_headers, order_body, place, staff_headers


class Picky:
    """Takes off what the member selected (`{"picky": {"off": n}}`), and shows one option."""

    name = "picky"

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def adjust(self, context) -> AdjusterResult:
        chosen = context.selection(self.name)
        self.seen.append((context.purpose, chosen))
        off = (chosen or {}).get("off", 0)
        adjustments = [Adjustment(source=self.name, kind="goods", amount=off)] if off else []
        return AdjusterResult(adjustments=adjustments, options=[{"off": off, "selected": chosen is not None}])


class Groups:
    kind = "bundle"

    def resolve(self, context, requests):
        return [Offer(kind=self.kind, id=r.offer_id, unit_price=r.sku_price // 2, note="每人限 1 件") for r in requests]


@pytest.fixture
def picky():
    adjuster = Picky()
    register_adjuster(adjuster)
    register_offer_resolver(Groups())
    yield adjuster
    unregister_adjuster(adjuster.name)
    unregister_offer_resolver(Groups.kind)


@pytest.fixture
def store(ctx, client):
    merchant = make_merchant()
    sku_id = make_product(merchant, skus=[{"specs": {}, "price": 2000, "stock": 50}]).skus[0].id
    return {
        "merchant": merchant,
        "sku_id": sku_id,
        "member": member_headers(client, merchant.code, "chooser"),
        "staff": staff_headers(client, merchant.code),
    }


def _quote(client, store, body: dict):
    """POST the body to the quote (which takes no address or remark)."""
    body = {k: v for k, v in body.items() if k not in ("address", "remark")}
    return client.post("/api/v1/checkout/quote", json=body, headers=store["member"])


def _orders() -> int:
    return db.session.execute(select(func.count()).select_from(Order)).scalar_one()


def test_selections_reach_the_adjuster_from_the_quote_and_the_placement(client, store, picky):
    body = order_body(store["sku_id"], 2, selections={"picky": {"off": 150}})
    quote = _quote(client, store, body)
    assert quote.status_code == 200, quote.json
    assert quote.json["options"] == {"coupons": [], "picky": [{"off": 150, "selected": True}]}
    assert (quote.json["discount_total"], quote.json["payable_total"]) == (150, 4000 - 150 + 800)

    placed = place(client, store["member"], body)
    assert placed.status_code == 201, placed.json
    assert placed.json["discount_total"] == 150
    assert placed.json["adjustments"][0]["source"] == "picky"
    assert picky.seen == [("quote", {"off": 150}), ("placement", {"off": 150})]


def test_a_quote_shows_options_only_of_adjusters_that_give_them(client, store):
    quote = _quote(client, store, order_body(store["sku_id"]))
    assert quote.status_code == 200 and quote.json["options"] == {"coupons": []}  # an empty wallet


def test_the_same_key_with_other_selections_is_refused_and_with_the_same_answers_the_order(client, store, picky):
    first = place(
        client, store["member"], order_body(store["sku_id"], selections={"picky": {"off": 1}}), key="sel-key-1"
    )
    assert first.status_code == 201
    again = place(
        client, store["member"], order_body(store["sku_id"], selections={"picky": {"off": 1}}), key="sel-key-1"
    )
    assert (again.status_code, again.json["id"]) == (200, first.json["id"])
    other = place(
        client, store["member"], order_body(store["sku_id"], selections={"picky": {"off": 2}}), key="sel-key-1"
    )
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_key_reused"
    none = place(client, store["member"], order_body(store["sku_id"]), key="sel-key-1")
    assert none.status_code == 409 and none.json["error"]["code"] == "idempotency_key_reused"
    assert _orders() == 1


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


BAD_SELECTIONS = [
    ("not an object", [1], ("selections",)),
    ("a selection that is not an object", {"picky": 5}, ("selections", "picky", "value")),
    ("a name with capitals", {"Picky": {}}, ("selections", "Picky", "key")),
    ("a name too long", {"p" * 33: {}}, ("selections",)),
    ("too many names", {f"n{i}": {} for i in range(9)}, ("selections",)),
    ("too big", {"picky": {"note": "x" * 4100}}, ("selections",)),
    ("too deep", {"picky": _deep(4)}, ("selections",)),
    ("an empty key inside", {"picky": {"": 1}}, ("selections", "picky", "value")),
    ("a NUL inside", {"picky": {"note": "a\x00b"}}, ("selections",)),
]


@pytest.mark.parametrize(("case", "selections", "path"), BAD_SELECTIONS, ids=[c[0] for c in BAD_SELECTIONS])
@pytest.mark.parametrize("endpoint", ["quote", "order"])
def test_bad_selections_are_422_naming_the_field_and_place_nothing(
    client, store, picky, case, selections, path, endpoint
):
    body = order_body(store["sku_id"], selections=selections)
    response = _quote(client, store, body) if endpoint == "quote" else place(client, store["member"], body)
    assert response.status_code == 422, response.json
    fields = response.json["error"]["details"]["fields"]
    node = fields
    for step in path:
        assert step in node, (case, fields)
        node = node[step]
    assert picky.seen == [] and _orders() == 0


def test_selections_naming_no_adjuster_are_422_unknown_selection(client, store, picky):
    response = place(client, store["member"], order_body(store["sku_id"], selections={"loyalty": {"ids": [1]}}))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "unknown_selection"
    assert response.json["error"]["details"]["fields"] == {
        "selections": {"loyalty": ["no pricing adjuster of that name"]}
    }
    assert _orders() == 0


def test_selections_within_the_bounds_are_accepted(client, store, picky):
    selections = {"picky": {"off": 0, "ids": [1, 2, 3], "nested": _deep(2)}}  # 4 levels of objects
    response = _quote(client, store, order_body(store["sku_id"], selections=selections))
    assert response.status_code == 200, response.json


# --- offers on items ----------------------------------------------------------------------------


def test_an_item_at_an_offer_price_is_quoted_and_ordered_with_its_offer(client, store, picky):
    body = order_body(store["sku_id"])
    body["items"][0]["offer"] = {"kind": "bundle", "id": 3}
    quote = _quote(client, store, body).json
    (line,) = quote["lines"]
    assert (line["sku_price"], line["unit_price"], line["goods_amount"]) == (2000, 1000, 1000)
    assert line["offer"] == {"kind": "bundle", "id": 3, "unit_price": 1000, "note": "每人限 1 件"}
    placed = place(client, store["member"], body)
    assert placed.status_code == 201, placed.json
    (ordered,) = placed.json["lines"]
    assert (ordered["unit_price"], ordered["offer"]) == (1000, {"kind": "bundle", "id": 3, "unit_price": 1000})


@pytest.mark.parametrize(
    ("offer", "field"),
    [
        ({"kind": "bundle"}, "id"),
        ({"id": 3}, "kind"),
        ({"kind": "Group Buy", "id": 3}, "kind"),
        ({"kind": "bundle", "id": "3"}, "id"),
        ({"kind": "bundle", "id": 0}, "id"),
        ({"kind": "bundle", "id": 3, "price": 1}, "price"),
    ],
)
def test_a_malformed_offer_is_422_naming_its_field(client, store, picky, offer, field):
    body = order_body(store["sku_id"])
    body["items"][0]["offer"] = offer
    response = place(client, store["member"], body)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]["items"]["0"]["offer"]
    assert _orders() == 0


def test_an_offer_of_an_unknown_kind_is_422_unknown_offer(client, store):
    body = order_body(store["sku_id"])
    body["items"][0]["offer"] = {"kind": "lucky_bag", "id": 1}
    response = place(client, store["member"], body)
    assert response.status_code == 422 and response.json["error"]["code"] == "unknown_offer"
    assert response.json["error"]["details"]["fields"] == {
        "items": {"0": {"offer": {"kind": ["no such kind of offer"]}}}
    }


def test_the_cart_takes_no_offers(client, store, picky):
    response = client.post(
        "/api/v1/cart/items",
        json={"sku_id": store["sku_id"], "quantity": 1, "offer": {"kind": "bundle", "id": 1}},
        headers=store["member"],
    )
    assert response.status_code == 422 and "offer" in response.json["error"]["details"]["fields"]


def test_the_openapi_document_describes_selections_options_and_offers(client):
    spec = client.get("/api/openapi.json").json
    schemas = spec["components"]["schemas"]
    checkout = next(s for name, s in schemas.items() if name.startswith("Checkout"))
    assert checkout["properties"]["selections"]["type"] == "object"
    assert "unknown_selection" in checkout["properties"]["selections"]["description"]
    quote = schemas["Quote"]
    assert quote["properties"]["options"]["type"] == "object"
    assert quote["properties"]["options"]["additionalProperties"]["type"] == "array"
    assert "offer" in next(s for name, s in schemas.items() if name.startswith("OrderItem"))["properties"]


# --- kinds in the order lists -------------------------------------------------------------------


def _top_up(store) -> int:
    member_id = db.session.execute(select(Order.member_id)).scalar()
    with transaction():
        placed = place_special_order(
            store["merchant"].id, member_id, "top_up", [SpecialLine("充值", 5000)], idempotency_key="list-topup-1"
        )
    return placed.order.id


def test_members_and_staff_see_the_kind_and_staff_filter_by_it(client, store):
    goods = place(client, store["member"], order_body(store["sku_id"])).json
    assert goods["kind"] == "goods"
    top_up_id = _top_up(store)

    mine = client.get("/api/v1/orders", headers=store["member"]).json["items"]
    assert [(o["id"], o["kind"], o["fulfilment"]) for o in mine] == [
        (top_up_id, "top_up", "none"),
        (goods["id"], "goods", "delivery"),
    ]
    assert mine[0]["lines"][0]["sku_id"] is None and mine[0]["lines"][0]["title"] == "充值"

    def staff_list(**query) -> list[tuple[int, str]]:
        response = client.get("/api/v1/merchant/orders", query_string=query, headers=store["staff"])
        assert response.status_code == 200, response.json
        return [(o["id"], o["kind"]) for o in response.json["items"]]

    assert staff_list() == [(top_up_id, "top_up"), (goods["id"], "goods")]
    assert staff_list(kind="top_up") == [(top_up_id, "top_up")]
    assert staff_list(kind="goods") == [(goods["id"], "goods")]
    assert staff_list(kind="prize_upgrade") == []
    bad = client.get("/api/v1/merchant/orders", query_string={"kind": "gift"}, headers=store["staff"])
    assert bad.status_code == 422 and "kind" in bad.json["error"]["details"]["fields"]


def test_staff_cannot_ship_or_ready_a_non_goods_order(client, store):
    place(client, store["member"], order_body(store["sku_id"]))
    top_up_id = _top_up(store)
    fake_pay(client, db.session.get(Order, top_up_id).order_no)
    shipped = client.post(
        f"/api/v1/merchant/orders/{top_up_id}/ship",
        json={"carrier": "SF", "tracking_no": "SF0001"},
        headers=store["staff"],
    )
    assert shipped.status_code == 409 and shipped.json["error"]["code"] == "no_fulfilment"
    ready = client.post(f"/api/v1/merchant/orders/{top_up_id}/ready-for-pickup", headers=store["staff"])
    assert ready.status_code == 409 and ready.json["error"]["code"] == "no_fulfilment"
    db.session.expire_all()
    assert db.session.get(Order, top_up_id).status == "paid"
