"""The `events` recorder on today's bus (names and keyword payloads) and on a typed bus (event
classes, handlers taking the event), the one part that differs being `_listen`."""

from dataclasses import dataclass

import pytest

from shop.core.events import MEMBER_JOINED, ORDER_PAID, EventBus
from tests import event_recorder
from tests.event_recorder import EventRecorder


def test_todays_bus_events_are_recorded_by_name_with_their_payload(monkeypatch):
    bus = EventBus()
    monkeypatch.setattr(event_recorder, "bus", bus)
    recorder = EventRecorder().start()
    bus.dispatch(ORDER_PAID, merchant_id=1, order_id=7, member_id=3, lines=[])
    bus.dispatch(MEMBER_JOINED, merchant_id=1, member_id=4, channel="organic")
    recorder.stop()
    bus.dispatch(ORDER_PAID, merchant_id=1, order_id=8, member_id=3, lines=[])  # not recording any more

    assert recorder.names() == [ORDER_PAID, MEMBER_JOINED]
    assert [(e.order_id, e.member_id) for e in recorder.of(ORDER_PAID)] == [(7, 3)]
    assert [e.channel for e in recorder.of(MEMBER_JOINED)] == ["organic"]
    with pytest.raises(ValueError):
        recorder.of("order_payed")


@dataclass(frozen=True)
class Paid:
    order_id: int


@dataclass(frozen=True)
class Joined:
    member_id: int


class TypedBus:
    """The shape of a bus delivering event objects by class."""

    def __init__(self) -> None:
        self.handlers: dict[type, list] = {}

    def subscribe(self, event_type, handler) -> None:
        self.handlers.setdefault(event_type, []).append(handler)

    def unsubscribe(self, event_type, handler) -> None:
        self.handlers[event_type].remove(handler)

    def publish(self, event) -> None:
        for handler in self.handlers.get(type(event), []):
            handler(event)


def test_a_typed_bus_events_are_recorded_as_objects_by_class(monkeypatch):
    bus = TypedBus()
    monkeypatch.setattr(event_recorder, "bus", bus)
    monkeypatch.setattr(event_recorder, "KNOWN_EVENTS", frozenset({Paid, Joined}))
    recorder = EventRecorder().start()
    bus.publish(Joined(member_id=4))
    bus.publish(Paid(order_id=7))
    recorder.stop()

    assert recorder.names() == ["Joined", "Paid"]
    assert recorder.of(Paid) == [Paid(order_id=7)]
    assert recorder.of("Joined") == [Joined(member_id=4)]
    assert all(handlers == [] for handlers in bus.handlers.values())
