"""numba_kernels._tasks: every task runs once, errors reach the caller, blocks cover the range."""

import threading

import numba
import numpy as np
import pytest

import numba_kernels.cpu as K
from numba_kernels import _tasks


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_task_runs_exactly_once(threads):
    seen, lock = [], threading.Lock()

    def task(k):
        with lock:
            seen.append(k)
    _tasks.run([lambda k=k: task(k) for k in range(57)], threads)
    assert sorted(seen) == list(range(57))


def test_an_exception_in_a_task_reaches_the_caller():
    def boom():
        raise ValueError("task 3 failed")
    tasks = [lambda: None] * 3 + [boom] + [lambda: None] * 3
    with pytest.raises(ValueError, match="task 3 failed"):
        _tasks.run(tasks, 2)
    _tasks.run([lambda: None] * 4, 2)                 # and the pool still works afterwards


def test_a_failure_waits_for_the_other_threads():
    # three threads: one task fails early, another is still running; run returns after both
    import time
    done = []

    def boom():
        time.sleep(0.02)
        raise RuntimeError("early failure")

    def slow():
        time.sleep(0.2)
        done.append("slow")
    for _ in range(3):
        done.clear()
        with pytest.raises(RuntimeError, match="early failure"):
            _tasks.run([lambda: time.sleep(0.005), boom, slow], 3)
        assert done == ["slow"]


@pytest.mark.parametrize("units, count", [(10, 3), (1, 8), (0, 4), (1024, 32), (7, 7), (5, 100)])
def test_blocks_cover_the_range_once(units, count):
    blocks = _tasks.blocks(units, count)
    assert len(blocks) <= max(count, 1)
    covered = [t for start, stop in blocks for t in range(start, stop)]
    assert covered == list(range(units))
    assert all(stop > start for start, stop in blocks)


def test_winograd_result_does_not_depend_on_the_thread_count():
    # every task writes its own outputs: the same bits on 1 thread and on 2
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 128, 13, 13)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) / 30).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)
    dy = rng.standard_normal((3, 128, 13, 13)).astype(np.float32)
    assert K._use_winograd(x, w, (1, 1), 1, (13, 13))
    saved = numba.get_num_threads()
    results = []
    try:
        for threads in (1, saved):
            numba.set_num_threads(threads)
            results.append((K.conv2d(x, w, b, pad=3, est=3),)
                           + K.conv2d_backward(dy, x, w, pad=3, est=3)[:2])
    finally:
        numba.set_num_threads(saved)
    for one, many in zip(*results):
        np.testing.assert_array_equal(one, many)
