"""Golden vectors: the op table's cases with the reference's outputs, in an HDF5 file that h5py
alone (or C with libhdf5) can read; no econv needed.  docs/VECTORS.md describes it for users.

Layout (DESIGN.md section 3)::

    /                      attrs: format ("econv-vectors 1"), dtype, producer, seed, count_per_op,
                                  ops, hard, tie_rule, conventions, tolerance
    /cases/<name>          one group per case (creation order = table order), attrs:
        op                 "conv2d" | "deconv2d" | "pool2d"
        stride, pad, est   int64 (h, w) pairs                       (every op)
        group              int64                                    (conv2d, deconv2d)
        kernel, pad_end    int64 (h, w) pairs                       (pool2d)
        mode, round_mode   "max" | "ave", "ceil" | "floor"          (pool2d)
        note               what a hard case tests, then the econv convention its values rest on
                           where they are not Caffe's (:data:`reference.pool.EMPTY_AVE_WINDOW`);
                           absent for a random case that meets no convention
      datasets (N, C, H, W order, C-contiguous, the file's dtype):
        x, w, b            inputs as they apply (no ``b``: the op ran without a bias)
        y                  forward output
        dy                 the cotangent fed to the backward
        dx, dw, db         backward results as they apply

For every case, ``y = op(x, w, b, **params)`` and ``(dx, dw, db) = op_backward(dy, x, w, **params,
bias="b" in case)`` in the reference (pool2d: ``y = pool2d(x, **params)``, ``dx = pool2d_backward(dy,
x, **params)``), computed in float64 on the stored inputs and rounded once to the file's dtype (a
float32 file holds the true values of its float32 inputs, not a float32 computation's).  Same
arguments, same file: the output is deterministic for a seed.

    >>> import tempfile, os, h5py
    >>> path = os.path.join(tempfile.mkdtemp(), "v.h5")
    >>> write_vectors(path, count=1, ops=["pool2d"])
    1
    >>> with h5py.File(path, "r") as f:
    ...     g = f["cases/pool2d_0_kernel1x1_stride1x1_pad0x0_est1x1_modemax_round_modeceil_pad_end0x0"]
    ...     print(g.attrs["op"], g.attrs["kernel"].tolist(), sorted(g))
    pool2d [1, 1] ['dx', 'dy', 'x', 'y']
"""

from __future__ import annotations

import numpy as np

import reference.ops as reference_ops
from reference.optable import OPS, TIE_RULE, cases, table
from reference.pool import EMPTY_AVE_WINDOW
from reference.tolerance import tolerance

from caffe_import.atomic import atomic_output

__all__ = ["write_vectors", "vector_cases", "FORMAT"]

FORMAT = "econv-vectors 1"


def vector_cases(count: int = 34, seed: int = 0, ops=None, hard: bool = False) -> list:
    """The cases a vector file holds (float64): ``count`` random cases per op (+ the hard cases).

    ``ops``: op names (``conv2d``, ``deconv2d``, ``pool2d``; a ``_backward`` name means its op, as
    every case holds both directions); default all three."""
    names = list(OPS) if not ops else list(dict.fromkeys(n.removesuffix("_backward") for n in ops))
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r} (known: {', '.join(OPS)})")
    make = table if hard else cases
    return [c for name in names for c in make(name, count=count, seed=seed)]


def write_vectors(path: str, count: int = 34, seed: int = 0, dtype=np.float64, progress=None,
                  ops=None, hard: bool = False) -> int:
    """Write the golden vectors of :func:`vector_cases` to ``path`` atomically; returns the number
    of cases (default: 34 per op, 102 in all; ``hard=True`` adds the 17 hard cases)."""
    import h5py

    all_cases = [c.astype(dtype) for c in vector_cases(count, seed, ops, hard)]
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["dtype"] = np.dtype(dtype).name
            f.attrs["producer"] = "econv reference (NumPy oracle)"
            f.attrs["seed"] = seed
            f.attrs["count_per_op"] = count
            f.attrs["ops"] = ",".join(dict.fromkeys(c.op for c in all_cases))
            f.attrs["hard"] = bool(hard)
            f.attrs["tie_rule"] = TIE_RULE
            # where econv's expected values are its own convention rather than Caffe's
            f.attrs["conventions"] = EMPTY_AVE_WINDOW
            f.attrs["tolerance"] = tolerance(dtype)
            root = f.create_group("cases", track_order=True)
            for c in all_cases:
                _write_case(root.create_group(c.name), c)
                if progress:
                    progress(1)
    return len(all_cases)


def _write_case(g, c) -> None:
    spec = OPS[c.op]
    g.attrs["op"] = c.op
    for k, v in c.params.items():
        g.attrs[k] = v if isinstance(v, str) else np.asarray(v, dtype=np.int64)
    note = " ".join([c.note] * bool(c.note) + [c.convention] * bool(c.convention))
    if note:
        g.attrs["note"] = note
    for k, v in c.arrays.items():
        g[k] = v
    dtype = c.arrays["x"].dtype
    exact = c.astype(np.float64)          # the stored inputs, exactly; computed in float64
    g["y"] = spec.forward(reference_ops, exact.arrays, exact.params).astype(dtype)
    g["dy"] = c.dy
    for k, v in spec.vjp(reference_ops, exact.arrays, exact.params, exact.dy).items():
        g[k] = v.astype(dtype)
