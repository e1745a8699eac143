"""Invalid-input and tenant-isolation cases of the catalog endpoints: categories, products,
the shelf, stock.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import MAX_FEN, MAX_ID
from tests.coverage import registry
from tests.coverage.invalid_input import (
    DROP,
    FORGED,
    MISSING_ID,
    NOT_INT,
    PREFIX,
    UNKNOWN,
    Bad,
    Endpoint,
    cursor_of,
    skus,
    with_,
    with_sku,
    without,
)
from tests.coverage.isolation import BodyCase, PathCase, Shop

CATEGORY_CREATE = ("/api/v1/merchant/categories", "POST")
CATEGORY_UPDATE = ("/api/v1/merchant/categories/<int:category_id>", "PATCH")
PRODUCT_CREATE = ("/api/v1/merchant/products", "POST")
PRODUCT_UPDATE = ("/api/v1/merchant/products/<int:product_id>", "PATCH")
SHELF = ("/api/v1/merchant/products/<int:product_id>/shelf", "PUT")
STOCK_ADJUST = ("/api/v1/merchant/skus/<int:sku_id>/stock-adjustments", "POST")
MEMBER_PRODUCTS = ("/api/v1/products", "GET")
STAFF_PRODUCTS = ("/api/v1/merchant/products", "GET")
STOCK_MOVEMENTS = ("/api/v1/merchant/skus/<int:sku_id>/stock-movements", "GET")


registry.add_endpoints(
    {
        CATEGORY_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/categories",
            "staff",
            "json",
            lambda w: {"name": "Apples", "parent_id": w.top_category_id, "sort_order": 3},
            ok=201,
            text_field="name",
        ),
        CATEGORY_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/categories/{w.top_category_id}",
            "staff",
            "json",
            lambda w: {"name": "Fresh fruit", "sort_order": 2},
            text_field="name",
        ),
        PRODUCT_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/products",
            "staff",
            "json",
            lambda w: {
                "title": "Mango",
                "description": "sweet",
                "images": ["https://img.example.com/m.jpg"],
                "category_id": w.sub_category_id,
                "skus": [
                    {"specs": {"规格": "3斤"}, "code": "MG3", "price": 2990, "market_price": 3990, "stock": 10},
                    {"specs": {"规格": "5斤"}, "code": "MG5", "price": 4590, "stock": 0},
                ],
            },
            ok=201,
            text_field="title",
        ),
        PRODUCT_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/products/{w.product_id}",
            "staff",
            "json",
            lambda w: {
                "title": "Blood orange",
                "images": ["https://img.example.com/b.jpg"],
                "category_id": w.top_category_id,
                "skus": [
                    {"id": w.sku_id, "price": 4190},
                    {"id": w.second_sku_id},
                    {"specs": {"规格": "20斤"}, "price": 12990, "stock": 5},
                ],
            },
            text_field="description",
        ),
        SHELF: Endpoint(
            lambda w: f"{PREFIX}/merchant/products/{w.product_id}/shelf",
            "staff",
            "json",
            lambda w: {"on_shelf": False},
        ),
        STOCK_ADJUST: Endpoint(
            lambda w: f"{PREFIX}/merchant/skus/{w.sku_id}/stock-adjustments",
            "staff",
            "json",
            lambda w: {"delta": 5, "reason": "restock", "note": "second batch"},
            ok=201,
            text_field="note",
        ),
        MEMBER_PRODUCTS: Endpoint(
            lambda w: f"{PREFIX}/products",
            "member",
            "query",
            lambda w: {"sort": "price_asc", "limit": 10, "category_id": w.top_category_id, "q": "Orange"},
            text_field="q",
        ),
        STAFF_PRODUCTS: Endpoint(
            lambda w: f"{PREFIX}/merchant/products",
            "staff",
            "query",
            lambda w: {"status": "on_shelf", "limit": 10, "category_id": w.top_category_id, "q": "Orange"},
            text_field="q",
        ),
        STOCK_MOVEMENTS: Endpoint(
            lambda w: f"{PREFIX}/merchant/skus/{w.sku_id}/stock-movements",
            "staff",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
        ),
    }
)

registry.add_cases(
    [
        # categories
        Bad(CATEGORY_CREATE, "no name", without("name"), ("name",), "Missing data for required field."),
        Bad(CATEGORY_CREATE, "empty name", with_(name=""), ("name",)),
        Bad(CATEGORY_CREATE, "name too long", with_(name="x" * 33), ("name",)),
        Bad(CATEGORY_CREATE, "parent id is a string", with_(parent_id="1"), ("parent_id",), NOT_INT),
        Bad(CATEGORY_CREATE, "parent id is a float", with_(parent_id=1.5), ("parent_id",), NOT_INT),
        Bad(CATEGORY_CREATE, "parent id is a boolean", with_(parent_id=True), ("parent_id",), NOT_INT),
        Bad(CATEGORY_CREATE, "parent id 0", with_(parent_id=0), ("parent_id",)),
        Bad(CATEGORY_CREATE, "parent id past bigint", with_(parent_id=MAX_ID + 1), ("parent_id",)),
        Bad(CATEGORY_CREATE, "sort order too large", with_(sort_order=10_001), ("sort_order",)),
        Bad(CATEGORY_CREATE, "sort order is a string", with_(sort_order="1"), ("sort_order",), NOT_INT),
        Bad(
            CATEGORY_CREATE,
            "a sub-category under a sub-category",
            lambda w, valid: {**valid, "parent_id": w.sub_category_id},
            ("parent_id",),
            code="invalid_input",
        ),
        Bad(
            CATEGORY_CREATE,
            "parent of another merchant",
            lambda w, valid: {**valid, "parent_id": w.other_category_id},
            ("parent_id",),
            code="category_not_found",
        ),
        Bad(
            CATEGORY_CREATE,
            "parent that does not exist",
            with_(parent_id=MISSING_ID),
            ("parent_id",),
            code="category_not_found",
        ),
        Bad(CATEGORY_UPDATE, "empty name", with_(name=""), ("name",)),
        Bad(CATEGORY_UPDATE, "sort order is a float", with_(sort_order=2.5), ("sort_order",), NOT_INT),
        Bad(CATEGORY_UPDATE, "categories do not move", with_(parent_id=1), ("parent_id",), UNKNOWN),
        # products: create
        Bad(PRODUCT_CREATE, "no title", without("title"), ("title",), "Missing data for required field."),
        Bad(PRODUCT_CREATE, "no SKUs", without("skus"), ("skus",), "Missing data for required field."),
        Bad(PRODUCT_CREATE, "an empty list of SKUs", with_(skus=[]), ("skus",)),
        Bad(
            PRODUCT_CREATE,
            "201 SKUs",
            skus(lambda w: [{"specs": {"n": str(i)}, "price": 1} for i in range(201)]),
            ("skus",),
        ),
        Bad(PRODUCT_CREATE, "title too long", with_(title="x" * 121), ("title",)),
        Bad(PRODUCT_CREATE, "description too long", with_(description="x" * 20001), ("description",)),
        Bad(PRODUCT_CREATE, "price is a string", with_sku(0, price="2990"), ("skus", "0", "price"), NOT_INT),
        Bad(PRODUCT_CREATE, "price is a float", with_sku(0, price=29.9), ("skus", "0", "price"), NOT_INT),
        Bad(PRODUCT_CREATE, "price is a whole float", with_sku(0, price=2990.0), ("skus", "0", "price"), NOT_INT),
        Bad(PRODUCT_CREATE, "price is a boolean", with_sku(0, price=True), ("skus", "0", "price"), NOT_INT),
        Bad(PRODUCT_CREATE, "negative price", with_sku(0, price=-1), ("skus", "0", "price")),
        Bad(PRODUCT_CREATE, "price past the maximum", with_sku(1, price=MAX_FEN + 1), ("skus", "1", "price")),
        Bad(PRODUCT_CREATE, "negative market price", with_sku(0, market_price=-5), ("skus", "0", "market_price")),
        Bad(PRODUCT_CREATE, "a new SKU without a price", with_sku(1, price=DROP), ("skus", "1", "price")),
        Bad(PRODUCT_CREATE, "price is null", with_sku(1, price=None), ("skus", "1", "price"), "Field may not be null."),
        Bad(PRODUCT_CREATE, "negative stock", with_sku(0, stock=-1), ("skus", "0", "stock")),
        Bad(PRODUCT_CREATE, "stock past the maximum", with_sku(0, stock=10_000_001), ("skus", "0", "stock")),
        Bad(PRODUCT_CREATE, "stock is a string", with_sku(0, stock="10"), ("skus", "0", "stock"), NOT_INT),
        Bad(PRODUCT_CREATE, "a SKU is not an object", skus(lambda w: [5]), ("skus", "0", "_schema")),
        Bad(
            PRODUCT_CREATE,
            "four spec names",
            with_sku(0, specs={"a": "1", "b": "2", "c": "3", "d": "4"}),
            ("skus", "0", "specs"),
        ),
        Bad(PRODUCT_CREATE, "spec value too long", with_sku(0, specs={"规格": "x" * 33}), ("skus", "0", "specs")),
        Bad(PRODUCT_CREATE, "spec value is a number", with_sku(0, specs={"规格": 3}), ("skus", "0", "specs")),
        Bad(PRODUCT_CREATE, "SKU code too long", with_sku(0, code="x" * 65), ("skus", "0", "code")),
        Bad(PRODUCT_CREATE, "a new product's SKU with an id", with_sku(0, id=1), ("skus",)),
        Bad(PRODUCT_CREATE, "a SKU's sales are the server's", with_sku(0, sales=100), ("skus", "0", "sales"), UNKNOWN),
        Bad(
            PRODUCT_CREATE,
            "a SKU's active flag is the server's",
            with_sku(0, active=False),
            ("skus", "0", "active"),
            UNKNOWN,
        ),
        Bad(
            PRODUCT_CREATE,
            "SKUs naming different specs",
            with_sku(1, specs={"颜色": "红"}),
            ("skus",),
            "every SKU of a product must name the same specs",
            code="invalid_input",
        ),
        Bad(
            PRODUCT_CREATE,
            "two SKUs with the same specs",
            with_sku(1, specs={"规格": "3斤"}),
            ("skus",),
            "two SKUs have the same spec values",
            code="invalid_input",
        ),
        Bad(
            PRODUCT_CREATE,
            "ten images",
            with_(images=[f"https://img.example.com/{i}.jpg" for i in range(10)]),
            ("images",),
        ),
        Bad(PRODUCT_CREATE, "an image that is not a URL", with_(images=["not a url"]), ("images", "0")),
        Bad(
            PRODUCT_CREATE,
            "an image that is not http(s)",
            with_(images=["ftp://img.example.com/a.jpg"]),
            ("images", "0"),
        ),
        Bad(PRODUCT_CREATE, "images is a string", with_(images="https://img.example.com/a.jpg"), ("images",)),
        Bad(PRODUCT_CREATE, "category id is a string", with_(category_id="2"), ("category_id",), NOT_INT),
        Bad(PRODUCT_CREATE, "category id past bigint", with_(category_id=MAX_ID + 1), ("category_id",)),
        Bad(
            PRODUCT_CREATE,
            "category of another merchant",
            lambda w, valid: {**valid, "category_id": w.other_category_id},
            ("category_id",),
            code="category_not_found",
        ),
        Bad(PRODUCT_CREATE, "status is the server's", with_(status="on_shelf"), ("status",), UNKNOWN),
        Bad(PRODUCT_CREATE, "merchant is the token's", with_(merchant_id=1), ("merchant_id",), UNKNOWN),
        Bad(PRODUCT_CREATE, "sales are the server's", with_(sales=9999), ("sales",), UNKNOWN),
        Bad(PRODUCT_CREATE, "the price range is the SKUs'", with_(price_min=1), ("price_min",), UNKNOWN),
        Bad(PRODUCT_CREATE, "a product has no price of its own", with_(price=1), ("price",), UNKNOWN),
        Bad(PRODUCT_CREATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
        # products: update
        Bad(PRODUCT_UPDATE, "empty title", with_(title=""), ("title",)),
        Bad(PRODUCT_UPDATE, "an empty list of SKUs", with_(skus=[]), ("skus",)),
        Bad(PRODUCT_UPDATE, "price is a string", with_sku(0, price="4190"), ("skus", "0", "price"), NOT_INT),
        Bad(PRODUCT_UPDATE, "a SKU id is a string", with_sku(0, id="1"), ("skus", "0", "id"), NOT_INT),
        Bad(PRODUCT_UPDATE, "a SKU id past bigint", with_sku(0, id=MAX_ID + 1), ("skus", "0", "id")),
        Bad(
            PRODUCT_UPDATE,
            "stock set on a SKU",
            with_sku(0, stock=999),
            ("skus", "0", "stock"),
            "use the stock adjustment endpoint",
            code="stock_not_editable",
        ),
        Bad(
            PRODUCT_UPDATE,
            "the same SKU twice",
            skus(lambda w: [{"id": w.sku_id, "price": 1}, {"id": w.sku_id, "price": 2}]),
            ("skus", "1", "id"),
            code="duplicate_sku",
        ),
        Bad(
            PRODUCT_UPDATE,
            "a SKU that does not exist",
            with_sku(0, id=MISSING_ID),
            ("skus", "0", "id"),
            code="sku_not_found",
        ),
        Bad(
            PRODUCT_UPDATE,
            "a new SKU naming other specs",
            with_sku(2, specs={"颜色": "红"}),
            ("skus",),
            "every SKU of a product must name the same specs",
            code="invalid_input",
        ),
        Bad(
            PRODUCT_UPDATE,
            "a new SKU without a price",
            with_sku(2, price=DROP),
            ("skus", "2", "price"),
            "a new SKU needs a price",
        ),
        Bad(
            PRODUCT_UPDATE,
            "category of another merchant",
            lambda w, valid: {**valid, "category_id": w.other_category_id},
            ("category_id",),
            code="category_not_found",
        ),
        Bad(PRODUCT_UPDATE, "an image that is not a URL", with_(images=["nope"]), ("images", "0")),
        Bad(PRODUCT_UPDATE, "status is the shelf endpoint's", with_(status="on_shelf"), ("status",), UNKNOWN),
        Bad(PRODUCT_UPDATE, "merchant is the token's", with_(merchant_id=1), ("merchant_id",), UNKNOWN),
        Bad(PRODUCT_UPDATE, "sales are the server's", with_(sales=9999), ("sales",), UNKNOWN),
        Bad(PRODUCT_UPDATE, "the price range is the SKUs'", with_(price_min=1), ("price_min",), UNKNOWN),
        Bad(PRODUCT_UPDATE, "a product has no price of its own", with_(price=1), ("price",), UNKNOWN),
        Bad(PRODUCT_UPDATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
        # the shelf
        Bad(SHELF, "no on_shelf", without("on_shelf"), ("on_shelf",), "Missing data for required field."),
        Bad(SHELF, "on_shelf is not a boolean", with_(on_shelf="maybe"), ("on_shelf",), "Not a valid boolean."),
        Bad(SHELF, "on_shelf is null", with_(on_shelf=None), ("on_shelf",)),
        Bad(SHELF, "status is not settable", with_(status="on_shelf"), ("status",), UNKNOWN),
        # stock
        Bad(STOCK_ADJUST, "no delta", without("delta"), ("delta",), "Missing data for required field."),
        Bad(STOCK_ADJUST, "delta 0", with_(delta=0), ("delta",), "must not be 0"),
        Bad(STOCK_ADJUST, "delta is a string", with_(delta="5"), ("delta",), NOT_INT),
        Bad(STOCK_ADJUST, "delta is a float", with_(delta=1.5), ("delta",), NOT_INT),
        Bad(STOCK_ADJUST, "delta is a boolean", with_(delta=True), ("delta",), NOT_INT),
        Bad(STOCK_ADJUST, "delta too large", with_(delta=10_000_001), ("delta",)),
        Bad(STOCK_ADJUST, "delta too small", with_(delta=-10_000_001), ("delta",)),
        Bad(STOCK_ADJUST, "no reason", without("reason"), ("reason",), "Missing data for required field."),
        Bad(STOCK_ADJUST, "unknown reason", with_(reason="theft"), ("reason",)),
        Bad(STOCK_ADJUST, "note too long", with_(note="x" * 201), ("note",)),
        Bad(STOCK_ADJUST, "the stock after is the server's", with_(stock_after=1), ("stock_after",), UNKNOWN),
        Bad(STOCK_ADJUST, "the staff is the token's", with_(staff_id=1), ("staff_id",), UNKNOWN),
        # the member product list
        Bad(MEMBER_PRODUCTS, "limit 0", with_(limit=0), ("limit",)),
        Bad(MEMBER_PRODUCTS, "limit 500", with_(limit=500), ("limit",)),
        Bad(MEMBER_PRODUCTS, "limit is a word", with_(limit="ten"), ("limit",), NOT_INT),
        Bad(MEMBER_PRODUCTS, "limit is a fraction", with_(limit="1.5"), ("limit",), NOT_INT),
        Bad(MEMBER_PRODUCTS, "unknown sort", with_(sort="cheapest"), ("sort",)),
        Bad(MEMBER_PRODUCTS, "category id 0", with_(category_id=0), ("category_id",)),
        Bad(MEMBER_PRODUCTS, "category id is a word", with_(category_id="fruit"), ("category_id",), NOT_INT),
        Bad(MEMBER_PRODUCTS, "category id past bigint", with_(category_id=MAX_ID + 1), ("category_id",)),
        Bad(MEMBER_PRODUCTS, "empty search", with_(q=""), ("q",)),
        Bad(MEMBER_PRODUCTS, "search too long", with_(q="x" * 51), ("q",)),
        Bad(MEMBER_PRODUCTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(MEMBER_PRODUCTS, "a cursor too long", with_(cursor="A" * 201), ("cursor",)),
        Bad(
            MEMBER_PRODUCTS,
            "a cursor of another sort",
            with_(cursor=cursor_of([5])),
            ("cursor",),
            code="invalid_cursor",
        ),
        Bad(
            MEMBER_PRODUCTS,
            "a cursor of booleans",
            with_(cursor=cursor_of([True, 1])),
            ("cursor",),
            code="invalid_cursor",
        ),
        Bad(
            MEMBER_PRODUCTS,
            "a cursor past bigint",
            with_(cursor=cursor_of([2**64, 1])),
            ("cursor",),
            code="invalid_cursor",
        ),
        Bad(
            MEMBER_PRODUCTS,
            "a cursor of strings",
            with_(cursor=cursor_of(["1990", "3"])),
            ("cursor",),
            code="invalid_cursor",
        ),
        # the staff product list
        Bad(STAFF_PRODUCTS, "unknown status", with_(status="deleted"), ("status",)),
        Bad(STAFF_PRODUCTS, "limit 0", with_(limit=0), ("limit",)),
        Bad(STAFF_PRODUCTS, "limit 500", with_(limit=500), ("limit",)),
        Bad(STAFF_PRODUCTS, "category id is a word", with_(category_id="x"), ("category_id",), NOT_INT),
        Bad(STAFF_PRODUCTS, "empty search", with_(q=""), ("q",)),
        Bad(STAFF_PRODUCTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(
            STAFF_PRODUCTS, "a cursor of a boolean", with_(cursor=cursor_of([True])), ("cursor",), code="invalid_cursor"
        ),
        Bad(
            STAFF_PRODUCTS, "a cursor past bigint", with_(cursor=cursor_of([2**63])), ("cursor",), code="invalid_cursor"
        ),
        # stock movements
        Bad(STOCK_MOVEMENTS, "limit 0", with_(limit=0), ("limit",)),
        Bad(STOCK_MOVEMENTS, "limit 500", with_(limit=500), ("limit",)),
        Bad(STOCK_MOVEMENTS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(
            STOCK_MOVEMENTS,
            "a cursor of an object",
            with_(cursor=cursor_of({"id": 1})),
            ("cursor",),
            code="invalid_cursor",
        ),
        Bad(
            STOCK_MOVEMENTS,
            "a cursor past bigint",
            with_(cursor=cursor_of([2**70])),
            ("cursor",),
            code="invalid_cursor",
        ),
    ]
)


def _new_product(shop: Shop, category_id: int) -> dict[str, Any]:
    return {"title": "new", "category_id": category_id, "skus": [{"specs": {"规格": "1个"}, "price": 100}]}


# --- tenant isolation ---------------------------------------------------------------------------

registry.add_path_cases(
    [
        PathCase("GET", "/api/v1/products/<int:product_id>", "member", {"product_id": "product_id"}),
        PathCase("GET", "/api/v1/merchant/products/<int:product_id>", "staff", {"product_id": "product_id"}),
        PathCase(
            "PATCH",
            "/api/v1/merchant/products/<int:product_id>",
            "staff",
            {"product_id": "product_id"},
            lambda s: {
                "title": "taken over",
                "description": "gone",
                "images": ["https://img.example.com/taken.jpg"],
                "category_id": None,
                "skus": [{"id": s.sku_id, "price": 1, "market_price": 2}],
            },
        ),
        PathCase(
            "PUT",
            "/api/v1/merchant/products/<int:product_id>/shelf",
            "staff",
            {"product_id": "product_id"},
            lambda s: {"on_shelf": False},
        ),
        PathCase(
            "POST",
            "/api/v1/merchant/skus/<int:sku_id>/stock-adjustments",
            "staff",
            {"sku_id": "sku_id"},
            lambda s: {"delta": -3, "reason": "damage", "note": "dropped"},
            ok=201,
        ),
        PathCase("GET", "/api/v1/merchant/skus/<int:sku_id>/stock-movements", "staff", {"sku_id": "sku_id"}),
        PathCase(
            "PATCH",
            "/api/v1/merchant/categories/<int:category_id>",
            "staff",
            {"category_id": "empty_category_id"},
            lambda s: {"name": "taken over", "sort_order": 9},
        ),
        PathCase(
            "DELETE",
            "/api/v1/merchant/categories/<int:category_id>",
            "staff",
            {"category_id": "empty_category_id"},
            ok=204,
        ),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "product created in another merchant's category",
            "POST",
            lambda a: f"{PREFIX}/merchant/products",
            _new_product,
            "sub_category_id",
            ("category_id",),
        ),
        BodyCase(
            "product moved to another merchant's category",
            "PATCH",
            lambda a: f"{PREFIX}/merchant/products/{a.product_id}",
            lambda a, category_id: {"category_id": category_id},
            "sub_category_id",
            ("category_id",),
        ),
        BodyCase(
            "product given another merchant's SKU",
            "PATCH",
            lambda a: f"{PREFIX}/merchant/products/{a.product_id}",
            lambda a, sku_id: {"skus": [{"id": a.sku_id}, {"id": sku_id, "price": 1}]},
            "second_sku_id",
            ("skus", "1", "id"),
        ),
        BodyCase(
            "sub-category under another merchant's category",
            "POST",
            lambda a: f"{PREFIX}/merchant/categories",
            lambda a, parent_id: {"name": "new", "parent_id": parent_id},
            "top_category_id",
            ("parent_id",),
        ),
    ]
)
