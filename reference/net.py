"""Net: a DAG of Caffe layers with named blobs, Caffe's in-place rules, fan-out and loss weights.

Built from a list of layer dicts (what ``caffe_import`` reads from a prototxt)::

    net = Net([{"name": "data", "type": "Input", "top": ["data"],
                "input_param": {"shape": [{"dim": [1, 3, 8, 8]}]}},
               {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
                "convolution_param": {"num_output": 4, "kernel_size": 3}},
               {"name": "relu1", "type": "ReLU", "bottom": ["conv1"], "top": ["conv1"]}])
    blobs = net.forward(data=x)           # {"data": ..., "conv1": ReLU output (in place)}
    diffs = net.backward({"conv1": g})    # {"data": ..., "conv1": diff w.r.t. the conv output}

Note [Blob versions].  A blob name may be written several times (in-place layers).  Internally every
write is a new *version*; a layer reads the latest version of each bottom name.  After ``forward`` a
name holds its last version (``conv1`` = the ReLU's output), after ``backward`` its diff is that of
its *first* version (Caffe's in-place backward overwrites the diff down to the producer's output).
Diffs of every consumer of a version are summed (Caffe's Split layers).

Note [Loss].  A top with a nonzero loss weight (1 for the first top of a ``*Loss`` layer unless
``loss_weight`` says otherwise) adds ``weight * sum(top)`` to ``net.loss`` and seeds its own diff with
``weight`` in ``backward``.

Note [Which diffs are computed].  Caffe's rule: a blob needs a diff when it is produced by a layer
with a learnable parameter (lr_mult != 0) or from a blob that needs one; the Net's inputs need one
only with ``force_backward``.  Blobs that need no diff come back as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import budget
from .layers import create_layer
from .layers.base import as_list
from .ops import get_backend

PHASES = {"train": "TRAIN", "test": "TEST", "TRAIN": "TRAIN", "TEST": "TEST", 0: "TRAIN", 1: "TEST"}


def _phase(value, where="phase"):
    if value not in PHASES:
        raise ValueError(f"{where} must be 'train' or 'test', got {value!r}")
    return PHASES[value]


def rule_matches(rule: dict, phase: str, level: int, stages) -> bool:
    """Caffe's NetStateRule: every condition the rule states must hold."""
    if rule.get("phase") is not None and _phase(rule["phase"], "rule phase") != phase:
        return False
    if rule.get("min_level") is not None and level < int(rule["min_level"]):
        return False
    if rule.get("max_level") is not None and level > int(rule["max_level"]):
        return False
    if any(s not in stages for s in as_list(rule.get("stage"))):
        return False
    if any(s in stages for s in as_list(rule.get("not_stage"))):
        return False
    return True


def layer_included(spec: dict, phase: str, level: int = 0, stages=()) -> bool:
    include, exclude = as_list(spec.get("include")), as_list(spec.get("exclude"))
    if include and exclude:
        raise ValueError(f"layer {spec.get('name', '')!r}: give include or exclude rules, not both")
    if include:
        return any(rule_matches(r, phase, level, stages) for r in include)
    return not any(rule_matches(r, phase, level, stages) for r in exclude)


@dataclass
class LayerTrace:
    """One layer's step of a forward pass (:meth:`Net.trace`)."""
    layer: str
    type: str
    bottoms: list          # blob names read
    tops: list             # blob names written
    bottom_values: list    # the arrays read (the versions this layer saw)
    top_values: list       # the arrays written (this layer's own output)


