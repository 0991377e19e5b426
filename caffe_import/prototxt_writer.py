"""Protobuf text-format ("prototxt") writer: the inverse of :mod:`caffe_import.prototxt`.

``format_prototxt(x)`` writes a net definition as Caffe text; ``read_prototxt`` of that text gives
``x`` back (``read_prototxt(format_prototxt(x)) == x`` for any upgraded NetParameter dict ``x``)::

    text = format_prototxt(net)                       # a reference.Net: its name and layer dicts
    text = format_prototxt(read_prototxt("a.prototxt"))   # a NetParameter dict
    text = format_prototxt([{"name": "data", "type": "Input", ...}, ...], name="mine")
    write_prototxt(dense, "dense.prototxt", header="written by ...")   # atomically

Driven by :mod:`caffe_import.schema`, like both readers: fields are written in the dict's order
(a file read and written keeps its layout), sub-messages as ``name { ... }``, repeated fields once per
element, enums by NAME, bools as ``true``/``false``, ``float`` fields as the shortest decimal that
reads back to the same float32, ``double`` fields as Python's ``repr``, strings double-quoted with
C escapes (bytes outside printable ASCII as octal, as protobuf writes them).  A field the schema does
not know, a list for a non-repeated field or a value of the wrong kind is a ``ValueError`` naming the
layer and the field: nothing is written that could not be read back.  The econv extension fields
(``pooling_param { est pad_end }``, ``lrn_param { est }``) are in the schema; Caffe itself does not
know them.
"""

from __future__ import annotations

import copy
import io
import math
import numbers

import numpy as np

from . import schema
from .atomic import atomic_output

__all__ = ["format_prototxt", "write_prototxt"]

INDENT = "  "
_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def format_prototxt(layers_or_net, name=None, input_shapes=None, header=None) -> str:
    """The Caffe text of a net definition.

    ``layers_or_net``: a ``reference.Net`` (its ``name``, ``force_backward``, level/stages and the
    layer dicts it was built from), a NetParameter dict (``{"name": ..., "layer": [...]}``, as
    ``read_prototxt`` returns), or a list of layer dicts.  ``name`` replaces the net's name;
    ``input_shapes`` (``{input blob: shape}``) replaces the shapes of Input layers' tops;
    ``header`` (a str, lines allowed) is written first as ``#`` comments.
    """
    net = _net_dict(layers_or_net)
    if name is not None:
        net["name"] = str(name)
    if input_shapes:
        _set_input_shapes(net, input_shapes)
    out = []
    if header:
        out += [("# " + line).rstrip() for line in str(header).splitlines()]
    _message(net, "NetParameter", 0, out, "net")
    return "\n".join(out) + "\n"


def write_prototxt(layers_or_net, path_or_file, name=None, input_shapes=None, header=None) -> str:
    """Write :func:`format_prototxt`'s text to a path (atomically: a temporary file in the same
    folder, then a rename, so an interrupted write leaves no half-written file) or to an open text
    file.  Returns the text."""
    text = format_prototxt(layers_or_net, name=name, input_shapes=input_shapes, header=header)
    if isinstance(path_or_file, io.TextIOBase) or hasattr(path_or_file, "write"):
        path_or_file.write(text)
        return text
    with atomic_output(path_or_file) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


# ---- what to write ------------------------------------------------------------------------------

def _net_dict(obj) -> dict:
    if hasattr(obj, "specs") and hasattr(obj, "layer_names"):          # a reference.Net
        net = {"name": obj.name} if obj.name else {}
        if obj.force_backward:
            net["force_backward"] = True
        level, stages = obj.build_options.get("level", 0), obj.build_options.get("stages", ())
        if level or stages:
            net["state"] = {k: v for k, v in (("level", level), ("stage", list(stages))) if v}
        net["layer"] = copy.deepcopy(obj.specs)
        return net
    if isinstance(obj, dict):
        return copy.deepcopy(obj)
    if isinstance(obj, (list, tuple)):
        return {"layer": copy.deepcopy(list(obj))}
    raise ValueError(f"format_prototxt: expected a reference.Net, a NetParameter dict or a list of "
                     f"layer dicts, got {type(obj).__name__}")


