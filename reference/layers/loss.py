"""Regression losses: EuclideanLoss (Caffe) and L1Loss (econv, for the paper's age estimation).

- EuclideanLoss: ``loss = sum((a - b)^2) / (2 N)`` with N = ``a.shape[0]``;
  ``da = w * (a - b) / N``, ``db = -da`` (w = the top's loss weight).  Example: a = [[1, 2]],
  b = [[0, 0]] -> loss = 2.5.
- L1Loss: ``loss = sum|a - b| / N``; ``da = w * sign(a - b) / N`` (sign(0) = 0), ``db = -da``.
  Example: a = [[1, -2]], b = [[0, 0]] -> loss = 3.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


def read_normalization(layer, default: str, allow_normalize: bool = True) -> str:
    """The NormalizationMode of ``loss_param`` with Caffe's precedence (``normalization``, else the legacy
    ``normalize``: true VALID, false BATCH_SIZE; else the layer's own ``default``)."""
    lp = layer.param("loss_param")
    if lp.has("normalization"):
        return lp.enum("normalization", default)
    if lp.has("normalize"):
        if not allow_normalize:
            raise lp.error("normalize is deprecated for this layer; use normalization")
        return "VALID" if lp.bool("normalize") else "BATCH_SIZE"
    return default


def normalizer(mode: str, outer: int, inner: int, valid: int) -> float:
    """Caffe's ``LossLayer::GetNormalizer``: FULL ``outer * inner``, VALID the non-ignored count,
    BATCH_SIZE ``outer``, NONE 1; at least 1."""
    n = {"FULL": outer * inner, "VALID": valid, "BATCH_SIZE": outer, "NONE": 1}[mode]
    return max(1.0, float(n))


def ignore_label(layer):
    """``loss_param.ignore_label``, or None when the file gives none."""
    lp = layer.param("loss_param")
    return lp.int("ignore_label") if lp.has("ignore_label") else None


class _PairLoss(Layer):
    n_bottom = (2, 2)
    is_loss = True

    def reshape(self, shapes):
        a, b = shapes
        if int(np.prod(a)) != int(np.prod(b)) or (len(a) and len(b) and a[0] != b[0]):
            raise self.error(f"both inputs need the same count and batch size, got {a} and {b}")
        return [()]

    def _diff(self, bottoms):
        a, b = bottoms
        return a - b.reshape(a.shape), max(1, a.shape[0] if a.ndim else 1)

    def _grad(self, g, top_diffs, n, dtype):
        da = (g * (np.asarray(top_diffs[0]).reshape(()) / n)).astype(dtype)
        return [da, -da]


@register
class EuclideanLoss(_PairLoss):
    type = "EuclideanLoss"

    def run_forward(self, bottoms):
        d, n = self._diff(bottoms)
        return [np.asarray(np.sum(d * d) / (2 * n), dtype=d.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        d, n = self._diff(bottoms)
        da, db = self._grad(d, top_diffs, n, d.dtype)
        return [da, db.reshape(bottoms[1].shape)]


@register
class L1Loss(_PairLoss):
    type = "L1Loss"

    def run_forward(self, bottoms):
        d, n = self._diff(bottoms)
        return [np.asarray(np.sum(np.abs(d)) / n, dtype=d.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        d, n = self._diff(bottoms)
        da, db = self._grad(np.sign(d), top_diffs, n, d.dtype)
        return [da, db.reshape(bottoms[1].shape)]
