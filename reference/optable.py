"""The op table: one declarative description of the six ops that drives the tests of every backend
(reference, numba CPU, numba CUDA), the gradient checks and ``econv vectors``.

Each :class:`OpSpec` says which arrays an op takes, which keyword parameters, and how to call its
forward and backward on any implementation (an object with the six functions).  :func:`cases`
draws a deterministic list of :class:`OpCase` (random shapes, est 1-4, strides 1-3, pads 0-2,
groups, rectangular kernels, both pooling modes and roundings, pad_end); max-pooling inputs are a
permutation of well-separated values, so no window has a tie.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .pool import pool_geometry
from .sizes import conv_out_size, deconv_out_size, extent

__all__ = ["OpSpec", "OpCase", "OPS", "cases"]


@dataclass(frozen=True)
class OpSpec:
    name: str
    arrays: tuple            # differentiable array arguments, in call order
    params: tuple            # keyword parameters
    grads: tuple             # what the backward returns, in order

    @property
    def backward_name(self) -> str:
        return self.name + "_backward"

    def forward(self, impl, arrays: dict, params: dict):
        fn = getattr(impl, self.name)
        if self.name == "pool2d":
            return fn(arrays["x"], **params)
        return fn(arrays["x"], arrays["w"], arrays.get("b"), **params)

    def vjp(self, impl, arrays: dict, params: dict, dy) -> dict:
        """``{array name: gradient}`` for the cotangent ``dy``."""
        fn = getattr(impl, self.backward_name)
        if self.name == "pool2d":
            return {"dx": fn(dy, arrays["x"], **params)}
        dx, dw, db = fn(dy, arrays["x"], arrays["w"], **params, bias="b" in arrays)
        out = {"dx": dx, "dw": dw}
        if "b" in arrays:
            out["db"] = db
        return out


OPS = {
    "conv2d": OpSpec("conv2d", ("x", "w", "b"), ("stride", "pad", "est", "group"), ("dx", "dw", "db")),
    "deconv2d": OpSpec("deconv2d", ("x", "w", "b"), ("stride", "pad", "est", "group"), ("dx", "dw", "db")),
    "pool2d": OpSpec("pool2d", ("x",), ("kernel", "stride", "pad", "est", "mode", "round_mode", "pad_end"),
                     ("dx",)),
}


@dataclass
class OpCase:
    op: str
    name: str
    arrays: dict
    params: dict
    dy: np.ndarray = field(repr=False, default=None)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    def astype(self, dtype) -> "OpCase":
        cast = {k: v.astype(dtype) for k, v in self.arrays.items()}
        return OpCase(self.op, self.name, cast, dict(self.params), self.dy.astype(dtype))


def _hw(rng, lo, hi, square_p=0.5):
    a = int(rng.integers(lo, hi + 1))
    return (a, a) if rng.random() < square_p else (a, int(rng.integers(lo, hi + 1)))


def _distinct(rng, shape):
    """Values with no two closer than 1 / size: a shuffled ramp (no ties in any max window)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) / max(n, 1) * 4 - 2).reshape(shape)


def _draw(op, rng, big):
    """One random valid case of ``op`` (None when the draw makes no valid op)."""
    n = int(rng.integers(1, 3))
    est = _hw(rng, 1, 4)
    stride = _hw(rng, 1, 3)
    pad = _hw(rng, 0, 2)
    kernel = _hw(rng, 1, 3)
    hi = 14 if big else 9
    hw = (int(rng.integers(3, hi)), int(rng.integers(3, hi)))
    if op == "pool2d":
        mode = "max" if rng.random() < 0.5 else "ave"
        round_mode = "ceil" if rng.random() < 0.75 else "floor"
        pad_end = _hw(rng, 0, 2) if rng.random() < 0.25 else (0, 0)
        pad = tuple(min(p, extent(k, e) - 1) for p, k, e in zip(pad, kernel, est))
        c = int(rng.integers(1, 4))
        try:   # the pooling geometry decides the clip rule for both axes at once, as Caffe does
            out = pool_geometry("pool2d", (n, c) + hw, kernel, stride, pad, est, mode, round_mode,
                                pad_end).out_hw
        except ValueError:
            return None
        x = _distinct(rng, (n, c) + hw)
        params = dict(kernel=kernel, stride=stride, pad=pad, est=est, mode=mode,
                      round_mode=round_mode, pad_end=pad_end)
        return {"x": x}, params, (n, c) + tuple(out)
    group = int(rng.choice([1, 1, 2, 3]))
    c_in = group * int(rng.integers(1, 3))
    c_out = group * int(rng.integers(1, 3))
    try:
        if op == "conv2d":
            out = [conv_out_size(hw[a], kernel[a], stride[a], pad[a], est[a]) for a in (0, 1)]
            w = rng.normal(size=(c_out, c_in // group) + kernel)
        else:
            out = [deconv_out_size(hw[a], kernel[a], stride[a], pad[a], est[a]) for a in (0, 1)]
            w = rng.normal(size=(c_in, c_out // group) + kernel)
    except ValueError:
        return None
    arrays = {"x": rng.normal(size=(n, c_in) + hw), "w": w}
    if rng.random() < 0.75:
        arrays["b"] = rng.normal(size=(c_out,))
    params = dict(stride=stride, pad=pad, est=est, group=group)
    return arrays, params, (n, c_out) + tuple(out)


def cases(op: str | None = None, count: int = 12, seed: int = 0, big: bool = False) -> list[OpCase]:
    """``count`` deterministic random cases per op (float64; use :meth:`OpCase.astype`)."""
    ops = [op] if op else list(OPS)
    out = []
    for name in ops:
        if name not in OPS:
            raise ValueError(f"unknown op {name!r} (known: {', '.join(OPS)})")
        rng = np.random.default_rng([seed, list(OPS).index(name)])
        made = 0
        while made < count:
            drawn = _draw(name, rng, big)
            if drawn is None:
                continue
            arrays, params, out_shape = drawn
            label = "_".join(f"{k}{v[0]}x{v[1]}" if isinstance(v, tuple) else f"{k}{v}"
                             for k, v in params.items())
            out.append(OpCase(name, f"{name}_{made}_{label}", arrays, params,
                              rng.normal(size=out_shape)))
            made += 1
    return out
