"""Stride-1 3x3 eConv by Winograd's minimal filtering F(2x2, 3x3) on the dilated lattice, forward
and backward: 16 multiply-adds per 2x2 outputs instead of 36 (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, section 4.1; the matrices below are theirs).

One axis first.  Two outputs of a 3-tap filter ``g`` need four inputs ``d``::

    y = A^T [(G g) * (B^T d)]        (``*`` elementwise: 4 multiplies instead of 6)

    B^T = [[1, 0, -1, 0],   G = [[1,    0,   0],   A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],        [1/2,  1/2, 1/2],        [0, 1, -1, -1]]
           [0, -1, 1, 0],        [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]       [0,    0,   1]]

Worked example: ``d = (1, 2, 3, 4)``, ``g = (1, 0, -1)``: ``B^T d = (-2, 5, 1, -2)``, ``G g = (1, 0,
0, -1)``, product ``(-2, 0, 0, 2)``, ``A^T`` of it ``(-2, -2)`` = ``(1 - 3, 2 - 4)``, the direct
correlation.  In 2-D the transforms act on both axes: a 2x2 output tile is ``A^T [U * V] A`` with
``U = G w G^T`` and ``V = B^T d B`` (4x4 each), and summed over input channels the 16 products are
16 GEMMs, one per transformed position ``xi = 4*i + j``::

    M[xi] (O, T) = U[xi] (O, C) @ V[xi] (C, T)                       (T tiles)

At stride 1 with ``est`` e a tap ``(i, j)`` of output ``(oy, ox)`` reads ``(oy + i*e_h - p_h, ox +
j*e_w - p_w)``: outputs ``e`` apart along an axis share the dilated lattice, so a tile is the outputs
``{oy0, oy0 + e_h} x {ox0, ox0 + e_w}`` and its inputs ``oy0 - p_h + {0, 1, 2, 3}*e_h`` (rows) by
``ox0 - p_w + {0, 1, 2, 3}*e_w`` (columns), zeros outside the image.  Tile origins per axis
(:func:`axis_tiles`) run over the residues ``a < e`` and ``a + 2e*q``; a tile whose second output
falls past the end is half used (at 28 outputs, est 4: 7 per residue, so 4 tiles for 3.5), and the
GEMMs of the transformed positions its used outputs never read skip its column (Note [half tiles]
in :class:`Tiles`: 3600 instead of 4096 GEMM columns per image at 28x28 est 4).

The backward is the adjoint of each stage (the forward is linear in ``x`` and in ``w``)::

    dM[xi] = A dy_tile A^T                          (adjoint of the output transform)
    dU[xi] = dM[xi] @ V[xi]^T        dw = G^T dU G  (adjoint of the filter transform)
    dV[xi] = U[xi]^T @ dM[xi]        dx = sum over tiles of B dV B^T at the tile's inputs

The transforms' entries are 0, +-1 and 1/2, so float32 rounding stays at the direct method's level:
measured against float64 on 512 channels, 4.4e-7 (Winograd) and 5.3e-7 (im2col) relative error.
Caffe computes this convolution as im2col + GEMM (``conv_layer.cpp`` 8-21,
``base_conv_layer.cpp`` 223-238); the sums are the same, their rounding is not.

Layout: ``U`` (16, O, C/G), ``V`` (16, C, nb*T), ``M`` (16, O, nb*T), each a :class:`Stack` of 16
matrices (skewed apart, Note [skew]; kept between calls, :mod:`._workspace`), the columns ``(n, tile
row, tile column)`` (in four blocks where there are half tiles, Note [half tiles]), so each group's
rows are contiguous and every GEMM is one BLAS call on a column range of whole matrices, all 16 (32
in the backward) in one :func:`._gemm.dot_batch`.  The transforms are
separable: ``B^T`` down the 4 input rows of a tile row over whole image rows, then along the columns
from zero-padded row buffers deinterleaved by position mod ``2*est`` (contiguous loads, no bounds
test per tap); the filter transforms run as one-output-stream passes (:func:`_pass_g`) so they
vectorize.  Each op runs three phases, each one :func:`._tasks.run` of blocks of tasks (on Numba's
thread count, sharing :func:`._gemm.dot_batch`'s helper threads; taken from one counter, so a thread
that loses its core takes fewer): forward [U, V] -> GEMMs -> [y], backward [U, dM, V] -> GEMMs ->
[dx, dw] (``_forward_in``, ``_backward_in``, ``_backward_out``).  Every task writes its own
outputs: the results do not depend on the threads.

Measured (BENCHMARKS.md, 2 shared cores, medians of interleaved rounds against PyTorch 2.13's
oneDNN, five runs): forward 1.06-1.55x at 512x56x56, 1.13-1.28x at 512x28x28 est 2, 0.94-1.10x at
est 4 (7 outputs per lattice residue: every residue's last tile is half used); backward 1.60-2.03x
at 56x56, 1.21-1.43x at 28x28 est 2, 0.89-1.14x at est 4.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, uint64

from reference.checks import group_slices

from . import _tasks
from ._args import image_chunks
from ._gemm import dot_batch
from ._workspace import scratch

__all__ = ["axis_tiles", "Tiles", "conv_forward_winograd", "conv_backward_winograd", "BUDGET"]

BUDGET = 1 << 25   # elements of V and M (or dV and dM) together for one chunk of images (at least one)


def axis_tiles(n_out, e):
    """Tile origins along one axis: every output ``o < n_out`` is ``origin + k*e`` for exactly one
    origin and ``k`` in ``{0, 1}``; residue-major (``a, a + 2e, a + 4e, ...`` for ``a = 0 .. e-1``).

    >>> axis_tiles(5, 1).tolist(), axis_tiles(6, 2).tolist()
    ([0, 2, 4], [0, 4, 1, 5])
    """
    origins = [a + 2 * e * q for a in range(min(e, n_out)) for q in range((n_out - a + 2 * e - 1) // (2 * e))]
    return np.array(origins, dtype=np.int64)


def full_first(origins, n_out, e):
    """``origins`` with the full tiles (``origin + e < n_out``) first, then the half-used ones, each
    part in its given order; and how many are full.

    >>> origins, full = full_first(axis_tiles(6, 2), 6, 2)     # 3 outputs per residue
    >>> origins.tolist(), full
    ([0, 1, 4, 5], 2)
    """
    full = origins + e < n_out
    return np.concatenate([origins[full], origins[~full]]), int(full.sum())


class Tiles:
    """Tile origins of one geometry, their column order, and the padded row length the column
    transforms read.

    Note [half tiles].  Where a residue has an odd number of outputs along an axis, its last tile
    there is half used (28 outputs at est 4: 7 per residue, 256 tiles for 196 outputs' worth).  Its
    missing output never needs the transformed position ``i = 3`` of that axis (row 3 of ``M``:
    ``A^T``'s first row is ``(1, 1, 1, 0)``), so the GEMMs of those positions skip its column.  For
    that the columns are ordered in four blocks by (row tile, column tile) kind, half (H) or full
    (F): ``[HF, FF, FH, HH]``, each ``(n, tile row, tile column)`` within; then the tiles a position
    ``xi = 4i + j`` needs are one range of columns (:meth:`ranges`): all for ``i, j < 3``, ``FF +
    FH`` for ``i = 3``, ``HF + FF`` for ``j = 3``, ``FF`` for both.  At 512x28x28 est 4 that is 3600
    of 4096 GEMM columns.  Without half tiles the order is plain ``(n, tile row, tile column)``.
    """

    def __init__(self, hw, pad, est, out_hw):
        (self.h, self.w), (self.ph, self.pw), (self.eh, self.ew) = hw, pad, est
        self.oh, self.ow = out_hw
        self.oy, self.trf = full_first(axis_tiles(self.oh, self.eh), self.oh, self.eh)
        ox = axis_tiles(self.ow, self.ew)
        self.ox, self.tcf = full_first(ox, self.ow, self.ew)
        self.count = self.oy.size * self.ox.size
        # row buffers hold an input row at [pw, pw + W) and zeros around it; a tile reads ox + l*ew
        self.wpad = max(int(ox.max()) + 3 * self.ew + 1, self.pw + self.w)
        # ... stored deinterleaved (see _input_transform): position P at slot P % 2ew, index P // 2ew
        self.slot_len = (self.wpad - 1) // (2 * self.ew) + 2
        # per residue a: its full column tiles are ox[starts[0, a]: starts[0, a + 1]], its half one
        # (if any) ox[tcf + starts[1, a]: tcf + starts[1, a + 1]]
        residues = np.arange(self.ew + 1)
        self.starts = np.stack([np.searchsorted(self.ox[:self.tcf] % self.ew, residues),
                                np.searchsorted(self.ox[self.tcf:] % self.ew, residues)]).astype(np.int64)

    def chunks(self, n, channels):
        """Image slices whose ``(16, channels, nb*T)`` buffers hold at most BUDGET elements."""
        return image_chunks(n, 16 * channels * self.count, BUDGET)

    def ranges(self, nb):
        """``(lo, hi)`` per position ``xi``: the columns (of ``nb`` images) its GEMM needs."""
        ff_start, fh_start, hh_start = _block_starts(nb, self.oy.size, self.trf, self.tcf,
                                                     self.ox.size - self.tcf)
        needs = {(False, False): (0, nb * self.count),     # by (i == 3, j == 3): every tile,
                 (True, False): (ff_start, hh_start),      # the full rows' FF + FH,
                 (False, True): (0, fh_start),             # the full columns' HF + FF,
                 (True, True): (ff_start, fh_start)}       # FF
        return [needs[i == 3, j == 3] for i in range(4) for j in range(4)]


@njit(cache=True)
def _block_starts(nb, tr_n, trf, tcf, tch):
    """Where the blocks ``FF``, ``FH`` and ``HH`` of ``[HF | FF | FH | HH]`` start (Note [half
    tiles]); ``trf`` of ``tr_n`` tile rows and ``tcf`` tile columns are full, ``tch`` half."""
    trh = tr_n - trf
    ff_start = nb * trh * tcf
    fh_start = ff_start + nb * trf * tcf
    return ff_start, fh_start, fh_start + nb * trf * tch


@njit(cache=True, inline="always")
def _bases(n, tr, nb, tr_n, trf, tcf, tch):
    """Columns of tile ``(n, tr, 0)`` and of ``(n, tr, tcf)``: where tile row ``tr`` of image ``n``
    starts in its full-column block and in its half-column block (Note [half tiles])."""
    ff_start, fh_start, hh_start = _block_starts(nb, tr_n, trf, tcf, tch)
    if tr < trf:                                           # a full row: FF and FH
        r = n * trf + tr
        return ff_start + r * tcf, fh_start + r * tch
    r = n * (tr_n - trf) + tr - trf                        # a half row: HF and HH
    return r * tcf, hh_start + r * tch


# ---- the four transforms and their adjoints -----------------------------------------------------

@njit(cache=True)
def _pass_g(src, a, b, c, dst, d, n, sign, h):
    """``dst[d + k] = h * (src[a + k] + sign*src[b + k] + src[c + k])`` for ``k < n`` (``sign`` = +-1:
    rows 1 and 2 of ``G``).  One output stream per pass: a loop that writes several streams of one
    array at offsets unknown to the compiler does not vectorize (LLVM cannot rule out overlaps)."""
    for k in range(n):
        q = uint64(k)
        dst[uint64(d) + q] = h * (src[uint64(a) + q] + sign * src[uint64(b) + q] + src[uint64(c) + q])


@njit(cache=True)
def _pass_copy(src, a, dst, d, n):
    """``dst[d + k] = src[a + k]`` for ``k < n`` (rows 0 and 3 of ``G``)."""
    for k in range(n):
        dst[uint64(d) + uint64(k)] = src[uint64(a) + uint64(k)]


@njit(cache=True)
def _pass_g_adjoint_edge(src, a, b, c, dst, d, n, h):
    """``dst[d + k] = src[a + k] + h * (src[b + k] + src[c + k])`` (columns 0 and 2 of ``G^T``)."""
    for k in range(n):
        q = uint64(k)
        dst[uint64(d) + q] = src[uint64(a) + q] + h * (src[uint64(b) + q] + src[uint64(c) + q])


@njit(cache=True)
def _pass_g_adjoint_mid(src, b, c, dst, d, n, h):
    """``dst[d + k] = h * (src[b + k] - src[c + k])`` (column 1 of ``G^T``)."""
    for k in range(n):
        q = uint64(k)
        dst[uint64(d) + q] = h * (src[uint64(b) + q] - src[uint64(c) + q])


@njit(cache=True)
def _filter_transform_task(w, uf, stride, o):
    """Task ``o`` of :func:`_filter_transform`: the taps of output channel ``o`` into an L1-sized
    buffer, rows of vectors over the input channels: ``buf[3r + q]`` = row ``r`` of ``G w`` (rows 0
    and 3 are tap rows 0 and 2; rows 12-14 hold tap row 1), then ``G`` along each row, one output
    matrix ``U[4r + j]`` per pass (see :func:`_pass_g`)."""
    c_n = w.shape[1]
    wf = w.reshape(-1)
    h = w.dtype.type(0.5)
    plus, minus = w.dtype.type(1), w.dtype.type(-1)
    buf = np.empty(15 * c_n, w.dtype)
    src = uint64(o * c_n * 9)
    for c in range(c_n):
        for q in range(3):
            buf[uint64(q * c_n + c)] = wf[src + uint64(c * 9 + q)]              # tap row 0
            buf[uint64((12 + q) * c_n + c)] = wf[src + uint64(c * 9 + 3 + q)]   # tap row 1
            buf[uint64((9 + q) * c_n + c)] = wf[src + uint64(c * 9 + 6 + q)]    # tap row 2
    for q in range(3):                               # rows 1 and 2 of G w: h (w0 +- w1 + w2)
        _pass_g(buf, q * c_n, (12 + q) * c_n, (9 + q) * c_n, buf, (3 + q) * c_n, c_n, plus, h)
        _pass_g(buf, q * c_n, (12 + q) * c_n, (9 + q) * c_n, buf, (6 + q) * c_n, c_n, minus, h)
    out = o * c_n
    for r in range(4):                               # G along row r: U[4r], ..., U[4r + 3]
        row = 3 * r * c_n
        k = 4 * r * stride + out
        _pass_copy(buf, row, uf, k, c_n)
        _pass_g(buf, row, row + c_n, row + 2 * c_n, uf, k + stride, c_n, plus, h)
        _pass_g(buf, row, row + c_n, row + 2 * c_n, uf, k + 2 * stride, c_n, minus, h)
        _pass_copy(buf, row + 2 * c_n, uf, k + 3 * stride, c_n)


@njit(nogil=True, cache=True)
def _filter_transform(w, uf, stride, t0, t1):
    """``U[4i + j][o, c] = (G w[o, c] G^T)[i, j]`` into the :class:`Stack` buffer ``uf``, for the
    output channels ``t0 <= o < t1`` (each a task, :func:`_filter_transform_task`).

    Per output channel the taps are first copied to ``taps[3i + q, c]`` (an L1-sized buffer), so
    the transform itself runs over ``c`` with unit strides everywhere and vectorizes."""
    for o in range(t0, t1):
        _filter_transform_task(w, uf, stride, o)


@njit(cache=True)
def _filter_transform_adjoint_task(duf, stride, dw, o):
    """Task ``o`` of :func:`_filter_transform_adjoint`: ``G^T`` along the rows of ``dU`` into
    ``buf[3r + q]`` (row ``r`` of ``dU G``), then down the columns into ``buf[36 + 3a + q]`` (tap
    ``(a, q)``), one output stream per pass, then the taps back to ``dw``'s layout."""
    c_n = dw.shape[1]
    dwf = dw.reshape(-1)
    h = dw.dtype.type(0.5)
    buf = np.empty(45 * c_n, dw.dtype)
    first = o * c_n
    for r in range(4):                               # dU[4r .. 4r + 3] G: 3 columns
        k = 4 * r * stride + first
        row = 3 * r * c_n
        _pass_g_adjoint_edge(duf, k, k + stride, k + 2 * stride, buf, row, c_n, h)
        _pass_g_adjoint_mid(duf, k + stride, k + 2 * stride, buf, row + c_n, c_n, h)
        _pass_g_adjoint_edge(duf, k + 3 * stride, k + stride, k + 2 * stride, buf, row + 2 * c_n, c_n, h)
    taps = 36 * c_n
    for q in range(3):                               # G^T down column q: taps (0, q), (1, q), (2, q)
        r0, r1, r2, r3 = q * c_n, (3 + q) * c_n, (6 + q) * c_n, (9 + q) * c_n
        _pass_g_adjoint_edge(buf, r0, r1, r2, buf, taps + q * c_n, c_n, h)
        _pass_g_adjoint_mid(buf, r1, r2, buf, taps + (3 + q) * c_n, c_n, h)
        _pass_g_adjoint_edge(buf, r3, r1, r2, buf, taps + (6 + q) * c_n, c_n, h)
    dst = uint64(o * c_n * 9)
    for c in range(c_n):
        for k in range(9):
            dwf[dst + uint64(c * 9 + k)] = buf[uint64(taps + k * c_n + c)]


@njit(nogil=True, cache=True)
def _filter_transform_adjoint(duf, stride, dw, t0, t1):
    """``dw[o, c] = G^T dU[o, c] G`` for ``t0 <= o < t1`` (the adjoint of :func:`_filter_transform`,
    through the same per-channel tap buffer, in the other order)."""
    for o in range(t0, t1):
        _filter_transform_adjoint_task(duf, stride, dw, o)


@njit(cache=True, inline="always")
def _row(x, n, c, r, zero):
    """Row ``r`` of plane ``(n, c)``, or zeros for a row of the padding."""
    return x[n, c, r] if 0 <= r < x.shape[2] else zero


@njit(cache=True)
def _slot_range(r, pw, w, e2):
    """Indices ``j`` of slot ``r`` whose padded position ``r + e2*j`` is an image column."""
    lo = (pw - r + e2 - 1) // e2 if pw > r else 0
    hi = (pw + w - 1 - r) // e2 + 1 if pw + w - 1 >= r else 0
    return lo, max(lo, hi)


@njit(cache=True)
def _input_transform_task(x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, stride, cols, p):
    """Task ``p`` of :func:`_input_transform`."""
    nb, c_n, _, w = x.shape
    tr_n = oy.size
    tcf, tch = starts[0, ew], starts[1, ew]
    plane = uint64(stride)                          # from one position xi to the next
    e2 = 2 * ew
    row_len = e2 * slot_len
    zero = np.zeros(w, x.dtype)
    n = p // c_n
    c = p - n * c_n
    s = np.zeros(4 * row_len, x.dtype)          # the 4 buffers; zeros stay where no pixel is
    for tr in range(tr_n):
        r = oy[tr] - ph
        d0, d1 = _row(x, n, c, r, zero), _row(x, n, c, r + eh, zero)
        d2, d3 = _row(x, n, c, r + 2 * eh, zero), _row(x, n, c, r + 3 * eh, zero)
        for slot in range(e2):
            lo, hi = _slot_range(slot, pw, w, e2)
            base = slot * slot_len
            for j in range(lo, hi):
                q = uint64(slot + e2 * j - pw)
                k = uint64(base + j)
                s[k] = d0[q] - d2[q]
                s[k + uint64(row_len)] = d1[q] + d2[q]
                s[k + uint64(2 * row_len)] = d2[q] - d1[q]
                s[k + uint64(3 * row_len)] = d1[q] - d3[q]
        fb, hb = _bases(n, tr, nb, tr_n, trf, tcf, tch)
        for i in range(4):
            for a in range(ew):
                ra = uint64(i * row_len + a * slot_len)
                rb = ra + uint64(ew * slot_len)
                at = uint64(4 * i) * plane + uint64(c * cols)
                out = at + uint64(fb + starts[0, a])
                full = starts[0, a + 1] - starts[0, a]
                half = at + uint64(hb + starts[1, a]) - uint64(full)    # the half tile's, if any
                for k in range(full + starts[1, a + 1] - starts[1, a]):
                    a0, a1 = s[ra + uint64(k)], s[ra + uint64(k + 1)]
                    b0, b1 = s[rb + uint64(k)], s[rb + uint64(k + 1)]
                    t = (out if k < full else half) + uint64(k)
                    vf[t] = a0 - a1
                    vf[t + plane] = b0 + a1
                    vf[t + plane + plane] = a1 - b0
                    vf[t + plane + plane + plane] = b0 - b1


@njit(nogil=True, cache=True)
def _input_transform(x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, stride, cols, t0, t1):
    """``v[4i + j, c, column of tile (n, tr, tc)] = (B^T d B)[i, j]``, ``d`` the tile's 4x4 inputs
    (columns: Note [half tiles]), for the planes ``t0 <= n*C + c < t1``.

    Per tile row, ``B^T`` down the 4 input rows goes into 4 padded row buffers, stored
    deinterleaved: padded position ``P`` (image column ``P - pw``) at slot ``P % 2ew``, index
    ``P // 2ew``.  Tile ``k`` of residue ``a`` (origin ``a + 2ew*k``) reads positions ``P = a + 2ew*k
    + l*ew``: slots ``a, a + ew, a, a + ew`` at indices ``k, k, k + 1, k + 1``, so ``B^T`` along the
    columns is four contiguous loads per tile, and the loop over a residue's tiles vectorizes."""
    for p in range(t0, t1):
        _input_transform_task(x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, stride, cols, p)


@njit(cache=True)
def _input_transform_adjoint_task(vf, stride, cols, oy, trf, starts, ph, pw, eh, ew, slot_len, dx, p):
    """Task ``p`` of :func:`_input_transform_adjoint`."""
    nb, c_n, h, w = dx.shape
    tr_n = oy.size
    tcf, tch = starts[0, ew], starts[1, ew]
    plane = uint64(stride)
    e2 = 2 * ew
    row_len = e2 * slot_len
    r1, r2, r3 = uint64(row_len), uint64(2 * row_len), uint64(3 * row_len)
    dxf = dx.reshape(-1)
    n = p // c_n
    c = p - n * c_n
    dx[n, c] = 0
    s = np.empty(4 * row_len, dx.dtype)
    for tr in range(tr_n):
        s[:] = 0
        fb, hb = _bases(n, tr, nb, tr_n, trf, tcf, tch)
        for i in range(4):                         # B along the columns, into the row buffers
            for a in range(ew):
                ra = uint64(i * row_len + a * slot_len)
                rb = ra + uint64(ew * slot_len)
                at = uint64(4 * i) * plane + uint64(c * cols)
                full = starts[0, a + 1] - starts[0, a]
                src = at + uint64(fb + starts[0, a])
                for k in range(full):                  # the taps at index k ...
                    t = src + uint64(k)
                    s[ra + uint64(k)] += vf[t]
                    v1, v2, v3 = vf[t + plane], vf[t + plane + plane], vf[t + plane + plane + plane]
                    s[rb + uint64(k)] += v1 - v2 + v3
                for k in range(full):                  # ... and at k + 1 (no carried sum)
                    t = src + uint64(k)
                    s[ra + uint64(k + 1)] += vf[t + plane] + vf[t + plane + plane] - vf[t]
                    s[rb + uint64(k + 1)] -= vf[t + plane + plane + plane]
                if starts[1, a + 1] > starts[1, a]:    # the residue's half tile, k = full
                    t = at + uint64(hb + starts[1, a])
                    k = uint64(full)
                    s[ra + k] += vf[t]
                    v1, v2, v3 = vf[t + plane], vf[t + plane + plane], vf[t + plane + plane + plane]
                    s[rb + k] += v1 - v2 + v3
                    s[ra + k + uint64(1)] += v2 + v1 - vf[t]
                    s[rb + k + uint64(1)] -= v3
        r = oy[tr] - ph                            # B down the rows: (s0, s1 - s2 + s3, ...)
        for k in range(4):
            rk = r + k * eh
            if rk < 0 or rk >= h:
                continue
            out = uint64(((n * c_n + c) * h + rk) * w)
            for slot in range(e2):
                lo, hi = _slot_range(slot, pw, w, e2)
                base = slot * slot_len
                for j in range(lo, hi):
                    q = out + uint64(slot + e2 * j - pw)
                    b = uint64(base + j)
                    if k == 0:
                        dxf[q] += s[b]
                    elif k == 1:
                        dxf[q] += s[b + r1] - s[b + r2] + s[b + r3]
                    elif k == 2:
                        dxf[q] += s[b + r1] + s[b + r2] - s[b]
                    else:
                        dxf[q] -= s[b + r3]


@njit(nogil=True, cache=True)
def _input_transform_adjoint(vf, stride, cols, oy, trf, starts, ph, pw, eh, ew, slot_len, dx, t0, t1):
    """``dx[n, c] = `` the sum over tiles of ``B dV B^T`` at the tile's inputs, for the planes ``t0
    <= n*C + c < t1`` (the adjoint of :func:`_input_transform`, same deinterleaved buffers); one
    plane per task, so no two tasks write one pixel."""
    for p in range(t0, t1):
        _input_transform_adjoint_task(vf, stride, cols, oy, trf, starts, ph, pw, eh, ew, slot_len, dx, p)


@njit(cache=True)
def _output_transform_task(mf, stride, cols, oy, ox, trf, tcf, eh, ew, b, has_bias, y, p):
    """Task ``p`` of :func:`_output_transform`."""
    nb, o_n, oh, ow = y.shape
    tr_n, tc_n = oy.size, ox.size
    plane = uint64(stride)
    plane2, plane3, plane4 = plane + plane, plane + plane + plane, plane + plane + plane + plane
    n = p // o_n
    o = p - n * o_n
    bias = b[o] if has_bias else 0.0
    for tr in range(tr_n):
        y0 = oy[tr]
        y1 = y0 + eh
        fb, hb = _bases(n, tr, nb, tr_n, trf, tcf, tc_n - tcf)
        for tc in range(tc_n):
            t = uint64(o * cols + (fb + tc if tc < tcf else hb + tc - tcf))
            # A^T along the columns of M, row by row: (u_i, w_i) = (m0 + m1 + m2, m1 - m2 - m3)
            m0, m1, m2, m3 = mf[t], mf[t + plane], mf[t + plane2], mf[t + plane3]
            u0, w0 = m0 + m1 + m2, m1 - m2 - m3
            t += plane4
            m0, m1, m2, m3 = mf[t], mf[t + plane], mf[t + plane2], mf[t + plane3]
            u1, w1 = m0 + m1 + m2, m1 - m2 - m3
            t += plane4
            m0, m1, m2, m3 = mf[t], mf[t + plane], mf[t + plane2], mf[t + plane3]
            u2, w2 = m0 + m1 + m2, m1 - m2 - m3
            t += plane4
            m0, m1, m2, m3 = mf[t], mf[t + plane], mf[t + plane2], mf[t + plane3]
            u3, w3 = m0 + m1 + m2, m1 - m2 - m3
            x0 = ox[tc]
            x1 = x0 + ew
            y[n, o, y0, x0] = u0 + u1 + u2 + bias        # then A^T down the rows
            if x1 < ow:
                y[n, o, y0, x1] = w0 + w1 + w2 + bias
            if y1 < oh:
                y[n, o, y1, x0] = u1 - u2 - u3 + bias
                if x1 < ow:
                    y[n, o, y1, x1] = w1 - w2 - w3 + bias


@njit(nogil=True, cache=True)
def _output_transform(mf, stride, cols, oy, ox, trf, tcf, eh, ew, b, has_bias, y, t0, t1):
    """``y`` tile ``= A^T M A (+ b)``, only the tile's outputs that lie in ``y``, for the planes
    ``t0 <= n*O + o < t1``."""
    for p in range(t0, t1):
        _output_transform_task(mf, stride, cols, oy, ox, trf, tcf, eh, ew, b, has_bias, y, p)


@njit(cache=True)
def _output_transform_adjoint_task(dy, oy, ox, trf, tcf, eh, ew, df, stride, cols, p):
    """Task ``p`` of :func:`_output_transform_adjoint`."""
    nb, o_n, oh, ow = dy.shape
    tr_n, tc_n = oy.size, ox.size
    plane = uint64(stride)
    plane4 = plane + plane + plane + plane
    n = p // o_n
    o = p - n * o_n
    for tr in range(tr_n):
        y0 = oy[tr]
        y1 = y0 + eh
        fb, hb = _bases(n, tr, nb, tr_n, trf, tcf, tc_n - tcf)
        for tc in range(tc_n):
            x0 = ox[tc]
            x1 = x0 + ew
            g00 = dy[n, o, y0, x0] + 0.0
            g01 = dy[n, o, y0, x1] + 0.0 if x1 < ow else 0.0
            g10 = dy[n, o, y1, x0] + 0.0 if y1 < oh else 0.0
            g11 = dy[n, o, y1, x1] + 0.0 if (y1 < oh and x1 < ow) else 0.0
            t = uint64(o * cols + (fb + tc if tc < tcf else hb + tc - tcf))
            # rows of A dy: (g0, g0 + g1, g0 - g1, -g1); then A along each row: (a, a + c, a - c, -c)
            _put_row(df, t, plane, g00, g01)
            _put_row(df, t + plane4, plane, g00 + g10, g01 + g11)
            _put_row(df, t + plane4 + plane4, plane, g00 - g10, g01 - g11)
            _put_row(df, t + plane4 + plane4 + plane4, plane, -g10, -g11)


@njit(nogil=True, cache=True)
def _output_transform_adjoint(dy, oy, ox, trf, tcf, eh, ew, df, stride, cols, t0, t1):
    """``dM = A dy_tile A^T`` per tile, for the planes ``t0 <= n*O + o < t1`` (the adjoint of
    :func:`_output_transform`; outputs past the end count as 0)."""
    for p in range(t0, t1):
        _output_transform_adjoint_task(dy, oy, ox, trf, tcf, eh, ew, df, stride, cols, p)


@njit(cache=True, inline="always")
def _put_row(df, t, plane, a, c):
    """One row of ``dM``: ``A (a, c)`` = ``(a, a + c, a - c, -c)`` at ``t, t + plane, ...``."""
    df[t] = a
    df[t + plane] = a + c
    df[t + plane + plane] = a - c
    df[t + plane + plane + plane] = -c


# ---- the parallel phases of the two ops ---------------------------------------------------------
# Each phase is one :func:`._tasks.run` over blocks of its tasks (a thread that gets no core on a
# shared machine takes fewer blocks instead of stalling the phase); the transforms that can run side
# by side share one phase: forward [U and V] -> GEMMs -> [y], backward [U, dM and V] -> GEMMs -> [dx
# and dw].

TASKS_PER_THREAD = 16   # blocks per thread in a phase: enough for the counter to even out the load


def _phase(fn, args, units):
    """``fn(*args, t0, t1)`` over blocks of ``range(units)`` on Numba's thread count."""
    threads = numba.get_num_threads()
    _tasks.run([functools.partial(fn, *args, t0, t1)
                for t0, t1 in _tasks.blocks(units, TASKS_PER_THREAD * threads)], threads)


@njit(nogil=True, cache=True)
def _forward_in(w, uf, us, x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, vs, cols, o_n, t0, t1):
    """Tasks ``t0 <= t < t1`` of: :func:`_filter_transform` of the first ``o_n`` output channels
    (``o_n`` is 0 when ``U`` is already there), then :func:`_input_transform` of every plane."""
    for t in range(t0, t1):
        if t < o_n:
            _filter_transform_task(w, uf, us, t)
        else:
            _input_transform_task(x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, vs, cols, t - o_n)


@njit(nogil=True, cache=True)
def _backward_in(w, uf, us, dy, oy, ox, trf, tcf, eh, ew, df, ds, x, starts, ph, pw, slot_len, vf, vs,
                 cols, o_n, t0, t1):
    """Tasks ``t0 <= t < t1`` of: :func:`_filter_transform` (``o_n`` channels, 0 when done),
    :func:`_output_transform_adjoint` and :func:`_input_transform`."""
    m_n = dy.shape[0] * dy.shape[1]
    for t in range(t0, t1):
        if t < o_n:
            _filter_transform_task(w, uf, us, t)
        elif t < o_n + m_n:
            _output_transform_adjoint_task(dy, oy, ox, trf, tcf, eh, ew, df, ds, cols, t - o_n)
        else:
            _input_transform_task(x, oy, trf, starts, ph, pw, eh, ew, slot_len, vf, vs, cols,
                                  t - o_n - m_n)


@njit(nogil=True, cache=True)
def _backward_out(vf, vs, cols, oy, trf, starts, ph, pw, eh, ew, slot_len, dx, duf, dus, dw, t0, t1):
    """Tasks ``t0 <= t < t1`` of: :func:`_input_transform_adjoint` of every plane, then
    :func:`_filter_transform_adjoint` of every output channel."""
    p_n = dx.shape[0] * dx.shape[1]
    for t in range(t0, t1):
        if t < p_n:
            _input_transform_adjoint_task(vf, vs, cols, oy, trf, starts, ph, pw, eh, ew, slot_len, dx, t)
        else:
            _filter_transform_adjoint_task(duf, dus, dw, t - p_n)


# ---- the two ops --------------------------------------------------------------------------------

class Stack:
    """The 16 matrices ``(rows, cols)`` of one transformed operand in one flat buffer, matrix ``xi``
    at ``xi*stride`` with ``stride = rows*cols + SKEW``.

    Note [skew].  The transforms read or write all 16 matrices at once (16 streams).  Matrices of
    ``512 x 196`` floats, or of any size that is a multiple of 4 KiB, packed back to back would put the
    16 streams' addresses in the same L1 cache sets, more of them than the cache has ways; measured
    on the filter transform of a 512x512 layer, 3.3 ms single-threaded for 26 MB of traffic.  SKEW
    elements between matrices move each stream to its own sets.
    """

    def __init__(self, rows, cols, dtype, role=None):
        self.rows, self.cols, self.stride = rows, cols, rows * cols + SKEW
        size = 16 * self.stride
        self.flat = np.empty(size, dtype) if role is None else scratch("winograd " + role, size, dtype)
        self.flat.reshape(16, self.stride)[:, rows * cols:] = 0   # zero gaps: whole buffers add safely

    def __getitem__(self, xi):
        start = xi * self.stride
        return self.flat[start: start + self.rows * self.cols].reshape(self.rows, self.cols)

    def args(self):
        return self.flat, self.stride, self.cols


SKEW = 16


def conv_forward_winograd(x, w, b, pad, est, group, out_hw):
    """conv2d of a 3x3 kernel at stride 1 (``x``, ``w`` C-contiguous, one dtype); returns ``y``."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = Stack(o, w.shape[1], x.dtype, "U")
    y = np.empty((n, o) + tuple(out_hw), x.dtype)
    bias = b if b is not None else np.zeros(1, x.dtype)
    slices = group_slices(group, c, o)
    for k, part in enumerate(tl.chunks(n, c + o)):
        nb = part.stop - part.start
        v = Stack(c, nb * tl.count, x.dtype, "V")
        o_n = o if k == 0 else 0                         # U once, with the first chunk
        _phase(_forward_in, (w, u.flat, u.stride, x[part], tl.oy, tl.trf, tl.starts, tl.ph, tl.pw,
                             tl.eh, tl.ew, tl.slot_len, *v.args(), o_n), o_n + nb * c)
        m = Stack(o, nb * tl.count, x.dtype, "M")       # columns a GEMM skips are never read
        dot_batch([(u[xi][cout], v[xi][cin, lo:hi], m[xi][cout, lo:hi])
                   for xi, (lo, hi) in enumerate(tl.ranges(nb)) for cin, cout in slices])
        del v
        _phase(_output_transform, (*m.args(), tl.oy, tl.ox, tl.trf, tl.tcf, tl.eh, tl.ew, bias,
                                   b is not None, y[part]), nb * o)
    return y


def conv_backward_winograd(dy, x, w, pad, est, group, out_hw):
    """conv2d_backward's ``(dx, dw)`` for a 3x3 kernel at stride 1 (C-contiguous, one dtype)."""
    n, c, h, wd = x.shape
    o, cg = w.shape[:2]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = Stack(o, cg, x.dtype, "U")
    du = Stack(o, cg, x.dtype, "dU")
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    slices = group_slices(group, c, o)
    chunks = tl.chunks(n, 3 * c + o)
    for k, part in enumerate(chunks):
        nb = part.stop - part.start
        cols = nb * tl.count
        dm, v, dv = Stack(o, cols, x.dtype, "M"), Stack(c, cols, x.dtype, "V"), Stack(c, cols, x.dtype, "dV")
        o_n = o if k == 0 else 0                         # U once, with the first chunk
        _phase(_backward_in, (w, u.flat, u.stride, dy[part], tl.oy, tl.ox, tl.trf, tl.tcf, tl.eh,
                              tl.ew, *dm.args()[:2], x[part], tl.starts, tl.ph, tl.pw, tl.slot_len,
                              *v.args(), o_n), o_n + nb * o + nb * c)
        part_du = du if k == 0 else Stack(o, cg, x.dtype)
        # the columns a position skips have dM = 0 there (Note [half tiles]): they add nothing to dU
        # and their dV is 0
        ranges = list(enumerate(tl.ranges(nb)))
        jobs = [(dm[xi][cout, lo:hi], v[xi][cin, lo:hi].T, part_du[xi][cout])
                for xi, (lo, hi) in ranges for cin, cout in slices]
        jobs += [(u[xi][cout].T, dm[xi][cout, lo:hi], dv[xi][cin, lo:hi])
                 for xi, (lo, hi) in ranges for cin, cout in slices]
        dot_batch(jobs)
        for xi, (lo, hi) in ranges:
            dv[xi][:, :lo] = 0
            dv[xi][:, hi:] = 0
        if k > 0:                                     # chunks of a batch: add each chunk's dU
            du.flat += part_du.flat
        del v
        o_n = o if k == len(chunks) - 1 else 0           # dw once dU holds every chunk's sum
        _phase(_backward_out, (*dv.args(), tl.oy, tl.trf, tl.starts, tl.ph, tl.pw, tl.eh, tl.ew,
                               tl.slot_len, dx[part], du.flat, du.stride, dw), nb * c + o_n)
    return dx, dw
