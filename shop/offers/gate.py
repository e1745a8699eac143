"""The sold-out gate: once PostgreSQL has said an offer is sold out, Redis says it to the next
thousands of buyers without asking PostgreSQL again, until units come back.

Two keys per offer (and merchant, so another merchant's id never matches): a generation, raised
after every commit that gives units back to the offer (an order cancelled, expired or refunded;
more quota), and the sold-out mark, which holds the generation it was set under. A buyer reads
both before placing: the mark counts only while it equals the generation. When the placement
finds no unit, the mark is set with the generation read BEFORE it (a Lua compare-and-set), so a
unit given back meanwhile (its raise of the generation comes after its commit) always wins: the
mark is either refused or invalidated. PostgreSQL stays the source of truth: with the keys gone
(Redis lost its data, restarted) or Redis unreachable, placements just go to the database, and
the first to find the offer sold out sets the mark again. A raise that could not reach Redis is
kept in the request-path client's outbox, and `sweep_gates` clears marks of offers that have
free units again (what a lost raise would leave behind).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError

from shop.core.cache import redis_client
from shop.core.db import after_commit, utcnow
from shop.core.redisguard import guard_of

log = logging.getLogger(__name__)

# KEYS: generation, mark; ARGV: the generation seen before the placement, the mark's expiry
# (epoch seconds). Set the mark only if no unit came back since.
_MARK = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], current, 'EXAT', ARGV[2])
return 1
"""


def _keys(merchant_id: int, offer_id: int) -> tuple[str, str]:
    base = f"gs:offer:{merchant_id}:{offer_id}"
    return f"{base}:gen", f"{base}:soldout"


@dataclass(frozen=True)
class Seen:
    """What the gate said before a placement: the generation (None: Redis did not answer) and
    whether the offer is known to be sold out."""

    generation: str | None
    sold_out: bool


def look(merchant_id: int, offer_id: int) -> Seen:
    try:
        generation, mark = redis_client().mget(_keys(merchant_id, offer_id))
    except RedisError:
        return Seen(None, False)
    generation = (generation or b"0").decode()
    return Seen(generation, mark is not None and mark.decode() == generation)


def mark_sold_out(merchant_id: int, offer_id: int, seen: Seen, until: datetime) -> bool:
    """The placement found no unit: tell the next buyers, unless units came back since `seen`."""
    if seen.generation is None:
        return False
    expires = max(until, utcnow())
    client = redis_client()
    try:
        return bool(
            client.register_script(_MARK)(
                keys=list(_keys(merchant_id, offer_id)),
                args=[seen.generation, int(expires.timestamp()) + 60],
                client=client,
            )
        )
    except RedisError as exc:
        log.warning("offer %s: the sold-out mark was not set (%s)", offer_id, exc)
        return False


def units_back_after_commit(merchant_id: int, offer_id: int) -> None:
    """Units of the offer came back in this transaction: once it commits, a sold-out mark no
    longer counts. Kept in the client's outbox while Redis cannot take it."""
    client = redis_client()
    guard = guard_of(client)
    generation_key, _ = _keys(merchant_id, offer_id)

    def _raise() -> None:
        client.incr(generation_key)

    def _send() -> None:
        try:
            _raise()
        except RedisError:
            if guard is None:
                raise
            guard.defer_bump(generation_key, _raise)

    after_commit(_send)


def clear_if_units_free(offers: list[tuple[int, int]]) -> int:
    """Raise the generation of each (merchant_id, offer_id) marked sold out: the caller found free
    units for them. Returns how many marks were cleared."""
    client = redis_client()
    cleared = 0
    for merchant_id, offer_id in offers:
        generation_key, mark_key = _keys(merchant_id, offer_id)
        generation, mark = client.mget(generation_key, mark_key)
        if mark is not None and mark == (generation or b"0"):
            client.incr(generation_key)
            cleared += 1
    return cleared
