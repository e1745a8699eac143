"""Members: log in from the mini-program with a `wx.login` code, read and edit their profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict, NotFound, field_error
from shop.core.events import MemberJoined, bus
from shop.identity import invite_codes, invites
from shop.identity.invites import INVITE_CHANNEL, InviteOutcome
from shop.identity.merchants import get_active_merchant_by_code
from shop.identity.models import Member, Merchant
from shop.identity.wechat import WeChatAuth, WxSession

ORGANIC = "organic"  # the channel of a member who came with no channel and no invite
CODE_ATTEMPTS = 5  # invite codes drawn before giving up (one collision in a million at a million members)

EARLIEST_BIRTHDAY = date(1900, 1, 1)
# "Not in the future" is judged by the calendar in China, where the members are.
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Login:
    member: Member
    created: bool
    invite: InviteOutcome | None = None  # None: the login named no invite


def login_with_wx_code(
    merchant_code: str,
    code: str,
    wechat: WeChatAuth,
    *,
    channel: str | None = None,
    invite: str | None = None,
) -> Login:
    """Exchange the code for an openid and find or create the member, race-free.

    Two first launches at once (a real pattern: the mini-program retries) create one member; the
    `member_joined` event fires exactly once, for the request that created it.

    `invite` is an invite code (shop.identity.invites): a new member gets its owner as their
    inviter; an existing member's open is recorded (and may bind a member on their first day). A
    code that names nobody of this merchant, or the member themself, is ignored: the login
    succeeds and `Login.invite` says why. `channel` (validated by the caller) is where the member
    came from; with none, "invite" when they came by an invite, else "organic".

    Unlike other services this one owns its transactions (as `start_payment`): the merchant's
    appid and secret are read in one, WeChat is asked with none open, and the member is found or
    created in a second, which checks the merchant again (it may have been closed meanwhile).
    """
    with transaction():
        merchant = get_active_merchant_by_code(merchant_code)
        appid, secret = merchant.wx_appid, merchant.wx_secret
    session = wechat.code2session(appid, secret, code)
    with transaction():
        db.session.expire(merchant)  # read again: it may have been closed meanwhile
        return _log_in(get_active_merchant_by_code(merchant_code), session, channel, invite)


def _log_in(merchant: Merchant, session: WxSession, channel: str | None, invite: str | None) -> Login:
    now = utcnow()
    inviter = invites.find_inviter(merchant.id, invite) if invite is not None else None
    joined_channel = channel or (INVITE_CHANNEL if inviter else ORGANIC)
    inserted, member = _insert_member(merchant, session, now, joined_channel, inviter)
    if not inserted:
        member.session_key = session.session_key  # the UPDATE locks the member's row
        member.last_login_at = now
        if session.unionid:
            member.unionid = session.unionid
    db.session.flush()
    if inserted:
        bus.publish(MemberJoined(merchant_id=merchant.id, member_id=member.id, channel=joined_channel))
    outcome = None
    if invite is not None:
        if inserted and inviter is not None:
            outcome = invites.record_first_touch(member, inviter, channel or INVITE_CHANNEL)
        else:
            outcome = invites.open_invite(member, inviter, channel or INVITE_CHANNEL, now=now)
    return Login(member=member, created=inserted, invite=outcome)


def _insert_member(
    merchant: Merchant, session: WxSession, now: datetime, channel: str, inviter: Member | None
) -> tuple[bool, Member]:
    """Insert the member unless their openid is known: (whether inserted, the member).

    ON CONFLICT DO NOTHING without a target stands aside for either unique key: the openid (the
    member exists, or a concurrent first login is creating them: it waits for that one) or the
    invite code (a collision: another code is drawn).
    """
    for _ in range(CODE_ATTEMPTS):
        inserted = db.session.execute(
            insert(Member)
            .values(
                merchant_id=merchant.id,
                openid=session.openid,
                unionid=session.unionid,
                session_key=session.session_key,
                channel=channel,
                nickname="",
                avatar_url="",
                invite_code=invite_codes.new_invite_code(),
                invited_by_id=inviter.id if inviter else None,
                created_at=now,
                last_login_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Member.id)
        ).scalar_one_or_none()
        member = db.session.execute(
            select(Member).where(Member.merchant_id == merchant.id, Member.openid == session.openid)
        ).scalar_one_or_none()
        if member is not None:
            return inserted is not None, member
    raise Conflict("could not give the member an invite code; retry", code="conflict")


def get_member(merchant_id: int, member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.merchant_id != merchant_id:
        raise NotFound("member not found")
    return member


UNCHANGED: Any = object()  # update_profile(birthday=UNCHANGED): leave it as it is (None clears it)


def birthday_problem(birthday: date, *, today: date | None = None) -> str | None:
    """What is wrong with a birthday, or None: not in the future (in China), not before 1900."""
    today = today or datetime.now(UTC).astimezone(CHINA).date()
    if birthday > today:
        return "must not be in the future"
    if birthday < EARLIEST_BIRTHDAY:
        return f"must not be before {EARLIEST_BIRTHDAY.isoformat()}"
    return None


def update_profile(
    merchant_id: int,
    member_id: int,
    *,
    nickname: str | None = None,
    avatar_url: str | None = None,
    birthday: date | None = UNCHANGED,
) -> Member:
    """Change what is given (None: unchanged), except `birthday`, which None clears."""
    if birthday is not UNCHANGED and birthday is not None:
        problem = birthday_problem(birthday)
        if problem:
            raise field_error("birthday", problem, "validation_error")
    member = get_member(merchant_id, member_id)
    if nickname is not None:
        member.nickname = nickname
    if avatar_url is not None:
        member.avatar_url = avatar_url
    if birthday is not UNCHANGED:
        member.birthday = birthday
    db.session.flush()
    return member
