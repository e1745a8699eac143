"""What an invalid-input case is, and the world the cases run in (tests/api/test_invalid_input.py).

A package registers, in its own `*_cases.py` module (tests/coverage/registry.py):
- each endpoint that takes input, as an `Endpoint`: its path, caller, where the input goes, and a
  valid request made from the `World` (two merchants' ids: categories, products, SKUs, a member
  with a cart, pickup points, and the member's orders in the states the endpoint names);
- its specific bad requests, as `Bad` cases: each breaks one thing of the valid request (helpers
  `with_`, `without`, `with_item`, ...) and names the field at fault and the error expected.
The generic cases (not JSON, not an object, an unknown field, the NUL character, ...) are made
for every endpoint by the test module.

An endpoint acting on rows of its own package gives `setup(client, world)`: it runs for that
endpoint's cases only, and what it returns is `world.extras` (ids its valid request uses).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app
from sqlalchemy import inspect, select

from shop.catalog import service as catalog
from shop.core.db import db, transaction
from shop.identity import pickup_points
from shop.identity.models import Merchant
from shop.payments.providers import PROVIDER_EXTENSION
from tests.factories import (
    make_merchant,
    make_product,
    make_staff,
    member_headers,
    order_body,
    paid_order,
    placed_order,
    staff_headers,
)

PREFIX = "/api/v1"


MISSING_ID = 10**12


@dataclass(frozen=True)
class World:
    code: str
    owner: dict[str, str]
    member: dict[str, str]
    top_category_id: int
    sub_category_id: int
    product_id: int  # on the shelf, SKUs specced by 规格
    sku_id: int
    second_sku_id: int
    operator_id: int
    other_category_id: int  # of another merchant
    member_id: int  # has 2 of sku_id in the cart
    other_member_id: int  # of another merchant
    other_sku_id: int  # of another merchant, on the shelf
    lemon_sku_id: int  # what the member's orders are of
    pickup_point_id: int  # open, led by the member
    closed_pickup_point_id: int
    other_pickup_point_id: int  # of another merchant, open
    orders: Orders  # the member's orders the endpoint under test acts on (Endpoint.orders)
    extras: dict[str, Any] = field(default_factory=dict)  # what the endpoint's setup made (Endpoint.setup)


@dataclass(frozen=True)
class Orders:
    """The member's orders, of the lemon, in the states an endpoint acts on. Placing and paying
    orders takes time, so the world places only those its endpoint names; the others are None."""

    pending_order_id: int | None = None  # unpaid delivery
    pending_order_no: str | None = None
    pending_total: int | None = None
    pending_line_id: int | None = None
    paid_order_id: int | None = None  # paid delivery, 2 units on one line
    paid_line_id: int | None = None
    shipped_order_id: int | None = None
    paid_pickup_order_id: int | None = None
    ready_order_id: int | None = None  # waiting at the member's pickup point
    pickup_code: str | None = None
    refund_id: int | None = None  # requested, of a paid order of its own
    refunding_order_no: str | None = None  # a paid order whose refund was approved and is processing
    refunding_total: int | None = None
    out_refund_no: str | None = None
    refund_amount: int | None = None


ORDER_STATES = ("pending", "paid", "shipped", "paid_pickup", "ready", "refund_requested", "refund_processing")


POINT = {"name": "幸福小区", "address": "幸福路 1 号", "contact_name": "张姐", "contact_phone": "13800138000"}


def pickup_body(sku_id: int, point_id: int) -> dict[str, Any]:
    return {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "pickup", "pickup_point_id": point_id}


def member_id_of(client, headers: dict[str, str]) -> int:
    return client.get(f"{PREFIX}/me", headers=headers).json["id"]


def place_orders(client, owner, member, lemon: int, point_id: int, states: tuple[str, ...]) -> Orders:
    assert set(states) <= set(ORDER_STATES), states
    found: dict[str, Any] = {}
    if "pending" in states:
        pending = placed_order(client, member, order_body(lemon))
        found.update(
            pending_order_id=pending["id"],
            pending_order_no=pending["order_no"],
            pending_total=pending["payable_total"],
            pending_line_id=pending["lines"][0]["id"],
        )
    if "paid" in states:
        paid = paid_order(client, member, order_body(lemon, 2))
        found.update(paid_order_id=paid["id"], paid_line_id=paid["lines"][0]["id"])
    if "shipped" in states:
        shipped = paid_order(client, member, order_body(lemon))
        shipping = {"carrier": "顺丰", "tracking_no": "SF0000000001"}
        sent = client.post(f"{PREFIX}/merchant/orders/{shipped['id']}/ship", headers=owner, json=shipping)
        assert sent.status_code == 200, sent.json
        found.update(shipped_order_id=shipped["id"])
    if "paid_pickup" in states:
        found.update(paid_pickup_order_id=paid_order(client, member, pickup_body(lemon, point_id))["id"])
    if "ready" in states:
        ready = paid_order(client, member, pickup_body(lemon, point_id))
        sent = client.post(f"{PREFIX}/merchant/orders/{ready['id']}/ready-for-pickup", headers=owner)
        assert sent.status_code == 200, sent.json
        found.update(ready_order_id=ready["id"], pickup_code=ready["pickup_code"])
    if "refund_requested" in states:
        refunded = paid_order(client, member, order_body(lemon))
        refund = client.post(f"{PREFIX}/orders/{refunded['id']}/refunds", headers=member, json={"reason": "不要了"})
        assert refund.status_code == 201, refund.json
        found.update(refund_id=refund.json["id"])
    if "refund_processing" in states:
        refunding = paid_order(client, member, order_body(lemon))
        refund = client.post(f"{PREFIX}/orders/{refunding['id']}/refunds", headers=member, json={"reason": "坏了"})
        approved = client.post(f"{PREFIX}/merchant/refunds/{refund.json['id']}/approve", headers=owner)
        assert approved.json["status"] == "processing", approved.json
        found.update(
            refunding_order_no=refunding["order_no"],
            refunding_total=refunding["paid_total"],
            out_refund_no=approved.json["out_refund_no"],
            refund_amount=approved.json["amount"],
        )
    return Orders(**found)


def everything() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what "changes nothing" compares."""
    existing = set(inspect(db.session.connection()).get_table_names())
    return {
        table.name: [tuple(row) for row in db.session.execute(select(table).order_by(*table.primary_key.columns))]
        for table in db.metadata.sorted_tables
        if table.name in existing  # a model whose migration has not landed yet has no rows to change
    }


