"""``econv compare``: find, locate and explain where another runtime differs from the oracle.

    import econv
    report = econv.compare("train_val.prototxt", "model.caffemodel", runtime="opencv")   # the module
    # is callable: econv.compare(...) is econv.compare.compare(...)
    report = compare("net.prototxt", "model.caffemodel", theirs="dump.npz")   # blobs dumped elsewhere
    report.ok, report.rows, report.first, report.masked
    report.to_json()                     # the contract of DESIGN.md section 7
    report.write_reproducers("repro/")   # one folder per divergent layer, small enough for a bug report

What it does, in order:

1. derives the deploy net (:func:`caffe_import.deploy.derive_deploy`: losses, label inputs, data
   layers, Accuracy and Silence go);
2. runs the oracle (:class:`reference.Net` in float64) with :meth:`reference.Net.trace`, which keeps
   every layer's own output (before a later in-place layer overwrites the blob);
3. runs the runtime (an adapter of :mod:`econv.runtimes`) on the same deploy files and inputs, or
   reads ``theirs`` (an ``.npz`` or HDF5 file of blobs), and maps its names to the oracle's values
   (:func:`resolve`: ``blob@layer``, a layer name, or a blob name; unmatched names are reported);
4. compares layer by layer, in execution order: ``max_abs_err = max |theirs - oracle|`` and
   ``max_rel_err = max_abs_err / max(1, max |oracle|)``; a row is ok when
   ``max_abs_err <= atol + rtol * max(1, max |oracle|)`` (``rtol`` by default
   :func:`reference.tolerance.net_tolerance` of ``dtype``: 1e-4 for float32 -- the rounding of a
   float32 runtime accumulates through a whole net --, 1e-10 for float64; judged against float64);
5. at the first divergence, *isolates* the layer: runs it alone in the runtime on the oracle's own
   inputs (a one-layer prototxt and caffemodel written by caffe_import's writers) -- with ``theirs``,
   recomputes the oracle's layer on their inputs instead -- ``isolated`` is true when the layer alone
   diverges too; and *explains* it: the first alternative of :mod:`reference.conventions` (pooling
   size rule, divisor, an ignored parameter...) that reproduces the runtime's values;
6. lists as ``masked`` every divergent layer whose downstream net outputs all agree (an error a later
   ReLU or max pooling hides: an end-to-end output check would pass).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from reference.tolerance import net_tolerance

__all__ = ["compare", "CompareReport", "Row", "Divergence", "resolve", "read_arrays",
           "one_layer_net"]

NAMINGS = ("auto", "layer", "blob")


# ---- reading array files --------------------------------------------------------------------------

def read_arrays(path, what: str = "file", group: str | None = None, max_bytes: int = 4 << 30) -> dict:
    """``{name: array}`` from an ``.npz`` or HDF5 file (every numeric dataset, keyed by its path
    without the leading ``/``; when the file has a top-level group ``group`` -- ``blobs`` or
    ``inputs`` in a pycaffe-style dump such as the Caffe fixtures' io.h5 -- only that group's, keyed
    by their path inside it).  FormatError for anything else, naming the file."""
    from caffe_import import FormatError, is_hdf5

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(f"{what} {path!r}: no such file")
    if is_hdf5(path):
        import h5py

        out, total = {}, 0
        try:
            with h5py.File(path, "r") as f:
                names = []
                if group and isinstance(f.get(group, getlink=True), h5py.HardLink) and \
                        isinstance(f[group], h5py.Group):
                    f = f[group]
                f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                             else None)
                for name in names:
                    ds = f[name]
                    if ds.dtype.kind not in "fiub":
                        continue
                    total += ds.size * ds.dtype.itemsize
                    if total > max_bytes:
                        raise FormatError(f"{what} {path!r}: more than {max_bytes} bytes of arrays")
                    out[name] = np.asarray(ds[()])
        except OSError as e:
            raise FormatError(f"{what} {path!r}: not a readable HDF5 file ({e})") from None
        return out
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise FormatError(f"{what} {path!r}: a single .npy array; give an .npz keyed by name")
            return {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError, EOFError) as e:
        raise FormatError(f"{what} {path!r}: neither HDF5 nor .npz ({e})") from None


# ---- resolving names ------------------------------------------------------------------------------

def resolve(trace, names, naming: str = "auto"):
    """Map a runtime's output names to the oracle's values.

    ``trace``: :meth:`reference.Net.trace`'s list.  A name is matched as
    ``blob@layer`` (that layer's top ``blob``), a layer name (its first top; ``naming`` "auto" or
    "layer"; OpenCV's way), or a blob name (the blob's last version, what a dump of ``net.blobs``
    after forward holds; ``naming`` "blob"); a leading ``blobs/`` group is ignored.  "auto" decides
    for the whole set of names: layer names when one of them names a layer that writes no blob of
    that name (an in-place ``relu1``: OpenCV's outputs, a per-layer dump), else blob names (a pycaffe
    dump of ``net.blobs``, where ``conv1`` is the ReLU's output).

    Returns ``(matched, unmatched)``: ``{(layer index, top index): name}`` and the names that match
    nothing (never silently dropped; input blobs match the Input layers).
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    by_layer = {t.layer: i for i, t in enumerate(trace)}
    last_writer = {}
    for i, t in enumerate(trace):
        for k, b in enumerate(t.tops):
            last_writer[b] = (i, k)
    if naming == "auto":
        layer_only = set(by_layer) - set(last_writer)
        keys = {n[len("blobs/"):] if n.startswith("blobs/") else n for n in names}
        naming = "layer" if keys & layer_only else "blob"
    matched, unmatched = {}, []
    for name in names:
        key = name[len("blobs/"):] if name.startswith("blobs/") else name
        target = None
        if "@" in key:
            blob, _, layer = key.partition("@")
            i = by_layer.get(layer)
            if i is not None and blob in trace[i].tops:
                target = (i, trace[i].tops.index(blob))
        if target is None and naming == "layer" and key in by_layer:
            target = (by_layer[key], 0) if trace[by_layer[key]].tops else None
        if target is None and key in last_writer:
            target = last_writer[key]
        if target is None:
            unmatched.append(name)
        elif target not in matched:
            matched[target] = name
    return matched, unmatched


# ---- the report -----------------------------------------------------------------------------------

@dataclass
class Row:
    layer: str
    type: str
    blob: str
    max_abs_err: float | None     # None: not compared (no value from the runtime)
    max_rel_err: float | None
    ok: bool | None
    note: str = ""                # e.g. a shape mismatch
    index: int = 0                # position in the trace
    top: int = 0

    def to_json(self):
        return {"layer": self.layer, "type": self.type, "blob": self.blob,
                "max_abs_err": _finite(self.max_abs_err), "max_rel_err": _finite(self.max_rel_err),
                "ok": self.ok}


@dataclass
class Divergence:
    layer: str
    type: str
    blob: str
    max_abs_err: float
    max_rel_err: float
    where: list
    theirs: float | None
    oracle: float | None
    isolated: bool | None
    explanation: str | None
    isolated_err: float | None = None
    note: str = ""                # e.g. "shape (2, 2, 8, 8), oracle (2, 2, 10, 10)"

    def to_json(self):
        return {"layer": self.layer, "type": self.type, "blob": self.blob,
                "max_abs_err": _finite(self.max_abs_err), "max_rel_err": _finite(self.max_rel_err),
                "where": self.where, "theirs": _finite(self.theirs), "oracle": _finite(self.oracle),
                "isolated": self.isolated, "explanation": self.explanation}


def _finite(v):
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


@dataclass
class CompareReport:
    """What :func:`compare` found (see the module docstring)."""
    runtime: str
    dtype: str
    rtol: float
    atol: float
    rows: list = field(default_factory=list)
    first: Divergence | None = None
    masked: list = field(default_factory=list)
    unmatched: list = field(default_factory=list)     # runtime names matching no layer or blob
    seconds: dict = field(default_factory=dict)
    _context: object = None

    @property
    def ok(self) -> bool:
        compared = [r for r in self.rows if r.ok is not None]
        return bool(compared) and all(r.ok for r in compared)

    @property
    def not_compared(self) -> list:
        return [f"{r.blob}@{r.layer}" for r in self.rows if r.ok is None]

    def to_json(self) -> dict:
        return {"ok": self.ok, "runtime": self.runtime, "dtype": self.dtype,
                "rows": [r.to_json() for r in self.rows],
                "first_divergence": self.first.to_json() if self.first else None,
                "masked": list(self.masked), "unmatched": list(self.unmatched),
                "not_compared": self.not_compared}

    def write_json(self, path):
        from caffe_import.atomic import atomic_output

        with atomic_output(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.to_json(), fh, indent=1)
                fh.write("\n")

    def table(self) -> str:
        lines = []
        head = ("layer", "type", "blob", "max abs", "max rel", "ok")
        cells = [head] + [(r.layer, r.type, r.blob,
                           "-" if r.max_abs_err is None else f"{r.max_abs_err:.2e}",
                           "-" if r.max_rel_err is None else f"{r.max_rel_err:.2e}",
                           {True: "ok", False: "DIFF", None: "not compared"}[r.ok]
                           + (f" ({r.note})" if r.note else "")) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        tol = f"rtol {self.rtol:g}" + (f", atol {self.atol:g}" if self.atol else "")
        n_ok = sum(1 for r in self.rows if r.ok)
        n_cmp = sum(1 for r in self.rows if r.ok is not None)
        lines.append(f"{self.runtime} vs oracle ({self.dtype}, {tol}): {n_ok} of {n_cmp} compared "
                     f"blobs agree" + ("" if n_cmp == len(self.rows) else
                                        f", {len(self.rows) - n_cmp} not compared"))
        d = self.first
        if d is None:
            lines.append("first divergence: none")
        else:
            iso = {True: "yes: the layer alone diverges on the oracle's inputs",
                   False: "no: the layer alone agrees; the error comes from upstream",
                   None: "not determined"}[d.isolated]
            size = (d.note if d.where == [] and d.note else
                    f"max abs {d.max_abs_err:.3g}, max rel {d.max_rel_err:.3g}"
                    + (f" ({d.note})" if d.note else ""))
            lines += [f"first divergence: {d.layer} ({d.type}), blob {d.blob}: {size}"]
            if d.where:
                lines.append(f"  where {d.where}: theirs {_fmt(d.theirs)}, oracle {_fmt(d.oracle)}")
            lines += [
                      f"  isolated: {iso}" + ("" if d.isolated_err is None else
                                              " (alone: a wrong shape too)" if np.isinf(d.isolated_err)
                                              else f" (max abs alone {d.isolated_err:.2e})"),
                      f"  explanation: {d.explanation or 'none found in the catalogue'}"]
        lines.append("masked (divergences that vanish downstream): " + (", ".join(self.masked) or "none"))
        if self.unmatched:
            lines.append("unmatched runtime names: " + ", ".join(self.unmatched))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def write_reproducers(self, folder) -> list:
        """One folder per divergent layer that diverges on its own (the first divergence always):
        ``net.prototxt`` and ``weights.caffemodel`` (the layer alone), ``inputs.h5`` (the oracle's
        values of its bottoms, as fed to the runtime), ``oracle.h5`` (the oracle's tops, float64),
        ``theirs.h5`` (the runtime's tops on those inputs) and ``README.md``.  Returns the folders."""
        if self._context is None or self.first is None:
            return []
        return self._context.write_reproducers(self, folder)


def _fmt(v):
    return "-" if v is None else f"{v:.6g}"


# ---- one-layer nets -------------------------------------------------------------------------------

_DROP_KEYS = ("loss_weight", "propagate_down", "include", "exclude", "phase")


def one_layer_net(spec: dict, bottom_shapes: list) -> list:
    """The layer dicts of a net with just ``spec``: one Input per distinct bottom, then the layer."""
    layers, seen = [], set()
    names = {spec.get("name")}
    for b, shape in zip(spec.get("bottom", []), bottom_shapes):
        if b in seen:
            continue
        seen.add(b)
        name = b if b not in names else f"input_{b}"
        names.add(name)
        layers.append({"name": name, "type": "Input", "top": [b],
                       "input_param": {"shape": [{"dim": [int(d) for d in shape]}]}})
    layers.append({k: v for k, v in spec.items() if k not in _DROP_KEYS and k != "blobs"})
    return layers


def write_caffemodel(layers: list, params: dict, path) -> None:
    """A binary caffemodel (NetParameter) with ``params`` (``{layer: [arrays]}``) as float32."""
    from caffe_import import write_message
    from caffe_import.atomic import atomic_output

    msg = {"name": "econv", "layer": [
        {"name": s["name"], "type": s["type"],
         "blobs": [np.ascontiguousarray(b, dtype=np.float32) for b in params.get(s["name"], [])]}
        for s in layers]}
    with atomic_output(path) as tmp:
        write_message(tmp, msg, "NetParameter")


def write_h5(path, arrays: dict) -> None:
    import h5py

    from caffe_import.atomic import atomic_output

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=np.asarray(v))


# ---- the comparison -------------------------------------------------------------------------------

class _Context:
    """What isolation and the reproducers need after the main run."""

    def __init__(self, trace, specs, params, theirs_values, runtime, runtime_name, dtype, rtol, atol):
        self.trace, self.specs, self.params = trace, specs, params
        self.theirs_values = theirs_values          # (layer index, top index) -> their array
        self.runtime, self.runtime_name = runtime, runtime_name
        self.dtype, self.rtol, self.atol = dtype, rtol, atol
        self._iso = {}

    def ok(self, err_abs, scale):
        return bool(err_abs <= self.atol + self.rtol * scale)

    def their_bottoms(self, index):
        """Their values of layer ``index``'s bottoms where they gave them (else the oracle's)."""
        t = self.trace[index]
        values = []
        for b, oracle in zip(t.bottoms, t.bottom_values):
            value = oracle
            for j in range(index - 1, -1, -1):
                if b in self.trace[j].tops:
                    got = self.theirs_values.get((j, self.trace[j].tops.index(b)))
                    if got is not None and got.shape == oracle.shape:
                        value = got
                    break
            values.append(np.asarray(value, dtype=np.float64))
        return values

    def isolate(self, index, top):
        """``(their top on the isolated layer, its inputs, error)``, memoised per layer."""
        if (index, top) in self._iso:
            return self._iso[(index, top)]
        t, spec = self.trace[index], self.specs[index]
        blobs = self.params.get(t.layer, [])
        if self.runtime is None:
            from reference.conventions import layer_forward

            inputs = self.their_bottoms(index)
            theirs = self.theirs_values[(index, top)]
            try:
                expected = layer_forward(spec, blobs, inputs)[top]
            except ValueError as e:
                result = (None, inputs, None, f"the oracle cannot run the layer on their inputs: {e}")
                self._iso[(index, top)] = result
                return result
        else:
            dt = np.dtype(self.dtype)
            inputs = [np.asarray(v, dtype=dt).astype(np.float64) for v in t.bottom_values]
            expected = t.top_values[top]
            try:
                theirs = self._run_alone(index, inputs)[top]
            except (RuntimeError, ValueError, KeyError) as e:
                result = (None, inputs, None, f"the layer alone could not be run: {e}")
                self._iso[(index, top)] = result
                return result
        if theirs is None or np.shape(theirs) != np.shape(expected):
            if theirs is not None and np.size(theirs) == np.size(expected):
                theirs = np.reshape(theirs, np.shape(expected))
            else:
                result = (theirs, inputs, float("inf"), f"shape {np.shape(theirs)} vs the oracle's "
                                                        f"{np.shape(expected)}")
                self._iso[(index, top)] = result
                return result
        diff = np.abs(np.asarray(theirs, np.float64) - expected)
        err = float(diff.max()) if diff.size else 0.0
        err = err if np.isfinite(err) else float("inf")
        result = (np.asarray(theirs, np.float64), inputs, err, "")
        self._iso[(index, top)] = result
        return result

    def _one_layer_files(self, index, folder):
        from caffe_import import write_prototxt

        t, spec = self.trace[index], self.specs[index]
        layers = one_layer_net(spec, [v.shape for v in t.bottom_values])
        proto = os.path.join(folder, "net.prototxt")
        write_prototxt({"name": f"{t.layer}_alone", "layer": layers}, proto,
                       header=f"layer {t.layer!r} ({t.type}) alone, written by econv compare")
        weights = None
        if self.params.get(t.layer):
            weights = os.path.join(folder, "weights.caffemodel")
            write_caffemodel(layers, {t.layer: self.params[t.layer]}, weights)
        return layers, proto, weights

    def _run_alone(self, index, inputs):
        t = self.trace[index]
        with tempfile.TemporaryDirectory(prefix="econv-compare-") as folder:
            layers, proto, weights = self._one_layer_files(index, folder)
            feed = {}
            for b, v in zip(t.bottoms, inputs):
                feed[b] = np.asarray(v, dtype=np.dtype(self.dtype))
            outputs = self.runtime.run(proto, weights, feed, None)
        from reference.net import LayerTrace

        mini = [LayerTrace(s["name"], "Input", [], s["top"], [], []) for s in layers[:-1]]
        mini.append(LayerTrace(t.layer, t.type, t.bottoms, t.tops, [], []))
        matched, _ = resolve(mini, list(outputs), getattr(self.runtime, "NAMING", "auto"))
        values = [None] * len(t.tops)
        for (i, k), name in matched.items():
            if i == len(mini) - 1:
                values[k] = np.asarray(outputs[name])
        return values

    def write_reproducers(self, report, folder):
        os.makedirs(folder, exist_ok=True)
        written = []
        for row in report.rows:
            if row.ok is not False:
                continue
            theirs, inputs, err, note = self.isolate(row.index, row.top)
            first = report.first is not None and row.layer == report.first.layer
            if not first and (err is None or self.ok(err, _scale(self.trace[row.index].top_values[row.top]))):
                continue
            t = self.trace[row.index]
            sub = os.path.join(folder, _safe(t.layer))
            os.makedirs(sub, exist_ok=True)
            self._one_layer_files(row.index, sub)
            dt = np.dtype(self.dtype)
            write_h5(os.path.join(sub, "inputs.h5"),
                     {b: np.asarray(v, dtype=dt) for b, v in zip(t.bottoms, inputs)})
            write_h5(os.path.join(sub, "oracle.h5"), {b: v for b, v in zip(t.tops, t.top_values)})
            if theirs is not None:
                write_h5(os.path.join(sub, "theirs.h5"), {t.tops[row.top]: theirs})
            expl = report.first.explanation if first and report.first.explanation else None
            how = (f"econv compare net.prototxt {'weights.caffemodel' if self.params.get(t.layer) else '-'}"
                   f" --runtime {self.runtime_name} --inputs inputs.h5") if self.runtime is not None else \
                "compare theirs.h5 with oracle.h5"
            alone = "-" if err is None else f"{err:.3g}"
            text = (f"# {t.layer} ({t.type}) alone: {report.runtime} differs from Caffe's semantics "
                    f"(econv oracle, float64) by max abs {alone} on the inputs in inputs.h5"
                    f"{'; ' + expl if expl else ''}{'; ' + note if note else ''}.\n\n"
                    f"Files: net.prototxt (the layer alone), "
                    f"{'weights.caffemodel, ' if self.params.get(t.layer) else ''}inputs.h5 (its "
                    f"bottoms), oracle.h5 (Caffe's tops), "
                    f"{'theirs.h5 (the runtime tops), ' if theirs is not None else ''}"
                    f"all HDF5 readable with h5py.  Reproduce: `{how}`\n")
            from caffe_import.atomic import atomic_output

            with atomic_output(os.path.join(sub, "README.md")) as tmp:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
            written.append(sub)
        return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "layer"


def _scale(a) -> float:
    a = np.asarray(a)
    return max(1.0, float(np.abs(a).max())) if a.size else 1.0


def _downstream(trace, index):
    """Indices of the layers that read (transitively) what layer ``index`` wrote."""
    tainted = set(trace[index].tops)
    down = []
    for j in range(index + 1, len(trace)):
        t = trace[j]
        if any(b in tainted for b in t.bottoms):
            down.append(j)
            tainted |= set(t.tops)
        else:
            tainted -= set(t.tops)
    return down


def _terminal(trace):
    """``{(layer index, top index)}`` of the versions no later layer reads: the net's outputs."""
    out = set()
    for i, t in enumerate(trace):
        for k, b in enumerate(t.tops):
            read = False
            for j in range(i + 1, len(trace)):
                if b in trace[j].bottoms:
                    read = True
                    break
                if b in trace[j].tops:
                    break
            if not read:
                out.add((i, k))
    return out


def _parse_dtype(dtype):
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return name


def compare(prototxt, weights, runtime=None, theirs=None, inputs=None, dtype="float32", rtol=None,
            atol=None, input_shapes=None, naming=None, seed=0, progress=False) -> CompareReport:
    """Compare a runtime (``runtime``: a name of :mod:`econv.runtimes` or an adapter module) or a
    file of dumped blobs (``theirs``: path or ``{name: array}``) with the oracle, layer by layer.

    ``prototxt``: path, text or NetParameter dict (a train/test net is fine: the deploy net is
    derived); ``weights``: caffemodel / HDF5 path, ``{layer: [arrays]}`` or None (fillers, seeded);
    ``inputs``: path (``.npz``/HDF5) or ``{blob: array}``; default: with ``theirs``, the input blobs
    it holds, else seeded standard normal values of the inputs' shapes (``input_shapes``
    ``{blob: shape}`` overrides them and shapes data layers);
    ``dtype``: the runtime's precision, which sets the default ``rtol``; ``naming``: how their names
    read (:func:`resolve`; default the adapter's ``NAMING``, else "auto"); ``progress``: a
    tqdm bar over the four stages (oracle, runtime, rows, isolation) on stderr.
    """
    import time

    from caffe_import import FormatError, is_hdf5, read_prototxt, read_weights
    from caffe_import.deploy import derive_deploy
    from caffe_import.loader import build_net, copy_weights

    if (runtime is None) == (theirs is None):
        raise ValueError("give exactly one of runtime (opencv, onnxruntime, torch) and theirs (a file "
                         "of blobs)")
    dtype = _parse_dtype(dtype)
    rtol = net_tolerance(dtype) if rtol is None else float(rtol)
    atol = 0.0 if atol is None else float(atol)
    if rtol < 0 or atol < 0:
        raise ValueError("rtol and atol must be >= 0")
    clock = {}
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=4, desc="compare: oracle", unit="step", leave=False)
    adapter = None
    if runtime is not None:
        if isinstance(runtime, str):
            from .runtimes import get_runtime
            adapter = get_runtime(runtime)
        else:
            adapter = runtime
    naming = naming or getattr(adapter, "NAMING", "auto")

    net_dict = prototxt if isinstance(prototxt, dict) else read_prototxt(prototxt)
    deploy = derive_deploy(net_dict, input_shapes)
    weight_dict = {}
    if weights is not None:
        weight_dict = weights if isinstance(weights, dict) else read_weights(os.fspath(weights))
    oracle = build_net(deploy, phase="test", dtype=np.float64, seed=seed)
    if weight_dict:
        copy_weights(oracle, weight_dict, deploy["layer"])
    specs = oracle.specs
    params = {name: [np.asarray(b) for b in blobs] for name, blobs in oracle.params.items()}

    their_outputs = None
    if adapter is None:
        their_outputs = theirs if isinstance(theirs, dict) else read_arrays(theirs, "--theirs", "blobs")
        if not their_outputs:
            raise FormatError(f"--theirs {theirs!r}: no arrays in the file")

    # inputs: given, else (with theirs) the input blobs they dumped, else seeded normal values
    rng = np.random.default_rng(seed)
    given = {}
    if inputs is not None:
        given = inputs if isinstance(inputs, dict) else read_arrays(inputs, "--inputs", "inputs")
        given = {(k[len("inputs/"):] if k.startswith("inputs/") else k): v for k, v in given.items()}
        dropped = {t for layer in net_dict.get("layer", []) for t in layer.get("top", [])}
        given = {k: v for k, v in given.items() if k in oracle.input_names or k not in dropped}
        unknown = sorted(set(given) - set(oracle.input_names))     # (label inputs are left out)
        if unknown:
            raise ValueError(f"inputs: {', '.join(unknown)} not an input of the deploy net (inputs: "
                             f"{', '.join(oracle.input_names)})")
    feed = {}
    for name in oracle.input_names:
        value = given.get(name)
        if value is None and their_outputs is not None and inputs is None:
            value = their_outputs.get(name)
        if value is None:
            value = rng.standard_normal(oracle.blob_shapes[name])
        feed[name] = np.asarray(value, dtype=dtype)       # what the runtime sees, exactly
    oracle.infer_shapes({k: v.shape for k, v in feed.items()})
    trace = oracle.trace(**{k: v.astype(np.float64) for k, v in feed.items()})
    clock["oracle"] = time.perf_counter() - t0
    _step(bar, "runtime")

    # their values
    t1 = time.perf_counter()
    if adapter is not None:
        name = getattr(adapter, "NAME", str(runtime))
        with tempfile.TemporaryDirectory(prefix="econv-compare-") as folder:
            from caffe_import import write_prototxt

            proto = os.path.join(folder, "deploy.prototxt")
            write_prototxt(deploy, proto, header="deploy net derived by econv compare")
            wpath = None
            if weight_dict and isinstance(weights, (str, os.PathLike)) and not is_hdf5(weights):
                wpath = os.fspath(weights)             # the user's own binary caffemodel
            elif params:                               # HDF5, a dict, or the oracle's seeded fillers
                wpath = os.path.join(folder, "weights.caffemodel")
                write_caffemodel(deploy["layer"], params, wpath)
            try:
                outputs = adapter.run(proto, wpath, feed, None)       # every output it can give
            except RuntimeError as e:
                if bar is not None:
                    bar.close()
                raise ValueError(f"{name} could not run the deploy net: {e}") from None
    else:
        name = "theirs" if isinstance(theirs, dict) else os.path.basename(os.fspath(theirs))
        outputs = their_outputs
    clock["runtime"] = time.perf_counter() - t1
    _step(bar, "rows")

    matched, unmatched = resolve(trace, list(outputs), naming)
    theirs_values = {}
    report = CompareReport(runtime=name, dtype=dtype, rtol=rtol, atol=atol, unmatched=unmatched)
    ctx = _Context(trace, specs, params, theirs_values, adapter, name, dtype, rtol, atol)
    for i, t in enumerate(trace):
        if t.type == "Input":
            continue
        for k, (blob, value) in enumerate(zip(t.tops, t.top_values)):
            key = matched.get((i, k))
            if key is None:
                report.rows.append(Row(t.layer, t.type, blob, None, None, None, index=i, top=k))
                continue
            got = np.asarray(outputs[key])
            note = ""
            if got.shape != value.shape and got.size == value.size:
                got = got.reshape(value.shape)
            if got.shape != value.shape:
                report.rows.append(Row(t.layer, t.type, blob, float("inf"), float("inf"), False,
                                       f"shape {got.shape}, oracle {value.shape}", i, k))
                theirs_values[(i, k)] = got
                continue
            got = got.astype(np.float64)
            theirs_values[(i, k)] = got
            diff = np.abs(got - value)
            err = float(diff.max()) if diff.size else 0.0
            if not np.isfinite(err):
                err = float("inf")
                note = "NaN or inf"
            scale = _scale(value)
            report.rows.append(Row(t.layer, t.type, blob, err, err / scale, ctx.ok(err, scale), note, i, k))
    if not any(r.ok is not None for r in report.rows):
        if bar is not None:
            bar.close()
        shown = ", ".join(unmatched[:8]) + (" ..." if len(unmatched) > 8 else "")
        raise ValueError(f"nothing to compare: none of the {len(outputs)} names from {name} matches a "
                         f"layer or blob of the deploy net ({shown or 'no names'}); see --names")
    report._context = ctx
    _step(bar, "isolation")
    t2 = time.perf_counter()
    bad = [r for r in report.rows if r.ok is False]
    if bad:
        report.first = _divergence(ctx, bad[0])
    terminal = _terminal(trace)
    status = {(r.index, r.top): r.ok for r in report.rows}
    for r in bad:
        if (r.index, r.top) in terminal:
            continue
        down = _downstream(trace, r.index)
        ends = [(j, k) for j in down for k in range(len(trace[j].tops)) if (j, k) in terminal]
        if ends and all(status.get(e) is True for e in ends) and r.layer not in report.masked:
            report.masked.append(r.layer)
    clock["isolation"] = time.perf_counter() - t2
    clock["total"] = time.perf_counter() - t0
    if bar is not None:
        bar.update(1)
        bar.close()
    report.seconds = clock
    return report


