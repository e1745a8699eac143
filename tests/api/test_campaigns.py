"""Campaigns over HTTP: staff set up a lottery with a guaranteed tier and an upgrade offer, members
draw, hold vouchers, buy upgrades as real orders (paid through the fake provider, issued by the
job, refunded and reversed), staff redeem codes in store, and the economics add up."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, update

from api.worker import run_burst
from coupons import campaigns
from coupons.jobs import issue_upgrade, sweep_expired_upgrades
from coupons.models import Campaign, CampaignEntry, CampaignTier, CouponTemplate, Prize, PrizeUpgrade
from shop.core.db import db, utcnow
from shop.core.events import GroupFailed, GroupJoined, bus
from shop.identity.models import Member
from tests.factories import (
    fake_pay,
    make_staff,
    make_store,
    member_headers,
    order_body,
    paid_order,
    reload,
    settled_refund,
    staff_headers,
)

M = "/api/v1/merchant"
_keys = iter(range(10**6))


def key() -> str:
    return f"draw-key-{next(_keys):06d}"


def campaign_body(**overrides: Any) -> dict[str, Any]:
    """The seeds' campaign: first prize (a 300-yuan gift, 1 of it), second (100 yuan, 2), third
    (a 10-yuan gift everyone wins); third -> first for 99 yuan, third -> second for 19.9 yuan."""
    now = utcnow()
    body: dict[str, Any] = {
        "name": "社群周年庆抽奖",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "entry_rule": "once",
        "tiers": [
            {"name": "一等奖 按摩椅", "prize_kind": "gift", "cost": 30000, "quota": 1, "odds_bp": 100},
            {"name": "二等奖 茶具", "prize_kind": "gift", "cost": 10000, "quota": 2, "odds_bp": 900},
            {"name": "三等奖 纸巾", "prize_kind": "gift", "cost": 1000, "odds_bp": 9000, "guaranteed": True},
        ],
    }
    body.update(overrides)
    return body


def create_campaign(client, store: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{M}/campaigns", json=campaign_body(**overrides), headers=store["staff"])
    assert response.status_code == 201, response.json
    return response.json


def draw(client, headers: dict[str, str], campaign_id: int, idem: str | None = None):
    return client.post(f"/api/v1/campaigns/{campaign_id}/draws", headers={**headers, "Idempotency-Key": idem or key()})


def coupon_template(client, store: dict[str, Any], quantity: int, *, amount: int = 500, name: str = "奖品券") -> dict:
    response = client.post(
        f"{M}/coupon-templates",
        json={"name": name, "kind": "amount_off", "amount": amount, "valid_days": 3, "total_quantity": quantity},
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json
    return response.json


def rig(monkeypatch, *rolls: int) -> None:
    """The next draws roll these numbers (the tests' only way to choose; `secrets` otherwise)."""
    numbers = iter(rolls)
    monkeypatch.setattr(campaigns, "roll", lambda: next(numbers))


def offer(client, store, campaign: dict[str, Any], source: int, target: int, price: int) -> dict[str, Any]:
    tiers = campaign["tiers"]
    response = client.post(
        f"{M}/campaigns/{campaign['id']}/upgrade-offers",
        json={"from_tier_id": tiers[source]["id"], "to_tier_id": tiers[target]["id"], "price": price},
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json
    return response.json


def upgrade(client, headers: dict[str, str], prize_id: int, offer_id: int, idem: str | None = None):
    return client.post(
        f"/api/v1/prizes/{prize_id}/upgrade",
        json={"offer_id": offer_id},
        headers={**headers, "Idempotency-Key": idem or key()},
    )


def redeem(client, headers: dict[str, str], code: str):
    return client.post(f"{M}/prizes/redeem", json={"code": code}, headers=headers)


def prize(client, headers: dict[str, str], prize_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/prizes/{prize_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def store(ctx, client):
    return make_store(client, tea={"price": 6000, "stock": 50})


@pytest.fixture
def third_prize(client, store, monkeypatch) -> dict[str, Any]:
    """A running campaign with its offers, and the member's third prize."""
    campaign = create_campaign(client, store)
    store["campaign"] = campaign
    store["to_first"] = offer(client, store, campaign, 2, 0, 9900)
    store["to_second"] = offer(client, store, campaign, 2, 1, 1990)
    rig(monkeypatch, 9999)
    drawn = draw(client, store["member"], campaign["id"])
    assert drawn.status_code == 201, drawn.json
    return drawn.json["prize"]


def paid_upgrade(app, client, store, prize_id: int, offer_id: int) -> dict[str, Any]:
    placed = upgrade(client, store["member"], prize_id, offer_id)
    assert placed.status_code == 201, placed.json
    paid = fake_pay(client, placed.json["order_no"])
    assert paid.status_code == 200 and paid.json["status"] == "paid", paid.json
    run_burst(app)
    return paid.json


# --- configuring ---------------------------------------------------------------------------------


def test_staff_create_a_campaign_whose_tiers_are_ranked_as_given(client, store):
    campaign = create_campaign(client, store)

    assert [tier["rank"] for tier in campaign["tiers"]] == [1, 2, 3]
    assert campaign["tiers"][0]["left"] == 1 and campaign["tiers"][2]["left"] is None
    assert campaign["state"] == "running" and campaign["upgrade_offers"] == []
    listed = client.get(f"{M}/campaigns", headers=store["staff"]).json["items"]
    assert [item["id"] for item in listed] == [campaign["id"]]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tiers": [{"name": "a", "prize_kind": "gift", "quota": 1, "odds_bp": 9999}]}, "tiers"),
        ({"tiers": [{"name": "a", "prize_kind": "gift", "odds_bp": 10000}]}, "tiers.0.quota"),
        ({"tiers": [{"name": "a", "prize_kind": "coupon", "quota": 1, "odds_bp": 10000}]}, "tiers.0.template_id"),
        ({"tiers": [{"name": "a", "prize_kind": "gift", "quota": -1, "odds_bp": 10000}]}, "tiers"),
        ({"tiers": [{"name": "a", "prize_kind": "gift", "quota": 1, "cost": -5, "odds_bp": 10000}]}, "tiers"),
        (
            {
                "tiers": [
                    {"name": "a", "prize_kind": "gift", "guaranteed": True, "odds_bp": 5000},
                    {"name": "b", "prize_kind": "gift", "guaranteed": True, "odds_bp": 5000},
                ]
            },
            "tiers",
        ),
        ({"entry_rule": "once", "max_entries": 3}, "max_entries"),
        ({"ends_at": (utcnow() - timedelta(days=30)).isoformat()}, "ends_at"),
    ],
)
def test_a_campaign_that_makes_no_sense_is_refused_and_nothing_is_made(client, store, change, field):
    response = client.post(f"{M}/campaigns", json=campaign_body(**change), headers=store["staff"])

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]
    assert db.session.execute(select(Campaign.id)).first() is None


@pytest.mark.parametrize(
    "tiers, field, problem",
    [
        (
            [
                {"name": "a", "prize_kind": "gift", "quota": 1, "odds_bp": 100},
                {"name": "a", "prize_kind": "gift", "odds_bp": 9900, "guaranteed": True},
            ],
            "tiers.1.name",
            "another tier of the campaign has this name",
        ),
        (
            [{"name": "a", "prize_kind": "gift", "quota": 0, "odds_bp": 10000, "guaranteed": True}],
            "tiers.0.quota",
            "at least 1, or none: with 0 every draw would be refused",
        ),
    ],
)
def test_tiers_of_one_name_or_a_guaranteed_tier_of_none_are_refused(client, store, tiers, field, problem):
    response = client.post(f"{M}/campaigns", json=campaign_body(tiers=tiers), headers=store["staff"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {field: [problem]}


def test_a_window_already_over_is_refused(client, store):
    body = campaign_body(
        starts_at=(utcnow() - timedelta(days=30)).isoformat(), ends_at=(utcnow() - timedelta(days=1)).isoformat()
    )

    response = client.post(f"{M}/campaigns", json=body, headers=store["staff"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"ends_at": ["in the future: this window is over"]}


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"status": "paused"}, "the coupon template is paused"),
        ({"issued": 5}, "none of the coupon template is left"),
    ],
)
def test_a_coupon_template_that_cannot_be_issued_cannot_be_a_prize(client, store, change, problem):
    template = coupon_template(client, store, 5, amount=100, name="券")
    db.session.execute(update(CouponTemplate).where(CouponTemplate.id == template["id"]).values(**change))
    db.session.flush()
    tiers = [{"name": "a", "prize_kind": "coupon", "template_id": template["id"], "quota": 1, "odds_bp": 10000}]

    response = client.post(f"{M}/campaigns", json=campaign_body(tiers=tiers), headers=store["staff"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"tiers.0.template_id": [problem]}


def test_another_merchants_coupon_template_cannot_be_a_prize(client, store):
    other = make_store(client)
    template = coupon_template(client, other, 5, amount=100, name="x")
    tiers = [{"name": "a", "prize_kind": "coupon", "template_id": template["id"], "quota": 1, "odds_bp": 10000}]

    response = client.post(f"{M}/campaigns", json=campaign_body(tiers=tiers), headers=store["staff"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"tiers.0.template_id": ["no such coupon template"]}


@pytest.mark.parametrize(
    "source, target, price, field",
    [(2, 0, 0, "price"), (2, 0, -100, "price"), (0, 2, 100, "to_tier_id"), (2, 2, 100, "to_tier_id")],
)
def test_an_upgrade_offer_must_go_up_within_the_campaign_for_a_fen_at_least(
    client, store, source, target, price, field
):
    campaign = create_campaign(client, store)
    tiers = campaign["tiers"]

    response = client.post(
        f"{M}/campaigns/{campaign['id']}/upgrade-offers",
        json={"from_tier_id": tiers[source]["id"], "to_tier_id": tiers[target]["id"], "price": price},
        headers=store["staff"],
    )

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]


def test_an_upgrade_between_tiers_of_two_campaigns_is_refused(client, store):
    first, second = create_campaign(client, store), create_campaign(client, store)

    response = client.post(
        f"{M}/campaigns/{first['id']}/upgrade-offers",
        json={"from_tier_id": first["tiers"][2]["id"], "to_tier_id": second["tiers"][0]["id"], "price": 100},
        headers=store["staff"],
    )

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"to_tier_id": ["not a prize tier of this campaign"]}


