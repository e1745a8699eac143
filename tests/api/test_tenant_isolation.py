"""Tenant isolation over HTTP: whatever id a caller sends (in the path, in the body, in the query
string), another merchant's row (or another member's) answers exactly like a row that does not
exist, and nothing of the other merchant changes.

Two merchants, alpha and bravo, each with an owner, an operator, a member, categories, products
in every status with SKUs and stock movements, a pickup point led by the member, a cart, and the
member's orders in every state staff and members act on (unpaid, paid, shipped, waiting at the
pickup point, with a refund asked for, with a refund under way). Every route with an id in its
path is in PATH_CASES (the coverage test at the end makes sure of it), called by alpha with
bravo's id and a body that is valid: the control call with alpha's own id succeeds. The payment
provider's callbacks name the merchant in their path instead: a genuine notification for bravo
posted at alpha's URL changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import inspect, select

from shop.catalog import service as catalog
from shop.core.db import db, transaction
from shop.identity import pickup_points
from shop.identity.models import Member, Merchant
from shop.orders.models import ORDER_STATUSES, REFUND_STATUSES, Order, Payment
from shop.payments.providers import PROVIDER_EXTENSION
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    make_staff,
    member_headers,
    order_body,
    place,
    staff_headers,
)

MISSING_ID = 10**12  # a well-formed id no row has
PREFIX = "/api/v1"
KEY = {"Idempotency-Key": "isolation-0001"}


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    code: str
    word: str
    owner: dict[str, str]
    owner_id: int
    operator_id: int
    operator_username: str
    member: dict[str, str]
    top_category_id: int
    sub_category_id: int
    empty_category_id: int
    product_id: int  # on the shelf
    off_shelf_product_id: int
    draft_product_id: int
    sku_id: int  # of product_id, with stock movements; 1 of it in the member's cart
    second_sku_id: int  # of product_id too; what the member's orders are of
    sku_ids: tuple[int, ...]  # every SKU of the shop
    member_id: int
    pickup_point_id: int  # led by the member
    pending_order_id: int  # unpaid delivery
    pending_order_no: str
    pending_total: int
    paid_order_id: int  # paid delivery, 2 units on one line
    paid_line_id: int
    shipped_order_id: int
    paid_pickup_order_id: int
    ready_order_id: int  # waiting at the pickup point
    pickup_code: str
    refund_order_id: int  # paid, with a refund asked for
    refund_id: int
    refunding_order_id: int  # paid, with an approved refund under way at the provider
    refunding_order_no: str
    refunding_total: int
    out_refund_no: str
    refund_amount: int

    @property
    def product_ids(self) -> tuple[int, int, int]:
        return (self.product_id, self.off_shelf_product_id, self.draft_product_id)

    @property
    def order_ids(self) -> set[int]:
        return {
            self.pending_order_id,
            self.paid_order_id,
            self.shipped_order_id,
            self.paid_pickup_order_id,
            self.ready_order_id,
            self.refund_order_id,
            self.refunding_order_id,
        }


def _order(client, member: dict[str, str], body: dict[str, Any], *, pay: bool = False) -> dict[str, Any]:
    """Place an order (and pay it through the fake provider): the member's view of it."""
    placed = place(client, member, body)
    assert placed.status_code == 201, placed.json
    if not pay:
        return placed.json
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.status_code == 200, paid.json
    return paid.json


def _pickup_body(sku_id: int, point_id: int) -> dict[str, Any]:
    return {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "pickup", "pickup_point_id": point_id}


def _open_trade(client, owner: dict[str, str], member: dict[str, str], sku_id: int, point_id: int) -> dict[str, Any]:
    """The member's orders in every state an endpoint acts on: the Shop fields they fill."""
    pending = _order(client, member, order_body(sku_id))
    paid = _order(client, member, order_body(sku_id, 2), pay=True)
    shipped = _order(client, member, order_body(sku_id), pay=True)
    sent = client.post(
        f"{PREFIX}/merchant/orders/{shipped['id']}/ship", headers=owner, json={"carrier": "顺丰", "tracking_no": "SF01"}
    )
    assert sent.status_code == 200, sent.json
    paid_pickup = _order(client, member, _pickup_body(sku_id, point_id), pay=True)
    ready = _order(client, member, _pickup_body(sku_id, point_id), pay=True)
    assert client.post(f"{PREFIX}/merchant/orders/{ready['id']}/ready-for-pickup", headers=owner).status_code == 200
    refunded = _order(client, member, order_body(sku_id), pay=True)
    refund = client.post(f"{PREFIX}/orders/{refunded['id']}/refunds", headers=member, json={"reason": "不要了"})
    assert refund.status_code == 201, refund.json
    refunding = _order(client, member, order_body(sku_id), pay=True)
    asked = client.post(f"{PREFIX}/orders/{refunding['id']}/refunds", headers=member, json={"reason": "坏了"})
    approved = client.post(f"{PREFIX}/merchant/refunds/{asked.json['id']}/approve", headers=owner)
    assert approved.json["status"] == "processing", approved.json
    return {
        "pending_order_id": pending["id"],
        "pending_order_no": pending["order_no"],
        "pending_total": pending["payable_total"],
        "paid_order_id": paid["id"],
        "paid_line_id": paid["lines"][0]["id"],
        "shipped_order_id": shipped["id"],
        "paid_pickup_order_id": paid_pickup["id"],
        "ready_order_id": ready["id"],
        "pickup_code": ready["pickup_code"],
        "refund_order_id": refunded["id"],
        "refund_id": refund.json["id"],
        "refunding_order_id": refunding["id"],
        "refunding_order_no": refunding["order_no"],
        "refunding_total": refunding["paid_total"],
        "out_refund_no": approved.json["out_refund_no"],
        "refund_amount": approved.json["amount"],
    }


