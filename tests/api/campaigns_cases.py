"""Invalid-input and tenant-isolation cases of the campaign endpoints (issue 15): campaigns, their
tiers and upgrade offers, draws, economics and the redemption of prizes (staff); campaigns, draws,
prizes and their upgrades (members).

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.

No draw here needs its roll rigged: one tier of each campaign has all the odds (in the `LADDER`,
the guaranteed last one), so what a draw wins is known, and the better tiers above it are what
its upgrades lead to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from api.schemas.common import MAX_FEN, MAX_ID
from coupons.models import Prize
from shop.core.db import db, transaction, utcnow
from shop.identity.models import Member, Merchant
from tests.coverage import registry
from tests.coverage.invalid_input import (
    DROP,
    EIGHT_DIGITS,
    KEY,
    KEY_HEADER,
    MISSING_ID,
    NOT_BOOL,
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
    without,
)
from tests.coverage.isolation import KEY as ISOLATION_KEY
from tests.coverage.isolation import BodyCase, PathCase, Shop
from tests.factories import member_headers, staff_headers

MC = f"{PREFIX}/merchant/campaigns"
CAMPAIGN = f"{MC}/<int:campaign_id>"
OFFERS = f"{CAMPAIGN}/upgrade-offers"
STAFF_PRIZE = f"{PREFIX}/merchant/prizes/<int:prize_id>"
MEMBER_CAMPAIGN = f"{PREFIX}/campaigns/<int:campaign_id>"
MEMBER_PRIZE = f"{PREFIX}/prizes/<int:prize_id>"

# staff endpoints that take input
CAMPAIGNS = (MC, "GET")
CAMPAIGN_CREATE = (MC, "POST")
CAMPAIGN_UPDATE = (CAMPAIGN, "PATCH")
TIER_UPDATE = (f"{CAMPAIGN}/tiers/<int:tier_id>", "PATCH")
OFFER_CREATE = (OFFERS, "POST")
OFFER_UPDATE = (f"{OFFERS}/<int:offer_id>", "PATCH")
DRAWS = (f"{CAMPAIGN}/draws", "GET")
STAFF_PRIZES = (f"{PREFIX}/merchant/prizes", "GET")
REDEEM = (f"{PREFIX}/merchant/prizes/redeem", "POST")
# member endpoints that take input
DRAW = (f"{MEMBER_CAMPAIGN}/draws", "POST")
MEMBER_PRIZES = (f"{PREFIX}/prizes", "GET")
UPGRADE = (f"{MEMBER_PRIZE}/upgrade", "POST")

FULL_WIDTH = "１２３４５６７８"  # digits to `\d`, not to a till's keypad
ARABIC_INDIC = "١٢٣٤٥٦٧٨"
OUT_OF_RANGE = "between 2000-01-01 and 9999-01-01 (UTC)"


# --- rows, made through the API as staff and members would ----------------------------------------


def gift(name: str, odds: int = 0, **terms: Any) -> dict[str, Any]:
    return {"name": name, "prize_kind": "gift", "odds_bp": odds, **terms}


# First, second and third prize (gifts, 2 / 0 / 5 of them), then the guaranteed tier with all the
# odds: every draw wins it, and the tiers above are what its upgrades lead to (the second is sold out).
LADDER = [
    gift("一等奖 按摩椅", quota=2, cost=30000),
    gift("二等奖 茶具", quota=0, cost=10000),
    gift("三等奖 水杯", quota=5, cost=3000),
    gift("参与奖 纸巾", odds=10000, guaranteed=True, cost=1000),
]
FIRST, SECOND, THIRD, GUARANTEED = range(4)


def campaign_terms(**overrides: Any) -> dict[str, Any]:
    """A running `once` campaign of the LADDER (its window: from an hour ago to a week from now)."""
    now = utcnow()
    return {
        "name": "社群周年庆抽奖",
        "description": "人人有奖",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "entry_rule": "once",
        "tiers": [dict(tier) for tier in LADDER],
        **overrides,
    }


def make_campaign(client: Any, owner: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(MC, json=campaign_terms(**overrides), headers=owner)
    assert response.status_code == 201, response.json
    return response.json


def make_offer(
    client: Any, owner: dict[str, str], campaign: dict[str, Any], source: int, target: int, **more: Any
) -> int:
    tiers = campaign["tiers"]
    body = {"from_tier_id": tiers[source]["id"], "to_tier_id": tiers[target]["id"], "price": 9900}
    url = f"{MC}/{campaign['id']}/upgrade-offers"
    response = client.post(url, json=body, headers=owner)
    assert response.status_code == 201, response.json
    if more:
        changed = client.patch(f"{url}/{response.json['id']}", json=more, headers=owner)
        assert changed.status_code == 200, changed.json
    return response.json["id"]


def draw(client: Any, member: dict[str, str], campaign_id: int, key: str) -> dict[str, Any]:
    """The member's draw: the prize won (the campaign's guaranteed tier has all the odds)."""
    headers = {**member, "Idempotency-Key": key}
    response = client.post(f"{PREFIX}/campaigns/{campaign_id}/draws", headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["prize"] is not None, response.json
    return response.json["prize"]


def place_upgrade(client: Any, member: dict[str, str], prize_id: int, offer_id: int, key: str) -> dict[str, Any]:
    headers = {**member, "Idempotency-Key": key}
    response = client.post(f"{PREFIX}/prizes/{prize_id}/upgrade", json={"offer_id": offer_id}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def make_template(client: Any, owner: dict[str, str]) -> int:
    body = {"name": "奖品券", "kind": "amount_off", "amount": 500, "valid_days": 3, "total_quantity": 50}
    response = client.post(f"{PREFIX}/merchant/coupon-templates", json=body, headers=owner)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _other_shop(client: Any, w: World) -> tuple[dict[str, str], dict[str, str]]:
    """The other merchant of the world: its owner's and its member's headers."""
    merchant_id = db.session.get(Member, w.other_member_id).merchant_id
    code = db.session.get(Merchant, merchant_id).code
    return staff_headers(client, code), member_headers(client, code, name="stranger")


# --- the invalid-input world's rows (Endpoint.setup) ------------------------------------------------


def _campaign(client: Any, w: World) -> dict[str, Any]:
    """A running campaign of the LADDER (`campaign_id`) with an offer from the guaranteed tier to
    first prize (`offer_id`)."""
    campaign = make_campaign(client, w.owner)
    return {"campaign_id": campaign["id"], "offer_id": make_offer(client, w.owner, campaign, GUARANTEED, FIRST)}


def _with_templates(client: Any, w: World) -> dict[str, Any]:
    """A coupon template of the merchant's (`template_id`) and one of the other merchant's."""
    other_owner, _ = _other_shop(client, w)
    return {"template_id": make_template(client, w.owner), "other_template_id": make_template(client, other_owner)}


def _with_coupon_tier(client: Any, w: World) -> dict[str, Any]:
    """A campaign of the LADDER and a coupon prize below it (`tier_ids`, `coupon_tier_id`) with
    an offer from second prize to first (the pair `offer_exists` is about), and a tier of another
    campaign (`other_campaign_tier_id`)."""
    coupon = {"name": "券", "prize_kind": "coupon", "template_id": make_template(client, w.owner), "quota": 5}
    # the coupon tier goes just above the guaranteed one (which must stay the last)
    tiers = [*LADDER[:GUARANTEED], {**coupon, "odds_bp": 0}, LADDER[GUARANTEED]]
    campaign = make_campaign(client, w.owner, name="有券的抽奖", tiers=tiers)
    ids = [tier["id"] for tier in campaign["tiers"]]
    tier_ids = [*ids[:GUARANTEED], ids[-1]]  # the LADDER's, by FIRST ... GUARANTEED
    campaign["tiers"] = [tier for tier in campaign["tiers"] if tier["id"] in tier_ids]
    make_offer(client, w.owner, campaign, SECOND, FIRST)
    other = make_campaign(client, w.owner, name="另一个抽奖")
    return {
        "campaign_id": campaign["id"],
        "tier_ids": tier_ids,
        "coupon_tier_id": ids[GUARANTEED],
        "other_campaign_tier_id": other["tiers"][FIRST]["id"],
    }


def _drawn_first_prize(client: Any, w: World) -> dict[str, Any]:
    """A campaign whose first prize (3 of it) has all the odds, drawn once by the member: the
    tier has given 1 (`tier_id`); the guaranteed one below it has no quota (`guaranteed_tier_id`)."""
    tiers = [gift("一等奖", odds=10000, quota=3), gift("参与奖", guaranteed=True)]
    campaign = make_campaign(client, w.owner, tiers=tiers)
    draw(client, w.member, campaign["id"], "setup-draw-0001")
    return {
        "campaign_id": campaign["id"],
        "tier_id": campaign["tiers"][0]["id"],
        "guaranteed_tier_id": campaign["tiers"][1]["id"],
    }


def _drawn(client: Any, w: World) -> dict[str, Any]:
    """The LADDER campaign, its offers from the guaranteed tier (to first prize, `offer_id`; to
    the sold-out second, `sold_out_offer_id`; to third, paused, `paused_offer_id`), one from third
    to first (`third_offer_id`), and the member's prize of the guaranteed tier (`prize_id`, `code`)."""
    campaign = make_campaign(client, w.owner)
    prize = draw(client, w.member, campaign["id"], "setup-draw-0001")
    return {
        "campaign_id": campaign["id"],
        "offer_id": make_offer(client, w.owner, campaign, GUARANTEED, FIRST),
        "sold_out_offer_id": make_offer(client, w.owner, campaign, GUARANTEED, SECOND),
        "paused_offer_id": make_offer(client, w.owner, campaign, GUARANTEED, THIRD, status="paused"),
        "third_offer_id": make_offer(client, w.owner, campaign, THIRD, FIRST),
        "prize_id": prize["id"],
        "code": prize["code"],
    }


