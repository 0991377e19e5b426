"""Stride-1 eConv as one GEMM per kernel tap on shifted views of a gapped input: no im2col copy.

At stride 1 (every densified layer) output ``(oy, ox)`` of tap ``(i, j)`` reads pixel
``(oy + i*est_h - p_h, ox + j*est_w - p_w)``.  Store each input plane row by row with ``g`` zeros
after every row (row width ``wq = W + g``) and one zero row in front::

    xq[c, (r + 1)*wq + q] = x[c, r, q]          (0 <= q < W; the other entries are 0)

and lay the output out "wide", with the same row width: ``t = oy*wq + ox``.  Then tap ``(i, j)`` reads
``xq[c, t + start_ij]`` with one constant ``start_ij = (i*est_h - p_h + 1)*wq + j*est_w - p_w`` for
every output, so the whole tap is one GEMM on a window of ``xq`` (``C`` rows, leading dimension the
plane size)::

    ywide[o, t] += sum_c w[o, c, i, j] * xq[c, t + start_ij]          (conv2d)
    dw[o, c, i, j] += sum_t dywide[o, t] * xq[c, t + start_ij]        (dw = dy @ window^T)
    dxq[c, t + start_ij] += sum_o w[o, c, i, j] * dywide[o, t]        (dx = w^T @ dy, then cropped)

A read left of the image (``ox + j*est_w - p_w`` in ``[-p_w, 0)``) lands in the previous row's gap,
one right of it in the row's own gap, so ``g = max(p_w, ow - W)`` zeros suffice (half of a padded
plane's ``2*p_w``: one gap serves both neighbours).  Each tap runs only over the output rows whose
input row lies inside the image (``[lo_i, hi_i)`` of :func:`._im2col.inside`), so the zero rows of
the padding cost nothing; per output row the ``wq - ow`` columns past ``ow`` are computed and
dropped ("garbage" columns; ``dywide`` holds zeros there, so they add nothing to ``dx`` and ``dw``).

The GEMMs accumulate in place (``beta = 1``) through the CBLAS of :mod:`._gemm`; weights are used
per tap as ``(O/G, C/G)`` matrices, one transposing copy ``(kh, kw, O, C/G)`` per call.  Images run
one at a time (a GEMM per tap per image per group), so this pays off for big planes and many
channels; :mod:`numba_kernels.cpu` keeps im2col otherwise (see ``TAPS_MIN_WORK`` there).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._gemm import gemm
from ._im2col import inside

__all__ = ["Layout", "conv_forward_taps", "conv_backward_taps"]


class Layout:
    """Row width, plane size and per-tap windows of the gapped layout for one geometry."""

    def __init__(self, hw, kernel, pad, est, out_hw):
        (h, w), (kh, kw), (ph, pw), (eh, ew), (oh, ow) = hw, kernel, pad, est, out_hw
        self.h, self.w, self.oh, self.ow = h, w, oh, ow
        self.wq = w + max(pw, ow - w, 0)
        self.size = (h + 2) * self.wq + (kw - 1) * ew     # garbage columns of the last row read on
        self.taps = []                                    # (i, j, out columns lo:hi, input start)
        for i in range(kh):
            lo, hi = inside(i * eh - ph, 1, oh, h)
            if hi <= lo:
                continue
            for j in range(kw):
                start = (lo + i * eh - ph + 1) * self.wq + j * ew - pw
                self.taps.append((i, j, lo * self.wq, hi * self.wq, start))
        # a tap over every output row can overwrite (beta = 0) instead of adding into zeros
        self.full = [k for k, t in enumerate(self.taps) if t[3] - t[2] == oh * self.wq]


@njit(parallel=True, cache=True)
def _gap(x, wq, out):
    """``out[n, c]`` (flat, the plane size) = ``x[n, c]`` in the gapped layout (module docstring)."""
    nb, c_in, h, w = x.shape
    size = out.shape[2]
    for t in prange(nb * c_in):
        n = t // c_in
        c = t - n * c_in
        out[n, c, :wq] = 0
        for r in range(h):
            base = (r + 1) * wq
            out[n, c, base: base + w] = x[n, c, r]
            out[n, c, base + w: base + wq] = 0
        out[n, c, (h + 1) * wq: size] = 0


@njit(parallel=True, cache=True)
def _ungap(xq, h, w, wq, out):
    """Inverse of :func:`_gap` for one image: ``out[c] (h, w)`` from ``xq[c]``."""
    for c in prange(out.shape[0]):
        for r in range(h):
            base = (r + 1) * wq
            out[c, r] = xq[c, base: base + w]


@njit(parallel=True, cache=True)
def _widen(dy, wq, out):
    """``out[o, oy*wq + ox] = dy[o, oy, ox]``, zeros in the garbage columns ``ox >= ow``."""
    o_n, oh, ow = dy.shape
    for o in prange(o_n):
        for oy in range(oh):
            base = oy * wq
            out[o, base: base + ow] = dy[o, oy]
            out[o, base + ow: base + wq] = 0


@njit(parallel=True, cache=True)
def _crop(ywide, wq, b, has_bias, out):
    """``out[o, oy, ox] = ywide[o, oy*wq + ox] (+ b[o])``: drop the garbage columns."""
    o_n, oh, ow = out.shape
    for o in prange(o_n):
        bias = b[o] if has_bias else 0.0
        for oy in range(oh):
            base = oy * wq
            for ox in range(ow):
                out[o, oy, ox] = ywide[o, base + ox] + bias


@njit(parallel=True, cache=True)
def _to_taps(w, out):
    """``out[i, j, o, c] = w[o, c, i, j]`` (NumPy's strided copy is 5x slower)."""
    o_n, c_n, kh, kw = w.shape
    for o in prange(o_n):              # w[o] (C*kh*kw values) stays in L1 while it is spread out
        for i in range(kh):
            for j in range(kw):
                for c in range(c_n):
                    out[i, j, o, c] = w[o, c, i, j]


@njit(parallel=True, cache=True)
def _from_taps(wt, out):
    """Inverse of :func:`_to_taps`."""
    o_n, c_n, kh, kw = out.shape
    for o in prange(o_n):
        for i in range(kh):
            for j in range(kw):
                for c in range(c_n):
                    out[o, c, i, j] = wt[i, j, o, c]


def _tap_weights(w):
    """``(kh, kw, O, C/G)``: each tap's weights as a contiguous matrix."""
    o, c, kh, kw = w.shape
    out = np.empty((kh, kw, o, c), w.dtype)
    _to_taps(w, out)
    return out


def _groups(group, c, o):
    cg, og = c // group, o // group
    return [(slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)) for g in range(group)]


