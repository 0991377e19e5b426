"""Fragments (Giusti et al.'s multi-level shift-and-stitch) and the equivalence checks E1-E4.

Every densified layer ``l`` (a convolution or pooling of stride ``s_l`` rewritten by densify) gets its
own shift ``(r_l, c_l)`` in ``[0, s_l)^2``, in units of its input.  The *fragment net* is the original
net (InnerProducts downstream of the start convolutionalized) in which each densified layer's input
is first cropped by its shift (a ``Shift`` layer).  A layer that pads is padded first, where the
original pads, and then cropped (and runs with pad 0): the fragment's zero padding then sits where
the dense grid's does (cropping first would move the padding onto real values).  Pooling whose
windows could start in the end padding (pad > kernel - stride) is refused.  For a blob ``T`` with dense grid step ``E_T`` the
fragment's values sit in the dense blob at ``r + E_T*i`` (likewise ``c``) with
``r = sum_l r_l * E_in(l)``: the shift times the product of the strides densified before ``l``.  Every
dense value belongs to exactly one fragment.

- E1: zero shifts: ``dense[T][..., E*i, E*j] == f[T][..., i, j]`` (the original grid).
- E2: every combination of shifts: every dense value equals its fragment's value.
- E4: with top diffs seeded on the dense net, its parameter gradients equal the sum over all
  fragments of the fragment nets' gradients (top diffs split the same way).
Tolerance (DESIGN.md section 4): ``max|dense - f| <= TOLERANCE[dtype] * max(1, max|f|)``.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np

from .dense import _copy_params, _ip_as_conv
from .net import Net
from .tolerance import tolerance

__all__ = ["fragment_net", "all_shifts", "check_equivalence", "check_gradients", "EquivalenceReport"]


def all_shifts(dense: Net):
    """Every combination ``{layer: (r, c)}`` of shifts of the densified layers."""
    layers = [(name, s) for name, s, _ in dense.dense_info["densified"] if s != (1, 1)]
    ranges = [list(itertools.product(range(s[0]), range(s[1]))) for _, s in layers]
    for combo in itertools.product(*ranges):
        yield dict(zip([n for n, _ in layers], combo))


def fragment_net(dense: Net, shifts: dict) -> tuple[Net, dict]:
    """The fragment net for ``shifts`` (carrying ``dense``'s parameters) and, per blob, the dense
    position ``(r, c)`` of its fragment's first value."""
    info = dense.dense_info
    if not info:
        raise ValueError("fragment_net: the net was not made by densify")
    e_in = {name: e for name, _, e in info["densified"]}
    converted = info["converted"]
    probe = Net(copy.deepcopy(info["original_specs"]), **info["build_options"])
    specs, offset = [], {}
    for layer in probe.layers:
        spec = copy.deepcopy(layer.spec)
        if layer.name in converted:
            spec = _ip_as_conv(spec, layer, probe.blob_shapes_at(layer.name)[0])
        bottoms = list(layer.bottom_names)
        off = offset.get(bottoms[0], (0, 0)) if bottoms else (0, 0)
        shift = shifts.get(layer.name, (0, 0))
        if layer.name in e_in:
            e = e_in[layer.name]
            off = (off[0] + shift[0] * e[0], off[1] + shift[1] * e[1])
            if shift != (0, 0):
                shifted = f"{bottoms[0]}@{layer.name}"
                specs.append({"name": f"{layer.name}__shift", "type": "Shift", "bottom": [bottoms[0]],
                              "top": [shifted], "shift_param": _shift_param(layer, shift)})
                spec["bottom"] = [shifted] + bottoms[1:]
                _drop_padding(spec, layer)
        for t in layer.top_names:
            offset[t] = off
        specs.append(spec)
    frag = Net(_buildable(specs, info["build_options"]["dtype"]), **info["build_options"])
    _copy_params(dense, frag, {})
    return frag, offset


def _shift_param(layer, shift):
    """Pad where the original pads (zeros; absent = -inf for max pooling), then crop the shift."""
    if layer.type == "Pooling" and layer.pad != (0, 0):
        k = layer.kernel
        if any(layer.pad[a] > k[a] - layer.stride[a] for a in (0, 1)):
            raise ValueError(f"fragment_net: pooling {layer.name!r} with pad {layer.pad} > kernel - stride "
                             f"could start a window in its end padding; fragments are not defined here")
    fill = "-inf" if layer.type == "Pooling" and layer.mode == "max" else "zero"
    return {"offset": list(shift), "pad": list(layer.pad), "fill": fill}


def _drop_padding(spec, layer):
    """The layer reads a Shift output that already holds its padding: set its pad to 0."""
    key = "pooling_param" if layer.type == "Pooling" else "convolution_param"
    p = spec.setdefault(key, {})
    for k in ("pad", "pad_h", "pad_w"):
        p.pop(k, None)
    if layer.type == "Pooling":
        p["pad_h"], p["pad_w"] = 0, 0
    else:
        p["pad"] = [0, 0]


def _buildable(specs, dtype):
    """The layers of ``specs`` whose shapes work out: a fragment can be too small for a layer (a
    convolutionalized fc whose kernel no longer fits), and then it has no values there or below; the
    dense net has none on that phase either, which the coverage check confirms."""
    from .layers import create_layer

    shapes, kept = {}, []
    for spec in specs:
        layer = create_layer(spec, dtype=dtype)
        if any(b not in shapes for b in layer.bottom_names):
            continue
        try:
            tops = layer.reshape([shapes[b] for b in layer.bottom_names])
        except ValueError:
            continue
        if layer.type == "Input":
            tops = layer.shapes
        shapes.update(zip(layer.top_names, tops))
        kept.append(spec)
    return kept


def _phase(dense_blob, off, step, shape):
    """The fragment's values inside a dense blob: ``dense[..., r + E*i, c + E*j]``, cut to ``shape``."""
    sub = dense_blob[..., off[0]::step[0], off[1]::step[1]]
    return sub[..., :shape[-2], :shape[-1]]


@dataclass
class EquivalenceReport:
    dtype: str
    rows: list = field(default_factory=list)    # (check, blob, max error / scale, fragments)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.problems and all(r[2] <= tolerance(self.dtype)
                                                               for r in self.rows)

    def worst(self, check: str) -> float:
        return max((r[2] for r in self.rows if r[0] == check), default=0.0)

    def __str__(self):
        tol = tolerance(self.dtype)
        lines = [f"equivalence ({self.dtype}, tolerance {tol:g}): {'ok' if self.ok else 'FAILED'}"]
        for check in sorted({r[0] for r in self.rows}):
            lines.append(f"  {check}: max error {self.worst(check):.3e}")
        lines += [f"  {c} {b}: error {e:.3e}" for c, b, e, _ in self.rows if e > tol][:20]
        lines += [f"  problem: {p}" for p in self.problems[:20]]
        return "\n".join(lines)


