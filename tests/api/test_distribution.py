"""Distribution over HTTP: the program's settings, joining, binding through invites, commissions on
paid orders, refunds before and after settlement, settlement, the dashboard, adjustments,
withdrawals and their decisions, and the reconciliation after all of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from api.worker import run_burst
from distribution.models import Binding, Commission
from shop.core.db import db, transaction, utcnow
from tests.factories import (
    completed_order,
    make_merchant,
    make_product,
    make_staff,
    order_body,
    paid_order,
    staff_headers,
)

S = "/api/v1/merchant/distribution"
D = "/api/v1/distribution"


def _login(client, code: str, name: str, invite: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    body = {"merchant": code, "code": f"test:{name}"}
    if invite:
        body["invite"] = invite
    response = client.post("/api/v1/auth/wx-login", json=body)
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}, response.json["member"]


def _settings(client, owner, **changes):
    response = client.patch(f"{S}/settings", json=changes, headers=owner)
    assert response.status_code == 200, response.json
    return response.json


def _apply(client, headers):
    response = client.post(f"{D}/application", json={}, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


class Shop:
    """A merchant with a 100-yuan product, a 2-level program (10% / 5%, open to all), and the
    chain alice <- bob <- carol (alice and bob distributors, carol a customer of bob)."""

    def __init__(self, client, **program: Any) -> None:
        self.client = client
        self.merchant = make_merchant()
        self.sku = make_product(self.merchant, skus=[{"specs": {}, "price": 10000, "stock": 500}]).skus[0].id
        self.owner = staff_headers(client, self.merchant.code)
        _settings(
            client,
            self.owner,
            **{"enabled": True, "levels": 2, "rates_bp": [1000, 500], "join_rule": "open", **program},
        )
        self.alice, self.alice_member = _login(client, self.merchant.code, "alice")
        _apply(client, self.alice)
        self.bob, self.bob_member = _login(client, self.merchant.code, "bob", self.alice_member["invite_code"])
        _apply(client, self.bob)
        self.carol, self.carol_member = _login(client, self.merchant.code, "carol", self.bob_member["invite_code"])
        named = client.patch("/api/v1/me", json={"nickname": "王小红"}, headers=self.carol)
        assert named.status_code == 200, named.json

    def summary(self, headers) -> dict[str, Any]:
        response = self.client.get(f"{D}/summary", headers=headers)
        assert response.status_code == 200, response.json
        return response.json

    def distributor_id(self, headers) -> int:
        return self.summary(headers)["distributor_id"]

    def commissions(self, headers) -> list[dict[str, Any]]:
        response = self.client.get(f"{D}/commissions", headers=headers)
        assert response.status_code == 200, response.json
        return response.json["items"]


@pytest.fixture(autouse=True)
def _in_app(ctx):
    """Every test here also reads the database directly (an app context)."""


@pytest.fixture
def shop(client) -> Shop:
    return Shop(client)


def _settle(app) -> str:
    result = CliRunner().invoke(app.cli, ["groupshop", "settle-commissions"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _reconciled(client, owner) -> None:
    response = client.get(f"{S}/reconciliation", headers=owner)
    assert response.status_code == 200, response.json
    assert response.json["problems"] == [] and response.json["distributors"] >= 1


def _complete(client, shop: Shop, quantity: int) -> dict[str, Any]:
    return completed_order(client, shop.owner, shop.carol, order_body(shop.sku, quantity))


# --- settings --------------------------------------------------------------------------------------


def test_the_program_is_off_until_the_owner_turns_it_on(client):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    response = client.get(f"{S}/settings", headers=owner)
    assert response.status_code == 200
    assert (response.json["enabled"], response.json["levels"], response.json["binding_rule"]) == (False, 1, "first")
    member, _ = _login(client, merchant.code, "dora")
    refused = client.post(f"{D}/application", json={}, headers=member)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "program_disabled")


@pytest.mark.parametrize(
    "body, field",
    [({"levels": 3}, "levels"), ({"rates_bp": [1000, 500, 200]}, "rates_bp"), ({"levels": 5}, "levels")],
)
def test_three_levels_or_more_are_refused_with_the_reason(client, body, field):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    response = client.patch(f"{S}/settings", json=body, headers=owner)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "levels_not_allowed"
    assert "pyramid" in response.json["error"]["message"] and field in response.json["error"]["details"]["fields"]
    assert client.get(f"{S}/settings", headers=owner).json["levels"] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rates_bp": [10001]}, "rates_bp"),
        ({"rates_bp": [-1]}, "rates_bp"),
        ({"join_min_spent": -5}, "join_min_spent"),
        ({"binding_rule": "forever"}, "binding_rule"),
        ({"binding_rule": "first_lapsing"}, "lapse_days"),
        ({"join_rule": "spending", "join_min_spent": 0}, "join_min_spent"),
        ({"withdrawal_fee_bp": 10001}, "withdrawal_fee_bp"),
        ({"levels": 2, "rates_bp": [6000, 5000]}, "rates_bp"),  # more than a line paid, together
        ({"levels": 2, "rates_bp": [700]}, "rates_bp"),  # one rate per level
        ({"levels": 1, "rates_bp": [1000, 500]}, "rates_bp"),
        ({"min_withdrawal": 200_000}, "min_withdrawal"),  # above what one withdrawal may be
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(client, body, field):
    merchant = make_merchant()
    owner = staff_headers(client, merchant.code)
    before = client.get(f"{S}/settings", headers=owner).json
    response = client.patch(f"{S}/settings", json=body, headers=owner)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]
    assert client.get(f"{S}/settings", headers=owner).json == before


def test_only_the_owner_changes_the_program_and_finance_may_read_it(client):
    merchant = make_merchant()
    make_staff(merchant, "operator", "operator1")
    make_staff(merchant, "finance", "finance1")
    operator = staff_headers(client, merchant.code, "operator1")
    finance = staff_headers(client, merchant.code, "finance1")
    assert client.patch(f"{S}/settings", json={"enabled": True}, headers=operator).status_code == 403
    assert client.get(f"{S}/settings", headers=finance).status_code == 200


# --- joining -------------------------------------------------------------------------------------


def test_a_member_who_is_not_a_distributor_gets_403_not_a_distributor(client, shop):
    for path in ("/summary", "/commissions", "/team", "/ranking", "/invite", "/withdrawals", "/ledger"):
        response = client.get(f"{D}{path}", headers=shop.carol)
        assert (response.status_code, response.json["error"]["code"]) == (403, "not_a_distributor"), path


def test_with_applications_staff_approve_and_the_member_becomes_a_distributor(client):
    shop = Shop(client)
    _settings(client, shop.owner, join_rule="application")
    erin, erin_member = _login(client, shop.merchant.code, "erin")
    applied = _apply(client, erin)
    assert applied["status"] == "applied"
    assert client.get(f"{D}/summary", headers=erin).status_code == 403
    listed = client.get(f"{S}/distributors", query_string={"status": "applied"}, headers=shop.owner).json["items"]
    erin_id = next(d["id"] for d in listed if d["member_id"] == erin_member["id"])
    approved = client.post(f"{S}/distributors/{erin_id}/approve", json={}, headers=shop.owner)
    assert approved.status_code == 200 and approved.json["status"] == "active", approved.json
    again = client.post(f"{S}/distributors/{erin_id}/reject", json={}, headers=shop.owner)
    assert (again.status_code, again.json["error"]["code"]) == (409, "illegal_transition")
    assert client.get(f"{D}/summary", headers=erin).status_code == 200


def test_with_spending_a_member_joins_once_they_have_spent_enough(client):
    shop = Shop(client)
    _settings(client, shop.owner, join_rule="spending", join_min_spent=15000)
    refused = client.post(f"{D}/application", json={}, headers=shop.carol)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "spending_required")
    assert refused.json["error"]["details"] == {"required": 15000, "spent": 0}
    paid_order(client, shop.carol, order_body(shop.sku, 2))
    status = client.get(f"{D}/application", headers=shop.carol).json
    assert (status["status"], status["spent"]) == ("active", 20000)


# --- binding -------------------------------------------------------------------------------------


def _bound_to(member_id: int) -> int | None:
    db.session.expire_all()
    found = db.session.get(Binding, member_id)
    return None if found is None else found.distributor_member_id


@pytest.mark.parametrize(
    "rule, extra, moves",
    [("first", {}, False), ("last", {}, True), ("first_lapsing", {"lapse_days": 30}, False)],
)
def test_a_second_distributors_invite_moves_the_member_only_when_the_rule_says(client, rule, extra, moves):
    shop = Shop(client, binding_rule=rule, **extra)
    client.post(f"/api/v1/invites/{shop.alice_member['invite_code']}/open", json={}, headers=shop.carol)
    expected = shop.alice_member["id"] if moves else shop.bob_member["id"]
    assert _bound_to(shop.carol_member["id"]) == expected


def test_a_lapsing_binding_lapses_after_the_days_without_a_purchase(client):
    shop = Shop(client, binding_rule="first_lapsing", lapse_days=30)
    with transaction():
        db.session.execute(
            update(Binding)
            .where(Binding.member_id == shop.carol_member["id"])
            .values(active_at=utcnow() - timedelta(days=31))
        )
    client.post(f"/api/v1/invites/{shop.alice_member['invite_code']}/open", json={}, headers=shop.carol)
    assert _bound_to(shop.carol_member["id"]) == shop.alice_member["id"]


def test_binding_never_makes_a_cycle_and_login_never_fails_over_it(client, shop):
    # alice opening bob's invite would put alice under her own downline
    response = client.post(f"/api/v1/invites/{shop.bob_member['invite_code']}/open", json={}, headers=shop.alice)
    assert response.status_code == 200, response.json
    assert _bound_to(shop.alice_member["id"]) is None
    relogin = client.post(
        "/api/v1/auth/wx-login",
        json={"merchant": shop.merchant.code, "code": "test:alice", "invite": shop.bob_member["invite_code"]},
    )
    assert relogin.status_code == 200
    assert _bound_to(shop.alice_member["id"]) is None


def test_a_customer_of_a_member_who_is_not_a_distributor_is_not_bound(client, shop):
    _, frank = _login(client, shop.merchant.code, "frank", shop.carol_member["invite_code"])
    assert _bound_to(frank["id"]) is None


# --- commissions ---------------------------------------------------------------------------------


def test_a_paid_order_earns_the_two_levels_above_the_buyer_with_the_buyer_masked(client, shop):
    order = paid_order(client, shop.carol, order_body(shop.sku, 3))
    bob = shop.commissions(shop.bob)
    alice = shop.commissions(shop.alice)
    assert [(c["level"], c["amount"], c["status"], c["order_id"]) for c in bob] == [(1, 3000, "pending", order["id"])]
    assert [(c["level"], c["amount"]) for c in alice] == [(2, 1500)]
    assert bob[0]["buyer"] != "王小红" and "*" in bob[0]["buyer"]
    assert shop.summary(shop.bob)["balances"] == {"pending": 3000, "withdrawable": 0, "withdrawing": 0, "withdrawn": 0}
    assert shop.summary(shop.bob)["earnings"]["today"] == 3000


def test_self_purchase_pays_the_buyer_at_level_one_when_on(client):
    shop = Shop(client, self_purchase=True)
    paid_order(client, shop.bob, order_body(shop.sku, 1))
    assert [(c["level"], c["amount"]) for c in shop.commissions(shop.bob)] == [(1, 1000)]
    assert [(c["level"], c["amount"]) for c in shop.commissions(shop.alice)] == [(2, 500)]


def test_without_self_purchase_a_distributor_buying_pays_their_upline_at_level_one(client, shop):
    paid_order(client, shop.bob, order_body(shop.sku, 1))
    assert shop.commissions(shop.bob) == []
    assert [(c["level"], c["amount"]) for c in shop.commissions(shop.alice)] == [(1, 1000)]


def test_overrides_per_product_and_sku_and_tier_rates_apply(client, shop):
    from shop.catalog.models import Sku

    product = db.session.get(Sku, shop.sku).product_id
    fixed = client.put(
        f"{S}/overrides",
        json={"product_id": product, "level": 1, "mode": "fixed", "fixed_amount": 250},
        headers=shop.owner,
    )
    assert fixed.status_code == 200, fixed.json
    none = client.put(f"{S}/overrides", json={"product_id": product, "level": 2, "mode": "none"}, headers=shop.owner)
    assert none.status_code == 200, none.json
    paid_order(client, shop.carol, order_body(shop.sku, 4))
    assert [(c["level"], c["amount"], c["fixed_amount"]) for c in shop.commissions(shop.bob)] == [(1, 1000, 250)]
    assert shop.commissions(shop.alice) == []


def test_a_lines_commissions_across_the_levels_never_add_up_to_more_than_it_paid(client, shop):
    from shop.catalog.models import Sku

    product = db.session.get(Sku, shop.sku).product_id
    for override in (
        {"product_id": product, "level": 1, "mode": "fixed", "fixed_amount": 99_999},
        {"product_id": product, "level": 2, "mode": "rate", "rate_bp": 10_000},
    ):
        assert client.put(f"{S}/overrides", json=override, headers=shop.owner).status_code == 200

    order = paid_order(client, shop.carol, order_body(shop.sku, 2))

    paid = sum(line["paid_amount"] for line in order["lines"])
    assert [(c["level"], c["amount"]) for c in shop.commissions(shop.bob)] == [(1, paid)]
    listed = client.get(f"{S}/commissions", query_string={"order_id": order["id"]}, headers=shop.owner).json["items"]
    assert [(c["distributor_id"], c["amount"]) for c in listed] == [(shop.distributor_id(shop.bob), paid)]
    assert shop.commissions(shop.alice) == []  # the first level took all the line paid


# --- the money trail -----------------------------------------------------------------------------


def test_every_fen_from_the_order_to_the_withdrawal(app, client, shop):
    _complete(client, shop, 2)
    assert shop.summary(shop.bob)["balances"]["pending"] == 2000
    assert "settled 2 commissions" in _settle(app)
    assert "settled 0 commissions" in _settle(app)  # settling twice pays once
    assert shop.summary(shop.bob)["balances"] == {"pending": 0, "withdrawable": 2000, "withdrawing": 0, "withdrawn": 0}
    assert [c["status"] for c in shop.commissions(shop.bob)] == ["settled"]

    over = client.post(f"{D}/withdrawals", json={"amount": 2001}, headers=shop.bob)
    assert (over.status_code, over.json["error"]["code"]) == (409, "insufficient_balance")
    under = client.post(f"{D}/withdrawals", json={"amount": 99}, headers=shop.bob)
    assert (under.status_code, under.json["error"]["code"]) == (422, "below_minimum")
    asked = client.post(f"{D}/withdrawals", json={"amount": 1500}, headers=shop.bob)
    assert asked.status_code == 201, asked.json
    assert (asked.json["status"], asked.json["payout"]) == ("requested", 1500)
    assert shop.summary(shop.bob)["balances"] == {
        "pending": 0,
        "withdrawable": 500,
        "withdrawing": 1500,
        "withdrawn": 0,
    }

    rejected = client.post(f"{S}/withdrawals/{asked.json['id']}/reject", json={"note": "核对中"}, headers=shop.owner)
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected", rejected.json
    again = client.post(f"{S}/withdrawals/{asked.json['id']}/approve", json={}, headers=shop.owner)
    assert (again.status_code, again.json["error"]["code"]) == (409, "illegal_transition")
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == 2000
    kinds = [e["kind"] for e in client.get(f"{D}/ledger", headers=shop.bob).json["items"]]
    assert kinds == ["withdrawal_returned", "withdrawal_requested", "commission_settled", "commission_pending"]
    _reconciled(client, shop.owner)


def test_a_refund_before_settlement_cancels_commissions_in_proportion(app, client, shop):
    from tests.factories import settled_refund

    order = paid_order(client, shop.carol, order_body(shop.sku, 4))
    settled_refund(app, client, shop.owner, shop.carol, order["id"], [(order["lines"][0]["id"], 1)])
    bob = shop.commissions(shop.bob)[0]
    assert (bob["amount"], bob["original_amount"], bob["base_amount"], bob["status"]) == (3000, 4000, 30000, "pending")
    settled_refund(app, client, shop.owner, shop.carol, order["id"])
    assert [(c["amount"], c["status"]) for c in shop.commissions(shop.bob)] == [(0, "reversed")]
    assert shop.summary(shop.bob)["balances"]["pending"] == 0
    _reconciled(client, shop.owner)


def test_a_staff_refund_after_settlement_claws_back_and_blocks_withdrawals_until_netted(app, client, shop):
    order = _complete(client, shop, 2)
    _settle(app)
    asked = client.post(f"{D}/withdrawals", json={"amount": 2000}, headers=shop.bob)
    assert asked.status_code == 201
    refunded = client.post(
        f"/api/v1/merchant/orders/{order['id']}/refunds", json={"reason": "售后"}, headers=shop.owner
    )
    assert refunded.status_code == 201, refunded.json
    run_burst(app)
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == -2000
    blocked = client.post(f"{D}/withdrawals", json={"amount": 100}, headers=shop.bob)
    assert (blocked.status_code, blocked.json["error"]["code"]) == (409, "balance_negative")
    assert [(c["amount"], c["clawed_back"], c["status"]) for c in shop.commissions(shop.bob)] == [
        (2000, 2000, "settled")
    ]
    bob_url = f"{S}/distributors/{shop.distributor_id(shop.bob)}"
    bob = client.get(bob_url, headers=shop.owner).json
    assert (bob["available"], bob["team_sales"]) == (-2000, 0)  # the team's settled sales, net of the refund
    _complete(client, shop, 3)  # 3000 more: nets the 2000 owed
    _settle(app)
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == 1000
    assert client.get(bob_url, headers=shop.owner).json["team_sales"] == 30000
    _reconciled(client, shop.owner)


def test_adjustments_need_a_reason_and_move_the_withdrawable_balance(client, shop):
    bob_id = shop.distributor_id(shop.bob)
    refused = client.post(f"{S}/distributors/{bob_id}/adjustments", json={"amount": 500}, headers=shop.owner)
    assert refused.status_code == 422 and "reason" in refused.json["error"]["details"]["fields"]
    zero = client.post(f"{S}/distributors/{bob_id}/adjustments", json={"amount": 0, "reason": "x"}, headers=shop.owner)
    assert zero.status_code == 422
    make_staff(shop.merchant, "operator", "operator1")
    operator = staff_headers(client, shop.merchant.code, "operator1")
    denied = client.post(
        f"{S}/distributors/{bob_id}/adjustments", json={"amount": 500, "reason": "x"}, headers=operator
    )
    assert denied.status_code == 403
    for amount in (800, -300):
        made = client.post(
            f"{S}/distributors/{bob_id}/adjustments",
            json={"amount": amount, "reason": "线下活动奖励"},
            headers=shop.owner,
        )
        assert made.status_code == 201 and made.json["available"] == amount, made.json
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == 500
    _reconciled(client, shop.owner)


def test_tiers_upgrade_after_settlement_and_pay_their_own_rates(app, client, shop):
    tier = client.post(
        f"{S}/tiers",
        json={"name": "金牌", "rank": 1, "rates_bp": [2000, None], "min_team_sales": 20000, "match": "any"},
        headers=shop.owner,
    )
    assert tier.status_code == 201, tier.json
    _complete(client, shop, 2)
    _settle(app)
    assert shop.summary(shop.bob)["tier_id"] == tier.json["id"]
    paid_order(client, shop.carol, order_body(shop.sku, 1))
    assert sorted(c["amount"] for c in shop.commissions(shop.bob)) == [2000, 2000]


def test_the_dashboard_shows_the_team_the_ranking_and_the_invite(client, shop):
    paid_order(client, shop.carol, order_body(shop.sku, 1))
    team = client.get(f"{D}/team", headers=shop.alice).json
    assert team["levels"] == [{"level": 1, "members": 1, "sales": 0}, {"level": 2, "members": 1, "sales": 10000}]
    members = client.get(f"{D}/team/members", query_string={"level": 2}, headers=shop.alice).json["items"]
    assert len(members) == 1 and "*" in members[0]["member"]
    ranking = client.get(f"{D}/ranking", headers=shop.alice).json
    assert [(r["rank"], r["earned"], r["me"]) for r in ranking["items"]] == [(1, 1000, False), (2, 500, True)]
    assert ranking["me"] == {"rank": 2, "earned": 500}
    invite = client.get(f"{D}/invite", headers=shop.bob).json
    assert invite["invite_code"] == shop.bob_member["invite_code"]
    assert invite["share"]["scene"].endswith(shop.bob_member["invite_code"])


def test_staff_list_commissions_and_distributors_and_search(client, shop):
    order = paid_order(client, shop.carol, order_body(shop.sku, 1))
    listed = client.get(f"{S}/commissions", query_string={"order_id": order["id"]}, headers=shop.owner).json["items"]
    assert sorted(c["level"] for c in listed) == [1, 2]
    found = client.get(f"{S}/distributors", query_string={"q": shop.bob_member["invite_code"]}, headers=shop.owner)
    assert [d["member_id"] for d in found.json["items"]] == [shop.bob_member["id"]]


def test_a_disabled_distributor_earns_nothing_new_and_cannot_withdraw(client, shop):
    bob_id = shop.distributor_id(shop.bob)
    disabled = client.post(f"{S}/distributors/{bob_id}/disable", json={}, headers=shop.owner)
    assert disabled.status_code == 200 and disabled.json["status"] == "disabled"
    paid_order(client, shop.carol, order_body(shop.sku, 1))
    assert db.session.execute(select(Commission).where(Commission.distributor_id == bob_id)).first() is None
    assert client.post(f"{D}/withdrawals", json={"amount": 100}, headers=shop.bob).status_code == 403


def test_commissions_are_on_what_was_paid_after_discounts_without_shipping(client, shop):
    template = client.post(
        "/api/v1/merchant/coupon-templates",
        json={
            "name": "满100减10",
            "kind": "amount_off",
            "threshold": 10000,
            "amount": 1001,
            "valid_days": 7,
            "total_quantity": 10,
            "channels": ["centre"],
        },
        headers=shop.owner,
    )
    assert template.status_code == 201, template.json
    coupon = client.post(f"/api/v1/coupon-centre/{template.json['id']}/claim", headers=shop.carol)
    assert coupon.status_code == 201, coupon.json
    order = paid_order(client, shop.carol, order_body(shop.sku, 2, coupons=[coupon.json["id"]]))
    line = order["lines"][0]
    assert (line["paid_amount"], order["discount_total"]) == (18999, 1001)
    assert [(c["base_amount"], c["amount"]) for c in shop.commissions(shop.bob)] == [(18999, 1899)]
    assert [(c["base_amount"], c["amount"]) for c in shop.commissions(shop.alice)] == [(18999, 949)]


def test_binding_publishes_member_bound_with_the_previous_distributor(client, events):
    from shop.core.events import MemberBound

    shop = Shop(client, binding_rule="last")
    client.post(f"/api/v1/invites/{shop.alice_member['invite_code']}/open", json={}, headers=shop.carol)
    bound = [(e.member_id, e.distributor_member_id, e.previous_id) for e in events.of(MemberBound)]
    carol, alice, bob = shop.carol_member["id"], shop.alice_member["id"], shop.bob_member["id"]
    assert bound == [(bob, alice, None), (carol, bob, None), (carol, alice, bob)]


# --- payouts -------------------------------------------------------------------------------------


def _approved(app, client, shop: Shop, amount: int = 1500) -> dict[str, Any]:
    """Bob has 2000 fen settled, asked to withdraw `amount`, finance approved, the payout job ran."""
    _complete(client, shop, 2)
    _settle(app)
    asked = client.post(f"{D}/withdrawals", json={"amount": amount}, headers=shop.bob)
    assert asked.status_code == 201, asked.json
    approved = client.post(f"{S}/withdrawals/{asked.json['id']}/approve", json={}, headers=shop.owner)
    assert approved.status_code == 200 and approved.json["status"] == "approved", approved.json
    run_burst(app)
    return client.get(f"{D}/withdrawals/{asked.json['id']}", headers=shop.bob).json


def test_an_approved_withdrawal_waits_for_the_distributor_to_confirm_then_is_paid_once(app, client, shop):
    withdrawal = _approved(app, client, shop)
    assert withdrawal["status"] == "wait_user_confirm"
    confirmation = client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.bob)
    assert confirmation.status_code == 200, confirmation.json
    assert confirmation.json["package_info"] == f"fake_package_{withdrawal['out_bill_no']}"
    assert confirmation.json["mch_id"] and confirmation.json["app_id"]
    other = client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.alice)
    assert other.status_code == 404

    confirmed = client.post(f"/api/v1/payments/fake/transfers/{withdrawal['out_bill_no']}/confirm")
    assert confirmed.status_code == 200 and confirmed.json["status"] == "paid", confirmed.json
    assert shop.summary(shop.bob)["balances"] == {
        "pending": 0,
        "withdrawable": 500,
        "withdrawing": 0,
        "withdrawn": 1500,
    }

    # WeChat Pay notifies again (and again): nothing changes
    provider = app.extensions["groupshop.payments"]
    headers, body = provider.transfer_notification(shop.merchant, out_bill_no=withdrawal["out_bill_no"])
    for _ in range(2):
        again = client.post(
            f"/api/v1/payments/wechatpay/{shop.merchant.code}/transfer-notify", data=body, headers=headers
        )
        assert again.status_code == 204, again.get_data(as_text=True)
    assert shop.summary(shop.bob)["balances"]["withdrawn"] == 1500
    done = client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.bob)
    assert (done.status_code, done.json["error"]["code"]) == (409, "not_awaiting_confirmation")
    _reconciled(client, shop.owner)


def test_a_failed_transfer_returns_the_money(app, client, shop):
    withdrawal = _approved(app, client, shop, amount=2000)
    failed = client.post(f"/api/v1/payments/fake/transfers/{withdrawal['out_bill_no']}/fail")
    assert failed.status_code == 200, failed.json
    assert (failed.json["status"], failed.json["fail_reason"]) == ("failed", "PAYEE_ACCOUNT_ABNORMAL")
    assert shop.summary(shop.bob)["balances"] == {"pending": 0, "withdrawable": 2000, "withdrawing": 0, "withdrawn": 0}
    _reconciled(client, shop.owner)


def test_a_transfer_left_unconfirmed_for_a_day_is_cancelled_and_the_money_returns(app, client, shop):
    from distribution.jobs import sweep_payouts
    from distribution.models import Withdrawal

    withdrawal = _approved(app, client, shop, amount=1000)
    with transaction():
        db.session.execute(
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal["id"])
            .values(submitted_at=utcnow() - timedelta(hours=25), updated_at=utcnow() - timedelta(hours=25))
        )
    sweep_payouts()
    after = client.get(f"{D}/withdrawals/{withdrawal['id']}", headers=shop.bob).json
    assert (after["status"], after["transfer_state"]) == ("failed", "CANCELLED")
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == 2000
    _reconciled(client, shop.owner)


def test_a_bad_transfer_notification_is_refused_and_changes_nothing(app, client, shop):
    withdrawal = _approved(app, client, shop)
    provider = app.extensions["groupshop.payments"]
    provider.confirm_transfer(withdrawal["out_bill_no"])
    headers, body = provider.transfer_notification(shop.merchant, out_bill_no=withdrawal["out_bill_no"])
    url = f"/api/v1/payments/wechatpay/{shop.merchant.code}/transfer-notify"
    tampered = client.post(url, data=body.replace('"event_type"', '"event_type" ', 1), headers=headers)
    assert tampered.status_code == 400 and tampered.json["code"] == "FAIL"
    unsigned = client.post(url, data=body, headers={k: v for k, v in headers.items() if k != "Wechatpay-Signature"})
    assert unsigned.status_code == 400 and unsigned.json["code"] == "FAIL"
    elsewhere = client.post("/api/v1/payments/wechatpay/nosuchshop/transfer-notify", data=body, headers=headers)
    assert elsewhere.status_code in (400, 404) and elsewhere.json["code"] == "FAIL"
    assert client.get(f"{D}/withdrawals/{withdrawal['id']}", headers=shop.bob).json["status"] == "wait_user_confirm"


def test_a_tier_matching_all_conditions_waits_for_all_and_never_moves_down(app, client, shop):
    silver = client.post(
        f"{S}/tiers",
        json={"name": "银牌", "rank": 1, "rates_bp": [1200, None], "min_team_sales": 10000, "match": "any"},
        headers=shop.owner,
    ).json
    gold = client.post(
        f"{S}/tiers",
        json={"name": "金牌", "rank": 2, "min_team_size": 2, "min_team_sales": 10000, "match": "all"},
        headers=shop.owner,
    ).json
    _complete(client, shop, 1)
    _settle(app)
    assert shop.summary(shop.bob)["tier_id"] == silver["id"]  # team sales 10000, but a team of 1
    dan, _ = _login(client, shop.merchant.code, "dan", shop.bob_member["invite_code"])
    completed_order(client, shop.owner, dan, order_body(shop.sku, 1))
    _settle(app)
    assert shop.summary(shop.bob)["tier_id"] == gold["id"]
    bob_id = shop.distributor_id(shop.bob)
    listed = client.get(f"{S}/distributors/{bob_id}", headers=shop.owner).json
    assert listed["team_sales"] == 20000
    client.patch(f"{S}/tiers/{gold['id']}", json={"min_team_size": 50}, headers=shop.owner)
    _complete(client, shop, 1)
    _settle(app)
    assert shop.summary(shop.bob)["tier_id"] == gold["id"]  # never down


def test_a_transfer_answered_accepted_first_gets_its_package_info_when_the_bill_is_sent_again(app, client, shop):
    """WeChat Pay may answer ACCEPTED (no package_info yet); its query never carries one: the job
    sends the same bill again, and the answer's package_info is kept."""
    from distribution.jobs import pay_withdrawal
    from distribution.models import Withdrawal

    withdrawal = _approved(app, client, shop)
    with transaction():
        db.session.execute(
            update(Withdrawal).where(Withdrawal.id == withdrawal["id"]).values(status="paying", package_info=None)
        )
    assert client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.bob).status_code == 409
    assert pay_withdrawal(withdrawal["id"]) == "WAIT_USER_CONFIRM"
    confirmation = client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.bob)
    assert confirmation.status_code == 200, confirmation.json
    assert confirmation.json["package_info"] == f"fake_package_{withdrawal['out_bill_no']}"


