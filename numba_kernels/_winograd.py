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
falls past the end is half used (at 28 outputs, est 4: 7 per residue, so 4 tiles for 3.5).

The backward is the adjoint of each stage (the forward is linear in ``x`` and in ``w``)::

    dM[xi] = A dy_tile A^T                          (adjoint of the output transform)
    dU[xi] = dM[xi] @ V[xi]^T        dw = G^T dU G  (adjoint of the filter transform)
    dV[xi] = U[xi]^T @ dM[xi]        dx = sum over tiles of B dV B^T at the tile's inputs

The transforms' entries are 0, +-1 and 1/2, so float32 rounding stays at the direct method's level:
measured against float64 on 512 channels, 4.4e-7 (Winograd) and 5.3e-7 (im2col) relative error.
Caffe computes this convolution as im2col + GEMM (``conv_layer.cpp`` 8-21,
``base_conv_layer.cpp`` 223-238); the sums are the same, their rounding is not.

Layout: ``U`` (16, O, C/G), ``V`` (16, C, nb*T), ``M`` (16, O, nb*T), the columns ``(n, tile row,
tile column)``, so each group's rows are contiguous and every GEMM is one ``np.dot`` on whole
matrices.  The transforms are separable: rows first over whole image rows (vectorized), then the
4 columns of each tile from a zero-padded row buffer (no bounds test per tap).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from reference.checks import group_slices

from ._gemm import dot_batch

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


