"""Background work of the payments package: keeping platform certificates current.

WeChat Pay replaces a platform certificate from time to time: the new one is listed by
`/v3/certificates` before it is used, and the old one's expire time is moved forward. WeChat's
advice is to download the list at least every 12 hours; the sweep does so for every merchant that
verifies with certificates (no valid WeChat Pay public key). Each refresh reads the account in one
transaction, calls WeChat Pay with none open, and records the answer in a second one.
"""

from __future__ import annotations

import logging

from shop.db import db, transaction
from shop.models import Merchant
from shop.payments import accounts, payment_provider
from shop.payments.providers import WeChatPayProvider
from shop.runner import register_sweep

CERTIFICATE_REFRESH_EVERY = 12 * 3600  # seconds
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
    with transaction():
        due = accounts.certificate_mode_merchant_ids()
    done = 0
    for merchant_id in due:
        try:
            outcomes = refresh_platform_certificates(merchant_id)
        except Exception:
            log.exception("merchant %s: refreshing platform certificates failed; next sweep retries", merchant_id)
            continue
        done += 1
        if any(outcome != "unchanged" for outcome in outcomes.values()):
            log.info("merchant %s platform certificates: %s", merchant_id, outcomes)
    return done


register_sweep(sweep_platform_certificates, CERTIFICATE_REFRESH_EVERY)