def _upgradable(client: Any, w: World) -> dict[str, Any]:
    """`_drawn`, and an offer of the other merchant's (`other_offer_id`)."""
    extras = _drawn(client, w)
    other_owner, _ = _other_shop(client, w)
    elsewhere = make_campaign(client, other_owner)
    return {**extras, "other_offer_id": make_offer(client, other_owner, elsewhere, GUARANTEED, FIRST)}


def _redeemable(client: Any, w: World) -> dict[str, Any]:
    """`_drawn`, and other vouchers: bob's, held by the upgrade he is paying for (`held_code`);
    carol's, past its date (`expired_code`); the other merchant's member's (`other_code`)."""
    extras = _drawn(client, w)
    campaign_id = extras["campaign_id"]
    bob = member_headers(client, w.code, name="bob")
    held = draw(client, bob, campaign_id, "setup-draw-0002")
    place_upgrade(client, bob, held["id"], extras["offer_id"], "setup-upgrade-0001")
    expired = draw(client, member_headers(client, w.code, name="carol"), campaign_id, "setup-draw-0003")
    with transaction():
        db.session.execute(
            update(Prize).where(Prize.id == expired["id"]).values(redeem_until=utcnow() - timedelta(minutes=1))
        )
    other_owner, stranger = _other_shop(client, w)
    foreign = draw(client, stranger, make_campaign(client, other_owner)["id"], "setup-draw-0004")
    return {**extras, "held_code": held["code"], "expired_code": expired["code"], "other_code": foreign["code"]}


def _open_campaign(client: Any, w: World) -> dict[str, Any]:
    """A running `once` campaign the member has not drawn in yet."""
    return {"campaign_id": make_campaign(client, w.owner)["id"]}


def _create_body(w: World) -> dict[str, Any]:
    """A campaign of three tiers: a gift, a coupon of the merchant's template, the guaranteed gift."""
    return campaign_terms(
        entry_rule="per_order",
        max_entries=3,
        min_paid=5000,
        redeem_days=14,
        status="paused",
        tiers=[
            gift("一等奖 按摩椅", odds=100, quota=1, cost=30000, description="价值 3000 元"),
            {
                "name": "二等奖 券",
                "prize_kind": "coupon",
                "template_id": w.extras["template_id"],
                "quota": 10,
                "odds_bp": 900,
            },
            gift("三等奖 纸巾", odds=9000, guaranteed=True, cost=1000),
        ],
    )


