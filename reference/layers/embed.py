"""Embed, a learned lookup table (Caffe ``embed_layer.cpp`` 10-110).

Blobs: ``W`` of shape (input_dim K, num_output N) -- transposed from InnerProduct -- and, with
``bias_term`` (default true), ``b`` (N,).  Every input value is an index ``i`` (an integer in
``[0, K)``, read as ``static_cast<int>``): ``y[..., :] = W[i, :] + b``; the top shape is the input's
with N appended.  Backward: ``dW[i] += dy[...]`` summed over every position holding ``i``,
``db += dy`` summed over all positions; Caffe cannot back-propagate to the indices (no gradient).
Example: W = [[1, 2], [3, 4], [5, 6]], b = 0, x = [[2, 0]] -> y = [[[5, 6], [1, 2]]].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class Embed(Layer):
    type = "Embed"
    label_bottoms = (0,)

    def configure(self):
        p = self.param("embed_param")
        self.num_output = p.int("num_output", minimum=1)
        self.input_dim = p.int("input_dim", minimum=1)
        self.bias_term = p.bool("bias_term", True)
        self.weight_filler, self.bias_filler = p.sub("weight_filler"), p.sub("bias_filler")

    def reshape(self, shapes):
        if not self.blobs:
            self.make_blob((self.input_dim, self.num_output), self.weight_filler)
            if self.bias_term:
                self.make_blob((self.num_output,), self.bias_filler)
        self.check_blob_shape(0, (self.input_dim, self.num_output))
        return [tuple(shapes[0]) + (self.num_output,)]

    def _index(self, x):
        v = np.asarray(x, dtype=np.float64)
        bad = (v < 0) | (v >= self.input_dim) | (v != np.trunc(v))
        if bad.any():
            raise self.error(f"inputs must be integers in [0, {self.input_dim}) (input_dim), "
                             f"found {v[bad][:5]}")
        return v.astype(np.int64)

    def run_forward(self, bottoms):
        y = self.blobs[0][self._index(bottoms[0])].astype(bottoms[0].dtype)
        if self.bias_term:
            y = y + self.blobs[1].astype(y.dtype)
        return [y]

    def run_backward(self, top_diffs, bottoms, tops):
        dy = top_diffs[0].reshape(-1, self.num_output)
        np.add.at(self.diffs[0], self._index(bottoms[0]).ravel(), dy)
        if self.bias_term:
            self.diffs[1] += dy.sum(axis=0)
        return [None]
