"""Protobuf binary wire-format reader, driven by :mod:`caffe_import.schema`.

Decodes one serialized message (a whole ``.caffemodel``, ``.binaryproto`` or
``.solverstate`` file) into plain dicts: only fields present in the data appear, repeated
fields are lists, sub-messages dicts, enums their NAME strings.  Repeated float/double
fields flagged ``array`` in the schema (``BlobProto.data`` and friends) become NumPy arrays
decoded with ``np.frombuffer`` (fast for 500 MB models); files are read into memory (no mmap).

Protobuf rules followed: every repeated scalar is accepted packed and unpacked, multiple
chunks are concatenated; unknown fields (and known fields arriving with an unexpected wire
type) are skipped by wire type, groups included; optional scalars: last occurrence wins;
an optional sub-message occurring twice is merged; negative int32 values are 10-byte
varints; an enum number the schema does not know is dropped, as protobuf does for proto2;
strings that are not UTF-8 are kept (``prototxt.decode_string``), as C++ proto2 does.

Safety: the reader walks a memoryview and never allocates from a length field — a length
larger than what remains is a :class:`FormatError` naming the byte offset; nesting deeper
than :data:`MAX_DEPTH` is an error; bad wire types, truncated varints and field number 0
are errors.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from . import schema
from .errors import FormatError

MAX_DEPTH = 100                  # protobuf's own default recursion limit
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_NP_DTYPE = {"float": np.dtype("<f4"), "double": np.dtype("<f8")}
_NATIVE = {"float": np.float32, "double": np.float64}
_WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "length-delimited", 3: "start-group",
               4: "end-group", 5: "fixed32"}


def _err(what, pos, expected=None):
    return FormatError(what, f"byte {pos}", expected)


def _varint(mv, pos, end):
    """Read a varint at ``pos``; return (value as unsigned 64-bit, new position)."""
    start = pos
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _err("truncated varint", start, "more bytes before the end of the message")
        b = mv[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise _err("varint longer than 10 bytes", start)


def _convert_varint(value, ftype):
    if ftype == "bool":
        return value != 0
    if ftype in ("int32", "enum"):
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >= (1 << 31) else value
    if ftype == "int64":
        return value - (1 << 64) if value >= (1 << 63) else value
    if ftype == "uint32":
        return value & 0xFFFFFFFF
    return value                                    # uint64


def _skip(mv, pos, end, wire, fnum, depth, key_pos):
    """Skip one field's payload of the given wire type; return the new position."""
    if wire == 0:
        return _varint(mv, pos, end)[1]
    if wire == 1:
        if end - pos < 8:
            raise _err("truncated fixed64 value", pos, f"8 bytes, {end - pos} remain")
        return pos + 8
    if wire == 5:
        if end - pos < 4:
            raise _err("truncated fixed32 value", pos, f"4 bytes, {end - pos} remain")
        return pos + 4
    if wire == 2:
        length, pos = _varint(mv, pos, end)
        if length > end - pos:
            raise _err(f"length {length} runs past the end of the data", pos,
                       f"at most {end - pos} bytes")
        return pos + length
    if wire == 3:
        if depth >= MAX_DEPTH:
            raise _err("groups nested too deeply", key_pos, f"at most {MAX_DEPTH} levels")
        while True:
            if pos >= end:
                raise _err(f"group {fnum} is not closed", key_pos, "an end-group tag")
            inner_pos = pos
            key, pos = _varint(mv, pos, end)
            inner_num, inner_wire = key >> 3, key & 7
            if inner_wire == 4:
                if inner_num != fnum:
                    raise _err(f"end-group tag {inner_num} closes group {fnum}", inner_pos)
                return pos
            if inner_num == 0:
                raise _err("field number 0", inner_pos, "a field number >= 1")
            pos = _skip(mv, pos, end, inner_wire, inner_num, depth + 1, inner_pos)
    if wire == 4:
        raise _err(f"unexpected end-group tag for field {fnum}", key_pos)
    raise _err(f"invalid wire type {wire} for field {fnum}", key_pos, "wire type 0, 1, 2, 3, 4 or 5")


