"""`install()` of coupons (shop/install.py describes the pattern): the tables' meanings, the
`coupons` pricing adjuster, the order and member event handlers, and the jobs and sweeps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from coupons import campaigns, handlers, models, referrals, service
from coupons.checkout import CouponAdjuster
from shop.checkout.pricing import register_adjuster
from shop.core import integrity
from shop.core.db import db, utcnow
from shop.core.errors import Conflict
from shop.core.events import (
    GroupFailed,
    GroupJoined,
    InviterRecorded,
    MemberInvited,
    MemberJoined,
    OrderCancelled,
    OrderCompleted,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    bus,
)
from shop.demo import register_demo

# What the coupon tables' keys mean when a race takes one (shop.core.integrity).
MEANINGS = {
    "uq_coupons_source": integrity.Meaning(Conflict, "coupon_exists", "that coupon was issued already"),
    # campaigns: a draw, an entry, an upgrade and a reward are made under locks that keep these
    # keys from racing; should one race anyway, it is a conflict to retry, never a 500
    "uq_campaign_tiers_rank": integrity.Meaning(Conflict, "conflict", "the campaign was changed meanwhile; retry"),
    "uq_campaign_tiers_guaranteed": integrity.Meaning(Conflict, "conflict", "the campaign has a guaranteed tier"),
    "uq_campaign_entries_source": integrity.Meaning(Conflict, "conflict", "that entry was given meanwhile"),
    "uq_campaign_draws_entry_id": integrity.Meaning(Conflict, "conflict", "that entry was drawn meanwhile; retry"),
    "uq_campaign_draws_key": integrity.Meaning(
        Conflict, "conflict", "a draw with this Idempotency-Key was made meanwhile; retry"
    ),
    "uq_prizes_draw_id": integrity.Meaning(Conflict, "conflict", "that draw's prize was made meanwhile"),
    "uq_prizes_code": integrity.Meaning(Conflict, "conflict", "could not number the prize; retry"),
    "uq_upgrade_offers_tiers": integrity.Meaning(
        Conflict, "offer_exists", "there is an upgrade offer between these tiers already", "to_tier_id"
    ),
    "uq_prize_upgrades_order_id": integrity.Meaning(Conflict, "conflict", "that upgrade was placed meanwhile"),
    "uq_prize_upgrades_to_prize_id": integrity.Meaning(Conflict, "conflict", "that upgrade was issued meanwhile"),
    "uq_prize_upgrades_pending": integrity.Meaning(
        Conflict, "prize_not_upgradable", "an upgrade of this prize is being paid for"
    ),
    "uq_referral_grants_invitee": integrity.Meaning(Conflict, "conflict", "that reward was earned meanwhile"),
}

SUBSCRIPTIONS = (
    (OrderPlaced, handlers.on_order_placed),
    (OrderPaid, handlers.on_order_paid),
    (OrderCancelled, handlers.on_order_cancelled),
    (OrderRefunded, handlers.on_order_refunded),
    (MemberJoined, handlers.on_member_joined),
    (GroupJoined, handlers.on_group_joined),
    (GroupFailed, handlers.on_group_failed),
    (InviterRecorded, handlers.on_inviter_recorded),
    (MemberInvited, handlers.on_member_invited),
    (OrderCompleted, handlers.on_order_completed),
)


DEMO_TEMPLATES = (
    {"name": "满100减10", "kind": "amount_off", "threshold": 10000, "amount": 1000, "channels": ["centre"]},
    {"name": "全场9折 最多减20", "kind": "percent_off", "rate_bp": 1000, "cap": 2000, "channels": ["centre"]},
    {"name": "新人包邮券", "kind": "free_shipping", "audience": "new_members", "channels": ["welcome"]},
)


DEMO_CAMPAIGN = "社群周年庆抽奖"
DEMO_REFERRAL_TEMPLATE = {"name": "邀请有礼 5元券", "kind": "amount_off", "threshold": 3000, "amount": 500}


def load_demo(merchant_id: int) -> bool:
    """The demo shop's coupons: two in the claim centre, a welcome gift; the seeds' lottery
    (everyone wins third prize, 99 yuan takes first) running for 30 days; a coupon for the inviter
    of every new member (once each: by name)."""
    known = set(
        db.session.execute(select(models.CouponTemplate.name).where(models.CouponTemplate.merchant_id == merchant_id))
        .scalars()
        .all()
    )
    made = False
    for terms in DEMO_TEMPLATES:
        if terms["name"] not in known:
            service.create_template(merchant_id, valid_days=7, total_quantity=1000, **terms)
            made = True
    if DEMO_REFERRAL_TEMPLATE["name"] not in known:
        template = service.create_template(merchant_id, valid_days=14, total_quantity=10_000, **DEMO_REFERRAL_TEMPLATE)
        referrals.create_reward(
            merchant_id, name="邀请新朋友", trigger="joined", reward_kind="coupon", template_id=template.id
        )
        made = True
    campaign_names = db.session.execute(
        select(models.Campaign.name).where(models.Campaign.merchant_id == merchant_id)
    ).scalars()
    if DEMO_CAMPAIGN not in set(campaign_names):
        now = utcnow()
        campaign = campaigns.create_campaign(
            merchant_id,
            name=DEMO_CAMPAIGN,
            description="群成员人人有奖：三等奖免费领，加 99 元升级一等奖",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=30),
            entry_rule="once",
            tiers=[
                {"name": "一等奖 按摩仪", "prize_kind": "gift", "cost": 9000, "quota": 10, "odds_bp": 50},
                {"name": "二等奖 保温杯", "prize_kind": "gift", "cost": 2500, "quota": 50, "odds_bp": 450},
                {"name": "三等奖 抽纸一提", "prize_kind": "gift", "cost": 800, "odds_bp": 9500, "guaranteed": True},
            ],
        )
        first, second, third = campaigns.tiers_of(campaign.id)
        campaigns.create_offer(merchant_id, campaign.id, from_tier_id=third.id, to_tier_id=first.id, price=9900)
        campaigns.create_offer(merchant_id, campaign.id, from_tier_id=third.id, to_tier_id=second.id, price=2900)
        made = True
    return made


def install() -> None:
    """Safe to call twice: every registration is idempotent."""
    from coupons import jobs  # noqa: F401  (registers the grant job and the sweeps)

    integrity.register(duplicate=MEANINGS)
    register_adjuster(CouponAdjuster())
    for event, handler in SUBSCRIPTIONS:
        bus.subscribe(event, handler)
    register_demo(load_demo)
