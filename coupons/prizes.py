"""Prizes: the vouchers and coupons campaigns give, their redemption in store (核销), and upgrades
(加价升级) bought as orders of kind `prize_upgrade`.

A gift is a voucher with an 8-digit code, redeemed once by the merchant's staff before it runs
out (`redeem_until`); a coupon prize is put into the member's wallet through
`coupons.service.issue` (source `prize:<id>`), delivered at once.

An upgrade: the member holding an available gift of an offer's `from_tier` places the upgrade
(`place_upgrade`): an unpaid order, the gift held (neither redeemable nor upgradable meanwhile)
and one of the better tier's quota taken. Paid, a job (`issue_upgrade`, enqueued by the
`order_paid` subscriber, found by a sweep if lost) gives the better gift and voids the held one,
once. Cancelled or expired unpaid, both are released; refunded, the better gift is voided, the
first one is back and the quota is returned. Redeeming the better gift completes the order (no
refund after that) and is refused while a refund of it is open.

Locks, in the order every path takes them: the upgrade's order (shop's `lock_order`: the
payment, cancellation, refund and the job all start there; redemption of an upgraded gift takes
it first too), the upgrade row, the prizes (held gift, then the better one), then one tier row by
the guarded UPDATE of its quota. Placing an upgrade: its new order (rows nobody waits for), then,
for a gift an earlier upgrade gave, that upgrade's order (it is completed: the gift is used), the
held gift (a guarded UPDATE: against a redemption of the same gift, one wins), the tier.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, not_, select, update
from sqlalchemy.dialects.postgresql import insert

from coupons import service as coupons_service
from coupons.models import Campaign, CampaignTier, CouponTemplate, Prize, PrizeUpgrade, UpgradeOffer
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.orders.models import Order
from shop.orders.refunds import open_refund
from shop.orders.service import Placed, lock_order, request_fingerprint
from shop.orders.special import SpecialLine, complete_special_order, place_special_order
from shop.orders.states import OrderStatus

log = logging.getLogger(__name__)
UPGRADE_KIND = "prize_upgrade"
UPGRADE_JOB = "coupons.issue_upgrade"
CODE_DIGITS = 8
CODE_TRIES = 8


def upgrade_job_id(order_id: int) -> str:
    return f"upgrade-{order_id}"


# --- quotas --------------------------------------------------------------------------------------


def take(tier: CampaignTier) -> bool:
    """One of the tier's quota, by the guarded UPDATE (`taken < quota`): False when none is left.
    A tier without a quota (only the guaranteed one) always has one and keeps no count: its caller
    holds the campaign's award lock shared (`campaigns._award_locks`) from before it read the tier,
    so a quota staff set on it meanwhile is seen, or waits for this award to commit."""
    if tier.quota is None:
        return True
    return (
        db.session.execute(
            update(CampaignTier)
            .where(CampaignTier.id == tier.id, CampaignTier.taken < CampaignTier.quota)
            .values(taken=CampaignTier.taken + 1)
            .returning(CampaignTier.id)
            .execution_options(synchronize_session=False)
        ).first()
        is not None
    )


def can_give(tier: CampaignTier, now: datetime) -> bool:
    """Has the tier a prize left: its quota not spent and, for a coupon prize, a template the
    wallet can take from now (not paused, ended or sold out). A hint read without locks, for what
    members are shown and to refuse a draw before rolling: `take` and `coupons.service.issue`
    decide."""
    if tier.quota is not None and tier.taken >= tier.quota:
        return False
    if tier.prize_kind != "coupon" or tier.template_id is None:
        return True
    template = db.session.get(CouponTemplate, tier.template_id)
    return template is not None and coupons_service.issue_refusal(template, "campaign", now) is None


def give_back(tier_id: int) -> None:
    """Return one of the tier's quota: an upgrade cancelled or refunded gives back its better
    tier's, a completed one the tier of the gift it traded in (voided for good)."""
    db.session.execute(
        update(CampaignTier)
        .where(CampaignTier.id == tier_id, CampaignTier.quota.is_not(None), CampaignTier.taken > 0)
        .values(taken=CampaignTier.taken - 1)
        .execution_options(synchronize_session=False)
    )


