"""Fixed bilinear upsampling: recognising it from a Deconvolution's weights, and building one.

FCN upsamples each class map on its own with a bilinear kernel.  Two layouts exist in the wild:

- a group Deconvolution (``group = C``, weights ``(C, 1, k, k)``, Caffe's ``bilinear`` filler), as
  :mod:`reference.fcn` builds it;
- the published voc-fcn8s layout: ``group = 1``, weights ``(C, C, k, k)`` with no filler in the
  prototxt; FCN's ``surgery.interp`` (shelhamer/fcn.berkeleyvision.org ``surgery.py``, ``interp`` and
  ``upsample_filt``) writes the kernel on the diagonal ``w[i, i]`` and the caffemodel carries it.

Both are "the bilinear kernel on the group diagonal": with weights ``(C_in, C_out/g, k, k)``,
input channel ``i`` and local output index ``j`` (global output ``(i // (C_in/g)) * (C_out/g) + j``),
``w[i, j]`` is the kernel when that global output is ``i`` and zero otherwise.

The kernel is FCN's ``upsample_filt(k)``: ``factor = (k + 1) // 2``, centre ``(k - 1) / 2``,
``K[y, x] = (1 - |y - centre| / factor) * (1 - |x - centre| / factor)``; it equals BVLC master's
bilinear filler (``include/caffe/filler.hpp``, ``BilinearFiller``: ``f = ceil(k/2)``,
``c = (k - 1) / (2f)``) for every k.  Worked example: k = 4 gives the profile 0.25, 0.75, 0.75, 0.25;
k = 16 (voc-fcn8s's upscore8) gives 1/16, 3/16, ..., 15/16, 15/16, ..., 1/16.

Such a layer is a fixed function of its input whatever its prototxt says about ``lr_mult``: densify
may rebuild it for a finer grid (:func:`reference.dense.densify`, Note [Dense FCN]).
"""

from __future__ import annotations

import numpy as np

from .fillers import bilinear

__all__ = ["upsample_filt", "diagonal_bilinear", "is_diagonal_bilinear"]


def upsample_filt(k: int) -> np.ndarray:
    """FCN's ``upsample_filt``: the (k, k) bilinear kernel (module docstring)."""
    return bilinear((1, 1, k, k))[0, 0]


def _diagonal(shape, group: int) -> np.ndarray:
    """Boolean ``(C_in, C_out/g)``: where the output channel is the input channel itself."""
    c_in, c_out_g = shape[0], shape[1]
    c_in_g = c_in // group
    i = np.arange(c_in)[:, None]
    j = np.arange(c_out_g)[None, :]
    return (i // c_in_g) * c_out_g + j == i


def diagonal_bilinear(shape, group: int, dtype=np.float64) -> np.ndarray:
    """Deconvolution weights of ``shape`` ``(C, C/g, k, k)``: the bilinear kernel on the diagonal."""
    c_in, c_out_g, kh, kw = shape
    if kh != kw or c_in != c_out_g * group:
        raise ValueError(f"a bilinear upsampling needs a square kernel and as many outputs as inputs, "
                         f"got weights {tuple(shape)} with group {group}")
    out = np.zeros(shape, dtype)
    out[_diagonal(shape, group)] = upsample_filt(kh)
    return out


def is_diagonal_bilinear(w: np.ndarray, group: int, rtol: float = 1e-6) -> bool:
    """True when ``w`` (a Deconvolution's weights) is the bilinear kernel on the group diagonal and zero
    elsewhere, to ``rtol`` of the kernel's peak (weights stored as float32 round to about 6e-8)."""
    c_in, c_out_g, kh, kw = w.shape
    if kh != kw or c_in != c_out_g * group or kh < 1:
        return False
    return bool(np.allclose(w, diagonal_bilinear(w.shape, group), rtol=0, atol=rtol))
