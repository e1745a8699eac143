"""The commission arithmetic (distribution.rules), table-driven: which rule pays a line at a
level (SKU override, product override, tier rate, program rate), and how much (rounded down per
line; a fixed amount per unit never above what the line paid)."""

from __future__ import annotations

import pytest

from distribution.rules import OverrideRule, Rule, rule_for

PROGRAM = (1000, 500)  # 10% at level 1, 5% at level 2
OVERRIDES = {
    (7, None, 1): OverrideRule("rate", rate_bp=2000),  # product 7, level 1: 20%
    (7, 70, 1): OverrideRule("fixed", fixed_amount=150),  # its SKU 70, level 1: 1.50 per unit
    (7, None, 2): OverrideRule("none"),  # product 7 pays no level 2
    (8, 80, 2): OverrideRule("rate", rate_bp=0),  # SKU 80 pays 0 at level 2 (but level 1 as usual)
}


@pytest.mark.parametrize(
    "level, product, sku, tier, expected",
    [
        (1, 1, 10, (), Rule(rate_bp=1000)),  # the program's rate
        (2, 1, 10, (), Rule(rate_bp=500)),
        (1, 1, 10, (1500, None), Rule(rate_bp=1500)),  # the tier's rate beats the program's
        (2, 1, 10, (1500, None), Rule(rate_bp=500)),  # a tier with no level-2 rate: the program's
        (1, 7, 71, (1500, 900), Rule(rate_bp=2000)),  # the product's override beats the tier
        (1, 7, 70, (1500, 900), Rule(fixed_amount=150)),  # the SKU's beats the product's
        (2, 7, 70, (1500, 900), None),  # none: nothing at all
        (2, 8, 80, (), Rule(rate_bp=0)),
        (1, 8, 80, (), Rule(rate_bp=1000)),
        (1, None, None, (), Rule(rate_bp=1000)),  # a line naming no product: the program's rate
        (3, 1, 10, (), Rule(rate_bp=0)),  # no third level is ever configured
    ],
)
def test_the_most_specific_rule_pays(level, product, sku, tier, expected):
    assert rule_for(level, product, sku, program_rates=PROGRAM, tier_rates=tier, overrides=OVERRIDES) == expected


@pytest.mark.parametrize(
    "rule, paid, quantity, expected",
    [
        (Rule(rate_bp=1000), 10000, 1, 1000),
        (Rule(rate_bp=1000), 9999, 3, 999),  # 999.9 rounds down
        (Rule(rate_bp=333), 1999, 1, 66),  # 66.5667 rounds down
        (Rule(rate_bp=1), 9999, 1, 0),  # under a fen: nothing
        (Rule(rate_bp=10000), 4321, 2, 4321),  # all of it, never more
        (Rule(rate_bp=0), 10000, 1, 0),
        (Rule(fixed_amount=150), 10000, 4, 600),  # per unit
        (Rule(fixed_amount=150), 500, 4, 500),  # a discounted line: never above what was paid
        (Rule(fixed_amount=0), 10000, 4, 0),
        (Rule(rate_bp=1000), 0, 1, 0),  # a free line (a gift) earns nothing
        (Rule(fixed_amount=150), 1000, 0, 0),  # every unit refunded
    ],
)
def test_amounts_round_down_per_line(rule, paid, quantity, expected):
    assert rule.amount(paid, quantity) == expected


def test_rounding_is_per_line_not_per_order():
    lines = [(3333, 1), (3333, 1), (3334, 1)]  # 10000 fen over three lines
    per_line = sum(Rule(rate_bp=1000).amount(paid, quantity) for paid, quantity in lines)
    assert per_line == 333 + 333 + 333  # not 1000: each line rounds down on its own
