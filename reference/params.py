"""Reading Caffe layer parameters from layer dicts, with Caffe's defaults and legacy spellings.

A layer is a dict shaped like Caffe's ``LayerParameter`` in prototxt (what ``caffe_import`` produces,
holding only the fields present in the file), e.g.::

    {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
     "convolution_param": {"num_output": 64, "kernel_size": 3, "pad": 1},
     "param": [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]}

Repeated fields may be given as a list or as a single value; enums as their name (``"MAX"``) or number.
"""

from __future__ import annotations

import numbers

ENUMS = {
    "pool": ["MAX", "AVE", "STOCHASTIC"],
    "round_mode": ["CEIL", "FLOOR"],
    "norm_region": ["ACROSS_CHANNELS", "WITHIN_CHANNEL"],
    "operation": ["PROD", "SUM", "MAX"],
    "normalization": ["FULL", "VALID", "BATCH_SIZE", "NONE"],
    "phase": ["TRAIN", "TEST"],
    "variance_norm": ["FAN_IN", "FAN_OUT", "AVERAGE"],
}


class ParamReader:
    """Typed access to one ``*_param`` sub-dict; errors name the layer and the field."""

    def __init__(self, layer_name: str, layer_type: str, section: str, values: dict | None):
        self.where = f"layer {layer_name!r} ({layer_type})"
        self.section = section
        self.values = dict(values or {})

    def error(self, msg: str) -> ValueError:
        return ValueError(f"{self.where}: {self.section}.{msg}")

    def has(self, key: str) -> bool:
        v = self.values.get(key)
        return v is not None and v != []

    def list(self, key: str) -> list:
        v = self.values.get(key, [])
        return list(v) if isinstance(v, (list, tuple)) else [v]

    def scalar(self, key: str):
        v = self.values.get(key)
        if isinstance(v, (list, tuple)):
            if len(v) == 0:
                return None
            v = v[-1]  # protobuf: last occurrence of an optional field wins
        return v

    def int(self, key: str, default=None, minimum=None):
        v = self.scalar(key)
        if v is None:
            if default is None:
                raise self.error(f"{key} is required")
            return default
        return self._as_int(key, v, minimum)

    def _as_int(self, key, v, minimum):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise self.error(f"{key} must be an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.error(f"{key} must be >= {minimum}, got {v}")
        return int(v)

    def float(self, key: str, default=None):
        v = self.scalar(key)
        if v is None:
            if default is None:
                raise self.error(f"{key} is required")
            return float(default)
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise self.error(f"{key} must be a number, got {v!r}")
        return float(v)

    def bool(self, key: str, default=None):
        v = self.scalar(key)
        if v is None:
            return default
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if not isinstance(v, (bool, numbers.Integral)):
            raise self.error(f"{key} must be true or false, got {v!r}")
        return bool(v)

    def enum(self, key: str, default: str, values: dict | None = None) -> str:
        """An enum field as its NAME; ``values`` (NAME -> number) for an enum whose numbers are not
        0, 1, ... in the order of ``ENUMS[key]`` (Caffe's ReductionOp starts at 1)."""
        values = values or {n: i for i, n in enumerate(ENUMS[key])}
        names = list(values)
        v = self.scalar(key)
        if v is None:
            return default
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and v in values.values():
            return next(n for n, i in values.items() if i == v)
        if isinstance(v, str) and v.upper() in names:
            return v.upper()
        raise self.error(f"{key} must be one of {', '.join(names)}, got {v!r}")

    def sub(self, key: str) -> dict:
        v = self.values.get(key) or {}
        if isinstance(v, list):
            v = v[-1] if v else {}
        return v

    def _hw_fields(self, key: str, prefix: str, minimum: int):
        """``(prefix_h, prefix_w)`` when given (exclusive with ``key``), else None."""
        h, w = f"{prefix}_h", f"{prefix}_w"
        if not (self.has(h) or self.has(w)):
            return None
        if self.has(key):
            raise self.error(f"{key} and {h}/{w} are mutually exclusive")
        if not (self.has(h) and self.has(w)):
            raise self.error(f"{h} and {w} must be given together")
        return (self.int(h, minimum=minimum), self.int(w, minimum=minimum))

    def conv_spatial(self, key: str, default: int | None, minimum: int, hw: str | None = None):
        """Caffe ConvolutionParameter rule: ``key`` once or once per axis, XOR ``key_h`` + ``key_w``."""
        pair = self._hw_fields(key, hw or key, minimum)
        if pair is not None:
            return pair
        vals = self.list(key)
        if not vals:
            if default is None:
                raise self.error(f"{key} is required")
            return (default, default)
        if len(vals) > 2:
            raise self.error(f"{key} has {len(vals)} values; 2-D layers take 1 or 2")
        out = [self._as_int(key, v, minimum) for v in vals]
        return (out[0], out[-1])

    def pool_spatial(self, key: str, default: int | None, minimum: int, hw: str | None = None):
        """Caffe PoolingParameter rule: ``key`` XOR ``key_h`` + ``key_w`` (plain optional fields)."""
        pair = self._hw_fields(key, hw or key, minimum)
        if pair is not None:
            return pair
        if not self.has(key) and default is None:
            raise self.error(f"{key} is required")
        v = self.int(key, default=default, minimum=minimum)
        return (v, v)