def test_a_transfer_refused_for_good_fails_and_the_money_returns(app, client, shop, monkeypatch):
    from distribution.jobs import pay_withdrawal
    from shop.core.errors import UpstreamError

    _complete(client, shop, 2)
    _settle(app)
    asked = client.post(f"{D}/withdrawals", json={"amount": 1000}, headers=shop.bob).json
    client.post(f"{S}/withdrawals/{asked['id']}/approve", json={}, headers=shop.owner)

    def refuse(*args, **kwargs):
        raise UpstreamError("refused", code="transfer_refused", details={"wechat_code": "NO_AUTH"})

    monkeypatch.setattr(app.extensions["groupshop.payments"], "transfer", refuse)
    assert pay_withdrawal(asked["id"]) == "FAIL"
    after = client.get(f"{D}/withdrawals/{asked['id']}", headers=shop.bob).json
    assert (after["status"], after["fail_reason"]) == ("failed", "REFUSED_NO_AUTH")
    assert shop.summary(shop.bob)["balances"]["withdrawable"] == 2000
    _reconciled(client, shop.owner)


def test_a_transfer_notification_for_another_payee_is_refused(app, client, shop):
    withdrawal = _approved(app, client, shop)
    provider = app.extensions["groupshop.payments"]
    provider.confirm_transfer(withdrawal["out_bill_no"])
    bill = provider.transfer_bill(withdrawal["out_bill_no"])
    resource = {
        "mch_id": bill.get("mch_id", bill.get("mchid")),
        "out_bill_no": withdrawal["out_bill_no"],
        "transfer_bill_no": bill["transfer_bill_no"],
        "transfer_amount": bill["transfer_amount"],
        "state": "SUCCESS",
        "openid": "o-somebody-else",
        "create_time": bill.get("create_time", ""),
        "update_time": bill.get("update_time", ""),
    }
    headers, body = provider.notification(shop.merchant, "MCHTRANSFER.BILL.FINISHED", resource, "mch_payment")
    refused = client.post(
        f"/api/v1/payments/wechatpay/{shop.merchant.code}/transfer-notify", data=body, headers=headers
    )
    assert refused.status_code == 400 and refused.json["code"] == "FAIL", refused.get_data(as_text=True)
    assert client.get(f"{D}/withdrawals/{withdrawal['id']}", headers=shop.bob).json["status"] == "wait_user_confirm"


