"""Coupon templates (what merchants configure) and coupons (what members hold): creating and
editing templates, issuing coupons through every channel, the claim centre, the wallet.

Issuing (`issue`, which every channel goes through) takes, in this order: the member's lock for
the template (a transaction-scoped advisory lock, so one member's concurrent claims are counted
one at a time against the per-member limits), then the template row, through the guarded UPDATE
of `issued` (`issued < total_quantity`: many members racing for the last coupons get exactly
what is left), then the new coupon row. Nothing else is locked. A `source_ref` makes an issue
idempotent: the member's coupon of that source is answered again, and the unique index
`uq_coupons_source` holds it under any race.

Which checks apply depends on the channel: every issue needs an active template whose fixed
window (if it has one) has not ended, and a coupon left. The claim centre and the automatic
channels (welcome gift, birthday) also need the template offered through that channel, the
member in its audience, and the per-member limits (in total, and per day in China). Staff grants,
campaign prizes and referral rewards name their template and their members deliberately: they
skip the channel, audience and per-member checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, exists, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from coupons.models import CHANNELS, OFFERED_CHANNELS, Coupon, CouponGrant, CouponTemplate
from coupons.terms import EVERYONE, LISTED_MEMBERS, NEW_MEMBERS, TemplateTerms, problems
from shop.catalog.models import Category, Product, Sku
from shop.core.db import db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.core.runner import enqueue
from shop.identity.members import CHINA
from shop.identity.models import Member
from shop.identity.notifications import queue_notification
from shop.orders.models import Order, OrderAdjustment

TERM_FIELDS = tuple(f.name for f in fields(TemplateTerms))
# What may still change once a template has issued coupons: the members holding them were promised
# its terms. Name, description and channels are how it is shown and offered, not a promise.
CHANGEABLE_IN_USE = frozenset({"total_quantity", "valid_until"})
PER_MEMBER_CHANNELS = frozenset({"centre", "welcome", "birthday"})
WALLET_STATUSES = ("available", "locked", "used", "expired")


# --- templates ----------------------------------------------------------------------------------


def _invalid(errors: Mapping[str, Any]) -> InvalidInput:
    return InvalidInput("the coupon template is not valid", code="validation_error", details={"fields": dict(errors)})


def terms_of(template: CouponTemplate) -> TemplateTerms:
    values = {name: getattr(template, name) for name in TERM_FIELDS}
    for name in ("scope_ids", "excluded_product_ids", "audience_member_ids"):
        values[name] = tuple(values[name] or ())
    return TemplateTerms(**values)


def _normalised(values: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in ("scope_ids", "excluded_product_ids", "audience_member_ids"):
        if name in out and out[name] is not None:
            out[name] = tuple(dict.fromkeys(out[name]))  # repeats once, order kept
    for name in ("valid_from", "valid_until"):
        if isinstance(out.get(name), datetime) and out[name].utcoffset() is not None:
            out[name] = out[name].astimezone(UTC)  # answered as read back, whatever offset was sent
    return out


def _others(merchant_id: int, terms: TemplateTerms, known: Mapping[str, Any]) -> dict[str, Any]:
    """The ids the terms name that are not the merchant's, by field and position (one of another
    merchant reads exactly like one that does not exist); a field already wrong is not asked."""
    errors: dict[str, Any] = {}
    if terms.scope == "categories":
        errors.update(_unknown_ids(merchant_id, Category, "scope_ids", terms.scope_ids, known))
    elif terms.scope == "products":
        errors.update(_unknown_ids(merchant_id, Product, "scope_ids", terms.scope_ids, known))
    errors.update(_unknown_ids(merchant_id, Product, "excluded_product_ids", terms.excluded_product_ids, known))
    errors.update(_unknown_ids(merchant_id, Member, "audience_member_ids", terms.audience_member_ids, known))
    if terms.gift_sku_id is not None and _unknown_ids(merchant_id, Sku, "gift_sku_id", (terms.gift_sku_id,), known):
        errors["gift_sku_id"] = ["not found"]
    return errors


def _unknown_ids(
    merchant_id: int, model: Any, field: str, ids: Collection[int], known: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """{field: {position: ["not found"]}} for the ids that are not the merchant's rows of `model`."""
    if field in known or not ids:
        return {}
    found = set(
        db.session.execute(select(model.id).where(model.merchant_id == merchant_id, model.id.in_(list(ids)))).scalars()
    )
    wrong = {str(position): ["not found"] for position, row_id in enumerate(ids) if row_id not in found}
    return {field: wrong} if wrong else {}


