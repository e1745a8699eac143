"""Invalid-input and tenant-isolation cases of the distribution endpoints: the program's settings,
tiers and overrides, the distributors and their money (staff), and a distributor's own
application, commissions, ledger, team and withdrawals (members).

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import MAX_FEN, MAX_ID
from distribution.program import LEVELS_REASON
from shop.core.db import db
from shop.identity.models import Merchant
from tests.coverage import registry
from tests.coverage.invalid_input import (
    BAD_PATTERN,
    MISSING_ID,
    NOT_BOOL,
    NOT_INT,
    NOT_NULL,
    NOT_STRING,
    PREFIX,
    RAW,
    REQUIRED,
    UNKNOWN,
    Bad,
    Endpoint,
    World,
    merchant_of,
    page_cases,
    provider,
    with_,
    without,
)
from tests.coverage.isolation import BodyCase, PathCase, Shop
from tests.factories import member_headers

D = f"{PREFIX}/distribution"
MD = f"{PREFIX}/merchant/distribution"

# member endpoints
APPLY = (f"{D}/application", "POST")
MY_COMMISSIONS = (f"{D}/commissions", "GET")
MY_LEDGER = (f"{D}/ledger", "GET")
TEAM_MEMBERS = (f"{D}/team/members", "GET")
MY_WITHDRAWALS = (f"{D}/withdrawals", "GET")
WITHDRAW = (f"{D}/withdrawals", "POST")
MY_WITHDRAWAL = f"{D}/withdrawals/<int:withdrawal_id>"
# staff endpoints
SETTINGS = (f"{MD}/settings", "PATCH")
TIER_CREATE = (f"{MD}/tiers", "POST")
TIER_UPDATE = (f"{MD}/tiers/<int:tier_id>", "PATCH")
OVERRIDES = (f"{MD}/overrides", "GET")
OVERRIDE_SET = (f"{MD}/overrides", "PUT")
DISTRIBUTORS = (f"{MD}/distributors", "GET")
DISTRIBUTOR = f"{MD}/distributors/<int:distributor_id>"
APPROVE = (f"{DISTRIBUTOR}/approve", "POST")
REJECT = (f"{DISTRIBUTOR}/reject", "POST")
DISABLE = (f"{DISTRIBUTOR}/disable", "POST")
ENABLE = (f"{DISTRIBUTOR}/enable", "POST")
SET_TIER = (f"{DISTRIBUTOR}/tier", "PUT")
DISTRIBUTOR_LEDGER = (f"{DISTRIBUTOR}/ledger", "GET")
ADJUST = (f"{DISTRIBUTOR}/adjustments", "POST")
STAFF_COMMISSIONS = (f"{MD}/commissions", "GET")
WITHDRAWALS = (f"{MD}/withdrawals", "GET")
WITHDRAWAL = f"{MD}/withdrawals/<int:withdrawal_id>"
WITHDRAWAL_APPROVE = (f"{WITHDRAWAL}/approve", "POST")
WITHDRAWAL_REJECT = (f"{WITHDRAWAL}/reject", "POST")

PROGRAM = {"enabled": True, "levels": 2, "rates_bp": [1000, 500], "join_rule": "open"}
TIER = {"name": "银牌", "rank": 1, "rates_bp": [1200, 600], "min_team_size": 5, "min_team_sales": 100_000}
LEVELS_NOT_ALLOWED = "levels_not_allowed"
TOO_LONG = "x" * 201


# --- rows, made through the API as the owner and the member would ---------------------------------


def open_program(client: Any, owner: dict[str, str], **changes: Any) -> None:
    response = client.patch(f"{MD}/settings", json={**PROGRAM, **changes}, headers=owner)
    assert response.status_code == 200, response.json


def join(client: Any, member: dict[str, str], expected: str = "active") -> None:
    response = client.post(f"{D}/application", json={}, headers=member)
    assert response.status_code == 200, response.json
    assert response.json["status"] == expected, response.json


def distributor_id_of(client: Any, owner: dict[str, str], member_id: int) -> int:
    listed = client.get(f"{MD}/distributors", query_string={"limit": 50}, headers=owner)
    assert listed.status_code == 200, listed.json
    return next(d["id"] for d in listed.json["items"] if d["member_id"] == member_id)


def adjust(client: Any, owner: dict[str, str], distributor_id: int, amount: int) -> None:
    body = {"amount": amount, "reason": "开业奖励"}
    response = client.post(f"{MD}/distributors/{distributor_id}/adjustments", json=body, headers=owner)
    assert response.status_code == 201, response.json


def withdraw(client: Any, member: dict[str, str], amount: int = 1000) -> int:
    response = client.post(f"{D}/withdrawals", json={"amount": amount}, headers=member)
    assert response.status_code == 201, response.json
    return response.json["id"]


def make_tier(client: Any, owner: dict[str, str], **changes: Any) -> int:
    response = client.post(f"{MD}/tiers", json={**TIER, **changes}, headers=owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def set_override(client: Any, owner: dict[str, str], product_id: int, **changes: Any) -> int:
    body = {"product_id": product_id, "level": 1, "mode": "rate", "rate_bp": 1500, **changes}
    response = client.put(f"{MD}/overrides", json=body, headers=owner)
    assert response.status_code == 200, response.json
    return response.json["id"]


def _member_id(client: Any, member: dict[str, str]) -> int:
    return client.get(f"{PREFIX}/me", headers=member).json["id"]


def _applicant(client: Any, code: str, owner: dict[str, str], name: str) -> int:
    """A member who applied while staff decide (the join rule `application`): their distributor id."""
    open_program(client, owner, join_rule="application")
    member = member_headers(client, code, name=name)
    join(client, member, expected="applied")
    return distributor_id_of(client, owner, _member_id(client, member))


# --- the invalid-input world's rows (Endpoint.setup) ------------------------------------------------


def _program(client: Any, w: World) -> dict[str, Any]:
    open_program(client, w.owner)
    return {}


def _distributor(client: Any, w: World) -> dict[str, Any]:
    """The world's member is an active distributor."""
    open_program(client, w.owner)
    join(client, w.member)
    return {"distributor_id": distributor_id_of(client, w.owner, w.member_id)}


