"""The ordered process pool behind `fix --workers`: order, bounded work in flight, errors, dead workers."""

from __future__ import annotations

import os
import time

import pytest

from halluguard.workers import OrderedPool, WorkerDied, default_workers, usable_cores


def _slow_when_even(n: int) -> tuple[int, int]:
    time.sleep(0.02 if n % 2 == 0 else 0.0)  # the workers finish out of order
    return n * n, os.getpid()


def test_results_come_back_in_order_from_several_processes() -> None:
    with OrderedPool(_slow_when_even, workers=2) as pool:
        results = list(pool.map(range(40)))
    assert [r for r, _ in results] == [n * n for n in range(40)]
    assert len({pid for _, pid in results}) == 2 and os.getpid() not in {pid for _, pid in results}


def test_at_most_in_flight_items_are_taken_ahead() -> None:
    taken: list[int] = []

    def source():
        for n in range(30):
            taken.append(n)
            yield n

    with OrderedPool(_slow_when_even, workers=2, in_flight=3) as pool:
        for i, _ in enumerate(pool.map(source())):
            assert len(taken) <= i + 1 + 3  # never more than 3 sent and not yet handed back


def _fails_on_seven(n: int) -> int:
    if n == 7:
        raise ValueError(f"cannot take {n}")
    return n


def test_an_error_in_a_worker_is_raised_here_with_its_traceback() -> None:
    seen = []
    with pytest.raises(ValueError, match="cannot take 7") as info:
        with OrderedPool(_fails_on_seven, workers=2) as pool:
            for n in pool.map(range(20)):
                seen.append(n)
    assert seen == list(range(7))
    assert any("raised in a worker process" in note and "_fails_on_seven" in note
               for note in info.value.__notes__)


def _dies_on_three(n: int) -> int:
    if n == 3:
        os._exit(9)  # as if killed (out of memory)
    return n


def test_a_dead_worker_stops_the_run_instead_of_hanging() -> None:
    with pytest.raises(WorkerDied, match="exit code 9"):
        with OrderedPool(_dies_on_three, workers=2) as pool:
            list(pool.map(range(10)))


def test_workers_are_gone_after_the_block() -> None:
    with OrderedPool(_slow_when_even, workers=2) as pool:
        processes = list(pool._processes)
        assert next(iter(pool.map([1])))[0] == 1
    assert all(not p.is_alive() for p in processes)


def test_default_workers_follow_the_usable_cores() -> None:
    assert 1 <= default_workers() <= min(usable_cores(), 8)
    with pytest.raises(ValueError):
        OrderedPool(str.upper, workers=0)


def test_spawned_workers_work_too() -> None:  # the start method outside Linux
    with OrderedPool(_slow_when_even, workers=2, start_method="spawn") as pool:
        assert [r for r, _ in pool.map(range(6))] == [0, 1, 4, 9, 16, 25]
