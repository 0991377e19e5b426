"""The catalogue of convention knobs other runtimes get wrong, per Caffe layer type.

Each :class:`Alternative` is one way a runtime can read a layer differently from Caffe (a pooling
size rule, a divisor, an ignored parameter...).  ``compute(spec, blobs, bottoms)`` recomputes the
layer *under that alternative* with the reference's own pieces (the layer classes of
:mod:`reference.layers` on an edited spec, or :mod:`reference.windows` for the pooling variants), in
float64.  :func:`explain` tries every alternative of a layer's type on the values a runtime produced
and names the one that reproduces them::

    >>> spec = {"name": "n", "type": "LRN", "bottom": ["x"], "top": ["y"],
    ...         "lrn_param": {"local_size": 3, "alpha": 0.5, "k": 2.0}}
    >>> x = np.linspace(-2, 2, 2 * 4 * 3 * 3).reshape(2, 4, 3, 3)
    >>> theirs = layer_forward({**spec, "lrn_param": {"local_size": 3, "alpha": 0.5}}, [], [x])[0]
    >>> explain(spec, [], [x], theirs).words              # doctest: +ELLIPSIS
    'lrn_param.k ignored (k=1 reproduces theirs to ...)'

Pooling is a product of four knobs, each either Caffe's rule or a runtime's (every combination is
tried, fewest changed knobs first):

- rounding: ``ceil`` (Caffe's default) or ``floor`` (``round_mode`` read the other way);
- the clip rule: Caffe drops a last window that starts at or past ``H + pad`` only when the layer has
  padding (``if (pad_h_ || pad_w_)``: BVLC/caffe src/caffe/layers/pooling_layer.cpp, the output size
  computation, lines 66-81 at commit 0323844 -- ``LayerSetUp`` there, ``Reshape`` in later versions);
  runtimes apply the test ``always`` (PyTorch) or ``never``;
- the AVE divisor: Caffe counts the taps inside ``[-pad, H + pad)``; runtimes count only the real
  pixels (``count_include_pad=False``) or the whole ``k*k`` window (the ceil overhang included);
- the value of a window with no real pixel: Caffe's MAX gives ``-FLT_MAX`` (its initial accumulator);
  runtimes give 0 or -inf.  AVE: Caffe's own code divides 0 by a pool size of 0 (``pool_size`` is taken
  before clipping to the image, same file), NaN; econv's oracle gives 0 (reference/pool.py), so a
  runtime that gives NaN there is Caffe-exact and is explained as such.

The other types have one alternative per knob (an ignored parameter, a missing bias, a factor not
applied); see :data:`CATALOGUE`.  The error is measured as everywhere in econv:
``max |theirs - alternative| / max(1, max |alternative|)`` (:func:`reference.tolerance.max_rel_err`).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .layers import create_layer
from .pool import FLT_MAX
from .sizes import pair, pool_out_size
from .tolerance import max_rel_err
from .windows import pad as pad_hw, window_view

__all__ = ["Alternative", "Explanation", "CATALOGUE", "alternatives", "explain", "layer_forward"]


@dataclass(frozen=True)
class Alternative:
    """One convention knob read differently: ``words(spec)`` names the parameter, ``applies(spec,
    shapes)`` says whether it can change anything for this layer, ``compute(spec, blobs, bottoms)``
    gives the layer's tops under the alternative (float64)."""
    key: str
    type: str
    words: Callable
    applies: Callable
    compute: Callable
    setting: str = ""   # the value that reproduces theirs, e.g. "k=1" (words: "... (k=1 reproduces ...)")


@dataclass(frozen=True)
class Explanation:
    key: str
    words: str          # e.g. "lrn_param.k ignored (k=1 reproduces theirs to 1e-07)"
    error: float        # max relative error of theirs against the alternative


def layer_forward(spec: dict, blobs: list, bottoms: list) -> list:
    """The reference layer of ``spec`` with parameter ``blobs`` on ``bottoms``, in float64."""
    layer = create_layer(spec, dtype=np.float64)
    bottoms = [np.asarray(b, dtype=np.float64) for b in bottoms]
    layer.setup([b.shape for b in bottoms])
    for target, blob in zip(layer.blobs, blobs):
        target[...] = np.asarray(blob, dtype=np.float64).reshape(target.shape)
    return [np.asarray(t, dtype=np.float64) for t in layer.forward(bottoms)]


