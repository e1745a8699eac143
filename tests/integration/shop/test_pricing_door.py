"""The pricing door through the services, on the database: offer prices from a registered resolver
(and its refusals), adjusters' options, a reservation made only at placement (and rolled back
with a refused one), thresholds on paid amounts, and no statement spent when nothing is asked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import event, select

from shop.catalog.models import Sku, StockMovement
from shop.catalog.service import move_stock
from shop.checkout import pricing
from shop.checkout.pricing import (
    AdjusterResult,
    Adjustment,
    Offer,
    OfferContext,
    OfferRequest,
    offer_unavailable,
    register_adjuster,
    register_offer_resolver,
    unregister_adjuster,
    unregister_offer_resolver,
)
from shop.core.db import db, transaction
from shop.core.errors import Conflict, InvalidInput
from shop.identity.members import login_with_wx_code
from shop.identity.wechat import FakeWeChatAuth
from shop.orders import service as orders
from shop.orders.models import Order
from tests.factories import ADDRESS, make_merchant, make_product


class FlashSales:
    """A test resolver: bundle `id` sells at `prices[id]`; bundle 404 is over."""

    kind = "bundle"

    def __init__(self, prices: dict[int, int]) -> None:
        self.prices = prices
        self.calls: list[tuple[str, list[int]]] = []

    def resolve(self, context: OfferContext, requests: Sequence[OfferRequest]) -> list[Offer]:
        self.calls.append((context.purpose, [r.sku_id for r in requests]))
        offers = []
        for request in requests:
            if request.offer_id not in self.prices:
                raise offer_unavailable(request, self.kind, "ended", "this bundle has ended")
            offers.append(Offer(kind=self.kind, id=request.offer_id, unit_price=self.prices[request.offer_id]))
        return offers


class GiftAtPlacement:
    """Gives one unit of a gift SKU with every order: shows it as an option at a quote, and takes
    the unit from the gift's stock only at placement (a reservation, rolled back with the order)."""

    name = "gift"
    order = 50

    def __init__(self, merchant_id: int, gift_sku_id: int) -> None:
        self.merchant_id, self.gift_sku_id = merchant_id, gift_sku_id

    def adjust(self, context: pricing.PricingContext) -> AdjusterResult:
        chosen = (context.selection(self.name) or {}).get("want", True)
        reserving = context.purpose == "placement" and chosen
        if reserving and move_stock(self.merchant_id, self.gift_sku_id, -1, reason="gift_reserved") is None:
            raise Conflict("the gifts are gone", code="gift_gone")
        return AdjusterResult(options=[{"sku_id": self.gift_sku_id, "selected": chosen}])


class HalfOffOverThreshold:
    """满 `over` 减 `off` on the running paid amounts, after the member's 10% (order 10)."""

    name = "threshold"
    order = 20

    def __init__(self, over: int, off: int) -> None:
        self.over, self.off = over, off

    def adjust(self, context: pricing.PricingContext) -> AdjusterResult:
        paid = context.paid_goods_total
        applicable = paid >= self.over
        option = {"applicable": applicable, "paid": paid, "missing": max(self.over - paid, 0)}
        adjustments = [Adjustment(source=self.name, kind="goods", amount=self.off)] if applicable else []
        return AdjusterResult(adjustments=adjustments, options=[option])


