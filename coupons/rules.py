"""What a coupon is worth on an order: pure rules, no database (the checkout adjuster, the wallet's
"applicable or why not" and the claim centre all ask here).

A coupon's `Terms` are its template's promise. `evaluate` looks at the order's lines as pricing
has them so far (`paid_amount` after offer prices and the adjusters before coupons) and answers
whether the coupon applies, how many fen it takes off, over which lines, and otherwise why not:

- **Scope.** A line counts when the template's scope takes its product (all; the categories,
  which the caller expands to their sub-categories; or the products), it is not excluded, and,
  unless the template says offer-priced lines count, it is not bought at an offer price (a group
  buy or flash sale line already has its discount).
- **Threshold (满).** The in-scope lines' paid amount must reach it: never the list prices, never
  the lines out of scope. Missed by N fen: `short_by` says how many.
- **满减** (`amount_off`): the amount, at most what the in-scope lines still cost.
- **折扣** (`percent_off`): `rate_bp` basis points OFF the in-scope paid amount, rounded down
  (`shop.core.money.apply_rate`), at most `cap` when there is one.
- **包邮** (`free_shipping`): the shipping fee the order pays (nothing to take off a pickup or an
  order that ships free already).
- **兑换** (`gift`): one unit of the gift SKU free: a goods discount on that SKU's line worth one
  unit at the line's price (at most what the line still costs), when the order holds the SKU;
  otherwise `add_gift_sku` (pricing cannot add a line; the member adds the SKU).

Goods discounts are spread by shop over the lines named (`shop.core.money.allocate`, by each
line's paid amount), so every line carries its share to the fen. `best_combination` picks what to
use when the member did not choose: one coupon alone, or stackable ones together, whichever takes
off the most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from shop.core.money import allocate, apply_rate

AMOUNT_OFF, PERCENT_OFF, FREE_SHIPPING, GIFT = "amount_off", "percent_off", "free_shipping", "gift"
KINDS = (AMOUNT_OFF, PERCENT_OFF, FREE_SHIPPING, GIFT)
SCOPE_ALL, SCOPE_CATEGORIES, SCOPE_PRODUCTS = "all", "categories", "products"
SCOPES = (SCOPE_ALL, SCOPE_CATEGORIES, SCOPE_PRODUCTS)

# Why a coupon does not apply (the wallet shows the reason; checkout refuses with it).
THRESHOLD_NOT_MET = "threshold_not_met"
OUT_OF_SCOPE = "out_of_scope"
ADD_GIFT_SKU = "add_gift_sku"
NO_SHIPPING_FEE = "no_shipping_fee"
NOTHING_LEFT = "nothing_left"  # in scope, but earlier discounts took all it could take off


class Line(Protocol):
    """What the rules read of an order line (shop.checkout.pricing.PricedLine has it)."""

    sku_id: int
    product_id: int
    category_id: int | None
    unit_price: int
    quantity: int
    offer: Any

    @property
    def paid_amount(self) -> int: ...


@dataclass(frozen=True)
class Terms:
    """A template's promise, as the rules read it. Amounts in fen, rates in basis points."""

    kind: str
    threshold: int = 0
    amount: int = 0  # amount_off
    rate_bp: int = 0  # percent_off: the share taken off, 1..9,999
    cap: int | None = None  # percent_off: at most this many fen off
    gift_sku_id: int | None = None  # gift
    scope: str = SCOPE_ALL
    scope_ids: frozenset[int] = frozenset()  # category ids (sub-categories included) or product ids
    excluded_product_ids: frozenset[int] = frozenset()
    offer_lines: bool = False  # whether lines bought at an offer price count


@dataclass(frozen=True)
class Evaluation:
    """What a coupon does to an order: `discount` fen off (`kind` goods or shipping), spread over
    the goods lines of `sku_ids`; or, not `applicable`, `reason` (and `short_by` fen for a
    threshold missed)."""

    applicable: bool
    discount: int = 0
    kind: str = "goods"
    sku_ids: frozenset[int] = frozenset()
    reason: str | None = None
    short_by: int | None = None


def _not(reason: str, **extra: Any) -> Evaluation:
    return Evaluation(applicable=False, reason=reason, **extra)


def in_scope(terms: Terms, line: Line) -> bool:
    if line.product_id in terms.excluded_product_ids:
        return False
    if line.offer is not None and not terms.offer_lines:
        return False
    if terms.scope == SCOPE_CATEGORIES:
        return line.category_id in terms.scope_ids
    if terms.scope == SCOPE_PRODUCTS:
        return line.product_id in terms.scope_ids
    return True


