"""coupons.rules, table-driven: what a coupon takes off an order, over which lines, or why not;
thresholds on the in-scope paid amounts, rounding down, caps, scope and exclusions, offer-priced
lines, shipping, gifts; and which coupons to use when the member did not say."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from coupons.rules import (
    ADD_GIFT_SKU,
    AMOUNT_OFF,
    FREE_SHIPPING,
    GIFT,
    NO_SHIPPING_FEE,
    NOTHING_LEFT,
    OUT_OF_SCOPE,
    PERCENT_OFF,
    SCOPE_CATEGORIES,
    SCOPE_PRODUCTS,
    THRESHOLD_NOT_MET,
    Candidate,
    Evaluation,
    Terms,
    Use,
    apply_in_turn,
    best_combination,
    evaluate,
    terms_of,
)
from shop.checkout.pricing import Offer, PricedLine


@dataclass
class Spec:
    sku: int
    product: int
    category: int | None
    price: int
    quantity: int = 1
    discount: int = 0
    offer: bool = False


def lines(*specs: Spec) -> list[PricedLine]:
    return [
        PricedLine(
            sku_id=s.sku,
            product_id=s.product,
            category_id=s.category,
            title=f"SKU {s.sku}",
            specs={},
            image="",
            unit_price=s.price,
            quantity=s.quantity,
            discount=s.discount,
            offer=Offer(kind="flash_sale", id=1, unit_price=s.price) if s.offer else None,
        )
        for s in specs
    ]


TEA = Spec(sku=11, product=1, category=100, price=6000)  # 60 yuan
CUP = Spec(sku=21, product=2, category=200, price=3000, quantity=2)  # 2 x 30 yuan
CAKE = Spec(sku=31, product=3, category=101, price=4000)  # a sub-category of 100
FLASH = Spec(sku=41, product=4, category=100, price=1000, offer=True)  # bought at a flash-sale price
ORDER = lines(TEA, CUP)  # 120 yuan
ALL = frozenset({11, 21})

CASES: list[tuple[str, Terms, list[PricedLine], int, Evaluation]] = [
    # 满减
    (
        "amount off over the threshold",
        Terms(AMOUNT_OFF, threshold=10000, amount=1000),
        ORDER,
        0,
        Evaluation(True, 1000, "goods", ALL),
    ),
    (
        "threshold met exactly",
        Terms(AMOUNT_OFF, threshold=12000, amount=1000),
        ORDER,
        0,
        Evaluation(True, 1000, "goods", ALL),
    ),
    (
        "threshold missed by the fen",
        Terms(AMOUNT_OFF, threshold=12001, amount=1000),
        ORDER,
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=1),
    ),
    (
        "threshold on paid amounts, not list prices",
        Terms(AMOUNT_OFF, threshold=12000, amount=1000),
        lines(Spec(11, 1, 100, 6000, discount=500), CUP),
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=500),
    ),
    (
        "never more than the in-scope lines cost",
        Terms(AMOUNT_OFF, amount=50000),
        ORDER,
        0,
        Evaluation(True, 12000, "goods", ALL),
    ),
    # scope
    (
        "products scope: threshold on those lines only",
        Terms(AMOUNT_OFF, threshold=7000, amount=500, scope=SCOPE_PRODUCTS, scope_ids=frozenset({1})),
        ORDER,
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=1000),
    ),
    (
        "products scope: spread over those lines only",
        Terms(AMOUNT_OFF, threshold=6000, amount=500, scope=SCOPE_PRODUCTS, scope_ids=frozenset({1})),
        ORDER,
        0,
        Evaluation(True, 500, "goods", frozenset({11})),
    ),
    (
        "categories scope",
        Terms(AMOUNT_OFF, amount=500, scope=SCOPE_CATEGORIES, scope_ids=frozenset({200})),
        ORDER,
        0,
        Evaluation(True, 500, "goods", frozenset({21})),
    ),
    (
        "an excluded product does not count",
        Terms(AMOUNT_OFF, threshold=12000, amount=500, excluded_product_ids=frozenset({2})),
        ORDER,
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=6000),
    ),
    (
        "nothing in scope",
        Terms(AMOUNT_OFF, amount=500, scope=SCOPE_PRODUCTS, scope_ids=frozenset({9})),
        ORDER,
        0,
        Evaluation(False, reason=OUT_OF_SCOPE),
    ),
    (
        "offer-priced lines do not count by default",
        Terms(AMOUNT_OFF, amount=300),
        lines(FLASH),
        0,
        Evaluation(False, reason=OUT_OF_SCOPE),
    ),
    (
        "offer-priced lines count when the template says so",
        Terms(AMOUNT_OFF, amount=300, offer_lines=True),
        lines(FLASH),
        0,
        Evaluation(True, 300, "goods", frozenset({41})),
    ),
    (
        "an offer line beside others: left out of the threshold",
        Terms(AMOUNT_OFF, threshold=12500, amount=300),
        lines(TEA, CUP, FLASH),
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=500),
    ),
    # 折扣
    (
        "percent off, rounded down",
        Terms(PERCENT_OFF, rate_bp=1500),
        lines(Spec(11, 1, 100, 9999)),
        0,
        Evaluation(True, 1499, "goods", frozenset({11})),
    ),
    (
        "percent off under its cap",
        Terms(PERCENT_OFF, rate_bp=1000, cap=2000),
        ORDER,
        0,
        Evaluation(True, 1200, "goods", ALL),
    ),
    ("percent off capped", Terms(PERCENT_OFF, rate_bp=2000, cap=2000), ORDER, 0, Evaluation(True, 2000, "goods", ALL)),
    (
        "percent off over a threshold",
        Terms(PERCENT_OFF, rate_bp=1000, threshold=20000),
        ORDER,
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=8000),
    ),
    (
        "a percent that rounds to nothing",
        Terms(PERCENT_OFF, rate_bp=1),
        lines(Spec(11, 1, 100, 50)),
        0,
        Evaluation(False, reason=NOTHING_LEFT),
    ),
    # 包邮
    ("free shipping takes the fee", Terms(FREE_SHIPPING), ORDER, 800, Evaluation(True, 800, "shipping")),
    ("free shipping with no fee to take", Terms(FREE_SHIPPING), ORDER, 0, Evaluation(False, reason=NO_SHIPPING_FEE)),
    (
        "free shipping over a threshold, missed",
        Terms(FREE_SHIPPING, threshold=15000),
        ORDER,
        800,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=3000),
    ),
    # 兑换
    (
        "a gift: one unit of the SKU free",
        Terms(GIFT, gift_sku_id=21),
        ORDER,
        0,
        Evaluation(True, 3000, "goods", frozenset({21})),
    ),
    (
        "a gift whose line is already discounted: at most what it still costs",
        Terms(GIFT, gift_sku_id=11),
        lines(Spec(11, 1, 100, 6000, discount=5500)),
        0,
        Evaluation(True, 500, "goods", frozenset({11})),
    ),
    ("a gift not in the order", Terms(GIFT, gift_sku_id=99), ORDER, 0, Evaluation(False, reason=ADD_GIFT_SKU)),
    (
        "a gift bought at an offer price",
        Terms(GIFT, gift_sku_id=41),
        lines(TEA, FLASH),
        0,
        Evaluation(False, reason=ADD_GIFT_SKU),
    ),
    (
        "a gift over a threshold: the unit given away does not count",
        Terms(GIFT, gift_sku_id=21, threshold=20000),
        ORDER,
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=11000),
    ),
    (
        "满100送: 70 yuan of goods and the 30-yuan gift do not make 100",
        Terms(GIFT, gift_sku_id=21, threshold=10000),
        lines(Spec(11, 1, 100, 7000), Spec(21, 2, 200, 3000)),
        0,
        Evaluation(False, reason=THRESHOLD_NOT_MET, short_by=3000),
    ),
]


@pytest.mark.parametrize(("terms", "order", "fee", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluate(terms: Terms, order: list[PricedLine], fee: int, expected: Evaluation) -> None:
    result = evaluate(terms, order, shipping_fee=fee)
    assert replace(result, lines=frozenset()) == expected
    # the positions name exactly the lines of those SKUs (each SKU on one line here)
    assert {order[position].sku_id for position in result.lines} == set(expected.sku_ids)


def test_one_sku_on_an_offer_line_and_a_normal_line_is_discounted_on_the_normal_line_only():
    order = lines(Spec(11, 1, None, 5000, offer=True), Spec(11, 1, None, 6000))
    result = evaluate(Terms(AMOUNT_OFF, threshold=6000, amount=1000), order)
    assert (result.applicable, result.discount, result.lines) == (True, 1000, {1})
    gift = evaluate(Terms(GIFT, gift_sku_id=11), order)
    assert (gift.discount, gift.lines) == (6000, {1})
    outcome = apply_in_turn(
        [Candidate(1, 1, Terms(AMOUNT_OFF, amount=1000), False, datetime(2026, 12, 1, tzinfo=UTC))], order
    )
    assert outcome.payable == 5000 + 5000  # the offer line untouched


def test_a_category_scope_takes_the_sub_categories_once_widened():
    terms = Terms(AMOUNT_OFF, amount=500, scope=SCOPE_CATEGORIES, scope_ids=frozenset({100}))
    order = lines(TEA, CAKE)
    assert evaluate(terms, order).sku_ids == {11}
    wider = terms_of(terms, wider_scope=[101])  # the sub-categories checkout reads with the wallet
    assert wider.scope_ids == {100, 101}
    assert evaluate(wider, order).sku_ids == {11, 31}
    assert terms_of(Terms(AMOUNT_OFF, amount=1)) == Terms(AMOUNT_OFF, amount=1)


def free_over_100(goods: int) -> int:
    """The shop's shipping rule in these tests: 8 yuan, free from 100 yuan of paid goods."""
    return 0 if goods >= 10000 else 800


