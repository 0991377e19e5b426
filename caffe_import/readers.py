"""Readers for Caffe's files: prototxt, binary caffemodel, mean binaryproto, solver.

Every reader returns the package's dict form (see ``caffe_import/__init__.py``) and raises
:class:`FormatError` (naming the file) for malformed content.
"""

from __future__ import annotations

import os

import numpy as np

from . import prototxt, wire
from .blobs import blob_to_array, is_legacy, modern_shape
from .errors import FormatError
from .upgrade import upgrade_net, upgrade_solver


def _is_pathlike_text(source) -> bool:
    """True if ``source`` names a file rather than holding prototxt text."""
    if isinstance(source, os.PathLike):
        return True
    if not isinstance(source, str):
        return False
    if os.path.exists(source):
        return True
    return not any(c in source for c in "\n{:#") and source.strip() != ""


def _load_text(source):
    """(text, path or None) for a path, a str of prototxt text, or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if _is_pathlike_text(source):
        path = os.fspath(source)
        with open(path, "rb") as fh:
            return fh.read(), path
    return source, None


def _parse_text(source, message_name):
    text, path = _load_text(source)
    try:
        return prototxt.parse(text, message_name), path
    except FormatError as exc:
        raise (exc.with_path(path) if path else exc) from None


def read_prototxt(source, upgrade: bool = True) -> dict:
    """A NetParameter dict from a prototxt path (str or PathLike) or its text.

    ``source`` is taken as text when it is bytes, or a str that is not an existing file and
    contains a newline, '{', ':' or '#'.  The net is upgraded to V2 (``"layer"`` list, Input
    layer for ``input`` fields) unless ``upgrade=False``.
    """
    net, path = _parse_text(source, "NetParameter")
    if not upgrade:
        return net
    try:
        return upgrade_net(net)
    except FormatError as exc:
        raise (exc.with_path(path) if path else exc) from None


def _decode_net(source) -> dict:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return wire.decode(source, "NetParameter")
    return wire.decode_file(source, "NetParameter")


def read_caffemodel_raw(source) -> dict:
    """The upgraded NetParameter dict of a binary caffemodel, blobs left as BlobProto dicts."""
    net = _decode_net(source)
    try:
        return upgrade_net(net)
    except FormatError as exc:
        raise _with_source(exc, source) from None


def _with_source(exc, source):
    if isinstance(source, (str, os.PathLike)):
        return exc.with_path(os.fspath(source))
    return exc


def layer_blob_arrays(layer: dict, index: int, modern: bool = False) -> list:
    """The layer's BlobProto dicts as arrays (FormatError on count/shape mismatch).

    With ``modern=True`` legacy 4-D blobs get the N-D shape a Caffe net gives them
    (:func:`caffe_import.blobs.modern_shape`); otherwise they stay 4-D.
    """
    name = layer.get("name", "")
    arrays = []
    for i, blob in enumerate(layer.get("blobs", [])):
        if isinstance(blob, np.ndarray):
            arrays.append(blob)
            continue
        arr = blob_to_array(blob, f"layer {index} ({name!r}) blob {i}")
        if modern and is_legacy(blob):
            arr = arr.reshape(modern_shape(layer, i, arr.shape))
        arrays.append(arr)
    return arrays


def read_caffemodel(source) -> dict:
    """The upgraded (V2) NetParameter dict of a binary caffemodel (path or bytes).

    Each layer's ``blobs`` is a list of NumPy arrays: float32 from ``data``, float64 from
    ``double_data``, shaped by ``shape.dim`` or, for legacy blobs, 4-D (num, channels,
    height, width).  Diffs are not returned.
    """
    net = read_caffemodel_raw(source)
    try:
        for index, layer in enumerate(net["layer"]):
            if "blobs" in layer:
                layer["blobs"] = layer_blob_arrays(layer, index)
    except FormatError as exc:
        raise _with_source(exc, source) from None
    return net


def read_mean(source) -> np.ndarray:
    """A mean ``.binaryproto`` (one BlobProto) as a float32 array of shape (1, C, H, W).

    Blobs with fewer than 4 axes get leading axes of 1; more than 4 is a FormatError.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        blob = wire.decode(source, "BlobProto")
    else:
        blob = wire.decode_file(source, "BlobProto")
    try:
        arr = blob_to_array(blob, "mean blob")
        if arr.ndim > 4:
            raise FormatError(f"mean blob has {arr.ndim} axes {arr.shape}", None, "at most 4")
    except FormatError as exc:
        raise _with_source(exc, source) from None
    arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)
    return np.ascontiguousarray(arr, dtype=np.float32)


def read_solver(source) -> dict:
    """A SolverParameter dict from a solver prototxt (path or text), upgraded like Caffe.

    The deprecated ``solver_type`` enum becomes ``type``; inline nets (``net_param``,
    ``train_net_param``, ``test_net_param``) are upgraded to V2.  File names inside
    (``net``, ``train_net``, ``test_net``) are returned as written.
    """
    solver, path = _parse_text(source, "SolverParameter")
    try:
        solver = upgrade_solver(solver)
        for key in ("net_param", "train_net_param"):
            if key in solver:
                solver[key] = upgrade_net(solver[key])
        if "test_net_param" in solver:
            solver["test_net_param"] = [upgrade_net(n) for n in solver["test_net_param"]]
    except FormatError as exc:
        raise (exc.with_path(path) if path else exc) from None
    return solver


def read_solverstate(source) -> dict:
    """A binary ``.solverstate`` as a dict; ``history`` is a list of arrays (momentum)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        state = wire.decode(source, "SolverState")
    else:
        state = wire.decode_file(source, "SolverState")
    try:
        state["history"] = [blob_to_array(b, f"history blob {i}")
                            for i, b in enumerate(state.get("history", []))]
    except FormatError as exc:
        raise _with_source(exc, source) from None
    return state
