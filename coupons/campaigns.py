"""Lottery campaigns (抽奖): what staff configure, how members get entries, and the draw.

A campaign has prize tiers, each with odds (all of them add up to 10,000 bp), a quota (only the
guaranteed tier may go without one) and a prize: a gift (a voucher redeemed in store) or a coupon
template. With a guaranteed tier, everyone who draws wins at least it (the seeds' "everyone gets
third prize"): a draw that falls on a tier that has run out falls back to it. Without one, such
a draw wins nothing, and says so.

Entries come by the campaign's rule: `once` (one per member, made at the draw), `per_order` (one
per paid goods order of at least `min_paid`, made in the payment's transaction; withdrawn while
undrawn when the order is fully refunded) or `per_group` (one per joined group buy), at most
`max_entries` per member.

Locks, in this order (after the shop's, when an event handler runs inside a shop change): the
member's campaign lock (a transaction-scoped advisory lock: one member's draws and entries are
counted one at a time), the entry row, then one tier row through the guarded UPDATE of `taken`
(`taken < quota`: never exceeded whatever the stampede), then new rows (the prize; a coupon prize
goes through `coupons.service.issue`, which takes its own locks after these). A draw that fell
back never holds the first tier's lock: its guard matched no row.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute

from coupons import prizes
from coupons import service as coupons_service
from coupons.models import (
    ENTRY_RULES,
    Campaign,
    CampaignDraw,
    CampaignEntry,
    CampaignTier,
    CouponTemplate,
    Prize,
    PrizeUpgrade,
    UpgradeOffer,
)
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, DomainError, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.orders.models import Order

ODDS_TOTAL = 10_000
MAX_TIERS = 10
MAX_ACTIVE_LISTED = 50
GOODS = "goods"


def _invalid(problems: Mapping[str, list[str]], message: str = "the campaign is not valid") -> InvalidInput:
    return InvalidInput(message, code="validation_error", details={"fields": dict(problems)})


# --- configuring -------------------------------------------------------------------------------


_TEMPLATE_REFUSALS = {
    "paused": "the coupon template is paused",
    "ended": "the coupon template has ended",
    "sold_out": "none of the coupon template is left",
}


def _tier_problems(merchant_id: int, tiers: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not 1 <= len(tiers) <= MAX_TIERS:
        return {"tiers": [f"1 to {MAX_TIERS} prize tiers"]}
    odds = sum(int(tier.get("odds_bp") or 0) for tier in tiers)
    if odds != ODDS_TOTAL:
        problems["tiers"] = [f"the odds add up to {odds} bp, not {ODDS_TOTAL}"]
    guaranteed = [index for index, tier in enumerate(tiers) if tier.get("guaranteed")]
    if len(guaranteed) > 1:
        problems.setdefault("tiers", []).append("at most one guaranteed tier")
    elif guaranteed and guaranteed[0] != len(tiers) - 1:
        # "everyone wins at least it": the lowest prize, or running out of a lesser tier would
        # hand out a better one
        problems[f"tiers.{guaranteed[0]}.guaranteed"] = ["only the last (lowest) tier may be guaranteed"]
    template_ids = {tier["template_id"] for tier in tiers if tier.get("template_id") is not None}
    known = (
        {
            template.id: template
            for template in db.session.execute(
                select(CouponTemplate).where(
                    CouponTemplate.id.in_(template_ids), CouponTemplate.merchant_id == merchant_id
                )
            ).scalars()
        }
        if template_ids
        else {}
    )
    names: set[str] = set()
    for index, tier in enumerate(tiers):
        at = f"tiers.{index}"
        kind = tier.get("prize_kind")
        template_id = tier.get("template_id")
        if kind == "coupon" and template_id is None:
            problems[f"{at}.template_id"] = ["a coupon prize names its coupon template"]
        elif kind == "gift" and template_id is not None:
            problems[f"{at}.template_id"] = ["a gift names no coupon template"]
        elif template_id is not None and template_id not in known:
            problems[f"{at}.template_id"] = ["no such coupon template"]
        elif template_id is not None:
            # a tier whose coupon cannot be issued could never be won (a guaranteed one would
            # refuse every draw): refused now rather than found out by members
            refusal = coupons_service.issue_refusal(known[template_id], "campaign", now)
            if refusal is not None:
                problems[f"{at}.template_id"] = [_TEMPLATE_REFUSALS.get(refusal, f"the coupon template is {refusal}")]
        if tier.get("quota") is None and not tier.get("guaranteed"):
            problems[f"{at}.quota"] = ["a tier that is not guaranteed has a quota"]
        elif tier.get("quota") == 0 and tier.get("guaranteed"):
            problems[f"{at}.quota"] = ["at least 1, or none: with 0 every draw would be refused"]
        if tier.get("name") in names:
            problems[f"{at}.name"] = ["another tier of the campaign has this name"]
        names.add(tier.get("name"))
    return problems


def create_campaign(
    merchant_id: int,
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    entry_rule: str,
    tiers: Sequence[Mapping[str, Any]],
    description: str = "",
    max_entries: int = 1,
    min_paid: int = 0,
    redeem_days: int = 30,
    status: str = "active",
) -> Campaign:
    """A campaign with its tiers (ranked in the order given: the first is first prize). 422 names
    every field at fault: odds not adding up to 10,000 bp, two guaranteed tiers, a tier without a
    quota that is not guaranteed, a guaranteed one with a quota of 0, two tiers of one name, another merchant's
    coupon template or one that cannot be issued (paused, ended, none left), a window that ends
    before it starts or is over, `max_entries` above 1 for the `once` rule."""
    now = utcnow()
    problems = _tier_problems(merchant_id, tiers, now)
    if ends_at <= starts_at:
        problems["ends_at"] = ["after starts_at"]
    elif ends_at <= now:
        problems["ends_at"] = ["in the future: this window is over"]
    if entry_rule not in ENTRY_RULES:
        problems["entry_rule"] = [f"one of {', '.join(ENTRY_RULES)}"]
    elif entry_rule == "once" and max_entries != 1:
        problems["max_entries"] = ["1 for the once rule"]
    if problems:
        raise _invalid(problems)
    campaign = Campaign(
        merchant_id=merchant_id,
        name=name,
        description=description,
        status=status,
        starts_at=starts_at.astimezone(UTC),  # answered as read back, whatever offset was sent
        ends_at=ends_at.astimezone(UTC),
        entry_rule=entry_rule,
        max_entries=max_entries,
        min_paid=min_paid,
        redeem_days=redeem_days,
    )
    db.session.add(campaign)
    db.session.flush()
    for rank, tier in enumerate(tiers, start=1):
        db.session.add(
            CampaignTier(
                merchant_id=merchant_id,
                campaign_id=campaign.id,
                rank=rank,
                name=tier["name"],
                description=tier.get("description") or "",
                prize_kind=tier["prize_kind"],
                template_id=tier.get("template_id"),
                cost=tier.get("cost") or 0,
                quota=tier.get("quota"),
                odds_bp=tier["odds_bp"],
                guaranteed=bool(tier.get("guaranteed")),
            )
        )
    db.session.flush()
    return campaign


def get_campaign(merchant_id: int, campaign_id: int, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    campaign = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if campaign is None or campaign.merchant_id != merchant_id:
        raise NotFound("campaign not found")
    return campaign


def tiers_of(campaign_id: int) -> list[CampaignTier]:
    return list(
        db.session.execute(
            select(CampaignTier).where(CampaignTier.campaign_id == campaign_id).order_by(CampaignTier.rank)
        ).scalars()
    )


def describe(campaign: Campaign, *, now: datetime | None = None) -> dict[str, Any]:
    """The campaign as staff see it: its terms, its tiers with what is left, its state now."""
    now = now or utcnow()
    return {
        **{column.key: getattr(campaign, column.key) for column in Campaign.__table__.columns},
        "state": state(campaign, now),
        "tiers": [_tier_view(tier) for tier in tiers_of(campaign.id)],
        "upgrade_offers": list_offers(campaign.merchant_id, campaign.id),
    }


def _tier_view(tier: CampaignTier) -> dict[str, Any]:
    view = {column.key: getattr(tier, column.key) for column in CampaignTier.__table__.columns}
    view["left"] = None if tier.quota is None else tier.quota - tier.taken
    return view


def state(campaign: Campaign, now: datetime) -> str:
    """paused, scheduled (before its window), running, or ended."""
    if campaign.status == "paused":
        return "paused"
    if now < campaign.starts_at:
        return "scheduled"
    return "running" if now < campaign.ends_at else "ended"


def list_campaigns(merchant_id: int, *, cursor: str | None = None, limit: int = 20) -> Page:
    page = keyset_page(
        select(Campaign).where(Campaign.merchant_id == merchant_id), [Campaign.id], cursor=cursor, limit=limit
    )
    now = utcnow()
    return Page(items=[describe(campaign, now=now) for campaign in page.items], next_cursor=page.next_cursor)


CHANGEABLE = ("name", "description", "status", "starts_at", "ends_at", "max_entries", "min_paid", "redeem_days")


def update_campaign(merchant_id: int, campaign_id: int, **changes: Any) -> dict[str, Any]:
    """Change the campaign's name, description, status (`paused` stops draws and new entries),
    window, entry cap, qualifying amount or voucher validity. Its tiers' odds and prizes stay as
    they were promised; a tier's quota, cost and wording change through `update_tier`."""
    campaign = get_campaign(merchant_id, campaign_id, lock=True)
    starts_at = changes.get("starts_at", campaign.starts_at)
    ends_at = changes.get("ends_at", campaign.ends_at)
    problems: dict[str, list[str]] = {}
    if ends_at <= starts_at:
        problems["ends_at"] = ["after starts_at"]
    if campaign.entry_rule == "once" and changes.get("max_entries", 1) != 1:
        problems["max_entries"] = ["1 for the once rule"]
    if problems:
        raise _invalid(problems)
    for name, value in changes.items():
        if name in CHANGEABLE:
            setattr(campaign, name, value.astimezone(UTC) if isinstance(value, datetime) else value)
    db.session.flush()
    return describe(campaign)


