"""Argument checks shared by the reference ops: clear ValueErrors instead of crashes inside NumPy."""

from __future__ import annotations

import numpy as np

from .sizes import pair

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(a, what: str, name: str, ndim: int | None = 4) -> np.ndarray:
    """``a`` as a float32/float64 ndarray of ``ndim`` axes, or a ValueError naming ``what``/``name``."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{what}: {name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{what}: {name} must be float32 or float64, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{what}: {name} must have {ndim} axes (NCHW), got shape {a.shape}")
    return a


def spatial_args(what: str, stride, pad, est):
    """Normalise ``stride`` (>= 1), ``pad`` (>= 0) and ``est`` (>= 1) to ``(h, w)`` pairs."""
    return (pair(stride, f"{what}: stride", 1), pair(pad, f"{what}: pad", 0),
            pair(est, f"{what}: est", 1))


def check_group(what: str, group, c_in: int, c_out: int | None = None) -> int:
    """``group`` as an int that divides the channel counts, or a ValueError."""
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise ValueError(f"{what}: group must be a positive integer, got {group!r}")
    if c_in % group:
        raise ValueError(f"{what}: input channels {c_in} not divisible by group {group}")
    if c_out is not None and c_out % group:
        raise ValueError(f"{what}: output channels {c_out} not divisible by group {group}")
    return int(group)


def check_operands(what: str, x, w):
    """``x`` checked (float, 4-D) and ``w`` in ``x``'s dtype: the ops compute in their input's dtype.
    (The weight's layout is checked by the op's geometry.)"""
    x = check_array(x, what, "x")
    return x, like(w, x.dtype, what, "w")


def like(a, dtype, what: str, name: str, shape=None):
    """``a`` converted to ``dtype`` (the op computes in its input's dtype), shape-checked."""
    a = np.asarray(a)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{what}: {name} must have shape {tuple(shape)}, got {a.shape}")
    return a.astype(dtype, copy=False)


def group_slices(group: int, c_in: int, c_out: int):
    """Channel slices ``(input, output)`` of each group (Caffe: group g uses the g-th block of each)."""
    ci, co = c_in // group, c_out // group
    return [(slice(g * ci, (g + 1) * ci), slice(g * co, (g + 1) * co)) for g in range(group)]
