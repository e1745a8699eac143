"""Invalid-input and tenant-isolation cases of the referral-reward endpoints (staff configure,
members read what they earned).

Registered on import (tests/coverage/registry.py); the coverage tests in tests/api/ read them.
"""

from __future__ import annotations

from typing import Any

from api.schemas.common import MAX_ID
from tests.coverage import registry
from tests.coverage.invalid_input import MISSING_ID, NOT_INT, PREFIX, UNKNOWN, Bad, Endpoint, World, with_, without
from tests.coverage.isolation import BodyCase, PathCase, Shop

REWARDS = ("/api/v1/merchant/referral-rewards", "GET")
REWARD_CREATE = ("/api/v1/merchant/referral-rewards", "POST")
REWARD_UPDATE = ("/api/v1/merchant/referral-rewards/<int:reward_id>", "PATCH")
REWARD_GRANTS = ("/api/v1/merchant/referral-rewards/<int:reward_id>/grants", "GET")
EARNED = ("/api/v1/referral-rewards", "GET")
REQUIRED = "Missing data for required field."


def _template(client: Any, owner: dict[str, str]) -> int:
    response = client.post(
        f"{PREFIX}/merchant/coupon-templates",
        json={"name": "邀请有礼", "kind": "amount_off", "amount": 500, "valid_days": 7, "total_quantity": 100},
        headers=owner,
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def reward_body(template_id: int, **overrides: Any) -> dict[str, Any]:
    return {"name": "邀请新人", "trigger": "joined", "reward_kind": "coupon", "template_id": template_id, **overrides}


def _reward(client: Any, owner: dict[str, str]) -> dict[str, int]:
    template_id = _template(client, owner)
    response = client.post(f"{PREFIX}/merchant/referral-rewards", json=reward_body(template_id), headers=owner)
    assert response.status_code == 201, response.json
    return {"template_id": template_id, "reward_id": response.json["id"]}


def _world_template(client: Any, world: World) -> dict[str, Any]:
    return {"template_id": _template(client, world.owner)}


def _world_reward(client: Any, world: World) -> dict[str, Any]:
    return _reward(client, world.owner)


registry.add_endpoints(
    {
        REWARDS: Endpoint(
            lambda w: f"{PREFIX}/merchant/referral-rewards",
            "staff",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
        ),
        REWARD_CREATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/referral-rewards",
            "staff",
            "json",
            lambda w: reward_body(w.extras["template_id"]),
            ok=201,
            text_field="name",
            setup=_world_template,
        ),
        REWARD_UPDATE: Endpoint(
            lambda w: f"{PREFIX}/merchant/referral-rewards/{w.extras['reward_id']}",
            "staff",
            "json",
            lambda w: {"name": "邀请好友", "delay_minutes": 30},
            text_field="name",
            setup=_world_reward,
        ),
        REWARD_GRANTS: Endpoint(
            lambda w: f"{PREFIX}/merchant/referral-rewards/{w.extras['reward_id']}/grants",
            "staff",
            "query",
            lambda w: {"limit": 10},
            text_field="cursor",
            setup=_world_reward,
        ),
        EARNED: Endpoint(
            lambda w: f"{PREFIX}/referral-rewards", "member", "query", lambda w: {"limit": 5}, text_field="cursor"
        ),
    }
)