def _given(tier_id: int) -> int:
    """What a tier without a count has given, as `taken` would have counted it: its prizes not
    voided, those traded in by an upgrade that may still be refunded, and those an upgrade being
    paid for holds."""
    live = select(func.count()).select_from(Prize).where(Prize.tier_id == tier_id, Prize.status != "voided")
    traded = (
        select(func.count())
        .select_from(PrizeUpgrade)
        .join(Prize, Prize.id == PrizeUpgrade.from_prize_id)
        .where(Prize.tier_id == tier_id, PrizeUpgrade.status == "issued")
    )
    held = (
        select(func.count())
        .select_from(PrizeUpgrade)
        .where(PrizeUpgrade.to_tier_id == tier_id, PrizeUpgrade.status == "pending")
    )
    return db.session.execute(
        select(live.scalar_subquery() + traded.scalar_subquery() + held.scalar_subquery())
    ).scalar_one()


def update_tier(merchant_id: int, campaign_id: int, tier_id: int, **changes: Any) -> dict[str, Any]:
    """Change a tier's name, description, cost or quota. A quota never goes below what the tier
    has given (409 `quota_below_taken`); only the guaranteed tier may drop its quota (null). A
    quota change waits for the awards in flight (`_awards_stopped`)."""
    get_campaign(merchant_id, campaign_id)
    if "quota" in changes:
        _awards_stopped(campaign_id)  # before the tier's row, as every award
    tier = db.session.execute(
        locked(select(CampaignTier).where(CampaignTier.id == tier_id, CampaignTier.campaign_id == campaign_id))
    ).scalar_one_or_none()
    if tier is None:
        raise NotFound("prize tier not found")
    if "quota" in changes:
        quota = changes["quota"]
        if quota is None and not tier.guaranteed:
            raise _invalid({"quota": ["a tier that is not guaranteed has a quota"]}, "the tier is not valid")
        if quota is not None and tier.quota is None:
            # the tier starts counting: what it has given (and may still have to honour) counts
            tier.taken = _given(tier.id)
        if quota is not None and quota < tier.taken:
            raise Conflict(
                f"{tier.taken} prizes of this tier are given or held already",
                code="quota_below_taken",
                details={"taken": tier.taken},
            )
        if quota is None:
            tier.taken = 0
        tier.quota = quota
    for name in ("name", "description", "cost"):
        if name in changes:
            setattr(tier, name, changes[name])
    db.session.flush()
    return _tier_view(tier)


