"""Background work of coupons: the staff grant job and the sweeps (grants a lost job left, expiry
and its reminders, birthday gifts). Ids in, one service call per transaction, nothing else."""

from __future__ import annotations

import logging

from coupons import prizes, referrals, service
from shop.core.db import db, transaction, utcnow
from shop.core.errors import DomainError
from shop.core.runner import checkpoint, each_due, job, register_sweep

log = logging.getLogger(__name__)

EXPIRY_SWEEP_EVERY = 60  # seconds
BIRTHDAY_SWEEP_EVERY = 3600
GRANT_SWEEP_EVERY = 120
UPGRADE_SWEEP_EVERY = 60
REFERRAL_SWEEP_EVERY = 120
EXPIRED_UPGRADE_SWEEP_EVERY = 3600


@job(service.GRANT_JOB)
def run_grant(grant_id: int) -> None:
    """Issue a grant chunk by chunk, each chunk in its own transaction (its progress visible as it
    goes; a crash loses at most a chunk's work, which the sweep's rerun finishes once)."""
    more = True
    while more:
        with transaction():
            more = service.run_grant_chunk(grant_id)
        checkpoint("coupons.grant_chunk")


@job(prizes.UPGRADE_JOB)
def issue_upgrade(order_id: int) -> bool:
    """Give a paid upgrade's better prize and void the one it replaces (once: the database says
    whether it is done)."""
    with transaction():
        checkpoint("coupons.upgrade_started")
        done = prizes.issue_upgrade(order_id)
        checkpoint("coupons.upgrade_written")
    checkpoint("coupons.upgrade_committed")
    return done


def sweep_upgrades() -> int:
    """Paid upgrades a lost job did not issue."""
    return each_due(prizes.paid_upgrades_due(), issue_upgrade)


def close_expired_upgrade(order_id: int) -> bool:
    with transaction():
        return prizes.close_expired_upgrade(order_id)


def sweep_expired_upgrades() -> int:
    """Issued upgrades whose better gift expired unredeemed: their orders are completed."""
    return each_due(prizes.expired_upgrades_due(), close_expired_upgrade)


@job(referrals.REFERRAL_JOB)
def issue_referral(grant_id: int) -> bool:
    """Issue an earned referral reward when it is due (once: the grant's status says)."""
    with transaction():
        return referrals.issue(grant_id)


def sweep_referrals() -> int:
    """Earned referral rewards a lost job did not issue."""
    return each_due(referrals.pending_due(), issue_referral)


def sweep_grants() -> int:
    return each_due(service.pending_grants(), run_grant)


def sweep_expiry() -> tuple[int, int]:
    """Expire what is past validity and remind members of what expires within a day."""
    with transaction():
        expired = service.expire_due()
    with transaction():
        reminded = service.remind_expiring()
    return expired, reminded


def sweep_birthdays() -> int:
    """Give today's birthday members their coupon of each active birthday template (once a year,
    by the source `birthday:<template>:<year>`); a refusal (sold out, over a limit) is skipped."""
    now = utcnow()
    issued = 0
    after = (0, 0)
    while True:
        with transaction():
            due = service.birthdays_due(now, after=after)
            for merchant_id, template_id, member_id in due:
                try:
                    with db.session.begin_nested():
                        service.issue(
                            merchant_id,
                            member_id,
                            template_id,
                            channel="birthday",
                            source_ref=service.birthday_source(now, template_id),
                            now=now,
                        )
                    issued += 1
                except DomainError as refused:
                    log.info("no birthday coupon (template %s, member %s): %s", template_id, member_id, refused.code)
        if not due:
            return issued
        after = (due[-1][1], due[-1][2])


register_sweep(sweep_grants, GRANT_SWEEP_EVERY)
register_sweep(sweep_upgrades, UPGRADE_SWEEP_EVERY)
register_sweep(sweep_referrals, REFERRAL_SWEEP_EVERY)
register_sweep(sweep_expired_upgrades, EXPIRED_UPGRADE_SWEEP_EVERY)
register_sweep(sweep_expiry, EXPIRY_SWEEP_EVERY)
register_sweep(sweep_birthdays, BIRTHDAY_SWEEP_EVERY)