def conv_forward_taps(x, w, b, pad, est, group, out_hw):
    """conv2d at stride 1 (``x``, ``w`` C-contiguous, one dtype); returns ``y``."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    lay = Layout((h, wd), (kh, kw), pad, est, out_hw)
    wt = _tap_weights(w)
    xq = np.empty((n, c, lay.size), x.dtype)
    _gap(x, lay.wq, xq)
    y = np.empty((n, o) + tuple(out_hw), x.dtype)
    ywide = np.empty((o, lay.oh * lay.wq), x.dtype)
    order = lay.full[:1] + [k for k in range(len(lay.taps)) if k not in lay.full[:1]]
    bias = b if b is not None else np.zeros(1, x.dtype)
    for img in range(n):
        if not lay.full:
            ywide[...] = 0
        for cin, cout in _groups(group, c, o):
            for rank, k in enumerate(order):
                i, j, lo, hi, start = lay.taps[k]
                gemm(wt[i, j, cout], xq[img, cin, start: start + hi - lo], ywide[cout, lo: hi],
                     beta=0.0 if (rank == 0 and lay.full) else 1.0)
        _crop(ywide, lay.wq, bias, b is not None, y[img])
    return y


def conv_backward_taps(dy, x, w, pad, est, group, out_hw):
    """conv2d_backward's ``(dx, dw)`` at stride 1 (``dy``, ``x``, ``w`` C-contiguous, one dtype)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    lay = Layout((h, wd), (kh, kw), pad, est, out_hw)
    wt = _tap_weights(w)
    xq = np.empty((n, c, lay.size), x.dtype)
    _gap(x, lay.wq, xq)
    dwt = np.zeros((kh, kw, o, cg), x.dtype)
    dx = np.empty_like(x)
    dywide = np.empty((o, lay.oh * lay.wq), x.dtype)
    dxq = np.empty((c, lay.size), x.dtype)
    for img in range(n):
        _widen(dy[img], lay.wq, dywide)
        dxq[...] = 0
        for cin, cout in _groups(group, c, o):
            for i, j, lo, hi, start in lay.taps:
                window = slice(start, start + hi - lo)
                gemm(dywide[cout, lo: hi], xq[img, cin, window], dwt[i, j, cout], trans_b=True)
                gemm(wt[i, j, cout], dywide[cout, lo: hi], dxq[cin, window], trans_a=True)
        _ungap(dxq, h, wd, lay.wq, dx[img])
    dw = np.empty_like(w)
    _from_taps(dwt, dw)
    return dx, dw