def test_the_same_offer_twice_is_a_conflict(client, store):
    campaign = create_campaign(client, store)
    offer(client, store, campaign, 2, 0, 100)
    tiers = campaign["tiers"]

    again = client.post(
        f"{M}/campaigns/{campaign['id']}/upgrade-offers",
        json={"from_tier_id": tiers[2]["id"], "to_tier_id": tiers[0]["id"], "price": 200},
        headers=store["staff"],
    )

    assert again.status_code == 409 and again.json["error"]["code"] == "offer_exists"


def test_staff_list_a_campaigns_upgrade_offers_in_an_object(client, store):
    campaign = create_campaign(client, store)
    made = offer(client, store, campaign, 2, 0, 100)
    listed = client.get(f"{M}/campaigns/{campaign['id']}/upgrade-offers", headers=store["staff"])
    assert listed.status_code == 200, listed.json
    assert [item["id"] for item in listed.json["items"]] == [made["id"]]
    assert (listed.json["items"][0]["price"], listed.json["items"][0]["status"]) == (100, made["status"])


def test_a_quota_never_goes_below_what_the_tier_gave(client, store, third_prize):
    campaign = store["campaign"]
    path = f"{M}/campaigns/{campaign['id']}/tiers/{campaign['tiers'][2]['id']}"

    assert client.patch(path, json={"quota": 0}, headers=store["staff"]).json["error"]["code"] == "quota_below_taken"
    capped = client.patch(path, json={"quota": 1}, headers=store["staff"])
    assert capped.status_code == 200 and capped.json["taken"] == 1 and capped.json["left"] == 0
    first = f"{M}/campaigns/{campaign['id']}/tiers/{campaign['tiers'][0]['id']}"
    assert client.patch(first, json={"quota": None}, headers=store["staff"]).status_code == 422


