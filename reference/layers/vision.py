"""Convolution, Deconvolution and Pooling layers: Caffe's parameters on top of the reference ops.

The mathematics lives in :mod:`reference.conv`, :mod:`reference.deconv` and :mod:`reference.pool`;
these classes read Caffe's parameters, own the weight blobs and call ``self.ops`` (the Net's backend:
the reference itself, or a Numba backend with the same six functions).

eConv is a Convolution with ``dilation`` (= est).  DeepLab's fork spells dilation ``hole`` /
``hole_h`` + ``hole_w`` (deeplab-public, mirrored at github:TheLegendAli/DeepLab-Context @ fb04e9e:
caffe.proto ConvolutionParameter fields 17-19; src/caffe/layers/conv_layer.cpp lines 30-52 read them,
src/caffe/util/im2col.cpp lines 14-25 take tap ``k`` at ``k * hole`` with the extent
``k + (k - 1)(hole - 1)``, exactly dilation's); either spelling is read, not both.
DenseNet's Caffe models use BVLC PR #3057's ``pooling_param { ceil_mode }`` (github:BVLC/caffe
refs/pull/3057/head b4259a1, src/caffe/layers/pooling_layer.cpp lines 94-105: ``ceil`` or ``floor``
of ``(H + 2p - k) / s``, then the same clip as ``round_mode``): ``ceil_mode: false`` is
``round_mode: FLOOR``.  ePool is a Pooling layer with the econv extension
fields ``est`` and ``pad_end`` in ``pooling_param`` (BVLC Caffe has no such fields).
"""

from __future__ import annotations

import weakref

import numpy as np

from ..conv import conv_geometry
from ..deconv import deconv_geometry
from ..pool import pool_geometry
from . import pooling_modes
from .base import Layer, register


class _ConvBase(Layer):
    n_bottom = (1, None)
    n_top = (1, None)

    def configure(self):
        if len(self.bottom_names) != len(self.top_names):
            raise self.error(f"needs one top per bottom, got {len(self.bottom_names)} bottoms and "
                             f"{len(self.top_names)} tops")
        p = self.param("convolution_param")
        self.num_output = p.int("num_output", minimum=1)
        self.bias_term = p.bool("bias_term", True)
        self.kernel = p.conv_spatial("kernel_size", None, 1, hw="kernel")
        self.stride = p.conv_spatial("stride", 1, 1)
        self.pad = p.conv_spatial("pad", 0, 0)
        self.est = p.conv_spatial("dilation", 1, 1)
        if p.has("hole") or p.has("hole_h") or p.has("hole_w"):
            if p.has("dilation"):
                raise p.error("hole (DeepLab's fork) and dilation are the same thing; give one")
            self.est = p.conv_spatial("hole", 1, 1)
        self.group = p.int("group", 1, minimum=1)
        if p.int("axis", 1) != 1:
            raise p.error("axis: only axis 1 (NCHW) is supported")
        if self.num_output % self.group:
            raise p.error(f"num_output {self.num_output} not divisible by group {self.group}")
        self.weight_filler = p.sub("weight_filler")
        self.bias_filler = p.sub("bias_filler")

    def _check_bottoms(self, shapes):
        for s in shapes:
            if len(s) != 4:
                raise self.error(f"input must be 4-D (N, C, H, W), got shape {s}")
            if s != shapes[0]:
                raise self.error(f"all bottoms must have the same shape, got {shapes}")
        if shapes[0][1] % self.group:
            raise self.error(f"input channels {shapes[0][1]} not divisible by group {self.group}")

    def _ensure_blobs(self, weight_shape):
        if not self.blobs:
            self.make_blob(weight_shape, self.weight_filler)
            if self.bias_term:
                self.make_blob((self.num_output,), self.bias_filler)
        self.check_blob_shape(0, weight_shape)

    @property
    def bias(self):
        return self.blobs[1] if self.bias_term else None

    def run_forward(self, bottoms):
        return [self._op(x) for x in bottoms]

    def run_backward(self, top_diffs, bottoms, tops):
        out = []
        for dy, x in zip(top_diffs, bottoms):
            dx, dw, db = self._op_backward(dy, x)
            self.diffs[0] += dw
            if self.bias_term:
                self.diffs[1] += db
            out.append(dx)
        return out


