"""Bad input over HTTP: a 4xx with the error envelope naming the fields at fault, never a 500,
and nothing changes.

ENDPOINTS lists every endpoint that takes input (a JSON body or a query string) with a valid
request; the coverage test at the end walks the app's url map so a new endpoint without an entry
fails the suite. Every endpoint gets the generic cases (a body that is not JSON, JSON that is not
an object, an unknown field, the NUL character, ...) and its own cases in CASES: wrong types,
missing and out-of-range values, server-owned fields, business rules about the input.

An action whose URL says everything (cancel, pay, approve, ...) takes an empty body at most: a
field sent there is refused like any unknown field. The payment provider's callbacks read their
signed body themselves and answer in the provider's own shape, {"code": "FAIL", "message": ...}.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import inspect, select

from api.schemas.common import MAX_FEN, MAX_ID
from shop.catalog import service as catalog
from shop.catalog.models import Sku
from shop.catalog.service import MAX_STOCK
from shop.core.db import db, transaction
from shop.identity import pickup_points
from shop.identity.models import Member, Merchant
from shop.payments.providers import PROVIDER_EXTENSION
from tests.factories import (
    PASSWORD,
    fake_pay,
    make_merchant,
    make_product,
    make_staff,
    member_headers,
    order_body,
    place,
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


def _pickup_body(sku_id: int, point_id: int) -> dict[str, Any]:
    return {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "pickup", "pickup_point_id": point_id}


def _order(client, member: dict[str, str], body: dict[str, Any], *, pay: bool = False) -> dict[str, Any]:
    """Place an order (and pay it through the fake provider): the member's view of it."""
    placed = place(client, member, body)
    assert placed.status_code == 201, placed.json
    if not pay:
        return placed.json
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.status_code == 200, paid.json
    return paid.json


def _member_id(client, headers: dict[str, str]) -> int:
    return client.get(f"{PREFIX}/me", headers=headers).json["id"]


def _place_orders(client, owner, member, lemon: int, point_id: int, states: tuple[str, ...]) -> Orders:
    assert set(states) <= set(ORDER_STATES), states
    found: dict[str, Any] = {}
    if "pending" in states:
        pending = _order(client, member, order_body(lemon))
        found.update(
            pending_order_id=pending["id"],
            pending_order_no=pending["order_no"],
            pending_total=pending["payable_total"],
            pending_line_id=pending["lines"][0]["id"],
        )
    if "paid" in states:
        paid = _order(client, member, order_body(lemon, 2), pay=True)
        found.update(paid_order_id=paid["id"], paid_line_id=paid["lines"][0]["id"])
    if "shipped" in states:
        shipped = _order(client, member, order_body(lemon), pay=True)
        shipping = {"carrier": "顺丰", "tracking_no": "SF0000000001"}
        sent = client.post(f"{PREFIX}/merchant/orders/{shipped['id']}/ship", headers=owner, json=shipping)
        assert sent.status_code == 200, sent.json
        found.update(shipped_order_id=shipped["id"])
    if "paid_pickup" in states:
        found.update(paid_pickup_order_id=_order(client, member, _pickup_body(lemon, point_id), pay=True)["id"])
    if "ready" in states:
        ready = _order(client, member, _pickup_body(lemon, point_id), pay=True)
        sent = client.post(f"{PREFIX}/merchant/orders/{ready['id']}/ready-for-pickup", headers=owner)
        assert sent.status_code == 200, sent.json
        found.update(ready_order_id=ready["id"], pickup_code=ready["pickup_code"])
    if "refund_requested" in states:
        refunded = _order(client, member, order_body(lemon), pay=True)
        refund = client.post(f"{PREFIX}/orders/{refunded['id']}/refunds", headers=member, json={"reason": "不要了"})
        assert refund.status_code == 201, refund.json
        found.update(refund_id=refund.json["id"])
    if "refund_processing" in states:
        refunding = _order(client, member, order_body(lemon), pay=True)
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


def _endpoint_under_test(request: pytest.FixtureRequest) -> Endpoint | None:
    """The endpoint a test parametrized by `key` or `case` is about (None for any other test)."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec else {}
    key = params.get("key") or getattr(params.get("case"), "key", None)
    return ENDPOINTS[key] if key else None


@pytest.fixture
def world(ctx, client, request) -> World:
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
    member_id = _member_id(client, member)
    other_member_id = _member_id(client, member_headers(client, other.code, name="stranger"))
    in_cart = client.post(f"{PREFIX}/cart/items", headers=member, json={"sku_id": product.skus[0].id, "quantity": 2})
    assert in_cart.status_code == 200, in_cart.json
    with transaction():
        point = pickup_points.create_pickup_point(merchant.id, **POINT, leader_member_id=member_id)
        closed = pickup_points.create_pickup_point(merchant.id, **POINT)
        pickup_points.update_pickup_point(merchant.id, closed.id, active=False)
        other_point = pickup_points.create_pickup_point(other.id, **POINT)

    endpoint = _endpoint_under_test(request)
    orders = _place_orders(client, owner, member, lemon, point.id, endpoint.orders if endpoint else ())

    return World(
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


def _everything() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what "changes nothing" compares."""
    existing = set(inspect(db.session.connection()).get_table_names())
    return {
        table.name: [tuple(row) for row in db.session.execute(select(table).order_by(*table.primary_key.columns))]
        for table in db.metadata.sorted_tables
        if table.name in existing  # a model whose migration has not landed yet has no rows to change
    }