SOON = datetime(2026, 12, 1, tzinfo=UTC)


def coupon(
    coupon_id: int, terms: Terms, *, stackable: bool = False, template: int | None = None, days: int = 10
) -> Candidate:
    return Candidate(coupon_id, template or coupon_id, terms, stackable, SOON + timedelta(days=days))


def used(uses: list[Use]) -> list[tuple[int, int]]:
    return [(use.coupon_id, use.evaluation.discount) for use in uses]


def test_applied_in_turn_each_sees_what_the_ones_before_left():
    first = coupon(1, Terms(AMOUNT_OFF, threshold=10000, amount=2000))
    second = coupon(2, Terms(AMOUNT_OFF, threshold=10000, amount=1000))  # 120 - 20 = 100: still met
    third = coupon(3, Terms(AMOUNT_OFF, threshold=9500, amount=1000))  # 90 left: missed by 5 yuan
    outcome = apply_in_turn([first, second, third], ORDER)
    assert [(u.coupon_id, u.evaluation.applicable) for u in outcome.uses] == [(1, True), (2, True), (3, False)]
    assert outcome.uses[2].evaluation.short_by == 500
    assert outcome.payable == 12000 - 3000


def test_shipping_coupons_come_after_the_fee_the_discounted_goods_pay():
    goods = coupon(1, Terms(AMOUNT_OFF, amount=3000))
    shipping = coupon(2, Terms(FREE_SHIPPING))
    outcome = apply_in_turn([shipping, goods], ORDER, fee_for=free_over_100)  # asked in either order
    assert [(u.coupon_id, u.evaluation.discount) for u in outcome.uses] == [(1, 3000), (2, 800)]
    assert outcome.payable == 9000  # 120 - 30 = 90 of goods, which pay 8 of shipping, waived


