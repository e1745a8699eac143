"""Invalid-input and tenant-isolation cases of the orders endpoints: placing, paying, cancelling,
receiving, fulfilment, refunds.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import MAX_ID
from tests.coverage import registry
from tests.coverage.invalid_input import (
    BAD_PATTERN,
    DROP,
    EIGHT_DIGITS,
    FORGED,
    ITEMS_OR_CART,
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
    cursor_of,
    pickup_body,
    with_,
    with_address,
    with_item,
    with_line,
    without,
)
from tests.coverage.isolation import KEY as ISOLATION_KEY
from tests.coverage.isolation import BodyCase, PathCase
from tests.factories import order_body

ORDER_CREATE = ("/api/v1/orders", "POST")
MEMBER_ORDERS = ("/api/v1/orders", "GET")
CANCEL = ("/api/v1/orders/<int:order_id>/cancel", "POST")
PAY = ("/api/v1/orders/<int:order_id>/pay", "POST")
CONFIRM = ("/api/v1/orders/<int:order_id>/confirm-receipt", "POST")
REFUND_REQUEST = ("/api/v1/orders/<int:order_id>/refunds", "POST")
LEADER_PICKUP = ("/api/v1/leader/pickups", "POST")
STAFF_ORDERS = ("/api/v1/merchant/orders", "GET")
EXPORT = ("/api/v1/merchant/orders/export.csv", "GET")
SHIP = ("/api/v1/merchant/orders/<int:order_id>/ship", "POST")
READY = ("/api/v1/merchant/orders/<int:order_id>/ready-for-pickup", "POST")
STAFF_PICKUP = ("/api/v1/merchant/orders/<int:order_id>/pickup", "POST")
STAFF_REFUNDS = ("/api/v1/merchant/refunds", "GET")
APPROVE = ("/api/v1/merchant/refunds/<int:refund_id>/approve", "POST")
REJECT = ("/api/v1/merchant/refunds/<int:refund_id>/reject", "POST")
STAFF_REFUND_ISSUE = ("/api/v1/merchant/orders/<int:order_id>/refunds", "POST")


def another_code(w: World, valid: dict[str, Any]) -> dict[str, Any]:
    """A well-formed pickup code that no order waiting at the member's point has."""
    return {**valid, "code": f"{(int(w.orders.pickup_code) + 1) % 10**8:08d}"}


