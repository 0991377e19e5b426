"""Accuracy (Caffe ``accuracy_layer.cpp`` 11-98); no backward (``accuracy_layer.hpp`` 76-79:
NOT_IMPLEMENTED).

With ``axis`` (default 1) the scores are (outer, C, inner) and the labels ``outer * inner`` values
(read as ``static_cast<int>``).  A position with ``label == ignore_label`` is skipped; otherwise it
is correct when fewer than ``top_k`` (default 1) *other* classes score ``>=`` the true class (ties
count against it: scores [1, 1] with label 0 are wrong for top_k 1).
``top[0] = correct / counted`` (0 when nothing is counted); an optional second top holds the
per-class accuracy ``correct_c / counted_c`` (0 for a class never seen), shape (C,).
Example: scores [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], labels [1, 1, 1] -> 2/3, per class [0, 2/3].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register
from .routing import canonical_axis, split_scores


@register
class Accuracy(Layer):
    type = "Accuracy"
    n_bottom = (2, 2)
    n_top = (1, 2)
    label_bottoms = (1,)
    has_backward = False

    def configure(self):
        p = self.param("accuracy_param")
        self.top_k = p.int("top_k", 1, minimum=1)
        self.axis = p.int("axis", 1)
        self.ignore_label = p.int("ignore_label") if p.has("ignore_label") else None

    def _split(self, x, label):
        a = canonical_axis(self, self.axis, len(x))
        outer, inner = split_scores(self, a, x, label)
        if self.top_k > x[a]:
            raise self.error(f"top_k {self.top_k} exceeds the {x[a]} classes")
        return a, outer, inner

    def reshape(self, shapes):
        x, label = shapes
        a, _, _ = self._split(x, label)
        return [()] + ([(x[a],)] if len(self.top_names) > 1 else [])

    def run_forward(self, bottoms):
        x, label = bottoms
        a, outer, inner = self._split(x.shape, label.shape)
        classes = x.shape[a]
        scores = x.reshape(outer, classes, inner)
        lab = np.trunc(np.asarray(label, dtype=np.float64)).reshape(outer, 1, inner)
        valid = np.ones(lab.shape, bool) if self.ignore_label is None else lab != self.ignore_label
        bad = valid & ((lab < 0) | (lab >= classes))
        if bad.any():
            raise self.error(f"label values must be integers in [0, {classes}) or the ignore_label "
                             f"{self.ignore_label}; found {lab[bad][:5]}")
        lab = np.where(valid, lab, 0).astype(np.int64)
        true = np.take_along_axis(scores, lab, axis=1)
        better = (scores >= true).sum(axis=1, keepdims=True) - 1
        correct = valid & (better < self.top_k)
        counted = int(valid.sum())
        tops = [np.asarray(correct.sum() / counted if counted else 0.0, dtype=x.dtype)]
        if len(self.top_names) > 1:
            seen = np.bincount(lab[valid], minlength=classes)
            hits = np.bincount(lab[correct], minlength=classes)
            tops.append(np.divide(hits, seen, out=np.zeros(classes), where=seen > 0).astype(x.dtype))
        return tops
