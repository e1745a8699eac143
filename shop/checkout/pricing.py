"""Checkout pricing: lines at current prices (or an offer's), shipping by the merchant's rule, and
discounts from registered pricing adjusters (the door `coupons` plugs into).

The steps of a quote, in this order:

1. **Lines.** Each requested item is priced at its SKU's price. An item may ask for an offer
   (`{"sku_id", "quantity", "offer": {"kind": "flash_sale", "id": 7}}`): the offer resolver
   registered for that kind (`register_offer_resolver`) answers the offer's unit price, which
   REPLACES the SKU's price on that line (`PricedLine.offer`, `PricedLine.sku_price` keeps the
   SKU's), or refuses with a domain error (409 `offer_unavailable`); a kind nobody registered is
   422 `unknown_offer`. Everything after this step sees offer prices only.
2. **Adjusters**, in their explicit order (`register_adjuster(adjuster, order=...)`, then by name).
   Each looks at the `PricingContext` and returns adjustments, and may return options for the
   quote to show (`AdjusterResult`; a plain list of adjustments is fine too). A goods adjustment is
   spread over the lines it applies to, to the fen (`money.allocate`), before the next adjuster is
   asked, so every adjuster sees each line's running `paid_amount`: after the offer price and
   after the adjusters before it. Thresholds (a 满减 coupon's "over 100 yuan") are computed on
   those paid amounts, never on list prices.
3. **Shipping.** The free-shipping threshold (满X包邮) is met on the paid goods amount: after
   offers AND after every goods discount, as Chinese shops usually do (a coupon that takes an
   order below the threshold makes it pay shipping). So the fee is settled after the goods
   adjustments, and shipping adjustments (a 包邮 coupon) are applied after it, in the adjusters'
   order, each capped at what is left of the fee. `PricingContext.shipping_fee` is the fee as the
   paid amounts stand when an adjuster asks; `PricingContext.full_shipping_fee` is what shipping
   costs this order before any threshold (what a free-shipping coupon takes off at most).

Discounts never exceed what they reduce. The context says what the pricing is for
(`purpose`: "quote" reserves nothing; "placement" is the order being placed, inside its
transaction, so an adjuster may reserve there: its rows roll back with a refused placement) and
when (`now`).

Nothing here costs a statement when nothing is registered or asked for: a goods order without
offers or adjusters reads its SKUs and the merchant's settings (one statement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import BigInteger, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from shop.catalog.models import Product, Sku
from shop.core.db import Direct, db, utcnow
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.money import allocate
from shop.identity.models import MerchantSettings, PickupPoint
from shop.identity.settings import SETTINGS_COLUMNS, merchant_settings, settings_from_row

# The most units of one SKU in one order (or one cart line): a member cannot reserve a whole stock.
MAX_LINE_QUANTITY = 999
# The most lines one order (or quote) may have, from the cart as from "buy now" (whose body the
# API already holds to 50 items): an order's rows are written with one statement.
MAX_LINES = 50

Purpose = Literal["quote", "placement"]


# --- offers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """The offer a line is bought at: its kind (group_buy, flash_sale, ...), its id, the unit price
    that replaces the SKU's, and a note for the member (e.g. a per-member limit). `pay_within`:
    minutes an order of it has to be paid, when shorter than the merchant's usual (a flash sale)."""

    kind: str
    id: int
    unit_price: int
    note: str = ""
    pay_within: int | None = None


@dataclass(frozen=True)
class OfferRequest:
    """One requested item asking for an offer price. `index` is the item's position in the request
    (for the fields of an error); `selection` is what the member sent as the item's `offer`."""

    index: int
    sku_id: int
    product_id: int
    quantity: int
    sku_price: int
    offer_id: int
    selection: Mapping[str, Any]


@dataclass(frozen=True)
class OfferContext:
    merchant_id: int
    member_id: int
    purpose: Purpose
    now: datetime


class OfferResolver(Protocol):
    """Answers offer prices for the requested items of its kind, in the order asked (one Offer per
    request, same kind and id), or raises a domain error (`offer_unavailable(...)`: 409) to refuse
    the whole pricing. Called once per pricing with all the items of its kind."""

    kind: str

    def resolve(self, context: OfferContext, requests: Sequence[OfferRequest]) -> Sequence[Offer]: ...


