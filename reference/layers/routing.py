"""Layers that route values without arithmetic: Slice, Tile, Silence, Filter, BatchReindex, Parameter.

- Slice (``slice_layer.cpp`` 10-117): splits ``axis`` (default 1; the legacy ``slice_dim``, a
  non-negative axis, exclusive with ``axis``) at the ``slice_point`` s (strictly increasing, one fewer
  than the tops), or into equal parts when none are given.  The backward writes each top diff back
  into its part.  Example: axis 1 of a (1, 5) input, slice_point [1, 3] -> widths 1, 2, 2.
- Tile (``tile_layer.cpp`` 9-52): ``tiles`` (required, > 0) copies of the axes ``axis..`` side by side:
  ``y = x`` repeated along ``axis`` as whole blocks (``np.tile`` of the trailing block, not
  ``np.repeat``); the backward sums the copies.  Example: axis 1, tiles 2, x = [[1, 2]] -> [[1, 2, 1, 2]].
- Silence (``silence_layer.cpp`` 9-17, ``silence_layer.hpp``): takes any bottoms, makes no tops; its
  backward gives every bottom a zero diff (the Net: no gradient).
- Filter (``filter_layer.cpp`` 16-116): the last bottom is the selector (shape (N, 1, ...)); every
  other bottom keeps the items ``n`` where ``selector[n] != 0``, in order.  Before any data is seen the
  top has the bottom's N items (Caffe's first Reshape); the backward scatters the diffs back to the
  kept items, zero elsewhere; no gradient to the selector.  Example: selector [0, 1, 1, 0] keeps 1, 2.
- BatchReindex (``batch_reindex_layer.cpp`` 9-69): ``y[i] = x[int(idx[i])]`` for a 1-axis index
  bottom; ``dx[j] = sum_{i: idx[i] = j} dy[i]``; no gradient to the index.  Example (Caffe's test):
  idx [4, 0, 4, 0, 1, 2] of x with rows 0..4 -> rows 4, 0, 4, 0, 1, 2.
- Parameter (``parameter_layer.hpp`` 10-41): no bottom; its top *is* its one blob, of
  ``parameter_param.shape`` (filled with zeros, Caffe allocates it without a filler); the top diff
  accumulates into the blob's diff.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, as_list, register


def canonical_axis(layer, axis: int, ndim: int, what: str = "axis") -> int:
    """Caffe's ``Blob::CanonicalAxisIndex``: ``-ndim <= axis < ndim``, negative counts from the end."""
    if not -ndim <= axis < ndim:
        raise layer.error(f"{what} {axis} out of range for a {ndim}-D input")
    return axis + ndim if axis < 0 else axis


def split_scores(layer, a: int, scores, label) -> tuple[int, int]:
    """``(outer, inner)``: the products of the ``scores`` shape's axes before and after the class axis
    ``a``; the ``label`` shape must hold ``outer * inner`` values (Caffe's softmax loss, accuracy and
    infogain loss: ``outer_num_ * inner_num_ == bottom[1]->count()``)."""
    outer = int(np.prod(scores[:a], dtype=np.int64))
    inner = int(np.prod(scores[a + 1:], dtype=np.int64))
    count = int(np.prod(label, dtype=np.int64))
    if outer * inner != count:
        raise layer.error(f"label has {count} values ({tuple(label)}); the scores {tuple(scores)} "
                          f"need outer*inner = {outer}*{inner} = {outer * inner}")
    return outer, inner


