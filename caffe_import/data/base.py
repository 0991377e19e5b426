"""What every data layer shares: no bottoms, fixed top shapes, its own seeded generators, file
lookup, and errors that say how to go on without the data.

Caffe's data layers (``BaseDataLayer``, ``src/caffe/layers/base_data_layer.cpp`` lines 14-33) read
their files in ``LayerSetUp``; here that is ``configure`` (file lists, databases) and the first
``reshape`` (the top shapes).  Each forward returns the next batch.  No gradient flows into a data
layer (its backward returns nothing).

Randomness.  Caffe seeds one generator for shuffling (``prefetch_rng_``) and one for the
transformer (``DataTransformer::InitRand``, ``data_transformer.cpp`` lines 528-538).  Here each data
layer owns two NumPy generators seeded by (the Net's seed, the layer's name, 0 or 1); they never
draw from the Net's generator, so adding or removing a data layer does not change the fillers'
initial weights.  Runs are reproducible for a given seed; the streams are not Caffe's (Boost's
mt19937 with a time-based seed).
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from reference.layers.base import Layer

#: Caffe's data layer types (inputs that come from files or memory, never from a bottom).
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData")


def go_on_hint(spec: dict) -> str:
    """How to run a net whose data layer ``spec`` cannot be built: a deploy file, or the override
    that turns the layer's tops into Inputs."""
    tops = [str(t) for t in (spec.get("top") or [])]
    example = ", ".join(f"{t!r}: (N, C, H, W)" if i == 0 else f"{t!r}: (N,)" for i, t in enumerate(tops))
    flags = " ".join(f"--input-shape {t}=..." for t in tops)
    return (f"to go on without it, use the model's deploy prototxt, or replace the layer's tops by "
            f"inputs: load_net(..., input_shapes={{{example}}}) or `econv info ... {flags}`")


def net_seed(rng) -> int:
    """The entropy of the Net's generator (``default_rng(seed)``), read without drawing from it."""
    seq = getattr(getattr(rng, "bit_generator", None), "seed_seq", None)
    entropy = getattr(seq, "entropy", None)
    return int(entropy) if isinstance(entropy, int) else 0


class DataLayer(Layer):
    """Base of the file- and memory-backed layers (see the module docstring)."""

    n_bottom = (0, 0)
    n_top = (1, 2)
    is_data = True          # built from files: the loader's pre-flight check does not construct it

    def __init__(self, spec: dict, **kw):
        self._top_shapes = None
        super().__init__(spec, **kw)

    # ---- helpers --------------------------------------------------------------------------------
    def generator(self, stream: int) -> np.random.Generator:
        """This layer's own generator ``stream`` (0: shuffling, 1: the transformer)."""
        key = zlib.crc32(self.name.encode("utf-8"))
        return np.random.default_rng([net_seed(self.rng), key, stream])

    def fail(self, msg: str) -> ValueError:
        """A ValueError naming the layer, ending with how to go on without the data."""
        return self.error(f"{msg}; {go_on_hint(self.spec)}")

    def find_file(self, path: str, what: str, *, next_to: str | None = None) -> str:
        """``path`` as Caffe opens it (relative to the working directory); failing that, relative
        to the folder of ``next_to`` (the list file naming it).  A clear error when neither exists."""
        if os.path.exists(path):
            return path
        if next_to and not os.path.isabs(path):
            candidate = os.path.join(os.path.dirname(os.path.abspath(next_to)), path)
            if os.path.exists(candidate):
                return candidate
        where = f" (nor next to {next_to})" if next_to else ""
        raise self.fail(f"{what} {path!r} not found in {os.getcwd()}{where}")

    # ---- hooks ----------------------------------------------------------------------------------
    def reshape(self, shapes):
        if self._top_shapes is None:
            self._top_shapes = [tuple(int(d) for d in s) for s in self.first_shapes()]
        return list(self._top_shapes)

    def first_shapes(self) -> list:
        """The top shapes, from the first record (called once)."""
        raise NotImplementedError

    def run_backward(self, top_diffs, bottoms, tops):
        return []