CHOICES: list[tuple[str, list[Candidate], int, list[tuple[int, int]]]] = [
    (
        "the bigger of two that do not stack",
        [coupon(1, Terms(AMOUNT_OFF, amount=1000)), coupon(2, Terms(PERCENT_OFF, rate_bp=1000))],
        0,
        [(2, 1200)],
    ),
    (
        "stackable ones together when they take off more",
        [
            coupon(1, Terms(AMOUNT_OFF, amount=1500)),
            coupon(2, Terms(AMOUNT_OFF, amount=1000), stackable=True),
            coupon(3, Terms(AMOUNT_OFF, amount=800), stackable=True),
        ],
        0,
        [(2, 1000), (3, 800)],
    ),
    (
        "one alone when stacking takes off less",
        [
            coupon(1, Terms(AMOUNT_OFF, amount=2000)),
            coupon(2, Terms(AMOUNT_OFF, amount=1000), stackable=True),
            coupon(3, Terms(AMOUNT_OFF, amount=800), stackable=True),
        ],
        0,
        [(1, 2000)],
    ),
    (
        "a tie: the one expiring first",
        [coupon(1, Terms(AMOUNT_OFF, amount=1000), days=9), coupon(2, Terms(AMOUNT_OFF, amount=1000), days=3)],
        0,
        [(2, 1000)],
    ),
    (
        "a tie between one and two: the one",
        [
            coupon(1, Terms(AMOUNT_OFF, amount=1800)),
            coupon(2, Terms(AMOUNT_OFF, amount=1000), stackable=True),
            coupon(3, Terms(AMOUNT_OFF, amount=800), stackable=True),
        ],
        0,
        [(1, 1800)],
    ),
    (
        "two coupons of one template never together",
        [
            coupon(1, Terms(AMOUNT_OFF, amount=1000), stackable=True, template=7),
            coupon(2, Terms(AMOUNT_OFF, amount=1000), stackable=True, template=7),
        ],
        0,
        [(1, 1000)],
    ),
    (
        "a threshold the first coupon takes the order below: the second is not used",
        [
            coupon(1, Terms(AMOUNT_OFF, threshold=12000, amount=2000), stackable=True),
            coupon(2, Terms(AMOUNT_OFF, threshold=11000, amount=1000), stackable=True),
        ],
        0,
        [(1, 2000)],
    ),
    (
        "goods and shipping stack",
        [coupon(1, Terms(AMOUNT_OFF, amount=1000), stackable=True), coupon(2, Terms(FREE_SHIPPING), stackable=True)],
        800,
        [(1, 1000), (2, 800)],
    ),
    (
        "stackable in the better order: 满100减10 before 20% off takes 10 + 18",
        [
            coupon(1, Terms(PERCENT_OFF, rate_bp=2000), stackable=True),
            coupon(2, Terms(AMOUNT_OFF, threshold=10000, amount=1000), stackable=True),
        ],
        0,
        [(2, 1000), (1, 2200)],
    ),
    ("nothing applies", [coupon(1, Terms(AMOUNT_OFF, threshold=50000, amount=1000))], 0, []),
    ("an empty wallet", [], 800, []),
]