def _open_shop(client, word: str) -> Shop:
    merchant = make_merchant()
    with transaction():
        top = catalog.create_category(merchant.id, name=f"{word} fruit")
        sub = catalog.create_category(merchant.id, name=f"{word} citrus", parent_id=top.id)
        empty = catalog.create_category(merchant.id, name=f"{word} empty")
    on_shelf = make_product(
        merchant,
        f"{word} orange",
        category_id=sub.id,
        skus=[
            {"specs": {"规格": "5斤"}, "price": 3990, "market_price": 5990, "stock": 40},
            {"specs": {"规格": "10斤"}, "price": 6990, "market_price": 9990, "stock": 20},
        ],
    )
    off_shelf = make_product(merchant, f"{word} lemon", category_id=sub.id)
    draft = make_product(merchant, f"{word} lime", on_shelf=False)
    with transaction():
        catalog.set_shelf(merchant.id, off_shelf.id, on_shelf=False)
        catalog.adjust_stock(merchant.id, on_shelf.skus[0].id, delta=5, reason="restock", note=word)
    operator = make_staff(merchant, "operator")
    owner = staff_headers(client, merchant.code)
    member = member_headers(client, merchant.code, name=f"{word}-member")
    member_id = client.get(f"{PREFIX}/me", headers=member).json["id"]
    with transaction():
        point = pickup_points.create_pickup_point(
            merchant.id,
            name=f"{word} point",
            address=f"{word} road 1",
            contact_name=word,
            contact_phone="13800138000",
            leader_member_id=member_id,
        )
    in_cart = client.post(f"{PREFIX}/cart/items", headers=member, json={"sku_id": on_shelf.skus[0].id, "quantity": 1})
    assert in_cart.status_code == 200, in_cart.json
    return Shop(
        merchant_id=merchant.id,
        code=merchant.code,
        word=word,
        owner=owner,
        owner_id=client.get(f"{PREFIX}/merchant/me", headers=owner).json["id"],
        operator_id=operator.id,
        operator_username=operator.username,
        member=member,
        top_category_id=top.id,
        sub_category_id=sub.id,
        empty_category_id=empty.id,
        product_id=on_shelf.id,
        off_shelf_product_id=off_shelf.id,
        draft_product_id=draft.id,
        sku_id=on_shelf.skus[0].id,
        second_sku_id=on_shelf.skus[1].id,
        sku_ids=tuple(s.id for p in (on_shelf, off_shelf, draft) for s in p.skus),
        member_id=member_id,
        pickup_point_id=point.id,
        **_open_trade(client, owner, member, on_shelf.skus[1].id, point.id),
    )


@pytest.fixture
def shops(ctx, client) -> tuple[Shop, Shop]:
    return _open_shop(client, "alpha"), _open_shop(client, "bravo")