def _step(bar, stage):
    if bar is not None:
        bar.update(1)
        bar.set_description(f"compare: {stage}")


def _divergence(ctx, row) -> Divergence:
    from reference.conventions import explain

    t = ctx.trace[row.index]
    oracle = t.top_values[row.top]
    got = ctx.theirs_values.get((row.index, row.top))
    where, theirs_v, oracle_v = [], None, None
    if got is not None and got.shape == oracle.shape and oracle.size:
        diff = np.abs(got - oracle)
        diff = np.where(np.isnan(diff), np.inf, diff)
        pos = np.unravel_index(int(np.argmax(diff)), diff.shape)
        where = [int(p) for p in pos]
        theirs_v, oracle_v = float(got[pos]), float(oracle[pos])
    iso_theirs, iso_inputs, iso_err, note = ctx.isolate(row.index, row.top)
    isolated = None if iso_err is None else not ctx.ok(iso_err, _scale(oracle))
    explanation = None
    spec, blobs = ctx.specs[row.index], ctx.params.get(t.layer, [])
    candidate = iso_theirs if iso_theirs is not None else got
    if isolated is not False and candidate is not None:
        inputs = iso_inputs if iso_theirs is not None else \
            [np.asarray(v, np.float64) for v in t.bottom_values]
        found = explain(spec, blobs, inputs, candidate, ctx.rtol, row.top)
        explanation = found.words if found else None
    if isolated is False:
        on = "the oracle's inputs" if ctx.runtime is not None else "their own inputs"
        explanation = (f"the layer alone agrees with the oracle (max abs {iso_err:.2e} on {on}): an "
                       f"earlier difference propagated")
    elif explanation is None and note:
        explanation = note
    return Divergence(t.layer, t.type, row.blob, row.max_abs_err, row.max_rel_err, where, theirs_v,
                      oracle_v, isolated, explanation, iso_err, row.note)


class _CallableModule(type(json)):
    """Makes ``econv.compare(...)`` the same as ``econv.compare.compare(...)``."""

    def __call__(self, *args, **kwargs):
        return compare(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