_resolvers: dict[str, OfferResolver] = {}


def register_offer_resolver(resolver: OfferResolver) -> None:
    """Idempotent: registering a kind again replaces its resolver."""
    _resolvers[resolver.kind] = resolver


def unregister_offer_resolver(kind: str) -> None:
    _resolvers.pop(kind, None)


def offer_unavailable(request: OfferRequest, kind: str, reason: str, message: str = "") -> Conflict:
    """The refusal a resolver raises: 409 `offer_unavailable`, naming the item, the offer and why
    (e.g. "not_started", "sold_out", "limit_reached")."""
    return Conflict(
        message or "that offer is not available",
        code="offer_unavailable",
        details={
            "index": request.index,
            "sku_id": request.sku_id,
            "offer": {"kind": kind, "id": request.offer_id},
            "reason": reason,
        },
    )


# --- lines --------------------------------------------------------------------------------------


@dataclass
class PricedLine:
    """A line of the quote. `unit_price` is what one unit costs before discounts: the offer's price
    when the line has one, else the SKU's (`sku_price`). `discount` is the line's share of the
    goods adjustments applied so far, so `paid_amount` is its running paid amount."""

    sku_id: int
    product_id: int
    category_id: int | None
    title: str
    specs: dict[str, Any]
    image: str
    unit_price: int
    quantity: int
    discount: int = 0
    offer: Offer | None = None
    sku_price: int | None = None  # None: the same as unit_price
    stock: int | None = None  # the SKU's stock when priced: a hint (the guarded UPDATE decides)

    def __post_init__(self) -> None:
        if self.sku_price is None:
            self.sku_price = self.unit_price

    @property
    def goods_amount(self) -> int:
        return self.unit_price * self.quantity

    @property
    def paid_amount(self) -> int:
        return self.goods_amount - self.discount


@dataclass(frozen=True)
class Adjustment:
    source: str  # the adjuster's name
    kind: str  # "goods" or "shipping"
    amount: int  # fen off, positive
    reference: str = ""  # e.g. the coupon id
    description: str = ""
    sku_ids: frozenset[int] | None = None  # goods lines it applies to; None = all
    # Or the lines by their positions in the quote's lines (PricingContext.lines, the list the
    # adjuster sees): one SKU can be on two lines (at an offer price and at its own), and a
    # discount that takes one of them only names it so. When given, sku_ids is not read.
    lines: frozenset[int] | None = None


@dataclass
class PricingContext:
    """What an adjuster sees. `lines` are live: their `paid_amount` is after the offers and after
    the adjusters before this one (see the module docstring)."""

    merchant_id: int
    member_id: int
    lines: list[PricedLine]
    fulfilment: str
    selections: Mapping[str, Any]  # what the member chose per adjuster, e.g. {"coupons": {...}}
    purpose: Purpose = "quote"
    now: datetime = field(default_factory=utcnow)
    settings: MerchantSettings | None = None  # read when first needed

    @property
    def goods_total(self) -> int:
        """The goods at their unit prices (offer prices where there are offers), before discounts."""
        return sum(line.goods_amount for line in self.lines)

    @property
    def paid_goods_total(self) -> int:
        """The goods after offers and after the goods discounts of the adjusters so far."""
        return sum(line.paid_amount for line in self.lines)

    @property
    def full_shipping_fee(self) -> int:
        """What shipping costs this order before the free-shipping threshold (0 for a pickup)."""
        if self.fulfilment == "pickup":
            return 0
        return self._settings().shipping_fee

    @property
    def shipping_fee(self) -> int:
        """The fee by the merchant's rule on the paid goods amount as it stands now."""
        return self.fee_for(self.paid_goods_total)

    def fee_for(self, paid_goods_total: int) -> int:
        """The fee by the merchant's rule were the paid goods amount `paid_goods_total` (what an
        adjuster weighing discounts asks: a discount that takes the order below the free-shipping
        threshold costs the fee)."""
        return shipping_fee(self.merchant_id, self.fulfilment, paid_goods_total, self._settings_if_needed())

    def selection(self, name: str) -> Mapping[str, Any] | None:
        """The member's selection for the adjuster `name`, if they sent one."""
        return self.selections.get(name)

    def _settings(self) -> MerchantSettings:
        if self.settings is None:
            self.settings = merchant_settings(self.merchant_id)
        return self.settings

    def _settings_if_needed(self) -> MerchantSettings | None:
        return None if self.fulfilment == "pickup" else self._settings()