registry.add_endpoints(
    {
        CAMPAIGNS: Endpoint(
            lambda w: MC, "staff", "query", lambda w: {"limit": 10}, text_field="cursor", setup=_open_campaign
        ),
        CAMPAIGN_CREATE: Endpoint(
            lambda w: MC, "staff", "json", _create_body, ok=201, text_field="name", setup=_with_templates
        ),
        CAMPAIGN_UPDATE: Endpoint(
            lambda w: f"{MC}/{w.extras['campaign_id']}",
            "staff",
            "json",
            lambda w: {
                "name": "周年庆抽奖 第二季",
                "description": "延长一周",
                "ends_at": (utcnow() + timedelta(days=14)).isoformat(),
                "max_entries": 1,
                "min_paid": 0,
                "redeem_days": 60,
                "status": "active",
            },
            text_field="description",
            setup=_campaign,
        ),
        TIER_UPDATE: Endpoint(
            lambda w: f"{MC}/{w.extras['campaign_id']}/tiers/{w.extras['tier_id']}",
            "staff",
            "json",
            lambda w: {"name": "特等奖", "description": "限量", "quota": 2, "cost": 35000},
            text_field="description",
            setup=_drawn_first_prize,
        ),
        OFFER_CREATE: Endpoint(
            lambda w: f"{MC}/{w.extras['campaign_id']}/upgrade-offers",
            "staff",
            "json",
            lambda w: {
                "from_tier_id": w.extras["tier_ids"][GUARANTEED],
                "to_tier_id": w.extras["tier_ids"][THIRD],
                "price": 1990,
            },
            ok=201,
            setup=_with_coupon_tier,
        ),
        OFFER_UPDATE: Endpoint(
            lambda w: f"{MC}/{w.extras['campaign_id']}/upgrade-offers/{w.extras['offer_id']}",
            "staff",
            "json",
            lambda w: {"price": 1990, "status": "paused"},
            setup=_campaign,
        ),
        DRAWS: Endpoint(
            lambda w: f"{MC}/{w.extras['campaign_id']}/draws",
            "staff",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_drawn,
        ),
        STAFF_PRIZES: Endpoint(
            lambda w: STAFF_PRIZES[0],
            "staff",
            "query",
            lambda w: {
                "campaign_id": w.extras["campaign_id"],
                "status": "available",
                "code": w.extras["code"],
                "limit": 10,
            },
            text_field="cursor",
            setup=_drawn,
        ),
        REDEEM: Endpoint(lambda w: REDEEM[0], "staff", "json", lambda w: {"code": w.extras["code"]}, setup=_redeemable),
        DRAW: Endpoint(
            lambda w: f"{PREFIX}/campaigns/{w.extras['campaign_id']}/draws",
            "member",
            "json",
            lambda w: {},
            ok=201,
            extra_headers=KEY,
            setup=_open_campaign,
        ),
        MEMBER_PRIZES: Endpoint(
            lambda w: MEMBER_PRIZES[0],
            "member",
            "query",
            lambda w: {"status": "available", "limit": 10},
            text_field="cursor",
            setup=_drawn,
        ),
        UPGRADE: Endpoint(
            lambda w: f"{PREFIX}/prizes/{w.extras['prize_id']}/upgrade",
            "member",
            "json",
            lambda w: {"offer_id": w.extras["offer_id"]},
            ok=201,
            extra_headers=KEY,
            setup=_upgradable,
        ),
    }
)


# --- the bad requests ---------------------------------------------------------------------------


def _page_cases(key: tuple[str, str]) -> list[Bad]:
    """What every paged list refuses, and a limit that is a fraction."""
    return [*page_cases(key), Bad(key, "limit is a fraction", with_(limit="1.5"), ("limit",), NOT_INT)]


def _key_cases(key: tuple[str, str]) -> list[Bad]:
    """A member's draw and upgrade need an Idempotency-Key of 8-64 characters of A-Z a-z 0-9 _ . : -"""
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
            ("an Idempotency-Key with spaces", "my draw 01"),
            ("an Idempotency-Key with a slash", "draw/000001"),
            ("an Idempotency-Key that is not ASCII", "抽奖抽奖抽奖抽奖"),
        )
    ]


def _int_cases(key: tuple[str, str], name: str, at: tuple[str, ...] | None = None) -> list[Bad]:
    """An integer field sent as a string, a boolean, a fraction or null."""
    at = at or (name,)
    return [
        Bad(key, f"{name} is a string", with_(**{name: "1"}), at, NOT_INT),
        Bad(key, f"{name} is a boolean", with_(**{name: True}), at, NOT_INT),
        Bad(key, f"{name} is a fraction", with_(**{name: 1.5}), at, NOT_INT),
    ]


def _window_cases(key: tuple[str, str]) -> list[Bad]:
    """The window's ends: aware ISO datetimes a timestamp column can hold and read back."""
    return [
        Bad(key, "a naive start", with_(starts_at="2030-01-01T00:00:00"), ("starts_at",)),
        Bad(key, "a naive end", with_(ends_at="2030-01-01T00:00:00"), ("ends_at",)),
        Bad(key, "a start that is not a date", with_(starts_at="tomorrow"), ("starts_at",), NOT_DATETIME),
        Bad(key, "an end that is a number", with_(ends_at=1893456000), ("ends_at",), NOT_DATETIME),
        Bad(key, "a start null", with_(starts_at=None), ("starts_at",), NOT_NULL),
        # before year 1 in UTC: stored, then every read of the campaign failed (a 500 for every list)
        Bad(key, "a start in year 1", with_(starts_at="0001-01-01T00:00:00+08:00"), ("starts_at",), OUT_OF_RANGE),
        Bad(key, "an end in year 10000 in UTC", with_(ends_at="9999-12-31T23:59:59-08:00"), ("ends_at",), OUT_OF_RANGE),
        Bad(key, "a start in 1999", with_(starts_at="1999-12-31T23:00:00+00:00"), ("starts_at",), OUT_OF_RANGE),
    ]


