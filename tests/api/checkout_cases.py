"""Invalid-input and tenant-isolation cases of the checkout endpoints: the cart and the quote.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from api.schemas.common import MAX_ID
from tests.coverage import registry
from tests.coverage.invalid_input import (
    DROP,
    ITEMS_OR_CART,
    MISSING_ID,
    NOT_BOOL,
    NOT_INT,
    NOT_NULL,
    PREFIX,
    REQUIRED,
    UNKNOWN,
    Bad,
    Endpoint,
    pickup_body,
    with_,
    with_item,
    without,
)
from tests.coverage.isolation import BodyCase, PathCase

CART_ADD = ("/api/v1/cart/items", "POST")
CART_SET = ("/api/v1/cart/items/<int:sku_id>", "PUT")
QUOTE = ("/api/v1/checkout/quote", "POST")


registry.add_endpoints(
    {
        CART_ADD: Endpoint(
            lambda w: f"{PREFIX}/cart/items",
            "member",
            "json",
            lambda w: {"sku_id": w.sku_id, "quantity": 2},
        ),
        CART_SET: Endpoint(
            lambda w: f"{PREFIX}/cart/items/{w.sku_id}",
            "member",
            "json",
            lambda w: {"quantity": 3},
        ),
        QUOTE: Endpoint(
            lambda w: f"{PREFIX}/checkout/quote",
            "member",
            "json",
            lambda w: {
                "items": [{"sku_id": w.sku_id, "quantity": 2}, {"sku_id": w.second_sku_id, "quantity": 1}],
                "fulfilment": "pickup",
                "pickup_point_id": w.pickup_point_id,
            },
        ),
    }
)

registry.add_cases(
    [
        # the cart
        Bad(CART_ADD, "no SKU", without("sku_id"), ("sku_id",), REQUIRED),
        Bad(CART_ADD, "no quantity", without("quantity"), ("quantity",), REQUIRED),
        Bad(CART_ADD, "quantity 0", with_(quantity=0), ("quantity",)),
        Bad(CART_ADD, "quantity 1000", with_(quantity=1000), ("quantity",)),
        Bad(CART_ADD, "quantity is a string", with_(quantity="2"), ("quantity",), NOT_INT),
        Bad(CART_ADD, "quantity is a float", with_(quantity=1.5), ("quantity",), NOT_INT),
        Bad(CART_ADD, "quantity is a whole float", with_(quantity=2.0), ("quantity",), NOT_INT),
        Bad(CART_ADD, "quantity is a boolean", with_(quantity=True), ("quantity",), NOT_INT),
        Bad(CART_ADD, "quantity is null", with_(quantity=None), ("quantity",), NOT_NULL),
        Bad(CART_ADD, "SKU id is a string", with_(sku_id="1"), ("sku_id",), NOT_INT),
        Bad(CART_ADD, "SKU id is a boolean", with_(sku_id=True), ("sku_id",), NOT_INT),
        Bad(CART_ADD, "SKU id 0", with_(sku_id=0), ("sku_id",)),
        Bad(CART_ADD, "SKU id past bigint", with_(sku_id=MAX_ID + 1), ("sku_id",)),
        Bad(CART_ADD, "a member cannot set the price", with_(price=1), ("price",), UNKNOWN),
        Bad(CART_ADD, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
        Bad(CART_ADD, "a SKU no shop has", with_(sku_id=MISSING_ID), ("sku_id",), code="not_found", status=404),
        Bad(
            CART_ADD,
            "a SKU of another merchant",
            lambda w, valid: {**valid, "sku_id": w.other_sku_id},
            ("sku_id",),
            code="not_found",
            status=404,
        ),
        Bad(
            CART_ADD,
            "more than 999 of one SKU in the cart",
            with_(quantity=998),  # the member has 2 of it already
            ("quantity",),
            code="cart_quantity_limit",
        ),
        Bad(CART_SET, "no quantity", without("quantity"), ("quantity",), REQUIRED),
        Bad(CART_SET, "quantity -1", with_(quantity=-1), ("quantity",)),
        Bad(CART_SET, "quantity 1000", with_(quantity=1000), ("quantity",)),
        Bad(CART_SET, "quantity is a string", with_(quantity="3"), ("quantity",), NOT_INT),
        Bad(CART_SET, "quantity is a float", with_(quantity=2.5), ("quantity",), NOT_INT),
        Bad(CART_SET, "quantity is a boolean", with_(quantity=False), ("quantity",), NOT_INT),
        Bad(CART_SET, "quantity is null", with_(quantity=None), ("quantity",), NOT_NULL),
        Bad(CART_SET, "the SKU is the path's", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(CART_SET, "a member cannot set the price", with_(unit_price=1), ("unit_price",), UNKNOWN),
        # the checkout quote
        Bad(QUOTE, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
        Bad(QUOTE, "unknown fulfilment", with_(fulfilment="express"), ("fulfilment",)),
        Bad(QUOTE, "neither items nor the cart", without("items"), ("items",), ITEMS_OR_CART),
        Bad(QUOTE, "both items and the cart", with_(from_cart=True), ("items",), ITEMS_OR_CART),
        Bad(QUOTE, "from_cart is not a boolean", with_(from_cart="please"), ("from_cart",), NOT_BOOL),
        Bad(QUOTE, "an empty list of items", with_(items=[]), ("items",)),
        Bad(
            QUOTE,
            "51 items",
            lambda w, valid: {**valid, "items": [{"sku_id": w.sku_id, "quantity": 1}] * 51},
            ("items",),
        ),
        Bad(QUOTE, "an item is not an object", with_(items=[5]), ("items", "0", "_schema")),
        Bad(QUOTE, "quantity 0", with_item(0, quantity=0), ("items", "0", "quantity")),
        Bad(QUOTE, "quantity 1000", with_item(1, quantity=1000), ("items", "1", "quantity")),
        Bad(QUOTE, "quantity is a string", with_item(0, quantity="2"), ("items", "0", "quantity"), NOT_INT),
        Bad(QUOTE, "quantity is a float", with_item(0, quantity=1.5), ("items", "0", "quantity"), NOT_INT),
        Bad(QUOTE, "quantity is a boolean", with_item(0, quantity=True), ("items", "0", "quantity"), NOT_INT),
        Bad(QUOTE, "an item without a SKU", with_item(0, sku_id=DROP), ("items", "0", "sku_id"), REQUIRED),
        Bad(QUOTE, "a member cannot set a price", with_item(0, price=1), ("items", "0", "price"), UNKNOWN),
        Bad(QUOTE, "the totals are the server's", with_(payable_total=1), ("payable_total",), UNKNOWN),
        Bad(QUOTE, "a discount is not the member's to give", with_(discount_total=100), ("discount_total",), UNKNOWN),
        Bad(
            QUOTE,
            "pickup without a pickup point",
            without("pickup_point_id"),
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(
            QUOTE,
            "pickup at a closed pickup point",
            lambda w, valid: {**valid, "pickup_point_id": w.closed_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(
            QUOTE,
            "pickup at another merchant's pickup point",
            lambda w, valid: {**valid, "pickup_point_id": w.other_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(QUOTE, "pickup point id is a string", with_(pickup_point_id="1"), ("pickup_point_id",), NOT_INT),
        Bad(QUOTE, "pickup point id 0", with_(pickup_point_id=0), ("pickup_point_id",)),
        Bad(QUOTE, "pickup point id is null", with_(pickup_point_id=None), ("pickup_point_id",), NOT_NULL),
        Bad(QUOTE, "a SKU no shop has", with_item(0, sku_id=MISSING_ID), None, code="sku_not_found", status=404),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------

registry.add_path_cases(
    [
        # the cart: an SKU id in the path
        PathCase("PUT", "/api/v1/cart/items/<int:sku_id>", "member", {"sku_id": "sku_id"}, lambda s: {"quantity": 2}),
        PathCase("DELETE", "/api/v1/cart/items/<int:sku_id>", "member", {"sku_id": "sku_id"}),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a quote for pickup at another merchant's pickup point",
            "POST",
            lambda a: f"{PREFIX}/checkout/quote",
            lambda a, point_id: pickup_body(a.second_sku_id, point_id),
            "pickup_point_id",
            ("pickup_point_id",),
            caller="member",
        ),
    ]
)