registry.add_endpoints(
    {
        ORDER_CREATE: Endpoint(
            lambda w: f"{PREFIX}/orders",
            "member",
            "json",
            lambda w: order_body(w.sku_id, 2, remark="放门口"),
            ok=201,
            text_field="remark",
            extra_headers=KEY,
        ),
        MEMBER_ORDERS: Endpoint(
            lambda w: f"{PREFIX}/orders",
            "member",
            "query",
            lambda w: {"status": "pending_payment", "limit": 10},
            text_field="cursor",
        ),
        CANCEL: Endpoint(
            lambda w: f"{PREFIX}/orders/{w.orders.pending_order_id}/cancel",
            "member",
            "json",
            lambda w: {},
            orders=("pending",),
        ),
        PAY: Endpoint(
            lambda w: f"{PREFIX}/orders/{w.orders.pending_order_id}/pay",
            "member",
            "json",
            lambda w: {},
            orders=("pending",),
        ),
        CONFIRM: Endpoint(
            lambda w: f"{PREFIX}/orders/{w.orders.shipped_order_id}/confirm-receipt",
            "member",
            "json",
            lambda w: {},
            orders=("shipped",),
        ),
        REFUND_REQUEST: Endpoint(
            lambda w: f"{PREFIX}/orders/{w.orders.paid_order_id}/refunds",
            "member",
            "json",
            lambda w: {"lines": [{"line_id": w.orders.paid_line_id, "quantity": 1}], "reason": "坏了一个"},
            ok=201,
            text_field="reason",
            orders=("paid", "pending"),
        ),
        LEADER_PICKUP: Endpoint(
            lambda w: f"{PREFIX}/leader/pickups",
            "member",
            "json",
            lambda w: {"code": w.orders.pickup_code},
            orders=("ready",),
        ),
        STAFF_ORDERS: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders",
            "staff",
            "query",
            lambda w: {
                "status": "paid",
                "limit": 10,
                "q": "2",  # order numbers start with the year
                "created_from": "2020-01-01T00:00:00+08:00",
                "created_to": "2999-01-01T00:00:00+08:00",
            },
            text_field="q",
        ),
        EXPORT: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders/export.csv",
            "staff",
            "query",
            lambda w: {
                "status": "paid",
                "created_from": "2020-01-01T00:00:00+08:00",
                "created_to": "2999-01-01T00:00:00Z",
            },
        ),
        SHIP: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_order_id}/ship",
            "staff",
            "json",
            lambda w: {"carrier": "顺丰", "tracking_no": "SF1234567890"},
            text_field="carrier",
            orders=("paid",),
        ),
        READY: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_pickup_order_id}/ready-for-pickup",
            "staff",
            "json",
            lambda w: {},
            orders=("paid_pickup",),
        ),
        STAFF_PICKUP: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders/{w.orders.ready_order_id}/pickup",
            "staff",
            "json",
            lambda w: {"code": w.orders.pickup_code},
            orders=("ready",),
        ),
        STAFF_REFUNDS: Endpoint(
            lambda w: f"{PREFIX}/merchant/refunds",
            "staff",
            "query",
            lambda w: {"status": "requested"},
        ),
        APPROVE: Endpoint(
            lambda w: f"{PREFIX}/merchant/refunds/{w.orders.refund_id}/approve",
            "staff",
            "json",
            lambda w: {},
            orders=("refund_requested",),
        ),
        REJECT: Endpoint(
            lambda w: f"{PREFIX}/merchant/refunds/{w.orders.refund_id}/reject",
            "staff",
            "json",
            lambda w: {"reason": "商品已发出"},
            text_field="reason",
            orders=("refund_requested",),
        ),
    }
)

