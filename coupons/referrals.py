"""Referral rewards (裂变礼品): what a member earns for the people they bring.

Staff configure rewards: a coupon of a template, or a prize of a campaign tier, for the direct
inviter when an invitee

- `joined`: logged in for the first time through the inviter's invite (`member_invited` with
  `new_member`; or `inviter_recorded`, when the mini-program sends the invite just after the
  first login and shop still records it as the member's inviter), or
- `first_order`: completed their first paid goods order (`order_completed`: the after-sales
  window closed with goods kept; the order must be the invitee's first paid goods order not
  refunded in full, so a member who bought before being invited earns their inviter nothing),
  after an extra `delay_minutes` if the merchant wants one.

Who invited whom is shop's record (`members.invited_by_id`, or the event's inviter), never the
distribution program's: every member's invitees count, distributor or not. A reward is never cash,
never for oneself, and goes to the direct inviter only: nothing flows up a chain. Each (reward,
invitee) is earned once (`uq_referral_grants_invitee`), in the transaction of the event, and
issued by a job (`coupons.issue_referral`) when due; a sweep issues what a lost job missed. A
reward that cannot be issued then (its coupon sold out, its tier's quota spent or its campaign
ended, the reward gone) is skipped with the reason, never retried into a double; a reward paused meanwhile
keeps what it earned pending, issued when it is resumed.

Locks: the grant row (the job), then whatever `coupons.service.issue` or the campaign's award
take after it. The event handlers only insert.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from coupons import campaigns
from coupons import service as coupons_service
from coupons.models import Campaign, CampaignTier, CouponTemplate, ReferralGrant, ReferralReward
from shop.core.db import db, utcnow
from shop.core.errors import DomainError, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.masking import mask_name
from shop.core.pagination import Page, keyset_page
from shop.core.runner import enqueue
from shop.identity.models import Member
from shop.orders.models import Order

log = logging.getLogger(__name__)
REFERRAL_JOB = "coupons.issue_referral"
GOODS = "goods"


def job_id(grant_id: int) -> str:
    return f"referral-{grant_id}"


# --- configuring ---------------------------------------------------------------------------------


def _reward_problems(
    merchant_id: int, reward_kind: str | None, template_id: int | None, tier_id: int | None
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if reward_kind == "coupon":
        if template_id is None:
            problems["template_id"] = ["a coupon reward names its coupon template"]
        elif (
            db.session.execute(
                select(CouponTemplate.merchant_id).where(CouponTemplate.id == template_id)
            ).scalar_one_or_none()
            != merchant_id
        ):
            problems["template_id"] = ["no such coupon template"]
        if tier_id is not None:
            problems["tier_id"] = ["a coupon reward names no prize tier"]
    elif reward_kind == "prize":
        if tier_id is None:
            problems["tier_id"] = ["a prize reward names its campaign's prize tier"]
        else:
            tier = db.session.execute(
                select(CampaignTier.merchant_id, Campaign.ends_at)
                .join(Campaign, Campaign.id == CampaignTier.campaign_id)
                .where(CampaignTier.id == tier_id)
            ).first()
            if tier is None or tier.merchant_id != merchant_id:
                problems["tier_id"] = ["no such prize tier"]
            elif tier.ends_at <= utcnow():
                problems["tier_id"] = ["the tier's campaign has ended"]
        if template_id is not None:
            problems["template_id"] = ["a prize reward names no coupon template"]
    return problems


def create_reward(
    merchant_id: int,
    *,
    name: str,
    trigger: str,
    reward_kind: str,
    template_id: int | None = None,
    tier_id: int | None = None,
    delay_minutes: int = 0,
    status: str = "active",
) -> ReferralReward:
    """A reward for the direct inviter on `trigger` (joined, first_order): a coupon of the
    merchant's `template_id`, or a prize of the merchant's campaign tier `tier_id`. 422 names the
    field at fault (another merchant's template or tier, a tier of a campaign that has ended, the
    wrong one for the kind)."""
    problems = _reward_problems(merchant_id, reward_kind, template_id, tier_id)
    if problems:
        raise InvalidInput("the referral reward is not valid", code="validation_error", details={"fields": problems})
    reward = ReferralReward(
        merchant_id=merchant_id,
        name=name,
        trigger=trigger,
        reward_kind=reward_kind,
        template_id=template_id,
        tier_id=tier_id,
        delay_minutes=delay_minutes,
        status=status,
    )
    db.session.add(reward)
    db.session.flush()
    return reward


def get_reward(merchant_id: int, reward_id: int, *, lock: bool = False) -> ReferralReward:
    query = select(ReferralReward).where(ReferralReward.id == reward_id)
    reward = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if reward is None or reward.merchant_id != merchant_id:
        raise NotFound("referral reward not found")
    return reward


def list_rewards(merchant_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    query = select(ReferralReward).where(ReferralReward.merchant_id == merchant_id)
    return keyset_page(query, [ReferralReward.id], cursor=cursor, limit=limit)


def update_reward(merchant_id: int, reward_id: int, **changes: Any) -> ReferralReward:
    """Rename it, pause or resume it (a paused reward earns nothing new; what it earned and did
    not issue yet waits, issued once it is resumed), or change the extra delay of rewards earned
    from now on. What it gives stays: make another reward for another gift."""
    reward = get_reward(merchant_id, reward_id, lock=True)
    for name in ("name", "status", "delay_minutes"):
        if name in changes:
            setattr(reward, name, changes[name])
    db.session.flush()
    return reward


# --- earning (inside the event's transaction) ----------------------------------------------------


def _earn(merchant_id: int, trigger: str, inviter_id: int, invitee_id: int, order_id: int | None, now: datetime) -> int:
    if inviter_id == invitee_id:
        return 0
    rewards = db.session.execute(
        select(ReferralReward.id, ReferralReward.delay_minutes).where(
            ReferralReward.merchant_id == merchant_id,
            ReferralReward.trigger == trigger,
            ReferralReward.status == "active",
        )
    ).all()
    earned = 0
    for reward_id, delay_minutes in rewards:
        due = now + timedelta(minutes=delay_minutes)
        made = db.session.execute(
            insert(ReferralGrant)
            .values(
                merchant_id=merchant_id,
                reward_id=reward_id,
                inviter_id=inviter_id,
                invitee_id=invitee_id,
                order_id=order_id,
                due_at=due,
                created_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_referral_grants_invitee")
            .returning(ReferralGrant.id)
        ).scalar_one_or_none()
        if made is not None:
            earned += 1
            enqueue(REFERRAL_JOB, made, delay=due - now if due > now else None, job_id=job_id(made))
    return earned


def on_invited(
    merchant_id: int, member_id: int, inviter_id: int, new_member: bool, *, now: datetime | None = None
) -> int:
    """An invitee arrived: their first login through the invite earns the `joined` rewards."""
    if not new_member:
        return 0
    return _earn(merchant_id, "joined", inviter_id, member_id, None, now or utcnow())


def on_inviter_recorded(merchant_id: int, member_id: int, inviter_id: int, *, now: datetime | None = None) -> int:
    """Shop recorded the member's inviter (at their first login, or an invite sent just after it):
    the `joined` rewards, once per invitee whichever event comes first."""
    return _earn(merchant_id, "joined", inviter_id, member_id, None, now or utcnow())


def on_completed(merchant_id: int, member_id: int, order_id: int, kept: int, *, now: datetime | None = None) -> int:
    """A goods order completed with `kept` fen of goods not refunded: if it is the member's first
    paid goods order and they were invited, their inviter earns the `first_order` rewards."""
    if kept <= 0:
        return 0
    inviter_id = db.session.execute(
        select(Member.invited_by_id).where(Member.id == member_id, Member.merchant_id == merchant_id)
    ).scalar_one_or_none()
    if inviter_id is None:
        return 0
    first = db.session.execute(
        select(Order.id)
        .where(
            Order.merchant_id == merchant_id,
            Order.member_id == member_id,
            Order.kind == GOODS,
            Order.paid_at.is_not(None),
            Order.status != "refunded",  # a first order refunded in full (a failed group) does not count
        )
        .order_by(Order.paid_at, Order.id)
        .limit(1)
    ).scalar_one_or_none()
    if first != order_id:
        return 0
    return _earn(merchant_id, "first_order", inviter_id, member_id, order_id, now or utcnow())


# --- issuing (the job) -----------------------------------------------------------------------------


def _skip(grant: ReferralGrant, reason: str) -> bool:
    grant.status = "skipped"
    grant.skip_reason = reason
    db.session.flush()
    log.info("referral reward %s for member %s skipped: %s", grant.reward_id, grant.inviter_id, reason)
    return False


def issue(grant_id: int, *, now: datetime | None = None) -> bool:
    """Issue an earned reward once (under the grant's lock: a second job, the sweep, a retry find
    it done). True when it was issued now; False when done already, not due, or skipped."""
    now = now or utcnow()
    grant = db.session.execute(locked(select(ReferralGrant).where(ReferralGrant.id == grant_id))).scalar_one_or_none()
    if grant is None or grant.status != "pending" or grant.due_at > now:
        return False
    reward = db.session.get(ReferralReward, grant.reward_id)
    assert reward is not None
    if reward.status != "active":
        return False  # paused: pending until it is resumed (the sweep skips paused rewards)
    if reward.reward_kind == "coupon":
        assert reward.template_id is not None
        try:
            with db.session.begin_nested():
                coupon = coupons_service.issue(
                    grant.merchant_id,
                    grant.inviter_id,
                    reward.template_id,
                    channel="referral",
                    source_ref=f"referral:{grant.id}",
                    now=now,
                )
        except DomainError as refused:
            return _skip(grant, refused.code)
        grant.coupon_id = coupon.id
    else:
        tier = db.session.get(CampaignTier, reward.tier_id)
        assert tier is not None
        campaign = db.session.get(Campaign, tier.campaign_id)
        assert campaign is not None
        if campaign.ends_at <= now:  # a prize of a campaign that is over is no prize
            return _skip(grant, "campaign_ended")
        prize = campaigns.award(tier, grant.inviter_id, origin="referral", now=now)
        if prize is None:  # its quota spent, or its coupon refused
            return _skip(grant, "prize_unavailable")
        grant.prize_id = prize.id
    grant.status = "issued"
    grant.issued_at = now
    db.session.flush()
    return True


def pending_due(older_than: timedelta = timedelta(minutes=1)) -> Any:
    """Earned rewards due for a while and not issued (a lost job): the sweep's query."""
    return (
        select(ReferralGrant.id)
        .join(ReferralReward, ReferralReward.id == ReferralGrant.reward_id)
        .where(
            ReferralGrant.status == "pending",
            ReferralGrant.due_at < utcnow() - older_than,
            ReferralReward.status == "active",
        )
        .order_by(ReferralGrant.due_at)
    )


