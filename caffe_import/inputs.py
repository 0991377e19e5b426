"""A net's inputs before it is built: the ``input_shapes`` override and the up-front support check.

``apply_input_shapes(net_dict, {"data": (1, 3, 368, 368)})`` returns the NetParameter dict with the
named tops' shapes replaced *before* the net is built:

- a top of an ``Input`` layer gets the new shape (its other tops keep theirs);
- the tops of a data layer (Data, ImageData, HDF5Data, MemoryData, DummyData, WindowData, or a
  ``Python`` layer without bottoms) make it an ``Input`` layer of the same name, include/exclude
  rules kept (train_val files have one data layer per phase: both are replaced).  Every top of such
  a layer needs a shape (``label`` too), so the replaced net has no top without a producer.

``check_supported(net_dict, phase)`` configures every layer the phase includes, without shapes, and
raises one ValueError listing *every* unknown layer type and every parameter a layer refuses, rather
than the first only.  (Data and Python layers are not constructed here: they read files or run user
code; the real build reports them.)
"""

from __future__ import annotations

import numbers

import numpy as np

from reference.layers.base import as_list
from reference.net import _phase, layer_included

from .data.base import DATA_LAYER_TYPES, go_on_hint


def is_input_layer(spec: dict) -> bool:
    """True for an Input layer, a data layer, or a Python layer without bottoms."""
    kind = spec.get("type")
    return (kind == "Input" or kind in DATA_LAYER_TYPES
            or (kind == "Python" and not as_list(spec.get("bottom"))))


def declared_inputs(net_dict: dict, phase="test", level=None, stages=None) -> list:
    """The tops that ``input_shapes`` may name: those of the phase's Input and data layers, in order."""
    level, stages = _state(net_dict, level, stages)
    names = []
    for spec in net_dict.get("layer", []):
        if is_input_layer(spec) and layer_included(spec, _phase(phase), level, stages):
            names += [str(t) for t in as_list(spec.get("top")) if str(t) not in names]
    return names


def _state(net_dict, level, stages):
    state = net_dict.get("state", {})
    return (int(state.get("level", 0)) if level is None else level,
            tuple(state.get("stage", [])) if stages is None else tuple(stages))


def _dims(name, shape) -> list:
    dims = list(shape) if isinstance(shape, (list, tuple, np.ndarray)) else None
    if dims is None or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0
                           for d in dims):
        raise ValueError(f"input_shapes[{name!r}]: expected a sequence of integers >= 0, got {shape!r}")
    return [int(d) for d in dims]


def _declared(spec: dict) -> list:
    shapes = as_list((spec.get("input_param") or {}).get("shape"))
    tops = as_list(spec.get("top"))
    dims = [list(as_list(s.get("dim") if isinstance(s, dict) else s)) for s in shapes]
    return dims * len(tops) if len(dims) == 1 else dims


def apply_input_shapes(net_dict: dict, input_shapes: dict | None, phase="test", level=None,
                       stages=None) -> dict:
    """``net_dict`` with the named tops' shapes overridden (see the module docstring)."""
    if not input_shapes:
        return net_dict
    shapes = {str(k): _dims(k, v) for k, v in input_shapes.items()}
    used, layers = set(), []
    for spec in net_dict.get("layer", []):
        tops = [str(t) for t in as_list(spec.get("top"))]
        named = [t for t in tops if t in shapes]
        if not is_input_layer(spec) or not named:
            layers.append(spec)
            continue
        if spec.get("type") == "Input":
            old = _declared(spec)
            dims = [shapes[t] if t in shapes else (old[i] if i < len(old) else None)
                    for i, t in enumerate(tops)]
        else:
            missing = [t for t in tops if t not in shapes]
            if missing:
                raise ValueError(
                    f"input_shapes: layer {spec.get('name', '')!r} ({spec.get('type')}) has tops "
                    f"{', '.join(tops)}; give a shape for each to replace it by an Input "
                    f"(missing: {', '.join(missing)})")
            dims = [shapes[t] for t in tops]
        if any(d is None for d in dims):
            layers.append(spec)         # a malformed Input: let the layer report it
            continue
        new = {"name": spec.get("name", ""), "type": "Input", "top": tops,
               "input_param": {"shape": [{"dim": d} for d in dims]}}
        for key in ("include", "exclude", "phase"):
            if key in spec:
                new[key] = spec[key]
        layers.append(new)
        used.update(named)
    unknown = [n for n in shapes if n not in used]
    if unknown:
        known = declared_inputs(net_dict, phase, level, stages)
        raise ValueError(f"input_shapes: {', '.join(map(repr, unknown))} is not a top of an Input or "
                         f"data layer (this net's: {', '.join(known) or 'none'})")
    return {**net_dict, "layer": layers}


def check_supported(net_dict: dict, phase="test", level=None, stages=None, dtype=np.float32):
    """Raise one ValueError naming every unknown layer type (once per type, with the layers that
    use it) and every refused parameter."""
    from reference.layers import LAYER_TYPES, create_layer

    level, stages = _state(net_dict, level, stages)
    problems, unknown = [], {}          # unknown: type -> (index in problems, layer names)
    for spec in net_dict.get("layer", []):
        if not isinstance(spec, dict) or not layer_included(spec, _phase(phase), level, stages):
            continue
        kind, name = spec.get("type"), spec.get("name", "")
        cls = LAYER_TYPES.get(kind)
        if cls is None:
            if kind not in unknown:
                unknown[kind] = (len(problems), [])
                problems.append(None)
            unknown[kind][1].append((name, spec))
            continue
        if getattr(cls, "is_data", False):
            continue
        try:
            create_layer(spec, phase=_phase(spec.get("phase", phase), "layer phase"), dtype=dtype,
                         rng=np.random.default_rng(0))
        except ValueError as e:
            problems.append(str(e))
    for kind, (i, layers) in unknown.items():
        name, spec = layers[0]
        hint = f" (a data layer; {go_on_hint(spec)})" if is_input_layer(spec) else ""
        if len(layers) == 1:
            problems[i] = f"layer {name!r}: unknown layer type {kind!r}{hint}"
        else:
            names = ", ".join(repr(n) for n, _ in layers[:4])
            more = f" and {len(layers) - 4} more" if len(layers) > 4 else ""
            problems[i] = f"unknown layer type {kind!r} in {len(layers)} layers ({names}{more}){hint}"
    known = f"known: {', '.join(sorted(LAYER_TYPES))}"
    if len(problems) == 1:
        raise ValueError(problems[0] + (f" ({known})" if unknown else ""))
    if problems:
        raise ValueError(f"{len(problems)} problems: "
                         + "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
                         + (f" ({known})" if unknown else ""))
