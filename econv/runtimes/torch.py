"""A PyTorch port of a Caffe net, layer by layer with ``torch.nn.functional``: what a careful
hand-written port does.

The files are read with :mod:`caffe_import` (the port's own loader); every layer then runs as the
``torch.nn.functional`` call a careful porter would pick, in float32 on the CPU:

- Convolution ``F.conv2d(stride, padding, dilation, groups)``; Deconvolution ``F.conv_transpose2d``;
- Pooling ``F.max_pool2d`` / ``F.avg_pool2d(count_include_pad=True)`` with ``ceil_mode`` from
  ``round_mode`` (PyTorch's own size rule then decides the output size: it always drops a last window
  that starts past the input, Caffe only when there is padding);
- InnerProduct ``F.linear`` on the flattened input (``transpose`` honoured); LRN across channels
  ``F.local_response_norm`` (alpha / n as Caffe), within a channel ``avg_pool2d`` of the squares;
- BatchNorm from the three blobs (mean and variance divided by the scale factor), Scale, Eltwise,
  Concat, Power, ReLU (negative_slope), Sigmoid, TanH, Softmax, Dropout (identity), Crop, Flatten,
  Reshape, Split.

Outputs are keyed ``"blob@layer"`` (unambiguous across in-place layers).  A layer type it does not
know raises RuntimeError naming it.
"""

from __future__ import annotations

import numpy as np

NAME = "torch"
NAMING = "blob"         # its keys are all blob@layer
INSTALL_HINT = "pip install torch (CPU wheels: https://pytorch.org); torch is not in econv's extras"


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    import torch
    return torch.__version__


def _list(v):
    return [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])


def _hw(p: dict, name: str, default):
    """Caffe's spatial field (``kernel_size`` / ``kernel_h, kernel_w``) as an (h, w) pair."""
    base = name.replace("_size", "")
    if f"{base}_h" in p or f"{base}_w" in p:
        return int(p.get(f"{base}_h", default)), int(p.get(f"{base}_w", default))
    v = _list(p.get(name))
    if not v:
        return default, default
    return (int(v[0]), int(v[-1]))