def _rows_of(merchant_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every merchant-scoped table that belongs to the merchant, and the merchant."""
    rows = {}
    existing = set(inspect(db.session.connection()).get_table_names())
    for table in db.metadata.sorted_tables:
        if table.name not in existing:  # a model whose migration has not landed yet
            continue
        column = table.c.get("merchant_id")
        if table.name == "merchants":
            column = table.c.id
        if column is None:
            continue
        query = select(table).where(column == merchant_id).order_by(*table.primary_key.columns)
        rows[table.name] = [tuple(row) for row in db.session.execute(query)]
    return rows


def _state(client, shop: Shop) -> dict[str, Any]:
    """The shop as its own staff and member see it through the API, and its rows in the database."""
    owner = shop.owner
    return {
        "rows": _rows_of(shop.merchant_id),
        "products": [client.get(f"{PREFIX}/merchant/products/{pid}", headers=owner).json for pid in shop.product_ids],
        "categories": client.get(f"{PREFIX}/merchant/categories", headers=owner).json,
        "staff": client.get(f"{PREFIX}/merchant/staff", headers=owner).json,
        "movements": [
            client.get(f"{PREFIX}/merchant/skus/{sku}/stock-movements", headers=owner).json for sku in shop.sku_ids
        ],
        "member product": client.get(f"{PREFIX}/products/{shop.product_id}", headers=shop.member).json,
        "member": client.get(f"{PREFIX}/me", headers=shop.member).json,
        "orders": client.get(f"{PREFIX}/merchant/orders", query_string={"limit": 50}, headers=owner).json,
        "refunds": client.get(f"{PREFIX}/merchant/refunds", headers=owner).json,
        "pickup points": client.get(f"{PREFIX}/merchant/pickup-points", headers=owner).json,
        "settings": client.get(f"{PREFIX}/merchant/settings/orders", headers=owner).json,
        "member orders": client.get(f"{PREFIX}/orders", query_string={"limit": 50}, headers=shop.member).json,
        "cart": client.get(f"{PREFIX}/cart", headers=shop.member).json,
    }


# --- ids in the path ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PathCase:
    method: str
    rule: str
    # "staff" (the owner, who may do everything) or "member"; "provider" for the payment provider's
    # callbacks (the path names the merchant; `body` gives client.open's headers and data: a
    # notification signed for the shop); "nobody" for the fake provider's dev-only hook
    caller: str
    ids: dict[str, str]  # path argument -> the Shop attribute naming the row
    body: Callable[[Shop], dict[str, Any]] | None = None  # a valid body, given the shop whose ids are used
    ok: int = 200  # the status when the shop uses its own id

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


PATH_CASES = [
    PathCase("GET", "/api/v1/products/<int:product_id>", "member", {"product_id": "product_id"}),
    PathCase("GET", "/api/v1/merchant/products/<int:product_id>", "staff", {"product_id": "product_id"}),
    PathCase(
        "PATCH",
        "/api/v1/merchant/products/<int:product_id>",
        "staff",
        {"product_id": "product_id"},
        lambda s: {
            "title": "taken over",
            "description": "gone",
            "images": ["https://img.example.com/taken.jpg"],
            "category_id": None,
            "skus": [{"id": s.sku_id, "price": 1, "market_price": 2}],
        },
    ),
    PathCase(
        "PUT",
        "/api/v1/merchant/products/<int:product_id>/shelf",
        "staff",
        {"product_id": "product_id"},
        lambda s: {"on_shelf": False},
    ),
    PathCase(
        "POST",
        "/api/v1/merchant/skus/<int:sku_id>/stock-adjustments",
        "staff",
        {"sku_id": "sku_id"},
        lambda s: {"delta": -3, "reason": "damage", "note": "dropped"},
        ok=201,
    ),
    PathCase("GET", "/api/v1/merchant/skus/<int:sku_id>/stock-movements", "staff", {"sku_id": "sku_id"}),
    PathCase(
        "PATCH",
        "/api/v1/merchant/categories/<int:category_id>",
        "staff",
        {"category_id": "empty_category_id"},
        lambda s: {"name": "taken over", "sort_order": 9},
    ),
    PathCase(
        "DELETE", "/api/v1/merchant/categories/<int:category_id>", "staff", {"category_id": "empty_category_id"}, ok=204
    ),
    PathCase(
        "PATCH",
        "/api/v1/merchant/staff/<int:staff_id>",
        "staff",
        {"staff_id": "operator_id"},
        lambda s: {"role": "finance", "active": False, "password": "a-brand-new-password", "display_name": "taken"},
    ),
    # the cart: an SKU id in the path
    PathCase("PUT", "/api/v1/cart/items/<int:sku_id>", "member", {"sku_id": "sku_id"}, lambda s: {"quantity": 2}),
    PathCase("DELETE", "/api/v1/cart/items/<int:sku_id>", "member", {"sku_id": "sku_id"}),
    # the member's orders
    PathCase("GET", "/api/v1/orders/<int:order_id>", "member", {"order_id": "paid_order_id"}),
    PathCase("POST", "/api/v1/orders/<int:order_id>/cancel", "member", {"order_id": "pending_order_id"}),
    PathCase("POST", "/api/v1/orders/<int:order_id>/pay", "member", {"order_id": "pending_order_id"}),
    PathCase("POST", "/api/v1/orders/<int:order_id>/confirm-receipt", "member", {"order_id": "shipped_order_id"}),
    PathCase("GET", "/api/v1/orders/<int:order_id>/refunds", "member", {"order_id": "refund_order_id"}),
    PathCase(
        "POST",
        "/api/v1/orders/<int:order_id>/refunds",
        "member",
        {"order_id": "paid_order_id"},
        lambda s: {"lines": [{"line_id": s.paid_line_id, "quantity": 1}], "reason": "坏了一个"},
        ok=201,
    ),
    # orders, refunds and pickup points for staff
    PathCase("GET", "/api/v1/merchant/orders/<int:order_id>", "staff", {"order_id": "paid_order_id"}),
    PathCase(
        "POST",
        "/api/v1/merchant/orders/<int:order_id>/ship",
        "staff",
        {"order_id": "paid_order_id"},
        lambda s: {"carrier": "顺丰", "tracking_no": "SF1234567890"},
    ),
    PathCase(
        "POST", "/api/v1/merchant/orders/<int:order_id>/ready-for-pickup", "staff", {"order_id": "paid_pickup_order_id"}
    ),
    PathCase(
        "POST",
        "/api/v1/merchant/orders/<int:order_id>/pickup",
        "staff",
        {"order_id": "ready_order_id"},
        lambda s: {"code": s.pickup_code},  # even the right code does not open another merchant's order
    ),
    PathCase("POST", "/api/v1/merchant/refunds/<int:refund_id>/approve", "staff", {"refund_id": "refund_id"}),
    PathCase(
        "POST",
        "/api/v1/merchant/refunds/<int:refund_id>/reject",
        "staff",
        {"refund_id": "refund_id"},
        lambda s: {"reason": "已发货"},
    ),
    PathCase(
        "PATCH",
        "/api/v1/merchant/pickup-points/<int:point_id>",
        "staff",
        {"point_id": "pickup_point_id"},
        lambda s: {"name": "taken over", "active": False, "leader_member_id": s.member_id},
    ),
    # the payment provider's callbacks, and the fake provider's dev-only hook
    PathCase(
        "POST",
        "/api/v1/payments/wechatpay/<merchant_code>/notify",
        "provider",
        {"merchant_code": "code"},
        lambda s: _payment_notice(s),
        ok=204,
    ),
    PathCase(
        "POST",
        "/api/v1/payments/wechatpay/<merchant_code>/refund-notify",
        "provider",
        {"merchant_code": "code"},
        lambda s: _refund_notice(s),
        ok=204,
    ),
    PathCase("POST", "/api/v1/payments/fake/orders/<order_no>/pay", "nobody", {"order_no": "pending_order_no"}),
    # --- staff and system refunds (brief A, issue 12 item 8): more in tests/api/test_staff_refunds.py
    PathCase(
        "POST",
        "/api/v1/merchant/orders/<int:order_id>/refunds",
        "staff",
        {"order_id": "paid_order_id"},
        lambda s: {"lines": [{"line_id": s.paid_line_id, "quantity": 1}], "reason": "售后"},
        ok=201,
    ),
    # --- end of staff and system refunds
    # --- invites (brief C): another merchant's code is 404 like a code nobody has; the shop's own
    # member's code is a valid request (200, recorded false: a self-invite). Shop.invite_code below.
    PathCase("POST", "/api/v1/invites/<code>/open", "member", {"code": "invite_code"}, lambda s: {"channel": "qrcode"}),
    # --- end of invites (brief C)
]

# --- invites (brief C): the member's invite code, read where a case needs it (the lead may make it
# a field of Shop).
Shop.invite_code = property(lambda shop: db.session.get(Member, shop.member_id).invite_code)
# --- end of invites (brief C)

_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _url(case: PathCase, ids_of: Shop | None) -> str:
    """The route with the ids of `ids_of` (None: ids no row has)."""

    def fill(match: re.Match[str]) -> str:
        return str(MISSING_ID if ids_of is None else getattr(ids_of, case.ids[match.group(1)]))

    return _ARGUMENT.sub(fill, case.rule)


def _call(client, case: PathCase, headers: dict[str, str], *, ids_of: Shop | None, body_of: Shop):
    """Call the route with the ids of `ids_of` (None: ids no row has) and the body made for `body_of`."""
    body = case.body(body_of) if case.body else None
    return client.open(_url(case, ids_of), method=case.method, headers=headers, json=body)


def _provider():
    return current_app.extensions[PROVIDER_EXTENSION]


def _payment_notice(shop: Shop, **changes: Any) -> dict[str, Any]:
    """WeChat Pay's notification (signed, resource encrypted) that the shop's unpaid order was paid."""
    merchant = db.session.get(Merchant, shop.merchant_id)
    notice = {"out_trade_no": shop.pending_order_no, "total": shop.pending_total, "openid": "o-payer", **changes}
    headers, body = _provider().payment_notification(merchant, **notice)
    return {"headers": headers, "data": body}


def _refund_notice(shop: Shop) -> dict[str, Any]:
    """WeChat Pay's notification that the shop's refund under way succeeded."""
    headers, body = _provider().refund_notification(
        db.session.get(Merchant, shop.merchant_id),
        out_trade_no=shop.refunding_order_no,
        out_refund_no=shop.out_refund_no,
        refund=shop.refund_amount,
        total=shop.refunding_total,
    )
    return {"headers": headers, "data": body}


CALLER_CASES = [case for case in PATH_CASES if case.caller in ("staff", "member")]


@pytest.mark.parametrize("case", CALLER_CASES, ids=str)
def test_another_merchants_id_in_the_path_answers_404_like_a_missing_one_and_changes_nothing(client, shops, case):
    alpha, bravo = shops
    headers = alpha.owner if case.caller == "staff" else alpha.member
    before = _state(client, bravo)

    foreign = _call(client, case, headers, ids_of=bravo, body_of=bravo)
    missing = _call(client, case, headers, ids_of=None, body_of=bravo)

    assert foreign.status_code == 404, foreign.json
    assert foreign.json["error"]["code"] == "not_found"
    assert set(foreign.json["error"]) == {"code", "message", "details"}
    assert (missing.status_code, missing.json) == (foreign.status_code, foreign.json)
    assert _state(client, bravo) == before

    own = _call(client, case, headers, ids_of=alpha, body_of=alpha)
    assert own.status_code == case.ok, own.json  # the body was valid: only the id was refused


@pytest.mark.parametrize("case", [case for case in PATH_CASES if case.caller == "provider"], ids=str)
def test_a_genuine_notification_for_another_merchant_at_a_merchants_url_changes_nothing(client, shops, case):
    """The callback's path names the merchant whose order or refund it may touch: bravo's
    notification, genuinely signed, posted at alpha's URL (or at a merchant's that does not exist)
    is refused and changes nothing; the same notification at bravo's URL goes through."""
    alpha, bravo = shops
    before = (_state(client, alpha), _state(client, bravo))
    notice = case.body(bravo)

    for ids_of in (alpha, None):
        refused = client.open(_url(case, ids_of), method=case.method, **notice)
        assert refused.status_code in (400, 404), refused.get_data(as_text=True)
        assert refused.json["code"] == "FAIL" and refused.json["message"]
    assert (_state(client, alpha), _state(client, bravo)) == before

    own = client.open(_url(case, bravo), method=case.method, **notice)
    assert own.status_code == case.ok, own.get_data(as_text=True)  # genuine: only the URL was wrong
    assert _state(client, bravo) != before[1]