class Net:
    """A Caffe net on NumPy arrays.  See the module docstring."""

    def __init__(self, layers, *, phase="test", dtype=np.float32, backend="numpy", seed=0,
                 name=None, force_backward=False, level=0, stages=(), max_bytes=None):
        with budget.limit(max_bytes):
            self._build(layers, phase, dtype, backend, seed, name, force_backward, level, stages)

    def _build(self, layers, phase, dtype, backend, seed, name, force_backward, level, stages):
        """``__init__``'s work, under the byte budget (``max_bytes``, :mod:`reference.budget`)."""
        self.name = name or ""
        self.phase = _phase(phase)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.backend = backend
        self.build_options = dict(phase=self.phase, dtype=self.dtype, backend=backend, seed=seed,
                                  force_backward=bool(force_backward), level=level,
                                  stages=tuple(stages))
        self.grids = {}            # blob -> ((off_h, off_w), (step_h, step_w)); set by densify
        self.dense_info = None     # set by densify: what dpoa needs to go back
        self.ops = get_backend(backend)
        self.force_backward = bool(force_backward)
        self.rng = np.random.default_rng(seed)
        self.layers = []
        self._versions = []          # version id -> blob name
        self._bottom_ids, self._top_ids = [], []
        latest = {}
        specs = [s for s in as_list(layers) if layer_included(s, self.phase, level, stages)]
        for spec in specs:
            layer = create_layer(spec, phase=_phase(spec.get("phase", self.phase), "layer phase"),
                                 dtype=self.dtype, ops=self.ops, rng=self.rng)
            for b in layer.bottom_names:
                if b not in latest:
                    raise ValueError(f"layer {layer.name!r} ({layer.type}): bottom {b!r} is not "
                                     f"produced by any earlier layer")
            self._bottom_ids.append([latest[b] for b in layer.bottom_names])
            tops = []
            for t in layer.top_names:
                self._versions.append(t)
                tops.append(len(self._versions) - 1)
                latest[t] = tops[-1]
            self._top_ids.append(tops)
            self.layers.append(layer)
        self._latest = latest
        self._first = {}
        for vid, n in enumerate(self._versions):
            self._first.setdefault(n, vid)
        self.input_names = [t for layer in self.layers if layer.type == "Input" for t in layer.top_names]
        self.blob_shapes = self.infer_shapes({})
        for layer, flag in zip(self.layers, self._needs_backward()):
            layer.need_backward = flag
        self._check_names()
        self._values = None
        self.loss = None

    def _check_names(self):
        """Caffe lets two layers share a name (``net.cpp`` keeps the last in ``layer_names_index_``:
        BVLC's mnist_autoencoder has two param-free layers named ``loss``).  Parameters are matched
        to weights by layer name, so a shared name is refused when either layer has parameters."""
        first = {}
        for layer in self.layers:
            other = first.setdefault(layer.name, layer)
            if other is not layer and (layer.blobs or other.blobs):
                raise ValueError(f"layer {layer.name!r} ({layer.type}): the name is used by an earlier "
                                 f"layer ({other.type}) and one of them has parameters, which are "
                                 f"matched to weights by layer name")

    # ---- structure ----------------------------------------------------------------------------
    @property
    def layer_names(self):
        return [layer.name for layer in self.layers]

    @property
    def blob_names(self):
        return list(self._latest)

    @property
    def specs(self) -> list:
        """The layer dicts this Net was built from (included layers only), in order."""
        return [layer.spec for layer in self.layers]

    def grid(self, blob: str):
        """``(offset, step)`` of ``blob``: ``dense[..., offset + step*i, ...]`` is the original's ``i``.

        Pairs ``((off_h, off_w), (step_h, step_w))``; ``((0, 0), (1, 1))`` for an ordinary net.
        """
        if blob not in self._latest:
            raise KeyError(f"no blob named {blob!r}")
        grid = self.grids.get(blob, ((0, 0), (1, 1)))
        if grid is None:
            raise ValueError(f"blob {blob!r} is not on an equivalent grid: it follows an upsampling "
                             f"that densify rebuilt for the dense grid (FCN's final one)")
        return grid

    def layer(self, name: str):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}")

    @property
    def params(self) -> dict:
        """``{layer: [blobs]}``: the live parameter arrays, in Caffe blob order."""
        return {layer.name: layer.blobs for layer in self.layers if layer.blobs}

    @property
    def param_diffs(self) -> dict:
        """``{layer: [diffs]}``: the parameter gradients of the last backward."""
        return {layer.name: layer.diffs for layer in self.layers if layer.blobs}

    def blob_shapes_at(self, layer_name: str) -> list:
        """Shapes of the bottoms ``layer_name`` reads (the versions it sees), for the declared inputs."""
        idx = self.layer_names.index(layer_name)
        return [self._version_shapes[b] for b in self._bottom_ids[idx]]

    def infer_shapes(self, input_shapes: dict) -> dict:
        """Every blob's shape (last version) for the given input shapes (default: declared ones);
        validates every layer on the way."""
        shapes = {}
        for layer, bids, tids in zip(self.layers, self._bottom_ids, self._top_ids):
            if layer.type == "Input":
                tops = [tuple(input_shapes.get(t, s)) for t, s in zip(layer.top_names, layer.shapes)]
            else:
                tops = layer.setup([shapes[b] for b in bids])
            for t, s in zip(tids, tops):
                count = 1
                for d in s:
                    count *= int(d)
                budget.check(count * self.dtype.itemsize,
                             f"layer {layer.name!r} ({layer.type}): top {self._versions[t]!r} of "
                             f"shape {tuple(s)}")
                shapes[t] = s
        if not input_shapes:
            self._version_shapes = shapes
        return {n: shapes[v] for n, v in self._latest.items()}

    # ---- forward / backward ------------------------------------------------------------------------
    def forward(self, **inputs) -> dict:
        """Run every layer; inputs fill the Input layers' tops.  Returns ``{blob: array}``."""
        unknown = sorted(set(inputs) - set(self.input_names))
        if unknown:
            raise ValueError(f"forward: {', '.join(map(repr, unknown))} not an input of this net "
                             f"(inputs: {', '.join(self.input_names) or 'none'})")
        values = {}
        self.loss = 0.0
        for layer, bids, tids in zip(self.layers, self._bottom_ids, self._top_ids):
            if layer.type == "Input":
                tops = []
                for t, declared in zip(layer.top_names, layer.shapes):
                    if t not in inputs:
                        raise ValueError(f"forward: input {t!r} missing (declared shape {declared})")
                    a = np.asarray(inputs[t])
                    if a.dtype.kind not in "fiub":
                        raise ValueError(f"forward: input {t!r} must be numeric, got {a.dtype}")
                    a = a.astype(self.dtype)
                    if a.ndim != len(declared):
                        raise ValueError(f"forward: input {t!r} has shape {a.shape}; the net "
                                         f"declares {len(declared)} axes {declared}")
                    tops.append(a)
            else:
                bottoms = [values[b] for b in bids]
                layer.setup([b.shape for b in bottoms])
                tops = [np.asarray(t, dtype=self.dtype) for t in layer.forward(bottoms)]
            for t, w, a in zip(tids, layer.loss_weights, tops):
                values[t] = a
                if w:
                    self.loss += w * float(np.sum(a, dtype=np.float64))
        self._values = values
        return {n: values[v] for n, v in self._latest.items()}

    def trace(self, **inputs) -> list:
        """Run :meth:`forward` and return every layer's own values, in execution order.

        One :class:`LayerTrace` per layer: its name, type, bottom and top blob names, the values it
        read and the values it wrote -- before any later in-place layer overwrote the blob (after
        ``conv1 -> relu1 (in place)``, ``forward()["conv1"]`` is the ReLU output, the trace's
        ``conv1`` entry still holds the convolution's).  The arrays are the Net's own (no copies).
        """
        self.forward(**inputs)
        values = self._values
        return [LayerTrace(layer.name, layer.type, list(layer.bottom_names), list(layer.top_names),
                           [values[b] for b in bids], [values[t] for t in tids])
                for layer, bids, tids in zip(self.layers, self._bottom_ids, self._top_ids)]

    def _needs_diff(self):
        need = [False] * len(self._versions)
        for layer, bids, tids in zip(self.layers, self._bottom_ids, self._top_ids):
            if layer.type == "Input":
                flag = self.force_backward
            else:
                learnable = any(layer.lr_mult(i) != 0 for i in range(len(layer.blobs)))
                flag = learnable or any(need[b] for b in bids)
            for t in tids:
                need[t] = flag
        return need

    def _needs_backward(self):
        """Per layer, Caffe's ``layer_need_backward_`` (BVLC/caffe src/caffe/net.cpp lines 88-161,
        168-220, 222-235): with ``force_backward`` every layer that has a backward; otherwise one
        that a loss's diff reaches (a top with a loss weight, or a top that needs a diff and that a
        consumer expecting a backward propagates down to) and that has a bottom needing a diff
        it propagates down to, or a learnable parameter.  A layer may prepare for its backward in
        its forward then (Pooling keeps its argmax); ``backward`` itself runs every layer a seed
        reaches, so no layer may depend on it."""
        need = self._needs_diff()
        reached = [False] * len(self._versions)       # a diff comes back to this version
        flags = [False] * len(self.layers)
        for k in reversed(range(len(self.layers))):
            layer, bids, tids = self.layers[k], self._bottom_ids[k], self._top_ids[k]
            down = [(not layer.propagate_down or layer.propagate_down[i]) and i not in layer.label_bottoms
                    for i in range(len(bids))]
            gets = (any(need[b] and d for b, d in zip(bids, down))
                    or any(layer.lr_mult(i) != 0 for i in range(len(layer.blobs))))
            loss_reaches = any(layer.loss_weights) or any(reached[t] for t in tids)
            flags[k] = (layer.type != "Input" and layer.has_backward
                        and (self.force_backward or (loss_reaches and gets)))
            for b, d in zip(bids, down):
                reached[b] = reached[b] or (flags[k] and d and need[b])
        return flags

    def backward(self, seeds: dict | None = None, accumulate: bool = False) -> dict:
        """Back-propagate from ``seeds`` (``{blob: top diff}``, applied to the blob's last version)
        and the loss tops.  Returns ``{blob: diff}``; parameter gradients land in ``param_diffs``
        (added to the previous ones when ``accumulate``)."""
        if self._values is None:
            raise ValueError("backward: call forward first")
        diffs = {}
        for name, g in (seeds or {}).items():
            if name not in self._latest:
                raise ValueError(f"backward: no blob named {name!r}")
            vid = self._latest[name]
            g = np.asarray(g, dtype=self.dtype)
            if g.shape != self._values[vid].shape:
                raise ValueError(f"backward: seed for {name!r} has shape {g.shape}, the blob has "
                                 f"{self._values[vid].shape}")
            diffs[vid] = g.copy()
        for layer, tids in zip(self.layers, self._top_ids):
            for t, w in zip(tids, layer.loss_weights):
                if w:
                    diffs[t] = diffs.get(t, 0) + np.full(self._values[t].shape, w, self.dtype)
        if not accumulate:
            for layer in self.layers:
                for d in layer.diffs:
                    d[...] = 0
        need = self._needs_diff()
        for layer, bids, tids in reversed(list(zip(self.layers, self._bottom_ids, self._top_ids))):
            if layer.type == "Input" or not any(t in diffs for t in tids):
                continue
            top_diffs = [diffs[t] if t in diffs else np.zeros_like(self._values[t]) for t in tids]
            bottom_diffs = layer.backward(top_diffs, [self._values[b] for b in bids],
                                          [self._values[t] for t in tids])
            for b, d in zip(bids, bottom_diffs):
                if d is None or not need[b]:
                    continue
                d = np.asarray(d, dtype=self.dtype)
                diffs[b] = diffs[b] + d if b in diffs else d
        out = {}
        for name, vid in self._first.items():
            out[name] = diffs[vid] if vid in diffs else np.zeros_like(self._values[vid])
        return out


