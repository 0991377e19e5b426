"""ONNX export of a ``reference.Net``: Caffe's rules written as ONNX operators, exactly.

    from caffe_import import load_net
    from caffe_import.onnx_writer import export_onnx, to_onnx
    net = load_net("deploy.prototxt", "weights.caffemodel")
    export_onnx(net, "model.onnx")                    # written atomically
    model = to_onnx(net, all_blobs=True)              # an onnx.ModelProto, every blob an output

The model is float32, opset 19 (the first with AveragePool ``dilations``), with static shapes: the
net's declared input shapes or ``input_shapes``.  It needs the ``onnx`` package (``pip install
"econv[onnx]"``).  The graph runs Caffe's TEST phase forward.

Note [Blob names].  ONNX values are written once; Caffe overwrites a blob in place (``conv1`` ->
ReLU -> ``conv1``).  Every write of a blob is a value: the last write carries the blob's own name,
an earlier one ``blob@layer`` (the layer that wrote it).  VGG's ``conv1_1`` is ``conv1_1@conv1_1``
(the convolution) and ``conv1_1`` (its in-place ReLU); a Dropout after ``fc6``'s ReLU makes
``fc6@fc6``, ``fc6@relu6`` and ``fc6``.  Graph inputs are the Input layers' tops; graph outputs
are the net's outputs (blobs no layer reads), or with ``all_blobs=True`` every value above in
execution order (inputs excepted: ONNX outputs must be computed).  An input that an in-place
layer overwrites (a ReLU on ``data``) is the graph input ``data@data`` (its Input layer's name);
:func:`onnx_names` maps every value back to ``(blob, layer)``.  Internal values are named
``layer/what``.

Note [Pooling].  Caffe's pooling (CAFFE_FACTS 3.1, :mod:`reference.pool`) is not any one setting
of ONNX's pooling operators (floor or ceil sizes with their own clip rule, pads that must be smaller
than the kernel in onnxruntime, the AVE divisor with or without padding).  The export takes the
output size from Caffe's rule (ceil, the clip rule, ``pad_end``), pads explicitly (``Pad``: zeros for
AVE, ``-FLT_MAX`` for MAX, ``p`` at the start and ``p`` plus what the last window needs at the end)
and pools with no padding of its own in floor mode, so every window is Caffe's window.  AVE then
divides by the full window ``kh*kw`` (``AveragePool``); where Caffe's divisor is smaller (windows
overhanging ``H + p``: only the part inside ``[-p, H + p)`` counts) a constant ``Mul`` by
``kh*kw / divisor`` per output position restores it (0 where the divisor is 0, the reference's value
for Caffe's degenerate 0/0 window).  Worked example, H = 4, k 3, s 2, p 1: three windows ``[-1, 2)``,
``[1, 4)``, ``[3, 5)``; the input is padded to ``[-1, 6)`` (one more at the end for the last window,
which overhangs), the factors per row are ``[1, 1, 3/2]``.  MAX ends with ``Max(y, -FLT_MAX)``:
Caffe's accumulator starts at ``-FLT_MAX``, so a window of ``-inf`` values (or of padding only)
gives ``-FLT_MAX``.

What maps to what (``est`` is eConv/ePool's tap spacing, ONNX's ``dilations``):

==================  =============================================================================
Caffe layer          ONNX
==================  =============================================================================
Input                graph input (float32, the declared or given shape)
Convolution          Conv (pads, strides, dilations = est, group); eConv the same
Deconvolution        ConvTranspose (Caffe's weight layout (C_in, C_out/group, kh, kw) is ONNX's)
Pooling MAX          Pad (-FLT_MAX) + MaxPool + Max(-FLT_MAX), Note [Pooling]
Pooling AVE          Pad (0) + AveragePool (+ Mul by kh*kw / Caffe's divisor), Note [Pooling];
                     global pooling: kernel H x W; ePool (est, pad_end): the same with dilations
InnerProduct         Reshape to (M, K) + Gemm (transB unless ``transpose``) + Reshape (``axis``)
ReLU                 Relu, or LeakyRelu(alpha = negative_slope)
Dropout              Identity (TEST phase; a TRAIN-phase Dropout is refused)
LRN across           LRN(size, alpha, beta, bias = k): ONNX divides alpha by size as Caffe does
LRN within           x * (1 + alpha * avepool(x^2, n x n, pad (n-1)/2 [* est]))^-beta (k unused,
                     as in Caffe), composed
Softmax              Softmax(axis)
TanH, Sigmoid        Tanh, Sigmoid
Power                Mul, Add, Pow (those that are not identities); constant when power*scale = 0
Eltwise              SUM: Mul by coeff + Sum; PROD: Mul; MAX: Max
Concat               Concat(axis)
Crop                 Slice (axis, offsets)
BatchNorm            global stats: BatchNormalization with mean = blob0/blob2, var = blob1/blob2
                     (0 when blob2 = 0), eps; batch stats: ReduceMean, Sub, Mul, Sqrt, Div
Scale                Mul (+ Add bias) by the blob (or second bottom) shaped for axis/num_axes
Flatten, Reshape     Reshape (static shape)
Split                Identity per top
Shift (econv)        Pad (zero or -inf) + Slice
Mask (econv)         Mul by the constant validity mask
EDeconvolution       ConvTranspose when grid is 1; otherwise one Conv per output phase (s_h*s_w
                     convolutions with the taps of that phase, dilation grid*est) + Mul by the
                     phase masks + Sum (reference/edeconv.py's formula, term by term)
==================  =============================================================================

Not exported (a ValueError naming the layer and why): loss layers (SoftmaxWithLoss,
EuclideanLoss, L1Loss; ``econv deploy`` writes the deploy net, or ``skip_losses=True`` drops them
and the label inputs only they read), data layers (use an Input layer: ``econv deploy``),
STOCHASTIC pooling (the reference has none either), TRAIN-phase Dropout, layer types without an
entry above.  Difference that remains: Eltwise MAX with NaN inputs follows the runtime's ``Max``
(Caffe's strict ``>`` scan keeps the other value); ties do not matter for forward values.

``pooling="native"`` writes pooling as converters do instead (ONNX's ``pads``, ``ceil_mode=1``,
``count_include_pad=1``): not exact by design, it lets a runtime's own pooling rules show
(docs/RUNTIMES.md, onnxruntime: onnxruntime drops Caffe's unpadded window past the image and refuses
pads >= kernel).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .atomic import atomic_output

__all__ = ["export_onnx", "to_onnx", "onnx_names", "OPSET", "INSTALL_HINT"]

OPSET = 19
INSTALL_HINT = 'the ONNX export needs the onnx package: pip install "econv[onnx]" (or pip install onnx)'
FLT_MAX = float(np.finfo(np.float32).max)
PROGRESS_MIN_BYTES = 64 << 20           # the default bar: nets with 64 MiB of parameters or more
DEPLOY_HINT = "derive the deploy net first (econv deploy PROTOTXT -o deploy.prototxt)"


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return onnx, helper, numpy_helper


# ---- names and shapes ---------------------------------------------------------------------------

class _Plan:
    """The layers to export, each bottom and top as an ONNX value name, and every value's shape."""

    def __init__(self, net, input_shapes, skip_losses):
        input_shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
        unknown = sorted(set(input_shapes) - set(net.input_names))
        if unknown:
            raise ValueError(f"input_shapes: {unknown} are not inputs of the net "
                             f"(inputs: {net.input_names})")
        layers = [layer for layer in net.layers if not (skip_losses and layer.is_loss)]
        skipped = [layer for layer in net.layers if skip_losses and layer.is_loss]
        read = {b for layer in layers for b in layer.bottom_names}
        only_skipped = {b for layer in skipped for b in layer.bottom_names} - read
        self.layers = []            # (layer, bottom names, top names, bottom shapes, top shapes)
        versions = []               # (blob, layer name) per write, in order
        latest, shape_of = {}, {}
        for layer in layers:
            if layer.type == "Input":
                tops = []
                for t, s in zip(layer.top_names, layer.shapes):
                    if t in only_skipped:
                        continue
                    tops.append(t)
                shapes_out = [input_shapes.get(t, s) for t, s in zip(layer.top_names, layer.shapes)
                              if t in tops]
                bottoms, shapes_in = [], []
            else:
                missing = [b for b in layer.bottom_names if b not in latest]
                if missing:
                    raise layer.error(f"reads {missing}, written only by the loss layers left out "
                                      f"(skip_losses)")
                bottoms = [latest[b] for b in layer.bottom_names]
                shapes_in = [shape_of[v] for v in bottoms]
                shapes_out = layer.setup(shapes_in)
                tops = list(layer.top_names)
            vids = []
            for t, s in zip(tops, shapes_out):
                versions.append((t, layer.name))
                vid = len(versions) - 1
                latest[t] = vid
                shape_of[vid] = tuple(s)
                vids.append(vid)
            self.layers.append([layer, bottoms, vids, shapes_in, [tuple(s) for s in shapes_out]])
        names = [b if latest[b] == vid else f"{b}@{lname}" for vid, (b, lname) in enumerate(versions)]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"cannot name every blob write uniquely (blob@layer): {dup} repeat")
        self.names = names
        self.versions = dict(zip(names, versions))
        self.shape = {names[v]: s for v, s in shape_of.items()}
        for entry in self.layers:
            entry[1] = [names[v] for v in entry[1]]
            entry[2] = [names[v] for v in entry[2]]
        self.inputs = [(n, self.shape[n]) for entry in self.layers if entry[0].type == "Input"
                       for n in entry[2]]
        consumed = {v for entry in self.layers for v in entry[1]}
        input_names = {n for n, _ in self.inputs}
        self.all_outputs = [n for n in names if n not in input_names]
        final = {names[v] for v in latest.values()}
        self.net_outputs = [n for n in self.all_outputs if n not in consumed and n in final] or \
            self.all_outputs[-1:]


