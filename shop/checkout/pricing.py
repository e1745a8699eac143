"""Checkout pricing: lines at current prices, shipping by the merchant's rule, and discounts
from registered pricing adjusters (the door `coupons` plugs into).

An adjuster looks at the priced order and returns adjustments. A goods adjustment is spread
over the lines it applies to, to the fen (`money.allocate`), so each line knows what it really
cost; a shipping adjustment reduces the shipping fee. Discounts never exceed what they reduce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import lazyload

from shop.catalog.models import Product, Sku
from shop.core.db import db
from shop.core.errors import Conflict, InvalidInput, NotFound
from shop.core.money import allocate
from shop.identity.models import MerchantSettings, PickupPoint
from shop.identity.settings import merchant_settings

# The most units of one SKU in one order (or one cart line): a member cannot reserve a whole stock.
MAX_LINE_QUANTITY = 999


@dataclass
class PricedLine:
    sku_id: int
    product_id: int
    category_id: int | None
    title: str
    specs: dict[str, Any]
    image: str
    unit_price: int
    quantity: int
    discount: int = 0

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


@dataclass
class PricingContext:
    merchant_id: int
    member_id: int
    lines: list[PricedLine]
    fulfilment: str
    shipping_fee: int
    selections: Mapping[str, Any]  # what the member chose per adjuster, e.g. {"coupons": {...}}

    @property
    def goods_total(self) -> int:
        return sum(line.goods_amount for line in self.lines)


class PricingAdjuster(Protocol):
    name: str

    def adjust(self, context: PricingContext) -> Sequence[Adjustment]: ...


# Registered adjusters as (order, name, adjuster), kept sorted: they run in ascending `order`,
# ties by name, whatever order the packages were installed in.
_adjusters: list[tuple[int, str, PricingAdjuster]] = []
DEFAULT_ADJUSTER_ORDER = 100


def register_adjuster(adjuster: PricingAdjuster, *, order: int = DEFAULT_ADJUSTER_ORDER) -> None:
    """Ask `adjuster` for adjustments in every quote, in ascending `order` among the adjusters
    (each sees the lines as the ones before it left them; e.g. member prices before coupons).

    Idempotent by name: registering an adjuster of the same class under a name already registered
    replaces it (a package's `install()` may run again); a different class under that name is a
    programming error (two packages claiming one name) and raises ValueError."""
    for index, (_, name, known) in enumerate(_adjusters):
        if name != adjuster.name:
            continue
        if type(known) is not type(adjuster):
            raise ValueError(f"an adjuster named {adjuster.name!r} is already registered")
        del _adjusters[index]
        break
    _adjusters.append((order, adjuster.name, adjuster))
    _adjusters.sort(key=lambda entry: (entry[0], entry[1]))


def unregister_adjuster(name: str) -> None:
    _adjusters[:] = [entry for entry in _adjusters if entry[1] != name]


def registered_adjusters() -> list[PricingAdjuster]:
    """The adjusters in the order they run."""
    return [adjuster for _, _, adjuster in _adjusters]


@dataclass
class Quote:
    lines: list[PricedLine]
    fulfilment: str
    shipping_fee: int
    adjustments: list[Adjustment] = field(default_factory=list)

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
    if fulfilment == "pickup":
        return 0
    if settings is None:
        settings = merchant_settings(merchant_id)
    if settings.free_shipping_over is not None and goods_total >= settings.free_shipping_over:
        return 0
    return settings.shipping_fee


def price_lines(merchant_id: int, items: Sequence[Mapping[str, int]]) -> list[PricedLine]:
    """Current prices for (sku_id, quantity) items; every SKU must be active and on the shelf."""
    merged: dict[int, int] = {}
    for item in items:
        merged[item["sku_id"]] = merged.get(item["sku_id"], 0) + item["quantity"]
    if not merged:
        raise InvalidInput("nothing to buy", code="empty_order", details={"fields": {"items": ["is empty"]}})
    over = sorted(sku_id for sku_id, quantity in merged.items() if quantity > MAX_LINE_QUANTITY)
    if over:  # the same SKU on several items adds up
        raise InvalidInput(
            f"at most {MAX_LINE_QUANTITY} of one item per order",
            code="line_quantity_limit",
            details={"fields": {"items": [f"at most {MAX_LINE_QUANTITY} of one SKU in all"]}, "sku_ids": over},
        )
    # lazyload: pricing needs the product, not all its SKUs (Product.skus is selectin-loaded by default).
    rows = db.session.execute(
        select(Sku, Product)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id.in_(merged), Sku.merchant_id == merchant_id)
        .options(lazyload(Product.skus))
    ).all()
    found = {sku.id: (sku, product) for sku, product in rows}
    lines = []
    for sku_id, quantity in merged.items():
        if sku_id not in found:
            raise NotFound("SKU not found", code="sku_not_found", details={"sku_id": sku_id})
        sku, product = found[sku_id]
        if not sku.active or product.status != "on_shelf":
            raise Conflict("that item is no longer on sale", code="sku_unavailable", details={"sku_id": sku_id})
        lines.append(
            PricedLine(
                sku_id=sku.id,
                product_id=product.id,
                category_id=product.category_id,
                title=product.title,
                specs=dict(sku.specs),
                image=product.cover,
                unit_price=sku.price,
                quantity=quantity,
            )
        )
    return sorted(lines, key=lambda line: line.sku_id)


def check_pickup_point(merchant_id: int, pickup_point_id: int | None) -> PickupPoint:
    point = db.session.get(PickupPoint, pickup_point_id) if pickup_point_id else None
    if point is None or point.merchant_id != merchant_id or not point.active:
        raise InvalidInput(
            "choose an open pickup point",
            code="pickup_point_invalid",
            details={"fields": {"pickup_point_id": ["no such open pickup point"]}},
        )
    return point


def quote(
    merchant_id: int,
    member_id: int,
    items: Sequence[Mapping[str, int]],
    *,
    fulfilment: str,
    selections: Mapping[str, Any] | None = None,
    settings: MerchantSettings | None = None,
) -> Quote:
    """`settings`: the merchant's, when the caller has already read them (else read here if needed)."""
    lines = price_lines(merchant_id, items)
    goods_total = sum(line.goods_amount for line in lines)
    fee = shipping_fee(merchant_id, fulfilment, goods_total, settings)
    result = Quote(lines=lines, fulfilment=fulfilment, shipping_fee=fee)
    context = PricingContext(
        merchant_id=merchant_id,
        member_id=member_id,
        lines=lines,
        fulfilment=fulfilment,
        shipping_fee=result.shipping_fee,
        selections=selections or {},
    )
    for _, _, adjuster in list(_adjusters):
        for adjustment in adjuster.adjust(context):
            _apply(result, adjustment)
    return result


def _apply(result: Quote, adjustment: Adjustment) -> None:
    if adjustment.amount <= 0:
        return
    if adjustment.kind == "shipping":
        room = result.shipping_fee - result.shipping_discount
        amount = min(adjustment.amount, room)
        if amount:
            result.adjustments.append(_with_amount(adjustment, amount))
        return
    if adjustment.kind != "goods":
        raise ValueError(f"unknown adjustment kind {adjustment.kind!r}")
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
    )
