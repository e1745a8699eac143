"""How coupons reach members besides the claim centre: the welcome gift on first login, staff
grants (a job, with its progress), the birthday sweep, `issue` for campaigns; and the expiry
sweep with its reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from api.worker import run_burst
from coupons import jobs, service
from coupons.models import Coupon, CouponGrant
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict
from shop.identity.members import CHINA
from shop.identity.models import Member, OutboxNotification
from tests.api.test_coupons import M, claimed, create_template, make_store
from tests.factories import member_headers


@pytest.fixture
def store(ctx, client):
    return make_store(client, tea={"price": 6000, "stock": 50})


def _member_id(client, headers) -> int:
    return client.get("/api/v1/me", headers=headers).json["id"]


def _wallet(client, headers) -> list[dict]:
    return client.get("/api/v1/coupons", headers=headers).json["items"]


def test_a_first_login_gets_the_welcome_gift_once_and_a_sold_out_gift_does_not_stop_the_login(client, store):
    gift = create_template(client, store, name="新人礼", channels=["welcome"], total_quantity=1)
    newcomer = member_headers(client, store["merchant"].code, "newcomer")
    coupons = _wallet(client, newcomer)
    assert [(c["template_id"], c["channel"]) for c in coupons] == [(gift["id"], "welcome")]
    again = member_headers(client, store["merchant"].code, "newcomer")  # a returning login: nothing more
    assert len(_wallet(client, again)) == 1
    late = member_headers(client, store["merchant"].code, "late")  # sold out: logged in all the same
    assert _wallet(client, late) == []


def test_staff_grant_a_template_to_members_and_follow_the_jobs_progress(app, client, store):
    template = create_template(client, store, name="补偿券", channels=[], total_quantity=2)
    ids = [_member_id(client, member_headers(client, store["merchant"].code, f"g{i}")) for i in range(3)]
    response = client.post(
        f"{M}/coupon-grants", json={"template_id": template["id"], "member_ids": ids + ids[:1]}, headers=store["staff"]
    )
    assert response.status_code == 202, response.json
    grant = response.json
    assert (grant["status"], grant["total"], grant["processed"]) == ("pending", 3, 0)
    run_burst(app)
    done = client.get(f"{M}/coupon-grants/{grant['id']}", headers=store["staff"]).json
    assert (done["status"], done["processed"], done["issued"], done["skipped"]) == ("done", 3, 2, {"sold_out": 1})
    held = db.session.execute(select(func.count()).where(Coupon.template_id == template["id"])).scalar_one()
    assert held == 2
    # a rerun (a lost job, the sweep) changes nothing
    with transaction():
        row = db.session.get(CouponGrant, grant["id"])
        row.status, row.processed, row.issued, row.skipped = "pending", 0, 0, {}
    jobs.run_grant(grant["id"])
    db.session.expire_all()
    row = db.session.get(CouponGrant, grant["id"])
    assert (row.status, row.issued, row.skipped) == ("done", 2, {"sold_out": 1})  # the two it had, counted once
    held = db.session.execute(select(func.count()).where(Coupon.template_id == template["id"])).scalar_one()
    assert held == 2


def test_a_grant_run_again_counts_the_members_who_got_theirs_even_after_the_template_sold_out(app, client, store):
    template = create_template(client, store, name="补偿券", channels=[], total_quantity=2)
    ids = [_member_id(client, member_headers(client, store["merchant"].code, f"r{i}")) for i in range(3)]
    grant = client.post(
        f"{M}/coupon-grants", json={"template_id": template["id"], "member_ids": ids}, headers=store["staff"]
    ).json
    run_burst(app)
    with transaction():  # as if the chunk ran again, the one left without meeting the sold-out first
        row = db.session.get(CouponGrant, grant["id"])
        row.member_ids = [ids[2], ids[0], ids[1]]
        row.status, row.processed, row.issued, row.skipped = "pending", 0, 0, {}
    jobs.run_grant(grant["id"])
    db.session.expire_all()
    row = db.session.get(CouponGrant, grant["id"])
    assert (row.status, row.issued, row.skipped) == ("done", 2, {"sold_out": 1})


def test_the_same_grant_sent_again_answers_the_first_and_another_list_makes_a_new_one(client, store):
    template = create_template(client, store, name="补偿券", channels=[])
    a, b = (_member_id(client, member_headers(client, store["merchant"].code, f"s{i}")) for i in range(2))
    url = f"{M}/coupon-grants"
    first = client.post(url, json={"template_id": template["id"], "member_ids": [a, b]}, headers=store["staff"])
    again = client.post(url, json={"template_id": template["id"], "member_ids": [a, b]}, headers=store["staff"])
    other = client.post(url, json={"template_id": template["id"], "member_ids": [b]}, headers=store["staff"])
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 202)
    assert again.json["id"] == first.json["id"] != other.json["id"]


@pytest.mark.parametrize(
    ("member_ids", "field"),
    [([], "member_ids"), (list(range(1, 10_002)), "member_ids"), ("unknown", "member_ids")],
)
def test_a_grant_of_no_members_too_many_or_unknown_ones_is_refused(client, store, member_ids, field):
    template = create_template(client, store)
    if member_ids == "unknown":
        member_ids = [_member_id(client, store["member"]), 9_999_999]
    response = client.post(
        f"{M}/coupon-grants", json={"template_id": template["id"], "member_ids": member_ids}, headers=store["staff"]
    )
    assert response.status_code == 422 and field in response.json["error"]["details"]["fields"]
    assert db.session.execute(select(func.count()).select_from(CouponGrant)).scalar_one() == 0


def test_another_merchants_grant_is_not_found(client, store):
    other = make_store(client, leaf={"price": 100, "stock": 1})
    template = create_template(client, other)
    member = _member_id(client, other["member"])
    made = client.post(
        f"{M}/coupon-grants", json={"template_id": template["id"], "member_ids": [member]}, headers=other["staff"]
    )
    assert client.get(f"{M}/coupon-grants/{made.json['id']}", headers=store["staff"]).status_code == 404


def test_members_born_today_get_this_years_birthday_coupon_once(client, store):
    template = create_template(client, store, name="生日券", channels=["birthday"])
    today = utcnow().astimezone(CHINA).date()
    born = _member_id(client, member_headers(client, store["merchant"].code, "born"))
    other = _member_id(client, member_headers(client, store["merchant"].code, "other"))
    with transaction():
        db.session.get(Member, born).birthday = today.replace(year=1990)
        db.session.get(Member, other).birthday = (today - timedelta(days=1)).replace(year=1990)
    assert jobs.sweep_birthdays() == 1
    assert jobs.sweep_birthdays() == 0
    coupon = db.session.execute(select(Coupon).where(Coupon.template_id == template["id"])).scalar_one()
    assert (coupon.member_id, coupon.channel, coupon.source_ref) == (
        born,
        "birthday",
        f"birthday:{template['id']}:{today.year}",
    )


def test_a_29_february_birthday_is_celebrated_on_28_february_in_other_years(client, store):
    template = create_template(client, store, name="生日券", channels=["birthday"])
    leapling = _member_id(client, store["member"])
    with transaction():
        db.session.get(Member, leapling).birthday = datetime(2000, 2, 29).date()
    feb28 = datetime(2027, 2, 28, 12, tzinfo=CHINA)
    assert [row[2] for row in service.birthdays_due(feb28)] == [leapling]
    assert service.birthdays_due(datetime(2028, 2, 28, 12, tzinfo=CHINA)) == []  # 2028 has its own 29th
    assert template["id"] == service.birthdays_due(feb28)[0][1]


def test_issue_for_a_campaign_is_idempotent_per_source_and_skips_the_member_limits(client, store):
    template = create_template(client, store, channels=[], per_member_limit=1)
    member = _member_id(client, store["member"])
    with transaction():
        first = service.issue(store["merchant"].id, member, template["id"], channel="campaign", source_ref="prize:1")
        again = service.issue(store["merchant"].id, member, template["id"], channel="campaign", source_ref="prize:1")
        second = service.issue(store["merchant"].id, member, template["id"], channel="campaign", source_ref="prize:2")
    assert first.id == again.id != second.id
    with pytest.raises(Conflict) as refused, transaction():
        service.claim(store["merchant"].id, member, template["id"])
    assert refused.value.code == "coupon_not_claimable"  # not offered in the centre


def test_the_sweep_expires_coupons_past_validity_and_reminds_once_of_those_expiring_within_a_day(client, store):
    soon = claimed(client, store, name="快过期")
    gone = claimed(client, store, name="已过期")
    later = claimed(client, store, name="还早")
    now = utcnow()
    with transaction():
        db.session.get(Coupon, soon["id"]).valid_until = now + timedelta(hours=5)
        row = db.session.get(Coupon, gone["id"])
        row.valid_from, row.valid_until = now - timedelta(days=3), now - timedelta(minutes=1)
    assert jobs.sweep_expiry() == (1, 1)
    assert jobs.sweep_expiry() == (0, 0)
    db.session.expire_all()
    assert [db.session.get(Coupon, c["id"]).status for c in (soon, gone, later)] == [
        "available",
        "expired",
        "available",
    ]
    notes = db.session.execute(select(OutboxNotification)).scalars().all()
    assert [(n.kind, n.payload["coupon_id"], n.dedupe_key) for n in notes] == [
        ("coupon.expiring", soon["id"], f"coupon-expiring:{soon['id']}")
    ]


def test_an_expired_coupon_given_back_by_a_cancellation_stays_expired(client, store):
    coupon = claimed(client, store)
    from tests.factories import order_body, placed_order

    order = placed_order(client, store["member"], order_body(store["tea"], 2))
    with transaction():
        db.session.get(Coupon, coupon["id"]).valid_until = utcnow() + timedelta(microseconds=1)
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=store["member"]).status_code == 200
    db.session.expire_all()
    assert db.session.get(Coupon, coupon["id"]).status == "expired"
    assert datetime.now(UTC) > db.session.get(Coupon, coupon["id"]).valid_until


def test_the_demo_shop_has_coupons_in_its_claim_centre_a_welcome_gift_a_referral_reward_and_a_lottery_once(app, ctx):
    from coupons.models import Campaign, CouponTemplate, ReferralReward, UpgradeOffer
    from shop.demo import DEMO_MERCHANT
    from shop.identity.models import Merchant

    runner = app.test_cli_runner()
    for _ in range(2):
        assert runner.invoke(args=["groupshop", "seed-demo"]).exit_code == 0
    demo_id = db.session.execute(select(Merchant.id).where(Merchant.code == DEMO_MERCHANT)).scalar_one()
    templates = db.session.execute(select(CouponTemplate).where(CouponTemplate.merchant_id == demo_id)).scalars().all()
    assert sorted(t.channels[0] if t.channels else "-" for t in templates) == ["-", "centre", "centre", "welcome"]
    rewards = db.session.execute(select(ReferralReward).where(ReferralReward.merchant_id == demo_id)).scalars().all()
    assert [(r.trigger, r.reward_kind) for r in rewards] == [("joined", "coupon")]
    campaign = db.session.execute(select(Campaign).where(Campaign.merchant_id == demo_id)).scalar_one()
    offers = db.session.execute(select(UpgradeOffer.price).where(UpgradeOffer.campaign_id == campaign.id))
    assert sorted(offers.scalars()) == [2900, 9900]


def test_installing_coupons_twice_registers_its_adjuster_handlers_and_sweeps_once(app):
    from coupons import handlers, jobs
    from coupons.install import install
    from shop.checkout.pricing import registered_adjusters
    from shop.core.events import MemberJoined, OrderPaid, OrderPlaced, bus
    from shop.core.runner import sweeps

    install()
    install()
    assert [a.name for a in registered_adjusters()].count("coupons") == 1
    for event, handler in ((OrderPlaced, handlers.on_order_placed), (OrderPaid, handlers.on_order_paid)):
        assert bus._handlers[event].count(handler) == 1
    assert bus.subscribed(MemberJoined, handlers.on_member_joined)
    names = set(sweeps())
    for sweep in (jobs.sweep_expiry, jobs.sweep_birthdays, jobs.sweep_grants):
        assert f"{sweep.__module__}.{sweep.__qualname__}" in names


def test_orders_that_are_not_goods_leave_coupons_alone(client, store):
    from coupons import handlers
    from shop.core.events import AdjustmentInfo, OrderCancelled, OrderPaid, OrderPlaced, OrderRefunded

    coupon = claimed(client, store)
    member = _member_id(client, store["member"])
    merchant = store["merchant"].id
    adjustment = AdjustmentInfo(source="coupons", reference=str(coupon["id"]), kind="goods", amount=100)
    with transaction():
        handlers.on_order_placed(
            OrderPlaced(merchant, 10**9, member, "prize_upgrade", "X1", 100, 100, 0, 0, (), (adjustment,))
        )
        handlers.on_order_paid(OrderPaid(merchant, 10**9, member, "top_up", 100, ()))
        handlers.on_order_cancelled(OrderCancelled(merchant, 10**9, member, "prize_upgrade", "expired"))
        handlers.on_order_refunded(OrderRefunded(merchant, 10**9, member, "top_up", 1, 100, (), True))
    db.session.expire_all()
    assert db.session.get(Coupon, coupon["id"]).status == "available"


def test_a_template_whose_window_has_ended_cannot_be_claimed(client, store):
    now = utcnow()
    ended = create_template(
        client,
        store,
        valid_days=None,
        valid_from=(now - timedelta(days=3)).isoformat(),
        valid_until=(now - timedelta(seconds=1)).isoformat(),
    )
    response = client.post(f"/api/v1/coupon-centre/{ended['id']}/claim", headers=store["member"])
    assert (response.status_code, response.json["error"]["code"]) == (409, "coupon_not_claimable")
    assert response.json["error"]["details"]["reason"] == "ended"
    listed = client.get("/api/v1/coupon-centre", headers=store["member"]).json["items"]
    assert ended["id"] not in [item["template"]["id"] for item in listed]
