"""Caffe's HDF5 weights layout (``Net::ToHDF5``): read, detect, and convert caffemodels to it.

Layout (CAFFE_FACTS 2.1): group ``/data``; one sub-group per layer name, parameterless
layers included; inside, one float dataset per parameter blob named ``"0"``, ``"1"``, ...
with the blob's modern N-D shape.  Legacy 4-D blobs of V0/V1 models are written with the
shape a Caffe net gives them (conv bias (N,), InnerProduct weight (M, K)), which is what
Caffe itself writes after loading such a model.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .atomic import atomic_output
from .errors import FormatError
from .readers import layer_blob_arrays, read_caffemodel_raw

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PROGRESS_MIN_BYTES = 64 << 20      # show a progress bar for models at least this big


def is_hdf5(path) -> bool:
    """True if the file starts with the HDF5 signature (at offset 0 or a user-block offset
    512, 1024, 2048, ...), i.e. decided by content, not by the file name."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            if fh.read(8) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def _dataset_layers(group, prefix=""):
    """Yield (layer name, h5py group) for every group under /data, nested names joined by
    '/' (how a layer called "conv1/7x7" ends up in HDF5)."""
    import h5py
    for key in sorted(group.keys()):
        item = group.get(key)
        if isinstance(item, h5py.Group):
            yield prefix + key, item
            yield from _dataset_layers(item, prefix + key + "/")


def read_hdf5_weights(path) -> dict:
    """``{layer: [arrays]}`` from a Caffe HDF5 weights file.

    Datasets are returned in index order; an index missing between present ones (a shared,
    non-owner blob in Caffe's layout) is ``None``.  Non-float datasets are converted to
    float32.  Raises FormatError when the file is not HDF5 or has no ``/data`` group, or a
    layer group holds a dataset whose name is not a blob index.
    """
    import h5py
    path = os.fspath(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"cannot open as HDF5: {exc}", None, "an HDF5 file", path) from None
    with fh:
        data = fh.get("data")
        if not isinstance(data, h5py.Group):
            raise FormatError("no /data group", None,
                              "Caffe's HDF5 weights layout /data/<layer>/<i>", path)
        weights = {}
        for name, group in _dataset_layers(data):
            blobs = {}
            for key, item in group.items():
                if isinstance(item, h5py.Group):
                    continue
                if not key.isdigit() or not isinstance(item, h5py.Dataset):
                    raise FormatError(f"/data/{name}/{key} is not a blob index", None,
                                      "datasets named 0, 1, 2, ...", path)
                try:
                    arr = item[()]
                except (OSError, ValueError, TypeError) as exc:
                    raise FormatError(f"cannot read /data/{name}/{key}: {exc}", None, None,
                                      path) from None
                arr = np.asarray(arr)
                if arr.dtype.kind != "f":
                    if arr.dtype.kind not in "iub":
                        raise FormatError(f"/data/{name}/{key} has dtype {arr.dtype}", None,
                                          "a numeric dataset", path)
                    arr = arr.astype(np.float32)
                blobs[int(key)] = arr
            has_subgroups = any(isinstance(v, h5py.Group) for v in group.values())
            if blobs or not has_subgroups:
                n = max(blobs) + 1 if blobs else 0
                weights[name] = [blobs.get(i) for i in range(n)]
    return weights


def read_weights(path) -> dict:
    """``{layer_name: [arrays]}`` from a binary caffemodel (V0/V1/V2) or Caffe HDF5 weights.

    The format is detected by content (the HDF5 signature).  Every layer of the file is
    listed, parameterless ones with ``[]``; legacy 4-D blobs are given their modern shape
    (as :func:`convert` writes them), so both formats of one model read the same.  A layer
    name occurring twice keeps its last occurrence, as Caffe's weight copy would.
    """
    if is_hdf5(path):
        return read_hdf5_weights(path)
    net = read_caffemodel_raw(path)
    weights = {}
    try:
        for index, layer in enumerate(net["layer"]):
            weights[layer.get("name", "")] = layer_blob_arrays(layer, index, modern=True)
    except FormatError as exc:
        raise exc.with_path(os.fspath(path)) from None
    return weights