def _edit(spec: dict, section: str, **changes) -> dict:
    spec = copy.deepcopy(spec)
    params = spec.setdefault(section, {})
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v
    return spec


def _p(spec, section):
    return spec.get(section) or {}


def _first(value, default):
    if isinstance(value, (list, tuple)):
        return value[0] if value else default
    return default if value is None else value


def _edited(section, **changes):
    """An alternative computed by the reference layer on ``spec`` with ``changes``."""
    return lambda spec, blobs, bottoms: layer_forward(_edit(spec, section, **changes), blobs, bottoms)


# ---- Pooling: four knobs ------------------------------------------------------------------------

POOL_KNOBS = {   # knob -> (Caffe's choice, the alternatives runtimes make)
    "round": ("caffe", ("other",)),
    "clip": ("caffe", ("always", "never")),
    "divisor": ("caffe", ("real pixels", "whole window")),
    "empty": ("-FLT_MAX", ("0", "-inf")),          # MAX
    "empty_ave": ("0", ("NaN",)),                   # AVE: econv gives 0, Caffe's own code 0/0 = NaN
}


def _pool_setup(spec, shape):
    p = _p(spec, "pooling_param")
    if p.get("global_pooling"):
        kernel, stride, pad = tuple(shape[2:]), (1, 1), (0, 0)
    else:
        kernel = (int(p.get("kernel_h", _first(p.get("kernel_size"), 1))),
                  int(p.get("kernel_w", _first(p.get("kernel_size"), 1))))
        stride = (int(p.get("stride_h", _first(p.get("stride"), 1))),
                  int(p.get("stride_w", _first(p.get("stride"), 1))))
        pad = (int(p.get("pad_h", _first(p.get("pad"), 0))), int(p.get("pad_w", _first(p.get("pad"), 0))))
    mode = str(p.get("pool", "MAX")).lower()
    round_mode = str(p.get("round_mode", "CEIL")).lower()
    return kernel, stride, pad, mode, round_mode


def pool_variant(x, kernel, stride, pad, mode, round_mode, *, clip="caffe", divisor="caffe",
                 empty="-FLT_MAX", empty_ave="0"):
    """Pooling (est 1) with each knob of :data:`POOL_KNOBS` chosen; ``clip="caffe"``: only with
    padding.  Built from :func:`reference.windows.window_view` on the padded input."""
    x = np.asarray(x, dtype=np.float64)
    kernel, stride, pad = pair(kernel, "kernel", 1), pair(stride, "stride", 1), pair(pad, "pad", 0)
    apply_clip = {"caffe": any(pad), "always": True, "never": False}[clip]
    in_hw = x.shape[2:]
    out_hw = tuple(pool_out_size(in_hw[a], kernel[a], stride[a], pad[a], 1, round_mode, 0,
                                 "pool", apply_clip) for a in (0, 1))
    end = tuple(max(0, stride[a] * (out_hw[a] - 1) + kernel[a] - in_hw[a] - 2 * pad[a]) for a in (0, 1))
    real = window_view(pad_hw(np.ones(x.shape[2:]), pad, 0.0, end), kernel, stride, (1, 1), out_hw)
    n_real = real.sum(axis=(-2, -1))
    if mode == "max":
        win = window_view(pad_hw(x, pad, -np.inf, end), kernel, stride, (1, 1), out_hw)
        y = win.max(axis=(-2, -1))
        fill = {"-FLT_MAX": -FLT_MAX, "0": 0.0, "-inf": -np.inf}[empty]
        return np.where(n_real > 0, y, fill)
    win = window_view(pad_hw(x, pad, 0.0, end), kernel, stride, (1, 1), out_hw)
    total = win.sum(axis=(-2, -1))
    if divisor == "real pixels":
        count = n_real
    elif divisor == "whole window":
        count = np.full(out_hw, float(kernel[0] * kernel[1]))
    else:            # Caffe: taps inside [-pad, H + pad)
        counts = []
        for a in (0, 1):
            starts = stride[a] * np.arange(out_hw[a]) - pad[a]
            taps = starts[:, None] + np.arange(kernel[a])[None, :]
            counts.append((taps < in_hw[a] + pad[a]).sum(axis=1))
        count = np.outer(counts[0], counts[1]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), 0.0 if empty_ave == "0" else np.nan)


