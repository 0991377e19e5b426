"""SPP (spatial pyramid pooling) and Im2col (Caffe ``spp_layer.cpp`` 17-223, ``im2col_layer.cpp`` 9-184).

SPP: for level ``l = 0 .. pyramid_height - 1`` with ``bins = 2^l``, a Pooling of the whole
(N, C, H, W) input with ``kernel = ceil(H / bins)``, ``pad = (kernel * bins - H + 1) // 2`` and
``stride = kernel`` (per axis; Caffe's clip rule then gives ``bins`` outputs, and a pad that reaches
the kernel size is Caffe's pooling error), flattened to (N, C * bins^2) and concatenated along
axis 1.  ``pyramid_height`` 1 is the one Pooling, top (N, C, 1, 1) (Caffe skips the flatten and
concat).  Example (Caffe's TestSetup): input (2, 3, 9, 8), height 3 -> 3 * (1 + 4 + 16) = 63 values
per item.  ``pool`` MAX, AVE or STOCHASTIC (:mod:`.pooling_modes`; only for sizes whose levels
need no padding, which Caffe's stochastic pooling refuses).

Im2col: the columns a convolution reads,
``y[n, (c * kh + i) * kw + j, r, q] = xp[n, c, s_h r + i d_h, s_w q + j d_w]`` (``xp`` zero-padded,
``d`` = dilation), output ``floor((H + 2p - ext) / s) + 1``.  Backward (col2im): every column value
adds back to the input position it came from.  Only 2 spatial axes (4-D input, channel axis 1) are
supported.  Example: x (1, 1, 2, 2) = [[1, 2], [3, 4]], kernel 2 -> y[0, :, 0, 0] = [1, 2, 3, 4].
"""

from __future__ import annotations

import math

import numpy as np

from ..pool import pool_geometry
from ..sizes import conv_out_size
from ..windows import pad as pad_hw, tap, window_view
from . import pooling_modes
from .base import Layer, register


def spp_level(h: int, w: int, level: int):
    """``(kernel, stride, pad)`` pairs of SPP level ``level`` for an ``h x w`` input."""
    bins = 2 ** level
    kernel = tuple(math.ceil(n / bins) for n in (h, w))
    pad = tuple((k * bins - n + 1) // 2 for k, n in zip(kernel, (h, w)))
    return kernel, kernel, pad


@register
class SPP(Layer):
    type = "SPP"

    def configure(self):
        p = self.param("spp_param")
        self.height = p.int("pyramid_height", minimum=1)
        self.mode = p.enum("pool", "MAX").lower()
        self.choices = {}     # STOCHASTIC in TRAIN: the sampled taps of each level

    def _levels(self, shape):
        """``(kernel, stride, pad, PoolGeometry)`` of every level for an input ``shape``."""
        if len(shape) != 4:
            raise self.error(f"input must be 4-D (N, C, H, W), got shape {shape}")
        if min(shape[2:]) < 1:
            raise self.error(f"input height and width must be > 0, got {shape}")
        out = []
        for i in range(self.height):
            kernel, stride, pad = spp_level(shape[2], shape[3], i)
            if self.mode == "stochastic" and any(pad):
                raise self.error(f"level {i} needs pad {pad} for a {shape[2]}x{shape[3]} input; Caffe's "
                                 f"STOCHASTIC pooling takes no padding")
            geo = pool_geometry(f"layer {self.name!r} (SPP) level {i}", shape, kernel, stride, pad, 1,
                                "max" if self.mode == "stochastic" else self.mode, "ceil", 0)
            out.append((kernel, stride, pad, geo))
        return out

    def _pool(self, x, i, level):
        kernel, stride, pad, geo = level
        if self.mode != "stochastic":
            return self.ops.pool2d(x, kernel, stride, pad, 1, self.mode, "ceil", 0)
        if self.phase != "TRAIN":
            return pooling_modes.stochastic_test(x, geo)
        y, self.choices[i] = pooling_modes.stochastic_train(x, geo, self.rng)
        return y

    def _pool_backward(self, dy, x, i, level):
        kernel, stride, pad, geo = level
        if self.mode != "stochastic":
            return self.ops.pool2d_backward(dy, x, kernel, stride, pad, 1, self.mode, "ceil", 0)
        if self.phase != "TRAIN":
            return pooling_modes.stochastic_test_backward(dy, x, geo)
        return pooling_modes.stochastic_train_backward(dy, x, geo, self.choices[i])

    def reshape(self, shapes):
        s = shapes[0]
        outs = [level[3].out_hw for level in self._levels(s)]
        if self.height == 1:
            return [s[:2] + outs[0]]
        return [(s[0], s[1] * sum(h * w for h, w in outs))]

    def run_forward(self, bottoms):
        x = bottoms[0]
        pooled = [self._pool(x, i, level) for i, level in enumerate(self._levels(x.shape))]
        if self.height == 1:
            return [pooled[0]]
        return [np.concatenate([p.reshape(x.shape[0], -1) for p in pooled], axis=1)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        levels = self._levels(x.shape)
        if self.height == 1:
            return [self._pool_backward(dy, x, 0, levels[0])]
        dx, start = np.zeros_like(x), 0
        for i, level in enumerate(levels):
            shape = x.shape[:2] + level[3].out_hw
            size = shape[1] * shape[2] * shape[3]
            dx += self._pool_backward(dy[:, start: start + size].reshape(shape), x, i, level)
            start += size
        return [dx]


@register
class Im2col(Layer):
    type = "Im2col"

    def configure(self):
        p = self.param("convolution_param")
        self.kernel = p.conv_spatial("kernel_size", None, 1, hw="kernel")
        self.stride = p.conv_spatial("stride", 1, 1)
        self.pad = p.conv_spatial("pad", 0, 0)
        self.dilation = p.conv_spatial("dilation", 1, 1)
        self.axis = p.int("axis", 1)

    def _geometry(self, shape):
        if len(shape) != 4 or self.axis not in (1, -3):
            raise self.error(f"only 2 spatial axes are supported: a 4-D input with channel axis 1, "
                             f"got shape {shape} and axis {self.axis}")
        return tuple(conv_out_size(shape[2 + a], self.kernel[a], self.stride[a], self.pad[a],
                                   self.dilation[a], f"layer {self.name!r} (Im2col)")
                     for a in (0, 1))

    def reshape(self, shapes):
        s = shapes[0]
        out = self._geometry(s)
        return [(s[0], s[1] * self.kernel[0] * self.kernel[1]) + out]

    def run_forward(self, bottoms):
        x = bottoms[0]
        out = self._geometry(x.shape)
        win = window_view(pad_hw(x, self.pad), self.kernel, self.stride, self.dilation, out)
        # win[n, c, r, q, i, j] -> y[n, (c*kh + i)*kw + j, r, q]
        cols = np.moveaxis(win, (4, 5), (2, 3))
        return [np.ascontiguousarray(cols).reshape(self.reshape([x.shape])[0])]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        out = self._geometry(x.shape)
        (kh, kw), (ph, pw) = self.kernel, self.pad
        dy6 = dy.reshape((x.shape[0], x.shape[1], kh, kw) + out)
        # the floor rule keeps every window inside the padded input: no end padding needed
        dxp = np.zeros(x.shape[:2] + (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                tap(dxp, i, j, self.stride, self.dilation, out)[...] += dy6[:, :, i, j]
        return [dxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]].copy()]
