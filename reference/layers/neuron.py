"""Elementwise layers: ReLU, TanH, Sigmoid, Power, Dropout (Caffe semantics).

- ReLU: ``y = max(x, 0) + slope * min(x, 0)``; ``dx = dy`` where ``x > 0``, ``slope * dy`` elsewhere
  (so ``x = 0`` passes ``slope * dy``: 0 for a plain ReLU).  Example: slope 0.1, x = [-2, 0, 3] ->
  y = [-0.2, 0, 3].
- TanH: ``y = tanh(x)``, ``dx = dy * (1 - y^2)``.  Sigmoid: ``y = 1 / (1 + e^-x)``, ``dx = dy * y (1 - y)``.
- Power: ``y = (shift + scale * x) ** power``; ``dx = dy * power * scale * (shift + scale x) ** (power - 1)``;
  when ``power * scale == 0`` the output is constant (1 if power is 0, else shift ** power) and
  ``dx = 0``.  Example: power 2, scale 0.5, shift 0.25, x = 1.5 -> y = 1.
- Dropout: TRAIN: ``y = x * mask / (1 - ratio)`` with ``mask ~ Bernoulli(1 - ratio)`` (inverted dropout,
  the backward uses the same mask and scale); TEST: ``y = x``.  Two fork fields: Fast R-CNN's
  ``scale_train: false`` (github:rbgirshick/caffe-fast-rcnn @ 0dcd397, src/caffe/layers/
  dropout_layer.cpp lines 26-80) keeps TRAIN unscaled, ``y = x * mask``, and scales TEST instead,
  ``y = x * (1 - ratio)``; SegNet's ``sample_weights_test: true`` (github:alexgkendall/caffe-segnet
  @ 344c113, dropout_layer.cpp lines 34-68; Bayesian SegNet's Monte Carlo dropout) samples a mask in
  TEST as in TRAIN.  Example: ratio 0.5, scale_train false, TEST, x = [2, 4] -> [1, 2].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class ReLU(Layer):
    type = "ReLU"

    def configure(self):
        self.slope = self.param("relu_param").float("negative_slope", 0.0)

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.where(x > 0, x, x * x.dtype.type(self.slope))]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        return [np.where(x > 0, dy, dy * x.dtype.type(self.slope))]


@register
class TanH(Layer):
    type = "TanH"

    def run_forward(self, bottoms):
        return [np.tanh(bottoms[0])]

    def run_backward(self, top_diffs, bottoms, tops):
        y = tops[0]
        return [top_diffs[0] * (1 - y * y)]


@register
class Sigmoid(Layer):
    type = "Sigmoid"

    def run_forward(self, bottoms):
        x = bottoms[0]
        # 0.5 * (1 + tanh(x / 2)) is 1 / (1 + exp(-x)) without overflow for large |x|
        return [(0.5 * (1 + np.tanh(0.5 * x))).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        y = tops[0]
        return [top_diffs[0] * y * (1 - y)]


@register
class Power(Layer):
    type = "Power"

    def configure(self):
        p = self.param("power_param")
        self.power = p.float("power", 1.0)
        self.scale = p.float("scale", 1.0)
        self.shift = p.float("shift", 0.0)

    def run_forward(self, bottoms):
        x = bottoms[0]
        if self.power * self.scale == 0:
            value = 1.0 if self.power == 0 else self.shift ** self.power
            return [np.full_like(x, value)]
        base = self.shift + self.scale * x
        return [(base if self.power == 1 else base ** self.power).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        if self.power * self.scale == 0:
            return [np.zeros_like(x)]
        if self.power == 1:
            return [dy * x.dtype.type(self.scale)]
        base = self.shift + self.scale * x
        return [(dy * self.power * self.scale * base ** (self.power - 1)).astype(x.dtype)]


@register
class Dropout(Layer):
    type = "Dropout"

    def configure(self):
        p = self.param("dropout_param")
        self.ratio = p.float("dropout_ratio", 0.5)
        if not 0.0 <= self.ratio < 1.0:
            raise self.error(f"dropout_ratio must be in [0, 1), got {self.ratio}")
        self.scale_train = p.bool("scale_train", True)
        self.sample = self.phase == "TRAIN" or p.bool("sample_weights_test", False)
        self.mask = None

    def run_forward(self, bottoms):
        x = bottoms[0]
        if not self.sample:
            self.mask = None if self.scale_train else np.asarray(1.0 - self.ratio, x.dtype)
            return [x.copy() if self.mask is None else x * self.mask]
        keep = self.rng.random(x.shape) >= self.ratio
        scale = 1.0 / (1.0 - self.ratio) if self.scale_train else 1.0
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        return [x * self.mask]

    def run_backward(self, top_diffs, bottoms, tops):
        dy = top_diffs[0]
        return [dy.copy() if self.mask is None else dy * self.mask]