def _pool_words(spec, choice):
    kernel, stride, pad, mode, round_mode = _pool_setup(spec, (1, 1, 1, 1))
    other = "floor" if round_mode == "ceil" else "ceil"
    parts = []
    if choice.get("round") == "other":
        parts.append(f"pooling_param.round_mode read as {other.upper()} (Caffe: {round_mode.upper()})")
    if choice.get("clip") == "always":
        parts.append("Caffe's clip rule applied without padding (a last window starting past the "
                     "input dropped; Caffe keeps it when pad is 0)")
    if choice.get("clip") == "never":
        parts.append("Caffe's clip rule not applied (a last window starting in the padding kept)")
    if choice.get("divisor") == "real pixels":
        parts.append("AVE divisor counts only real pixels (Caffe counts the padding too: "
                     "count_include_pad)")
    if choice.get("divisor") == "whole window":
        parts.append("AVE divisor is the whole kernel_h*kernel_w (Caffe leaves out the ceil overhang "
                     "past H + pad)")
    if choice.get("empty") in ("0", "-inf"):
        parts.append(f"a MAX window with no input pixel gives {choice['empty']} (Caffe: -FLT_MAX)")
    if choice.get("empty_ave") == "NaN":
        parts.append("an AVE window with no tap gives NaN: Caffe's own 0/0 (econv's oracle gives 0 "
                     "there, a deliberate deviation)")
    return "; ".join(parts)


def _pool_choices(spec, shape):
    kernel, stride, pad, mode, round_mode = _pool_setup(spec, shape)
    knobs = ["round", "clip"] + (["divisor", "empty_ave"] if mode == "ave" else ["empty"])
    options = [[None] + list(POOL_KNOBS[k][1]) for k in knobs]
    combos = [dict((k, v) for k, v in zip(knobs, c) if v is not None) for c in itertools.product(*options)]
    return sorted((c for c in combos if c), key=len)


def _pool_alternative(choice):
    key = "Pooling." + ",".join(f"{k}={v}" for k, v in sorted(choice.items()))

    def compute(spec, blobs, bottoms):
        kernel, stride, pad, mode, round_mode = _pool_setup(spec, bottoms[0].shape)
        if choice.get("round") == "other":
            round_mode = "floor" if round_mode == "ceil" else "ceil"
        return [pool_variant(bottoms[0], kernel, stride, pad, mode, round_mode,
                             clip=choice.get("clip", "caffe"), divisor=choice.get("divisor", "caffe"),
                             empty=choice.get("empty", "-FLT_MAX"),
                             empty_ave=choice.get("empty_ave", "0"))]

    def applies(spec, shapes):
        p = _p(spec, "pooling_param")
        return not p.get("est") and not p.get("pad_end")

    return Alternative(key, "Pooling", lambda spec: _pool_words(spec, choice), applies, compute)


def _matters(spec, shape, choice) -> bool:
    """Whether every knob of ``choice`` changes this layer's output on a random (1, 1, H, W) input."""
    x = np.random.default_rng(0).standard_normal((1, 1) + tuple(shape[2:]))
    try:
        caffe = _pool_alternative({}).compute(spec, [], [x])[0]
        for knob, value in choice.items():
            alone = _pool_alternative({knob: value}).compute(spec, [], [x])[0]
            if alone.shape == caffe.shape and np.allclose(alone, caffe, equal_nan=True):
                return False
    except ValueError:
        return False
    return True


def _pool_alternatives(spec, shapes):
    if not shapes or len(shapes[0]) != 4:
        return []
    return [_pool_alternative(c) for c in _pool_choices(spec, shapes[0]) if _matters(spec, shapes[0], c)]


# ---- the other types ----------------------------------------------------------------------------

