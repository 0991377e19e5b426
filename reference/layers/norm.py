"""BatchNorm (Caffe's: no affine part, three blobs) and Scale (``batch_norm_layer.cpp``, ``scale_layer.cpp``).

BatchNorm blobs: [0] running sum of means (C,), [1] running sum of variances (C,), [2] scale factor (1,).
- Global statistics (``use_global_stats``; default true in TEST, false in TRAIN):
  ``f = 0 if blob2 == 0 else 1 / blob2``, ``mean = f * blob0``, ``var = f * blob1``,
  ``y = (x - mean) / sqrt(var + eps)``, ``dx = dy / sqrt(var + eps)``.
  Example: blob0 = [4], blob1 = [8], blob2 = [2], eps 0: mean 2, var 4, x = 6 -> y = 2.
- Batch statistics (TRAIN): mean and biased variance over N and the spatial axes; the forward also
  updates ``blob2 = maf * blob2 + 1``, ``blob0 = mean + maf * blob0``,
  ``blob1 = m / (m - 1) * var + maf * blob1`` (m = values per channel, maf = moving_average_fraction);
  ``dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps)``.
The blobs are statistics, not learned: their lr_mult is forced to 0 and their diffs stay 0.

Scale: ``y = x * s (+ b)`` with ``s`` of shape ``bottom.shape[axis:axis+num_axes]`` broadcast over the
rest (default axis 1, num_axes 1: per channel); with two bottoms ``s`` is the second bottom.  Default
scale filler constant 1, bias filler constant 0.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class BatchNorm(Layer):
    type = "BatchNorm"

    def configure(self):
        p = self.param("batch_norm_param")
        self.use_global = p.bool("use_global_stats", self.phase == "TEST")
        self.maf = p.float("moving_average_fraction", 0.999)
        self.eps = p.float("eps", 1e-5)
        self.param_specs = [{"lr_mult": 0.0, "decay_mult": 0.0} for _ in range(3)]

    def reshape(self, shapes):
        s = shapes[0]
        c = s[1] if len(s) > 1 else 1
        if not self.blobs:
            for shape in ((c,), (c,), (1,)):
                self.make_blob(shape, None)
        self.check_blob_shape(0, (c,))
        return [s]

    def _view(self, x):
        """x as (N, C, rest) and the axes to reduce over."""
        c = x.shape[1] if x.ndim > 1 else 1
        return x.reshape(x.shape[0], c, -1)

    def run_forward(self, bottoms):
        x = self._view(bottoms[0])
        if self.use_global:
            f = 0.0 if self.blobs[2][0] == 0 else 1.0 / self.blobs[2][0]
            mean, var = f * self.blobs[0], f * self.blobs[1]
        else:
            mean = x.mean(axis=(0, 2))
            var = ((x - mean[None, :, None]) ** 2).mean(axis=(0, 2))
            m = x.size / x.shape[1]
            self.blobs[2] *= self.maf
            self.blobs[2] += 1
            self.blobs[0][...] = mean + self.maf * self.blobs[0]
            self.blobs[1][...] = (m / (m - 1) if m > 1 else 1.0) * var + self.maf * self.blobs[1]
        self.inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        y = (x - mean[None, :, None].astype(x.dtype)) * self.inv_std[None, :, None]
        return [y.reshape(bottoms[0].shape).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        dy = self._view(top_diffs[0])
        inv = self.inv_std[None, :, None]
        if self.use_global:
            dx = dy * inv
        else:
            y = self._view(tops[0])
            dx = (dy - dy.mean(axis=(0, 2), keepdims=True)
                  - (dy * y).mean(axis=(0, 2), keepdims=True) * y) * inv
        return [dx.reshape(bottoms[0].shape).astype(dy.dtype)]


@register
class Scale(Layer):
    type = "Scale"
    n_bottom = (1, 2)

    def configure(self):
        p = self.param("scale_param")
        self.axis, self.num_axes = p.int("axis", 1), p.int("num_axes", 1)
        self.bias_term = p.bool("bias_term", False)
        self.filler = p.sub("filler") or {"type": "constant", "value": 1.0}
        self.bias_filler = p.sub("bias_filler")

    def _span(self, shape):
        a = self.axis + len(shape) if self.axis < 0 else self.axis
        end = len(shape) if self.num_axes == -1 else a + self.num_axes
        if not 0 <= a <= len(shape) or self.num_axes < -1 or end > len(shape):
            raise self.error(f"axis {self.axis} / num_axes {self.num_axes} out of range for {shape}")
        return a, end

    def reshape(self, shapes):
        s = shapes[0]
        if len(shapes) == 2:
            a = self._span(s)[0]
            end = a + len(shapes[1])
            if tuple(s[a:end]) != tuple(shapes[1]):
                raise self.error(f"scale bottom {shapes[1]} must match input axes {a}.. of {s}")
            pshape = tuple(shapes[1])
        else:
            a, end = self._span(s)
            pshape = tuple(s[a:end])
        if not self.blobs:
            if len(shapes) == 1:
                self.make_blob(pshape, self.filler)
            if self.bias_term:
                self.make_blob(pshape, self.bias_filler)
        return [s]

    def _bcast(self, v, x):
        a = self._span(x.shape)[0]
        return v.reshape((1,) * a + v.shape + (1,) * (x.ndim - a - v.ndim))

    def _scale(self, bottoms):
        return bottoms[1] if len(bottoms) == 2 else self.blobs[0]

    def run_forward(self, bottoms):
        x = bottoms[0]
        y = x * self._bcast(self._scale(bottoms), x)
        if self.bias_term:
            y = y + self._bcast(self.blobs[-1], x)
        return [y.astype(x.dtype)]

    def _reduce(self, g, x, like):
        a = self._span(x.shape)[0]
        axes = tuple(range(a)) + tuple(range(a + like.ndim, x.ndim))
        return g.sum(axis=axes).reshape(like.shape)

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        s = self._scale(bottoms)
        ds = self._reduce(dy * x, x, s)
        if self.bias_term:
            self.diffs[-1] += self._reduce(dy, x, self.blobs[-1])
        dx = dy * self._bcast(s, x)
        if len(bottoms) == 2:
            return [dx, ds]
        self.diffs[0] += ds
        return [dx]
