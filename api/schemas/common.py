from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

MAX_FEN = 10_000_000_00  # 10 million yuan: far above any real price, far below overflow
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints; a larger number can name no row


def Fen(**kwargs) -> fields.Integer:
    """An amount of money in fen (integer, never a float or a string)."""
    kwargs.setdefault("validate", validate.Range(min=0, max=MAX_FEN))
    return fields.Integer(strict=True, metadata={"description": "amount in fen (1/100 yuan)"}, **kwargs)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class InputSchema(Schema):
    """The base of every schema that loads client input (body or query string).

    PostgreSQL cannot store the NUL character in text or JSONB, so text carrying one is refused
    here, naming the field, rather than failing in the database with a 500.
    """

    @validates_schema
    def _no_nul_characters(self, data: dict[str, Any], **kwargs: Any) -> None:
        bad = sorted(name for name, value in data.items() if _has_nul(value))
        if bad:
            raise ValidationError({name: ["must not contain the NUL character"] for name in bad})


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
