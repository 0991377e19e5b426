"""Margin losses: HingeLoss and ContrastiveLoss (Caffe ``hinge_loss_layer.cpp`` 10-73,
``contrastive_loss_layer.cpp`` 10-111).  ``w`` is the top's loss weight.

HingeLoss: scores (N, dim), one label per item; ``m_ij = max(0, 1 + s_ij x_ij)`` with ``s = -1`` at the
label, +1 elsewhere.  ``norm`` L1 (default): ``loss = sum m / N``, ``dx = w s sign(m) / N``;
L2: ``loss = sum m^2 / N``, ``dx = 2 w s m / N``.  Example: x = [[0.5, -2]], label 0 ->
m = [0.5, 0], L1 loss 0.5, L2 loss 0.25.

ContrastiveLoss: bottoms a, b (N, C[, 1, 1]) and a similarity y (N[, 1, 1, 1]);
``d^2 = |a - b|^2`` per item; ``loss = sum_i l_i / (2N)`` with ``l = d^2`` for a similar pair
(``int(y) != 0``), else ``max(margin - d, 0)^2`` (``legacy_version``: ``max(margin - d^2, 0)``),
margin default 1.  Backward, similar: ``da = w (a - b) / N``; dissimilar when the hinge is active:
``da = -w mdist / (d + 1e-4) (a - b) / N`` with ``mdist = margin - d`` (Caffe's 1e-4 guards d = 0,
so the gradient is the derivative up to a relative 1e-4 / d), legacy ``da = -w (a - b) / N``;
``db = -da``; 0 when the hinge is inactive.  Example: a = [[3, 4]], b = 0, y = 1 -> loss 12.5.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register
from .probability_loss import _check_batch, _label_column, _weight

HINGE_NORMS = {"L1": 1, "L2": 2}  # caffe.proto HingeLossParameter.Norm


@register
class HingeLoss(Layer):
    type = "HingeLoss"
    n_bottom = (2, 2)
    is_loss = True
    label_bottoms = (1,)

    def configure(self):
        self.norm = self.param("hinge_loss_param").enum("norm", "L1", HINGE_NORMS)

    def reshape(self, shapes):
        _check_batch(self, shapes)
        return [()]

    def _margins(self, bottoms):
        x, label = bottoms
        rows = x.reshape(x.shape[0], -1)
        lab = _label_column(self, label.reshape(label.shape[0], -1)[:, 0], x.shape[0], rows.shape[1])
        sign = np.ones_like(rows)
        sign[np.arange(len(lab)), lab] = -1
        return rows, sign, np.maximum(0, 1 + sign * rows)

    def run_forward(self, bottoms):
        rows, _, m = self._margins(bottoms)
        total = np.sum(m) if self.norm == "L1" else np.sum(m * m)
        return [np.asarray(total / rows.shape[0], dtype=rows.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        rows, sign, m = self._margins(bottoms)
        w = _weight(top_diffs, rows.dtype)
        local = np.sign(m) if self.norm == "L1" else 2 * m
        return [(sign * local * (w / rows.shape[0])).reshape(bottoms[0].shape).astype(rows.dtype), None]


@register
class ContrastiveLoss(Layer):
    type = "ContrastiveLoss"
    n_bottom = (3, 3)
    is_loss = True
    label_bottoms = (2,)

    def configure(self):
        p = self.param("contrastive_loss_param")
        self.margin = p.float("margin", 1.0)
        self.legacy = p.bool("legacy_version", False)

    def reshape(self, shapes):
        a, b, y = shapes
        _check_batch(self, (a, b))
        for name, s in (("a", a), ("b", b)):
            if len(s) < 2 or any(d != 1 for d in s[2:]):
                raise self.error(f"bottom {name} must be (N, C) or (N, C, 1, 1), got {s}")
        if a[1] != b[1] or int(np.prod(y)) != a[0]:
            raise self.error(f"a {a} and b {b} need the same channels and y {y} one value per item")
        return [()]

    def _parts(self, bottoms):
        a, b, y = bottoms
        diff = (a - b).reshape(a.shape[0], -1)
        dist_sq = (diff * diff).sum(axis=1)
        similar = np.trunc(np.asarray(y, dtype=np.float64)).reshape(-1) != 0
        return diff, dist_sq, similar

    def run_forward(self, bottoms):
        diff, dist_sq, similar = self._parts(bottoms)
        m = diff.dtype.type(self.margin)
        if self.legacy:
            apart = np.maximum(m - dist_sq, 0)
        else:
            apart = np.maximum(m - np.sqrt(dist_sq), 0) ** 2
        loss = np.where(similar, dist_sq, apart).sum() / diff.shape[0] / 2
        return [np.asarray(loss, dtype=diff.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        diff, dist_sq, similar = self._parts(bottoms)
        alpha = _weight(top_diffs, diff.dtype) / diff.shape[0]
        m = diff.dtype.type(self.margin)
        if self.legacy:
            mdist, beta = m - dist_sq, -alpha * np.ones_like(dist_sq)
        else:
            dist = np.sqrt(dist_sq)
            mdist = m - dist
            beta = -alpha * mdist / (dist + diff.dtype.type(1e-4))
        coef = np.where(similar, alpha, np.where(mdist > 0, beta, 0))
        da = (coef[:, None] * diff).astype(diff.dtype)
        return [da.reshape(bottoms[0].shape), (-da).reshape(bottoms[1].shape), None]
