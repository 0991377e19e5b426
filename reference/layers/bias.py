"""Bias (Caffe ``bias_layer.cpp`` 10-112): ``y = x + b`` with ``b`` broadcast along the axes it lacks.

``b`` is the second bottom, or a learned blob of shape ``x.shape[axis : axis + num_axes]`` (default
axis 1, num_axes 1: one value per channel; num_axes -1: to the last axis; num_axes 0: a scalar, for
which Caffe uses axis 0 whatever ``axis`` says), filled by ``bias_param.filler`` (default constant 0).
With two bottoms ``b`` may have any number of axes; they must match ``x`` from ``axis`` on.

``dx = dy``; ``db = dy`` summed over every axis of ``x`` outside ``b``'s span (Caffe's gemv over the
outer and inner dimensions).  Example: x = [[1, 2], [3, 4]] (N=2, C=2), b = [10, 20] ->
y = [[11, 22], [13, 24]], db = [2, 2] for dy = 1.
"""

from __future__ import annotations

from .base import Layer, register
from .routing import canonical_axis


@register
class Bias(Layer):
    type = "Bias"
    n_bottom = (1, 2)

    def configure(self):
        p = self.param("bias_param")
        self.axis, self.num_axes = p.int("axis", 1), p.int("num_axes", 1)
        if self.num_axes < -1:
            raise p.error(f"num_axes must be >= -1, got {self.num_axes}")
        self.filler = p.sub("filler")

    def _start(self, x_shape, b_ndim):
        return 0 if b_ndim == 0 else canonical_axis(self, self.axis, len(x_shape))

    def reshape(self, shapes):
        x = shapes[0]
        if len(shapes) == 1 and not self.blobs:
            a = canonical_axis(self, self.axis, len(x)) if len(x) else 0
            end = len(x) if self.num_axes == -1 else a + self.num_axes
            if end > len(x):
                raise self.error(f"the bias blob (axis {a}, num_axes {self.num_axes}) extends past "
                                 f"the input shape {x}")
            self.make_blob(tuple(x[a:end]), self.filler)
        b = tuple(shapes[1]) if len(shapes) == 2 else self.blobs[0].shape
        a = self._start(x, len(b))
        if tuple(x[a:a + len(b)]) != b:
            raise self.error(f"bias shape {b} does not match the input {x} from axis {a}")
        return [x]

    def _bias(self, bottoms):
        """The bias array, its start axis in ``x``, and it reshaped to broadcast against ``x``."""
        x = bottoms[0]
        b = bottoms[1] if len(bottoms) == 2 else self.blobs[0]
        a = self._start(x.shape, b.ndim)
        return b, a, b.reshape((1,) * a + b.shape + (1,) * (x.ndim - a - b.ndim))

    def run_forward(self, bottoms):
        _, _, wide = self._bias(bottoms)
        return [bottoms[0] + wide.astype(bottoms[0].dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        dy = top_diffs[0]
        b, a, _ = self._bias(bottoms)
        db = dy.sum(axis=tuple(range(a)) + tuple(range(a + b.ndim, dy.ndim))).reshape(b.shape)
        if len(bottoms) == 2:
            return [dy.copy(), db]
        self.diffs[0] += db
        return [dy.copy()]