def _funded(client: Any, w: World) -> dict[str, Any]:
    """The world's member is an active distributor with 100 yuan to withdraw."""
    extras = _distributor(client, w)
    adjust(client, w.owner, extras["distributor_id"], 10_000)
    return extras


def _disabled(client: Any, w: World) -> dict[str, Any]:
    extras = _distributor(client, w)
    response = client.post(f"{MD}/distributors/{extras['distributor_id']}/disable", json={}, headers=w.owner)
    assert response.status_code == 200 and response.json["status"] == "disabled", response.json
    return extras


def _applied(client: Any, w: World) -> dict[str, Any]:
    """The world's member applied; staff decide (the join rule `application`)."""
    open_program(client, w.owner, join_rule="application")
    join(client, w.member, expected="applied")
    return {"distributor_id": distributor_id_of(client, w.owner, w.member_id)}


def _with_tier(client: Any, w: World) -> dict[str, Any]:
    """A distributor, a tier of rank 1 (`tier_id`) and one of rank 2 (`other_tier_id`)."""
    extras = _distributor(client, w)
    tier_id = make_tier(client, w.owner)
    other_tier_id = make_tier(client, w.owner, name="金牌", rank=2)
    return {**extras, "tier_id": tier_id, "other_tier_id": other_tier_id}


def _tier_of_rank_5(client: Any, w: World) -> dict[str, Any]:
    return {"tier_id": make_tier(client, w.owner, rank=5)}


def _override(client: Any, w: World) -> dict[str, Any]:
    return {"override_id": set_override(client, w.owner, w.product_id)}


def _withdrawal(client: Any, w: World) -> dict[str, Any]:
    """The world's member asked to withdraw 10 yuan of their 100."""
    extras = _funded(client, w)
    return {**extras, "withdrawal_id": withdraw(client, w.member)}