class _Port:
    def __init__(self, torch, F):
        self.torch, self.F = torch, F

    def Convolution(self, spec, xs, blobs):
        p = spec.get("convolution_param", {})
        w, b = blobs[0], (blobs[1].reshape(-1) if len(blobs) > 1 and p.get("bias_term", True) else None)
        return [self.F.conv2d(x, w, b, _hw(p, "stride", 1), _hw(p, "pad", 0), _hw(p, "dilation", 1),
                              int(p.get("group", 1))) for x in xs]

    def Deconvolution(self, spec, xs, blobs):
        p = spec.get("convolution_param", {})
        w, b = blobs[0], (blobs[1].reshape(-1) if len(blobs) > 1 and p.get("bias_term", True) else None)
        return [self.F.conv_transpose2d(x, w, b, _hw(p, "stride", 1), _hw(p, "pad", 0), 0,
                                        int(p.get("group", 1)), _hw(p, "dilation", 1)) for x in xs]

    def Pooling(self, spec, xs, blobs):
        p = spec.get("pooling_param", {})
        x = xs[0]
        if p.get("global_pooling"):
            k, s, pad = tuple(x.shape[2:]), (1, 1), (0, 0)
        else:
            k, s, pad = _hw(p, "kernel_size", None), _hw(p, "stride", 1), _hw(p, "pad", 0)
        ceil = str(p.get("round_mode", "CEIL")) == "CEIL"
        if str(p.get("pool", "MAX")) == "MAX":
            return [self.F.max_pool2d(x, k, s, pad, ceil_mode=ceil)]
        return [self.F.avg_pool2d(x, k, s, pad, ceil_mode=ceil, count_include_pad=True)]

    def InnerProduct(self, spec, xs, blobs):
        p = spec.get("inner_product_param", {})
        axis = int(p.get("axis", 1))
        x = xs[0].flatten(axis)
        k = x.shape[-1]
        w = blobs[0].reshape(k, -1).T if p.get("transpose") else blobs[0].reshape(-1, k)
        b = blobs[1].reshape(-1) if len(blobs) > 1 and p.get("bias_term", True) else None
        return [self.F.linear(x, w, b)]

    def LRN(self, spec, xs, blobs):
        p = spec.get("lrn_param", {})
        n, alpha, beta = int(p.get("local_size", 5)), float(p.get("alpha", 1.0)), float(p.get("beta", 0.75))
        x = xs[0]
        if str(p.get("norm_region", "ACROSS_CHANNELS")) == "ACROSS_CHANNELS":
            return [self.F.local_response_norm(x, n, alpha, beta, float(p.get("k", 1.0)))]
        s = self.F.avg_pool2d(x * x, n, 1, (n - 1) // 2, count_include_pad=True)
        return [x * (1 + alpha * s) ** -beta]

    def BatchNorm(self, spec, xs, blobs):
        p = spec.get("batch_norm_param", {})
        f = 0.0 if float(blobs[2].reshape(-1)[0]) == 0 else 1.0 / float(blobs[2].reshape(-1)[0])
        return [self.F.batch_norm(xs[0], blobs[0].reshape(-1) * f, blobs[1].reshape(-1) * f, training=False,
                                  eps=float(p.get("eps", 1e-5)))]

    def Scale(self, spec, xs, blobs):
        p = spec.get("scale_param", {})
        x, axis = xs[0], int(p.get("axis", 1))
        scale = xs[1] if len(xs) > 1 else blobs[0]
        shape = [1] * x.dim()
        for i, d in enumerate(scale.shape):
            shape[axis + i] = d
        y = x * scale.reshape(shape)
        if p.get("bias_term"):
            y = y + blobs[-1].reshape(shape)
        return [y]

    def Eltwise(self, spec, xs, blobs):
        p = spec.get("eltwise_param", {})
        op = str(p.get("operation", "SUM"))
        if op == "PROD":
            y = xs[0]
            for x in xs[1:]:
                y = y * x
        elif op == "MAX":
            y = xs[0]
            for x in xs[1:]:
                y = self.torch.maximum(y, x)
        else:
            coeff = [float(c) for c in _list(p.get("coeff"))] or [1.0] * len(xs)
            y = sum(c * x for c, x in zip(coeff, xs))
        return [y]

    def Concat(self, spec, xs, blobs):
        return [self.torch.cat(xs, int(spec.get("concat_param", {}).get("axis", 1)))]

    def Power(self, spec, xs, blobs):
        p = spec.get("power_param", {})
        return [(float(p.get("shift", 0.0)) + float(p.get("scale", 1.0)) * xs[0])
                ** float(p.get("power", 1.0))]

    def ReLU(self, spec, xs, blobs):
        slope = float(spec.get("relu_param", {}).get("negative_slope", 0.0))
        return [self.F.leaky_relu(xs[0], slope) if slope else self.F.relu(xs[0])]

    def Sigmoid(self, spec, xs, blobs):
        return [self.torch.sigmoid(xs[0])]

    def TanH(self, spec, xs, blobs):
        return [self.torch.tanh(xs[0])]

    def Softmax(self, spec, xs, blobs):
        return [self.F.softmax(xs[0], int(spec.get("softmax_param", {}).get("axis", 1)))]

    def Dropout(self, spec, xs, blobs):
        return [xs[0]]

    def Split(self, spec, xs, blobs):
        return [xs[0]] * len(_list(spec.get("top")))

    def Flatten(self, spec, xs, blobs):
        p = spec.get("flatten_param", {})
        return [xs[0].flatten(int(p.get("axis", 1)), int(p.get("end_axis", -1)))]

    def Reshape(self, spec, xs, blobs):
        dims = [int(d) for d in spec.get("reshape_param", {}).get("shape", {}).get("dim", [])]
        x = xs[0]
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return [x.reshape(dims)]

    def Crop(self, spec, xs, blobs):
        p = spec.get("crop_param", {})
        x, ref = xs
        axis = int(p.get("axis", 2)) % x.dim()
        offs = [int(o) for o in _list(p.get("offset"))] or [0]
        if len(offs) == 1:
            offs = offs * (x.dim() - axis)
        for i, off in zip(range(axis, x.dim()), offs):
            x = x.narrow(i, off, ref.shape[i])
        return [x]


def run(prototxt_path, weights_path, inputs, want=None) -> dict:
    """Every layer's outputs keyed ``"blob@layer"`` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from caffe_import import read_prototxt, read_weights
    from reference.net import layer_included

    net = read_prototxt(str(prototxt_path))
    weights = read_weights(str(weights_path)) if weights_path is not None else {}
    port = _Port(torch, F)
    blobs, out = {}, {}
    with torch.no_grad():
        for spec in net.get("layer", []):
            if not layer_included(spec, "TEST"):
                continue
            name, kind = spec.get("name", ""), spec.get("type", "")
            tops = _list(spec.get("top"))
            if kind == "Input":
                values = [torch.from_numpy(np.ascontiguousarray(inputs[t], dtype=np.float32)) for t in tops]
            else:
                method = getattr(port, kind, None)
                if method is None:
                    raise RuntimeError(f"layer {name!r}: the PyTorch port has no {kind} layer")
                params = [torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
                          for b in weights.get(name, [])]
                values = method(spec, [blobs[b] for b in _list(spec.get("bottom"))], params)
            for t, v in zip(tops, values):
                blobs[t] = v
                out[f"{t}@{name}"] = v.numpy().copy()
    return out
