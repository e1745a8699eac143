"""The `events` fixture: every shop event published during a test, in order.

    def test_paying_publishes_order_paid(events, ...):
        ...
        (paid,) = events.of(OrderPaid)
        assert paid.order_id == order_id
        assert events.names() == ["OrderPaid"]

An event is recorded when the bus dispatches it, that is inside the transaction that raised it:
a transaction that rolls back afterwards does not take its events back (test what commits by
looking at the database). Events raised on other threads (tests that race) are recorded too.

Only `_listen` knows how the bus delivers events: it subscribes to every class in KNOWN_EVENTS
(shop/core/events.py) and records the event objects themselves, named by their class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shop.core.events import KNOWN_EVENTS, bus

Record = Callable[[str, Any], None]


def _listen(record: Record) -> Callable[[], None]:
    """Subscribe `record(name, event)` to every event of the bus; return what unsubscribes it.
    (The one bus-specific function of the recorder.)"""
    subscribed: list[tuple[type, Callable[[Any], None]]] = []
    for kind in sorted(KNOWN_EVENTS, key=_name_of):

        def handler(event: Any) -> None:
            record(type(event).__name__, event)

        bus.subscribe(kind, handler)
        subscribed.append((kind, handler))

    def stop() -> None:
        for kind, handler in subscribed:
            bus.unsubscribe(kind, handler)

    return stop


def _name_of(kind: type) -> str:
    return kind.__name__


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
        """The events of one kind (an event class, or its name), in order."""
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