class Tiles:
    """Tile origins of one geometry and the padded row length the column transforms read."""

    def __init__(self, hw, pad, est, out_hw):
        (self.h, self.w), (self.ph, self.pw), (self.eh, self.ew) = hw, pad, est
        self.oh, self.ow = out_hw
        self.oy = axis_tiles(self.oh, self.eh)
        self.ox = axis_tiles(self.ow, self.ew)
        self.count = self.oy.size * self.ox.size
        # row buffers hold an input row at [pw, pw + W) and zeros around it; a tile reads ox + l*ew
        self.wpad = max(int(self.ox.max()) + 3 * self.ew + 1, self.pw + self.w)
        # ... stored deinterleaved (see _input_transform): position P at slot P % 2ew, index P // 2ew
        self.slot_len = (self.wpad - 1) // (2 * self.ew) + 2
        residues = self.ox % self.ew
        self.starts = np.searchsorted(residues, np.arange(self.ew + 1)).astype(np.int64)

    def chunks(self, n, channels):
        """Image slices whose ``(16, channels, nb*T)`` buffers hold at most BUDGET elements."""
        step = max(1, min(n, BUDGET // max(1, 16 * channels * self.count)))
        return [slice(a, min(n, a + step)) for a in range(0, n, step)]


# ---- the four transforms and their adjoints -----------------------------------------------------

@njit(cache=True, inline="always")
def _g(a0, a1, a2, h):
    """``G (a0, a1, a2)``: the filter transform along one axis (``h`` = 1/2 in the data's dtype)."""
    return a0, h * (a0 + a1 + a2), h * (a0 - a1 + a2), a2


@njit(cache=True, inline="always")
def _g_adjoint(b0, b1, b2, b3, h):
    """``G^T (b0, b1, b2, b3)``."""
    return b0 + h * (b1 + b2), h * (b1 - b2), h * (b1 + b2) + b3


@njit(cache=True, inline="always")
def _put_g(uf, t, stride, a0, a1, a2, h):
    """``G (a0, a1, a2)`` into ``uf[t], uf[t + stride], uf[t + 2*stride], uf[t + 3*stride]``."""
    b0, b1, b2, b3 = _g(a0, a1, a2, h)
    uf[t] = b0
    uf[t + stride] = b1
    uf[t + stride + stride] = b2
    uf[t + stride + stride + stride] = b3


@njit(cache=True, inline="always")
def _get_g_adjoint(df, t, stride, h):
    """``G^T`` of ``df[t], df[t + stride], df[t + 2*stride], df[t + 3*stride]``."""
    return _g_adjoint(df[t], df[t + stride], df[t + stride + stride], df[t + stride + stride + stride], h)


@njit(cache=True)
def _filter_transform_task(w, uf, stride, o):
    """Task ``o`` of :func:`_filter_transform` (flat unsigned indices: see Note [unsigned indices]
    in :mod:`._im2col`; without them this loop did not vectorize, 2.2 ms for a 512x512 layer)."""
    c_n = w.shape[1]
    wf = w.reshape(-1)
    h = w.dtype.type(0.5)
    s = uint64(stride)
    s4 = s + s + s + s
    n = uint64(c_n)
    taps = np.empty(9 * c_n, w.dtype)                # taps[k*C + c] = w[o, c, k // 3, k % 3]
    src = uint64(o * c_n * 9)
    for c in range(c_n):
        for k in range(9):
            taps[uint64(k * c_n + c)] = wf[src + uint64(c * 9 + k)]
    out = uint64(o * c_n)
    for c in range(c_n):
        q = uint64(c)
        t = out + q
        # G down the columns of w: column j of (G w) is (r0j, r1j, r2j, r3j)
        r00, r10, r20, r30 = _g(taps[q], taps[q + 3 * n], taps[q + 6 * n], h)
        r01, r11, r21, r31 = _g(taps[q + n], taps[q + 4 * n], taps[q + 7 * n], h)
        r02, r12, r22, r32 = _g(taps[q + 2 * n], taps[q + 5 * n], taps[q + 8 * n], h)
        _put_g(uf, t, s, r00, r01, r02, h)          # then G along row i: U[4i .. 4i + 3]
        _put_g(uf, t + s4, s, r10, r11, r12, h)
        _put_g(uf, t + s4 + s4, s, r20, r21, r22, h)
        _put_g(uf, t + s4 + s4 + s4, s, r30, r31, r32, h)


@njit(parallel=True, cache=True)
def _filter_transform(w, uf, stride):
    """``U[4i + j][o, c] = (G w[o, c] G^T)[i, j]`` into the :class:`Stack` buffer ``uf``.

    Per output channel the taps are first copied to ``taps[3i + q, c]`` (an L1-sized buffer), so
    the transform itself runs over ``c`` with unit strides everywhere and vectorizes."""
    for o in prange(w.shape[0]):
        _filter_transform_task(w, uf, stride, o)


@njit(cache=True)
def _filter_transform_adjoint_task(duf, stride, dw, o):
    """Task ``o`` of :func:`_filter_transform_adjoint`."""
    c_n = dw.shape[1]
    dwf = dw.reshape(-1)
    h = dw.dtype.type(0.5)
    s = uint64(stride)
    s4 = s + s + s + s
    n = uint64(c_n)
    taps = np.empty(9 * c_n, dw.dtype)
    first = uint64(o * c_n)
    for c in range(c_n):
        q = uint64(c)
        t = first + q
        t00, t01, t02 = _get_g_adjoint(duf, t, s, h)
        t10, t11, t12 = _get_g_adjoint(duf, t + s4, s, h)
        t20, t21, t22 = _get_g_adjoint(duf, t + s4 + s4, s, h)
        t30, t31, t32 = _get_g_adjoint(duf, t + s4 + s4 + s4, s, h)
        taps[q], taps[q + 3 * n], taps[q + 6 * n] = _g_adjoint(t00, t10, t20, t30, h)
        taps[q + n], taps[q + 4 * n], taps[q + 7 * n] = _g_adjoint(t01, t11, t21, t31, h)
        taps[q + 2 * n], taps[q + 5 * n], taps[q + 8 * n] = _g_adjoint(t02, t12, t22, t32, h)
    dst = uint64(o * c_n * 9)
    for c in range(c_n):
        for k in range(9):
            dwf[dst + uint64(c * 9 + k)] = taps[uint64(k * c_n + c)]


@njit(parallel=True, cache=True)
def _filter_transform_adjoint(duf, stride, dw):
    """``dw[o, c] = G^T dU[o, c] G`` (the adjoint of :func:`_filter_transform`, through the same
    per-channel tap buffer, in the other order)."""
    for o in prange(dw.shape[0]):
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
def _input_transform_task(x, oy, starts, ph, pw, eh, ew, slot_len, vf, stride, cols, p):
    """Task ``p`` of :func:`_input_transform`."""
    nb, c_n, _, w = x.shape
    tr_n = oy.size
    tc_n = starts[ew]
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
        first = c * cols + (n * tr_n + tr) * tc_n   # v's flat index of (xi 0, c, tile (tr, 0))
        for i in range(4):
            for a in range(ew):
                ra = uint64(i * row_len + a * slot_len)
                rb = ra + uint64(ew * slot_len)
                out = uint64(first + starts[a]) + uint64(4 * i) * plane
                for k in range(starts[a + 1] - starts[a]):
                    a0, a1 = s[ra + uint64(k)], s[ra + uint64(k + 1)]
                    b0, b1 = s[rb + uint64(k)], s[rb + uint64(k + 1)]
                    t = out + uint64(k)
                    vf[t] = a0 - a1
                    vf[t + plane] = b0 + a1
                    vf[t + plane + plane] = a1 - b0
                    vf[t + plane + plane + plane] = b0 - b1


@njit(parallel=True, cache=True)
def _input_transform(x, oy, starts, ph, pw, eh, ew, slot_len, vf, stride, cols):
    """``v[4i + j, c, (n*TR + tr)*TC + tc] = (B^T d B)[i, j]``, ``d`` the tile's 4x4 inputs.

    Per tile row, ``B^T`` down the 4 input rows goes into 4 padded row buffers, stored
    deinterleaved: padded position ``P`` (image column ``P - pw``) at slot ``P % 2ew``, index
    ``P // 2ew``.  Tile ``k`` of residue ``a`` (origin ``a + 2ew*k``) reads positions ``P = a + 2ew*k
    + l*ew``: slots ``a, a + ew, a, a + ew`` at indices ``k, k, k + 1, k + 1``, so ``B^T`` along the
    columns is four contiguous loads per tile, and the loop over a residue's tiles vectorizes."""
    for p in prange(x.shape[0] * x.shape[1]):
        _input_transform_task(x, oy, starts, ph, pw, eh, ew, slot_len, vf, stride, cols, p)


@njit(cache=True)
def _input_transform_adjoint_task(vf, stride, cols, oy, starts, ph, pw, eh, ew, slot_len, dx, p):
    """Task ``p`` of :func:`_input_transform_adjoint`."""
    nb, c_n, h, w = dx.shape
    tr_n = oy.size
    tc_n = starts[ew]
    plane = uint64(stride)
    e2 = 2 * ew
    row_len = e2 * slot_len
    n = p // c_n
    c = p - n * c_n
    dx[n, c] = 0
    s = np.empty(4 * row_len, dx.dtype)
    for tr in range(tr_n):
        s[:] = 0
        first = c * cols + (n * tr_n + tr) * tc_n
        for i in range(4):                         # B along the columns, into the row buffers
            for a in range(ew):
                ra = uint64(i * row_len + a * slot_len)
                rb = ra + uint64(ew * slot_len)
                src = uint64(first + starts[a]) + uint64(4 * i) * plane
                count = starts[a + 1] - starts[a]
                for k in range(count):             # the taps at index k ...
                    t = src + uint64(k)
                    s[ra + uint64(k)] += vf[t]
                    v1, v2, v3 = vf[t + plane], vf[t + plane + plane], vf[t + plane + plane + plane]
                    s[rb + uint64(k)] += v1 - v2 + v3
                for k in range(count):             # ... and at k + 1 (a second loop: no carried sum)
                    t = src + uint64(k)
                    s[ra + uint64(k + 1)] += vf[t + plane] + vf[t + plane + plane] - vf[t]
                    s[rb + uint64(k + 1)] -= vf[t + plane + plane + plane]
        r = oy[tr] - ph                            # B down the rows: (s0, s1 - s2 + s3, ...)
        for slot in range(e2):
            lo, hi = _slot_range(slot, pw, w, e2)
            base = slot * slot_len
            for j in range(lo, hi):
                q = slot + e2 * j - pw
                k = uint64(base + j)
                s0, s1 = s[k], s[k + uint64(row_len)]
                s2, s3 = s[k + uint64(2 * row_len)], s[k + uint64(3 * row_len)]
                if 0 <= r < h:
                    dx[n, c, r, q] += s0
                if 0 <= r + eh < h:
                    dx[n, c, r + eh, q] += s1 - s2 + s3
                if 0 <= r + 2 * eh < h:
                    dx[n, c, r + 2 * eh, q] += s1 + s2 - s0
                if 0 <= r + 3 * eh < h:
                    dx[n, c, r + 3 * eh, q] -= s3


@njit(parallel=True, cache=True)
def _input_transform_adjoint(vf, stride, cols, oy, starts, ph, pw, eh, ew, slot_len, dx):
    """``dx[n, c] = `` the sum over tiles of ``B dV B^T`` at the tile's inputs (the adjoint of
    :func:`_input_transform`, same deinterleaved buffers); one plane per task, so no two tasks
    write one pixel."""
    for p in prange(dx.shape[0] * dx.shape[1]):
        _input_transform_adjoint_task(vf, stride, cols, oy, starts, ph, pw, eh, ew, slot_len, dx, p)


@njit(cache=True)
def _output_transform_task(mf, stride, cols, oy, ox, eh, ew, b, has_bias, y, p):
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
        first = o * cols + (n * tr_n + tr) * tc_n
        for tc in range(tc_n):
            t = uint64(first + tc)
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


@njit(parallel=True, cache=True)
def _output_transform(mf, stride, cols, oy, ox, eh, ew, b, has_bias, y):
    """``y`` tile ``= A^T M A (+ b)``, only the tile's outputs that lie in ``y``."""
    for p in prange(y.shape[0] * y.shape[1]):
        _output_transform_task(mf, stride, cols, oy, ox, eh, ew, b, has_bias, y, p)


@njit(cache=True)
def _output_transform_adjoint_task(dy, oy, ox, eh, ew, df, stride, cols, p):
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
        first = o * cols + (n * tr_n + tr) * tc_n
        for tc in range(tc_n):
            x0 = ox[tc]
            x1 = x0 + ew
            g00 = dy[n, o, y0, x0] + 0.0
            g01 = dy[n, o, y0, x1] + 0.0 if x1 < ow else 0.0
            g10 = dy[n, o, y1, x0] + 0.0 if y1 < oh else 0.0
            g11 = dy[n, o, y1, x1] + 0.0 if (y1 < oh and x1 < ow) else 0.0
            t = uint64(first + tc)
            # rows of A dy: (g0, g0 + g1, g0 - g1, -g1); then A along each row: (a, a + c, a - c, -c)
            _put_row(df, t, plane, g00, g01)
            _put_row(df, t + plane4, plane, g00 + g10, g01 + g11)
            _put_row(df, t + plane4 + plane4, plane, g00 - g10, g01 - g11)
            _put_row(df, t + plane4 + plane4 + plane4, plane, -g10, -g11)


@njit(parallel=True, cache=True)
def _output_transform_adjoint(dy, oy, ox, eh, ew, df, stride, cols):
    """``dM = A dy_tile A^T`` per tile (the adjoint of :func:`_output_transform`; outputs past the
    end count as 0)."""
    for p in prange(dy.shape[0] * dy.shape[1]):
        _output_transform_adjoint_task(dy, oy, ox, eh, ew, df, stride, cols, p)


@njit(cache=True, inline="always")
def _put_row(df, t, plane, a, c):
    """One row of ``dM``: ``A (a, c)`` = ``(a, a + c, a - c, -c)`` at ``t, t + plane, ...``."""
    df[t] = a
    df[t + plane] = a + c
    df[t + plane + plane] = a - c
    df[t + plane + plane + plane] = -c


# ---- the parallel regions of the two ops -------------------------------------------------------------
# Each region forks and joins the thread pool once; on a shared machine a worker waiting for a core
# stalls its whole region (see :func:`._gemm.dot_batch`), so the transforms that can run side by side
# share one region: forward [U and V] -> GEMMs -> [y], backward [U, dM and V] -> GEMMs -> [dx and dw].

@njit(parallel=True, cache=True)
def _forward_in(w, uf, us, x, oy, starts, ph, pw, eh, ew, slot_len, vf, vs, cols, filters):
    """:func:`_filter_transform` (when ``filters``) and :func:`_input_transform` in one region."""
    o_n = w.shape[0] if filters else 0
    for t in prange(o_n + x.shape[0] * x.shape[1]):
        if t < o_n:
            _filter_transform_task(w, uf, us, t)
        else:
            _input_transform_task(x, oy, starts, ph, pw, eh, ew, slot_len, vf, vs, cols, t - o_n)


@njit(parallel=True, cache=True)
def _backward_in(w, uf, us, dy, oy, ox, eh, ew, df, ds, x, starts, ph, pw, slot_len, vf, vs, cols,
                 filters):
    """:func:`_filter_transform` (when ``filters``), :func:`_output_transform_adjoint` and
    :func:`_input_transform` in one region."""
    o_n = w.shape[0] if filters else 0
    m_n = dy.shape[0] * dy.shape[1]
    for t in prange(o_n + m_n + x.shape[0] * x.shape[1]):
        if t < o_n:
            _filter_transform_task(w, uf, us, t)
        elif t < o_n + m_n:
            _output_transform_adjoint_task(dy, oy, ox, eh, ew, df, ds, cols, t - o_n)
        else:
            _input_transform_task(x, oy, starts, ph, pw, eh, ew, slot_len, vf, vs, cols, t - o_n - m_n)


@njit(parallel=True, cache=True)
def _backward_out(vf, vs, cols, oy, starts, ph, pw, eh, ew, slot_len, dx, duf, dus, dw, filters):
    """:func:`_input_transform_adjoint` and (when ``filters``) :func:`_filter_transform_adjoint`."""
    p_n = dx.shape[0] * dx.shape[1]
    o_n = dw.shape[0] if filters else 0
    for t in prange(p_n + o_n):
        if t < p_n:
            _input_transform_adjoint_task(vf, vs, cols, oy, starts, ph, pw, eh, ew, slot_len, dx, t)
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

    def __init__(self, rows, cols, dtype, zero=False):
        self.rows, self.cols, self.stride = rows, cols, rows * cols + SKEW
        self.flat = (np.zeros if zero else np.empty)(16 * self.stride, dtype)
        if not zero:                              # the gaps hold zeros, so whole buffers add safely
            self.flat.reshape(16, self.stride)[:, rows * cols:] = 0

    def __getitem__(self, xi):
        start = xi * self.stride
        return self.flat[start: start + self.rows * self.cols].reshape(self.rows, self.cols)

    def args(self):
        return self.flat, self.stride, self.cols


SKEW = 16


def _filters(w):
    u = Stack(w.shape[0], w.shape[1], w.dtype)
    _filter_transform(w, u.flat, u.stride)
    return u


def conv_forward_winograd(x, w, b, pad, est, group, out_hw):
    """conv2d of a 3x3 kernel at stride 1 (``x``, ``w`` C-contiguous, one dtype); returns ``y``."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = Stack(o, w.shape[1], x.dtype)
    y = np.empty((n, o) + tuple(out_hw), x.dtype)
    bias = b if b is not None else np.zeros(1, x.dtype)
    slices = group_slices(group, c, o)
    for k, part in enumerate(tl.chunks(n, c + o)):
        cols = (part.stop - part.start) * tl.count
        v = Stack(c, cols, x.dtype)
        _forward_in(w, u.flat, u.stride, x[part], tl.oy, tl.starts, tl.ph, tl.pw, tl.eh, tl.ew,
                    tl.slot_len, *v.args(), k == 0)
        m = Stack(o, cols, x.dtype)
        dot_batch([(u[xi][cout], v[xi][cin], m[xi][cout]) for xi in range(16) for cin, cout in slices])
        del v
        _output_transform(*m.args(), tl.oy, tl.ox, tl.eh, tl.ew, bias, b is not None, y[part])
    return y


def conv_backward_winograd(dy, x, w, pad, est, group, out_hw):
    """conv2d_backward's ``(dx, dw)`` for a 3x3 kernel at stride 1 (C-contiguous, one dtype)."""
    n, c, h, wd = x.shape
    o, cg = w.shape[:2]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = Stack(o, cg, x.dtype)
    du = Stack(o, cg, x.dtype)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    slices = group_slices(group, c, o)
    pairs = [(xi, cin, cout) for xi in range(16) for cin, cout in slices]
    chunks = tl.chunks(n, 3 * c + o)
    for k, part in enumerate(chunks):
        cols = (part.stop - part.start) * tl.count
        dm, v, dv = Stack(o, cols, x.dtype), Stack(c, cols, x.dtype), Stack(c, cols, x.dtype)
        _backward_in(w, u.flat, u.stride, dy[part], tl.oy, tl.ox, tl.eh, tl.ew, *dm.args()[:2],
                     x[part], tl.starts, tl.ph, tl.pw, tl.slot_len, *v.args(), k == 0)
        part_du = du if k == 0 else Stack(o, cg, x.dtype)
        dot_batch([(dm[xi][cout], v[xi][cin].T, part_du[xi][cout]) for xi, cin, cout in pairs]
                  + [(u[xi][cout].T, dm[xi][cout], dv[xi][cin]) for xi, cin, cout in pairs])
        if k > 0:                                     # chunks of a batch: add each chunk's dU
            du.flat += part_du.flat
        del v
        _backward_out(*dv.args(), tl.oy, tl.starts, tl.ph, tl.pw, tl.eh, tl.ew, tl.slot_len, dx[part],
                      du.flat, du.stride, dw, k == len(chunks) - 1)
    return dx, dw
