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
    """Register shop's own jobs and sweeps (its rooms' jobs modules), and its offers: their
    pricing (offer resolvers) and the units they keep (orders' offer-stock door)."""
    # Importing a room's jobs module registers its jobs and sweeps.
    import shop.offers.jobs
    import shop.orders.jobs
    import shop.payments.jobs  # noqa: F401
    from shop.catalog.service import register_detail_extra
    from shop.checkout.pricing import register_offer_resolver
    from shop.core.events import OrderPaid, bus
    from shop.offers import group_buys
    from shop.offers.flash_sales import FlashSaleResolver
    from shop.offers.models import FLASH_SALE, GROUP_BUY
    from shop.offers.service import offers_on_product
    from shop.offers.stock import UnitKeeper
    from shop.orders.service import register_offer_keeper

    register_detail_extra("offers", offers_on_product)
    register_offer_resolver(FlashSaleResolver())
    register_offer_keeper(UnitKeeper(FLASH_SALE))
    register_offer_resolver(group_buys.GroupBuyResolver())
    register_offer_keeper(group_buys.GroupKeeper(GROUP_BUY))
    bus.subscribe(OrderPaid, group_buys.on_order_paid)
