"""RNN, LSTM and LSTMUnit with Caffe's RecurrentLayer semantics (``recurrent_layer.cpp`` 14-288,
``rnn_layer.cpp`` 42-231, ``lstm_layer.cpp`` 47-239, ``lstm_unit_layer.cpp`` 21-121).

Caffe builds an unrolled net of InnerProduct/Eltwise/TanH/LSTMUnit layers; here the same recurrence
is written out directly.  Bottoms: ``x`` (T, N, ...) -- T timesteps of N independent streams --,
``cont`` (T, N) (0 starts a new sequence: the previous state is multiplied by ``cont_t``), then an
optional static input ``x_static`` (N, ...) added to every timestep, then with ``expose_hidden``
the initial states (RNN ``h_0``; LSTM ``h_0``, ``c_0``; each (1, N, H)).  Tops: the output (T, N, H),
then with ``expose_hidden`` the final states (RNN ``h_T``; LSTM ``h_T``, ``c_T``).  Without
``expose_hidden`` the initial state is the final state of the previous forward (zeros at first):
Caffe copies ``h_T`` into ``h_0`` before every forward (lines 257-265).  ``D`` = values per
timestep of ``x``, H = ``recurrent_param.num_output``.

RNN, blobs ``[W_xh (H, D), b_h (H,), (W_xh_static (H, Ds)), W_hh (H, H), W_ho (H, H), b_o (H,)]``::

    h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static])
    o_t = tanh(W_ho h_t + b_o)                              (the output top)

LSTM, blobs ``[W_xc (4H, D), b_c (4H,), (W_xc_static (4H, Ds)), W_hc (4H, H)]``, gate order
``i, f, o, g`` along the 4H axis::

    [i', f', o', g'] = W_hc (cont_t h_{t-1}) + W_xc x_t + b_c [+ W_xc_static x_static]
    i = sig(i'), f = cont_t sig(f') (0 when cont_t == 0), o = sig(o'), g = tanh(g')
    c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)              (h is the output top)

LSTMUnit is that one step as a layer: bottoms ``c_{t-1}`` (1, N, H), gates (1, N, 4H), ``cont``
(1, N); tops ``c_t``, ``h_t``.  Its backward is Caffe's: with ``T = dc + dh o (1 - tanh^2 c)``,
``dc_{t-1} = T f``, ``di' = T g i (1 - i)``, ``df' = T c_{t-1} f (1 - f)``, ``do' = dh tanh(c) o (1 - o)``,
``dg' = T i (1 - g^2)`` (for a non-binary ``cont`` the ``f (1 - f)`` factor is Caffe's, not the
derivative of ``cont sig``).

Gradients: back-propagation through time over the T steps; none to ``cont``.  As in Caffe, the
exposed initial states get no gradient (Caffe shares only their data, line 220) and the diffs of the
exposed final-state tops are not propagated (Caffe zeroes the recurrent output diffs, lines 168-171).
Fillers: ``weight_filler`` for every W, ``bias_filler`` for the biases (both default constant 0).
Example: RNN with H = 1, every weight 1, biases 0, x = [[[0]], [[0]]], cont = [[0], [1]] -> h = 0, o = 0.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def lstm_unit_forward(c_prev, gates, cont):
    """One LSTM step on (N, H) / (N, 4H) / (N,) arrays: ``(c, h, (i, f, o, g))``."""
    hd = c_prev.shape[-1]
    i, f, o = (_sigmoid(gates[:, k * hd:(k + 1) * hd]) for k in range(3))
    g = np.tanh(gates[:, 3 * hd:])
    f = np.where(cont[:, None] == 0, 0, cont[:, None] * f)
    c = f * c_prev + i * g
    return c, o * np.tanh(c), (i, f, o, g)


def lstm_unit_backward(dc, dh, c_prev, c, acts):
    """Caffe's LSTMUnit backward: ``(dc_prev, dgates)`` (see the module docstring)."""
    i, f, o, g = acts
    tanh_c = np.tanh(c)
    term = dc + dh * o * (1 - tanh_c * tanh_c)
    dgates = np.concatenate([term * g * i * (1 - i), term * c_prev * f * (1 - f),
                             dh * tanh_c * o * (1 - o), term * i * (1 - g * g)], axis=1)
    return term * f, dgates


