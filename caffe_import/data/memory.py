"""``DummyData`` (tops filled by fillers) and ``MemoryData`` (arrays handed over by the user).

``DummyData`` follows ``src/caffe/layers/dummy_data_layer.cpp`` (BVLC/caffe 9b89154): 0, 1 or one
``data_filler`` per top (none: constant 0; lines 13-17, 51-75); shapes from ``shape`` (once, or once
per top) or the legacy ``num``/``channels``/``height``/``width`` (each once or once per top, never
mixed with ``shape``; lines 19-41, 76-90).  A constant filler fills its top once; any other filler
refills at every forward (lines 42-49, 91-108).  Worked example: ``shape { dim: 2 dim: 3 }`` with a
constant filler of value 7 gives a (2, 3) top of 7s at every forward.

``MemoryData`` follows ``src/caffe/layers/memory_data_layer.cpp``: two tops, data
``(batch_size, channels, height, width)`` and label ``(batch_size,)`` (lines 11-31; Caffe's forward
reshapes the label to (batch_size, 1, 1, 1), lines 107-118, a shape of the same count that every
loss layer reads alike).  ``set_input_arrays(data, labels)`` (pycaffe's name; Caffe's ``Reset``,
lines 82-96) hands over ``n`` records, ``n`` a multiple of batch_size, not transformed (Caffe warns
that Reset ignores transform_param); each forward returns the next ``batch_size`` of them, wrapping
after the last.  Worked example: 4 records, batch_size 2: records [0, 1], then [2, 3], then [0, 1].
"""

from __future__ import annotations

import numpy as np

from reference.fillers import fill
from reference.layers.base import as_list, register

from .base import DataLayer


def _dims(shape_msg) -> tuple:
    d = shape_msg.get("dim", []) if isinstance(shape_msg, dict) else shape_msg
    return tuple(int(v) for v in as_list(d))


@register
class DummyData(DataLayer):
    type = "DummyData"
    n_top = (1, None)

    def configure(self):
        p = self.param("dummy_data_param")
        n_top = len(self.top_names)
        fillers = [dict(f or {}) for f in p.list("data_filler")]
        if len(fillers) not in (0, 1, n_top):
            raise p.error(f"data_filler: give 0, 1 or {n_top} (one per top), got {len(fillers)}")
        legacy = {k: [int(v) for v in p.list(k)] for k in ("num", "channels", "height", "width")}
        shapes = [_dims(s) for s in p.list("shape")]
        if any(legacy.values()):
            if shapes:
                raise p.error("shape and the legacy num/channels/height/width: give one of them")
            for k, v in legacy.items():
                if len(v) not in (1, n_top):
                    raise p.error(f"{k}: give it once or once per top ({n_top}), got {len(v)}")
            shapes = [tuple(legacy[k][0 if len(legacy[k]) == 1 else i]
                            for k in ("num", "channels", "height", "width")) for i in range(n_top)]
        else:
            if len(shapes) not in (1, n_top):
                raise p.error(f"shape: give it once or once per top ({n_top}), got {len(shapes)}")
            shapes = [shapes[0 if len(shapes) == 1 else i] for i in range(n_top)]
        for s in shapes:
            if any(d < 0 for d in s):
                raise p.error(f"shape dimensions must be >= 0, got {s}")
        if not fillers:
            fillers = [{"type": "constant", "value": 0.0}]
        self.fillers = [fillers[0 if len(fillers) == 1 else i] for i in range(n_top)]
        self.shapes = shapes
        self.rng_fill = self.generator(0)
        self.values = [self._fill(i) for i in range(n_top)]

    def _fill(self, i):
        spec = self.fillers[i]
        return fill(spec, self.shapes[i], self.rng_fill, self.dtype,
                    f"layer {self.name!r} (DummyData) data_filler")

    def _refills(self, i) -> bool:
        return str(self.fillers[i].get("type", "constant")) != "constant"

    def first_shapes(self):
        return self.shapes

    def run_forward(self, bottoms):
        for i in range(len(self.values)):
            if self._refills(i):
                self.values[i] = self._fill(i)
        return [v.copy() for v in self.values]


@register
class MemoryData(DataLayer):
    type = "MemoryData"
    n_top = (2, 2)

    def configure(self):
        p = self.param("memory_data_param")
        self.batch_size, c, h, w = (p.int(k, 0, minimum=0) for k in ("batch_size", "channels", "height",
                                                                    "width"))
        if self.batch_size * c * h * w == 0:
            raise p.error("batch_size, channels, height and width must be given and positive")
        self.record_shape = (c, h, w)
        self.data = self.labels = None
        self.pos = 0

    def first_shapes(self):
        return [(self.batch_size,) + self.record_shape, (self.batch_size,)]

    def set_input_arrays(self, data, labels):
        """Hand over ``n`` records (``n`` a multiple of batch_size): data (n, C, H, W), labels (n,)."""
        data = np.asarray(data)
        labels = np.asarray(labels).reshape(-1)
        if data.ndim != 4 or data.shape[1:] != self.record_shape:
            raise self.error(f"set_input_arrays: data must have shape (n,) + {self.record_shape}, "
                             f"got {data.shape}")
        n = data.shape[0]
        if n == 0 or n % self.batch_size:
            raise self.error(f"set_input_arrays: {n} records is not a positive multiple of the "
                             f"batch size {self.batch_size}")
        if labels.shape[0] != n:
            raise self.error(f"set_input_arrays: {labels.shape[0]} labels for {n} records")
        self.data = np.ascontiguousarray(data, dtype=self.dtype)
        self.labels = np.ascontiguousarray(labels, dtype=self.dtype)
        self.pos = 0

    set_arrays = set_input_arrays

    def run_forward(self, bottoms):
        if self.data is None:
            raise self.error(f"no data: call net.layer({self.name!r}).set_input_arrays(data, labels) "
                             f"before forward")
        sl = slice(self.pos, self.pos + self.batch_size)
        self.pos = (self.pos + self.batch_size) % self.data.shape[0]
        return [self.data[sl].copy(), self.labels[sl].copy()]
