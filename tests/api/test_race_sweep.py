"""Every endpoint that creates or deletes rows, raced against itself and against the delete of
what it hangs under, over HTTP on real connections (everything commits): never a 5xx, and where
only one can win, exactly one does while the others get the answer they would have got in turn.

RACES lists the races; the coverage test at the end fails when a route that creates (answers 201,
or upserts) or deletes has none, so a new endpoint cannot skip this.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from api.worker import run_burst
from coupons.models import (
    Campaign,
    CampaignDraw,
    CampaignTier,
    Prize,
    PrizeUpgrade,
    ReferralGrant,
    ReferralReward,
    UpgradeOffer,
)
from distribution.models import Distributor, LedgerEntry, Override, Program, Tier, Withdrawal
from shop.catalog.models import Category, Sku, StockMovement
from shop.checkout.models import CartItem
from shop.core.db import db, utcnow
from shop.identity.models import Member, MemberInvite, MerchantSettings, Staff
from shop.offers.models import Group, GroupOrder, Offer, OfferBuyer, OfferUnit
from shop.orders.models import IdempotencyKey, Order, Refund
from tests.factories import (
    fake_pay,
    make_merchant,
    make_product,
    member_headers,
    order_body,
    race,
    staff_headers,
)

pytestmark = pytest.mark.committing

V1 = "/api/v1"
M = "/api/v1/merchant"
ROUNDS = 6  # each parent/child pair; the losing side used to answer 500 in every round
_seq = itertools.count(1)


@dataclass
class World:
    app: Flask
    code: str
    merchant_id: int
    owner: dict[str, str]
    member: dict[str, str]
    sku_id: int

    def client(self):
        return self.app.test_client()

    def post_category(self, **body: Any) -> int:
        response = self.client().post(f"{M}/categories", json={"name": f"c{next(_seq)}", **body}, headers=self.owner)
        assert response.status_code == 201, response.json
        return response.json["id"]


def _world(app: Flask) -> World:
    with app.app_context():
        merchant = make_merchant()
        product = make_product(merchant, skus=[{"specs": {}, "price": 1000, "stock": 500}])
        client = app.test_client()
        world = World(
            app=app,
            code=merchant.code,
            merchant_id=merchant.id,
            owner=staff_headers(client, merchant.code),
            member=member_headers(client, merchant.code, f"racer{next(_seq)}"),
            sku_id=product.skus[0].id,
        )
        db.session.remove()
    return world


def _together(w: World, *requests: tuple[str, str, dict[str, Any] | None]) -> list[Any]:
    """Send the (method, url, body) requests at once, as the owner; the responses in order."""

    def send(i: int) -> Any:
        method, url, body = requests[i]
        return getattr(w.client(), method)(url, json=body, headers=w.owner)

    return race(len(requests), send)


def _no_5xx(responses) -> list[int]:
    statuses = [r.status_code for r in responses]
    assert all(s < 500 for s in statuses), [(r.status_code, r.get_json()) for r in responses]
    return statuses


def _codes(responses, status: int) -> set[str]:
    return {r.json["error"]["code"] for r in responses if r.status_code == status}


def _count(app: Flask, query) -> int:
    with app.app_context():
        try:
            return db.session.execute(query).scalar_one()
        finally:
            db.session.remove()


# --- the races ------------------------------------------------------------------------------------


def race_staff_same_username(app: Flask) -> None:
    w = _world(app)
    body = {"username": "twin", "password": "long-enough-password", "role": "operator"}
    responses = race(8, lambda i: w.client().post(f"{M}/staff", json=body, headers=w.owner))
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 7}
    assert _codes(responses, 409) == {"username_taken"}
    assert _count(app, select(func.count()).where(Staff.merchant_id == w.merchant_id, Staff.username == "twin")) == 1


def race_first_settings_change(app: Flask) -> None:
    for _ in range(ROUNDS):
        w = _world(app)
        responses = _together(w, *[("patch", f"{M}/settings/orders", {"shipping_fee": 100 + i}) for i in range(4)])
        assert set(_no_5xx(responses)) == {200}
        query = select(func.count()).where(MerchantSettings.merchant_id == w.merchant_id)
        assert _count(app, query) == 1


def race_owners_demoting_each_other(app: Flask) -> None:
    for change in ({"role": "operator"}, {"active": False}):
        for _ in range(3):
            _two_owners_change_each_other(app, change)


def _two_owners_change_each_other(app: Flask, change: dict[str, Any]) -> None:
    w = _world(app)
    body = {"username": "boss2", "password": "long-enough-password", "role": "owner"}
    second = w.client().post(f"{M}/staff", json=body, headers=w.owner).json["id"]
    first = w.client().get(f"{M}/me", headers=w.owner).json["id"]
    second_owner = staff_headers(w.client(), w.code, "boss2", "long-enough-password")
    calls = [(w.owner, second), (second_owner, first)]
    responses = race(2, lambda i: w.client().patch(f"{M}/staff/{calls[i][1]}", json=change, headers=calls[i][0]))
    # The loser is refused: at the door if the winner had committed (its token was revoked), else
    # under the lock, where it finds it may no longer manage staff.
    outcome = sorted((r.status_code, (r.json.get("error") or {}).get("code")) for r in responses)
    assert outcome in ([(200, None), (401, "token_revoked")], [(200, None), (403, "role_forbidden")]), outcome
    owners = select(func.count()).where(Staff.merchant_id == w.merchant_id, Staff.role == "owner", Staff.active)
    assert _count(app, owners) == 1


def race_category_creations(app: Flask) -> None:
    w = _world(app)
    responses = race(6, lambda i: w.client().post(f"{M}/categories", json={"name": "同名"}, headers=w.owner))
    assert set(_no_5xx(responses)) == {201}  # names are not unique: every one is made


def race_sub_category_against_parent_delete(app: Flask) -> None:
    w = _world(app)
    outcomes = Counter()
    for _ in range(ROUNDS):
        parent = w.post_category()
        create, delete = _together(
            w,
            ("post", f"{M}/categories", {"name": "子类", "parent_id": parent}),
            ("delete", f"{M}/categories/{parent}", None),
        )
        pair = tuple(_no_5xx([create, delete]))
        assert pair in {(201, 409), (422, 204)}, (create.json, delete.get_json())
        if pair == (201, 409):
            assert delete.json["error"]["code"] == "category_in_use"
        else:
            assert create.json["error"]["code"] == "category_not_found"
            assert "parent_id" in create.json["error"]["details"]["fields"]
        outcomes[pair] += 1
    assert sum(outcomes.values()) == ROUNDS


def race_product_against_category_delete(app: Flask) -> None:
    w = _world(app)
    for _ in range(ROUNDS):
        category = w.post_category()
        body = {"title": "新品", "category_id": category, "skus": [{"specs": {}, "price": 100, "stock": 1}]}
        create, delete = _together(w, ("post", f"{M}/products", body), ("delete", f"{M}/categories/{category}", None))
        pair = tuple(_no_5xx([create, delete]))
        assert pair in {(201, 409), (422, 204)}, (create.json, delete.get_json())
        if pair == (422, 204):
            assert create.json["error"]["code"] == "category_not_found"
            assert "category_id" in create.json["error"]["details"]["fields"]


def race_product_recategorised_against_category_delete(app: Flask) -> None:
    w = _world(app)
    response = w.client().post(
        f"{M}/products", json={"title": "旧品", "skus": [{"specs": {}, "price": 100}]}, headers=w.owner
    )
    product_id = response.json["id"]
    for _ in range(ROUNDS):
        category = w.post_category()
        move, delete = _together(
            w,
            ("patch", f"{M}/products/{product_id}", {"category_id": category}),
            ("delete", f"{M}/categories/{category}", None),
        )
        pair = tuple(_no_5xx([move, delete]))
        assert pair in {(200, 409), (422, 204)}, (move.json, delete.get_json())
        if pair == (200, 409):  # filed under it: take it out again for the next round
            w.client().patch(f"{M}/products/{product_id}", json={"category_id": None}, headers=w.owner)


def race_category_delete_against_itself_and_an_edit(app: Flask) -> None:
    w = _world(app)
    for _ in range(ROUNDS):
        category = w.post_category()
        responses = _together(w, *[("delete", f"{M}/categories/{category}", None)] * 5)
        assert Counter(_no_5xx(responses)) == {204: 1, 404: 4}
    for _ in range(ROUNDS):
        category = w.post_category()
        edit, delete = _together(
            w, ("patch", f"{M}/categories/{category}", {"name": "改名"}), ("delete", f"{M}/categories/{category}", None)
        )
        assert tuple(_no_5xx([edit, delete])) in {(200, 204), (404, 204)}
        assert _count(app, select(func.count()).where(Category.id == category)) == 0


def race_cart_lines(app: Flask) -> None:
    w = _world(app)
    url = f"{V1}/cart/items"
    responses = race(8, lambda i: w.client().post(url, json={"sku_id": w.sku_id, "quantity": 1}, headers=w.member))
    assert set(_no_5xx(responses)) == {200}
    quantity = select(CartItem.quantity).where(CartItem.sku_id == w.sku_id)
    assert _count(app, quantity) == 8
    responses = race(6, lambda i: w.client().put(f"{url}/{w.sku_id}", json={"quantity": i + 1}, headers=w.member))
    assert set(_no_5xx(responses)) == {200}
    responses = race(6, lambda i: w.client().delete(f"{url}/{w.sku_id}", headers=w.member))
    assert Counter(_no_5xx(responses)) == {200: 1, 404: 5}
    assert _count(app, select(func.count()).where(CartItem.sku_id == w.sku_id)) == 0


def race_orders_with_one_key(app: Flask) -> None:
    w = _world(app)
    headers = {**w.member, "Idempotency-Key": "race-sweep-0001"}
    responses = race(8, lambda i: w.client().post(f"{V1}/orders", json=order_body(w.sku_id), headers=headers))
    assert set(_no_5xx(responses)) <= {200, 201}
    assert len({r.json["id"] for r in responses}) == 1
    assert _count(app, select(func.count()).where(IdempotencyKey.key == "race-sweep-0001")) == 1
    assert _count(app, select(func.count()).where(Order.merchant_id == w.merchant_id)) == 1


def race_refund_requests(app: Flask) -> None:
    w = _world(app)
    placed = w.client().post(
        f"{V1}/orders", json=order_body(w.sku_id, 2), headers={**w.member, "Idempotency-Key": "race-sweep-refund"}
    )
    assert fake_pay(w.client(), placed.json["order_no"]).status_code == 200
    order_id = placed.json["id"]
    responses = race(
        6, lambda i: w.client().post(f"{V1}/orders/{order_id}/refunds", json={"reason": "不要了"}, headers=w.member)
    )
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 5}
    assert _codes(responses, 409) == {"refund_in_progress"}
    assert _count(app, select(func.count()).where(Refund.order_id == order_id)) == 1


# --- staff and system refunds
def race_staff_refunds(app: Flask) -> None:
    """A double (or sixfold) click on "refund": one refund, the others 409 refund_in_progress."""
    w = _world(app)
    placed = w.client().post(
        f"{V1}/orders", json=order_body(w.sku_id, 2), headers={**w.member, "Idempotency-Key": "race-sweep-staff-refund"}
    )
    assert fake_pay(w.client(), placed.json["order_no"]).status_code == 200
    order_id = placed.json["id"]
    url = f"{M}/orders/{order_id}/refunds"
    responses = race(6, lambda i: w.client().post(url, json={"reason": "售后"}, headers=w.owner))
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 5}
    assert _codes(responses, 409) == {"refund_in_progress"}
    assert _count(app, select(func.count()).where(Refund.order_id == order_id)) == 1


# --- end of staff and system refunds


def race_pickup_points(app: Flask) -> None:
    w = _world(app)
    body = {"name": "团长点", "address": "幸福里 1 号", "contact_name": "李姐", "contact_phone": "13900000000"}
    responses = race(6, lambda i: w.client().post(f"{M}/pickup-points", json=body, headers=w.owner))
    assert set(_no_5xx(responses)) == {201}


def race_stock_adjustments(app: Flask) -> None:
    w = _world(app)
    url = f"{M}/skus/{w.sku_id}/stock-adjustments"
    responses = race(8, lambda i: w.client().post(url, json={"delta": 5, "reason": "restock"}, headers=w.owner))
    assert set(_no_5xx(responses)) == {201}
    assert _count(app, select(Sku.stock).where(Sku.id == w.sku_id)) == 500 + 8 * 5
    movements = select(func.count()).where(StockMovement.sku_id == w.sku_id)
    assert _count(app, movements) == 1 + 8  # the initial stock, then each adjustment


def race_first_logins(app: Flask) -> None:
    w = _world(app)
    body = {"merchant": w.code, "code": "test:twin-launch"}
    responses = race(8, lambda i: w.client().post(f"{V1}/auth/wx-login", json=body))
    assert set(_no_5xx(responses)) == {200}
    assert _count(app, select(func.count()).where(Member.merchant_id == w.merchant_id)) == 2  # the world's + this


def race_invite_opens(app: Flask) -> None:
    """One member opens another's invite code from several launches at once (a double scan, a
    retry): every answer is 200, the open is recorded once and binds one inviter."""
    w = _world(app)
    inviter = w.client().get(f"{V1}/me", headers=w.member).json
    invitee = member_headers(w.client(), w.code, f"invitee{next(_seq)}")
    url = f"{V1}/invites/{inviter['invite_code']}/open"
    responses = race(8, lambda i: w.client().post(url, json={"channel": "qrcode"}, headers=invitee))
    assert set(_no_5xx(responses)) == {200}
    assert sum(1 for r in responses if r.json["recorded"]) == 1
    assert sum(1 for r in responses if r.json["bound"]) == 1
    assert _count(app, select(func.count()).where(MemberInvite.inviter_id == inviter["id"])) == 1
    bound = select(func.count()).where(Member.merchant_id == w.merchant_id, Member.invited_by_id == inviter["id"])
    assert _count(app, bound) == 1


# (name, the race, the routes (method, rule) it covers)
COUPON_TEMPLATE = {
    "name": "满100减10",
    "kind": "amount_off",
    "threshold": 10000,
    "amount": 1000,
    "valid_days": 7,
    "total_quantity": 3,
    "per_member_limit": 2,
    "channels": ["centre"],
}


def race_coupon_templates_and_their_edits(app: Flask) -> None:
    w = _world(app)
    made = race(6, lambda i: w.client().post(f"{M}/coupon-templates", json=COUPON_TEMPLATE, headers=w.owner))
    assert set(_no_5xx(made)) == {201}  # names are not unique: every one is made
    template_id = made[0].json["id"]
    edits = _together(
        w,
        ("patch", f"{M}/coupon-templates/{template_id}", {"amount": 900}),
        ("patch", f"{M}/coupon-templates/{template_id}", {"status": "paused"}),
        ("patch", f"{M}/coupon-templates/{template_id}", {"total_quantity": 5}),
    )
    assert set(_no_5xx(edits)) == {200}


def race_coupon_claims(app: Flask) -> None:
    w = _world(app)
    template = w.client().post(f"{M}/coupon-templates", json=COUPON_TEMPLATE, headers=w.owner).json
    url = f"{V1}/coupon-centre/{template['id']}/claim"
    responses = race(6, lambda i: w.client().post(url, headers=w.member))
    assert Counter(_no_5xx(responses)) == {201: 2, 409: 4}  # the member's limit of 2
    assert _codes(responses, 409) == {"coupon_limit_reached"}
    others = [member_headers(w.client(), w.code, f"claimer{i}") for i in range(4)]
    responses = race(4, lambda i: w.client().post(url, headers=others[i]))
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 3}  # one left of the 3
    assert _codes(responses, 409) == {"coupon_sold_out"}


def race_coupon_grants(app: Flask) -> None:
    w = _world(app)
    template = w.client().post(f"{M}/coupon-templates", json=COUPON_TEMPLATE, headers=w.owner).json
    member_id = w.client().get(f"{V1}/me", headers=w.member).json["id"]
    body = {"template_id": template["id"], "member_ids": [member_id]}
    responses = race(4, lambda i: w.client().post(f"{M}/coupon-grants", json=body, headers=w.owner))
    assert set(_no_5xx(responses)) == {202}
    assert len({r.json["id"] for r in responses}) == 1  # sent four times at once: one grant


# --- distribution
MD = f"{M}/distribution"
PROGRAM = {"enabled": True, "levels": 2, "rates_bp": [1000, 500], "join_rule": "open"}


def _distributor(w: World, balance: int = 0) -> int:
    """Open the program and make the world's member a distributor with `balance` fen: their id."""
    client = w.client()
    opened = client.patch(f"{MD}/settings", json=PROGRAM, headers=w.owner)
    assert opened.status_code == 200, opened.json
    joined = client.post(f"{V1}/distribution/application", json={}, headers=w.member)
    assert joined.status_code == 200 and joined.json["status"] == "active", joined.json
    distributor_id = client.get(f"{V1}/distribution/summary", headers=w.member).json["distributor_id"]
    if balance:
        body = {"amount": balance, "reason": "开业奖励"}
        funded = client.post(f"{MD}/distributors/{distributor_id}/adjustments", json=body, headers=w.owner)
        assert funded.status_code == 201, funded.json
    return distributor_id