def _code_cases(key: tuple[str, str]) -> list[Bad]:
    """A redemption code is 8 ASCII digits."""
    return [
        Bad(key, "7 digits", with_(code="1234567"), ("code",), EIGHT_DIGITS),
        Bad(key, "9 digits", with_(code="123456789"), ("code",), EIGHT_DIGITS),
        Bad(key, "letters", with_(code="abcdefgh"), ("code",), EIGHT_DIGITS),
        Bad(key, "letters and digits", with_(code="1234abcd"), ("code",), EIGHT_DIGITS),
        Bad(key, "an empty code", with_(code=""), ("code",), EIGHT_DIGITS),
        Bad(key, "a trailing newline", with_(code="12345678\n"), ("code",), EIGHT_DIGITS),
        Bad(key, "a leading space", with_(code=" 12345678"), ("code",), EIGHT_DIGITS),
        Bad(key, "full-width digits", with_(code=FULL_WIDTH), ("code",), EIGHT_DIGITS),
        Bad(key, "Arabic-Indic digits", with_(code=ARABIC_INDIC), ("code",), EIGHT_DIGITS),
    ]


def with_tier(index: int, **changes: Any) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    """Change (DROP: leave out) fields of one of the tiers (`with_entry` takes `name` itself)."""

    def build(w: World, valid: dict[str, Any]) -> dict[str, Any]:
        tiers = [dict(tier) for tier in valid["tiers"]]
        tiers[index].update(changes)
        tiers[index] = {k: v for k, v in tiers[index].items() if v is not DROP}
        return {**valid, "tiers": tiers}

    return build


def with_tiers(make: Callable[[World, list[Any]], list[Any]]) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    return lambda w, valid: {**valid, "tiers": make(w, valid["tiers"])}


ELEVEN_TIERS = [gift(f"{n}等奖", odds=1000, quota=1) for n in range(11)]

