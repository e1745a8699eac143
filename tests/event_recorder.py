"""The `events` fixture: every shop event published during a test, in order.

    def test_paying_publishes_order_paid(events, ...):
        ...
        (paid,) = events.of(ORDER_PAID)
        assert paid.order_id == order_id
        assert events.names() == [ORDER_PAID]

An event is recorded when the bus dispatches it, that is inside the transaction that raised it:
a transaction that rolls back afterwards does not take its events back (test what commits by
looking at the database). Events raised on other threads (tests that race) are recorded too.

Only `_listen` knows how the bus delivers events. Today's bus (shop/core/events.py) calls
handlers by event name with the payload as keywords; a recorded event is that payload with
attribute access (`paid.order_id`), so tests read it the way they read a typed event. On a bus
that delivers event objects (frozen dataclasses, KNOWN_EVENTS a set of classes), `_listen`
subscribes to the classes and records the objects themselves: `events.of(OrderPaid)` then,
and `names()` gives the class names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from shop.core.events import KNOWN_EVENTS, bus

Record = Callable[[str, Any], None]


def _listen(record: Record) -> Callable[[], None]:
    """Subscribe `record(name, event)` to every event of the bus; return what unsubscribes it.
    (The one bus-specific function of the recorder.) It knows both buses: today's, which names
    events by string and passes the payload as keywords (recorded with attribute access), and a
    typed one, whose KNOWN_EVENTS are classes and whose handlers take the event (recorded as is,
    named by its class)."""
    subscribed: list[tuple[Any, Callable[..., None]]] = []
    for kind in sorted(KNOWN_EVENTS, key=_name_of):
        if isinstance(kind, str):

            def handler(_event_name: str = kind, **payload: Any) -> None:
                record(_event_name, SimpleNamespace(**payload))

        else:

            def handler(event: Any) -> None:
                record(type(event).__name__, event)

        bus.subscribe(kind, handler)
        subscribed.append((kind, handler))

    def stop() -> None:
        for kind, handler in subscribed:
            bus.unsubscribe(kind, handler)

    return stop


def _name_of(kind: str | type) -> str:
    return kind if isinstance(kind, str) else kind.__name__


@dataclass(frozen=True)
class Recorded:
    name: str
    event: Any


class EventRecorder:
    """What the bus published while recording (`start` .. `stop`)."""

    def __init__(self) -> None:
        self._recorded: list[Recorded] = []
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None

    def start(self) -> EventRecorder:
        if self._stop is None:
            self._stop = _listen(self._record)
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def _record(self, name: str, event: Any) -> None:
        with self._lock:
            self._recorded.append(Recorded(name, event))

    def of(self, kind: str | type) -> list[Any]:
        """The events of one kind (an event name today; an event class once events are typed), in order."""
        with self._lock:
            if isinstance(kind, str):
                if kind not in {_name_of(known) for known in KNOWN_EVENTS}:
                    raise ValueError(f"unknown event {kind!r}")
                return [r.event for r in self._recorded if r.name == kind]
            return [r.event for r in self._recorded if isinstance(r.event, kind)]

    def names(self) -> list[str]:
        """The names of every event recorded, in order."""
        with self._lock:
            return [r.name for r in self._recorded]

    def clear(self) -> None:
        with self._lock:
            self._recorded.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._recorded)


def recording() -> Iterator[EventRecorder]:
    """The body of the `events` fixture: record for the whole test, unsubscribe afterwards."""
    recorder = EventRecorder().start()
    try:
        yield recorder
    finally:
        recorder.stop()
