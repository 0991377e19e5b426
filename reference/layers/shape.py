"""Layers that only move values: Input, Split, Crop, Flatten, Reshape (Caffe semantics).

- Input: declares its tops' shapes (``input_param.shape``: one for all tops or one per top); the Net
  fills the tops with the arrays passed to ``forward``.
- Split: copies its bottom to every top; the backward sums the top diffs.
- Crop: ``y[..., i, ...] = x0[..., i + offset_axis, ...]`` for every axis >= ``axis`` (default 2), with
  the size of the reference bottom ``x1``; offsets: none -> 0, one -> all axes, else one per axis.  The
  crop starts at the offset from the top-left (it is not centred).  ``x1`` gets no gradient.
  Example: x0 = [0 1 2 3 4], reference of length 2, offset 1 -> [1 2].
- Shift (econv): ``y = pad(x, p, fill)[..., r:, c:]`` for ``shift_param {offset: [r, c], pad: [p, p],
  fill: zero | -inf}``; the backward pads zeros back.  It builds the fragment nets of Giusti et al. (shift-and-stitch) that dense nets are checked
  against.
- Flatten: axes ``axis..end_axis`` (default 1..-1) merged into one.
- Reshape: ``reshape_param.shape`` replaces axes ``axis..axis+num_axes`` (default all); a 0 copies the
  corresponding bottom dimension, one -1 is inferred.
"""

from __future__ import annotations

import numpy as np

from ..windows import pad
from .base import Layer, as_list, register


@register
class Input(Layer):
    type = "Input"
    n_bottom = (0, 0)
    n_top = (1, None)

    def configure(self):
        shapes = as_list(self.param("input_param").values.get("shape"))
        if len(shapes) not in (1, len(self.top_names)):
            raise self.error(f"input_param has {len(shapes)} shapes for {len(self.top_names)} tops")
        dims = []
        for s in shapes:
            d = as_list(s.get("dim") if isinstance(s, dict) else s)
            if any(int(v) < 0 for v in d):
                raise self.error(f"input shape dimensions must be >= 0, got {d}")
            dims.append(tuple(int(v) for v in d))
        self.shapes = dims * len(self.top_names) if len(dims) == 1 else dims

    def reshape(self, shapes):
        return list(self.shapes)

    def run_forward(self, bottoms):
        raise self.error("Input layers are filled by Net.forward(**inputs)")

    def run_backward(self, top_diffs, bottoms, tops):
        return []


@register
class Split(Layer):
    type = "Split"
    n_top = (1, None)

    def reshape(self, shapes):
        return [shapes[0]] * len(self.top_names)

    def run_forward(self, bottoms):
        return [bottoms[0].copy() for _ in self.top_names]

    def run_backward(self, top_diffs, bottoms, tops):
        return [sum(top_diffs[1:], top_diffs[0].copy())]


@register
class Crop(Layer):
    type = "Crop"
    n_bottom = (2, 2)
    label_bottoms = (1,)

    def configure(self):
        p = self.param("crop_param")
        self.axis = p.int("axis", 2)
        self.offsets = [p._as_int("offset", v, 0) for v in p.list("offset")]

    def _plan(self, shape, ref):
        if len(shape) != len(ref):
            raise self.error(f"both bottoms need the same number of axes, got {shape} and {ref}")
        a = self.axis + len(shape) if self.axis < 0 else self.axis
        if not 0 <= a < len(shape):
            raise self.error(f"axis {self.axis} out of range for {len(shape)}-D inputs")
        n = len(shape) - a
        offs = self.offsets or [0]
        if len(offs) == 1:
            offs = offs * n
        elif len(offs) != n:
            raise self.error(f"{len(offs)} offsets for {n} cropped axes (give 1 or {n})")
        slices = [slice(None)] * a
        for i, off in zip(range(a, len(shape)), offs):
            if shape[i] - off < ref[i]:
                raise self.error(f"axis {i}: cannot crop {ref[i]} values at offset {off} from "
                                 f"{shape[i]} (input {shape}, reference {ref})")
            slices.append(slice(off, off + ref[i]))
        return a, tuple(slices)

    def reshape(self, shapes):
        a, slices = self._plan(*shapes)
        return [tuple(shapes[0][:a]) + tuple(shapes[1][a:])]

    def run_forward(self, bottoms):
        _, slices = self._plan(bottoms[0].shape, bottoms[1].shape)
        return [bottoms[0][slices].copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        _, slices = self._plan(bottoms[0].shape, bottoms[1].shape)
        dx = np.zeros_like(bottoms[0])
        dx[slices] = top_diffs[0]
        return [dx, None]


@register
class Shift(Layer):
    """``y = pad(x, pad, fill)[..., r:, c:]``: pad both ends by ``pad`` (zeros, or ``-inf`` =
    absent for max pooling), then drop the first ``offset`` rows/columns.  With ``pad`` 0 it is a
    plain crop of the top-left corner."""
    type = "Shift"

    def configure(self):
        p = self.param("shift_param")
        self.offset = p.conv_spatial("offset", 0, 0)
        self.pad = p.conv_spatial("pad", 0, 0)
        fill = p.scalar("fill")
        if fill not in (None, "zero", "-inf"):
            raise p.error(f"fill must be 'zero' or '-inf', got {fill!r}")
        self.fill = -np.inf if fill == "-inf" else 0.0

    def reshape(self, shapes):
        s = shapes[0]
        hw = [s[2 + a] + 2 * self.pad[a] - self.offset[a] for a in (0, 1)] if len(s) == 4 else [0]
        if min(hw) < 1:
            raise self.error(f"cannot shift a {s} input by {self.offset} (pad {self.pad})")
        return [s[:2] + tuple(hw)]

    def run_forward(self, bottoms):
        xp = pad(bottoms[0], self.pad, self.fill)
        return [xp[:, :, self.offset[0]:, self.offset[1]:].copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * self.pad[0], x.shape[3] + 2 * self.pad[1]),
                       dtype=x.dtype)
        dxp[:, :, self.offset[0]:, self.offset[1]:] = top_diffs[0]
        return [dxp[:, :, self.pad[0]: self.pad[0] + x.shape[2], self.pad[1]: self.pad[1] + x.shape[3]].copy()]