# --- making prizes -------------------------------------------------------------------------------


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def make_prize(
    tier: CampaignTier,
    member_id: int,
    now: datetime,
    *,
    origin: str,
    redeem_days: int,
    draw_id: int | None = None,
) -> Prize:
    """The member's prize of `tier` (its quota is the caller's to take): a gift voucher with a
    fresh code unique in the merchant, or a coupon issued into the wallet (a refusal of the
    coupon, e.g. its template sold out, propagates: the caller's savepoint undoes the prize)."""
    values: dict[str, Any] = {
        "merchant_id": tier.merchant_id,
        "campaign_id": tier.campaign_id,
        "tier_id": tier.id,
        "member_id": member_id,
        "origin": origin,
        "draw_id": draw_id,
        "kind": tier.prize_kind,
        "cost": tier.cost,
        "created_at": now,
        "updated_at": now,
    }
    if tier.prize_kind == "coupon":
        prize = db.session.execute(insert(Prize).values(status="delivered", **values).returning(Prize)).scalar_one()
        coupon = coupons_service.issue(
            tier.merchant_id, member_id, tier.template_id, channel="campaign", source_ref=f"prize:{prize.id}", now=now
        )
        prize.coupon_id = coupon.id
        db.session.flush()
        return prize
    for _ in range(CODE_TRIES):
        made = db.session.execute(
            insert(Prize)
            .values(status="available", code=new_code(), redeem_until=now + timedelta(days=redeem_days), **values)
            .on_conflict_do_nothing(index_elements=["merchant_id", "code"], index_where=Prize.code.is_not(None))
            .returning(Prize)
        ).scalar_one_or_none()
        if made is not None:
            return made
    raise RuntimeError("no free redemption code after several tries")  # 1e8 codes: not in this life


# --- what members and staff see ------------------------------------------------------------------


def expired_at(now: datetime) -> ColumnElement[bool]:
    """SQL for `prize_status(...) == "expired"`: an available gift past its date."""
    return and_(Prize.status == "available", Prize.redeem_until <= now)


def status_at(now: datetime) -> ColumnElement[str]:
    """SQL for `prize_status`: the stored status, or expired."""
    return case((expired_at(now), "expired"), else_=Prize.status)


def prize_status(prize: Prize, now: datetime) -> str:
    """The stored status, or `expired` for an available gift past its `redeem_until`."""
    if prize.status == "available" and prize.redeem_until is not None and prize.redeem_until <= now:
        return "expired"
    return prize.status