@pytest.mark.parametrize(("wallet", "fee", "expected"), [c[1:] for c in CHOICES], ids=[c[0] for c in CHOICES])
def test_best_combination(wallet: list[Candidate], fee: int, expected: list[tuple[int, int]]) -> None:
    assert used(best_combination(wallet, ORDER, shipping_fee=fee)) == expected


def test_a_goods_coupon_that_costs_the_free_shipping_is_not_the_best():
    order = lines(Spec(11, 1, 100, 10500))  # 105 yuan: ships free
    small = coupon(1, Terms(AMOUNT_OFF, amount=400))  # 101 left: still free shipping
    bigger = coupon(2, Terms(AMOUNT_OFF, amount=1000))  # 95 left: pays 8 of shipping, 103 in all
    assert used(best_combination([small, bigger], order, fee_for=free_over_100)) == [(1, 400)]
    assert used(best_combination([small, bigger], order)) == [(2, 1000)]  # with a fee that never changes


@pytest.mark.parametrize("amount", [1, 7, 999, 4001, 11112])  # the order costs 11,113
def test_a_goods_discount_spread_in_turn_adds_up_to_the_fen_on_every_line(amount: int) -> None:
    order = lines(Spec(11, 1, 100, 3333), Spec(21, 2, 200, 1, quantity=3), Spec(31, 3, 101, 7777))
    outcome = apply_in_turn([coupon(1, Terms(AMOUNT_OFF, amount=amount))], order)
    assert outcome.uses[0].evaluation.discount == amount and outcome.payable == 11113 - amount
    # what a second coupon sees: every line's share taken, summing to the first one's discount
    second = apply_in_turn(
        [coupon(1, Terms(AMOUNT_OFF, amount=amount)), coupon(2, Terms(AMOUNT_OFF, amount=10**9))], order
    )
    assert second.uses[1].evaluation.discount == 11113 - amount and second.payable == 0


