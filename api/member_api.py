"""/api/v1: what the mini-program calls for members (and, later, distributors)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.auth import MEMBER, current_caller, issue_token, member_required
from api.blueprint import Blueprint
from api.responses import cached_json, local_hit_first
from api.schemas.catalog import CategoryTreeSchema, ProductDetailSchema, ProductListArgsSchema, ProductPageSchema
from api.schemas.common import ErrorSchema, PageArgsSchema
from api.schemas.identity import (
    InviteePageSchema,
    InviteOpenSchema,
    InviteOutcomeSchema,
    MemberSchema,
    MemberTokenSchema,
    ProfileUpdateSchema,
    WxLoginSchema,
)
from api.throttle import RATE_LIMITED_DOC, wx_login_allowed
from shop.catalog import service as catalog
from shop.core.db import transaction
from shop.core.pagination import Page
from shop.identity import invites, members
from shop.identity.invites import InviteOutcome
from shop.identity.models import Member

blp = Blueprint("members", __name__, url_prefix="/api/v1", description="Members in the mini-program")

# Schema instances made once: a marshmallow schema costs a deep copy of its fields to build, and
# the catalog reads below are the hot path (a cache hit does little else).
_CATEGORY_TREE = CategoryTreeSchema()
_PRODUCT_LIST_ARGS = ProductListArgsSchema()
_PRODUCT_PAGE = ProductPageSchema()
_PRODUCT_DETAIL = ProductDetailSchema()


def _catalog_namespace() -> str:
    return catalog.catalog_namespace(current_caller().merchant_id)


@blp.route("/auth/wx-login", methods=["POST"])
@blp.arguments(WxLoginSchema)
@blp.response(200, MemberTokenSchema)
@blp.alt_response(429, schema=ErrorSchema, **RATE_LIMITED_DOC)
def wx_login(args: dict[str, Any]) -> dict[str, Any]:
    """Log in with a wx.login() code; creates the member on first login.

    With `invite` (the code the mini-program was opened with) a new member gets the code's owner
    as their inviter and the open is recorded; a code naming nobody of this merchant, or the
    member themself, is ignored (`invite.reason`), never an error. `channel`: where the member came
    from. Throttled per client address: 429 `rate_limited` with Retry-After.
    """
    wx_login_allowed()
    # The service owns its transactions: WeChat is asked between them, with none open.
    login = members.login_with_wx_code(
        args["merchant"],
        args["code"],
        current_app.extensions["groupshop.wechat"],
        channel=args.get("channel"),
        invite=args.get("invite"),
    )
    token, ttl = issue_token(kind=MEMBER, subject_id=login.member.id, merchant_id=login.member.merchant_id, role=MEMBER)
    return {
        "token": token,
        "expires_in": ttl,
        "new_member": login.created,
        "member": login.member,
        "invite": login.invite,
    }


@blp.route("/me")
class Me(MethodView):
    @member_required
    @blp.response(200, MemberSchema)
    def get(self) -> Member:
        """The member's own profile."""
        caller = current_caller()
        return members.get_member(caller.merchant_id, caller.subject_id)

    @member_required
    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, MemberSchema)
    def patch(self, args: dict[str, Any]) -> Member:
        """Change the nickname, avatar or birthday (null clears the birthday)."""
        caller = current_caller()
        with transaction():
            return members.update_profile(
                caller.merchant_id,
                caller.subject_id,
                nickname=args.get("nickname"),
                avatar_url=args.get("avatar_url"),
                birthday=args.get("birthday", members.UNCHANGED),
            )


@blp.route("/me/invites")
@member_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, InviteePageSchema)
def my_invitees(args: dict[str, Any]) -> Page:
    """The members I invited (I am their first touch), newest first; nicknames masked."""
    caller = current_caller()
    return invites.invitees_page(caller.merchant_id, caller.subject_id, cursor=args.get("cursor"), limit=args["limit"])


@blp.route("/invites/<code>/open", methods=["POST"])
@member_required
@blp.arguments(InviteOpenSchema, required=False)
@blp.response(200, InviteOutcomeSchema)
@blp.alt_response(404, schema=ErrorSchema, description="not_found: no member of this merchant has that code")
def open_invite(args: dict[str, Any], code: str) -> InviteOutcome:
    """Record that the logged-in member opened the mini-program with an invite code.

    The code's owner becomes the member's inviter only if they have none and joined within the
    last 24 hours (first touch); every other open is history. Opening one's own code: 200,
    `recorded: false, reason: "self_invite"`; the same code again within 5 minutes: `reason: "repeat"`.
    """
    caller = current_caller()
    with transaction():
        return invites.open_code(caller.merchant_id, caller.subject_id, code, args.get("channel"))


@blp.route("/categories")
@member_required
@local_hit_first(_catalog_namespace)
@blp.response(200, CategoryTreeSchema)
def categories() -> Response:
    """The category tree (two levels)."""
    caller = current_caller()
    return cached_json(
        catalog.catalog_namespace(caller.merchant_id),
        _CATEGORY_TREE,
        lambda: {"items": catalog.category_tree(caller.merchant_id)},
    )


@blp.route("/products")
@member_required
@local_hit_first(_catalog_namespace)
@blp.arguments(_PRODUCT_LIST_ARGS, location="query")
@blp.response(200, ProductPageSchema)
def products(args: dict[str, Any]) -> Response:
    """Products on the shelf: newest first, or by price or sales; filter by category, search titles."""
    caller = current_caller()
    return cached_json(
        catalog.catalog_namespace(caller.merchant_id),
        _PRODUCT_PAGE,
        lambda: catalog.member_product_page(caller.merchant_id, **args),
    )


@blp.route("/products/<int:product_id>")
@member_required
@local_hit_first(_catalog_namespace)
@blp.response(200, ProductDetailSchema)
def product_detail(product_id: int) -> Response:
    """One product with its SKUs, price range and stock status."""
    caller = current_caller()
    return cached_json(
        catalog.catalog_namespace(caller.merchant_id),
        _PRODUCT_DETAIL,
        lambda: catalog.member_product_detail(caller.merchant_id, product_id),
    )
