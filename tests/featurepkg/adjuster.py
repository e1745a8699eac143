"""The test package's pricing adjuster: 1 yuan off the goods of every order."""

from __future__ import annotations

from collections.abc import Sequence

from shop.checkout.pricing import Adjustment, PricingContext

DISCOUNT = 100


class MemberDiscount:
    name = "featurepkg"

    def adjust(self, context: PricingContext) -> Sequence[Adjustment]:
        return [Adjustment(source=self.name, kind="goods", amount=DISCOUNT, description="会员立减")]