# --- what members and staff see --------------------------------------------------------------------


def grant_page(
    merchant_id: int,
    *,
    inviter_id: int | None = None,
    reward_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    """Rewards earned, newest first: an inviter's own (the invitee's name masked), or a reward's."""
    query = (
        select(ReferralGrant, ReferralReward.name, ReferralReward.trigger, ReferralReward.reward_kind, Member.nickname)
        .join(ReferralReward, ReferralReward.id == ReferralGrant.reward_id)
        .join(Member, Member.id == ReferralGrant.invitee_id)
        .where(ReferralGrant.merchant_id == merchant_id)
    )
    if inviter_id is not None:
        query = query.where(ReferralGrant.inviter_id == inviter_id)
    if reward_id is not None:
        get_reward(merchant_id, reward_id)
        query = query.where(ReferralGrant.reward_id == reward_id)
    page = keyset_page(query, [ReferralGrant.id], cursor=cursor, limit=limit, scalars=False)
    items = []
    for grant, name, trigger, reward_kind, nickname in page.items:
        items.append(
            {
                "id": grant.id,
                "reward_id": grant.reward_id,
                "reward_name": name,
                "trigger": trigger,
                "reward_kind": reward_kind,
                "inviter_id": grant.inviter_id,
                "invitee_id": grant.invitee_id if inviter_id is None else None,
                "invitee": mask_name(nickname),
                "order_id": grant.order_id if inviter_id is None else None,
                "status": grant.status,
                "skip_reason": grant.skip_reason,
                "coupon_id": grant.coupon_id,
                "prize_id": grant.prize_id,
                "due_at": grant.due_at,
                "issued_at": grant.issued_at,
                "created_at": grant.created_at,
            }
        )
    return Page(items=items, next_cursor=page.next_cursor)


def member_summary(merchant_id: int, member_id: int) -> dict[str, Any]:
    """What the member can earn by inviting (the active rewards) and what they earned so far."""
    rewards = db.session.execute(
        select(ReferralReward)
        .where(ReferralReward.merchant_id == merchant_id, ReferralReward.status == "active")
        .order_by(ReferralReward.id)
    ).scalars()
    counts = dict(
        db.session.execute(
            select(ReferralGrant.status, func.count())
            .where(ReferralGrant.merchant_id == merchant_id, ReferralGrant.inviter_id == member_id)
            .group_by(ReferralGrant.status)
        ).all()
    )
    return {
        "rewards": [{"id": r.id, "name": r.name, "trigger": r.trigger, "reward_kind": r.reward_kind} for r in rewards],
        "issued": counts.get("issued", 0),
        "pending": counts.get("pending", 0),
        "skipped": counts.get("skipped", 0),
    }
