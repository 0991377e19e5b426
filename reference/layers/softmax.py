"""Softmax and SoftmaxWithLoss (Caffe ``softmax_layer.cpp``, ``softmax_loss_layer.cpp``).

Softmax over ``axis`` (default 1): ``p = exp(x - max) / sum exp(x - max)``; ``dx = p * (dy - sum(dy * p))``.

SoftmaxWithLoss, with ``outer`` = product of the axes before ``axis`` and ``inner`` = after it, and a
label blob of ``outer * inner`` values (read as float, truncated to int)::

    loss = sum_{positions not ignored} -log(max(p[label], FLT_MIN)) / normalizer
    dx   = (p - onehot(label)) * loss_weight / normalizer,   0 at ignored positions

normalizer (then at least 1): FULL = outer*inner; VALID (default) = count of non-ignored positions;
BATCH_SIZE = outer; NONE = 1.  The legacy ``normalize`` (only when ``normalization`` is absent):
true -> VALID, false -> BATCH_SIZE.  Example: x = [0, 0], label 1 -> loss = log 2, dx = [0.5, -0.5].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register
from .loss import ignore_label, normalizer, read_normalization
from .routing import split_scores

FLT_MIN = float(np.finfo(np.float32).tiny)


def _axis(layer, axis, ndim):
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
        raise layer.error(f"softmax axis {axis} out of range for a {ndim}-D input")
    return a


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register
class Softmax(Layer):
    type = "Softmax"

    def configure(self):
        self.axis = self.param("softmax_param").int("axis", 1)

    def reshape(self, shapes):
        _axis(self, self.axis, len(shapes[0]))
        return [shapes[0]]

    def run_forward(self, bottoms):
        return [softmax(bottoms[0], _axis(self, self.axis, bottoms[0].ndim))]

    def run_backward(self, top_diffs, bottoms, tops):
        p, dy = tops[0], top_diffs[0]
        a = _axis(self, self.axis, p.ndim)
        return [p * (dy - (dy * p).sum(axis=a, keepdims=True))]


@register
class SoftmaxWithLoss(Layer):
    type = "SoftmaxWithLoss"
    n_bottom = (2, 2)
    n_top = (1, 2)
    is_loss = True
    label_bottoms = (1,)

    def configure(self):
        self.axis = self.param("softmax_param").int("axis", 1)
        lp = self.param("loss_param")
        self.ignore_label = ignore_label(self)
        self.normalization = read_normalization(self, "VALID")
        # SegNet's class weighting (github:alexgkendall/caffe-segnet @ 344c113,
        # src/caffe/layers/softmax_loss_layer.cpp lines 32-44, 90-96, 136-139): each pixel's loss
        # and gradient times the weight of its label; the normaliser still counts pixels
        self.class_weights = None
        if lp.bool("weight_by_label_freqs", False):
            self.class_weights = np.asarray([float(v) for v in lp.list("class_weighting")])

    def reshape(self, shapes):
        x, label = shapes
        a = _axis(self, self.axis, len(x))
        if self.class_weights is not None and len(self.class_weights) != x[a]:
            raise self.error(f"{len(self.class_weights)} class_weighting values for {x[a]} classes")
        split_scores(self, a, x, label)
        return [()] + ([x] if len(self.top_names) > 1 else [])

    def _labels(self, x, label):
        a = _axis(self, self.axis, x.ndim)
        shape = x.shape[:a] + (1,) + x.shape[a + 1:]
        lab = np.trunc(np.asarray(label, dtype=np.float64)).reshape(shape)
        valid = np.ones(shape, dtype=bool) if self.ignore_label is None else lab != self.ignore_label
        bad = valid & ((lab < 0) | (lab >= x.shape[a]) | np.isnan(lab))
        if bad.any():
            raise self.error(f"label values must be integers in [0, {x.shape[a]}) or the ignore_label "
                             f"{self.ignore_label}; found {lab[bad].ravel()[:5]}")
        return a, np.where(valid, lab, 0).astype(np.int64), valid

    def _normalizer(self, x, a, valid):
        outer, inner = int(np.prod(x.shape[:a])), int(np.prod(x.shape[a + 1:]))
        return normalizer(self.normalization, outer, inner, int(valid.sum()))

    def run_forward(self, bottoms):
        x, label = bottoms
        a, lab, valid = self._labels(x, label)
        p = softmax(x, a)
        picked = np.take_along_axis(p, lab, axis=a)
        logs = np.log(np.maximum(picked, FLT_MIN))
        if self.class_weights is not None:
            logs = logs * self.class_weights.astype(np.float32).astype(x.dtype)[lab]
        loss = -np.sum(logs[valid]) / self._normalizer(x, a, valid)
        tops = [np.asarray(loss, dtype=x.dtype)]
        return tops + ([p] if len(self.top_names) > 1 else [])

    def run_backward(self, top_diffs, bottoms, tops):
        x, label = bottoms
        a, lab, valid = self._labels(x, label)
        p = softmax(x, a) if len(tops) < 2 else tops[1]
        dx = p.copy()
        np.put_along_axis(dx, lab, np.take_along_axis(dx, lab, axis=a) - 1, axis=a)
        dx *= valid
        if self.class_weights is not None:
            dx *= self.class_weights.astype(np.float32).astype(x.dtype)[lab]
        dx *= np.asarray(top_diffs[0], dtype=x.dtype).reshape(()) / self._normalizer(x, a, valid)
        return [dx.astype(x.dtype), None]