class TenPercent:
    name = "member-price"
    order = 10

    def adjust(self, context: pricing.PricingContext) -> list[Adjustment]:
        return [Adjustment(source=self.name, kind="goods", amount=context.paid_goods_total // 10)]


@pytest.fixture(autouse=True)
def _only_the_tests_adjusters() -> Iterator[None]:
    """The installed packages' adjusters (coupons) step aside for these tests of the door itself,
    and come back after."""
    saved = dict(pricing._registered)
    for name in saved:
        unregister_adjuster(name)
    try:
        yield
    finally:
        for rank, adjuster in saved.values():
            register_adjuster(adjuster, order=rank)


@pytest.fixture
def door() -> Iterator[dict]:
    """Register test resolvers and adjusters for one test; nothing stays registered after it."""
    names: list[str] = []
    kinds: list[str] = []

    def add(thing) -> None:
        if hasattr(thing, "resolve"):
            register_offer_resolver(thing)
            kinds.append(thing.kind)
        else:
            register_adjuster(thing)
            names.append(thing.name)

    yield {"add": add}
    for name in names:
        unregister_adjuster(name)
    for kind in kinds:
        unregister_offer_resolver(kind)


@pytest.fixture
def shop_(ctx) -> dict:
    merchant = make_merchant()
    tea = make_product(merchant, "Tea", skus=[{"specs": {}, "price": 10000, "stock": 10}]).skus[0].id
    cup = make_product(merchant, "Cup", skus=[{"specs": {}, "price": 3000, "stock": 10}]).skus[0].id
    gift = make_product(merchant, "Gift", skus=[{"specs": {}, "price": 100, "stock": 1}]).skus[0].id

    member_id = login_with_wx_code(merchant.code, "test:buyer", FakeWeChatAuth()).member.id
    return {"merchant_id": merchant.id, "member_id": member_id, "tea": tea, "cup": cup, "gift": gift}


def _place(s: dict, items: list[dict], *, key: str, selections: dict | None = None) -> orders.Placed:
    with transaction():
        return orders.place_order(
            s["merchant_id"],
            s["member_id"],
            items=items,
            fulfilment="delivery",
            address=ADDRESS,
            selections=selections,
            idempotency_key=key,
            fingerprint=orders.request_fingerprint({"items": items, "selections": selections}),
        )


def _stock(sku_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


# --- offers -------------------------------------------------------------------------------------


def test_an_offer_price_replaces_the_sku_price_before_totals_and_shipping(shop_, door):
    sales = FlashSales({7: 5000})
    door["add"](sales)
    items = [{"sku_id": shop_["tea"], "quantity": 2, "offer": {"kind": "bundle", "id": 7}}]
    quote = pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="delivery")
    (line,) = quote.lines
    assert (line.sku_price, line.unit_price, line.goods_amount) == (10000, 5000, 10000)
    assert line.offer == Offer(kind="bundle", id=7, unit_price=5000)
    assert (quote.goods_total, quote.shipping_fee, quote.payable_total) == (10000, 0, 10000)
    assert sales.calls == [("quote", [shop_["tea"]])]

    placed = _place(shop_, items, key="offer-order-1")
    order = db.session.get(Order, placed.order.id)
    (stored,) = order.lines
    assert (stored.unit_price, stored.offer_kind, stored.offer_id, stored.paid_amount) == (5000, "bundle", 7, 10000)
    assert stored.offer == {"kind": "bundle", "id": 7, "unit_price": 5000}
    assert sales.calls[-1] == ("placement", [shop_["tea"]])


def test_the_same_sku_with_and_without_an_offer_makes_two_lines(shop_, door):
    door["add"](FlashSales({7: 5000}))
    items = [
        {"sku_id": shop_["tea"], "quantity": 1},
        {"sku_id": shop_["tea"], "quantity": 1, "offer": {"kind": "bundle", "id": 7}},
        {"sku_id": shop_["tea"], "quantity": 2},
    ]
    quote = pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="pickup")
    assert [(line.quantity, line.unit_price, line.offer is not None) for line in quote.lines] == [
        (3, 10000, False),
        (1, 5000, True),
    ]


def test_an_offer_the_resolver_refuses_is_409_with_the_item_and_the_reason(shop_, door):
    door["add"](FlashSales({7: 5000}))
    items = [
        {"sku_id": shop_["cup"], "quantity": 1},
        {"sku_id": shop_["tea"], "quantity": 1, "offer": {"kind": "bundle", "id": 404}},
    ]
    with pytest.raises(Conflict) as refused:
        _place(shop_, items, key="offer-refused")
    assert refused.value.code == "offer_unavailable"
    assert refused.value.details == {
        "index": 1,
        "sku_id": shop_["tea"],
        "offer": {"kind": "bundle", "id": 404},
        "reason": "ended",
    }
    assert (_stock(shop_["tea"]), _stock(shop_["cup"])) == (10, 10)
    assert db.session.execute(select(Order)).first() is None


def test_an_offer_kind_nobody_registered_is_422_before_any_statement(shop_, door):
    items = [{"sku_id": shop_["tea"], "quantity": 1, "offer": {"kind": "lucky_bag", "id": 1}}]
    with _statements() as seen, pytest.raises(InvalidInput) as refused:
        pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="pickup")
    assert refused.value.code == "unknown_offer"
    assert refused.value.details == {"fields": {"items": {"0": {"offer": {"kind": ["no such kind of offer"]}}}}}
    assert seen == []


def test_a_resolver_that_answers_the_wrong_offer_is_a_programming_error(shop_, door):
    class Wrong:
        kind = "bundle"

        def resolve(self, context, requests):
            return [Offer(kind="bundle", id=99, unit_price=1) for _ in requests]

    door["add"](Wrong())
    items = [{"sku_id": shop_["tea"], "quantity": 1, "offer": {"kind": "bundle", "id": 7}}]
    with pytest.raises(ValueError, match="99"):
        pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="pickup")


