"""Money is an int number of fen. This module owns the two roundings the shop does.

- `apply_rate`: a rate in basis points (1/100 of a percent), rounded down to the fen.
- `allocate`: spread an amount over weighted parts so the parts always add up to the amount
  (largest remainder; ties go to the earlier part).
- `cumulative_share`: the next part of an amount paid back (or paid out) unit by unit, rounded
  so that all the parts together are exactly the amount once every unit is done.
"""

from __future__ import annotations

from collections.abc import Sequence

BASIS_POINTS = 10_000


def apply_rate(amount: int, rate_bp: int) -> int:
    """`amount` x `rate_bp` / 10000, rounded down (towards zero for the non-negative inputs we take)."""
    if amount < 0 or rate_bp < 0:
        raise ValueError("amount and rate must be non-negative")
    return amount * rate_bp // BASIS_POINTS


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` over `weights` in proportion; the result always sums to `amount`.

    With all weights zero the amount is split evenly (remainder to the earliest parts).
    """
    if amount < 0:
        raise ValueError("amount must be non-negative")
    if not weights:
        if amount:
            raise ValueError("cannot allocate a non-zero amount over no parts")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    total = sum(weights)
    if total == 0:
        weights = [1] * len(weights)
        total = len(weights)
    shares = [amount * w // total for w in weights]
    remainders = [(amount * w % total, -i) for i, w in enumerate(weights)]
    left = amount - sum(shares)
    for _, neg_i in sorted(remainders, reverse=True)[:left]:
        shares[-neg_i] += 1
    return shares


def cumulative_share(amount: int, units: int, done_units: int, done_amount: int, more_units: int) -> int:
    """What `more_units` of `units` are worth of `amount`, given that `done_units` have already
    taken `done_amount`: rounded cumulatively, so after q of n units exactly amount*q//n has gone,
    never more, and the last unit takes what is left (the parts add up to `amount`)."""
    if units <= 0 or amount < 0 or more_units < 0 or done_units < 0 or done_units + more_units > units:
        raise ValueError("units must be positive and done + more units at most units")
    return amount * (done_units + more_units) // units - done_amount
