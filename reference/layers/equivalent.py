"""The two layers densify adds for FCNs (econv extensions, no Caffe counterpart).

- ``EDeconvolution``: the equivalent deconvolution of :mod:`reference.edeconv`.  Its
  ``convolution_param`` is the original Deconvolution's (kernel, stride s, pad, dilation, group,
  bias_term, fillers: the parameters have the same shapes, so dpoa copies them by name) plus the
  extension field ``grid: [E_h, E_w]``, the equivalent stride of its output.
- ``Mask``: ``y = x * m`` with ``m`` a validity mask of a dense blob whose fragments have different
  lengths (DESIGN.md section 4, "Extents").  ``mask_param { step: [E_h, E_w] valid_h: [...]
  valid_w: [...] size: [H, W] }``: position ``(P, Q)`` is valid when ``P // E_h < valid_h[P % E_h]``
  and likewise for ``Q`` (fragment ``(P % E_h, Q % E_w)`` has ``valid_h[P % E_h]`` rows).  Invalid
  positions read as absent (zero) for the next convolution, deconvolution or sum.  The mask was
  computed for a blob of spatial size ``size``; another size is refused (densify again for it).

  Example: step 2, valid_h = [3, 2], size 6: rows 0..5 are phases 0,1,0,1,0,1 at fragment rows
  0,0,1,1,2,2; row 5 (phase 1, fragment row 2 >= 2) is invalid.
"""

from __future__ import annotations

import numpy as np

from ..edeconv import edeconv2d, edeconv2d_backward, edeconv_geometry
from .base import Layer, register
from .vision import _ConvBase


def valid_positions(size: int, step: int, valid) -> np.ndarray:
    """Boolean vector: ``P // step < valid[P % step]`` for ``P < size``."""
    p = np.arange(size)
    return p // step < np.asarray(valid)[p % step]


def valid_mask(size_hw, step_hw, valid_hw) -> np.ndarray:
    """The (H, W) boolean mask of a dense blob: valid rows times valid columns."""
    rows, cols = (valid_positions(size_hw[a], step_hw[a], valid_hw[a]) for a in (0, 1))
    return rows[:, None] & cols[None, :]


@register
class EDeconvolution(_ConvBase):
    """Equivalent deconvolution: weights (C, O/G, kh, kw) as Deconvolution, bias (O,)."""
    type = "EDeconvolution"

    def configure(self):
        super().configure()
        self.grid = self.param("convolution_param").conv_spatial("grid", 1, 1)

    def _geometry(self, shape):
        return edeconv_geometry(f"layer {self.name!r} (EDeconvolution)", shape, self.blobs[0].shape,
                                self.stride, self.pad, self.est, self.group, self.grid)

    def reshape(self, shapes):
        self._check_bottoms(shapes)
        self._ensure_blobs((shapes[0][1], self.num_output // self.group) + self.kernel)
        out_hw = self._geometry(shapes[0])[5]
        return [(s[0], self.num_output) + out_hw for s in shapes]

    def _op(self, x):
        return edeconv2d(x, self.blobs[0], self.bias, self.stride, self.pad, self.est, self.group,
                         self.grid)

    def _op_backward(self, dy, x):
        return edeconv2d_backward(dy, x, self.blobs[0], self.stride, self.pad, self.est, self.group,
                                  self.grid, self.bias_term)


@register
class Mask(Layer):
    """Zero the positions past each fragment's end (module docstring); may run in place."""
    type = "Mask"

    def configure(self):
        p = self.param("mask_param")
        self.step = p.conv_spatial("step", 1, 1)
        self.size = p.conv_spatial("size", None, 1)
        self.valid = []
        for axis, key in enumerate(("valid_h", "valid_w")):
            v = [p._as_int(key, x, 0) for x in p.list(key)]
            if len(v) != self.step[axis]:
                raise p.error(f"{key} needs one length per phase ({self.step[axis]}), got {len(v)}")
            self.valid.append(v)
        self.mask = valid_mask(self.size, self.step, self.valid)

    def reshape(self, shapes):
        s = shapes[0]
        if len(s) != 4 or tuple(s[2:]) != self.size:
            raise self.error(f"built for a (N, C, {self.size[0]}, {self.size[1]}) blob, got {s}: the dense "
                             f"net's validity masks hold for one input size; densify again for this one")
        return [tuple(s)]

    def run_forward(self, bottoms):
        return [bottoms[0] * self.mask.astype(bottoms[0].dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        return [top_diffs[0] * self.mask.astype(top_diffs[0].dtype)]
