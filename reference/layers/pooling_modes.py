"""Pooling's argmax-mask top and STOCHASTIC mode (Caffe ``pooling_layer.cpp`` 141-200,
``pooling_layer.cu`` 83-154 and 300-325), on :class:`reference.pool.PoolGeometry` windows.

Argmax mask (MAX with a second top): for every output the flat index ``h * W + w`` *within its
(n, c) plane* of the window's first maximum (strict ``>`` scan from the top-left, as the MAX forward),
stored as a float; -1 for a window with no value above ``-FLT_MAX``.  Example (Caffe's
``TestForwardSquare``): the row pair ``[1 2 5 2 3] / [9 4 1 4 8]``, kernel 2 -> mask ``[5 2 2 9]``.

STOCHASTIC (Zeiler & Fergus; Caffe has only the GPU kernels; no padding allowed): windows
``[s r, min(s r + k, H))`` (no padding; the ceil-mode overhang is cut off).  Inputs are expected
non-negative (after a ReLU).

- TEST: ``y = sum(x^2) / sum(x)`` over the window (0 when ``sum(x) <= 0``), the
  probability-weighted average with ``p_i = x_i / sum(x)``.  Its backward here is the derivative
  ``(2 x_i S - Q) / S^2`` (S = sum, Q = sum of squares; 0 when S <= 0) -- Caffe's GPU backward
  instead reads the indices of the last TRAIN forward.
- TRAIN: ``u`` uniform in (0, 1] per output (from the layer's rng; Caffe's curand gives (0, 1]),
  ``threshold = u * sum(x)``; the output is the first tap (row-major) whose running sum reaches
  ``>= threshold``, i.e. tap ``i`` with probability ``x_i / sum(x)``.  The backward routes ``dy`` to
  that tap.  If no tap reaches the threshold (only possible with negative inputs) the last tap of
  the window is used (Caffe leaves that output unwritten).
"""

from __future__ import annotations

import numpy as np

from ..pool import FLT_MAX


def _rows_cols(geo, idx):
    """Input row and column of window tap ``idx`` (row-major in the kernel) for every output."""
    kw = geo.kernel[1]
    oh, ow = geo.out_hw
    i, j = np.divmod(idx, kw)
    rows = geo.stride[0] * np.arange(oh)[:, None] - geo.pad[0] + geo.est[0] * i
    cols = geo.stride[1] * np.arange(ow)[None, :] - geo.pad[1] + geo.est[1] * j
    return rows, cols


def max_pool_mask(x, geo) -> np.ndarray:
    """The argmax-mask top (see the module docstring), in ``x``'s dtype."""
    idx, best, real = geo.argmax(x)
    rows, cols = _rows_cols(geo, idx)
    flat = rows * x.shape[3] + cols
    return np.where(real & (best > -FLT_MAX), flat, -1).astype(x.dtype)


def _windows(x, geo):
    """``(values, real)``: every window as a flat tap axis, and which taps lie on the image."""
    n, c = x.shape[:2]
    taps = geo.windows(geo.padded(x, 0.0)).reshape((n, c) + geo.out_hw + (-1,))
    ones = np.ones((1, 1) + x.shape[2:], dtype=np.int8)
    real = geo.windows(geo.padded(ones, 0)).reshape((1, 1) + geo.out_hw + (-1,)) > 0
    return taps, np.broadcast_to(real, taps.shape)


def stochastic_test(x, geo) -> np.ndarray:
    taps, _ = _windows(x, geo)
    s, q = taps.sum(axis=-1), (taps * taps).sum(axis=-1)
    return np.divide(q, s, out=np.zeros_like(s), where=s > 0).astype(x.dtype)


def stochastic_test_backward(dy, x, geo) -> np.ndarray:
    taps, _ = _windows(x, geo)
    s, q = taps.sum(axis=-1, keepdims=True), (taps * taps).sum(axis=-1, keepdims=True)
    safe = np.where(s > 0, s, 1)
    local = np.where(s > 0, (2 * taps * safe - q) / (safe * safe), 0)
    return _scatter(local * dy[..., None], x, geo)


def stochastic_train(x, geo, rng):
    """``(y, tap index per output)`` with the uniforms drawn from ``rng``."""
    taps, real = _windows(x, geo)
    u = (1.0 - rng.random(taps.shape[:-1])).astype(x.dtype)      # (0, 1]
    threshold = (u * taps.sum(axis=-1)).astype(np.float32).astype(x.dtype)
    reached = (np.cumsum(taps, axis=-1) >= threshold[..., None]) & real
    last_real = real.shape[-1] - 1 - np.argmax(real[..., ::-1], axis=-1)
    idx = np.where(reached.any(axis=-1), np.argmax(reached, axis=-1), last_real)
    y = np.take_along_axis(taps, idx[..., None], axis=-1)[..., 0]
    return y.astype(x.dtype), idx


def stochastic_train_backward(dy, x, geo, idx) -> np.ndarray:
    kh, kw = geo.kernel
    onehot = (np.arange(kh * kw) == idx[..., None]).astype(x.dtype)
    return _scatter(onehot * dy[..., None], x, geo)


def _scatter(per_tap, x, geo):
    """Add ``per_tap[n, c, r, q, tap]`` back onto the input positions of the taps."""
    n, c, h, w = x.shape
    kh, kw = geo.kernel
    dx = np.zeros((n * c * h * w,), dtype=np.float64)
    plane = np.arange(n * c).reshape(n, c, 1, 1)
    for t in range(kh * kw):
        rows, cols = _rows_cols(geo, np.full(geo.out_hw, t))
        inside = (rows < h) & (cols < w) & (rows >= 0) & (cols >= 0)
        flat = (plane * h + rows) * w + cols
        sel = np.broadcast_to(inside, flat.shape)
        np.add.at(dx, flat[sel], per_tap[..., t][sel].astype(np.float64))
    return dx.reshape(x.shape).astype(x.dtype)