def test_members_cannot_configure_and_finance_cannot_redeem(client, store, third_prize):
    assert client.post(f"{M}/campaigns", json=campaign_body(), headers=store["member"]).status_code in (401, 403)
    make_staff(store["merchant"], "finance", "cashier")
    finance = staff_headers(client, store["merchant"].code, "cashier")
    assert client.get(f"{M}/campaigns", headers=finance).status_code == 200
    assert client.post(f"{M}/campaigns", json=campaign_body(), headers=finance).status_code == 403
    assert redeem(client, finance, third_prize["code"]).status_code == 403
    make_staff(store["merchant"], "operator", "clerk")
    clerk = staff_headers(client, store["merchant"].code, "clerk")
    assert redeem(client, clerk, third_prize["code"]).status_code == 200


# --- drawing -------------------------------------------------------------------------------------


def test_everyone_who_draws_wins_at_least_the_guaranteed_tier(client, store, monkeypatch):
    campaign = create_campaign(client, store)
    rig(monkeypatch, 50, 50, 5000)  # first prize, first prize again (none left), third
    won = []
    for name in ("a", "b", "c"):
        response = draw(client, member_headers(client, store["merchant"].code, name), campaign["id"])
        assert response.status_code == 201, response.json
        won.append((response.json["prize"]["tier_rank"], response.json["fell_back"]))

    assert won == [(1, False), (3, True), (3, False)]
    assert reload(CampaignTier, campaign["tiers"][0]["id"]).taken == 1


def test_a_draw_is_recorded_with_its_roll_and_answered_again_for_the_same_key(client, store, monkeypatch):
    campaign = create_campaign(client, store)
    rig(monkeypatch, 700)

    first = draw(client, store["member"], campaign["id"], "same-key-0001")
    again = draw(client, store["member"], campaign["id"], "same-key-0001")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json == first.json
    assert first.json["roll"] == 700 and first.json["prize"]["tier_rank"] == 2
    assert len(first.json["prize"]["code"]) == 8 and first.json["prize"]["code"].isdigit()


def test_a_draw_needs_an_idempotency_key(client, store):
    campaign = create_campaign(client, store)

    response = client.post(f"/api/v1/campaigns/{campaign['id']}/draws", headers=store["member"])

    assert response.status_code == 422 and response.json["error"]["code"] == "idempotency_key_required"


def test_once_means_one_draw_and_then_no_entries(client, store, monkeypatch):
    campaign = create_campaign(client, store)
    rig(monkeypatch, 9000, 9000)
    assert client.get("/api/v1/campaigns", headers=store["member"]).json["items"][0]["chances"] == 1

    assert draw(client, store["member"], campaign["id"]).status_code == 201
    second = draw(client, store["member"], campaign["id"])

    assert second.status_code == 409 and second.json["error"]["code"] == "no_entries"
    listed = client.get("/api/v1/campaigns", headers=store["member"]).json["items"][0]
    assert (listed["chances"], listed["drawn"]) == (0, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "paused"},
        {
            "starts_at": (utcnow() + timedelta(days=1)).isoformat(),
            "ends_at": (utcnow() + timedelta(days=2)).isoformat(),
        },
    ],
)
def test_no_draw_outside_the_window_or_while_paused(client, store, change):
    campaign = create_campaign(client, store)
    assert client.patch(f"{M}/campaigns/{campaign['id']}", json=change, headers=store["staff"]).status_code == 200

    response = draw(client, store["member"], campaign["id"])

    assert response.status_code == 409 and response.json["error"]["code"] == "campaign_not_active"


def test_an_ended_campaign_refuses_draws(client, store):
    campaign = create_campaign(client, store)
    db.session.execute(
        update(Campaign).values(starts_at=utcnow() - timedelta(days=9), ends_at=utcnow() - timedelta(days=1))
    )

    response = draw(client, store["member"], campaign["id"])

    assert response.status_code == 409 and response.json["error"]["details"]["state"] == "ended"


