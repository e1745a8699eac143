"""Background jobs of payments: thin wrappers (ids in, the provider from the app, one service
call) for reconciling orders with the provider and paying refunds back, their sweeps, and
keeping platform certificates current.

WeChat Pay replaces a platform certificate from time to time: the new one is listed by
`/v3/certificates` before it is used, and the old one's expire time is moved forward. WeChat's
advice is to download the list at least every 12 hours; the sweep does so for every merchant that
verifies with certificates (no valid WeChat Pay public key). Each refresh reads the account in one
transaction, calls WeChat Pay with none open, and records the answer in a second one.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from shop.core.db import db, transaction, utcnow
from shop.core.runner import each_due, job, register_sweep
from shop.identity.models import Merchant
from shop.orders.models import Order, Refund
from shop.orders.refunds import SUBMIT_REFUND_JOB
from shop.orders.service import CLOSE_PAYMENT_JOB
from shop.payments import accounts, fake_notify, reconcile, refunds
from shop.payments.providers import FAKE_REFUND_NOTIFICATION_JOB, WeChatPayProvider, payment_provider

CERTIFICATE_REFRESH_EVERY = 12 * 3600  # seconds
EXPIRE_ORDER_JOB = "payments.expire_order"
# Unpaid orders are expired by this sweep alone (no delayed job per order): an order is cancelled
# and its stock released within about this many seconds of its `expires_at` (plus the queue's
# wait), read through the index on (status, expires_at).
EXPIRY_SWEEP_EVERY = 10
log = logging.getLogger(__name__)


def refresh_platform_certificates(merchant_id: int) -> dict[str, str]:
    """Download the merchant's platform certificates and store them; each serial's outcome
    (added, updated, unchanged, conflict). Nothing to do with the fake provider."""
    provider = payment_provider()
    if not isinstance(provider, WeChatPayProvider):
        return {}
    with transaction():
        merchant = db.session.get(Merchant, merchant_id)
        if merchant is None:
            return {}
        account = provider.account(merchant)
    certificates = provider.client.fetch_certificates(account)
    with transaction():
        return accounts.store_platform_certificates(merchant_id, certificates)


def sweep_platform_certificates() -> int:
    """Refresh every merchant in certificate mode; one that fails is logged and tried next time."""
    if not isinstance(payment_provider(), WeChatPayProvider):
        return 0
    return each_due(accounts.certificate_mode_merchants(), _refresh_and_log, all_due=True)


def _refresh_and_log(merchant_id: int) -> None:
    outcomes = refresh_platform_certificates(merchant_id)
    if any(outcome != "unchanged" for outcome in outcomes.values()):
        log.info("merchant %s platform certificates: %s", merchant_id, outcomes)


# How far back the close sweep looks: an order can be paid at most until its expiry, a day at most.
CLOSE_SWEEP_WINDOW = timedelta(days=1, hours=1)


@job(EXPIRE_ORDER_JOB)
def expire_order(order_id: int) -> str:
    return reconcile.expire_order(payment_provider(), order_id)


@job(CLOSE_PAYMENT_JOB)
def close_payment(order_id: int) -> str:
    return reconcile.close_payment(payment_provider(), order_id)


@job(SUBMIT_REFUND_JOB)
def submit_refund(refund_id: int) -> str:
    """The service owns its transactions: the provider is called between them."""
    return refunds.submit_refund(payment_provider(), refund_id)


@job(FAKE_REFUND_NOTIFICATION_JOB)
def fake_refund_notification(out_refund_no: str) -> str:
    return fake_notify.deliver_refund_notification(payment_provider(), out_refund_no)


def sweep_expired_orders() -> int:
    """Expire the unpaid orders past their `expires_at`, oldest first: first those whose payment
    never started (no prepay: nothing to ask the provider, so a slow or unreachable provider
    cannot hold their stock), then those the provider is asked about (one paid at the last moment
    is marked paid, not cancelled; one it cannot answer for stays due and is tried again)."""
    due = (Order.status == "pending_payment", Order.expires_at < utcnow())
    order = (Order.expires_at, Order.id)
    never_paying = each_due(select(Order.id).where(*due, Order.prepay_id.is_(None)).order_by(*order), expire_order)
    asked = each_due(select(Order.id).where(*due, Order.prepay_id.is_not(None)).order_by(*order), expire_order)
    return never_paying + asked


def sweep_unclosed_payments() -> int:
    """Cancelled orders with a prepay whose close at the provider is not known to have happened
    (its job was lost), cancelled a few minutes to a day ago: WeChat refuses a payment after the
    order's expiry (at most a day), and one made before it is found by the close."""
    now = utcnow()
    return each_due(
        select(Order.id)
        .where(
            Order.status == "cancelled",
            Order.prepay_id.is_not(None),
            Order.provider_closed_at.is_(None),
            Order.cancelled_at > now - CLOSE_SWEEP_WINDOW,
            Order.cancelled_at < now - timedelta(minutes=5),
        )
        .order_by(Order.cancelled_at, Order.id),
        close_payment,
    )


def sweep_refunds() -> int:
    """Submit again the refunds the provider has not settled after a while (out_refund_no makes
    it safe); abnormal ones wait for the merchant, not for a retry."""
    return each_due(
        select(Refund.id)
        .where(Refund.status == "processing", Refund.created_at < utcnow() - timedelta(minutes=10))
        .order_by(Refund.id),
        submit_refund,
    )


register_sweep(sweep_expired_orders, EXPIRY_SWEEP_EVERY)
register_sweep(sweep_unclosed_payments, 600)
register_sweep(sweep_refunds, 600)
register_sweep(sweep_platform_certificates, CERTIFICATE_REFRESH_EVERY)
