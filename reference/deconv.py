"""Equivalent deconvolution (Caffe's Deconvolution with an equivalent stride), forward and backward.

Caffe's deconvolution is the transpose of its convolution.  Notation: input ``x`` (N, C, H, W),
weights ``w`` (C, O/G, kh, kw) -- axis 0 is the *input* channel --, bias ``b`` (O,), stride ``s``,
pad ``p``, equivalent stride ``est``.  Every input value spreads over a window of the full output::

    full[n, g*O/G + o, s*r + i*est, s*c + j*est] += w[k, o, i, j] * x[n, k, r, c]   (k in group g)
    y = full[..., p : -p, p : -p] + b

Output size ``s*(H - 1) + ext - 2p`` with ``ext = est*(k-1) + 1`` (:mod:`reference.sizes`).

Worked example (1 channel, s 2, k 2, est 1, p 0)::

    x = [[1, 2]],  w = [[1, 10]] (kh 1)  ->  y = [[1, 10, 2, 20]]

Backward: ``dx`` and ``dw`` gather from the zero-padded ``dy`` through the same window index
(a convolution of ``dy``), ``db[o] = sum dy[n, o, r, c]``.
"""

from __future__ import annotations

import numpy as np

from .checks import check_group, check_operands, group_slices, like, spatial_args
from .sizes import deconv_out_size
from .windows import pad as pad_hw, scatter_taps, window_view

__all__ = ["deconv2d", "deconv2d_backward", "deconv_geometry"]


def deconv_geometry(what, x_shape, w_shape, stride, pad, est, group):
    """Validated ``(stride, pad, est, group, (out_h, out_w), c_out)`` for a deconvolution."""
    stride, pad, est = spatial_args(what, stride, pad, est)
    if len(w_shape) != 4:
        raise ValueError(f"{what}: w must have 4 axes (C, O/G, kh, kw), got shape {tuple(w_shape)}")
    n, c, h, w_ = x_shape
    c_w, o_per_group, kh, kw = w_shape
    if c_w != c:
        raise ValueError(f"{what}: weights {tuple(w_shape)} expect {c_w} input channels "
                         f"(axis 0), input has {c}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{what}: kernel must be at least 1x1, got {kh}x{kw}")
    group = check_group(what, group, c)
    out = (deconv_out_size(h, kh, stride[0], pad[0], est[0], what + " (height)"),
           deconv_out_size(w_, kw, stride[1], pad[1], est[1], what + " (width)"))
    return stride, pad, est, group, out, o_per_group * group


def deconv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """Deconvolution forward (see module docstring).  Returns ``y`` (N, O, out_h, out_w)."""
    what = "deconv2d"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, out_hw, c_out = deconv_geometry(what, x.shape, w.shape, stride, pad,
                                                             est, group)
    n, c = x.shape[:2]
    full = np.zeros((n, c_out, out_hw[0] + 2 * pad[0], out_hw[1] + 2 * pad[1]), dtype=x.dtype)
    for cin, cout in group_slices(group, c, c_out):
        scatter_taps(full[:, cout], x[:, cin], w[cin], stride, est)
    y = full[:, :, pad[0]: pad[0] + out_hw[0], pad[1]: pad[1] + out_hw[1]].copy()
    if b is not None:
        y += like(b, x.dtype, what, "b", (c_out,))[:, None, None]
    return y


def deconv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """Deconvolution backward: ``(dx, dw, db)``; ``db`` is None when ``bias`` is False."""
    what = "deconv2d_backward"
    x, w = check_operands(what, x, w)
    stride, pad, est, group, out_hw, c_out = deconv_geometry(what, x.shape, w.shape, stride, pad,
                                                             est, group)
    dy = like(dy, x.dtype, what, "dy", (x.shape[0], c_out) + out_hw)
    dfull = pad_hw(dy, pad)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    for cin, cout in group_slices(group, x.shape[1], c_out):
        win = window_view(dfull[:, cout], w.shape[2:], stride, est, x.shape[2:])
        dx[:, cin] = np.einsum("noyxij,coij->ncyx", win, w[cin], optimize=True)
        dw[cin] = np.einsum("ncyx,noyxij->coij", x[:, cin], win, optimize=True)
    db = dy.sum(axis=(0, 2, 3)) if bias else None
    return dx, dw, db