# --- adjusters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdjusterResult:
    """What an adjuster answers: its adjustments, and options the quote shows under
    `options.<adjuster name>` (e.g. every wallet coupon, applicable or why not). Options are
    JSON-ready mappings, the adjuster's own shape; None shows nothing."""

    adjustments: Sequence[Adjustment] = ()
    options: Sequence[Mapping[str, Any]] | None = None


class PricingAdjuster(Protocol):
    """`name` keys its selections and options; an optional `order` attribute (default
    DEFAULT_ADJUSTER_ORDER) places it among the others, lower first, ties by name.

    An optional `idle_sql` attribute: a SQL condition (PostgreSQL, binding only `:p_merchant`,
    `:p_member` and `:p_now`, the time of the pricing) true when the adjuster has nothing for
    any order of that member asked with no selections (e.g. no coupon in the wallet).
    Placements that skip pricing's steps when every adjuster is idle (`idle_condition`) need it;
    an adjuster without it keeps them off."""

    name: str

    def adjust(self, context: PricingContext) -> AdjusterResult | Sequence[Adjustment]: ...


DEFAULT_ADJUSTER_ORDER = 100

_registered: dict[str, tuple[int, PricingAdjuster]] = {}
_ordered: list[PricingAdjuster] = []


def register_adjuster(adjuster: PricingAdjuster, *, order: int | None = None) -> None:
    """Ask `adjuster` at every pricing, in the explicit order: `order` if given, else its `order`
    attribute, else DEFAULT_ADJUSTER_ORDER; ties by name. Idempotent by name: registering a name
    again with the same class replaces the earlier one (an `install()` run twice still has it asked
    once); another class under a taken name raises ValueError."""
    rank = order if order is not None else getattr(adjuster, "order", DEFAULT_ADJUSTER_ORDER)
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise TypeError(f"an adjuster's order must be an int, not {rank!r}")
    known = _registered.get(adjuster.name)
    if known is not None and type(known[1]) is not type(adjuster):
        # Two packages claiming one name is a programming error, not a replacement.
        raise ValueError(f"an adjuster named {adjuster.name!r} is already registered")
    _registered[adjuster.name] = (rank, adjuster)
    _reorder()


def unregister_adjuster(name: str) -> None:
    _registered.pop(name, None)
    _reorder()


def registered_adjusters() -> list[PricingAdjuster]:
    """The adjusters in the order they are asked."""
    return list(_ordered)


def idle_condition() -> str | None:
    """A SQL condition true when every registered adjuster is idle for the member (their
    `idle_sql`, see PricingAdjuster; binds `:p_merchant`, `:p_member`, `:p_now`): an order of the member
    asked with no selections would get no adjustment, only the lines' prices and the shipping fee.
    None when an adjuster cannot tell (then no placement may skip the adjusters)."""
    parts = []
    for adjuster in _ordered:
        clause = getattr(adjuster, "idle_sql", None)
        if not clause:
            return None
        parts.append(f"({clause})")
    return " AND ".join(parts) or "true"


def _reorder() -> None:
    _ordered[:] = [adjuster for _, adjuster in sorted(_registered.values(), key=lambda ra: (ra[0], ra[1].name))]


# --- the quote ----------------------------------------------------------------------------------


