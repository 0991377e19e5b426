"""Eltwise (SUM with coefficients, PROD, MAX) and Concat (Caffe ``eltwise_layer.cpp``, ``concat_layer.cpp``).

- SUM: ``y = sum_i coeff_i x_i`` (coeff default 1), ``dx_i = coeff_i dy``.
- PROD: ``y = prod_i x_i``, ``dx_i = dy * prod_{j != i} x_j`` (Caffe's stable gradient).
- MAX: per element the winning bottom takes the whole gradient.  Ties follow Caffe's CPU code:
  between bottoms 0 and 1 the tie goes to bottom 1 (bottom 0 must be strictly greater); a later
  bottom must be strictly greater than the current winner.  Example: x0 = [1, 2], x1 = [1, 3] ->
  y = [1, 3], winner = [1, 1].
- Concat along ``axis`` (default 1, or the legacy ``concat_dim``): the other axes must agree; the
  backward slices ``dy`` back.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class Eltwise(Layer):
    type = "Eltwise"
    n_bottom = (2, None)

    def configure(self):
        p = self.param("eltwise_param")
        self.op = p.enum("operation", "SUM")
        coeff = [float(c) for c in p.list("coeff")]
        if coeff and self.op != "SUM":
            raise p.error("coeff: only SUM takes coefficients")
        if coeff and len(coeff) != len(self.bottom_names):
            raise p.error(f"coeff: {len(coeff)} values for {len(self.bottom_names)} bottoms")
        self.coeff = coeff or [1.0] * len(self.bottom_names)

    def reshape(self, shapes):
        for s in shapes[1:]:
            if s != shapes[0]:
                raise self.error(f"all bottoms must have the same shape, got {shapes}")
        return [shapes[0]]

    def _winner(self, bottoms):
        win = np.where(bottoms[0] > bottoms[1], 0, 1)
        best = np.where(win == 0, bottoms[0], bottoms[1])
        for i, x in enumerate(bottoms[2:], start=2):
            better = x > best
            win = np.where(better, i, win)
            best = np.where(better, x, best)
        return win, best

    def run_forward(self, bottoms):
        dtype = bottoms[0].dtype
        if self.op == "SUM":
            y = sum(bottoms[0].dtype.type(c) * x for c, x in zip(self.coeff, bottoms))
        elif self.op == "PROD":
            y = bottoms[0].copy()
            for x in bottoms[1:]:
                y = y * x
        else:
            y = self._winner(bottoms)[1]
        return [np.asarray(y, dtype=dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        dy = top_diffs[0]
        if self.op == "SUM":
            return [dy * dy.dtype.type(c) for c in self.coeff]
        if self.op == "PROD":
            out = []
            for i in range(len(bottoms)):
                others = np.ones_like(dy)
                for j, x in enumerate(bottoms):
                    if j != i:
                        others = others * x
                out.append(dy * others)
            return out
        win = self._winner(bottoms)[0]
        return [np.where(win == i, dy, 0).astype(dy.dtype) for i in range(len(bottoms))]


@register
class Concat(Layer):
    type = "Concat"
    n_bottom = (1, None)

    def configure(self):
        p = self.param("concat_param")
        if p.has("axis") and p.has("concat_dim"):
            raise p.error("axis and concat_dim are mutually exclusive")
        self.axis = p.int("concat_dim", minimum=0) if p.has("concat_dim") else p.int("axis", 1)

    def _axis(self, ndim):
        a = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 <= a < ndim:
            raise self.error(f"axis {self.axis} out of range for {ndim}-D inputs")
        return a

    def reshape(self, shapes):
        a = self._axis(len(shapes[0]))
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or s[:a] + s[a + 1:] != shapes[0][:a] + shapes[0][a + 1:]:
                raise self.error(f"inputs must agree on every axis but {a}, got {shapes}")
        return [shapes[0][:a] + (sum(s[a] for s in shapes),) + shapes[0][a + 1:]]

    def run_forward(self, bottoms):
        return [np.concatenate(bottoms, axis=self._axis(bottoms[0].ndim))]

    def run_backward(self, top_diffs, bottoms, tops):
        a = self._axis(bottoms[0].ndim)
        edges = np.cumsum([x.shape[a] for x in bottoms])[:-1]
        return [d.copy() for d in np.split(top_diffs[0], edges, axis=a)]