def onnx_names(net, input_shapes=None, skip_losses=False) -> dict:
    """``{onnx value name: (blob, layer)}`` for every blob write, in execution order (Note [Blob names]).

    Example, data -> conv1 -> relu1 (in place) -> pool1: ``{"data": ("data", "data"), "conv1@conv1":
    ("conv1", "conv1"), "conv1": ("conv1", "relu1"), "pool1": ("pool1", "pool1")}``.
    """
    return dict(_Plan(net, input_shapes, skip_losses).versions)


# ---- the graph builder --------------------------------------------------------------------------

class _Builder:
    def __init__(self, helper, numpy_helper, reserved, pooling="explicit"):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.pooling = pooling
        self.nodes, self.initializers = [], []
        self.used = set(reserved)

    def fresh(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.used:
            name, i = f"{hint}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, hint, array, dtype=np.float32) -> str:
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array, dtype=dtype), name))
        return name

    def ints(self, hint, values) -> str:
        return self.const(hint, np.asarray(values, dtype=np.int64), np.int64)

    def op(self, op_type, inputs, out=None, hint=None, **attrs) -> str:
        out = out if out is not None else self.fresh(hint or op_type)
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out],
                                                name=self.fresh(f"{out}/{op_type}"), **attrs))
        return out

    def pad(self, x, begin, end, value, hint, ndim=4):
        """Pad the last two axes by ``begin`` / ``end`` (per axis) with the constant ``value``."""
        if not any(begin) and not any(end):
            return x
        pads = [0] * (ndim - 2) + list(begin) + [0] * (ndim - 2) + list(end)
        return self.op("Pad", [x, self.ints(f"{hint}_pads", pads), self.const(f"{hint}_value", value)],
                       hint=hint, mode="constant")

    def slice(self, x, starts, ends, axes, hint, out=None):
        return self.op("Slice", [x, self.ints(f"{hint}_starts", starts), self.ints(f"{hint}_ends", ends),
                                 self.ints(f"{hint}_axes", axes)], out=out, hint=hint)

    def reshape(self, x, shape, hint, out=None):
        return self.op("Reshape", [x, self.ints(f"{hint}_shape", list(shape))], out=out, hint=hint)