def test_a_disabled_distributor_still_receives_what_finance_approved(app, client, shop):
    withdrawal = _approved(app, client, shop)
    bob_id = shop.distributor_id(shop.bob)
    client.post(f"{S}/distributors/{bob_id}/disable", json={}, headers=shop.owner)
    assert client.get(f"{D}/withdrawals", headers=shop.bob).status_code == 200
    assert client.get(f"{D}/withdrawals/{withdrawal['id']}/confirmation", headers=shop.bob).status_code == 200
    assert client.get(f"{D}/summary", headers=shop.bob).status_code == 403


def test_a_rejected_member_cannot_make_themselves_a_distributor_again(client, shop):
    _settings(client, shop.owner, join_rule="application")
    erin, erin_member = _login(client, shop.merchant.code, "erin")
    _apply(client, erin)
    listed = client.get(f"{S}/distributors", query_string={"status": "applied"}, headers=shop.owner).json["items"]
    erin_id = next(d["id"] for d in listed if d["member_id"] == erin_member["id"])
    client.post(f"{S}/distributors/{erin_id}/reject", json={"note": "不符合"}, headers=shop.owner)
    _settings(client, shop.owner, join_rule="open")
    assert _apply(client, erin)["status"] == "rejected"


def test_a_withdrawal_from_two_thousand_yuan_is_refused(client, shop):
    bob_id = shop.distributor_id(shop.bob)
    client.post(f"{S}/distributors/{bob_id}/adjustments", json={"amount": 300000, "reason": "奖励"}, headers=shop.owner)
    refused = client.post(f"{D}/withdrawals", json={"amount": 200000}, headers=shop.bob)
    assert (refused.status_code, refused.json["error"]["code"]) == (422, "above_maximum")
    assert client.post(f"{D}/withdrawals", json={"amount": 199999}, headers=shop.bob).status_code == 201


