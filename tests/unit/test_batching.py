"""shop.core.batching.Gathering: concurrent calls share one `run_many`, each gets its own result,
a lone call runs at once, and a failure reaches every caller of that call (and no other)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from shop.core.batching import Failed, Gathering

WAIT = 10.0  # seconds: a bound for the test threads, never reached when the code is right


class Gated:
    """run_many that records each call's items and, for its first call only, waits until the
    test opens the gate: the threads that arrive meanwhile queue for the next call."""

    def __init__(self, fail_on: object = None) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.started.set()
            assert self.gate.wait(WAIT)
        if self.fail_on in items:
            raise ValueError(f"refused {self.fail_on}")
        return [item * 10 for item in items]


def _run_threads(gathering: Gathering, items: list[int], before_gate: Gated) -> dict[int, object]:
    """The first item alone (its call held at the gate), then the others at once; the gate opens
    once they all wait: their results, by item."""
    results: dict[int, object] = {}

    def call(item: int) -> None:
        results[item] = gathering.run(item)

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert before_gate.started.wait(WAIT)
    others = [threading.Thread(target=call, args=(item,)) for item in items[1:]]
    for thread in others:
        thread.start()
    while len(gathering._waiting) < len(others):  # all of them queued behind the running call
        threading.Event().wait(0.001)
    before_gate.gate.set()
    for thread in [first, *others]:
        thread.join(WAIT)
        assert not thread.is_alive()
    return results


def test_a_lone_call_runs_at_once_on_the_callers_thread() -> None:
    seen: list[str] = []

    def run_many(items: Sequence[int]) -> list[int]:
        seen.append(threading.current_thread().name)
        return [item + 1 for item in items]

    gathering = Gathering(run_many)
    assert gathering.run(1) == 2
    assert gathering.run(5) == 6
    assert seen == [threading.current_thread().name] * 2
    assert (gathering.calls, gathering.items) == (2, 2)


def test_calls_arriving_while_one_runs_share_the_next_and_each_gets_its_own_result() -> None:
    run_many = Gated()
    gathering = Gathering(run_many, most=16)
    results = _run_threads(gathering, [1, 2, 3, 4, 5, 6], run_many)
    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60}
    assert run_many.calls[0] == [1]
    assert sorted(run_many.calls[1]) == [2, 3, 4, 5, 6] and len(run_many.calls) == 2
    assert (gathering.calls, gathering.items) == (2, 6)
    assert gathering.run(7) == 70  # and the next lone call runs at once again


def test_a_call_carries_at_most_most_items_the_rest_go_in_the_following_calls() -> None:
    run_many = Gated()
    gathering = Gathering(run_many, most=2)
    results = _run_threads(gathering, [1, 2, 3, 4, 5], run_many)
    assert results == {n: n * 10 for n in range(1, 6)}
    assert [len(call) for call in run_many.calls] == [1, 2, 2]
    assert sorted(item for call in run_many.calls for item in call) == [1, 2, 3, 4, 5]


def test_a_failed_call_answers_failed_to_its_own_items_only() -> None:
    run_many = Gated(fail_on=1)
    gathering = Gathering(run_many)
    results = _run_threads(gathering, [1, 2, 3], run_many)
    assert isinstance(results[1], Failed) and str(results[1].error) == "refused 1"
    assert results[2] == 20 and results[3] == 30  # the next call, which carried them, succeeded


def test_a_call_answering_the_wrong_number_of_results_fails_its_items() -> None:
    gathering = Gathering(lambda items: [])
    got = gathering.run(1)
    assert isinstance(got, Failed) and "0 results for 1 items" in str(got.error)
    assert not gathering._running  # the failure left nothing running: the next call runs at once
    assert isinstance(gathering.run(2), Failed) and gathering.calls == 2


def test_most_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Gathering(lambda items: list(items), most=0)


def test_many_threads_at_once_each_get_their_own_answer() -> None:
    gathering = Gathering(lambda items: [item * 2 for item in items], most=4)
    results: dict[int, object] = {}
    start = threading.Barrier(40)

    def call(item: int) -> None:
        start.wait(WAIT)
        results[item] = gathering.run(item)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == {n: n * 2 for n in range(40)}
    assert gathering.items == 40 and gathering.calls <= 40 and not gathering._running
