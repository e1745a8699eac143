"""What a coupon is worth on an order: pure rules, no database (the checkout adjuster, the wallet's
"applicable or why not" and the claim centre all ask here).

A coupon's `Terms` are its template's promise. `evaluate` looks at the order's lines as pricing
has them so far (`paid_amount` after offer prices and the adjusters before coupons) and answers
whether the coupon applies, how many fen it takes off, over which lines, and otherwise why not:

- **Scope.** A line counts when the template's scope takes its product (all; the categories,
  which the caller widens to their sub-categories with `terms_of(..., wider_scope=)`; or the
  products), it is not excluded, and,
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
use when the member did not choose: one coupon alone, or stackable ones together, whichever
leaves the least to pay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
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
    discount: int  # what the discounts so far took off the line; paid_amount follows it

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


def terms_of(source: Any, *, wider_scope: Sequence[int] = ()) -> Terms:
    """The Terms read off anything holding their fields by name (a template's terms, a database
    row), id lists made sets; `wider_scope`: ids the scope also takes (sub-categories)."""
    values = {name: getattr(source, name) for name in Terms.__dataclass_fields__}
    values["scope_ids"] = frozenset(int(i) for i in values["scope_ids"] or ()) | frozenset(wider_scope)
    values["excluded_product_ids"] = frozenset(int(i) for i in values["excluded_product_ids"] or ())
    return Terms(**values)


@dataclass(frozen=True)
class Evaluation:
    """What a coupon does to an order: `discount` fen off (`kind` goods or shipping), spread over
    the goods lines at `lines` (positions in the lines evaluated; `sku_ids` are their SKUs); or,
    not `applicable`, `reason` (and `short_by` fen for a threshold missed)."""

    applicable: bool
    discount: int = 0
    kind: str = "goods"
    sku_ids: frozenset[int] = frozenset()
    lines: frozenset[int] = frozenset()
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
    order = _Order(lines)
    return _evaluate(terms, order, order.start, shipping_fee)


@dataclass(frozen=True)
class _Scope:
    """What a coupon takes of an order, which does not change as discounts apply: the positions
    of its lines (in order), as a set, their SKUs, and the position of its gift's line."""

    positions: tuple[int, ...]
    at: frozenset[int]
    sku_ids: frozenset[int]
    gift_at: int | None
    goods: int  # what its lines cost before any discount
    pick: Callable[[Sequence[int]], Sequence[int]]  # its lines' entries of a list by position

    def eligible(self, kind: str) -> tuple[int, ...]:
        """The positions a goods discount of the coupon is spread over, in order."""
        return (self.gift_at,) if kind == GIFT and self.gift_at is not None else self.positions


def _picker(positions: tuple[int, ...]) -> Callable[[Sequence[int]], Sequence[int]]:
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return itemgetter(*positions) if positions else (lambda values: ())


class _Order:
    """The lines as the search reads them: their goods amounts and starting discounts as lists (a
    turn of coupons works on a copy of the discounts, never on the lines), and each coupon's scope
    worked out once."""

    def __init__(self, lines: Sequence[Line]) -> None:
        self.lines = lines
        self.goods = [line.unit_price * line.quantity for line in lines]
        self.start = [line.discount for line in lines]
        self._scopes: dict[int, tuple[Terms, _Scope]] = {}

    def scope(self, terms: Terms) -> _Scope:
        # Keyed by identity (hashing the terms costs more than the rest of a lookup); the terms are
        # kept with their scope, so an id is never reused for other terms while the order lives.
        found = self._scopes.get(id(terms))
        if found is None:
            lines = self.lines
            positions = tuple(position for position, line in enumerate(lines) if in_scope(terms, line))
            found = (
                terms,
                _Scope(
                    positions=positions,
                    at=frozenset(positions),
                    sku_ids=frozenset(lines[position].sku_id for position in positions),
                    gift_at=_gift_line(terms, lines) if terms.kind == GIFT else None,
                    goods=sum(self.goods[position] for position in positions),
                    pick=_picker(positions),
                ),
            )
            self._scopes[id(terms)] = found
        return found[1]


