"""A coupon template's terms as a merchant sets them, and what is wrong with a set of them.

`problems` answers, field by field, everything that makes a template unusable, so that the staff
API refuses it with 422 and the fields at fault (never a template that can never be claimed or
never applies): amounts of at least a fen, rates of 1 to 9,999 basis points, the fields each kind
needs and only those, a scope that names what it takes, one way of validity (a window that ends
after it starts, or N days after the claim), limits within the total, an audience list only for
an audience of listed members. Whether the ids named belong to the merchant needs the database:
the service checks that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from coupons.rules import AMOUNT_OFF, FREE_SHIPPING, GIFT, KINDS, PERCENT_OFF, SCOPE_ALL, SCOPES, Terms, terms_of

EVERYONE, NEW_MEMBERS, LISTED_MEMBERS = "everyone", "new_members", "members"
AUDIENCES = (EVERYONE, NEW_MEMBERS, LISTED_MEMBERS)

MAX_AMOUNT = 10_000_000_00  # fen: as the API's Fen fields
MAX_QUANTITY = 10_000_000
MAX_VALID_DAYS = 365
MAX_SCOPE_IDS = 200
MAX_AUDIENCE = 10_000


@dataclass(frozen=True)
class TemplateTerms:
    kind: str
    threshold: int = 0
    amount: int = 0
    rate_bp: int = 0
    cap: int | None = None
    gift_sku_id: int | None = None
    scope: str = SCOPE_ALL
    scope_ids: tuple[int, ...] = ()
    excluded_product_ids: tuple[int, ...] = ()
    offer_lines: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    from_next_day: bool = False
    total_quantity: int = 1
    per_member_limit: int = 1
    per_member_daily_limit: int | None = None
    audience: str = EVERYONE
    audience_member_ids: tuple[int, ...] = field(default=())
    stackable: bool = False

    def rules(self) -> Terms:
        """What the pricing rules read of these terms."""
        return terms_of(self)


# The fields only some kinds take, with the value meaning "not set".
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    AMOUNT_OFF: ("amount",),
    PERCENT_OFF: ("rate_bp", "cap"),
    FREE_SHIPPING: (),
    GIFT: ("gift_sku_id",),
}
_UNSET = {"amount": 0, "rate_bp": 0, "cap": None, "gift_sku_id": None}
Wrong = Callable[[str, str], None]  # (field, why)


def problems(terms: TemplateTerms) -> dict[str, list[str]]:
    """Every field at fault, with why (empty when the terms are usable)."""
    found: dict[str, list[str]] = {}

    def wrong(name: str, message: str) -> None:
        found.setdefault(name, []).append(message)

    if terms.kind not in KINDS:
        wrong("kind", f"one of {', '.join(KINDS)}")
        return found
    for name in ("amount", "rate_bp", "cap", "gift_sku_id"):
        if name not in _KIND_FIELDS[terms.kind] and getattr(terms, name) != _UNSET[name]:
            wrong(name, f"not for a {terms.kind} coupon")
    if not 0 <= terms.threshold <= MAX_AMOUNT:
        wrong("threshold", f"0 to {MAX_AMOUNT} fen")
    if terms.kind == AMOUNT_OFF:
        if not 1 <= terms.amount <= MAX_AMOUNT:
            wrong("amount", f"1 to {MAX_AMOUNT} fen")
        elif terms.threshold and terms.amount > terms.threshold:
            wrong("amount", "more than its threshold: the coupon would take off more than the order must cost")
    if terms.kind == PERCENT_OFF:
        if not 1 <= terms.rate_bp <= 9_999:
            wrong("rate_bp", "1 to 9,999 basis points off")
        if terms.cap is not None and not 1 <= terms.cap <= MAX_AMOUNT:
            wrong("cap", f"1 to {MAX_AMOUNT} fen, or none")
    if terms.kind == GIFT and (terms.gift_sku_id is None or terms.gift_sku_id < 1):
        wrong("gift_sku_id", "the SKU given away")
    _check_scope(terms, wrong)
    _check_validity(terms, wrong)
    _check_limits(terms, wrong)
    return found


def _check_scope(terms: TemplateTerms, wrong: Wrong) -> None:
    if terms.scope not in SCOPES:
        wrong("scope", f"one of {', '.join(SCOPES)}")
    elif terms.scope == SCOPE_ALL and terms.scope_ids:
        wrong("scope_ids", "none for a coupon on everything")
    elif terms.scope != SCOPE_ALL and not terms.scope_ids:
        wrong("scope_ids", f"the {terms.scope} it applies to")
    if len(terms.scope_ids) > MAX_SCOPE_IDS or len(set(terms.scope_ids)) != len(terms.scope_ids):
        wrong("scope_ids", f"at most {MAX_SCOPE_IDS}, each once")
    if len(terms.excluded_product_ids) > MAX_SCOPE_IDS or len(set(terms.excluded_product_ids)) != len(
        terms.excluded_product_ids
    ):
        wrong("excluded_product_ids", f"at most {MAX_SCOPE_IDS}, each once")


def _check_validity(terms: TemplateTerms, wrong: Wrong) -> None:
    window = terms.valid_from is not None or terms.valid_until is not None
    if window and terms.valid_days is not None:
        wrong("valid_days", "a fixed window or a number of days after the claim, not both")
    elif window:
        if terms.valid_from is None or terms.valid_until is None:
            wrong("valid_until" if terms.valid_until is None else "valid_from", "a window needs both ends")
        elif terms.valid_until <= terms.valid_from:
            wrong("valid_until", "after valid_from")
        if terms.from_next_day:
            wrong("from_next_day", "only with valid_days")
    elif terms.valid_days is None:
        wrong("valid_days", "a fixed window (valid_from, valid_until) or a number of days after the claim")
    elif not 1 <= terms.valid_days <= MAX_VALID_DAYS:
        wrong("valid_days", f"1 to {MAX_VALID_DAYS}")


def _check_limits(terms: TemplateTerms, wrong: Wrong) -> None:
    if not 1 <= terms.total_quantity <= MAX_QUANTITY:
        wrong("total_quantity", f"1 to {MAX_QUANTITY}")
    if not 1 <= terms.per_member_limit <= max(terms.total_quantity, 1):
        wrong("per_member_limit", "1 to the total quantity")
    daily = terms.per_member_daily_limit
    if daily is not None and not 1 <= daily <= terms.per_member_limit:
        wrong("per_member_daily_limit", "1 to the per-member limit, or none")
    if terms.audience not in AUDIENCES:
        wrong("audience", f"one of {', '.join(AUDIENCES)}")
    elif terms.audience == LISTED_MEMBERS and not terms.audience_member_ids:
        wrong("audience_member_ids", "the members it is for")
    elif terms.audience != LISTED_MEMBERS and terms.audience_member_ids:
        wrong("audience_member_ids", "only for an audience of listed members")
    if len(terms.audience_member_ids) > MAX_AUDIENCE:
        wrong("audience_member_ids", f"at most {MAX_AUDIENCE}")