def test_a_spent_guaranteed_quota_is_campaign_exhausted_and_spends_nothing(client, store, monkeypatch):
    tiers = [
        {"name": "一等奖", "prize_kind": "gift", "quota": 0, "odds_bp": 1000},
        {"name": "参与奖", "prize_kind": "gift", "quota": 1, "odds_bp": 9000, "guaranteed": True},
    ]
    campaign = create_campaign(client, store, tiers=tiers)
    rig(monkeypatch, 9000, 10)
    assert draw(client, store["member"], campaign["id"]).status_code == 201
    other = member_headers(client, store["merchant"].code, "late")

    response = draw(client, other, campaign["id"])

    assert response.status_code == 409 and response.json["error"]["code"] == "campaign_exhausted"
    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=other).json["chances"] == 1


def test_a_spent_guaranteed_tier_refuses_every_draw_before_rolling_so_no_one_rolls_again(client, store, monkeypatch):
    """Were only the rolls that fell on the spent guaranteed tier refused, a member would keep the
    entry and send another key until a better tier came up."""
    campaign = create_campaign(client, store)
    path = f"{M}/campaigns/{campaign['id']}/tiers/{campaign['tiers'][2]['id']}"
    rig(monkeypatch, 9999)
    assert draw(client, store["member"], campaign["id"]).status_code == 201
    assert client.patch(path, json={"quota": 1}, headers=store["staff"]).status_code == 200
    greedy = member_headers(client, store["merchant"].code, "greedy")
    rig(monkeypatch, *[0] * 5)  # rolls on first prize, which has its unit left: never rolled

    answers = [draw(client, greedy, campaign["id"]) for _ in range(5)]

    assert {(a.status_code, a.json["error"]["code"]) for a in answers} == {(409, "campaign_exhausted")}
    assert answers[0].json["error"]["details"] == {"campaign_id": campaign["id"], "tier_id": campaign["tiers"][2]["id"]}
    assert reload(CampaignTier, campaign["tiers"][0]["id"]).taken == 0
    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=greedy).json
    assert seen["exhausted"] is True and seen["chances"] == 1
    assert [tier["sold_out"] for tier in seen["tiers"]] == [False, False, True]


def test_a_guaranteed_coupon_tier_whose_template_is_paused_refuses_draws_and_shows_sold_out(client, store):
    template = coupon_template(client, store, 50, amount=500, name="奖品券")
    tiers = [
        {"name": "一等奖", "prize_kind": "gift", "quota": 5, "odds_bp": 100},
        {"name": "券", "prize_kind": "coupon", "template_id": template["id"], "odds_bp": 9900, "guaranteed": True},
    ]
    campaign = create_campaign(client, store, tiers=tiers)
    paused = client.patch(f"{M}/coupon-templates/{template['id']}", json={"status": "paused"}, headers=store["staff"])
    assert paused.status_code == 200, paused.json

    response = draw(client, store["member"], campaign["id"])

    assert response.status_code == 409 and response.json["error"]["code"] == "campaign_exhausted"
    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json
    assert seen["exhausted"] is True and seen["tiers"][1]["sold_out"] is True and seen["chances"] == 1


def test_a_draw_key_is_the_members_across_campaigns(client, store, monkeypatch):
    first = create_campaign(client, store)
    second = create_campaign(client, store, name="第二场")
    rig(monkeypatch, 9999, 9999)
    assert draw(client, store["member"], first["id"], "my-draw-0001").status_code == 201

    reused = draw(client, store["member"], second["id"], "my-draw-0001")

    assert reused.status_code == 409 and reused.json["error"]["code"] == "idempotency_key_reused"
    assert client.get(f"/api/v1/campaigns/{second['id']}", headers=store["member"]).json["chances"] == 1
    assert draw(client, store["member"], second["id"], "my-draw-0002").status_code == 201


def test_an_ended_campaign_shows_no_chances_left(client, store):
    campaign = create_campaign(client, store)
    ended = client.patch(
        f"{M}/campaigns/{campaign['id']}",
        json={
            "ends_at": (utcnow() - timedelta(minutes=1)).isoformat(),
            "starts_at": (utcnow() - timedelta(days=1)).isoformat(),
        },
        headers=store["staff"],
    )
    assert ended.status_code == 200, ended.json

    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json

    assert seen["state"] == "ended" and seen["chances"] == 0


def test_a_campaigns_times_are_answered_in_utc_whatever_offset_was_sent(client, store):
    starts = (utcnow() - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8)))
    campaign = create_campaign(client, store, starts_at=starts.isoformat())

    assert (
        campaign["starts_at"] == client.get(f"{M}/campaigns/{campaign['id']}", headers=store["staff"]).json["starts_at"]
    )
    assert campaign["starts_at"].endswith(("Z", "+00:00"))
    changed = client.patch(
        f"{M}/campaigns/{campaign['id']}", json={"starts_at": starts.isoformat()}, headers=store["staff"]
    )
    assert changed.json["starts_at"] == campaign["starts_at"]


def test_without_a_guaranteed_tier_a_draw_on_a_tier_run_out_wins_nothing(client, store, monkeypatch):
    tiers = [
        {"name": "一等奖", "prize_kind": "gift", "quota": 0, "odds_bp": 5000},
        {"name": "二等奖", "prize_kind": "gift", "quota": 10, "odds_bp": 5000},
    ]
    campaign = create_campaign(client, store, tiers=tiers)
    rig(monkeypatch, 10)

    response = draw(client, store["member"], campaign["id"])

    assert response.status_code == 201
    assert response.json["won"] is False and response.json["prize"] is None and response.json["tier_id"] is None


