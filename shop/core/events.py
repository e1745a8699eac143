"""Shop events: the door through which `coupons` and `distribution` react to what happens in
`shop` without `shop` importing them.

Subscribers run synchronously, inside the transaction of the change that raised the event, so
their writes commit or roll back with it. Work that must happen later is enqueued by the
subscriber with `shop.core.runner.enqueue`, which waits for the commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

MEMBER_JOINED = "member_joined"
MEMBER_BOUND = "member_bound"
ORDER_PAID = "order_paid"
ORDER_CANCELLED = "order_cancelled"
ORDER_COMPLETED = "order_completed"
ORDER_REFUNDED = "order_refunded"

KNOWN_EVENTS = frozenset({MEMBER_JOINED, MEMBER_BOUND, ORDER_PAID, ORDER_CANCELLED, ORDER_COMPLETED, ORDER_REFUNDED})

Handler = Callable[..., None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, event: str, handler: Handler) -> None:
        if event not in KNOWN_EVENTS:
            raise ValueError(f"unknown event {event!r}")
        if handler not in self._handlers[event]:
            self._handlers[event].append(handler)

    def unsubscribe(self, event: str, handler: Handler) -> None:
        if handler in self._handlers.get(event, []):
            self._handlers[event].remove(handler)

    def dispatch(self, event: str, **payload: Any) -> None:
        """Call every subscriber in order; an exception aborts the surrounding transaction."""
        if event not in KNOWN_EVENTS:
            raise ValueError(f"unknown event {event!r}")
        for handler in list(self._handlers.get(event, [])):
            handler(**payload)

    def handlers(self, event: str) -> list[Handler]:
        return list(self._handlers.get(event, []))


bus = EventBus()
