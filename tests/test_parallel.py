"""Fits on every core: ordered results equal to a serial run, errors that stop promptly."""

from __future__ import annotations

import os
import time

import pytest

from custseg.backends.parallel import n_workers, ordered_map, shared


def scaled(i: int) -> int:
    return i * shared("factor")


def fail_on_three(i: int) -> int:
    if i == 3:
        raise ValueError("bad task 3")
    return i


def die(i: int) -> int:
    os._exit(1)  # a worker killed (e.g. by the kernel's out-of-memory killer)


def sleep_long(i: int) -> int:
    time.sleep(60)
    return i


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
def test_results_come_in_task_order_with_shared_values(n_jobs):
    with ordered_map(scaled, [(i,) for i in range(7)], n_jobs, {"factor": 10}) as results:
        assert list(results) == [0, 10, 20, 30, 40, 50, 60]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_task_error_reaches_the_caller(n_jobs):
    with (
        pytest.raises(ValueError, match="bad task 3"),
        ordered_map(fail_on_three, [(i,) for i in range(6)], n_jobs, {}) as results,
    ):
        list(results)


def test_a_dead_worker_is_reported_not_a_bare_traceback():
    with (
        pytest.raises(RuntimeError, match="fitting process died.*sweep.n_jobs"),
        ordered_map(die, [(i,) for i in range(4)], 2, {}) as results,
    ):
        list(results)


def test_an_error_in_the_caller_stops_the_workers_at_once():
    """Ctrl-C, SIGTERM or a failing store set-up must not wait for fits in progress."""
    start = time.monotonic()
    with (
        pytest.raises(KeyboardInterrupt),
        ordered_map(sleep_long, [(i,) for i in range(4)], 2, {}),
    ):
        time.sleep(0.5)
        raise KeyboardInterrupt
    assert time.monotonic() - start < 30  # the tasks sleep 60 s each


@pytest.mark.parametrize(("n_jobs", "n_tasks", "expected"), [(4, 2, 2), (1, 9, 1), (3, 9, 3)])
def test_n_workers_is_bounded_by_the_tasks(n_jobs, n_tasks, expected):
    assert n_workers(n_jobs, n_tasks) == expected