def _evaluate(terms: Terms, order: _Order, discounts: Sequence[int], shipping_fee: int) -> Evaluation:
    """`evaluate` on the order's lines with these running discounts."""
    discount, reason, short_by = _assess(terms, order, discounts, shipping_fee)
    if reason is not None:
        return _not(reason, short_by=short_by)
    if terms.kind == FREE_SHIPPING:
        return Evaluation(applicable=True, discount=discount, kind="shipping")
    scope = order.scope(terms)
    if terms.kind == GIFT:
        gift_at = scope.gift_at
        assert gift_at is not None
        return Evaluation(
            applicable=True,
            discount=discount,
            sku_ids=frozenset({order.lines[gift_at].sku_id}),
            lines=frozenset({gift_at}),
        )
    return Evaluation(applicable=True, discount=discount, sku_ids=scope.sku_ids, lines=scope.at)


def _assess(
    terms: Terms, order: _Order, discounts: Sequence[int], shipping_fee: int
) -> tuple[int, str | None, int | None]:
    """The rules themselves, without building an answer (the search asks this many times):
    (fen off, None) when the coupon applies, else (0, why, fen short of the threshold or None)."""
    scope = order.scope(terms)
    if not scope.positions:
        return 0, OUT_OF_SCOPE, None
    paid = scope.goods - sum(scope.pick(discounts))
    gift_at = scope.gift_at
    gift_value = 0
    if gift_at is not None:
        gift_value = min(order.lines[gift_at].unit_price, order.goods[gift_at] - discounts[gift_at])
        if gift_at in scope.at:  # the unit given away does not count towards 满X送
            paid -= gift_value
    if paid < terms.threshold:
        return 0, THRESHOLD_NOT_MET, terms.threshold - paid
    kind = terms.kind
    if kind == FREE_SHIPPING:
        return (shipping_fee, None, None) if shipping_fee > 0 else (0, NO_SHIPPING_FEE, None)
    if kind == GIFT:
        if gift_at is None:
            return 0, ADD_GIFT_SKU, None
        discount = gift_value
    elif kind == AMOUNT_OFF:
        discount = min(terms.amount, paid)
    elif kind == PERCENT_OFF:
        discount = apply_rate(paid, terms.rate_bp)
        if terms.cap is not None:
            discount = min(discount, terms.cap)
    else:
        raise ValueError(f"unknown coupon kind {kind!r}")
    if discount <= 0:
        return 0, NOTHING_LEFT, None
    return discount, None, None


def _gift_line(terms: Terms, lines: Sequence[Line]) -> int | None:
    """The position of the order's line of the gift SKU that the gift can go on (not one at an
    offer price, unless the template lets offer lines count)."""
    return next(
        (
            position
            for position, line in enumerate(lines)
            if line.sku_id == terms.gift_sku_id and (line.offer is None or terms.offer_lines)
        ),
        None,
    )


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
    """One coupon as applied in turn: its evaluation on the order as the ones before left it
    (`evaluation.applicable` False: it was not used, and why)."""

    coupon_id: int
    evaluation: Evaluation


@dataclass(frozen=True)
class Outcome:
    uses: list[Use]
    payable: int  # goods after their discounts, plus the fee they then pay, less shipping discounts


def apply_in_turn(
    candidates: Sequence[Candidate],
    lines: Sequence[Line],
    *,
    shipping_fee: int = 0,
    fee_for: Callable[[int], int] | None = None,
) -> Outcome:
    """Apply `candidates` as checkout would: the goods coupons one after the other, each on the
    lines as the ones before left them (spread by paid amount, as shop spreads them), then the fee
    on what the goods now cost (`fee_for(paid goods)`; `shipping_fee` when not given), then the
    shipping coupons on it. A Use per candidate, in that order, applicable or not."""
    return _in_turn(candidates, _Order(lines), shipping_fee=shipping_fee, fee_for=fee_for)


