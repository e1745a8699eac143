"""What coupons do when shop's events say an order or a member changed (subscribed by
`coupons.install`; each runs inside the transaction that made the change).

- `order_placed`: lock each coupon the order used (available -> locked, naming the order) with one
  guarded UPDATE; one that another order locked first (or that expired meanwhile) vetoes the
  placement with 409 `coupon_unavailable`, rolling it all back. The coupon rows are the last lock
  a placement takes (after its SKUs).
- `order_paid`: the order's locked coupons are used.
- `order_cancelled` (by the member, the merchant or expiry): its locked coupons are given back,
  or expire if their validity has passed meanwhile.
- `order_refunded` leaving the whole order refunded: its used coupons are given back likewise; a
  partial refund keeps them used.
- `order_paid` of a goods order also gives the entries of running `per_order` campaigns; of a
  `prize_upgrade` order, it asks for the upgrade job (`coupons.issue_upgrade`, job id
  `upgrade-<order>`), which gives the better prize after this transaction commits.
- `order_cancelled` / `order_refunded` of a `prize_upgrade` order release the upgrade (the held
  gift back, the better one voided, the quota returned); a goods order fully refunded withdraws
  its campaign entries not drawn yet and voids the unredeemed gifts its drawn entries won (pay,
  draw, refund wins nothing).
- `group_joined`: the entries of running `per_group` campaigns; `group_failed` withdraws the
  group's entries not drawn yet.
- `member_invited` (a first login through an invite), `inviter_recorded` and `order_completed` (an invitee's first
  paid goods order, final): the inviter earns the referral rewards (`coupons.referrals`), issued
  by a job after the commit.
- `member_joined`: the welcome gift (引流礼品), one coupon of each active template offered on
  first login; a template sold out or not for this member is skipped, and the login goes on.

Coupons ignore orders whose `kind` is not `goods`.
"""

from __future__ import annotations

import logging

from sqlalchemy import case, select, update

from coupons import campaigns, prizes, referrals, service
from coupons.checkout import coupon_ids
from coupons.models import Coupon, CouponTemplate
from shop.core.db import db, utcnow
from shop.core.errors import DomainError, Superseded
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
)
from shop.core.runner import enqueue

log = logging.getLogger(__name__)
GOODS = "goods"


def on_order_placed(event: OrderPlaced) -> None:
    if event.kind != GOODS:
        return
    ids = coupon_ids(event.adjustments)
    if not ids:
        return
    now = utcnow()
    taken = (
        db.session.execute(
            update(Coupon)
            .where(
                Coupon.id.in_(ids),
                Coupon.merchant_id == event.merchant_id,
                Coupon.member_id == event.member_id,
                Coupon.status == "available",
                Coupon.valid_from <= now,
                Coupon.valid_until > now,
            )
            .values(status="locked", order_id=event.order_id)
            .returning(Coupon.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    gone = sorted(set(ids) - set(taken))
    if gone:
        # Taken by another order of the member's placed at the same time (it held the row until
        # it committed): a placement whose coupons the server chose is placed again without it.
        raise Superseded(
            "a coupon of this order is no longer available",
            code="coupon_unavailable",
            details={"coupon_ids": gone},
        )


def on_order_paid(event: OrderPaid) -> None:
    if event.kind == prizes.UPGRADE_KIND:
        enqueue(prizes.UPGRADE_JOB, event.order_id, job_id=prizes.upgrade_job_id(event.order_id))
        return
    if event.kind != GOODS:
        return
    db.session.execute(
        update(Coupon)
        .where(Coupon.order_id == event.order_id, Coupon.status == "locked")
        .values(status="used", used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    goods_paid = sum(line.paid_amount for line in event.lines)
    campaigns.enter_for_order(event.merchant_id, event.member_id, event.order_id, goods_paid)


def give_back(order_id: int, status: str) -> int:
    """The order's coupons in `status` return to the wallet (expired when past their validity)."""
    now = utcnow()
    return db.session.execute(
        update(Coupon)
        .where(Coupon.order_id == order_id, Coupon.status == status)
        .values(
            status=case((Coupon.valid_until > now, "available"), else_="expired"),
            order_id=None,
            used_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def on_order_cancelled(event: OrderCancelled) -> None:
    if event.kind == GOODS:
        give_back(event.order_id, "locked")
    elif event.kind == prizes.UPGRADE_KIND:
        prizes.release_upgrade(event.order_id, refunded=False)


def on_order_refunded(event: OrderRefunded) -> None:
    if event.kind == GOODS and event.fully_refunded:
        give_back(event.order_id, "used")
        campaigns.withdraw_entries(event.merchant_id, f"order:{event.order_id}")
        campaigns.void_gifts_of_entries(event.merchant_id, f"order:{event.order_id}")
    elif event.kind == prizes.UPGRADE_KIND and event.fully_refunded:
        prizes.release_upgrade(event.order_id, refunded=True)


def on_group_joined(event: GroupJoined) -> None:
    campaigns.enter_for_group(event.merchant_id, event.member_id, event.group_id)


def on_group_failed(event: GroupFailed) -> None:
    campaigns.withdraw_entries(event.merchant_id, f"group:{event.group_id}")


def on_member_invited(event: MemberInvited) -> None:
    referrals.on_invited(event.merchant_id, event.member_id, event.inviter_id, event.new_member)


def on_inviter_recorded(event: InviterRecorded) -> None:
    referrals.on_inviter_recorded(event.merchant_id, event.member_id, event.inviter_id)


def on_order_completed(event: OrderCompleted) -> None:
    if event.kind == GOODS:
        kept = sum(line.paid_amount for line in event.lines)
        referrals.on_completed(event.merchant_id, event.member_id, event.order_id, kept)


def on_member_joined(event: MemberJoined) -> None:
    templates = (
        db.session.execute(
            select(CouponTemplate.id)
            .where(
                CouponTemplate.merchant_id == event.merchant_id,
                CouponTemplate.status == "active",
                CouponTemplate.channels.contains(["welcome"]),
            )
            .order_by(CouponTemplate.id)
        )
        .scalars()
        .all()
    )
    for template_id in templates:
        try:
            with db.session.begin_nested():
                service.issue(
                    event.merchant_id,
                    event.member_id,
                    template_id,
                    channel="welcome",
                    source_ref=f"welcome:{template_id}",
                    new_member=True,
                )
        except DomainError as refused:  # sold out, ended, over a limit: no gift, the login goes on
            log.info("no welcome coupon of template %s for member %s: %s", template_id, event.member_id, refused.code)