registry.add_cases(
    [
        Bad(REWARDS, "limit 0", with_(limit=0), ("limit",)),
        Bad(REWARDS, "limit 51", with_(limit=51), ("limit",)),
        Bad(REWARD_CREATE, "no name", without("name"), ("name",), REQUIRED),
        Bad(REWARD_CREATE, "no trigger", without("trigger"), ("trigger",), REQUIRED),
        Bad(REWARD_CREATE, "no kind", without("reward_kind"), ("reward_kind",), REQUIRED),
        Bad(REWARD_CREATE, "an unknown trigger", with_(trigger="top_up"), ("trigger",)),
        Bad(REWARD_CREATE, "cash", with_(reward_kind="cash"), ("reward_kind",)),
        Bad(REWARD_CREATE, "a coupon without its template", with_(template_id=None), ("template_id",)),
        Bad(REWARD_CREATE, "an unknown template", with_(template_id=MISSING_ID), ("template_id",)),
        Bad(REWARD_CREATE, "a template id past bigint", with_(template_id=MAX_ID + 1), ("template_id",)),
        Bad(REWARD_CREATE, "a template id as a string", with_(template_id="1"), ("template_id",), NOT_INT),
        Bad(REWARD_CREATE, "a coupon naming a tier too", with_(tier_id=MISSING_ID), ("tier_id",)),
        Bad(
            REWARD_CREATE,
            "a prize without its tier",
            with_(reward_kind="prize", template_id=None),
            ("tier_id",),
        ),
        Bad(REWARD_CREATE, "a negative delay", with_(delay_minutes=-1), ("delay_minutes",)),
        Bad(REWARD_CREATE, "a delay over 30 days", with_(delay_minutes=43_201), ("delay_minutes",)),
        Bad(REWARD_CREATE, "a delay as a float", with_(delay_minutes=1.5), ("delay_minutes",), NOT_INT),
        Bad(REWARD_CREATE, "an empty name", with_(name=""), ("name",)),
        Bad(REWARD_CREATE, "a name of 41 characters", with_(name="x" * 41), ("name",)),
        Bad(REWARD_CREATE, "an amount of cash", with_(amount=500), ("amount",), UNKNOWN),
        Bad(REWARD_CREATE, "an unknown status", with_(status="deleted"), ("status",)),
        Bad(REWARD_UPDATE, "an unknown status", with_(status="deleted"), ("status",)),
        Bad(REWARD_UPDATE, "what it gives", with_(template_id=1), ("template_id",), UNKNOWN),
        Bad(REWARD_UPDATE, "a negative delay", with_(delay_minutes=-5), ("delay_minutes",)),
        Bad(REWARD_UPDATE, "a null name", with_(name=None), ("name",)),
        Bad(REWARD_GRANTS, "limit 0", with_(limit=0), ("limit",)),
        Bad(EARNED, "limit 0", with_(limit=0), ("limit",)),
        Bad(EARNED, "a filter members do not have", with_(inviter_id=3), ("inviter_id",), UNKNOWN),
    ]
)


@registry.add_shop_part
def referral_rows(client: Any, shop: Shop) -> dict[str, Any]:
    """A referral reward of a coupon template."""
    made = _reward(client, shop.owner)
    return {"referral_reward_id": made["reward_id"], "referral_template_id": made["template_id"]}


registry.add_path_cases(
    [
        PathCase("GET", REWARD_UPDATE[0], "staff", {"reward_id": "referral_reward_id"}),
        PathCase(
            "PATCH", REWARD_UPDATE[0], "staff", {"reward_id": "referral_reward_id"}, lambda s: {"status": "paused"}
        ),
        PathCase("GET", REWARD_GRANTS[0], "staff", {"reward_id": "referral_reward_id"}),
    ]
)

registry.add_body_cases(
    [
        BodyCase(
            "a referral reward of another merchant's coupon template",
            "POST",
            lambda a: f"{PREFIX}/merchant/referral-rewards",
            lambda a, template_id: reward_body(template_id),
            "referral_template_id",
            ("template_id",),
        ),
        BodyCase(
            "a referral reward of another merchant's prize tier (tests/api/campaigns_cases.py's shop part)",
            "POST",
            lambda a: f"{PREFIX}/merchant/referral-rewards",
            lambda a, tier_id: {"name": "邀请抽奖", "trigger": "joined", "reward_kind": "prize", "tier_id": tier_id},
            "campaign_first_tier_id",
            ("tier_id",),
        ),
    ]
)