def _channels(channels: Collection[str] | None) -> list[str]:
    return sorted(set(channels or ()))


def create_template(
    merchant_id: int,
    *,
    name: str,
    description: str = "",
    channels: Collection[str] = (),
    status: str = "active",
    **terms: Any,
) -> CouponTemplate:
    """A new template; 422 with the fields at fault when its terms are unusable or name ids that
    are not the merchant's."""
    wanted = TemplateTerms(**_normalised(terms))
    errors = problems(wanted)
    errors.update(_others(merchant_id, wanted, errors))
    if errors:
        raise _invalid(errors)
    values = {field: getattr(wanted, field) for field in TERM_FIELDS}
    for field in ("scope_ids", "excluded_product_ids", "audience_member_ids"):
        values[field] = list(values[field])
    template = CouponTemplate(
        merchant_id=merchant_id,
        name=name,
        description=description,
        channels=_channels(channels),
        status=status,
        **values,
    )
    db.session.add(template)
    db.session.flush()
    return template


def get_template(merchant_id: int, template_id: int, *, lock: bool = False) -> CouponTemplate:
    query = select(CouponTemplate).where(CouponTemplate.id == template_id, CouponTemplate.merchant_id == merchant_id)
    template = db.session.execute(locked(query) if lock else query).scalar_one_or_none()
    if template is None:
        raise NotFound("coupon template not found")
    return template


def list_templates(merchant_id: int, *, status: str | None = None, cursor: str | None = None, limit: int = 20) -> Page:
    query = select(CouponTemplate).where(CouponTemplate.merchant_id == merchant_id)
    if status:
        query = query.where(CouponTemplate.status == status)
    return keyset_page(query, [CouponTemplate.id], cursor=cursor, limit=limit)


def update_template(merchant_id: int, template_id: int, **changes: Any) -> CouponTemplate:
    """Change a template. Once it has issued coupons only its quantity, its end date, its status
    (pause, resume), its name, description and channels may change: anything else is 409
    `template_in_use`. The quantity never goes below what was issued."""
    template = get_template(merchant_id, template_id, lock=True)
    term_changes = _normalised({k: v for k, v in changes.items() if k in TERM_FIELDS})
    current = terms_of(template)
    wanted = replace(current, **term_changes)
    changed = sorted(name for name in term_changes if getattr(wanted, name) != getattr(current, name))
    if template.issued > 0:
        frozen = [name for name in changed if name not in CHANGEABLE_IN_USE]
        if frozen:
            raise Conflict(
                f"{template.issued} coupons of this template were issued: only its quantity, end date and "
                "status may change (make a new template for new terms)",
                code="template_in_use",
                details={"fields": {name: ["cannot change once coupons are issued"] for name in frozen}},
            )
    errors = problems(wanted)
    if wanted.total_quantity < template.issued:
        errors.setdefault("total_quantity", []).append(f"at least the {template.issued} already issued")
    errors.update(_others(merchant_id, wanted, errors))
    if errors:
        raise _invalid(errors)
    for name in changed:
        value = getattr(wanted, name)
        setattr(template, name, list(value) if isinstance(value, tuple) else value)
    for name in ("name", "description", "status"):
        if name in changes and changes[name] is not None:
            setattr(template, name, changes[name])
    if "channels" in changes and changes["channels"] is not None:
        template.channels = _channels(changes["channels"])
    db.session.flush()
    return template


# --- issuing ------------------------------------------------------------------------------------


def _not_claimable(why: str, reason: str) -> Conflict:
    return Conflict(why, code="coupon_not_claimable", details={"reason": reason})


