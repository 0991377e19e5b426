"""BN: the fork layer of SegNet and PSPNet, batch normalisation with its own scale and shift.

Two forks register a layer called ``BN`` with different parameters; the fields tell them apart
(``bn_mode`` / ``scale_filler`` / ``shift_filler``: SegNet; otherwise PSPNet).  Per channel ``c``,
with the statistics over N, H, W and ``xhat = (x - mean) / sqrt(var + eps)``:

- SegNet (github:alexgkendall/caffe-segnet @ 344c113, src/caffe/layers/bn_layer.cpp): two blobs,
  scale and shift (1, C, 1, 1).  ``bn_mode: LEARN`` (default; lines 93-201): batch mean and biased
  variance ``E[x^2] - E[x]^2``, eps 1e-9, ``y = scale * xhat + shift``; optional tops 2 and 3 are the
  batch mean and variance (1, C, 1, 1).  ``bn_mode: INFERENCE`` (lines 202-226): ``y = scale * x +
  shift`` (SegNet's compute_bn_statistics.py folds the statistics into the two blobs).
- PSPNet (github:hszhao/PSPNet @ 798bdc9, src/caffe/layers/bn_layer.cpp): four blobs, slope, bias,
  moving mean, moving variance (1, C, 1, 1; the last two lr_mult 0, and all four with ``frozen``).
  TEST phase or ``frozen`` (lines 105-142): mean and variance from blobs 2 and 3; TRAIN: batch
  statistics (variance ``E[(x - mean)^2]``) and ``blob = (1 - momentum) * batch + momentum * blob``;
  ``y = slope * xhat + bias`` with ``eps`` (default 1e-5).

Backward (SegNet lines 233-356, PSPNet lines 212-330): with ``g = scale * dy`` and M = N*H*W values per
channel, batch statistics give ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``;
fixed statistics give ``dx = g / sqrt(var + eps)`` (SegNet INFERENCE: ``dx = g``);
``dscale = sum(dy * xhat)`` (INFERENCE: ``sum(dy * x)``), ``dshift = sum(dy)``.  PSPNet applies the
batch formula whenever it is not ``frozen``, in TEST too (where the forward used the moving
statistics); econv does the same.

Example (PSPNet, TEST): mean 1, var 3, eps 1, slope 2, bias 1: x = 5 -> 2 * (5 - 1) / 2 + 1 = 5.
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register

SEGNET_FIELDS = ("bn_mode", "scale_filler", "shift_filler")


@register
class BN(Layer):
    type = "BN"
    n_top = (1, 3)

    def configure(self):
        p = self.param("bn_param")
        self.segnet = any(p.has(f) for f in SEGNET_FIELDS)
        if self.segnet:
            mode = p.scalar("bn_mode")
            self.inference = mode in ("INFERENCE", 1)
            if mode not in (None, "LEARN", "INFERENCE", 0, 1):
                raise p.error(f"bn_mode must be LEARN or INFERENCE, got {mode!r}")
            self.fillers = [p.sub("scale_filler"), p.sub("shift_filler")]
            self.eps, self.frozen = 1e-9, False
            self.batch_stats = not self.inference
        else:
            if len(self.top_names) > 1:
                raise self.error("PSPNet's BN has one top (two and three are SegNet's batch statistics)")
            self.fillers = [p.sub("slope_filler"), p.sub("bias_filler")]
            self.eps = p.float("eps", 1e-5)
            self.momentum = p.float("momentum", 0.9)
            self.frozen = p.bool("frozen", False)
            self.batch_stats = not (self.frozen or self.phase == "TEST")
            specs = self.param_specs + [{} for _ in range(4 - len(self.param_specs))]
            for i in (2, 3) + ((0, 1) if self.frozen else ()):
                specs[i] = dict(specs[i], lr_mult=0.0, decay_mult=0.0)
            self.param_specs = specs

    def reshape(self, shapes):
        s = shapes[0]
        if len(s) != 4:
            raise self.error(f"input must be 4-D (N, C, H, W), got shape {s}")
        c = (1, s[1], 1, 1)
        if not self.blobs:
            for f in self.fillers:
                self.make_blob(c, f)
            if not self.segnet:
                self.make_blob(c, None)
                self.make_blob(c, {"type": "constant", "value": 1.0 if self.frozen else 0.0})
        self.check_blob_shape(0, c)
        return [s] + [c] * (len(self.top_names) - 1)

    def run_forward(self, bottoms):
        x = bottoms[0]
        scale, shift = self.blobs[0], self.blobs[1]
        if self.segnet and self.inference:
            self.xhat = x
            return [(scale * x + shift).astype(x.dtype)]
        if self.batch_stats:
            mean = x.mean(axis=(0, 2, 3), keepdims=True)
            if self.segnet:
                var = (x * x).mean(axis=(0, 2, 3), keepdims=True) - mean * mean
            else:
                var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
                self.blobs[2][...] = (1 - self.momentum) * mean + self.momentum * self.blobs[2]
                self.blobs[3][...] = (1 - self.momentum) * var + self.momentum * self.blobs[3]
        else:
            mean, var = self.blobs[2], self.blobs[3]
        self.inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        self.xhat = ((x - mean) * self.inv_std).astype(x.dtype)
        extra = [mean.astype(x.dtype), var.astype(x.dtype)][:len(self.top_names) - 1]
        return [(scale * self.xhat + shift).astype(x.dtype)] + extra

    def run_backward(self, top_diffs, bottoms, tops):
        dy = top_diffs[0]
        scale = self.blobs[0]
        if self.frozen:   # PSPNet lines 214-240: the input's gradient only
            return [(dy * scale * self.inv_std).astype(dy.dtype)]
        self.diffs[0] += (dy * self.xhat).sum(axis=(0, 2, 3), keepdims=True)
        self.diffs[1] += dy.sum(axis=(0, 2, 3), keepdims=True)
        g = dy * scale
        if self.segnet and self.inference:
            return [g.astype(dy.dtype)]
        if not self.segnet or self.batch_stats:
            g = g - g.mean(axis=(0, 2, 3), keepdims=True) \
                - self.xhat * (g * self.xhat).mean(axis=(0, 2, 3), keepdims=True)
        return [(g * self.inv_std).astype(dy.dtype)]
