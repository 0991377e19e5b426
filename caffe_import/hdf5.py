"""Caffe's HDF5 weights layout (``Net::ToHDF5``): read, detect, and convert caffemodels to it.

Layout (CAFFE_FACTS 2.1): group ``/data``; one sub-group per layer name, parameterless
layers included; inside, one float dataset per parameter blob named ``"0"``, ``"1"``, ...
with the blob's modern N-D shape.  Legacy 4-D blobs of V0/V1 models are written with the
shape a Caffe net gives them (conv bias (N,), InnerProduct weight (M, K)), which is what
Caffe itself writes after loading such a model.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sys
import threading
import time

import numpy as np

from .atomic import atomic_output
from .errors import FormatError
from .prototxt import decode_string
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


MAX_DEPTH = 32            # groups nested under /data (a layer name with 31 '/')
MAX_LINKS = 100_000       # links visited in one file
MAX_BLOBS = 64            # dataset indices per layer: "0" .. "63" (Caffe layers hold a few)
_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,5}")


def _h5(path, where, what, call, *args):
    """``call(*args)``, with any error libhdf5/h5py raises on a malformed file (RuntimeError,
    TypeError, KeyError, UnicodeDecodeError, OSError, ...) turned into a FormatError naming
    ``path`` and the HDF5 path ``where``.  MemoryError, KeyboardInterrupt and FormatError pass."""
    try:
        return call(*args)
    except (MemoryError, FormatError):
        raise
    except Exception as exc:                 # noqa: BLE001 - h5py raises many types on corruption
        raise FormatError(f"{what}: {type(exc).__name__}: {exc}", where, None, path) from None


def _link_name(raw: bytes, where: str, path: str) -> str:
    name = decode_string(raw)          # Caffe writes layer names' bytes as they are
    if not name or "/" in name or name in (".", ".."):
        raise FormatError(f"link name {name!r}", where, "a name without '/', not '.' or '..'",
                          path)
    return name


def _children(gid, where: str, path: str, counter: list):
    """``[(name, kind, object id)]`` of group ``gid``, sorted by name: kind "group" or "dataset".
    Only hard links are followed; soft, external and user-defined links are FormatErrors, as
    are more than MAX_LINKS links in the file."""
    import h5py
    raw_names = _h5(path, where, "cannot list the group", lambda: sorted(iter(gid)))
    counter[0] += len(raw_names)
    if counter[0] > MAX_LINKS:
        raise FormatError(f"more than {MAX_LINKS} links", where,
                          "a Caffe weights file (one group per layer, a few datasets each)", path)
    out = []
    for raw in raw_names:
        name = _link_name(raw, where, path)
        child = f"{where.rstrip('/')}/{name}"
        info = _h5(path, child, "cannot read the link", gid.links.get_info, raw)
        if info.type != h5py.h5l.TYPE_HARD:
            kind = {h5py.h5l.TYPE_SOFT: "a soft link",
                    h5py.h5l.TYPE_EXTERNAL: "an external link"}.get(info.type, "a user-defined link")
            raise FormatError(f"{kind}, which econv does not follow", child,
                              "hard links only (groups and datasets in this file)", path)
        oid = _h5(path, child, "cannot open the object", h5py.h5o.open, gid, raw)
        otype = _h5(path, child, "cannot read the object header", lambda: h5py.h5o.get_info(oid).type)
        if otype == h5py.h5o.TYPE_GROUP:
            out.append((name, "group", oid))
        elif otype == h5py.h5o.TYPE_DATASET:
            out.append((name, "dataset", oid))
        else:
            raise FormatError("a named datatype or unknown object", child, "a group or a dataset",
                              path)
    return out


def _layer_groups(data_gid, path: str):
    """Yield ``(layer name, HDF5 path, [(key, dataset id)])`` for every group under /data, nested
    names joined by '/' (how a layer called "conv1/7x7" ends up in HDF5).  Each group is entered
    once: a group reached a second time (a hard-link cycle or a shared group, which would make the
    walk exponential) is a FormatError, as is nesting deeper than MAX_DEPTH."""
    visited = {_h5(path, "/data", "cannot identify the group", hash, data_gid)}
    counter = [0]
    stack = [("", data_gid, 0)]
    while stack:
        prefix, gid, depth = stack.pop()
        where = "/data/" + prefix if prefix else "/data"
        children = _children(gid, where, path, counter)
        datasets = [(n, oid) for n, kind, oid in children if kind == "dataset"]
        groups = [(n, oid) for n, kind, oid in children if kind == "group"]
        if prefix and (datasets or not groups):
            yield prefix, where, datasets
        for name, oid in reversed(groups):
            child = f"{where}/{name}"
            key = _h5(path, child, "cannot identify the group", hash, oid)
            if key in visited:
                raise FormatError("group reached by a second path (a hard-link cycle or a shared "
                                  "group)", child, "a tree of groups, one per layer", path)
            visited.add(key)
            if depth + 1 > MAX_DEPTH:
                raise FormatError("groups nested too deeply", child, f"at most {MAX_DEPTH} levels",
                                  path)
            stack.append((prefix + name if not prefix else f"{prefix}/{name}", oid, depth + 1))


def _blob_index(key: str, where: str, path: str) -> int:
    """The blob index a dataset name stands for: canonical ASCII decimal ("0", "12"; not "00",
    "+1" or non-ASCII digits), below MAX_BLOBS."""
    if not _INDEX_RE.fullmatch(key) or int(key) >= MAX_BLOBS:
        raise FormatError(f"dataset name {key!r} is not a blob index", where,
                          f"datasets named 0, 1, 2, ... (canonical decimal, below {MAX_BLOBS})", path)
    return int(key)


def _read_dataset(dsid, where: str, path: str, spent: int):
    """The dataset's values as an array, after checking, before reading anything: no virtual
    layout and no external storage, a numeric type, storage actually written, and the declared
    size and chunk size within the byte budget (``reference.budget``) together with ``spent``."""
    import h5py
    from reference import budget
    plist = _h5(path, where, "cannot read the creation properties", dsid.get_create_plist)
    layout = _h5(path, where, "cannot read the layout", plist.get_layout)
    if layout == h5py.h5d.VIRTUAL:
        raise FormatError("a virtual dataset, which econv does not read", where,
                          "a dataset stored in this file", path)
    if _h5(path, where, "cannot read the external storage list", plist.get_external_count):
        raise FormatError("a dataset with external raw storage, which econv does not read", where,
                          "a dataset stored in this file", path)
    dtype = _h5(path, where, "cannot read the datatype", lambda: dsid.dtype)
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "fiub" \
            or dtype.itemsize > 8:
        raise FormatError(f"dataset of type {dtype}", where, "a float (or integer) dataset", path)
    shape = _h5(path, where, "cannot read the dataspace", lambda: tuple(int(d) for d in dsid.shape))
    count = nonzero = 1
    for d in shape:
        count *= d
        nonzero *= max(d, 1)
    if nonzero > np.iinfo(np.intp).max:
        raise FormatError(f"dataset of shape {shape}, whose non-zero dimensions multiply to "
                          f"{nonzero}", where, "a shape NumPy can hold", path)
    nbytes = count * dtype.itemsize
    try:
        budget.check(spent + nbytes, f"dataset of shape {shape} ({dtype})")
        if layout == h5py.h5d.CHUNKED:
            chunks = _h5(path, where, "cannot read the chunk shape", plist.get_chunk)
            chunk_count = 1
            for d in chunks:
                chunk_count *= int(d)
            budget.check(chunk_count * dtype.itemsize, f"chunk of shape {tuple(chunks)}")
    except ValueError as exc:
        raise FormatError(str(exc), where, "sizes within the byte budget", path) from None
    if count and not _h5(path, where, "cannot read the storage size", dsid.get_storage_size):
        raise FormatError(f"dataset of shape {shape} was never written (no storage)", where,
                          "a dataset with its values", path)
    native = dtype.newbyteorder("=")
    arr = np.empty(shape, native)
    if count:
        _h5(path, where, "cannot read the values", dsid.read, h5py.h5s.ALL, h5py.h5s.ALL, arr)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    return arr


def read_hdf5_weights(path) -> dict:
    """``{layer: [arrays]}`` from a Caffe HDF5 weights file.

    Datasets are returned in index order; an index missing between present ones (a shared,
    non-owner blob in Caffe's layout) is ``None``.  Non-float datasets are converted to
    float32.  Raises FormatError (naming the file and the HDF5 path) for anything else: not HDF5,
    no ``/data`` group, a dataset name that is not a canonical blob index, soft/external links,
    hard-link cycles or shared groups, nesting deeper than MAX_DEPTH, virtual datasets, external
    storage, non-numeric types, never-written datasets, sizes over the byte budget
    (``ECONV_MAX_BYTES``, :mod:`reference.budget`), and whatever libhdf5 reports on corruption.
    """
    import h5py
    path = os.fspath(path)
    fh = _h5(path, None, "cannot open as HDF5", h5py.File, path, "r")
    try:
        weights = _read_open_file(fh, path, h5py)
    finally:
        try:
            fh.close()
        except Exception:               # noqa: BLE001 - closing a corrupt file may complain
            pass
    return weights


def _read_open_file(fh, path, h5py) -> dict:
    root = _h5(path, "/", "cannot open the root group", lambda: fh.id)
    if b"data" not in _h5(path, "/", "cannot list the root group", lambda: list(iter(root))):
        raise FormatError("no /data group", None, "Caffe's HDF5 weights layout /data/<layer>/<i>",
                          path)
    info = _h5(path, "/data", "cannot read the link", root.links.get_info, b"data")
    if info.type != h5py.h5l.TYPE_HARD:
        raise FormatError("/data is not a hard link", "/data", "a group in this file", path)
    data = _h5(path, "/data", "cannot open", h5py.h5o.open, root, b"data")
    if _h5(path, "/data", "cannot read the header", lambda: h5py.h5o.get_info(data).type) \
            != h5py.h5o.TYPE_GROUP:
        raise FormatError("/data is not a group", "/data",
                          "Caffe's HDF5 weights layout /data/<layer>/<i>", path)
    weights = {}
    spent = 0
    for name, where, datasets in _layer_groups(data, path):
        blobs = {}
        for key, dsid in datasets:
            index = _blob_index(key, f"{where}/{key}", path)
            arr = _read_dataset(dsid, f"{where}/{key}", path, spent)
            spent += arr.nbytes
            blobs[index] = arr
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
    if not name or any(p in ("", ".", "..") for p in parts) or "\x00" in name:
        raise FormatError(f"layer {index} has name {name!r}, which cannot be an HDF5 group",
                          None, "a non-empty name without empty '/'-separated parts or NUL")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"layer {index} has name {name!r}, whose bytes are not UTF-8 (h5py "
                          f"writes UTF-8 names only)", None, "a UTF-8 layer name") from None


def _check_paths(layers) -> None:
    """FormatError when two layers' HDF5 paths collide: layer "a" with a blob writes the dataset
    /data/a/0, so a layer named "a/0" (a group there) cannot be written, and neither can a layer
    named "a/0/b" (whose group would be under the dataset)."""
    groups, datasets = {}, {}
    for index, (name, arrays) in enumerate(layers):
        _check_name(name, index)
        parts = name.split("/")
        for k in range(1, len(parts) + 1):
            groups.setdefault("/".join(parts[:k]), name)
        for i in range(len(arrays)):
            datasets[f"{name}/{i}"] = name
    clash = sorted(set(groups) & set(datasets))
    if clash:
        p = clash[0]
        raise FormatError(f"layer names {datasets[p]!r} and {groups[p]!r} collide as HDF5 paths: "
                          f"/data/{p} would be both a blob of {datasets[p]!r} and a group of "
                          f"{groups[p]!r}", None, "no layer named <another layer>/<blob index>")


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
        _check_paths(layers)
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
    try:
        _check_paths(layers)
    except FormatError as exc:
        raise ValueError(f"net {net.name!r}: {exc}") from None
    total = _write_atomically(os.fspath(dst), layers, progress, h5py)
    return {"layers": len(layers), "blobs": sum(len(a) for _, a in layers), "bytes": total}


def _write_atomically(dst, layers, progress, h5py) -> int:
    """Write ``[(name, [arrays])]`` to ``dst`` atomically (:mod:`caffe_import.atomic`), with a
    progress bar for big payloads; returns the payload bytes.

    Ctrl-C is held back while libhdf5 runs (h5py would otherwise swallow it in a callback and
    the conversion would go on) and raised as KeyboardInterrupt between datasets, which removes
    the partial file.  Write failures come out as OSError naming ``dst`` with the errno libhdf5
    saw (ENOSPC for a full disk, EFBIG over the file-size limit), not h5py's RuntimeError."""
    total = sum(a.nbytes for _, arrays in layers for a in arrays)
    with atomic_output(dst) as tmp:
        bar = None
        if _want_progress(progress, total):
            from tqdm import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, desc="convert", leave=False)
        try:
            with _held_interrupt() as interrupted:
                try:
                    _write_layers(tmp, layers, bar, h5py, interrupted)
                except (MemoryError, KeyboardInterrupt, FormatError):
                    raise
                except Exception as exc:         # noqa: BLE001 - h5py's write errors, any type
                    raise _write_error(exc, dst) from None
        finally:
            if bar is not None:
                bar.close()
    return total


