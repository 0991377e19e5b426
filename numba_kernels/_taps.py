"""Stride-1 eConv as GEMMs on shifted windows of a gapped input, one per kernel row: no im2col.

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

The ``kw`` taps of one kernel row run as one GEMM: the buffer holds ``kw`` copies of the gapped
plane, copy ``j`` shifted by ``j*est_w`` (``xe[c, j, u] = xq[c, u + j*est_w]``), so rows ``(c, j)``
of ``xe`` form a ``(C*kw, L)`` operand with one leading dimension, and the weights of kernel row
``i`` a ``(O, C*kw)`` matrix (one reordering copy per call).  That is ``kw`` times the input instead
of im2col's ``kh*kw``, and ``kh`` GEMMs with inner size ``C*kw`` instead of ``kh*kw`` with ``C``:
fewer, bigger BLAS calls (on 2 shared cores each multi-threaded call pays a thread hand-over).
The GEMMs accumulate in place (``beta = 1``) through the CBLAS of :mod:`._gemm`.  Images run one at
a time (``kh`` GEMMs per image and group), so this pays off for big planes and many channels;
:mod:`numba_kernels.cpu` keeps im2col otherwise (see ``TAPS_MIN_WORK`` there).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._gemm import gemm
from ._im2col import inside

__all__ = ["Layout", "conv_forward_taps", "conv_backward_taps"]


class Layout:
    """Row width, plane size and per-kernel-row windows of the gapped layout for one geometry."""

    def __init__(self, hw, kernel, pad, est, out_hw):
        (h, w), (kh, kw), (ph, pw), (eh, ew), (oh, ow) = hw, kernel, pad, est, out_hw
        self.h, self.w, self.oh, self.ow, self.kw, self.ew = h, w, oh, ow, kw, ew
        self.wq = w + max(pw, ow - w, 0)
        self.size = (h + 2) * self.wq + (kw - 1) * ew     # garbage columns of the last row read on
        self.rows = []                                    # (i, out columns lo:hi, input start)
        for i in range(kh):
            lo, hi = inside(i * eh - ph, 1, oh, h)
            if hi > lo:
                self.rows.append((i, lo * self.wq, hi * self.wq, (lo + i * eh - ph + 1) * self.wq - pw))
        # a kernel row over every output row can overwrite (beta = 0) instead of adding into zeros
        self.full = [k for k, r in enumerate(self.rows) if r[2] - r[1] == oh * self.wq]


@njit(parallel=True, cache=True)
def _gap(x, wq, ew, out):
    """``out[n, c, j, u] = xq[n, c, u + j*est_w]``: the gapped plane ``xq`` (module docstring)
    once per kernel column ``j``, shifted by the tap's column offset (0 past the plane's end)."""
    nb, c_in, h, w = x.shape
    kw, size = out.shape[2], out.shape[3]
    for t in prange(nb * c_in):
        n = t // c_in
        c = t - n * c_in
        for j in range(kw):
            d = j * ew                 # out[.., j, u] holds xq[u + d]
            out[n, c, j, :] = 0
            for r in range(h):
                base = (r + 1) * wq - d
                lo = max(base, 0)
                if base + w > lo:      # (a negative slice end would wrap around)
                    out[n, c, j, lo: base + w] = x[n, c, r, lo - base: w]


@njit(parallel=True, cache=True)
def _ungap(dxe, h, w, wq, ew, out):
    """The adjoint of :func:`_gap` for one image: ``out[c, r, q] = sum_j dxe[c, j, p - j*est_w]``
    with ``p = (r + 1)*wq + q`` the pixel's place in the gapped plane."""
    c_n, kw = dxe.shape[0], dxe.shape[1]
    for c in prange(c_n):
        for r in range(h):
            base = (r + 1) * wq
            out[c, r] = dxe[c, 0, base: base + w]
            for j in range(1, kw):
                d = base - j * ew
                if d >= 0:
                    out[c, r] += dxe[c, j, d: d + w]
                elif d + w > 0:        # only pixels with p - j*est_w >= 0 were read by tap j
                    out[c, r, -d:] += dxe[c, j, 0: d + w]


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
def _to_rows(w, out):
    """``out[i, o, c, j] = w[o, c, i, j]`` (NumPy's strided copy is 3-5x slower)."""
    o_n, c_n, kh, kw = w.shape
    for o in prange(o_n):
        for i in range(kh):
            for c in range(c_n):
                for j in range(kw):
                    out[i, o, c, j] = w[o, c, i, j]


