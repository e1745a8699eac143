"""The wire contract of referral rewards (裂变礼品): staff configure them, members see what they
earned for the people they invited."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.common import MAX_ID, InputSchema
from coupons.models import OFFER_STATUSES, REFERRAL_REWARD_KINDS, REFERRAL_TRIGGERS

ID_RANGE = validate.Range(min=1, max=MAX_ID)
MAX_DELAY_MINUTES = 43_200  # 30 days


class ReferralRewardFields(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))
    delay_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=MAX_DELAY_MINUTES),
        metadata={"description": "issue the reward this many minutes after it is earned"},
    )


class ReferralRewardCreateSchema(ReferralRewardFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    status = fields.String(load_default="active", validate=validate.OneOf(OFFER_STATUSES))
    delay_minutes = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=MAX_DELAY_MINUTES))
    trigger = fields.String(
        required=True,
        validate=validate.OneOf(REFERRAL_TRIGGERS),
        metadata={
            "description": "joined (the invitee's first login through the invite) or first_order (the "
            "invitee's first paid goods order, when it completes)"
        },
    )
    reward_kind = fields.String(
        required=True,
        validate=validate.OneOf(REFERRAL_REWARD_KINDS),
        metadata={"description": "coupon (a template) or prize (a campaign's prize tier); never cash"},
    )
    template_id = fields.Integer(strict=True, allow_none=True, load_default=None, validate=ID_RANGE)
    tier_id = fields.Integer(strict=True, allow_none=True, load_default=None, validate=ID_RANGE)


class ReferralRewardUpdateSchema(ReferralRewardFields):
    """Any of name, status, delay_minutes; what the reward gives stays."""


class ReferralRewardSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    trigger = fields.String()
    reward_kind = fields.String()
    template_id = fields.Integer(allow_none=True)
    tier_id = fields.Integer(allow_none=True)
    delay_minutes = fields.Integer()
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ReferralRewardPageSchema(Schema):
    items = fields.List(fields.Nested(ReferralRewardSchema))
    next_cursor = fields.String(allow_none=True)


class ReferralGrantSchema(Schema):
    id = fields.Integer()
    reward_id = fields.Integer()
    reward_name = fields.String()
    trigger = fields.String()
    reward_kind = fields.String()
    inviter_id = fields.Integer()
    invitee_id = fields.Integer(allow_none=True, metadata={"description": "staff only"})
    invitee = fields.String(metadata={"description": "the invitee's nickname, masked"})
    order_id = fields.Integer(allow_none=True, metadata={"description": "staff only: the order that earned it"})
    status = fields.String(metadata={"description": "pending (issued when due), issued, skipped"})
    skip_reason = fields.String(allow_none=True)
    coupon_id = fields.Integer(allow_none=True)
    prize_id = fields.Integer(allow_none=True)
    due_at = fields.DateTime()
    issued_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ReferralGrantPageSchema(Schema):
    items = fields.List(fields.Nested(ReferralGrantSchema))
    next_cursor = fields.String(allow_none=True)


class OfferedRewardSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    trigger = fields.String()
    reward_kind = fields.String()


class MemberReferralSummarySchema(Schema):
    rewards = fields.List(fields.Nested(OfferedRewardSchema), metadata={"description": "what inviting earns now"})
    issued = fields.Integer()
    pending = fields.Integer()
    skipped = fields.Integer()
