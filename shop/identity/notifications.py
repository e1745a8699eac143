"""The notification outbox: messages to members to be sent later (WeChat subscription messages,
订阅消息), e.g. "your group succeeded", "your commission settled".

A feature package calls `queue_notification` inside its own transaction, so the message is stored
if and only if the change it announces commits. Sending is not built yet (a later issue adds the
sender, which will pick the pending rows whose `send_after` has come, call WeChat outside any
transaction and record the outcome); until then messages stay "pending".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shop.core.db import db, utcnow
from shop.core.errors import InvalidInput, NotFound
from shop.identity.models import Member, OutboxNotification

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MAX_DEDUPE_KEY = 128
MAX_PAYLOAD_BYTES = 4096
MAX_PAYLOAD_DEPTH = 8


def queue_notification(
    merchant_id: int,
    member_id: int,
    *,
    kind: str,
    payload: Mapping[str, Any],
    dedupe_key: str,
    send_after: datetime | None = None,
) -> bool:
    """Store a message for `member_id` of `merchant_id`, to be sent at `send_after` (now when
    None); True when stored, False when a message with this `dedupe_key` is stored for the merchant
    already (also when another transaction stored it meanwhile: the same message queued twice is
    stored once, and the second caller's transaction goes on).

    kind: the template, lowercase letters, digits and `_.-`, at most 64 characters; payload: a JSON
    object (at most 4 KiB, 8 levels deep, no NUL characters); dedupe_key: 1 to 128 characters;
    send_after: an aware datetime. Bad input raises InvalidInput naming the fields at fault and
    stores nothing; a member of another merchant (or none) is NotFound."""
    errors: dict[str, list[str]] = {}
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        errors["kind"] = ["1 to 64 characters: lowercase letters, digits, _ . -, starting with a letter"]
    if not isinstance(dedupe_key, str) or not dedupe_key.strip() or len(dedupe_key) > MAX_DEDUPE_KEY:
        errors["dedupe_key"] = [f"1 to {MAX_DEDUPE_KEY} characters, not only spaces"]
    elif _bad_text(dedupe_key):
        errors["dedupe_key"] = ["must not contain NUL or unpaired surrogate characters"]
    payload_error = _payload_error(payload)
    if payload_error:
        errors["payload"] = [payload_error]
    if send_after is not None and (not isinstance(send_after, datetime) or send_after.utcoffset() is None):
        errors["send_after"] = ["a datetime with its time zone"]
    for field, value in (("merchant_id", merchant_id), ("member_id", member_id)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors[field] = ["a positive integer id"]
    if errors:
        raise InvalidInput("the notification is not valid", details={"fields": errors})

    owner = db.session.execute(select(Member.merchant_id).where(Member.id == member_id)).scalar_one_or_none()
    if owner != merchant_id:
        raise NotFound("member not found", details={"fields": {"member_id": ["no such member"]}})
    now = utcnow()
    stored = db.session.execute(
        insert(OutboxNotification)
        .values(
            merchant_id=merchant_id,
            member_id=member_id,
            kind=kind,
            payload=dict(payload),
            dedupe_key=dedupe_key,
            status="pending",
            attempts=0,
            created_at=now,
            send_after=send_after or now,
        )
        .on_conflict_do_nothing(index_elements=["merchant_id", "dedupe_key"])
        .returning(OutboxNotification.id)
    ).scalar_one_or_none()
    return stored is not None


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _payload_error(payload: Any) -> str | None:
    """Why `payload` cannot be stored as a JSONB object, or None."""
    if not isinstance(payload, Mapping):
        return "a JSON object"
    error = _value_error(payload, 1)
    if error:
        return error
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        return f"at most {MAX_PAYLOAD_BYTES} bytes as JSON"
    return None


def _value_error(value: Any, level: int) -> str | None:
    if isinstance(value, Mapping | list | tuple):
        if level > MAX_PAYLOAD_DEPTH:
            return f"at most {MAX_PAYLOAD_DEPTH} levels deep"
        if isinstance(value, Mapping):
            if not all(isinstance(key, str) for key in value):
                return "object keys must be text"
            children = [*value.keys(), *value.values()]
        else:
            children = list(value)
        for child in children:
            error = _value_error(child, level + 1)
            if error:
                return error
        return None
    if isinstance(value, str):
        # PostgreSQL refuses NUL in jsonb; a lone surrogate cannot be encoded.
        return "text must not contain NUL or unpaired surrogate characters" if _bad_text(value) else None
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "numbers must be finite"
    if value is None or isinstance(value, bool | int | float):
        return None
    return "only JSON values (objects with text keys, arrays, text, numbers, true, false, null)"
