"""ePool: Caffe pooling with an equivalent stride (Eq. 4 of the paper), forward and backward.

Notation: input ``x`` (N, C, H, W), kernel ``k``, stride ``s``, pad ``p``, equivalent stride ``est``,
``pad_end`` extra absent positions at the bottom/right.  Window of output ``(r, c)``: the taps
``(s*r - p + i*est, s*c - p + j*est)``, ``0 <= i < kh, 0 <= j < kw`` (Eq. 4 with eST = est).

- ``mode="max"``: ``y = max`` over the taps that fall on the image; padding never wins.  Ties: the
  first maximum in row-major tap order (i outer, j inner) wins, in forward and backward (Caffe's
  strict ``>`` scan).  NaN never wins (Caffe compares with ``>``); a window with no real value gives
  ``-FLT_MAX``, Caffe's initial accumulator, and passes no gradient.
- ``mode="ave"``: ``y = (sum of the taps on the image) / divisor`` where the divisor counts the taps
  that lie in ``[-p, H + p)``: padding inside the padded extent counts, the ceil-mode overhang past
  ``H + p`` and ``pad_end`` do not (Caffe: ``end = min(start + k, H + p)``, divisor ``end - start``).
  A window with divisor 0 gives 0 and passes no gradient: an **econv convention**
  (:data:`EMPTY_AVE_WINDOW`), not Caffe's value (see below).

The empty AVE window.  Without padding (on both axes: Caffe clips the last window only when a pad is
set) ceil rounding can keep a window that starts at or past the input's end.  Caffe
(BVLC/caffe src/caffe/layers/pooling_layer.cpp, lines 210-225) computes ``pool_size = (hend - hstart)
* (wend - wstart)`` with ``hend = min(hstart + k, H + p)`` before clipping, sums nothing and divides:
``0 / 0 = NaN`` for a window that starts exactly at the end, ``0 / negative``, a signed zero, for one
past it; its backward loops over an empty window and passes no gradient.  econv outputs 0 there
instead, in the reference and every backend, because Caffe's value is an artefact of its integer
arithmetic (NaN or -0 depending on where the window starts, not a rule anyone states), and a NaN
there would poison every later blob, the loss and every gradient, while the backward is the same
either way.  The op table's ``pool2d_hard_window_past_end_ave`` pins it; :func:`reference.oracle.verify`
and ``econv vectors`` name the convention for every case that meets it.

Output size: :func:`reference.sizes.pool_out_size` (ceil by default, Caffe's clip rule).

Worked example, H = W = 4, k 3, s 2, p 1, AVE::

    out = ceil((4 + 2 - 3) / 2) + 1 = 3; row windows [-1, 2), [1, 4), [3, 5) -> divisors 3, 3, 2
    x = all ones: y[0, 0] = 4 / 9, y[2, 2] = 1 / 4, y[1, 1] = 9 / 9 = 1.

Worked example, est 2, k 2, s 1, MAX on the row ``[5, 1, 7, 3, 2]``: windows ``{x0, x2}``, ``{x1, x3}``,
``{x2, x4}`` -> ``[7, 3, 7]``.
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, like, spatial_args
from .sizes import extent, pair, pool_out_size
from .windows import pad as pad_hw, tap, window_view

__all__ = ["pool2d", "pool2d_backward", "pool_geometry", "FLT_MAX", "EMPTY_AVE_WINDOW"]

FLT_MAX = float(np.finfo(np.float32).max)  # Caffe starts its max accumulator at -FLT_MAX

EMPTY_AVE_WINDOW = (
    "econv convention: an AVE window with no tap in [-p, H + p) (only without padding, in ceil mode: "
    "a window that starts at or past the input's end) outputs 0 and passes no gradient; Caffe divides "
    "its empty sum by (hend - hstart) * (wend - wstart) <= 0 there, giving NaN (0/0) or a signed zero "
    "(BVLC/caffe src/caffe/layers/pooling_layer.cpp lines 210-225)")


class PoolGeometry:
    """Validated pooling parameters and the derived sizes, for one input shape."""

    def __init__(self, what, x_shape, kernel, stride, pad, est, mode, round_mode, pad_end):
        if mode not in ("max", "ave"):
            raise ValueError(f"{what}: mode must be 'max' or 'ave', got {mode!r}")
        self.kernel = pair(kernel, f"{what}: kernel", 1)
        self.stride, self.pad, self.est = spatial_args(what, stride, pad, est)
        self.pad_end = pair(pad_end, f"{what}: pad_end", 0)
        self.mode, self.round_mode = mode, round_mode
        self.in_hw = tuple(x_shape[2:])
        clip = any(self.pad) or any(self.pad_end)   # Caffe: `if (pad_h_ || pad_w_)`, both axes
        self.out_hw = tuple(
            pool_out_size(self.in_hw[a], self.kernel[a], self.stride[a], self.pad[a], self.est[a],
                          round_mode, self.pad_end[a], f"{what} ({'height' if a == 0 else 'width'})",
                          clip)
            for a in (0, 1))
        # Pad the end far enough that every window exists: the last one ends at s*(out-1) + ext.
        self.end_hw = tuple(
            max(0, self.stride[a] * (self.out_hw[a] - 1) + extent(self.kernel[a], self.est[a])
                - self.in_hw[a] - 2 * self.pad[a])
            for a in (0, 1))

    def padded(self, x, value):
        return pad_hw(x, self.pad, value, self.end_hw)

    def windows(self, xp):
        return window_view(xp, self.kernel, self.stride, self.est, self.out_hw)

    def divisor(self):
        """(out_h, out_w) count of taps inside ``[-p, H + p)``, per output position."""
        counts = []
        for a in (0, 1):
            starts = self.stride[a] * np.arange(self.out_hw[a]) - self.pad[a]
            taps = starts[:, None] + self.est[a] * np.arange(self.kernel[a])[None, :]
            counts.append((taps < self.in_hw[a] + self.pad[a]).sum(axis=1))
        return np.outer(counts[0], counts[1])

    def empty_windows(self) -> int:
        """How many outputs per (n, c) plane are AVE windows with divisor 0 (:data:`EMPTY_AVE_WINDOW`);
        0 for MAX, whose empty windows follow Caffe (``-FLT_MAX``)."""
        return int((self.divisor() == 0).sum()) if self.mode == "ave" else 0

    def argmax(self, x):
        """First-maximum tap index (row-major) per output, and whether the window had a real value."""
        xp = self.padded(x, -np.inf)
        flat = self.windows(xp).reshape(x.shape[:2] + self.out_hw + (-1,))
        flat = np.where(np.isnan(flat), -np.inf, flat)  # NaN never wins a '>' comparison
        idx = np.argmax(flat, axis=-1)                   # first occurrence = first maximum
        best = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        return idx, best, best > -np.inf


def pool_geometry(what, x_shape, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil",
                  pad_end=0):
    return PoolGeometry(what, x_shape, kernel, stride, pad, est, mode, round_mode, pad_end)


def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """ePool forward (see module docstring).  Returns ``y`` (N, C, out_h, out_w) in ``x``'s dtype."""
    x = check_array(x, "pool2d", "x")
    geo = pool_geometry("pool2d", x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    if mode == "max":
        _, best, real = geo.argmax(x)
        return np.where(real, np.maximum(best, -FLT_MAX), -FLT_MAX).astype(x.dtype)
    total = geo.windows(geo.padded(x, 0.0)).sum(axis=(-2, -1))
    div = geo.divisor()
    return np.divide(total, div, out=np.zeros_like(total), where=div > 0).astype(x.dtype)


def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """ePool backward: ``dx``.  MAX routes each ``dy`` to its window's first maximum; AVE spreads
    ``dy / divisor`` over the window (overlapping windows accumulate)."""
    what = "pool2d_backward"
    x = check_array(x, what, "x")
    geo = pool_geometry(what, x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    dy = like(dy, x.dtype, what, "dy", x.shape[:2] + geo.out_hw)
    n, c, h, w = x.shape
    if mode == "max":
        idx, _, real = geo.argmax(x)
        kh, kw = geo.kernel
        oh, ow = geo.out_hw
        i, j = np.divmod(idx, kw)
        rows = geo.stride[0] * np.arange(oh)[:, None] - geo.pad[0] + geo.est[0] * i
        cols = geo.stride[1] * np.arange(ow)[None, :] - geo.pad[1] + geo.est[1] * j
        plane = np.arange(n * c).reshape(n, c, 1, 1)
        flat = (plane * h + rows) * w + cols
        dx = np.bincount(flat[real], weights=dy[real].astype(np.float64), minlength=n * c * h * w)
        return dx.reshape(x.shape).astype(x.dtype)
    div = geo.divisor()
    share = np.divide(dy, div, out=np.zeros_like(dy), where=div > 0)
    dxp = np.zeros(x.shape[:2] + (h + 2 * geo.pad[0] + geo.end_hw[0], w + 2 * geo.pad[1] + geo.end_hw[1]),
                   dtype=x.dtype)
    for i in range(geo.kernel[0]):
        for j in range(geo.kernel[1]):
            tap(dxp, i, j, geo.stride, geo.est, geo.out_hw)[...] += share
    return dxp[:, :, geo.pad[0]: geo.pad[0] + h, geo.pad[1]: geo.pad[1] + w].copy()
