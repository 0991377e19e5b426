"""Fuzzing econv's readers and writers: structure-aware inputs, each run in an isolated child.

Formats (the targets each input goes to, as a file on disk):

- ``caffemodel``: ``read_caffemodel`` and ``read_weights`` on a binary NetParameter;
- ``prototxt``: ``read_prototxt`` (then ``load_net`` when it reads);
- ``solver``: ``read_solver`` and ``load_solver`` (inline ``net_param``);
- ``mean``: ``read_mean`` on a BlobProto; ``solverstate``: ``read_solverstate``;
- ``hdf5``: ``read_weights`` on Caffe HDF5 weights: byte flips aimed at the superblock, object
  headers and B-trees of real files, and hostile files built with h5py (link cycles, deep nesting,
  hard-link DAGs, huge declared shapes, never-written and compressed-bomb datasets, virtual
  datasets, external links and storage, odd dataset names and types);
- ``load_net``: ``load_net(prototxt, weights)`` with either file mutated;
- ``convert``: ``convert(caffemodel, out.h5)``; a success must read back equal to the source, a
  failure must leave no file behind.

Mutations of protobuf are field-aware: the message is parsed into a tree of fields (sub-messages
recognised when their bytes parse), a field's varint, tag, wire type, length or payload is changed,
fields are dropped, duplicated or inserted, and the tree is serialised again with consistent
lengths (sometimes followed by a raw byte mutation, which breaks them).  Text mutations work on
tokens and on numbers (replaced by boundary values such as 2147483647).

Isolation: inputs are made deterministically from ``(format, seed, index)``, so the parent sends
only that triple to a worker process, which builds the input itself and reports one outcome line.
A worker runs many inputs; it is replaced only after a crash or a hang.  Each worker runs with
``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` and no core files, and with ``ECONV_MAX_BYTES``
set below the address-space limit, so a read that the byte budget does not stop shows up as
"memory" rather than passing by luck.  Outcomes:

``ok``, ``FormatError``, ``ValueError`` (expected); ``leaked:<Type>`` (any other exception, or a
FormatError that does not name the file), ``memory`` (MemoryError), ``hang`` (over the wall
timeout), ``crash:<signal>`` (the worker died) -- none of which may occur.

    run(formats, n_per_format, seed=0, workers=2, timeout=20.0) -> Report
    make_input(fmt, seed, index) -> (files {role: bytes}, recipe str)

``scripts/fuzz.py`` runs the long campaign and writes ``docs/FUZZ.md``;
``tests/caffe_import/test_fuzz_suite.py`` runs a quick seeded subset and the regression files in
``tests/data/fuzz/``.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "caffe"
NETS = ("conv_pool", "fcn_skip", "misc", "v1_legacy")
REGRESSIONS = REPO / "tests" / "data" / "fuzz"
FORMATS = ("caffemodel", "prototxt", "solver", "mean", "solverstate", "hdf5", "load_net", "convert")
EXPECTED = ("ok", "FormatError", "ValueError")
SELFTEST = ("_crash", "_hang", "_memory", "_leak", "_unnamed")   # the harness's own check
FILE_ONLY = ("caffemodel", "mean", "solverstate", "hdf5", "convert")   # readers with no net
ADDRESS_SPACE = 2 << 30          # RLIMIT_AS of a worker
CHILD_BUDGET = 256 << 20         # ECONV_MAX_BYTES inside a worker
FILE_SIZE = 64 << 20             # RLIMIT_FSIZE of a worker
INTERESTING_INTS = (0, 1, 2, 3, 7, 127, 128, 255, 256, 4096, 65535, 2**31 - 1, 2**31, 2**32 - 1,
                    2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1)
INTERESTING_TEXT_NUMBERS = ("0", "-1", "1", "2147483647", "-2147483648", "4294967295",
                            "9223372036854775807", "99999999999999999999", "1e40", "-1e40",
                            "nan", "inf", "0x7fffffff", "0.5", "3", "65536", "017")


# ---- protobuf trees ------------------------------------------------------------------------------

def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def enc_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_tree(buf: bytes, start=0, end=None, depth=0):
    """A protobuf message as ``[[field number, wire type, payload], ...]``: payload an int
    (varint), bytes (fixed, or length-delimited that is not a message), or a list (a
    length-delimited payload that parses as a message).  ValueError when ``buf`` is not one."""
    end = len(buf) if end is None else end
    out, pos = [], start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        fnum, wire = key >> 3, key & 7
        if fnum == 0:
            raise ValueError("field 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            out.append([fnum, 0, value])
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ValueError("truncated")
            out.append([fnum, wire, bytes(buf[pos:pos + size])])
            pos += size
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ValueError("length")
            payload = bytes(buf[pos:pos + length])
            sub = None
            if depth < 8 and 0 < length <= 1 << 16:
                try:
                    sub = parse_tree(payload, 0, length, depth + 1)
                except ValueError:
                    sub = None
            out.append([fnum, 2, sub if sub is not None else payload])
            pos += length
        else:
            raise ValueError("wire type")
    return out


def serialize(tree) -> bytes:
    out = bytearray()
    for fnum, wire, payload in tree:
        out += enc_varint((fnum << 3) | wire)
        if isinstance(payload, list):
            body = serialize(payload)
            out += enc_varint(len(body)) + body
        elif isinstance(payload, int):
            out += enc_varint(payload)
        elif wire == 2:
            out += enc_varint(len(payload)) + payload
        else:
            out += payload
    return bytes(out)


def _all_nodes(tree, out=None):
    out = [] if out is None else out
    for node in tree:
        out.append((tree, node))
        if isinstance(node[2], list):
            _all_nodes(node[2], out)
    return out


def mutate_tree(rng, data: bytes) -> tuple[bytes, str]:
    """One field-aware mutation of a serialized message (see the module doc)."""
    try:
        tree = parse_tree(data)
    except ValueError:
        return mutate_bytes(rng, data)
    nodes = _all_nodes(tree)
    if not nodes:
        return mutate_bytes(rng, data)
    parent, node = nodes[int(rng.integers(len(nodes)))]
    kind = int(rng.integers(11))
    fnum, wire, payload = node
    if kind == 0:                                           # a boundary varint value
        value = int(rng.choice(INTERESTING_INTS))
        if rng.random() < 0.3:
            value = (-value) & ((1 << 64) - 1)
        node[1], node[2] = 0, value
        recipe = f"field {fnum} := varint {value}"
    elif kind == 1:                                         # another field number
        node[0] = int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 103, 104, 105,
                                  106, 117, 129, 137, 148, 2**29 - 1, int(rng.integers(1, 200))]))
        recipe = f"field {fnum} renumbered {node[0]}"
    elif kind == 2:                                         # another wire type, payload kept
        node[1] = int(rng.choice([w for w in (0, 1, 2, 5) if w != wire]))
        if node[1] == 0:
            node[2] = int(rng.integers(0, 1 << 20))
        elif node[1] == 2 and not isinstance(payload, (bytes, list)):
            node[2] = enc_varint(int(payload))
        elif node[1] in (1, 5):
            node[2] = bytes(8 if node[1] == 1 else 4)
        recipe = f"field {fnum} wire {wire} -> {node[1]}"
    elif kind == 3:                                         # drop the field
        parent.remove(node)
        recipe = f"drop field {fnum}"
    elif kind == 4:                                         # duplicate the field
        parent.insert(int(rng.integers(len(parent) + 1)), [fnum, wire, _copy(payload)])
        recipe = f"duplicate field {fnum}"
    elif kind == 5 and isinstance(payload, bytes):          # payload cut / grown
        cut = int(rng.integers(0, len(payload) + 1))
        node[2] = payload[:cut] if rng.random() < 0.6 else payload + payload[:cut]
        node[1] = 2 if wire == 2 else wire
        if wire != 2:
            node[2] = payload
        recipe = f"field {fnum} payload {len(payload)} -> {len(node[2])} bytes"
    elif kind == 6:                                         # insert a new field
        new = [int(rng.integers(1, 20)), int(rng.choice([0, 2, 5])), 0]
        new[2] = (int(rng.choice(INTERESTING_INTS)) if new[1] == 0 else
                  bytes(4) if new[1] == 5 else rng.bytes(int(rng.integers(0, 16))))
        parent.insert(int(rng.integers(len(parent) + 1)), new)
        recipe = f"insert field {new[0]} wire {new[1]}"
    elif kind == 7:                                         # random bytes as the payload
        node[1], node[2] = 2, rng.bytes(int(rng.integers(0, 40)))
        recipe = f"field {fnum} := {len(node[2])} random bytes"
    elif kind == 8 and isinstance(payload, list):           # a sub-message emptied or deepened
        if rng.random() < 0.5:
            node[2] = []
            recipe = f"field {fnum} emptied"
        else:
            inner = [[fnum, 2, _copy(payload)]]
            for _ in range(int(rng.integers(1, 150))):
                inner = [[fnum, 2, inner]]
            node[2] = inner
            recipe = f"field {fnum} nested deeper"
    elif kind == 9:                                         # fixed32 floats: NaN, inf, huge
        value = float(rng.choice([np.nan, np.inf, -np.inf, 3.4e38, 1e-45, -0.0]))
        node[1], node[2] = 5, struct.pack("<f", value)
        recipe = f"field {fnum} := float {value}"
    else:
        return mutate_bytes(rng, data)
    out = serialize(tree)
    if rng.random() < 0.15:                                 # and break a length, sometimes
        out, more = mutate_bytes(rng, out)
        recipe += "; " + more
    return out, recipe


def _copy(payload):
    return [[f, w, _copy(p)] for f, w, p in payload] if isinstance(payload, list) else payload


def mutate_bytes(rng, data: bytes) -> tuple[bytes, str]:
    """One byte-level mutation: truncation, bit flips, overwrites, inserted varints, spliced
    spans, random bytes (alone or after a valid prefix), extreme byte values."""
    kind = int(rng.integers(8))
    buf = bytearray(data)
    n = len(buf)
    if n == 0:
        return rng.bytes(int(rng.integers(0, 64))), "random bytes for an empty seed"
    if kind == 0:
        cut = int(rng.integers(0, n + 1))
        return bytes(buf[:cut]), f"truncate at {cut}"
    if kind == 1:
        flips = int(rng.integers(1, 9))
        for pos in rng.integers(0, n, flips):
            buf[pos] ^= 1 << int(rng.integers(8))
        return bytes(buf), f"flip {flips} bits"
    if kind == 2:
        pos = int(rng.integers(0, n))
        k = int(rng.integers(1, 12))
        buf[pos:pos + k] = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        return bytes(buf), f"overwrite {k} at {pos}"
    if kind == 3:
        pos = int(rng.integers(0, n + 1))
        ins = bytes([0xFF] * int(rng.integers(1, 12))) + bytes([int(rng.integers(0, 128))])
        return bytes(buf[:pos] + ins + buf[pos:]), f"insert varint at {pos}"
    if kind == 4:
        a, b = sorted(int(x) for x in rng.integers(0, n + 1, 2))
        if rng.random() < 0.5:
            return bytes(buf[:b] + buf[a:b] + buf[b:]), f"duplicate {a}:{b}"
        return bytes(buf[:a] + buf[b:]), f"drop {a}:{b}"
    if kind == 5:
        k = int(rng.integers(0, 600))
        return rng.integers(0, 256, k, dtype=np.uint8).tobytes(), f"random {k}"
    if kind == 6:
        cut = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, 64))
        return bytes(buf[:cut]) + rng.integers(0, 256, k, dtype=np.uint8).tobytes(), \
            f"prefix {cut} + random {k}"
    pos = int(rng.integers(0, n))
    buf[pos] = int(rng.choice([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(buf), f"extreme byte at {pos}"


# ---- text -----------------------------------------------------------------------------------------

TOKENS = ["{", "}", "<", ">", ":", ";", ",", "[", "]", "\n", " ", "#", '"', "'", "\\", "-",
          "0", "1", "-1", "1e40", "0x7fffffff", "99999999999", "3.5", "nan", "inf", "true",
          "layer", "layers", "name", "type", "input", "input_dim", "convolution_param",
          "pool", "MAX", "CONVOLUTION", "blobs", "dim", "shape", "\u00e9", "\x00", "\\x41",
          "'a\\'b'", "param", "lr_mult", "kernel_size", "include", "phase", "TRAIN",
          "num_output: 2147483647", "dim: 2147483647", "stride: 0", "pad: -1", "group: 0",
          "kernel_size: 0", "dilation: 9999", "bottom: 'data'", "top: 'data'",
          "type: 'Pooling'", "type: 'Deconvolution'", "type: 'Crop'", "type: 'Eltwise'",
          "type: 'Concat'", "type: 'Reshape'", "axis: -5", "axis: 7", "shape { dim: -1 }",
          "'\\377\\376'", "# \xff\xfe comment\n"]


def mutate_text(rng, text: str) -> tuple[bytes, str]:
    """1-3 text mutations (truncate, delete, insert a token, duplicate a span, replace a
    character, replace a number by a boundary value), then sometimes a non-UTF-8 byte in a
    comment or a string (which Caffe accepts) or anywhere (which it does not)."""
    import re
    steps = int(rng.choice([1, 1, 1, 2, 3]))
    recipe = []
    for _ in range(steps):
        n = len(text)
        kind = int(rng.choice([0, 1, 2, 3, 4, 5, 5, 5, 6]))     # numbers replaced most often
        pos = int(rng.integers(0, n + 1))
        if kind == 0:
            text = text[:pos]
            recipe.append(f"truncate {pos}")
        elif kind == 1:
            end = min(n, pos + int(rng.integers(1, 40)))
            text = text[:pos] + text[end:]
            recipe.append(f"delete {pos}:{end}")
        elif kind in (2, 3):
            tok = TOKENS[int(rng.integers(len(TOKENS)))]
            text = text[:pos] + tok + text[pos:]
            recipe.append(f"insert {tok!r} at {pos}")
        elif kind == 4:
            end = min(n, pos + int(rng.integers(1, 400)))
            text = text[:end] + text[pos:end] + text[end:]
            recipe.append(f"duplicate {pos}:{end}")
        elif kind == 5:
            numbers = list(re.finditer(r"(?<![A-Za-z_])[0-9]+(\.[0-9]+)?", text))
            if numbers:
                m = numbers[int(rng.integers(len(numbers)))]
                new = str(rng.choice(INTERESTING_TEXT_NUMBERS))
                text = text[:m.start()] + new + text[m.end():]
                recipe.append(f"number at {m.start()} := {new}")
        elif n:
            p = min(pos, n - 1)
            text = text[:p] + chr(int(rng.integers(32, 127))) + text[p + 1:]
            recipe.append(f"replace char {p}")
    data = text.encode("utf-8", "surrogatepass")
    r = rng.random()
    if r < 0.04 and data:
        p = int(rng.integers(len(data)))
        data = data[:p] + b"\xff" + data[p + 1:]
        recipe.append(f"byte 0xff at {p}")
    elif r < 0.08:
        data = b"# \xc3\x28 \xff latin-1 \xe9 comment\n" + data.replace(b'name: "', b'name: "\xe9\xff', 1)
        recipe.append("non-UTF-8 bytes in a comment and a name")
    return data, "; ".join(recipe)


LAYER_TYPE_NAMES = ("BatchNorm", "Concat", "Convolution", "Crop", "Deconvolution", "Dropout",
                    "Eltwise", "EuclideanLoss", "Flatten", "InnerProduct", "Input", "LRN", "Pooling",
                    "Power", "ReLU", "Reshape", "Scale", "Sigmoid", "Softmax", "SoftmaxWithLoss",
                    "Split", "TanH", "HDF5Data", "Data")     # no Python layer: it imports code


def _boundary_value(rng, f):
    """A boundary value for scalar field ``f`` of the schema, within its type's range."""
    from caffe_import import schema
    t = f.type
    if t in ("float", "double"):
        return float(rng.choice([0.0, -1.0, 1e-30, 1e30, -1e30, np.inf, -np.inf, np.nan, 0.5, 3.0]))
    if t == "bool":
        return bool(rng.integers(2))
    if t == "enum":
        return str(rng.choice(list(f.enum.values)))
    if t in ("string", "bytes"):
        return str(rng.choice(["", "data", "x" * 300, "a/0", "missing/list.txt", "\udcff"]))
    lo, hi = schema.INT_RANGES[t]
    value = int(rng.choice([0, 1, 2, 3, -1, -2, 7, 1000, 65536, 2**31 - 1, 2**31, 2**32 - 1,
                            -(2**31), 2**62, 2**63 - 1]))
    return min(max(value, lo), hi)


