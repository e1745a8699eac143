from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

MAX_FEN = 10_000_000_00  # 10 million yuan: far above any real price, far below overflow
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints; a larger number can name no row
# A date and time a merchant sets (a window's ends): an instant PostgreSQL stores and Python reads
# back. An offset can carry an instant past either end of Python's years (year 1 at +08:00 is
# 1 BC in UTC): stored, every later read of the row would fail.
STORABLE_INSTANT = validate.Range(
    min=datetime(2000, 1, 1, tzinfo=UTC),
    max=datetime(9999, 1, 1, tzinfo=UTC),
    error="between 2000-01-01 and 9999-01-01 (UTC)",
)


def Fen(**kwargs) -> fields.Integer:
    """An amount of money in fen (integer, never a float or a string)."""
    kwargs.setdefault("validate", validate.Range(min=0, max=MAX_FEN))
    metadata = dict(kwargs.pop("metadata", {}))
    described = metadata.get("description")
    metadata["description"] = "amount in fen (1/100 yuan)" + (f": {described}" if described else "")
    return fields.Integer(strict=True, metadata=metadata, **kwargs)


NUL_MESSAGE = "must not contain the NUL character"
SURROGATE_MESSAGE = "must not contain a lone surrogate (invalid Unicode)"


def _collect_text(value: Any, into: list[str]) -> None:
    """Every string in `value` (keys of objects too), into `into`."""
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                into.append(key)
            _collect_text(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_text(item, into)


def unstorable_text(value: Any) -> list[str]:
    """Why `value` (a field's loaded value, nested or not) cannot be stored: each of the messages
    that applies, in one pass over its strings (joined: a Python string with a lone surrogate
    never encodes, wherever it stands)."""
    texts: list[str] = []
    _collect_text(value, texts)
    if not texts:
        return []
    text = "".join(texts)
    found = [NUL_MESSAGE] if "\x00" in text else []
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell "\ud800" alone; UTF-8, hence PostgreSQL, cannot
        found.append(SURROGATE_MESSAGE)
    return found


class InputSchema(Schema):
    """The base of every schema that loads client input (body or query string).

    PostgreSQL cannot store the NUL character in text or JSONB, nor text that is not valid
    Unicode (a lone surrogate such as "\\ud800", which JSON can carry), so text carrying either
    is refused here, naming the field, rather than failing in the database with a 500.
    """

    @validates_schema
    def _storable_text(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        for name, value in sorted(data.items()):
            found = unstorable_text(value)
            if found:
                errors[name] = found
        if errors:
            raise ValidationError(errors)


class NoBodySchema(InputSchema):
    """The body of an action whose URL says everything (cancel, pay, approve, ...): none, or an
    empty object. A field sent there is refused like any unknown field, never silently ignored."""


class FullMatch(validate.Regexp):
    """validate.Regexp over the whole value: Python's `$` also matches before a final newline,
    so "SF123\\n" would pass `^[A-Z0-9]+$` and reach the database with its newline."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "e.g. {'fields': {name: [messages]}}"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class PageArgsSchema(InputSchema):
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))
