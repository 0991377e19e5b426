"""LRN, local response normalisation (Caffe ``lrn_layer.cpp``); ``local_size`` n must be odd.

- ACROSS_CHANNELS: ``scale[c] = k + (alpha / n) * sum_{|c' - c| <= (n-1)/2} x[c']^2`` (channels outside
  [0, C) count 0), ``y = x * scale^-beta``;
  ``dx = dy * scale^-beta - (2 alpha beta / n) * x * sum_{|c' - c| <= (n-1)/2} (dy * y / scale)[c']``.
- WITHIN_CHANNEL: Caffe builds it from square -> AVE pooling (n x n, stride 1, pad (n-1)/2) -> power
  (econv extension ``est``: the pooling taps est apart, pad (n-1)/2 * est, for dense nets):
  ``s = 1 + alpha * avepool(x^2)`` (divisor always n^2; ``k`` is ignored), ``y = x * s^-beta``; the
  backward is the chain rule through the same pooling.

Example (ACROSS, n 1, alpha 1, beta 1, k 1): x = 2 -> scale = 1 + 4 = 5, y = 0.4.
"""

from __future__ import annotations

import numpy as np

from ..pool import pool2d, pool2d_backward
from .base import Layer, register


def channel_window_sum(a: np.ndarray, n: int) -> np.ndarray:
    """``out[:, c] = sum of a[:, c'] for |c' - c| <= (n-1)/2`` (zero outside the channel range)."""
    half = (n - 1) // 2
    padded = np.pad(a, [(0, 0), (half, half)] + [(0, 0)] * (a.ndim - 2))
    csum = np.cumsum(padded, axis=1, dtype=np.float64)
    csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
    return (csum[:, n:] - csum[:, :-n]).astype(a.dtype)


@register
class LRN(Layer):
    type = "LRN"

    def configure(self):
        p = self.param("lrn_param")
        self.size = p.int("local_size", 5, minimum=1)
        if self.size % 2 == 0:
            raise p.error(f"local_size must be odd, got {self.size}")
        self.alpha = p.float("alpha", 1.0)
        self.beta = p.float("beta", 0.75)
        self.k = p.float("k", 1.0)
        self.region = p.enum("norm_region", "ACROSS_CHANNELS")
        # econv extension for dense nets: WITHIN_CHANNEL windows with taps est apart (pad scales too)
        self.est = p.conv_spatial("est", 1, 1)
        if self.est != (1, 1) and self.region != "WITHIN_CHANNEL":
            raise p.error("est: only WITHIN_CHANNEL windows are spatial")

    def _pool_args(self):
        n = self.size
        return dict(kernel=n, stride=1, pad=tuple((n - 1) // 2 * e for e in self.est), est=self.est,
                    mode="ave")

    def reshape(self, shapes):
        if len(shapes[0]) != 4:
            raise self.error(f"input must be 4-D (N, C, H, W), got shape {shapes[0]}")
        return [shapes[0]]

    def _scale(self, x):
        n = self.size
        if self.region == "ACROSS_CHANNELS":
            return self.k + (self.alpha / n) * channel_window_sum(x * x, n)
        return 1.0 + self.alpha * pool2d(x * x, **self._pool_args())

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [(x * self._scale(x) ** -self.beta).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, y, dy = bottoms[0], tops[0], top_diffs[0]
        n = self.size
        scale = self._scale(x)
        if self.region == "ACROSS_CHANNELS":
            ratio = channel_window_sum(dy * y / scale, n)
            dx = dy * scale ** -self.beta - (2 * self.alpha * self.beta / n) * x * ratio
        else:
            d_scale = dy * x * (-self.beta) * scale ** (-self.beta - 1)
            d_sq = self.alpha * pool2d_backward(d_scale, x * x, **self._pool_args())
            dx = dy * scale ** -self.beta + 2 * x * d_sq
        return [dx.astype(x.dtype)]