registry.add_cases(
    [
        # placing an order
        Bad(
            ORDER_CREATE,
            "no Idempotency-Key",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": None},
        ),
        Bad(
            ORDER_CREATE,
            "an empty Idempotency-Key",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": ""},
        ),
        Bad(
            ORDER_CREATE,
            "an Idempotency-Key too short",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": "1234567"},
        ),
        Bad(
            ORDER_CREATE,
            "an Idempotency-Key too long",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": "k" * 65},
        ),
        Bad(
            ORDER_CREATE,
            "an Idempotency-Key with spaces",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": "my order 1"},
        ),
        Bad(
            ORDER_CREATE,
            "an Idempotency-Key with a slash",
            lambda w, valid: valid,
            KEY_HEADER,
            code="idempotency_key_required",
            headers={"Idempotency-Key": "order/000001"},
        ),
        Bad(ORDER_CREATE, "the status is the server's", with_(status="paid"), ("status",), UNKNOWN),
        Bad(ORDER_CREATE, "the payable total is the server's", with_(payable_total=1), ("payable_total",), UNKNOWN),
        Bad(ORDER_CREATE, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
        Bad(
            ORDER_CREATE, "a member cannot set a line's price", with_item(0, price=1), ("items", "0", "price"), UNKNOWN
        ),
        Bad(ORDER_CREATE, "the shipping fee is the server's", with_(shipping_fee=0), ("shipping_fee",), UNKNOWN),
        Bad(ORDER_CREATE, "the member is the token's", with_(member_id=1), ("member_id",), UNKNOWN),
        Bad(ORDER_CREATE, "the order number is the server's", with_(order_no="1"), ("order_no",), UNKNOWN),
        Bad(ORDER_CREATE, "the pickup code is the server's", with_(pickup_code="12345678"), ("pickup_code",), UNKNOWN),
        Bad(ORDER_CREATE, "neither items nor the cart", without("items"), ("items",), ITEMS_OR_CART),
        Bad(ORDER_CREATE, "both items and the cart", with_(from_cart=True), ("items",), ITEMS_OR_CART),
        Bad(ORDER_CREATE, "no fulfilment", without("fulfilment"), ("fulfilment",), REQUIRED),
        Bad(ORDER_CREATE, "unknown fulfilment", with_(fulfilment="drone"), ("fulfilment",)),
        Bad(ORDER_CREATE, "quantity 0", with_item(0, quantity=0), ("items", "0", "quantity")),
        Bad(ORDER_CREATE, "quantity 1000", with_item(0, quantity=1000), ("items", "0", "quantity")),
        Bad(ORDER_CREATE, "quantity is a string", with_item(0, quantity="2"), ("items", "0", "quantity"), NOT_INT),
        Bad(ORDER_CREATE, "quantity is a float", with_item(0, quantity=2.5), ("items", "0", "quantity"), NOT_INT),
        Bad(ORDER_CREATE, "quantity is a boolean", with_item(0, quantity=True), ("items", "0", "quantity"), NOT_INT),
        Bad(ORDER_CREATE, "SKU id is a string", with_item(0, sku_id="1"), ("items", "0", "sku_id"), NOT_INT),
        Bad(ORDER_CREATE, "SKU id past bigint", with_item(0, sku_id=MAX_ID + 1), ("items", "0", "sku_id")),
        Bad(ORDER_CREATE, "a delivery without an address", without("address"), ("address",), code="address_required"),
        Bad(ORDER_CREATE, "the address is null", with_(address=None), ("address",), NOT_NULL),
        Bad(ORDER_CREATE, "the address is a string", with_(address="深圳南山"), ("address", "_schema")),
        Bad(ORDER_CREATE, "an address without a phone", with_address(phone=DROP), ("address", "phone"), REQUIRED),
        Bad(ORDER_CREATE, "an address without a name", with_address(name=DROP), ("address", "name"), REQUIRED),
        Bad(ORDER_CREATE, "a phone that is not one", with_address(phone="call me"), ("address", "phone")),
        Bad(ORDER_CREATE, "a phone with a newline after it", with_address(phone="13800138000\n"), ("address", "phone")),
        Bad(ORDER_CREATE, "a phone of 21 characters", with_address(phone="+" + "1" * 20), ("address", "phone")),
        Bad(ORDER_CREATE, "a name too long", with_address(name="王" * 33), ("address", "name")),
        Bad(ORDER_CREATE, "an empty detail", with_address(detail=""), ("address", "detail")),
        Bad(ORDER_CREATE, "an unknown address field", with_address(lat=22.5), ("address", "lat"), UNKNOWN),
        Bad(
            ORDER_CREATE,
            "the NUL character in the address",
            with_address(detail="1 号\x00"),
            ("address", "detail"),
            "must not contain the NUL character",
        ),
        Bad(ORDER_CREATE, "remark too long", with_(remark="x" * 201), ("remark",)),
        Bad(ORDER_CREATE, "remark is a number", with_(remark=5), ("remark",), NOT_STRING),
        Bad(
            ORDER_CREATE,
            "pickup without a pickup point",
            with_(fulfilment="pickup"),
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(
            ORDER_CREATE,
            "pickup at another merchant's pickup point",
            lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.other_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(
            ORDER_CREATE,
            "pickup at a closed pickup point",
            lambda w, valid: {**valid, "fulfilment": "pickup", "pickup_point_id": w.closed_pickup_point_id},
            ("pickup_point_id",),
            code="pickup_point_invalid",
        ),
        Bad(ORDER_CREATE, "a SKU no shop has", with_item(0, sku_id=MISSING_ID), None, code="sku_not_found", status=404),
        Bad(
            ORDER_CREATE,
            "a SKU of another merchant",
            lambda w, valid: {**valid, "items": [{"sku_id": w.other_sku_id, "quantity": 1}]},
            None,
            code="sku_not_found",
            status=404,
        ),
        Bad(
            ORDER_CREATE,
            "more than the stock",
            with_item(0, quantity=41),
            None,
            code="insufficient_stock",
            status=409,
        ),
        # the member's orders
        Bad(MEMBER_ORDERS, "unknown status", with_(status="lost"), ("status",)),
        Bad(MEMBER_ORDERS, "limit 0", with_(limit=0), ("limit",)),
        Bad(MEMBER_ORDERS, "limit 500", with_(limit=500), ("limit",)),
        Bad(MEMBER_ORDERS, "limit is a word", with_(limit="ten"), ("limit",), NOT_INT),
        Bad(MEMBER_ORDERS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(
            MEMBER_ORDERS, "a cursor of a boolean", with_(cursor=cursor_of([True])), ("cursor",), code="invalid_cursor"
        ),
        Bad(
            MEMBER_ORDERS, "a cursor past bigint", with_(cursor=cursor_of([2**63])), ("cursor",), code="invalid_cursor"
        ),
        # actions whose URL says everything
        Bad(CANCEL, "a member cannot give the reason", with_(reason="changed my mind"), ("reason",), UNKNOWN),
        Bad(CANCEL, "the status is the server's", with_(status="cancelled"), ("status",), UNKNOWN),
        Bad(PAY, "the amount is the order's", with_(total=1), ("total",), UNKNOWN),
        Bad(PAY, "the payer is the token's", with_(openid="o-forged"), ("openid",), UNKNOWN),
        Bad(
            CONFIRM,
            "the time of receipt is the server's",
            with_(received_at="2020-01-01T00:00:00Z"),
            ("received_at",),
            UNKNOWN,
        ),
        Bad(READY, "the pickup point is the order's", with_(pickup_point_id=1), ("pickup_point_id",), UNKNOWN),
        Bad(APPROVE, "an approval is of the amount asked for", with_(amount=1), ("amount",), UNKNOWN),
        Bad(APPROVE, "restocking is the server's", with_(restock=True), ("restock",), UNKNOWN),
        # refunds asked for by the member
        Bad(REFUND_REQUEST, "no reason", without("reason"), ("reason",), REQUIRED),
        Bad(REFUND_REQUEST, "an empty reason", with_(reason=""), ("reason",)),
        Bad(REFUND_REQUEST, "reason too long", with_(reason="x" * 201), ("reason",)),
        Bad(REFUND_REQUEST, "reason is a number", with_(reason=5), ("reason",), NOT_STRING),
        Bad(REFUND_REQUEST, "an empty list of lines", with_(lines=[]), ("lines",)),
        Bad(REFUND_REQUEST, "51 lines", lambda w, valid: {**valid, "lines": valid["lines"] * 51}, ("lines",)),
        Bad(REFUND_REQUEST, "a line is not an object", with_(lines=["all"]), ("lines", "0", "_schema")),
        Bad(REFUND_REQUEST, "quantity 0", with_line(0, quantity=0), ("lines", "0", "quantity")),
        Bad(REFUND_REQUEST, "quantity is a string", with_line(0, quantity="1"), ("lines", "0", "quantity"), NOT_INT),
        Bad(REFUND_REQUEST, "quantity is a float", with_line(0, quantity=0.5), ("lines", "0", "quantity"), NOT_INT),
        Bad(REFUND_REQUEST, "quantity is a boolean", with_line(0, quantity=True), ("lines", "0", "quantity"), NOT_INT),
        Bad(REFUND_REQUEST, "a line without its id", with_line(0, line_id=DROP), ("lines", "0", "line_id"), REQUIRED),
        Bad(REFUND_REQUEST, "line id is a string", with_line(0, line_id="1"), ("lines", "0", "line_id"), NOT_INT),
        Bad(REFUND_REQUEST, "line id past bigint", with_line(0, line_id=MAX_ID + 1), ("lines", "0", "line_id")),
        Bad(
            REFUND_REQUEST,
            "a line of another order",
            lambda w, valid: {**valid, "lines": [{"line_id": w.orders.pending_line_id, "quantity": 1}]},
            ("lines", "0", "line_id"),
            code="line_not_found",
        ),
        Bad(
            REFUND_REQUEST,
            "more units than were bought",
            with_line(0, quantity=3),
            ("lines",),
            code="refund_quantity_exceeded",
        ),
        Bad(
            REFUND_REQUEST,
            "one line twice, adding up to more than was bought",
            lambda w, valid: {**valid, "lines": [{"line_id": w.orders.paid_line_id, "quantity": 2}] + valid["lines"]},
            ("lines",),
            code="refund_quantity_exceeded",
        ),
        Bad(REFUND_REQUEST, "the amount is the server's", with_(amount=1), ("amount",), UNKNOWN),
        Bad(
            REFUND_REQUEST, "a line's amount is the server's", with_line(0, amount=1), ("lines", "0", "amount"), UNKNOWN
        ),
        Bad(REFUND_REQUEST, "restocking is the server's", with_(restock=True), ("restock",), UNKNOWN),
        # pickups
        Bad(LEADER_PICKUP, "no code", without("code"), ("code",), REQUIRED),
        Bad(LEADER_PICKUP, "7 digits", with_(code="1234567"), ("code",), EIGHT_DIGITS),
        Bad(LEADER_PICKUP, "9 digits", with_(code="123456789"), ("code",), EIGHT_DIGITS),
        Bad(LEADER_PICKUP, "letters", with_(code="abcdefgh"), ("code",), EIGHT_DIGITS),
        Bad(LEADER_PICKUP, "full-width digits", with_(code="１２３４５６７８"), ("code",), EIGHT_DIGITS),
        Bad(
            LEADER_PICKUP,
            "8 digits and a newline",
            lambda w, valid: {"code": w.orders.pickup_code + "\n"},
            ("code",),
            EIGHT_DIGITS,
        ),
        Bad(LEADER_PICKUP, "a number", with_(code=12345678), ("code",), NOT_STRING),
        Bad(LEADER_PICKUP, "the order is found by its code", with_(order_id=1), ("order_id",), UNKNOWN),
        Bad(LEADER_PICKUP, "a code no waiting order has", another_code, None, code="pickup_code_unknown", status=404),
        Bad(STAFF_PICKUP, "no code", without("code"), ("code",), REQUIRED),
        Bad(STAFF_PICKUP, "7 digits", with_(code="1234567"), ("code",), EIGHT_DIGITS),
        Bad(STAFF_PICKUP, "letters and digits", with_(code="1234abcd"), ("code",), EIGHT_DIGITS),
        Bad(
            STAFF_PICKUP,
            "8 digits and a newline",
            lambda w, valid: {"code": w.orders.pickup_code + "\n"},
            ("code",),
            EIGHT_DIGITS,
        ),
        Bad(STAFF_PICKUP, "a number", with_(code=12345678), ("code",), NOT_STRING),
        Bad(STAFF_PICKUP, "code is null", with_(code=None), ("code",), NOT_NULL),
        Bad(STAFF_PICKUP, "the wrong code", another_code, ("code",), code="pickup_code_wrong"),
        # the staff's order list and export
        Bad(STAFF_ORDERS, "unknown status", with_(status="lost"), ("status",)),
        Bad(STAFF_ORDERS, "limit 0", with_(limit=0), ("limit",)),
        Bad(STAFF_ORDERS, "limit 500", with_(limit=500), ("limit",)),
        Bad(STAFF_ORDERS, "an empty search", with_(q=""), ("q",)),
        Bad(STAFF_ORDERS, "a search too long", with_(q="x" * 65), ("q",)),
        Bad(
            STAFF_ORDERS, "created_from is not a time", with_(created_from="yesterday"), ("created_from",), NOT_DATETIME
        ),
        Bad(
            STAFF_ORDERS,
            "created_to is not a time",
            with_(created_to="2024-13-01T00:00:00"),
            ("created_to",),
            NOT_DATETIME,
        ),
        Bad(STAFF_ORDERS, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(STAFF_ORDERS, "a cursor past bigint", with_(cursor=cursor_of([2**64])), ("cursor",), code="invalid_cursor"),
        Bad(EXPORT, "unknown status", with_(status="lost"), ("status",)),
        Bad(EXPORT, "unknown kind", with_(kind="gift"), ("kind",)),
        Bad(EXPORT, "created_from is not a time", with_(created_from="last week"), ("created_from",), NOT_DATETIME),
        Bad(EXPORT, "created_to is a number", with_(created_to=5), ("created_to",), NOT_DATETIME),
        # shipping
        Bad(SHIP, "no carrier", without("carrier"), ("carrier",), REQUIRED),
        Bad(SHIP, "no tracking number", without("tracking_no"), ("tracking_no",), REQUIRED),
        Bad(SHIP, "an empty carrier", with_(carrier=""), ("carrier",)),
        Bad(SHIP, "carrier too long", with_(carrier="x" * 33), ("carrier",)),
        Bad(SHIP, "carrier is a number", with_(carrier=1), ("carrier",), NOT_STRING),
        Bad(SHIP, "a tracking number with spaces", with_(tracking_no="SF 1234 5678"), ("tracking_no",), BAD_PATTERN),
        Bad(SHIP, "a tracking number too short", with_(tracking_no="SF1"), ("tracking_no",), BAD_PATTERN),
        Bad(SHIP, "a tracking number too long", with_(tracking_no="S" * 65), ("tracking_no",), BAD_PATTERN),
        Bad(SHIP, "a tracking number and a newline", with_(tracking_no="S" * 64 + "\n"), ("tracking_no",), BAD_PATTERN),
        Bad(SHIP, "a tracking number in Chinese", with_(tracking_no="顺丰一二三四"), ("tracking_no",), BAD_PATTERN),
        Bad(SHIP, "a tracking number that is a number", with_(tracking_no=1234567890), ("tracking_no",), NOT_STRING),
        Bad(SHIP, "the status is the server's", with_(status="shipped"), ("status",), UNKNOWN),
        Bad(
            SHIP,
            "the time of shipping is the server's",
            with_(shipped_at="2020-01-01T00:00:00Z"),
            ("shipped_at",),
            UNKNOWN,
        ),
        # refunds decided by staff
        Bad(STAFF_REFUNDS, "unknown status", with_(status="approved"), ("status",)),
        Bad(STAFF_REFUNDS, "an empty status", with_(status=""), ("status",)),
        Bad(REJECT, "reason too long", with_(reason="x" * 201), ("reason",)),
        Bad(REJECT, "reason is a number", with_(reason=1), ("reason",), NOT_STRING),
        Bad(REJECT, "reason is null", with_(reason=None), ("reason",), NOT_NULL),
        Bad(REJECT, "the status is the server's", with_(status="rejected"), ("status",), UNKNOWN),
        Bad(REJECT, "a rejection has no amount", with_(amount=0), ("amount",), UNKNOWN),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------

registry.add_path_cases(
    [
        # the member's orders
        PathCase("GET", "/api/v1/orders/<int:order_id>", "member", {"order_id": "paid_order_id"}),
        PathCase("POST", "/api/v1/orders/<int:order_id>/cancel", "member", {"order_id": "pending_order_id"}),
        PathCase("POST", "/api/v1/orders/<int:order_id>/pay", "member", {"order_id": "pending_order_id"}),
        PathCase("POST", "/api/v1/orders/<int:order_id>/confirm-receipt", "member", {"order_id": "shipped_order_id"}),
        PathCase("GET", "/api/v1/orders/<int:order_id>/refunds", "member", {"order_id": "refund_order_id"}),
        PathCase(
            "POST",
            "/api/v1/orders/<int:order_id>/refunds",
            "member",
            {"order_id": "paid_order_id"},
            lambda s: {"lines": [{"line_id": s.paid_line_id, "quantity": 1}], "reason": "坏了一个"},
            ok=201,
        ),
        # orders, refunds and pickup points for staff
        PathCase("GET", "/api/v1/merchant/orders/<int:order_id>", "staff", {"order_id": "paid_order_id"}),
        PathCase(
            "POST",
            "/api/v1/merchant/orders/<int:order_id>/ship",
            "staff",
            {"order_id": "paid_order_id"},
            lambda s: {"carrier": "顺丰", "tracking_no": "SF1234567890"},
        ),
        PathCase(
            "POST",
            "/api/v1/merchant/orders/<int:order_id>/ready-for-pickup",
            "staff",
            {"order_id": "paid_pickup_order_id"},
        ),
        PathCase(
            "POST",
            "/api/v1/merchant/orders/<int:order_id>/pickup",
            "staff",
            {"order_id": "ready_order_id"},
            lambda s: {"code": s.pickup_code},  # even the right code does not open another merchant's order
        ),
        PathCase("POST", "/api/v1/merchant/refunds/<int:refund_id>/approve", "staff", {"refund_id": "refund_id"}),
        PathCase(
            "POST",
            "/api/v1/merchant/refunds/<int:refund_id>/reject",
            "staff",
            {"refund_id": "refund_id"},
            lambda s: {"reason": "已发货"},
        ),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "an order for pickup at another merchant's pickup point",
            "POST",
            lambda a: f"{PREFIX}/orders",
            lambda a, point_id: pickup_body(a.second_sku_id, point_id),
            "pickup_point_id",
            ("pickup_point_id",),
            caller="member",
            extra_headers=ISOLATION_KEY,
        ),
        BodyCase(
            "a refund of a line of another merchant's order",
            "POST",
            lambda a: f"{PREFIX}/orders/{a.paid_order_id}/refunds",
            lambda a, line_id: {"lines": [{"line_id": line_id, "quantity": 1}], "reason": "坏了一个"},
            "paid_line_id",
            ("lines", "0", "line_id"),
            caller="member",
        ),
    ]
)


# --- staff and system refunds (issue 12 item 8): the thorough cases are in tests/api/test_staff_refunds.py
registry.add_endpoints(
    {
        STAFF_REFUND_ISSUE: Endpoint(
            lambda w: f"{PREFIX}/merchant/orders/{w.orders.paid_order_id}/refunds",
            "staff",
            "json",
            lambda w: {"lines": [{"line_id": w.orders.paid_line_id, "quantity": 1}], "reason": "少发了一个"},
            ok=201,
            text_field="reason",
            orders=("paid",),
        ),
    }
)
registry.add_cases(
    [
        Bad(STAFF_REFUND_ISSUE, "no reason", without("reason"), ("reason",), REQUIRED),
        Bad(STAFF_REFUND_ISSUE, "an empty list of lines", with_(lines=[]), ("lines",)),
        Bad(STAFF_REFUND_ISSUE, "no units", with_(lines=[{"line_id": 1, "quantity": 0}]), ("lines", "0", "quantity")),
        Bad(STAFF_REFUND_ISSUE, "the kind is the server's", with_(kind="system"), ("kind",), UNKNOWN),
        Bad(STAFF_REFUNDS, "an order id of 0", with_(order_id=0), ("order_id",)),
    ]
)
registry.add_path_cases(
    [
        PathCase(
            "POST",
            "/api/v1/merchant/orders/<int:order_id>/refunds",
            "staff",
            {"order_id": "paid_order_id"},
            lambda s: {"lines": [{"line_id": s.paid_line_id, "quantity": 1}], "reason": "售后"},
            ok=201,
        ),
    ]
)
