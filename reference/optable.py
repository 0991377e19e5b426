"""The op table: one declarative description of the six ops that drives the tests of every backend
(reference, numba CPU, numba CUDA), the gradient checks and ``econv vectors``.

Each :class:`OpSpec` says which arrays an op takes, which keyword parameters, and how to call its
forward and backward on any implementation (an object with the six functions).  :func:`cases`
draws a deterministic list of :class:`OpCase` (random shapes, est 1-4, strides 1-3, pads 0-2,
groups, rectangular kernels, both pooling modes and roundings, pad_end); max-pooling inputs are a
permutation of well-separated values, so no window has a tie.

:func:`hard_cases` adds fixed, named cases that each pin down one rule a plausible implementation
gets wrong (the ``note`` of each case says which): est > 1 in the weight gradient, Caffe's ceil
windows that hang over the padded input, a window that starts past the image, the average divisor at
the border, ``pad_end``, padding that must never win a maximum, and MAX ties.  :data:`TIE_RULE` is the
tie rule the tie cases test.  :func:`table` is both lists together: what ``oracle.verify`` and
``econv vectors`` run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .pool import EMPTY_AVE_WINDOW, pool_geometry
from .sizes import conv_out_size, deconv_out_size, extent

__all__ = ["OpSpec", "OpCase", "OPS", "TIE_RULE", "cases", "hard_cases", "table"]


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
    note: str = ""           # what a hard case tests ("" for the random ones)

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]

    @property
    def convention(self) -> str:
        """The econv convention this case's expected values rest on, where they differ from Caffe's
        (today only :data:`reference.pool.EMPTY_AVE_WINDOW`); "" for a case Caffe computes alike."""
        if self.op != "pool2d" or self.params.get("mode") != "ave":
            return ""
        p = self.params
        geo = pool_geometry(self.name, self.arrays["x"].shape, p["kernel"], p["stride"], p["pad"],
                            p["est"], p["mode"], p["round_mode"], p["pad_end"])
        return EMPTY_AVE_WINDOW if geo.empty_windows() else ""

    def astype(self, dtype) -> "OpCase":
        cast = {k: v.astype(dtype) for k, v in self.arrays.items()}
        return OpCase(self.op, self.name, cast, dict(self.params), self.dy.astype(dtype), self.note)


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
        if any(hw[a] + 2 * pad[a] + pad_end[a] < extent(kernel[a], est[a]) for a in (0, 1)):
            return None   # a window larger than the input (Caffe clips it; PyTorch refuses): not drawn,
            #               so the random cases stay those drawn before sizes.py allowed it
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


# ---- hard cases: one rule each -------------------------------------------------------------------

TIE_RULE = ("MAX ties: the first maximum in row-major tap order (tap row i outer, tap column j inner) "
            "is the output's argmax and takes the whole gradient (Caffe's strict '>' scan)")


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _conv_case(name, note, x_shape, w_shape, bias=True, stride=1, pad=0, est=1, group=1):
    """A conv2d/deconv2d case (the op is the name's first word): normal random arrays seeded by the
    name.  Weights: conv (O, C/G, kh, kw), deconv (C, O/G, kh, kw)."""
    op = name.split("_")[0]
    rng = np.random.default_rng(list(name.encode()))
    arrays = {"x": rng.normal(size=x_shape), "w": rng.normal(size=w_shape)}
    if bias:
        arrays["b"] = rng.normal(size=(w_shape[0] if op == "conv2d" else w_shape[1] * group,))
    params = dict(stride=_pair(stride), pad=_pair(pad), est=_pair(est), group=group)
    return op, name, note, arrays, params, rng


def _pool_case(name, note, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """A pool2d case on the given input ``x`` (N, C, H, W)."""
    rng = np.random.default_rng(list(name.encode()))
    params = dict(kernel=_pair(kernel), stride=_pair(stride), pad=_pair(pad), est=_pair(est), mode=mode,
                  round_mode=round_mode, pad_end=_pair(pad_end))
    return "pool2d", name, note, {"x": np.asarray(x, dtype=np.float64)}, params, rng


def _ties(rng, shape, levels=3):
    """Small integers (exact in float32): nearly every MAX window holds a tie."""
    return rng.integers(0, levels, size=shape).astype(np.float64)


def _hard_specs():
    d = np.random.default_rng(7)   # only for the distinct-valued pooling inputs below
    return [
        # eConv: the weight gradient reads x at taps est apart; est on one axis only; groups
        _conv_case("conv2d_hard_est2_dw", "est 2: dw[o, c, i, j] sums dy * x at taps 2 apart "
                   "(a weight gradient computed as if est = 1 fails here)",
                   (1, 2, 7, 8), (3, 2, 3, 3), stride=1, pad=1, est=2),
        _conv_case("conv2d_hard_est3x1_groups_rect", "est (3, 1), kernel 2x3, groups 2, stride (2, 1), "
                   "pad (2, 0)", (2, 4, 9, 7), (4, 2, 2, 3), stride=(2, 1), pad=(2, 0), est=(3, 1), group=2),
        _conv_case("conv2d_hard_est1_stride3_rect", "est 1 control: kernel 3x1, stride (3, 2), pad (2, 1)",
                   (1, 3, 8, 7), (2, 3, 3, 1), bias=False, stride=(3, 2), pad=(2, 1)),
        # eDeconv: the transpose; est with stride and padding
        _conv_case("deconv2d_hard_est2_stride2_pad1", "est 2 with stride 2 and pad 1",
                   (1, 2, 4, 5), (2, 3, 3, 3), stride=2, pad=1, est=2),
        _conv_case("deconv2d_hard_est1x3_groups_rect", "est (1, 3), kernel 2x3, groups 2, stride (1, 3), "
                   "pad (0, 2)", (2, 4, 3, 4), (4, 1, 2, 3), stride=(1, 3), pad=(0, 2), est=(1, 3), group=2),
        # ePool: Caffe's ceil rounding (floor gives fewer outputs), the clip rule, pad_end
        _pool_case("pool2d_hard_ceil_overhang_max", "ceil: 3 rows (floor: 2); the last window hangs "
                   "over the bottom of the 6x7 input", _distinct(d, (1, 2, 6, 7)), kernel=3, stride=2),
        _pool_case("pool2d_hard_ceil_overhang_pad_ave", "Caffe's worked example: 4x4, k 3, s 2, p 1, AVE: "
                   "3x3 outputs (floor: 2x2); divisors 9 at (0, 0) (5 of its 9 taps are padding), 6 at "
                   "(0, 2), 4 at (2, 2) (the overhang past H + p is not counted)",
                   d.normal(size=(1, 1, 4, 4)), kernel=3, stride=2, pad=1, mode="ave"),
        _pool_case("pool2d_hard_ave_border_est2", "AVE divisor counts the padding taps, not the in-image "
                   "count: est 2, k 3, s 1, p 2 on 7x8", d.normal(size=(1, 2, 7, 8)),
                   kernel=3, stride=1, pad=2, est=2, mode="ave"),
        _pool_case("pool2d_hard_ave_rect_pad", "AVE, kernel 2x3, stride (2, 1), pad (1, 1), ceil overhang",
                   d.normal(size=(2, 1, 5, 6)), kernel=(2, 3), stride=(2, 1), pad=1, mode="ave"),
        _pool_case("pool2d_hard_window_past_end_max", "no padding, so no clip (Caffe issue #6881): ceil "
                   "keeps a 4th window that starts at column 6, past the 6-wide input; it holds no "
                   "value, gives -FLT_MAX and passes no gradient", _distinct(d, (1, 1, 3, 6)),
                   kernel=1, stride=(1, 2)),
        _pool_case("pool2d_hard_window_past_end_ave", "the same window past the end in AVE: divisor 0, "
                   "output 0 and no gradient (an econv convention: Caffe computes 0/0 = NaN here)",
                   d.normal(size=(1, 1, 3, 6)), kernel=1, stride=(1, 2), mode="ave"),
        _pool_case("pool2d_hard_pad_end_max", "pad_end (1, 2): absent positions at the bottom/right, "
                   "never a maximum", _distinct(d, (1, 2, 5, 5)), kernel=2, stride=2, pad_end=(1, 2)),
        _pool_case("pool2d_hard_pad_end_ave", "pad_end (2, 1) with pad 1: pad_end positions are not "
                   "counted by the divisor", d.normal(size=(1, 1, 5, 6)), kernel=3, stride=2, pad=1,
                   pad_end=(2, 1), mode="ave"),
        _pool_case("pool2d_hard_negative_pad_max", "all inputs negative with pad 1: padding never wins "
                   "(padding with 0 fails here)", _distinct(d, (1, 1, 5, 5)) - 3, kernel=3, stride=2, pad=1),
        # MAX ties (TIE_RULE): integer inputs, exact in float32
        _pool_case("pool2d_hard_tie_overlap", TIE_RULE + "; 0/1/2 inputs, k 2, s 1 "
                   "(overlapping windows)", _ties(d, (1, 2, 5, 6)), kernel=2),
        _pool_case("pool2d_hard_tie_est2_pad", TIE_RULE + "; est 2, k 3, s 2, p 1, ceil",
                   _ties(d, (2, 1, 7, 6)), kernel=3, stride=2, pad=1, est=2),
        _pool_case("pool2d_hard_tie_constant_rect", TIE_RULE + "; every input is -1 (each "
                   "window is one tie; padding, which never wins, is not 0 either), kernel 3x2, "
                   "stride (1, 2), pad (1, 0)", -np.ones((1, 1, 4, 5)), kernel=(3, 2), stride=(1, 2),
                   pad=(1, 0)),
    ]


def hard_cases(op: str | None = None) -> list[OpCase]:
    """The fixed hard cases (float64), each with a ``note`` saying what it tests; ``op`` filters."""
    from . import ops as reference_ops

    out = []
    for case_op, name, note, arrays, params, rng in _hard_specs():
        if op is not None and case_op != op:
            continue
        y = OPS[case_op].forward(reference_ops, arrays, params)
        out.append(OpCase(case_op, name, arrays, params, rng.normal(size=y.shape), note))
    return out


def table(op: str | None = None, count: int = 12, seed: int = 0, big: bool = False) -> list[OpCase]:
    """The whole case table: :func:`hard_cases` then ``count`` random :func:`cases` per op."""
    return hard_cases(op) + cases(op, count=count, seed=seed, big=big)
