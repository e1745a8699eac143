"""coupons.terms.problems, table-driven: every way a template's terms can be unusable is refused
with the field at fault, and usable terms have no problem."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from coupons.rules import SCOPE_CATEGORIES, SCOPE_PRODUCTS, Terms
from coupons.terms import LISTED_MEMBERS, NEW_MEMBERS, TemplateTerms, problems

START = datetime(2026, 12, 1, tzinfo=UTC)
AMOUNT = TemplateTerms(kind="amount_off", threshold=10000, amount=1000, valid_days=7, total_quantity=100)
PERCENT = TemplateTerms(
    kind="percent_off", rate_bp=1500, cap=3000, valid_from=START, valid_until=START + timedelta(days=3)
)
SHIPPING = TemplateTerms(kind="free_shipping", valid_days=30, from_next_day=True, total_quantity=5, per_member_limit=5)
GIFT_ONE = TemplateTerms(kind="gift", gift_sku_id=9, threshold=5000, valid_days=1)

USABLE = [
    ("满减 over a threshold", AMOUNT),
    ("折扣 with a cap, in a window", PERCENT),
    ("包邮 from the next day", SHIPPING),
    ("兑换", GIFT_ONE),
    ("a coupon with no threshold", replace(AMOUNT, threshold=0, amount=500)),
    ("a percent with no cap", replace(PERCENT, cap=None)),
    (
        "on two categories, one product excluded",
        replace(AMOUNT, scope=SCOPE_CATEGORIES, scope_ids=(3, 4), excluded_product_ids=(7,)),
    ),
    (
        "for listed members, 2 each, 1 a day",
        replace(
            AMOUNT, audience=LISTED_MEMBERS, audience_member_ids=(1, 2), per_member_limit=2, per_member_daily_limit=1
        ),
    ),
    ("for new members, stackable", replace(SHIPPING, audience=NEW_MEMBERS, stackable=True)),
]


@pytest.mark.parametrize("terms", [case[1] for case in USABLE], ids=[case[0] for case in USABLE])
def test_usable_terms_have_no_problem(terms: TemplateTerms) -> None:
    assert problems(terms) == {}


UNUSABLE = [
    ("an unknown kind", replace(AMOUNT, kind="lottery"), "kind"),
    ("an amount of 0", replace(AMOUNT, amount=0), "amount"),
    ("a negative amount", replace(AMOUNT, amount=-100), "amount"),
    ("more off than the threshold", replace(AMOUNT, threshold=1000, amount=1001), "amount"),
    ("a negative threshold", replace(AMOUNT, threshold=-1), "threshold"),
    ("a rate on a 满减", replace(AMOUNT, rate_bp=1000), "rate_bp"),
    ("0 basis points", replace(PERCENT, rate_bp=0), "rate_bp"),
    ("100% off", replace(PERCENT, rate_bp=10_000), "rate_bp"),
    ("a cap of 0", replace(PERCENT, cap=0), "cap"),
    ("an amount on a 折扣", replace(PERCENT, amount=100), "amount"),
    ("a gift with no SKU", replace(GIFT_ONE, gift_sku_id=None), "gift_sku_id"),
    ("a gift SKU on a 包邮", replace(SHIPPING, gift_sku_id=3), "gift_sku_id"),
    ("an unknown scope", replace(AMOUNT, scope="shops"), "scope"),
    ("a scope naming nothing", replace(AMOUNT, scope=SCOPE_PRODUCTS), "scope_ids"),
    ("ids with the scope of everything", replace(AMOUNT, scope_ids=(1,)), "scope_ids"),
    ("a product named twice", replace(AMOUNT, scope=SCOPE_PRODUCTS, scope_ids=(1, 1)), "scope_ids"),
    ("an exclusion named twice", replace(AMOUNT, excluded_product_ids=(2, 2)), "excluded_product_ids"),
    ("a window ending before it starts", replace(PERCENT, valid_until=START - timedelta(hours=1)), "valid_until"),
    ("a window ending as it starts", replace(PERCENT, valid_until=START), "valid_until"),
    ("a window with one end", replace(PERCENT, valid_until=None), "valid_until"),
    ("a window and days", replace(PERCENT, valid_days=3), "valid_days"),
    ("no validity at all", replace(AMOUNT, valid_days=None), "valid_days"),
    ("0 days", replace(AMOUNT, valid_days=0), "valid_days"),
    ("more than a year", replace(AMOUNT, valid_days=366), "valid_days"),
    ("from the next day in a window", replace(PERCENT, from_next_day=True), "from_next_day"),
    ("none to issue", replace(AMOUNT, total_quantity=0), "total_quantity"),
    ("a member limit above the total", replace(AMOUNT, total_quantity=10, per_member_limit=11), "per_member_limit"),
    ("a member limit of 0", replace(AMOUNT, per_member_limit=0), "per_member_limit"),
    (
        "a daily limit above the member limit",
        replace(AMOUNT, per_member_limit=2, per_member_daily_limit=3),
        "per_member_daily_limit",
    ),
    ("an unknown audience", replace(AMOUNT, audience="vip"), "audience"),
    ("listed members, none listed", replace(AMOUNT, audience=LISTED_MEMBERS), "audience_member_ids"),
    ("a list for everyone", replace(AMOUNT, audience_member_ids=(1,)), "audience_member_ids"),
]


@pytest.mark.parametrize(("terms", "field"), [case[1:] for case in UNUSABLE], ids=[case[0] for case in UNUSABLE])
def test_unusable_terms_name_the_field_at_fault(terms: TemplateTerms, field: str) -> None:
    found = problems(terms)
    assert field in found and all(isinstance(message, str) and message for message in found[field]), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(replace(AMOUNT, amount=0, valid_days=0, total_quantity=0))
    assert {"amount", "valid_days", "total_quantity"} <= set(found)


def test_the_rules_read_what_the_terms_say() -> None:
    terms = replace(AMOUNT, scope=SCOPE_PRODUCTS, scope_ids=(1, 2), excluded_product_ids=(3,), offer_lines=True)
    assert terms.rules() == Terms(
        kind="amount_off",
        threshold=10000,
        amount=1000,
        scope=SCOPE_PRODUCTS,
        scope_ids=frozenset({1, 2}),
        excluded_product_ids=frozenset({3}),
        offer_lines=True,
    )