registry.add_cases(
    [
        # the staff list of campaigns
        *_page_cases(CAMPAIGNS),
        Bad(CAMPAIGNS, "a status filter it does not take", with_(status="active"), ("status",), UNKNOWN),
        # a new campaign: its terms
        Bad(CAMPAIGN_CREATE, "no name", without("name"), ("name",), REQUIRED),
        Bad(CAMPAIGN_CREATE, "an empty name", with_(name=""), ("name",)),
        Bad(CAMPAIGN_CREATE, "a name past 40 characters", with_(name="奖" * 41), ("name",)),
        Bad(CAMPAIGN_CREATE, "a name that is a number", with_(name=7), ("name",), NOT_STRING),
        Bad(CAMPAIGN_CREATE, "a name null", with_(name=None), ("name",), NOT_NULL),
        Bad(CAMPAIGN_CREATE, "a description past 500 characters", with_(description="x" * 501), ("description",)),
        Bad(CAMPAIGN_CREATE, "no start", without("starts_at"), ("starts_at",), REQUIRED),
        Bad(CAMPAIGN_CREATE, "no end", without("ends_at"), ("ends_at",), REQUIRED),
        *_window_cases(CAMPAIGN_CREATE),
        Bad(
            CAMPAIGN_CREATE,
            "an end before the start",
            lambda w, valid: {**valid, "ends_at": "2020-01-01T00:00:00+08:00"},
            ("ends_at",),
            "after starts_at",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "an end at the start",
            lambda w, valid: {**valid, "ends_at": valid["starts_at"]},
            ("ends_at",),
            "after starts_at",
        ),
        Bad(CAMPAIGN_CREATE, "no entry rule", without("entry_rule"), ("entry_rule",), REQUIRED),
        Bad(CAMPAIGN_CREATE, "an unknown entry rule", with_(entry_rule="daily"), ("entry_rule",)),
        Bad(CAMPAIGN_CREATE, "an entry rule that is a number", with_(entry_rule=1), ("entry_rule",), NOT_STRING),
        Bad(CAMPAIGN_CREATE, "an unknown status", with_(status="deleted"), ("status",)),
        Bad(CAMPAIGN_CREATE, "the state is the server's", with_(state="running"), ("state",), UNKNOWN),
        Bad(CAMPAIGN_CREATE, "max entries 0", with_(max_entries=0), ("max_entries",)),
        Bad(CAMPAIGN_CREATE, "max entries 1001", with_(max_entries=1001), ("max_entries",)),
        *_int_cases(CAMPAIGN_CREATE, "max_entries"),
        Bad(
            CAMPAIGN_CREATE,
            "3 entries under the once rule",
            with_(entry_rule="once", max_entries=3),
            ("max_entries",),
            "1 for the once rule",
        ),
        Bad(CAMPAIGN_CREATE, "a negative qualifying amount", with_(min_paid=-1), ("min_paid",)),
        Bad(CAMPAIGN_CREATE, "a qualifying amount past the maximum", with_(min_paid=MAX_FEN + 1), ("min_paid",)),
        *_int_cases(CAMPAIGN_CREATE, "min_paid"),
        Bad(CAMPAIGN_CREATE, "0 days to redeem", with_(redeem_days=0), ("redeem_days",)),
        Bad(CAMPAIGN_CREATE, "366 days to redeem", with_(redeem_days=366), ("redeem_days",)),
        *_int_cases(CAMPAIGN_CREATE, "redeem_days"),
        Bad(CAMPAIGN_CREATE, "offers with the campaign", with_(upgrade_offers=[]), ("upgrade_offers",), UNKNOWN),
        # ... its tiers
        Bad(CAMPAIGN_CREATE, "no tiers", without("tiers"), ("tiers",), REQUIRED),
        Bad(CAMPAIGN_CREATE, "an empty list of tiers", with_(tiers=[]), ("tiers",)),
        Bad(CAMPAIGN_CREATE, "eleven tiers", with_(tiers=ELEVEN_TIERS), ("tiers",)),
        Bad(CAMPAIGN_CREATE, "tiers that are not a list", with_(tiers={"name": "x"}), ("tiers",)),
        Bad(CAMPAIGN_CREATE, "tiers null", with_(tiers=None), ("tiers",), NOT_NULL),
        Bad(CAMPAIGN_CREATE, "a tier null", with_tiers(lambda w, t: [None, *t[1:]]), ("tiers", "0")),
        Bad(CAMPAIGN_CREATE, "a tier that is a string", with_tiers(lambda w, t: ["一等奖", *t[1:]]), ("tiers", "0")),
        Bad(CAMPAIGN_CREATE, "a tier without its name", with_tier(0, name=DROP), ("tiers", "0", "name"), REQUIRED),
        Bad(CAMPAIGN_CREATE, "a tier name null", with_tier(0, name=None), ("tiers", "0", "name"), NOT_NULL),
        Bad(
            CAMPAIGN_CREATE,
            "a tier without its kind",
            with_tier(0, prize_kind=DROP),
            ("tiers", "0", "prize_kind"),
            REQUIRED,
        ),
        Bad(
            CAMPAIGN_CREATE, "a tier without its odds", with_tier(0, odds_bp=DROP), ("tiers", "0", "odds_bp"), REQUIRED
        ),
        Bad(CAMPAIGN_CREATE, "a tier with an empty name", with_tier(0, name=""), ("tiers", "0", "name")),
        Bad(CAMPAIGN_CREATE, "a tier name past 40 characters", with_tier(2, name="纸" * 41), ("tiers", "2", "name")),
        Bad(
            CAMPAIGN_CREATE,
            "a tier description past 200 characters",
            with_tier(0, description="x" * 201),
            ("tiers", "0", "description"),
        ),
        Bad(
            CAMPAIGN_CREATE,
            "the NUL character in a tier's name",
            with_tier(0, name="a\x00b"),
            ("tiers", "0", "name"),
            "must not contain the NUL character",
        ),
        Bad(CAMPAIGN_CREATE, "an unknown prize kind", with_tier(0, prize_kind="cash"), ("tiers", "0", "prize_kind")),
        Bad(CAMPAIGN_CREATE, "a tier's rank of its own", with_tier(0, rank=5), ("tiers", "0", "rank"), UNKNOWN),
        Bad(CAMPAIGN_CREATE, "a tier's count of prizes given", with_tier(0, taken=0), ("tiers", "0", "taken"), UNKNOWN),
        Bad(CAMPAIGN_CREATE, "negative odds", with_tier(0, odds_bp=-1), ("tiers", "0", "odds_bp")),
        Bad(CAMPAIGN_CREATE, "odds past 10,000 basis points", with_tier(0, odds_bp=10_001), ("tiers", "0", "odds_bp")),
        Bad(CAMPAIGN_CREATE, "odds that are a string", with_tier(0, odds_bp="100"), ("tiers", "0", "odds_bp"), NOT_INT),
        Bad(CAMPAIGN_CREATE, "odds that are a boolean", with_tier(0, odds_bp=True), ("tiers", "0", "odds_bp"), NOT_INT),
        Bad(CAMPAIGN_CREATE, "odds in percent", with_tier(0, odds_bp=0.5), ("tiers", "0", "odds_bp"), NOT_INT),
        Bad(
            CAMPAIGN_CREATE,
            "odds that do not add up",
            with_tier(0, odds_bp=99),
            ("tiers",),
            "the odds add up to 9999 bp, not 10000",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "two guaranteed tiers",
            with_tier(0, guaranteed=True),
            ("tiers",),
            "at most one guaranteed tier",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "guaranteed is not a boolean",
            with_tier(2, guaranteed="maybe"),
            ("tiers", "2", "guaranteed"),
            NOT_BOOL,
        ),
        Bad(
            CAMPAIGN_CREATE,
            "a tier without a quota that is not guaranteed",
            with_tier(0, quota=None),
            ("tiers.0.quota",),
            "a tier that is not guaranteed has a quota",
        ),
        Bad(CAMPAIGN_CREATE, "a negative quota", with_tier(0, quota=-1), ("tiers", "0", "quota")),
        Bad(CAMPAIGN_CREATE, "a quota past 10 million", with_tier(0, quota=10_000_001), ("tiers", "0", "quota")),
        Bad(CAMPAIGN_CREATE, "a quota that is a string", with_tier(0, quota="1"), ("tiers", "0", "quota"), NOT_INT),
        Bad(CAMPAIGN_CREATE, "a quota that is a boolean", with_tier(0, quota=True), ("tiers", "0", "quota"), NOT_INT),
        Bad(CAMPAIGN_CREATE, "a negative cost", with_tier(0, cost=-5), ("tiers", "0", "cost")),
        Bad(CAMPAIGN_CREATE, "a cost in yuan", with_tier(0, cost=300.5), ("tiers", "0", "cost"), NOT_INT),
        Bad(CAMPAIGN_CREATE, "a cost past the maximum", with_tier(0, cost=MAX_FEN + 1), ("tiers", "0", "cost")),
        Bad(
            CAMPAIGN_CREATE,
            "a coupon prize without its template",
            with_tier(1, template_id=None),
            ("tiers.1.template_id",),
            "a coupon prize names its coupon template",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "a gift naming a coupon template",
            lambda w, valid: with_tier(0, template_id=w.extras["template_id"])(w, valid),
            ("tiers.0.template_id",),
            "a gift names no coupon template",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "a coupon template that does not exist",
            with_tier(1, template_id=MISSING_ID),
            ("tiers.1.template_id",),
            "no such coupon template",
        ),
        Bad(
            CAMPAIGN_CREATE,
            "another merchant's coupon template",
            lambda w, valid: with_tier(1, template_id=w.extras["other_template_id"])(w, valid),
            ("tiers.1.template_id",),
            "no such coupon template",
        ),
        Bad(CAMPAIGN_CREATE, "template id 0", with_tier(1, template_id=0), ("tiers", "1", "template_id")),
        Bad(
            CAMPAIGN_CREATE,
            "template id past bigint",
            with_tier(1, template_id=MAX_ID + 1),
            ("tiers", "1", "template_id"),
        ),
        Bad(
            CAMPAIGN_CREATE,
            "template id is a string",
            with_tier(1, template_id="1"),
            ("tiers", "1", "template_id"),
            NOT_INT,
        ),
        # changing a campaign
        Bad(CAMPAIGN_UPDATE, "an empty name", with_(name=""), ("name",)),
        Bad(CAMPAIGN_UPDATE, "a name null", with_(name=None), ("name",), NOT_NULL),
        Bad(CAMPAIGN_UPDATE, "a description past 500 characters", with_(description="x" * 501), ("description",)),
        Bad(CAMPAIGN_UPDATE, "an unknown status", with_(status="ended"), ("status",)),
        Bad(CAMPAIGN_UPDATE, "a status null", with_(status=None), ("status",), NOT_NULL),
        *_window_cases(CAMPAIGN_UPDATE),
        Bad(
            CAMPAIGN_UPDATE,
            "an end before the start it has",
            with_(ends_at="2020-01-01T00:00:00+08:00"),
            ("ends_at",),
            "after starts_at",
        ),
        Bad(
            CAMPAIGN_UPDATE,
            "a start after the end it has",
            lambda w, valid: {
                k: v
                for k, v in {**valid, "starts_at": (utcnow() + timedelta(days=30)).isoformat()}.items()
                if k != "ends_at"
            },
            ("ends_at",),
            "after starts_at",
        ),
        Bad(
            CAMPAIGN_UPDATE,
            "2 entries under the once rule",
            with_(max_entries=2),
            ("max_entries",),
            "1 for the once rule",
        ),
        Bad(CAMPAIGN_UPDATE, "max entries 0", with_(max_entries=0), ("max_entries",)),
        *_int_cases(CAMPAIGN_UPDATE, "max_entries"),
        Bad(CAMPAIGN_UPDATE, "a negative qualifying amount", with_(min_paid=-1), ("min_paid",)),
        Bad(CAMPAIGN_UPDATE, "366 days to redeem", with_(redeem_days=366), ("redeem_days",)),
        *_int_cases(CAMPAIGN_UPDATE, "redeem_days"),
        Bad(CAMPAIGN_UPDATE, "the entry rule once made", with_(entry_rule="per_order"), ("entry_rule",), UNKNOWN),
        Bad(CAMPAIGN_UPDATE, "tiers (changed one by one)", with_(tiers=[]), ("tiers",), UNKNOWN),
        Bad(CAMPAIGN_UPDATE, "its id in the body", with_(id=1), ("id",), UNKNOWN),
        # changing a tier
        Bad(TIER_UPDATE, "a quota below what it gave", with_(quota=0), None, code="quota_below_taken", status=409),
        Bad(
            TIER_UPDATE,
            "no quota on a tier that is not guaranteed",
            with_(quota=None),
            ("quota",),
            "a tier that is not guaranteed has a quota",
        ),
        Bad(TIER_UPDATE, "a negative quota", with_(quota=-1), ("quota",)),
        Bad(TIER_UPDATE, "a quota past 10 million", with_(quota=10_000_001), ("quota",)),
        *_int_cases(TIER_UPDATE, "quota"),
        Bad(TIER_UPDATE, "a negative cost", with_(cost=-1), ("cost",)),
        Bad(TIER_UPDATE, "a cost null", with_(cost=None), ("cost",), NOT_NULL),
        *_int_cases(TIER_UPDATE, "cost"),
        Bad(TIER_UPDATE, "an empty name", with_(name=""), ("name",)),
        Bad(TIER_UPDATE, "a name null", with_(name=None), ("name",), NOT_NULL),
        Bad(TIER_UPDATE, "a description past 200 characters", with_(description="x" * 201), ("description",)),
        Bad(TIER_UPDATE, "the odds once promised", with_(odds_bp=10000), ("odds_bp",), UNKNOWN),
        Bad(TIER_UPDATE, "another prize", with_(prize_kind="coupon"), ("prize_kind",), UNKNOWN),
        Bad(TIER_UPDATE, "a template", with_(template_id=1), ("template_id",), UNKNOWN),
        Bad(TIER_UPDATE, "guaranteed after the fact", with_(guaranteed=True), ("guaranteed",), UNKNOWN),
        Bad(TIER_UPDATE, "the count of prizes given", with_(taken=0), ("taken",), UNKNOWN),
        Bad(TIER_UPDATE, "a rank", with_(rank=1), ("rank",), UNKNOWN),
        # an upgrade offer
        Bad(OFFER_CREATE, "no source tier", without("from_tier_id"), ("from_tier_id",), REQUIRED),
        Bad(OFFER_CREATE, "no target tier", without("to_tier_id"), ("to_tier_id",), REQUIRED),
        Bad(OFFER_CREATE, "no price", without("price"), ("price",), REQUIRED),
        Bad(OFFER_CREATE, "price 0", with_(price=0), ("price",), "at least 1 fen"),
        Bad(OFFER_CREATE, "a negative price", with_(price=-100), ("price",), "at least 1 fen"),
        Bad(OFFER_CREATE, "a price past the maximum", with_(price=MAX_FEN + 1), ("price",)),
        Bad(OFFER_CREATE, "a price null", with_(price=None), ("price",), NOT_NULL),
        *_int_cases(OFFER_CREATE, "price"),
        Bad(OFFER_CREATE, "source tier id 0", with_(from_tier_id=0), ("from_tier_id",)),
        Bad(OFFER_CREATE, "source tier id past bigint", with_(from_tier_id=MAX_ID + 1), ("from_tier_id",)),
        Bad(OFFER_CREATE, "source tier id null", with_(from_tier_id=None), ("from_tier_id",), NOT_NULL),
        *_int_cases(OFFER_CREATE, "from_tier_id"),
        *_int_cases(OFFER_CREATE, "to_tier_id"),
        Bad(
            OFFER_CREATE,
            "a source tier that does not exist",
            with_(from_tier_id=MISSING_ID),
            ("from_tier_id",),
            "not a prize tier of this campaign",
        ),
        Bad(
            OFFER_CREATE,
            "a target tier of another campaign",
            lambda w, valid: {**valid, "to_tier_id": w.extras["other_campaign_tier_id"]},
            ("to_tier_id",),
            "not a prize tier of this campaign",
        ),
        Bad(
            OFFER_CREATE,
            "an upgrade to the same tier",
            lambda w, valid: {**valid, "to_tier_id": valid["from_tier_id"]},
            ("to_tier_id",),
            "a better tier (ranked above from_tier_id)",
        ),
        Bad(
            OFFER_CREATE,
            "an upgrade down",
            lambda w, valid: {
                **valid,
                "from_tier_id": w.extras["tier_ids"][FIRST],
                "to_tier_id": w.extras["tier_ids"][THIRD],
            },
            ("to_tier_id",),
            "a better tier (ranked above from_tier_id)",
        ),
        Bad(
            OFFER_CREATE,
            "an upgrade of a coupon prize",
            lambda w, valid: {**valid, "from_tier_id": w.extras["coupon_tier_id"]},
            ("from_tier_id",),
            "only a gift (a voucher) can be upgraded",
        ),
        Bad(
            OFFER_CREATE,
            "an upgrade to a coupon prize",
            lambda w, valid: {**valid, "to_tier_id": w.extras["coupon_tier_id"]},
            ("to_tier_id",),
            "an upgrade gives a gift (a voucher)",
        ),
        Bad(
            OFFER_CREATE,
            "an offer the campaign has",
            lambda w, valid: {
                **valid,
                "from_tier_id": w.extras["tier_ids"][SECOND],
                "to_tier_id": w.extras["tier_ids"][FIRST],
            },
            ("to_tier_id",),
            code="offer_exists",
            status=409,
        ),
        Bad(OFFER_CREATE, "a status on creation", with_(status="paused"), ("status",), UNKNOWN),
        Bad(OFFER_CREATE, "the campaign in the body", with_(campaign_id=1), ("campaign_id",), UNKNOWN),
        Bad(OFFER_UPDATE, "price 0", with_(price=0), ("price",), "at least 1 fen"),
        Bad(OFFER_UPDATE, "a negative price", with_(price=-1), ("price",), "at least 1 fen"),
        Bad(OFFER_UPDATE, "a price past the maximum", with_(price=MAX_FEN + 1), ("price",)),
        Bad(OFFER_UPDATE, "a price null", with_(price=None), ("price",), NOT_NULL),
        *_int_cases(OFFER_UPDATE, "price"),
        Bad(OFFER_UPDATE, "an unknown status", with_(status="deleted"), ("status",)),
        Bad(OFFER_UPDATE, "a status null", with_(status=None), ("status",), NOT_NULL),
        Bad(OFFER_UPDATE, "another source tier", with_(from_tier_id=1), ("from_tier_id",), UNKNOWN),
        Bad(OFFER_UPDATE, "another target tier", with_(to_tier_id=1), ("to_tier_id",), UNKNOWN),
        # the draws of a campaign (staff)
        *_page_cases(DRAWS),
        Bad(DRAWS, "a member filter it does not take", with_(member_id=1), ("member_id",), UNKNOWN),
        # the prizes (staff)
        *_page_cases(STAFF_PRIZES),
        Bad(STAFF_PRIZES, "a campaign id that is not a number", with_(campaign_id="abc"), ("campaign_id",), NOT_INT),
        Bad(STAFF_PRIZES, "a campaign id that is a fraction", with_(campaign_id="1.5"), ("campaign_id",), NOT_INT),
        Bad(STAFF_PRIZES, "a campaign id that is a boolean", with_(campaign_id="true"), ("campaign_id",), NOT_INT),
        Bad(STAFF_PRIZES, "campaign id 0", with_(campaign_id=0), ("campaign_id",)),
        Bad(STAFF_PRIZES, "a negative campaign id", with_(campaign_id=-1), ("campaign_id",)),
        Bad(STAFF_PRIZES, "campaign id past bigint", with_(campaign_id=MAX_ID + 1), ("campaign_id",)),
        Bad(STAFF_PRIZES, "an unknown status", with_(status="lost"), ("status",)),
        *_code_cases(STAFF_PRIZES),
        Bad(STAFF_PRIZES, "a member filter it does not take", with_(member_id=1), ("member_id",), UNKNOWN),
        # redeeming a voucher
        Bad(REDEEM, "no code", without("code"), ("code",), REQUIRED),
        Bad(REDEEM, "a code null", with_(code=None), ("code",), NOT_NULL),
        Bad(REDEEM, "a code that is a number", with_(code=12345678), ("code",), NOT_STRING),
        *_code_cases(REDEEM),
        Bad(REDEEM, "a prize by its id", with_(prize_id=1), ("prize_id",), UNKNOWN),
        Bad(REDEEM, "the staff member of their choosing", with_(staff_id=1), ("staff_id",), UNKNOWN),
        Bad(
            REDEEM,
            "a code no voucher has",
            lambda w, valid: {"code": f"{(int(w.extras['code']) + 1) % 10**8:08d}"},
            None,
            code="not_found",
            status=404,
        ),
        Bad(
            REDEEM,
            "another merchant's voucher",
            lambda w, valid: {"code": w.extras["other_code"]},
            None,
            code="not_found",
            status=404,
        ),
        Bad(
            REDEEM,
            "a voucher held by an upgrade being paid for",
            lambda w, valid: {"code": w.extras["held_code"]},
            None,
            code="prize_not_redeemable",
            status=409,
        ),
        Bad(
            REDEEM,
            "a voucher past its date",
            lambda w, valid: {"code": w.extras["expired_code"]},
            None,
            code="prize_expired",
            status=409,
        ),
        # a member's draw: no body, an Idempotency-Key
        *_key_cases(DRAW),
        Bad(DRAW, "the prize of their choosing", with_(tier_id=1), ("tier_id",), UNKNOWN),
        Bad(DRAW, "the roll of their choosing", with_(roll=0), ("roll",), UNKNOWN),
        # a member's prizes
        *_page_cases(MEMBER_PRIZES),
        Bad(MEMBER_PRIZES, "an unknown status", with_(status="lost"), ("status",)),
        Bad(MEMBER_PRIZES, "another member's prizes", with_(member_id=1), ("member_id",), UNKNOWN),
        Bad(MEMBER_PRIZES, "a search by code", with_(code="12345678"), ("code",), UNKNOWN),
        # a member's upgrade
        *_key_cases(UPGRADE),
        Bad(UPGRADE, "no offer", without("offer_id"), ("offer_id",), REQUIRED),
        Bad(UPGRADE, "offer null", with_(offer_id=None), ("offer_id",), NOT_NULL),
        Bad(UPGRADE, "offer id 0", with_(offer_id=0), ("offer_id",)),
        Bad(UPGRADE, "offer id past bigint", with_(offer_id=MAX_ID + 1), ("offer_id",)),
        *_int_cases(UPGRADE, "offer_id"),
        Bad(
            UPGRADE,
            "an offer that does not exist",
            with_(offer_id=MISSING_ID),
            ("offer_id",),
            "not an upgrade offer for this prize",
        ),
        Bad(
            UPGRADE,
            "an offer for another tier",
            lambda w, valid: {"offer_id": w.extras["third_offer_id"]},
            ("offer_id",),
            "not an upgrade offer for this prize",
        ),
        Bad(
            UPGRADE,
            "another merchant's offer",
            lambda w, valid: {"offer_id": w.extras["other_offer_id"]},
            ("offer_id",),
            "not an upgrade offer for this prize",
        ),
        Bad(
            UPGRADE,
            "a paused offer",
            lambda w, valid: {"offer_id": w.extras["paused_offer_id"]},
            None,
            code="offer_paused",
            status=409,
        ),
        Bad(
            UPGRADE,
            "an offer of a tier sold out (the prize held a moment, then released)",
            lambda w, valid: {"offer_id": w.extras["sold_out_offer_id"]},
            None,
            code="prize_sold_out",
            status=409,
        ),
        Bad(UPGRADE, "the price of their choosing", with_(price=1), ("price",), UNKNOWN),
        Bad(UPGRADE, "a tier instead of an offer", with_(to_tier_id=1), ("to_tier_id",), UNKNOWN),
    ]
)


