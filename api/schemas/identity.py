from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from api.auth import STAFF_ROLES
from api.schemas.common import FullMatch, InputSchema
from shop.identity.staff import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    USERNAME_RULE,
    password_problem,
)

MERCHANT_CODE = fields.String(
    required=True, validate=validate.Length(min=1, max=32), metadata={"description": "the merchant's code, e.g. demo"}
)


class WxLoginSchema(InputSchema):
    merchant = MERCHANT_CODE
    code = fields.String(
        required=True, validate=validate.Length(min=1, max=128), metadata={"description": "the code from wx.login()"}
    )


class MemberSchema(Schema):
    id = fields.Integer()
    nickname = fields.String()
    avatar_url = fields.String()
    created_at = fields.DateTime()


class MemberTokenSchema(Schema):
    token = fields.String()
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer(metadata={"description": "seconds"})
    new_member = fields.Boolean()
    member = fields.Nested(MemberSchema)


class ProfileUpdateSchema(InputSchema):
    nickname = fields.String(validate=validate.Length(max=64))
    avatar_url = fields.Url(validate=validate.Length(max=512), schemes={"https", "http"})


class StaffLoginSchema(InputSchema):
    merchant = MERCHANT_CODE
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))


class StaffSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    display_name = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)


class StaffTokenSchema(Schema):
    token = fields.String()
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer()
    staff = fields.Nested(StaffSchema)


USERNAME = FullMatch(rf"^{USERNAME_PATTERN}$", error=USERNAME_RULE)


def staff_password(password: str) -> None:
    """The staff password rule (shop.identity.staff.password_problem), as a marshmallow validator."""
    problem = password_problem(password)
    if problem:
        raise ValidationError(problem)


PASSWORD_DOC = {"minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH}


class StaffCreateSchema(InputSchema):
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, load_only=True, validate=staff_password, metadata=PASSWORD_DOC)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    display_name = fields.String(load_default="", validate=validate.Length(max=64))


class StaffUpdateSchema(InputSchema):
    role = fields.String(validate=validate.OneOf(STAFF_ROLES))
    active = fields.Boolean()
    password = fields.String(load_only=True, validate=staff_password, metadata=PASSWORD_DOC)
    display_name = fields.String(validate=validate.Length(max=64))


class StaffListSchema(Schema):
    items = fields.List(fields.Nested(StaffSchema))
