"""Fast / Faster R-CNN's fork layers: ``ROIPooling`` and ``SmoothL1Loss``.

Source: github:rbgirshick/caffe-fast-rcnn @ 0dcd397 (the commit py-faster-rcnn pins).  Both layers
have CUDA code only (the .cpp Backward / Forward are NOT_IMPLEMENTED); econv follows the kernels.

ROIPooling (src/caffe/layers/roi_pooling_layer.cu lines 17-76 forward, 78-140 backward).  Bottoms: the
features (N, C, H, W) and ``rois`` (R, 5) = (batch index, x1, y1, x2, y2) in image pixels; top (R, C,
pooled_h, pooled_w).  Per ROI: ``start = round(x1 * spatial_scale)`` (CUDA's ``round``: halves away
from 0), ``end = round(x2 * spatial_scale)``, size ``max(end - start + 1, 1)``; bin ``ph`` covers rows
``floor(ph * size / pooled_h)`` to ``ceil((ph + 1) * size / pooled_h)`` (exclusive) offset by the start
and clipped to ``[0, H]``; the top is the bin's maximum (first maximum in row-major order), 0 for an
empty bin.  Backward: each top diff goes to its maximum's position (nothing from an empty bin); the
rois get none.  Example: a 4x4 map ``arange(16)``, roi (0, 0, 0, 3, 3), 2x2 bins -> [[5, 7], [13, 15]].

SmoothL1Loss (src/caffe/layers/smooth_L1_loss_layer.cu lines 12-118).  Bottoms: prediction, target,
and optionally inside and outside weights (all four or two).  ``d = w_in * (b0 - b1)``,
``f(d) = 0.5 * sigma^2 * d^2`` if ``|d| < 1 / sigma^2`` else ``|d| - 0.5 / sigma^2``;
``loss = sum(w_out * f(d)) / N`` (N = num).  Backward: ``f'(d) = sigma^2 d`` or ``sign(d)``;
``db0 = +w_in * w_out * f'(d) * top_diff / N``, ``db1`` the negative; the weights get none.
Example: sigma 1, b0 = [[0.5, 3]], b1 = 0: f = [0.125, 2.5] -> loss 2.625.
"""

from __future__ import annotations

import numpy as np

