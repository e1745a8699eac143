"""Tenant isolation over HTTP: whatever id a caller sends (in the path, in the body, in the query
string), another merchant's row (or another member's) answers exactly like a row that does not
exist, and nothing of the other merchant changes.

The two shops, alpha and bravo, and what a case is are in tests/coverage/isolation.py; each
package registers its cases in its own `*_cases.py` (tests/api/identity_cases.py, catalog_cases.py,
checkout_cases.py, orders_cases.py, payments_cases.py; a feature package in its own folder) through
tests/coverage/registry.py. Every route with an id in its path has a path case (the coverage test
at the end makes sure of it), called by alpha with bravo's id and a body that is valid: the control
call with alpha's own id succeeds. The payment provider's callbacks name the merchant in their path
instead: a genuine notification for bravo posted at alpha's URL changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from shop.core.db import db
from shop.identity.models import Merchant
from shop.orders.models import ORDER_STATUSES, REFUND_STATUSES, Order, Payment
from tests.api.payments_cases import shop_payment_notice
from tests.coverage import registry
from tests.coverage.isolation import KEY, MISSING_ID, PREFIX, PathCase, Shop, open_shop, state_of
from tests.factories import member_headers, order_body, place, staff_headers

ALL_PATH_CASES = registry.path_cases()
ALL_BODY_CASES = registry.body_cases()


@pytest.fixture
def shops(ctx, client) -> tuple[Shop, Shop]:
    return open_shop(client, "alpha"), open_shop(client, "bravo")


_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _url(case: PathCase, ids_of: Shop | None) -> str:
    """The route with the ids of `ids_of` (None: ids no row has)."""

    def fill(match: re.Match[str]) -> str:
        return str(MISSING_ID if ids_of is None else getattr(ids_of, case.ids[match.group(1)]))

    return _ARGUMENT.sub(fill, case.rule)


def _call(client, case: PathCase, headers: dict[str, str], *, ids_of: Shop | None, body_of: Shop):
    """Call the route with the ids of `ids_of` (None: ids no row has) and the body made for `body_of`."""
    body = case.body(body_of) if case.body else None
    return client.open(_url(case, ids_of), method=case.method, headers={**headers, **case.extra_headers}, json=body)


CALLER_CASES = [case for case in ALL_PATH_CASES if case.caller in ("staff", "member")]


@pytest.mark.parametrize("case", CALLER_CASES, ids=str)
def test_another_merchants_id_in_the_path_answers_404_like_a_missing_one_and_changes_nothing(client, shops, case):
    alpha, bravo = shops
    headers = alpha.owner if case.caller == "staff" else alpha.member
    before = state_of(client, bravo)

    foreign = _call(client, case, headers, ids_of=bravo, body_of=bravo)
    missing = _call(client, case, headers, ids_of=None, body_of=bravo)

    assert foreign.status_code == 404, foreign.json
    assert foreign.json["error"]["code"] == "not_found"
    assert set(foreign.json["error"]) == {"code", "message", "details"}
    assert (missing.status_code, missing.json) == (foreign.status_code, foreign.json)
    assert state_of(client, bravo) == before

    own = _call(client, case, headers, ids_of=alpha, body_of=alpha)
    assert own.status_code == case.ok, own.json  # the body was valid: only the id was refused


@pytest.mark.parametrize("case", [case for case in ALL_PATH_CASES if case.caller == "provider"], ids=str)
def test_a_genuine_notification_for_another_merchant_at_a_merchants_url_changes_nothing(client, shops, case):
    """The callback's path names the merchant whose order or refund it may touch: bravo's
    notification, genuinely signed, posted at alpha's URL (or at a merchant's that does not exist)
    is refused and changes nothing; the same notification at bravo's URL goes through."""
    alpha, bravo = shops
    before = (state_of(client, alpha), state_of(client, bravo))
    notice = case.body(bravo)

    for ids_of in (alpha, None):
        refused = client.open(_url(case, ids_of), method=case.method, **notice)
        assert refused.status_code in (400, 404), refused.get_data(as_text=True)
        assert refused.json["code"] == "FAIL" and refused.json["message"]
    assert (state_of(client, alpha), state_of(client, bravo)) == before

    own = client.open(_url(case, bravo), method=case.method, **notice)
    assert own.status_code == case.ok, own.get_data(as_text=True)  # genuine: only the URL was wrong
    assert state_of(client, bravo) != before[1]