def _random_field_value(rng, f):
    value = _boundary_value(rng, f)
    if f.repeated:
        return [value if i == 0 else _boundary_value(rng, f) for i in range(int(rng.integers(0, 4)))]
    return value


def _param_section(rng, layer):
    from caffe_import import schema
    present = [k for k in layer if k.endswith("_param") and isinstance(layer[k], dict)]
    if present and rng.random() < 0.7:
        return str(rng.choice(present))
    sections = [n for n, f in schema.MESSAGES["LayerParameter"].by_name.items()
                if f.type == "message" and n.endswith("_param")]
    return str(rng.choice(sections))


def mutate_net(rng, text: str) -> tuple[bytes, str]:
    """A field-aware mutation of a net: a layer parameter (from the schema) set to a boundary
    value, a layer's type changed, its bottoms/tops rewired, an input shape made extreme, layers
    duplicated, dropped or reordered, parameters shared; written back with format_prototxt."""
    import caffe_import as ci
    from caffe_import import schema
    net = ci.read_prototxt(text)
    layers = net["layer"]
    if not layers:
        return mutate_text(rng, text)
    i = int(rng.integers(len(layers)))
    layer = layers[i]
    kind = int(rng.integers(8))
    if kind <= 2:                                           # a parameter field
        section = _param_section(rng, layer)
        msg = schema.MESSAGES[schema.MESSAGES["LayerParameter"].by_name[section].message]
        scalars = [f for f in msg.by_name.values() if f.type != "message"]
        if not scalars:
            return mutate_text(rng, text)
        f = scalars[int(rng.integers(len(scalars)))]
        value = _random_field_value(rng, f)
        layer.setdefault(section, {})[f.name] = value
        recipe = f"layer {i} {section}.{f.name} := {value!r}"
    elif kind == 3:
        layer["type"] = str(rng.choice(LAYER_TYPE_NAMES))
        recipe = f"layer {i} type := {layer['type']}"
    elif kind == 4:                                         # rewire
        names = [t for other in layers for t in other.get("top", [])] + ["nowhere"]
        key = "bottom" if rng.random() < 0.5 else "top"
        layer[key] = [str(rng.choice(names)) for _ in range(int(rng.integers(0, 4)))]
        recipe = f"layer {i} {key} := {layer[key]}"
    elif kind == 5:                                         # input shapes
        dims = [int(rng.choice([0, 1, 2, 3, 64, 4096, 65536, 2**31 - 1, -1]))
                for _ in range(int(rng.integers(0, 6)))]
        inputs = [other for other in layers if other.get("type") == "Input"] or [layer]
        inputs[0]["input_param"] = {"shape": [{"dim": dims}]}
        recipe = f"input shape := {dims}"
    elif kind == 6:                                         # duplicate, drop or move a layer
        op = int(rng.integers(3))
        if op == 0:
            layers.insert(int(rng.integers(len(layers) + 1)), _copy_dict(layer))
        elif op == 1:
            layers.pop(i)
        else:
            layers.insert(int(rng.integers(len(layers) + 1)), layers.pop(i))
        recipe = f"layer {i} {['duplicated', 'dropped', 'moved'][op]}"
    else:                                                   # shared / odd param specs
        spec = {"name": str(rng.choice(["shared", "w"])), "lr_mult": float(rng.choice([0, 1, -1])),
                "share_mode": str(rng.choice(["STRICT", "PERMISSIVE"]))}
        layer["param"] = [dict(spec) for _ in range(int(rng.integers(0, 4)))]
        recipe = f"layer {i} param := {layer['param']}"
    try:
        out = ci.format_prototxt(net)
    except ValueError as exc:                               # a value the writer refuses
        return mutate_text(rng, text)[0], f"{recipe} (unwritable: {exc}); text mutation instead"
    return out.encode("utf-8", "surrogateescape"), recipe


