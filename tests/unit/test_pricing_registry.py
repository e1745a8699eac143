"""Adjuster registration: idempotent by name, in an explicit order."""

from __future__ import annotations

import pytest

from shop.checkout.pricing import register_adjuster, registered_adjusters, unregister_adjuster


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def adjust(self, context):
        return []


class Other(Named):
    pass


@pytest.fixture
def names():
    registered: list[str] = []
    yield registered
    for name in registered:
        unregister_adjuster(name)


def test_adjusters_run_by_their_order_then_their_name_whatever_order_they_were_registered_in(names):
    names += ["t-coupons", "t-member-price", "t-a-first", "t-b-first"]
    register_adjuster(Named("t-coupons"), order=200)
    register_adjuster(Named("t-member-price"), order=100)
    register_adjuster(Named("t-b-first"), order=10)
    register_adjuster(Named("t-a-first"), order=10)
    ours = [a.name for a in registered_adjusters() if a.name.startswith("t-")]
    assert ours == ["t-a-first", "t-b-first", "t-member-price", "t-coupons"]


def test_registering_the_same_adjuster_again_keeps_one_and_may_move_it(names):
    names += ["t-once", "t-other"]
    register_adjuster(Named("t-other"), order=150)
    register_adjuster(Named("t-once"), order=100)
    again = Named("t-once")
    register_adjuster(again, order=300)  # an install() that runs again, with a new instance
    ours = [a for a in registered_adjusters() if a.name.startswith("t-")]
    assert [a.name for a in ours] == ["t-other", "t-once"]
    assert ours[1] is again


def test_two_packages_claiming_one_name_is_a_programming_error(names):
    names.append("t-taken")
    register_adjuster(Named("t-taken"))
    with pytest.raises(ValueError, match="already registered"):
        register_adjuster(Other("t-taken"))
    assert [a.name for a in registered_adjusters()].count("t-taken") == 1