def test_a_coupon_prize_goes_into_the_wallet(client, store, monkeypatch):
    template = coupon_template(client, store, 5, amount=500, name="奖品券")
    tiers = [
        {"name": "券", "prize_kind": "coupon", "template_id": template["id"], "odds_bp": 10000, "guaranteed": True}
    ]
    campaign = create_campaign(client, store, tiers=tiers)
    rig(monkeypatch, 1)

    won = draw(client, store["member"], campaign["id"]).json["prize"]

    assert won["kind"] == "coupon" and won["status"] == "delivered" and won["code"] is None
    wallet = client.get("/api/v1/coupons", headers=store["member"]).json["items"]
    assert [coupon["id"] for coupon in wallet] == [won["coupon_id"]]


def test_a_coupon_prize_sold_out_falls_back_to_the_guaranteed_tier(client, store, monkeypatch):
    template = coupon_template(client, store, 1, amount=500, name="奖品券")
    tiers = [
        {"name": "券", "prize_kind": "coupon", "template_id": template["id"], "quota": 5, "odds_bp": 5000},
        {"name": "纸巾", "prize_kind": "gift", "odds_bp": 5000, "guaranteed": True},
    ]
    campaign = create_campaign(client, store, tiers=tiers)
    rig(monkeypatch, 1, 1)
    assert draw(client, store["member"], campaign["id"]).json["prize"]["kind"] == "coupon"

    second = draw(client, member_headers(client, store["merchant"].code, "b"), campaign["id"]).json

    assert second["fell_back"] is True and second["prize"]["kind"] == "gift"
    assert reload(CampaignTier, campaign["tiers"][0]["id"]).taken == 1


# --- entries by order and by group ---------------------------------------------------------------


def test_each_qualifying_paid_order_gives_an_entry_up_to_the_cap(app, client, store, monkeypatch):
    campaign = create_campaign(client, store, entry_rule="per_order", max_entries=2, min_paid=5000)
    for _ in range(3):
        paid_order(client, store["member"], order_body(store["tea"]))

    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json

    assert seen["chances"] == 2
    rig(monkeypatch, 9000, 9000, 9000)
    assert draw(client, store["member"], campaign["id"]).status_code == 201
    assert draw(client, store["member"], campaign["id"]).status_code == 201
    assert draw(client, store["member"], campaign["id"]).json["error"]["code"] == "no_entries"


def test_an_order_below_the_qualifying_amount_gives_no_entry(client, store):
    campaign = create_campaign(client, store, entry_rule="per_order", max_entries=5, min_paid=6001)
    paid_order(client, store["member"], order_body(store["tea"]))

    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json["chances"] == 0


def test_a_fully_refunded_order_takes_back_its_undrawn_entry(app, client, store):
    campaign = create_campaign(client, store, entry_rule="per_order", max_entries=5)
    order = paid_order(client, store["member"], order_body(store["tea"]))
    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json["chances"] == 1

    settled_refund(app, client, store["staff"], store["member"], order["id"])

    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json
    assert (seen["chances"], seen["withdrawn"]) == (0, 1)


def test_joining_a_group_gives_an_entry_once_per_group(client, store):
    campaign = create_campaign(client, store, entry_rule="per_group", max_entries=3)
    member = db.session.execute(select(Member).where(Member.merchant_id == store["merchant"].id)).scalars().one()
    event = GroupJoined(
        merchant_id=store["merchant"].id,
        group_id=41,
        offer_id=1,
        product_id=store["tea_product"],
        member_id=member.id,
        order_id=1,
        leader=False,
        members=2,
        size=3,
    )
    bus.publish(event)
    bus.publish(event)  # the same group again: no second entry

    entries = db.session.execute(select(CampaignEntry.source).where(CampaignEntry.campaign_id == campaign["id"]))
    assert entries.scalars().all() == ["group:41"]


# --- redemption ----------------------------------------------------------------------------------


def test_staff_redeem_a_code_once_and_a_repeat_answers_the_first_redemption(client, store, third_prize):
    first = redeem(client, store["staff"], third_prize["code"])
    again = redeem(client, store["staff"], third_prize["code"])

    assert first.status_code == 200 and first.json["status"] == "redeemed"
    assert first.json["already_redeemed"] is False
    assert again.status_code == 200 and again.json["redeemed_at"] == first.json["redeemed_at"]
    assert again.json["already_redeemed"] is True  # a code shown twice: nothing is handed over again
    assert prize(client, store["member"], third_prize["id"])["upgrade_offers"] == []


def test_an_unknown_or_foreign_code_is_not_found(client, store, third_prize):
    other = make_store(client)
    assert redeem(client, other["staff"], third_prize["code"]).status_code == 404
    unknown = "0" * 8 if third_prize["code"] != "0" * 8 else "1" * 8
    assert redeem(client, store["staff"], unknown).status_code == 404
    assert redeem(client, store["staff"], "12ab").status_code == 422


def test_an_expired_voucher_is_not_redeemed(client, store, third_prize):
    db.session.execute(update(Prize).values(redeem_until=utcnow() - timedelta(minutes=1)))
    db.session.flush()

    response = redeem(client, store["staff"], third_prize["code"])

    assert response.status_code == 409 and response.json["error"]["code"] == "prize_expired"
    assert prize(client, store["member"], third_prize["id"])["status"] == "expired"
    listed = client.get("/api/v1/prizes?status=expired", headers=store["member"]).json["items"]
    assert [p["id"] for p in listed] == [third_prize["id"]]
    assert client.get("/api/v1/prizes?status=available", headers=store["member"]).json["items"] == []


# --- upgrades ------------------------------------------------------------------------------------


