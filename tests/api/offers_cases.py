"""Invalid-input and tenant-isolation cases of the flash-sale (秒杀) endpoints: staff set a quota of
a SKU aside for a window at a flash price; members buy from a running sale.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.

The member's list and one sale (GET /flash-sales, GET /flash-sales/<id>) and the staff's one sale
(GET /merchant/flash-sales/<id>) take no input: they have path cases only.

Group buys (拼团) follow: staff set a quota of a SKU aside for groups of a size at a group price;
a member opens a group with their order, and others join it (an order for it) once the
initiator's order is paid (the group is forming). The member's list and one group buy (GET
/group-buys, GET /group-buys/<id>), the staff's one group buy (GET /merchant/group-buys/<id>) and
one group (GET /groups/<id>) take no input: they have path cases only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api.schemas.common import MAX_FEN, MAX_ID
from shop.core.db import utcnow
from tests.coverage import registry
from tests.coverage.invalid_input import (
    ADDRESS,
    DROP,
    KEY,
    KEY_HEADER,
    MISSING_ID,
    NOT_DATETIME,
    NOT_INT,
    NOT_NULL,
    NOT_STRING,
    PREFIX,
    REQUIRED,
    UNKNOWN,
    Bad,
    Endpoint,
    World,
    page_cases,
    with_,
    with_address,
    without,
)
from tests.coverage.isolation import KEY as ISOLATION_KEY
from tests.coverage.isolation import BodyCase, PathCase, Shop
from tests.factories import fake_pay, member_headers

MF = f"{PREFIX}/merchant/flash-sales"
SALE = f"{MF}/<int:offer_id>"
MEMBER_SALE = f"{PREFIX}/flash-sales/<int:offer_id>"

SALES = (MF, "GET")
SALE_CREATE = (MF, "POST")
SALE_UPDATE = (SALE, "PATCH")
SALE_END = (f"{SALE}/end", "POST")
FLASH_ORDER = (f"{MEMBER_SALE}/orders", "POST")

OUT_OF_RANGE = "between 2000-01-01 and 9999-01-01 (UTC)"
AFTER_START = "must be after starts_at"


# --- rows, made through the API as staff and members would ----------------------------------------


def iso(minutes: int) -> str:
    """An aware ISO datetime `minutes` from now."""
    return (utcnow() + timedelta(minutes=minutes)).isoformat()


def sale_body(sku_id: int, **overrides: Any) -> dict[str, Any]:
    """A running flash sale: from a minute ago to an hour from now."""
    return {
        "sku_id": sku_id,
        "title": "限时秒杀",
        "price": 990,
        "quota": 3,
        "per_member_limit": 5,
        "starts_at": iso(-1),
        "ends_at": iso(60),
        "payment_minutes": 10,
        **overrides,
    }


def make_sale(client: Any, owner: dict[str, str], sku_id: int, **overrides: Any) -> int:
    response = client.post(MF, json=sale_body(sku_id, **overrides), headers=owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def flash_order_body(quantity: int = 1, **overrides: Any) -> dict[str, Any]:
    return {"quantity": quantity, "fulfilment": "delivery", "address": dict(ADDRESS), **overrides}


def buy(client: Any, member: dict[str, str], offer_id: int, key: str, quantity: int = 1) -> dict[str, Any]:
    headers = {**member, "Idempotency-Key": key}
    response = client.post(f"{PREFIX}/flash-sales/{offer_id}/orders", json=flash_order_body(quantity), headers=headers)
    assert response.status_code == 201, response.json
    return response.json


# --- the invalid-input world's rows (Endpoint.setup) ------------------------------------------------


def _running_sale(client: Any, w: World) -> dict[str, Any]:
    """A running sale of 3 of the world's SKU (40 in stock), at most 5 per member."""
    return {"offer_id": make_sale(client, w.owner, w.sku_id)}


def _sale_with_a_buyer(client: Any, w: World) -> dict[str, Any]:
    """A running sale of 3 of the world's SKU; the member holds 2 of it (an unpaid order)."""
    offer_id = make_sale(client, w.owner, w.sku_id)
    buy(client, w.member, offer_id, "setup-flash-0001", quantity=2)
    return {"offer_id": offer_id}


registry.add_endpoints(
    {
        SALES: Endpoint(
            lambda w: MF,
            "staff",
            "query",
            lambda w: {"state": "running", "limit": 10},
            text_field="cursor",
            setup=_running_sale,
        ),
        SALE_CREATE: Endpoint(lambda w: MF, "staff", "json", lambda w: sale_body(w.sku_id), ok=201, text_field="title"),
        SALE_UPDATE: Endpoint(
            lambda w: f"{MF}/{w.extras['offer_id']}",
            "staff",
            "json",
            lambda w: {
                "title": "加场秒杀",
                "price": 890,
                "quota": 6,
                "per_member_limit": 3,
                "ends_at": iso(120),
                "payment_minutes": 15,
            },
            text_field="title",
            setup=_sale_with_a_buyer,
        ),
        SALE_END: Endpoint(
            lambda w: f"{MF}/{w.extras['offer_id']}/end", "staff", "json", lambda w: {}, setup=_running_sale
        ),
        FLASH_ORDER: Endpoint(
            lambda w: f"{PREFIX}/flash-sales/{w.extras['offer_id']}/orders",
            "member",
            "json",
            lambda w: flash_order_body(2, remark="放门口"),
            ok=201,
            text_field="remark",
            extra_headers=KEY,
            setup=_running_sale,
        ),
    }
)


# --- the bad requests ---------------------------------------------------------------------------