registry.add_endpoints(
    {
        APPLY: Endpoint(
            lambda w: APPLY[0],
            "member",
            "json",
            lambda w: {"real_name": "王小明", "note": "社区团长"},
            text_field="real_name",
            setup=_program,
        ),
        MY_COMMISSIONS: Endpoint(
            lambda w: MY_COMMISSIONS[0],
            "member",
            "query",
            lambda w: {"status": "pending", "limit": 10},
            text_field="cursor",
            setup=_distributor,
        ),
        MY_LEDGER: Endpoint(
            lambda w: MY_LEDGER[0],
            "member",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_funded,
        ),
        TEAM_MEMBERS: Endpoint(
            lambda w: TEAM_MEMBERS[0],
            "member",
            "query",
            lambda w: {"level": 2, "limit": 10},
            text_field="cursor",
            setup=_distributor,
        ),
        MY_WITHDRAWALS: Endpoint(
            lambda w: MY_WITHDRAWALS[0],
            "member",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_withdrawal,
        ),
        WITHDRAW: Endpoint(
            lambda w: WITHDRAW[0],
            "member",
            "json",
            lambda w: {"amount": 1000},
            ok=201,
            setup=_funded,
        ),
        SETTINGS: Endpoint(lambda w: SETTINGS[0], "staff", "json", lambda w: dict(PROGRAM)),
        TIER_CREATE: Endpoint(
            lambda w: TIER_CREATE[0],
            "staff",
            "json",
            lambda w: {**TIER, "min_own_sales": None, "match": "all"},
            ok=201,
            text_field="name",
            setup=_tier_of_rank_5,
        ),
        TIER_UPDATE: Endpoint(
            lambda w: f"{MD}/tiers/{w.extras['tier_id']}",
            "staff",
            "json",
            lambda w: {"name": "金银牌", "rates_bp": [1500, None], "match": "any"},
            text_field="name",
            setup=_with_tier,
        ),
        OVERRIDES: Endpoint(
            lambda w: OVERRIDES[0],
            "staff",
            "query",
            lambda w: {"product_id": w.product_id},
            setup=_override,
        ),
        OVERRIDE_SET: Endpoint(
            lambda w: OVERRIDE_SET[0],
            "staff",
            "json",
            lambda w: {"product_id": w.product_id, "sku_id": w.sku_id, "level": 2, "mode": "fixed", "fixed_amount": 80},
        ),
        DISTRIBUTORS: Endpoint(
            lambda w: DISTRIBUTORS[0],
            "staff",
            "query",
            lambda w: {"status": "active", "q": "alice", "limit": 10},
            text_field="q",
            setup=_distributor,
        ),
        APPROVE: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/approve",
            "staff",
            "json",
            lambda w: {"note": "资料齐全"},
            text_field="note",
            setup=_applied,
        ),
        REJECT: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/reject",
            "staff",
            "json",
            lambda w: {"note": "资料不全"},
            text_field="note",
            setup=_applied,
        ),
        DISABLE: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/disable",
            "staff",
            "json",
            lambda w: {"note": "违规推广"},
            text_field="note",
            setup=_distributor,
        ),
        ENABLE: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/enable",
            "staff",
            "json",
            lambda w: {"note": "已整改"},
            text_field="note",
            setup=_disabled,
        ),
        SET_TIER: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/tier",
            "staff",
            "json",
            lambda w: {"tier_id": w.extras["tier_id"]},
            setup=_with_tier,
        ),
        DISTRIBUTOR_LEDGER: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/ledger",
            "staff",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_funded,
        ),
        ADJUST: Endpoint(
            lambda w: f"{MD}/distributors/{w.extras['distributor_id']}/adjustments",
            "staff",
            "json",
            lambda w: {"amount": -500, "reason": "扣回多发的奖励"},
            ok=201,
            text_field="reason",
            setup=_funded,
        ),
        STAFF_COMMISSIONS: Endpoint(
            lambda w: STAFF_COMMISSIONS[0],
            "staff",
            "query",
            lambda w: {"status": "settled", "distributor_id": w.extras["distributor_id"], "limit": 10},
            text_field="cursor",
            setup=_distributor,
        ),
        WITHDRAWALS: Endpoint(
            lambda w: WITHDRAWALS[0],
            "staff",
            "query",
            lambda w: {"status": "requested", "distributor_id": w.extras["distributor_id"], "limit": 10},
            text_field="cursor",
            setup=_withdrawal,
        ),
        WITHDRAWAL_APPROVE: Endpoint(
            lambda w: f"{MD}/withdrawals/{w.extras['withdrawal_id']}/approve",
            "staff",
            "json",
            lambda w: {"note": "已核对"},
            text_field="note",
            setup=_withdrawal,
        ),
        WITHDRAWAL_REJECT: Endpoint(
            lambda w: f"{MD}/withdrawals/{w.extras['withdrawal_id']}/reject",
            "staff",
            "json",
            lambda w: {"note": "账户异常"},
            text_field="note",
            setup=_withdrawal,
        ),
    }
)


def _note_cases(key: tuple[str, str]) -> list[Bad]:
    """A decision's note: text of at most 200 characters, and nothing else in the body."""
    return [
        Bad(key, "a note past 200 characters", with_(note=TOO_LONG), ("note",)),
        Bad(key, "a note that is a number", with_(note=12), ("note",), NOT_STRING),
        Bad(key, "a status in the body", with_(status="active"), ("status",), UNKNOWN),
    ]


