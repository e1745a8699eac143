from __future__ import annotations

from marshmallow import Schema, fields, validate

MAX_FEN = 10_000_000_00  # 10 million yuan: far above any real price, far below overflow


def Fen(**kwargs) -> fields.Integer:
    """An amount of money in fen (integer, never a float or a string)."""
    kwargs.setdefault("validate", validate.Range(min=0, max=MAX_FEN))
    return fields.Integer(strict=True, metadata={"description": "amount in fen (1/100 yuan)"}, **kwargs)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "e.g. {'fields': {name: [messages]}}"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class PageArgsSchema(Schema):
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"}
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))
