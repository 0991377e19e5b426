"""InnerProduct (fully connected): ``y = x_flat @ W.T + b`` with ``x_flat = x.reshape(M, K)``.

``M`` = product of the bottom's axes before ``axis`` (default 1), ``K`` = product of the rest; weights
(N, K), or (K, N) with ``transpose: true``; the top is ``bottom.shape[:axis] + (N,)``.  Flattening is
C order, so an (N, C*H*W) weight reshaped to (N, C, H, W) is the equivalent convolution kernel.

Example: x = [[1, 2]], W = [[1, 0], [1, 1], [0, 2]], b = [0, 0, 1]  ->  y = [[1, 3, 5]].
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class InnerProduct(Layer):
    type = "InnerProduct"

    def configure(self):
        p = self.param("inner_product_param")
        self.num_output = p.int("num_output", minimum=1)
        self.bias_term = p.bool("bias_term", True)
        self.axis = p.int("axis", 1)
        self.transpose = p.bool("transpose", False)
        self.weight_filler = p.sub("weight_filler")
        self.bias_filler = p.sub("bias_filler")

    def _axis(self, ndim):
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 <= axis < ndim:
            raise self.error(f"axis {self.axis} out of range for a {ndim}-D input")
        return axis

    def reshape(self, shapes):
        s = shapes[0]
        axis = self._axis(len(s))
        k = int(np.prod(s[axis:]))
        wshape = (k, self.num_output) if self.transpose else (self.num_output, k)
        if not self.blobs:
            self.make_blob(wshape, self.weight_filler)
            if self.bias_term:
                self.make_blob((self.num_output,), self.bias_filler)
        self.check_blob_shape(0, wshape)
        return [tuple(s[:axis]) + (self.num_output,)]

    def _weight(self):
        """Weights as (K, N)."""
        return self.blobs[0] if self.transpose else self.blobs[0].T

    def run_forward(self, bottoms):
        x = bottoms[0]
        axis = self._axis(x.ndim)
        y = x.reshape(int(np.prod(x.shape[:axis])), -1) @ self._weight()
        if self.bias_term:
            y = y + self.blobs[1]
        return [y.reshape(x.shape[:axis] + (self.num_output,))]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        axis = self._axis(x.ndim)
        m = int(np.prod(x.shape[:axis]))
        x2 = x.reshape(m, -1)
        dy = top_diffs[0].reshape(m, self.num_output)
        # Each product is formed directly in the layout it is stored in: dW (N, K) = dy.T @ x and
        # dx = dy @ W for the plain (N, K) weights; with ``transpose`` dW (K, N) = x.T @ dy and
        # dx = dy @ W.T.  (Transposing a product after the fact, ``(x.T @ dy).T``, hands ``+=`` a
        # strided view of a 400 MB matrix for VGG-16's fc6 and made its backward 7x its forward.)
        w = self.blobs[0]
        if self.transpose:
            self.diffs[0] += x2.T @ dy
            dx = dy @ w.T
        else:
            self.diffs[0] += dy.T @ x2
            dx = dy @ w
        if self.bias_term:
            self.diffs[1] += dy.sum(axis=0)
        return [dx.reshape(x.shape)]