def _set_input_shapes(net: dict, shapes: dict):
    left = dict(shapes)
    for layer in net.get("layer", []):
        if layer.get("type") != "Input":
            continue
        tops = list(layer.get("top", []))
        param = layer.setdefault("input_param", {})
        declared = list(param.get("shape", []))
        if len(declared) == 1 and len(tops) > 1:          # one shape for every top (Caffe's rule)
            declared = [copy.deepcopy(declared[0]) for _ in tops]
        for i, top in enumerate(tops):
            if top in left:
                declared += [{}] * (i + 1 - len(declared))
                declared[i] = {"dim": [int(d) for d in left.pop(top)]}
        param["shape"] = declared
    if left:
        raise ValueError(f"input_shapes: {sorted(left)} are not tops of Input layers")


# ---- text ---------------------------------------------------------------------------------------

def _where(where: str, msg: dict, message_name: str) -> str:
    if message_name in ("LayerParameter", "V1LayerParameter") and "name" in msg:
        return f"layer {msg['name']!r}"
    return where


def _message(msg: dict, message_name: str, depth: int, out: list, where: str):
    spec = schema.MESSAGES[message_name]
    if not isinstance(msg, dict):
        raise ValueError(f"{where}: a {message_name} must be a dict, got {type(msg).__name__}")
    where = _where(where, msg, message_name)
    pad = INDENT * depth
    for key, value in msg.items():
        if value is None:
            continue
        f = spec.by_name.get(key)
        if f is None:
            raise ValueError(f"{where}: {message_name} has no field {key!r}")
        here = f"{where} {key}" if depth else key
        if isinstance(value, (list, tuple, np.ndarray)):
            if not f.repeated:
                raise ValueError(f"{here}: {message_name}.{key} is not repeated, got a list {value!r}")
            items = list(value)
        else:
            items = [value]
        for item in items:
            if f.type == "message":
                if f.message == "BlobProto" and isinstance(item, np.ndarray):
                    from .encode import array_to_blob
                    item = array_to_blob(item)
                if isinstance(item, dict) and not item:
                    out.append(f"{pad}{key} {{}}")
                    continue
                out.append(f"{pad}{key} {{")
                _message(item, f.message, depth + 1, out, here)
                out.append(f"{pad}}}")
            else:
                out.append(f"{pad}{key}: {_scalar(f, item, here)}")


def _scalar(f, value, where: str) -> str:
    t = f.type
    if t in ("string", "bytes"):
        if isinstance(value, str):
            return _quote(value.encode("utf-8", "surrogateescape"))
        if isinstance(value, (bytes, bytearray)):
            return _quote(bytes(value))
        raise ValueError(f"{where}: expected a string, got {value!r}")
    if t == "bool":
        if isinstance(value, (bool, np.bool_)) or value in (0, 1):
            return "true" if value else "false"
        raise ValueError(f"{where}: expected a bool, got {value!r}")
    if t == "enum":
        if isinstance(value, str) and value in f.enum.values:
            return value
        if isinstance(value, numbers.Integral) and int(value) in f.enum.names:
            return f.enum.names[int(value)]
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(f.enum.values)}")
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if t in ("float", "double"):
        return _float(value, t)
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif float(value).is_integer():
        v = int(value)
    else:
        raise ValueError(f"{where}: expected an integer ({t}), got {value!r}")
    lo, hi = schema.INT_RANGES[t]
    if not lo <= v <= hi:
        raise ValueError(f"{where}: {v} is out of range for {t} ({lo} .. {hi})")
    return str(v)


def _float(value, t: str) -> str:
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if t == "double":
        return repr(x)
    with np.errstate(over="ignore"):
        x32 = np.float32(x)
    return str(x32) if np.isfinite(x32) else ("inf" if x32 > 0 else "-inf")


def _quote(raw: bytes) -> str:
    parts = []
    for b in raw:
        if b in _ESCAPES:
            parts.append(_ESCAPES[b])
        elif 32 <= b < 127:
            parts.append(chr(b))
        else:
            parts.append(f"\\{b:03o}")
    return '"' + "".join(parts) + '"'
