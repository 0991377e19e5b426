"""The other elementwise neurons of BVLC Caffe: PReLU, ELU, AbsVal, BNLL, Exp, Log, Threshold, Clip, Swish.

Formulas (``x`` bottom, ``y`` top, ``dy`` top diff), each from the Caffe CPU code cited:

- PReLU (``prelu_layer.cpp`` 12-141): ``y = max(x, 0) + a_c min(x, 0)`` with one slope ``a_c`` per
  channel (axis 1; blob shape (C,)) or one shared slope (``channel_shared``; a 0-axis blob), default
  filler constant 0.25.  ``dx = dy ((x > 0) + a_c (x <= 0))``, ``da_c += sum dy x (x <= 0)``.
  Example: a = 0.25, x = [-2, 3] -> y = [-0.5, 3].
- ELU (``elu_layer.cpp`` 9-35): ``y = max(x, 0) + alpha (exp(min(x, 0)) - 1)``;
  ``dx = dy ((x > 0) + (alpha + y)(x <= 0))``.  Example: alpha 1, x = -ln 2 -> y = -0.5.
- AbsVal (``absval_layer.cpp`` 17-36): ``y = |x|``, ``dx = sign(x) dy`` (sign(0) = 0).
- BNLL (``bnll_layer.cpp`` 11-38): ``y = x + log(1 + e^-x)`` for x > 0, else ``log(1 + e^x)``;
  ``dx = dy e / (e + 1)`` with ``e = exp(min(x, 50))``.  Example: x = 0 -> y = ln 2, dx = dy / 2.
- Exp (``exp_layer.cpp`` 11-56): ``y = outer exp(inner x)``, ``inner = ln(base) scale`` (base -1 = e:
  ``ln(base)`` is exactly 1), ``outer = base^shift``; ``dx = dy y inner``.  Example: base 2, x = 3 -> 8.
- Log (``log_layer.cpp`` 11-80): ``y = log(shift + scale x) / ln(base)`` (base -1 = e);
  ``dx = dy (scale / ln(base)) / (shift + scale x)``.  Example: base 2, x = 8 -> 3.
- Threshold (``threshold_layer.cpp`` 10-23): ``y = 1 if x > threshold else 0``; no backward
  (``threshold_layer.hpp`` line 56: NOT_IMPLEMENTED).
- Clip (``clip_layer.cpp`` 9-40): ``y = max(min, min(x, max))``; ``dx = dy`` where
  ``min <= x <= max`` (both ends included), else 0.  ``min`` and ``max`` are required.
- Swish (``swish_layer.cpp`` 29-57): ``y = x sigmoid(beta x)``;
  ``dx = dy (beta y + s (1 - beta y))`` with ``s = sigmoid(beta x)``.  Example: beta 1, x = 0 -> 0.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Layer, register


def _sigmoid(x):
    return (0.5 * (1 + np.tanh(0.5 * x))).astype(x.dtype)


@register
class PReLU(Layer):
    type = "PReLU"

    def configure(self):
        p = self.param("prelu_param")
        self.channel_shared = p.bool("channel_shared", False)
        self.filler = p.sub("filler") or {"type": "constant", "value": 0.25}

    def reshape(self, shapes):
        s = shapes[0]
        if len(s) < 2:
            raise self.error(f"input needs at least 2 axes (N, C, ...), got shape {s}")
        shape = () if self.channel_shared else (s[1],)
        if not self.blobs:
            self.make_blob(shape, self.filler)
        if self.blobs[0].size != (1 if self.channel_shared else s[1]):
            raise self.error(f"slope blob has {self.blobs[0].size} values; the input {s} needs "
                             f"{1 if self.channel_shared else s[1]}")
        return [s]

    def _slope(self, x):
        a = self.blobs[0].astype(x.dtype)
        return a.reshape(()) if self.channel_shared else a.reshape((1, -1) + (1,) * (x.ndim - 2))

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.where(x > 0, x, 0) + self._slope(x) * np.minimum(x, 0)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        neg = x <= 0
        g = dy * x * neg
        if self.channel_shared:
            self.diffs[0] += g.sum()
        else:
            axes = (0,) + tuple(range(2, x.ndim))
            self.diffs[0] += g.sum(axis=axes)
        return [dy * ((x > 0) + self._slope(x) * neg)]


@register
class ELU(Layer):
    type = "ELU"

    def configure(self):
        self.alpha = self.param("elu_param").float("alpha", 1.0)

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.maximum(x, 0) + x.dtype.type(self.alpha) * (np.exp(np.minimum(x, 0)) - 1)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, y, dy = bottoms[0], tops[0], top_diffs[0]
        return [dy * ((x > 0) + (x.dtype.type(self.alpha) + y) * (x <= 0))]


@register
class AbsVal(Layer):
    type = "AbsVal"

    def run_forward(self, bottoms):
        return [np.abs(bottoms[0])]

    def run_backward(self, top_diffs, bottoms, tops):
        return [np.sign(bottoms[0]) * top_diffs[0]]


BNLL_THRESHOLD = 50.0  # kBNLL_THRESHOLD, bnll_layer.cpp line 8


@register
class BNLL(Layer):
    type = "BNLL"

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(-np.abs(x))))
                .astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        e = np.exp(np.minimum(bottoms[0], BNLL_THRESHOLD))
        return [top_diffs[0] * e / (e + 1)]


def _log_base(layer, p):
    base = p.float("base", -1.0)
    if base != -1.0 and base <= 0:
        raise p.error(f"base must be strictly positive (or -1 for e), got {base}")
    return base, (1.0 if base == -1.0 else math.log(base))


@register
class Exp(Layer):
    type = "Exp"

    def configure(self):
        p = self.param("exp_param")
        base, log_base = _log_base(self, p)
        scale, shift = p.float("scale", 1.0), p.float("shift", 0.0)
        self.inner = log_base * scale
        self.outer = 1.0 if shift == 0 else (math.exp(shift) if base == -1.0 else base ** shift)

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [x.dtype.type(self.outer) * np.exp(x.dtype.type(self.inner) * x)]

    def run_backward(self, top_diffs, bottoms, tops):
        return [top_diffs[0] * tops[0] * tops[0].dtype.type(self.inner)]


@register
class Log(Layer):
    type = "Log"

    def configure(self):
        p = self.param("log_param")
        _, log_base = _log_base(self, p)
        if log_base == 0:
            raise p.error("base must not be 1 (log(1) = 0)")
        self.base_scale = 1.0 / log_base
        self.scale, self.shift = p.float("scale", 1.0), p.float("shift", 0.0)

    def _arg(self, x):
        return x.dtype.type(self.shift) + x.dtype.type(self.scale) * x

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.log(self._arg(x)) * x.dtype.type(self.base_scale)]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        return [top_diffs[0] * x.dtype.type(self.scale * self.base_scale) / self._arg(x)]


@register
class Threshold(Layer):
    type = "Threshold"
    has_backward = False

    def configure(self):
        self.threshold = self.param("threshold_param").float("threshold", 0.0)

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [(x > x.dtype.type(self.threshold)).astype(x.dtype)]


@register
class Clip(Layer):
    type = "Clip"

    def configure(self):
        p = self.param("clip_param")
        self.lo, self.hi = p.float("min"), p.float("max")

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.maximum(x.dtype.type(self.lo), np.minimum(x, x.dtype.type(self.hi)))]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        inside = (x >= x.dtype.type(self.lo)) & (x <= x.dtype.type(self.hi))
        return [top_diffs[0] * inside]


@register
class Swish(Layer):
    type = "Swish"

    def configure(self):
        self.beta = self.param("swish_param").float("beta", 1.0)

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [x * _sigmoid(x * x.dtype.type(self.beta))]

    def run_backward(self, top_diffs, bottoms, tops):
        x, y, dy = bottoms[0], tops[0], top_diffs[0]
        beta = x.dtype.type(self.beta)
        s = _sigmoid(x * beta)
        return [dy * (beta * y + s * (1 - beta * y))]