def evaluate(terms: Terms, lines: Sequence[Line], *, shipping_fee: int = 0) -> Evaluation:
    """The coupon on these lines; `shipping_fee`: what shipping costs the order now (0 for a
    pickup or an order that ships free)."""
    scoped = [line for line in lines if in_scope(terms, line)]
    if not scoped:
        return _not(OUT_OF_SCOPE)
    paid = sum(line.paid_amount for line in scoped)
    if paid < terms.threshold:
        return _not(THRESHOLD_NOT_MET, short_by=terms.threshold - paid)
    sku_ids = frozenset(line.sku_id for line in scoped)
    if terms.kind == FREE_SHIPPING:
        if shipping_fee <= 0:
            return _not(NO_SHIPPING_FEE)
        return Evaluation(applicable=True, discount=shipping_fee, kind="shipping")
    if terms.kind == GIFT:
        gift = next((line for line in lines if line.sku_id == terms.gift_sku_id), None)
        if gift is None or not (gift.offer is None or terms.offer_lines):
            return _not(ADD_GIFT_SKU)
        discount = min(gift.unit_price, gift.paid_amount)
        sku_ids = frozenset({gift.sku_id})
    elif terms.kind == AMOUNT_OFF:
        discount = min(terms.amount, paid)
    elif terms.kind == PERCENT_OFF:
        discount = apply_rate(paid, terms.rate_bp)
        if terms.cap is not None:
            discount = min(discount, terms.cap)
    else:
        raise ValueError(f"unknown coupon kind {terms.kind!r}")
    if discount <= 0:
        return _not(NOTHING_LEFT)
    return Evaluation(applicable=True, discount=discount, sku_ids=sku_ids)


# --- choosing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A wallet coupon the member could use: its id, its template and the template's terms, whether
    it stacks, and when it expires (the sooner, the better to use it first)."""

    coupon_id: int
    template_id: int
    terms: Terms
    stackable: bool
    valid_until: datetime


@dataclass(frozen=True)
class Use:
    coupon_id: int
    evaluation: Evaluation


@dataclass
class _Working:
    """A line whose paid amount goes down as the chosen coupons are applied in turn."""

    sku_id: int
    product_id: int
    category_id: int | None
    unit_price: int
    quantity: int
    offer: Any
    discount: int

    @property
    def paid_amount(self) -> int:
        return self.unit_price * self.quantity - self.discount


def apply_in_turn(
    candidates: Sequence[Candidate], lines: Sequence[Line], *, shipping_fee: int = 0
) -> list[Use | Evaluation]:
    """Evaluate `candidates` one after the other, each on the lines as the ones before left them
    (goods discounts spread by paid amount as shop spreads them; a shipping discount takes the fee
    it waived): a Use for each that applies, its Evaluation (why not) for each that does not."""
    working = [
        _Working(
            line.sku_id,
            line.product_id,
            line.category_id,
            line.unit_price,
            line.quantity,
            line.offer,
            line.unit_price * line.quantity - line.paid_amount,
        )
        for line in lines
    ]
    fee = shipping_fee
    answers: list[Use | Evaluation] = []
    for candidate in candidates:
        evaluation = evaluate(candidate.terms, working, shipping_fee=fee)
        if not evaluation.applicable:
            answers.append(evaluation)
            continue
        if evaluation.kind == "shipping":
            fee -= evaluation.discount
        else:
            eligible = [line for line in working if line.sku_id in evaluation.sku_ids]
            for line, share in zip(
                eligible, allocate(evaluation.discount, [w.paid_amount for w in eligible]), strict=True
            ):
                line.discount += share
        answers.append(Use(candidate.coupon_id, evaluation))
    return answers


def best_combination(candidates: Sequence[Candidate], lines: Sequence[Line], *, shipping_fee: int = 0) -> list[Use]:
    """What to use when the member did not say: the coupon alone that takes off the most, or every
    stackable coupon that applies, used together (the biggest first, each on what the ones before
    left), whichever takes off more. Ties: fewer coupons, then the one expiring first, then the
    lowest id. One coupon per template."""
    ordered = sorted(candidates, key=lambda c: (c.valid_until, c.coupon_id))
    seen_templates: set[int] = set()
    options: list[list[Use]] = []
    for candidate in ordered:
        evaluation = evaluate(candidate.terms, lines, shipping_fee=shipping_fee)
        if evaluation.applicable:
            options.append([Use(candidate.coupon_id, evaluation)])
    stackable = []
    for candidate in sorted(
        (c for c in ordered if c.stackable),
        key=lambda c: -evaluate(c.terms, lines, shipping_fee=shipping_fee).discount,
    ):
        if candidate.template_id not in seen_templates:
            seen_templates.add(candidate.template_id)
            stackable.append(candidate)
    together = [
        answer for answer in apply_in_turn(stackable, lines, shipping_fee=shipping_fee) if isinstance(answer, Use)
    ]
    if len(together) > 1:
        options.append(together)
    if not options:
        return []
    order = {c.coupon_id: i for i, c in enumerate(ordered)}
    return min(
        options,
        key=lambda uses: (
            -sum(use.evaluation.discount for use in uses),
            len(uses),
            min(order[use.coupon_id] for use in uses),
        ),
    )


def with_scope(terms: Terms, categories: dict[int, int | None]) -> Terms:
    """`terms` with its category scope widened to the sub-categories of the categories it names
    (`categories`: the merchant's category id -> parent id)."""
    if terms.scope != SCOPE_CATEGORIES:
        return terms
    wider = set(terms.scope_ids) | {child for child, parent in categories.items() if parent in terms.scope_ids}
    return replace(terms, scope_ids=frozenset(wider))