def _has(section, field, test=lambda v: True):
    def applies(spec, shapes):
        p = _p(spec, section)
        return field in p and test(p[field])
    return applies


def _bias_missing(section):
    def compute(spec, blobs, bottoms):
        return layer_forward(spec, [blobs[0], np.zeros_like(np.asarray(blobs[1]))] + list(blobs[2:]),
                             bottoms)

    def applies(spec, shapes):
        return _p(spec, section).get("bias_term", spec["type"] != "Scale") is not False

    return compute, applies


def _group_ignored(spec, blobs, bottoms):
    """Every output channel reads the first C/G input channels (the weights used as one group)."""
    group = int(_p(spec, "convolution_param").get("group", 1))
    x = np.asarray(bottoms[0])
    c = x.shape[1] // group
    return layer_forward(_edit(spec, "convolution_param", group=None), blobs, [x[:, :c]])


def _deconv_flipped(spec, blobs, bottoms):
    w = np.asarray(blobs[0])[..., ::-1, ::-1]
    return layer_forward(spec, [w] + list(blobs[1:]), bottoms)


def _ip_transpose_ignored(spec, blobs, bottoms):
    w = np.asarray(blobs[0])
    n = int(_p(spec, "inner_product_param")["num_output"])
    return layer_forward(_edit(spec, "inner_product_param", transpose=None),
                         [w.reshape(n, -1)] + list(blobs[1:]), bottoms)


def _bn_factor_ignored(spec, blobs, bottoms):
    return layer_forward(spec, [blobs[0], blobs[1], np.ones_like(np.asarray(blobs[2]))], bottoms)


def _bn_batch_stats(spec, blobs, bottoms):
    return layer_forward(_edit(spec, "batch_norm_param", use_global_stats=False), blobs, bottoms)


def _dropout_scaled(spec, blobs, bottoms):
    ratio = float(_p(spec, "dropout_param").get("dropout_ratio", 0.5))
    return [np.asarray(bottoms[0], dtype=np.float64) * (1 - ratio)]


def _lrn_within_k(spec, blobs, bottoms):
    y = layer_forward(spec, blobs, bottoms)[0]
    x = np.asarray(bottoms[0], dtype=np.float64)
    k = float(_p(spec, "lrn_param").get("k", 1.0))
    beta = float(_p(spec, "lrn_param").get("beta", 0.75))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(x != 0, (x / y) ** (1 / beta), 1.0)       # 1 + alpha * avepool(x^2)
    return [x * (scale - 1 + k) ** -beta]


def _crop_first_offset(spec, blobs, bottoms):
    offs = list(_p(spec, "crop_param").get("offset", []))
    return layer_forward(_edit(spec, "crop_param", offset=offs[:1]), blobs, bottoms)


def _crop_swapped(spec, blobs, bottoms):
    offs = list(_p(spec, "crop_param").get("offset", []))
    return layer_forward(_edit(spec, "crop_param", offset=offs[::-1]), blobs, bottoms)


def _n_offsets(n):
    return lambda spec, shapes: len(list(_p(spec, "crop_param").get("offset", []))) >= n and \
        len(set(_p(spec, "crop_param").get("offset", []))) > 1


def _not_default(section, field, default):
    return lambda spec, shapes: float(_first(_p(spec, section).get(field), default)) != default


def _conv_catalogue(kind):
    section = "convolution_param"
    bias_compute, bias_applies = _bias_missing(section)
    entries = [
        Alternative(f"{kind}.dilation", kind, lambda s: "convolution_param.dilation ignored",
                    _has(section, "dilation", lambda v: any(int(d) != 1 for d in np.atleast_1d(v))),
                    _edited(section, dilation=None), "dilation=1"),
        Alternative(f"{kind}.group", kind,
                    lambda s: "convolution_param.group ignored (every output reads the first C/group "
                              "input channels)",
                    _has(section, "group", lambda v: int(v) > 1), _group_ignored),
        Alternative(f"{kind}.bias", kind, lambda s: "bias missing (bias_term ignored: no bias added)",
                    bias_applies, bias_compute),
        Alternative(f"{kind}.pad", kind, lambda s: "convolution_param.pad ignored",
                    _has(section, "pad", lambda v: any(int(d) for d in np.atleast_1d(v))),
                    _edited(section, pad=None), "pad=0"),
    ]
    if kind == "Deconvolution":
        entries.append(Alternative("Deconvolution.flip", kind,
                                   lambda s: "kernel flipped (a convolution of the zero-stuffed input "
                                             "with the unflipped kernel)",
                                   lambda s, sh: True, _deconv_flipped))
    return entries