def _pickup_no_point(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """A pickup order's body without a point: no address either (a pickup needs none)."""
    return {**without("address")(w, valid), "fulfilment": "pickup"}


def _pickup_cases(key: tuple[str, str], no_point: Any) -> list[Bad]:
    """Pickup refused without an open pickup point of the merchant's (`no_point`: the body asking
    for pickup with none)."""
    return [
        Bad(key, "pickup without a pickup point", no_point, ("pickup_point_id",), code="pickup_point_invalid"),
        Bad(
            key,
            "pickup at another merchant's pickup point",
            lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.other_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
    ]


def _int_cases(key: tuple[str, str], name: str) -> list[Bad]:
    """An integer field sent as a string, a boolean, a fraction or null."""
    return [
        Bad(key, f"{name} is a string", with_(**{name: "5"}), (name,), NOT_INT),
        Bad(key, f"{name} is a boolean", with_(**{name: True}), (name,), NOT_INT),
        Bad(key, f"{name} is a fraction", with_(**{name: 5.5}), (name,), NOT_INT),
        Bad(key, f"{name} is null", with_(**{name: None}), (name,), NOT_NULL),
    ]


def _offer_terms_cases(key: tuple[str, str], *, title_char: str, title_number: int) -> list[Bad]:
    """What both kinds of offer check alike: the per-member limit (1..1000), the title, the window
    (aware ISO datetimes a timestamp column can hold, the end after the start), what the server
    keeps."""
    return [
        Bad(key, "per_member_limit 0", with_(per_member_limit=0), ("per_member_limit",)),
        Bad(key, "a per-member limit above 1000", with_(per_member_limit=1001), ("per_member_limit",)),
        *_int_cases(key, "per_member_limit"),
        Bad(key, "an empty title", with_(title=""), ("title",)),
        Bad(key, "a title past 120 characters", with_(title=title_char * 121), ("title",)),
        Bad(key, "a title that is a number", with_(title=title_number), ("title",), NOT_STRING),
        Bad(key, "a title null", with_(title=None), ("title",), NOT_NULL),
        Bad(key, "a naive start", with_(starts_at="2030-01-01T00:00:00"), ("starts_at",)),
        Bad(key, "a naive end", with_(ends_at="2030-01-01T00:00:00"), ("ends_at",)),
        Bad(key, "a start that is not a date", with_(starts_at="tomorrow"), ("starts_at",), NOT_DATETIME),
        Bad(key, "an end that is a number", with_(ends_at=1893456000), ("ends_at",), NOT_DATETIME),
        Bad(key, "a start null", with_(starts_at=None), ("starts_at",), NOT_NULL),
        Bad(key, "an end null", with_(ends_at=None), ("ends_at",), NOT_NULL),
        Bad(key, "a start in year 1", with_(starts_at="0001-01-01T00:00:00+08:00"), ("starts_at",), OUT_OF_RANGE),
        Bad(key, "an end in year 10000 in UTC", with_(ends_at="9999-12-31T23:59:59-08:00"), ("ends_at",), OUT_OF_RANGE),
        Bad(
            key,
            "an end at the start",
            lambda w, valid: {**valid, **_same_instant(30)},
            ("ends_at",),
            AFTER_START,
        ),
        Bad(key, "the state is the server's", with_(state="running"), ("state",), UNKNOWN),
        Bad(key, "the units left are the server's", with_(left=100), ("left",), UNKNOWN),
        Bad(key, "the units sold are the server's", with_(sold=0), ("sold",), UNKNOWN),
        Bad(key, "the units returned are the server's", with_(returned=0), ("returned",), UNKNOWN),
    ]


def _terms_cases(key: tuple[str, str]) -> list[Bad]:
    """What a sale's terms refuse, whether it is being made or changed."""
    return [
        *_offer_terms_cases(key, title_char="秒", title_number=7),
        # the flash price: whole fen, above 0
        Bad(key, "price 0", with_(price=0), ("price",)),
        Bad(key, "a negative price", with_(price=-990), ("price",)),
        Bad(key, "a price past the maximum", with_(price=MAX_FEN + 1), ("price",)),
        Bad(key, "a price in yuan", with_(price=9.9), ("price",), NOT_INT),
        Bad(key, "a price as a string", with_(price="990"), ("price",), NOT_INT),
        Bad(key, "a price that is a boolean", with_(price=True), ("price",), NOT_INT),
        Bad(key, "a price null", with_(price=None), ("price",), NOT_NULL),
        # the quota: 1..100000 units
        Bad(key, "quota 0", with_(quota=0), ("quota",)),
        Bad(key, "a negative quota", with_(quota=-1), ("quota",)),
        Bad(key, "a quota above 100000", with_(quota=100_001), ("quota",)),
        *_int_cases(key, "quota"),
        # the time to pay: 5..120 minutes
        Bad(key, "payment_minutes 4", with_(payment_minutes=4), ("payment_minutes",)),
        Bad(key, "payment_minutes 121", with_(payment_minutes=121), ("payment_minutes",)),
        Bad(key, "payment_minutes 0", with_(payment_minutes=0), ("payment_minutes",)),
        *_int_cases(key, "payment_minutes"),
        # the window, beyond what both kinds check
        Bad(key, "a start in 1999", with_(starts_at="1999-12-31T23:00:00+00:00"), ("starts_at",), OUT_OF_RANGE),
        Bad(
            key,
            "an end before the start",
            lambda w, valid: {**valid, "starts_at": iso(30), "ends_at": iso(20)},
            ("ends_at",),
            AFTER_START,
        ),
        # what is the route's or a group buy's
        Bad(key, "the kind is the route's", with_(kind="group_buy"), ("kind",), UNKNOWN),
        Bad(key, "a group buy's size", with_(group_size=3), ("group_size",), UNKNOWN),
        Bad(key, "ended early is the end action's", with_(ended_early_at=iso(0)), ("ended_early_at",), UNKNOWN),
        Bad(key, "the product is the SKU's", with_(product_id=1), ("product_id",), UNKNOWN),
    ]


def _same_instant(minutes: int) -> dict[str, str]:
    at = iso(minutes)
    return {"starts_at": at, "ends_at": at}


def _key_cases(key: tuple[str, str]) -> list[Bad]:
    """A flash order needs an Idempotency-Key of 8-64 characters of A-Z a-z 0-9 _ . : -"""
    return [
        Bad(
            key,
            name,
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": value},
        )
        for name, value in (
            ("no Idempotency-Key", None),
            ("an empty Idempotency-Key", ""),
            ("an Idempotency-Key too short", "1234567"),
            ("an Idempotency-Key too long", "k" * 65),
            ("an Idempotency-Key with spaces", "my flash 1"),
            ("an Idempotency-Key with a slash", "flash/000001"),
            ("an Idempotency-Key that is not ASCII", "秒杀秒杀秒杀秒杀"),
        )
    ]


registry.add_cases(
    [
        # the staff list of flash sales
        *page_cases(SALES),
        Bad(SALES, "an unknown state", with_(state="paused"), ("state",)),
        Bad(SALES, "a state that is empty", with_(state=""), ("state",)),
        Bad(SALES, "a filter it does not take", with_(sku_id=1), ("sku_id",), UNKNOWN),
        # a new flash sale
        *_terms_cases(SALE_CREATE),
        Bad(SALE_CREATE, "no SKU", without("sku_id"), ("sku_id",), REQUIRED),
        Bad(SALE_CREATE, "no price", without("price"), ("price",), REQUIRED),
        Bad(SALE_CREATE, "no quota", without("quota"), ("quota",), REQUIRED),
        Bad(SALE_CREATE, "no start", without("starts_at"), ("starts_at",), REQUIRED),
        Bad(SALE_CREATE, "no end", without("ends_at"), ("ends_at",), REQUIRED),
        Bad(SALE_CREATE, "an empty object", lambda w, valid: {}, ("sku_id",), REQUIRED),
        Bad(SALE_CREATE, "a SKU id as a string", with_(sku_id="1"), ("sku_id",), NOT_INT),
        Bad(SALE_CREATE, "a SKU id 0", with_(sku_id=0), ("sku_id",)),
        Bad(SALE_CREATE, "a SKU id past bigint", with_(sku_id=MAX_ID + 1), ("sku_id",)),
        Bad(SALE_CREATE, "a SKU id null", with_(sku_id=None), ("sku_id",), NOT_NULL),
        Bad(SALE_CREATE, "a SKU no shop has", with_(sku_id=MISSING_ID), ("sku_id",)),
        Bad(
            SALE_CREATE, "a SKU of another merchant", lambda w, valid: {**valid, "sku_id": w.other_sku_id}, ("sku_id",)
        ),
        Bad(
            SALE_CREATE,
            "a window that is over",
            lambda w, valid: {**valid, "starts_at": iso(-120), "ends_at": iso(-60)},
            ("ends_at",),
            "must be in the future",
        ),
        Bad(
            SALE_CREATE,
            "a quota above the SKU's stock",
            with_(quota=41),
            ("quota",),
            code="insufficient_stock",
            status=409,
        ),
        # changing a sale (running; the member holds 2 of its 3 units)
        *_terms_cases(SALE_UPDATE),
        Bad(SALE_UPDATE, "the SKU stays", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(
            SALE_UPDATE,
            "an end before the start it has",
            lambda w, valid: {**valid, "ends_at": iso(-120)},
            ("ends_at",),
            AFTER_START,
        ),
        Bad(
            SALE_UPDATE,
            "an end in the past",
            lambda w, valid: {**valid, "ends_at": (utcnow() - timedelta(seconds=5)).isoformat()},
            ("ends_at",),
        ),
        Bad(
            SALE_UPDATE,
            "a new start once it has started",
            lambda w, valid: {**valid, "starts_at": iso(10)},
            ("starts_at",),
            code="offer_started",
            status=409,
        ),
        Bad(
            SALE_UPDATE,
            "a quota below the units buyers hold",
            with_(quota=1),
            ("quota",),
            code="quota_below_sold",
            status=409,
        ),
        Bad(
            SALE_UPDATE,
            "more quota than the SKU has",
            with_(quota=3 + 38),  # the SKU has 37 left after the 3 set aside
            ("quota",),
            code="insufficient_stock",
            status=409,
        ),
        # ending a sale: the URL says everything
        Bad(SALE_END, "a body where none is taken", with_(ends_at=iso(0)), ("ends_at",), UNKNOWN),
        Bad(SALE_END, "a reason it does not take", with_(reason="卖完了"), ("reason",), UNKNOWN),
        # a member's flash order (a sale of 3 units, at most 5 per member)
        *_key_cases(FLASH_ORDER),
        Bad(FLASH_ORDER, "quantity 0", with_(quantity=0), ("quantity",)),
        Bad(FLASH_ORDER, "a negative quantity", with_(quantity=-1), ("quantity",)),
        Bad(FLASH_ORDER, "quantity 1001", with_(quantity=1001), ("quantity",)),
        *_int_cases(FLASH_ORDER, "quantity"),
        Bad(
            FLASH_ORDER,
            "more than the per-member limit",
            with_(quantity=6),
            None,
            code="offer_limit_reached",
            status=409,
        ),
        Bad(FLASH_ORDER, "more than the units left", with_(quantity=4), None, code="sold_out", status=409),
        Bad(FLASH_ORDER, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
        Bad(FLASH_ORDER, "an unknown fulfilment", with_(fulfilment="drone"), ("fulfilment",)),
        Bad(FLASH_ORDER, "a fulfilment that is a number", with_(fulfilment=1), ("fulfilment",), NOT_STRING),
        Bad(FLASH_ORDER, "a delivery without an address", without("address"), ("address",), code="address_required"),
        Bad(FLASH_ORDER, "the address is null", with_(address=None), ("address",), NOT_NULL),
        Bad(FLASH_ORDER, "the address is a string", with_(address="深圳南山"), ("address", "_schema")),
        Bad(FLASH_ORDER, "an address without a phone", with_address(phone=DROP), ("address", "phone"), REQUIRED),
        Bad(FLASH_ORDER, "a phone that is not one", with_address(phone="call me"), ("address", "phone")),
        Bad(FLASH_ORDER, "an unknown address field", with_address(lat=22.5), ("address", "lat"), UNKNOWN),
        Bad(
            FLASH_ORDER,
            "the NUL character in the address",
            with_address(detail="1 号\x00"),
            ("address", "detail"),
            "must not contain the NUL character",
        ),
        *_pickup_cases(FLASH_ORDER, _pickup_no_point),
        Bad(
            FLASH_ORDER,
            "pickup at a closed pickup point",
            lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.closed_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(FLASH_ORDER, "a pickup point id as a string", with_(pickup_point_id="1"), ("pickup_point_id",), NOT_INT),
        Bad(FLASH_ORDER, "a pickup point id past bigint", with_(pickup_point_id=MAX_ID + 1), ("pickup_point_id",)),
        Bad(FLASH_ORDER, "a remark too long", with_(remark="x" * 201), ("remark",)),
        Bad(FLASH_ORDER, "a remark that is a number", with_(remark=5), ("remark",), NOT_STRING),
        Bad(FLASH_ORDER, "coupons that are not a list", with_(coupons=12), ("coupons",)),
        Bad(FLASH_ORDER, "a coupon id as a string", with_(coupons=["12"]), ("coupons", "0"), NOT_INT),
        Bad(FLASH_ORDER, "eleven coupons", with_(coupons=list(range(1, 12))), ("coupons",)),
        Bad(
            FLASH_ORDER,
            "a coupon not in the wallet",
            with_(coupons=[MISSING_ID]),
            ("coupons", "0"),
            code="coupon_not_found",
        ),
        Bad(
            FLASH_ORDER,
            "coupons sent twice",
            with_(coupons=[], selections={"coupons": {"ids": []}}),
            ("coupons",),
        ),
        Bad(FLASH_ORDER, "selections that are a list", with_(selections=[]), ("selections",)),
        Bad(
            FLASH_ORDER,
            "a selection name that is not one",
            with_(selections={"Not A Name": {}}),
            ("selections",),
        ),
        Bad(
            FLASH_ORDER,
            "a selection no adjuster has",
            with_(selections={"lottery": {}}),
            ("selections",),
            code="unknown_selection",
        ),
        # the sale says what is bought and at what price
        Bad(FLASH_ORDER, "items as for a plain order", with_(items=[]), ("items",), UNKNOWN),
        Bad(FLASH_ORDER, "a SKU of its own", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(FLASH_ORDER, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
        Bad(FLASH_ORDER, "the cart has no part in it", with_(from_cart=True), ("from_cart",), UNKNOWN),
        Bad(FLASH_ORDER, "the offer is the URL's", with_(offer={"kind": "flash_sale", "id": 1}), ("offer",), UNKNOWN),
        Bad(FLASH_ORDER, "the status is the server's", with_(status="paid"), ("status",), UNKNOWN),
        Bad(FLASH_ORDER, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------


@registry.add_shop_part
def flash_sale_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """A running flash sale of 3 of the shop's second SKU (its first keeps only the movements
    tests/api/test_tenant_isolation.py counts)."""
    return {"flash_sale_id": make_sale(client, shop.owner, shop.second_sku_id)}


_SALE = {"offer_id": "flash_sale_id"}

registry.add_path_cases(
    [
        PathCase("GET", SALE, "staff", _SALE),
        PathCase(
            "PATCH",
            SALE,
            "staff",
            _SALE,
            lambda s: {"title": "被改了", "price": 1, "quota": 1, "per_member_limit": 1, "ends_at": iso(90)},
        ),
        PathCase("POST", f"{SALE}/end", "staff", _SALE),
        PathCase("GET", MEMBER_SALE, "member", _SALE),
        PathCase(
            "POST",
            f"{MEMBER_SALE}/orders",
            "member",
            _SALE,
            lambda s: flash_order_body(1),
            ok=201,
            extra_headers=ISOLATION_KEY,
        ),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a flash sale on another merchant's SKU",
            "POST",
            lambda a: MF,
            lambda a, sku_id: sale_body(sku_id),
            "second_sku_id",
            ("sku_id",),
        ),
        BodyCase(
            "a flash order for pickup at another merchant's pickup point",
            "POST",
            lambda a: f"{PREFIX}/flash-sales/{a.flash_sale_id}/orders",
            lambda a, point_id: {"quantity": 1, "fulfilment": "pickup", "pickup_point_id": point_id},
            "pickup_point_id",
            ("pickup_point_id",),
            caller="member",
            extra_headers=ISOLATION_KEY,
        ),
    ]
)


# --- group buys (拼团) -----------------------------------------------------------------------------

MG = f"{PREFIX}/merchant/group-buys"
GROUP_BUY = f"{MG}/<int:offer_id>"
MEMBER_GROUP_BUY = f"{PREFIX}/group-buys/<int:offer_id>"
GROUP = f"{PREFIX}/groups/<int:group_id>"

GROUP_BUYS = (MG, "GET")
GROUP_BUY_CREATE = (MG, "POST")
GROUP_BUY_UPDATE = (GROUP_BUY, "PATCH")
GROUP_BUY_END = (f"{GROUP_BUY}/end", "POST")
STAFF_GROUPS = (f"{GROUP_BUY}/groups", "GET")
FORMING_GROUPS = (f"{MEMBER_GROUP_BUY}/groups", "GET")
GROUP_OPEN = (f"{MEMBER_GROUP_BUY}/groups", "POST")
GROUP_JOIN = (f"{GROUP}/orders", "POST")
GROUP_OPEN_QUOTE = (f"{MEMBER_GROUP_BUY}/quote", "POST")
GROUP_JOIN_QUOTE = (f"{GROUP}/quote", "POST")
MY_GROUPS = (f"{PREFIX}/groups", "GET")

NOT_BOTH = "a leader_price or a leader_commission_bp, not both"


def group_buy_body(sku_id: int, **overrides: Any) -> dict[str, Any]:
    """A running group buy of 3-member groups: from a minute ago to a day from now."""
    return {
        "sku_id": sku_id,
        "title": "三人团",
        "price": 990,
        "group_size": 3,
        "time_limit_hours": 24,
        "on_expiry": "refund",
        "quota": 3,
        "per_member_limit": 5,
        "starts_at": iso(-1),
        "ends_at": iso(24 * 60),
        **overrides,
    }


def make_group_buy(client: Any, owner: dict[str, str], sku_id: int, **overrides: Any) -> int:
    response = client.post(MG, json=group_buy_body(sku_id, **overrides), headers=owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def group_order_body(quantity: int = 1, **overrides: Any) -> dict[str, Any]:
    """What opening or joining a group takes: the fulfilment fields of a flash order."""
    return flash_order_body(quantity, **overrides)


def group_quote_body(quantity: int = 1, **overrides: Any) -> dict[str, Any]:
    return {"quantity": quantity, "fulfilment": "delivery", **overrides}


def open_group(client: Any, member: dict[str, str], offer_id: int, key: str, quantity: int = 1) -> dict[str, Any]:
    """The member opens a group (their order, unpaid): {"group": ..., "order": ...}."""
    headers = {**member, "Idempotency-Key": key}
    response = client.post(f"{PREFIX}/group-buys/{offer_id}/groups", json=group_order_body(quantity), headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def forming_group(client: Any, initiator: dict[str, str], offer_id: int, key: str) -> tuple[int, int]:
    """A group whose initiator has paid their order: open to join (forming). Its id and the
    initiator's order's."""
    opened = open_group(client, initiator, offer_id, key)
    paid = fake_pay(client, opened["order"]["order_no"])
    assert paid.status_code == 200, paid.json
    group = client.get(f"{PREFIX}/groups/{opened['group']['id']}", headers=initiator).json
    assert (group["status"], group["joined"]) == ("forming", 1), group
    return group["id"], opened["order"]["id"]


# --- the invalid-input world's rows (Endpoint.setup) ------------------------------------------------


def _running_group_buy(client: Any, w: World) -> dict[str, Any]:
    """A running group buy of 3 of the world's SKU (40 in stock), at most 5 per member."""
    return {"offer_id": make_group_buy(client, w.owner, w.sku_id)}


def _group_buy_with_a_buyer(client: Any, w: World) -> dict[str, Any]:
    """A running group buy of 3 of the world's SKU with an initiator's price; the member opened a
    group with 2 of it (unpaid)."""
    offer_id = make_group_buy(client, w.owner, w.sku_id, leader_price=790)
    open_group(client, w.member, offer_id, "setup-group-0001", quantity=2)
    return {"offer_id": offer_id}


def _forming_group(client: Any, w: World) -> dict[str, Any]:
    """A running group buy of 3 of the world's SKU and a group of it whose initiator (another
    member of the merchant) paid for 1: forming, 2 units left for the world's member."""
    offer_id = make_group_buy(client, w.owner, w.sku_id)
    initiator = member_headers(client, w.code, name="initiator")
    group_id, _ = forming_group(client, initiator, offer_id, "setup-group-open")
    return {"offer_id": offer_id, "group_id": group_id}


registry.add_endpoints(
    {
        GROUP_BUYS: Endpoint(
            lambda w: MG,
            "staff",
            "query",
            lambda w: {"state": "running", "limit": 10},
            text_field="cursor",
            setup=_running_group_buy,
        ),
        GROUP_BUY_CREATE: Endpoint(
            lambda w: MG,
            "staff",
            "json",
            lambda w: group_buy_body(w.sku_id, leader_price=790),
            ok=201,
            text_field="title",
        ),
        GROUP_BUY_UPDATE: Endpoint(
            lambda w: f"{MG}/{w.extras['offer_id']}",
            "staff",
            "json",
            lambda w: {
                "title": "两人团加场",
                "price": 890,
                "leader_price": None,  # a reward for the initiator instead of their price
                "leader_commission_bp": 500,
                "time_limit_hours": 12,
                "on_expiry": "complete",
                "quota": 6,
                "per_member_limit": 3,
                "ends_at": iso(48 * 60),
            },
            text_field="title",
            setup=_group_buy_with_a_buyer,
        ),
        GROUP_BUY_END: Endpoint(
            lambda w: f"{MG}/{w.extras['offer_id']}/end", "staff", "json", lambda w: {}, setup=_forming_group
        ),
        STAFF_GROUPS: Endpoint(
            lambda w: f"{MG}/{w.extras['offer_id']}/groups",
            "staff",
            "query",
            lambda w: {"status": "forming", "limit": 10},
            text_field="cursor",
            setup=_forming_group,
        ),
        FORMING_GROUPS: Endpoint(
            lambda w: f"{PREFIX}/group-buys/{w.extras['offer_id']}/groups",
            "member",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_forming_group,
        ),
        MY_GROUPS: Endpoint(
            lambda w: f"{PREFIX}/groups", "member", "query", lambda w: {"limit": 10}, text_field="cursor"
        ),
        GROUP_OPEN: Endpoint(
            lambda w: f"{PREFIX}/group-buys/{w.extras['offer_id']}/groups",
            "member",
            "json",
            lambda w: group_order_body(2, remark="拼一个"),
            ok=201,
            text_field="remark",
            extra_headers=KEY,
            setup=_running_group_buy,
        ),
        GROUP_JOIN: Endpoint(
            lambda w: f"{PREFIX}/groups/{w.extras['group_id']}/orders",
            "member",
            "json",
            lambda w: group_order_body(2, remark="来参团"),
            ok=201,
            text_field="remark",
            extra_headers=KEY,
            setup=_forming_group,
        ),
        GROUP_OPEN_QUOTE: Endpoint(
            lambda w: f"{PREFIX}/group-buys/{w.extras['offer_id']}/quote",
            "member",
            "json",
            lambda w: group_quote_body(2),
            setup=_running_group_buy,
        ),
        GROUP_JOIN_QUOTE: Endpoint(
            lambda w: f"{PREFIX}/groups/{w.extras['group_id']}/quote",
            "member",
            "json",
            lambda w: group_quote_body(2),
            setup=_forming_group,
        ),
    }
)


# --- the bad requests ---------------------------------------------------------------------------


def _group_terms_cases(key: tuple[str, str]) -> list[Bad]:
    """What a group buy's terms refuse, whether it is being made or changed."""
    return [
        *_offer_terms_cases(key, title_char="团", title_number=3),
        # the group price: whole fen, above 0
        Bad(key, "price 0", with_(price=0), ("price",)),
        Bad(key, "a negative price", with_(price=-990), ("price",)),
        Bad(key, "a price past the maximum", with_(price=MAX_FEN + 1), ("price",)),
        Bad(key, "a price in yuan", with_(price=9.9), ("price",), NOT_INT),
        Bad(key, "a price as a string", with_(price="990"), ("price",), NOT_INT),
        Bad(key, "a price that is a boolean", with_(price=True), ("price",), NOT_INT),
        Bad(key, "a price null", with_(price=None), ("price",), NOT_NULL),
        # the initiator's price (null: none): whole fen, above 0
        Bad(key, "leader_price 0", with_(leader_price=0), ("leader_price",)),
        Bad(key, "a negative leader_price", with_(leader_price=-1), ("leader_price",)),
        Bad(key, "a leader_price past the maximum", with_(leader_price=MAX_FEN + 1), ("leader_price",)),
        Bad(key, "a leader_price in yuan", with_(leader_price=7.9), ("leader_price",), NOT_INT),
        Bad(key, "a leader_price as a string", with_(leader_price="790"), ("leader_price",), NOT_INT),
        # the initiator's reward instead: 1..10000 basis points, never with a leader_price
        Bad(
            key,
            "a leader_price and a leader_commission_bp",
            with_(leader_price=790, leader_commission_bp=500),
            ("leader_commission_bp",),
            NOT_BOTH,
        ),
        Bad(key, "leader_commission_bp 0", with_(leader_commission_bp=0, leader_price=None), ("leader_commission_bp",)),
        Bad(
            key,
            "leader_commission_bp 10001",
            with_(leader_commission_bp=10_001, leader_price=None),
            ("leader_commission_bp",),
        ),
        Bad(
            key,
            "a negative leader_commission_bp",
            with_(leader_commission_bp=-1, leader_price=None),
            ("leader_commission_bp",),
        ),
        Bad(
            key,
            "a leader_commission_bp in percent",
            with_(leader_commission_bp=2.5, leader_price=None),
            ("leader_commission_bp",),
            NOT_INT,
        ),
        Bad(
            key,
            "a leader_commission_bp as a string",
            with_(leader_commission_bp="500", leader_price=None),
            ("leader_commission_bp",),
            NOT_INT,
        ),
        # the time a group has once its initiator paid: 1..720 hours
        Bad(key, "time_limit_hours 0", with_(time_limit_hours=0), ("time_limit_hours",)),
        Bad(key, "time_limit_hours 721", with_(time_limit_hours=721), ("time_limit_hours",)),
        Bad(key, "a negative time limit", with_(time_limit_hours=-24), ("time_limit_hours",)),
        *_int_cases(key, "time_limit_hours"),
        # what a group short at its time comes to
        Bad(key, "an unknown on_expiry", with_(on_expiry="extend"), ("on_expiry",)),
        Bad(key, "on_expiry empty", with_(on_expiry=""), ("on_expiry",)),
        Bad(key, "on_expiry in capitals", with_(on_expiry="REFUND"), ("on_expiry",)),
        Bad(key, "on_expiry that is a boolean", with_(on_expiry=True), ("on_expiry",), NOT_STRING),
        Bad(key, "on_expiry null", with_(on_expiry=None), ("on_expiry",), NOT_NULL),
        # the quota: 1..100000 units
        Bad(key, "quota 0", with_(quota=0), ("quota",)),
        Bad(key, "a negative quota", with_(quota=-1), ("quota",)),
        Bad(key, "a quota above 100000", with_(quota=100_001), ("quota",)),
        *_int_cases(key, "quota"),
        # the window, beyond what both kinds check
        Bad(key, "a start that is a date alone", with_(starts_at="2030-01-01"), ("starts_at",)),
        Bad(
            key,
            "the window the wrong way round",
            lambda w, valid: {**valid, "starts_at": iso(60), "ends_at": iso(30)},
            ("ends_at",),
            AFTER_START,
        ),
        # what the server keeps, and what is the flash sale's
        Bad(key, "the groups are the server's", with_(groups={"forming": 1}), ("groups",), UNKNOWN),
        Bad(key, "模拟成团 is on_expiry's", with_(completes_when_short=True), ("completes_when_short",), UNKNOWN),
        Bad(key, "the kind is the route's", with_(kind="flash_sale"), ("kind",), UNKNOWN),
        Bad(key, "a flash sale's time to pay", with_(payment_minutes=10), ("payment_minutes",), UNKNOWN),
        Bad(key, "ended early is the end action's", with_(ended_early_at=iso(0)), ("ended_early_at",), UNKNOWN),
        Bad(key, "closing is the server's", with_(closed_at=iso(0)), ("closed_at",), UNKNOWN),
        Bad(key, "the product is the SKU's", with_(product_id=1), ("product_id",), UNKNOWN),
    ]


def _group_quote_cases(key: tuple[str, str]) -> list[Bad]:
    """What a group order's quote refuses in its body (the same terms as the order, no address)."""
    return [
        Bad(key, "quantity 0", with_(quantity=0), ("quantity",)),
        Bad(key, "quantity 1001", with_(quantity=1001), ("quantity",)),
        *_int_cases(key, "quantity"),
        Bad(key, "more than the per-member limit", with_(quantity=6), None, code="offer_limit_reached", status=409),
        Bad(key, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
        Bad(key, "an unknown fulfilment", with_(fulfilment="drone"), ("fulfilment",)),
        Bad(key, "a fulfilment null", with_(fulfilment=None), ("fulfilment",), NOT_NULL),
        Bad(key, "an address: a quote takes none", with_(address={"name": "王"}), ("address",), UNKNOWN),
        *_pickup_cases(key, with_(fulfilment="pickup")),
        Bad(key, "a coupon id that is a string", with_(coupons=["1"]), ("coupons", "0"), NOT_INT),
        Bad(key, "more than 10 coupons", with_(coupons=list(range(1, 12))), ("coupons",)),
        Bad(
            key,
            "a selection of no adjuster",
            with_(selections={"nobody": {}}),
            ("selections",),
            code="unknown_selection",
        ),
    ]


def _group_order_cases(key: tuple[str, str]) -> list[Bad]:
    """What opening or joining a group refuses in its body (a group buy of 3 units, at most 5 per
    member; when joining, the initiator holds 1 of them)."""
    return [
        *_key_cases(key),
        Bad(key, "quantity 0", with_(quantity=0), ("quantity",)),
        Bad(key, "a negative quantity", with_(quantity=-1), ("quantity",)),
        Bad(key, "quantity 1001", with_(quantity=1001), ("quantity",)),
        *_int_cases(key, "quantity"),
        Bad(key, "more than the per-member limit", with_(quantity=6), None, code="offer_limit_reached", status=409),
        Bad(key, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
        Bad(key, "an unknown fulfilment", with_(fulfilment="drone"), ("fulfilment",)),
        Bad(key, "a fulfilment in capitals", with_(fulfilment="DELIVERY"), ("fulfilment",)),
        Bad(key, "a fulfilment that is a number", with_(fulfilment=1), ("fulfilment",), NOT_STRING),
        Bad(key, "a fulfilment null", with_(fulfilment=None), ("fulfilment",), NOT_NULL),
        Bad(key, "a delivery without an address", without("address"), ("address",), code="address_required"),
        Bad(key, "the address is null", with_(address=None), ("address",), NOT_NULL),
        Bad(key, "the address is a string", with_(address="深圳南山"), ("address", "_schema")),
        Bad(key, "an address without a phone", with_address(phone=DROP), ("address", "phone"), REQUIRED),
        Bad(key, "a phone that is not one", with_address(phone="call me"), ("address", "phone")),
        Bad(key, "an unknown address field", with_address(lat=22.5), ("address", "lat"), UNKNOWN),
        Bad(
            key,
            "the NUL character in the address",
            with_address(detail="1 号\x00"),
            ("address", "detail"),
            "must not contain the NUL character",
        ),
        *_pickup_cases(key, _pickup_no_point),
        Bad(
            key,
            "pickup at a closed pickup point",
            lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.closed_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(key, "a pickup point id as a string", with_(pickup_point_id="1"), ("pickup_point_id",), NOT_INT),
        Bad(key, "a pickup point id past bigint", with_(pickup_point_id=MAX_ID + 1), ("pickup_point_id",)),
        Bad(key, "a remark too long", with_(remark="x" * 201), ("remark",)),
        Bad(key, "a remark that is a number", with_(remark=5), ("remark",), NOT_STRING),
        Bad(key, "coupons that are not a list", with_(coupons=12), ("coupons",)),
        Bad(key, "a coupon id as a string", with_(coupons=["12"]), ("coupons", "0"), NOT_INT),
        Bad(key, "eleven coupons", with_(coupons=list(range(1, 12))), ("coupons",)),
        Bad(key, "a coupon not in the wallet", with_(coupons=[MISSING_ID]), ("coupons", "0"), code="coupon_not_found"),
        Bad(key, "coupons sent twice", with_(coupons=[], selections={"coupons": {"ids": []}}), ("coupons",)),
        Bad(key, "selections that are a list", with_(selections=[]), ("selections",)),
        Bad(
            key,
            "a selection no adjuster has",
            with_(selections={"lottery": {}}),
            ("selections",),
            code="unknown_selection",
        ),
        # the group buy says what is bought and at what price; the URL which group
        Bad(key, "items as for a plain order", with_(items=[]), ("items",), UNKNOWN),
        Bad(key, "a SKU of its own", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(key, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
        Bad(key, "nor the initiator's price", with_(leader_price=1), ("leader_price",), UNKNOWN),
        Bad(key, "the offer is the URL's", with_(offer={"kind": "group_buy", "id": 1}), ("offer",), UNKNOWN),
        Bad(key, "the offer id is the URL's", with_(offer_id=1), ("offer_id",), UNKNOWN),
        Bad(key, "the group is the URL's", with_(group_id=1), ("group_id",), UNKNOWN),
        Bad(key, "who leads is the server's", with_(leader=True), ("leader",), UNKNOWN),
        Bad(key, "the seat is the payment's", with_(seat=1), ("seat",), UNKNOWN),
        Bad(key, "the cart has no part in it", with_(from_cart=True), ("from_cart",), UNKNOWN),
        Bad(key, "the status is the server's", with_(status="paid"), ("status",), UNKNOWN),
        Bad(key, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
    ]


registry.add_cases(
    [
        # the staff list of group buys
        *page_cases(GROUP_BUYS),
        Bad(GROUP_BUYS, "an unknown state", with_(state="forming"), ("state",)),
        Bad(GROUP_BUYS, "a state that is empty", with_(state=""), ("state",)),
        Bad(GROUP_BUYS, "a filter it does not take", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(GROUP_BUYS, "a kind: the route is the kind", with_(kind="flash_sale"), ("kind",), UNKNOWN),
        # a new group buy
        *_group_terms_cases(GROUP_BUY_CREATE),
        Bad(GROUP_BUY_CREATE, "group_size 1", with_(group_size=1), ("group_size",)),
        Bad(GROUP_BUY_CREATE, "group_size 51", with_(group_size=51), ("group_size",)),
        Bad(GROUP_BUY_CREATE, "group_size 0", with_(group_size=0), ("group_size",)),
        Bad(GROUP_BUY_CREATE, "a negative group_size", with_(group_size=-3), ("group_size",)),
        Bad(GROUP_BUY_CREATE, "a group_size that is a fraction", with_(group_size=2.5), ("group_size",), NOT_INT),
        Bad(GROUP_BUY_CREATE, "a group_size as a string", with_(group_size="3"), ("group_size",), NOT_INT),
        Bad(GROUP_BUY_CREATE, "a group_size that is a boolean", with_(group_size=True), ("group_size",), NOT_INT),
        Bad(GROUP_BUY_CREATE, "a group_size null", with_(group_size=None), ("group_size",), NOT_NULL),
        Bad(GROUP_BUY_CREATE, "no group_size", without("group_size"), ("group_size",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "no SKU", without("sku_id"), ("sku_id",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "no price", without("price"), ("price",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "no quota", without("quota"), ("quota",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "no start", without("starts_at"), ("starts_at",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "no end", without("ends_at"), ("ends_at",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "an empty object", lambda w, valid: {}, ("group_size",), REQUIRED),
        Bad(GROUP_BUY_CREATE, "a SKU id as a string", with_(sku_id="1"), ("sku_id",), NOT_INT),
        Bad(GROUP_BUY_CREATE, "a SKU id 0", with_(sku_id=0), ("sku_id",)),
        Bad(GROUP_BUY_CREATE, "a SKU id past bigint", with_(sku_id=MAX_ID + 1), ("sku_id",)),
        Bad(GROUP_BUY_CREATE, "a SKU id null", with_(sku_id=None), ("sku_id",), NOT_NULL),
        Bad(GROUP_BUY_CREATE, "a SKU no shop has", with_(sku_id=MISSING_ID), ("sku_id",)),
        Bad(
            GROUP_BUY_CREATE,
            "a SKU of another merchant",
            lambda w, valid: {**valid, "sku_id": w.other_sku_id},
            ("sku_id",),
        ),
        Bad(
            GROUP_BUY_CREATE,
            "a window that is over",
            lambda w, valid: {**valid, "starts_at": iso(-120), "ends_at": iso(-60)},
            ("ends_at",),
            "must be in the future",
        ),
        Bad(
            GROUP_BUY_CREATE,
            "a quota above the SKU's stock",
            with_(quota=41),
            ("quota",),
            code="insufficient_stock",
            status=409,
        ),
        # changing a group buy (running; the member opened a group holding 2 of its 3 units)
        *_group_terms_cases(GROUP_BUY_UPDATE),
        Bad(GROUP_BUY_UPDATE, "the SKU stays", with_(sku_id=1), ("sku_id",), UNKNOWN),
        Bad(GROUP_BUY_UPDATE, "the group size stays", with_(group_size=2), ("group_size",), UNKNOWN),
        Bad(GROUP_BUY_UPDATE, "the group size stays, even unchanged", with_(group_size=3), ("group_size",), UNKNOWN),
        Bad(
            GROUP_BUY_UPDATE,
            "a leader_commission_bp while the leader_price it has stays",
            without("leader_price"),
            ("leader_commission_bp",),
        ),
        Bad(
            GROUP_BUY_UPDATE,
            "an end before the start it has",
            lambda w, valid: {**valid, "ends_at": iso(-120)},
            ("ends_at",),
            AFTER_START,
        ),
        Bad(
            GROUP_BUY_UPDATE,
            "an end in the past",
            lambda w, valid: {**valid, "ends_at": (utcnow() - timedelta(seconds=5)).isoformat()},
            ("ends_at",),
        ),
        Bad(
            GROUP_BUY_UPDATE,
            "a new start once it has started",
            lambda w, valid: {**valid, "starts_at": iso(10)},
            ("starts_at",),
            code="offer_started",
            status=409,
        ),
        Bad(
            GROUP_BUY_UPDATE,
            "a quota below the units buyers hold",
            with_(quota=1),
            ("quota",),
            code="quota_below_sold",
            status=409,
        ),
        Bad(
            GROUP_BUY_UPDATE,
            "more quota than the SKU has",
            with_(quota=3 + 38),  # the SKU has 37 left after the 3 set aside
            ("quota",),
            code="insufficient_stock",
            status=409,
        ),
        # ending a group buy: the URL says everything
        Bad(GROUP_BUY_END, "a body where none is taken", with_(ends_at=iso(0)), ("ends_at",), UNKNOWN),
        Bad(GROUP_BUY_END, "what its groups come to", with_(on_expiry="refund"), ("on_expiry",), UNKNOWN),
        Bad(GROUP_BUY_END, "a reason it does not take", with_(reason="不拼了"), ("reason",), UNKNOWN),
        # the staff list of a group buy's groups
        *page_cases(STAFF_GROUPS),
        Bad(STAFF_GROUPS, "an unknown group status", with_(status="open"), ("status",)),
        Bad(STAFF_GROUPS, "an offer's state is not a group's", with_(status="running"), ("status",)),
        Bad(STAFF_GROUPS, "a status in capitals", with_(status="FORMING"), ("status",)),
        Bad(STAFF_GROUPS, "a status that is empty", with_(status=""), ("status",)),
        Bad(STAFF_GROUPS, "a filter it does not take", with_(member_id=1), ("member_id",), UNKNOWN),
        # the groups a member may join: forming ones only, no filter
        *page_cases(FORMING_GROUPS),
        *page_cases(MY_GROUPS),
        Bad(MY_GROUPS, "another member's groups", with_(member_id=1), ("member_id",), UNKNOWN),
        Bad(FORMING_GROUPS, "a status: members see forming groups", with_(status="failed"), ("status",), UNKNOWN),
        Bad(FORMING_GROUPS, "a filter it does not take", with_(leader_id=1), ("leader_id",), UNKNOWN),
        # opening a group (a group buy of 3 units, at most 5 per member)
        *_group_order_cases(GROUP_OPEN),
        Bad(GROUP_OPEN, "more than the units left", with_(quantity=4), None, code="sold_out", status=409),
        # joining a forming group (the initiator holds 1 of the 3 units)
        *_group_order_cases(GROUP_JOIN),
        Bad(GROUP_JOIN, "more than the units left", with_(quantity=3), None, code="sold_out", status=409),
        # what opening or joining would cost (nothing placed, no key, no address)
        *_group_quote_cases(GROUP_OPEN_QUOTE),
        *_group_quote_cases(GROUP_JOIN_QUOTE),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------


@registry.add_shop_part
def group_buy_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """A running group buy of 3 of the shop's second SKU (like the flash sale, so the first keeps
    only the movements tests/api/test_tenant_isolation.py counts) and a group of it opened and
    paid by another member of the shop (forming; the shop's member stays out of it, so their own
    orders are only the shop's `order_ids`). The initiator's paid order is the merchant's too:
    `group_initiator_order_id`."""
    offer_id = make_group_buy(client, shop.owner, shop.second_sku_id)
    initiator = member_headers(client, shop.code, name=f"{shop.word}-initiator")
    group_id, order_id = forming_group(client, initiator, offer_id, f"{shop.word}-group-open")
    return {"group_buy_id": offer_id, "forming_group_id": group_id, "group_initiator_order_id": order_id}


_GROUP_BUY = {"offer_id": "group_buy_id"}
_GROUP = {"group_id": "forming_group_id"}

registry.add_path_cases(
    [
        PathCase("GET", GROUP_BUY, "staff", _GROUP_BUY),
        PathCase(
            "PATCH",
            GROUP_BUY,
            "staff",
            _GROUP_BUY,
            lambda s: {  # its group terms stay: a group of it is forming (409 groups_forming)
                "title": "被改了",
                "quota": 2,
                "per_member_limit": 1,
                "ends_at": iso(90),
            },
        ),
        PathCase("POST", f"{GROUP_BUY}/end", "staff", _GROUP_BUY),
        PathCase("GET", f"{GROUP_BUY}/groups", "staff", _GROUP_BUY),
        PathCase("GET", MEMBER_GROUP_BUY, "member", _GROUP_BUY),
        PathCase("GET", f"{MEMBER_GROUP_BUY}/groups", "member", _GROUP_BUY),
        PathCase(
            "POST",
            f"{MEMBER_GROUP_BUY}/groups",
            "member",
            _GROUP_BUY,
            lambda s: group_order_body(1),
            ok=201,
            extra_headers=ISOLATION_KEY,
        ),
        PathCase("GET", GROUP, "member", _GROUP),
        PathCase("POST", f"{MEMBER_GROUP_BUY}/quote", "member", _GROUP_BUY, lambda s: group_quote_body(1)),
        PathCase("POST", f"{GROUP}/quote", "member", _GROUP, lambda s: group_quote_body(1)),
        PathCase(
            "POST",
            f"{GROUP}/orders",
            "member",
            _GROUP,
            lambda s: group_order_body(1),
            ok=201,
            extra_headers=ISOLATION_KEY,
        ),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a group buy on another merchant's SKU",
            "POST",
            lambda a: MG,
            lambda a, sku_id: group_buy_body(sku_id),
            "second_sku_id",
            ("sku_id",),
        ),
        BodyCase(
            "a group opened for pickup at another merchant's pickup point",
            "POST",
            lambda a: f"{PREFIX}/group-buys/{a.group_buy_id}/groups",
            lambda a, point_id: {"quantity": 1, "fulfilment": "pickup", "pickup_point_id": point_id},
            "pickup_point_id",
            ("pickup_point_id",),
            caller="member",
            extra_headers=ISOLATION_KEY,
        ),
        BodyCase(
            "a group joined for pickup at another merchant's pickup point",
            "POST",
            lambda a: f"{PREFIX}/groups/{a.forming_group_id}/orders",
            lambda a, point_id: {"quantity": 1, "fulfilment": "pickup", "pickup_point_id": point_id},
            "pickup_point_id",
            ("pickup_point_id",),
            caller="member",
            extra_headers=ISOLATION_KEY,
        ),
    ]
)