def _write_error(exc, dst) -> OSError:
    """An OSError for a failed HDF5 write, with the errno that libhdf5's message carries."""
    m = re.search(r"errno = (\d+)", str(exc))
    if m:
        code = int(m.group(1))
        return OSError(code, f"cannot write {dst}: {os.strerror(code)}")
    if isinstance(exc, OSError):
        return OSError(exc.errno or errno.EIO, f"cannot write {dst}: {exc}")
    return OSError(errno.EIO, f"cannot write {dst}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _held_interrupt():
    """While the block runs, SIGINT sets ``flag[0]`` instead of raising (in the main thread
    only); the block checks the flag at safe points, and on leaving a pending one is raised."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return

    def hold(signum, frame):
        flag[0] = True

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
    if flag[0]:
        raise KeyboardInterrupt


def _write_layers(path, layers, bar, h5py, interrupted=(False,)) -> None:
    """Write ``[(name, [arrays])]`` as Caffe's ``/data/<layer>/<i>`` layout into ``path``;
    raises KeyboardInterrupt between datasets once ``interrupted[0]`` is set."""
    with h5py.File(path, "w") as fh:
        data = fh.create_group("data")
        for name, arrays in layers:
            if interrupted[0]:
                raise KeyboardInterrupt
            group = data.require_group(name)
            for i, arr in enumerate(arrays):
                if interrupted[0]:
                    raise KeyboardInterrupt
                group.create_dataset(str(i), data=arr)
                if bar is not None:
                    bar.update(arr.nbytes)