def _unpacked_run(mv, key_pos, pos, end, ftype):
    """Decode a run of unpacked fixed-size elements sharing the key at ``key_pos``.

    Returns (array of elements, new position).  Uses NumPy to find the run's length, in
    windows of growing size, so a million unpacked floats cost milliseconds.
    """
    key = bytes(mv[key_pos:pos])
    klen = len(key)
    size = 4 if ftype == "float" else 8
    rec = klen + size
    if end - pos < size:
        raise _err(f"truncated {'fixed32' if size == 4 else 'fixed64'} value", pos,
                   f"{size} bytes, {end - pos} remain")
    keyarr = np.frombuffer(key, dtype=np.uint8)
    pieces = []
    start = key_pos
    window = 64
    while True:
        n_avail = (end - start) // rec
        n = min(window, n_avail)
        if n == 0:
            break
        block = np.frombuffer(mv[start:start + n * rec], dtype=np.uint8).reshape(n, rec)
        ok = np.all(block[:, :klen] == keyarr, axis=1)
        good = n if ok.all() else int(np.argmin(ok))
        if good:
            pieces.append(np.ascontiguousarray(block[:good, klen:]).view(_NP_DTYPE[ftype]).ravel())
        start += good * rec
        if good < n or n < window:
            break
        window *= 4
    return pieces, start