@register
class LSTMUnit(Layer):
    type = "LSTMUnit"
    n_bottom = (3, 3)
    n_top = (2, 2)
    label_bottoms = (2,)

    def reshape(self, shapes):
        c, x, cont = shapes
        if len(c) != 3 or len(x) != 3 or len(cont) != 2:
            raise self.error(f"bottoms must be c (1, N, H), gates (1, N, 4H), cont (1, N); got "
                             f"{c}, {x}, {cont}")
        if c[0] != 1 or x[0] != 1 or cont[0] != 1 or not c[1] == x[1] == cont[1] or x[2] != 4 * c[2]:
            raise self.error(f"bottoms must be c (1, N, H), gates (1, N, 4H), cont (1, N); got "
                             f"{c}, {x}, {cont}")
        return [c, c]

    def run_forward(self, bottoms):
        c_prev, x, cont = bottoms
        c, h, _ = lstm_unit_forward(c_prev[0], x[0], cont[0])
        return [c[None].astype(x.dtype), h[None].astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        c_prev, x, cont = bottoms
        c, _, acts = lstm_unit_forward(c_prev[0], x[0], cont[0])
        dc_prev, dx = lstm_unit_backward(top_diffs[0][0], top_diffs[1][0], c_prev[0], c, acts)
        return [dc_prev[None].astype(x.dtype), dx[None].astype(x.dtype), None]


class _Recurrent(Layer):
    """Shared bottoms, blobs and bookkeeping of RNN and LSTM."""
    n_bottom = (2, None)  # x, cont, [x_static], [initial states]: checked in configure
    n_top = (1, None)
    n_states = 1          # recurrent states: RNN h; LSTM h, c
    gate_factor = 1       # rows of the input weights per hidden unit: RNN 1, LSTM 4

    def configure(self):
        p = self.param("recurrent_param")
        self.hidden = p.int("num_output", 0)
        if self.hidden <= 0:
            raise p.error(f"num_output must be positive, got {self.hidden}")
        self.weight_filler, self.bias_filler = p.sub("weight_filler"), p.sub("bias_filler")
        self.expose = p.bool("expose_hidden", False)
        n_exposed = self.n_states if self.expose else 0
        lo, got = 2 + n_exposed, len(self.bottom_names)
        if not lo <= got <= lo + 1:
            raise self.error(f"needs {lo} or {lo + 1} bottoms (x, cont, [x_static]"
                             f"{', initial states' if self.expose else ''}), got {got}")
        if len(self.top_names) != 1 + n_exposed:
            raise self.error(f"needs {1 + n_exposed} top(s), got {len(self.top_names)}")
        self.static = got == lo + 1
        self.label_bottoms = (1,) + tuple(range(2 + self.static, got))
        self.carry = None   # the final states of the last forward (no expose_hidden)

    def _check(self, shapes):
        x, cont = shapes[0], shapes[1]
        if len(x) < 2 or len(cont) != 2 or tuple(cont) != tuple(x[:2]):
            raise self.error(f"x must be (T, N, ...) and cont (T, N); got {x} and {cont}")
        t, n = x[:2]
        if self.static and (len(shapes[2]) < 1 or shapes[2][0] != n):
            raise self.error(f"x_static must be (N, ...) with N = {n}, got {shapes[2]}")
        for s in shapes[2 + self.static:]:
            if tuple(s) != (1, n, self.hidden):
                raise self.error(f"initial states must be (1, {n}, {self.hidden}), got {s}")
        return t, n

    def _blob_shapes(self, shapes):
        g = self.gate_factor * self.hidden
        d = int(np.prod(shapes[0][2:], dtype=np.int64))
        out = [("W", (g, d)), ("b", (g,))]
        if self.static:
            out.append(("W", (g, int(np.prod(shapes[2][1:], dtype=np.int64)))))
        return out + self.extra_blobs()

    def reshape(self, shapes):
        t, n = self._check(shapes)
        specs = self._blob_shapes(shapes)
        if not self.blobs:
            for kind, shape in specs:
                self.make_blob(shape, self.weight_filler if kind == "W" else self.bias_filler)
        for i, (_, shape) in enumerate(specs):
            self.check_blob_shape(i, shape)
        state = (1, n, self.hidden)
        return [(t, n, self.hidden)] + ([state] * self.n_states if self.expose else [])

    def _inputs(self, bottoms):
        """``(gate input of every step (T, N, G), cont (T, N), initial states [(N, H)])``."""
        x, cont = bottoms[0], bottoms[1]
        t, n = x.shape[:2]
        w, b = self.blobs[0].astype(x.dtype), self.blobs[1].astype(x.dtype)
        pre = x.reshape(t, n, -1) @ w.T + b
        if self.static:
            pre = pre + (bottoms[2].reshape(n, -1) @ self.blobs[2].astype(x.dtype).T)[None]
        if self.expose:
            init = [s.reshape(n, self.hidden) for s in bottoms[2 + self.static:]]
        else:
            fresh = self.carry is None or self.carry[0].shape != (n, self.hidden)
            init = [np.zeros((n, self.hidden), x.dtype)] * self.n_states if fresh else \
                [s.astype(x.dtype) for s in self.carry]
        return pre, cont.astype(x.dtype), init

    @property
    def _recurrent_weight(self):
        return self.blobs[2 + self.static]

    def run_forward(self, bottoms):
        pre, cont, init = self._inputs(bottoms)
        out, final, self.cache = self.unroll(pre, cont, init)
        if not self.expose:
            self.carry = [s.copy() for s in final]
        dtype = bottoms[0].dtype
        return [out.astype(dtype)] + ([s[None].astype(dtype) for s in final] if self.expose else [])

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        t, n = x.shape[:2]
        dpre = self.backprop(top_diffs[0], self.cache)          # (T, N, G)
        flat = x.reshape(t * n, -1)
        dflat = dpre.reshape(t * n, -1)
        self.diffs[0] += dflat.T @ flat
        self.diffs[1] += dflat.sum(axis=0)
        dx = (dflat @ self.blobs[0].astype(x.dtype)).reshape(x.shape)
        out = [dx, None]
        if self.static:
            xs = bottoms[2].reshape(n, -1)
            dstatic = dpre.sum(axis=0)
            self.diffs[2] += dstatic.T @ xs
            out.append((dstatic @ self.blobs[2].astype(x.dtype)).reshape(bottoms[2].shape))
        return out + [None] * (len(bottoms) - len(out))


@register
class RNN(_Recurrent):
    type = "RNN"

    def extra_blobs(self):
        h = self.hidden
        return [("W", (h, h)), ("W", (h, h)), ("b", (h,))]

    def unroll(self, pre, cont, init):
        w_hh = self._recurrent_weight.astype(pre.dtype)
        w_ho, b_o = (b.astype(pre.dtype) for b in self.blobs[3 + self.static:])
        h, hs, conted, outs = init[0], [], [], []
        for t in range(pre.shape[0]):
            hc = cont[t][:, None] * h
            h = np.tanh(hc @ w_hh.T + pre[t])
            outs.append(np.tanh(h @ w_ho.T + b_o))
            hs.append(h)
            conted.append(hc)
        return np.stack(outs), [h], (np.stack(hs), np.stack(conted), np.stack(outs), cont)

    def backprop(self, dout, cache):
        hs, conted, outs, cont = cache
        w_hh = self._recurrent_weight.astype(hs.dtype)
        k = 3 + self.static
        w_ho = self.blobs[k].astype(hs.dtype)
        dz = dout * (1 - outs * outs)                              # through o = tanh(.)
        self.diffs[k] += np.einsum("tnh,tnk->hk", dz, hs)
        self.diffs[k + 1] += dz.sum(axis=(0, 1))
        dh_out = dz @ w_ho
        dpre = np.zeros_like(hs)
        dh_next = np.zeros_like(hs[0])
        for t in reversed(range(hs.shape[0])):
            da = (dh_out[t] + dh_next) * (1 - hs[t] * hs[t])
            dpre[t] = da
            self.diffs[2 + self.static] += da.T @ conted[t]
            dh_next = (da @ w_hh) * cont[t][:, None]
        return dpre


@register
class LSTM(_Recurrent):
    type = "LSTM"
    n_states = 2
    gate_factor = 4

    def extra_blobs(self):
        return [("W", (4 * self.hidden, self.hidden))]

    def unroll(self, pre, cont, init):
        w_hc = self._recurrent_weight.astype(pre.dtype)
        h, c = init
        steps = []
        for t in range(pre.shape[0]):
            hc = cont[t][:, None] * h
            c_prev = c
            c, h, acts = lstm_unit_forward(c_prev, hc @ w_hc.T + pre[t], cont[t])
            steps.append((hc, c_prev, c, acts))
        out = np.stack([s[3][2] * np.tanh(s[2]) for s in steps])
        return out, [h, c], (steps, cont)

    def backprop(self, dout, cache):
        steps, cont = cache
        w_hc = self._recurrent_weight.astype(dout.dtype)
        dpre = np.zeros((len(steps),) + (steps[0][0].shape[0], 4 * self.hidden), dout.dtype)
        dh_next = np.zeros_like(steps[0][0])
        dc_next = np.zeros_like(steps[0][0])
        for t in reversed(range(len(steps))):
            hc, c_prev, c, acts = steps[t]
            dc_next, dgates = lstm_unit_backward(dc_next, dout[t] + dh_next, c_prev, c, acts)
            dpre[t] = dgates
            self.diffs[2 + self.static] += dgates.T @ hc
            dh_next = (dgates @ w_hc) * cont[t][:, None]
        return dpre