def _check_name(name: str, index: int) -> None:
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise FormatError(f"layer {index} has name {name!r}, which cannot be an HDF5 group",
                          None, "a non-empty name without empty '/'-separated parts")


def _want_progress(progress, total_bytes) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and total_bytes >= PROGRESS_MIN_BYTES


def convert(src, dst, *, progress=None) -> dict:
    """Convert binary caffemodel ``src`` to Caffe's HDF5 layout in ``dst``, atomically.

    Writes ``/data/<layer>/<i>`` for every layer of the (upgraded) model, parameterless
    layers as empty groups, datasets float32 (float64 for ``double_data`` blobs) with the
    modern shape.  The file is written to a temporary file next to ``dst`` and renamed over
    it only when complete: on any error (or Ctrl-C) nothing is left behind and an existing
    ``dst`` is untouched.  ``progress``: True/False forces the tqdm bar on/off; None (default)
    shows it for models of 64 MiB or more when stderr is a terminal.

    Returns ``{"layers": n, "blobs": m, "bytes": payload bytes, "seconds": t}``.
    Raises FormatError for a malformed or non-caffemodel ``src`` (an HDF5 ``src`` included).
    """
    import h5py
    start = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    if is_hdf5(src):
        raise FormatError("the source is already an HDF5 file", None,
                          "a binary .caffemodel to convert", src)
    net = read_caffemodel_raw(src)
    layers = []
    seen = set()
    try:
        for index, layer in enumerate(net["layer"]):
            name = layer.get("name", "")
            _check_name(name, index)
            if name in seen:
                raise FormatError(f"layer name {name!r} occurs twice", None,
                                  "unique layer names (one HDF5 group each)")
            seen.add(name)
            layers.append((name, layer_blob_arrays(layer, index, modern=True)))
    except FormatError as exc:
        raise exc.with_path(src) from None
    total = _write_atomically(dst, layers, progress, h5py)
    return {"layers": len(layers), "blobs": sum(len(a) for _, a in layers), "bytes": total,
            "seconds": time.perf_counter() - start}


def write_hdf5_weights(net, dst, *, progress=None) -> dict:
    """Write ``net``'s parameters (a :class:`reference.Net`) in Caffe's HDF5 layout, atomically:
    ``/data/<layer>/<i>`` for every layer with parameters, in the net's dtype.  What ``load_net``
    (``weights=dst``) and Caffe's ``Net::CopyTrainedLayersFromHDF5`` read back."""
    import h5py
    layers = [(name, [np.ascontiguousarray(b) for b in blobs]) for name, blobs in net.params.items()
              if blobs]
    for index, (name, _) in enumerate(layers):
        _check_name(name, index)
    total = _write_atomically(os.fspath(dst), layers, progress, h5py)
    return {"layers": len(layers), "blobs": sum(len(a) for _, a in layers), "bytes": total}


def _write_atomically(dst, layers, progress, h5py) -> int:
    """Write ``[(name, [arrays])]`` to ``dst`` atomically (:mod:`caffe_import.atomic`), with a
    progress bar for big payloads; returns the payload bytes."""
    total = sum(a.nbytes for _, arrays in layers for a in arrays)
    with atomic_output(dst) as tmp:
        bar = None
        if _want_progress(progress, total):
            from tqdm import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="convert", leave=False)
        try:
            _write_layers(tmp, layers, bar, h5py)
        finally:
            if bar is not None:
                bar.close()
    return total


def _write_layers(path, layers, bar, h5py) -> None:
    """Write ``[(name, [arrays])]`` as Caffe's ``/data/<layer>/<i>`` layout into ``path``."""
    with h5py.File(path, "w") as fh:
        data = fh.create_group("data")
        for name, arrays in layers:
            group = data.require_group(name)
            for i, arr in enumerate(arrays):
                group.create_dataset(str(i), data=arr)
                if bar is not None:
                    bar.update(arr.nbytes)