from ..pool import FLT_MAX
from .base import Layer, register


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@register
class ROIPooling(Layer):
    type = "ROIPooling"
    n_bottom = (2, 2)
    label_bottoms = (1,)

    def configure(self):
        p = self.param("roi_pooling_param")
        self.pooled = (p.int("pooled_h", 0), p.int("pooled_w", 0))
        if min(self.pooled) < 1:
            raise p.error(f"pooled_h and pooled_w must be > 0, got {self.pooled}")
        self.spatial_scale = p.float("spatial_scale", 1.0)

    def reshape(self, shapes):
        x, rois = shapes
        if len(x) != 4:
            raise self.error(f"features must be 4-D (N, C, H, W), got shape {x}")
        r = int(np.prod(rois[1:])) if len(rois) > 1 else 0
        if r != 5:
            raise self.error(f"rois must be (R, 5) = (batch index, x1, y1, x2, y2), got shape {rois}")
        return [(rois[0], x[1]) + self.pooled]

    def _bins(self, x, rois):
        """Per (roi, ph, pw): batch index and the [start, end) rows and columns."""
        n, _, h, w = x.shape
        rois = np.asarray(rois, np.float64).reshape(-1, 5)
        batch = rois[:, 0].astype(np.int64)
        if rois.shape[0] and (batch.min() < 0 or batch.max() >= n):
            raise self.error(f"roi batch index outside 0..{n - 1}")
        scale = np.float32(self.spatial_scale)
        scaled = (rois[:, 1:].astype(np.float32) * scale).astype(np.float64)
        coords = _round_half_away(scaled).astype(np.int64)        # x1, y1, x2, y2
        out = []
        axes = ((coords[:, 1], coords[:, 3], h), (coords[:, 0], coords[:, 2], w))
        for a, (start, end, limit) in enumerate(axes):
            size = np.maximum(end - start + 1, 1).astype(x.dtype)
            bins = (size / x.dtype.type(self.pooled[a]))[:, None]
            k = np.arange(self.pooled[a], dtype=x.dtype)[None, :]
            lo = np.floor(k * bins).astype(np.int64) + start[:, None]
            hi = np.ceil((k + 1) * bins).astype(np.int64) + start[:, None]
            out.append((np.clip(lo, 0, limit), np.clip(hi, 0, limit)))
        return batch, out

    def _argmax(self, x, rois):
        batch, ((h0, h1), (w0, w1)) = self._bins(x, rois)
        r, c = batch.shape[0], x.shape[1]
        ph, pw = self.pooled
        top = np.zeros((r, c, ph, pw), x.dtype)
        arg = np.full((r, c, ph, pw), -1, np.int64)
        width = x.shape[3]
        for i in range(r):
            for a in range(ph):
                for b in range(pw):
                    if h1[i, a] <= h0[i, a] or w1[i, b] <= w0[i, b]:
                        continue
                    win = x[batch[i], :, h0[i, a]:h1[i, a], w0[i, b]:w1[i, b]].reshape(c, -1)
                    win = np.where(np.isnan(win), -np.inf, win)
                    j = np.argmax(win, axis=1)            # first maximum, row-major
                    best = win[np.arange(c), j]
                    top[i, :, a, b] = np.maximum(best, -FLT_MAX)
                    ww = w1[i, b] - w0[i, b]
                    arg[i, :, a, b] = (h0[i, a] + j // ww) * width + w0[i, b] + j % ww
        return batch, top, arg

    def run_forward(self, bottoms):
        _, top, _ = self._argmax(*bottoms)
        return [top]

    def run_backward(self, top_diffs, bottoms, tops):
        x, rois = bottoms
        batch, _, arg = self._argmax(x, rois)
        n, c, h, w = x.shape
        plane = (batch[:, None, None, None] * c + np.arange(c)[None, :, None, None]) * (h * w)
        real = arg >= 0
        flat = (plane + arg)[real]
        dx = np.bincount(flat, weights=top_diffs[0][real].astype(np.float64), minlength=x.size)
        return [dx.reshape(x.shape).astype(x.dtype), None]


@register
class SmoothL1Loss(Layer):
    type = "SmoothL1Loss"
    n_bottom = (2, 4)
    is_loss = True
    label_bottoms = (2, 3)

    def configure(self):
        if len(self.bottom_names) == 3:
            raise self.error("give both inside and outside weights (4 bottoms) or neither (2)")
        self.sigma2 = self.param("smooth_l1_loss_param").float("sigma", 1.0) ** 2

    def reshape(self, shapes):
        for s in shapes[1:]:
            if tuple(s[1:]) != tuple(shapes[0][1:]):
                raise self.error(f"bottom shapes {shapes} differ after the first axis")
        return [()]

    def _d(self, bottoms):
        d = bottoms[0] - bottoms[1]
        return d * bottoms[2] if len(bottoms) == 4 else d

    def run_forward(self, bottoms):
        d = self._d(bottoms)
        a = np.abs(d)
        f = np.where(a < 1.0 / self.sigma2, 0.5 * d * d * self.sigma2, a - 0.5 / self.sigma2)
        if len(bottoms) == 4:
            f = f * bottoms[3]
        return [np.asarray(f.sum(dtype=np.float64) / bottoms[0].shape[0], dtype=bottoms[0].dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        d = self._d(bottoms)
        g = np.where(np.abs(d) < 1.0 / self.sigma2, self.sigma2 * d, np.sign(d))
        if len(bottoms) == 4:
            g = g * bottoms[2] * bottoms[3]
        g = g * (float(np.asarray(top_diffs[0]).reshape(())) / bottoms[0].shape[0])
        g = g.astype(bottoms[0].dtype)
        return [g, -g] + [None] * (len(bottoms) - 2)
