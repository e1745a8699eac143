"""The `events` recorder: every event published while it records, by class, in order; nothing
after it stops (its handlers are unsubscribed). A bus of the shop's shape stands in for the real
one, whose handlers run in database savepoints (tests/integration uses the recorder on it)."""

import pytest

from shop.core.events import KNOWN_EVENTS, MemberJoined, OrderPaid
from tests import event_recorder
from tests.event_recorder import EventRecorder


class Bus:
    """The shop bus's shape: handlers by event class, called with the event."""

    def __init__(self) -> None:
        self.handlers: dict[type, list] = {}

    def subscribe(self, event_type, handler) -> None:
        assert event_type in KNOWN_EVENTS
        self.handlers.setdefault(event_type, []).append(handler)

    def unsubscribe(self, event_type, handler) -> None:
        self.handlers[event_type].remove(handler)

    def publish(self, event) -> None:
        for handler in self.handlers.get(type(event), []):
            handler(event)


def _paid(order_id: int) -> OrderPaid:
    return OrderPaid(merchant_id=1, order_id=order_id, member_id=3, kind="goods", paid_total=0, lines=())


def test_events_are_recorded_as_objects_by_class_until_it_stops(monkeypatch):
    bus = Bus()
    monkeypatch.setattr(event_recorder, "bus", bus)
    recorder = EventRecorder().start()
    assert set(bus.handlers) == set(KNOWN_EVENTS)  # it listens to every declared event
    bus.publish(_paid(7))
    bus.publish(MemberJoined(merchant_id=1, member_id=4, channel="organic"))
    recorder.stop()
    bus.publish(_paid(8))  # not recording any more

    assert recorder.names() == ["OrderPaid", "MemberJoined"]
    assert recorder.of(OrderPaid) == [_paid(7)]
    assert recorder.of("MemberJoined") == [MemberJoined(merchant_id=1, member_id=4, channel="organic")]
    assert all(handlers == [] for handlers in bus.handlers.values())
    with pytest.raises(ValueError):
        recorder.of("OrderPayed")
