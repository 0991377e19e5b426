"""numba_kernels._workspace: scratch kept per role and per thread, grown on demand, never handed
back as an op's output."""

import threading

import numpy as np
import pytest

import numba_kernels.cpu as K
from numba_kernels import _workspace as ws


@pytest.fixture(autouse=True)
def fresh():
    ws.release()
    yield
    ws.release()


def test_same_role_same_memory_and_growth():
    a = ws.scratch("t", 10, np.float32)
    assert a.shape == (10,) and a.dtype == np.float32
    b = ws.scratch("t", 8, np.float32)
    assert np.shares_memory(a, b)                      # reused
    c = ws.scratch("t", 100, np.float64)               # grown: a new buffer
    assert c.shape == (100,) and c.dtype == np.float64 and not np.shares_memory(a, c)
    assert ws.held_bytes() == 800
    assert not np.shares_memory(ws.scratch("t", 5, np.float32), ws.scratch("u", 5, np.float32))
    ws.release()
    assert ws.held_bytes() == 0


def test_threads_get_their_own_buffers():
    here = ws.scratch("t", 16, np.float32)
    there = []
    worker = threading.Thread(target=lambda: there.append(ws.scratch("t", 16, np.float32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(here, there[0])


def test_keep_off_allocates_every_time(monkeypatch):
    monkeypatch.setattr(ws, "KEEP", False)
    assert not np.shares_memory(ws.scratch("t", 4, np.float32), ws.scratch("t", 4, np.float32))
    assert ws.held_bytes() == 0


@pytest.mark.parametrize("winograd", [True, False], ids=["winograd", "im2col"])
def test_outputs_never_alias_scratch(winograd, monkeypatch):
    # two calls in a row: the first call's results must survive the second
    monkeypatch.setattr(K, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(K, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(K, "WINOGRAD_MIN_WORK", 1)
    monkeypatch.setattr(K, "WINOGRAD", winograd)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 1, 4, 9, 9))
    w = rng.standard_normal((4, 4, 3, 3))
    y1 = K.conv2d(x1, w, pad=2, est=2)
    grads1 = K.conv2d_backward(y1, x1, w, pad=2, est=2)
    keep = [y1.copy()] + [g.copy() for g in grads1]
    y2 = K.conv2d(x2, w, pad=2, est=2)
    K.conv2d_backward(y2, x2, w, pad=2, est=2)
    for before, after in zip(keep, [y1, *grads1]):
        np.testing.assert_array_equal(before, after)
    assert ws.held_bytes() > 0                          # the calls did use kept scratch