def _spread(order: _Order, terms: Terms, discount: int, discounts: list[int]) -> None:
    """Add a goods coupon's `discount` to `discounts`, over its lines by what each still costs (as
    shop spreads an adjustment)."""
    eligible = order.scope(terms).eligible(terms.kind)
    shares = allocate(discount, [order.goods[p] - discounts[p] for p in eligible])
    for position, share in zip(eligible, shares, strict=True):
        discounts[position] += share


def _in_turn(
    candidates: Sequence[Candidate],
    order: _Order,
    *,
    shipping_fee: int = 0,
    fee_for: Callable[[int], int] | None = None,
) -> Outcome:
    discounts = list(order.start)  # they grow as coupons apply; the order's lines never change
    uses: list[Use] = []
    shipping: list[Candidate] = []
    for candidate in candidates:
        if candidate.terms.kind == FREE_SHIPPING:
            shipping.append(candidate)
            continue
        evaluation = _evaluate(candidate.terms, order, discounts, 0)
        if evaluation.applicable:
            _spread(order, candidate.terms, evaluation.discount, discounts)
        uses.append(Use(candidate.coupon_id, evaluation))
    goods_paid = sum(order.goods) - sum(discounts)
    fee = fee_for(goods_paid) if fee_for is not None else shipping_fee
    for candidate in shipping:
        evaluation = _evaluate(candidate.terms, order, discounts, fee)
        if evaluation.applicable:
            fee -= evaluation.discount
        uses.append(Use(candidate.coupon_id, evaluation))
    return Outcome(uses, goods_paid + fee)


# How many stackable coupons the search combines in every order (the ones worth most alone).
SEARCH_STACKABLE = 4


def each_alone(
    candidates: Sequence[Candidate],
    lines: Sequence[Line],
    *,
    shipping_fee: int = 0,
    fee_for: Callable[[int], int] | None = None,
) -> dict[int, Outcome]:
    """Each candidate applied on its own, by coupon id (what the wallet shows beside each coupon,
    and where `best_combination` starts)."""
    order = _Order(lines)
    paid = sum(order.goods) - sum(order.start)
    fee = fee_for(paid) if fee_for is not None else shipping_fee
    alone: dict[int, Outcome] = {}
    for candidate in candidates:  # one coupon: only the totals move, no line needs its share
        if candidate.terms.kind == FREE_SHIPPING:
            evaluation = _evaluate(candidate.terms, order, order.start, fee)
            payable = paid + fee - (evaluation.discount if evaluation.applicable else 0)
        else:
            evaluation = _evaluate(candidate.terms, order, order.start, 0)
            after = paid - evaluation.discount if evaluation.applicable else paid
            payable = after + (fee_for(after) if fee_for is not None else shipping_fee)
        alone[candidate.coupon_id] = Outcome([Use(candidate.coupon_id, evaluation)], payable)
    return alone