def build_world(client, endpoint: Endpoint | None) -> World:
    """Two merchants' rows, and the member's orders in the states `endpoint` acts on."""
    merchant = make_merchant()
    other = make_merchant()
    with transaction():
        top = catalog.create_category(merchant.id, name="Fruit")
        sub = catalog.create_category(merchant.id, name="Citrus", parent_id=top.id)
        other_category = catalog.create_category(other.id, name="Elsewhere")
    product = make_product(
        merchant,
        "Orange",
        category_id=sub.id,
        skus=[
            {"specs": {"规格": "5斤"}, "price": 3990, "market_price": 5990, "stock": 40},
            {"specs": {"规格": "10斤"}, "price": 6990, "market_price": 9990, "stock": 8},
        ],
    )
    lemon = make_product(merchant, "Lemon", skus=[{"specs": {"规格": "1个"}, "price": 500, "stock": 100}]).skus[0].id
    other_sku = make_product(other, "Elsewhere orange").skus[0].id
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    member = member_headers(client, merchant.code)
    member_id = member_id_of(client, member)
    other_member_id = member_id_of(client, member_headers(client, other.code, name="stranger"))
    in_cart = client.post(f"{PREFIX}/cart/items", headers=member, json={"sku_id": product.skus[0].id, "quantity": 2})
    assert in_cart.status_code == 200, in_cart.json
    with transaction():
        point = pickup_points.create_pickup_point(merchant.id, **POINT, leader_member_id=member_id)
        closed = pickup_points.create_pickup_point(merchant.id, **POINT)
        pickup_points.update_pickup_point(merchant.id, closed.id, active=False)
        other_point = pickup_points.create_pickup_point(other.id, **POINT)

    orders = place_orders(client, owner, member, lemon, point.id, endpoint.orders if endpoint else ())

    world = World(
        code=merchant.code,
        owner=owner,
        member=member,
        top_category_id=top.id,
        sub_category_id=sub.id,
        product_id=product.id,
        sku_id=product.skus[0].id,
        second_sku_id=product.skus[1].id,
        operator_id=operator.id,
        other_category_id=other_category.id,
        member_id=member_id,
        other_member_id=other_member_id,
        other_sku_id=other_sku,
        lemon_sku_id=lemon,
        pickup_point_id=point.id,
        closed_pickup_point_id=closed.id,
        other_pickup_point_id=other_point.id,
        orders=orders,
    )
    if endpoint is not None and endpoint.setup is not None:
        world = replace(world, extras=endpoint.setup(client, world))
    return world


