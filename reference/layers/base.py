"""The layer contract (Caffe's ``Layer``): a shape rule, a forward and a backward.

Every layer class fills in four hooks and inherits the non-overridable wrappers that check blob
counts and prefix every error with the layer's name and type:

- ``configure()``: read the ``*_param`` section (``self.param("convolution_param")``).
- ``reshape(bottom_shapes) -> top_shapes``: the shape rule; creates parameter blobs the first time.
- ``run_forward(bottoms) -> tops``.
- ``run_backward(top_diffs, bottoms, tops) -> bottom_diffs``: returns one diff per bottom (``None``
  where no gradient flows) and *adds* parameter gradients into ``self.diffs``.  A layer Caffe gives
  no backward (``has_backward = False``) does not define it: ``backward`` returns ``None`` for every
  bottom and the Net passes no gradient through it.

Gradient accounting (one rule, stated once): layers return fresh bottom diffs and never see
fan-out; the Net sums the diffs of every consumer of a blob (what Caffe's Split layers do) and
zeroes ``diffs`` before each backward unless asked to accumulate (the solver's ``iter_size``).

Diff buffers are allocated on first use: ``diffs`` is built (zeros like ``blobs``) the first time
it is read -- by the first backward, or by a solver -- so a net used only for forward holds its
parameters once, not twice (VGG-16: 553 MB, not 1107 MB).  ``has_diffs`` tells whether they exist.
"""

from __future__ import annotations

import numpy as np

from .. import budget
from ..fillers import fill
from ..ops import get_backend
from ..params import ParamReader

LAYER_TYPES: dict[str, type] = {}
AUTO_TOP = "(automatic)"   # the top Caffe creates for a loss layer declared without one


def register(cls):
    """Class decorator: make ``cls`` buildable from a layer dict whose ``type`` is ``cls.type``."""
    LAYER_TYPES[cls.type] = cls
    return cls