class _Decoder:
    """Recursive-descent decoder over one memoryview."""

    def __init__(self, mv):
        self.mv = mv

    def message(self, pos, end, msg, depth, out=None):
        """Decode bytes [pos, end) as message ``msg`` into dict ``out`` (merging)."""
        if depth > MAX_DEPTH:
            raise _err(f"messages nested too deeply in {msg.name}", pos,
                       f"at most {MAX_DEPTH} levels")
        mv = self.mv
        result = {} if out is None else out
        accum = {}
        by_number = msg.by_number
        while pos < end:
            key_pos = pos
            key, pos = _varint(mv, pos, end)
            fnum, wire = key >> 3, key & 7
            if fnum == 0:
                raise _err("field number 0", key_pos, "a field number >= 1")
            f = by_number.get(fnum)
            if f is None:
                pos = _skip(mv, pos, end, wire, fnum, depth, key_pos)
                continue
            if f.packable:
                if wire == 2:
                    pos = self._packed(pos, end, f, accum)
                elif wire == f.wire_type:
                    pos = self._unpacked(key_pos, pos, end, f, accum)
                else:
                    pos = _skip(mv, pos, end, wire, fnum, depth, key_pos)
                continue
            if wire != f.wire_type:
                pos = _skip(mv, pos, end, wire, fnum, depth, key_pos)
                continue
            ftype = f.type
            if wire == 2:
                length, pos = _varint(mv, pos, end)
                if length > end - pos:
                    raise _err(f"length {length} of {msg.name}.{f.name} runs past the end "
                               f"of the data", pos, f"at most {end - pos} bytes")
                stop = pos + length
                if ftype == "message":
                    sub = schema.MESSAGES[f.message]
                    if f.repeated:
                        result.setdefault(f.name, []).append(
                            self.message(pos, stop, sub, depth + 1))
                    else:
                        existing = result.get(f.name)
                        result[f.name] = self.message(pos, stop, sub, depth + 1, existing)
                else:
                    raw = bytes(mv[pos:stop])
                    if ftype == "string":
                        value = raw.decode("utf-8", "surrogateescape")   # as prototxt.decode_string
                    else:
                        value = raw
                    if f.repeated:
                        result.setdefault(f.name, []).append(value)
                    else:
                        result[f.name] = value
                pos = stop
                continue
            if wire == 0:
                raw, pos = _varint(mv, pos, end)
                value = _convert_varint(raw, ftype)
                if ftype == "enum":
                    value = f.enum.names.get(value)
                    if value is None:
                        continue                # unknown enum number: dropped (proto2)
            elif wire == 5:
                if end - pos < 4:
                    raise _err("truncated fixed32 value", pos, f"4 bytes, {end - pos} remain")
                value = _F32.unpack_from(mv, pos)[0]
                pos += 4
            else:
                if end - pos < 8:
                    raise _err("truncated fixed64 value", pos, f"8 bytes, {end - pos} remain")
                value = _F64.unpack_from(mv, pos)[0]
                pos += 8
            result[f.name] = value
        self._finish(result, accum, msg)
        return result

    def _packed(self, pos, end, f, accum):
        mv = self.mv
        length, pos = _varint(mv, pos, end)
        if length > end - pos:
            raise _err(f"packed length {length} of field {f.name} runs past the end of the "
                       f"data", pos, f"at most {end - pos} bytes")
        stop = pos + length
        pieces = accum.setdefault(f.name, [])
        if f.type in ("float", "double"):
            size = 4 if f.type == "float" else 8
            if length % size:
                raise _err(f"packed {f.type} field {f.name} has {length} bytes", pos,
                           f"a multiple of {size}")
            arr = np.frombuffer(mv[pos:stop], dtype=_NP_DTYPE[f.type])
            pieces.append(arr if f.array else arr.tolist())
            return stop
        values = []
        p = pos
        while p < stop:
            raw, p = _varint(mv, p, stop)
            values.append(_convert_varint(raw, f.type))
        if f.type == "enum":
            values = [f.enum.names[v] for v in values if v in f.enum.names]
        pieces.append(values)
        return stop

    def _unpacked(self, key_pos, pos, end, f, accum):
        mv = self.mv
        pieces = accum.setdefault(f.name, [])
        if f.type in ("float", "double"):
            if f.array:
                arrays, pos = _unpacked_run(mv, key_pos, pos, end, f.type)
                pieces.extend(arrays)
                return pos
            size = 4 if f.type == "float" else 8
            if end - pos < size:
                raise _err(f"truncated fixed{size * 8} value", pos,
                           f"{size} bytes, {end - pos} remain")
            value = (_F32 if size == 4 else _F64).unpack_from(mv, pos)[0]
            pieces.append([value])
            return pos + size
        raw, pos = _varint(mv, pos, end)
        value = _convert_varint(raw, f.type)
        if f.type == "enum":
            value = f.enum.names.get(value)
            if value is None:
                return pos
        pieces.append([value])
        return pos

    @staticmethod
    def _finish(result, accum, msg):
        for name, pieces in accum.items():
            f = msg.by_name[name]
            if f.array:
                native = _NATIVE[f.type]
                if name in result:                       # merged second occurrence
                    pieces = [result[name]] + pieces
                if not pieces:
                    arr = np.zeros(0, native)
                elif len(pieces) == 1:
                    arr = np.array(pieces[0], dtype=native)      # copies out of the buffer
                else:
                    arr = np.concatenate(pieces).astype(native, copy=False)
                result[name] = arr
            else:
                values = result.get(name, [])
                for piece in pieces:
                    values.extend(piece)
                result[name] = values


def decode(data, message_name: str) -> dict:
    """Decode ``data`` (bytes-like) as one serialized message of type ``message_name``."""
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    return _Decoder(mv).message(0, len(mv), schema.MESSAGES[message_name], 0)


def decode_file(path, message_name: str) -> dict:
    """Decode a whole file as one message, read into memory first.

    The file is read, not memory-mapped: a file another process truncates while it is mapped
    would kill this one with SIGBUS.  A file larger than the byte budget
    (:mod:`reference.budget`, ``ECONV_MAX_BYTES``) is refused before reading; a file that
    shrinks while it is read is decoded as far as it got (and so, normally, a FormatError).
    Raises FormatError (naming the file) for malformed content, OSError if unreadable.
    """
    from reference import budget
    path = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            budget.check(size, "the file")
        except ValueError as exc:
            raise FormatError(str(exc), None, "a file within the byte budget", path) from None
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:
            n = fh.readinto(view[got:])
            if not n:
                break
            got += n
        view.release()
    try:
        return decode(memoryview(buf)[:got], message_name)
    except FormatError as exc:
        raise exc.with_path(path) from None
