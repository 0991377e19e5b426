"""A training loop that stays on the GPU: :class:`DeviceNet` runs a :class:`reference.Net` with every
blob, diff, parameter and momentum as a numba.cuda device array, and Caffe's SGD update on the
device.  Per iteration only the batch goes to the GPU and one number (the loss) comes back.

It executes the layer types the FCN demo's nets (baseline and dense) are made of, with the same
semantics as the reference layers: Input, Convolution, Deconvolution, EDeconvolution, Pooling (not
global), ReLU, Crop (axis 2), Eltwise (SUM with coefficients), Mask, SoftmaxWithLoss.  Another type
is refused by name.  Parameters are copied from the Net at construction and back by
:meth:`DeviceNet.download` (the Net stays the reference for evaluation and dpoa).

The element-wise and layout kernels below (crop, sum, mask, equivalent deconvolution) are written
like :mod:`numba_kernels.cuda`'s: grid-stride loops, one thread per output value, gathers (no
atomics, deterministic).  The equivalent deconvolution (:mod:`reference.edeconv`)::

    y[n, o, P, Q] = b[o] + sum over c in o's group, taps (i, j) whose phase matches:
                    w[c, o', i, j] * x[n, c, P + E_h (p_h - d_h i), Q + E_w (p_w - d_w j)]

where tap ``i`` matches row ``P`` when ``(P div E_h + p_h - d_h i) mod s_h == 0``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import cuda as K
from .cuda import THREADS, _flat, _grid, _unravel, to_device

__all__ = ["DeviceNet", "SUPPORTED"]

SUPPORTED = ("Input", "Convolution", "Deconvolution", "EDeconvolution", "Pooling", "ReLU", "Crop",
             "Eltwise", "Mask", "SoftmaxWithLoss")


# ---- kernels ------------------------------------------------------------------------------------

@cuda.jit
def _crop_fwd(x, oh, ow, y):
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, k, i, j = _unravel(t, y.shape)
        y[n, k, i, j] = x[n, k, i + oh, j + ow]


@cuda.jit
def _crop_bwd(dy, oh, ow, dx):
    """``dx`` (zeroed here) gets ``dy`` at the crop's offsets: one thread per ``dx`` value (a gather)."""
    hy, wy = dy.shape[2], dy.shape[3]
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, k, i, j = _unravel(t, dx.shape)
        a, b = i - oh, j - ow
        if 0 <= a < hy and 0 <= b < wy:
            dx[n, k, i, j] = dy[n, k, a, b]
        else:
            dx[n, k, i, j] = 0


@cuda.jit
def _axpby(a, x, b, z, y):
    """``y = a*x + b*z`` (flat arrays; ``b = 0`` scales)."""
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[t] = a * x[t] + b * z[t]


@cuda.jit
def _mask(x, m, y):
    """``y[n, c, i, j] = x[n, c, i, j] * m[i, j]`` on flat arrays (``m`` flattened, H*W long)."""
    hw = m.size
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[t] = x[t] * m[t % hw]


