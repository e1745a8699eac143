"""Invites, the base of 锁粉 (distribution binding) and 裂变 (referral rewards).

Every member has an invite code (`shop.identity.invite_codes`: the code, its format and the share
convention). A member who arrives through a code, or opens one later, is an *open* of that code:

- First touch. `members.invited_by_id` is the member whose invite brought this one: set once,
  never overwritten, never to the member themself, never into a cycle (A invited B, so B's code
  cannot make B A's inviter). It is set by the open that creates the member (a first login with
  an invite) or, for a member who logged in first and reported the invite after (the mini-program
  opened with a scene while it already had a token), by an open within `BIND_WINDOW` of the
  member joining. An older member keeps no inviter: they came by themselves.
- Every open is history. Each one is a `MemberInvite` row (merchant, inviter, invitee, channel,
  whether it created the member, whether it set the inviter, time) and publishes `member_invited`
  in the same transaction, so later rules can choose first touch (`invited_by_id`, the first row)
  or last touch (the latest row), e.g. distribution's binding that expires or that the last invite
  wins. The same member opening the same inviter's code again within `REPEAT_WINDOW` is one open
  (a retried login, a double scan, the login and `/invites/{code}/open` both reporting the one
  launch): it is not recorded twice.
- Ignored, never an error at login: an unknown code, another merchant's code (codes are looked up
  within the caller's merchant only, so the two cannot be told apart), the member's own code.
  `POST /api/v1/invites/{code}/open` answers an unknown code 404 `not_found` (like any id of
  another merchant) and the member's own code 200 with `recorded: false, reason: "self_invite"`.

Locks (shop.core.locking): an open locks the member's own row (a login already holds it), so the
opens of one member are counted one at a time; binding after the member's creation also takes the
merchant's invite-binding advisory lock, so that two bindings cannot close a cycle between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal, select, text
from sqlalchemy.orm import aliased

from shop.core.db import db, utcnow
from shop.core.errors import NotFound
from shop.core.events import InviterRecorded, MemberInvited, bus
from shop.core.locking import locked
from shop.core.pagination import Page, keyset_page
from shop.identity.invite_codes import normalize
from shop.identity.models import Member, MemberInvite

CHANNEL_PATTERN = "[a-z0-9_]{1,32}"
CHANNEL_RULE = "1-32 characters of a-z 0-9 _ (e.g. qrcode, share_card, poster)"
INVITE_CHANNEL = "invite"  # the channel of an open that named none

BIND_WINDOW = timedelta(hours=24)
REPEAT_WINDOW = timedelta(minutes=5)

# Why an open was not recorded.
NOT_FOUND = "invite_not_found"  # unknown code, another merchant's, or not a code at all
SELF_INVITE = "self_invite"
REPEAT = "repeat"  # the same open, recorded moments ago

# pg_advisory_xact_lock(namespace, merchant): serializes the bindings of one merchant's members
# made after their creation (rare: a member's first day), so no two of them close a cycle.
_BIND_LOCK_NAMESPACE = 0x1417
_CHAIN_LIMIT = 10_000  # deeper than any invite chain; a bound on the walk, not a rule


@dataclass(frozen=True)
class InviteOutcome:
    recorded: bool  # a history row was written and member_invited published
    bound: bool  # this open set the member's inviter
    reason: str | None  # why it was not recorded (NOT_FOUND, SELF_INVITE, REPEAT)
    inviter: Member | None  # who shared the code (None when the code named nobody to show)


def find_inviter(merchant_id: int, code: str | None) -> Member | None:
    """The member of this merchant whose code this is; None for anything else."""
    normalized = normalize(code) if code else None
    if normalized is None:
        return None
    return db.session.execute(
        select(Member).where(Member.merchant_id == merchant_id, Member.invite_code == normalized)
    ).scalar_one_or_none()


def record_first_touch(member: Member, inviter: Member, channel: str) -> InviteOutcome:
    """The open that created `member`, already inserted with `invited_by_id` = the inviter."""
    _record(member, inviter, channel, new_member=True, bound=True)
    return InviteOutcome(recorded=True, bound=True, reason=None, inviter=inviter)


def open_invite(member: Member, inviter: Member | None, channel: str, *, now: datetime | None = None) -> InviteOutcome:
    """An open of `inviter`'s code by an existing member (`inviter` None: the code named nobody)."""
    if inviter is None or inviter.merchant_id != member.merchant_id:
        return InviteOutcome(recorded=False, bound=False, reason=NOT_FOUND, inviter=None)
    if inviter.id == member.id:
        return InviteOutcome(recorded=False, bound=False, reason=SELF_INVITE, inviter=None)
    now = now or utcnow()
    # The member's own row, locked: their opens are counted one at a time (a login holds it already).
    member = db.session.execute(locked(select(Member).where(Member.id == member.id))).scalar_one()
    last = db.session.execute(
        select(MemberInvite).where(MemberInvite.invitee_id == member.id).order_by(MemberInvite.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last is not None and last.inviter_id == inviter.id and now - last.created_at < REPEAT_WINDOW:
        return InviteOutcome(recorded=False, bound=False, reason=REPEAT, inviter=inviter)
    bound = _bind(member, inviter, now)
    _record(member, inviter, channel, new_member=False, bound=bound)
    return InviteOutcome(recorded=True, bound=bound, reason=None, inviter=inviter)


def open_code(merchant_id: int, member_id: int, code: str, channel: str | None) -> InviteOutcome:
    """`POST /api/v1/invites/{code}/open`: a logged-in member opened the mini-program with a code."""
    member = db.session.get(Member, member_id)
    if member is None or member.merchant_id != merchant_id:
        raise NotFound("member not found")
    inviter = find_inviter(merchant_id, code)
    if inviter is None:
        raise NotFound("no such invite code")
    return open_invite(member, inviter, channel or INVITE_CHANNEL)


def invitees_page(merchant_id: int, member_id: int, *, cursor: str | None, limit: int) -> Page:
    """The members `member_id` invited (their first touch), newest first."""
    query = select(Member).where(Member.merchant_id == merchant_id, Member.invited_by_id == member_id)
    return keyset_page(query, [Member.id], cursor=cursor, limit=limit)


def _bind(member: Member, inviter: Member, now: datetime) -> bool:
    """Set the member's inviter after their creation, if they have none and are new enough."""
    if member.invited_by_id is not None or now - member.created_at > BIND_WINDOW:
        return False
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, CAST(:merchant AS integer))"),
        {"namespace": _BIND_LOCK_NAMESPACE, "merchant": member.merchant_id % 2**31},
    )
    if _in_chain_above(inviter.id, member.id):
        return False  # the inviter was invited (maybe indirectly) by this member: no cycles
    member.invited_by_id = inviter.id
    return True