def _post_tier(w: World, rank: int) -> int:
    response = w.client().post(f"{MD}/tiers", json={"name": f"t{rank}", "rank": rank}, headers=w.owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _said(responses) -> list[tuple[int, str]]:
    """What each response answered (a 204 has no JSON to show)."""
    return [(r.status_code, r.get_data(as_text=True)[:300]) for r in responses]


def _product_of(app: Flask, w: World) -> int:
    return _count(app, select(Sku.product_id).where(Sku.id == w.sku_id))


def race_distribution_settings_first_change(app: Flask) -> None:
    """The program's row is made by the first change: changes at once leave one row, all 200."""
    for _ in range(ROUNDS):
        w = _world(app)
        bodies = [{**PROGRAM, "rates_bp": [1000 + i, 500]} for i in range(4)]
        responses = _together(w, *[("patch", f"{MD}/settings", body) for body in bodies])
        assert set(_no_5xx(responses)) == {200}
        assert _count(app, select(func.count()).where(Program.merchant_id == w.merchant_id)) == 1


def race_distribution_applications(app: Flask) -> None:
    """A member applies from several launches at once: all 200, one distributor, active."""
    w = _world(app)
    opened = w.client().patch(f"{MD}/settings", json=PROGRAM, headers=w.owner)
    assert opened.status_code == 200, opened.json
    url = f"{V1}/distribution/application"
    responses = race(8, lambda i: w.client().post(url, json={"note": f"第{i}次"}, headers=w.member))
    assert set(_no_5xx(responses)) == {200}
    assert {r.json["status"] for r in responses} == {"active"}
    assert _count(app, select(func.count()).where(Distributor.merchant_id == w.merchant_id)) == 1


def race_distribution_tier_ranks(app: Flask) -> None:
    """Two tiers of one rank at once: one is made, the others 409 tier_rank_taken; other ranks all made."""
    w = _world(app)
    for rank in range(1, ROUNDS + 1):
        body = {"name": f"同级{rank}", "rank": rank}
        responses = race(4, lambda i, body=body: w.client().post(f"{MD}/tiers", json=body, headers=w.owner))
        assert Counter(_no_5xx(responses)) == {201: 1, 409: 3}
        assert _codes(responses, 409) == {"tier_rank_taken"}
    responses = race(6, lambda i: w.client().post(f"{MD}/tiers", json={"name": "x", "rank": 50 + i}, headers=w.owner))
    assert set(_no_5xx(responses)) == {201}
    assert _count(app, select(func.count()).where(Tier.merchant_id == w.merchant_id)) == ROUNDS + 6


def race_distribution_tier_deletes(app: Flask) -> None:
    """One tier deleted five times at once: one 204, four 404."""
    w = _world(app)
    outcomes = []
    for rank in range(1, ROUNDS + 1):
        tier_id = _post_tier(w, rank)
        responses = _together(w, *[("delete", f"{MD}/tiers/{tier_id}", None)] * 5)
        outcomes.append(Counter(_no_5xx(responses)))
        assert set(outcomes[-1]) <= {204, 404}, _said(responses)
        assert _codes(responses, 404) <= {"not_found"}
        assert _count(app, select(func.count()).where(Tier.id == tier_id)) == 0
    assert all(outcome == {204: 1, 404: 4} for outcome in outcomes), outcomes


def race_distribution_tier_against_its_delete(app: Flask) -> None:
    """A distributor put in a tier (or the tier edited) while it is deleted: in turn, either the
    change lands and the delete empties it, or the tier is gone (422 naming tier_id; an edit 404)."""
    w = _world(app)
    distributor_id = _distributor(w)
    for rank in range(1, ROUNDS + 1):
        tier_id = _post_tier(w, rank)
        put, delete = _together(
            w,
            ("put", f"{MD}/distributors/{distributor_id}/tier", {"tier_id": tier_id}),
            ("delete", f"{MD}/tiers/{tier_id}", None),
        )
        pair = tuple(_no_5xx([put, delete]))
        assert pair in {(200, 204), (422, 204)}, _said([put, delete])
        if pair == (422, 204):
            assert "tier_id" in put.json["error"]["details"]["fields"], put.json
        assert _count(app, select(Distributor.tier_id).where(Distributor.id == distributor_id)) is None
    for rank in range(ROUNDS + 1, 2 * ROUNDS + 1):
        tier_id = _post_tier(w, rank)
        edit, delete = _together(
            w, ("patch", f"{MD}/tiers/{tier_id}", {"name": "改名"}), ("delete", f"{MD}/tiers/{tier_id}", None)
        )
        assert tuple(_no_5xx([edit, delete])) in {(200, 204), (404, 204)}, _said([edit, delete])


def race_distribution_override_puts(app: Flask) -> None:
    """The same product's (and SKU's) override set several times at once: one row each, no 5xx;
    a loser may be told 409 override_exists, and the row holds what one of the 200s said."""
    w = _world(app)
    product_id = _product_of(app, w)
    for sku_id in (None, w.sku_id):
        bodies = [
            {"product_id": product_id, "sku_id": sku_id, "level": 1, "mode": "rate", "rate_bp": 1000 + i}
            for i in range(6)
        ]
        responses = _together(w, *[("put", f"{MD}/overrides", body) for body in bodies])
        statuses = _no_5xx(responses)
        assert set(statuses) <= {200, 409} and 200 in statuses, _said(responses)
        assert _codes(responses, 409) <= {"override_exists"}
        same = Override.sku_id.is_(None) if sku_id is None else Override.sku_id == sku_id
        rows = select(Override.rate_bp).where(Override.merchant_id == w.merchant_id, Override.level == 1, same)
        with app.app_context():
            try:
                rates = list(db.session.execute(rows).scalars())
            finally:
                db.session.remove()
        assert len(rates) == 1
        assert rates[0] in {r.json["rate_bp"] for r in responses if r.status_code == 200}


def race_distribution_override_deletes(app: Flask) -> None:
    """One override removed five times at once: one 204, four 404."""
    w = _world(app)
    product_id = _product_of(app, w)
    for level in (1, 2) * (ROUNDS // 2):
        body = {"product_id": product_id, "level": level, "mode": "none"}
        made = w.client().put(f"{MD}/overrides", json=body, headers=w.owner)
        assert made.status_code == 200, made.json
        responses = _together(w, *[("delete", f"{MD}/overrides/{made.json['id']}", None)] * 5)
        assert Counter(_no_5xx(responses)) == {204: 1, 404: 4}
        assert _count(app, select(func.count()).where(Override.id == made.json["id"])) == 0


def race_distribution_adjustments(app: Flask) -> None:
    """Adjustments at once all apply: the balance is their sum, one ledger entry each."""
    w = _world(app)
    distributor_id = _distributor(w)
    amounts = [100, 200, -50, 300, 400, -150, 500, 600]
    url = f"{MD}/distributors/{distributor_id}/adjustments"
    responses = race(
        len(amounts), lambda i: w.client().post(url, json={"amount": amounts[i], "reason": "补发"}, headers=w.owner)
    )
    assert set(_no_5xx(responses)) == {201}
    assert sorted(r.json["available"] for r in responses) == sorted(amounts)
    assert _count(app, select(Distributor.available).where(Distributor.id == distributor_id)) == sum(amounts)
    entries = select(func.count(), func.sum(LedgerEntry.d_available)).where(
        LedgerEntry.distributor_id == distributor_id, LedgerEntry.kind == "adjustment"
    )
    with app.app_context():
        try:
            assert tuple(db.session.execute(entries).one()) == (len(amounts), sum(amounts))
        finally:
            db.session.remove()


def race_distribution_withdrawals(app: Flask) -> None:
    """Eight withdrawals of 10 yuan at once from 35 yuan: three are made, five 409
    insufficient_balance, and the balance never goes below 0."""
    w = _world(app)
    distributor_id = _distributor(w, balance=3500)
    url = f"{V1}/distribution/withdrawals"
    responses = race(8, lambda i: w.client().post(url, json={"amount": 1000}, headers=w.member))
    assert Counter(_no_5xx(responses)) == {201: 3, 409: 5}
    assert _codes(responses, 409) == {"insufficient_balance"}
    with app.app_context():
        try:
            row = db.session.get(Distributor, distributor_id)
            assert (row.available, row.withdrawing, row.withdrawn) == (500, 3000, 0)
            ledger = select(func.sum(LedgerEntry.d_available), func.sum(LedgerEntry.d_withdrawing)).where(
                LedgerEntry.distributor_id == distributor_id
            )
            assert tuple(db.session.execute(ledger).one()) == (500, 3000)
            made = select(func.count(), func.sum(Withdrawal.amount)).where(Withdrawal.distributor_id == distributor_id)
            assert tuple(db.session.execute(made).one()) == (3, 3000)
        finally:
            db.session.remove()


# --- campaigns (lottery, prizes, upgrades)
def _campaign_body(**overrides: Any) -> dict[str, Any]:
    """A running `once` campaign: first prize (1 of it) and second (5), no odds; the guaranteed
    third has all of them, so every draw wins it (no roll to rig)."""
    now = utcnow()
    return {
        "name": "周年庆抽奖",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "entry_rule": "once",
        "tiers": [
            {"name": "一等奖", "prize_kind": "gift", "quota": 1, "odds_bp": 0, "cost": 30000},
            {"name": "二等奖", "prize_kind": "gift", "quota": 5, "odds_bp": 0, "cost": 10000},
            {"name": "三等奖", "prize_kind": "gift", "odds_bp": 10000, "guaranteed": True, "cost": 1000},
        ],
        **overrides,
    }


def _post_campaign(w: World, **overrides: Any) -> tuple[int, list[int]]:
    """A campaign of the world's merchant: its id and its tiers' ids, best first."""
    response = w.client().post(f"{M}/campaigns", json=_campaign_body(**overrides), headers=w.owner)
    assert response.status_code == 201, response.json
    return response.json["id"], [tier["id"] for tier in response.json["tiers"]]


def _post_offer(w: World, campaign_id: int, from_tier_id: int, to_tier_id: int) -> int:
    body = {"from_tier_id": from_tier_id, "to_tier_id": to_tier_id, "price": 9900}
    response = w.client().post(f"{M}/campaigns/{campaign_id}/upgrade-offers", json=body, headers=w.owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _drawn_prize(w: World, member: dict[str, str], campaign_id: int) -> int:
    headers = {**member, "Idempotency-Key": f"race-sweep-setup-{next(_seq):06d}"}
    response = w.client().post(f"{V1}/campaigns/{campaign_id}/draws", headers=headers)
    assert response.status_code == 201, response.json
    return response.json["prize"]["id"]


def race_campaign_creations(app: Flask) -> None:
    """Campaigns created at once (a double click): names are not unique, every one is made with
    its own tiers, ranked 1-3."""
    w = _world(app)
    responses = race(6, lambda i: w.client().post(f"{M}/campaigns", json=_campaign_body(), headers=w.owner))
    assert set(_no_5xx(responses)) == {201}, _said(responses)
    assert len({r.json["id"] for r in responses}) == 6
    assert all([t["rank"] for t in r.json["tiers"]] == [1, 2, 3] for r in responses)
    assert _count(app, select(func.count()).where(Campaign.merchant_id == w.merchant_id)) == 6
    assert _count(app, select(func.count()).where(CampaignTier.merchant_id == w.merchant_id)) == 18


def race_campaign_upgrade_offers(app: Flask) -> None:
    """The same pair of tiers offered four times at once: one offer, three 409 offer_exists."""
    w = _world(app)
    campaign_id, tiers = _post_campaign(w)
    url = f"{M}/campaigns/{campaign_id}/upgrade-offers"
    for source, target in ((2, 0), (2, 1), (1, 0)):
        body = {"from_tier_id": tiers[source], "to_tier_id": tiers[target]}
        responses = race(4, lambda i, body=body: w.client().post(url, json={**body, "price": 100 + i}, headers=w.owner))
        assert Counter(_no_5xx(responses)) == {201: 1, 409: 3}, _said(responses)
        assert _codes(responses, 409) == {"offer_exists"}
        pair = select(func.count()).where(
            UpgradeOffer.from_tier_id == tiers[source], UpgradeOffer.to_tier_id == tiers[target]
        )
        assert _count(app, pair) == 1
    assert _count(app, select(func.count()).where(UpgradeOffer.campaign_id == campaign_id)) == 3


def race_campaign_draws(app: Flask) -> None:
    """A member's draw sent eight times with one Idempotency-Key: one draw, answered 201 once and
    200 (the same draw) for the rest. Six keys at once in a `once` campaign: one draw, five 409
    no_entries. Six members at once on a tier of 1 (the guaranteed one below): one wins it, five
    fall back, and the tier never gives more than its quota."""
    w = _world(app)
    campaign_id, _ = _post_campaign(w)
    url = f"{V1}/campaigns/{campaign_id}/draws"
    headers = {**w.member, "Idempotency-Key": "race-sweep-draw-0001"}
    responses = race(8, lambda i: w.client().post(url, headers=headers))
    assert Counter(_no_5xx(responses)) == {201: 1, 200: 7}, _said(responses)
    assert len({r.json["id"] for r in responses}) == 1
    assert len({r.json["prize"]["id"] for r in responses}) == 1
    assert _count(app, select(func.count()).where(CampaignDraw.campaign_id == campaign_id)) == 1
    assert _count(app, select(func.count()).where(Prize.campaign_id == campaign_id)) == 1

    campaign_id, _ = _post_campaign(w)
    url = f"{V1}/campaigns/{campaign_id}/draws"
    responses = race(
        6, lambda i: w.client().post(url, headers={**w.member, "Idempotency-Key": f"race-sweep-once-{i:04d}"})
    )
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 5}, _said(responses)
    assert _codes(responses, 409) == {"no_entries"}
    assert _count(app, select(func.count()).where(CampaignDraw.campaign_id == campaign_id)) == 1

    first = {"name": "一等奖", "prize_kind": "gift", "quota": 1, "odds_bp": 10000}
    rest = {"name": "参与奖", "prize_kind": "gift", "odds_bp": 0, "guaranteed": True}
    campaign_id, tiers = _post_campaign(w, tiers=[first, rest])
    url = f"{V1}/campaigns/{campaign_id}/draws"
    members = [member_headers(w.client(), w.code, f"drawer{next(_seq)}") for _ in range(6)]
    responses = race(
        6, lambda i: w.client().post(url, headers={**members[i], "Idempotency-Key": "race-sweep-stampede"})
    )
    assert set(_no_5xx(responses)) == {201}, _said(responses)
    assert sorted(r.json["fell_back"] for r in responses) == [False] + [True] * 5
    assert Counter(r.json["prize"]["tier_id"] for r in responses) == {tiers[0]: 1, tiers[1]: 5}
    assert _count(app, select(CampaignTier.taken).where(CampaignTier.id == tiers[0])) == 1
    assert _count(app, select(func.count()).where(Prize.campaign_id == campaign_id)) == 6


def race_prize_upgrades(app: Flask) -> None:
    """One prize upgraded six times at once with different keys: one upgrade order, five 409
    prize_not_upgradable, one of the better tier's quota taken. Another prize upgraded six times
    with one key: one order, answered 201 once and 200 for the rest."""
    w = _world(app)
    campaign_id, tiers = _post_campaign(w)
    to_first = _post_offer(w, campaign_id, tiers[2], tiers[0])
    prize_id = _drawn_prize(w, w.member, campaign_id)
    url = f"{V1}/prizes/{prize_id}/upgrade"
    responses = race(
        6,
        lambda i: w.client().post(
            url, json={"offer_id": to_first}, headers={**w.member, "Idempotency-Key": f"race-sweep-upgrade-{i:04d}"}
        ),
    )
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 5}, _said(responses)
    assert _codes(responses, 409) == {"prize_not_upgradable"}
    assert _count(app, select(func.count()).where(PrizeUpgrade.from_prize_id == prize_id)) == 1
    upgrades = select(func.count()).where(Order.merchant_id == w.merchant_id, Order.kind == "prize_upgrade")
    assert _count(app, upgrades) == 1
    assert _count(app, select(CampaignTier.taken).where(CampaignTier.id == tiers[0])) == 1
    assert _count(app, select(Prize.status).where(Prize.id == prize_id)) == "held"

    to_second = _post_offer(w, campaign_id, tiers[2], tiers[1])
    other = member_headers(w.client(), w.code, f"upgrader{next(_seq)}")
    prize_id = _drawn_prize(w, other, campaign_id)
    url = f"{V1}/prizes/{prize_id}/upgrade"
    headers = {**other, "Idempotency-Key": "race-sweep-upgrade-same"}
    responses = race(6, lambda i: w.client().post(url, json={"offer_id": to_second}, headers=headers))
    assert Counter(_no_5xx(responses)) == {201: 1, 200: 5}, _said(responses)
    assert len({r.json["id"] for r in responses}) == 1
    assert _count(app, select(func.count()).where(PrizeUpgrade.from_prize_id == prize_id)) == 1
    assert _count(app, upgrades) == 2
    assert _count(app, select(CampaignTier.taken).where(CampaignTier.id == tiers[1])) == 1


def race_referral_rewards(app: Flask) -> None:
    """Six rewards made at once (a double click): six rewards. Then a new member's first login
    through the invite sent six times at once: one member, one reward earned, issued once."""
    w = _world(app)
    template = w.client().post(
        f"{M}/coupon-templates",
        json={"name": "邀请有礼", "kind": "amount_off", "amount": 500, "valid_days": 7, "total_quantity": 50},
        headers=w.owner,
    )
    assert template.status_code == 201, template.json
    body = {"name": "邀请新人", "trigger": "joined", "reward_kind": "coupon", "template_id": template.json["id"]}
    responses = race(6, lambda i: w.client().post(f"{M}/referral-rewards", json=body, headers=w.owner))
    assert set(_no_5xx(responses)) == {201}, _said(responses)
    assert _count(app, select(func.count()).where(ReferralReward.merchant_id == w.merchant_id)) == 6

    invite = w.client().get(f"{V1}/me", headers=w.member).json["invite_code"]
    login = {"merchant": w.code, "code": f"test:invitee{next(_seq)}", "invite": invite}
    responses = race(6, lambda i: w.client().post(f"{V1}/auth/wx-login", json=login))
    assert set(_no_5xx(responses)) <= {200, 409}, _said(responses)
    assert sum(r.json.get("new_member", False) for r in responses if r.status_code == 200) == 1
    with app.app_context():
        run_burst(app)
        db.session.remove()
    grants = select(func.count()).where(ReferralGrant.merchant_id == w.merchant_id, ReferralGrant.status == "issued")
    assert _count(app, grants) == 6  # one per reward, for the one invitee


# --- flash sales (秒杀)
def _flash_sale_body(w: World, **overrides: Any) -> dict[str, Any]:
    """A running flash sale of the world's SKU: from a minute ago to an hour from now."""
    now = utcnow()
    return {
        "sku_id": w.sku_id,
        "price": 990,
        "quota": 10,
        "per_member_limit": 5,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        **overrides,
    }


def _post_flash_sale(w: World, **overrides: Any) -> int:
    response = w.client().post(f"{M}/flash-sales", json=_flash_sale_body(w, **overrides), headers=w.owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _flash_order(quantity: int = 1) -> dict[str, Any]:
    return {"quantity": quantity, "fulfilment": "delivery", "address": order_body(0)["address"]}


def _units(app: Flask, offer_id: int, *, held: bool) -> int:
    taken = OfferUnit.order_id.is_not(None) if held else OfferUnit.order_id.is_(None)
    return _count(app, select(func.count()).where(OfferUnit.offer_id == offer_id, taken))


def _sku_stock_is_its_movements(app: Flask, w: World) -> int:
    stock = _count(app, select(Sku.stock).where(Sku.id == w.sku_id))
    assert stock == _count(app, select(func.sum(StockMovement.delta)).where(StockMovement.sku_id == w.sku_id))
    return stock


def race_flash_sale_creations(app: Flask) -> None:
    """Eight sales of 100 units at once on a SKU of 500 (a double click, or two staff): five are
    made, three 409 insufficient_stock; the SKU is left with none, and its stock is still the sum
    of its movements."""
    w = _world(app)
    body = _flash_sale_body(w, quota=100)
    responses = race(8, lambda i: w.client().post(f"{M}/flash-sales", json=body, headers=w.owner))
    assert Counter(_no_5xx(responses)) == {201: 5, 409: 3}, _said(responses)
    assert _codes(responses, 409) == {"insufficient_stock"}
    assert _count(app, select(func.count()).where(Offer.merchant_id == w.merchant_id)) == 5
    assert _count(app, select(func.count()).where(OfferUnit.merchant_id == w.merchant_id)) == 500
    assert _sku_stock_is_its_movements(app, w) == 0


def race_flash_orders(app: Flask) -> None:
    """A flash order sent eight times with one Idempotency-Key: one order, 201 once and 200 (the
    same order) for the rest. Six keys at once from one member within a limit of 2: two orders,
    four 409 offer_limit_reached. Eight members at once on the last 3 units: three orders, five
    409 sold_out, and no unit is held twice. The SKU's own stock never moves."""
    w = _world(app)
    offer_id = _post_flash_sale(w)
    url = f"{V1}/flash-sales/{offer_id}/orders"
    headers = {**w.member, "Idempotency-Key": "race-sweep-flash-0001"}
    responses = race(8, lambda i: w.client().post(url, json=_flash_order(2), headers=headers))
    assert Counter(_no_5xx(responses)) == {201: 1, 200: 7}, _said(responses)
    assert len({r.json["id"] for r in responses}) == 1
    assert _count(app, select(func.count()).where(IdempotencyKey.key == "race-sweep-flash-0001")) == 1
    assert _count(app, select(func.count()).where(Order.merchant_id == w.merchant_id)) == 1
    assert _units(app, offer_id, held=True) == 2
    assert _count(app, select(func.sum(OfferBuyer.quantity)).where(OfferBuyer.offer_id == offer_id)) == 2

    offer_id = _post_flash_sale(w, per_member_limit=2)
    url = f"{V1}/flash-sales/{offer_id}/orders"
    responses = race(
        6,
        lambda i: w.client().post(
            url, json=_flash_order(), headers={**w.member, "Idempotency-Key": f"race-sweep-flash-limit-{i:04d}"}
        ),
    )
    assert Counter(_no_5xx(responses)) == {201: 2, 409: 4}, _said(responses)
    assert _codes(responses, 409) == {"offer_limit_reached"}
    assert _units(app, offer_id, held=True) == 2
    assert _count(app, select(OfferBuyer.quantity).where(OfferBuyer.offer_id == offer_id)) == 2

    members = [member_headers(w.client(), w.code, f"flasher{next(_seq)}") for _ in range(8)]
    for round_ in range(3):
        offer_id = _post_flash_sale(w, quota=3, per_member_limit=1)
        url = f"{V1}/flash-sales/{offer_id}/orders"
        key = f"race-sweep-flash-stampede-{round_}"  # a key is one request: a new sale needs a new one
        responses = race(
            8,
            lambda i, url=url, key=key: w.client().post(
                url, json=_flash_order(), headers={**members[i], "Idempotency-Key": key}
            ),
        )
        assert Counter(_no_5xx(responses)) == {201: 3, 409: 5}, _said(responses)
        assert _codes(responses, 409) == {"sold_out"}
        assert (_units(app, offer_id, held=True), _units(app, offer_id, held=False)) == (3, 0)
        held = select(func.count(func.distinct(OfferUnit.order_id))).where(OfferUnit.offer_id == offer_id)
        assert _count(app, held) == 3
    assert _sku_stock_is_its_movements(app, w) == 500 - 10 - 10 - 3 * 3  # only the quotas left the SKU


# --- group buys (拼团)
def _group_buy_body(w: World, **overrides: Any) -> dict[str, Any]:
    """A running group buy of 3-member groups on the world's SKU: from a minute ago to a day from now."""
    now = utcnow()
    return {
        "sku_id": w.sku_id,
        "price": 990,
        "group_size": 3,
        "time_limit_hours": 24,
        "quota": 10,
        "per_member_limit": 5,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        **overrides,
    }


def _post_group_buy(w: World, **overrides: Any) -> int:
    response = w.client().post(f"{M}/group-buys", json=_group_buy_body(w, **overrides), headers=w.owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _forming_group(w: World, offer_id: int) -> int:
    """A group of the offer opened by a new member of the world's merchant, who paid: forming."""
    initiator = member_headers(w.client(), w.code, f"initiator{next(_seq)}")
    headers = {**initiator, "Idempotency-Key": f"race-sweep-group-setup-{next(_seq):04d}"}
    opened = w.client().post(f"{V1}/group-buys/{offer_id}/groups", json=_flash_order(), headers=headers)
    assert opened.status_code == 201, opened.json
    assert fake_pay(w.client(), opened.json["order"]["order_no"]).status_code == 200
    group = w.client().get(f"{V1}/groups/{opened.json['group']['id']}", headers=initiator).json
    assert (group["status"], group["joined"]) == ("forming", 1), group
    return group["id"]


def _groups(app: Flask, offer_id: int) -> int:
    return _count(app, select(func.count()).where(Group.offer_id == offer_id))


def _group_orders(app: Flask, group_id: int, member_id: int | None = None) -> int:
    query = select(func.count()).where(GroupOrder.group_id == group_id)
    if member_id is not None:
        query = query.where(GroupOrder.member_id == member_id)
    return _count(app, query)


def race_group_buy_creations(app: Flask) -> None:
    """Eight group buys of 100 units at once on a SKU of 500 (a double click, or two staff): five
    are made, three 409 insufficient_stock; the SKU is left with none, and its stock is still the
    sum of its movements."""
    w = _world(app)
    body = _group_buy_body(w, quota=100)
    responses = race(8, lambda i: w.client().post(f"{M}/group-buys", json=body, headers=w.owner))
    assert Counter(_no_5xx(responses)) == {201: 5, 409: 3}, _said(responses)
    assert _codes(responses, 409) == {"insufficient_stock"}
    assert len({r.json["id"] for r in responses if r.status_code == 201}) == 5
    made = select(func.count()).where(Offer.merchant_id == w.merchant_id, Offer.kind == "group_buy")
    assert _count(app, made) == 5
    assert _count(app, select(func.count()).where(OfferUnit.merchant_id == w.merchant_id)) == 500
    assert _sku_stock_is_its_movements(app, w) == 0


def race_group_opens(app: Flask) -> None:
    """A group opened eight times with one Idempotency-Key: one group and one order, 201 once
    and 200 (the same group and order) for the rest. Six keys at once from one member within a
    limit of 2: two groups, four 409 offer_limit_reached. Eight members at once on the last 3
    units: three groups, five 409 sold_out, and no unit is held twice. The SKU's own stock never
    moves."""
    w = _world(app)
    member_id = w.client().get(f"{V1}/me", headers=w.member).json["id"]
    offer_id = _post_group_buy(w)
    url = f"{V1}/group-buys/{offer_id}/groups"
    headers = {**w.member, "Idempotency-Key": "race-sweep-group-open-0001"}
    responses = race(8, lambda i: w.client().post(url, json=_flash_order(2), headers=headers))
    assert Counter(_no_5xx(responses)) == {201: 1, 200: 7}, _said(responses)
    assert len({r.json["order"]["id"] for r in responses}) == 1
    assert len({r.json["group"]["id"] for r in responses}) == 1
    assert {r.json["group"]["status"] for r in responses} == {"opening"}
    assert _count(app, select(func.count()).where(IdempotencyKey.key == "race-sweep-group-open-0001")) == 1
    assert _count(app, select(func.count()).where(Order.merchant_id == w.merchant_id)) == 1
    assert _groups(app, offer_id) == 1
    assert _group_orders(app, responses[0].json["group"]["id"], member_id) == 1
    assert _units(app, offer_id, held=True) == 2
    assert _count(app, select(func.sum(OfferBuyer.quantity)).where(OfferBuyer.offer_id == offer_id)) == 2

    offer_id = _post_group_buy(w, per_member_limit=2)
    url = f"{V1}/group-buys/{offer_id}/groups"
    responses = race(
        6,
        lambda i: w.client().post(
            url, json=_flash_order(), headers={**w.member, "Idempotency-Key": f"race-sweep-group-limit-{i:04d}"}
        ),
    )
    assert Counter(_no_5xx(responses)) == {201: 2, 409: 4}, _said(responses)
    assert _codes(responses, 409) == {"offer_limit_reached"}
    assert _groups(app, offer_id) == 2  # a refused opening leaves no group behind
    assert _units(app, offer_id, held=True) == 2
    assert _count(app, select(OfferBuyer.quantity).where(OfferBuyer.offer_id == offer_id)) == 2

    members = [member_headers(w.client(), w.code, f"opener{next(_seq)}") for _ in range(8)]
    for round_ in range(3):
        offer_id = _post_group_buy(w, quota=3, per_member_limit=1)
        url = f"{V1}/group-buys/{offer_id}/groups"
        key = f"race-sweep-group-stampede-{round_}"  # a key is one request: a new group buy needs a new one
        responses = race(
            8,
            lambda i, url=url, key=key: w.client().post(
                url, json=_flash_order(), headers={**members[i], "Idempotency-Key": key}
            ),
        )
        assert Counter(_no_5xx(responses)) == {201: 3, 409: 5}, _said(responses)
        assert _codes(responses, 409) == {"sold_out"}
        assert len({r.json["group"]["id"] for r in responses if r.status_code == 201}) == 3
        assert _groups(app, offer_id) == 3
        assert (_units(app, offer_id, held=True), _units(app, offer_id, held=False)) == (3, 0)
        held = select(func.count(func.distinct(OfferUnit.order_id))).where(OfferUnit.offer_id == offer_id)
        assert _count(app, held) == 3
    assert _sku_stock_is_its_movements(app, w) == 500 - 10 - 10 - 3 * 3  # only the quotas left the SKU


def race_group_joins(app: Flask) -> None:
    """Joining a forming group sent eight times with one Idempotency-Key: one order, 201 once and
    200 (the same order, the same group) for the rest. Six members joining the two seats left of
    a group at once, then paying at once: two seats are taken, the group succeeds full, the four
    late payments are cancelled and refunded, and no seat is held twice."""
    w = _world(app)
    member_id = w.client().get(f"{V1}/me", headers=w.member).json["id"]
    offer_id = _post_group_buy(w)
    group_id = _forming_group(w, offer_id)
    url = f"{V1}/groups/{group_id}/orders"
    headers = {**w.member, "Idempotency-Key": "race-sweep-group-join-0001"}
    responses = race(8, lambda i: w.client().post(url, json=_flash_order(2), headers=headers))
    assert Counter(_no_5xx(responses)) == {201: 1, 200: 7}, _said(responses)
    assert len({r.json["order"]["id"] for r in responses}) == 1
    assert {r.json["group"]["id"] for r in responses} == {group_id}
    assert _count(app, select(func.count()).where(IdempotencyKey.key == "race-sweep-group-join-0001")) == 1
    assert _group_orders(app, group_id, member_id) == 1
    assert _group_orders(app, group_id) == 2  # the initiator's and the member's
    assert _units(app, offer_id, held=True) == 1 + 2

    offer_id = _post_group_buy(w, per_member_limit=1)
    group_id = _forming_group(w, offer_id)
    url = f"{V1}/groups/{group_id}/orders"
    members = [member_headers(w.client(), w.code, f"joiner{next(_seq)}") for _ in range(6)]
    responses = race(
        6,
        lambda i: w.client().post(
            url, json=_flash_order(), headers={**members[i], "Idempotency-Key": "race-sweep-group-stampede"}
        ),
    )
    assert set(_no_5xx(responses)) == {201}, _said(responses)  # the seats are the payments' to claim
    orders = [r.json["order"] for r in responses]
    paid = race(6, lambda i: fake_pay(w.client(), orders[i]["order_no"]))
    assert set(_no_5xx(paid)) == {200}, _said(paid)
    group = w.client().get(f"{V1}/groups/{group_id}", headers=w.member).json
    assert (group["status"], group["joined"], group["seats_left"]) == ("succeeded", 3, 0), group
    assert [m["seat"] for m in group["members"]] == [1, 2, 3]
    statuses = select(Order.status, func.count()).where(Order.id.in_([o["id"] for o in orders])).group_by(Order.status)
    late = select(func.count()).where(Refund.order_id.in_([o["id"] for o in orders]), Refund.kind == "late_payment")
    seated = select(func.count(func.distinct(GroupOrder.seat))).where(
        GroupOrder.group_id == group_id, GroupOrder.seat.is_not(None)
    )
    with app.app_context():
        try:
            assert dict(db.session.execute(statuses).all()) == {"paid": 2, "cancelled": 4}
        finally:
            db.session.remove()
    assert _count(app, late) == 4
    assert _count(app, seated) == 3
    assert _units(app, offer_id, held=True) == 3  # the cancelled orders' units went back to the offer
    assert _sku_stock_is_its_movements(app, w) == 500 - 10 - 10  # only the quotas left the SKU


def race_group_joins_by_one_member(app: Flask) -> None:
    """One member joining a forming group with six keys at once (six taps on "参团"): one order,
    five 409 already_in_group, as when the taps come one after the other."""
    w = _world(app)
    offer_id = _post_group_buy(w)
    group_id = _forming_group(w, offer_id)
    url = f"{V1}/groups/{group_id}/orders"
    joiner = member_headers(w.client(), w.code, f"joiner{next(_seq)}")
    joiner_id = w.client().get(f"{V1}/me", headers=joiner).json["id"]
    responses = race(
        6,
        lambda i: w.client().post(
            url, json=_flash_order(), headers={**joiner, "Idempotency-Key": f"race-sweep-group-twice-{i:04d}"}
        ),
    )
    assert Counter(_no_5xx(responses)) == {201: 1, 409: 5}, _said(responses)
    assert _codes(responses, 409) == {"already_in_group"}
    assert _group_orders(app, group_id, joiner_id) == 1
    assert _units(app, offer_id, held=True) == 1 + 1  # the initiator's and the member's


RACES: list[tuple[Callable[[Flask], None], set[tuple[str, str]]]] = [
    (race_staff_same_username, {("POST", f"{M}/staff")}),
    (race_first_settings_change, {("PATCH", f"{M}/settings/orders")}),
    (race_owners_demoting_each_other, {("PATCH", f"{M}/staff/<id>")}),
    (race_category_creations, {("POST", f"{M}/categories")}),
    (race_sub_category_against_parent_delete, {("POST", f"{M}/categories"), ("DELETE", f"{M}/categories/<id>")}),
    (race_product_against_category_delete, {("POST", f"{M}/products"), ("DELETE", f"{M}/categories/<id>")}),
    (race_product_recategorised_against_category_delete, {("PATCH", f"{M}/products/<id>")}),
    (race_category_delete_against_itself_and_an_edit, {("DELETE", f"{M}/categories/<id>")}),
    (
        race_cart_lines,
        {("POST", f"{V1}/cart/items"), ("PUT", f"{V1}/cart/items/<id>"), ("DELETE", f"{V1}/cart/items/<id>")},
    ),
    (race_orders_with_one_key, {("POST", f"{V1}/orders")}),
    (race_refund_requests, {("POST", f"{V1}/orders/<id>/refunds")}),
    (race_pickup_points, {("POST", f"{M}/pickup-points")}),
    (race_stock_adjustments, {("POST", f"{M}/skus/<id>/stock-adjustments")}),
    (race_first_logins, {("POST", f"{V1}/auth/wx-login")}),
    (race_staff_refunds, {("POST", f"{M}/orders/<id>/refunds")}),
    (race_invite_opens, {("POST", f"{V1}/invites/<id>/open")}),
    (race_coupon_templates_and_their_edits, {("POST", f"{M}/coupon-templates")}),
    (race_coupon_claims, {("POST", f"{V1}/coupon-centre/<id>/claim")}),
    (race_coupon_grants, set()),
    (race_distribution_settings_first_change, {("PATCH", f"{MD}/settings")}),
    (race_distribution_applications, {("POST", f"{V1}/distribution/application")}),
    (race_distribution_tier_ranks, {("POST", f"{MD}/tiers")}),
    (race_distribution_tier_deletes, {("DELETE", f"{MD}/tiers/<id>")}),
    (race_distribution_tier_against_its_delete, {("DELETE", f"{MD}/tiers/<id>")}),
    (race_distribution_override_puts, {("PUT", f"{MD}/overrides")}),
    (race_distribution_override_deletes, {("DELETE", f"{MD}/overrides/<id>")}),
    (race_distribution_adjustments, {("POST", f"{MD}/distributors/<id>/adjustments")}),
    (race_distribution_withdrawals, {("POST", f"{V1}/distribution/withdrawals")}),
    (race_campaign_creations, {("POST", f"{M}/campaigns")}),
    (race_campaign_upgrade_offers, {("POST", f"{M}/campaigns/<id>/upgrade-offers")}),
    (race_campaign_draws, {("POST", f"{V1}/campaigns/<id>/draws")}),
    (race_prize_upgrades, {("POST", f"{V1}/prizes/<id>/upgrade")}),
    (race_referral_rewards, {("POST", f"{M}/referral-rewards")}),
    (race_flash_sale_creations, {("POST", f"{M}/flash-sales")}),
    (race_flash_orders, {("POST", f"{V1}/flash-sales/<id>/orders")}),
    (race_group_buy_creations, {("POST", f"{M}/group-buys")}),
    (race_group_opens, {("POST", f"{V1}/group-buys/<id>/groups")}),
    (race_group_joins, {("POST", f"{V1}/groups/<id>/orders")}),
    (race_group_joins_by_one_member, {("POST", f"{V1}/groups/<id>/orders")}),
]

# Routes that write by inserting a row on first use (an upsert answers 200, not 201).
UPSERTS = {
    ("PATCH", f"{M}/settings/orders"),
    ("PUT", f"{V1}/cart/items/<id>"),
    ("POST", f"{V1}/auth/wx-login"),
    ("POST", f"{V1}/invites/<id>/open"),  # records an open (200), once per launch
    ("PATCH", f"{MD}/settings"),  # the distribution program's row, made by its first change
    ("POST", f"{V1}/distribution/application"),  # the member's distributor row, made once
    ("PUT", f"{MD}/overrides"),  # a product's (or SKU's) override at a level: made or replaced
}


@pytest.mark.parametrize("run", [r for r, _ in RACES], ids=[r.__name__ for r, _ in RACES])
def test_racing_creates_and_deletes_never_answer_5xx_and_one_wins(app, run):
    run(app)


def _rule(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?\w+>", "<id>", rule)


def test_every_route_that_creates_or_deletes_is_raced(app, client):
    spec = client.get("/api/openapi.json").json
    creating: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        path = _rule(rule.rule)
        openapi_path = rule.rule
        for converter in ("int:", ""):
            openapi_path = openapi_path.replace(f"<{converter}", "{")
        openapi_path = openapi_path.replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            responses = spec["paths"].get(openapi_path, {}).get(method.lower(), {}).get("responses", {})
            if method == "DELETE" or "201" in responses or (method, path) in UPSERTS:
                creating.add((method, path))
    covered = set().union(*(routes for _, routes in RACES))
    assert creating, "no creating route found: the walk is broken"
    assert creating - covered == set()