def prize_view(prize: Prize, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    tier = db.session.get(CampaignTier, prize.tier_id)
    campaign = db.session.get(Campaign, prize.campaign_id)
    assert tier is not None and campaign is not None
    return {
        "id": prize.id,
        "campaign_id": prize.campaign_id,
        "campaign_name": campaign.name,
        "tier_id": prize.tier_id,
        "tier_rank": tier.rank,
        "tier_name": tier.name,
        "description": tier.description,
        "kind": prize.kind,
        "origin": prize.origin,
        "code": prize.code,
        "coupon_id": prize.coupon_id,
        "status": prize_status(prize, now),
        "redeem_until": prize.redeem_until,
        "redeemed_at": prize.redeemed_at,
        "voided_at": prize.voided_at,
        "void_reason": prize.void_reason,
        "member_id": prize.member_id,
        "created_at": prize.created_at,
    }


def views_with_upgrades(prizes: Sequence[Prize], *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The prizes' views with what can be done with each: the active upgrade offers of an
    available gift (`upgrade_offers`) and the upgrade being paid for that holds it
    (`pending_upgrade`). Two queries for the lot, whatever their number."""
    now = now or utcnow()
    views = [prize_view(prize, now=now) for prize in prizes]
    offers: dict[int, list[dict[str, Any]]] = {}
    tier_ids = {view["tier_id"] for view in views if view["status"] == "available"}
    if tier_ids:
        rows = db.session.execute(
            select(UpgradeOffer, CampaignTier)
            .join(CampaignTier, CampaignTier.id == UpgradeOffer.to_tier_id)
            .where(UpgradeOffer.from_tier_id.in_(tier_ids), UpgradeOffer.status == "active")
            .order_by(CampaignTier.rank)
        ).all()
        for offer, tier in rows:
            offers.setdefault(offer.from_tier_id, []).append(
                {
                    "offer_id": offer.id,
                    "to_tier_id": tier.id,
                    "to_tier_rank": tier.rank,
                    "to_tier_name": tier.name,
                    "price": offer.price,
                    "sold_out": tier.quota is not None and tier.taken >= tier.quota,
                }
            )
    pending = (
        {
            row.from_prize_id: {"id": row.id, "order_id": row.order_id}
            for row in db.session.execute(
                select(PrizeUpgrade.from_prize_id, PrizeUpgrade.id, PrizeUpgrade.order_id).where(
                    PrizeUpgrade.from_prize_id.in_([view["id"] for view in views]), PrizeUpgrade.status == "pending"
                )
            )
        }
        if views
        else {}
    )
    for view in views:
        view["upgrade_offers"] = offers.get(view["tier_id"], []) if view["status"] == "available" else []
        view["pending_upgrade"] = pending.get(view["id"])
    return views


def _own_prize(merchant_id: int, prize_id: int, member_id: int | None) -> Prize:
    prize = db.session.get(Prize, prize_id)
    if prize is None or prize.merchant_id != merchant_id or (member_id is not None and prize.member_id != member_id):
        raise NotFound("prize not found")
    return prize


def get_prize(merchant_id: int, prize_id: int, *, member_id: int | None = None) -> dict[str, Any]:
    return views_with_upgrades([_own_prize(merchant_id, prize_id, member_id)])[0]


def prize_page(
    merchant_id: int,
    *,
    member_id: int | None = None,
    campaign_id: int | None = None,
    status: str | None = None,
    code: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page:
    """Prizes newest first: a member's own (with their upgrade offers), or the merchant's for
    staff, by campaign, status (`expired`: available gifts past their date) or code."""
    query = select(Prize).where(Prize.merchant_id == merchant_id)
    if member_id is not None:
        query = query.where(Prize.member_id == member_id)
    if campaign_id is not None:
        query = query.where(Prize.campaign_id == campaign_id)
    now = utcnow()
    if status == "expired":  # an available gift past its date
        query = query.where(expired_at(now))
    elif status == "available":
        query = query.where(Prize.status == "available", not_(expired_at(now)))
    elif status is not None:
        query = query.where(Prize.status == status)
    if code is not None:
        query = query.where(Prize.code == code)
    page = keyset_page(query, [Prize.id], cursor=cursor, limit=limit)
    items = (
        views_with_upgrades(page.items, now=now)
        if member_id is not None
        else [prize_view(prize, now=now) for prize in page.items]
    )
    return Page(items=items, next_cursor=page.next_cursor)


# --- a gift given by an upgrade is used: its upgrade is final ------------------------------------


def _lock_upgrade_order(merchant_id: int, prize_id: int, origin: str) -> int | None:
    """The order of the upgrade that gave this gift, locked (the first lock of any path that uses
    the gift: redeeming it, or trading it on in another upgrade); None for a gift not given by one."""
    if origin != "upgrade":
        return None
    order_id = db.session.execute(
        select(PrizeUpgrade.order_id).where(PrizeUpgrade.to_prize_id == prize_id)
    ).scalar_one_or_none()
    if order_id is not None:
        lock_order(order_id, merchant_id=merchant_id)
    return order_id


def _complete_upgrade(merchant_id: int, order_id: int, now: datetime) -> None:
    """Using an upgraded gift completes its upgrade's order, so it can no longer be refunded (a
    refund would give back the gift it replaced while the member kept the use of this one): 409
    `refund_in_progress` while a refund of it is open."""
    if open_refund(order_id):
        raise Conflict("a refund of this prize's upgrade is in progress", code="refund_in_progress")
    complete_special_order(merchant_id, order_id, kind=UPGRADE_KIND, now=now)
    traded_in = db.session.execute(
        update(PrizeUpgrade)
        .where(PrizeUpgrade.order_id == order_id, PrizeUpgrade.status == "issued")
        .values(status="completed", updated_at=now)
        .returning(PrizeUpgrade.from_prize_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if traded_in is not None:  # the gift it replaced can no longer come back: its unit is free
        give_back(db.session.execute(select(Prize.tier_id).where(Prize.id == traded_in)).scalar_one())


# --- redemption (核销) ---------------------------------------------------------------------------


def redeem(
    merchant_id: int, code: str, *, staff_id: int | None, now: datetime | None = None
) -> tuple[dict[str, Any], bool]:
    """Staff redeem a gift by its code, in store: (the prize, replayed). Redeeming it again
    answers the first redemption. 404 for a code unknown to this merchant; 409
    `prize_not_redeemable` for a voided gift or one held by an upgrade being paid, `prize_expired`
    past its date, `refund_in_progress` for an upgraded gift whose upgrade is being refunded.
    Redeeming an upgraded gift completes its upgrade order (no refund after this)."""
    now = now or utcnow()
    found = db.session.execute(
        select(Prize.id, Prize.origin).where(Prize.merchant_id == merchant_id, Prize.code == code)
    ).first()
    if found is None:
        raise NotFound("no prize has this code")
    upgrade_order = _lock_upgrade_order(merchant_id, found.id, found.origin)
    prize = db.session.execute(locked(select(Prize).where(Prize.id == found.id))).scalar_one()
    if prize.status == "redeemed":
        return prize_view(prize, now=now), True
    if prize.status != "available":
        raise Conflict("this prize cannot be redeemed", code="prize_not_redeemable", details={"status": prize.status})
    if prize_status(prize, now) == "expired":
        raise Conflict("this prize has expired", code="prize_expired", details={"redeem_until": prize.redeem_until})
    if upgrade_order is not None:
        _complete_upgrade(merchant_id, upgrade_order, now)
    prize.status = "redeemed"
    prize.redeemed_at = now
    prize.redeemed_by = staff_id
    db.session.flush()
    return prize_view(prize, now=now), False


# --- upgrades (加价升级) -------------------------------------------------------------------------


def place_upgrade(
    merchant_id: int, member_id: int, prize_id: int, offer_id: int, *, idempotency_key: str, now: datetime | None = None
) -> Placed:
    """Buy the upgrade `offer_id` of the member's gift `prize_id`: an unpaid order of kind
    `prize_upgrade`, paid like any order. The same Idempotency-Key and request answer the first
    order. 422 when the offer is not one for this prize; 409 `offer_paused`,
    `prize_not_upgradable` (redeemed, voided, held by another upgrade, expired), `prize_sold_out`
    (the better tier has none left), `refund_in_progress` (the gift came from an upgrade being
    refunded). Upgrading a gift that an upgrade gave completes that upgrade's order: it can no
    longer be refunded, as when the gift is redeemed."""
    now = now or utcnow()
    prize = _own_prize(merchant_id, prize_id, member_id)
    offer = db.session.get(UpgradeOffer, offer_id)
    if offer is None or offer.merchant_id != merchant_id or offer.from_tier_id != prize.tier_id:
        raise InvalidInput(
            "this is not an upgrade offer for this prize",
            code="validation_error",
            details={"fields": {"offer_id": ["not an upgrade offer for this prize"]}},
        )
    source = db.session.get(CampaignTier, offer.from_tier_id)
    target = db.session.get(CampaignTier, offer.to_tier_id)
    campaign = db.session.get(Campaign, offer.campaign_id)
    assert source is not None and target is not None and campaign is not None
    placed = place_special_order(
        merchant_id,
        member_id,
        UPGRADE_KIND,
        [
            SpecialLine(
                title=f"{source.name} → {target.name}"[:120], amount=offer.price, description=campaign.name[:200]
            )
        ],
        idempotency_key=idempotency_key,
        reference=f"prize:{prize.id}",
        fingerprint=request_fingerprint({"upgrade": {"prize_id": prize.id, "offer_id": offer.id}}),
        now=now,
    )
    if placed.replayed:
        return placed
    if offer.status != "active":
        raise Conflict("this upgrade is not offered at the moment", code="offer_paused")
    earlier_order = _lock_upgrade_order(merchant_id, prize.id, prize.origin)
    held = db.session.execute(
        update(Prize)
        .where(Prize.id == prize.id, Prize.status == "available", Prize.redeem_until > now)
        .values(status="held", updated_at=now)
        .returning(Prize.id)
        .execution_options(synchronize_session=False)
    ).first()
    if held is None:
        db.session.refresh(prize)
        raise Conflict(
            "this prize cannot be upgraded", code="prize_not_upgradable", details={"status": prize_status(prize, now)}
        )
    if earlier_order is not None:  # trading on a gift an upgrade gave uses it, as redeeming it would
        _complete_upgrade(merchant_id, earlier_order, now)
    if not take(target):
        raise Conflict("none of that prize is left", code="prize_sold_out", details={"tier_id": target.id})
    db.session.add(
        PrizeUpgrade(
            merchant_id=merchant_id,
            campaign_id=campaign.id,
            offer_id=offer.id,
            member_id=member_id,
            from_prize_id=prize.id,
            to_tier_id=target.id,
            order_id=placed.order.id,
            price=offer.price,
            created_at=now,
            updated_at=now,
        )
    )
    db.session.flush()
    return placed


def _locked_upgrade(order_id: int) -> PrizeUpgrade | None:
    return db.session.execute(
        locked(select(PrizeUpgrade).where(PrizeUpgrade.order_id == order_id))
    ).scalar_one_or_none()


def _set_prize(prize_id: int, from_status: str, now: datetime, **values: Any) -> bool:
    return (
        db.session.execute(
            update(Prize)
            .where(Prize.id == prize_id, Prize.status == from_status)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def issue_upgrade(order_id: int, *, now: datetime | None = None) -> bool:
    """The paid upgrade's better gift is given and the held one voided, together and once (the
    order's lock, then the upgrade's: a second worker or a duplicate notification finds it done).
    False when there is nothing to do (not paid yet, done, cancelled, refunded)."""
    now = now or utcnow()
    order = lock_order(order_id)
    upgrade = _locked_upgrade(order_id)
    if upgrade is None or upgrade.status != "pending" or order.status != OrderStatus.PAID:
        return False
    target = db.session.get(CampaignTier, upgrade.to_tier_id)
    campaign = db.session.get(Campaign, upgrade.campaign_id)
    assert target is not None and campaign is not None
    if not _set_prize(upgrade.from_prize_id, "held", now, status="voided", voided_at=now, void_reason="upgraded"):
        # the gift it trades is held for as long as the upgrade is pending: a broken invariant,
        # never papered over by giving the better gift anyway
        log.error("upgrade %s: its gift %s is not held; nothing issued", upgrade.id, upgrade.from_prize_id)
        return False
    better = make_prize(target, upgrade.member_id, now, origin="upgrade", redeem_days=campaign.redeem_days)
    upgrade.status = "issued"
    upgrade.to_prize_id = better.id
    upgrade.issued_at = now
    upgrade.updated_at = now
    db.session.flush()
    return True


def release_upgrade(order_id: int, *, refunded: bool, now: datetime | None = None) -> bool:
    """The upgrade's order was cancelled unpaid (`refunded` False) or refunded: the held gift is
    available again, the better one (if given and not redeemed) voided, the quota returned. An
    upgrade whose better gift was redeemed stays as it is (its order was completed)."""
    now = now or utcnow()
    upgrade = _locked_upgrade(order_id)
    if upgrade is None or upgrade.status not in ("pending", "issued"):
        return False
    if upgrade.status == "issued":
        assert upgrade.to_prize_id is not None
        if not _set_prize(
            upgrade.to_prize_id, "available", now, status="voided", voided_at=now, void_reason="refunded"
        ):
            log.warning("upgrade %s refunded after its prize %s left 'available'", upgrade.id, upgrade.to_prize_id)
            return False
        _set_prize(upgrade.from_prize_id, "voided", now, status="available", voided_at=None, void_reason=None)
    else:
        _set_prize(upgrade.from_prize_id, "held", now, status="available")
    give_back(upgrade.to_tier_id)
    upgrade.status = "refunded" if refunded else "cancelled"
    upgrade.updated_at = now
    db.session.flush()
    return True


def paid_upgrades_due(older_than: timedelta = timedelta(minutes=1)) -> Any:
    """Paid upgrades the job has not issued (a lost job), oldest payment first: the sweep's query."""
    return (
        select(PrizeUpgrade.order_id)
        .join(Order, Order.id == PrizeUpgrade.order_id)
        .where(
            PrizeUpgrade.status == "pending",
            Order.status == OrderStatus.PAID.value,
            Order.paid_at < utcnow() - older_than,
        )
        .order_by(Order.paid_at)
    )


def expired_upgrades_due() -> Any:
    """Issued upgrades whose better gift ran out unredeemed, longest expired first: the sweep's query."""
    return (
        select(PrizeUpgrade.order_id)
        .join(Prize, Prize.id == PrizeUpgrade.to_prize_id)
        .where(PrizeUpgrade.status == "issued", expired_at(utcnow()))
        .order_by(Prize.redeem_until)
    )


def close_expired_upgrade(order_id: int, *, now: datetime | None = None) -> bool:
    """An issued upgrade whose better gift expired unredeemed is final: its order is completed
    (the gift's validity was its after-sales window; no refund after it), as a redemption would
    have. False when there is nothing to do, or a refund of it is being decided (the next sweep
    looks again)."""
    now = now or utcnow()
    lock_order(order_id)
    upgrade = _locked_upgrade(order_id)
    if upgrade is None or upgrade.status != "issued" or upgrade.to_prize_id is None:
        return False
    better = db.session.execute(locked(select(Prize).where(Prize.id == upgrade.to_prize_id))).scalar_one()
    if prize_status(better, now) != "expired" or open_refund(order_id):
        return False
    _complete_upgrade(upgrade.merchant_id, order_id, now)
    return True
