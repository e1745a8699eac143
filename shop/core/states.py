"""State machines keyed by action: one table and one refusal for every status column.

A machine is a table `(status, action) -> next status` plus the set of `(status, action)` pairs
that are harmless repeats (the action was already done, or the moment for it has passed, and
doing nothing is the right answer: a payment notification arriving twice, an expiry timer
firing after the order was paid). `Machine.step` answers one of three things:

- a legal move: `Step(to=next, moved=True)`; the caller applies it (stamps, side effects);
- a harmless repeat: `Step(to=status, moved=False)`; the caller changes nothing;
- anything else: `Conflict` (409, code `illegal_transition`, details `machine`, `status`,
  `action`), raised here and nowhere else.

Statuses and actions are `StrEnum`s, so the database keeps plain strings and a status read from
a row compares equal to its member. Orders, refunds (and later group buys, commissions and
withdrawals) each declare one machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from shop.core.errors import Conflict

S = TypeVar("S", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)

ILLEGAL_TRANSITION = "illegal_transition"


@dataclass(frozen=True)
class Step(Generic[S]):
    """What an action does to a status: `to` the next status; `moved` False for a harmless repeat."""

    to: S
    moved: bool


@dataclass(frozen=True)
class Machine(Generic[S, A]):
    """A table of legal moves and a set of harmless repeats (see the module docstring)."""

    name: str
    statuses: type[S]
    actions: type[A]
    moves: Mapping[tuple[S, A], S]
    repeats: frozenset[tuple[S, A]] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for status, action in (*self.moves, *self.repeats):
            if not isinstance(status, self.statuses) or not isinstance(action, self.actions):
                raise TypeError(f"{self.name}: ({status!r}, {action!r}) is not a ({self.statuses}, {self.actions})")
        for target in self.moves.values():
            if not isinstance(target, self.statuses):
                raise TypeError(f"{self.name}: {target!r} is not a {self.statuses}")
        both = self.repeats & set(self.moves)
        if both:
            raise ValueError(f"{self.name}: {sorted(both)} are both a move and a repeat")

    def step(self, status: str, action: A) -> Step[S]:
        """The next status for `action` taken on `status`, a harmless repeat, or the one Conflict."""
        current = self._status(status)
        key = (current, action)
        target = self.moves.get(key) if current is not None else None
        if target is not None:
            return Step(to=target, moved=True)
        if current is not None and key in self.repeats:
            return Step(to=current, moved=False)
        raise Conflict(
            f"the {self.name} is {status}: it cannot {action}",
            code=ILLEGAL_TRANSITION,
            details={"machine": self.name, "status": str(status), "action": str(action)},
        )

    def allows(self, status: str, action: A) -> bool:
        """True when `action` is a legal move from `status` (a repeat is not)."""
        current = self._status(status)
        return current is not None and (current, action) in self.moves

    def is_repeat(self, status: str, action: A) -> bool:
        current = self._status(status)
        return current is not None and (current, action) in self.repeats

    def statuses_allowing(self, action: A) -> frozenset[S]:
        """Every status from which `action` is a legal move (for queries: `status IN (...)`)."""
        return frozenset(status for status, act in self.moves if act == action)

    def pairs(self) -> Iterable[tuple[S, A]]:
        """Every (status, action) pair of the machine, legal or not (for tests and documentation)."""
        return ((status, action) for status in self.statuses for action in self.actions)

    def _status(self, status: str) -> S | None:
        try:
            return self.statuses(status)
        except ValueError:
            return None
