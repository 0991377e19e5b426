"""MVN, mean-variance normalization (Caffe ``mvn_layer.cpp`` 9-124).

Caffe reads the input through the legacy 4-D accessors (num, channels, height, width; missing axes
are 1, more than 4 is an error) and its top is that 4-D shape.  Groups: one per (n, c)
(``across_channels`` false, the default) or one per n (true); ``m`` = values per group.

- ``normalize_variance`` (default true): ``y = (x - mean) / (sqrt(var) + eps)``, ``var`` the biased
  variance ``mean((x - mean)^2)``, ``eps`` default 1e-9 added to the *standard deviation*.
  Backward (Caffe's formula, exact when eps = 0):
  ``dx = (dy - mean(dy) - y * mean(dy * y)) / (sqrt(var) + eps)``.
- otherwise ``y = x - mean``, ``dx = dy - mean(dy)``.

Example: one group x = [1, 3], eps 0 -> mean 2, sqrt(var) 1, y = [-1, 1].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class MVN(Layer):
    type = "MVN"

    def configure(self):
        p = self.param("mvn_param")
        self.normalize_variance = p.bool("normalize_variance", True)
        self.across_channels = p.bool("across_channels", False)
        self.eps = p.float("eps", 1e-9)

    def _legacy_shape(self, s):
        if len(s) > 4:
            raise self.error(f"input must have at most 4 axes (Caffe's num/channels/height/width), "
                             f"got shape {s}")
        return tuple(s) + (1,) * (4 - len(s))

    def reshape(self, shapes):
        return [self._legacy_shape(shapes[0])]

    def _groups(self, a):
        s = self._legacy_shape(a.shape)
        return a.reshape((s[0], -1) if self.across_channels else (s[0] * s[1], -1)), s

    def _std_eps(self, x):
        centred = x - x.mean(axis=1, keepdims=True)
        return np.sqrt((centred * centred).mean(axis=1, keepdims=True)) + x.dtype.type(self.eps)

    def run_forward(self, bottoms):
        x, shape = self._groups(bottoms[0])
        centred = x - x.mean(axis=1, keepdims=True)
        if self.normalize_variance:
            centred = centred / self._std_eps(x)
        return [centred.reshape(shape).astype(bottoms[0].dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        dy, _ = self._groups(top_diffs[0])
        if not self.normalize_variance:
            return [(dy - dy.mean(axis=1, keepdims=True)).reshape(bottoms[0].shape)]
        y, _ = self._groups(tops[0])
        x, _ = self._groups(bottoms[0])
        dx = (dy - dy.mean(axis=1, keepdims=True) - y * (dy * y).mean(axis=1, keepdims=True)) / \
            self._std_eps(x)
        return [dx.reshape(bottoms[0].shape).astype(dy.dtype)]