# --- tenant isolation ---------------------------------------------------------------------------

# The member's draw and upgrade need an Idempotency-Key: their path cases send this one.
MEMBER_KEY = {"Idempotency-Key": "isolation-campaigns-0001"}


@registry.add_shop_part
def campaign_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """The LADDER campaign (`campaign_id`, its tiers) with an offer from the guaranteed tier to
    first prize, the member's prize of the guaranteed tier, a second campaign the member has not
    drawn in, and a coupon template of the shop's."""
    campaign = make_campaign(client, shop.owner, name=f"{shop.word} 抽奖")
    tiers = [tier["id"] for tier in campaign["tiers"]]
    prize = draw(client, shop.member, campaign["id"], f"{shop.word}-campaign-draw")
    return {
        "campaign_id": campaign["id"],
        "campaign_first_tier_id": tiers[FIRST],
        "campaign_second_tier_id": tiers[SECOND],
        "campaign_guaranteed_tier_id": tiers[GUARANTEED],
        "campaign_offer_id": make_offer(client, shop.owner, campaign, GUARANTEED, FIRST),
        "campaign_prize_id": prize["id"],
        "campaign_undrawn_id": make_campaign(client, shop.owner, name=f"{shop.word} 再抽")["id"],
        "campaign_template_id": make_template(client, shop.owner),
    }


