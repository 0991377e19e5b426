"""Caffe's ``transform_param`` (``DataTransformer``): crop, mirror, mean subtraction and scale.

Follows ``src/caffe/data_transformer.cpp`` (BVLC/caffe 9b89154): the constructor (lines 15-39: a
mean_file *or* mean_values, never both), ``Transform(const Datum&, Dtype*)`` (lines 41-127) and
``Transform(const cv::Mat&, Blob*)`` (lines 222-318), which do the same arithmetic on a (C, H, W)
record::

    do_mirror = mirror && Rand(2)                          # drawn first
    crop:  TRAIN  h_off = Rand(H - crop + 1), w_off = Rand(W - crop + 1)   (in this order)
           TEST   h_off = (H - crop) / 2,     w_off = (W - crop) / 2       (integer division)
    top[c, h, w'] = (x[c, h_off + h, w_off + w] - mean) * scale,   w' = crop_w - 1 - w if do_mirror
    mean = mean_file[c, h_off + h, w_off + w]   (the mean blob has the record's uncropped size)
         | mean_value[c]                        (one value is used for every channel)

Mean is subtracted before scaling.  ``Rand(n)`` draws are made only when needed: the mirror coin
only with ``mirror``, the crop offsets only with ``crop_size`` in TRAIN.  Values are computed in the
layer's dtype (Caffe's ``Dtype``), so float32 results equal Caffe's bit for bit.

Worked example: a 1x3x3 record ``0..8``, crop_size 2, TEST: offsets (0, 0) (``(3-2)/2 = 0``),
``[[0, 1], [3, 4]]``; with mean_value 1 and scale 0.5: ``[[-0.5, 0], [1, 1.5]]``; mirrored:
``[[0, -0.5], [1.5, 1]]``.
"""

from __future__ import annotations

import numpy as np

from reference.params import ParamReader


class Transformer:
    """One layer's ``transform_param``; ``apply(record)`` maps a (C, H, W) record to the top."""

    def __init__(self, layer, resolve_mean=None):
        p = ParamReader(layer.name, layer.type, "transform_param", layer.spec.get("transform_param"))
        self.where = p.where
        self.phase = layer.phase
        self.dtype = layer.dtype
        self.rng = layer.generator(1)
        self.scale = p.float("scale", 1.0)
        self.mirror = bool(p.bool("mirror", False))
        self.crop = p.int("crop_size", 0, minimum=0)
        self.force_color = bool(p.bool("force_color", False))
        self.force_gray = bool(p.bool("force_gray", False))
        if self.force_color and self.force_gray:
            raise p.error("force_color and force_gray: cannot set both")
        self.mean_values = [float(v) for v in p.list("mean_value")]
        self.mean_file = None
        if p.has("mean_file"):
            if self.mean_values:
                raise p.error("mean_file and mean_value: cannot specify both (Caffe's rule)")
            if resolve_mean is None:
                raise p.error("mean_file is not supported by this layer")
            self.mean_file = np.asarray(resolve_mean(str(p.scalar("mean_file"))))[0]

    def error(self, msg: str) -> ValueError:
        return ValueError(f"{self.where}: transform_param: {msg}")

    def shape(self, c: int, h: int, w: int) -> tuple:
        """Caffe's ``InferBlobShape``: ``(C, crop, crop)`` or ``(C, H, W)``."""
        if c < 1:
            raise self.error(f"a record needs at least one channel, got shape {(c, h, w)}")
        if h < self.crop or w < self.crop:
            raise self.error(f"crop_size {self.crop} is larger than the record ({h}x{w})")
        return (c, self.crop, self.crop) if self.crop else (c, h, w)

    def _rand(self, n: int) -> int:
        return int(self.rng.integers(n))

    def apply(self, record: np.ndarray) -> np.ndarray:
        """The transformed (C, h, w) array of one (C, H, W) record (uint8 or float)."""
        c, h, w = record.shape
        out_c, out_h, out_w = self.shape(c, h, w)
        do_mirror = self.mirror and self._rand(2) == 1
        h_off = w_off = 0
        if self.crop:
            if self.phase == "TRAIN":
                h_off = self._rand(h - self.crop + 1)
                w_off = self._rand(w - self.crop + 1)
            else:
                h_off, w_off = (h - self.crop) // 2, (w - self.crop) // 2
        window = (slice(None), slice(h_off, h_off + out_h), slice(w_off, w_off + out_w))
        x = record[window].astype(self.dtype)
        if self.mean_file is not None:
            if self.mean_file.shape != (c, h, w):
                raise self.error(f"the mean_file blob has shape {self.mean_file.shape}, the record "
                                 f"{(c, h, w)} (Caffe requires them equal)")
            x = x - self.mean_file[window].astype(self.dtype)
        elif self.mean_values:
            if len(self.mean_values) not in (1, c):
                raise self.error(f"{len(self.mean_values)} mean_value entries for {c} channels "
                                 f"(give 1 or {c})")
            means = self.mean_values * c if len(self.mean_values) == 1 else self.mean_values
            x = x - np.asarray(means, dtype=self.dtype)[:, None, None]
        x = x * self.dtype.type(self.scale)
        if do_mirror:
            x = x[:, :, ::-1]
        return np.ascontiguousarray(x, dtype=self.dtype)