@dataclass
class Quote:
    lines: list[PricedLine]
    fulfilment: str
    shipping_fee: int
    adjustments: list[Adjustment] = field(default_factory=list)
    options: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    settings: MerchantSettings | None = None  # the merchant's, as pricing read them

    @property
    def goods_total(self) -> int:
        return sum(line.goods_amount for line in self.lines)

    @property
    def goods_discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def shipping_discount(self) -> int:
        return sum(a.amount for a in self.adjustments if a.kind == "shipping")

    @property
    def discount_total(self) -> int:
        return self.goods_discount + self.shipping_discount

    @property
    def payable_total(self) -> int:
        return self.goods_total - self.goods_discount + self.shipping_fee - self.shipping_discount


def shipping_fee(merchant_id: int, fulfilment: str, goods_total: int, settings: MerchantSettings | None = None) -> int:
    """The fee for `goods_total` (the paid goods amount: see the module docstring)."""
    if fulfilment == "pickup":
        return 0
    if settings is None:
        settings = merchant_settings(merchant_id)
    if settings.free_shipping_over is not None and goods_total >= settings.free_shipping_over:
        return 0
    return settings.shipping_fee


def _offer_key(item: Mapping[str, Any]) -> tuple[str, int] | None:
    offer = item.get("offer")
    return None if not offer else (offer["kind"], offer["id"])


# What pricing reads of the SKUs asked for and their products, and the merchant's settings beside
# them (shipping, the order's expiry: one round trip, not two): plain columns, no ORM objects to
# build (on the placement path that costs more than the query). Built once, run with parameters.
_skus, _products, _settings = Sku.__table__, Product.__table__, MerchantSettings.__table__
_SKUS_TO_PRICE = Direct(
    select(
        _skus.c.id.label("sku_id"),
        _skus.c.active,
        _skus.c.specs,
        _skus.c.price,
        _skus.c.stock,
        _products.c.id.label("product_id"),
        _products.c.status,
        _products.c.category_id,
        _products.c.title,
        _products.c.images,
        *SETTINGS_COLUMNS,
    )
    .join(_products, _products.c.id == _skus.c.product_id)
    .outerjoin(_settings, _settings.c.merchant_id == _skus.c.merchant_id)
    .where(
        _skus.c.id == func.any(bindparam("p_skus", type_=ARRAY(BigInteger))),
        _skus.c.merchant_id == bindparam("p_merchant"),
    )
)


class _Row(dict):
    """A row of _SKUS_TO_PRICE: its columns by name, as keys and as attributes."""

    __getattr__ = dict.__getitem__


def price_lines(
    merchant_id: int,
    items: Sequence[Mapping[str, Any]],
    *,
    member_id: int | None = None,
    purpose: Purpose = "quote",
    now: datetime | None = None,
) -> list[PricedLine]:
    """Current prices for (sku_id, quantity[, offer]) items; every SKU must be active and on the
    shelf. Items of one SKU and one offer (or none) add up to one line."""
    return _price_lines(merchant_id, items, member_id=member_id, purpose=purpose, now=now)[0]