# --- upgrade offers ------------------------------------------------------------------------------


def create_offer(merchant_id: int, campaign_id: int, *, from_tier_id: int, to_tier_id: int, price: int) -> UpgradeOffer:
    """加价升级 "tier X -> tier Y for `price` fen". Both are gift tiers of this campaign (a coupon
    already in a wallet cannot be held or given back), Y better ranked than X, the price at least
    1 fen: else 422 naming the field. One offer per pair (409 `offer_exists`)."""
    get_campaign(merchant_id, campaign_id)
    tiers = {tier.id: tier for tier in tiers_of(campaign_id)}
    problems: dict[str, list[str]] = {}
    source, target = tiers.get(from_tier_id), tiers.get(to_tier_id)
    if source is None:
        problems["from_tier_id"] = ["not a prize tier of this campaign"]
    elif source.prize_kind != "gift":
        problems["from_tier_id"] = ["only a gift (a voucher) can be upgraded"]
    if target is None:
        problems["to_tier_id"] = ["not a prize tier of this campaign"]
    elif target.prize_kind != "gift":
        problems["to_tier_id"] = ["an upgrade gives a gift (a voucher)"]
    if source is not None and target is not None and "to_tier_id" not in problems and target.rank >= source.rank:
        problems["to_tier_id"] = ["a better tier (ranked above from_tier_id)"]
    if price < 1:
        problems["price"] = ["at least 1 fen"]
    if problems:
        raise _invalid(problems, "the upgrade offer is not valid")
    offer = UpgradeOffer(
        merchant_id=merchant_id, campaign_id=campaign_id, from_tier_id=from_tier_id, to_tier_id=to_tier_id, price=price
    )
    db.session.add(offer)
    db.session.flush()
    return offer