def test_a_transfer_refused_for_a_passing_reason_stays_approved_and_goes_to_the_back_of_the_line(
    app, client, shop, monkeypatch
):
    from distribution.jobs import pay_withdrawal
    from distribution.models import Withdrawal
    from distribution.withdrawals import due_for_payout
    from shop.core.errors import UpstreamError

    _complete(client, shop, 2)
    _settle(app)
    first = client.post(f"{D}/withdrawals", json={"amount": 500}, headers=shop.bob).json
    second = client.post(f"{D}/withdrawals", json={"amount": 500}, headers=shop.bob).json
    for withdrawal in (first, second):
        client.post(f"{S}/withdrawals/{withdrawal['id']}/approve", json={}, headers=shop.owner)

    def short_of_money(*args, **kwargs):
        raise UpstreamError(
            "the merchant's balance is short", code="transfer_refused", details={"wechat_code": "NOT_ENOUGH"}
        )

    monkeypatch.setattr(app.extensions["groupshop.payments"], "transfer", short_of_money)
    assert pay_withdrawal(first["id"]) is None
    assert client.get(f"{D}/withdrawals/{first['id']}", headers=shop.bob).json["status"] == "approved"
    with transaction():
        due = list(db.session.execute(due_for_payout()).scalars())
    assert due == [second["id"], first["id"]]
    assert shop.summary(shop.bob)["balances"]["withdrawing"] == 1000
    assert db.session.get(Withdrawal, first["id"]).status == "approved"
