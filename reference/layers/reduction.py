"""Reduction and ArgMax (Caffe ``reduction_layer.cpp`` 9-120, ``argmax_layer.cpp`` 11-96).

Reduction: the axes ``axis..`` (default 0: everything, a scalar top) collapse into one value per
leading index, top shape ``x.shape[:axis]``; ``y = coeff * op(x_row)`` with op SUM (``sum x``), ASUM
(``sum |x|``), SUMSQ (``sum x^2``) or MEAN (``sum x / dim``: Caffe folds ``1/dim`` into ``coeff``).
Backward: ``dx = coeff dy`` (SUM), ``coeff dy / dim`` (MEAN), ``coeff dy sign(x)`` (ASUM),
``2 coeff dy x`` (SUMSQ).  Example: x = [[1, -2], [3, 4]], axis 1, ASUM, coeff 2 -> [6, 14].

ArgMax (no backward: ``argmax_layer.hpp`` 65-67, NOT_IMPLEMENTED): per row, the ``top_k`` largest
values ordered by Caffe's ``std::greater`` on ``(value, index)`` pairs: larger value first, and between
equal values the *larger* index first.  With ``axis`` the rows run along that axis and the top keeps
the input's shape with ``top_k`` in place of that axis, holding indices (as floats), or the values when
``out_max_val``.  Without ``axis`` a row is one item (``count(1)`` values) and the top is
``(N, 1, top_k)`` of indices, or ``(N, 2, top_k)`` = indices then values when ``out_max_val``, padded
with trailing 1s to the input's number of axes (at least 3).  Example: x = [[3, 1, 3]], top_k 2 ->
indices [[[2, 0]]].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register
from .routing import canonical_axis

REDUCTION_OPS = {"SUM": 1, "ASUM": 2, "SUMSQ": 3, "MEAN": 4}  # caffe.proto ReductionOp numbers


@register
class Reduction(Layer):
    type = "Reduction"

    def configure(self):
        p = self.param("reduction_param")
        self.op = p.enum("operation", "SUM", REDUCTION_OPS)
        self.axis = p.int("axis", 0)
        self.coeff = p.float("coeff", 1.0)

    def _split(self, shape):
        a = canonical_axis(self, self.axis, len(shape)) if len(shape) else 0
        return a, int(np.prod(shape[a:], dtype=np.int64))

    def reshape(self, shapes):
        a, _ = self._split(shapes[0])
        return [tuple(shapes[0][:a])]

    def _scale(self, dim):
        return self.coeff / dim if self.op == "MEAN" else self.coeff

    def run_forward(self, bottoms):
        x = bottoms[0]
        a, dim = self._split(x.shape)
        rows = x.reshape(x.shape[:a] + (dim,))
        value = {"SUM": rows, "MEAN": rows, "ASUM": np.abs(rows), "SUMSQ": rows * rows}[self.op]
        return [(value.sum(axis=-1) * x.dtype.type(self._scale(dim))).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        a, dim = self._split(x.shape)
        g = (np.asarray(top_diffs[0]) * x.dtype.type(self._scale(dim))).reshape(
            x.shape[:a] + (1,) * (x.ndim - a))
        local = {"SUM": np.ones_like(x), "MEAN": np.ones_like(x), "ASUM": np.sign(x),
                 "SUMSQ": 2 * x}[self.op]
        return [(local * g).astype(x.dtype)]


def caffe_topk(rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of each row (last axis), larger value first and, among
    equal values, larger index first (``std::partial_sort`` with ``std::greater<pair>``): a stable
    descending sort of the reversed row keeps equal values in reversed, i.e. descending-index, order."""
    d = rows.shape[-1]
    order = np.argsort(-rows[..., ::-1], axis=-1, kind="stable")[..., :k]
    return d - 1 - order


@register
class ArgMax(Layer):
    type = "ArgMax"
    has_backward = False

    def configure(self):
        p = self.param("argmax_param")
        self.out_max_val = p.bool("out_max_val", False)
        self.top_k = p.int("top_k", 1, minimum=1)
        self.axis = p.int("axis") if p.has("axis") else None

    def reshape(self, shapes):
        s = shapes[0]
        if self.axis is not None:
            a = canonical_axis(self, self.axis, len(s))
            if self.top_k > s[a]:
                raise self.error(f"top_k {self.top_k} exceeds axis {a} of size {s[a]}")
            return [s[:a] + (self.top_k,) + s[a + 1:]]
        if len(s) < 1 or self.top_k > int(np.prod(s[1:], dtype=np.int64)):
            raise self.error(f"top_k {self.top_k} exceeds the {int(np.prod(s[1:]))} values per item "
                             f"of {s}")
        shape = [1] * max(3, len(s))
        shape[0], shape[1], shape[2] = s[0], 2 if self.out_max_val else 1, self.top_k
        return [tuple(shape)]

    def run_forward(self, bottoms):
        x = bottoms[0]
        if self.axis is not None:
            a = canonical_axis(self, self.axis, x.ndim)
            rows = np.moveaxis(x, a, -1)
            best = caffe_topk(rows, self.top_k)
            out = np.take_along_axis(rows, best, axis=-1) if self.out_max_val else best
            return [np.moveaxis(out.astype(x.dtype), -1, a)]
        rows = x.reshape(x.shape[0], -1)
        best = caffe_topk(rows, self.top_k)
        parts = [best.astype(x.dtype)]
        if self.out_max_val:
            parts.append(np.take_along_axis(rows, best, axis=-1))
        return [np.stack(parts, axis=1).reshape(self.reshape([x.shape])[0])]