@register
class Slice(Layer):
    type = "Slice"
    n_top = (1, None)

    def configure(self):
        p = self.param("slice_param")
        if p.has("axis") and p.has("slice_dim"):
            raise p.error("give axis or slice_dim, not both")
        self.slice_dim = p.int("slice_dim", minimum=0) if p.has("slice_dim") else None
        self.axis = p.int("axis", 1)
        self.points = [p._as_int("slice_point", v, 0) for v in p.list("slice_point")]

    def _sizes(self, shape):
        if self.slice_dim is not None:
            if self.slice_dim >= len(shape):
                raise self.error(f"slice_dim {self.slice_dim} out of range for a {len(shape)}-D input")
            a = self.slice_dim
        else:
            a = canonical_axis(self, self.axis, len(shape))
        n, tops = shape[a], len(self.top_names)
        if self.points:
            if len(self.points) != tops - 1:
                raise self.error(f"{len(self.points)} slice_point values for {tops} tops "
                                 f"(give {tops - 1})")
            edges = [0] + self.points + [n]
            if any(b <= e for e, b in zip(edges[:-2], edges[1:-1])) or edges[-2] >= n:
                raise self.error(f"slice_point {self.points} must increase strictly inside "
                                 f"(0, {n}) on axis {a}")
            return a, [b - e for e, b in zip(edges[:-1], edges[1:])]
        if n % tops:
            raise self.error(f"{tops} tops do not divide axis {a} of size {n} evenly")
        return a, [n // tops] * tops

    def reshape(self, shapes):
        s = shapes[0]
        a, sizes = self._sizes(s)
        return [s[:a] + (k,) + s[a + 1:] for k in sizes]

    def run_forward(self, bottoms):
        x = bottoms[0]
        a, sizes = self._sizes(x.shape)
        return [part.copy() for part in np.split(x, np.cumsum(sizes)[:-1], axis=a)]

    def run_backward(self, top_diffs, bottoms, tops):
        a, _ = self._sizes(bottoms[0].shape)
        return [np.concatenate(top_diffs, axis=a)]


@register
class Tile(Layer):
    type = "Tile"

    def configure(self):
        p = self.param("tile_param")
        self.axis = p.int("axis", 1)
        self.tiles = p.int("tiles", minimum=1)

    def reshape(self, shapes):
        s = shapes[0]
        a = canonical_axis(self, self.axis, len(s))
        return [s[:a] + (s[a] * self.tiles,) + s[a + 1:]]

    def run_forward(self, bottoms):
        x = bottoms[0]
        a = canonical_axis(self, self.axis, x.ndim)
        return [np.concatenate([x] * self.tiles, axis=a)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        a = canonical_axis(self, self.axis, x.ndim)
        return [dy.reshape(x.shape[:a] + (self.tiles,) + x.shape[a:]).sum(axis=a)]


@register
class Silence(Layer):
    type = "Silence"
    n_bottom = (1, None)
    n_top = (0, 0)

    def reshape(self, shapes):
        return []

    def run_forward(self, bottoms):
        return []

    def run_backward(self, top_diffs, bottoms, tops):
        return [None] * len(bottoms)


@register
class Filter(Layer):
    type = "Filter"
    n_bottom = (2, None)
    n_top = (1, None)

    def configure(self):
        if len(self.top_names) != len(self.bottom_names) - 1:
            raise self.error(f"needs one top per filtered bottom: {len(self.bottom_names) - 1} "
                             f"bottoms before the selector, {len(self.top_names)} tops")
        self.label_bottoms = (len(self.bottom_names) - 1,)

    def reshape(self, shapes):
        sel = shapes[-1]
        if len(sel) == 0 or any(d != 1 for d in sel[1:]):
            raise self.error(f"the selector (last bottom) must have shape (N, 1, ...), got {sel}")
        for s in shapes[:-1]:
            if len(s) == 0 or s[0] != sel[0]:
                raise self.error(f"every bottom needs the selector's first dimension {sel[0]}, "
                                 f"got {s}")
        return [tuple(s) for s in shapes[:-1]]

    @staticmethod
    def _kept(selector):
        return np.flatnonzero(np.asarray(selector).reshape(len(selector), -1)[:, 0] != 0)

    def run_forward(self, bottoms):
        keep = self._kept(bottoms[-1])
        return [x[keep].copy() for x in bottoms[:-1]]

    def run_backward(self, top_diffs, bottoms, tops):
        keep = self._kept(bottoms[-1])
        out = []
        for x, dy in zip(bottoms[:-1], top_diffs):
            dx = np.zeros_like(x)
            dx[keep] = dy
            out.append(dx)
        return out + [None]


@register
class BatchReindex(Layer):
    type = "BatchReindex"
    n_bottom = (2, 2)
    label_bottoms = (1,)

    def reshape(self, shapes):
        x, idx = shapes
        if len(idx) != 1:
            raise self.error(f"the index bottom must have 1 axis, got shape {idx}")
        if len(x) == 0:
            raise self.error("the data bottom needs at least one axis")
        return [(idx[0],) + tuple(x[1:])]

    def _index(self, x, idx):
        i = np.asarray(idx, dtype=np.float64)
        if i.size and ((i < 0).any() or (i >= x.shape[0]).any()):
            bad = i[(i < 0) | (i >= x.shape[0])]
            raise self.error(f"index values must be in [0, {x.shape[0]}), got {bad[:5]}")
        return i.astype(np.int64)   # static_cast<int>: truncation

    def run_forward(self, bottoms):
        x, idx = bottoms
        return [x[self._index(x, idx)].copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        x, idx = bottoms
        dx = np.zeros_like(x)
        np.add.at(dx, self._index(x, idx), top_diffs[0])
        return [dx, None]


@register
class Parameter(Layer):
    type = "Parameter"
    n_bottom = (0, 0)

    def configure(self):
        shape = self.param("parameter_param").values.get("shape") or {}
        dims = as_list(shape.get("dim") if isinstance(shape, dict) else shape)
        if any(int(d) < 0 for d in dims):
            raise self.error(f"parameter_param.shape dimensions must be >= 0, got {dims}")
        self.shape = tuple(int(d) for d in dims)

    def reshape(self, shapes):
        if not self.blobs:
            self.make_blob(self.shape, None)
        self.check_blob_shape(0, self.shape)
        return [self.shape]

    def run_forward(self, bottoms):
        return [self.blobs[0].copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        self.diffs[0] += top_diffs[0]
        return []