def _price_lines(
    merchant_id: int,
    items: Sequence[Mapping[str, Any]],
    *,
    member_id: int | None,
    purpose: Purpose,
    now: datetime | None,
) -> tuple[list[PricedLine], MerchantSettings]:
    """price_lines, and the merchant's settings read with the SKUs."""
    merged: dict[tuple[int, tuple[str, int] | None], int] = {}
    first_index: dict[tuple[int, tuple[str, int] | None], int] = {}
    per_sku: dict[int, int] = {}
    for index, item in enumerate(items):
        key = (item["sku_id"], _offer_key(item))
        merged[key] = merged.get(key, 0) + item["quantity"]
        first_index.setdefault(key, index)
        per_sku[item["sku_id"]] = per_sku.get(item["sku_id"], 0) + item["quantity"]
    if not merged:
        raise InvalidInput("nothing to buy", code="empty_order", details={"fields": {"items": ["is empty"]}})
    if len(merged) > MAX_LINES:
        raise InvalidInput(
            f"at most {MAX_LINES} different items per order",
            code="too_many_lines",
            details={"fields": {"items": [f"at most {MAX_LINES} different items"]}, "limit": MAX_LINES},
        )
    over = sorted(sku_id for sku_id, quantity in per_sku.items() if quantity > MAX_LINE_QUANTITY)
    if over:  # the same SKU on several items adds up
        raise InvalidInput(
            f"at most {MAX_LINE_QUANTITY} of one item per order",
            code="line_quantity_limit",
            details={"fields": {"items": [f"at most {MAX_LINE_QUANTITY} of one SKU in all"]}, "sku_ids": over},
        )
    unknown = {first_index[key]: key[1][0] for key in merged if key[1] is not None and key[1][0] not in _resolvers}
    if unknown:  # before any statement: nobody can price these
        raise InvalidInput(
            "no such kind of offer",
            code="unknown_offer",
            details={
                "fields": {"items": {str(i): {"offer": {"kind": ["no such kind of offer"]}} for i in sorted(unknown)}}
            },
        )
    names = _SKUS_TO_PRICE.names
    rows = [
        _Row(zip(names, values, strict=True))
        for values in _SKUS_TO_PRICE.execute({"p_skus": list(per_sku), "p_merchant": merchant_id})
    ]
    found = {row.sku_id: row for row in rows}
    lines = []
    wanted_offers: dict[str, list[tuple[OfferRequest, PricedLine]]] = {}
    for (sku_id, offer_key), quantity in merged.items():
        if sku_id not in found:
            raise NotFound("SKU not found", code="sku_not_found", details={"sku_id": sku_id})
        row = found[sku_id]
        if not row.active or row.status != "on_shelf":
            raise Conflict("that item is no longer on sale", code="sku_unavailable", details={"sku_id": sku_id})
        line = PricedLine(
            sku_id=row.sku_id,
            product_id=row.product_id,
            category_id=row.category_id,
            title=row.title,
            specs=dict(row.specs),
            image=row.images[0] if row.images else "",
            unit_price=row.price,
            quantity=quantity,
            stock=row.stock,
        )
        lines.append(line)
        if offer_key is not None:
            index = first_index[(sku_id, offer_key)]
            request = OfferRequest(
                index=index,
                sku_id=row.sku_id,
                product_id=row.product_id,
                quantity=quantity,
                sku_price=row.price,
                offer_id=offer_key[1],
                selection=dict(items[index]["offer"]),
            )
            wanted_offers.setdefault(offer_key[0], []).append((request, line))
    if wanted_offers:
        context = OfferContext(merchant_id=merchant_id, member_id=member_id or 0, purpose=purpose, now=now or utcnow())
        for kind in sorted(wanted_offers):
            _apply_offers(kind, context, wanted_offers[kind])
    # Every item found a row (else NotFound above), so there is one to read the settings from.
    return sorted(lines, key=_line_order), settings_from_row(merchant_id, rows[0])


def _line_order(line: PricedLine) -> tuple[int, bool, str, int]:
    offer = line.offer
    return (line.sku_id, offer is not None, offer.kind if offer else "", offer.id if offer else 0)


def _apply_offers(kind: str, context: OfferContext, wanted: list[tuple[OfferRequest, PricedLine]]) -> None:
    offers = list(_resolvers[kind].resolve(context, [request for request, _ in wanted]))
    if len(offers) != len(wanted):
        raise ValueError(f"the {kind} resolver answered {len(offers)} offers for {len(wanted)} items")
    for (request, line), offer in zip(wanted, offers, strict=True):
        if offer.kind != kind or offer.id != request.offer_id:
            raise ValueError(f"the {kind} resolver answered {offer.kind}/{offer.id} for {kind}/{request.offer_id}")
        if not isinstance(offer.unit_price, int) or isinstance(offer.unit_price, bool) or offer.unit_price < 0:
            raise ValueError(f"the {kind} resolver answered a unit price of {offer.unit_price!r}")
        line.offer = offer
        line.unit_price = offer.unit_price


def check_pickup_point(merchant_id: int, pickup_point_id: int | None) -> PickupPoint:
    point = db.session.get(PickupPoint, pickup_point_id) if pickup_point_id else None
    if point is None or point.merchant_id != merchant_id or not point.active:
        raise InvalidInput(
            "choose an open pickup point",
            code="pickup_point_invalid",
            details={"fields": {"pickup_point_id": ["no such open pickup point"]}},
        )
    return point


