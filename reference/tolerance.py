"""The one tolerance table of econv, keyed by dtype.

Parity (a backend against the reference) and equivalence (a dense net against the original) are
measured the same way: ``max |ours - reference| / max(1, max |reference|)`` must not exceed
``TOLERANCE[dtype]`` (DESIGN.md section 4: 1e-10 in float64, 1e-5 in float32).  Finite-difference
gradient checks run in float64 and use ``GRADCHECK_RTOL`` (central differences with step
``GRADCHECK_EPS`` are accurate to about eps^2 plus rounding / eps).
"""

from __future__ import annotations

import numpy as np

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
GRADCHECK_EPS = 1e-6
GRADCHECK_RTOL = 1e-5
ADJOINT_RTOL = 1e-11

# The Caffe fixtures (tests/data/caffe) were computed by Caffe in float32 with OpenBLAS.  The worst
# error measured over every blob, diff and parameter diff of the four nets, with the same measure as
# above, is 4.7e-7 (conv_pool fc/0's diff in float32; 4.5e-7 in float64, where the error is Caffe's
# own float32 rounding); 2e-6 is about 4x that.  A BatchNorm eps 10x too large gives 8.5e-5 (misc's
# "bn" blob) and fails; the fixtures' first tolerance, 1e-4, let it pass.
CAFFE_FIXTURE_RTOL = 2e-6


# Whole nets run by another runtime (``econv compare``): a float32 runtime's rounding accumulates
# through the layers and grows with the fan-in (VGG-16 at 224 in OpenCV 4.14: 1.02e-5 at conv1_2, fan-in
# 576, the other 37 blobs below 1e-5); real Caffe's own float32 blobs are checked to 1e-4
# (tests/data/caffe/README.md).  Every runtime bug found so far is above 1e-1.
NET_TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def net_tolerance(dtype) -> float:
    """The default tolerance of a whole-net comparison (``econv compare``) in ``dtype``."""
    try:
        return NET_TOLERANCE[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no tolerance for dtype {np.dtype(dtype)} (float32 or float64)") from None


def tolerance(dtype) -> float:
    try:
        return TOLERANCE[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no tolerance for dtype {np.dtype(dtype)} (float32 or float64)") from None


def max_rel_err(ours, reference) -> float:
    """``max |ours - reference| / max(1, max |reference|)`` in float64; shapes must match."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.shape != reference.shape:
        raise ValueError(f"shape mismatch: {ours.shape} vs reference {reference.shape}")
    if reference.size == 0:
        return 0.0
    return float(np.abs(ours - reference).max() / max(1.0, float(np.abs(reference).max())))