def list_offers(merchant_id: int, campaign_id: int) -> list[UpgradeOffer]:
    return list(
        db.session.execute(
            select(UpgradeOffer)
            .where(UpgradeOffer.merchant_id == merchant_id, UpgradeOffer.campaign_id == campaign_id)
            .order_by(UpgradeOffer.id)
        ).scalars()
    )


def update_offer(merchant_id: int, campaign_id: int, offer_id: int, **changes: Any) -> UpgradeOffer:
    """Change an offer's price (for upgrades placed from now on) or pause it."""
    offer = db.session.execute(
        locked(select(UpgradeOffer).where(UpgradeOffer.id == offer_id, UpgradeOffer.campaign_id == campaign_id))
    ).scalar_one_or_none()
    if offer is None or offer.merchant_id != merchant_id:
        raise NotFound("upgrade offer not found")
    if "price" in changes and changes["price"] < 1:
        raise _invalid({"price": ["at least 1 fen"]}, "the upgrade offer is not valid")
    for name in ("price", "status"):
        if name in changes:
            setattr(offer, name, changes[name])
    db.session.flush()
    return offer


# --- entries -------------------------------------------------------------------------------------


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _member_lock(campaign_id: int, member_id: int) -> None:
    db.session.execute(select(func.pg_advisory_xact_lock(_lock_key(f"campaign:{campaign_id}:{member_id}"))))


def _award_locks(campaign_id: int, member_id: int | None = None) -> None:
    """What a draw (or a prize given outside one) takes before it reads the tiers: the member's
    campaign lock, and the campaign's award lock shared. The shared lock is in memory (no row is
    written): draws never wait for each other on it, but staff setting a quota on a tier that has
    none wait for every award in flight, and every award after them reads the new quota. That is
    what lets a tier without a quota keep no count (no hot row for most draws to queue on)."""
    shared = func.pg_advisory_xact_lock_shared(_lock_key(f"campaign-awards:{campaign_id}"))
    if member_id is None:
        db.session.execute(select(shared))
    else:
        db.session.execute(select(func.pg_advisory_xact_lock(_lock_key(f"campaign:{campaign_id}:{member_id}")), shared))


def _awards_stopped(campaign_id: int) -> None:
    """The campaign's award lock, exclusive: no award is in flight until this transaction ends."""
    db.session.execute(select(func.pg_advisory_xact_lock(_lock_key(f"campaign-awards:{campaign_id}"))))


def _running(merchant_id: int, entry_rule: str, now: datetime) -> list[Campaign]:
    return list(
        db.session.execute(
            select(Campaign)
            .where(
                Campaign.merchant_id == merchant_id,
                Campaign.entry_rule == entry_rule,
                Campaign.status == "active",
                Campaign.starts_at <= now,
                Campaign.ends_at > now,
            )
            .order_by(Campaign.id)  # their member locks in one order, whoever pays at once
        ).scalars()
    )


def _entries_held(campaign_id: int, member_id: int) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(CampaignEntry)
        .where(
            CampaignEntry.campaign_id == campaign_id,
            CampaignEntry.member_id == member_id,
            CampaignEntry.status != "withdrawn",
        )
    ).scalar_one()