def mutate_solver(rng, text: str) -> tuple[bytes, str]:
    """A field-aware solver mutation: one top-level SolverParameter scalar (from the schema) set
    to a boundary value, replacing the field where the text has it."""
    import re
    from caffe_import import schema
    from caffe_import.prototxt_writer import _scalar
    fields = [f for f in schema.MESSAGES["SolverParameter"].by_name.values() if f.type != "message"
              and not f.name.startswith(("net", "train_net", "test_net"))]
    f = fields[int(rng.integers(len(fields)))]
    value = _random_field_value(rng, f)
    values = value if isinstance(value, list) else [value]
    try:
        lines = "".join(f"{f.name}: {_scalar(f, v, f.name)}\n" for v in values)
    except ValueError:
        return mutate_text(rng, text)
    text = re.sub(rf"(?<![A-Za-z_]){f.name}: (\"[^\"]*\"|\S+)", "", text,
                  count=0 if f.repeated else 1)
    return (lines + text).encode("utf-8", "surrogateescape"), f"solver {f.name} := {value!r}"


def _copy_dict(obj):
    if isinstance(obj, dict):
        return {k: _copy_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy_dict(v) for v in obj]
    return obj


# ---- seeds -----------------------------------------------------------------------------------------

_SEED_CACHE: dict = {}


