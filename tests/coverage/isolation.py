"""What a tenant-isolation case is, and the two shops the cases run against
(tests/api/test_tenant_isolation.py).

Two merchants, alpha and bravo, each with an owner, an operator, a member, categories, products
in every status with SKUs and stock movements, a pickup point led by the member, a cart, and the
member's orders in every state staff and members act on (unpaid, paid, shipped, waiting at the
pickup point, with a refund asked for, with a refund under way). A package registers (in its own
`*_cases.py`, tests/coverage/registry.py):
- a `PathCase` for every route with an id in its path (the coverage test fails for one without),
  called by alpha with bravo's id and a valid body: the control call with alpha's own id succeeds;
- a `BodyCase` for every id a body names: bravo's id is refused like one no row has;
- a shop part (`registry.add_shop_part`) when its cases need rows of its own: `part(client, shop)`
  runs for both shops and returns the ids its cases read as `shop.extras[...]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import inspect, select

from shop.catalog import service as catalog
from shop.core.db import db, transaction
from shop.identity import pickup_points
from shop.identity.models import Member
from tests.coverage import registry
from tests.coverage.invalid_input import pickup_body
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
    extras: dict[str, Any] = field(default_factory=dict)  # what the packages' shop parts made

    def __getattr__(self, name: str) -> Any:
        """A package's id by name (`PathCase.ids`, `BodyCase.foreign`): what its shop part made."""
        extras = self.__dict__.get("extras") or {}
        if name in extras:
            return extras[name]
        raise AttributeError(name)

    @property
    def product_ids(self) -> tuple[int, int, int]:
        return (self.product_id, self.off_shelf_product_id, self.draft_product_id)

    @property
    def invite_code(self) -> str:
        """The member's invite code (every member has one)."""
        return db.session.get(Member, self.member_id).invite_code

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


def _open_trade(client, owner: dict[str, str], member: dict[str, str], sku_id: int, point_id: int) -> dict[str, Any]:
    """The member's orders in every state an endpoint acts on: the Shop fields they fill."""
    pending = placed_order(client, member, order_body(sku_id))
    paid = paid_order(client, member, order_body(sku_id, 2))
    shipped = paid_order(client, member, order_body(sku_id))
    sent = client.post(
        f"{PREFIX}/merchant/orders/{shipped['id']}/ship", headers=owner, json={"carrier": "顺丰", "tracking_no": "SF01"}
    )
    assert sent.status_code == 200, sent.json
    paid_pickup = paid_order(client, member, pickup_body(sku_id, point_id))
    ready = paid_order(client, member, pickup_body(sku_id, point_id))
    assert client.post(f"{PREFIX}/merchant/orders/{ready['id']}/ready-for-pickup", headers=owner).status_code == 200
    refunded = paid_order(client, member, order_body(sku_id))
    refund = client.post(f"{PREFIX}/orders/{refunded['id']}/refunds", headers=member, json={"reason": "不要了"})
    assert refund.status_code == 201, refund.json
    refunding = paid_order(client, member, order_body(sku_id))
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


def open_shop(client, word: str) -> Shop:
    """A merchant with everything the isolation cases act on (see the module's docstring)."""
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
    shop = Shop(
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
    extras: dict[str, Any] = {}
    for part in registry.shop_parts():
        extras.update(part(client, replace(shop, extras=dict(extras))))
    return replace(shop, extras=extras)


def rows_of(merchant_id: int) -> dict[str, list[tuple[Any, ...]]]:
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


def state_of(client, shop: Shop) -> dict[str, Any]:
    """The shop as its own staff and member see it through the API, and its rows in the database."""
    owner = shop.owner
    return {
        "rows": rows_of(shop.merchant_id),
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
    extra_headers: dict[str, str] = field(default_factory=dict)  # e.g. the Idempotency-Key a route needs

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


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