_ip_bias_compute, _ip_bias_applies = _bias_missing("inner_product_param")
_scale_bias_compute, _scale_bias_applies = _bias_missing("scale_param")

CATALOGUE = {
    "Convolution": _conv_catalogue("Convolution"),
    "Deconvolution": _conv_catalogue("Deconvolution"),
    "Pooling": _pool_alternatives,            # built per layer: the knob product
    "LRN": [
        Alternative("LRN.k", "LRN", lambda s: "lrn_param.k ignored",
                    lambda s, sh: str(_p(s, "lrn_param").get("norm_region", "ACROSS_CHANNELS"))
                    == "ACROSS_CHANNELS" and _not_default("lrn_param", "k", 1.0)(s, sh),
                    _edited("lrn_param", k=None), "k=1"),
        Alternative("LRN.within_k", "LRN",
                    lambda s: "lrn_param.k applied WITHIN_CHANNEL (Caffe ignores k there and adds 1)",
                    lambda s, sh: str(_p(s, "lrn_param").get("norm_region")) == "WITHIN_CHANNEL"
                    and _not_default("lrn_param", "k", 1.0)(s, sh), _lrn_within_k),
        Alternative("LRN.alpha", "LRN",
                    lambda s: "lrn_param.alpha not divided by local_size (Caffe uses alpha/n, "
                              "WITHIN_CHANNEL alpha/n^2)",
                    lambda s, sh: int(_p(s, "lrn_param").get("local_size", 5)) > 1,
                    lambda s, b, x: layer_forward(_edit(s, "lrn_param", alpha=float(
                        _p(s, "lrn_param").get("alpha", 1.0)) * int(_p(s, "lrn_param").get(
                            "local_size", 5)) ** (1 if str(_p(s, "lrn_param").get(
                                "norm_region", "ACROSS_CHANNELS")) == "ACROSS_CHANNELS" else 2)),
                        b, x)),
        Alternative("LRN.region", "LRN", lambda s: "lrn_param.norm_region ignored (the other region)",
                    lambda s, sh: True,
                    lambda s, b, x: layer_forward(_edit(s, "lrn_param", norm_region=(
                        "ACROSS_CHANNELS" if str(_p(s, "lrn_param").get("norm_region")) ==
                        "WITHIN_CHANNEL" else "WITHIN_CHANNEL")), b, x)),
    ],
    "InnerProduct": [
        Alternative("InnerProduct.transpose", "InnerProduct",
                    lambda s: "inner_product_param.transpose ignored (the (K, N) weights read as (N, K))",
                    _has("inner_product_param", "transpose", bool), _ip_transpose_ignored),
        Alternative("InnerProduct.bias", "InnerProduct", lambda s: "bias missing (no bias added)",
                    _ip_bias_applies, _ip_bias_compute),
    ],
    "BatchNorm": [
        Alternative("BatchNorm.factor", "BatchNorm",
                    lambda s: "BatchNorm scale factor (blob 2) ignored: mean and variance used as stored",
                    lambda s, sh: True, _bn_factor_ignored),
        Alternative("BatchNorm.eps0", "BatchNorm", lambda s: "batch_norm_param.eps ignored",
                    lambda s, sh: True, _edited("batch_norm_param", eps=0.0), "eps=0"),
        Alternative("BatchNorm.eps1e-3", "BatchNorm",
                    lambda s: "batch_norm_param.eps read wrong",
                    _not_default("batch_norm_param", "eps", 1e-3), _edited("batch_norm_param", eps=1e-3),
                    "eps=1e-3"),
        Alternative("BatchNorm.batch_stats", "BatchNorm",
                    lambda s: "use_global_stats ignored (the batch's own mean and variance)",
                    lambda s, sh: True, _bn_batch_stats),
    ],
    "Scale": [
        Alternative("Scale.bias", "Scale", lambda s: "scale_param.bias_term ignored (no bias added)",
                    lambda s, sh: bool(_p(s, "scale_param").get("bias_term")), _scale_bias_compute),
    ],
    "Crop": [
        Alternative("Crop.offsets0", "Crop", lambda s: "crop_param.offset ignored",
                    _has("crop_param", "offset", lambda v: any(int(o) for o in np.atleast_1d(v))),
                    _edited("crop_param", offset=None), "offset=0"),
        Alternative("Crop.first_offset", "Crop",
                    lambda s: "only the first crop_param.offset used, for every axis",
                    _n_offsets(2), _crop_first_offset),
        Alternative("Crop.swapped", "Crop", lambda s: "crop_param.offset values swapped (w, h)",
                    _n_offsets(2), _crop_swapped),
    ],
    "Eltwise": [
        Alternative("Eltwise.coeff", "Eltwise", lambda s: "eltwise_param.coeff ignored",
                    _has("eltwise_param", "coeff", lambda v: any(float(c) != 1 for c in np.atleast_1d(v))),
                    _edited("eltwise_param", coeff=None), "coeff=1"),
    ],
    "ReLU": [
        Alternative("ReLU.slope", "ReLU", lambda s: "relu_param.negative_slope ignored (plain ReLU)",
                    _has("relu_param", "negative_slope", lambda v: float(v) != 0),
                    _edited("relu_param", negative_slope=None)),
    ],
    "Dropout": [
        Alternative("Dropout.scaled", "Dropout",
                    lambda s: "Dropout scales by 1 - dropout_ratio at test time (Caffe: identity)",
                    lambda s, sh: True, _dropout_scaled),
    ],
    "Power": [
        Alternative("Power.shift", "Power", lambda s: "power_param.shift ignored",
                    _not_default("power_param", "shift", 0.0), _edited("power_param", shift=None), "shift=0"),
        Alternative("Power.scale", "Power", lambda s: "power_param.scale ignored",
                    _not_default("power_param", "scale", 1.0), _edited("power_param", scale=None), "scale=1"),
    ],
}


