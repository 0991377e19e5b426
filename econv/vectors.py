"""Golden vectors: the op table's cases with the reference's outputs, in an HDF5 file that h5py
alone can read (no econv needed).

Layout: one group ``cases/<name>`` per case with attributes ``op`` and the op's parameters as they
apply (``kernel``, ``stride``, ``pad``, ``est``, ``pad_end`` as (h, w) pairs; ``group``; ``mode``,
``round_mode``) and datasets ``x``, ``w``, ``b`` (inputs, as they apply), ``y`` (forward), ``dy`` (the
cotangent) and ``dx``, ``dw``, ``db`` (backward).  Root attributes: ``dtype``, ``producer``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

import reference.ops as reference_ops
from reference.optable import OPS, cases


def write_vectors(path: str, count: int = 12, seed: int = 0, dtype=np.float64, progress=None) -> int:
    """Write the golden vectors to ``path`` atomically; returns the number of cases."""
    import h5py

    all_cases = [c.astype(dtype) for c in cases(count=count, seed=seed)]
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".econv-vectors-", suffix=".h5", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["dtype"] = np.dtype(dtype).name
            f.attrs["producer"] = "econv reference (NumPy oracle)"
            for c in all_cases:
                spec = OPS[c.op]
                g = f.create_group(f"cases/{c.name}")
                g.attrs["op"] = c.op
                for k, v in c.params.items():
                    g.attrs[k] = np.asarray(v) if not isinstance(v, str) else v
                for k, v in c.arrays.items():
                    g[k] = v
                g["y"] = spec.forward(reference_ops, c.arrays, c.params)
                g["dy"] = c.dy
                for k, v in spec.vjp(reference_ops, c.arrays, c.params, c.dy).items():
                    g[k] = v
                if progress:
                    progress(1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(all_cases)
