"""Independent tasks run on a few threads that take them from one shared counter; the caller works too.

Why not a Numba parallel region (``prange``): a region splits its range into one fixed share per
thread, so when the machine is shared and one thread loses its core for a few milliseconds, the whole
region waits for that thread's share.  Here a thread that has no core simply takes fewer tasks (the
counter hands each task to whoever asks next).  Measured on 2 shared cores, a 512x28x28 Winograd
forward whose transforms ran as Numba regions took 15.6-19.7 ms, 13.4-17.4 ms with the same task
bodies run here (medians of interleaved rounds; the same bits).

Tasks are zero-argument callables; for them to run side by side they must release the GIL: NumPy's
BLAS calls do, and so do ``@njit(nogil=True)`` functions.  With one thread, or one task, they run in
the caller, in order.

>>> out = []
>>> run([lambda k=k: out.append(k * k) for k in range(5)], threads=2)
>>> sorted(out)
[0, 1, 4, 9, 16]
>>> blocks(10, 3)
[(0, 4), (4, 8), (8, 10)]
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

__all__ = ["run", "blocks"]

_pool = None            # the helper threads, and how many
_pool_size = 0


def _helpers(n):
    global _pool, _pool_size
    if _pool_size < n:
        _pool, _pool_size = ThreadPoolExecutor(max_workers=n, thread_name_prefix="econv-task"), n
    return _pool


def _drain(tasks, counter):
    """Run tasks taken from the shared counter until none is left."""
    for k in iter(counter.__next__, None):
        if k >= len(tasks):
            return
        tasks[k]()


def run(tasks, threads: int) -> None:
    """Run every task of ``tasks`` (independent of each other) on up to ``threads`` threads, the
    caller's included; return when all are done.  A task's exception is raised here, after every
    thread has stopped (the other threads still run the tasks left)."""
    if threads <= 1 or len(tasks) < 2:
        for task in tasks:
            task()
        return
    counter = itertools.count()
    helpers = [_helpers(threads - 1).submit(_drain, tasks, counter)
               for _ in range(min(threads, len(tasks)) - 1)]
    failure = None
    try:
        _drain(tasks, counter)
    except BaseException as e:  # noqa: BLE001 - raised below, once every helper has stopped
        failure = e
    for f in helpers:                           # wait for every started helper, even after a failure
        if not f.cancel():
            try:
                f.result()
            except BaseException as e:  # noqa: BLE001
                failure = failure or e
    if failure is not None:
        raise failure


def blocks(units: int, count: int):
    """``[(start, stop), ...]``: ``range(units)`` cut into at most ``count`` blocks of equal length
    (the last one shorter)."""
    step = max(1, -(-units // max(count, 1)))
    return [(start, min(units, start + step)) for start in range(0, units, step)]