def alternatives(spec: dict, shapes=None) -> list:
    """The catalogue's alternatives that apply to layer ``spec`` (bottom ``shapes`` when known)."""
    entries = CATALOGUE.get(spec.get("type"), [])
    if callable(entries):
        entries = entries(spec, shapes or [])
    return [a for a in entries if a.applies(spec, shapes or [])]


def _nan_equal_err(theirs, value) -> float:
    """:func:`max_rel_err` where equal non-finite values (NaN and NaN, -inf and -inf) count as equal;
    a non-finite value on one side only is an infinite error."""
    odd_t, odd_v = ~np.isfinite(theirs), ~np.isfinite(value)
    same = odd_t & odd_v & ((theirs == value) | (np.isnan(theirs) & np.isnan(value)))
    if (odd_t | odd_v).any() and not (same == (odd_t | odd_v)).all():
        return float("inf")
    return max_rel_err(np.where(same, 0.0, theirs), np.where(same, 0.0, value))


def explain(spec: dict, blobs: list, bottoms: list, theirs, tol: float = 1e-5, top: int = 0):
    """The first alternative (catalogue order; pooling: fewest knobs first) under which the layer
    reproduces ``theirs`` (its ``top``-th output) to ``tol``, as an :class:`Explanation`; None when
    none does.  An alternative that fails to compute (an edited spec the layer refuses) is skipped."""
    theirs = np.asarray(theirs, dtype=np.float64)
    for alt in alternatives(spec, [np.shape(b) for b in bottoms]):
        try:
            value = alt.compute(spec, blobs, bottoms)[top]
        except (ValueError, IndexError):
            continue
        if value.shape != theirs.shape:
            continue
        err = _nan_equal_err(theirs, value)
        if err <= tol:
            setting = f"{alt.setting} " if alt.setting else ""
            return Explanation(alt.key, f"{alt.words(spec)} ({setting}reproduces theirs to {err:.0e})",
                               err)
    return None
