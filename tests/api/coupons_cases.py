"""Invalid-input and tenant-isolation cases of the coupon endpoints: templates, grants, the claim
centre, the wallet, and coupons named at checkout.

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import MAX_ID
from tests.coverage import registry
from tests.coverage.invalid_input import (
    MISSING_ID,
    NOT_INT,
    PREFIX,
    UNKNOWN,
    Bad,
    Endpoint,
    World,
    with_,
    without,
)
from tests.coverage.isolation import BodyCase, PathCase, Shop

TEMPLATES = ("/api/v1/merchant/coupon-templates", "GET")
TEMPLATE_CREATE = ("/api/v1/merchant/coupon-templates", "POST")
TEMPLATE_UPDATE = ("/api/v1/merchant/coupon-templates/<int:template_id>", "PATCH")
GRANT_CREATE = ("/api/v1/merchant/coupon-grants", "POST")
CLAIM = ("/api/v1/coupon-centre/<int:template_id>/claim", "POST")
WALLET = ("/api/v1/coupons", "GET")
QUOTE = ("/api/v1/checkout/quote", "POST")
REQUIRED = "Missing data for required field."


def template_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "满100减10",
        "description": "全场通用",
        "kind": "amount_off",
        "threshold": 10000,
        "amount": 1000,
        "valid_days": 7,
        "total_quantity": 100,
        "per_member_limit": 5,
        "channels": ["centre"],
        **overrides,
    }


def _template(client: Any, owner: dict[str, str], **overrides: Any) -> int:
    response = client.post(f"{PREFIX}/merchant/coupon-templates", json=template_body(**overrides), headers=owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _world_template(client: Any, world: World) -> dict[str, Any]:
    return {"template_id": _template(client, world.owner)}


registry.add_endpoints(
    {
        TEMPLATES: Endpoint(
            lambda w: f"{PREFIX}/merchant/coupon-templates",
            "staff",
            "query",
            lambda w: {"status": "active", "limit": 10},
            text_field="cursor",
        ),
        TEMPLATE_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/coupon-templates",
            "staff",
            "json",
            lambda w: template_body(scope="products", scope_ids=[w.product_id]),
            ok=201,
            text_field="name",
        ),
        TEMPLATE_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/coupon-templates/{w.extras['template_id']}",
            "staff",
            "json",
            lambda w: {"name": "满100减12", "amount": 1200, "total_quantity": 50},
            text_field="description",
            setup=_world_template,
        ),
        GRANT_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/coupon-grants",
            "staff",
            "json",
            lambda w: {"template_id": w.extras["template_id"], "member_ids": [w.member_id], "note": "补偿"},
            ok=202,
            text_field="note",
            setup=_world_template,
        ),
        CLAIM: Endpoint(
            lambda w: f"{PREFIX}/coupon-centre/{w.extras['template_id']}/claim",
            "member",
            "json",
            lambda w: {},
            ok=201,
            setup=_world_template,
        ),
        WALLET: Endpoint(
            lambda w: f"{PREFIX}/coupons",
            "member",
            "query",
            lambda w: {"status": "available", "limit": 10},
            text_field="cursor",
        ),
    }
)

registry.add_cases(
    [
        Bad(TEMPLATES, "unknown status", with_(status="deleted"), ("status",)),
        Bad(TEMPLATES, "limit 0", with_(limit=0), ("limit",)),
        Bad(TEMPLATE_CREATE, "no name", without("name"), ("name",), REQUIRED),
        Bad(TEMPLATE_CREATE, "no kind", without("kind"), ("kind",), REQUIRED),
        Bad(TEMPLATE_CREATE, "no quantity", without("total_quantity"), ("total_quantity",), REQUIRED),
        Bad(TEMPLATE_CREATE, "unknown kind", with_(kind="cashback"), ("kind",)),
        Bad(TEMPLATE_CREATE, "amount 0", with_(amount=0), ("amount",)),
        Bad(TEMPLATE_CREATE, "amount is a float", with_(amount=10.5), ("amount",), NOT_INT),
        Bad(TEMPLATE_CREATE, "amount is a string", with_(amount="1000"), ("amount",), NOT_INT),
        Bad(TEMPLATE_CREATE, "negative threshold", with_(threshold=-1), ("threshold",)),
        Bad(
            TEMPLATE_CREATE,
            "basis points of 10,000",
            with_(kind="percent_off", amount=0, rate_bp=10_000),
            ("rate_bp",),
        ),
        Bad(TEMPLATE_CREATE, "basis points of 0", with_(kind="percent_off", amount=0, rate_bp=0), ("rate_bp",)),
        Bad(
            TEMPLATE_CREATE,
            "a window ending before it starts",
            with_(valid_days=None, valid_from="2030-02-01T00:00:00+08:00", valid_until="2030-01-01T00:00:00+08:00"),
            ("valid_until",),
        ),
        Bad(TEMPLATE_CREATE, "a naive date", with_(valid_days=None, valid_from="2030-01-01T00:00:00"), ("valid_from",)),
        Bad(
            TEMPLATE_CREATE,
            "a window ending past year 9999 in UTC (unreadable once stored)",
            with_(valid_days=None, valid_from="2030-01-01T00:00:00+08:00", valid_until="9999-12-31T23:59:59-08:00"),
            ("valid_until",),
        ),
        Bad(
            TEMPLATE_CREATE,
            "a window starting before year 1 in UTC",
            with_(valid_days=None, valid_from="0001-01-01T00:00:00+08:00", valid_until="2030-01-01T00:00:00+08:00"),
            ("valid_from",),
        ),
        Bad(
            TEMPLATE_CREATE,
            "per-member limit above the total",
            with_(total_quantity=3, per_member_limit=4),
            ("per_member_limit",),
        ),
        Bad(TEMPLATE_CREATE, "quantity past the maximum", with_(total_quantity=10_000_001), ("total_quantity",)),
        Bad(TEMPLATE_CREATE, "unknown channel", with_(channels=["sms"]), ("channels", "0")),
        Bad(TEMPLATE_CREATE, "scope id past bigint", with_(scope_ids=[MAX_ID + 1]), ("scope_ids", "0")),
        Bad(TEMPLATE_CREATE, "a scope product that does not exist", with_(scope_ids=[MISSING_ID]), ("scope_ids", "0")),
        Bad(TEMPLATE_UPDATE, "amount 0", with_(amount=0), ("amount",)),
        Bad(TEMPLATE_UPDATE, "unknown status", with_(status="deleted"), ("status",)),
        Bad(TEMPLATE_UPDATE, "a field templates do not have", with_(issued=3), ("issued",), UNKNOWN),
        Bad(GRANT_CREATE, "no members", with_(member_ids=[]), ("member_ids",)),
        Bad(GRANT_CREATE, "over 10,000 members", with_(member_ids=list(range(1, 10_002))), ("member_ids",)),
        Bad(GRANT_CREATE, "an unknown member", with_(member_ids=[MISSING_ID]), ("member_ids", "0")),
        Bad(GRANT_CREATE, "a member id is a string", with_(member_ids=["1"]), ("member_ids", "0"), NOT_INT),
        Bad(GRANT_CREATE, "no template", without("template_id"), ("template_id",), REQUIRED),
        Bad(GRANT_CREATE, "an unknown template", with_(template_id=MISSING_ID), ("template_id",)),
        Bad(CLAIM, "a body where none is taken", with_(quantity=2), ("quantity",), UNKNOWN),
        Bad(WALLET, "unknown status", with_(status="lost"), ("status",)),
        Bad(QUOTE, "coupons is not a list", with_(coupons=12), ("coupons",)),
        Bad(QUOTE, "a coupon id is a string", with_(coupons=["12"]), ("coupons", "0"), NOT_INT),
        Bad(QUOTE, "eleven coupons", with_(coupons=list(range(1, 12))), ("coupons",)),
        Bad(
            QUOTE, "a coupon not in the wallet", with_(coupons=[MISSING_ID]), ("coupons", "0"), code="coupon_not_found"
        ),
    ]
)


@registry.add_shop_part
def coupon_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """A template in the claim centre (usable on any order), the member's coupon of it, and a grant of it."""
    template_id = _template(client, shop.owner, threshold=0, amount=100)
    claimed = client.post(f"{PREFIX}/coupon-centre/{template_id}/claim", headers=shop.member)
    assert claimed.status_code == 201, claimed.json
    grant = client.post(
        f"{PREFIX}/merchant/coupon-grants",
        json={"template_id": template_id, "member_ids": [shop.member_id]},
        headers=shop.owner,
    )
    assert grant.status_code == 202, grant.json
    return {"coupon_template_id": template_id, "coupon_id": claimed.json["id"], "coupon_grant_id": grant.json["id"]}


