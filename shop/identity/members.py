"""Members: log in from the mini-program with a `wx.login` code, read and edit their profile."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db, transaction, utcnow
from shop.core.errors import NotFound
from shop.core.events import MemberJoined, bus
from shop.identity.merchants import get_active_merchant_by_code
from shop.identity.models import Member, Merchant
from shop.identity.wechat import WeChatAuth, WxSession


@dataclass(frozen=True)
class Login:
    member: Member
    created: bool


def login_with_wx_code(merchant_code: str, code: str, wechat: WeChatAuth, *, channel: str = "organic") -> Login:
    """Exchange the code for an openid and find or create the member, race-free.

    Two first launches at once (a real pattern: the mini-program retries) create one member; the
    `member_joined` event fires exactly once, for the request that created it.

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
        return _log_in(get_active_merchant_by_code(merchant_code), session, channel)


def _log_in(merchant: Merchant, session: WxSession, channel: str) -> Login:
    now = utcnow()
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
            created_at=now,
            last_login_at=now,
        )
        .on_conflict_do_nothing(index_elements=["merchant_id", "openid"])
        .returning(Member.id)
    ).scalar_one_or_none()
    member = db.session.execute(
        select(Member).where(Member.merchant_id == merchant.id, Member.openid == session.openid)
    ).scalar_one()
    if inserted is None:
        member.session_key = session.session_key
        member.last_login_at = now
        if session.unionid:
            member.unionid = session.unionid
    db.session.flush()
    if inserted is not None:
        bus.publish(MemberJoined(merchant_id=merchant.id, member_id=member.id, channel=channel))
    return Login(member=member, created=inserted is not None)


def get_member(merchant_id: int, member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.merchant_id != merchant_id:
        raise NotFound("member not found")
    return member


def update_profile(merchant_id: int, member_id: int, *, nickname: str | None, avatar_url: str | None) -> Member:
    member = get_member(merchant_id, member_id)
    if nickname is not None:
        member.nickname = nickname
    if avatar_url is not None:
        member.avatar_url = avatar_url
    db.session.flush()
    return member