def as_list(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


class Layer:
    type = ""
    n_bottom = (1, 1)   # (min, max); max None = any number
    n_top = (1, 1)
    is_loss = False     # loss layers weight their first top by 1 unless loss_weight says otherwise
    label_bottoms = ()  # bottoms that never receive a gradient (labels, crop references)
    has_backward = True  # False: Caffe has no Backward (ArgMax, Accuracy, Threshold); no gradient flows
    need_backward = False  # set by the Net: a backward is expected (Net._needs_backward, Caffe's rule)

    def __init__(self, spec: dict, *, phase: str = "TEST", dtype=np.float32, ops=None, rng=None):
        self.spec = spec
        self.name = str(spec.get("name", ""))
        self.phase = phase
        self.dtype = np.dtype(dtype)
        self.ops = ops if ops is not None else get_backend("numpy")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.bottom_names = [str(b) for b in as_list(spec.get("bottom"))]
        self.top_names = [str(t) for t in as_list(spec.get("top"))]
        if self.is_loss and not self.top_names:
            # Caffe's LossLayer::AutoTopBlobs (loss_layer.hpp line 40; net.cpp lines 108-121): a
            # loss without a top gets an anonymous one, named as Caffe names it
            self.top_names = [AUTO_TOP]
        self._check_count("bottom", len(self.bottom_names), self.n_bottom)
        self._check_count("top", len(self.top_names), self.n_top)
        self.blobs: list[np.ndarray] = []
        self._diffs: list[np.ndarray] = []
        self.param_specs = [dict(p or {}) for p in as_list(spec.get("param"))]
        weights = [float(w) for w in as_list(spec.get("loss_weight"))]
        if weights and len(weights) != len(self.top_names):
            raise self.error(f"{len(weights)} loss_weight values for {len(self.top_names)} tops")
        if not weights:
            weights = [1.0 if (self.is_loss and i == 0) else 0.0 for i in range(len(self.top_names))]
        self.loss_weights = weights
        self.propagate_down = [bool(p) for p in as_list(spec.get("propagate_down"))]
        if self.propagate_down and len(self.propagate_down) != len(self.bottom_names):
            raise self.error(f"{len(self.propagate_down)} propagate_down values for "
                             f"{len(self.bottom_names)} bottoms")
        try:
            self.configure()
        except ValueError as e:
            raise self._named(e) from None

    # ---- helpers for subclasses -------------------------------------------------------------
    def error(self, msg: str) -> ValueError:
        return ValueError(f"layer {self.name!r} ({self.type}): {msg}")

    def _named(self, e: ValueError) -> ValueError:
        text = str(e)
        return e if text.startswith(f"layer {self.name!r}") else self.error(text)

    def _check_count(self, what, n, bounds):
        lo, hi = bounds
        if n < lo or (hi is not None and n > hi):
            want = f"exactly {lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise ValueError(f"layer {self.name!r} ({self.type}): needs {want} {what}(s), got {n}")

    def param(self, section: str) -> ParamReader:
        return ParamReader(self.name, self.type, section, self.spec.get(section))

    def make_blob(self, shape, filler: dict | None, default_filler: str = "constant"):
        """Append a parameter blob of ``shape`` filled by ``filler``; returns it.  ValueError naming
        the layer and the bytes when the layer's blobs and diffs would exceed the byte budget
        (:mod:`reference.budget`), checked before anything is allocated."""
        count = 1
        for d in shape:
            count *= int(d)
        held = sum(b.nbytes for b in self.blobs)
        budget.check(2 * (held + count * self.dtype.itemsize),
                     f"layer {self.name!r} ({self.type}): parameter blob {len(self.blobs)} of shape "
                     f"{tuple(int(d) for d in shape)} (with its diff)")
        blob = fill(filler, shape, self.rng, self.dtype, f"layer {self.name!r} ({self.type}) filler",
                    default_filler)
        self.blobs.append(blob)
        return blob

    @property
    def diffs(self) -> list:
        """Parameter gradients, one per blob, allocated (zeros) on first use."""
        if len(self._diffs) < len(self.blobs):
            self._diffs += [np.zeros_like(b) for b in self.blobs[len(self._diffs):]]
        return self._diffs

    @diffs.setter
    def diffs(self, value):
        self._diffs = list(value)

    @property
    def has_diffs(self) -> bool:
        return bool(self._diffs)

    def check_blob_shape(self, i: int, shape):
        if self.blobs[i].shape != tuple(shape):
            raise self.error(f"parameter blob {i} has shape {self.blobs[i].shape}, the input needs "
                             f"{tuple(shape)}")

    def lr_mult(self, i: int) -> float:
        return float(self.param_specs[i].get("lr_mult", 1.0)) if i < len(self.param_specs) else 1.0

    def decay_mult(self, i: int) -> float:
        return float(self.param_specs[i].get("decay_mult", 1.0)) if i < len(self.param_specs) else 1.0

    # ---- template methods (not overridden) ----------------------------------------------------
    def setup(self, bottom_shapes):
        try:
            return [tuple(int(d) for d in s) for s in self.reshape([tuple(s) for s in bottom_shapes])]
        except ValueError as e:
            raise self._named(e) from None

    def forward(self, bottoms):
        try:
            return self.run_forward(bottoms)
        except ValueError as e:
            raise self._named(e) from None

    def backward(self, top_diffs, bottoms, tops):
        if not self.has_backward:
            return [None] * len(bottoms)
        try:
            diffs = list(self.run_backward(top_diffs, bottoms, tops))
        except ValueError as e:
            raise self._named(e) from None
        for i in self.label_bottoms:
            if i < len(diffs):
                diffs[i] = None
        for i, down in enumerate(self.propagate_down):
            if not down:
                diffs[i] = None
        return diffs

    # ---- hooks ----------------------------------------------------------------------------------
    def configure(self):
        pass

    def reshape(self, shapes):
        return list(shapes)

    def run_forward(self, bottoms):
        raise NotImplementedError

    def run_backward(self, top_diffs, bottoms, tops):
        raise NotImplementedError

    def __repr__(self):
        return f"<{self.type} {self.name!r}: {self.bottom_names} -> {self.top_names}>"


def create_layer(spec: dict, **kw) -> Layer:
    """Build the layer a dict describes; unknown types are a ValueError naming the layer."""
    if not isinstance(spec, dict):
        raise ValueError(f"a layer must be a dict, got {type(spec).__name__}")
    kind = spec.get("type")
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        known = ", ".join(sorted(LAYER_TYPES))
        raise ValueError(f"layer {spec.get('name', '')!r}: unknown layer type {kind!r} (known: {known})")
    return cls(spec, **kw)