@njit(parallel=True, cache=True)
def _from_rows(wr, out):
    """Inverse of :func:`_to_rows`."""
    o_n, c_n, kh, kw = out.shape
    for o in prange(o_n):
        for i in range(kh):
            for c in range(c_n):
                for j in range(kw):
                    out[o, c, i, j] = wr[i, o, c, j]


def _row_weights(w):
    """``(kh, O, C/G * kw)``: kernel row ``i``'s weights as one matrix, columns ``(c, j)``."""
    o, c, kh, kw = w.shape
    out = np.empty((kh, o, c, kw), w.dtype)
    _to_rows(w, out)
    return out.reshape(kh, o, c * kw)


def _groups(group, c, o, kw):
    """Per group: its rows of the ``(C * kw)``-row operands and its output channels."""
    cg, og = c // group, o // group
    return [(slice(g * cg * kw, (g + 1) * cg * kw), slice(g * og, (g + 1) * og)) for g in range(group)]


def _expanded(x, lay):
    """``(n, C * kw, size)``: :func:`_gap` of ``x``, one shifted copy per kernel column."""
    n, c = x.shape[:2]
    xe = np.empty((n, c, lay.kw, lay.size), x.dtype)
    _gap(x, lay.wq, lay.ew, xe)
    return xe.reshape(n, c * lay.kw, lay.size)


def conv_forward_taps(x, w, b, pad, est, group, out_hw):
    """conv2d at stride 1 (``x``, ``w`` C-contiguous, one dtype); returns ``y``."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    lay = Layout((h, wd), (kh, kw), pad, est, out_hw)
    wr = _row_weights(w)
    xe = _expanded(x, lay)
    y = np.empty((n, o) + tuple(out_hw), x.dtype)
    ywide = np.empty((o, lay.oh * lay.wq), x.dtype)
    order = lay.full[:1] + [k for k in range(len(lay.rows)) if k not in lay.full[:1]]
    bias = b if b is not None else np.zeros(1, x.dtype)
    for img in range(n):
        if not lay.full:
            ywide[...] = 0
        for cin, cout in _groups(group, c, o, kw):
            for rank, k in enumerate(order):
                i, lo, hi, start = lay.rows[k]
                gemm(wr[i, cout], xe[img, cin, start: start + hi - lo], ywide[cout, lo: hi],
                     beta=0.0 if (rank == 0 and lay.full) else 1.0)
        _crop(ywide, lay.wq, bias, b is not None, y[img])
    return y


def conv_backward_taps(dy, x, w, pad, est, group, out_hw):
    """conv2d_backward's ``(dx, dw)`` at stride 1 (``dy``, ``x``, ``w`` C-contiguous, one dtype)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    lay = Layout((h, wd), (kh, kw), pad, est, out_hw)
    wr = _row_weights(w)
    xe = _expanded(x, lay)
    dwr = np.zeros((kh, o, cg * kw), x.dtype)
    dx = np.empty_like(x)
    dywide = np.empty((o, lay.oh * lay.wq), x.dtype)
    dxe = np.empty((c * kw, lay.size), x.dtype)
    for img in range(n):
        _widen(dy[img], lay.wq, dywide)
        dxe[...] = 0
        for cin, cout in _groups(group, c, o, kw):
            for i, lo, hi, start in lay.rows:
                window = slice(start, start + hi - lo)
                gemm(dywide[cout, lo: hi], xe[img, cin, window], dwr[i, cout], trans_b=True)
                gemm(wr[i, cout], dywide[cout, lo: hi], dxe[cin, window], trans_a=True)
        _ungap(dxe.reshape(c, kw, lay.size), h, wd, lay.wq, lay.ew, dx[img])
    dw = np.empty_like(w)
    _from_rows(dwr.reshape(kh, o, cg, kw), dw)
    return dx, dw
