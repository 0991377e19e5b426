"""Building the engine's objects from Caffe files: ``load_net``, ``copy_weights``, ``load_solver``."""

from __future__ import annotations

import os
import warnings

import numpy as np

from .blobs import fit_shape
from .errors import FormatError, WeightsMismatchWarning
from .hdf5 import read_weights
from .infogain import attach_infogain_sources, fill_infogain
from .readers import read_prototxt, read_solver


def _net_dict(prototxt) -> dict:
    if isinstance(prototxt, dict):
        from .upgrade import upgrade_net
        return upgrade_net(prototxt)
    return read_prototxt(prototxt)


def build_net(net: dict, phase="test", backend="numpy", dtype=np.float32, seed=0,
              input_shapes=None, **kwargs):
    """A ``reference.Net`` from an upgraded NetParameter dict (name, force_backward and the
    NetState level/stages come from the dict; ``phase`` from the argument, as in Caffe).

    ``input_shapes`` (``{top: shape}``) overrides Input shapes or turns data layers into Inputs
    first (:func:`caffe_import.inputs.apply_input_shapes`); every unknown layer type and refused
    parameter is reported at once (:func:`caffe_import.inputs.check_supported`)."""
    from reference import Net

    from . import data  # noqa: F401  (registers the data and Python layers)
    from .inputs import apply_input_shapes, check_supported
    net = apply_input_shapes(net, input_shapes, phase)
    check_supported(net, phase, dtype=dtype)
    state = net.get("state", {})
    options = dict(name=net.get("name"), force_backward=bool(net.get("force_backward", False)),
                   level=int(state.get("level", 0)), stages=tuple(state.get("stage", [])))
    options.update(kwargs)
    return Net(net["layer"], phase=phase, dtype=dtype, backend=backend, seed=seed, **options)


def copy_weights(net, weights, layers: list | None = None, strict: bool = False) -> list:
    """Copy trained parameters into ``net`` as Caffe's ``CopyTrainedLayersFrom`` does.

    ``weights``: a path (binary caffemodel V0/V1/V2 or Caffe HDF5, told apart by content)
    or a ``{layer: [arrays]}`` dict.  Source layers are matched to the net's layers by name;
    net layers the source lacks keep their filler values.  Legacy blob shapes are reshaped
    right-aligned (bias (1,1,1,N) -> (N,)).  A missing HDF5 dataset of a shared (named) parameter
    is allowed, as in Caffe, whose HDF5 files hold only the owner's blob: the owner's values are
    copied (``layers``: the net's layer dicts with the param names; default the net's own).

    The match is reported, where Caffe is silent: a :class:`WeightsMismatchWarning` names the
    source layers with blobs that match no layer of the net (parameterless ones, such as Caffe's
    auto-inserted ``*_split_*`` layers, are not reported) and the net's layers with parameters
    that got none (layers whose parameters are all shared with an earlier owner excepted);
    ``strict=True`` raises ValueError instead.  A source that gives the net no weights at all
    (another net's file, an empty file) is always an error: FormatError naming the file, or
    ValueError for a dict.

    Raises ValueError naming the layer on a blob-count or shape mismatch.  Returns the names
    of the layers whose parameters were copied.
    """
    path = None if isinstance(weights, dict) else os.fspath(weights)
    source = weights if isinstance(weights, dict) else read_weights(weights)
    params = net.params
    present = set(net.layer_names)
    specs = {spec.get("name"): spec for spec in (layers or net.specs)}
    owners = _param_owners(net, specs)
    copied = []
    for name, arrays in source.items():
        if name not in present:
            continue
        target = params.get(name, [])
        if len(arrays) > len(target):
            raise ValueError(f"layer {name!r}: the weights have {len(arrays)} blobs, the net "
                             f"expects {len(target)}")
        shared = specs.get(name, {}).get("param", [])
        got = False
        for i, blob in enumerate(target):
            src = arrays[i] if i < len(arrays) else None
            if src is None:
                pname = shared[i].get("name") if i < len(shared) else None
                if not pname:
                    raise ValueError(f"layer {name!r}: the weights have {len(arrays)} blobs, the "
                                     f"net expects {len(target)} (blob {i} is missing)")
                # a shared parameter (Caffe's HDF5 holds only the owner's): the owner's values
                src = _owner_array(source, owners, pname, name)
                if src is None:
                    continue
            blob[...] = fit_shape(np.asarray(src), blob.shape, f"layer {name!r} blob {i}")
            got = True
        if got:
            copied.append(name)
    _report_match(net, source, copied, specs, path, strict)
    return copied


