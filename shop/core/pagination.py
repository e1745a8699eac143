"""Keyset paging: opaque cursors holding the sort key of the last row seen."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from shop.core.db import db
from shop.core.errors import field_error

_BIGINT = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise field_error("cursor", "not a cursor this API gave out", "invalid_cursor") from None
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, int) and not isinstance(v, bool) and v in _BIGINT for v in values)
    ):
        raise field_error("cursor", "not a cursor this API gave out", "invalid_cursor")
    return values


def keyset_page(
    query: Select,
    keys: Sequence[InstrumentedAttribute[Any]],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = True,
    scalars: bool = True,
) -> Page:
    """One page of `query` ordered by `keys` (the last of which must be unique, e.g. the id),
    after the row the cursor names: one statement whatever the page, stable while rows are
    added. Items are ORM objects (`scalars`) or rows; the cursor holds the last item's keys."""
    if cursor:
        values = decode_cursor(cursor, len(keys))
        if len(keys) == 1:
            query = query.where(keys[0] < values[0] if descending else keys[0] > values[0])
        else:
            pair = tuple_(*keys)
            query = query.where(pair < tuple(values) if descending else pair > tuple(values))
    query = query.order_by(*(key.desc() if descending else key for key in keys)).limit(limit + 1)
    result = db.session.execute(query)
    rows = list(result.scalars() if scalars else result.all())
    next_cursor = encode_cursor([getattr(rows[limit - 1], key.key) for key in keys]) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)