def cursor_of(values: Any) -> str:
    """A cursor forged the way the API encodes its own."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# --- the endpoints, each with a valid request -----------------------------------------------------


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

    def headers(self, world: World) -> dict[str, str]:
        return {**{"staff": world.owner, "member": world.member, None: {}}[self.caller], **self.extra_headers}


WX_LOGIN = ("/api/v1/auth/wx-login", "POST")
STAFF_LOGIN = ("/api/v1/merchant/auth/login", "POST")
ME = ("/api/v1/me", "PATCH")
STAFF_CREATE = ("/api/v1/merchant/staff", "POST")
STAFF_UPDATE = ("/api/v1/merchant/staff/<int:staff_id>", "PATCH")
CATEGORY_CREATE = ("/api/v1/merchant/categories", "POST")
CATEGORY_UPDATE = ("/api/v1/merchant/categories/<int:category_id>", "PATCH")
PRODUCT_CREATE = ("/api/v1/merchant/products", "POST")
PRODUCT_UPDATE = ("/api/v1/merchant/products/<int:product_id>", "PATCH")
SHELF = ("/api/v1/merchant/products/<int:product_id>/shelf", "PUT")
STOCK_ADJUST = ("/api/v1/merchant/skus/<int:sku_id>/stock-adjustments", "POST")
MEMBER_PRODUCTS = ("/api/v1/products", "GET")
STAFF_PRODUCTS = ("/api/v1/merchant/products", "GET")
STOCK_MOVEMENTS = ("/api/v1/merchant/skus/<int:sku_id>/stock-movements", "GET")
CART_ADD = ("/api/v1/cart/items", "POST")
CART_SET = ("/api/v1/cart/items/<int:sku_id>", "PUT")
QUOTE = ("/api/v1/checkout/quote", "POST")
ORDER_CREATE = ("/api/v1/orders", "POST")
MEMBER_ORDERS = ("/api/v1/orders", "GET")
CANCEL = ("/api/v1/orders/<int:order_id>/cancel", "POST")
PAY = ("/api/v1/orders/<int:order_id>/pay", "POST")
CONFIRM = ("/api/v1/orders/<int:order_id>/confirm-receipt", "POST")
REFUND_REQUEST = ("/api/v1/orders/<int:order_id>/refunds", "POST")
LEADER_PICKUP = ("/api/v1/leader/pickups", "POST")
STAFF_ORDERS = ("/api/v1/merchant/orders", "GET")
EXPORT = ("/api/v1/merchant/orders/export.csv", "GET")
SHIP = ("/api/v1/merchant/orders/<int:order_id>/ship", "POST")
READY = ("/api/v1/merchant/orders/<int:order_id>/ready-for-pickup", "POST")
STAFF_PICKUP = ("/api/v1/merchant/orders/<int:order_id>/pickup", "POST")
STAFF_REFUNDS = ("/api/v1/merchant/refunds", "GET")
APPROVE = ("/api/v1/merchant/refunds/<int:refund_id>/approve", "POST")
REJECT = ("/api/v1/merchant/refunds/<int:refund_id>/reject", "POST")
STAFF_REFUND_ISSUE = ("/api/v1/merchant/orders/<int:order_id>/refunds", "POST")  # brief A: staff refunds
POINT_CREATE = ("/api/v1/merchant/pickup-points", "POST")
POINT_UPDATE = ("/api/v1/merchant/pickup-points/<int:point_id>", "PATCH")
SETTINGS = ("/api/v1/merchant/settings/orders", "PATCH")
FAKE_PAY = ("/api/v1/payments/fake/orders/<order_no>/pay", "POST")
NOTIFY = ("/api/v1/payments/wechatpay/<merchant_code>/notify", "POST")
REFUND_NOTIFY = ("/api/v1/payments/wechatpay/<merchant_code>/refund-notify", "POST")

KEY = {"Idempotency-Key": "invalid-input-0001"}
ADDRESS = order_body(1)["address"]


def _provider():
    return current_app.extensions[PROVIDER_EXTENSION]


def _merchant(w: World) -> Merchant:
    return db.session.execute(select(Merchant).where(Merchant.code == w.code)).scalar_one()


def _payment_notice(w: World, **changes: Any) -> dict[str, Any]:
    """A payment notification as WeChat Pay sends it (signed, resource encrypted) for the unpaid order."""
    notice = {
        "out_trade_no": w.orders.pending_order_no,
        "total": w.orders.pending_total,
        "openid": "o-payer",
        **changes,
    }
    headers, body = _provider().payment_notification(_merchant(w), **notice)
    return {"headers": headers, "data": body}


def _refund_notice(w: World, **changes: Any) -> dict[str, Any]:
    """A refund notification as WeChat Pay sends it, for the processing refund."""
    notice = {
        "out_trade_no": w.orders.refunding_order_no,
        "out_refund_no": w.orders.out_refund_no,
        "refund": w.orders.refund_amount,
        "total": w.orders.refunding_total,
        **changes,
    }
    headers, body = _provider().refund_notification(_merchant(w), **notice)
    return {"headers": headers, "data": body}


ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    WX_LOGIN: Endpoint(
        lambda w: f"{PREFIX}/auth/wx-login",
        None,
        "json",
        lambda w: {"merchant": w.code, "code": "test:newcomer"},
        text_field="code",
    ),
    STAFF_LOGIN: Endpoint(
        lambda w: f"{PREFIX}/merchant/auth/login",
        None,
        "json",
        lambda w: {"merchant": w.code, "username": "owner", "password": PASSWORD},
        text_field="username",
    ),
    ME: Endpoint(
        lambda w: f"{PREFIX}/me",
        "member",
        "json",
        lambda w: {"nickname": "小王", "avatar_url": "https://img.example.com/a.jpg"},
        text_field="nickname",
    ),
    STAFF_CREATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/staff",
        "staff",
        "json",
        lambda w: {"username": "packer", "password": "long-enough-pass", "role": "operator", "display_name": "P"},
        ok=201,
        text_field="display_name",
    ),
    STAFF_UPDATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/staff/{w.operator_id}",
        "staff",
        "json",
        lambda w: {"role": "finance", "active": False, "password": "another-long-pass", "display_name": "F"},
        text_field="display_name",
    ),
    CATEGORY_CREATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/categories",
        "staff",
        "json",
        lambda w: {"name": "Apples", "parent_id": w.top_category_id, "sort_order": 3},
        ok=201,
        text_field="name",
    ),
    CATEGORY_UPDATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/categories/{w.top_category_id}",
        "staff",
        "json",
        lambda w: {"name": "Fresh fruit", "sort_order": 2},
        text_field="name",
    ),
    PRODUCT_CREATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/products",
        "staff",
        "json",
        lambda w: {
            "title": "Mango",
            "description": "sweet",
            "images": ["https://img.example.com/m.jpg"],
            "category_id": w.sub_category_id,
            "skus": [
                {"specs": {"规格": "3斤"}, "code": "MG3", "price": 2990, "market_price": 3990, "stock": 10},
                {"specs": {"规格": "5斤"}, "code": "MG5", "price": 4590, "stock": 0},
            ],
        },
        ok=201,
        text_field="title",
    ),
    PRODUCT_UPDATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/products/{w.product_id}",
        "staff",
        "json",
        lambda w: {
            "title": "Blood orange",
            "images": ["https://img.example.com/b.jpg"],
            "category_id": w.top_category_id,
            "skus": [
                {"id": w.sku_id, "price": 4190},
                {"id": w.second_sku_id},
                {"specs": {"规格": "20斤"}, "price": 12990, "stock": 5},
            ],
        },
        text_field="description",
    ),
    SHELF: Endpoint(
        lambda w: f"{PREFIX}/merchant/products/{w.product_id}/shelf",
        "staff",
        "json",
        lambda w: {"on_shelf": False},
    ),
    STOCK_ADJUST: Endpoint(
        lambda w: f"{PREFIX}/merchant/skus/{w.sku_id}/stock-adjustments",
        "staff",
        "json",
        lambda w: {"delta": 5, "reason": "restock", "note": "second batch"},
        ok=201,
        text_field="note",
    ),
    MEMBER_PRODUCTS: Endpoint(
        lambda w: f"{PREFIX}/products",
        "member",
        "query",
        lambda w: {"sort": "price_asc", "limit": 10, "category_id": w.top_category_id, "q": "Orange"},
        text_field="q",
    ),
    STAFF_PRODUCTS: Endpoint(
        lambda w: f"{PREFIX}/merchant/products",
        "staff",
        "query",
        lambda w: {"status": "on_shelf", "limit": 10, "category_id": w.top_category_id, "q": "Orange"},
        text_field="q",
    ),
    STOCK_MOVEMENTS: Endpoint(
        lambda w: f"{PREFIX}/merchant/skus/{w.sku_id}/stock-movements",
        "staff",
        "query",
        lambda w: {"limit": 10},
        text_field="cursor",
    ),
    CART_ADD: Endpoint(
        lambda w: f"{PREFIX}/cart/items",
        "member",
        "json",
        lambda w: {"sku_id": w.sku_id, "quantity": 2},
    ),
    CART_SET: Endpoint(
        lambda w: f"{PREFIX}/cart/items/{w.sku_id}",
        "member",
        "json",
        lambda w: {"quantity": 3},
    ),
    QUOTE: Endpoint(
        lambda w: f"{PREFIX}/checkout/quote",
        "member",
        "json",
        lambda w: {
            "items": [{"sku_id": w.sku_id, "quantity": 2}, {"sku_id": w.second_sku_id, "quantity": 1}],
            "fulfilment": "pickup",
            "pickup_point_id": w.pickup_point_id,
        },
    ),
    ORDER_CREATE: Endpoint(
        lambda w: f"{PREFIX}/orders",
        "member",
        "json",
        lambda w: order_body(w.sku_id, 2, remark="放门口"),
        ok=201,
        text_field="remark",
        extra_headers=KEY,
    ),
    MEMBER_ORDERS: Endpoint(
        lambda w: f"{PREFIX}/orders",
        "member",
        "query",
        lambda w: {"status": "pending_payment", "limit": 10},
        text_field="cursor",
    ),
    CANCEL: Endpoint(
        lambda w: f"{PREFIX}/orders/{w.orders.pending_order_id}/cancel",
        "member",
        "json",
        lambda w: {},
        orders=("pending",),
    ),
    PAY: Endpoint(
        lambda w: f"{PREFIX}/orders/{w.orders.pending_order_id}/pay",
        "member",
        "json",
        lambda w: {},
        orders=("pending",),
    ),
    CONFIRM: Endpoint(
        lambda w: f"{PREFIX}/orders/{w.orders.shipped_order_id}/confirm-receipt",
        "member",
        "json",
        lambda w: {},
        orders=("shipped",),
    ),
    REFUND_REQUEST: Endpoint(
        lambda w: f"{PREFIX}/orders/{w.orders.paid_order_id}/refunds",
        "member",
        "json",
        lambda w: {"lines": [{"line_id": w.orders.paid_line_id, "quantity": 1}], "reason": "坏了一个"},
        ok=201,
        text_field="reason",
        orders=("paid", "pending"),
    ),
    LEADER_PICKUP: Endpoint(
        lambda w: f"{PREFIX}/leader/pickups",
        "member",
        "json",
        lambda w: {"code": w.orders.pickup_code},
        orders=("ready",),
    ),
    STAFF_ORDERS: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders",
        "staff",
        "query",
        lambda w: {
            "status": "paid",
            "limit": 10,
            "q": "2",  # order numbers start with the year
            "created_from": "2020-01-01T00:00:00+08:00",
            "created_to": "2999-01-01T00:00:00+08:00",
        },
        text_field="q",
    ),
    EXPORT: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders/export.csv",
        "staff",
        "query",
        lambda w: {"status": "paid", "created_from": "2020-01-01T00:00:00+08:00", "created_to": "2999-01-01T00:00:00Z"},
    ),
    SHIP: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_order_id}/ship",
        "staff",
        "json",
        lambda w: {"carrier": "顺丰", "tracking_no": "SF1234567890"},
        text_field="carrier",
        orders=("paid",),
    ),
    READY: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_pickup_order_id}/ready-for-pickup",
        "staff",
        "json",
        lambda w: {},
        orders=("paid_pickup",),
    ),
    STAFF_PICKUP: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders/{w.orders.ready_order_id}/pickup",
        "staff",
        "json",
        lambda w: {"code": w.orders.pickup_code},
        orders=("ready",),
    ),
    STAFF_REFUNDS: Endpoint(
        lambda w: f"{PREFIX}/merchant/refunds",
        "staff",
        "query",
        lambda w: {"status": "requested"},
    ),
    APPROVE: Endpoint(
        lambda w: f"{PREFIX}/merchant/refunds/{w.orders.refund_id}/approve",
        "staff",
        "json",
        lambda w: {},
        orders=("refund_requested",),
    ),
    REJECT: Endpoint(
        lambda w: f"{PREFIX}/merchant/refunds/{w.orders.refund_id}/reject",
        "staff",
        "json",
        lambda w: {"reason": "商品已发出"},
        text_field="reason",
        orders=("refund_requested",),
    ),
    POINT_CREATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/pickup-points",
        "staff",
        "json",
        lambda w: {**POINT, "name": "阳光花园", "leader_member_id": w.member_id},
        ok=201,
        text_field="name",
    ),
    POINT_UPDATE: Endpoint(
        lambda w: f"{PREFIX}/merchant/pickup-points/{w.pickup_point_id}",
        "staff",
        "json",
        lambda w: {
            "name": "幸福小区东门",
            "contact_phone": "+86 138-0013-8000",
            "active": False,
            "leader_member_id": None,
        },
        text_field="address",
    ),
    SETTINGS: Endpoint(
        lambda w: f"{PREFIX}/merchant/settings/orders",
        "staff",
        "json",
        lambda w: {
            "shipping_fee": 600,
            "free_shipping_over": None,
            "order_ttl_minutes": 15,
            "auto_confirm_days": 10,
            "after_sales_days": 3,
        },
    ),
    FAKE_PAY: Endpoint(
        lambda w: f"{PREFIX}/payments/fake/orders/{w.orders.pending_order_no}/pay",
        None,
        "json",
        lambda w: {},
        orders=("pending",),
    ),
    NOTIFY: Endpoint(
        lambda w: f"{PREFIX}/payments/wechatpay/{w.code}/notify",
        None,
        RAW,
        _payment_notice,
        ok=204,
        orders=("pending",),
    ),
    REFUND_NOTIFY: Endpoint(
        lambda w: f"{PREFIX}/payments/wechatpay/{w.code}/refund-notify",
        None,
        RAW,
        _refund_notice,
        ok=204,
        orders=("refund_processing",),
    ),
    # --- staff and system refunds (brief A, issue 12 item 8): more in tests/api/test_staff_refunds.py
    STAFF_REFUND_ISSUE: Endpoint(
        lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_order_id}/refunds",
        "staff",
        "json",
        lambda w: {"lines": [{"line_id": w.orders.paid_line_id, "quantity": 1}], "reason": "少发了一个"},
        ok=201,
        text_field="reason",
        orders=("paid",),
    ),
    # --- end of staff and system refunds
    # --- invites (brief C): opening an invite code, the member's invitees -------------------------
    ("/api/v1/invites/<code>/open", "POST"): Endpoint(
        # the member's own code: a valid request, answered 200 recorded false (self_invite)
        lambda w: f"{PREFIX}/invites/{db.session.get(Member, w.member_id).invite_code}/open",
        "member",
        "json",
        lambda w: {"channel": "qrcode"},
    ),
    ("/api/v1/me/invites", "GET"): Endpoint(
        lambda w: f"{PREFIX}/me/invites",
        "member",
        "query",
        lambda w: {"limit": 10},
        text_field="cursor",
    ),
    # --- end of invites (brief C) ------------------------------------------------------------------
}


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
    endpoint = ENDPOINTS[key]
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


@pytest.mark.parametrize("key", list(ENDPOINTS), ids=" ".join)
def test_the_valid_request_of_each_endpoint_succeeds(client, world, key):
    """The control: each case below breaks one thing of a request that works."""
    response = _send(client, key, world, ENDPOINTS[key].valid(world))
    assert response.status_code == ENDPOINTS[key].ok, response.json


# --- the cases ------------------------------------------------------------------------------------


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


def with_notice(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    """A genuine payment notification, with what WeChat Pay says in it changed."""
    return lambda w, valid: _payment_notice(w, **changes)


def with_refund_notice(**changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: _refund_notice(w, **changes)


def tampered(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """The signed body, changed after it was signed (one space where none was)."""
    return {**valid, "data": valid["data"].replace('"event_type"', '"event_type" ', 1)}


def unsigned(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    return {**valid, "headers": {k: v for k, v in valid["headers"].items() if k != "Wechatpay-Signature"}}


def stale(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    return {**valid, "headers": _provider().sign(valid["data"], timestamp=int(time.time()) - 301)}


def signed_text(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """Genuinely signed, but not a notification at all."""
    return {"headers": _provider().sign("not json"), "data": "not json"}


def another_code(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """A well-formed pickup code that no order waiting at the member's point has."""
    return {**valid, "code": f"{(int(w.orders.pickup_code) + 1) % 10**8:08d}"}