def cursor_of(values: Any) -> str:
    """A cursor forged the way the API encodes its own."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


RAW = "raw"  # the view reads the body itself: a payment provider's signed callback


@dataclass(frozen=True)
class Endpoint:
    path: Callable[[World], str]
    caller: str | None  # "staff" (the owner), "member" or None
    location: str  # "json", "query" or RAW (then `valid` gives client.open's headers and data)
    valid: Callable[[World], dict[str, Any]]
    ok: int = 200
    text_field: str | None = None  # a string field, for the NUL character case
    extra_headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    orders: tuple[str, ...] = ()  # the states (ORDER_STATES) of the member's orders it acts on
    setup: Callable[[Any, World], dict[str, Any]] | None = None  # (client, world) -> world.extras

    def headers(self, world: World) -> dict[str, str]:
        return {**{"staff": world.owner, "member": world.member, None: {}}[self.caller], **self.extra_headers}


KEY = {"Idempotency-Key": "invalid-input-0001"}


ADDRESS = order_body(1)["address"]


def provider():
    return current_app.extensions[PROVIDER_EXTENSION]


def merchant_of(w: World) -> Merchant:
    return db.session.execute(select(Merchant).where(Merchant.code == w.code)).scalar_one()


@dataclass(frozen=True)
class Bad:
    key: tuple[str, str]
    name: str
    data: Callable[[World, dict[str, Any]], Any] | None  # (world, the valid request) -> what is sent
    fields: tuple[str, ...] | None  # the path in details.fields naming the fault (None: no field is)
    message: str | None = None  # a message expected there (or in a provider's callback answer)
    code: str = "validation_error"
    status: int = 422
    raw: dict[str, Any] | None = None  # sent as is instead of `data` (client.open keywords)
    headers: dict[str, str | None] | None = None  # changes to the endpoint's headers (None: left out)

    def __str__(self) -> str:
        return f"{self.key[1]} {self.key[0]}: {self.name}"


def with_(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: {**valid, **changes}


def without(*names: str) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: {k: v for k, v in valid.items() if k not in names}


DROP = object()  # with_sku(0, price=DROP): leave the field out


def with_sku(index: int, **changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    def build(w: World, valid: dict[str, Any]) -> dict[str, Any]:
        skus = [dict(s) for s in valid["skus"]]
        skus[index].update(changes)
        skus[index] = {k: v for k, v in skus[index].items() if v is not DROP}
        return {**valid, "skus": skus}

    return build


def skus(make: Callable[[World], list[dict[str, Any]]]) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: {**valid, "skus": make(w)}


def with_entry(name: str, index: int, **changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    """Change (DROP: leave out) fields of one entry of a list in the body: items, lines."""

    def build(w: World, valid: dict[str, Any]) -> dict[str, Any]:
        entries = [dict(e) for e in valid[name]]
        entries[index].update(changes)
        entries[index] = {k: v for k, v in entries[index].items() if v is not DROP}
        return {**valid, name: entries}

    return build


def with_item(index: int, **changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return with_entry("items", index, **changes)


def with_line(index: int, **changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return with_entry("lines", index, **changes)


def with_address(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    def build(w: World, valid: dict[str, Any]) -> dict[str, Any]:
        address = {**valid["address"], **changes}
        return {**valid, "address": {k: v for k, v in address.items() if v is not DROP}}

    return build


UNKNOWN = "Unknown field."


NOT_INT = "Not a valid integer."


NEW_SKU = {"specs": {"规格": "1斤"}, "price": 990}


FORGED = "this-is-not-a-cursor!"


def page_cases(key: tuple[str, str]) -> list[Bad]:
    """What every paged list refuses: a limit out of range or not a number, a cursor it never gave."""
    return [
        Bad(key, "limit 0", with_(limit=0), ("limit",)),
        Bad(key, "limit 51", with_(limit=51), ("limit",)),
        Bad(key, "limit is not a number", with_(limit="ten"), ("limit",), NOT_INT),
        Bad(key, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(key, "a cursor of a string", with_(cursor=cursor_of(["x"])), ("cursor",), code="invalid_cursor"),
        Bad(key, "a cursor past bigint", with_(cursor=cursor_of([2**63])), ("cursor",), code="invalid_cursor"),
        Bad(key, "a cursor past 200 characters", with_(cursor="a" * 201), ("cursor",)),
    ]


REQUIRED = "Missing data for required field."


NOT_NULL = "Field may not be null."


NOT_STRING = "Not a valid string."


NOT_BOOL = "Not a valid boolean."


NOT_DATETIME = "Not a valid datetime."


BAD_PATTERN = "String does not match expected pattern."


EIGHT_DIGITS = "8 digits"


ITEMS_OR_CART = "send items (buy now) or from_cart: true, not both"


KEY_HEADER = ("Idempotency-Key",)