# --- adjusters ----------------------------------------------------------------------------------


def test_a_threshold_is_met_on_paid_amounts_after_offers_and_earlier_discounts(shop_, door):
    door["add"](FlashSales({7: 8000}))
    door["add"](TenPercent())
    door["add"](HalfOffOverThreshold(over=10000, off=1000))
    # list 10000 + 3000 = 13000; after the offer 8000 + 3000 = 11000; after 10% 9900 < 10000
    items = [
        {"sku_id": shop_["tea"], "quantity": 1, "offer": {"kind": "bundle", "id": 7}},
        {"sku_id": shop_["cup"], "quantity": 1},
    ]
    quote = pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="delivery")
    assert quote.options == {"threshold": [{"applicable": False, "paid": 9900, "missing": 100}]}
    assert [a.source for a in quote.adjustments] == ["member-price"]
    assert quote.shipping_fee == 0  # 9900 paid meets the 9900 free-shipping threshold
    assert quote.payable_total == 9900

    # without the offer: 13000, after 10% 11700 >= 10000
    quote = pricing.quote(
        shop_["merchant_id"],
        shop_["member_id"],
        [{"sku_id": shop_["tea"], "quantity": 1}, {"sku_id": shop_["cup"], "quantity": 1}],
        fulfilment="delivery",
    )
    assert quote.options["threshold"] == [{"applicable": True, "paid": 11700, "missing": 0}]
    assert (quote.goods_discount, quote.payable_total) == (2300, 10700)
    assert sum(line.paid_amount for line in quote.lines) == 10700


def test_a_reservation_is_made_at_placement_only_and_rolls_back_with_a_refused_placement(shop_, door):
    door["add"](GiftAtPlacement(shop_["merchant_id"], shop_["gift"]))
    items = [{"sku_id": shop_["tea"], "quantity": 1}]
    quote = pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="delivery")
    assert quote.options == {"gift": [{"sku_id": shop_["gift"], "selected": True}]}
    assert _stock(shop_["gift"]) == 1  # a quote reserves nothing

    with pytest.raises(Conflict) as refused:  # the gift is reserved, then the tea runs out
        _place(shop_, [{"sku_id": shop_["tea"], "quantity": 11}], key="gift-then-no-tea")
    assert refused.value.code == "insufficient_stock"
    assert _stock(shop_["gift"]) == 1

    _place(shop_, items, key="gift-order-1")
    assert _stock(shop_["gift"]) == 0
    reasons = db.session.execute(select(StockMovement.reason).where(StockMovement.sku_id == shop_["gift"])).scalars()
    assert "gift_reserved" in list(reasons)

    with pytest.raises(Conflict) as gone:  # an adjuster's veto at placement refuses the order
        _place(shop_, items, key="gift-order-2")
    assert gone.value.code == "gift_gone"

    placed = _place(shop_, items, key="gift-order-3", selections={"gift": {"want": False}})
    assert placed.order.status == "pending_payment"


def test_selections_naming_no_adjuster_are_refused_with_the_name(shop_, door):
    door["add"](TenPercent())
    items = [{"sku_id": shop_["tea"], "quantity": 1}]
    with pytest.raises(InvalidInput) as refused:
        pricing.quote(
            shop_["merchant_id"], shop_["member_id"], items, fulfilment="pickup", selections={"cuopons": {"ids": []}}
        )
    assert refused.value.code == "unknown_selection"
    assert refused.value.details == {"fields": {"selections": {"cuopons": ["no pricing adjuster of that name"]}}}


# --- cost ---------------------------------------------------------------------------------------


class _statements:
    """Collect the SQL statements run inside the block (the test's savepoints aside)."""

    def __enter__(self) -> list[str]:
        self.seen: list[str] = []
        self.engine = db.session.get_bind()
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.seen

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # the test harness's own
            self.seen.append(statement)

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def test_pricing_with_nothing_registered_or_asked_costs_one_statement(shop_, door):
    items = [{"sku_id": shop_["tea"], "quantity": 1}, {"sku_id": shop_["cup"], "quantity": 1}]
    with _statements() as seen:
        pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="pickup")
    assert len(seen) == 1  # the SKUs, their products and the merchant's settings
    with _statements() as seen:
        quote = pricing.quote(shop_["merchant_id"], shop_["member_id"], items, fulfilment="delivery")
    assert len(seen) == 1  # the same query serves the fee
    assert (quote.settings.free_shipping_over, quote.shipping_fee) == (9900, 0)  # 130 yuan ships free