def test_the_seeds_campaign_end_to_end_third_prize_upgraded_to_first_and_redeemed(app, client, store, third_prize):
    offers = prize(client, store["member"], third_prize["id"])["upgrade_offers"]
    assert [(o["to_tier_rank"], o["price"]) for o in offers] == [(1, 9900), (2, 1990)]

    placed = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"])
    assert placed.status_code == 201, placed.json
    order = placed.json
    assert (order["kind"], order["payable_total"], order["status"]) == ("prize_upgrade", 9900, "pending_payment")
    held = prize(client, store["member"], third_prize["id"])
    assert held["status"] == "held" and held["pending_upgrade"]["order_id"] == order["id"]
    assert redeem(client, store["staff"], third_prize["code"]).json["error"]["code"] == "prize_not_redeemable"

    assert fake_pay(client, order["order_no"]).json["status"] == "paid"
    run_burst(app)

    mine = client.get("/api/v1/prizes", headers=store["member"]).json["items"]
    assert [(p["tier_rank"], p["status"], p["origin"]) for p in mine] == [
        (1, "available", "upgrade"),
        (3, "voided", "draw"),
    ]
    first = mine[0]
    redeemed = redeem(client, store["staff"], first["code"])
    assert redeemed.status_code == 200 and redeemed.json["status"] == "redeemed"
    assert client.get(f"/api/v1/orders/{order['id']}", headers=store["member"]).json["status"] == "completed"
    refund = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert refund.status_code == 409

    numbers = client.get(f"{M}/campaigns/{store['campaign']['id']}/economics", headers=store["staff"]).json
    assert numbers["upgrade_revenue"] == 9900
    assert numbers["prize_cost"] == 30000  # the first prize given; the voided third costs nothing
    assert (numbers["covered"], numbers["net"]) == (False, -20100)
    assert numbers["upgrades"]["taken"] == 1 and numbers["upgrades"]["take_up_bp"] == 10000
    assert [tier["live"] for tier in numbers["tiers"]] == [1, 0, 0]
    # the third prize traded in is gone for good: its unit is free again
    assert [tier["taken"] for tier in numbers["tiers"]] == [1, 0, 0]


def test_an_upgrade_is_answered_again_for_the_same_key(client, store, third_prize):
    first = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"], "upgrade-key-1")
    again = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"], "upgrade-key-1")

    assert first.status_code == 201 and again.status_code == 200 and again.json["id"] == first.json["id"]
    assert reload(CampaignTier, store["campaign"]["tiers"][0]["id"]).taken == 1


def test_a_held_redeemed_or_voided_prize_is_not_upgradable(app, client, store, third_prize):
    upgrade(client, store["member"], third_prize["id"], store["to_second"]["id"])

    held = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"])

    assert held.status_code == 409 and held.json["error"]["code"] == "prize_not_upgradable"
    assert held.json["error"]["details"]["status"] == "held"


def test_the_last_unit_of_the_better_tier_is_sold_out_for_the_next(client, store, third_prize, monkeypatch):
    rig(monkeypatch, 9999)
    other = member_headers(client, store["merchant"].code, "bob")
    theirs = draw(client, other, store["campaign"]["id"]).json["prize"]
    assert upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"]).status_code == 201

    late = upgrade(client, other, theirs["id"], store["to_first"]["id"])

    assert late.status_code == 409 and late.json["error"]["code"] == "prize_sold_out"
    assert prize(client, other, theirs["id"])["status"] == "available"  # nothing held for nothing


def test_an_offer_for_another_tier_is_refused(client, store, third_prize):
    campaign = store["campaign"]
    wrong = offer(client, store, campaign, 1, 0, 500)

    response = upgrade(client, store["member"], third_prize["id"], wrong["id"])

    assert response.status_code == 422 and "offer_id" in response.json["error"]["details"]["fields"]


def test_cancelling_an_unpaid_upgrade_releases_the_prize_and_the_quota(client, store, third_prize):
    order = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"]).json

    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"])

    assert cancelled.status_code == 200, cancelled.json
    assert prize(client, store["member"], third_prize["id"])["status"] == "available"
    assert reload(CampaignTier, store["campaign"]["tiers"][0]["id"]).taken == 0
    assert db.session.execute(select(PrizeUpgrade.status)).scalar_one() == "cancelled"


def test_refunding_an_upgrade_voids_the_better_prize_and_gives_the_first_back(app, client, store, third_prize):
    order = paid_upgrade(app, client, store, third_prize["id"], store["to_first"]["id"])
    better = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    assert better["tier_rank"] == 1 and better["status"] == "available"

    settled_refund(app, client, store["staff"], store["member"], order["id"])

    assert prize(client, store["member"], better["id"])["status"] == "voided"
    assert prize(client, store["member"], third_prize["id"])["status"] == "available"
    assert reload(CampaignTier, store["campaign"]["tiers"][0]["id"]).taken == 0
    numbers = client.get(f"{M}/campaigns/{store['campaign']['id']}/economics", headers=store["staff"]).json
    assert numbers["upgrade_revenue"] == 0 and numbers["upgrades"]["refunded"] == 1
    assert redeem(client, store["staff"], better["code"]).json["error"]["code"] == "prize_not_redeemable"


def test_redemption_refuses_while_a_refund_of_the_upgrade_is_open(app, client, store, third_prize):
    order = paid_upgrade(app, client, store, third_prize["id"], store["to_first"]["id"])
    better = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    asked = client.post(
        f"/api/v1/orders/{order['id']}/refunds", json={"reason": "changed my mind"}, headers=store["member"]
    )
    assert asked.status_code == 201, asked.json

    response = redeem(client, store["staff"], better["code"])

    assert response.status_code == 409 and response.json["error"]["code"] == "refund_in_progress"