registry.add_cases(
    [
        # the member's application
        Bad(APPLY, "a real name past 40 characters", with_(real_name="王" * 41), ("real_name",)),
        Bad(APPLY, "a real name that is a number", with_(real_name=7), ("real_name",), NOT_STRING),
        Bad(APPLY, "a note past 200 characters", with_(note=TOO_LONG), ("note",)),
        Bad(APPLY, "a status of their choosing", with_(status="active"), ("status",), UNKNOWN),
        Bad(APPLY, "a tier of their choosing", with_(tier_id=1), ("tier_id",), UNKNOWN),
        # the distributor's own lists
        Bad(MY_COMMISSIONS, "unknown status", with_(status="paid"), ("status",)),
        Bad(MY_COMMISSIONS, "another distributor's commissions", with_(distributor_id=1), ("distributor_id",), UNKNOWN),
        *page_cases(MY_COMMISSIONS),
        Bad(MY_LEDGER, "a kind filter it does not take", with_(kind="adjustment"), ("kind",), UNKNOWN),
        *page_cases(MY_LEDGER),
        Bad(TEAM_MEMBERS, "level 3 (two levels at most)", with_(level=3), ("level",)),
        Bad(TEAM_MEMBERS, "level 0", with_(level=0), ("level",)),
        Bad(TEAM_MEMBERS, "level is not a number", with_(level="one"), ("level",), NOT_INT),
        *page_cases(TEAM_MEMBERS),
        Bad(MY_WITHDRAWALS, "a status filter it does not take", with_(status="paid"), ("status",), UNKNOWN),
        *page_cases(MY_WITHDRAWALS),
        # a withdrawal
        Bad(WITHDRAW, "no amount", without("amount"), ("amount",), REQUIRED),
        Bad(WITHDRAW, "amount 0", with_(amount=0), ("amount",)),
        Bad(WITHDRAW, "a negative amount", with_(amount=-1000), ("amount",)),
        Bad(WITHDRAW, "amount is a float", with_(amount=10.5), ("amount",), NOT_INT),
        Bad(WITHDRAW, "amount is a string", with_(amount="1000"), ("amount",), NOT_INT),
        Bad(WITHDRAW, "amount null", with_(amount=None), ("amount",), NOT_NULL),
        Bad(WITHDRAW, "amount past the maximum", with_(amount=MAX_FEN + 1), ("amount",)),
        Bad(
            WITHDRAW,
            "under the minimum of 100 fen",
            with_(amount=99),
            ("amount",),
            "at least 100",
            code="below_minimum",
        ),
        Bad(
            WITHDRAW,
            "more than the balance",
            with_(amount=10_001),
            None,
            code="insufficient_balance",
            status=409,
        ),
        Bad(WITHDRAW, "a fee of their choosing", with_(fee=0), ("fee",), UNKNOWN),
        # the program's settings
        Bad(SETTINGS, "3 levels", with_(levels=3), ("levels",), LEVELS_REASON, code=LEVELS_NOT_ALLOWED),
        Bad(
            SETTINGS,
            "a rate for 3 levels",
            with_(rates_bp=[1000, 500, 200]),
            ("rates_bp",),
            LEVELS_REASON,
            code=LEVELS_NOT_ALLOWED,
        ),
        Bad(
            SETTINGS,
            "3 levels with their rates",
            with_(levels=3, rates_bp=[1000, 500, 200]),
            None,
            code=LEVELS_NOT_ALLOWED,
        ),
        Bad(SETTINGS, "0 levels", with_(levels=0), ("levels",)),
        Bad(SETTINGS, "levels is a string", with_(levels="2"), ("levels",), NOT_INT),
        Bad(SETTINGS, "a rate past 10,000 basis points", with_(rates_bp=[10_001]), ("rates_bp", "0")),
        Bad(SETTINGS, "a negative rate", with_(rates_bp=[1000, -1]), ("rates_bp", "1")),
        Bad(SETTINGS, "a rate that is a float", with_(rates_bp=[10.5]), ("rates_bp", "0"), NOT_INT),
        Bad(SETTINGS, "no rates", with_(rates_bp=[]), ("rates_bp",)),
        Bad(SETTINGS, "rates that are not a list", with_(rates_bp=1000), ("rates_bp",)),
        Bad(SETTINGS, "enabled is not a boolean", with_(enabled="maybe"), ("enabled",), NOT_BOOL),
        Bad(SETTINGS, "self-purchase null", with_(self_purchase=None), ("self_purchase",), NOT_NULL),
        Bad(SETTINGS, "unknown join rule", with_(join_rule="invite"), ("join_rule",)),
        Bad(SETTINGS, "unknown binding rule", with_(binding_rule="forever"), ("binding_rule",)),
        Bad(
            SETTINGS,
            "a lapsing binding without its days",
            with_(binding_rule="first_lapsing", lapse_days=None),
            ("lapse_days",),
        ),
        Bad(SETTINGS, "lapse days 0", with_(binding_rule="first_lapsing", lapse_days=0), ("lapse_days",)),
        Bad(SETTINGS, "lapse days past 10 years", with_(lapse_days=3651), ("lapse_days",)),
        Bad(
            SETTINGS,
            "joining by spending nothing",
            with_(join_rule="spending", join_min_spent=0),
            ("join_min_spent",),
        ),
        Bad(SETTINGS, "a negative spending to join", with_(join_min_spent=-1), ("join_min_spent",)),
        Bad(SETTINGS, "a freeze past a year", with_(freeze_days=366), ("freeze_days",)),
        Bad(SETTINGS, "a minimum withdrawal of 0", with_(min_withdrawal=0), ("min_withdrawal",)),
        Bad(SETTINGS, "a fee past 10,000 basis points", with_(withdrawal_fee_bp=10_001), ("withdrawal_fee_bp",)),
        Bad(SETTINGS, "a scene id of letters", with_(transfer_scene_id="abc"), ("transfer_scene_id",), BAD_PATTERN),
        Bad(
            SETTINGS,
            "a scene id with a newline",
            with_(transfer_scene_id="1005\n"),
            ("transfer_scene_id",),
            BAD_PATTERN,
        ),
        Bad(SETTINGS, "a third level's rate by name", with_(level3_rate_bp=100), ("level3_rate_bp",), UNKNOWN),
        # tiers
        Bad(TIER_CREATE, "no name", without("name"), ("name",), REQUIRED),
        Bad(TIER_CREATE, "no rank", without("rank"), ("rank",), REQUIRED),
        Bad(TIER_CREATE, "an empty name", with_(name=""), ("name",)),
        Bad(TIER_CREATE, "a name past 40 characters", with_(name="金" * 41), ("name",)),
        Bad(TIER_CREATE, "rank 0", with_(rank=0), ("rank",)),
        Bad(TIER_CREATE, "rank 101", with_(rank=101), ("rank",)),
        Bad(TIER_CREATE, "rank is a string", with_(rank="1"), ("rank",), NOT_INT),
        Bad(TIER_CREATE, "a rank another tier has", with_(rank=5), ("rank",), code="tier_rank_taken", status=409),
        Bad(TIER_CREATE, "a rate past 10,000 basis points", with_(rates_bp=[10_001]), ("rates_bp", "0")),
        Bad(
            TIER_CREATE,
            "a rate for 3 levels",
            with_(rates_bp=[1200, 600, 300]),
            ("rates_bp",),
            code=LEVELS_NOT_ALLOWED,
        ),
        Bad(TIER_CREATE, "unknown match", with_(match="most"), ("match",)),
        Bad(TIER_CREATE, "a negative team size", with_(min_team_size=-1), ("min_team_size",)),
        Bad(TIER_CREATE, "negative team sales", with_(min_team_sales=-1), ("min_team_sales",)),
        Bad(TIER_CREATE, "own sales in yuan", with_(min_own_sales=99.5), ("min_own_sales",), NOT_INT),
        Bad(TIER_UPDATE, "a rank another tier has", with_(rank=2), ("rank",), code="tier_rank_taken", status=409),
        Bad(
            TIER_UPDATE,
            "a rate for 3 levels",
            with_(rates_bp=[1200, 600, 300]),
            ("rates_bp",),
            code=LEVELS_NOT_ALLOWED,
        ),
        Bad(TIER_UPDATE, "rank 0", with_(rank=0), ("rank",)),
        Bad(TIER_UPDATE, "no rates", with_(rates_bp=[]), ("rates_bp",)),
        Bad(TIER_UPDATE, "a negative rate", with_(rates_bp=[-1]), ("rates_bp", "0")),
        Bad(TIER_UPDATE, "name null", with_(name=None), ("name",), NOT_NULL),
        Bad(TIER_UPDATE, "unknown match", with_(match="most"), ("match",)),
        Bad(TIER_UPDATE, "its id in the body", with_(id=1), ("id",), UNKNOWN),
        # overrides
        Bad(OVERRIDES, "product id 0", with_(product_id=0), ("product_id",)),
        Bad(OVERRIDES, "product id is not a number", with_(product_id="orange"), ("product_id",), NOT_INT),
        Bad(OVERRIDES, "product id past bigint", with_(product_id=MAX_ID + 1), ("product_id",)),
        Bad(OVERRIDES, "a level filter it does not take", with_(level=1), ("level",), UNKNOWN),
        Bad(OVERRIDE_SET, "no product", without("product_id"), ("product_id",), REQUIRED),
        Bad(OVERRIDE_SET, "no level", without("level"), ("level",), REQUIRED),
        Bad(OVERRIDE_SET, "no mode", without("mode"), ("mode",), REQUIRED),
        Bad(OVERRIDE_SET, "a product that does not exist", with_(product_id=MISSING_ID, sku_id=None), ("product_id",)),
        Bad(OVERRIDE_SET, "product id past bigint", with_(product_id=MAX_ID + 1), ("product_id",)),
        Bad(OVERRIDE_SET, "product id is a string", with_(product_id="1"), ("product_id",), NOT_INT),
        Bad(
            OVERRIDE_SET,
            "a SKU of another product",
            lambda w, valid: {**valid, "sku_id": w.lemon_sku_id},
            ("sku_id",),
        ),
        Bad(
            OVERRIDE_SET,
            "a SKU of another merchant",
            lambda w, valid: {**valid, "sku_id": w.other_sku_id},
            ("sku_id",),
        ),
        Bad(OVERRIDE_SET, "level 3", with_(level=3), ("level",), LEVELS_REASON, code=LEVELS_NOT_ALLOWED),
        Bad(OVERRIDE_SET, "SKU id 0", with_(sku_id=0), ("sku_id",)),
        Bad(OVERRIDE_SET, "level 0", with_(level=0), ("level",)),
        Bad(OVERRIDE_SET, "unknown mode", with_(mode="percent"), ("mode",)),
        Bad(OVERRIDE_SET, "a fixed override without its amount", with_(fixed_amount=None), ("fixed_amount",)),
        Bad(OVERRIDE_SET, "a fixed override with a rate", with_(rate_bp=1000), ("rate_bp",)),
        Bad(OVERRIDE_SET, "a rate override without its rate", with_(mode="rate", fixed_amount=None), ("rate_bp",)),
        Bad(OVERRIDE_SET, "no commission, with an amount", with_(mode="none"), ("fixed_amount",)),
        Bad(
            OVERRIDE_SET,
            "a rate past 10,000 basis points",
            with_(mode="rate", fixed_amount=None, rate_bp=10_001),
            ("rate_bp",),
        ),
        Bad(OVERRIDE_SET, "a negative fixed amount", with_(fixed_amount=-1), ("fixed_amount",)),
        Bad(OVERRIDE_SET, "a fixed amount in yuan", with_(fixed_amount=0.8), ("fixed_amount",), NOT_INT),
        # the distributors
        Bad(DISTRIBUTORS, "unknown status", with_(status="banned"), ("status",)),
        Bad(DISTRIBUTORS, "an empty search", with_(q=""), ("q",)),
        Bad(DISTRIBUTORS, "a search past 64 characters", with_(q="a" * 65), ("q",)),
        *page_cases(DISTRIBUTORS),
        *_note_cases(APPROVE),
        *_note_cases(REJECT),
        *_note_cases(DISABLE),
        *_note_cases(ENABLE),
        Bad(SET_TIER, "no tier", without("tier_id"), ("tier_id",), REQUIRED),
        Bad(SET_TIER, "a tier that does not exist", with_(tier_id=MISSING_ID), ("tier_id",)),
        Bad(SET_TIER, "tier id 0", with_(tier_id=0), ("tier_id",)),
        Bad(SET_TIER, "tier id past bigint", with_(tier_id=MAX_ID + 1), ("tier_id",)),
        Bad(SET_TIER, "tier id is a string", with_(tier_id="1"), ("tier_id",), NOT_INT),
        Bad(SET_TIER, "a tier by name", with_(tier_id=None, name="银牌"), ("name",), UNKNOWN),
        *page_cases(DISTRIBUTOR_LEDGER),
        Bad(DISTRIBUTOR_LEDGER, "a kind filter it does not take", with_(kind="adjustment"), ("kind",), UNKNOWN),
        # a manual adjustment of the balance
        Bad(ADJUST, "no reason", without("reason"), ("reason",), REQUIRED),
        Bad(ADJUST, "an empty reason", with_(reason=""), ("reason",)),
        Bad(ADJUST, "a reason of spaces", with_(reason="   "), ("reason",)),
        Bad(ADJUST, "a reason past 200 characters", with_(reason=TOO_LONG), ("reason",)),
        Bad(ADJUST, "no amount", without("amount"), ("amount",), REQUIRED),
        Bad(ADJUST, "amount 0", with_(amount=0), ("amount",)),
        Bad(ADJUST, "amount is a float", with_(amount=10.5), ("amount",), NOT_INT),
        Bad(ADJUST, "amount is a string", with_(amount="500"), ("amount",), NOT_INT),
        Bad(ADJUST, "amount past the maximum", with_(amount=MAX_FEN + 1), ("amount",)),
        Bad(ADJUST, "amount below the negative maximum", with_(amount=-MAX_FEN - 1), ("amount",)),
        Bad(ADJUST, "the bucket of their choosing", with_(bucket="withdrawn"), ("bucket",), UNKNOWN),
        # commissions and withdrawals (staff)
        Bad(STAFF_COMMISSIONS, "unknown status", with_(status="paid"), ("status",)),
        Bad(STAFF_COMMISSIONS, "distributor id 0", with_(distributor_id=0), ("distributor_id",)),
        Bad(STAFF_COMMISSIONS, "distributor id past bigint", with_(distributor_id=MAX_ID + 1), ("distributor_id",)),
        Bad(STAFF_COMMISSIONS, "order id is not a number", with_(order_id="SO1"), ("order_id",), NOT_INT),
        *page_cases(STAFF_COMMISSIONS),
        Bad(WITHDRAWALS, "unknown status", with_(status="cancelled"), ("status",)),
        Bad(WITHDRAWALS, "distributor id 0", with_(distributor_id=0), ("distributor_id",)),
        Bad(WITHDRAWALS, "distributor id is not a number", with_(distributor_id="me"), ("distributor_id",), NOT_INT),
        *page_cases(WITHDRAWALS),
        *_note_cases(WITHDRAWAL_APPROVE),
        Bad(WITHDRAWAL_APPROVE, "an amount of their choosing", with_(amount=1), ("amount",), UNKNOWN),
        *_note_cases(WITHDRAWAL_REJECT),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------


@registry.add_shop_part
def distribution_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """The program open to all; the shop's member an active distributor with 100 yuan, one
    withdrawal requested and one approved and waiting for them to confirm the transfer; a tier,
    an override of the product, and another member who applied while staff decide."""
    open_program(client, shop.owner)
    join(client, shop.member)
    distributor_id = distributor_id_of(client, shop.owner, shop.member_id)
    adjust(client, shop.owner, distributor_id, 10_000)
    requested = withdraw(client, shop.member)
    confirming = withdraw(client, shop.member)
    approved = client.post(f"{MD}/withdrawals/{confirming}/approve", json={}, headers=shop.owner)
    assert approved.status_code == 200, approved.json
    from distribution.jobs import pay_withdrawal  # the job the approval queued: run it now

    assert pay_withdrawal(confirming) == "WAIT_USER_CONFIRM"
    return {
        "distribution_distributor_id": distributor_id,
        "distribution_withdrawal_id": requested,
        "distribution_confirming_withdrawal_id": confirming,
        "distribution_tier_id": make_tier(client, shop.owner),
        "distribution_override_id": set_override(client, shop.owner, shop.product_id),
        "distribution_applicant_id": _applicant(client, shop.code, shop.owner, f"{shop.word}-applicant"),
    }


def NOTE(s: Shop) -> dict[str, Any]:
    return {"note": f"{s.word} decides"}


registry.add_path_cases(
    [
        PathCase("GET", MY_WITHDRAWAL, "member", {"withdrawal_id": "distribution_withdrawal_id"}),
        PathCase(
            "GET",
            f"{MY_WITHDRAWAL}/confirmation",
            "member",
            {"withdrawal_id": "distribution_confirming_withdrawal_id"},
        ),
        PathCase(
            "PATCH",
            TIER_UPDATE[0],
            "staff",
            {"tier_id": "distribution_tier_id"},
            lambda s: {"name": f"{s.word} tier"},
        ),
        PathCase("DELETE", TIER_UPDATE[0], "staff", {"tier_id": "distribution_tier_id"}, ok=204),
        PathCase(
            "DELETE",
            f"{MD}/overrides/<int:override_id>",
            "staff",
            {"override_id": "distribution_override_id"},
            ok=204,
        ),
        PathCase("GET", DISTRIBUTOR, "staff", {"distributor_id": "distribution_distributor_id"}),
        PathCase("POST", APPROVE[0], "staff", {"distributor_id": "distribution_applicant_id"}, NOTE),
        PathCase("POST", REJECT[0], "staff", {"distributor_id": "distribution_applicant_id"}, NOTE),
        PathCase("POST", DISABLE[0], "staff", {"distributor_id": "distribution_distributor_id"}, NOTE),
        PathCase("POST", ENABLE[0], "staff", {"distributor_id": "distribution_distributor_id"}, NOTE),
        PathCase(
            "PUT",
            SET_TIER[0],
            "staff",
            {"distributor_id": "distribution_distributor_id"},
            lambda s: {"tier_id": s.distribution_tier_id},
        ),
        PathCase("GET", DISTRIBUTOR_LEDGER[0], "staff", {"distributor_id": "distribution_distributor_id"}),
        PathCase(
            "POST",
            ADJUST[0],
            "staff",
            {"distributor_id": "distribution_distributor_id"},
            lambda s: {"amount": 100, "reason": f"{s.word} bonus"},
            ok=201,
        ),
        PathCase("GET", WITHDRAWAL, "staff", {"withdrawal_id": "distribution_withdrawal_id"}),
        PathCase("POST", WITHDRAWAL_APPROVE[0], "staff", {"withdrawal_id": "distribution_withdrawal_id"}, NOTE),
        PathCase("POST", WITHDRAWAL_REJECT[0], "staff", {"withdrawal_id": "distribution_withdrawal_id"}, NOTE),
    ]
)


def _override_body(product_id: int, sku_id: int | None = None) -> dict[str, Any]:
    return {"product_id": product_id, "sku_id": sku_id, "level": 1, "mode": "rate", "rate_bp": 800}


registry.add_body_cases(
    [
        BodyCase(
            "a commission override of another merchant's product",
            "PUT",
            lambda a: OVERRIDE_SET[0],
            lambda a, product_id: _override_body(product_id),
            "product_id",
            ("product_id",),
        ),
        BodyCase(
            "a commission override of another merchant's SKU",
            "PUT",
            lambda a: OVERRIDE_SET[0],
            lambda a, sku_id: _override_body(a.product_id, sku_id),
            "sku_id",
            ("sku_id",),
        ),
        BodyCase(
            "a distributor put in another merchant's tier",
            "PUT",
            lambda a: f"{MD}/distributors/{a.distribution_distributor_id}/tier",
            lambda a, tier_id: {"tier_id": tier_id},
            "distribution_tier_id",
            ("tier_id",),
        ),
    ]
)


# --- payouts: WeChat Pay's transfer notification, and the fake provider's dev-only hooks ---------

TRANSFER_NOTIFY = (f"{PREFIX}/payments/wechatpay/<merchant_code>/transfer-notify", "POST")
FAKE_CONFIRM = (f"{PREFIX}/payments/fake/transfers/<out_bill_no>/confirm", "POST")
FAKE_FAIL = (f"{PREFIX}/payments/fake/transfers/<out_bill_no>/fail", "POST")


def _confirming(client: Any, w: World) -> dict[str, Any]:
    """The world's member withdrew 10 yuan, finance approved, the payout job sent the transfer: it
    waits for the member's confirmation (`out_bill_no`)."""
    from distribution.jobs import pay_withdrawal

    extras = _withdrawal(client, w)
    approved = client.post(f"{MD}/withdrawals/{extras['withdrawal_id']}/approve", json={}, headers=w.owner)
    assert approved.status_code == 200, approved.json
    assert pay_withdrawal(extras["withdrawal_id"]) == "WAIT_USER_CONFIRM"
    out_bill_no = client.get(f"{D}/withdrawals/{extras['withdrawal_id']}", headers=w.member).json["out_bill_no"]
    return {**extras, "out_bill_no": out_bill_no}


def _transfer_notice(w: World, **changes: Any) -> dict[str, Any]:
    """WeChat Pay's notification that the member confirmed the transfer (signed, encrypted),
    with what it says changed."""
    out_bill_no = w.extras["out_bill_no"]
    fake = provider()
    fake.confirm_transfer(out_bill_no)  # a repeat changes nothing
    if not changes:
        headers, body = fake.transfer_notification(merchant_of(w), out_bill_no=out_bill_no)
        return {"headers": headers, "data": body}
    bill = fake.transfer_bill(out_bill_no)
    resource = {
        "mch_id": bill.get("mch_id", bill.get("mchid")),
        "out_bill_no": out_bill_no,
        "transfer_bill_no": bill["transfer_bill_no"],
        "transfer_amount": bill["transfer_amount"],
        "state": "SUCCESS",
        "openid": bill["openid"],
        "create_time": bill.get("create_time", ""),
        "update_time": bill.get("update_time", ""),
        **changes,
    }
    headers, body = fake.notification(merchant_of(w), "MCHTRANSFER.BILL.FINISHED", resource, "mch_payment")
    return {"headers": headers, "data": body}


def with_transfer_notice(**changes: Any) -> Any:
    return lambda w, valid: _transfer_notice(w, **changes)


registry.add_endpoints(
    {
        TRANSFER_NOTIFY: Endpoint(
            lambda w: f"{PREFIX}/payments/wechatpay/{w.code}/transfer-notify",
            None,
            RAW,
            _transfer_notice,
            ok=204,
            setup=_confirming,
        ),
        FAKE_CONFIRM: Endpoint(
            lambda w: f"{PREFIX}/payments/fake/transfers/{w.extras['out_bill_no']}/confirm",
            None,
            "json",
            lambda w: {},
            setup=_confirming,
        ),
        FAKE_FAIL: Endpoint(
            lambda w: f"{PREFIX}/payments/fake/transfers/{w.extras['out_bill_no']}/fail",
            None,
            "json",
            lambda w: {},
            setup=_confirming,
        ),
    }
)


def _bad_notices() -> list[Bad]:
    from tests.api.payments_cases import signed_text, stale, tampered, unsigned

    return [
        Bad(TRANSFER_NOTIFY, "a body changed after it was signed", tampered, (), "does not match", "FAIL", 400),
        Bad(TRANSFER_NOTIFY, "no signature", unsigned, (), "are required", "FAIL", 400),
        Bad(TRANSFER_NOTIFY, "signed five minutes ago", stale, (), "too far from now", "FAIL", 400),
        Bad(TRANSFER_NOTIFY, "signed, but not a notification", signed_text, (), None, "FAIL", 400),
        Bad(
            TRANSFER_NOTIFY,
            "paid out less than the withdrawal's payout",
            with_transfer_notice(transfer_amount=1),
            (),
            "not the withdrawal's payout",
            "FAIL",
            400,
        ),
        Bad(
            TRANSFER_NOTIFY,
            "a bill number no withdrawal has",
            with_transfer_notice(out_bill_no="WD000000000000000000000000000000"),
            (),
            "no withdrawal",
            "FAIL",
            404,
        ),
        Bad(
            TRANSFER_NOTIFY,
            "from another mchid",
            with_transfer_notice(mch_id="1900000000"),
            (),
            "mch_id",
            "FAIL",
            400,
        ),
        Bad(
            TRANSFER_NOTIFY,
            "a state that is not final",
            with_transfer_notice(state="WAIT_USER_CONFIRM"),
            (),
            None,
            "FAIL",
            400,
        ),
        Bad(FAKE_CONFIRM, "an amount of its own", with_(amount=1), ("amount",), UNKNOWN),
        Bad(FAKE_FAIL, "a reason of its own", with_(fail_reason="x"), ("fail_reason",), UNKNOWN),
    ]


registry.add_cases(_bad_notices())


def _shop_transfer_notice(shop: Shop) -> dict[str, Any]:
    """WeChat Pay's notification that the shop's member confirmed their transfer."""
    fake = provider()
    fake.confirm_transfer(shop.distribution_confirming_bill)
    merchant = db.session.get(Merchant, shop.merchant_id)
    headers, body = fake.transfer_notification(merchant, out_bill_no=shop.distribution_confirming_bill)
    return {"headers": headers, "data": body}


@registry.add_shop_part
def transfer_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """The bill number of the shop's transfer waiting for its member (made by distribution_rows)."""
    withdrawal_id = shop.extras["distribution_confirming_withdrawal_id"]
    bill = client.get(f"{D}/withdrawals/{withdrawal_id}", headers=shop.member).json["out_bill_no"]
    return {"distribution_confirming_bill": bill}


registry.add_path_cases(
    [
        PathCase("POST", TRANSFER_NOTIFY[0], "provider", {"merchant_code": "code"}, _shop_transfer_notice, ok=204),
        PathCase("POST", FAKE_CONFIRM[0], "nobody", {"out_bill_no": "distribution_confirming_bill"}),
        PathCase("POST", FAKE_FAIL[0], "nobody", {"out_bill_no": "distribution_confirming_bill"}),
    ]
)
