"""Calls of concurrent threads gathered into one: group commit for statements.

A thread hands `Gathering.run(item)` its item and gets its own result back. When no call is
running, it runs at once, alone (no waiting, no timer). When one is running, the items that arrive
meanwhile wait together, and once it is done the first of them runs them all in one call of
`run_many` and hands every waiting thread its result. So a stampede's placements of one process
share a statement and a transaction (shop.offers.flash_fast), and a lone buyer's goes alone.

`run_many(items)` answers one result per item, in their order. When it raises, every thread of
that call gets `Failed` (with the error) instead: the caller decides what to do with it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Failed:
    """What a thread gets when the call that carried its item raised `error`."""

    error: BaseException


@dataclass(eq=False)
class _Waiting(Generic[Item]):
    item: Item
    # Held from the start; released by the thread that runs this item's call (or makes this one the
    # next to run): a plain lock is the cheapest way to park a thread until then.
    woken: threading.Lock = field(default_factory=threading.Lock)
    result: object = None
    leads: bool = False


class Gathering(Generic[Item, Result]):
    """One per kind of call and database (see the module's docstring). `most`: items one call
    carries at most (the rest wait for the next)."""

    def __init__(self, run_many: Callable[[Sequence[Item]], Sequence[Result]], *, most: int = 16) -> None:
        if most < 1:
            raise ValueError("most must be at least 1")
        self.run_many = run_many
        self.most = most
        self._lock = threading.Lock()
        self._waiting: deque[_Waiting[Item]] = deque()
        self._running = False  # a call is running, or about to: new items wait for it to end
        self.calls = 0  # calls of run_many so far (tests and benchmarks read them)
        self.items = 0

    def run(self, item: Item) -> Result | Failed:
        me: _Waiting[Item] = _Waiting(item)
        me.woken.acquire()
        with self._lock:
            self._waiting.append(me)
            leads = not self._running
            self._running = True
        if not leads:
            me.woken.acquire()  # until a call carried this item, or this thread is to run the next
            if not me.leads:
                return me.result  # type: ignore[return-value]
        self._lead()
        return me.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Run the items waiting (this thread's first among them), answer them, and hand the next
        call to the first item that arrived meanwhile (or let the next arrival run it)."""
        with self._lock:
            batch = [self._waiting.popleft() for _ in range(min(self.most, len(self._waiting)))]
        try:
            results: Sequence[object] = self.run_many([waiting.item for waiting in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_many answered {len(results)} results for {len(batch)} items")
        except BaseException as error:
            results = [Failed(error)] * len(batch)
        finally:
            with self._lock:
                self.calls += 1
                self.items += len(batch)
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._running = False
                else:
                    following.leads = True
            if following is not None:
                following.woken.release()
        leader = batch[0]
        for waiting, result in zip(batch, results, strict=True):
            waiting.result = result
            if waiting is not leader:
                waiting.woken.release()