def _add_entry(campaign: Campaign, member_id: int, source: str, now: datetime) -> bool:
    _member_lock(campaign.id, member_id)
    if _entries_held(campaign.id, member_id) >= campaign.max_entries:
        return False
    made = db.session.execute(
        insert(CampaignEntry)
        .values(
            merchant_id=campaign.merchant_id,
            campaign_id=campaign.id,
            member_id=member_id,
            source=source,
            created_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_campaign_entries_source")
        .returning(CampaignEntry.id)
    ).first()
    return made is not None


def enter_for_order(
    merchant_id: int, member_id: int, order_id: int, goods_paid: int, *, now: datetime | None = None
) -> int:
    """A paid goods order gives an entry to each running `per_order` campaign it qualifies for
    (`goods_paid` at least its `min_paid`), within the member's cap; idempotent per order."""
    now = now or utcnow()
    made = 0
    for campaign in _running(merchant_id, "per_order", now):
        if goods_paid >= campaign.min_paid:
            made += _add_entry(campaign, member_id, f"order:{order_id}", now)
    return made


def enter_for_group(merchant_id: int, member_id: int, group_id: int, *, now: datetime | None = None) -> int:
    """Joining a group buy gives an entry to each running `per_group` campaign, within the cap."""
    now = now or utcnow()
    return sum(
        _add_entry(campaign, member_id, f"group:{group_id}", now)
        for campaign in _running(merchant_id, "per_group", now)
    )


def withdraw_entries(merchant_id: int, source: str, *, now: datetime | None = None) -> int:
    """Entries of `source` not drawn yet are taken back: "order:<id>" when the order is refunded in
    full, "group:<id>" when the group buy failed (its orders are refunded)."""
    return db.session.execute(
        update(CampaignEntry)
        .where(
            CampaignEntry.merchant_id == merchant_id,
            CampaignEntry.source == source,
            CampaignEntry.status == "open",
        )
        .values(status="withdrawn", closed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def void_gifts_of_entries(merchant_id: int, source: str, *, now: datetime | None = None) -> int:
    """The unredeemed gifts won with the drawn entries of `source` are voided (an order refunded in
    full: paying, drawing and refunding wins nothing) and their units go back to their tiers. A
    gift redeemed already, or held by an upgrade being paid, stays."""
    now = now or utcnow()
    won = (
        select(Prize.id)
        .join(CampaignDraw, CampaignDraw.id == Prize.draw_id)
        .join(CampaignEntry, CampaignEntry.id == CampaignDraw.entry_id)
        .where(CampaignEntry.merchant_id == merchant_id, CampaignEntry.source == source)
    )
    tiers = (
        db.session.execute(
            update(Prize)
            .where(Prize.id.in_(won), Prize.status == "available", Prize.kind == "gift")
            .values(status="voided", voided_at=now, void_reason="entry_refunded", updated_at=now)
            .returning(Prize.tier_id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    for tier_id in sorted(tiers):
        prizes.give_back(tier_id)
    return len(tiers)


# --- the draw ------------------------------------------------------------------------------------


def roll() -> int:
    """A number in 0-9,999 from the operating system's randomness (`secrets`): no member can
    predict or replay it."""
    return secrets.randbelow(ODDS_TOTAL)


def tier_for(tiers: Sequence[CampaignTier], number: int) -> CampaignTier | None:
    """The tier the roll `number` falls on: the tiers' odds laid end to end in rank order."""
    edge = 0
    for tier in tiers:
        edge += tier.odds_bp
        if number < edge:
            return tier
    return None


def _award(
    tier: CampaignTier, member_id: int, now: datetime, *, redeem_days: int, origin: str, draw_id: int | None = None
) -> Prize | None:
    """Take one of the tier's quota and make the prize, in a savepoint: None (and nothing kept)
    when the tier ran out or its coupon cannot be issued (sold out, paused, ended)."""
    try:
        with db.session.begin_nested():
            if not prizes.take(tier):
                return None
            return prizes.make_prize(tier, member_id, now, origin=origin, draw_id=draw_id, redeem_days=redeem_days)
    except DomainError:
        return None


def award(tier: CampaignTier, member_id: int, *, origin: str, now: datetime | None = None) -> Prize | None:
    """A prize of `tier` for the member outside a draw (a referral reward): None when the tier
    has none left (or its coupon cannot be issued)."""
    campaign = db.session.get(Campaign, tier.campaign_id)
    assert campaign is not None
    _award_locks(campaign.id)
    db.session.refresh(tier)  # its quota as it is now that no staff change is in flight
    return _award(tier, member_id, now or utcnow(), redeem_days=campaign.redeem_days, origin=origin)


def _spend_entry(campaign: Campaign, member_id: int, now: datetime) -> int | None:
    """Mark one of the member's open entries drawn, in one statement: the id, or None when none is
    left. A `once` campaign's entry is made here, drawn (its unique key says it was drawn before)."""
    if campaign.entry_rule == "once":
        return db.session.execute(
            insert(CampaignEntry)
            .values(
                merchant_id=campaign.merchant_id,
                campaign_id=campaign.id,
                member_id=member_id,
                source="once",
                status="drawn",
                created_at=now,
                closed_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_campaign_entries_source")
            .returning(CampaignEntry.id)
        ).scalar_one_or_none()
    oldest_open = (
        select(CampaignEntry.id)
        .where(
            CampaignEntry.campaign_id == campaign.id,
            CampaignEntry.member_id == member_id,
            CampaignEntry.status == "open",
        )
        .order_by(CampaignEntry.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # one a refund is withdrawing meanwhile: the next
        .scalar_subquery()
    )
    return db.session.execute(
        update(CampaignEntry)
        .where(CampaignEntry.id == oldest_open, CampaignEntry.status == "open")  # a refund may take it meanwhile
        .values(status="drawn", closed_at=now)
        .returning(CampaignEntry.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def _exhausted(campaign_id: int, tier: CampaignTier) -> Conflict:
    return Conflict(
        "the guaranteed prize of this campaign has run out: no draw can be made",
        code="campaign_exhausted",
        details={"campaign_id": campaign_id, "tier_id": tier.id},
    )


def draw(
    merchant_id: int, member_id: int, campaign_id: int, *, idempotency_key: str, now: datetime | None = None
) -> tuple[dict[str, Any], bool]:
    """Spend one of the member's entries on a draw: (the draw as the member sees it, replayed).

    The same Idempotency-Key answers the first draw again. 409 `campaign_not_active` (paused,
    not started, ended), `no_entries` (none left), `campaign_exhausted` (the guaranteed tier has
    no prize left: its quota spent, or its coupon no longer issued; refused before rolling, and
    when a draw racing for its last one falls back to it: nothing is spent or recorded, never a
    silent loss, and no entry kept to roll again for a better tier).

    The tier is settled before anything is written (the guarded UPDATE of the rolled tier, else of
    the guaranteed one), then the draw and the prize are inserted: a gift draw is eight statements
    and no savepoint. Only a coupon prize, which `coupons.service.issue` may refuse, runs in a
    savepoint; refused, its quota goes back and the draw falls back like a tier run out."""
    now = now or utcnow()
    campaign = get_campaign(merchant_id, campaign_id)
    _award_locks(campaign_id, member_id)  # before the tiers are read
    earlier = db.session.execute(
        select(CampaignDraw).where(
            CampaignDraw.member_id == member_id,
            CampaignDraw.idempotency_key == idempotency_key,
        )
    ).scalar_one_or_none()
    if earlier is not None:
        if earlier.campaign_id != campaign_id:
            raise Conflict(
                "this Idempotency-Key was used for a draw of another campaign",
                code="idempotency_key_reused",
                details={"header": "Idempotency-Key"},
            )
        return draw_view(earlier), True
    if state(campaign, now) != "running":
        raise Conflict(
            "this campaign is not running", code="campaign_not_active", details={"state": state(campaign, now)}
        )
    tiers = tiers_of(campaign_id)
    fallback = next((tier for tier in tiers if tier.guaranteed), None)
    if fallback is not None and not prizes.can_give(fallback, now):
        # Refused before rolling: were a roll refused only when it fell on the spent guaranteed
        # tier, a member could keep the entry and roll again until a better tier came up.
        raise _exhausted(campaign_id, fallback)
    entry_id = _spend_entry(campaign, member_id, now)
    if entry_id is None:
        raise Conflict("you have no draw left in this campaign", code="no_entries")
    number = roll()
    rolled = tier_for(tiers, number)
    chosen, fell_back = None, False
    if rolled is not None and prizes.take(rolled):
        chosen = rolled
    elif fallback is not None:
        if fallback is rolled or not prizes.take(fallback):
            raise _exhausted(campaign_id, fallback)  # nothing is spent or recorded: the draw rolls back
        chosen, fell_back = fallback, True
    record = CampaignDraw(
        id=db.session.execute(
            insert(CampaignDraw)
            .values(
                merchant_id=merchant_id,
                campaign_id=campaign_id,
                member_id=member_id,
                entry_id=entry_id,
                idempotency_key=idempotency_key,
                roll=number,
                rolled_tier_id=rolled.id if rolled else None,
                tier_id=chosen.id if chosen else None,
                fell_back=fell_back,
                created_at=now,
            )
            .returning(CampaignDraw.id)
        ).scalar_one(),
        campaign_id=campaign_id,
        roll=number,
        tier_id=chosen.id if chosen else None,
        fell_back=fell_back,
        created_at=now,
    )  # a detached copy of the row, for the answer
    prize = _prize_of_draw(chosen, fallback, record, member_id, now, campaign)
    return draw_view(record, prize=prize), False


def _prize_of_draw(
    chosen: CampaignTier | None,
    fallback: CampaignTier | None,
    record: CampaignDraw,
    member_id: int,
    now: datetime,
    campaign: Campaign,
) -> Prize | None:
    """The prize of the tier the draw took (its quota taken already). A coupon the wallet refuses
    gives its quota back and falls back to the guaranteed tier (the draw row says so)."""
    if chosen is None:
        return None
    days = campaign.redeem_days
    if chosen.prize_kind == "gift":
        return prizes.make_prize(chosen, member_id, now, origin="draw", draw_id=record.id, redeem_days=days)
    try:
        with db.session.begin_nested():
            return prizes.make_prize(chosen, member_id, now, origin="draw", draw_id=record.id, redeem_days=days)
    except DomainError:
        prizes.give_back(chosen.id)
    if fallback is None:
        prize = None
    elif fallback is chosen:
        raise _exhausted(campaign.id, fallback)
    else:
        prize = _award(fallback, member_id, now, redeem_days=days, origin="draw", draw_id=record.id)
        if prize is None:
            raise _exhausted(campaign.id, fallback)
    record.tier_id = prize.tier_id if prize else None
    record.fell_back = prize is not None
    db.session.execute(
        update(CampaignDraw)
        .where(CampaignDraw.id == record.id)
        .values(tier_id=record.tier_id, fell_back=record.fell_back)
        .execution_options(synchronize_session=False)
    )
    return prize


def draw_view(record: CampaignDraw, *, prize: Prize | None = None) -> dict[str, Any]:
    if prize is None and record.tier_id is not None:
        prize = db.session.execute(select(Prize).where(Prize.draw_id == record.id)).scalar_one_or_none()
    return {
        "id": record.id,
        "campaign_id": record.campaign_id,
        "roll": record.roll,
        "won": prize is not None,
        "fell_back": record.fell_back,
        "tier_id": record.tier_id,
        "prize": prizes.prize_view(prize) if prize is not None else None,
        "created_at": record.created_at,
    }


# --- what members see ----------------------------------------------------------------------------


def _count_by(status: InstrumentedAttribute[str], *conditions: ColumnElement[bool]) -> dict[str, int]:
    """How many rows there are of each `status`, among those `conditions` select."""
    return dict(db.session.execute(select(status, func.count()).where(*conditions).group_by(status)).all())


def _chances(campaign: Campaign, member_id: int) -> dict[str, int]:
    counts = _count_by(
        CampaignEntry.status, CampaignEntry.campaign_id == campaign.id, CampaignEntry.member_id == member_id
    )
    opened = counts.get("open", 0)
    drawn = counts.get("drawn", 0)
    if campaign.entry_rule == "once" and not drawn:
        opened = 1
    return {"chances": opened, "drawn": drawn, "withdrawn": counts.get("withdrawn", 0)}


def member_view(campaign: Campaign, member_id: int, now: datetime) -> dict[str, Any]:
    """The campaign as a member sees it: `exhausted` when its guaranteed tier has nothing left
    (draws are refused), `chances` 0 once it has ended."""
    tiers = tiers_of(campaign.id)
    left = {tier.id: prizes.can_give(tier, now) for tier in tiers}
    current = state(campaign, now)
    chances = _chances(campaign, member_id)
    if current == "ended":
        chances["chances"] = 0
    return {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "state": current,
        "exhausted": any(tier.guaranteed and not left[tier.id] for tier in tiers),
        "entry_rule": campaign.entry_rule,
        "max_entries": campaign.max_entries,
        "min_paid": campaign.min_paid,
        "tiers": [
            {
                "id": tier.id,
                "rank": tier.rank,
                "name": tier.name,
                "description": tier.description,
                "prize_kind": tier.prize_kind,
                "odds_bp": tier.odds_bp,
                "guaranteed": tier.guaranteed,
                "sold_out": not left[tier.id],
            }
            for tier in tiers
        ],
        "upgrade_offers": [
            {"id": offer.id, "from_tier_id": offer.from_tier_id, "to_tier_id": offer.to_tier_id, "price": offer.price}
            for offer in list_offers(campaign.merchant_id, campaign.id)
            if offer.status == "active"
        ],
        **chances,
    }


def member_campaigns(merchant_id: int, member_id: int, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The merchant's campaigns that are running or about to, with the member's chances."""
    now = now or utcnow()
    campaigns = db.session.execute(
        select(Campaign)
        .where(Campaign.merchant_id == merchant_id, Campaign.status == "active", Campaign.ends_at > now)
        .order_by(Campaign.starts_at, Campaign.id)
        .limit(MAX_ACTIVE_LISTED)
    ).scalars()
    return [member_view(campaign, member_id, now) for campaign in campaigns]


def member_campaign(merchant_id: int, member_id: int, campaign_id: int) -> dict[str, Any]:
    campaign = get_campaign(merchant_id, campaign_id)
    if campaign.status != "active":
        raise NotFound("campaign not found")
    return member_view(campaign, member_id, utcnow())


def draw_page(
    merchant_id: int, campaign_id: int, *, member_id: int | None = None, cursor: str | None = None, limit: int = 20
) -> Page:
    """Draws of a campaign, newest first (a member's own when `member_id` is given)."""
    get_campaign(merchant_id, campaign_id)
    query = select(CampaignDraw).where(CampaignDraw.campaign_id == campaign_id)
    if member_id is not None:
        query = query.where(CampaignDraw.member_id == member_id)
    page = keyset_page(query, [CampaignDraw.id], cursor=cursor, limit=limit)
    views = []
    for record in page.items:
        view = draw_view(record)
        view["member_id"] = record.member_id
        views.append(view)
    return Page(items=views, next_cursor=page.next_cursor)


# --- economics -----------------------------------------------------------------------------------


def economics(merchant_id: int, campaign_id: int) -> dict[str, Any]:
    """Whether the campaign pays for itself (一分钱不花): entries and draws, prizes given per tier
    and what they cost the merchant, upgrades taken and their take-up, and the upgrade revenue
    (paid minus refunded over the campaign's upgrade orders) against the cost of the prizes.

    A prize costs what its tier said when it was given; it costs nothing once voided (traded in,
    refunded) or expired unredeemed. Take-up is upgrades kept over the prizes (of any origin, not
    expired) of the tiers an offer starts from."""
    campaign = get_campaign(merchant_id, campaign_id)
    entries = _count_by(CampaignEntry.status, CampaignEntry.campaign_id == campaign.id)
    draws = db.session.execute(
        select(CampaignDraw.tier_id, func.count(), func.count().filter(CampaignDraw.fell_back))
        .where(CampaignDraw.campaign_id == campaign.id)
        .group_by(CampaignDraw.tier_id)
    ).all()
    drawn = {tier_id: (count, fell) for tier_id, count, fell in draws}
    now = utcnow()
    state_now = prizes.status_at(now)
    given = db.session.execute(
        select(Prize.tier_id, Prize.origin, state_now, func.count(), func.sum(Prize.cost))
        .where(Prize.campaign_id == campaign.id)
        .group_by(Prize.tier_id, Prize.origin, state_now)
    ).all()
    upgrades = _count_by(PrizeUpgrade.status, PrizeUpgrade.campaign_id == campaign.id)
    revenue = db.session.execute(
        select(func.coalesce(func.sum(Order.paid_total - Order.refunded_total), 0))
        .select_from(PrizeUpgrade)
        .join(Order, Order.id == PrizeUpgrade.order_id)
        .where(PrizeUpgrade.campaign_id == campaign.id)
    ).scalar_one()
    offered_from = {offer.from_tier_id for offer in list_offers(merchant_id, campaign.id)}
    tiers = []
    prize_cost = redeemed_cost = eligible = 0
    for tier in tiers_of(campaign.id):
        rows = [(origin, status, count, cost) for tier_id, origin, status, count, cost in given if tier_id == tier.id]
        # what costs the merchant: prizes handed over, or still to be (not voided, not expired unredeemed)
        live = [(origin, count, cost) for origin, status, count, cost in rows if status not in ("voided", "expired")]
        used = [(count, cost) for _, status, count, cost in rows if status in ("redeemed", "delivered")]
        if tier.id in offered_from:
            eligible += sum(count for _, status, count, _ in rows if status != "expired")
        cost_of_live = sum(cost for _, _, cost in live)
        prize_cost += cost_of_live
        redeemed_cost += sum(cost for _, cost in used)
        count, fell = drawn.get(tier.id, (0, 0))
        tiers.append(
            {
                "tier_id": tier.id,
                "rank": tier.rank,
                "name": tier.name,
                "cost": tier.cost,
                "quota": tier.quota,
                "taken": tier.taken,
                "drawn": count,
                "fell_back_to": fell,
                "by_upgrade": sum(count for origin, count, _ in live if origin == "upgrade"),
                "by_referral": sum(count for origin, count, _ in live if origin == "referral"),
                "live": sum(count for _, count, _ in live),
                "redeemed": sum(count for count, _ in used),
                "expired": sum(count for _, status, count, _ in rows if status == "expired"),
                "voided": sum(count for _, status, count, _ in rows if status == "voided"),
                "cost_of_live": cost_of_live,
            }
        )
    taken = upgrades.get("issued", 0) + upgrades.get("completed", 0)
    return {
        "campaign_id": campaign.id,
        "entries": {
            "total": sum(entries.values()),
            "open": entries.get("open", 0),
            "drawn": entries.get("drawn", 0),
            "withdrawn": entries.get("withdrawn", 0),
        },
        "draws": sum(count for count, _ in drawn.values()),
        "misses": drawn.get(None, (0, 0))[0],
        "tiers": tiers,
        "upgrades": {
            "taken": taken,
            "pending": upgrades.get("pending", 0),
            "cancelled": upgrades.get("cancelled", 0),
            "refunded": upgrades.get("refunded", 0),
            "eligible_prizes": eligible,
            "take_up_bp": taken * ODDS_TOTAL // eligible if eligible else 0,
        },
        "upgrade_revenue": revenue,
        "prize_cost": prize_cost,
        "redeemed_cost": redeemed_cost,
        "net": revenue - prize_cost,
        "covered": revenue >= prize_cost,
        "coverage_bp": revenue * ODDS_TOTAL // prize_cost if prize_cost else None,
    }
