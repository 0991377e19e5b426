"""Fork resampling layers: SegNet's ``Upsample`` (max-unpooling with the pooling mask) and the
PSPNet / DeepLab ``Interp`` (bilinear, corners aligned).

Upsample (github:alexgkendall/caffe-segnet @ 344c113, src/caffe/layers/upsample_layer.cpp lines
14-140).  Bottoms: the values and the mask of a MAX Pooling's second top (per plane, the flat index
``h * W_in + w`` of each window's maximum, stored as a float).  Output size ``upsample_h`` x
``upsample_w``, or (deprecated) ``H * scale - pad_out_h`` with ``scale`` / ``scale_h`` + ``scale_w``
(default 2; ``pad_out`` only with scale 2).  Forward: a zero plane with ``top[mask[i]] = x[i]`` (a
later ``i`` overwrites an earlier one with the same index); an index outside the output is an error
(Caffe: LOG(FATAL)).  Backward: ``dx[i] = dtop[mask[i]]``; the mask gets none.
Example: x = [[5, 7]], mask = [[1, 2]], output 1x4 -> [[0, 5, 7, 0]].

Interp (github:hszhao/PSPNet @ 798bdc9, src/caffe/layers/interp_layer.cpp lines 10-81 and
src/caffe/util/interp.cpp lines 13-90; DeepLab's layer is the same).  The input is first cropped by
``-pad_beg`` / ``-pad_end`` (both <= 0): ``H_eff = H + pad_beg + pad_end``.  Output size: ``shrink_factor``
s only: ``(H_eff - 1) / s + 1``; ``zoom_factor`` z only: ``H_eff + (H_eff - 1)(z - 1)``; ``height`` and
``width``; both factors: shrink then zoom.  Output ``(r, c)`` reads input row ``h1r = r * (H_eff - 1) /
(H_out - 1)`` (0 when ``H_out == 1``; the ratio is a float32 in Caffe, kept here), ``h1 = floor(h1r)``,
weight ``h1r - h1`` on row ``h1 + 1`` (``h1`` itself at the last row), the same along columns; equal sizes
copy.  Backward: the transpose (each output's diff spread back with the same weights).
Example: [[0, 2]] zoomed by 2 -> [[0, 1, 2]] (ratio 1/2).
"""

from __future__ import annotations

import numpy as np

from .base import Layer, register


