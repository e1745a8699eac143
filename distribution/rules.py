"""The commission arithmetic, pure (no I/O): which rule pays a line at a level, and how much.

Precedence, most specific first: the SKU's override at that level, the product's override at
that level, the distributor's tier rate at that level, the program's rate at that level. An
override is a rate (basis points of what was paid for the line), a fixed amount per unit, or
none (that product pays no commission at that level). Amounts round down to the fen, per line;
a fixed amount never pays more than was paid for the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shop.core.money import apply_rate


@dataclass(frozen=True, slots=True)
class Rule:
    """How a commission is computed: a rate in bp, or a fixed fen per unit (exactly one is set)."""

    rate_bp: int | None = None
    fixed_amount: int | None = None

    def amount(self, base_amount: int, quantity: int) -> int:
        """The commission on a line that paid `base_amount` fen for `quantity` units."""
        if base_amount <= 0 or quantity <= 0:
            return 0
        if self.rate_bp is not None:
            return apply_rate(base_amount, self.rate_bp)
        return min((self.fixed_amount or 0) * quantity, base_amount)


@dataclass(frozen=True, slots=True)
class OverrideRule:
    mode: str  # rate, fixed or none
    rate_bp: int | None = None
    fixed_amount: int | None = None


# (product_id, sku_id or None, level) -> the override
Overrides = Mapping[tuple[int, int | None, int], OverrideRule]


def rule_for(
    level: int,
    product_id: int | None,
    sku_id: int | None,
    *,
    program_rates: Sequence[int],
    tier_rates: Sequence[int | None] = (),
    overrides: Overrides | None = None,
) -> Rule | None:
    """The rule paying a line at `level` (1-based), or None when nothing is paid."""
    overrides = overrides or {}
    if product_id is not None:
        keys = [(product_id, sku_id, level)] if sku_id is not None else []
        for key in [*keys, (product_id, None, level)]:
            found = overrides.get(key)
            if found is not None:
                if found.mode == "none":
                    return None
                if found.mode == "fixed":
                    return Rule(fixed_amount=found.fixed_amount or 0)
                return Rule(rate_bp=found.rate_bp or 0)
    tier_rate = tier_rates[level - 1] if len(tier_rates) >= level else None
    rate = tier_rate if tier_rate is not None else (program_rates[level - 1] if len(program_rates) >= level else 0)
    return Rule(rate_bp=rate)