def with_input_shapes(net: Net, shapes: dict) -> Net:
    """A copy of ``net`` whose Input layers declare ``shapes`` (``{top: dims}``), built anew (so that
    layers whose configuration depends on the input size, densify's validity masks for one, are
    derived for it), parameters copied by layer name.  A top that is not an input, or a parameter
    whose shape changes with the input (an InnerProduct), is a ValueError naming it."""
    import copy

    unknown = sorted(set(shapes) - set(net.input_names))
    if unknown:
        raise ValueError(f"input shape given for {unknown}, which the net does not have as inputs "
                         f"(its inputs: {net.input_names})")
    specs = copy.deepcopy(net.specs)
    for spec in specs:
        if spec.get("type") == "Input":
            tops = as_list(spec.get("top"))
            declared = as_list(spec.get("input_param", {}).get("shape"))
            spec.setdefault("input_param", {})["shape"] = [
                {"dim": [int(d) for d in shapes[t]]} if t in shapes else
                (declared[i] if i < len(declared) else declared[-1]) for i, t in enumerate(tops)]
    out = Net(specs, **net.build_options, name=net.name)
    for name, blobs in net.params.items():
        for i, (src, dst) in enumerate(zip(blobs, out.params.get(name, []))):
            if src.shape != dst.shape:
                raise ValueError(f"layer {name!r}: parameter {i} is {src.shape} for the declared input "
                                 f"shape and {dst.shape} for {shapes}: this layer fixes its input's size")
            dst[...] = src
    return out
