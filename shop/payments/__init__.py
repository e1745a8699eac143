"""Payment providers: WeChat Pay API v3 and a fake that signs and encrypts like it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from shop.payments.providers import PaymentProvider

PROVIDER_EXTENSION = "groupshop.payments"


def payment_provider() -> PaymentProvider:
    return current_app.extensions[PROVIDER_EXTENSION]