def _canon(layer, axis, ndim, what, allow_end=False):
    a = axis + ndim + (1 if allow_end else 0) if axis < 0 else axis
    if not 0 <= a <= ndim - (0 if allow_end else 1):
        raise layer.error(f"{what} {axis} out of range for a {ndim}-D input")
    return a


@register
class Flatten(Layer):
    type = "Flatten"

    def configure(self):
        p = self.param("flatten_param")
        self.axis, self.end_axis = p.int("axis", 1), p.int("end_axis", -1)

    def reshape(self, shapes):
        s = shapes[0]
        a = _canon(self, self.axis, len(s), "axis")
        e = _canon(self, self.end_axis, len(s), "end_axis")
        if e < a:
            raise self.error(f"end_axis {self.end_axis} comes before axis {self.axis}")
        return [s[:a] + (int(np.prod(s[a:e + 1])),) + s[e + 1:]]

    def run_forward(self, bottoms):
        return [bottoms[0].reshape(self.reshape([bottoms[0].shape])[0]).copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        return [top_diffs[0].reshape(bottoms[0].shape).copy()]


@register
class Reshape(Layer):
    type = "Reshape"

    def configure(self):
        p = self.param("reshape_param")
        shape = p.values.get("shape") or {}
        self.dims = [int(d) for d in as_list(shape.get("dim") if isinstance(shape, dict) else shape)]
        if sum(d == -1 for d in self.dims) > 1 or any(d < -1 for d in self.dims):
            raise p.error(f"shape: at most one -1 and no other negative dims, got {self.dims}")
        self.axis, self.num_axes = p.int("axis", 0), p.int("num_axes", -1)

    def reshape(self, shapes):
        s = shapes[0]
        start = _canon(self, self.axis, len(s), "axis", allow_end=True)
        end = len(s) if self.num_axes == -1 else start + self.num_axes
        if self.num_axes < -1 or end > len(s):
            raise self.error(f"num_axes {self.num_axes} out of range for a {len(s)}-D input")
        new = []
        for i, d in enumerate(self.dims):
            if d == 0:
                if start + i >= len(s):
                    raise self.error(f"shape dim {i} is 0 (copy) but the input has no axis {start + i}")
                d = s[start + i]
            new.append(d)
        total = int(np.prod(s))
        known = int(np.prod([d for d in new if d != -1] + list(s[:start]) + list(s[end:])))
        if -1 in new:
            if known == 0 or total % known:
                raise self.error(f"cannot infer the -1 dimension reshaping {s} to {self.dims}")
            new[new.index(-1)] = total // known
        out = tuple(s[:start]) + tuple(new) + tuple(s[end:])
        if int(np.prod(out)) != total:
            raise self.error(f"cannot reshape {s} ({total} values) to {out}")
        return [out]

    def run_forward(self, bottoms):
        return [bottoms[0].reshape(self.reshape([bottoms[0].shape])[0]).copy()]

    def run_backward(self, top_diffs, bottoms, tops):
        return [top_diffs[0].reshape(bottoms[0].shape).copy()]
