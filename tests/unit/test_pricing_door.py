"""The pricing door without a database: the adjusters' explicit order and idempotent registration,
the running paid amounts each adjuster sees, the spread of a discount to the fen, and the
free-shipping threshold on the paid goods amount."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shop.checkout import pricing
from shop.checkout.pricing import (
    DEFAULT_ADJUSTER_ORDER,
    AdjusterResult,
    Adjustment,
    Offer,
    PricedLine,
    PricingContext,
    apply_adjusters,
    register_adjuster,
    registered_adjusters,
    unregister_adjuster,
)
from shop.identity.models import MerchantSettings

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_adjusters() -> Iterator[None]:
    """Each test starts with no adjusters and leaves none behind."""
    saved = dict(pricing._registered)
    for name in list(saved):
        unregister_adjuster(name)
    try:
        yield
    finally:
        for name in list(pricing._registered):
            unregister_adjuster(name)
        for rank, adjuster in saved.values():
            register_adjuster(adjuster, order=rank)


class Fixed:
    """Takes `amount` off the goods (all lines, or `sku_ids`); records what it saw."""

    def __init__(self, name: str, amount: int = 0, *, order: int | None = None, sku_ids=None, shipping: int = 0):
        self.name, self.amount, self.sku_ids, self.shipping = name, amount, sku_ids, shipping
        if order is not None:
            self.order = order
        self.seen: list[dict] = []

    def adjust(self, context: PricingContext):
        self.seen.append(
            {
                "paid": [line.paid_amount for line in context.lines],
                "paid_total": context.paid_goods_total,
                "goods_total": context.goods_total,
                "fee": context.shipping_fee,
            }
        )
        adjustments = []
        if self.amount:
            ids = None if self.sku_ids is None else frozenset(self.sku_ids)
            adjustments.append(Adjustment(source=self.name, kind="goods", amount=self.amount, sku_ids=ids))
        if self.shipping:
            adjustments.append(Adjustment(source=self.name, kind="shipping", amount=self.shipping))
        return adjustments


class Threshold:
    """满 `over` 减 `off`, on the paid amounts of the lines as they stand when it is asked."""

    name = "threshold"

    def __init__(self, over: int, off: int, order: int) -> None:
        self.over, self.off, self.order = over, off, order

    def adjust(self, context: PricingContext) -> AdjusterResult:
        paid = context.paid_goods_total
        if paid < self.over:
            return AdjusterResult(options=[{"applicable": False, "missing": self.over - paid}])
        return AdjusterResult(
            adjustments=[Adjustment(source=self.name, kind="goods", amount=self.off)],
            options=[{"applicable": True, "discount": self.off}],
        )


def _line(sku_id: int, unit_price: int, quantity: int, offer: Offer | None = None) -> PricedLine:
    line = PricedLine(
        sku_id=sku_id,
        product_id=sku_id,
        category_id=None,
        title=f"sku {sku_id}",
        specs={},
        image="",
        unit_price=unit_price,
        quantity=quantity,
    )
    if offer is not None:
        line.offer, line.unit_price = offer, offer.unit_price
    return line


def _context(*lines: PricedLine, fee: int = 800, free_over: int | None = 9900, fulfilment: str = "delivery"):
    settings = MerchantSettings(merchant_id=1, shipping_fee=fee, free_shipping_over=free_over)
    return PricingContext(
        merchant_id=1,
        member_id=2,
        lines=list(lines),
        fulfilment=fulfilment,
        selections={},
        purpose="quote",
        now=NOW,
        settings=settings,
    )


# --- registration -------------------------------------------------------------------------------


def test_adjusters_are_asked_by_their_explicit_order_then_by_name():
    register_adjuster(Fixed("zeta", order=10))
    register_adjuster(Fixed("alpha"))  # the default order
    register_adjuster(Fixed("beta", order=10))
    register_adjuster(Fixed("gamma"), order=5)  # the parameter
    assert [a.name for a in registered_adjusters()] == ["gamma", "beta", "zeta", "alpha"]
    assert DEFAULT_ADJUSTER_ORDER > 10


def test_registering_a_name_twice_keeps_one_adjuster_the_latest():
    first, second = Fixed("coupons", 100), Fixed("coupons", 200)
    register_adjuster(first)
    register_adjuster(first)
    register_adjuster(second)
    assert registered_adjusters() == [second]
    quote = apply_adjusters(_context(_line(1, 1000, 1)))
    assert [a.amount for a in quote.adjustments] == [200]  # asked once
    assert first.seen == [] and len(second.seen) == 1


def test_registering_again_with_another_order_moves_the_adjuster():
    register_adjuster(Fixed("a"), order=1)
    register_adjuster(Fixed("b"), order=2)
    register_adjuster(Fixed("a"), order=3)
    assert [a.name for a in registered_adjusters()] == ["b", "a"]


@pytest.mark.parametrize("order", ["1", 1.5, True, None])
def test_an_order_that_is_not_an_int_is_refused(order):
    adjuster = Fixed("odd")
    adjuster.order = order
    with pytest.raises(TypeError):
        register_adjuster(adjuster)
    assert registered_adjusters() == []


def test_unregistering_an_unknown_name_does_nothing():
    unregister_adjuster("nobody")
    assert registered_adjusters() == []


# --- running paid amounts -----------------------------------------------------------------------


def test_each_adjuster_sees_the_paid_amounts_after_the_ones_before_it():
    first = Fixed("first", 300, order=1)
    second = Fixed("second", 100, order=2)
    register_adjuster(second)
    register_adjuster(first)
    quote = apply_adjusters(_context(_line(1, 1000, 1), _line(2, 500, 1)))
    assert first.seen[0]["paid"] == [1000, 500]
    assert second.seen[0]["paid"] == [800, 400]  # 300 spread 2:1 before it was asked
    assert second.seen[0]["goods_total"] == 1500  # before discounts, always
    assert [line.paid_amount for line in quote.lines] == [733, 367]
    assert quote.goods_discount == 400


def test_a_threshold_is_met_on_offer_prices_and_earlier_discounts_not_list_prices():
    flash = Offer(kind="flash_sale", id=7, unit_price=6000)
    lines = (_line(1, 10000, 1, offer=flash), _line(2, 3000, 1))  # list 13000, after the offer 9000
    register_adjuster(Fixed("member-price", 500, order=10))  # then 8500
    register_adjuster(Threshold(over=9000, off=1000, order=20))
    quote = apply_adjusters(_context(*lines))
    assert quote.options["threshold"] == [{"applicable": False, "missing": 500}]
    assert quote.goods_discount == 500

    unregister_adjuster("member-price")
    quote = apply_adjusters(_context(*(_line(1, 10000, 1, offer=flash), _line(2, 3000, 1))))
    assert quote.options["threshold"] == [{"applicable": True, "discount": 1000}]
    assert quote.goods_total == 9000 and quote.goods_discount == 1000


def test_options_are_shown_only_for_adjusters_that_give_them():
    register_adjuster(Fixed("plain", 100))
    register_adjuster(Threshold(over=0, off=1, order=1))
    quote = apply_adjusters(_context(_line(1, 1000, 1)))
    assert list(quote.options) == ["threshold"]


# --- the spread to the fen ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "prices", "expected"),
    [
        (100, [(1000, 1), (1000, 1)], [50, 50]),
        (101, [(1000, 1), (333, 3)], [51, 50]),
        (1, [(1000, 1), (1000, 1), (1000, 1)], [1, 0, 0]),
        (2, [(1, 1), (1, 1), (1, 1)], [1, 1, 0]),
        (5000, [(1000, 1), (500, 2)], [1000, 1000]),  # capped at what the lines cost
        (999, [(0, 1), (999, 1)], [0, 999]),  # a free line takes nothing
    ],
)
def test_a_goods_discount_is_spread_over_the_lines_by_what_they_still_cost(amount, prices, expected):
    register_adjuster(Fixed("spread", amount))
    lines = [_line(i + 1, price, quantity) for i, (price, quantity) in enumerate(prices)]
    quote = apply_adjusters(_context(*lines))
    assert [line.discount for line in quote.lines] == expected
    assert sum(a.amount for a in quote.adjustments) == sum(expected)
    assert all(line.paid_amount >= 0 for line in quote.lines)


def test_a_discount_on_some_skus_leaves_the_others_alone():
    register_adjuster(Fixed("scoped", 300, sku_ids={2}))
    quote = apply_adjusters(_context(_line(1, 1000, 1), _line(2, 200, 1)))
    assert [line.discount for line in quote.lines] == [0, 200]


class ByPosition:
    name = "by-position"

    def adjust(self, context: PricingContext) -> list[Adjustment]:
        return [Adjustment(source=self.name, kind="goods", amount=500, sku_ids=frozenset({7}), lines=frozenset({1}))]


def test_a_discount_naming_lines_by_position_takes_one_of_two_lines_of_a_sku():
    register_adjuster(ByPosition())
    offer = Offer(kind="flash_sale", id=3, unit_price=600)
    quote = apply_adjusters(_context(_line(7, 1000, 1, offer), _line(7, 1000, 1)))
    assert [line.discount for line in quote.lines] == [0, 500]
    assert quote.adjustments[0].lines == {1}


# --- shipping -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goods_discount", "shipping_discount", "fee", "shipping_off"),
    [
        (0, 0, 0, 0),  # 10000 >= 9900: free
        (100, 0, 0, 0),  # 9900 paid: still free
        (101, 0, 800, 0),  # 9899 paid: the discount costs the free shipping
        (101, 300, 800, 300),  # a shipping discount on the fee that came back
        (101, 5000, 800, 800),  # never more than the fee
        (0, 300, 0, 0),  # nothing to take off a free shipping
    ],
)
def test_free_shipping_is_met_on_the_paid_goods_amount(goods_discount, shipping_discount, fee, shipping_off):
    register_adjuster(Fixed("coupon", goods_discount, shipping=shipping_discount))
    quote = apply_adjusters(_context(_line(1, 10000, 1)))
    assert (quote.shipping_fee, quote.shipping_discount) == (fee, shipping_off)
    assert quote.payable_total == 10000 - goods_discount + fee - shipping_off


def test_the_free_shipping_threshold_counts_offer_prices_not_list_prices():
    quote = apply_adjusters(_context(_line(1, 10000, 1, offer=Offer(kind="group_buy", id=1, unit_price=5000))))
    assert (quote.goods_total, quote.shipping_fee, quote.payable_total) == (5000, 800, 5800)


def test_an_adjuster_sees_the_fee_as_it_stands_and_the_full_fee_it_could_take_off():
    seen = Fixed("looker")
    register_adjuster(Fixed("big", 200, order=1))
    register_adjuster(seen)
    context = _context(_line(1, 10000, 1))
    apply_adjusters(context)
    assert seen.seen[0]["fee"] == 800  # 9800 paid so far
    assert context.full_shipping_fee == 800
    assert _context(_line(1, 10000, 1), fulfilment="pickup").full_shipping_fee == 0


def test_shipping_adjustments_come_after_every_goods_adjustment_in_the_adjusters_order():
    register_adjuster(Fixed("one", 0, order=1, shipping=300))
    register_adjuster(Fixed("two", 150, order=2, shipping=700))
    quote = apply_adjusters(_context(_line(1, 1000, 1)))
    assert [(a.source, a.kind, a.amount) for a in quote.adjustments] == [
        ("two", "goods", 150),
        ("one", "shipping", 300),
        ("two", "shipping", 500),
    ]
    assert quote.payable_total == 850


def test_an_unknown_adjustment_kind_is_a_programming_error():
    class Odd:
        name = "odd"

        def adjust(self, context):
            return [Adjustment(source="odd", kind="tax", amount=1)]

    register_adjuster(Odd())
    with pytest.raises(ValueError, match="tax"):
        apply_adjusters(_context(_line(1, 1000, 1)))


def test_the_idle_condition_joins_every_adjusters_and_is_none_when_one_cannot_say():
    assert pricing.idle_condition() == "true"  # no adjuster: nothing to adjust
    quiet = Fixed("quiet")
    quiet.idle_sql = "NOT EXISTS (SELECT FROM t WHERE t.member_id = :p_member)"
    register_adjuster(quiet)
    other = Fixed("other", order=200)
    other.idle_sql = ":p_now > now()"
    register_adjuster(other)
    assert pricing.idle_condition() == (
        "(NOT EXISTS (SELECT FROM t WHERE t.member_id = :p_member)) AND (:p_now > now())"
    )
    register_adjuster(Fixed("mute", order=300))  # no idle_sql: it cannot tell
    assert pricing.idle_condition() is None