def _axis(axis, ndim):
    return axis + ndim if axis < 0 else axis


# ---- pooling (Note [Pooling]) ---------------------------------------------------------------------

def pool_nodes(g, x, shape, kernel, stride, pad, est, mode, round_mode, pad_end, hint, out=None):
    """Caffe's pooling of ``x`` (shape ``shape``): Pad, MaxPool/AveragePool in floor mode, Mul."""
    from reference.pool import pool_geometry
    from reference.sizes import extent

    geo = pool_geometry(hint, shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    if g.pooling == "native":
        return _native_pool(g, x, geo, hint, out)
    ext = [extent(geo.kernel[a], geo.est[a]) for a in (0, 1)]
    end = [geo.pad[a] + geo.end_hw[a] for a in (0, 1)]
    fill = -FLT_MAX if mode == "max" else 0.0
    xp = g.pad(x, geo.pad, end, fill, f"{hint}/pad")
    padded = [shape[2 + a] + geo.pad[a] + end[a] for a in (0, 1)]
    got = [(padded[a] - ext[a]) // geo.stride[a] + 1 for a in (0, 1)]
    trim = any(got[a] > geo.out_hw[a] for a in (0, 1))
    factor = None
    if mode == "ave":
        div = geo.divisor().astype(np.float64)
        k = geo.kernel[0] * geo.kernel[1]
        factor = np.divide(k, div, out=np.zeros_like(div), where=div > 0)
        if np.all(factor == 1):
            factor = None
    steps = []          # after the pooling: each (y, out) -> y, the last one writes ``out``
    if trim:
        steps.append(lambda y, o: g.slice(y, [0, 0], list(geo.out_hw), [2, 3], f"{hint}/trim", out=o))
    if factor is not None:
        steps.append(lambda y, o: g.op("Mul", [y, g.const(f"{hint}/divisor_factor", factor[None, None])],
                                       out=o, hint=f"{hint}/divisor"))
    if mode == "max":   # Caffe's accumulator starts at -FLT_MAX: a window of -inf gives -FLT_MAX
        steps.append(lambda y, o: g.op("Max", [y, g.const(f"{hint}/lowest", -FLT_MAX)], out=o,
                                       hint=f"{hint}/lowest"))
    op = "MaxPool" if mode == "max" else "AveragePool"
    y = g.op(op, [xp], out=None if steps else out, hint=f"{hint}/{op.lower()}",
             kernel_shape=list(geo.kernel), strides=list(geo.stride), dilations=list(geo.est),
             pads=[0, 0, 0, 0])
    for i, step in enumerate(steps):
        y = step(y, out if i == len(steps) - 1 else None)
    return y


def _native_pool(g, x, geo, hint, out):
    """A converter's mapping (``pooling="native"``): ONNX's own ``pads``/``ceil_mode``/
    ``count_include_pad=1``, so the runtime's pooling rules decide (docs/RUNTIMES.md, onnxruntime)."""
    if geo.mode == "ave" and any(geo.pad_end):
        raise ValueError(f"{hint}: pooling='native' cannot express pad_end for AVE (ONNX would count it "
                         f"in the divisor); use pooling='explicit'")
    attrs = dict(kernel_shape=list(geo.kernel), strides=list(geo.stride), dilations=list(geo.est),
                 pads=list(geo.pad) + [geo.pad[a] + geo.pad_end[a] for a in (0, 1)],
                 ceil_mode=int(geo.round_mode == "ceil"))
    if geo.mode == "ave":
        return g.op("AveragePool", [x], out=out, hint=f"{hint}/averagepool", count_include_pad=1, **attrs)
    return g.op("MaxPool", [x], out=out, hint=f"{hint}/maxpool", **attrs)


# ---- one function per layer type ----------------------------------------------------------------

def _convolution(g, L, xs, shapes, outs, out_shapes):
    w = g.const(f"{L.name}/weight", L.blobs[0])
    b = [g.const(f"{L.name}/bias", L.blobs[1])] if L.bias_term else []
    op = "Conv" if L.type == "Convolution" else "ConvTranspose"
    for x, y in zip(xs, outs):
        g.op(op, [x, w] + b, out=y, kernel_shape=list(L.kernel), strides=list(L.stride),
             pads=list(L.pad) * 2, dilations=list(L.est), group=L.group)


def _edeconvolution(g, L, xs, shapes, outs, out_shapes):
    """reference/edeconv.py's sum, one Conv per output phase (module docstring)."""
    if tuple(L.grid) == (1, 1):
        return _convolution(g, L, xs, shapes, outs, out_shapes)
    w = np.asarray(L.blobs[0], dtype=np.float64)          # (C, O/G, kh, kw)
    c, opg, kh, kw = w.shape
    grp = L.group
    # as a convolution weight (O, C/G, kh, kw), taps flipped: tap t is read at offset E*(p - d*t)
    conv_w = w.reshape(grp, c // grp, opg, kh, kw).transpose(0, 2, 1, 3, 4)
    conv_w = conv_w.reshape(grp * opg, c // grp, kh, kw)[..., ::-1, ::-1]
    for x, y, shape, oshape in zip(xs, outs, shapes, out_shapes):
        terms = []
        for rh in range(L.stride[0]):
            for rw in range(L.stride[1]):
                hint = f"{L.name}/phase{rh}_{rw}"
                keep = np.zeros((kh, kw))
                th = [t for t in range(kh) if (rh + L.pad[0] - L.est[0] * t) % L.stride[0] == 0]
                tw = [t for t in range(kw) if (rw + L.pad[1] - L.est[1] * t) % L.stride[1] == 0]
                if not th or not tw:
                    continue
                keep[np.ix_(th, tw)] = 1
                wk = conv_w * keep[::-1, ::-1]
                dil = [L.grid[a] * L.est[a] for a in (0, 1)]
                k_ext = [dil[0] * (kh - 1), dil[1] * (kw - 1)]
                # output P reads input P - begin + dil*j; it must read P + E*p - E*d*t, j = k-1-t
                begin = [k_ext[a] - L.grid[a] * L.pad[a] for a in (0, 1)]
                cut = [max(0, -b) for b in begin]          # a negative begin: drop input rows
                begin = [b + k for b, k in zip(begin, cut)]
                n_in = [shape[2 + a] - cut[a] for a in (0, 1)]
                end = [oshape[2 + a] - n_in[a] - begin[a] + k_ext[a] for a in (0, 1)]
                xr = x if not any(cut) else g.slice(x, cut, list(shape[2:]), [2, 3], f"{hint}/cut")
                conv = g.op("Conv", [xr, g.const(f"{hint}/weight", wk)], hint=f"{hint}/conv",
                            kernel_shape=[kh, kw], strides=[1, 1], dilations=dil, group=grp,
                            pads=begin + [max(0, e) for e in end])
                if min(end) < 0:                          # longer than the output: trim the end
                    conv = g.slice(conv, [0, 0], list(oshape[2:]), [2, 3], f"{hint}/trim")
                rows = (np.arange(oshape[2]) // L.grid[0]) % L.stride[0] == rh
                cols = (np.arange(oshape[3]) // L.grid[1]) % L.stride[1] == rw
                mask = (rows[:, None] & cols[None, :]).astype(np.float32)[None, None]
                terms.append(g.op("Mul", [conv, g.const(f"{hint}/mask", mask)], hint=f"{hint}/masked"))
        if L.bias_term:
            terms.append(g.const(f"{L.name}/bias", L.blobs[1].reshape(-1, 1, 1)))
        # never empty: the phase r = (-p) mod s always has the tap t = 0
        g.op("Sum", terms, out=y)


def _pooling(g, L, xs, shapes, outs, out_shapes):
    kernel = L._kernel(shapes[0])
    pool_nodes(g, xs[0], shapes[0], kernel, L.stride, L.pad, L.est, L.mode, L.round_mode, L.pad_end,
               L.name, out=outs[0])


def _inner_product(g, L, xs, shapes, outs, out_shapes):
    s = shapes[0]
    a = _axis(L.axis, len(s))
    m, k = int(np.prod(s[:a])), int(np.prod(s[a:]))
    x2 = xs[0] if tuple(s) == (m, k) else g.reshape(xs[0], (m, k), f"{L.name}/flat")
    inputs = [x2, g.const(f"{L.name}/weight", L.blobs[0])]
    if L.bias_term:
        inputs.append(g.const(f"{L.name}/bias", L.blobs[1]))
    final = tuple(out_shapes[0]) == (m, L.num_output)
    y = g.op("Gemm", inputs, out=outs[0] if final else None, hint=f"{L.name}/gemm",
             transB=0 if L.transpose else 1)
    if not final:
        g.reshape(y, out_shapes[0], f"{L.name}/shape", out=outs[0])


def _relu(g, L, xs, shapes, outs, out_shapes):
    if L.slope == 0:
        g.op("Relu", xs, out=outs[0])
    else:
        g.op("LeakyRelu", xs, out=outs[0], alpha=float(L.slope))


def _dropout(g, L, xs, shapes, outs, out_shapes):
    if L.phase == "TRAIN":
        raise L.error("a TRAIN-phase Dropout is random; export the TEST phase (load_net(phase='test'))")
    g.op("Identity", xs, out=outs[0])


def _lrn(g, L, xs, shapes, outs, out_shapes):
    if L.region == "ACROSS_CHANNELS":
        g.op("LRN", xs, out=outs[0], size=L.size, alpha=float(L.alpha), beta=float(L.beta),
             bias=float(L.k))
        return
    sq = g.op("Mul", [xs[0], xs[0]], hint=f"{L.name}/square")
    avg = pool_nodes(g, sq, shapes[0], hint=f"{L.name}/window", **L._pool_args(), round_mode="ceil",
                     pad_end=0)
    scaled = g.op("Mul", [avg, g.const(f"{L.name}/alpha", L.alpha)], hint=f"{L.name}/alpha_sum")
    base = g.op("Add", [scaled, g.const(f"{L.name}/one", 1.0)], hint=f"{L.name}/scale")
    factor = g.op("Pow", [base, g.const(f"{L.name}/minus_beta", -L.beta)], hint=f"{L.name}/factor")
    g.op("Mul", [xs[0], factor], out=outs[0])


def _softmax(g, L, xs, shapes, outs, out_shapes):
    g.op("Softmax", xs, out=outs[0], axis=_axis(L.axis, len(shapes[0])))


def _simple(op):
    def export(g, L, xs, shapes, outs, out_shapes):
        g.op(op, xs, out=outs[0])
    return export


def _power(g, L, xs, shapes, outs, out_shapes):
    if L.power * L.scale == 0:
        value = 1.0 if L.power == 0 else L.shift ** L.power
        g.op("Expand", [g.const(f"{L.name}/value", value), g.ints(f"{L.name}/shape", shapes[0])],
             out=outs[0])
        return
    steps = []
    if L.scale != 1:
        steps.append(("Mul", "scale", L.scale))
    if L.shift != 0:
        steps.append(("Add", "shift", L.shift))
    if L.power != 1:
        steps.append(("Pow", "power", L.power))
    if not steps:
        g.op("Identity", xs, out=outs[0])
    y = xs[0]
    for i, (op, what, value) in enumerate(steps):
        y = g.op(op, [y, g.const(f"{L.name}/{what}", value)], out=outs[0] if i == len(steps) - 1 else None,
                 hint=f"{L.name}/{what}ed")


def _eltwise(g, L, xs, shapes, outs, out_shapes):
    if L.op == "SUM":
        terms = [x if c == 1 else g.op("Mul", [x, g.const(f"{L.name}/coeff{i}", c)], hint=f"{L.name}/term{i}")
                 for i, (x, c) in enumerate(zip(xs, L.coeff))]
        g.op("Sum", terms, out=outs[0])
    elif L.op == "PROD":
        y = xs[0]
        for i, x in enumerate(xs[1:], start=1):
            y = g.op("Mul", [y, x], out=outs[0] if i == len(xs) - 1 else None, hint=f"{L.name}/prod{i}")
    else:
        g.op("Max", xs, out=outs[0])


def _concat(g, L, xs, shapes, outs, out_shapes):
    g.op("Concat", xs, out=outs[0], axis=L._axis(len(shapes[0])))


def _crop(g, L, xs, shapes, outs, out_shapes):
    shape, ref = shapes
    a = _axis(L.axis, len(shape))
    offs = L.offsets or [0]
    offs = offs * (len(shape) - a) if len(offs) == 1 else offs
    axes = list(range(a, len(shape)))
    g.slice(xs[0], offs, [o + ref[i] for o, i in zip(offs, axes)], axes, f"{L.name}/crop", out=outs[0])


def _batch_norm(g, L, xs, shapes, outs, out_shapes):
    s = shapes[0]
    if len(s) < 2:
        raise L.error(f"the ONNX export needs an input with a channel axis, got shape {s}")
    eps = float(L.eps)
    if L.use_global:
        blob2 = float(L.blobs[2][0])
        f = 0.0 if blob2 == 0 else 1.0 / blob2
        c = s[1]
        g.op("BatchNormalization",
             [xs[0], g.const(f"{L.name}/gamma", np.ones(c)), g.const(f"{L.name}/beta", np.zeros(c)),
              g.const(f"{L.name}/mean", f * np.asarray(L.blobs[0], np.float64)),
              g.const(f"{L.name}/var", f * np.asarray(L.blobs[1], np.float64))],
             out=outs[0], epsilon=eps)
        return
    axes = g.ints(f"{L.name}/axes", [0] + list(range(2, len(s))))
    mean = g.op("ReduceMean", [xs[0], axes], hint=f"{L.name}/batch_mean", keepdims=1)
    centred = g.op("Sub", [xs[0], mean], hint=f"{L.name}/centred")
    var = g.op("ReduceMean", [g.op("Mul", [centred, centred], hint=f"{L.name}/sq"), axes],
               hint=f"{L.name}/batch_var", keepdims=1)
    std = g.op("Sqrt", [g.op("Add", [var, g.const(f"{L.name}/eps", eps)], hint=f"{L.name}/var_eps")],
               hint=f"{L.name}/std")
    g.op("Div", [centred, std], out=outs[0])


def _scale(g, L, xs, shapes, outs, out_shapes):
    s = shapes[0]
    a = L._span(s)[0]

    def bcast(v_shape):
        return tuple(v_shape) + (1,) * (len(s) - a - len(v_shape))

    if len(xs) == 2:
        factor = g.reshape(xs[1], bcast(shapes[1]) or (1,), f"{L.name}/factor")
    else:
        factor = g.const(f"{L.name}/factor", L.blobs[0].reshape(bcast(L.blobs[0].shape)))
    y = g.op("Mul", [xs[0], factor], out=None if L.bias_term else outs[0], hint=f"{L.name}/scaled")
    if L.bias_term:
        g.op("Add", [y, g.const(f"{L.name}/bias", L.blobs[-1].reshape(bcast(L.blobs[-1].shape)))],
             out=outs[0])


def _reshape(g, L, xs, shapes, outs, out_shapes):
    g.reshape(xs[0], out_shapes[0], f"{L.name}/shape", out=outs[0])


def _split(g, L, xs, shapes, outs, out_shapes):
    for y in outs:
        g.op("Identity", xs, out=y)


def _shift(g, L, xs, shapes, outs, out_shapes):
    fill = -np.inf if L.fill == -np.inf else 0.0
    xp = g.pad(xs[0], L.pad, L.pad, fill, f"{L.name}/pad")
    size = [shapes[0][2 + a] + 2 * L.pad[a] for a in (0, 1)]
    g.slice(xp, list(L.offset), size, [2, 3], f"{L.name}/shift", out=outs[0])


def _mask(g, L, xs, shapes, outs, out_shapes):
    g.op("Mul", [xs[0], g.const(f"{L.name}/mask", L.mask.astype(np.float32)[None, None])], out=outs[0])


EXPORTERS = {
    "Convolution": _convolution, "Deconvolution": _convolution, "EDeconvolution": _edeconvolution,
    "Pooling": _pooling, "InnerProduct": _inner_product, "ReLU": _relu, "Dropout": _dropout,
    "LRN": _lrn, "Softmax": _softmax, "TanH": _simple("Tanh"), "Sigmoid": _simple("Sigmoid"),
    "Power": _power, "Eltwise": _eltwise, "Concat": _concat, "Crop": _crop, "BatchNorm": _batch_norm,
    "Scale": _scale, "Flatten": _reshape, "Reshape": _reshape, "Split": _split, "Shift": _shift,
    "Mask": _mask,
}


def _refuse(layer):
    if layer.is_loss:
        return layer.error(f"loss layers have no inference meaning in ONNX; {DEPLOY_HINT}, or pass "
                           f"skip_losses=True (econv export-onnx --skip-losses) to leave them and "
                           f"their label inputs out")
    if layer.type.endswith("Data") or not layer.bottom_names:
        return layer.error(f"data layers read files; {DEPLOY_HINT} (an Input layer replaces it)")
    return layer.error(f"no ONNX mapping for layer type {layer.type!r} (exportable: "
                       f"{', '.join(sorted(EXPORTERS))}, Input)")


# ---- the model ------------------------------------------------------------------------------------

class _Progress:
    """A tqdm bar over the export's steps (one per layer, the check, the write) when asked, or by
    default when stderr is a terminal and the parameters reach PROGRESS_MIN_BYTES."""

    def __init__(self, progress, net, steps, desc="export-onnx"):
        self.bar = None
        if progress is None:
            size = sum(b.size for blobs in net.params.values() for b in blobs) * 4
            try:
                progress = sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES
            except (AttributeError, ValueError):
                progress = False
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=steps, desc=desc, unit="step", leave=False)

    def step(self, what=None):
        if self.bar is not None:
            if what:
                self.bar.set_postfix_str(what, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def to_onnx(net, *, input_shapes=None, all_blobs=False, skip_losses=False, opset=OPSET, check=True,
            pooling="explicit", progress=False):
    """The ONNX model (``onnx.ModelProto``) of ``net`` (module docstring).

    ``input_shapes``: ``{input blob: shape}`` in place of the declared ones; ``all_blobs``: every
    blob write a graph output (Note [Blob names]); ``skip_losses``: leave loss layers (and the inputs
    only they read) out instead of refusing them; ``check``: run ``onnx.checker`` (2.6 s of VGG-16's
    7); ``pooling``: "explicit" (Note [Pooling], exact) or "native" (what a converter writes: ONNX's
    ``pads``, ``ceil_mode`` and ``count_include_pad=1``, to find where a runtime's own rules differ
    from Caffe's); ``progress``: a tqdm bar (True/False; None: when stderr is a terminal and the
    net is large).  ValueError naming the layer for anything that cannot be exported.
    """
    onnx, helper, numpy_helper = _import_onnx()
    if opset < OPSET:
        raise ValueError(f"opset {opset}: the export needs opset {OPSET} or later (AveragePool dilations)")
    for layer in net.layers:
        if layer.type != "Input" and layer.type not in EXPORTERS and not (skip_losses and layer.is_loss):
            raise _refuse(layer)
    if pooling not in ("explicit", "native"):
        raise ValueError(f"pooling must be 'explicit' or 'native', got {pooling!r}")
    plan = _Plan(net, input_shapes, skip_losses)
    g = _Builder(helper, numpy_helper, plan.names, pooling)
    bar = progress if isinstance(progress, _Progress) else _Progress(progress, net, len(plan.layers) + 1)
    for layer, bottoms, tops, shapes_in, shapes_out in plan.layers:
        bar.step(layer.name)
        if layer.type == "Input":
            continue
        EXPORTERS[layer.type](g, layer, bottoms, shapes_in, tops, shapes_out)
    f32 = onnx.TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(n, f32, list(s)) for n, s in plan.inputs]
    wanted = plan.all_outputs if all_blobs else plan.net_outputs
    outputs = [helper.make_tensor_value_info(n, f32, list(plan.shape[n])) for n in wanted]
    graph = helper.make_graph(g.nodes, net.name or "econv_net", inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="econv", doc_string="exported by caffe_import.onnx_writer "
                              "(Caffe's rules; blob@layer names in-place writes)")
    model.ir_version = min(model.ir_version, 9)     # readable by onnxruntime builds of 2023 on
    if check:
        onnx.checker.check_model(model)
    bar.step("checked")
    if not isinstance(progress, _Progress):
        bar.close()
    return model


def export_onnx(net, path, *, input_shapes=None, all_blobs=False, skip_losses=False, opset=OPSET,
                check=True, pooling="explicit", progress=None) -> dict:
    """Write ``net`` as an ONNX model to ``path`` atomically; returns ``{"nodes", "inputs", "outputs"}``
    counts and names (see :func:`to_onnx` for the options)."""
    onnx, _, _ = _import_onnx()
    steps = sum(1 for layer in net.layers if not (skip_losses and layer.is_loss)) + 2
    bar = _Progress(progress, net, steps)
    try:
        model = to_onnx(net, input_shapes=input_shapes, all_blobs=all_blobs, skip_losses=skip_losses,
                        opset=opset, check=check, pooling=pooling, progress=bar)
        with atomic_output(os.fspath(path)) as tmp:
            onnx.save_model(model, tmp)
        bar.step("written")
    finally:
        bar.close()
    return {"nodes": len(model.graph.node), "inputs": [i.name for i in model.graph.input],
            "outputs": [o.name for o in model.graph.output]}
