"""A feature package for the tests: it plugs into shop the way coupons and distribution will,
through its `install()` (shop/install.py describes the pattern)."""
