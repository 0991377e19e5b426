"""Caffe's weight fillers (``include/caffe/filler.hpp``): constant, uniform, gaussian, xavier, msra,
bilinear.  ``fan_in = count / shape[0]``, ``fan_out = count / shape[1]`` as in Caffe.

Bilinear (for a k x k deconvolution kernel): ``f = ceil(k / 2)``, ``c = (k - 1) / (2f)`` (BVLC master;
older Caffe used ``(2f - 1 - f % 2) / (2f)``, wrong for odd k),
``w[..., y, x] = (1 - |x / f - c|) * (1 - |y / f - c|)``; k = 4 gives the profile 0.25, 0.75, 0.75, 0.25,
k = 3 gives 0.5, 1, 0.5.
"""

from __future__ import annotations

import math

import numpy as np

from .params import ParamReader


def _fans(shape):
    count = int(np.prod(shape))
    fan_in = count / shape[0] if len(shape) > 0 and shape[0] else count
    fan_out = count / shape[1] if len(shape) > 1 and shape[1] else count
    return fan_in, fan_out


def _norm(p: ParamReader, shape) -> float:
    fan_in, fan_out = _fans(shape)
    mode = p.enum("variance_norm", "FAN_IN")
    return {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}[mode]


def bilinear(shape) -> np.ndarray:
    """Caffe's bilinear filler for a (.., .., k, k) blob, every (out, in) slice the same kernel."""
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ValueError(f"bilinear filler needs a 4-D blob with a square kernel, got {tuple(shape)}")
    k = shape[3]
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    profile = 1 - np.abs(np.arange(k) / f - c)
    return np.broadcast_to(np.outer(profile, profile), shape).copy()


def fill(spec: dict | None, shape, rng: np.random.Generator, dtype, where: str,
         default: str = "constant") -> np.ndarray:
    """A new array of ``shape`` filled as the FillerParameter dict ``spec`` says."""
    p = ParamReader("", "", "filler", spec)
    p.where = where
    kind = str(p.scalar("type") or default)
    shape = tuple(int(s) for s in shape)
    if kind == "constant":
        out = np.full(shape, p.float("value", 0.0))
    elif kind == "uniform":
        out = rng.uniform(p.float("min", 0.0), p.float("max", 1.0), shape)
    elif kind == "gaussian":
        out = rng.normal(p.float("mean", 0.0), p.float("std", 1.0), shape)
        sparse = p.int("sparse", -1)
        if sparse >= 0:  # Caffe: keep each weight with probability sparse / num_inputs
            keep = sparse / (shape[1] if len(shape) > 1 else 1)
            out *= rng.random(shape) < keep
    elif kind == "xavier":
        scale = math.sqrt(3.0 / _norm(p, shape))
        out = rng.uniform(-scale, scale, shape)
    elif kind == "msra":
        out = rng.normal(0.0, math.sqrt(2.0 / _norm(p, shape)), shape)
    elif kind == "bilinear":
        out = bilinear(shape)
    else:
        raise ValueError(f"{where}: unknown filler type {kind!r} (constant, uniform, gaussian, "
                         f"xavier, msra, bilinear)")
    return np.array(out, dtype=dtype, order="C")  # keeps 0-d blobs 0-d (Scale with num_axes 0)
