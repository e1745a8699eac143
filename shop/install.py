"""Shop's own `install()`, the pattern every feature package follows.

`api.create_app` calls `shop.install.install()`, then `install()` of each feature package it is
configured with (FEATURE_PACKAGES: `coupons`, `distribution`, ...), each from the package's
`install` module. A package's install:

- subscribes its event handlers (`shop.core.events.bus.subscribe`);
- registers its pricing adjuster (`shop.checkout.pricing.register_adjuster`, with its `order`);
- imports its jobs module, so its jobs (`shop.core.runner.job`) and sweeps (`register_sweep`)
  are registered in this process (the API enqueues them, the worker and cron run them);
- registers its demo data for `seed-demo` (`shop.demo.register_demo`).

All of these registries are process-wide and idempotent, so install may run any number of times
(each `create_app` runs it: tests make several apps) and leaves one of each.
"""

from __future__ import annotations


def install() -> None:
    """Register shop's own jobs and sweeps (its rooms' jobs modules)."""
    # Importing a room's jobs module registers its jobs and sweeps.
    import shop.orders.jobs
    import shop.payments.jobs  # noqa: F401
