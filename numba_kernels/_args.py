"""Argument checks shared by the CPU and CUDA kernels: the reference's own validation and geometry
(:mod:`reference.checks`, :func:`reference.conv.conv_geometry`, :func:`reference.deconv.deconv_geometry`,
:func:`reference.pool.pool_geometry`), so every backend raises the same ValueError for the same bad
argument and all output sizes come from :mod:`reference.sizes`.

The checks look only at ``shape``, ``ndim`` and ``dtype``, so they serve NumPy arrays and numba
device arrays alike (``check_x`` applies :func:`reference.checks.check_array` to NumPy arrays and the
same rules, with the same messages, to device arrays).
"""

from __future__ import annotations

import numpy as np

from reference.checks import FLOAT_DTYPES, check_array
from reference.conv import conv_geometry
from reference.deconv import deconv_geometry
from reference.pool import pool_geometry

__all__ = ["check_x", "check_shape", "conv_geometry", "deconv_geometry", "pool_geometry", "image_chunks"]


def is_device_array(a) -> bool:
    """A numba device array (real or simulated): it has ``copy_to_host`` and no buffer protocol."""
    return hasattr(a, "copy_to_host") and not isinstance(a, np.ndarray)


def check_x(x, what: str, name: str = "x"):
    """``x`` as a float32/float64 4-D array (NumPy: :func:`reference.checks.check_array`)."""
    if not is_device_array(x):
        return check_array(x, what, name)
    dtype = np.dtype(x.dtype)
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{what}: {name} must be float32 or float64, got {dtype}")
    if len(x.shape) != 4:
        raise ValueError(f"{what}: {name} must have 4 axes (NCHW), got shape {tuple(x.shape)}")
    return x


def check_shape(a, what: str, name: str, shape):
    """The reference's shape check of ``dy`` and ``b`` (:func:`reference.checks.like`)."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{what}: {name} must have shape {tuple(shape)}, got {tuple(a.shape)}")
    return a


def image_chunks(n: int, per_image: int, budget: int) -> list:
    """Slices of a batch of ``n`` images whose scratch (``per_image`` elements per image) stays under
    ``budget`` elements; at least one image per slice."""
    step = max(1, min(n, budget // max(1, per_image)))
    return [slice(a, min(n, a + step)) for a in range(0, n, step)]