def _member_lock_key(template_id: int, member_id: int) -> int:
    digest = hashlib.blake2b(f"coupons:{template_id}:{member_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def china_day_start(now: datetime) -> datetime:
    """The midnight (in China) that began the day of `now`."""
    local = now.astimezone(CHINA)
    return datetime.combine(local.date(), time(0), tzinfo=CHINA)


def validity(template: CouponTemplate | TemplateTerms, now: datetime) -> tuple[datetime, datetime]:
    """When a coupon claimed `now` can be used: the template's window, or N days from the claim
    (from the next midnight in China when the template says so)."""
    if template.valid_days is None:
        assert template.valid_from is not None and template.valid_until is not None
        return template.valid_from, template.valid_until
    start = china_day_start(now) + timedelta(days=1) if template.from_next_day else now
    return start, start + timedelta(days=template.valid_days)


def is_new_member(merchant_id: int, member_id: int) -> bool:
    """No order of theirs ever reached paid (a later refund does not make them new again)."""
    paid = db.session.execute(
        select(
            exists().where(Order.merchant_id == merchant_id, Order.member_id == member_id, Order.paid_at.is_not(None))
        )
    ).scalar()
    return not paid


def in_audience(template: CouponTemplate, merchant_id: int, member_id: int, *, new_member: bool | None = None) -> bool:
    if template.audience == EVERYONE:
        return True
    if template.audience == LISTED_MEMBERS:
        return member_id in (template.audience_member_ids or ())
    if template.audience == NEW_MEMBERS:
        return is_new_member(merchant_id, member_id) if new_member is None else new_member
    return False


@dataclass(frozen=True)
class Held:
    """How many coupons of a template a member holds, in all and claimed today (in China)."""

    total: int
    today: int


def held(member_id: int, template_ids: Collection[int], now: datetime) -> dict[int, Held]:
    """How many coupons of each template the member holds (templates they hold none of are left out)."""
    day = china_day_start(now)
    rows = db.session.execute(
        select(Coupon.template_id, func.count(), func.count().filter(Coupon.claimed_at >= day))
        .where(Coupon.member_id == member_id, Coupon.template_id.in_(list(template_ids)))
        .group_by(Coupon.template_id)
    ).all()
    return {template_id: Held(total, today) for template_id, total, today in rows}


NONE_HELD = Held(0, 0)


def limit_reached(template: CouponTemplate, counts: Held) -> str | None:
    if counts.total >= template.per_member_limit:
        return f"at most {template.per_member_limit} of this coupon per member"
    if template.per_member_daily_limit is not None and counts.today >= template.per_member_daily_limit:
        return f"at most {template.per_member_daily_limit} of this coupon per member per day"
    return None


def ended(template: CouponTemplate, now: datetime) -> bool:
    """A fixed window that has closed (a template valid N days after the claim never ends)."""
    return template.valid_until is not None and template.valid_until <= now


def not_claimable_reason(template: CouponTemplate, channel: str, now: datetime) -> str | None:
    """Why the template cannot be issued through `channel` now (apart from audience and limits)."""
    if template.status != "active":
        return "paused"
    if channel in OFFERED_CHANNELS and channel not in (template.channels or ()):
        return "not_offered"
    if ended(template, now):
        return "ended"
    if channel == "centre" and template.valid_days is None and template.valid_from and template.valid_from > now:
        return "not_started"
    return None


def issue_refusal(template: CouponTemplate, channel: str, now: datetime) -> str | None:
    """Why `issue` would refuse the template through `channel` now for any member (paused, not
    offered, ended, not started, or "sold_out"), before audience and per-member limits; None when
    it would issue. A hint for what members are shown: `issue`'s guarded UPDATE decides."""
    reason = not_claimable_reason(template, channel, now)
    if reason is None and template.issued >= template.total_quantity:
        return "sold_out"
    return reason


_REASON_TEXT = {
    "paused": "this coupon is paused",
    "not_offered": "this coupon is not offered here",
    "ended": "this coupon has ended",
    "not_started": "this coupon cannot be claimed yet",
    "audience": "this coupon is not for you",
}


def issue(
    merchant_id: int,
    member_id: int,
    template_id: int,
    *,
    channel: str,
    source_ref: str | None = None,
    now: datetime | None = None,
    new_member: bool | None = None,
) -> Coupon:
    """Issue one coupon of the template to the member through `channel` (see the module docstring
    for what each channel checks); idempotent per `source_ref`. Refusals: 404 (template or member
    not the merchant's), 409 `coupon_not_claimable` (with the reason), `coupon_sold_out`,
    `coupon_limit_reached`."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    now = now or utcnow()
    template = get_template(merchant_id, template_id)
    owner = db.session.execute(select(Member.merchant_id).where(Member.id == member_id)).scalar_one_or_none()
    if owner != merchant_id:
        raise NotFound("member not found", code="member_not_found")
    db.session.execute(select(func.pg_advisory_xact_lock(_member_lock_key(template_id, member_id))))
    if source_ref is not None:
        earlier = db.session.execute(
            select(Coupon).where(
                Coupon.merchant_id == merchant_id, Coupon.member_id == member_id, Coupon.source_ref == source_ref
            )
        ).scalar_one_or_none()
        if earlier is not None:
            return earlier
    reason = not_claimable_reason(template, channel, now)
    if (
        reason is None
        and channel in PER_MEMBER_CHANNELS
        and not in_audience(template, merchant_id, member_id, new_member=new_member)
    ):
        reason = "audience"
    if reason is not None:
        raise _not_claimable(_REASON_TEXT[reason], reason)
    if channel in PER_MEMBER_CHANNELS:
        why = limit_reached(template, held(member_id, [template_id], now).get(template_id, NONE_HELD))
        if why:
            raise Conflict(why, code="coupon_limit_reached", details={"template_id": template_id})
    taken = db.session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == template_id,
            CouponTemplate.status == "active",
            CouponTemplate.issued < CouponTemplate.total_quantity,
        )
        .values(issued=CouponTemplate.issued + 1)
        .returning(CouponTemplate.issued)
        .execution_options(synchronize_session=False)
    ).first()
    if taken is None:
        db.session.refresh(template)
        if template.status != "active":
            raise _not_claimable(_REASON_TEXT["paused"], "paused")
        raise Conflict("none of this coupon is left", code="coupon_sold_out", details={"template_id": template_id})
    set_committed_value(template, "issued", taken[0])
    valid_from, valid_until = validity(template, now)
    coupon = Coupon(
        merchant_id=merchant_id,
        template_id=template_id,
        member_id=member_id,
        status="available",
        valid_from=valid_from,
        valid_until=valid_until,
        channel=channel,
        source_ref=source_ref,
        claimed_at=now,
    )
    db.session.add(coupon)
    db.session.flush()
    return coupon


def claim(merchant_id: int, member_id: int, template_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """A member claims a coupon in the claim centre: the coupon as the wallet shows it."""
    now = now or utcnow()
    coupon = issue(merchant_id, member_id, template_id, channel="centre", now=now)
    template = db.session.get(CouponTemplate, template_id)  # issue loaded it: no second read
    assert template is not None
    return coupon_view(coupon, template, now)


# --- what members see ---------------------------------------------------------------------------


def centre(merchant_id: int, member_id: int, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The claim centre: the active templates offered there that have not ended and whose audience
    takes the member, newest first, each with what is left, how many the member holds and whether
    they can claim one now (or why not)."""
    now = now or utcnow()
    templates = (
        db.session.execute(
            select(CouponTemplate)
            .where(
                CouponTemplate.merchant_id == merchant_id,
                CouponTemplate.status == "active",
                CouponTemplate.channels.contains(["centre"]),
                or_(CouponTemplate.valid_days.is_not(None), CouponTemplate.valid_until > now),
            )
            .order_by(CouponTemplate.id.desc())
            .limit(100)
        )
        .scalars()
        .all()
    )
    if not templates:
        return []
    counts = held(member_id, [t.id for t in templates], now)
    new_member: bool | None = None
    if any(t.audience == NEW_MEMBERS for t in templates):
        new_member = is_new_member(merchant_id, member_id)
    shown = []
    for template in templates:
        if not in_audience(template, merchant_id, member_id, new_member=new_member):
            continue
        mine = counts.get(template.id, NONE_HELD)
        reason = not_claimable_reason(template, "centre", now)
        if reason is None and template.issued >= template.total_quantity:
            reason = "sold_out"
        if reason is None and limit_reached(template, mine):
            reason = "limit_reached"
        shown.append(
            {
                "template": template,
                "remaining": template.total_quantity - template.issued,
                "held": mine.total,
                "claimable": reason is None,
                "reason": reason,
            }
        )
    return shown


def wallet_status(coupon: Coupon, now: datetime) -> str:
    """The coupon's status as members see it: an available one past its validity is expired
    whether or not the sweep has marked it yet."""
    if coupon.status == "available" and coupon.valid_until <= now:
        return "expired"
    return coupon.status


def wallet(
    merchant_id: int,
    member_id: int,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> Page:
    """The member's coupons, newest first, each with its template; filtered by the status members
    see (`wallet_status`)."""
    now = now or utcnow()
    query = (
        select(Coupon)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.merchant_id == merchant_id, Coupon.member_id == member_id)
    )
    if status == "available":
        query = query.where(Coupon.status == "available", Coupon.valid_until > now)
    elif status == "expired":
        query = query.where(
            or_(Coupon.status == "expired", and_(Coupon.status == "available", Coupon.valid_until <= now))
        )
    elif status:
        query = query.where(Coupon.status == status)
    page = keyset_page(query, [Coupon.id], cursor=cursor, limit=limit)
    templates = _templates_of(page.items)
    items = [coupon_view(c, templates[c.template_id], now) for c in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


def _templates_of(coupons: Collection[Coupon]) -> dict[int, CouponTemplate]:
    ids = {c.template_id for c in coupons}
    if not ids:
        return {}
    rows = db.session.execute(select(CouponTemplate).where(CouponTemplate.id.in_(ids))).scalars().all()
    return {t.id: t for t in rows}


def coupon_view(coupon: Coupon, template: CouponTemplate, now: datetime) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "template_id": template.id,
        "status": wallet_status(coupon, now),
        "valid_from": coupon.valid_from,
        "valid_until": coupon.valid_until,
        "channel": coupon.channel,
        "claimed_at": coupon.claimed_at,
        "used_at": coupon.used_at,
        "order_id": coupon.order_id,
        "template": template,
    }


# --- staff grants -------------------------------------------------------------------------------

MAX_GRANT = 10_000
GRANT_CHUNK = 200
GRANT_JOB = "coupons.run_grant"
GRANT_REPEAT_WINDOW = timedelta(minutes=10)


def create_grant(
    merchant_id: int, template_id: int, member_ids: Collection[int], *, staff_id: int | None = None, note: str = ""
) -> CouponGrant:
    """Record a grant of the template to `member_ids` (1 to MAX_GRANT members of the merchant;
    repeats count once) and ask for the job that issues it, after the commit. The same grant (the
    template, the same members) sent again within GRANT_REPEAT_WINDOW answers the first one: a
    double click or a retried request does not give everyone two coupons. The template's row is
    locked meanwhile, so two of them at once make one grant."""
    wanted = list(dict.fromkeys(member_ids))
    if not wanted:
        raise _invalid({"member_ids": ["name at least one member"]})
    if len(wanted) > MAX_GRANT:
        raise _invalid({"member_ids": [f"at most {MAX_GRANT} members per grant"]})
    try:
        template = get_template(merchant_id, template_id, lock=True)
    except NotFound:
        raise _invalid({"template_id": ["not found"]}) from None
    now = utcnow()
    earlier = db.session.execute(
        select(CouponGrant)
        .where(
            CouponGrant.merchant_id == merchant_id,
            CouponGrant.template_id == template_id,
            CouponGrant.created_at > now - GRANT_REPEAT_WINDOW,
            CouponGrant.member_ids == wanted,
        )
        .order_by(CouponGrant.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if earlier is not None:
        return earlier
    unknown = _unknown_ids(merchant_id, Member, "member_ids", wanted)
    if unknown:
        raise InvalidInput(
            "some of those are not members of this shop", code="validation_error", details={"fields": unknown}
        )
    reason = not_claimable_reason(template, "grant", now)
    if reason is not None:
        raise _not_claimable(_REASON_TEXT[reason], reason)
    grant = CouponGrant(
        merchant_id=merchant_id,
        template_id=template_id,
        staff_id=staff_id,
        member_ids=wanted,
        note=note,
        total=len(wanted),
    )
    db.session.add(grant)
    db.session.flush()
    enqueue(GRANT_JOB, grant.id, job_id=f"coupon-grant-{grant.id}")
    return grant


def get_grant(merchant_id: int, grant_id: int) -> CouponGrant:
    grant = db.session.get(CouponGrant, grant_id)
    if grant is None or grant.merchant_id != merchant_id:
        raise NotFound("grant not found")
    return grant


def run_grant_chunk(grant_id: int, *, now: datetime | None = None) -> bool:
    """Issue the next chunk of a grant (the grant row locked, so two workers never run one grant's
    chunk together); True while members are left. A member who got the grant's coupon already (a
    chunk replayed after a crash) is counted once."""
    now = now or utcnow()
    grant = db.session.execute(locked(select(CouponGrant).where(CouponGrant.id == grant_id))).scalar_one_or_none()
    if grant is None or grant.status == "done":
        return False
    chunk = grant.member_ids[grant.processed : grant.processed + GRANT_CHUNK]
    source = f"grant:{grant.id}"
    holding = set(  # a chunk run again after a crash: these got theirs the first time
        db.session.execute(
            select(Coupon.member_id).where(
                Coupon.merchant_id == grant.merchant_id, Coupon.member_id.in_(chunk), Coupon.source_ref == source
            )
        ).scalars()
    )
    skipped = dict(grant.skipped)
    issued = 0
    sold_out = False
    for member_id in chunk:
        if member_id in holding:
            issued += 1
            continue
        reason = "sold_out" if sold_out else None
        if reason is None:
            try:
                with db.session.begin_nested():
                    issue(
                        grant.merchant_id,
                        member_id,
                        grant.template_id,
                        channel="grant",
                        source_ref=source,
                        now=now,
                    )
                issued += 1
            except NotFound:
                reason = "member_gone"
            except Conflict as refused:
                reason = "sold_out" if refused.code == "coupon_sold_out" else "not_claimable"
                sold_out = reason == "sold_out"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    grant.processed += len(chunk)
    grant.issued += issued
    grant.skipped = skipped
    if grant.processed >= grant.total:
        grant.status = "done"
        grant.finished_at = now
    db.session.flush()
    return grant.status != "done"


def pending_grants(older_than: timedelta = timedelta(minutes=2)) -> Select:
    """Grants whose job is late or was lost (for the sweep)."""
    return (
        select(CouponGrant.id)
        .where(CouponGrant.status == "pending", CouponGrant.created_at < utcnow() - older_than)
        .order_by(CouponGrant.created_at)
    )


# --- expiry, reminders, birthdays ---------------------------------------------------------------

EXPIRE_BATCH = 5000
REMIND_BATCH = 500
REMIND_BEFORE = timedelta(hours=24)
REMINDER_KIND = "coupon.expiring"


def expire_due(*, now: datetime | None = None, batch: int = EXPIRE_BATCH) -> int:
    """Mark available coupons past their validity expired (at most `batch`; rows another
    transaction holds are left for the next run). The wallet and checkout treat them as expired
    already; this makes the tables and the staff numbers say so too."""
    now = now or utcnow()
    due = (
        select(Coupon.id)
        .where(Coupon.status == "available", Coupon.valid_until <= now)
        .order_by(Coupon.valid_until)
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return db.session.execute(
        update(Coupon)
        .where(Coupon.id.in_(due), Coupon.status == "available")
        .values(status="expired")
        .execution_options(synchronize_session=False)
    ).rowcount


def remind_expiring(*, now: datetime | None = None, batch: int = REMIND_BATCH) -> int:
    """One reminder per available coupon expiring within REMIND_BEFORE, into the notification
    outbox (its dedupe key is the coupon's, so a reminder is stored once whatever the retries)."""
    now = now or utcnow()
    rows = db.session.execute(
        select(Coupon.id, Coupon.merchant_id, Coupon.member_id, Coupon.valid_until, CouponTemplate.name)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(
            Coupon.status == "available",
            Coupon.reminded_at.is_(None),
            Coupon.valid_until > now,
            Coupon.valid_until <= now + REMIND_BEFORE,
        )
        .order_by(Coupon.valid_until)
        .limit(batch)
        .with_for_update(of=Coupon, skip_locked=True)
    ).all()
    for row in rows:
        queue_notification(
            row.merchant_id,
            row.member_id,
            kind=REMINDER_KIND,
            payload={"coupon_id": row.id, "name": row.name, "valid_until": row.valid_until.isoformat()},
            dedupe_key=f"coupon-expiring:{row.id}",
        )
    if rows:
        db.session.execute(
            update(Coupon)
            .where(Coupon.id.in_([row.id for row in rows]))
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(rows)


def birthdays_due(now: datetime, *, after: tuple[int, int] = (0, 0), batch: int = 500) -> list[tuple[int, int, int]]:
    """(merchant, template, member) for members whose birthday is today in China (29 February
    counts on 28 February in other years) and who have not had this year's coupon of an active
    birthday template, after the (template, member) pair `after`."""
    today = now.astimezone(CHINA).date()
    source = func.concat("birthday:", CouponTemplate.id, ":", today.year)
    month, day = func.extract("month", Member.birthday), func.extract("day", Member.birthday)
    on_day = and_(month == today.month, day == today.day)
    if today.month == 2 and today.day == 28 and not _leap(today.year):
        on_day = or_(on_day, and_(month == 2, day == 29))
    rows = db.session.execute(
        select(CouponTemplate.merchant_id, CouponTemplate.id, Member.id)
        .join(Member, Member.merchant_id == CouponTemplate.merchant_id)
        .where(
            CouponTemplate.status == "active",
            CouponTemplate.channels.contains(["birthday"]),
            Member.birthday.is_not(None),
            on_day,
            func.row(CouponTemplate.id, Member.id) > func.row(*after),
            ~exists().where(
                Coupon.merchant_id == CouponTemplate.merchant_id,
                Coupon.member_id == Member.id,
                Coupon.source_ref == source,
            ),
        )
        .order_by(CouponTemplate.id, Member.id)
        .limit(batch)
    ).all()
    return [tuple(row) for row in rows]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_source(now: datetime, template_id: int) -> str:
    return f"birthday:{template_id}:{now.astimezone(CHINA).year}"


# --- staff numbers ------------------------------------------------------------------------------


def template_stats(merchant_id: int, template_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Issued, held, locked, used and expired coupons of the template; the discount its used
    coupons gave; the orders that used them and their sales (paid less refunded), in fen."""
    now = now or utcnow()
    template = get_template(merchant_id, template_id)
    counts = db.session.execute(
        select(
            func.count().filter(Coupon.status == "available", Coupon.valid_until > now),
            func.count().filter(Coupon.status == "locked"),
            func.count().filter(Coupon.status == "used"),
            func.count().filter(
                or_(Coupon.status == "expired", and_(Coupon.status == "available", Coupon.valid_until <= now))
            ),
        ).where(Coupon.template_id == template_id)
    ).one()
    used = (
        select(Coupon.id, Coupon.order_id).where(Coupon.template_id == template_id, Coupon.status == "used").subquery()
    )
    discount = db.session.execute(
        select(func.coalesce(func.sum(OrderAdjustment.amount), 0))
        .join(used, used.c.order_id == OrderAdjustment.order_id)
        .where(OrderAdjustment.source == "coupons", OrderAdjustment.reference == func.cast(used.c.id, String))
    ).scalar_one()
    orders, sales = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Order.paid_total - Order.refunded_total), 0)).where(
            Order.id.in_(select(used.c.order_id))
        )
    ).one()
    return {
        "template_id": template.id,
        "total_quantity": template.total_quantity,
        "issued": template.issued,
        "available": counts[0],
        "locked": counts[1],
        "used": counts[2],
        "expired": counts[3],
        "discount_given": int(discount),
        "orders": orders,
        "sales": int(sales),
    }