UNKNOWN = "Unknown field."
NOT_INT = "Not a valid integer."
NEW_SKU = {"specs": {"规格": "1斤"}, "price": 990}
FORGED = "this-is-not-a-cursor!"
REQUIRED = "Missing data for required field."
NOT_NULL = "Field may not be null."
NOT_STRING = "Not a valid string."
NOT_BOOL = "Not a valid boolean."
NOT_DATETIME = "Not a valid datetime."
BAD_PATTERN = "String does not match expected pattern."
EIGHT_DIGITS = "8 digits"
ITEMS_OR_CART = "send items (buy now) or from_cart: true, not both"
KEY_HEADER = ("Idempotency-Key",)

CASES: list[Bad] = [
    # members log in
    Bad(WX_LOGIN, "no merchant", without("merchant"), ("merchant",), "Missing data for required field."),
    Bad(WX_LOGIN, "no code", without("code"), ("code",), "Missing data for required field."),
    Bad(WX_LOGIN, "merchant is a number", with_(merchant=7), ("merchant",), "Not a valid string."),
    Bad(WX_LOGIN, "empty code", with_(code=""), ("code",)),
    Bad(WX_LOGIN, "code too long", with_(code="test:" + "x" * 124), ("code",)),
    Bad(WX_LOGIN, "openid is the server's", with_(openid="o-forged"), ("openid",), UNKNOWN),
    Bad(WX_LOGIN, "a member cannot pick a price", with_(price=1), ("price",), UNKNOWN),
    Bad(WX_LOGIN, "a code WeChat refuses", with_(code="not-a-wx-code"), ("code",), code="wechat_code_invalid"),
    Bad(WX_LOGIN, "unknown merchant", with_(merchant="nobody"), ("merchant",), code="not_found", status=404),
    # staff log in
    Bad(STAFF_LOGIN, "no password", without("password"), ("password",), "Missing data for required field."),
    Bad(STAFF_LOGIN, "password is a number", with_(password=12345678), ("password",), "Not a valid string."),
    Bad(STAFF_LOGIN, "username too long", with_(username="o" * 65), ("username",)),
    Bad(STAFF_LOGIN, "a role cannot be asked for", with_(role="owner"), ("role",), UNKNOWN),
    # the member's profile
    Bad(ME, "nickname too long", with_(nickname="名" * 65), ("nickname",)),
    Bad(ME, "nickname is a number", with_(nickname=42), ("nickname",), "Not a valid string."),
    Bad(ME, "nickname is null", with_(nickname=None), ("nickname",), "Field may not be null."),
    Bad(ME, "avatar is not a URL", with_(avatar_url="not a url"), ("avatar_url",), "Not a valid URL."),
    Bad(ME, "avatar is not http(s)", with_(avatar_url="javascript:alert(1)"), ("avatar_url",), "Not a valid URL."),
    Bad(ME, "avatar URL too long", with_(avatar_url="https://img.example.com/" + "a" * 500), ("avatar_url",)),
    Bad(ME, "the merchant is the token's", with_(merchant="other"), ("merchant",), UNKNOWN),
    Bad(ME, "the openid is WeChat's", with_(openid="o-forged"), ("openid",), UNKNOWN),
    Bad(ME, "the id is the token's", with_(id=1), ("id",), UNKNOWN),
    Bad(ME, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
    # staff accounts
    Bad(STAFF_CREATE, "no role", without("role"), ("role",), "Missing data for required field."),
    Bad(STAFF_CREATE, "no password", without("password"), ("password",), "Missing data for required field."),
    Bad(STAFF_CREATE, "unknown role", with_(role="admin"), ("role",)),
    Bad(STAFF_CREATE, "username too short", with_(username="ab"), ("username",)),
    Bad(STAFF_CREATE, "username with spaces", with_(username="bad name"), ("username",)),
    Bad(STAFF_CREATE, "password too short", with_(password="short"), ("password",)),
    Bad(STAFF_CREATE, "display name too long", with_(display_name="x" * 65), ("display_name",)),
    Bad(STAFF_CREATE, "active is not for creating", with_(active=False), ("active",), UNKNOWN),
    Bad(STAFF_CREATE, "username taken", with_(username="owner"), ("username",), code="username_taken", status=409),
    Bad(STAFF_UPDATE, "unknown role", with_(role="boss"), ("role",)),
    Bad(STAFF_UPDATE, "active is not a boolean", with_(active="maybe"), ("active",), "Not a valid boolean."),
    Bad(STAFF_UPDATE, "password too short", with_(password="1234567"), ("password",)),
    Bad(STAFF_UPDATE, "username cannot change", with_(username="renamed"), ("username",), UNKNOWN),
    Bad(STAFF_UPDATE, "display name is null", with_(display_name=None), ("display_name",)),
    # categories
    Bad(CATEGORY_CREATE, "no name", without("name"), ("name",), "Missing data for required field."),
    Bad(CATEGORY_CREATE, "empty name", with_(name=""), ("name",)),
    Bad(CATEGORY_CREATE, "name too long", with_(name="x" * 33), ("name",)),
    Bad(CATEGORY_CREATE, "parent id is a string", with_(parent_id="1"), ("parent_id",), NOT_INT),
    Bad(CATEGORY_CREATE, "parent id is a float", with_(parent_id=1.5), ("parent_id",), NOT_INT),
    Bad(CATEGORY_CREATE, "parent id is a boolean", with_(parent_id=True), ("parent_id",), NOT_INT),
    Bad(CATEGORY_CREATE, "parent id 0", with_(parent_id=0), ("parent_id",)),
    Bad(CATEGORY_CREATE, "parent id past bigint", with_(parent_id=MAX_ID + 1), ("parent_id",)),
    Bad(CATEGORY_CREATE, "sort order too large", with_(sort_order=10_001), ("sort_order",)),
    Bad(CATEGORY_CREATE, "sort order is a string", with_(sort_order="1"), ("sort_order",), NOT_INT),
    Bad(
        CATEGORY_CREATE,
        "a sub-category under a sub-category",
        lambda w, valid: {**valid, "parent_id": w.sub_category_id},
        ("parent_id",),
        code="invalid_input",
    ),
    Bad(
        CATEGORY_CREATE,
        "parent of another merchant",
        lambda w, valid: {**valid, "parent_id": w.other_category_id},
        ("parent_id",),
        code="category_not_found",
    ),
    Bad(
        CATEGORY_CREATE,
        "parent that does not exist",
        with_(parent_id=MISSING_ID),
        ("parent_id",),
        code="category_not_found",
    ),
    Bad(CATEGORY_UPDATE, "empty name", with_(name=""), ("name",)),
    Bad(CATEGORY_UPDATE, "sort order is a float", with_(sort_order=2.5), ("sort_order",), NOT_INT),
    Bad(CATEGORY_UPDATE, "categories do not move", with_(parent_id=1), ("parent_id",), UNKNOWN),
    # products: create
    Bad(PRODUCT_CREATE, "no title", without("title"), ("title",), "Missing data for required field."),
    Bad(PRODUCT_CREATE, "no SKUs", without("skus"), ("skus",), "Missing data for required field."),
    Bad(PRODUCT_CREATE, "an empty list of SKUs", with_(skus=[]), ("skus",)),
    Bad(
        PRODUCT_CREATE,
        "201 SKUs",
        skus(lambda w: [{"specs": {"n": str(i)}, "price": 1} for i in range(201)]),
        ("skus",),
    ),
    Bad(PRODUCT_CREATE, "title too long", with_(title="x" * 121), ("title",)),
    Bad(PRODUCT_CREATE, "description too long", with_(description="x" * 20001), ("description",)),
    Bad(PRODUCT_CREATE, "price is a string", with_sku(0, price="2990"), ("skus", "0", "price"), NOT_INT),
    Bad(PRODUCT_CREATE, "price is a float", with_sku(0, price=29.9), ("skus", "0", "price"), NOT_INT),
    Bad(PRODUCT_CREATE, "price is a whole float", with_sku(0, price=2990.0), ("skus", "0", "price"), NOT_INT),
    Bad(PRODUCT_CREATE, "price is a boolean", with_sku(0, price=True), ("skus", "0", "price"), NOT_INT),
    Bad(PRODUCT_CREATE, "negative price", with_sku(0, price=-1), ("skus", "0", "price")),
    Bad(PRODUCT_CREATE, "price past the maximum", with_sku(1, price=MAX_FEN + 1), ("skus", "1", "price")),
    Bad(PRODUCT_CREATE, "negative market price", with_sku(0, market_price=-5), ("skus", "0", "market_price")),
    Bad(PRODUCT_CREATE, "a new SKU without a price", with_sku(1, price=DROP), ("skus", "1", "price")),
    Bad(PRODUCT_CREATE, "price is null", with_sku(1, price=None), ("skus", "1", "price"), "Field may not be null."),
    Bad(PRODUCT_CREATE, "negative stock", with_sku(0, stock=-1), ("skus", "0", "stock")),
    Bad(PRODUCT_CREATE, "stock past the maximum", with_sku(0, stock=10_000_001), ("skus", "0", "stock")),
    Bad(PRODUCT_CREATE, "stock is a string", with_sku(0, stock="10"), ("skus", "0", "stock"), NOT_INT),
    Bad(PRODUCT_CREATE, "a SKU is not an object", skus(lambda w: [5]), ("skus", "0", "_schema")),
    Bad(
        PRODUCT_CREATE,
        "four spec names",
        with_sku(0, specs={"a": "1", "b": "2", "c": "3", "d": "4"}),
        ("skus", "0", "specs"),
    ),
    Bad(PRODUCT_CREATE, "spec value too long", with_sku(0, specs={"规格": "x" * 33}), ("skus", "0", "specs")),
    Bad(PRODUCT_CREATE, "spec value is a number", with_sku(0, specs={"规格": 3}), ("skus", "0", "specs")),
    Bad(PRODUCT_CREATE, "SKU code too long", with_sku(0, code="x" * 65), ("skus", "0", "code")),
    Bad(PRODUCT_CREATE, "a new product's SKU with an id", with_sku(0, id=1), ("skus",)),
    Bad(PRODUCT_CREATE, "a SKU's sales are the server's", with_sku(0, sales=100), ("skus", "0", "sales"), UNKNOWN),
    Bad(
        PRODUCT_CREATE,
        "a SKU's active flag is the server's",
        with_sku(0, active=False),
        ("skus", "0", "active"),
        UNKNOWN,
    ),
    Bad(
        PRODUCT_CREATE,
        "SKUs naming different specs",
        with_sku(1, specs={"颜色": "红"}),
        ("skus",),
        "every SKU of a product must name the same specs",
        code="invalid_input",
    ),
    Bad(
        PRODUCT_CREATE,
        "two SKUs with the same specs",
        with_sku(1, specs={"规格": "3斤"}),
        ("skus",),
        "two SKUs have the same spec values",
        code="invalid_input",
    ),
    Bad(
        PRODUCT_CREATE, "ten images", with_(images=[f"https://img.example.com/{i}.jpg" for i in range(10)]), ("images",)
    ),
    Bad(PRODUCT_CREATE, "an image that is not a URL", with_(images=["not a url"]), ("images", "0")),
    Bad(PRODUCT_CREATE, "an image that is not http(s)", with_(images=["ftp://img.example.com/a.jpg"]), ("images", "0")),
    Bad(PRODUCT_CREATE, "images is a string", with_(images="https://img.example.com/a.jpg"), ("images",)),
    Bad(PRODUCT_CREATE, "category id is a string", with_(category_id="2"), ("category_id",), NOT_INT),
    Bad(PRODUCT_CREATE, "category id past bigint", with_(category_id=MAX_ID + 1), ("category_id",)),
    Bad(
        PRODUCT_CREATE,
        "category of another merchant",
        lambda w, valid: {**valid, "category_id": w.other_category_id},
        ("category_id",),
        code="category_not_found",
    ),
    Bad(PRODUCT_CREATE, "status is the server's", with_(status="on_shelf"), ("status",), UNKNOWN),
    Bad(PRODUCT_CREATE, "merchant is the token's", with_(merchant_id=1), ("merchant_id",), UNKNOWN),
    Bad(PRODUCT_CREATE, "sales are the server's", with_(sales=9999), ("sales",), UNKNOWN),
    Bad(PRODUCT_CREATE, "the price range is the SKUs'", with_(price_min=1), ("price_min",), UNKNOWN),
    Bad(PRODUCT_CREATE, "a product has no price of its own", with_(price=1), ("price",), UNKNOWN),
    Bad(PRODUCT_CREATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
    # products: update
    Bad(PRODUCT_UPDATE, "empty title", with_(title=""), ("title",)),
    Bad(PRODUCT_UPDATE, "an empty list of SKUs", with_(skus=[]), ("skus",)),
    Bad(PRODUCT_UPDATE, "price is a string", with_sku(0, price="4190"), ("skus", "0", "price"), NOT_INT),
    Bad(PRODUCT_UPDATE, "a SKU id is a string", with_sku(0, id="1"), ("skus", "0", "id"), NOT_INT),
    Bad(PRODUCT_UPDATE, "a SKU id past bigint", with_sku(0, id=MAX_ID + 1), ("skus", "0", "id")),
    Bad(
        PRODUCT_UPDATE,
        "stock set on a SKU",
        with_sku(0, stock=999),
        ("skus", "0", "stock"),
        "use the stock adjustment endpoint",
        code="stock_not_editable",
    ),
    Bad(
        PRODUCT_UPDATE,
        "the same SKU twice",
        skus(lambda w: [{"id": w.sku_id, "price": 1}, {"id": w.sku_id, "price": 2}]),
        ("skus", "1", "id"),
        code="duplicate_sku",
    ),
    Bad(
        PRODUCT_UPDATE,
        "a SKU that does not exist",
        with_sku(0, id=MISSING_ID),
        ("skus", "0", "id"),
        code="sku_not_found",
    ),
    Bad(
        PRODUCT_UPDATE,
        "a new SKU naming other specs",
        with_sku(2, specs={"颜色": "红"}),
        ("skus",),
        "every SKU of a product must name the same specs",
        code="invalid_input",
    ),
    Bad(
        PRODUCT_UPDATE,
        "a new SKU without a price",
        with_sku(2, price=DROP),
        ("skus", "2", "price"),
        "a new SKU needs a price",
    ),
    Bad(
        PRODUCT_UPDATE,
        "category of another merchant",
        lambda w, valid: {**valid, "category_id": w.other_category_id},
        ("category_id",),
        code="category_not_found",
    ),
    Bad(PRODUCT_UPDATE, "an image that is not a URL", with_(images=["nope"]), ("images", "0")),
    Bad(PRODUCT_UPDATE, "status is the shelf endpoint's", with_(status="on_shelf"), ("status",), UNKNOWN),
    Bad(PRODUCT_UPDATE, "merchant is the token's", with_(merchant_id=1), ("merchant_id",), UNKNOWN),
    Bad(PRODUCT_UPDATE, "sales are the server's", with_(sales=9999), ("sales",), UNKNOWN),
    Bad(PRODUCT_UPDATE, "the price range is the SKUs'", with_(price_min=1), ("price_min",), UNKNOWN),
    Bad(PRODUCT_UPDATE, "a product has no price of its own", with_(price=1), ("price",), UNKNOWN),
    Bad(PRODUCT_UPDATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
    # the shelf
    Bad(SHELF, "no on_shelf", without("on_shelf"), ("on_shelf",), "Missing data for required field."),
    Bad(SHELF, "on_shelf is not a boolean", with_(on_shelf="maybe"), ("on_shelf",), "Not a valid boolean."),
    Bad(SHELF, "on_shelf is null", with_(on_shelf=None), ("on_shelf",)),
    Bad(SHELF, "status is not settable", with_(status="on_shelf"), ("status",), UNKNOWN),
    # stock
    Bad(STOCK_ADJUST, "no delta", without("delta"), ("delta",), "Missing data for required field."),
    Bad(STOCK_ADJUST, "delta 0", with_(delta=0), ("delta",), "must not be 0"),
    Bad(STOCK_ADJUST, "delta is a string", with_(delta="5"), ("delta",), NOT_INT),
    Bad(STOCK_ADJUST, "delta is a float", with_(delta=1.5), ("delta",), NOT_INT),
    Bad(STOCK_ADJUST, "delta is a boolean", with_(delta=True), ("delta",), NOT_INT),
    Bad(STOCK_ADJUST, "delta too large", with_(delta=10_000_001), ("delta",)),
    Bad(STOCK_ADJUST, "delta too small", with_(delta=-10_000_001), ("delta",)),
    Bad(STOCK_ADJUST, "no reason", without("reason"), ("reason",), "Missing data for required field."),
    Bad(STOCK_ADJUST, "unknown reason", with_(reason="theft"), ("reason",)),
    Bad(STOCK_ADJUST, "note too long", with_(note="x" * 201), ("note",)),
    Bad(STOCK_ADJUST, "the stock after is the server's", with_(stock_after=1), ("stock_after",), UNKNOWN),
    Bad(STOCK_ADJUST, "the staff is the token's", with_(staff_id=1), ("staff_id",), UNKNOWN),
    # the member product list
    Bad(MEMBER_PRODUCTS, "limit 0", with_(limit=0), ("limit",)),
    Bad(MEMBER_PRODUCTS, "limit 500", with_(limit=500), ("limit",)),
    Bad(MEMBER_PRODUCTS, "limit is a word", with_(limit="ten"), ("limit",), NOT_INT),
    Bad(MEMBER_PRODUCTS, "limit is a fraction", with_(limit="1.5"), ("limit",), NOT_INT),
    Bad(MEMBER_PRODUCTS, "unknown sort", with_(sort="cheapest"), ("sort",)),
    Bad(MEMBER_PRODUCTS, "category id 0", with_(category_id=0), ("category_id",)),
    Bad(MEMBER_PRODUCTS, "category id is a word", with_(category_id="fruit"), ("category_id",), NOT_INT),
    Bad(MEMBER_PRODUCTS, "category id past bigint", with_(category_id=MAX_ID + 1), ("category_id",)),
    Bad(MEMBER_PRODUCTS, "empty search", with_(q=""), ("q",)),
    Bad(MEMBER_PRODUCTS, "search too long", with_(q="x" * 51), ("q",)),
    Bad(MEMBER_PRODUCTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(MEMBER_PRODUCTS, "a cursor too long", with_(cursor="A" * 201), ("cursor",)),
    Bad(
        MEMBER_PRODUCTS,
        "a cursor of another sort",
        with_(cursor=cursor_of([5])),
        ("cursor",),
        code="invalid_cursor",
    ),
    Bad(
        MEMBER_PRODUCTS,
        "a cursor of booleans",
        with_(cursor=cursor_of([True, 1])),
        ("cursor",),
        code="invalid_cursor",
    ),
    Bad(
        MEMBER_PRODUCTS,
        "a cursor past bigint",
        with_(cursor=cursor_of([2**64, 1])),
        ("cursor",),
        code="invalid_cursor",
    ),
    Bad(
        MEMBER_PRODUCTS,
        "a cursor of strings",
        with_(cursor=cursor_of(["1990", "3"])),
        ("cursor",),
        code="invalid_cursor",
    ),
    # the staff product list
    Bad(STAFF_PRODUCTS, "unknown status", with_(status="deleted"), ("status",)),
    Bad(STAFF_PRODUCTS, "limit 0", with_(limit=0), ("limit",)),
    Bad(STAFF_PRODUCTS, "limit 500", with_(limit=500), ("limit",)),
    Bad(STAFF_PRODUCTS, "category id is a word", with_(category_id="x"), ("category_id",), NOT_INT),
    Bad(STAFF_PRODUCTS, "empty search", with_(q=""), ("q",)),
    Bad(STAFF_PRODUCTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(STAFF_PRODUCTS, "a cursor of a boolean", with_(cursor=cursor_of([True])), ("cursor",), code="invalid_cursor"),
    Bad(STAFF_PRODUCTS, "a cursor past bigint", with_(cursor=cursor_of([2**63])), ("cursor",), code="invalid_cursor"),
    # stock movements
    Bad(STOCK_MOVEMENTS, "limit 0", with_(limit=0), ("limit",)),
    Bad(STOCK_MOVEMENTS, "limit 500", with_(limit=500), ("limit",)),
    Bad(STOCK_MOVEMENTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(
        STOCK_MOVEMENTS, "a cursor of an object", with_(cursor=cursor_of({"id": 1})), ("cursor",), code="invalid_cursor"
    ),
    Bad(STOCK_MOVEMENTS, "a cursor past bigint", with_(cursor=cursor_of([2**70])), ("cursor",), code="invalid_cursor"),
    # the cart
    Bad(CART_ADD, "no SKU", without("sku_id"), ("sku_id",), REQUIRED),
    Bad(CART_ADD, "no quantity", without("quantity"), ("quantity",), REQUIRED),
    Bad(CART_ADD, "quantity 0", with_(quantity=0), ("quantity",)),
    Bad(CART_ADD, "quantity 1000", with_(quantity=1000), ("quantity",)),
    Bad(CART_ADD, "quantity is a string", with_(quantity="2"), ("quantity",), NOT_INT),
    Bad(CART_ADD, "quantity is a float", with_(quantity=1.5), ("quantity",), NOT_INT),
    Bad(CART_ADD, "quantity is a whole float", with_(quantity=2.0), ("quantity",), NOT_INT),
    Bad(CART_ADD, "quantity is a boolean", with_(quantity=True), ("quantity",), NOT_INT),
    Bad(CART_ADD, "quantity is null", with_(quantity=None), ("quantity",), NOT_NULL),
    Bad(CART_ADD, "SKU id is a string", with_(sku_id="1"), ("sku_id",), NOT_INT),
    Bad(CART_ADD, "SKU id is a boolean", with_(sku_id=True), ("sku_id",), NOT_INT),
    Bad(CART_ADD, "SKU id 0", with_(sku_id=0), ("sku_id",)),
    Bad(CART_ADD, "SKU id past bigint", with_(sku_id=MAX_ID + 1), ("sku_id",)),
    Bad(CART_ADD, "a member cannot set the price", with_(price=1), ("price",), UNKNOWN),
    Bad(CART_ADD, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
    Bad(CART_ADD, "a SKU no shop has", with_(sku_id=MISSING_ID), ("sku_id",), code="not_found", status=404),
    Bad(
        CART_ADD,
        "a SKU of another merchant",
        lambda w, valid: {**valid, "sku_id": w.other_sku_id},
        ("sku_id",),
        code="not_found",
        status=404,
    ),
    Bad(
        CART_ADD,
        "more than 999 of one SKU in the cart",
        with_(quantity=998),  # the member has 2 of it already
        ("quantity",),
        code="cart_quantity_limit",
    ),
    Bad(CART_SET, "no quantity", without("quantity"), ("quantity",), REQUIRED),
    Bad(CART_SET, "quantity -1", with_(quantity=-1), ("quantity",)),
    Bad(CART_SET, "quantity 1000", with_(quantity=1000), ("quantity",)),
    Bad(CART_SET, "quantity is a string", with_(quantity="3"), ("quantity",), NOT_INT),
    Bad(CART_SET, "quantity is a float", with_(quantity=2.5), ("quantity",), NOT_INT),
    Bad(CART_SET, "quantity is a boolean", with_(quantity=False), ("quantity",), NOT_INT),
    Bad(CART_SET, "quantity is null", with_(quantity=None), ("quantity",), NOT_NULL),
    Bad(CART_SET, "the SKU is the path's", with_(sku_id=1), ("sku_id",), UNKNOWN),
    Bad(CART_SET, "a member cannot set the price", with_(unit_price=1), ("unit_price",), UNKNOWN),
    # the checkout quote
    Bad(QUOTE, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
    Bad(QUOTE, "unknown fulfilment", with_(fulfilment="express"), ("fulfilment",)),
    Bad(QUOTE, "neither items nor the cart", without("items"), ("items",), ITEMS_OR_CART),
    Bad(QUOTE, "both items and the cart", with_(from_cart=True), ("items",), ITEMS_OR_CART),
    Bad(QUOTE, "from_cart is not a boolean", with_(from_cart="please"), ("from_cart",), NOT_BOOL),
    Bad(QUOTE, "an empty list of items", with_(items=[]), ("items",)),
    Bad(QUOTE, "51 items", lambda w, valid: {**valid, "items": [{"sku_id": w.sku_id, "quantity": 1}] * 51}, ("items",)),
    Bad(QUOTE, "an item is not an object", with_(items=[5]), ("items", "0", "_schema")),
    Bad(QUOTE, "quantity 0", with_item(0, quantity=0), ("items", "0", "quantity")),
    Bad(QUOTE, "quantity 1000", with_item(1, quantity=1000), ("items", "1", "quantity")),
    Bad(QUOTE, "quantity is a string", with_item(0, quantity="2"), ("items", "0", "quantity"), NOT_INT),
    Bad(QUOTE, "quantity is a float", with_item(0, quantity=1.5), ("items", "0", "quantity"), NOT_INT),
    Bad(QUOTE, "quantity is a boolean", with_item(0, quantity=True), ("items", "0", "quantity"), NOT_INT),
    Bad(QUOTE, "an item without a SKU", with_item(0, sku_id=DROP), ("items", "0", "sku_id"), REQUIRED),
    Bad(QUOTE, "a member cannot set a price", with_item(0, price=1), ("items", "0", "price"), UNKNOWN),
    Bad(QUOTE, "the totals are the server's", with_(payable_total=1), ("payable_total",), UNKNOWN),
    Bad(QUOTE, "a discount is not the member's to give", with_(discount_total=100), ("discount_total",), UNKNOWN),
    Bad(
        QUOTE,
        "pickup without a pickup point",
        without("pickup_point_id"),
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(
        QUOTE,
        "pickup at a closed pickup point",
        lambda w, valid: {**valid, "pickup_point_id": w.closed_pickup_point_id},
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(
        QUOTE,
        "pickup at another merchant's pickup point",
        lambda w, valid: {**valid, "pickup_point_id": w.other_pickup_point_id},
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(QUOTE, "pickup point id is a string", with_(pickup_point_id="1"), ("pickup_point_id",), NOT_INT),
    Bad(QUOTE, "pickup point id 0", with_(pickup_point_id=0), ("pickup_point_id",)),
    Bad(QUOTE, "pickup point id is null", with_(pickup_point_id=None), ("pickup_point_id",), NOT_NULL),
    Bad(QUOTE, "a SKU no shop has", with_item(0, sku_id=MISSING_ID), None, code="sku_not_found", status=404),
    # placing an order
    Bad(
        ORDER_CREATE,
        "no Idempotency-Key",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": None},
    ),
    Bad(
        ORDER_CREATE,
        "an empty Idempotency-Key",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": ""},
    ),
    Bad(
        ORDER_CREATE,
        "an Idempotency-Key too short",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": "1234567"},
    ),
    Bad(
        ORDER_CREATE,
        "an Idempotency-Key too long",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": "k" * 65},
    ),
    Bad(
        ORDER_CREATE,
        "an Idempotency-Key with spaces",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": "my order 1"},
    ),
    Bad(
        ORDER_CREATE,
        "an Idempotency-Key with a slash",
        lambda w, valid: valid,
        KEY_HEADER,
        code="idempotency_key_required",
        headers={"Idempotency-Key": "order/000001"},
    ),
    Bad(ORDER_CREATE, "the status is the server's", with_(status="paid"), ("status",), UNKNOWN),
    Bad(ORDER_CREATE, "the payable total is the server's", with_(payable_total=1), ("payable_total",), UNKNOWN),
    Bad(ORDER_CREATE, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
    Bad(ORDER_CREATE, "a member cannot set a line's price", with_item(0, price=1), ("items", "0", "price"), UNKNOWN),
    Bad(ORDER_CREATE, "the shipping fee is the server's", with_(shipping_fee=0), ("shipping_fee",), UNKNOWN),
    Bad(ORDER_CREATE, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
    Bad(ORDER_CREATE, "the order number is the server's", with_(order_no="1"), ("order_no",), UNKNOWN),
    Bad(ORDER_CREATE, "the pickup code is the server's", with_(pickup_code="12345678"), ("pickup_code",), UNKNOWN),
    Bad(ORDER_CREATE, "neither items nor the cart", without("items"), ("items",), ITEMS_OR_CART),
    Bad(ORDER_CREATE, "both items and the cart", with_(from_cart=True), ("items",), ITEMS_OR_CART),
    Bad(ORDER_CREATE, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
    Bad(ORDER_CREATE, "unknown fulfilment", with_(fulfilment="drone"), ("fulfilment",)),
    Bad(ORDER_CREATE, "quantity 0", with_item(0, quantity=0), ("items", "0", "quantity")),
    Bad(ORDER_CREATE, "quantity 1000", with_item(0, quantity=1000), ("items", "0", "quantity")),
    Bad(ORDER_CREATE, "quantity is a string", with_item(0, quantity="2"), ("items", "0", "quantity"), NOT_INT),
    Bad(ORDER_CREATE, "quantity is a float", with_item(0, quantity=2.5), ("items", "0", "quantity"), NOT_INT),
    Bad(ORDER_CREATE, "quantity is a boolean", with_item(0, quantity=True), ("items", "0", "quantity"), NOT_INT),
    Bad(ORDER_CREATE, "SKU id is a string", with_item(0, sku_id="1"), ("items", "0", "sku_id"), NOT_INT),
    Bad(ORDER_CREATE, "SKU id past bigint", with_item(0, sku_id=MAX_ID + 1), ("items", "0", "sku_id")),
    Bad(ORDER_CREATE, "a delivery without an address", without("address"), ("address",), code="address_required"),
    Bad(ORDER_CREATE, "the address is null", with_(address=None), ("address",), NOT_NULL),
    Bad(ORDER_CREATE, "the address is a string", with_(address="深圳南山"), ("address", "_schema")),
    Bad(ORDER_CREATE, "an address without a phone", with_address(phone=DROP), ("address", "phone"), REQUIRED),
    Bad(ORDER_CREATE, "an address without a name", with_address(name=DROP), ("address", "name"), REQUIRED),
    Bad(ORDER_CREATE, "a phone that is not one", with_address(phone="call me"), ("address", "phone")),
    Bad(ORDER_CREATE, "a phone with a newline after it", with_address(phone="13800138000\n"), ("address", "phone")),
    Bad(ORDER_CREATE, "a phone of 21 characters", with_address(phone="+" + "1" * 20), ("address", "phone")),
    Bad(ORDER_CREATE, "a name too long", with_address(name="王" * 33), ("address", "name")),
    Bad(ORDER_CREATE, "an empty detail", with_address(detail=""), ("address", "detail")),
    Bad(ORDER_CREATE, "an unknown address field", with_address(lat=22.5), ("address", "lat"), UNKNOWN),
    Bad(
        ORDER_CREATE,
        "the NUL character in the address",
        with_address(detail="1 号\x00"),
        ("address", "detail"),
        "must not contain the NUL character",
    ),
    Bad(ORDER_CREATE, "remark too long", with_(remark="x" * 201), ("remark",)),
    Bad(ORDER_CREATE, "remark is a number", with_(remark=5), ("remark",), NOT_STRING),
    Bad(
        ORDER_CREATE,
        "pickup without a pickup point",
        with_(fulfilment="pickup"),
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(
        ORDER_CREATE,
        "pickup at another merchant's pickup point",
        lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.other_pickup_point_id},
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(
        ORDER_CREATE,
        "pickup at a closed pickup point",
        lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.closed_pickup_point_id},
        ("pickup_point_id",),
        code="pickup_point_invalid",
    ),
    Bad(ORDER_CREATE, "a SKU no shop has", with_item(0, sku_id=MISSING_ID), None, code="sku_not_found", status=404),
    Bad(
        ORDER_CREATE,
        "a SKU of another merchant",
        lambda w, valid: {**valid, "items": [{"sku_id": w.other_sku_id, "quantity": 1}]},
        None,
        code="sku_not_found",
        status=404,
    ),
    Bad(
        ORDER_CREATE,
        "more than the stock",
        with_item(0, quantity=41),
        None,
        code="insufficient_stock",
        status=409,
    ),
    # the member's orders
    Bad(MEMBER_ORDERS, "unknown status", with_(status="lost"), ("status",)),
    Bad(MEMBER_ORDERS, "limit 0", with_(limit=0), ("limit",)),
    Bad(MEMBER_ORDERS, "limit 500", with_(limit=500), ("limit",)),
    Bad(MEMBER_ORDERS, "limit is a word", with_(limit="ten"), ("limit",), NOT_INT),
    Bad(MEMBER_ORDERS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(MEMBER_ORDERS, "a cursor of a boolean", with_(cursor=cursor_of([True])), ("cursor",), code="invalid_cursor"),
    Bad(MEMBER_ORDERS, "a cursor past bigint", with_(cursor=cursor_of([2**63])), ("cursor",), code="invalid_cursor"),
    # actions whose URL says everything
    Bad(CANCEL, "a member cannot give the reason", with_(reason="changed my mind"), ("reason",), UNKNOWN),
    Bad(CANCEL, "the status is the server's", with_(status="cancelled"), ("status",), UNKNOWN),
    Bad(PAY, "the amount is the order's", with_(total=1), ("total",), UNKNOWN),
    Bad(PAY, "the payer is the token's", with_(openid="o-forged"), ("openid",), UNKNOWN),
    Bad(
        CONFIRM,
        "the time of receipt is the server's",
        with_(received_at="2020-01-01T00:00:00Z"),
        ("received_at",),
        UNKNOWN,
    ),
    Bad(READY, "the pickup point is the order's", with_(pickup_point_id=1), ("pickup_point_id",), UNKNOWN),
    Bad(APPROVE, "an approval is of the amount asked for", with_(amount=1), ("amount",), UNKNOWN),
    Bad(APPROVE, "restocking is the server's", with_(restock=True), ("restock",), UNKNOWN),
    Bad(FAKE_PAY, "the amount is the order's", with_(total=1), ("total",), UNKNOWN),
    Bad(
        FAKE_PAY,
        "the transaction id is the provider's",
        with_(transaction_id="4200000001"),
        ("transaction_id",),
        UNKNOWN,
    ),
    # refunds asked for by the member
    Bad(REFUND_REQUEST, "no reason", without("reason"), ("reason",), REQUIRED),
    Bad(REFUND_REQUEST, "an empty reason", with_(reason=""), ("reason",)),
    Bad(REFUND_REQUEST, "reason too long", with_(reason="x" * 201), ("reason",)),
    Bad(REFUND_REQUEST, "reason is a number", with_(reason=5), ("reason",), NOT_STRING),
    Bad(REFUND_REQUEST, "an empty list of lines", with_(lines=[]), ("lines",)),
    Bad(REFUND_REQUEST, "51 lines", lambda w, valid: {**valid, "lines": valid["lines"] * 51}, ("lines",)),
    Bad(REFUND_REQUEST, "a line is not an object", with_(lines=["all"]), ("lines", "0", "_schema")),
    Bad(REFUND_REQUEST, "quantity 0", with_line(0, quantity=0), ("lines", "0", "quantity")),
    Bad(REFUND_REQUEST, "quantity is a string", with_line(0, quantity="1"), ("lines", "0", "quantity"), NOT_INT),
    Bad(REFUND_REQUEST, "quantity is a float", with_line(0, quantity=0.5), ("lines", "0", "quantity"), NOT_INT),
    Bad(REFUND_REQUEST, "quantity is a boolean", with_line(0, quantity=True), ("lines", "0", "quantity"), NOT_INT),
    Bad(REFUND_REQUEST, "a line without its id", with_line(0, line_id=DROP), ("lines", "0", "line_id"), REQUIRED),
    Bad(REFUND_REQUEST, "line id is a string", with_line(0, line_id="1"), ("lines", "0", "line_id"), NOT_INT),
    Bad(REFUND_REQUEST, "line id past bigint", with_line(0, line_id=MAX_ID + 1), ("lines", "0", "line_id")),
    Bad(
        REFUND_REQUEST,
        "a line of another order",
        lambda w, valid: {**valid, "lines": [{"line_id": w.orders.pending_line_id, "quantity": 1}]},
        ("lines", "0", "line_id"),
        code="line_not_found",
    ),
    Bad(
        REFUND_REQUEST,
        "more units than were bought",
        with_line(0, quantity=3),
        ("lines",),
        code="refund_quantity_exceeded",
    ),
    Bad(
        REFUND_REQUEST,
        "one line twice, adding up to more than was bought",
        lambda w, valid: {**valid, "lines": [{"line_id": w.orders.paid_line_id, "quantity": 2}] + valid["lines"]},
        ("lines",),
        code="refund_quantity_exceeded",
    ),
    Bad(REFUND_REQUEST, "the amount is the server's", with_(amount=1), ("amount",), UNKNOWN),
    Bad(REFUND_REQUEST, "a line's amount is the server's", with_line(0, amount=1), ("lines", "0", "amount"), UNKNOWN),
    Bad(REFUND_REQUEST, "restocking is the server's", with_(restock=True), ("restock",), UNKNOWN),
    # pickups
    Bad(LEADER_PICKUP, "no code", without("code"), ("code",), REQUIRED),
    Bad(LEADER_PICKUP, "7 digits", with_(code="1234567"), ("code",), EIGHT_DIGITS),
    Bad(LEADER_PICKUP, "9 digits", with_(code="123456789"), ("code",), EIGHT_DIGITS),
    Bad(LEADER_PICKUP, "letters", with_(code="abcdefgh"), ("code",), EIGHT_DIGITS),
    Bad(LEADER_PICKUP, "full-width digits", with_(code="１２３４５６７８"), ("code",), EIGHT_DIGITS),
    Bad(
        LEADER_PICKUP,
        "8 digits and a newline",
        lambda w, valid: {"code": w.orders.pickup_code + "\n"},
        ("code",),
        EIGHT_DIGITS,
    ),
    Bad(LEADER_PICKUP, "a number", with_(code=12345678), ("code",), NOT_STRING),
    Bad(LEADER_PICKUP, "the order is found by its code", with_(order_id=1), ("order_id",), UNKNOWN),
    Bad(LEADER_PICKUP, "a code no waiting order has", another_code, None, code="pickup_code_unknown", status=404),
    Bad(STAFF_PICKUP, "no code", without("code"), ("code",), REQUIRED),
    Bad(STAFF_PICKUP, "7 digits", with_(code="1234567"), ("code",), EIGHT_DIGITS),
    Bad(STAFF_PICKUP, "letters and digits", with_(code="1234abcd"), ("code",), EIGHT_DIGITS),
    Bad(
        STAFF_PICKUP,
        "8 digits and a newline",
        lambda w, valid: {"code": w.orders.pickup_code + "\n"},
        ("code",),
        EIGHT_DIGITS,
    ),
    Bad(STAFF_PICKUP, "a number", with_(code=12345678), ("code",), NOT_STRING),
    Bad(STAFF_PICKUP, "code is null", with_(code=None), ("code",), NOT_NULL),
    Bad(STAFF_PICKUP, "the wrong code", another_code, ("code",), code="pickup_code_wrong"),
    # the staff's order list and export
    Bad(STAFF_ORDERS, "unknown status", with_(status="lost"), ("status",)),
    Bad(STAFF_ORDERS, "limit 0", with_(limit=0), ("limit",)),
    Bad(STAFF_ORDERS, "limit 500", with_(limit=500), ("limit",)),
    Bad(STAFF_ORDERS, "an empty search", with_(q=""), ("q",)),
    Bad(STAFF_ORDERS, "a search too long", with_(q="x" * 65), ("q",)),
    Bad(STAFF_ORDERS, "created_from is not a time", with_(created_from="yesterday"), ("created_from",), NOT_DATETIME),
    Bad(
        STAFF_ORDERS, "created_to is not a time", with_(created_to="2024-13-01T00:00:00"), ("created_to",), NOT_DATETIME
    ),
    Bad(STAFF_ORDERS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(STAFF_ORDERS, "a cursor past bigint", with_(cursor=cursor_of([2**64])), ("cursor",), code="invalid_cursor"),
    Bad(EXPORT, "unknown status", with_(status="lost"), ("status",)),
    Bad(EXPORT, "created_from is not a time", with_(created_from="last week"), ("created_from",), NOT_DATETIME),
    Bad(EXPORT, "created_to is a number", with_(created_to=5), ("created_to",), NOT_DATETIME),
    # shipping
    Bad(SHIP, "no carrier", without("carrier"), ("carrier",), REQUIRED),
    Bad(SHIP, "no tracking number", without("tracking_no"), ("tracking_no",), REQUIRED),
    Bad(SHIP, "an empty carrier", with_(carrier=""), ("carrier",)),
    Bad(SHIP, "carrier too long", with_(carrier="x" * 33), ("carrier",)),
    Bad(SHIP, "carrier is a number", with_(carrier=1), ("carrier",), NOT_STRING),
    Bad(SHIP, "a tracking number with spaces", with_(tracking_no="SF 1234 5678"), ("tracking_no",), BAD_PATTERN),
    Bad(SHIP, "a tracking number too short", with_(tracking_no="SF1"), ("tracking_no",), BAD_PATTERN),
    Bad(SHIP, "a tracking number too long", with_(tracking_no="S" * 65), ("tracking_no",), BAD_PATTERN),
    Bad(SHIP, "a tracking number and a newline", with_(tracking_no="S" * 64 + "\n"), ("tracking_no",), BAD_PATTERN),
    Bad(SHIP, "a tracking number in Chinese", with_(tracking_no="顺丰一二三四"), ("tracking_no",), BAD_PATTERN),
    Bad(SHIP, "a tracking number that is a number", with_(tracking_no=1234567890), ("tracking_no",), NOT_STRING),
    Bad(SHIP, "the status is the server's", with_(status="shipped"), ("status",), UNKNOWN),
    Bad(
        SHIP, "the time of shipping is the server's", with_(shipped_at="2020-01-01T00:00:00Z"), ("shipped_at",), UNKNOWN
    ),
    # refunds decided by staff
    Bad(STAFF_REFUNDS, "unknown status", with_(status="approved"), ("status",)),
    Bad(STAFF_REFUNDS, "an empty status", with_(status=""), ("status",)),
    Bad(REJECT, "reason too long", with_(reason="x" * 201), ("reason",)),
    Bad(REJECT, "reason is a number", with_(reason=1), ("reason",), NOT_STRING),
    Bad(REJECT, "reason is null", with_(reason=None), ("reason",), NOT_NULL),
    Bad(REJECT, "the status is the server's", with_(status="rejected"), ("status",), UNKNOWN),
    Bad(REJECT, "a rejection has no amount", with_(amount=0), ("amount",), UNKNOWN),
    # pickup points
    Bad(POINT_CREATE, "no name", without("name"), ("name",), REQUIRED),
    Bad(POINT_CREATE, "no address", without("address"), ("address",), REQUIRED),
    Bad(POINT_CREATE, "no contact name", without("contact_name"), ("contact_name",), REQUIRED),
    Bad(POINT_CREATE, "no contact phone", without("contact_phone"), ("contact_phone",), REQUIRED),
    Bad(POINT_CREATE, "an empty name", with_(name=""), ("name",)),
    Bad(POINT_CREATE, "name too long", with_(name="x" * 65), ("name",)),
    Bad(POINT_CREATE, "address too long", with_(address="x" * 201), ("address",)),
    Bad(POINT_CREATE, "contact name too long", with_(contact_name="x" * 33), ("contact_name",)),
    Bad(POINT_CREATE, "a phone that is not one", with_(contact_phone="call me"), ("contact_phone",)),
    Bad(POINT_CREATE, "a phone of 21 characters", with_(contact_phone="+" + "1" * 20), ("contact_phone",)),
    Bad(POINT_CREATE, "a phone and a newline", with_(contact_phone="13800138000\n"), ("contact_phone",)),
    Bad(POINT_CREATE, "leader id is a string", with_(leader_member_id="1"), ("leader_member_id",), NOT_INT),
    Bad(POINT_CREATE, "leader id is a boolean", with_(leader_member_id=True), ("leader_member_id",), NOT_INT),
    Bad(POINT_CREATE, "leader id 0", with_(leader_member_id=0), ("leader_member_id",)),
    Bad(POINT_CREATE, "leader id past bigint", with_(leader_member_id=MAX_ID + 1), ("leader_member_id",)),
    Bad(
        POINT_CREATE,
        "a leader who is no member",
        with_(leader_member_id=MISSING_ID),
        ("leader_member_id",),
        code="member_not_found",
    ),
    Bad(
        POINT_CREATE,
        "a leader of another merchant",
        lambda w, valid: {**valid, "leader_member_id": w.other_member_id},
        ("leader_member_id",),
        code="member_not_found",
    ),
    Bad(POINT_CREATE, "a new point is open", with_(active=False), ("active",), UNKNOWN),
    Bad(POINT_CREATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
    Bad(POINT_UPDATE, "an empty name", with_(name=""), ("name",)),
    Bad(POINT_UPDATE, "name is null", with_(name=None), ("name",), NOT_NULL),
    Bad(POINT_UPDATE, "active is not a boolean", with_(active="maybe"), ("active",), NOT_BOOL),
    Bad(POINT_UPDATE, "active is null", with_(active=None), ("active",), NOT_NULL),
    Bad(POINT_UPDATE, "a phone of 21 characters", with_(contact_phone="+86 138 0013 8000 123"), ("contact_phone",)),
    Bad(POINT_UPDATE, "leader id is a float", with_(leader_member_id=1.0), ("leader_member_id",), NOT_INT),
    Bad(
        POINT_UPDATE,
        "a leader of another merchant",
        lambda w, valid: {**valid, "leader_member_id": w.other_member_id},
        ("leader_member_id",),
        code="member_not_found",
    ),
    Bad(POINT_UPDATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
    # order settings
    Bad(SETTINGS, "negative shipping fee", with_(shipping_fee=-1), ("shipping_fee",)),
    Bad(SETTINGS, "shipping fee past the maximum", with_(shipping_fee=MAX_FEN + 1), ("shipping_fee",)),
    Bad(SETTINGS, "shipping fee is a string", with_(shipping_fee="800"), ("shipping_fee",), NOT_INT),
    Bad(SETTINGS, "shipping fee in yuan", with_(shipping_fee=8.5), ("shipping_fee",), NOT_INT),
    Bad(SETTINGS, "shipping fee is a boolean", with_(shipping_fee=True), ("shipping_fee",), NOT_INT),
    Bad(SETTINGS, "shipping fee is null", with_(shipping_fee=None), ("shipping_fee",), NOT_NULL),
    Bad(SETTINGS, "negative free-shipping threshold", with_(free_shipping_over=-1), ("free_shipping_over",)),
    Bad(
        SETTINGS,
        "free-shipping threshold is a string",
        with_(free_shipping_over="99"),
        ("free_shipping_over",),
        NOT_INT,
    ),
    Bad(SETTINGS, "unpaid orders kept 0 minutes", with_(order_ttl_minutes=0), ("order_ttl_minutes",)),
    Bad(SETTINGS, "unpaid orders kept over a day", with_(order_ttl_minutes=1441), ("order_ttl_minutes",)),
    Bad(SETTINGS, "unpaid minutes is a string", with_(order_ttl_minutes="30"), ("order_ttl_minutes",), NOT_INT),
    Bad(SETTINGS, "auto-confirm after 0 days", with_(auto_confirm_days=0), ("auto_confirm_days",)),
    Bad(SETTINGS, "auto-confirm after 61 days", with_(auto_confirm_days=61), ("auto_confirm_days",)),
    Bad(SETTINGS, "negative after-sales days", with_(after_sales_days=-1), ("after_sales_days",)),
    Bad(SETTINGS, "after-sales days past 60", with_(after_sales_days=61), ("after_sales_days",)),
    Bad(SETTINGS, "after-sales days is a float", with_(after_sales_days=7.0), ("after_sales_days",), NOT_INT),
    Bad(SETTINGS, "no currency but the yuan", with_(currency="USD"), ("currency",), UNKNOWN),
    # the payment provider's callbacks
    Bad(NOTIFY, "a body changed after it was signed", tampered, (), "does not match", code="FAIL", status=400),
    Bad(NOTIFY, "no signature", unsigned, (), "are required", code="FAIL", status=400),
    Bad(NOTIFY, "signed five minutes ago", stale, (), "too far from now", code="FAIL", status=400),
    Bad(
        NOTIFY,
        "signed, but not a notification",
        signed_text,
        (),
        "not a WeChat Pay notification",
        code="FAIL",
        status=400,
    ),
    Bad(
        NOTIFY,
        "paid less than the order's total",
        with_notice(total=1),
        (),
        "not the amount due",
        code="FAIL",
        status=400,
    ),
    Bad(NOTIFY, "paid to another appid", with_notice(appid="wx0000000000000000"), (), "appid", code="FAIL", status=400),
    Bad(NOTIFY, "paid to another mchid", with_notice(mchid="1900000000"), (), "mchid", code="FAIL", status=400),
    Bad(
        NOTIFY,
        "an order number no order has",
        with_notice(out_trade_no="000000000000"),
        (),
        "no such order",
        code="FAIL",
        status=404,
    ),
    Bad(REFUND_NOTIFY, "a body changed after it was signed", tampered, (), "does not match", code="FAIL", status=400),
    Bad(REFUND_NOTIFY, "no signature", unsigned, (), "are required", code="FAIL", status=400),
    Bad(
        REFUND_NOTIFY,
        "refunded less than the refund's amount",
        with_refund_notice(refund=1),
        (),
        "not the amount asked for",
        code="FAIL",
        status=400,
    ),
    Bad(
        REFUND_NOTIFY,
        "a refund number no refund has",
        with_refund_notice(out_refund_no="R000000000000"),
        (),
        "no such refund",
        code="FAIL",
        status=404,
    ),
    # --- staff and system refunds (brief A, issue 12 item 8): more in tests/api/test_staff_refunds.py
    Bad(STAFF_REFUND_ISSUE, "no reason", without("reason"), ("reason",), REQUIRED),
    Bad(STAFF_REFUND_ISSUE, "an empty list of lines", with_(lines=[]), ("lines",)),
    Bad(STAFF_REFUND_ISSUE, "no units", with_(lines=[{"line_id": 1, "quantity": 0}]), ("lines", "0", "quantity")),
    Bad(STAFF_REFUND_ISSUE, "the kind is the server's", with_(kind="system"), ("kind",), UNKNOWN),
    Bad(STAFF_REFUNDS, "an order id of 0", with_(order_id=0), ("order_id",)),
    # --- end of staff and system refunds
    # --- invites (brief C); the thorough cases are in tests/api/test_invites.py --------------------
    Bad(("/api/v1/invites/<code>/open", "POST"), "channel in capitals", with_(channel="QR"), ("channel",)),
    Bad(("/api/v1/me/invites", "GET"), "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
    Bad(WX_LOGIN, "a channel with a space", with_(channel="qr code"), ("channel",)),
    Bad(ME, "a birthday in the future", with_(birthday="2999-01-01"), ("birthday",)),
    # --- end of invites (brief C) ------------------------------------------------------------------
]


def _generic_cases() -> list[Bad]:
    """What every endpoint refuses, whatever its fields."""
    cases = []
    for key, endpoint in ENDPOINTS.items():
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


ALL_CASES = CASES + _generic_cases()


def _dig(fields: dict[str, Any], path: tuple[str, ...]) -> Any:
    found: Any = fields
    for key in path:
        assert isinstance(found, dict) and key in found, f"details.fields has no {'.'.join(path)}: {fields}"
        found = found[key]
    return found


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_bad_input_is_refused_with_the_fields_named_and_changes_nothing(client, world, case):
    valid = ENDPOINTS[case.key].valid(world)
    before = _everything()

    if case.raw is not None:
        response = _send(client, case.key, world, None, case.headers, **case.raw)
    else:
        assert case.data is not None
        response = _send(client, case.key, world, case.data(world, valid), case.headers)

    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    if ENDPOINTS[case.key].location == RAW:  # the provider's callback answers as the provider expects
        assert set(response.json) == {"code", "message"}, response.json
        assert response.json["code"] == case.code
        assert case.message is None or case.message in response.json["message"], response.json
        assert _everything() == before
        return
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and error["message"]
    if case.fields is not None:
        at_fault = _dig(error["details"]["fields"], case.fields)
        if case.message is not None:
            assert case.message in at_fault, at_fault
    assert _everything() == before


@pytest.mark.parametrize("key", [k for k, e in ENDPOINTS.items() if e.location == "json"], ids=" ".join)
def test_a_body_sent_as_a_form_is_refused_not_ignored(client, world, key):
    before = _everything()
    response = _send(
        client, key, world, None, data="nickname=x&title=y", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415, response.json
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert _everything() == before


def test_a_stock_adjustment_past_the_maximum_stock_is_refused_without_overflowing(client, world):
    with transaction():
        db.session.get(Sku, world.sku_id).stock = MAX_STOCK - 3  # what many restocks would add up to
    before = _everything()
    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": 10_000_000, "reason": "restock"},
    )
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "stock_limit"
    assert _everything() == before

    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": 3, "reason": "restock"},
    )
    assert response.status_code == 201
    assert response.json["stock_after"] == MAX_STOCK


def test_a_stock_adjustment_below_zero_is_refused(client, world):
    before = _everything()
    response = client.post(
        f"{PREFIX}/merchant/skus/{world.sku_id}/stock-adjustments",
        headers=world.owner,
        json={"delta": -41, "reason": "damage"},
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "insufficient_stock"
    assert _everything() == before


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


# --- coverage -------------------------------------------------------------------------------------


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
    assert routes - set(ENDPOINTS) == set(), "add these endpoints to ENDPOINTS and CASES"
    assert set(ENDPOINTS) - routes == set(), "ENDPOINTS names endpoints that no longer take input"
    assert set(ENDPOINTS) - {case.key for case in CASES} == set(), "these endpoints have no specific case"
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                locations = _argument_locations(_view(app, rule, method))
                if (rule.rule, method) in ENDPOINTS:
                    location = ENDPOINTS[(rule.rule, method)].location
                    assert locations == (set() if location == RAW else {location}), (rule.rule, method)
    # Only a payment provider's callback reads its body itself; every other endpoint declares it.
    raw = {rule for (rule, _), endpoint in ENDPOINTS.items() if endpoint.location == RAW}
    assert all(rule.startswith(PREFIX + "/payments/wechatpay/") for rule in raw), raw
