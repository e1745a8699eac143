"""Checkout: the cart and the pricing door (quotes, adjusters). Imports core, identity, catalog."""
