"""The test package's jobs: welcome a member (by name, through the runner), and a sweep that
welcomes whoever a lost job missed."""

from __future__ import annotations

from sqlalchemy import select, update

from shop.core.db import db, transaction
from shop.core.runner import each_due, job
from shop.identity.models import Member

WELCOMED = "欢迎新朋友"


@job("featurepkg.welcome")
def welcome(member_id: int) -> bool:
    with transaction():
        return bool(
            db.session.execute(
                update(Member).where(Member.id == member_id, Member.nickname == "").values(nickname=WELCOMED)
            ).rowcount
        )


def sweep_unwelcomed() -> int:
    return each_due(select(Member.id).where(Member.nickname == "").order_by(Member.id), welcome)