def check_selections(selections: Mapping[str, Any]) -> None:
    """Every selection must name a registered adjuster (a typo is a 422, not a silent no-op)."""
    unknown = sorted(name for name in selections if name not in _registered)
    if unknown:
        raise InvalidInput(
            "no pricing adjuster of that name",
            code="unknown_selection",
            details={"fields": {"selections": {name: ["no pricing adjuster of that name"] for name in unknown}}},
        )


def quote(
    merchant_id: int,
    member_id: int,
    items: Sequence[Mapping[str, Any]],
    *,
    fulfilment: str,
    selections: Mapping[str, Any] | None = None,
    settings: MerchantSettings | None = None,
    purpose: Purpose = "quote",
    now: datetime | None = None,
) -> Quote:
    """Price `items` (see the module docstring for the steps). `settings`: the merchant's, when the
    caller has already read them (else read with the SKUs; the quote keeps them, for the order's
    expiry). `purpose`: "placement" when the order is being placed in this transaction."""
    selections = selections or {}
    if selections:
        check_selections(selections)
    now = now or utcnow()
    lines, read = _price_lines(merchant_id, items, member_id=member_id, purpose=purpose, now=now)
    settings = settings or read
    context = PricingContext(
        merchant_id=merchant_id,
        member_id=member_id,
        lines=lines,
        fulfilment=fulfilment,
        selections=selections,
        purpose=purpose,
        now=now,
        settings=settings,
    )
    return apply_adjusters(context)


def apply_adjusters(context: PricingContext) -> Quote:
    """Steps 2 and 3 on priced lines (no statement of its own unless an adjuster makes one or the
    fee needs the merchant's settings): the registered adjusters in order, goods adjustments
    spread at once, then the fee on the paid goods amount, then the shipping adjustments."""
    result = Quote(lines=context.lines, fulfilment=context.fulfilment, shipping_fee=0, settings=context.settings)
    shipping: list[Adjustment] = []
    for adjuster in list(_ordered):
        answer = adjuster.adjust(context)
        if isinstance(answer, AdjusterResult):
            adjustments = answer.adjustments
            if answer.options is not None:
                result.options[adjuster.name] = [dict(option) for option in answer.options]
        else:
            adjustments = answer
        for adjustment in adjustments:
            if adjustment.kind == "shipping":
                shipping.append(adjustment)  # after the fee is settled on the paid goods amount
            elif adjustment.kind == "goods":
                _apply_goods(result, adjustment)
            else:
                raise ValueError(f"unknown adjustment kind {adjustment.kind!r}")
    result.shipping_fee = context.shipping_fee
    for adjustment in shipping:
        _apply_shipping(result, adjustment)
    return result


def _apply_shipping(result: Quote, adjustment: Adjustment) -> None:
    room = result.shipping_fee - result.shipping_discount
    amount = min(adjustment.amount, room)
    if amount > 0:
        result.adjustments.append(_with_amount(adjustment, amount))


def _apply_goods(result: Quote, adjustment: Adjustment) -> None:
    if adjustment.amount <= 0:
        return
    if adjustment.lines is not None:
        eligible = [line for position, line in enumerate(result.lines) if position in adjustment.lines]
    else:
        eligible = [line for line in result.lines if adjustment.sku_ids is None or line.sku_id in adjustment.sku_ids]
    room = sum(line.paid_amount for line in eligible)
    amount = min(adjustment.amount, room)
    if not amount:
        return
    # Spread by what each line still costs; a line never goes below zero because its share
    # is proportional to its remaining amount and the total is capped by their sum.
    for line, share in zip(eligible, allocate(amount, [line.paid_amount for line in eligible]), strict=True):
        line.discount += share
    result.adjustments.append(_with_amount(adjustment, amount))


def _with_amount(adjustment: Adjustment, amount: int) -> Adjustment:
    return Adjustment(
        source=adjustment.source,
        kind=adjustment.kind,
        amount=amount,
        reference=adjustment.reference,
        description=adjustment.description,
        sku_ids=adjustment.sku_ids,
        lines=adjustment.lines,
    )