def _as4d(a):
    a = np.asarray(a)
    return a.reshape(a.shape + (1,) * (4 - a.ndim)) if a.ndim < 4 else a


def _dense_blobs(dense: Net):
    """Blobs on a dense grid (downstream of the start layer), with their steps."""
    start = dense.dense_info["start"]
    names = dense.layer_names
    after = {t for layer in dense.layers[names.index(start):] for t in layer.top_names}
    rebuilt = set(dense.dense_info.get("rebuilt", ()))   # after FCN's final upsampling: no equivalent
    return [b for b in dense.blob_names if b in after and b not in rebuilt]


def _represented(dense: Net, blob: str, shifts: dict) -> bool:
    """Whether ``blob``'s dense grid holds this fragment: after an equivalent deconvolution the
    fragments of the strides it gave back (shifted there) have no place (reference.edeconv)."""
    held = dense.dense_info.get("active", {}).get(blob)
    return held is None or all(s == (0, 0) or layer in held for layer, s in shifts.items())


def _valid(dense: Net, blob: str, shape) -> np.ndarray:
    """The positions of a dense blob that belong to a fragment (all of them unless it has a mask)."""
    ext = dense.dense_info.get("extents", {}).get(blob)
    if ext is None:
        return np.ones(shape, dtype=bool)
    from .layers.equivalent import valid_mask

    return valid_mask(shape, dense.grid(blob)[1], ext)


