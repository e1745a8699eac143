from __future__ import annotations

import re
import unicodedata
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate

from api.auth import STAFF_ROLES
from api.schemas.common import FullMatch, InputSchema
from shop.core.masking import mask_name
from shop.identity.invite_codes import share_payload
from shop.identity.invites import CHANNEL_PATTERN, CHANNEL_RULE
from shop.identity.members import birthday_problem
from shop.identity.models import Member
from shop.identity.staff import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    USERNAME_RULE,
    password_problem,
)

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

MERCHANT_CODE = fields.String(
    required=True, validate=validate.Length(min=1, max=32), metadata={"description": "the merchant's code, e.g. demo"}
)


CHANNEL = fields.String(
    validate=FullMatch(f"^{CHANNEL_PATTERN}$", error=CHANNEL_RULE),
    metadata={"description": f"where the member came from: {CHANNEL_RULE}", "pattern": f"^{CHANNEL_PATTERN}$"},
)


class WxLoginSchema(InputSchema):
    merchant = MERCHANT_CODE
    code = fields.String(
        required=True, validate=validate.Length(min=1, max=128), metadata={"description": "the code from wx.login()"}
    )
    invite = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "the invite code the mini-program was opened with (share card ?invite=<code>, QR scene "
            "i=<code>); one that names nobody of this merchant, or the member themself, is ignored"
        },
    )
    channel = CHANNEL


class MemberSchema(Schema):
    id = fields.Integer()
    nickname = fields.String()
    avatar_url = fields.String()
    birthday = fields.Date(allow_none=True)
    invite_code = fields.String()
    share = fields.Method(
        "_share", metadata={"description": "what to put in a share card or a QR code: {path, page, scene}"}
    )
    created_at = fields.DateTime()

    def _share(self, member: Member) -> dict[str, str]:
        return share_payload(member.invite_code)


class InviterSchema(Schema):
    nickname = fields.Method("_masked", metadata={"description": "masked: 王**"})

    def _masked(self, member: Member) -> str:
        return mask_name(member.nickname)


class InviteOutcomeSchema(Schema):
    recorded = fields.Boolean(metadata={"description": "the open was recorded (member_invited published)"})
    bound = fields.Boolean(metadata={"description": "this open made the code's owner the member's inviter"})
    reason = fields.String(
        allow_none=True,
        metadata={"description": "why it was not recorded: invite_not_found, self_invite, repeat (counted already)"},
    )
    inviter = fields.Nested(InviterSchema, allow_none=True)


class MemberTokenSchema(Schema):
    token = fields.String()
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer(metadata={"description": "seconds"})
    new_member = fields.Boolean()
    member = fields.Nested(MemberSchema)
    invite = fields.Nested(InviteOutcomeSchema, allow_none=True, metadata={"description": "null: no invite sent"})


class IsoDate(fields.Date):
    """A date written YYYY-MM-DD exactly (Python's parser also takes 19900517, 1990-W20-4, ...)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> date:
        if not isinstance(value, str) or ISO_DATE.fullmatch(value) is None:
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _birthday(value: date) -> None:
    problem = birthday_problem(value)
    if problem:
        raise ValidationError(problem)


def _visible(value: str) -> None:
    """A nickname shows something: not only spaces or invisible format characters (zero-width
    spaces and joiners, direction marks); "" clears it."""
    if value and all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value):
        raise ValidationError('needs a visible character (or "" to clear it)')


class ProfileUpdateSchema(InputSchema):
    nickname = fields.String(validate=[validate.Length(max=64), _visible])
    avatar_url = fields.Url(validate=validate.Length(max=512), schemes={"https", "http"})
    birthday = IsoDate(
        allow_none=True,
        validate=_birthday,
        metadata={"description": "YYYY-MM-DD, from 1900-01-01 to today (China); null clears it"},
    )


class InviteOpenSchema(InputSchema):
    channel = CHANNEL


class InviteeSchema(Schema):
    nickname = fields.Method("_masked", metadata={"description": "masked: 王**"})
    avatar_url = fields.String()
    joined_at = fields.DateTime(attribute="created_at")

    def _masked(self, member: Member) -> str:
        return mask_name(member.nickname)


class InviteePageSchema(Schema):
    items = fields.List(fields.Nested(InviteeSchema))
    next_cursor = fields.String(allow_none=True)


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