@cuda.jit(device=True)
def _tap_source(pos, e, p, d, tap, s, n_in):
    """The input position tap ``tap`` reads for output ``pos`` along one axis, or -1 when it is
    outside the input or the tap belongs to another phase (``(pos div e + p - d*tap) mod s != 0``)."""
    src = pos + e * (p - d * tap)
    r = (pos // e + p - d * tap) % s
    if src < 0 or src >= n_in or (r + s) % s != 0:     # the same for C's and Python's sign of %
        return -1
    return src


@cuda.jit
def _edeconv_fwd(x, w, b, has_bias, sh, sw, ph, pw, dh, dw_, eh, ew, group, y):
    c_in, hx, wx = x.shape[1], x.shape[2], x.shape[3]
    cg, og = c_in // group, y.shape[1] // group
    kh, kw = w.shape[2], w.shape[3]
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, o, p, q = _unravel(t, y.shape)
        g = o // og
        acc = 0.0
        for i in range(kh):
            r = _tap_source(p, eh, ph, dh, i, sh, hx)
            if r < 0:
                continue
            for j in range(kw):
                s = _tap_source(q, ew, pw, dw_, j, sw, wx)
                if s < 0:
                    continue
                for cl in range(cg):
                    c = g * cg + cl
                    acc += w[c, o - g * og, i, j] * x[n, c, r, s]
        if has_bias:
            acc += b[o]
        y[n, o, p, q] = acc


@cuda.jit
def _edeconv_dx(dy, w, sh, sw, ph, pw, dh, dw_, eh, ew, group, dx):
    """One thread per input value: the outputs whose taps read it (the transpose of the forward)."""
    c_in, hx, wx = dx.shape[1], dx.shape[2], dx.shape[3]
    ho, wo = dy.shape[2], dy.shape[3]
    cg, og = c_in // group, dy.shape[1] // group
    kh, kw = w.shape[2], w.shape[3]
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, r, s = _unravel(t, dx.shape)
        g = c // cg
        acc = 0.0
        for i in range(kh):
            p = r - eh * (ph - dh * i)
            if p < 0 or p >= ho or _tap_source(p, eh, ph, dh, i, sh, hx) < 0:
                continue
            for j in range(kw):
                q = s - ew * (pw - dw_ * j)
                if q < 0 or q >= wo or _tap_source(q, ew, pw, dw_, j, sw, wx) < 0:
                    continue
                for ol in range(og):
                    acc += w[c, ol, i, j] * dy[n, g * og + ol, p, q]
        dx[n, c, r, s] = acc


@cuda.jit
def _edeconv_dw(x, dy, sh, sw, ph, pw, dh, dw_, eh, ew, group, dwt):
    nb, hx, wx = x.shape[0], x.shape[2], x.shape[3]
    ho, wo = dy.shape[2], dy.shape[3]
    cg = dwt.shape[0] // group
    for t in range(cuda.grid(1), dwt.size, cuda.gridsize(1)):
        c, ol, i, j = _unravel(t, dwt.shape)
        o = (c // cg) * dwt.shape[1] + ol
        acc = 0.0
        for n in range(nb):
            for p in range(ho):
                r = _tap_source(p, eh, ph, dh, i, sh, hx)
                if r < 0:
                    continue
                for q in range(wo):
                    s = _tap_source(q, ew, pw, dw_, j, sw, wx)
                    if s >= 0:
                        acc += x[n, c, r, s] * dy[n, o, p, q]
        dwt[c, ol, i, j] = acc


@cuda.jit
def _bias_sum(dy, db):
    """``db[o] = sum dy[:, o]``: one thread per channel (the bias of a score map is small)."""
    nb, o_out, h, w = dy.shape
    for o in range(cuda.grid(1), o_out, cuda.gridsize(1)):
        acc = 0.0
        for n in range(nb):
            for i in range(h):
                for j in range(w):
                    acc += dy[n, o, i, j]
        db[o] = acc


def _like(a):
    return cuda.device_array(a.shape, dtype=a.dtype)


def _add(a, b):
    out = _like(a)
    _axpby[_grid(out.size)](a.dtype.type(1), _flat(a), a.dtype.type(1), _flat(b), _flat(out))
    return out


# ---- the executor -------------------------------------------------------------------------------

class DeviceNet:
    """``net``'s layers on the GPU (module docstring); ``step`` is one SGD iteration."""

    def __init__(self, net):
        bad = [f"{layer.name!r} ({layer.type})" for layer in net.layers if layer.type not in SUPPORTED
               or (layer.type == "Pooling" and (layer.global_pooling or layer.mode == "stochastic"
                                                 or len(layer.top_names) > 1))
               or (layer.type == "Eltwise" and layer.op != "SUM")]
        if bad:
            raise ValueError(f"DeviceNet: no device version of layer {', '.join(bad)} (supported: "
                             f"{', '.join(SUPPORTED)}; Pooling MAX/AVE, not global, one top; "
                             f"Eltwise SUM)")
        self.net = net
        self.dtype = np.dtype(net.dtype)
        self.params = {name: [to_device(np.ascontiguousarray(b)) for b in blobs]
                       for name, blobs in net.params.items()}
        self.history = {name: [cuda.to_device(np.zeros_like(b)) for b in blobs]
                        for name, blobs in net.params.items()}
        self.masks = {layer.name: to_device(layer.mask.astype(self.dtype).ravel())
                      for layer in net.layers if layer.type == "Mask"}
        self.need = net._needs_diff()
        self._no_bias = cuda.to_device(np.zeros(1, dtype=self.dtype))
        self.values = None
        self.loss = float("nan")

    # -- forward --
    def forward(self, **inputs) -> float:
        net, values, loss = self.net, {}, 0.0
        self._cache = {}
        for layer, bids, tids in zip(net.layers, net._bottom_ids, net._top_ids):
            if layer.type == "Input":
                for t, name in zip(tids, layer.top_names):
                    values[t] = to_device(np.ascontiguousarray(inputs[name], dtype=self.dtype))
                continue
            bottoms = [values[b] for b in bids]
            layer.setup([b.shape for b in bottoms])          # the reference's shape checks
            tops, layer_loss = self._forward(layer, bottoms)
            loss += layer_loss
            for t, a in zip(tids, tops):
                values[t] = a
        self.values, self.loss = values, loss
        return loss

    def _forward(self, layer, bottoms):
        p = self.params.get(layer.name)
        kind = layer.type
        if kind == "Convolution":
            return [K.conv2d(x, p[0], p[1] if layer.bias_term else None, layer.stride, layer.pad,
                             layer.est, layer.group) for x in bottoms], 0.0
        if kind == "Deconvolution":
            return [K.deconv2d(x, p[0], p[1] if layer.bias_term else None, layer.stride, layer.pad,
                               layer.est, layer.group) for x in bottoms], 0.0
        if kind == "EDeconvolution":
            out = []
            for x in bottoms:
                shape = layer.setup([x.shape])[0]
                y = cuda.device_array(shape, dtype=self.dtype)
                # a 1-D placeholder without bias: the kernel is typed for both branches
                b = p[1] if layer.bias_term else self._no_bias
                _edeconv_fwd[_grid(y.size)](x, p[0], b, int(layer.bias_term), *self._geo(layer),
                                            layer.group, y)
                out.append(y)
            return out, 0.0
        if kind == "Pooling":
            return [K.pool2d(bottoms[0], layer.kernel, layer.stride, layer.pad, layer.est, layer.mode,
                             layer.round_mode, layer.pad_end)], 0.0
        if kind == "ReLU":
            return [K.relu_forward(bottoms[0], layer.slope)], 0.0
        if kind == "Crop":
            oh, ow = self._crop_offsets(layer, bottoms[0].shape, bottoms[1].shape)
            y = cuda.device_array(tuple(bottoms[0].shape[:2]) + tuple(bottoms[1].shape[2:]), self.dtype)
            _crop_fwd[_grid(y.size)](bottoms[0], oh, ow, y)
            return [y], 0.0
        if kind == "Eltwise":
            coeff = self._coeffs(layer, len(bottoms))
            y = _like(bottoms[0])
            t = self.dtype.type
            _axpby[_grid(y.size)](t(coeff[0]), _flat(bottoms[0]), t(0), _flat(bottoms[0]), _flat(y))
            for c, x in zip(coeff[1:], bottoms[1:]):
                _axpby[_grid(y.size)](t(1), _flat(y), t(c), _flat(x), _flat(y))
            return [y], 0.0
        if kind == "Mask":
            y = _like(bottoms[0])
            _mask[_grid(y.size)](_flat(bottoms[0]), self.masks[layer.name], _flat(y))
            return [y], 0.0
        if kind == "SoftmaxWithLoss":
            loss, prob = K.softmax_loss_forward(bottoms[0], bottoms[1], layer.ignore_label,
                                                layer.normalization)
            self._cache[layer.name] = prob
            weight = layer.loss_weights[0]
            out = cuda.to_device(np.array(loss, dtype=self.dtype))
            return [out], weight * loss
        raise AssertionError(kind)

    @staticmethod
    def _geo(layer):
        (sh, sw), (ph, pw), (dh, dw), (eh, ew) = layer.stride, layer.pad, layer.est, layer.grid
        return sh, sw, ph, pw, dh, dw, eh, ew

    @staticmethod
    def _crop_offsets(layer, shape, ref):
        _, slices = layer._plan(tuple(shape), tuple(ref))
        if any(s.start for s in slices[:2]):
            raise ValueError(f"DeviceNet: Crop {layer.name!r} crops the batch or channel axis")
        return slices[2].start, slices[3].start

    @staticmethod
    def _coeffs(layer, n):
        return list(layer.coeff)

    # -- backward --
    def backward(self):
        """Diffs from the loss layers down; parameter gradients in ``self.diffs`` (device)."""
        net, values = self.net, self.values
        diffs, self.diffs = {}, {}
        for layer, tids in zip(net.layers, net._top_ids):
            for t, w in zip(tids, layer.loss_weights):
                if w:
                    diffs[t] = w
        for layer, bids, tids in reversed(list(zip(net.layers, net._bottom_ids, net._top_ids))):
            if layer.type == "Input" or not any(t in diffs for t in tids):
                continue
            dys = [diffs.get(t) for t in tids]
            bottoms = [values[b] for b in bids]
            for b, d in zip(bids, self._backward(layer, dys, bottoms)):
                if d is None or not self.need[b]:
                    continue
                diffs[b] = _add(diffs[b], d) if b in diffs else d

    def _param_grads(self, layer, dw, db):
        self.diffs[layer.name] = [dw] + ([db] if layer.bias_term else [])

    def _backward(self, layer, dys, bottoms):
        p = self.params.get(layer.name)
        kind, dy = layer.type, dys[0]
        if dy is None:
            return [None] * len(bottoms)
        if kind == "Convolution":
            dx, dw, db = K.conv2d_backward(dy, bottoms[0], p[0], layer.stride, layer.pad, layer.est,
                                           layer.group, layer.bias_term)
            self._param_grads(layer, dw, db)
            return [dx]
        if kind == "Deconvolution":
            dx, dw, db = K.deconv2d_backward(dy, bottoms[0], p[0], layer.stride, layer.pad, layer.est,
                                             layer.group, layer.bias_term)
            self._param_grads(layer, dw, db)
            return [dx]
        if kind == "EDeconvolution":
            x = bottoms[0]
            dx, dw = _like(x), _like(p[0])
            _edeconv_dx[_grid(dx.size)](dy, p[0], *self._geo(layer), layer.group, dx)
            _edeconv_dw[_grid(dw.size)](x, dy, *self._geo(layer), layer.group, dw)
            db = None
            if layer.bias_term:
                db = _like(p[1])
                _bias_sum[max(1, math.ceil(db.size / THREADS)), THREADS](dy, db)
            self._param_grads(layer, dw, db)
            return [dx]
        if kind == "Pooling":
            return [K.pool2d_backward(dy, bottoms[0], layer.kernel, layer.stride, layer.pad, layer.est,
                                      layer.mode, layer.round_mode, layer.pad_end)]
        if kind == "ReLU":
            return [K.relu_backward(dy, bottoms[0], layer.slope)]
        if kind == "Crop":
            oh, ow = self._crop_offsets(layer, bottoms[0].shape, bottoms[1].shape)
            dx = _like(bottoms[0])
            _crop_bwd[_grid(dx.size)](dy, oh, ow, dx)
            return [dx, None]
        if kind == "Eltwise":
            out = []
            for c in self._coeffs(layer, len(bottoms)):
                d = _like(dy)
                t = self.dtype.type
                _axpby[_grid(d.size)](t(c), _flat(dy), t(0), _flat(dy), _flat(d))
                out.append(d)
            return out
        if kind == "Mask":
            dx = _like(dy)
            _mask[_grid(dx.size)](_flat(dy), self.masks[layer.name], _flat(dx))
            return [dx]
        if kind == "SoftmaxWithLoss":
            dx = K.softmax_loss_backward(self._cache[layer.name], bottoms[1], layer.ignore_label,
                                         layer.normalization, loss_weight=dy)
            return [dx, None]
        raise AssertionError(kind)

    # -- training --
    def step(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, **inputs) -> float:
        """One iteration of Caffe's SGD (``iter_size`` 1): forward, backward, update on the device."""
        loss = self.forward(**inputs)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss}: lower the learning rate")
        self.backward()
        for layer in self.net.layers:
            for i, w in enumerate(self.params.get(layer.name, [])):
                if layer.lr_mult(i) == 0 or layer.name not in self.diffs:
                    continue
                K.sgd_update(w, self.diffs[layer.name][i], self.history[layer.name][i], lr, momentum,
                             weight_decay, layer.lr_mult(i), layer.decay_mult(i))
        return loss

    def download(self, net=None):
        """Copy the device parameters into ``net`` (default: the Net this was built from)."""
        net = net or self.net
        for name, blobs in self.params.items():
            for a, b in zip(blobs, net.params[name]):
                b[...] = a.copy_to_host()
        return net
