"""The event bus without a database: declared types only, one subscription per handler, events
are frozen values. (The error rule, which needs savepoints, is in tests/integration/shop/test_events.py.)"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from shop.core import events
from shop.core.events import (
    KNOWN_EVENTS,
    Event,
    EventBus,
    GroupFailed,
    GroupJoined,
    GroupSucceeded,
    MemberInvited,
    OrderLineInfo,
    OrderPlaced,
    OrderRefunded,
)


def _placed(**overrides) -> OrderPlaced:
    fields = dict(
        merchant_id=1,
        order_id=2,
        member_id=3,
        kind="goods",
        order_no="N1",
        goods_total=1000,
        discount_total=0,
        shipping_fee=0,
        payable_total=1000,
        lines=(OrderLineInfo(line_id=4, sku_id=5, product_id=6, quantity=1, paid_amount=1000),),
        adjustments=(),
    )
    fields.update(overrides)
    return OrderPlaced(**fields)


def test_subscribing_to_a_type_that_is_not_a_declared_event_is_refused():
    @dataclass(frozen=True, slots=True)
    class Invented(Event):
        merchant_id: int

    bus = EventBus()
    with pytest.raises(ValueError, match="unknown event type"):
        bus.subscribe(Invented, lambda event: None)
    with pytest.raises(ValueError):
        bus.subscribe("order_paid", lambda event: None)  # the old string names are gone


def test_publishing_something_that_is_not_a_declared_event_is_refused():
    with pytest.raises(TypeError):
        EventBus().publish({"order_id": 1})


def test_a_handler_subscribed_twice_is_called_once_and_unsubscribing_removes_it():
    bus = EventBus()
    seen: list[OrderPlaced] = []
    bus.subscribe(OrderPlaced, seen.append)
    bus.subscribe(OrderPlaced, seen.append)
    event = _placed()
    bus.publish(event)  # a veto event: handlers run directly, no savepoint
    assert seen == [event]
    bus.unsubscribe(OrderPlaced, seen.append)
    assert not bus.subscribed(OrderPlaced, seen.append)
    bus.publish(event)
    assert seen == [event]


def test_handlers_run_in_the_order_they_subscribed():
    bus = EventBus()
    calls: list[str] = []
    bus.subscribe(OrderPlaced, lambda event: calls.append("first"))
    bus.subscribe(OrderPlaced, lambda event: calls.append("second"))
    bus.publish(_placed())
    assert calls == ["first", "second"]


def test_an_order_placed_handler_may_veto_its_error_reaches_the_publisher():
    from shop.core.errors import Conflict

    bus = EventBus()

    def refuse(event: OrderPlaced) -> None:
        raise Conflict("that coupon was used meanwhile", code="coupon_used")

    bus.subscribe(OrderPlaced, refuse)
    with pytest.raises(Conflict) as refused:
        bus.publish(_placed())
    assert refused.value.code == "coupon_used"


@pytest.mark.parametrize("event_type", sorted(KNOWN_EVENTS, key=lambda cls: cls.__name__))
def test_every_event_is_a_frozen_slotted_dataclass_of_plain_values_with_its_payload_documented(event_type):
    assert issubclass(event_type, Event)
    assert dataclasses.is_dataclass(event_type)
    assert event_type.__dataclass_params__.frozen
    assert "__slots__" in event_type.__dict__
    assert event_type.__doc__ and len(event_type.__doc__) > 40
    plain = {"int", "str", "bool", "int | None", "str | None"}
    for field in dataclasses.fields(event_type):
        assert field.type in plain or field.type.startswith("tuple["), (event_type, field.name, field.type)
        assert field.name in event_type.__doc__ or field.name == "kind", (event_type, field.name)


def test_an_event_cannot_be_changed_by_a_handler():
    event = _placed()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.order_id = 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.lines[0].paid_amount = 0


def test_the_declared_events_carry_what_their_packages_need():
    invited = MemberInvited(merchant_id=1, member_id=2, inviter_id=3, new_member=True)
    assert (invited.inviter_id, invited.new_member) == (3, True)
    refunded = OrderRefunded(
        merchant_id=1, order_id=2, member_id=3, kind="goods", refund_id=4, amount=100, lines=(), fully_refunded=True
    )
    assert (refunded.after_completion, refunded.refund_kind) == (False, "member")
    for group_event in (GroupJoined, GroupSucceeded, GroupFailed):
        names = {field.name for field in dataclasses.fields(group_event)}
        assert {"merchant_id", "group_id", "offer_id", "product_id"} <= names
        assert "Published by shop.offers" in group_event.__doc__
    assert {field.name for field in dataclasses.fields(GroupSucceeded)} >= {"leader_id", "order_ids", "simulated"}
    assert set(events.VETO_EVENTS) == {OrderPlaced}
