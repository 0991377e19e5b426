"""The equivalent deconvolution (eDeconv): a stride-``s`` Deconvolution rewritten for dense grids.

FCN upsamples coarse scores with a Deconvolution of stride ``s``.  In a dense net its input lies on a
grid of equivalent stride ``E_in = s * E`` and its output must lie on the grid ``E`` (``grid``): the
upsampling gives back one factor ``s`` of the densified strides.  Per axis, with kernel ``k``, pad
``p`` and tap spacing ``d`` (the original Deconvolution's ``est``, normally 1), the original is::

    y[o] = sum over taps t with (o + p - d*t) = s*i:   w[t] * x[i]

The dense input holds fragment ``q`` (``0 <= q < E``) at ``x_d[q + E_in*i] = x_q[i]``, and the dense
output must hold its deconvolution at ``y_d[q + E*o] = y_q[o]``.  Substituting, for ``P = E*o + q``::

    y_d[P] = sum over taps t with (P div E + p - d*t) mod s == 0:   w[t] * x_d[P + E*(p - d*t)]

Every tap reads the input ``E*d`` apart (the eConv dilation) and, for output ``P``, only the taps the
original uses for ``o``'s phase contribute (the other taps would land between input samples).  Reads
outside the input are zero.  Fragments with ``q >= E`` (the phases of the last ``s`` densified
strides) are not read: the upsampling has no place for them, as in the original.

Output size (:func:`reference.sizes.edeconv_out_size`): the end of the last fragment's output.  A
position can lie inside the output but past its own fragment's end (fragments differ in length);
densify follows the layer with a validity ``Mask`` that zeroes such positions.

Worked example (1-D, s 2, k 2, w = [1, 10], p 0, E 2): fragments x_0 = [1, 2], x_1 = [5] interleave
as ``x_d = [1, 5, 0, 0, 2]`` (``E_in`` 4); deconv2d gives y_0 = [1, 10, 2, 20], y_1 = [5, 50], and
``edeconv2d(x_d)`` is ``[1, 5, 10, 50, 2, 0, 20]`` (position 5 is past fragment 1's end).

Backward: ``dx_d[P + E*(p - d*t)] += w[t] * dy[P]`` over the same (tap, position) pairs, ``dw[t] =
sum_P x_d[P + E*(p - d*t)] * dy[P]`` over them, ``db = sum dy``.
"""

from __future__ import annotations

import numpy as np

from .checks import check_operands, group_slices, like, spatial_args
from .deconv import deconv_geometry
from .sizes import edeconv_out_size, pair

__all__ = ["edeconv2d", "edeconv2d_backward", "edeconv_geometry"]


def edeconv_geometry(what, x_shape, w_shape, stride, pad, est, group, grid):
    """Validated ``(stride, pad, est, group, grid, (out_h, out_w), c_out)``."""
    stride, pad, est = spatial_args(what, stride, pad, est)
    grid = pair(grid, f"{what}: grid", 1)
    # the weight layout and group rules are deconv2d's (checked on a one-pixel input)
    _, _, _, group, _, c_out = deconv_geometry(what, tuple(x_shape[:2]) + (1, 1), w_shape, stride, 0,
                                               est, group)
    out = tuple(edeconv_out_size(x_shape[2 + a], w_shape[2 + a], stride[a], pad[a], est[a], grid[a],
                                 f"{what} ({'height' if a == 0 else 'width'})") for a in (0, 1))
    return stride, pad, est, group, grid, out, c_out


def _taps(n_out, n_in, k, s, p, d, e):
    """For each tap ``t``: (output positions P, input positions) of the pairs the formula uses."""
    out = []
    positions = np.arange(n_out)
    for t in range(k):
        src = positions + e * (p - d * t)
        use = ((positions // e + p - d * t) % s == 0) & (src >= 0) & (src < n_in)
        out.append((positions[use], src[use]))
    return out


def _plan(x_shape, w_shape, stride, pad, est, grid, out_hw):
    rows = _taps(out_hw[0], x_shape[2], w_shape[2], stride[0], pad[0], est[0], grid[0])
    cols = _taps(out_hw[1], x_shape[3], w_shape[3], stride[1], pad[1], est[1], grid[1])
    return rows, cols


def edeconv2d(x, w, b=None, stride=1, pad=0, est=1, group=1, grid=1):
    """Equivalent deconvolution forward (module docstring); ``stride``/``pad``/``est`` are the original
    Deconvolution's, ``grid`` the equivalent stride ``E`` of the output."""
    what = "edeconv2d"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, grid, out_hw, c_out = edeconv_geometry(what, x.shape, w.shape, stride,
                                                                    pad, est, group, grid)
    y = np.zeros((x.shape[0], c_out) + out_hw, dtype=x.dtype)
    rows, cols = _plan(x.shape, w.shape, stride, pad, est, grid, out_hw)
    for cin, cout in group_slices(group, x.shape[1], c_out):
        for i, (yr, xr) in enumerate(rows):
            for j, (yc, xc) in enumerate(cols):
                if len(yr) and len(yc):
                    y[:, cout, yr[:, None], yc] += np.einsum(
                        "ncyx,co->noyx", x[:, cin, xr[:, None], xc], w[cin, :, i, j], optimize=True)
    if b is not None:
        y += like(b, x.dtype, what, "b", (c_out,))[:, None, None]
    return y


def edeconv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, grid=1, bias=True):
    """Equivalent deconvolution backward: ``(dx, dw, db)``; ``db`` is None when ``bias`` is False."""
    what = "edeconv2d_backward"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, grid, out_hw, c_out = edeconv_geometry(what, x.shape, w.shape, stride,
                                                                    pad, est, group, grid)
    dy = like(dy, x.dtype, what, "dy", (x.shape[0], c_out) + out_hw)
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    rows, cols = _plan(x.shape, w.shape, stride, pad, est, grid, out_hw)
    for cin, cout in group_slices(group, x.shape[1], c_out):
        for i, (yr, xr) in enumerate(rows):
            for j, (yc, xc) in enumerate(cols):
                if len(yr) and len(yc):
                    g = dy[:, cout, yr[:, None], yc]
                    # within one tap every input position is read once, so += is exact
                    dx[:, cin, xr[:, None], xc] += np.einsum("noyx,co->ncyx", g, w[cin, :, i, j],
                                                             optimize=True)
                    dw[cin, :, i, j] = np.einsum("ncyx,noyx->co", x[:, cin, xr[:, None], xc], g,
                                                 optimize=True)
    db = dy.sum(axis=(0, 2, 3)) if bias else None
    return dx, dw, db
