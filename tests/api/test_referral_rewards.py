"""Referral rewards (裂变礼品) over HTTP: staff configure a coupon or a prize for the direct
inviter; a first login through the invite and the invitee's first completed order earn it once,
a job issues it, and nothing is given for oneself, per head twice, or up a chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from api.worker import run_burst
from coupons.jobs import issue_referral, sweep_referrals
from coupons.models import Coupon, ReferralGrant
from shop.core.db import db, utcnow
from shop.core.events import MemberInvited, bus
from shop.core.masking import ANONYMOUS
from tests.factories import completed_order, make_store, order_body, paid_order, settled_refund

M = "/api/v1/merchant"
LOGIN = "/api/v1/auth/wx-login"


def login(client, store: dict[str, Any], name: str, invite: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    body: dict[str, Any] = {"merchant": store["merchant"].code, "code": f"test:{name}"}
    if invite:
        body["invite"] = invite
    response = client.post(LOGIN, json=body)
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}, response.json["member"]


def template(client, store: dict[str, Any], quantity: int = 100) -> dict[str, Any]:
    response = client.post(
        f"{M}/coupon-templates",
        json={"name": "邀请有礼", "kind": "amount_off", "amount": 500, "valid_days": 7, "total_quantity": quantity},
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json
    return response.json


def reward(client, store: dict[str, Any], **body: Any):
    return client.post(f"{M}/referral-rewards", json={"name": "邀请新人", **body}, headers=store["staff"])


def coupon_reward(client, store, trigger: str = "joined", **extra: Any) -> dict[str, Any]:
    made = reward(
        client, store, trigger=trigger, reward_kind="coupon", template_id=template(client, store)["id"], **extra
    )
    assert made.status_code == 201, made.json
    return made.json


def earned(client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/v1/referral-rewards", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def wallet(client, headers: dict[str, str]) -> list[dict[str, Any]]:
    return client.get("/api/v1/coupons", headers=headers).json["items"]


def prize_campaign(client, store: dict[str, Any], quota: int = 5) -> dict[str, Any]:
    now = utcnow()
    response = client.post(
        f"{M}/campaigns",
        json={
            "name": "邀请抽奖",
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=3)).isoformat(),
            "entry_rule": "once",
            "tiers": [{"name": "邀请礼", "prize_kind": "gift", "cost": 500, "quota": quota, "odds_bp": 10000}],
        },
        headers=store["staff"],
    )
    assert response.status_code == 201, response.json
    return response.json


def end_campaign(client, store: dict[str, Any], campaign: dict[str, Any]) -> None:
    ended = client.patch(
        f"{M}/campaigns/{campaign['id']}", json={"ends_at": utcnow().isoformat()}, headers=store["staff"]
    )
    assert ended.status_code == 200, ended.json


@pytest.fixture
def store(ctx, client):
    return make_store(client, member="alice", tea={"price": 6000, "stock": 50})


@pytest.fixture
def alice(client, store) -> tuple[dict[str, str], dict[str, Any]]:
    return login(client, store, "alice")


def test_a_first_login_through_the_invite_earns_the_inviter_a_coupon_once(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store)

    login(client, store, "bob", invite=me["invite_code"])
    login(client, store, "bob", invite=me["invite_code"])  # bob again: not a first login
    run_burst(app)

    mine = earned(client, headers)
    assert [(item["trigger"], item["status"], item["invitee"]) for item in mine] == [("joined", "issued", ANONYMOUS)]
    assert [coupon["id"] for coupon in wallet(client, headers)] == [mine[0]["coupon_id"]]
    assert db.session.execute(select(Coupon.channel)).scalar_one() == "referral"


def test_every_invitee_earns_once_and_an_invitees_invitee_earns_only_their_own_inviter(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store)
    bob_headers, bob = login(client, store, "bob", invite=me["invite_code"])
    login(client, store, "carol", invite=me["invite_code"])
    login(client, store, "dave", invite=bob["invite_code"])  # bob's invitee: nothing for alice
    run_burst(app)

    assert len(earned(client, headers)) == 2
    assert [item["status"] for item in earned(client, bob_headers)] == ["issued"]


def test_a_member_whose_inviter_is_recorded_already_earns_a_second_inviter_nothing(app, client, store, alice):
    headers, me = alice
    carol_headers, carol = login(client, store, "carol")
    coupon_reward(client, store)
    login(client, store, "bob", invite=carol["invite_code"])

    login(client, store, "bob", invite=me["invite_code"])
    run_burst(app)

    assert earned(client, headers) == []
    assert len(earned(client, carol_headers)) == 1


def test_a_self_invite_earns_nothing(app, client, store, alice):
    _, me = alice
    coupon_reward(client, store)

    bus.publish(
        MemberInvited(merchant_id=store["merchant"].id, member_id=me["id"], inviter_id=me["id"], new_member=True)
    )

    assert db.session.execute(select(ReferralGrant.id)).first() is None


def test_the_first_completed_order_earns_the_first_order_reward_after_its_delay(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store, trigger="first_order", delay_minutes=60)
    bob_headers, _ = login(client, store, "bob", invite=me["invite_code"])

    completed_order(client, store["staff"], bob_headers, order_body(store["tea"]))
    completed_order(client, store["staff"], bob_headers, order_body(store["tea"]))  # not the first
    run_burst(app)

    mine = earned(client, headers)
    assert [(item["trigger"], item["status"]) for item in mine] == [("first_order", "pending")]
    assert mine[0]["due_at"] > mine[0]["created_at"]
    assert wallet(client, headers) == []
    assert issue_referral(mine[0]["id"]) is False  # not due yet

    db.session.execute(update(ReferralGrant).values(due_at=utcnow() - timedelta(minutes=5)))
    assert sweep_referrals() == 1
    assert sweep_referrals() == 0  # issued once
    assert earned(client, headers)[0]["status"] == "issued"
    assert len(wallet(client, headers)) == 1


def test_a_paid_order_that_has_not_completed_earns_nothing_yet(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store, trigger="first_order")
    bob_headers, _ = login(client, store, "bob", invite=me["invite_code"])

    paid_order(client, bob_headers, order_body(store["tea"]))

    assert earned(client, headers) == []


def test_a_member_who_bought_before_being_invited_earns_their_inviter_nothing(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store, trigger="first_order")
    bob_headers, _ = login(client, store, "bob")
    paid_order(client, bob_headers, order_body(store["tea"]))
    login(client, store, "bob", invite=me["invite_code"])

    completed_order(client, store["staff"], bob_headers, order_body(store["tea"]))

    assert earned(client, headers) == []


def test_a_fully_refunded_first_order_never_completes_and_earns_nothing(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store, trigger="first_order")
    bob_headers, _ = login(client, store, "bob", invite=me["invite_code"])
    order = paid_order(client, bob_headers, order_body(store["tea"]))

    settled_refund(app, client, store["staff"], bob_headers, order["id"])

    assert earned(client, headers) == []


def test_a_prize_reward_is_a_voucher_of_the_campaign_tier(app, client, store, alice):
    headers, me = alice
    campaign = prize_campaign(client, store, quota=1)
    made = reward(client, store, trigger="joined", reward_kind="prize", tier_id=campaign["tiers"][0]["id"])
    assert made.status_code == 201, made.json

    login(client, store, "bob", invite=me["invite_code"])
    login(client, store, "carol", invite=me["invite_code"])  # the tier's one unit is gone
    run_burst(app)

    mine = sorted(earned(client, headers), key=lambda item: item["id"])
    assert [(item["status"], item["skip_reason"]) for item in mine] == [
        ("issued", None),
        ("skipped", "prize_unavailable"),
    ]
    prizes = client.get("/api/v1/prizes", headers=headers).json["items"]
    assert [(p["id"], p["origin"], p["status"]) for p in prizes] == [(mine[0]["prize_id"], "referral", "available")]


def test_a_tier_of_a_campaign_that_has_ended_cannot_be_a_reward(client, store):
    campaign = prize_campaign(client, store)
    end_campaign(client, store, campaign)

    made = reward(client, store, trigger="joined", reward_kind="prize", tier_id=campaign["tiers"][0]["id"])

    assert made.status_code == 422
    assert made.json["error"]["details"]["fields"] == {"tier_id": ["the tier's campaign has ended"]}


def test_a_prize_reward_earned_after_its_campaign_ended_is_skipped(app, client, store, alice):
    headers, me = alice
    campaign = prize_campaign(client, store)
    made = reward(client, store, trigger="joined", reward_kind="prize", tier_id=campaign["tiers"][0]["id"])
    assert made.status_code == 201, made.json
    end_campaign(client, store, campaign)

    login(client, store, "bob", invite=me["invite_code"])
    run_burst(app)

    assert [(item["status"], item["skip_reason"]) for item in earned(client, headers)] == [
        ("skipped", "campaign_ended")
    ]
    assert client.get("/api/v1/prizes", headers=headers).json["items"] == []


def test_a_reward_paused_before_it_is_issued_waits_and_is_issued_when_resumed(app, client, store, alice):
    headers, me = alice
    made = coupon_reward(client, store, trigger="joined", delay_minutes=10)
    login(client, store, "bob", invite=me["invite_code"])
    path = f"{M}/referral-rewards/{made['id']}"
    assert client.patch(path, json={"status": "paused"}, headers=store["staff"]).status_code == 200
    db.session.execute(update(ReferralGrant).values(due_at=utcnow() - timedelta(minutes=5)))

    assert sweep_referrals() == 0
    grant_id = earned(client, headers)[0]["id"]
    assert issue_referral(grant_id) is False
    assert [item["status"] for item in earned(client, headers)] == ["pending"]
    login(client, store, "carol", invite=me["invite_code"])  # a paused reward earns nothing new
    assert len(earned(client, headers)) == 1

    assert client.patch(path, json={"status": "active"}, headers=store["staff"]).status_code == 200
    assert sweep_referrals() == 1
    assert [item["status"] for item in earned(client, headers)] == ["issued"]
    assert len(wallet(client, headers)) == 1


def test_an_invite_opened_just_after_the_first_login_still_earns_the_joined_reward(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store)
    bob_headers, _ = login(client, store, "bob")  # the mini-program logged in before it read the invite

    opened = client.post(f"/api/v1/invites/{me['invite_code']}/open", headers=bob_headers)
    assert opened.status_code == 200 and opened.json["recorded"] is True, opened.json
    run_burst(app)

    assert [(item["trigger"], item["status"]) for item in earned(client, headers)] == [("joined", "issued")]


def test_a_first_order_refunded_in_full_leaves_the_next_one_to_earn_the_reward(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store, trigger="first_order")
    bob_headers, _ = login(client, store, "bob", invite=me["invite_code"])
    first = paid_order(client, bob_headers, order_body(store["tea"]))
    settled_refund(app, client, store["staff"], bob_headers, first["id"])

    second = completed_order(client, store["staff"], bob_headers, order_body(store["tea"]))
    run_burst(app)

    mine = earned(client, headers)
    assert [(item["trigger"], item["status"]) for item in mine] == [("first_order", "issued")]
    assert db.session.get(ReferralGrant, mine[0]["id"]).order_id == second["id"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"trigger": "joined", "reward_kind": "coupon"}, "template_id"),
        ({"trigger": "joined", "reward_kind": "prize"}, "tier_id"),
        ({"trigger": "joined", "reward_kind": "coupon", "template_id": 99999999}, "template_id"),
        ({"trigger": "signup", "reward_kind": "coupon", "template_id": 1}, "trigger"),
        ({"trigger": "joined", "reward_kind": "cash", "template_id": 1}, "reward_kind"),
        ({"trigger": "joined", "reward_kind": "coupon", "template_id": 1, "delay_minutes": -1}, "delay_minutes"),
    ],
)
def test_a_reward_that_makes_no_sense_or_pays_cash_is_refused(client, store, body, field):
    response = reward(client, store, **body)

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]


def test_another_merchants_template_cannot_be_a_reward(client, store):
    other = make_store(client)

    response = reward(client, store, trigger="joined", reward_kind="coupon", template_id=template(client, other)["id"])

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"] == {"template_id": ["no such coupon template"]}


def test_staff_see_who_earned_a_reward_and_members_see_what_inviting_earns(app, client, store, alice):
    headers, me = alice
    made = coupon_reward(client, store)
    _, bob = login(client, store, "bob", invite=me["invite_code"])
    run_burst(app)

    grants = client.get(f"{M}/referral-rewards/{made['id']}/grants", headers=store["staff"]).json["items"]
    assert [(g["inviter_id"], g["invitee_id"]) for g in grants] == [(me["id"], bob["id"])]
    summary = client.get("/api/v1/referral-rewards/summary", headers=headers).json
    assert summary["issued"] == 1 and [r["id"] for r in summary["rewards"]] == [made["id"]]
    other = make_store(client)
    assert client.get(f"{M}/referral-rewards/{made['id']}", headers=other["staff"]).status_code == 404


def test_the_reward_job_run_again_or_beside_the_sweep_issues_the_reward_once(app, client, store, alice):
    headers, me = alice
    coupon_reward(client, store)
    login(client, store, "bob", invite=me["invite_code"])
    grant_id = db.session.execute(select(ReferralGrant.id)).scalar_one()

    assert issue_referral(grant_id) is True
    assert issue_referral(grant_id) is False
    run_burst(app)  # the job the login enqueued, late
    db.session.execute(update(ReferralGrant).values(due_at=utcnow() - timedelta(minutes=5)))
    assert sweep_referrals() == 0

    assert len(wallet(client, headers)) == 1
    assert db.session.execute(select(Coupon.source_ref)).scalars().all() == [f"referral:{grant_id}"]
