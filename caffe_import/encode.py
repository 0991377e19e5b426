"""Protobuf binary writer for message dicts (the inverse of :mod:`caffe_import.wire`).

Used to write caffemodels for tests and benchmarks (``write_caffemodel``) and by anyone who
needs a Caffe-readable binary file.  Fields are emitted in field-number order, as protobuf's
own serializers do; fields the schema marks ``packed`` are written packed, other repeated
scalars one key per element (Caffe's proto2 layout).  A NumPy array in a layer's ``blobs``
list is written as a modern BlobProto (``shape`` + ``data``, or ``double_data`` for float64).
"""

from __future__ import annotations

import struct

import numpy as np

from . import schema

_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF           # negatives: 64-bit two's complement, 10 bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def array_to_blob(array) -> dict:
    """A BlobProto dict (modern ``shape``) holding ``array``: float64 -> double_data."""
    a = np.asarray(array)
    blob = {"shape": {"dim": [int(d) for d in a.shape]}}
    if a.dtype == np.float64:
        blob["double_data"] = a.reshape(-1)
    else:
        blob["data"] = a.astype(np.float32, copy=False).reshape(-1)
    return blob


def _scalar(f, value) -> bytes:
    t = f.type
    if t == "float":
        return _F32.pack(float(value))
    if t == "double":
        return _F64.pack(float(value))
    if t == "bool":
        return _varint(1 if value else 0)
    if t == "enum":
        return _varint(f.enum.values[value] if isinstance(value, str) else int(value))
    return _varint(int(value))


def _packed_payload(f, values):
    if f.type in ("float", "double"):
        dtype = "<f4" if f.type == "float" else "<f8"
        arr = np.ascontiguousarray(np.asarray(values, dtype=dtype)).reshape(-1)
        return memoryview(arr).cast("B")          # no copy of big blobs
    return b"".join(_scalar(f, v) for v in values)


def _chunks(msg: dict, message_name: str, out: list) -> int:
    """Append the serialized pieces of ``msg`` to ``out``; return their total length."""
    spec = schema.MESSAGES[message_name]
    for name in msg:
        if name not in spec.by_name:
            raise ValueError(f"{message_name} has no field {name!r}")
    total = 0

    def put(*pieces):
        nonlocal total
        for p in pieces:
            out.append(p)
            total += len(p)

    for f in sorted(spec.by_name.values(), key=lambda fl: fl.number):
        if f.name not in msg:
            continue
        value = msg[f.name]
        if f.type == "message":
            for item in (value if f.repeated else [value]):
                if f.message == "BlobProto" and isinstance(item, np.ndarray):
                    item = array_to_blob(item)
                sub: list = []
                size = _chunks(item, f.message, sub)
                put(_key(f.number, 2), _varint(size))
                out.extend(sub)
                total += size
        elif f.type in ("string", "bytes"):
            for item in (value if f.repeated else [value]):
                payload = (item.encode("utf-8", "surrogateescape") if isinstance(item, str)
                           else bytes(item))
                put(_key(f.number, 2), _varint(len(payload)), payload)
        elif f.repeated and f.packed:
            payload = _packed_payload(f, value)
            if len(payload):
                put(_key(f.number, 2), _varint(len(payload)), payload)
        elif f.repeated:
            key = _key(f.number, f.wire_type)
            for item in value:
                put(key, _scalar(f, item))
        else:
            put(_key(f.number, f.wire_type), _scalar(f, value))
    return total


def encode(msg: dict, message_name: str) -> bytes:
    """Serialize message dict ``msg`` of type ``message_name``; ValueError on unknown keys."""
    out: list = []
    _chunks(msg, message_name, out)
    return b"".join(out)


def write_message(path, msg: dict, message_name: str) -> int:
    """Serialize ``msg`` straight into file ``path`` (blob payloads are not copied first).

    Returns the number of bytes written.  ``write_message(p, net, "NetParameter")`` writes a
    caffemodel; layer ``blobs`` may be NumPy arrays.  Written atomically (``atomic_output``): an
    error or Ctrl-C leaves no partial file and an existing ``path`` untouched.
    """
    from .atomic import atomic_output
    out: list = []
    total = _chunks(msg, message_name, out)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            for piece in out:
                fh.write(piece)
    return total