def test_a_notification_naming_another_merchants_order_with_this_merchants_account_changes_nothing(client, shops):
    """Signed by WeChat Pay for alpha's own appid (so the account checks pass) but naming bravo's
    order number: alpha's notification URL finds no such order of alpha's, and nothing changes."""
    alpha, bravo = shops
    before = (state_of(client, alpha), state_of(client, bravo))
    alpha_appid = db.session.get(Merchant, alpha.merchant_id).wx_appid
    notice = shop_payment_notice(bravo, appid=alpha_appid)

    response = client.post(f"{PREFIX}/payments/wechatpay/{alpha.code}/notify", **notice)

    assert response.status_code == 404, response.json
    assert response.json == {"code": "FAIL", "message": "no such order"}
    assert (state_of(client, alpha), state_of(client, bravo)) == before
    db.session.expire_all()
    assert db.session.get(Order, bravo.pending_order_id).status == "pending_payment"
    assert db.session.execute(select(Payment).where(Payment.order_id == bravo.pending_order_id)).first() is None


@pytest.mark.parametrize("case", [case for case in ALL_PATH_CASES if case.caller == "nobody"], ids=str)
def test_a_dev_hook_acts_only_on_what_it_names_under_its_own_merchant(client, shops, case):
    """The fake provider's hooks take no token (they stand for WeChat Pay, dev and test only): a
    number nothing has is a 404, and paying bravo's order (or settling bravo's transfer) touches
    nothing of alpha's."""
    alpha, bravo = shops
    before = (state_of(client, alpha), state_of(client, bravo))

    missing = client.open(_url(case, None), method=case.method)
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert (state_of(client, alpha), state_of(client, bravo)) == before

    acted = client.open(_url(case, bravo), method=case.method)
    assert acted.status_code == case.ok, acted.json
    assert state_of(client, alpha) == before[0]
    assert state_of(client, bravo) != before[1]
    if "/fake/orders/" in case.rule:
        assert (acted.json["id"], acted.json["status"]) == (bravo.pending_order_id, "paid")
        payment = db.session.execute(select(Payment).where(Payment.order_id == bravo.pending_order_id)).scalar_one()
        assert payment.merchant_id == bravo.merchant_id