def _fixture(name: str, file: str) -> bytes:
    return (FIXTURES / name / file).read_bytes()


def _encode(obj, message):
    import caffe_import as ci
    return ci.encode(obj, message)


V1_NET = """name: "old" input: "data" input_dim: 1 input_dim: 3 input_dim: 9 input_dim: 9
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 2 kernel_size: 3 stride: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""
V0_NET = """name: "v0" input: "data" input_dim: 1 input_dim: 3 input_dim: 5 input_dim: 5
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 } bottom: "data" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
"""


def seeds(fmt: str) -> list:
    """The valid inputs mutations start from, per format (``[{role: bytes}]``)."""
    if fmt in _SEED_CACHE:
        return _SEED_CACHE[fmt]
    import caffe_import as ci
    out = []
    if fmt in ("caffemodel", "convert"):
        out = [{"main": _fixture(n, "weights.caffemodel")} for n in NETS]
        v1 = ci.prototxt.parse(V1_NET)
        v1["layers"][0]["blobs"] = [
            {"num": 2, "channels": 3, "height": 3, "width": 3,
             "data": np.linspace(-1, 1, 54, dtype=np.float32)},
            {"num": 1, "channels": 1, "height": 1, "width": 2, "double_data": np.ones(2)}]
        out.append({"main": _encode(v1, "NetParameter")})
        v0 = ci.prototxt.parse(V0_NET)
        v0["layers"][0]["layer"]["blobs"] = [
            {"num": 4, "channels": 3, "height": 3, "width": 3, "data": np.ones(108, np.float32)}]
        out.append({"main": _encode(v0, "NetParameter")})
    elif fmt == "prototxt":
        out = [{"main": _fixture(n, "net.prototxt")} for n in NETS]
        out += [{"main": V1_NET.encode()}, {"main": V0_NET.encode()}]
    elif fmt == "solver":
        net = _fixture("conv_pool", "net.prototxt").decode()
        out = [{"main": ('base_lr: 0.01 lr_policy: "step" gamma: 0.1 stepsize: 10 momentum: 0.9\n'
                         'weight_decay: 0.0005 max_iter: 100 test_iter: 1 test_interval: 10\n'
                         'solver_type: SGD iter_size: 2\nnet_param {\n' + net + '\n}\n').encode()},
               {"main": ('base_lr: 0.1 lr_policy: "multistep" stepvalue: 5 stepvalue: 9 '
                         'type: "SGD" clip_gradients: 10\ntrain_net_param {\n' + net + '\n}\n'
                         'train_state { level: 1 stage: "a" }\n').encode()}]
    elif fmt == "mean":
        out = [{"main": _fixture("mean", "mean.binaryproto")},
               {"main": _encode({"shape": {"dim": [3, 2, 2]},
                                 "data": np.arange(12, dtype=np.float32)}, "BlobProto")},
               {"main": _encode({"num": 1, "channels": 2, "height": 1, "width": 2,
                                 "double_data": np.arange(4.0)}, "BlobProto")}]
    elif fmt == "solverstate":
        out = [{"main": _encode({"iter": 3, "learned_net": "x.caffemodel", "current_step": 1,
                                 "history": [{"shape": {"dim": [2, 2]},
                                              "data": np.ones(4, np.float32)},
                                             {"num": 1, "channels": 1, "height": 1, "width": 3,
                                              "data": np.ones(3, np.float32)}]},
                                "SolverState")}]
    elif fmt == "hdf5":
        out = [{"main": _fixture(n, "weights.caffemodel.h5")} for n in NETS
               if (FIXTURES / n / "weights.caffemodel.h5").exists()]
    elif fmt == "load_net":
        for n in NETS:
            proto = _fixture(n, "net.prototxt")
            out.append({"main": proto, "weights": _fixture(n, "weights.caffemodel")})
            if (FIXTURES / n / "weights.caffemodel.h5").exists():
                out.append({"main": proto, "weights": _fixture(n, "weights.caffemodel.h5")})
    _SEED_CACHE[fmt] = out
    return out


# ---- HDF5 ----------------------------------------------------------------------------------------

_HDF5_MARKS = (b"\x89HDF", b"OHDR", b"OCHK", b"TREE", b"HEAP", b"SNOD", b"BTHD", b"BTIN", b"BTLF",
               b"FRHP", b"FHDB", b"FHIB", b"GCOL", b"FSHD", b"FSSE")


def mutate_hdf5_bytes(rng, data: bytes) -> tuple[bytes, str]:
    """Byte flips aimed at HDF5 metadata: the superblock and the structures found by their
    signatures (object headers, B-trees, heaps, symbol nodes), else anywhere."""
    buf = bytearray(data)
    marks = [i for m in _HDF5_MARKS for i in _find_all(data, m)]
    if marks and rng.random() < 0.8:
        base = int(rng.choice(marks))
        span = int(rng.choice([8, 16, 48, 96, 256]))
        flips = int(rng.integers(1, 4))
        where = []
        for _ in range(flips):
            pos = min(len(buf) - 1, base + int(rng.integers(0, span)))
            if rng.random() < 0.5:
                buf[pos] ^= 1 << int(rng.integers(8))
            else:
                buf[pos] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
            where.append(pos)
        return bytes(buf), f"metadata bytes {where} near {data[base:base + 4]!r}@{base}"
    return mutate_bytes(rng, data)


def _find_all(data: bytes, mark: bytes):
    i = data.find(mark)
    while i >= 0:
        yield i
        i = data.find(mark, i + 1)


HOSTILE_HDF5 = ("cycle", "deep", "dag", "huge_shape", "never_written", "bomb_chunk", "virtual_self",
                "virtual_other", "external_link", "external_storage", "soft_link", "name_big_index",
                "name_00", "name_unicode_digit", "name_plus", "name_space", "string_dataset",
                "compound_dataset", "vlen_dataset", "reference_dataset", "scalar_dataset",
                "data_is_dataset", "no_data", "user_block", "big_endian", "float16", "int_dataset",
                "many_links", "named_datatype", "bool_enum", "unicode_name", "wide_chunk",
                "zero_dim_overflow", "empty_layer", "float128")


def deflated_zeros(nbytes: int) -> bytes:
    """A zlib stream of ``nbytes`` zero bytes (a multiple of 1 MiB), made without compressing them
    all: after a full flush zlib's output for the same input repeats exactly, so one flushed 1 MiB
    segment is repeated and the Adler-32 of n zeros, ((n mod 65521) << 16) | 1, appended."""
    import zlib
    step = 1 << 20
    if nbytes % step:
        raise ValueError("a multiple of 1 MiB")
    c = zlib.compressobj(9)
    zeros = bytes(step)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    segment = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush(zlib.Z_FINISH)[:-4]
    if first[2:] != segment:
        raise RuntimeError("zlib's flushed output does not repeat")
    adler = ((nbytes % 65521) << 16) | 1
    return first[:2] + segment * (nbytes // step) + tail + struct.pack(">I", adler)


def hostile_hdf5(kind: str, rng, tmp: str) -> bytes:
    """A hostile (or odd but valid) Caffe HDF5 weights file of the given kind, as bytes."""
    import h5py
    path = os.path.join(tmp, f"hostile-{kind}.h5")
    opts = {"userblock_size": 512} if kind == "user_block" else {}
    with h5py.File(path, "w", **opts) as f:
        data = f.create_group("data") if kind not in ("data_is_dataset", "no_data") else None
        if kind == "cycle":
            g = data.create_group("a")
            g["0"] = np.ones(3, np.float32)
            g["back"] = data
        elif kind == "deep":
            g = data
            for i in range(int(rng.integers(40, 400))):
                g = g.create_group("g")
            g["0"] = np.ones(1, np.float32)
        elif kind == "dag":                 # 2^depth paths through 2*depth groups
            g = data.create_group("l0")
            g["0"] = np.ones(1, np.float32)
            for i in range(1, int(rng.integers(20, 40))):
                nxt = data.create_group(f"n{i}")
                g["x"] = nxt
                g["y"] = nxt
                g = nxt
        elif kind == "huge_shape":
            data.create_group("a").create_dataset("0", shape=(2**31,), dtype="f4")
        elif kind == "never_written":
            data.create_group("a").create_dataset("0", shape=(int(rng.integers(1, 2**20)),),
                                                  dtype="f4")
        elif kind == "bomb_chunk":       # 512 MiB of zeros in one deflated chunk of ~500 KB
            d = data.create_group("a").create_dataset(
                "0", shape=(2**27,), dtype="f4", chunks=(2**27,), compression="gzip")
            d.id.write_direct_chunk((0,), deflated_zeros(2**29))
        elif kind == "wide_chunk":       # 4 floats in a dataset whose one chunk holds 2^27
            d = data.create_group("a").create_dataset(
                "0", shape=(4,), maxshape=(None,), dtype="f4", chunks=(2**27,),
                compression="gzip")
            d.id.write_direct_chunk((0,), deflated_zeros(2**29))
        elif kind in ("virtual_self", "virtual_other"):
            layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
            target = "." if kind == "virtual_self" else "missing-other-file.h5"
            layout[:] = h5py.VirtualSource(target, "/data/a/0", shape=(4,))
            data.create_group("a").create_virtual_dataset("0", layout, fillvalue=0)
        elif kind == "external_link":
            data["a"] = h5py.ExternalLink("/etc/passwd-not-hdf5", "/data")
        elif kind == "external_storage":
            data.create_group("a").create_dataset("0", shape=(4,), dtype="f4",
                                                  external=[("raw-outside.bin", 0, 16)])
        elif kind == "soft_link":
            data.create_group("a")["0"] = np.ones(2, np.float32)
            data["b"] = h5py.SoftLink("/data/a")
        elif kind == "name_big_index":
            data.create_group("a")["100000000"] = np.ones(1, np.float32)
        elif kind == "name_00":
            g = data.create_group("a")
            g["0"] = np.ones(1, np.float32)
            g["00"] = np.zeros(1, np.float32)
        elif kind == "name_unicode_digit":
            data.create_group("a")["\u0661"] = np.ones(1, np.float32)      # ARABIC-INDIC ONE
        elif kind == "name_plus":
            data.create_group("a")["+1"] = np.ones(1, np.float32)
        elif kind == "name_space":
            data.create_group("a")[" 0"] = np.ones(1, np.float32)
        elif kind == "string_dataset":
            data.create_group("a")["0"] = np.array([b"abc", b"de"])
        elif kind == "compound_dataset":
            data.create_group("a")["0"] = np.zeros(2, dtype=[("x", "f4"), ("y", "i4")])
        elif kind == "vlen_dataset":
            d = data.create_group("a").create_dataset("0", (2,), dtype=h5py.vlen_dtype("f4"))
            d[0] = np.ones(3, np.float32)
        elif kind == "reference_dataset":
            d = data.create_group("a").create_dataset("0", (1,), dtype=h5py.ref_dtype)
            d[0] = data.ref
        elif kind == "scalar_dataset":
            data.create_group("a")["0"] = np.float32(3.0)
        elif kind == "data_is_dataset":
            f["data"] = np.ones(3, np.float32)
        elif kind == "no_data":
            f.create_group("weights")
        elif kind == "user_block":
            data.create_group("a")["0"] = np.ones(2, np.float32)
        elif kind == "big_endian":
            data.create_group("a")["0"] = np.arange(6, dtype=">f4").reshape(2, 3)
        elif kind == "float16":
            data.create_group("a")["0"] = np.arange(6, dtype="f2")
        elif kind == "float128":
            data.create_group("a")["0"] = np.arange(2, dtype=np.longdouble)
        elif kind == "int_dataset":
            data.create_group("a")["0"] = np.arange(6, dtype="i8")
        elif kind == "bool_enum":
            data.create_group("a")["0"] = np.array([True, False])
        elif kind == "many_links":
            g = data.create_group("a")
            for i in range(int(rng.integers(100, 2000))):
                g.create_group(f"x{i}")
        elif kind == "named_datatype":
            data.create_group("a")
            data["a"]["t"] = np.dtype("f4")
        elif kind == "unicode_name":
            data.create_group("\u00e9t\u00e9/\u4e2d")["0"] = np.ones(1, np.float32)
        elif kind == "zero_dim_overflow":
            data.create_group("a").create_dataset("0", shape=(0, 2**40, 2**40), dtype="f4")
        elif kind == "empty_layer":
            data.create_group("relu")
            data.create_group("conv")["0"] = np.ones((1, 1, 1, 1), np.float32)
    blob = Path(path).read_bytes()
    os.unlink(path)
    return blob


# ---- inputs ----------------------------------------------------------------------------------------

HOSTILE_NETS = (
    "layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n"
    "layer { name: 'c' type: 'Convolution' bottom: 'd' top: 'c' "
    "convolution_param { num_output: 2147483647 kernel_size: 3 } }",
    "layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 100000 dim: 100000 "
    "dim: 100000 dim: 100000 } } }",
    "layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 1 dim: 4 } } }\n"
    "layer { name: 'ip' type: 'InnerProduct' bottom: 'd' top: 'ip' "
    "inner_product_param { num_output: 1000000000 } }",
    "layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }\n"
    "layer { name: 'dc' type: 'Deconvolution' bottom: 'd' top: 'dc' "
    "convolution_param { num_output: 1 kernel_size: 3 stride: 2000000000 } }",
    "layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 0 dim: 3 dim: 4 dim: 4 } } }\n"
    "layer { name: 'c' type: 'Convolution' bottom: 'd' top: 'c' "
    "convolution_param { num_output: 2 kernel_size: 3 } }",
    "layer { name: '\xe9\xff' type: 'Input' top: 'd' input_param { shape { dim: 1 } } } # \xff\n",
)

HOSTILE_MODELS = ("name_collision", "name_collision_deep", "bad_names", "nul_name",
                  "non_utf8_name", "zero_dim_overflow", "huge_count", "dup_name")


def hostile_caffemodel(kind: str, rng) -> bytes:
    """A caffemodel whose layer names or blob shapes are hostile to ``convert``."""
    ones = {"shape": {"dim": [2]}, "data": np.ones(2, np.float32)}
    if kind == "name_collision":
        layers = [{"name": "a", "type": "Bias", "blobs": [ones]}, {"name": "a/0", "type": "ReLU"}]
    elif kind == "name_collision_deep":
        layers = [{"name": "a", "type": "Bias", "blobs": [ones]},
                  {"name": "a/0/b", "type": "Bias", "blobs": [ones]}]
    elif kind == "bad_names":
        layers = [{"name": str(rng.choice(["", "/", "a//b", "./x", "..", "a/."])), "type": "ReLU"}]
    elif kind == "nul_name":
        layers = [{"name": "a\x00b", "type": "Bias", "blobs": [ones]}]
    elif kind == "non_utf8_name":
        layers = [{"name": b"l\xff\xfe".decode("utf-8", "surrogateescape"), "type": "Bias",
                   "blobs": [ones]}]
    elif kind == "zero_dim_overflow":
        layers = [{"name": "a", "type": "Bias",
                   "blobs": [{"shape": {"dim": [0, 2**40, 2**40]}}]}]
    elif kind == "huge_count":
        layers = [{"name": "a", "type": "Bias", "blobs": [{"shape": {"dim": [2**31, 2**31]}}]}]
    else:
        layers = [{"name": "a", "type": "Bias", "blobs": [ones]}, {"name": "a", "type": "ReLU"}]
    return _encode({"name": "hostile", "layer": layers}, "NetParameter")


def make_input(fmt: str, seed: int, index: int, tmp: str | None = None) -> tuple[dict, str]:
    """Input ``index`` of ``fmt`` for campaign ``seed``: ``({role: bytes}, recipe)``;
    deterministic, so a worker and the parent make the same one."""
    if fmt in SELFTEST:
        return {"main": b""}, f"self-test {fmt}"
    rng = np.random.default_rng([seed, FORMATS.index(fmt), index])
    pool = seeds(fmt)
    base = dict(pool[index % len(pool)]) if pool else {}
    r = rng.random()
    if fmt in ("caffemodel", "mean", "solverstate", "convert"):
        if fmt == "convert" and r < 0.05:
            kind = HOSTILE_MODELS[index % len(HOSTILE_MODELS)]
            return {"main": hostile_caffemodel(kind, rng)}, f"hostile model {kind}"
        mutate = mutate_tree if r < 0.6 else mutate_bytes
        data, recipe = mutate(rng, base["main"])
        return {"main": data}, recipe
    if fmt in ("prototxt", "solver"):
        if fmt == "prototxt" and r < 0.03:
            k = index % len(HOSTILE_NETS)
            return {"main": HOSTILE_NETS[k].encode("latin-1")}, f"hostile net {k}"
        if r < 0.5:
            mutate = mutate_net if fmt == "prototxt" else mutate_solver
            data, recipe = mutate(rng, base["main"].decode("utf-8"))
            return {"main": data}, fmt + ": " + recipe
        data, recipe = mutate_text(rng, base["main"].decode("utf-8"))
        return {"main": data}, recipe
    if fmt == "hdf5":
        if r < 0.2:
            kind = HOSTILE_HDF5[index % len(HOSTILE_HDF5)]
            made = tempfile.mkdtemp() if tmp is None else tmp
            try:
                return {"main": hostile_hdf5(kind, rng, made)}, f"hostile hdf5 {kind}"
            finally:
                if tmp is None:
                    shutil.rmtree(made, ignore_errors=True)
        data, recipe = mutate_hdf5_bytes(rng, base["main"])
        return {"main": data}, recipe
    if fmt == "load_net":
        if r < 0.45:
            mutate = mutate_net if r < 0.3 else mutate_text
            data, recipe = mutate(rng, base["main"].decode("utf-8"))
            return {"main": data, "weights": base["weights"]}, "prototxt: " + recipe
        weights = base["weights"]
        if weights.startswith(b"\x89HDF"):
            data, recipe = mutate_hdf5_bytes(rng, weights)
        else:
            data, recipe = (mutate_tree if r < 0.8 else mutate_bytes)(rng, weights)
        return {"main": base["main"], "weights": data}, "weights: " + recipe
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


# ---- targets (run in a worker) -------------------------------------------------------------------

def _target(fmt: str, paths: dict, tmp: str):
    import caffe_import as ci
    main = paths["main"]
    if fmt in SELFTEST:
        _selftest(fmt)
    elif fmt == "caffemodel":
        ci.read_caffemodel(main)
        ci.read_weights(main)
    elif fmt == "prototxt":
        ci.read_prototxt(main)
        ci.load_net(main)
    elif fmt == "solver":
        ci.read_solver(main)
        ci.load_solver(main)
    elif fmt == "mean":
        ci.read_mean(main)
    elif fmt == "solverstate":
        ci.read_solverstate(main)
    elif fmt == "hdf5":
        ci.read_weights(main)
    elif fmt == "load_net":
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci.load_net(main, paths["weights"])
    elif fmt == "convert":
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, "converted.h5")
        try:
            ci.convert(main, out)
        except BaseException:
            left = os.listdir(out_dir)
            if left:
                raise AssertionError(f"convert failed and left {left}") from None
            raise
        try:
            back = ci.read_weights(out)
            src = ci.read_weights(main)
            if sorted(back) != sorted(src) or any(
                    len(back[k]) != len(src[k]) or any(
                        (a is None) != (b is None) or (a is not None and not np.array_equal(
                            a, b, equal_nan=True)) for a, b in zip(back[k], src[k]))
                    for k in src):
                raise AssertionError("convert's output does not read back as the source")
        except ci.FormatError as exc:
            raise AssertionError(f"convert's output does not read back: {exc}") from None
        finally:
            os.unlink(out)


def _selftest(fmt: str):
    """Misbehaviour on purpose, to show that the harness sees each kind of finding."""
    if fmt == "_crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fmt == "_hang":
        time.sleep(3600)
    elif fmt == "_memory":
        np.ones(ADDRESS_SPACE // 8, np.float64)      # over RLIMIT_AS: MemoryError
    elif fmt == "_leak":
        raise KeyError("leaked")
    elif fmt == "_unnamed":
        import caffe_import as ci
        raise ci.FormatError("no file named")


def classify(fmt: str, files: dict, tmp: str) -> tuple[str, str]:
    """Run one input in this process: (outcome, detail)."""
    import caffe_import as ci
    paths = {}
    for role, data in files.items():
        p = os.path.join(tmp, f"input.{role}")
        with open(p, "wb") as fh:
            fh.write(data)
        paths[role] = p
    try:
        _target(fmt, paths, tmp)
        return "ok", ""
    except ci.FormatError as exc:
        if not any(p in str(exc) for p in paths.values()):
            return "leaked:FormatError-without-file", str(exc)[:300]
        return "FormatError", str(exc)[:300]
    except MemoryError as exc:
        return "memory", str(exc)[:300]
    except ValueError as exc:
        if fmt in FILE_ONLY:                    # no net involved: only FormatError is right
            return "leaked:ValueError", str(exc)[:300]
        return "ValueError", str(exc)[:300]
    except RecursionError as exc:
        return "leaked:RecursionError", str(exc)[:300]
    except Exception as exc:                    # noqa: BLE001 - what the fuzzer looks for
        return f"leaked:{type(exc).__name__}", str(exc)[:300]


def worker_main() -> None:
    """A worker: set limits, then for each ``fmt seed index`` line on stdin print one JSON line."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                                # anything else printed goes to stderr
    sys.stdout = sys.stderr
    import caffe_import  # noqa: F401  (import cost paid once, before the first input)
    import h5py  # noqa: F401
    import reference  # noqa: F401
    tmp = tempfile.mkdtemp(prefix="econv-fuzz-")
    os.chdir(tmp)                    # file names inside a fuzzed net resolve in the sandbox
    try:
        for line in sys.stdin:
            parts = line.split()
            if parts[0] == "file":
                fmt, folder, case = parts[1], parts[2], parts[3]
                files = {p.suffix[1:]: p.read_bytes() for p in Path(folder).glob(case + ".*")}
            else:
                fmt, seed, index = parts[0], int(parts[1]), int(parts[2])
                try:
                    files, _ = make_input(fmt, seed, index, tmp)
                except Exception as exc:     # noqa: BLE001 - reported, not a target's fault
                    out.write(json.dumps({"outcome": "harness-error", "rss_kb": 0, "seconds": 0,
                                          "detail": f"{type(exc).__name__}: {exc}"}) + "\n")
                    continue
            start = time.perf_counter()
            outcome, detail = classify(fmt, files, tmp)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out.write(json.dumps({"outcome": outcome, "detail": detail, "rss_kb": rss,
                                  "seconds": time.perf_counter() - start}) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the parent ------------------------------------------------------------------------------------

@dataclass
class Result:
    fmt: str
    job: tuple
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    results: list = field(default_factory=list)
    max_rss_kb: dict = field(default_factory=dict)
    wall: float = 0.0

    def findings(self) -> list:
        return [r for r in self.results if r.outcome not in EXPECTED]

    def table(self) -> dict:
        """``{format: {outcome: count}}``."""
        out: dict = {}
        for r in self.results:
            row = out.setdefault(r.fmt, {})
            row[r.outcome] = row.get(r.outcome, 0) + 1
        return out

    def max_seconds(self) -> dict:
        out: dict = {}
        for r in self.results:
            out[r.fmt] = max(out.get(r.fmt, 0.0), r.seconds)
        return out


class _Worker:
    def __init__(self, env):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
             "from tests.fuzz_harness import worker_main; worker_main()", str(REPO)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            text=True, bufsize=1, preexec_fn=_child_setup)
        self.job = None
        self.started = 0.0

    def send(self, job):
        self.job, self.started = job, time.monotonic()
        self.proc.stdin.write(" ".join(str(x) for x in job) + "\n")
        self.proc.stdin.flush()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _child_setup():
    os.setpgrp()                          # so a hang can be killed with its children
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _jobs(formats, n, seed):
    for index in range(n):                # interleaved, so every format progresses together
        for fmt in formats:
            yield (fmt, seed, index)


