"""The engine's one thread pool (engine/work.py): bounded threads, ordered results, first error wins, and maps
nested inside maps finish even when every pool thread is busy."""

from __future__ import annotations

import threading

import pytest

from gradient_jupyter.engine.work import Workers


def test_results_come_in_the_items_order():
    workers = Workers(4)
    assert workers.map(lambda n: n * n, range(50)) == [n * n for n in range(50)]
    assert workers.map(str, []) == [] and workers.map(str, [7]) == ["7"]


def test_many_calls_share_the_same_threads():
    workers = Workers(3)
    seen: set[str] = set()
    lock = threading.Lock()

    def note(_):
        with lock:
            seen.add(threading.current_thread().name)

    for _ in range(40):
        workers.map(note, range(10))
    pool_threads = {name for name in seen if name.startswith("gradient-engine")}
    assert len(pool_threads) <= 3 and seen - pool_threads == {threading.current_thread().name}
    workers.shutdown()


def test_maps_nested_three_deep_finish_on_a_pool_of_one_thread():
    workers = Workers(1)
    total = workers.map(
        lambda a: sum(workers.map(lambda b: sum(workers.map(lambda c: a * b * c, range(3))), range(3))), range(3)
    )
    assert total == [a * 3 * 3 for a in range(3)]


def test_the_first_error_stops_new_items_and_is_raised():
    workers = Workers(1)  # one helper thread plus the caller: items run almost in order
    started = []

    def fn(n):
        started.append(n)
        if n == 2:
            raise ValueError("item 2 is bad")
        return n

    with pytest.raises(ValueError, match="item 2 is bad"):
        workers.map(fn, range(100), limit=2)
    assert len(started) < 100