def best_combination(
    candidates: Sequence[Candidate],
    lines: Sequence[Line],
    *,
    shipping_fee: int = 0,
    fee_for: Callable[[int], int] | None = None,
    alone: Mapping[int, Outcome] | None = None,
) -> list[Use]:
    """What to use when the member did not say: whatever leaves the least to pay (goods, then the
    fee they pay, then shipping discounts: a goods coupon that takes the order below the
    free-shipping threshold costs the fee), among: each coupon alone, and the stackable ones
    (one per template; the SEARCH_STACKABLE worth most alone) together, in every subset and
    order. Ties: fewer coupons, then the one expiring first, then the lowest id. `alone`: the
    candidates' `each_alone`, when the caller has it already."""
    if alone is None:
        alone = each_alone(candidates, lines, shipping_fee=shipping_fee, fee_for=fee_for)
    ordered = sorted(candidates, key=lambda c: (c.valid_until, c.coupon_id))
    rank = {c.coupon_id: i for i, c in enumerate(ordered)}
    options: list[Outcome] = []
    worth: dict[int, int] = {}
    for candidate in ordered:
        outcome = alone[candidate.coupon_id]
        if outcome.uses[0].evaluation.applicable:
            options.append(outcome)
            worth[candidate.coupon_id] = outcome.uses[0].evaluation.discount
    stackable: list[Candidate] = []
    templates: set[int] = set()
    for candidate in sorted(ordered, key=lambda c: -worth.get(c.coupon_id, 0)):
        if candidate.stackable and candidate.coupon_id in worth and candidate.template_id not in templates:
            templates.add(candidate.template_id)
            stackable.append(candidate)
    order = _Order(lines)
    stacked = _stacked(stackable[:SEARCH_STACKABLE], order, shipping_fee=shipping_fee, fee_for=fee_for)
    # (what is left to pay, the coupons, the answers when known: a stack's are worked out for the winner only)
    choices: list[tuple[int, list[int], list[Use] | None, Sequence[Candidate]]] = [
        (o.payable, [use.coupon_id for use in o.uses], o.uses, ()) for o in options
    ]
    choices += [(payable, [c.coupon_id for c in sequence], None, sequence) for payable, sequence in stacked]
    if not choices:
        return []
    payable, ids, uses, sequence = min(choices, key=lambda c: (c[0], len(c[1]), min(rank[i] for i in c[1])))
    if uses is None:
        uses = _in_turn(sequence, order, shipping_fee=shipping_fee, fee_for=fee_for).uses
    return uses


def _stacked(
    stackable: Sequence[Candidate],
    order: _Order,
    *,
    shipping_fee: int,
    fee_for: Callable[[int], int] | None,
) -> list[tuple[int, tuple[Candidate, ...]]]:
    """Every sequence of 2 or more of `stackable` in which each coupon applies, with what is left
    to pay after it, as `_in_turn` would answer it (its goods coupons first, then its shipping
    ones), shortest first and in lexicographic order within a length (the order `permutations`
    gives). Walked depth first, so a sequence's goods coupons are applied once for all the
    sequences it begins, and only totals are kept (the winner is applied again for its answers)."""
    last = len(stackable)
    if last < 2:
        return []
    by_size: dict[int, list[tuple[int, tuple[Candidate, ...]]]] = {}

    def finish(
        sequence: tuple[Candidate, ...], discounts: list[int] | None, paid: int, ship: tuple[Candidate, ...]
    ) -> None:
        fee = fee_for(paid) if fee_for is not None else shipping_fee
        for candidate in ship:
            assert discounts is not None
            discount, reason, _ = _assess(candidate.terms, order, discounts, fee)
            if reason is not None:
                return  # a coupon that no longer applies makes it a smaller subset
            fee -= discount
        by_size.setdefault(len(sequence) + len(ship), []).append((paid + fee, sequence + ship))

    def extend(
        taken: tuple[int, ...],
        sequence: tuple[Candidate, ...],
        discounts: list[int],
        paid: int,
        ship: tuple[Candidate, ...],
    ) -> None:
        if len(taken) >= 2:
            finish(sequence, discounts, paid, ship)
        if len(taken) == last:
            return
        for index, candidate in enumerate(stackable):
            if index in taken:
                continue
            if candidate.terms.kind == FREE_SHIPPING:
                extend((*taken, index), sequence, discounts, paid, (*ship, candidate))
                continue
            discount, reason, _ = _assess(candidate.terms, order, discounts, 0)
            if reason is not None:
                continue  # nor does any sequence that goes on from here
            if len(taken) + 1 == last and not ship:  # a last goods coupon: only the total matters now
                finish((*sequence, candidate), None, paid - discount, ship)
                continue
            after = list(discounts)
            _spread(order, candidate.terms, discount, after)
            extend((*taken, index), (*sequence, candidate), after, paid - discount, ship)

    extend((), (), list(order.start), sum(order.goods) - sum(order.start), ())
    return [choice for size in sorted(by_size) for choice in by_size[size]]
