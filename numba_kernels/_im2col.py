"""im2col / col2im with an equivalent stride, as Numba CPU kernels (Caffe's ``im2col.cpp``).

Geometry of one call: an image of ``(H, W)``, a ``(kh, kw)`` kernel whose taps sit ``est`` apart,
stride ``s``, zero padding ``p``, and ``(oh, ow)`` output positions (``oh = floor((H + 2p - ext)/s)
+ 1`` from :mod:`reference.sizes`; the caller passes it in).

The column buffer ``col`` has shape ``(C * kh * kw, nb * oh * ow)`` for a chunk of ``nb`` images::

    row    = (c * kh + i) * kw + j                  (channel-major, then taps row-major)
    column = (n * oh + oy) * ow + ox                (image-major, then output positions row-major)
    col[row, column] = x[n, c, oy*s_h - p_h + i*est_h, ox*s_w - p_w + j*est_w]   (0 outside x)

so the rows of a group's channels are contiguous and a convolution is one GEMM per group:
``y_g = w_g (O/G, C/G*kh*kw) @ col_g``.  :func:`col2im` is the transpose: it adds every column
entry back to the pixel it was read from (pixels read by several taps receive the sum).

Both kernels work on whole rows: for tap column ``j`` the outputs ``ox`` whose pixel lies inside
the image form one range ``[lo_j, hi_j)`` (:func:`inside`, computed once per call), so the inner
loop is a plain copy or add with no bounds test.

Note [unsigned indices].  Numba wraps negative indices (``a[-1]`` is the last element), which costs a
test per access and stops LLVM from vectorizing the inner loops.  Every flat index used here is
``>= 0`` by construction (the ranges above), so the row helpers index with ``uint64(...)``, which
has no negative case: the loops then compile to SIMD code.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

__all__ = ["im2col", "col2im", "inside", "tap_ranges"]


@njit(cache=True, inline="always")
def inside(x0, s, n_out, size):
    """``[lo, hi)``: the outputs ``o`` in ``[0, n_out)`` with ``0 <= o*s + x0 < size``."""
    lo = 0
    if x0 < 0:
        lo = (-x0 + s - 1) // s
    last = size - 1 - x0            # o*s <= last
    hi = last // s + 1 if last >= 0 else 0
    if hi > n_out:
        hi = n_out
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True)
def tap_ranges(k, e, s, p, n_out, size):
    """``lo[j], hi[j]``: :func:`inside` for every tap ``j`` (offset ``j*e - p``) along one axis."""
    lo = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    for j in range(k):
        lo[j], hi[j] = inside(j * e - p, s, n_out, size)
    return lo, hi


@njit(cache=True, inline="always")
def _copy(dst, d0, src, s0, s, lo, hi):
    """``dst[d0 + o] = src[s0 + o*s]`` for ``o`` in ``[lo, hi)`` (flat arrays, see Note)."""
    if s == 1:
        for o in range(lo, hi):
            dst[uint64(d0 + o)] = src[uint64(s0 + o)]
    else:
        for o in range(lo, hi):
            dst[uint64(d0 + o)] = src[uint64(s0 + o * s)]


@njit(cache=True, inline="always")
def _add(dst, d0, s, src, s0, lo, hi):
    """``dst[d0 + o*s] += src[s0 + o]`` for ``o`` in ``[lo, hi)``."""
    if s == 1:
        for o in range(lo, hi):
            dst[uint64(d0 + o)] += src[uint64(s0 + o)]
    else:
        for o in range(lo, hi):
            dst[uint64(d0 + o * s)] += src[uint64(s0 + o)]


@njit(parallel=True, cache=True)
def im2col(x, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, col):
    """Fill ``col`` (see module docstring) from ``x`` (nb, C, H, W); parallel over rows x images."""
    nb, c_in, h_in, w_in = x.shape
    ohw = oh * ow
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    lo, hi = tap_ranges(kw, ew, sw, pw, ow, w_in)
    for t in prange(c_in * kh * kw * nb):
        row = t // nb
        n = t - row * nb
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        plane = (n * c_in + c) * h_in
        for oy in range(oh):
            dst = row * col.shape[1] + n * ohw + oy * ow
            h = oy * sh - ph + i * eh
            if h < 0 or h >= h_in:
                cf[dst: dst + ow] = 0
                continue
            cf[dst: dst + lo[j]] = 0
            _copy(cf, dst, xf, (plane + h) * w_in + j * ew - pw, sw, lo[j], hi[j])
            cf[dst + hi[j]: dst + ow] = 0


@njit(parallel=True, cache=True)
def col2im(col, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, x):
    """``x[...] += `` the column entries at the pixels they came from; parallel over (n, c) planes,
    so no two threads write the same pixel.  ``x`` (nb, C, H, W) must be zeroed by the caller."""
    nb, c_in, h_in, w_in = x.shape
    ohw = oh * ow
    xf = x.reshape(-1)
    cf = col.reshape(-1)
    lo, hi = tap_ranges(kw, ew, sw, pw, ow, w_in)
    for t in prange(nb * c_in):
        n = t // c_in
        c = t - n * c_in
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oy in range(oh):
                    h = oy * sh - ph + i * eh
                    if h < 0 or h >= h_in:
                        continue
                    src = row * col.shape[1] + n * ohw + oy * ow
                    _add(xf, (t * h_in + h) * w_in + j * ew - pw, sw, cf, src, lo[j], hi[j])
