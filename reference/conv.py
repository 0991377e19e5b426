"""eConv: convolution with an equivalent stride (Eq. 3 of the paper), forward and backward.

Notation: input ``x`` (N, C, H, W), weights ``w`` (O, C/G, kh, kw), bias ``b`` (O,), stride ``s``,
zero padding ``p``, equivalent stride ``est`` (Caffe's dilation), ``G`` groups.  For output channel
``o`` in group ``g``::

    y[n, o, r, c] = b[o] + sum_{k, i, j} w[o, k, i, j] * xp[n, g*C/G + k, s*r + i*est, s*c + j*est]

where ``xp`` is ``x`` zero-padded by ``p``: Eq. 3 with ``z = xp`` and eST = est.  Output size
``floor((H + 2p - ext) / s) + 1`` with ``ext = est*(k-1) + 1`` (:mod:`reference.sizes`).

Worked example (est 2, no padding)::

    x = [[1, 2, 3],      w = [[1, 10],     ext = 3, one output:
         [4, 5, 6],           [100, 1000]]  y = 1*1 + 10*3 + 100*7 + 1000*9 = 9731
         [7, 8, 9]]

Backward (the transposes of the same index expression): ``dw[o, k, i, j] = sum dy[n, o, r, c] *
xp[n, g*C/G + k, s*r + i*est, s*c + j*est]``, ``db[o] = sum dy[n, o, r, c]``, and ``dx`` scatters
``w[o, k, i, j] * dy[n, o, r, c]`` back to the same positions, then drops the padding.
"""

from __future__ import annotations

import numpy as np

from .checks import check_group, check_operands, group_slices, like, spatial_args
from .sizes import conv_out_size
from .windows import pad as pad_hw, scatter_taps, window_view

__all__ = ["conv2d", "conv2d_backward", "conv_geometry"]


def conv_geometry(what, x_shape, w_shape, stride, pad, est, group):
    """Validated ``(stride, pad, est, group, (out_h, out_w))`` for a convolution."""
    stride, pad, est = spatial_args(what, stride, pad, est)
    if len(w_shape) != 4:
        raise ValueError(f"{what}: w must have 4 axes (O, C/G, kh, kw), got shape {tuple(w_shape)}")
    n, c, h, w_ = x_shape
    o, c_per_group, kh, kw = w_shape
    group = check_group(what, group, c, o)
    if c_per_group * group != c:
        raise ValueError(f"{what}: weights expect {c_per_group}*{group} = {c_per_group * group} input "
                         f"channels (weights {tuple(w_shape)}, group {group}), input has {c}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{what}: kernel must be at least 1x1, got {kh}x{kw}")
    out = (conv_out_size(h, kh, stride[0], pad[0], est[0], what + " (height)"),
           conv_out_size(w_, kw, stride[1], pad[1], est[1], what + " (width)"))
    return stride, pad, est, group, out




def conv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """eConv forward (see module docstring).  Returns ``y`` (N, O, out_h, out_w) in ``x``'s dtype."""
    what = "conv2d"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    xp = pad_hw(x, pad)
    y = np.empty((x.shape[0], w.shape[0]) + out_hw, dtype=x.dtype)
    for cin, cout in group_slices(group, x.shape[1], w.shape[0]):
        win = window_view(xp[:, cin], w.shape[2:], stride, est, out_hw)
        y[:, cout] = np.einsum("ncyxij,ocij->noyx", win, w[cout], optimize=True)
    if b is not None:
        y += like(b, x.dtype, what, "b", (w.shape[0],))[:, None, None]
    return y


def conv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """eConv backward: ``(dx, dw, db)``; ``db`` is None when ``bias`` is False."""
    what = "conv2d_backward"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    dy = like(dy, x.dtype, what, "dy", (x.shape[0], w.shape[0]) + out_hw)
    xp = pad_hw(x, pad)
    dxp = np.zeros_like(xp)
    dw = np.empty_like(w)
    for cin, cout in group_slices(group, x.shape[1], w.shape[0]):
        win = window_view(xp[:, cin], w.shape[2:], stride, est, out_hw)
        dw[cout] = np.einsum("noyx,ncyxij->ocij", dy[:, cout], win, optimize=True)
        scatter_taps(dxp[:, cin], dy[:, cout], w[cout], stride, est)
    dx = dxp[:, :, pad[0]: pad[0] + x.shape[2], pad[1]: pad[1] + x.shape[3]].copy()
    db = dy.sum(axis=(0, 2, 3)) if bias else None
    return dx, dw, db
