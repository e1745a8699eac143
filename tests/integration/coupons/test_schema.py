"""The coupon tables hold what a race or a bug could break, whatever the code above them does:
no template issues more than its total, a locked or used coupon names its order (and only
those do), one coupon per member and source, and a race for one source answers 409
`coupon_exists` (the meaning coupons' install() gives the key), never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from coupons.models import Coupon, CouponTemplate
from shop.core.db import db, transaction, utcnow
from shop.core.errors import Conflict
from shop.identity.models import Merchant
from tests.factories import make_member, make_merchant


@pytest.fixture
def template(ctx):
    merchant = make_merchant()
    with transaction():
        row = CouponTemplate(
            merchant_id=merchant.id,
            name="满100减10",
            kind="amount_off",
            threshold=10000,
            amount=1000,
            valid_days=7,
            total_quantity=2,
        )
        db.session.add(row)
    return row


def _coupon(template: CouponTemplate, member_id: int, **values) -> dict:
    now = utcnow()
    return {
        "merchant_id": template.merchant_id,
        "template_id": template.id,
        "member_id": member_id,
        "valid_from": now,
        "valid_until": now + timedelta(days=7),
        "channel": "centre",
        **values,
    }


def test_a_template_never_issues_more_than_its_total(template):
    guarded = (
        update(CouponTemplate)
        .where(CouponTemplate.id == template.id, CouponTemplate.issued < CouponTemplate.total_quantity)
        .values(issued=CouponTemplate.issued + 1)
    )
    with transaction():
        assert db.session.execute(guarded).rowcount == 1
        assert db.session.execute(guarded).rowcount == 1
        assert db.session.execute(guarded).rowcount == 0  # none left: the guard says so
    with pytest.raises(IntegrityError, match="ck_coupon_templates_limits"), transaction():
        db.session.execute(update(CouponTemplate).where(CouponTemplate.id == template.id).values(issued=3))


@pytest.mark.parametrize(
    "values",
    [
        {"status": "locked"},  # locked for no order
        {"status": "used"},
        {"status": "available", "order_id": -1},  # an available coupon names no order (checked first)
        {"status": "lost"},
        {"channel": "street"},
    ],
    ids=["locked without an order", "used without an order", "available with an order", "a status", "a channel"],
)
def test_a_coupon_in_a_state_the_schema_does_not_know_is_refused(template, values):
    member = make_member(db.session.get(Merchant, template.merchant_id))
    with pytest.raises(IntegrityError), transaction():
        db.session.execute(insert(Coupon).values(**_coupon(template, member.id, **values)))


def test_one_coupon_per_member_and_source_and_a_race_for_it_is_a_409(template):
    member = make_member(db.session.get(Merchant, template.merchant_id))
    with transaction():
        db.session.execute(insert(Coupon).values(**_coupon(template, member.id, source_ref="birthday:2026")))
        db.session.execute(insert(Coupon).values(**_coupon(template, member.id)))  # no source: any number
        db.session.execute(insert(Coupon).values(**_coupon(template, member.id)))
    with pytest.raises(Conflict) as raised, transaction():
        db.session.execute(insert(Coupon).values(**_coupon(template, member.id, source_ref="birthday:2026")))
    assert raised.value.code == "coupon_exists"


def test_a_template_names_one_way_of_validity(ctx):
    merchant = make_merchant()
    now = utcnow()
    for values in (
        {},
        {"valid_days": 7, "valid_from": now, "valid_until": now + timedelta(days=1)},
        {"valid_from": now, "valid_until": now},
        {"valid_days": 0},
    ):
        with pytest.raises(IntegrityError, match="ck_coupon_templates_validity"), transaction():
            db.session.execute(
                insert(CouponTemplate).values(
                    merchant_id=merchant.id, name="x", kind="free_shipping", total_quantity=1, **values
                )
            )
