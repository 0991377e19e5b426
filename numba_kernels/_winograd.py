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

    def chunks(self, n, channels):
        """Image slices whose ``(16, channels, nb*T)`` buffers hold at most BUDGET elements."""
        step = max(1, min(n, BUDGET // max(1, 16 * channels * self.count)))
        return [slice(a, min(n, a + step)) for a in range(0, n, step)]


# ---- the four transforms and their adjoints -----------------------------------------------------

@njit(parallel=True, cache=True)
def _filter_transform(w, u):
    """``u[4i + j, o, c] = (G w[o, c] G^T)[i, j]``."""
    o_n, c_n = w.shape[0], w.shape[1]
    for o in prange(o_n):
        t = np.empty((4, 3), np.float64)
        for c in range(c_n):
            for q in range(3):
                a0, a1, a2 = w[o, c, 0, q], w[o, c, 1, q], w[o, c, 2, q]
                t[0, q] = a0
                t[1, q] = 0.5 * (a0 + a1 + a2)
                t[2, q] = 0.5 * (a0 - a1 + a2)
                t[3, q] = a2
            for i in range(4):
                a0, a1, a2 = t[i, 0], t[i, 1], t[i, 2]
                u[4 * i, o, c] = a0
                u[4 * i + 1, o, c] = 0.5 * (a0 + a1 + a2)
                u[4 * i + 2, o, c] = 0.5 * (a0 - a1 + a2)
                u[4 * i + 3, o, c] = a2


@njit(parallel=True, cache=True)
def _filter_transform_adjoint(du, dw):
    """``dw[o, c] = G^T dU[o, c] G`` (the adjoint of :func:`_filter_transform`)."""
    o_n, c_n = dw.shape[0], dw.shape[1]
    for o in prange(o_n):
        t = np.empty((4, 3), np.float64)
        for c in range(c_n):
            for i in range(4):
                b0, b1, b2, b3 = du[4 * i, o, c], du[4 * i + 1, o, c], du[4 * i + 2, o, c], du[4 * i + 3, o, c]
                t[i, 0] = b0 + 0.5 * (b1 + b2)
                t[i, 1] = 0.5 * (b1 - b2)
                t[i, 2] = 0.5 * (b1 + b2) + b3
            for q in range(3):
                b0, b1, b2, b3 = t[0, q], t[1, q], t[2, q], t[3, q]
                dw[o, c, 0, q] = b0 + 0.5 * (b1 + b2)
                dw[o, c, 1, q] = 0.5 * (b1 - b2)
                dw[o, c, 2, q] = 0.5 * (b1 + b2) + b3


@njit(cache=True, inline="always")
def _row(x, n, c, r, zero):
    """Row ``r`` of plane ``(n, c)``, or zeros for a row of the padding."""
    return x[n, c, r] if 0 <= r < x.shape[2] else zero


@njit(parallel=True, cache=True)
def _input_transform(x, oy, ox, ph, pw, eh, ew, wpad, v):
    """``v[4i + j, c, (n*TR + tr)*TC + tc] = (B^T d B)[i, j]``, ``d`` the tile's 4x4 inputs."""
    nb, c_n, _, w = x.shape
    tr_n, tc_n = oy.size, ox.size
    cols = v.shape[2]
    plane = c_n * cols                              # v's stride between two positions xi
    vf = v.reshape(-1)
    zero = np.zeros(w, x.dtype)
    for p in prange(nb * c_n):
        n = p // c_n
        c = p - n * c_n
        s = np.zeros((4, wpad), x.dtype)            # B^T of the tile row's 4 input rows, padded
        sf = s.reshape(-1)
        for tr in range(tr_n):
            r = oy[tr] - ph
            d0, d1 = _row(x, n, c, r, zero), _row(x, n, c, r + eh, zero)
            d2, d3 = _row(x, n, c, r + 2 * eh, zero), _row(x, n, c, r + 3 * eh, zero)
            for q in range(w):
                k = uint64(q + pw)
                sf[k] = d0[q] - d2[q]
                sf[k + wpad] = d1[q] + d2[q]
                sf[k + 2 * wpad] = d2[q] - d1[q]
                sf[k + 3 * wpad] = d1[q] - d3[q]
            first = c * cols + (n * tr_n + tr) * tc_n   # v's flat index of (xi 0, c, tile (tr, 0))
            for i in range(4):
                out = uint64(first + 4 * i * plane)
                row = uint64(i * wpad)
                for tc in range(tc_n):
                    q0 = row + uint64(ox[tc])
                    b0, b1 = sf[q0], sf[q0 + uint64(ew)]
                    b2, b3 = sf[q0 + uint64(2 * ew)], sf[q0 + uint64(3 * ew)]
                    t = out + uint64(tc)
                    vf[t] = b0 - b2
                    vf[t + uint64(plane)] = b1 + b2
                    vf[t + uint64(2 * plane)] = b2 - b1
                    vf[t + uint64(3 * plane)] = b1 - b3


@njit(parallel=True, cache=True)
def _input_transform_adjoint(dv, oy, ox, ph, pw, eh, ew, wpad, dx):
    """``dx[n, c] = `` the sum over tiles of ``B dV B^T`` at the tile's inputs (the adjoint of
    :func:`_input_transform`); one plane per task, so no two tasks write one pixel."""
    nb, c_n, h, w = dx.shape
    tr_n, tc_n = oy.size, ox.size
    cols = dv.shape[2]
    plane = c_n * cols
    vf = dv.reshape(-1)
    for p in prange(nb * c_n):
        n = p // c_n
        c = p - n * c_n
        dx[n, c] = 0
        s = np.empty((4, wpad), dx.dtype)
        sf = s.reshape(-1)
        for tr in range(tr_n):
            sf[:] = 0
            first = c * cols + (n * tr_n + tr) * tc_n
            for i in range(4):                         # B along the columns, into the row buffers
                src = uint64(first + 4 * i * plane)
                row = uint64(i * wpad)
                for tc in range(tc_n):
                    t = src + uint64(tc)
                    b0, b1 = vf[t], vf[t + uint64(plane)]
                    b2, b3 = vf[t + uint64(2 * plane)], vf[t + uint64(3 * plane)]
                    q0 = row + uint64(ox[tc])
                    sf[q0] += b0
                    sf[q0 + uint64(ew)] += b1 - b2 + b3
                    sf[q0 + uint64(2 * ew)] += b1 + b2 - b0
                    sf[q0 + uint64(3 * ew)] -= b3
            r = oy[tr] - ph                            # B down the rows: (s0, s1 - s2 + s3, ...)
            w1, w2, w3 = uint64(wpad), uint64(2 * wpad), uint64(3 * wpad)
            if 0 <= r < h:
                for q in range(w):
                    dx[n, c, r, q] += sf[uint64(q + pw)]
            if 0 <= r + eh < h:
                for q in range(w):
                    k = uint64(q + pw)
                    dx[n, c, r + eh, q] += sf[k + w1] - sf[k + w2] + sf[k + w3]
            if 0 <= r + 2 * eh < h:
                for q in range(w):
                    k = uint64(q + pw)
                    dx[n, c, r + 2 * eh, q] += sf[k + w1] + sf[k + w2] - sf[k]
            if 0 <= r + 3 * eh < h:
                for q in range(w):
                    dx[n, c, r + 3 * eh, q] -= sf[uint64(q + pw) + w3]


@njit(parallel=True, cache=True)
def _output_transform(m, oy, ox, eh, ew, b, has_bias, y):
    """``y`` tile ``= A^T M A (+ b)``, only the tile's outputs that lie in ``y``."""
    nb, o_n, oh, ow = y.shape
    tr_n, tc_n = oy.size, ox.size
    cols = m.shape[2]
    plane = uint64(o_n * cols)
    plane2, plane3, plane4 = plane + plane, plane + plane + plane, plane + plane + plane + plane
    mf = m.reshape(-1)
    for p in prange(nb * o_n):
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
def _output_transform_adjoint(dy, oy, ox, eh, ew, dm):
    """``dM = A dy_tile A^T`` per tile (the adjoint of :func:`_output_transform`; outputs past the
    end count as 0)."""
    nb, o_n, oh, ow = dy.shape
    tr_n, tc_n = oy.size, ox.size
    cols = dm.shape[2]
    plane = uint64(o_n * cols)
    plane4 = plane + plane + plane + plane
    df = dm.reshape(-1)
    for p in prange(nb * o_n):
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


@njit(cache=True, inline="always")
def _put_row(df, t, plane, a, c):
    """One row of ``dM``: ``A (a, c)`` = ``(a, a + c, a - c, -c)`` at ``t, t + plane, ...``."""
    df[t] = a
    df[t + plane] = a + c
    df[t + plane + plane] = a - c
    df[t + plane + plane + plane] = -c


# ---- the two ops --------------------------------------------------------------------------------

def _filters(w, dtype):
    u = np.empty((16, w.shape[0], w.shape[1]), dtype)
    _filter_transform(w, u)
    return u


def conv_forward_winograd(x, w, b, pad, est, group, out_hw):
    """conv2d of a 3x3 kernel at stride 1 (``x``, ``w`` C-contiguous, one dtype); returns ``y``."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = _filters(w, x.dtype)
    y = np.empty((n, o) + tuple(out_hw), x.dtype)
    bias = b if b is not None else np.zeros(1, x.dtype)
    slices = group_slices(group, c, o)
    for part in tl.chunks(n, c + o):
        cols = (part.stop - part.start) * tl.count
        v = np.empty((16, c, cols), x.dtype)
        _input_transform(x[part], tl.oy, tl.ox, tl.ph, tl.pw, tl.eh, tl.ew, tl.wpad, v)
        m = np.empty((16, o, cols), x.dtype)
        for xi in range(16):
            for cin, cout in slices:
                np.dot(u[xi, cout], v[xi, cin], out=m[xi, cout])
        del v
        _output_transform(m, tl.oy, tl.ox, tl.eh, tl.ew, bias, b is not None, y[part])
    return y


def conv_backward_winograd(dy, x, w, pad, est, group, out_hw):
    """conv2d_backward's ``(dx, dw)`` for a 3x3 kernel at stride 1 (C-contiguous, one dtype)."""
    n, c, h, wd = x.shape
    o, cg = w.shape[:2]
    tl = Tiles((h, wd), pad, est, out_hw)
    u = _filters(w, x.dtype)
    du = np.zeros((16, o, cg), x.dtype)
    dx = np.empty_like(x)
    slices = group_slices(group, c, o)
    for part in tl.chunks(n, 2 * (c + o)):
        cols = (part.stop - part.start) * tl.count
        dm = np.empty((16, o, cols), x.dtype)
        _output_transform_adjoint(dy[part], tl.oy, tl.ox, tl.eh, tl.ew, dm)
        v = np.empty((16, c, cols), x.dtype)
        _input_transform(x[part], tl.oy, tl.ox, tl.ph, tl.pw, tl.eh, tl.ew, tl.wpad, v)
        one = part.stop - part.start == n
        for xi in range(16):
            for cin, cout in slices:
                if one:
                    np.dot(dm[xi, cout], v[xi, cin].T, out=du[xi, cout])
                else:
                    du[xi, cout] += np.dot(dm[xi, cout], v[xi, cin].T)
        dv = v                                        # V is no longer needed: reuse it for dV
        for xi in range(16):
            for cin, cout in slices:
                np.dot(u[xi, cout].T, dm[xi, cout], out=dv[xi, cin])
        _input_transform_adjoint(dv, tl.oy, tl.ox, tl.ph, tl.pw, tl.eh, tl.ew, tl.wpad, dx[part])
    dw = np.empty_like(w)
    _filter_transform_adjoint(du, dw)
    return dx, dw
