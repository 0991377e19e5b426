"""Building the engine's objects from Caffe files: ``load_net``, ``copy_weights``, ``load_solver``."""

from __future__ import annotations

import os

import numpy as np

from .blobs import fit_shape
from .hdf5 import read_weights
from .readers import read_prototxt, read_solver


def _net_dict(prototxt) -> dict:
    if isinstance(prototxt, dict):
        from .upgrade import upgrade_net
        return upgrade_net(prototxt)
    return read_prototxt(prototxt)


def build_net(net: dict, phase="test", backend="numpy", dtype=np.float32, seed=0, **kwargs):
    """A ``reference.Net`` from an upgraded NetParameter dict (name, force_backward and the
    NetState level/stages come from the dict; ``phase`` from the argument, as in Caffe)."""
    from reference import Net
    state = net.get("state", {})
    options = dict(name=net.get("name"), force_backward=bool(net.get("force_backward", False)),
                   level=int(state.get("level", 0)), stages=tuple(state.get("stage", [])))
    options.update(kwargs)
    return Net(net["layer"], phase=phase, dtype=dtype, backend=backend, seed=seed, **options)


def copy_weights(net, weights, layers: list | None = None) -> list:
    """Copy trained parameters into ``net`` as Caffe's ``CopyTrainedLayersFrom`` does.

    ``weights``: a path (binary caffemodel V0/V1/V2 or Caffe HDF5, told apart by content)
    or a ``{layer: [arrays]}`` dict.  Source layers are matched to the net's layers by name;
    source layers the net lacks are ignored (so are Caffe's auto-inserted ``*_split_*``
    layers); net layers the source lacks keep their filler values.  Legacy blob shapes are
    reshaped right-aligned (bias (1,1,1,N) -> (N,)).  ``layers``: the net's layer dicts, used
    only to allow a missing HDF5 dataset for a shared (named) parameter, as Caffe does.

    Raises ValueError naming the layer on a blob-count or shape mismatch.  Returns the names
    of the layers whose parameters were copied.
    """
    source = weights if isinstance(weights, dict) else read_weights(weights)
    params = net.params
    present = set(net.layer_names)
    specs = {spec.get("name"): spec for spec in (layers or [])}
    copied = []
    for name, arrays in source.items():
        if name not in present:
            continue
        target = params.get(name, [])
        if len(arrays) > len(target):
            raise ValueError(f"layer {name!r}: the weights have {len(arrays)} blobs, the net "
                             f"expects {len(target)}")
        shared = specs.get(name, {}).get("param", [])
        for i, blob in enumerate(target):
            src = arrays[i] if i < len(arrays) else None
            if src is None:
                if i < len(shared) and shared[i].get("name"):
                    continue            # a shared parameter: its owner layer provides it
                raise ValueError(f"layer {name!r}: the weights have {len(arrays)} blobs, the "
                                 f"net expects {len(target)} (blob {i} is missing)")
            blob[...] = fit_shape(np.asarray(src), blob.shape, f"layer {name!r} blob {i}")
        if arrays:
            copied.append(name)
    return copied


def load_net(prototxt, weights=None, phase="test", backend="numpy", dtype=np.float32,
             seed=0, **kwargs):
    """A ``reference.Net`` from a prototxt (path, text, or NetParameter dict) and weights.

    ``weights``: None (filler initialisation), a ``.caffemodel`` (binary, V0/V1/V2), a
    ``.caffemodel.h5`` (Caffe's HDF5 layout), detected by content, or a
    ``{layer: [arrays]}`` dict.  V0/V1 prototxts are upgraded first.  ``phase``: "test" or
    "train"; ``backend``: "numpy" | "numba" | "cuda"; ``dtype``: float32 or float64; other
    keyword arguments go to ``reference.Net``.  Raises FormatError for malformed files and
    ValueError (naming the layer and both shapes) when the weights do not fit the net.
    """
    net_dict = _net_dict(prototxt)
    net = build_net(net_dict, phase=phase, backend=backend, dtype=dtype, seed=seed, **kwargs)
    if weights is not None:
        copy_weights(net, weights if isinstance(weights, dict) else os.fspath(weights),
                     net_dict["layer"])
    return net


def load_solver(path, backend="numpy", dtype=np.float32, seed=0, weights=None, **kwargs):
    """A ``reference.SGDSolver`` from a solver prototxt, with its train net.

    The train net comes from ``net_param`` / ``train_net_param`` (inline) or ``net`` /
    ``train_net`` (a file name, relative to the solver file's directory when not found as
    given), built in the TRAIN phase with the solver's ``train_state`` level/stages.
    ``weights`` (optional) are copied into it like ``load_net`` does (Caffe's
    ``--weights``).  Other keyword arguments go to ``reference.SGDSolver``.
    """
    from reference import SGDSolver
    solver = read_solver(path)
    net_dict = _train_net_dict(solver, path)
    state = solver.get("train_state", {})
    net_dict = dict(net_dict)
    net_state = dict(net_dict.get("state", {}))
    if "level" in state:
        net_state["level"] = state["level"]
    if "stage" in state:
        net_state["stage"] = state["stage"]
    net_dict["state"] = net_state
    net = build_net(net_dict, phase="train", backend=backend, dtype=dtype, seed=seed)
    if weights is not None:
        copy_weights(net, weights, net_dict["layer"])
    return SGDSolver(solver, net, **kwargs)


def _train_net_dict(solver: dict, solver_path) -> dict:
    given = [k for k in ("net_param", "train_net_param", "net", "train_net") if k in solver]
    if len(given) != 1:
        raise ValueError(f"solver: give exactly one train net (net, net_param, train_net or "
                         f"train_net_param), got {given or 'none'}")
    key = given[0]
    if key in ("net_param", "train_net_param"):
        return solver[key]
    name = solver[key]
    if not os.path.isabs(name) and not os.path.exists(name) and \
            isinstance(solver_path, (str, os.PathLike)) and os.path.exists(solver_path):
        candidate = os.path.join(os.path.dirname(os.path.abspath(solver_path)), name)
        if os.path.exists(candidate):
            name = candidate
    return read_prototxt(os.fspath(name))