@register
class Convolution(_ConvBase):
    """Caffe Convolution (eConv when ``dilation`` > 1): weights (O, C/G, kh, kw), bias (O,)."""
    type = "Convolution"

    def reshape(self, shapes):
        self._check_bottoms(shapes)
        c = shapes[0][1]
        self._ensure_blobs((self.num_output, c // self.group) + self.kernel)
        *_, out_hw = conv_geometry(f"layer {self.name!r} (Convolution)", shapes[0],
                                   self.blobs[0].shape, self.stride, self.pad, self.est, self.group)
        return [(s[0], self.num_output) + out_hw for s in shapes]

    def _op(self, x):
        return self.ops.conv2d(x, self.blobs[0], self.bias, self.stride, self.pad, self.est,
                               self.group)

    def _op_backward(self, dy, x):
        return self.ops.conv2d_backward(dy, x, self.blobs[0], self.stride, self.pad, self.est,
                                        self.group, self.bias_term)


@register
class Deconvolution(_ConvBase):
    """Caffe Deconvolution: weights (C, O/G, kh, kw) -- axis 0 is the input channel --, bias (O,)."""
    type = "Deconvolution"

    def reshape(self, shapes):
        self._check_bottoms(shapes)
        c = shapes[0][1]
        self._ensure_blobs((c, self.num_output // self.group) + self.kernel)
        *_, out_hw, _ = deconv_geometry(f"layer {self.name!r} (Deconvolution)", shapes[0],
                                        self.blobs[0].shape, self.stride, self.pad, self.est,
                                        self.group)
        return [(s[0], self.num_output) + out_hw for s in shapes]

    def _op(self, x):
        return self.ops.deconv2d(x, self.blobs[0], self.bias, self.stride, self.pad, self.est,
                                 self.group)

    def _op_backward(self, dy, x):
        return self.ops.deconv2d_backward(dy, x, self.blobs[0], self.stride, self.pad, self.est,
                                          self.group, self.bias_term)


@register
class Pooling(Layer):
    """Caffe Pooling (MAX, AVE, STOCHASTIC, global), ePool with the ``est``/``pad_end`` extension
    fields; MAX takes an optional second top, the argmax mask (:mod:`.pooling_modes`).

    MAX keeps its argmax for the backward, as Caffe's layer keeps ``max_idx_`` (BVLC/caffe @
    9b89154: include/caffe/layers/pooling_layer.hpp line 56 declares it, ``Blob<int>``;
    src/caffe/layers/pooling_layer.cpp lines 124-129 size it like the top, lines 153-200 record the
    bottom index of each window's first strict maximum in Forward_cpu, lines 258-284 scatter the top
    diff through it in Backward_cpu) -- when ``self.ops`` offers ``pool2d_argmax`` (the Numba CPU
    backend; the reference and the CUDA backend do not, and keep recomputing it) and a backward is
    expected (``need_backward``, which the Net sets by Caffe's rule), so an inference forward runs
    the plain kernel.  The backward passes it as ``argmax=`` only for the very bottom array the
    forward pooled (same object, same shape); for another array it recomputes.
    """
    type = "Pooling"
    n_top = (1, 2)

    def configure(self):
        p = self.param("pooling_param")
        pool = p.enum("pool", "MAX")
        self.mode = pool.lower()
        if len(self.top_names) == 2 and self.mode != "max":
            raise self.error(f"a second top (the argmax mask) needs pool: MAX, got {pool}")
        self.global_pooling = p.bool("global_pooling", False)
        if self.global_pooling:
            if p.has("kernel_size") or p.has("kernel_h") or p.has("kernel_w"):
                raise p.error("kernel_size cannot be given with global_pooling")
            self.kernel = None
        else:
            self.kernel = p.pool_spatial("kernel_size", None, 1, hw="kernel")
        self.stride = p.pool_spatial("stride", 1, 1)
        self.pad = p.pool_spatial("pad", 0, 0)
        if self.global_pooling and (self.pad != (0, 0) or self.stride != (1, 1)):
            raise p.error("global_pooling needs pad 0 and stride 1")
        self.round_mode = p.enum("round_mode", "CEIL").lower()
        if p.has("ceil_mode"):
            if p.has("round_mode"):
                raise p.error("ceil_mode (BVLC PR #3057, DenseNet's Caffe) and round_mode are the same "
                              "setting; give one")
            self.round_mode = "ceil" if p.bool("ceil_mode") else "floor"
        self.est = p.conv_spatial("est", 1, 1)
        self.pad_end = p.conv_spatial("pad_end", 0, 0)
        if self.mode == "stochastic" and (self.pad != (0, 0) or self.est != (1, 1)
                                          or self.pad_end != (0, 0)):
            raise p.error("STOCHASTIC pooling takes no pad (Caffe: padding is implemented only for "
                          "AVE and MAX), est or pad_end")
        self.stochastic_choice = None
        self.kept_argmax = None      # (weak reference to the bottom pooled, its argmax), see run_forward

    def _kernel(self, shape):
        return tuple(shape[2:]) if self.global_pooling else self.kernel

    def _geometry(self, s):
        if len(s) != 4:
            raise self.error(f"input must be 4-D (N, C, H, W), got shape {s}")
        mode = "max" if self.mode == "stochastic" else self.mode   # same sizes, no padding
        return pool_geometry(f"layer {self.name!r} (Pooling)", s, self._kernel(s), self.stride,
                             self.pad, self.est, mode, self.round_mode, self.pad_end)

    def reshape(self, shapes):
        s = shapes[0]
        return [s[:2] + self._geometry(s).out_hw] * len(self.top_names)

    def _args(self, x):
        return (self._kernel(x.shape), self.stride, self.pad, self.est, self.mode, self.round_mode,
                self.pad_end)

    def run_forward(self, bottoms):
        x = bottoms[0]
        if self.mode == "stochastic":
            geo = self._geometry(x.shape)
            if self.phase == "TRAIN":
                y, self.stochastic_choice = pooling_modes.stochastic_train(x, geo, self.rng)
                return [y]
            return [pooling_modes.stochastic_test(x, geo)]
        self.kept_argmax = None
        if self._keeps_argmax(x):
            kernel, stride, pad, est, _, round_mode, pad_end = self._args(x)
            y, argmax = self.ops.pool2d_argmax(x, kernel, stride, pad, est, round_mode, pad_end)
            self.kept_argmax = (weakref.ref(x), x.shape, argmax)
            tops = [y]
        else:
            tops = [self.ops.pool2d(x, *self._args(x))]
        if len(self.top_names) == 2:
            tops.append(pooling_modes.max_pool_mask(x, self._geometry(x.shape)))
        return tops

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        if self.mode == "stochastic":
            geo = self._geometry(x.shape)
            if self.phase == "TRAIN":
                return [pooling_modes.stochastic_train_backward(dy, x, geo, self.stochastic_choice)]
            return [pooling_modes.stochastic_test_backward(dy, x, geo)]
        kept = self.kept_argmax
        if kept is not None and kept[0]() is x and kept[1] == x.shape:
            return [self.ops.pool2d_backward(dy, x, *self._args(x), argmax=kept[2])]
        return [self.ops.pool2d_backward(dy, x, *self._args(x))]

    def _keeps_argmax(self, x):
        """Whether this forward keeps the argmax for the backward, as Caffe's ``max_idx_``: MAX with
        one top, a backend that offers ``pool2d_argmax``, a backward expected (``need_backward``,
        set by the Net) and a bottom that is an ndarray."""
        return (self.mode == "max" and self.need_backward
                and hasattr(self.ops, "pool2d_argmax") and isinstance(x, np.ndarray))
