from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

MAX_FEN = 10_000_000_00  # 10 million yuan: far above any real price, far below overflow
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints; a larger number can name no row


def Fen(**kwargs) -> fields.Integer:
    """An amount of money in fen (integer, never a float or a string)."""
    kwargs.setdefault("validate", validate.Range(min=0, max=MAX_FEN))
    metadata = dict(kwargs.pop("metadata", {}))
    described = metadata.get("description")
    metadata["description"] = "amount in fen (1/100 yuan)" + (f": {described}" if described else "")
    return fields.Integer(strict=True, metadata=metadata, **kwargs)


def _has_nul(text: str) -> bool:
    return "\x00" in text


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell "\ud800" alone; UTF-8, hence PostgreSQL, cannot
        return True
    return False


def _any_text(value: Any, test: Callable[[str], bool]) -> bool:
    if isinstance(value, str):
        return test(value)
    if isinstance(value, dict):
        return any(_any_text(k, test) or _any_text(v, test) for k, v in value.items())
    if isinstance(value, list):
        return any(_any_text(v, test) for v in value)
    return False


UNSTORABLE_TEXT = (
    (_has_nul, "must not contain the NUL character"),
    (_has_lone_surrogate, "must not contain a lone surrogate (invalid Unicode)"),
)


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
            for test, message in UNSTORABLE_TEXT:
                if _any_text(value, test):
                    errors.setdefault(name, []).append(message)
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