def test_the_upgrade_job_twice_issues_one_prize(app, client, store, third_prize):
    order = paid_upgrade(app, client, store, third_prize["id"], store["to_first"]["id"])

    assert issue_upgrade(order["id"]) is False
    assert len(db.session.execute(select(Prize.id).where(Prize.origin == "upgrade")).scalars().all()) == 1


def test_another_member_cannot_see_or_upgrade_a_prize(client, store, third_prize):
    other = member_headers(client, store["merchant"].code, "mallory")

    assert client.get(f"/api/v1/prizes/{third_prize['id']}", headers=other).status_code == 404
    assert upgrade(client, other, third_prize["id"], store["to_first"]["id"]).status_code == 404
    assert client.get("/api/v1/prizes", headers=other).json["items"] == []


def test_upgrading_an_upgraded_gift_again_makes_the_first_upgrade_final(app, client, store, third_prize):
    campaign = store["campaign"]
    to_first = offer(client, store, campaign, 1, 0, 8000)
    first_order = paid_upgrade(app, client, store, third_prize["id"], store["to_second"]["id"])
    second = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    assert second["tier_rank"] == 2 and second["origin"] == "upgrade"

    placed = upgrade(client, store["member"], second["id"], to_first["id"])

    assert placed.status_code == 201, placed.json
    refund = client.post(f"/api/v1/orders/{first_order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert refund.status_code == 409  # used: the second prize was traded on
    assert client.get(f"/api/v1/orders/{first_order['id']}", headers=store["member"]).json["status"] == "completed"
    client.post(f"/api/v1/orders/{placed.json['id']}/cancel", headers=store["member"])
    assert prize(client, store["member"], second["id"])["status"] == "available"  # still the member's


def test_an_upgraded_gift_whose_upgrade_is_being_refunded_cannot_be_traded_on(app, client, store, third_prize):
    to_first = offer(client, store, store["campaign"], 1, 0, 8000)
    first_order = paid_upgrade(app, client, store, third_prize["id"], store["to_second"]["id"])
    second = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    asked = client.post(f"/api/v1/orders/{first_order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert asked.status_code == 201, asked.json

    placed = upgrade(client, store["member"], second["id"], to_first["id"])

    assert placed.status_code == 409 and placed.json["error"]["code"] == "refund_in_progress"
    assert prize(client, store["member"], second["id"])["status"] == "available"


def test_only_the_lowest_tier_may_be_guaranteed(client, store):
    tiers = [
        {"name": "一等奖", "prize_kind": "gift", "odds_bp": 100, "guaranteed": True},
        {"name": "三等奖", "prize_kind": "gift", "quota": 0, "odds_bp": 9900},
    ]

    response = client.post(f"{M}/campaigns", json=campaign_body(tiers=tiers), headers=store["staff"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {
        "tiers.0.guaranteed": ["only the last (lowest) tier may be guaranteed"]
    }


def test_the_guaranteed_tier_counts_what_it_gives_so_a_quota_set_later_holds(client, store, monkeypatch):
    campaign = create_campaign(client, store)
    rig(monkeypatch, 9999, 9999)
    assert draw(client, store["member"], campaign["id"]).status_code == 201
    third = campaign["tiers"][2]
    capped = client.patch(
        f"{M}/campaigns/{campaign['id']}/tiers/{third['id']}", json={"quota": 1}, headers=store["staff"]
    )
    assert capped.json["taken"] == 1 and capped.json["left"] == 0

    late = draw(client, member_headers(client, store["merchant"].code, "late"), campaign["id"])

    assert late.status_code == 409 and late.json["error"]["code"] == "campaign_exhausted"


def test_economics_count_a_prize_at_its_cost_when_given_and_nothing_for_an_expired_one(client, store, third_prize):
    campaign = store["campaign"]
    path = f"{M}/campaigns/{campaign['id']}"
    client.patch(f"{path}/tiers/{campaign['tiers'][2]['id']}", json={"cost": 5}, headers=store["staff"])

    assert client.get(f"{path}/economics", headers=store["staff"]).json["prize_cost"] == 1000  # as given
    db.session.execute(update(Prize).values(redeem_until=utcnow() - timedelta(minutes=1)))
    numbers = client.get(f"{path}/economics", headers=store["staff"]).json
    assert numbers["prize_cost"] == 0 and numbers["covered"] is True
    assert numbers["tiers"][2]["expired"] == 1 and numbers["tiers"][2]["live"] == 0


def test_take_up_counts_every_prize_an_offer_starts_from(app, client, store, third_prize):
    to_first = offer(client, store, store["campaign"], 1, 0, 8000)
    paid_upgrade(app, client, store, third_prize["id"], store["to_second"]["id"])
    second = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    paid_upgrade(app, client, store, second["id"], to_first["id"])

    upgrades = client.get(f"{M}/campaigns/{store['campaign']['id']}/economics", headers=store["staff"]).json["upgrades"]

    assert (upgrades["taken"], upgrades["eligible_prizes"], upgrades["take_up_bp"]) == (2, 2, 10000)


def test_a_gift_won_with_an_orders_entry_is_voided_when_the_order_is_refunded_in_full(app, client, store, monkeypatch):
    campaign = create_campaign(client, store, entry_rule="per_order", max_entries=3)
    order = paid_order(client, store["member"], order_body(store["tea"]))
    rig(monkeypatch, 50)
    won = draw(client, store["member"], campaign["id"]).json["prize"]
    assert won["tier_rank"] == 1

    settled_refund(app, client, store["staff"], store["member"], order["id"])

    assert prize(client, store["member"], won["id"])["status"] == "voided"
    assert reload(CampaignTier, campaign["tiers"][0]["id"]).taken == 0  # first prize back in the pool


def test_a_partial_refund_keeps_the_orders_entry(app, client, store):
    campaign = create_campaign(client, store, entry_rule="per_order", max_entries=3)
    order = paid_order(client, store["member"], order_body(store["tea"], 2))

    settled_refund(app, client, store["staff"], store["member"], order["id"], [(order["lines"][0]["id"], 1)])

    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json["chances"] == 1


def test_a_failed_group_takes_back_its_undrawn_entries(client, store):
    campaign = create_campaign(client, store, entry_rule="per_group", max_entries=3)
    member = db.session.execute(select(Member).where(Member.merchant_id == store["merchant"].id)).scalars().one()
    joined = {"merchant_id": store["merchant"].id, "group_id": 7, "offer_id": 1, "product_id": store["tea_product"]}
    bus.publish(GroupJoined(**joined, member_id=member.id, order_id=1, leader=True, members=1, size=3))
    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json["chances"] == 1

    bus.publish(GroupFailed(**joined, leader_id=member.id, order_ids=(1,), reason="expired"))

    seen = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=store["member"]).json
    assert (seen["chances"], seen["withdrawn"]) == (0, 1)


def test_an_unpaid_upgrade_that_expires_releases_the_prize_and_a_late_payment_changes_nothing(
    client, store, third_prize
):
    from shop.orders.models import Order
    from shop.payments.jobs import sweep_expired_orders

    order = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"]).json
    db.session.execute(update(Order).where(Order.id == order["id"]).values(expires_at=utcnow() - timedelta(minutes=5)))

    sweep_expired_orders()

    assert client.get(f"/api/v1/orders/{order['id']}", headers=store["member"]).json["status"] == "cancelled"
    assert prize(client, store["member"], third_prize["id"])["status"] == "available"
    assert reload(CampaignTier, store["campaign"]["tiers"][0]["id"]).taken == 0
    fake_pay(client, order["order_no"])  # paid after it expired: refunded by shop, no prize
    assert db.session.execute(select(Prize.id).where(Prize.origin == "upgrade")).first() is None
    assert db.session.execute(select(PrizeUpgrade.status)).scalar_one() == "cancelled"


def test_an_upgrade_refunded_before_its_job_ran_gives_nothing_and_releases_everything(
    app, client, store, third_prize, monkeypatch
):
    from coupons import handlers

    monkeypatch.setattr(handlers, "enqueue", lambda *args, **kwargs: None)  # the upgrade job is lost
    placed = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"]).json
    assert fake_pay(client, placed["order_no"]).json["status"] == "paid"

    settled_refund(app, client, store["staff"], store["member"], placed["id"])

    assert db.session.execute(select(PrizeUpgrade.status)).scalar_one() == "refunded"
    assert issue_upgrade(placed["id"]) is False  # the job, late: nothing to do
    assert db.session.execute(select(Prize.id).where(Prize.origin == "upgrade")).first() is None
    assert prize(client, store["member"], third_prize["id"])["status"] == "available"
    assert reload(CampaignTier, store["campaign"]["tiers"][0]["id"]).taken == 0


def test_a_gift_that_expires_while_held_is_still_exchanged_when_the_upgrade_is_paid(app, client, store, third_prize):
    order = upgrade(client, store["member"], third_prize["id"], store["to_first"]["id"]).json
    db.session.execute(update(Prize).values(redeem_until=utcnow() - timedelta(minutes=1)))

    fake_pay(client, order["order_no"])
    run_burst(app)

    mine = client.get("/api/v1/prizes", headers=store["member"]).json["items"]
    assert [(p["tier_rank"], p["status"]) for p in mine] == [(1, "available"), (3, "voided")]


def test_an_upgrade_whose_better_gift_expires_unredeemed_becomes_final(app, client, store, third_prize):
    order = paid_upgrade(app, client, store, third_prize["id"], store["to_first"]["id"])
    better = client.get("/api/v1/prizes", headers=store["member"]).json["items"][0]
    assert sweep_expired_upgrades() == 0  # still valid: nothing to do
    db.session.execute(update(Prize).where(Prize.id == better["id"]).values(redeem_until=utcnow() - timedelta(hours=1)))

    assert sweep_expired_upgrades() == 1
    assert sweep_expired_upgrades() == 0

    assert client.get(f"/api/v1/orders/{order['id']}", headers=store["member"]).json["status"] == "completed"
    refund = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert refund.status_code == 409
    assert db.session.execute(select(PrizeUpgrade.status)).scalar_one() == "completed"
    assert prize(client, store["member"], better["id"])["status"] == "expired"


def test_an_expired_upgrade_with_a_refund_being_decided_waits_for_it(app, client, store, third_prize):
    order = paid_upgrade(app, client, store, third_prize["id"], store["to_first"]["id"])
    asked = client.post(f"/api/v1/orders/{order['id']}/refunds", json={"reason": "x"}, headers=store["member"])
    assert asked.status_code == 201
    db.session.execute(
        update(Prize).where(Prize.origin == "upgrade").values(redeem_until=utcnow() - timedelta(hours=1))
    )

    sweep_expired_upgrades()

    assert db.session.execute(select(PrizeUpgrade.status)).scalar_one() == "issued"