def test_a_notification_naming_another_merchants_order_with_this_merchants_account_changes_nothing(client, shops):
    """Signed by WeChat Pay for alpha's own appid (so the account checks pass) but naming bravo's
    order number: alpha's notification URL finds no such order of alpha's, and nothing changes."""
    alpha, bravo = shops
    before = (_state(client, alpha), _state(client, bravo))
    alpha_appid = db.session.get(Merchant, alpha.merchant_id).wx_appid
    notice = _payment_notice(bravo, appid=alpha_appid)

    response = client.post(f"{PREFIX}/payments/wechatpay/{alpha.code}/notify", **notice)

    assert response.status_code == 404, response.json
    assert response.json == {"code": "FAIL", "message": "no such order"}
    assert (_state(client, alpha), _state(client, bravo)) == before
    db.session.expire_all()
    assert db.session.get(Order, bravo.pending_order_id).status == "pending_payment"
    assert db.session.execute(select(Payment).where(Payment.order_id == bravo.pending_order_id)).first() is None


@pytest.mark.parametrize("case", [case for case in PATH_CASES if case.caller == "nobody"], ids=str)
def test_the_dev_pay_hook_pays_only_the_order_it_names_under_its_own_merchant(client, shops, case):
    """The fake provider's hook takes no token (it stands for WeChat Pay, dev and test only): an
    order number no order has is a 404, and paying bravo's order touches nothing of alpha's."""
    alpha, bravo = shops
    before = (_state(client, alpha), _state(client, bravo))

    missing = client.open(_url(case, None), method=case.method)
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert (_state(client, alpha), _state(client, bravo)) == before

    paid = client.open(_url(case, bravo), method=case.method)
    assert paid.status_code == case.ok, paid.json
    assert (paid.json["id"], paid.json["status"]) == (bravo.pending_order_id, "paid")
    assert _state(client, alpha) == before[0]
    payment = db.session.execute(select(Payment).where(Payment.order_id == bravo.pending_order_id)).scalar_one()
    assert payment.merchant_id == bravo.merchant_id


