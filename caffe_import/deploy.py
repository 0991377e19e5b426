"""Deploy derivation: the inference net of a train/test prototxt, as Caffe users write by hand.

Inference runtimes (OpenCV's dnn, onnxruntime after an export, hand-written ports) refuse loss
layers, label inputs and data layers.  :func:`derive_deploy` takes an upgraded NetParameter dict (what
:func:`caffe_import.read_prototxt` returns) and returns the deploy net, in five steps:

1. keep the layers of the TEST phase (include/exclude rules, as ``reference.Net`` applies them), and
   drop the rules;
2. drop the layers no inference runtime runs: every ``*Loss`` type, ``Accuracy``, ``Silence``;
3. replace each data layer (``Data``, ``ImageData``, ``HDF5Data``, ``MemoryData``, ``DummyData``,
   ``WindowData``, ``Python`` with no bottom) by an ``Input`` layer with its tops' shapes: from
   ``input_shapes`` when given, else from the layer itself where it states them (``DummyData``'s
   ``shape``, ``MemoryData``'s batch/channels/height/width); otherwise a ValueError asking for
   ``--input-shape``;
4. drop the tops of Input layers that nothing reads any more (the labels a loss consumed), and the
   Input layers left without tops;
5. drop ``loss_weight``, ``propagate_down`` and the net's ``force_backward``.

Example: LeNet's ``train_val`` (Data with a label top, ..., Accuracy, SoftmaxWithLoss) with
``input_shapes={"data": (1, 1, 28, 28)}`` becomes ``Input data (1,1,28,28)``, ..., ``ip2``.
"""

from __future__ import annotations

import copy

from .upgrade import upgrade_net

__all__ = ["derive_deploy", "DATA_TYPES", "DROPPED_TYPES", "is_dropped"]

DATA_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData", "Python",
              "AnnotatedData", "VideoData")
DROPPED_TYPES = ("Accuracy", "Silence")


def is_dropped(layer_type: str) -> bool:
    """True for the types a deploy net leaves out: ``*Loss``, Accuracy, Silence."""
    return layer_type.endswith("Loss") or layer_type in DROPPED_TYPES


def _listed(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _stated_shapes(layer: dict) -> list | None:
    """The top shapes a data layer states itself, or None."""
    kind = layer.get("type")
    tops = _listed(layer.get("top"))
    if kind == "DummyData":
        shapes = [list(s.get("dim", [])) for s in _listed(layer.get("dummy_data_param", {}).get("shape"))]
        if len(shapes) == 1 and len(tops) > 1:
            shapes = shapes * len(tops)
        return shapes if len(shapes) == len(tops) and all(shapes) else None
    if kind == "MemoryData":
        p = layer.get("memory_data_param", {})
        dims = [p.get(k) for k in ("batch_size", "channels", "height", "width")]
        if all(isinstance(d, int) and d > 0 for d in dims):
            return [dims, [dims[0]]][:len(tops)]
    return None


def derive_deploy(net: dict, input_shapes: dict | None = None) -> dict:
    """The deploy NetParameter dict of ``net`` (see the module docstring).  ``input_shapes``:
    ``{blob: shape}`` for data layers' tops (and to override Input shapes)."""
    from reference.net import layer_included

    net = upgrade_net(copy.deepcopy(net))
    shapes = {k: [int(d) for d in v] for k, v in (input_shapes or {}).items()}
    state = net.get("state", {})
    level, stages = int(state.get("level", 0)), tuple(state.get("stage", []))
    layers = []
    for layer in net.get("layer", []):
        if not layer_included(layer, "TEST", level, stages):
            continue
        layer = {k: v for k, v in layer.items()
                 if k not in ("include", "exclude", "loss_weight", "propagate_down", "phase")}
        kind = layer.get("type", "")
        if is_dropped(kind):
            continue
        if kind in DATA_TYPES and not layer.get("bottom"):
            layer = _as_input(layer, shapes)
        elif kind == "Input":
            tops = _listed(layer.get("top"))
            if any(t in shapes for t in tops):
                layer = _as_input(layer, shapes)
        layers.append(layer)
    read = {b for layer in layers for b in _listed(layer.get("bottom"))}
    kept = []
    for layer in layers:
        if layer.get("type") == "Input":
            for top in layer.pop("_unknown", []):
                if top in read:
                    raise ValueError(f"layer {layer.get('name')!r}: a data layer; its top {top!r} "
                                     f"is read by a deploy layer and has no shape in the prototxt: "
                                     f"give --input-shape {top}=N,C,H,W")
            tops = _listed(layer.get("top"))
            dims = _listed(layer.get("input_param", {}).get("shape"))
            if len(dims) == 1 and len(tops) > 1:
                dims = dims * len(tops)
            keep = [i for i, t in enumerate(tops) if t in read]
            if not keep:
                continue
            if len(keep) < len(tops):
                layer = dict(layer, top=[tops[i] for i in keep])
                if dims:
                    layer["input_param"] = {"shape": [dims[i] for i in keep]}
        kept.append(layer)
    out = {k: v for k, v in net.items() if k not in ("layer", "force_backward", "state")}
    out["layer"] = kept
    unknown = sorted(set(shapes) - {t for layer in kept if layer.get("type") == "Input"
                                    for t in _listed(layer.get("top"))}
                     - {t for layer in net.get("layer", []) for t in _listed(layer.get("top"))})
    if unknown:
        raise ValueError(f"--input-shape: {', '.join(unknown)} is not a blob of this net")
    return out


def _as_input(layer: dict, shapes: dict) -> dict:
    tops = _listed(layer.get("top"))
    stated = _stated_shapes(layer) if layer.get("type") != "Input" else None
    declared = _listed(layer.get("input_param", {}).get("shape"))
    if len(declared) == 1 and len(tops) > 1:
        declared = declared * len(tops)
    dims, unknown = [], []
    for i, top in enumerate(tops):
        if top in shapes:
            dims.append(shapes[top])
        elif stated is not None:
            dims.append(stated[i])
        elif layer.get("type") == "Input" and i < len(declared):
            dims.append(list(declared[i].get("dim", [])))
        elif i > 0:
            dims.append([1])          # a label top: dropped below; an error if something reads it
            unknown.append(top)
        else:
            raise ValueError(f"layer {layer.get('name')!r} ({layer.get('type')}): a data layer; its "
                             f"top {top!r} has no shape in the prototxt: give --input-shape "
                             f"{top}=N,C,H,W")
    out = {"name": layer.get("name", tops[0] if tops else "input"), "type": "Input", "top": tops,
           "input_param": {"shape": [{"dim": [int(d) for d in s]} for s in dims]}}
    if unknown:
        out["_unknown"] = unknown
    return out