def test_an_operator_is_held_to_their_own_merchant_like_the_owner(client, shops):
    alpha, bravo = shops
    operator = staff_headers(client, alpha.code, username=alpha.operator_username)
    before = state_of(client, bravo)
    response = client.patch(f"{PREFIX}/merchant/products/{bravo.product_id}", headers=operator, json={"title": "x"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert state_of(client, bravo) == before


def _path_routes(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/") and rule.arguments
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_with_an_id_in_its_path_has_an_isolation_case(app):
    routes = _path_routes(app)
    covered = {(case.rule, case.method) for case in ALL_PATH_CASES}
    assert {case.caller for case in ALL_PATH_CASES} <= {"staff", "member", "provider", "nobody"}, "a case no test runs"
    assert routes, "the url map walk found no route with a path argument"
    assert routes - covered == set(), "register isolation cases for these routes (tests/coverage/registry.py)"
    assert covered - routes == set(), "registered path cases name routes that no longer exist"


@pytest.mark.parametrize("case", ALL_BODY_CASES, ids=str)
def test_another_merchants_id_in_the_body_is_refused_like_a_missing_one_and_changes_nothing(client, shops, case):
    alpha, bravo = shops
    before = (state_of(client, alpha), state_of(client, bravo))

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
    assert (state_of(client, alpha), state_of(client, bravo)) == before

    own = client.open(
        case.path(alpha), method=case.method, headers=headers, json=case.body(alpha, getattr(alpha, case.foreign))
    )
    assert own.status_code in (200, 201, 202), own.json


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
    before = (state_of(client, alpha), state_of(client, bravo))

    missing = client.post(f"{PREFIX}{path}", headers=headers, json=body(MISSING_ID))
    assert missing.status_code == 404, missing.json
    assert missing.json["error"]["code"] in ("not_found", "sku_not_found")
    for sku_id in bravo.sku_ids:
        foreign = client.post(f"{PREFIX}{path}", headers=headers, json=body(sku_id))
        assert foreign.status_code == 404, foreign.json
        assert _error_but_the_id_sent(foreign, sku_id) == _error_but_the_id_sent(missing, MISSING_ID)
    assert (state_of(client, alpha), state_of(client, bravo)) == before

    own = client.post(f"{PREFIX}{path}", headers=headers, json=body(alpha.second_sku_id))
    assert own.status_code in (200, 201, 202), own.json


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
    before = state_of(client, alpha)

    others = client.open(f"{PREFIX}{path.format(getattr(alpha, attribute))}", method=method, headers=carol, json=body)
    missing = client.open(f"{PREFIX}{path.format(MISSING_ID)}", method=method, headers=carol, json=body)

    assert others.status_code == 404, others.json
    assert others.json["error"]["code"] == "not_found"
    assert (missing.status_code, missing.json) == (others.status_code, others.json)
    assert state_of(client, alpha) == before

    own = client.open(
        f"{PREFIX}{path.format(getattr(alpha, attribute))}", method=method, headers=alpha.member, json=body
    )
    assert own.status_code in (200, 201, 202), own.json


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
    before = state_of(client, alpha)

    assert client.get(f"{PREFIX}/cart", headers=carol).json["lines"] == []
    removed = client.delete(f"{PREFIX}/cart/items/{alpha.sku_id}", headers=carol)  # in alpha's member's cart
    missing = client.delete(f"{PREFIX}/cart/items/{MISSING_ID}", headers=carol)
    assert removed.status_code == 404
    assert (missing.status_code, missing.json) == (removed.status_code, removed.json)
    assert state_of(client, alpha) == before

    changed = client.put(f"{PREFIX}/cart/items/{alpha.sku_id}", headers=carol, json={"quantity": 3})
    assert changed.status_code == 200
    assert [(line["sku_id"], line["quantity"]) for line in changed.json["lines"]] == [(alpha.sku_id, 3)]
    assert state_of(client, alpha)["cart"] == before["cart"]  # alpha's member still has their 1
    assert [(line["sku_id"], line["quantity"]) for line in before["cart"]["lines"]] == [(alpha.sku_id, 1)]


def test_a_leader_hands_over_only_orders_waiting_at_their_own_points(client, shops):
    """A pickup code opens an order only for the leader of the point it waits at: another
    merchant's leader, or a member of the same merchant who leads no point, gets what a code no
    order has gets, and nothing changes."""
    alpha, bravo = shops
    carol = member_headers(client, alpha.code, name="carol")  # leads no point
    before = (state_of(client, alpha), state_of(client, bravo))
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
    assert (state_of(client, alpha), state_of(client, bravo)) == before

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


def test_the_staff_order_list_and_export_show_every_order_of_the_merchant_and_none_of_another(client, shops):
    alpha, bravo = shops
    response = client.get(f"{PREFIX}/merchant/orders", query_string={"limit": 50}, headers=alpha.owner)
    assert response.status_code == 200
    orders = response.json["items"]
    # The shop's own orders, and the order a package's shop part placed (the initiator's of its group).
    everyone = alpha.order_ids | {alpha.group_initiator_order_id}
    assert {o["id"] for o in orders} == everyone
    for status in ORDER_STATUSES:
        listed = client.get(f"{PREFIX}/merchant/orders", query_string={"status": status}, headers=alpha.owner).json
        assert {o["id"] for o in listed["items"]} <= everyone, status

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