def _second_to_first(s: Shop) -> dict[str, Any]:
    return {"from_tier_id": s.campaign_second_tier_id, "to_tier_id": s.campaign_first_tier_id, "price": 500}


registry.add_path_cases(
    [
        PathCase("GET", CAMPAIGN, "staff", {"campaign_id": "campaign_id"}),
        PathCase(
            "PATCH", CAMPAIGN, "staff", {"campaign_id": "campaign_id"}, lambda s: {"name": f"{s.word} taken over"}
        ),
        PathCase(
            "PATCH",
            TIER_UPDATE[0],
            "staff",
            {"campaign_id": "campaign_id", "tier_id": "campaign_first_tier_id"},
            lambda s: {"quota": 100},
        ),
        PathCase("GET", OFFERS, "staff", {"campaign_id": "campaign_id"}),
        PathCase("POST", OFFERS, "staff", {"campaign_id": "campaign_id"}, _second_to_first, ok=201),
        PathCase(
            "PATCH",
            OFFER_UPDATE[0],
            "staff",
            {"campaign_id": "campaign_id", "offer_id": "campaign_offer_id"},
            lambda s: {"price": 1},
        ),
        PathCase("GET", DRAWS[0], "staff", {"campaign_id": "campaign_id"}),
        PathCase("GET", f"{CAMPAIGN}/economics", "staff", {"campaign_id": "campaign_id"}),
        PathCase("GET", STAFF_PRIZE, "staff", {"prize_id": "campaign_prize_id"}),
        PathCase("GET", MEMBER_CAMPAIGN, "member", {"campaign_id": "campaign_id"}),
        PathCase("POST", DRAW[0], "member", {"campaign_id": "campaign_undrawn_id"}, ok=201, extra_headers=MEMBER_KEY),
        PathCase("GET", MEMBER_PRIZE, "member", {"prize_id": "campaign_prize_id"}),
        PathCase(
            "POST",
            UPGRADE[0],
            "member",
            {"prize_id": "campaign_prize_id"},
            lambda s: {"offer_id": s.campaign_offer_id},
            ok=201,
            extra_headers=MEMBER_KEY,
        ),
    ]
)