@register
class Upsample(Layer):
    type = "Upsample"
    n_bottom = (2, 2)
    label_bottoms = (1,)

    def configure(self):
        p = self.param("upsample_param")
        if p.has("upsample_h") or p.has("upsample_w"):
            if not (p.has("upsample_h") and p.has("upsample_w")):
                raise p.error("upsample_h and upsample_w must be given together")
            self.out_hw = (p.int("upsample_h", minimum=2), p.int("upsample_w", minimum=2))
            self.scale = None
        else:
            if p.has("scale_h") or p.has("scale_w"):
                if p.has("scale") or not (p.has("scale_h") and p.has("scale_w")):
                    raise p.error("give scale, or scale_h and scale_w")
                self.scale = (p.int("scale_h", minimum=2), p.int("scale_w", minimum=2))
            else:
                self.scale = (p.int("scale", 2, minimum=2),) * 2
            self.pad_out = (int(p.bool("pad_out_h", False)), int(p.bool("pad_out_w", False)))
            for a in (0, 1):
                if self.pad_out[a] and self.scale[a] != 2:
                    raise p.error("pad_out_h / pad_out_w need scale 2")

    def reshape(self, shapes):
        x, mask = shapes
        if len(x) != 4 or tuple(mask) != tuple(x):
            raise self.error(f"values and mask must be the same 4-D shape, got {x} and {mask}")
        hw = self.out_hw if self.scale is None else tuple(
            x[2 + a] * self.scale[a] - self.pad_out[a] for a in (0, 1))
        return [tuple(x[:2]) + tuple(hw)]

    def _index(self, mask, hw):
        idx = mask.reshape(mask.shape[0] * mask.shape[1], -1).astype(np.int64)
        size = hw[0] * hw[1]
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise self.error(f"mask index {int(idx.max())} outside the {hw[0]}x{hw[1]} output: the "
                             f"upsampling does not match the pooling that made the mask")
        return idx

    def run_forward(self, bottoms):
        x, mask = bottoms
        shape = self.reshape([x.shape, mask.shape])[0]
        idx = self._index(mask, shape[2:])
        out = np.zeros((idx.shape[0], shape[2] * shape[3]), x.dtype)
        np.put_along_axis(out, idx, x.reshape(idx.shape), axis=1)   # later indices win, as Caffe's loop
        return [out.reshape(shape)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, mask = bottoms
        dtop = top_diffs[0]
        idx = self._index(mask, dtop.shape[2:])
        dx = np.take_along_axis(dtop.reshape(idx.shape[0], -1), idx, axis=1)
        return [dx.reshape(x.shape), None]


def _interp_weights(n_in: int, n_out: int, dtype) -> np.ndarray:
    """(n_out, n_in) matrix of Caffe's caffe_cpu_interp2 along one axis."""
    m = np.zeros((n_out, n_in), np.float64)
    if n_in == n_out:
        return np.eye(n_in, dtype=dtype)
    ratio = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    for o in range(n_out):
        r = np.float32(ratio * np.float32(o))
        i = int(r)
        step = 1 if i < n_in - 1 else 0
        lam = float(r) - i
        m[o, i] += 1 - lam
        m[o, i + step] += lam
    return m.astype(dtype)


@register
class Interp(Layer):
    type = "Interp"

    def configure(self):
        p = self.param("interp_param")
        self.pad_beg, self.pad_end = p.int("pad_beg", 0), p.int("pad_end", 0)
        if self.pad_beg > 0 or self.pad_end > 0:
            raise p.error("pad_beg and pad_end must be <= 0 (the fork crops only)")
        self.shrink = p.int("shrink_factor", minimum=1) if p.has("shrink_factor") else None
        self.zoom = p.int("zoom_factor", minimum=1) if p.has("zoom_factor") else None
        self.size = None
        if self.shrink is None and self.zoom is None:
            if not (p.has("height") and p.has("width")):
                raise p.error("give zoom_factor, shrink_factor, or height and width")
            self.size = (p.int("height", minimum=1), p.int("width", minimum=1))

    def _sizes(self, s):
        eff = tuple(s[2 + a] + self.pad_beg + self.pad_end for a in (0, 1))
        if min(eff) <= 0:
            raise self.error(f"input {s[2:]} cropped by {-self.pad_beg}/{-self.pad_end} is empty")
        if self.size is not None:
            out = self.size
        else:
            out = eff
            if self.shrink is not None:
                out = tuple((v - 1) // self.shrink + 1 for v in out)
            if self.zoom is not None:
                out = tuple(v + (v - 1) * (self.zoom - 1) for v in out)
        return eff, out

    def reshape(self, shapes):
        s = shapes[0]
        if len(s) != 4:
            raise self.error(f"input must be 4-D (N, C, H, W), got shape {s}")
        return [tuple(s[:2]) + self._sizes(s)[1]]

    def _mats(self, x):
        eff, out = self._sizes(x.shape)
        b = -self.pad_beg
        return (b, eff), _interp_weights(eff[0], out[0], x.dtype), _interp_weights(eff[1], out[1], x.dtype)

    def run_forward(self, bottoms):
        x = bottoms[0]
        (b, eff), mh, mw = self._mats(x)
        crop = x[:, :, b:b + eff[0], b:b + eff[1]]
        return [(mh @ crop @ mw.T).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x = bottoms[0]
        (b, eff), mh, mw = self._mats(x)
        dx = np.zeros_like(x)
        dx[:, :, b:b + eff[0], b:b + eff[1]] = mh.T @ top_diffs[0] @ mw
        return [dx]
