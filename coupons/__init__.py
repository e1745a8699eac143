"""Coupon templates, wallets, pricing adjustments at checkout, campaigns (built on `shop`)."""
