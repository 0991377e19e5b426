"""Losses on probabilities and logits: SigmoidCrossEntropyLoss, MultinomialLogisticLoss, InfogainLoss.

Loss normalization (``loss_param.normalization``; Caffe ``get_normalizer``,
``sigmoid_cross_entropy_loss_layer.cpp`` 49-76, ``infogain_loss_layer.cpp`` 85-112): the summed loss is
divided by ``max(1, n)`` with ``n`` = FULL: every position (``outer * inner``), VALID: the positions
not ignored, BATCH_SIZE: ``outer``, NONE: 1; the gradient by the same ``n``.  The legacy ``normalize``
(only when ``normalization`` is absent) means VALID (true) or BATCH_SIZE (false).  Defaults differ:
SigmoidCrossEntropyLoss BATCH_SIZE (lines 24-32), InfogainLoss the proto default VALID (and Caffe
refuses ``normalize`` there, line 36).  ``w`` below is the top's loss weight.

- SigmoidCrossEntropyLoss (lines 79-131): targets ``t`` of the input's count; per position not
  ignored (``int(t) == ignore_label``) ``l = -(x (t - [x >= 0]) - log(1 + exp(x - 2 x [x >= 0])))``,
  the stable form of ``-(t log s + (1 - t) log(1 - s))``, ``s = sigmoid(x)``.
  ``dx = w (s - t) / n``, 0 at ignored positions.  Example: x = 0, t = 1 -> l = ln 2, dx = -w/2 (n=1).
- MultinomialLogisticLoss (``multinomial_logistic_loss_layer.cpp`` 11-59): the input holds
  probabilities (N, dim); ``loss = -sum_i log(max(p[i, label_i], 1e-20)) / N``;
  ``dp[i, label_i] = -w / (N max(p[i, label_i], 1e-20))``, 0 elsewhere (Caffe's formula also below
  the threshold).  Example: p = [[0.25, 0.75]], label 1 -> loss = -ln 0.75.
- InfogainLoss (``infogain_loss_layer.cpp`` 12-219): softmax ``p`` over ``infogain_loss_param.axis``
  (default 1) and a C x C matrix ``H``: ``loss = -sum_{positions} sum_l H[label, l]
  log(max(p_l, 1e-20)) / n``; ``dx_l = w (p_l sum_m H[label, m] - H[label, l]) / n``, 0 at ignored
  positions.  With H = identity it is SoftmaxWithLoss.  ``H`` is the third bottom (no gradient).
  Caffe's other form reads ``H`` from the binaryproto file ``infogain_loss_param.source``; the
  reference reads no files, so that form is an error here: read the file with
  ``caffe_import.readers.read_mean(path)`` (any BlobProto file) and feed it as a third bottom.
  An optional second top is ``p`` (its diff is not propagated: Caffe's backward reads top 0 only).
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register
from .loss import ignore_label, normalizer, read_normalization
from .routing import canonical_axis, split_scores
from .softmax import softmax

LOG_THRESHOLD = float(np.float32(1e-20))  # kLOG_THRESHOLD, loss_layer.hpp line 12


def _check_batch(layer, shapes):
    a, b = shapes[0], shapes[1]
    if len(a) == 0 or len(b) == 0 or a[0] != b[0]:
        raise layer.error(f"data and label need the same first dimension, got {a} and {b}")


def _weight(top_diffs, dtype):
    return np.asarray(top_diffs[0], dtype=dtype).reshape(())


@register
class SigmoidCrossEntropyLoss(Layer):
    type = "SigmoidCrossEntropyLoss"
    n_bottom = (2, 2)
    is_loss = True
    label_bottoms = (1,)

    def configure(self):
        self.ignore_label = ignore_label(self)
        self.normalization = read_normalization(self, "BATCH_SIZE")

    def reshape(self, shapes):
        _check_batch(self, shapes)
        if int(np.prod(shapes[0])) != int(np.prod(shapes[1])):
            raise self.error(f"inputs and targets need the same count, got {shapes[0]} and {shapes[1]}")
        return [()]

    def _parts(self, bottoms):
        x, t = bottoms[0], bottoms[1].reshape(bottoms[0].shape)
        valid = np.ones(x.shape, bool) if self.ignore_label is None else \
            np.trunc(t) != self.ignore_label
        n = normalizer(self.normalization, x.shape[0], x[0].size, int(valid.sum()))
        return x, t, valid, n

    def run_forward(self, bottoms):
        x, t, valid, n = self._parts(bottoms)
        pos = (x >= 0).astype(x.dtype)
        per = x * (t - pos) - np.log1p(np.exp(x - 2 * x * pos))
        return [np.asarray(-np.sum(per[valid]) / n, dtype=x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, t, valid, n = self._parts(bottoms)
        s = 0.5 * (1 + np.tanh(0.5 * x))
        dx = (s - t) * valid * (_weight(top_diffs, x.dtype) / n)
        return [dx.astype(x.dtype), None]


def _label_column(layer, label, n, classes):
    lab = np.trunc(np.asarray(label, dtype=np.float64)).reshape(n)
    if ((lab < 0) | (lab >= classes)).any():
        raise layer.error(f"label values must be integers in [0, {classes}), found "
                          f"{lab[(lab < 0) | (lab >= classes)][:5]}")
    return lab.astype(np.int64)


@register
class MultinomialLogisticLoss(Layer):
    type = "MultinomialLogisticLoss"
    n_bottom = (2, 2)
    is_loss = True
    label_bottoms = (1,)

    def reshape(self, shapes):
        _check_batch(self, shapes)
        if int(np.prod(shapes[1])) != shapes[1][0]:
            raise self.error(f"label must hold one value per item (N, 1, 1, 1), got {shapes[1]}")
        return [()]

    def _picked(self, bottoms):
        p, label = bottoms
        rows = p.reshape(p.shape[0], -1)
        lab = _label_column(self, label, p.shape[0], rows.shape[1])
        picked = np.maximum(rows[np.arange(len(lab)), lab], rows.dtype.type(LOG_THRESHOLD))
        return rows, lab, picked

    def run_forward(self, bottoms):
        rows, _, picked = self._picked(bottoms)
        return [np.asarray(-np.sum(np.log(picked)) / rows.shape[0], dtype=rows.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        rows, lab, picked = self._picked(bottoms)
        d = np.zeros_like(rows)
        d[np.arange(len(lab)), lab] = -_weight(top_diffs, rows.dtype) / rows.shape[0] / picked
        return [d.reshape(bottoms[0].shape), None]


@register
class InfogainLoss(Layer):
    type = "InfogainLoss"
    n_bottom = (2, 3)
    n_top = (1, 2)
    is_loss = True
    label_bottoms = (1, 2)

    def configure(self):
        self.ignore_label = ignore_label(self)
        self.normalization = read_normalization(self, "VALID", allow_normalize=False)
        p = self.param("infogain_loss_param")
        self.axis = p.int("axis", 1)
        if len(self.bottom_names) < 3:
            where = f" (source {p.scalar('source')!r})" if p.has("source") else ""
            raise self.error(f"the infogain matrix must be the third bottom: the reference engine "
                             f"reads no files{where}; read the binaryproto with "
                             f"caffe_import.readers.read_mean(path) and feed it as bottom 3 (an Input)")

    def _split(self, x, label):
        a = canonical_axis(self, self.axis, len(x))
        return (a,) + split_scores(self, a, x, label)

    def reshape(self, shapes):
        _check_batch(self, shapes)
        a, _, _ = self._split(shapes[0], shapes[1])
        c = shapes[0][a]
        if int(np.prod(shapes[2])) != c * c:
            raise self.error(f"the infogain matrix needs {c}x{c} = {c * c} values, got {shapes[2]}")
        return [()] + ([tuple(shapes[0])] if len(self.top_names) > 1 else [])

    def _parts(self, bottoms):
        x, label, h = bottoms
        a, outer, inner = self._split(x.shape, label.shape)
        c = x.shape[a]
        p = softmax(x, a).reshape(outer, c, inner)
        lab = np.trunc(np.asarray(label, dtype=np.float64)).reshape(outer, inner)
        valid = np.ones(lab.shape, bool) if self.ignore_label is None else lab != self.ignore_label
        bad = valid & ((lab < 0) | (lab >= c))
        if bad.any():
            raise self.error(f"label values must be integers in [0, {c}) or the ignore_label "
                             f"{self.ignore_label}; found {lab[bad][:5]}")
        lab = np.where(valid, lab, 0).astype(np.int64)
        rows = np.asarray(h, dtype=x.dtype).reshape(c, c)[lab]          # (outer, inner, C)
        n = normalizer(self.normalization, outer, inner, int(valid.sum()))
        return p, np.moveaxis(rows, -1, 1), valid[:, None, :], n

    def run_forward(self, bottoms):
        p, rows, valid, n = self._parts(bottoms)
        logp = np.log(np.maximum(p, p.dtype.type(LOG_THRESHOLD)))
        loss = -np.sum(rows * logp * valid) / n
        tops = [np.asarray(loss, dtype=bottoms[0].dtype)]
        return tops + ([p.reshape(bottoms[0].shape)] if len(self.top_names) > 1 else [])

    def run_backward(self, top_diffs, bottoms, tops):
        p, rows, valid, n = self._parts(bottoms)
        dx = (p * rows.sum(axis=1, keepdims=True) - rows) * valid
        dx = dx * (_weight(top_diffs, p.dtype) / n)
        return [dx.reshape(bottoms[0].shape).astype(bottoms[0].dtype), None, None]