def test_an_operator_is_held_to_their_own_merchant_like_the_owner(client, shops):
    alpha, bravo = shops
    operator = staff_headers(client, alpha.code, username=alpha.operator_username)
    before = _state(client, bravo)
    response = client.patch(f"{PREFIX}/merchant/products/{bravo.product_id}", headers=operator, json={"title": "x"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert _state(client, bravo) == before


def _path_routes(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/") and rule.arguments
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_with_an_id_in_its_path_has_an_isolation_case(app):
    routes = _path_routes(app)
    covered = {(case.rule, case.method) for case in PATH_CASES}
    assert {case.caller for case in PATH_CASES} <= {"staff", "member", "provider", "nobody"}, "a case no test runs"
    assert routes, "the url map walk found no route with a path argument"
    assert routes - covered == set(), "add these routes to PATH_CASES"
    assert covered - routes == set(), "PATH_CASES names routes that no longer exist"


# --- ids in the body or the query string ----------------------------------------------------------


@dataclass(frozen=True)
class BodyCase:
    name: str
    method: str
    path: Callable[[Shop], str]  # alpha's own url
    body: Callable[[Shop, int], dict[str, Any]]  # alpha, and the id under test
    foreign: str  # the Shop attribute giving bravo's id
    field: tuple[str, ...]  # where details.fields names the fault
    caller: str = "staff"  # or "member"
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    def headers(self, shop: Shop) -> dict[str, str]:
        return {**(shop.owner if self.caller == "staff" else shop.member), **self.extra_headers}


def _new_product(shop: Shop, category_id: int) -> dict[str, Any]:
    return {"title": "new", "category_id": category_id, "skus": [{"specs": {"规格": "1个"}, "price": 100}]}


BODY_CASES = [
    BodyCase(
        "product created in another merchant's category",
        "POST",
        lambda a: f"{PREFIX}/merchant/products",
        _new_product,
        "sub_category_id",
        ("category_id",),
    ),
    BodyCase(
        "product moved to another merchant's category",
        "PATCH",
        lambda a: f"{PREFIX}/merchant/products/{a.product_id}",
        lambda a, category_id: {"category_id": category_id},
        "sub_category_id",
        ("category_id",),
    ),
    BodyCase(
        "product given another merchant's SKU",
        "PATCH",
        lambda a: f"{PREFIX}/merchant/products/{a.product_id}",
        lambda a, sku_id: {"skus": [{"id": a.sku_id}, {"id": sku_id, "price": 1}]},
        "second_sku_id",
        ("skus", "1", "id"),
    ),
    BodyCase(
        "sub-category under another merchant's category",
        "POST",
        lambda a: f"{PREFIX}/merchant/categories",
        lambda a, parent_id: {"name": "new", "parent_id": parent_id},
        "top_category_id",
        ("parent_id",),
    ),
    BodyCase(
        "a quote for pickup at another merchant's pickup point",
        "POST",
        lambda a: f"{PREFIX}/checkout/quote",
        lambda a, point_id: _pickup_body(a.second_sku_id, point_id),
        "pickup_point_id",
        ("pickup_point_id",),
        caller="member",
    ),
    BodyCase(
        "an order for pickup at another merchant's pickup point",
        "POST",
        lambda a: f"{PREFIX}/orders",
        lambda a, point_id: _pickup_body(a.second_sku_id, point_id),
        "pickup_point_id",
        ("pickup_point_id",),
        caller="member",
        extra_headers=KEY,
    ),
    BodyCase(
        "a pickup point led by another merchant's member",
        "POST",
        lambda a: f"{PREFIX}/merchant/pickup-points",
        lambda a, member_id: {
            "name": "new point",
            "address": "new road 1",
            "contact_name": "new",
            "contact_phone": "13900139000",
            "leader_member_id": member_id,
        },
        "member_id",
        ("leader_member_id",),
    ),
    BodyCase(
        "a pickup point handed to another merchant's member",
        "PATCH",
        lambda a: f"{PREFIX}/merchant/pickup-points/{a.pickup_point_id}",
        lambda a, member_id: {"leader_member_id": member_id},
        "member_id",
        ("leader_member_id",),
    ),
    BodyCase(
        "a refund of a line of another merchant's order",
        "POST",
        lambda a: f"{PREFIX}/orders/{a.paid_order_id}/refunds",
        lambda a, line_id: {"lines": [{"line_id": line_id, "quantity": 1}], "reason": "坏了一个"},
        "paid_line_id",
        ("lines", "0", "line_id"),
        caller="member",
    ),
]


@pytest.mark.parametrize("case", BODY_CASES, ids=str)
def test_another_merchants_id_in_the_body_is_refused_like_a_missing_one_and_changes_nothing(client, shops, case):
    alpha, bravo = shops
    before = (_state(client, alpha), _state(client, bravo))

    headers = case.headers(alpha)
    foreign = client.open(
        case.path(alpha), method=case.method, headers=headers, json=case.body(alpha, getattr(bravo, case.foreign))
    )
    missing = client.open(case.path(alpha), method=case.method, headers=headers, json=case.body(alpha, MISSING_ID))

    assert foreign.status_code == 422, foreign.json
    details = foreign.json["error"]["details"]["fields"]
    for key in case.field:
        details = details[key]
    assert details
    assert (missing.status_code, missing.json) == (foreign.status_code, foreign.json)
    assert (_state(client, alpha), _state(client, bravo)) == before

    own = client.open(
        case.path(alpha), method=case.method, headers=headers, json=case.body(alpha, getattr(alpha, case.foreign))
    )
    assert own.status_code in (200, 201), own.json


SKU_BODIES: dict[str, tuple[str, Callable[[int], dict[str, Any]], dict[str, str]]] = {
    "into the cart": ("/cart/items", lambda sku_id: {"sku_id": sku_id, "quantity": 1}, {}),
    "in a quote": (
        "/checkout/quote",
        lambda sku_id: {"items": [{"sku_id": sku_id, "quantity": 1}], "fulfilment": "delivery"},
        {},
    ),
    "in an order": ("/orders", lambda sku_id: order_body(sku_id), KEY),
}


def _error_but_the_id_sent(response, sent: int) -> dict[str, Any]:
    """The error, but for the id the caller sent, which the error may name (that tells them nothing)."""
    error = response.json["error"]
    details = error["details"]
    if isinstance(details, dict) and details.get("sku_id") == sent:
        details = {**details, "sku_id": "<the id sent>"}
    return {**error, "details": details}


@pytest.mark.parametrize("where", list(SKU_BODIES))
def test_a_member_cannot_put_another_merchants_sku_in_the_cart_or_order_it(client, shops, where):
    """Any SKU of bravo's (on the shelf or not) is not found for alpha's member, exactly like a SKU
    no shop has: nothing goes into the cart, no order is placed, no stock moves."""
    alpha, bravo = shops
    path, body, extra = SKU_BODIES[where]
    headers = {**alpha.member, **extra}
    before = (_state(client, alpha), _state(client, bravo))

    missing = client.post(f"{PREFIX}{path}", headers=headers, json=body(MISSING_ID))
    assert missing.status_code == 404, missing.json
    assert missing.json["error"]["code"] in ("not_found", "sku_not_found")
    for sku_id in bravo.sku_ids:
        foreign = client.post(f"{PREFIX}{path}", headers=headers, json=body(sku_id))
        assert foreign.status_code == 404, foreign.json
        assert _error_but_the_id_sent(foreign, sku_id) == _error_but_the_id_sent(missing, MISSING_ID)
    assert (_state(client, alpha), _state(client, bravo)) == before

    own = client.post(f"{PREFIX}{path}", headers=headers, json=body(alpha.second_sku_id))
    assert own.status_code in (200, 201), own.json


# --- members of one merchant ----------------------------------------------------------------------

# What a member can do to an order, with a valid body: (method, path, the Shop attribute of the order, body)
MEMBER_ORDER_CALLS = [
    ("GET", "/orders/{}", "paid_order_id", None),
    ("POST", "/orders/{}/cancel", "pending_order_id", None),
    ("POST", "/orders/{}/pay", "pending_order_id", None),
    ("POST", "/orders/{}/confirm-receipt", "shipped_order_id", None),
    ("GET", "/orders/{}/refunds", "refund_order_id", None),
    ("POST", "/orders/{}/refunds", "paid_order_id", {"reason": "全部退掉"}),
]


@pytest.mark.parametrize("call", MEMBER_ORDER_CALLS, ids=lambda call: f"{call[0]} {call[1]}")
def test_a_member_cannot_see_pay_cancel_confirm_or_refund_another_members_order(client, shops, call):
    alpha = shops[0]
    method, path, attribute, body = call
    carol = member_headers(client, alpha.code, name="carol")  # alpha's member's neighbour, same merchant
    before = _state(client, alpha)

    others = client.open(f"{PREFIX}{path.format(getattr(alpha, attribute))}", method=method, headers=carol, json=body)
    missing = client.open(f"{PREFIX}{path.format(MISSING_ID)}", method=method, headers=carol, json=body)

    assert others.status_code == 404, others.json
    assert others.json["error"]["code"] == "not_found"
    assert (missing.status_code, missing.json) == (others.status_code, others.json)
    assert _state(client, alpha) == before

    own = client.open(
        f"{PREFIX}{path.format(getattr(alpha, attribute))}", method=method, headers=alpha.member, json=body
    )
    assert own.status_code in (200, 201), own.json


def test_a_members_order_list_shows_all_their_orders_and_never_another_members(client, shops):
    alpha = shops[0]
    carol = member_headers(client, alpha.code, name="carol")
    carols = place(client, carol, order_body(alpha.second_sku_id))
    assert carols.status_code == 201, carols.json

    def listed(headers: dict[str, str], **query: Any) -> list[int]:
        response = client.get(f"{PREFIX}/orders", query_string={"limit": 50, **query}, headers=headers)
        assert response.status_code == 200, response.json
        return [o["id"] for o in response.json["items"]]

    assert set(listed(alpha.member)) == alpha.order_ids
    assert listed(carol) == [carols.json["id"]]
    for status in ORDER_STATUSES:
        assert set(listed(alpha.member, status=status)) <= alpha.order_ids, status
        assert set(listed(carol, status=status)) <= {carols.json["id"]}, status

    seen: list[int] = []
    query: dict[str, Any] = {"limit": 1}
    while True:
        page = client.get(f"{PREFIX}/orders", query_string=query, headers=alpha.member).json
        seen.extend(o["id"] for o in page["items"])
        if not page["next_cursor"]:
            break
        query = {"limit": 1, "cursor": page["next_cursor"]}
    assert sorted(seen) == sorted(alpha.order_ids)


def test_a_members_cart_is_their_own(client, shops):
    alpha = shops[0]
    carol = member_headers(client, alpha.code, name="carol")
    before = _state(client, alpha)

    assert client.get(f"{PREFIX}/cart", headers=carol).json["lines"] == []
    removed = client.delete(f"{PREFIX}/cart/items/{alpha.sku_id}", headers=carol)  # in alpha's member's cart
    missing = client.delete(f"{PREFIX}/cart/items/{MISSING_ID}", headers=carol)
    assert removed.status_code == 404
    assert (missing.status_code, missing.json) == (removed.status_code, removed.json)
    assert _state(client, alpha) == before

    changed = client.put(f"{PREFIX}/cart/items/{alpha.sku_id}", headers=carol, json={"quantity": 3})
    assert changed.status_code == 200
    assert [(line["sku_id"], line["quantity"]) for line in changed.json["lines"]] == [(alpha.sku_id, 3)]
    assert _state(client, alpha)["cart"] == before["cart"]  # alpha's member still has their 1
    assert [(line["sku_id"], line["quantity"]) for line in before["cart"]["lines"]] == [(alpha.sku_id, 1)]


def test_a_leader_hands_over_only_orders_waiting_at_their_own_points(client, shops):
    """A pickup code opens an order only for the leader of the point it waits at: another
    merchant's leader, or a member of the same merchant who leads no point, gets what a code no
    order has gets, and nothing changes."""
    alpha, bravo = shops
    carol = member_headers(client, alpha.code, name="carol")  # leads no point
    before = (_state(client, alpha), _state(client, bravo))
    unused = next(
        code for code in ("00000000", "00000001", "00000002") if code not in (alpha.pickup_code, bravo.pickup_code)
    )

    missing = client.post(f"{PREFIX}/leader/pickups", headers=alpha.member, json={"code": unused})
    assert missing.status_code == 404, missing.json
    assert missing.json["error"]["code"] == "pickup_code_unknown"
    for leader, code in (
        (alpha.member, bravo.pickup_code),
        (bravo.member, alpha.pickup_code),
        (carol, alpha.pickup_code),
    ):
        response = client.post(f"{PREFIX}/leader/pickups", headers=leader, json={"code": code})
        assert (response.status_code, response.json) == (missing.status_code, missing.json)
    assert (_state(client, alpha), _state(client, bravo)) == before

    own = client.post(f"{PREFIX}/leader/pickups", headers=alpha.member, json={"code": alpha.pickup_code})
    assert own.status_code == 200, own.json
    assert (own.json["id"], own.json["status"]) == (alpha.ready_order_id, "received")


def test_filtering_by_another_merchants_category_finds_nothing(client, shops):
    alpha, bravo = shops
    for url, headers in (
        (f"{PREFIX}/merchant/products", alpha.owner),
        (f"{PREFIX}/products", alpha.member),
    ):
        for category in (bravo.top_category_id, bravo.sub_category_id):
            response = client.get(url, query_string={"category_id": category}, headers=headers)
            assert response.status_code == 200, response.json
            assert response.json["items"] == []
        own = client.get(url, query_string={"category_id": alpha.top_category_id}, headers=headers)
        assert own.json["items"], "the control query finds alpha's products"


# --- lists ----------------------------------------------------------------------------------------


def test_the_staff_order_list_and_export_show_every_order_of_the_merchant_and_none_of_another(client, shops):
    alpha, bravo = shops
    response = client.get(f"{PREFIX}/merchant/orders", query_string={"limit": 50}, headers=alpha.owner)
    assert response.status_code == 200
    orders = response.json["items"]
    assert {o["id"] for o in orders} == alpha.order_ids
    for status in ORDER_STATUSES:
        listed = client.get(f"{PREFIX}/merchant/orders", query_string={"status": status}, headers=alpha.owner).json
        assert {o["id"] for o in listed["items"]} <= alpha.order_ids, status

    for q in (bravo.pending_order_no, bravo.refunding_order_no):
        searched = client.get(f"{PREFIX}/merchant/orders", query_string={"q": q}, headers=alpha.owner)
        assert searched.json["items"] == [], q
    # both shipped with the same tracking number: alpha finds its own parcel only
    tracked = client.get(f"{PREFIX}/merchant/orders", query_string={"q": "SF01"}, headers=alpha.owner).json
    assert [o["id"] for o in tracked["items"]] == [alpha.shipped_order_id]

    export = client.get(f"{PREFIX}/merchant/orders/export.csv", headers=alpha.owner)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff"))))
    assert {row["order_no"] for row in rows} == {o["order_no"] for o in orders}
    for status in ORDER_STATUSES:
        filtered = client.get(
            f"{PREFIX}/merchant/orders/export.csv", query_string={"status": status}, headers=alpha.owner
        )
        assert bravo.pending_order_no not in filtered.get_data(as_text=True)


def test_the_staff_refund_list_shows_only_the_merchants_own_refunds(client, shops):
    alpha = shops[0]
    response = client.get(f"{PREFIX}/merchant/refunds", headers=alpha.owner)
    assert response.status_code == 200
    assert {r["order_id"] for r in response.json["items"]} == {alpha.refund_order_id, alpha.refunding_order_id}
    for status in REFUND_STATUSES:
        listed = client.get(f"{PREFIX}/merchant/refunds", query_string={"status": status}, headers=alpha.owner).json
        assert {r["order_id"] for r in listed["items"]} <= {alpha.refund_order_id, alpha.refunding_order_id}


def test_pickup_points_lists_show_only_the_merchants_own_points(client, shops):
    alpha = shops[0]
    for url, headers in ((f"{PREFIX}/merchant/pickup-points", alpha.owner), (f"{PREFIX}/pickup-points", alpha.member)):
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        assert [p["id"] for p in response.json["items"]] == [alpha.pickup_point_id], url


def test_the_staff_product_list_shows_every_product_of_the_merchant_and_none_of_another(client, shops):
    alpha, bravo = shops
    response = client.get(f"{PREFIX}/merchant/products", query_string={"limit": 50}, headers=alpha.owner)
    assert response.status_code == 200
    assert {p["id"] for p in response.json["items"]} == set(alpha.product_ids)
    assert {s["id"] for p in response.json["items"] for s in p["skus"]} == set(alpha.sku_ids)

    for status in ("draft", "on_shelf", "off_shelf"):
        listed = client.get(f"{PREFIX}/merchant/products", query_string={"status": status}, headers=alpha.owner)
        assert not {p["id"] for p in listed.json["items"]} & set(bravo.product_ids)

    searched = client.get(f"{PREFIX}/merchant/products", query_string={"q": bravo.word}, headers=alpha.owner)
    assert searched.json["items"] == []


def test_the_staff_product_list_pages_only_through_the_merchants_own_products(client, shops):
    alpha = shops[0]
    seen: list[int] = []
    query: dict[str, Any] = {"limit": 1}
    while True:
        page = client.get(f"{PREFIX}/merchant/products", query_string=query, headers=alpha.owner).json
        seen.extend(p["id"] for p in page["items"])
        if not page["next_cursor"]:
            break
        query = {"limit": 1, "cursor": page["next_cursor"]}
    assert sorted(seen) == sorted(alpha.product_ids)


def test_the_category_trees_show_only_the_merchants_own_categories(client, shops):
    alpha = shops[0]
    own = {alpha.top_category_id, alpha.sub_category_id, alpha.empty_category_id}
    for url, headers in ((f"{PREFIX}/merchant/categories", alpha.owner), (f"{PREFIX}/categories", alpha.member)):
        response = client.get(url, headers=headers)
        assert response.status_code == 200
        ids = {c["id"] for c in response.json["items"]} | {
            child["id"] for c in response.json["items"] for child in c["children"]
        }
        assert ids == own, url


def test_stock_movements_show_only_the_skus_own_movements(client, shops):
    alpha = shops[0]
    response = client.get(f"{PREFIX}/merchant/skus/{alpha.sku_id}/stock-movements", headers=alpha.owner)
    assert response.status_code == 200
    items = response.json["items"]
    assert [(m["sku_id"], m["reason"], m["note"]) for m in items] == [
        (alpha.sku_id, "restock", "alpha"),
        (alpha.sku_id, "initial", ""),
    ]


def test_the_staff_list_shows_only_the_merchants_own_accounts(client, shops):
    alpha = shops[0]
    response = client.get(f"{PREFIX}/merchant/staff", headers=alpha.owner)
    assert response.status_code == 200
    assert {s["id"] for s in response.json["items"]} == {alpha.owner_id, alpha.operator_id}


def test_members_see_only_their_merchants_products_on_the_shelf(client, shops):
    alpha, bravo = shops
    for sort in ("newest", "price_asc", "price_desc", "sales"):
        response = client.get(f"{PREFIX}/products", query_string={"sort": sort}, headers=alpha.member)
        assert response.status_code == 200
        assert [p["id"] for p in response.json["items"]] == [alpha.product_id], sort
    searched = client.get(f"{PREFIX}/products", query_string={"q": bravo.word}, headers=alpha.member)
    assert searched.json["items"] == []


def test_a_member_sees_their_merchants_product_but_not_one_off_the_shelf_a_draft_or_another_merchants(client, shops):
    alpha, bravo = shops
    shown = client.get(f"{PREFIX}/products/{alpha.product_id}", headers=alpha.member)
    assert shown.status_code == 200
    assert {s["id"] for s in shown.json["skus"]} <= set(alpha.sku_ids)

    missing = client.get(f"{PREFIX}/products/{MISSING_ID}", headers=alpha.member)
    for product_id in (alpha.off_shelf_product_id, alpha.draft_product_id, bravo.product_id):
        response = client.get(f"{PREFIX}/products/{product_id}", headers=alpha.member)
        assert (response.status_code, response.json) == (404, missing.json)
    assert missing.json["error"]["code"] == "not_found"


def test_a_cached_product_of_one_merchant_is_never_served_to_another(client, shops):
    """The member-facing cache is per merchant: bravo's member reading it first changes nothing."""
    alpha, bravo = shops
    assert client.get(f"{PREFIX}/products/{bravo.product_id}", headers=bravo.member).status_code == 200
    assert client.get(f"{PREFIX}/products", headers=bravo.member).status_code == 200
    assert client.get(f"{PREFIX}/products/{bravo.product_id}", headers=alpha.member).status_code == 404
    assert [p["id"] for p in client.get(f"{PREFIX}/products", headers=alpha.member).json["items"]] == [alpha.product_id]


# --- members ----------------------------------------------------------------------------------------


def test_a_members_me_only_ever_shows_and_changes_themselves(client, shops):
    alpha, bravo = shops
    # Same WeChat name at both merchants: different members, since the openid is per mini-program.
    alice = member_headers(client, alpha.code, name="alice")
    bob = member_headers(client, alpha.code, name="bob")
    alice_at_bravo = member_headers(client, bravo.code, name="alice")
    ids = {
        name: client.get(f"{PREFIX}/me", headers=h).json["id"]
        for name, h in (("alice", alice), ("bob", bob), ("alice@bravo", alice_at_bravo))
    }
    assert len(set(ids.values())) == 3

    changed = client.patch(f"{PREFIX}/me", headers=alice, json={"nickname": "小爱"})
    assert changed.status_code == 200
    assert changed.json["id"] == ids["alice"]

    assert client.get(f"{PREFIX}/me", headers=alice).json == changed.json
    for name, headers in (("bob", bob), ("alice@bravo", alice_at_bravo)):
        me = client.get(f"{PREFIX}/me", headers=headers).json
        assert (me["id"], me["nickname"]) == (ids[name], ""), name
