"""Payments: WeChat Pay v3 and a fake that signs and encrypts like it, payment accounts, paying
for orders, acting on notifications, submitting refunds, reconciling with the provider."""