def _param_owners(net, specs) -> dict:
    """``{param name: (layer, blob index)}``: the first layer (in net order) naming each parameter,
    its owner in Caffe."""
    owners = {}
    for name in net.layer_names:
        for i, p in enumerate(specs.get(name, {}).get("param", [])):
            if p.get("name"):
                owners.setdefault(p["name"], (name, i))
    return owners


def _owner_array(source, owners, pname, name):
    layer, i = owners.get(pname, (name, 0))
    arrays = source.get(layer, []) if layer != name else []
    return arrays[i] if i < len(arrays) else None


def _shared_only(net, specs) -> set:
    """Net layers whose every parameter is a named one an earlier layer owns."""
    owners, out = set(), set()
    for name in net.layer_names:
        if name not in net.params:
            continue
        names = [p.get("name") for p in specs.get(name, {}).get("param", [])]
        blobs = len(net.params[name])
        if len(names) >= blobs and all(n and n in owners for n in names[:blobs]):
            out.add(name)
        owners.update(n for n in names if n)
    return out


def _names(names, limit=8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _report_match(net, source, copied, specs, path, strict) -> None:
    """The weights report of :func:`copy_weights` (see there)."""
    present = set(net.layer_names)
    unused = [n for n, arrays in source.items()
              if n not in present and any(a is not None for a in arrays)]
    done = set(copied)
    skip = _shared_only(net, specs)
    missing = [n for n in net.params if n not in done and n not in skip]
    label = f"weights {path}" if path else "weights"
    if not copied and (missing or unused):
        what = (f"none of its {len(unused)} layers with blobs ({_names(unused)}) is a layer of "
                f"the net" if unused else "it holds no parameter blobs")
        msg = (f"no layer of the net gets weights: {what}; the net's layers with parameters are "
               f"{_names(missing)}")
        if path:
            raise FormatError(msg, None, "weights for this net (a caffemodel or HDF5 file whose "
                              "layer names match the prototxt's)", path)
        raise ValueError(f"{label}: {msg}")
    if not unused and not missing:
        return
    parts = []
    if unused:
        parts.append(f"{len(unused)} layer(s) of the file match no layer of the net (ignored): "
                     f"{_names(unused)}")
    if missing:
        parts.append(f"{len(missing)} layer(s) of the net with parameters got no weights (they "
                     f"keep their filler values): {_names(missing)}")
    msg = f"{label}: " + "; ".join(parts)
    if strict:
        raise ValueError(msg + " (strict)")
    warnings.warn(WeightsMismatchWarning(msg, unused, missing, path), stacklevel=3)


def load_net(prototxt, weights=None, phase="test", backend="numpy", dtype=np.float32,
             seed=0, input_shapes=None, strict=False, **kwargs):
    """A ``reference.Net`` from a prototxt (path, text, or NetParameter dict) and weights.

    ``weights``: None (filler initialisation), a ``.caffemodel`` (binary, V0/V1/V2), a
    ``.caffemodel.h5`` (Caffe's HDF5 layout), detected by content, or a
    ``{layer: [arrays]}`` dict.  V0/V1 prototxts are upgraded first.  ``phase``: "test" or
    "train"; ``backend``: "numpy" | "numba" | "cuda"; ``dtype``: float32 or float64;
    ``input_shapes``: ``{top: shape}`` overriding an Input's declared shape, or replacing a data
    layer by an Input (all its tops named), before the net is built; other keyword arguments go
    to ``reference.Net`` (``max_bytes``: the byte budget of the net's declared sizes,
    :mod:`reference.budget`).  Data layers (HDF5Data, Data/LMDB, ImageData, MemoryData, DummyData,
    Python) read their files when the net is built.  An InfogainLoss with
    ``infogain_loss_param.source`` gets its matrix file read here (:mod:`caffe_import.infogain`).
    Raises FormatError for malformed files and ValueError (naming the layer and both shapes) when
    the weights do not fit the net.  Layers of the weights that match nothing, and layers of the net
    left without weights, give a :class:`WeightsMismatchWarning` (a ValueError with
    ``strict=True``); weights matching no layer at all are an error (:func:`copy_weights`).
    """
    from reference.net import PHASES, layer_included
    net_dict = _net_dict(prototxt)
    state = net_dict.get("state", {})
    level, stages = kwargs.get("level", state.get("level", 0)), kwargs.get("stages", state.get("stage", ()))
    net_dict, infogain = attach_infogain_sources(
        net_dict, lambda layer: layer_included(layer, PHASES.get(phase, phase), int(level), tuple(stages)))
    net = build_net(net_dict, phase=phase, backend=backend, dtype=dtype, seed=seed,
                    input_shapes=input_shapes, **kwargs)
    fill_infogain(net, infogain)
    if weights is not None:
        copy_weights(net, weights if isinstance(weights, dict) else os.fspath(weights),
                     net_dict["layer"], strict=strict)
    return net


_SOLVER_ARGS = ("base_lr", "lr_policy", "gamma", "power", "stepsize", "stepvalue", "max_iter",
                "momentum", "weight_decay", "regularization_type", "iter_size", "clip_gradients")


def solver_settings(solver: dict) -> dict:
    """The ``reference.SGDSolver`` keyword arguments of a SolverParameter dict (Caffe's
    defaults for absent fields).  ValueError for a solver type other than SGD or a missing
    ``lr_policy`` (Caffe has no default for it)."""
    from .schema import get
    if get(solver, "SolverParameter", "type") != "SGD":
        raise ValueError(f"solver: type {solver.get('type')!r} is not supported "
                         f"(the reference engine implements Caffe's SGD only)")
    if not solver.get("lr_policy"):
        raise ValueError("solver: lr_policy is required (Caffe has no default for it)")
    settings = {k: get(solver, "SolverParameter", k) for k in _SOLVER_ARGS}
    settings["stepvalue"] = tuple(settings["stepvalue"])
    return settings


def load_solver(path, backend="numpy", dtype=np.float32, seed=0, weights=None,
                test_nets: bool = True, strict: bool = False, **kwargs):
    """A ``reference.SGDSolver`` from a solver prototxt (path or text), with its nets.

    The train net comes from ``net_param`` / ``train_net_param`` (inline) or ``net`` /
    ``train_net`` (a file name; relative names are tried as given, then next to the solver
    file), built in the TRAIN phase with ``train_state``'s level and stages.  ``weights``
    (optional: caffemodel, HDF5 or dict) are copied into it as ``load_net`` does (Caffe's
    ``--weights``; ``strict`` as in ``load_net``).  With ``test_nets`` (default) the test nets
    Caffe would build (``test_net_param``, ``test_net``, then one instance of the generic ``net``
    per extra ``test_iter``) are built in the TEST phase and passed as ``test_nets``.  The solver's
    settings (base_lr, lr_policy, momentum, weight_decay, ...) with Caffe's defaults are
    passed to ``reference.SGDSolver``; keyword arguments override them.
    """
    from reference import SGDSolver
    solver = read_solver(path)
    settings = solver_settings(solver)
    settings.update(kwargs)
    train = _with_state(_train_net_dict(solver, path), solver.get("train_state", {}))
    net = build_net(train, phase="train", backend=backend, dtype=dtype, seed=seed)
    if weights is not None:
        copy_weights(net, weights, train["layer"], strict=strict)
    tests = []
    if test_nets:
        states = solver.get("test_state", [])
        for k, net_dict in enumerate(_test_net_dicts(solver, path)):
            state = states[k] if k < len(states) else {}
            tests.append(build_net(_with_state(net_dict, state), phase="test",
                                   backend=backend, dtype=dtype, seed=seed))
    return SGDSolver(net, test_nets=tests, **settings)


def _with_state(net_dict: dict, state: dict) -> dict:
    net_dict = dict(net_dict)
    net_state = dict(net_dict.get("state", {}))
    for key in ("level", "stage"):
        if key in state:
            net_state[key] = state[key]
    net_dict["state"] = net_state
    return net_dict


def _resolve(name, solver_path):
    if os.path.isabs(name) or os.path.exists(name):
        return name
    if isinstance(solver_path, (str, os.PathLike)) and os.path.exists(solver_path):
        candidate = os.path.join(os.path.dirname(os.path.abspath(solver_path)), name)
        if os.path.exists(candidate):
            return candidate
    return name


def _train_net_dict(solver: dict, solver_path) -> dict:
    given = [k for k in ("net_param", "train_net_param", "net", "train_net") if k in solver]
    if len(given) != 1:
        raise ValueError(f"solver: give exactly one train net (net, net_param, train_net or "
                         f"train_net_param), got {given or 'none'}")
    key = given[0]
    if key in ("net_param", "train_net_param"):
        return solver[key]
    return read_prototxt(os.fspath(_resolve(solver[key], solver_path)))


def _test_net_dicts(solver: dict, solver_path) -> list:
    """Caffe's Solver::InitTestNets order: test_net_param, test_net, then the generic net."""
    nets = list(solver.get("test_net_param", []))
    nets += [read_prototxt(os.fspath(_resolve(n, solver_path)))
             for n in solver.get("test_net", [])]
    extra = len(solver.get("test_iter", [])) - len(nets)
    if extra > 0:
        if "net_param" in solver:
            nets += [solver["net_param"]] * extra
        elif "net" in solver:
            generic = read_prototxt(os.fspath(_resolve(solver["net"], solver_path)))
            nets += [generic] * extra
    return nets
