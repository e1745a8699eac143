"""The `events` recorder: every event the bus publishes while it records, by class, in order;
nothing after it stops (its handlers are unsubscribed)."""

import pytest

from shop.core.events import EventBus, MemberJoined, OrderPaid
from tests import event_recorder
from tests.event_recorder import EventRecorder


def _paid(order_id: int) -> OrderPaid:
    return OrderPaid(merchant_id=1, order_id=order_id, member_id=3, kind="goods", paid_total=0, lines=())


def test_events_are_recorded_as_objects_by_class_until_it_stops(monkeypatch):
    bus = EventBus()
    monkeypatch.setattr(event_recorder, "bus", bus)
    recorder = EventRecorder().start()
    bus.publish(_paid(7))
    bus.publish(MemberJoined(merchant_id=1, member_id=4, channel="organic"))
    recorder.stop()
    bus.publish(_paid(8))  # not recording any more

    assert recorder.names() == ["OrderPaid", "MemberJoined"]
    assert recorder.of(OrderPaid) == [_paid(7)]
    assert recorder.of("MemberJoined") == [MemberJoined(merchant_id=1, member_id=4, channel="organic")]
    with pytest.raises(ValueError):
        recorder.of("OrderPayed")