def _in_chain_above(start_id: int, wanted_id: int) -> bool:
    """Whether `wanted_id` is `start_id` or one of its inviters, their inviters, and so on."""
    up = select(Member.id, Member.invited_by_id, literal(1).label("depth")).where(Member.id == start_id)
    up = up.cte("up", recursive=True)
    parent = aliased(Member)
    up = up.union_all(
        select(parent.id, parent.invited_by_id, up.c.depth + 1).where(
            parent.id == up.c.invited_by_id, up.c.depth < _CHAIN_LIMIT
        )
    )
    found = db.session.execute(select(func.count()).select_from(up).where(up.c.id == wanted_id)).scalar_one()
    return found > 0


def _record(member: Member, inviter: Member, channel: str, *, new_member: bool, bound: bool) -> None:
    db.session.add(
        MemberInvite(
            merchant_id=member.merchant_id,
            inviter_id=inviter.id,
            invitee_id=member.id,
            channel=channel,
            new_member=new_member,
            bound=bound,
        )
    )
    db.session.flush()
    bus.publish(
        MemberInvited(merchant_id=member.merchant_id, member_id=member.id, inviter_id=inviter.id, new_member=new_member)
    )
    if bound:
        bus.publish(InviterRecorded(merchant_id=member.merchant_id, member_id=member.id, inviter_id=inviter.id))