def _one_coupon_tier(template_id: int) -> list[dict[str, Any]]:
    return [{"name": "券", "prize_kind": "coupon", "template_id": template_id, "odds_bp": 10000, "guaranteed": True}]


registry.add_body_cases(
    [
        BodyCase(
            "a campaign giving another merchant's coupons",
            "POST",
            lambda a: MC,
            lambda a, template_id: campaign_terms(tiers=_one_coupon_tier(template_id)),
            "campaign_template_id",
            ("tiers.0.template_id",),
        ),
        BodyCase(
            "an upgrade offer from another merchant's tier",
            "POST",
            lambda a: f"{MC}/{a.campaign_id}/upgrade-offers",
            lambda a, tier_id: {"from_tier_id": tier_id, "to_tier_id": a.campaign_first_tier_id, "price": 500},
            "campaign_second_tier_id",
            ("from_tier_id",),
        ),
        BodyCase(
            "an upgrade offer to another merchant's tier",
            "POST",
            lambda a: f"{MC}/{a.campaign_id}/upgrade-offers",
            lambda a, tier_id: {"from_tier_id": a.campaign_second_tier_id, "to_tier_id": tier_id, "price": 500},
            "campaign_first_tier_id",
            ("to_tier_id",),
        ),
        BodyCase(
            "an upgrade bought with another merchant's offer",
            "POST",
            lambda a: f"{PREFIX}/prizes/{a.campaign_prize_id}/upgrade",
            lambda a, offer_id: {"offer_id": offer_id},
            "campaign_offer_id",
            ("offer_id",),
            caller="member",
            extra_headers=ISOLATION_KEY,
        ),
    ]
)