def run(formats=FORMATS, n_per_format=100, seed=0, workers=2, timeout=20.0, jobs=None,
        progress=None) -> Report:
    """Run ``n_per_format`` inputs of each format (or the given ``jobs``) in ``workers``
    isolated worker processes; returns the Report.  ``progress``: a callable(done, total)."""
    env = dict(os.environ, ECONV_MAX_BYTES=str(CHILD_BUDGET), PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    todo = list(jobs) if jobs is not None else list(_jobs(formats, n_per_format, seed))
    total = len(todo)
    todo.reverse()
    report = Report()
    start = time.monotonic()
    pool = [_Worker(env) for _ in range(max(1, min(workers, total)))]
    try:
        while todo or any(w.job for w in pool):
            for w in pool:
                if w.job is None and todo:
                    w.send(todo.pop())
            busy = [w for w in pool if w.job is not None]
            now = time.monotonic()
            wait = max(0.0, min(w.started + timeout - now for w in busy))
            ready, _, _ = select.select([w.proc.stdout for w in busy], [], [], wait)
            for i, w in enumerate(pool):
                if w.job is None:
                    continue
                fmt = w.job[0] if w.job[0] != "file" else w.job[1]
                if w.proc.stdout in ready:
                    line = w.proc.stdout.readline()
                    if line:
                        msg = json.loads(line)
                        report.results.append(Result(fmt, w.job, msg["outcome"], msg["detail"],
                                                     msg["seconds"]))
                        report.max_rss_kb[fmt] = max(report.max_rss_kb.get(fmt, 0), msg["rss_kb"])
                        w.job = None
                        continue
                    code = w.proc.wait()
                    name = signal.Signals(-code).name if code < 0 else f"exit {code}"
                    report.results.append(Result(fmt, w.job, f"crash:{name}",
                                                 seconds=time.monotonic() - w.started))
                    pool[i] = _Worker(env)
                elif time.monotonic() - w.started > timeout:
                    w.kill()
                    report.results.append(Result(fmt, w.job, "hang", f"over {timeout} s",
                                                 time.monotonic() - w.started))
                    pool[i] = _Worker(env)
            if progress is not None:
                progress(len(report.results), total)
    finally:
        for w in pool:
            try:
                w.proc.stdin.close()
            except OSError:
                pass
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.kill()
    report.wall = time.monotonic() - start
    return report


def regression_cases():
    """``[(format, folder, case)]`` for the files kept in tests/data/fuzz/<format>/<case>.<role>."""
    cases = []
    if REGRESSIONS.is_dir():
        for folder in sorted(p for p in REGRESSIONS.iterdir() if p.is_dir()):
            for case in sorted({p.stem for p in folder.iterdir() if p.suffix == ".main"}):
                cases.append((folder.name, str(folder), case))
    return cases


def save_case(fmt: str, name: str, files: dict, folder: Path = REGRESSIONS) -> None:
    """Keep a found input as a regression case (``<folder>/<fmt>/<name>.<role>``)."""
    target = folder / fmt
    target.mkdir(parents=True, exist_ok=True)
    for role, data in files.items():
        (target / f"{name}.{role}").write_bytes(data)