registry.add_path_cases(
    [
        PathCase("GET", TEMPLATE_UPDATE[0], "staff", {"template_id": "coupon_template_id"}),
        PathCase(
            "PATCH",
            TEMPLATE_UPDATE[0],
            "staff",
            {"template_id": "coupon_template_id"},
            lambda s: {"name": "taken over"},
        ),
        PathCase("GET", f"{TEMPLATE_UPDATE[0]}/stats", "staff", {"template_id": "coupon_template_id"}),
        PathCase("GET", "/api/v1/merchant/coupon-grants/<int:grant_id>", "staff", {"grant_id": "coupon_grant_id"}),
        PathCase("POST", CLAIM[0], "member", {"template_id": "coupon_template_id"}, lambda s: {}, ok=201),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a coupon template scoped to another merchant's product",
            "POST",
            lambda a: f"{PREFIX}/merchant/coupon-templates",
            lambda a, product_id: template_body(scope="products", scope_ids=[product_id]),
            "product_id",
            ("scope_ids", "0"),
        ),
        BodyCase(
            "a gift coupon of another merchant's SKU",
            "POST",
            lambda a: f"{PREFIX}/merchant/coupon-templates",
            lambda a, sku_id: template_body(kind="gift", amount=0, gift_sku_id=sku_id),
            "sku_id",
            ("gift_sku_id",),
        ),
        BodyCase(
            "a coupon grant of another merchant's template",
            "POST",
            lambda a: f"{PREFIX}/merchant/coupon-grants",
            lambda a, template_id: {"template_id": template_id, "member_ids": [a.member_id]},
            "coupon_template_id",
            ("template_id",),
        ),
        BodyCase(
            "a coupon grant to another merchant's member",
            "POST",
            lambda a: f"{PREFIX}/merchant/coupon-grants",
            lambda a, member_id: {"template_id": a.coupon_template_id, "member_ids": [member_id]},
            "member_id",
            ("member_ids", "0"),
        ),
        BodyCase(
            "another merchant's coupon in a quote",
            "POST",
            lambda a: f"{PREFIX}/checkout/quote",
            lambda a, coupon_id: {
                "items": [{"sku_id": a.second_sku_id, "quantity": 1}],
                "fulfilment": "delivery",
                "coupons": [coupon_id],
            },
            "coupon_id",
            ("coupons", "0"),
            caller="member",
        ),
    ]
)