def check_equivalence(original: Net, dense: Net, inputs: dict, fragments: bool = True,
                      blobs=None) -> EquivalenceReport:
    """E1 (and with ``fragments``, E2) for every blob downstream of the start layer."""
    report = EquivalenceReport(np.dtype(dense.dtype).name)
    f = original.forward(**inputs)
    d = dense.forward(**inputs)
    names = [b for b in (blobs or _dense_blobs(dense)) if np.ndim(d[b]) == 4]
    for b in names:
        _, step = dense.grid(b)
        ref = _as4d(f[b])
        got = _phase(d[b], (0, 0), step, ref.shape)
        if got.shape != ref.shape:
            report.problems.append(f"E1 {b}: dense holds {got.shape} on the original grid, the "
                                   f"original has {ref.shape}")
            continue
        scale = max(1.0, float(np.abs(ref).max()))
        report.rows.append(("E1", b, float(np.abs(got - ref).max()) / scale, 1))
    if not fragments:
        return report
    covered = {b: np.zeros(d[b].shape[-2:], dtype=np.int64) for b in names}
    seen = {b: set() for b in names}   # fragments that differ only downstream of b repeat b
    worst = {b: 0.0 for b in names}
    count = 0
    for shifts in all_shifts(dense):
        frag, offset = fragment_net(dense, shifts)
        out = frag.forward(**inputs)
        count += 1
        for b in names:
            if b not in out or offset[b] in seen[b] or not _represented(dense, b, shifts):
                continue          # too small to reach b, b's phase already checked, or not held
            seen[b].add(offset[b])
            _, step = dense.grid(b)
            ref = _as4d(out[b])
            got = _phase(d[b], offset[b], step, ref.shape)
            if got.shape != ref.shape:
                report.problems.append(f"E2 {b} shifts {shifts}: dense holds {got.shape[-2:]} values "
                                       f"of the fragment's {ref.shape[-2:]}")
                continue
            scale = max(1.0, float(np.abs(ref).max()))
            worst[b] = max(worst[b], float(np.abs(got - ref).max()) / scale)
            cov = covered[b][offset[b][0]::step[0], offset[b][1]::step[1]]
            cov[:ref.shape[-2], :ref.shape[-1]] += 1
    for b in names:
        report.rows.append(("E2", b, worst[b], count))
        valid = _valid(dense, b, covered[b].shape)
        if not np.array_equal(covered[b], valid.astype(np.int64)):
            n0, n2 = int(((covered[b] == 0) & valid).sum()), int((covered[b] > 1).sum())
            report.problems.append(f"E2 {b}: {n0} dense positions in no fragment, {n2} in several")
    return report


def check_gradients(dense: Net, inputs: dict, seeds: dict) -> EquivalenceReport:
    """E4: the dense net's parameter (and input) gradients for top diffs ``seeds`` equal the sum over
    fragments of the fragment nets' gradients with the seeds split by phase."""
    report = EquivalenceReport(np.dtype(dense.dtype).name)
    dense.forward(**inputs)
    saved, dense.force_backward = dense.force_backward, True
    try:
        d_diffs = dense.backward(seeds)
    finally:
        dense.force_backward = saved
    want = {k: [g.copy() for g in v] for k, v in dense.param_diffs.items()}
    total = {k: [np.zeros_like(g, dtype=np.float64) for g in v] for k, v in want.items()}
    total_in = {k: np.zeros(np.shape(v), np.float64) for k, v in inputs.items()}
    seen = {b: set() for b in seeds}      # each phase of a seeded blob is seeded once
    for shifts in all_shifts(dense):
        frag, offset = fragment_net(dense, shifts)
        frag.force_backward = True
        out = frag.forward(**inputs)
        frag_seeds = {}
        for b, g in seeds.items():
            if b not in out or offset[b] in seen[b] or not _represented(dense, b, shifts):
                continue
            seen[b].add(offset[b])
            _, step = dense.grid(b)
            shape = _as4d(out[b]).shape
            frag_seeds[b] = _phase(np.asarray(g), offset[b], step, shape).reshape(np.shape(out[b]))
        f_diffs = frag.backward(frag_seeds)
        if not frag_seeds:
            continue
        for k, v in frag.param_diffs.items():
            for i, g in enumerate(v):
                total[k][i] += g
        for k in total_in:
            total_in[k] += f_diffs[k]
    for k, v in want.items():
        for i, g in enumerate(v):
            scale = max(1.0, float(np.abs(total[k][i]).max()))
            report.rows.append(("E4", f"{k}/{i}", float(np.abs(g - total[k][i]).max()) / scale, 0))
    for k, v in total_in.items():
        scale = max(1.0, float(np.abs(v).max()))
        report.rows.append(("E4", f"input {k}", float(np.abs(d_diffs[k] - v).max()) / scale, 0))
    return report
