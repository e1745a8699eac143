"""Invalid-input and tenant-isolation cases of the identity endpoints: logins, the member
profile, staff accounts, pickup points, merchant settings.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from api.schemas.common import MAX_FEN, MAX_ID
from shop.core.db import db
from shop.identity.models import Member
from tests.coverage import registry
from tests.coverage.invalid_input import (
    FORGED,
    MISSING_ID,
    NOT_BOOL,
    NOT_INT,
    NOT_NULL,
    POINT,
    PREFIX,
    REQUIRED,
    UNKNOWN,
    Bad,
    Endpoint,
    with_,
    without,
)
from tests.coverage.isolation import BodyCase, PathCase
from tests.factories import PASSWORD

WX_LOGIN = ("/api/v1/auth/wx-login", "POST")
STAFF_LOGIN = ("/api/v1/merchant/auth/login", "POST")
ME = ("/api/v1/me", "PATCH")
STAFF_CREATE = ("/api/v1/merchant/staff", "POST")
STAFF_UPDATE = ("/api/v1/merchant/staff/<int:staff_id>", "PATCH")
POINT_CREATE = ("/api/v1/merchant/pickup-points", "POST")
POINT_UPDATE = ("/api/v1/merchant/pickup-points/<int:point_id>", "PATCH")
SETTINGS = ("/api/v1/merchant/settings/orders", "PATCH")
INVITE_OPEN = ("/api/v1/invites/<code>/open", "POST")
MY_INVITEES = ("/api/v1/me/invites", "GET")


registry.add_endpoints(
    {
        WX_LOGIN: Endpoint(
            lambda w: f"{PREFIX}/auth/wx-login",
            None,
            "json",
            lambda w: {"merchant": w.code, "code": "test:newcomer"},
            text_field="code",
        ),
        STAFF_LOGIN: Endpoint(
            lambda w: f"{PREFIX}/merchant/auth/login",
            None,
            "json",
            lambda w: {"merchant": w.code, "username": "owner", "password": PASSWORD},
            text_field="username",
        ),
        ME: Endpoint(
            lambda w: f"{PREFIX}/me",
            "member",
            "json",
            lambda w: {"nickname": "小王", "avatar_url": "https://img.example.com/a.jpg"},
            text_field="nickname",
        ),
        STAFF_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/staff",
            "staff",
            "json",
            lambda w: {"username": "packer", "password": "long-enough-pass", "role": "operator", "display_name": "P"},
            ok=201,
            text_field="display_name",
        ),
        STAFF_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/staff/{w.operator_id}",
            "staff",
            "json",
            lambda w: {"role": "finance", "active": False, "password": "another-long-pass", "display_name": "F"},
            text_field="display_name",
        ),
        POINT_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/pickup-points",
            "staff",
            "json",
            lambda w: {**POINT, "name": "阳光花园", "leader_member_id": w.member_id},
            ok=201,
            text_field="name",
        ),
        POINT_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/pickup-points/{w.pickup_point_id}",
            "staff",
            "json",
            lambda w: {
                "name": "幸福小区东门",
                "contact_phone": "+86 138-0013-8000",
                "active": False,
                "leader_member_id": None,
            },
            text_field="address",
        ),
        SETTINGS: Endpoint(
            lambda w: f"{PREFIX}/merchant/settings/orders",
            "staff",
            "json",
            lambda w: {
                "shipping_fee": 600,
                "free_shipping_over": None,
                "order_ttl_minutes": 15,
                "auto_confirm_days": 10,
                "after_sales_days": 3,
            },
        ),
    }
)

registry.add_cases(
    [
        # members log in
        Bad(WX_LOGIN, "no merchant", without("merchant"), ("merchant",), "Missing data for required field."),
        Bad(WX_LOGIN, "no code", without("code"), ("code",), "Missing data for required field."),
        Bad(WX_LOGIN, "merchant is a number", with_(merchant=7), ("merchant",), "Not a valid string."),
        Bad(WX_LOGIN, "empty code", with_(code=""), ("code",)),
        Bad(WX_LOGIN, "code too long", with_(code="test:" + "x" * 124), ("code",)),
        Bad(WX_LOGIN, "openid is the server's", with_(openid="o-forged"), ("openid",), UNKNOWN),
        Bad(WX_LOGIN, "a member cannot pick a price", with_(price=1), ("price",), UNKNOWN),
        Bad(WX_LOGIN, "a code WeChat refuses", with_(code="not-a-wx-code"), ("code",), code="wechat_code_invalid"),
        Bad(WX_LOGIN, "unknown merchant", with_(merchant="nobody"), ("merchant",), code="not_found", status=404),
        # staff log in
        Bad(STAFF_LOGIN, "no password", without("password"), ("password",), "Missing data for required field."),
        Bad(STAFF_LOGIN, "password is a number", with_(password=12345678), ("password",), "Not a valid string."),
        Bad(STAFF_LOGIN, "username too long", with_(username="o" * 65), ("username",)),
        Bad(STAFF_LOGIN, "a role cannot be asked for", with_(role="owner"), ("role",), UNKNOWN),
        # the member's profile
        Bad(ME, "nickname too long", with_(nickname="名" * 65), ("nickname",)),
        Bad(ME, "nickname is a number", with_(nickname=42), ("nickname",), "Not a valid string."),
        Bad(ME, "nickname is null", with_(nickname=None), ("nickname",), "Field may not be null."),
        Bad(ME, "avatar is not a URL", with_(avatar_url="not a url"), ("avatar_url",), "Not a valid URL."),
        Bad(ME, "avatar is not http(s)", with_(avatar_url="javascript:alert(1)"), ("avatar_url",), "Not a valid URL."),
        Bad(ME, "avatar URL too long", with_(avatar_url="https://img.example.com/" + "a" * 500), ("avatar_url",)),
        Bad(ME, "the merchant is the token's", with_(merchant="other"), ("merchant",), UNKNOWN),
        Bad(ME, "the openid is WeChat's", with_(openid="o-forged"), ("openid",), UNKNOWN),
        Bad(ME, "the id is the token's", with_(id=1), ("id",), UNKNOWN),
        Bad(ME, "a member cannot set a price", with_(price=1), ("price",), UNKNOWN),
        # staff accounts
        Bad(STAFF_CREATE, "no role", without("role"), ("role",), "Missing data for required field."),
        Bad(STAFF_CREATE, "no password", without("password"), ("password",), "Missing data for required field."),
        Bad(STAFF_CREATE, "unknown role", with_(role="admin"), ("role",)),
        Bad(STAFF_CREATE, "username too short", with_(username="ab"), ("username",)),
        Bad(STAFF_CREATE, "username with spaces", with_(username="bad name"), ("username",)),
        Bad(STAFF_CREATE, "password too short", with_(password="short"), ("password",)),
        Bad(STAFF_CREATE, "display name too long", with_(display_name="x" * 65), ("display_name",)),
        Bad(STAFF_CREATE, "active is not for creating", with_(active=False), ("active",), UNKNOWN),
        Bad(STAFF_CREATE, "username taken", with_(username="owner"), ("username",), code="username_taken", status=409),
        Bad(STAFF_UPDATE, "unknown role", with_(role="boss"), ("role",)),
        Bad(STAFF_UPDATE, "active is not a boolean", with_(active="maybe"), ("active",), "Not a valid boolean."),
        Bad(STAFF_UPDATE, "password too short", with_(password="1234567"), ("password",)),
        Bad(STAFF_UPDATE, "username cannot change", with_(username="renamed"), ("username",), UNKNOWN),
        Bad(STAFF_UPDATE, "display name is null", with_(display_name=None), ("display_name",)),
        # pickup points
        Bad(POINT_CREATE, "no name", without("name"), ("name",), REQUIRED),
        Bad(POINT_CREATE, "no address", without("address"), ("address",), REQUIRED),
        Bad(POINT_CREATE, "no contact name", without("contact_name"), ("contact_name",), REQUIRED),
        Bad(POINT_CREATE, "no contact phone", without("contact_phone"), ("contact_phone",), REQUIRED),
        Bad(POINT_CREATE, "an empty name", with_(name=""), ("name",)),
        Bad(POINT_CREATE, "name too long", with_(name="x" * 65), ("name",)),
        Bad(POINT_CREATE, "address too long", with_(address="x" * 201), ("address",)),
        Bad(POINT_CREATE, "contact name too long", with_(contact_name="x" * 33), ("contact_name",)),
        Bad(POINT_CREATE, "a phone that is not one", with_(contact_phone="call me"), ("contact_phone",)),
        Bad(POINT_CREATE, "a phone of 21 characters", with_(contact_phone="+" + "1" * 20), ("contact_phone",)),
        Bad(POINT_CREATE, "a phone and a newline", with_(contact_phone="13800138000\n"), ("contact_phone",)),
        Bad(POINT_CREATE, "leader id is a string", with_(leader_member_id="1"), ("leader_member_id",), NOT_INT),
        Bad(POINT_CREATE, "leader id is a boolean", with_(leader_member_id=True), ("leader_member_id",), NOT_INT),
        Bad(POINT_CREATE, "leader id 0", with_(leader_member_id=0), ("leader_member_id",)),
        Bad(POINT_CREATE, "leader id past bigint", with_(leader_member_id=MAX_ID + 1), ("leader_member_id",)),
        Bad(
            POINT_CREATE,
            "a leader who is no member",
            with_(leader_member_id=MISSING_ID),
            ("leader_member_id",),
            code="member_not_found",
        ),
        Bad(
            POINT_CREATE,
            "a leader of another merchant",
            lambda w, valid: {**valid, "leader_member_id": w.other_member_id},
            ("leader_member_id",),
            code="member_not_found",
        ),
        Bad(POINT_CREATE, "a new point is open", with_(active=False), ("active",), UNKNOWN),
        Bad(POINT_CREATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
        Bad(POINT_UPDATE, "an empty name", with_(name=""), ("name",)),
        Bad(POINT_UPDATE, "name is null", with_(name=None), ("name",), NOT_NULL),
        Bad(POINT_UPDATE, "active is not a boolean", with_(active="maybe"), ("active",), NOT_BOOL),
        Bad(POINT_UPDATE, "active is null", with_(active=None), ("active",), NOT_NULL),
        Bad(POINT_UPDATE, "a phone of 21 characters", with_(contact_phone="+86 138 0013 8000 123"), ("contact_phone",)),
        Bad(POINT_UPDATE, "leader id is a float", with_(leader_member_id=1.0), ("leader_member_id",), NOT_INT),
        Bad(
            POINT_UPDATE,
            "a leader of another merchant",
            lambda w, valid: {**valid, "leader_member_id": w.other_member_id},
            ("leader_member_id",),
            code="member_not_found",
        ),
        Bad(POINT_UPDATE, "ids are the server's", with_(id=1), ("id",), UNKNOWN),
        # order settings
        Bad(SETTINGS, "negative shipping fee", with_(shipping_fee=-1), ("shipping_fee",)),
        Bad(SETTINGS, "shipping fee past the maximum", with_(shipping_fee=MAX_FEN + 1), ("shipping_fee",)),
        Bad(SETTINGS, "shipping fee is a string", with_(shipping_fee="800"), ("shipping_fee",), NOT_INT),
        Bad(SETTINGS, "shipping fee in yuan", with_(shipping_fee=8.5), ("shipping_fee",), NOT_INT),
        Bad(SETTINGS, "shipping fee is a boolean", with_(shipping_fee=True), ("shipping_fee",), NOT_INT),
        Bad(SETTINGS, "shipping fee is null", with_(shipping_fee=None), ("shipping_fee",), NOT_NULL),
        Bad(SETTINGS, "negative free-shipping threshold", with_(free_shipping_over=-1), ("free_shipping_over",)),
        Bad(
            SETTINGS,
            "free-shipping threshold is a string",
            with_(free_shipping_over="99"),
            ("free_shipping_over",),
            NOT_INT,
        ),
        Bad(SETTINGS, "unpaid orders kept 0 minutes", with_(order_ttl_minutes=0), ("order_ttl_minutes",)),
        Bad(SETTINGS, "unpaid orders kept over a day", with_(order_ttl_minutes=1441), ("order_ttl_minutes",)),
        Bad(SETTINGS, "unpaid minutes is a string", with_(order_ttl_minutes="30"), ("order_ttl_minutes",), NOT_INT),
        Bad(SETTINGS, "auto-confirm after 0 days", with_(auto_confirm_days=0), ("auto_confirm_days",)),
        Bad(SETTINGS, "auto-confirm after 61 days", with_(auto_confirm_days=61), ("auto_confirm_days",)),
        Bad(SETTINGS, "negative after-sales days", with_(after_sales_days=-1), ("after_sales_days",)),
        Bad(SETTINGS, "after-sales days past 60", with_(after_sales_days=61), ("after_sales_days",)),
        Bad(SETTINGS, "after-sales days is a float", with_(after_sales_days=7.0), ("after_sales_days",), NOT_INT),
        Bad(SETTINGS, "no currency but the yuan", with_(currency="USD"), ("currency",), UNKNOWN),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------

registry.add_path_cases(
    [
        PathCase(
            "PATCH",
            "/api/v1/merchant/staff/<int:staff_id>",
            "staff",
            {"staff_id": "operator_id"},
            lambda s: {"role": "finance", "active": False, "password": "a-brand-new-password", "display_name": "taken"},
        ),
        PathCase(
            "PATCH",
            "/api/v1/merchant/pickup-points/<int:point_id>",
            "staff",
            {"point_id": "pickup_point_id"},
            lambda s: {"name": "taken over", "active": False, "leader_member_id": s.member_id},
        ),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a pickup point led by another merchant's member",
            "POST",
            lambda a: f"{PREFIX}/merchant/pickup-points",
            lambda a, member_id: {
                "name": "new point",
                "address": "new road 1",
                "contact_name": "new",
                "contact_phone": "13900139000",
                "leader_member_id": member_id,
            },
            "member_id",
            ("leader_member_id",),
        ),
        BodyCase(
            "a pickup point handed to another merchant's member",
            "PATCH",
            lambda a: f"{PREFIX}/merchant/pickup-points/{a.pickup_point_id}",
            lambda a, member_id: {"leader_member_id": member_id},
            "member_id",
            ("leader_member_id",),
        ),
    ]
)


# --- invites (issue 12 item 5): the thorough cases are in tests/api/test_invites.py
registry.add_endpoints(
    {
        # the member's own code: a valid request, answered 200 recorded false (self_invite)
        INVITE_OPEN: Endpoint(
            lambda w: f"{PREFIX}/invites/{db.session.get(Member, w.member_id).invite_code}/open",
            "member",
            "json",
            lambda w: {"channel": "qrcode"},
        ),
        MY_INVITEES: Endpoint(
            lambda w: f"{PREFIX}/me/invites",
            "member",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
        ),
    }
)
registry.add_cases(
    [
        Bad(INVITE_OPEN, "channel in capitals", with_(channel="QR"), ("channel",)),
        Bad(MY_INVITEES, "a forged cursor", with_(cursor=FORGED), ("cursor",), code="invalid_cursor"),
        Bad(WX_LOGIN, "a channel with a space", with_(channel="qr code"), ("channel",)),
        Bad(ME, "a birthday in the future", with_(birthday="2999-01-01"), ("birthday",)),
    ]
)
# Another merchant's code is 404 like a code nobody has; the shop's own member's code is a valid
# request (200, recorded false: a self-invite).
registry.add_path_cases(
    [
        PathCase(
            "POST", "/api/v1/invites/<code>/open", "member", {"code": "invite_code"}, lambda s: {"channel": "qrcode"}
        )
    ]
)