def test_an_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown coupon kind"):
        evaluate(Terms("lucky_draw"), ORDER)


def _every_order(candidates: list[Candidate], order: list[PricedLine], fee_for) -> list[Use]:
    """The search spelled out: each coupon alone, then every order of 2 to SEARCH_STACKABLE of the
    stackable ones (one per template, those worth most alone), each through apply_in_turn; the
    least to pay, then fewer coupons, then the one expiring first."""
    from itertools import permutations

    from coupons.rules import SEARCH_STACKABLE

    ordered = sorted(candidates, key=lambda c: (c.valid_until, c.coupon_id))
    rank = {c.coupon_id: i for i, c in enumerate(ordered)}
    options, worth = [], {}
    for c in ordered:
        outcome = apply_in_turn([c], order, fee_for=fee_for)
        if outcome.uses[0].evaluation.applicable:
            options.append(outcome)
            worth[c.coupon_id] = outcome.uses[0].evaluation.discount
    stackable, templates = [], set()
    for c in sorted(ordered, key=lambda c: -worth.get(c.coupon_id, 0)):
        if c.stackable and c.coupon_id in worth and c.template_id not in templates:
            templates.add(c.template_id)
            stackable.append(c)
    for size in range(2, min(len(stackable), SEARCH_STACKABLE) + 1):
        for sequence in permutations(stackable[:SEARCH_STACKABLE], size):
            outcome = apply_in_turn(sequence, order, fee_for=fee_for)
            if all(use.evaluation.applicable for use in outcome.uses):
                options.append(outcome)
    if not options:
        return []
    return min(options, key=lambda o: (o.payable, len(o.uses), min(rank[u.coupon_id] for u in o.uses))).uses


def test_the_best_combination_is_what_trying_every_order_of_every_subset_finds():
    import random

    rng = random.Random(20261130)

    def some_terms() -> Terms:
        kind = rng.choice([AMOUNT_OFF, PERCENT_OFF, FREE_SHIPPING, GIFT])
        values: dict = {"threshold": rng.choice([0, 0, 1000, 5000, 20000]), "offer_lines": rng.random() < 0.3}
        if kind == AMOUNT_OFF:
            values["amount"] = rng.randint(1, 3000)
        elif kind == PERCENT_OFF:
            values.update(rate_bp=rng.randint(1, 9999), cap=rng.choice([None, 500, 2000]))
        elif kind == GIFT:
            values["gift_sku_id"] = rng.randint(1, 6)
        scope = rng.choice(["all", "all", SCOPE_PRODUCTS, SCOPE_CATEGORIES])
        if scope == SCOPE_PRODUCTS:
            values.update(scope=scope, scope_ids=frozenset({rng.randint(1, 5) * 10}))
        elif scope == SCOPE_CATEGORIES:
            values.update(scope=scope, scope_ids=frozenset({rng.choice([1, 2])}))
        return Terms(kind, **values)

    def fee_for(paid: int) -> int:
        return 0 if paid >= 9900 else 800

    for _ in range(400):
        order = lines(
            *(
                Spec(
                    sku,
                    sku * 10,
                    rng.choice([None, 1, 2]),
                    rng.randint(1, 5000),
                    rng.randint(1, 3),
                    offer=rng.random() < 0.2,
                )
                for sku in (rng.randint(1, 5) for _ in range(rng.randint(1, 8)))
            )
        )
        wallet = [
            coupon(i, some_terms(), stackable=rng.random() < 0.6, template=rng.randint(1, 4), days=rng.randint(0, 3))
            for i in range(1, rng.randint(2, 8))
        ]
        found = best_combination(wallet, order, fee_for=fee_for)
        expected = _every_order(wallet, order, fee_for)
        assert [(u.coupon_id, u.evaluation) for u in found] == [(u.coupon_id, u.evaluation) for u in expected]
