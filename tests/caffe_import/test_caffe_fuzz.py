"""Fuzzing in-process: every malformed caffemodel or prototxt loads or raises FormatError, fast.

The mutators are ``tests/fuzz_harness.py``'s; ``test_fuzz_suite.py`` runs the harness's isolated,
all-format subset (HDF5, solver, load_net and convert included).

10,000+ truncated, bit-flipped, spliced and random inputs go to the binary caffemodel reader
(decode + upgrade + blob arrays) and 2,000+ mutated prototxts to the text reader, from a
seeded RNG; any exception other than FormatError fails the test with the input's recipe.
Each input must finish within PER_INPUT_SECONDS, and a sample is checked under tracemalloc
for bounded memory (no allocation driven by a length field).
"""

import time
import tracemalloc

import numpy as np
import pytest

import caffe_import as ci
from ..fuzz_harness import mutate_bytes, mutate_text, mutate_tree
from .fixture_paths import FIXTURES, NETS
from .test_caffe_upgrade import V0_NET, V1_NET

PER_INPUT_SECONDS = 0.5
N_BINARY = 10_000
N_TEXT = 2_000


def binary_seeds():
    seeds = []
    if FIXTURES.is_dir():
        seeds += [(FIXTURES / n / "weights.caffemodel").read_bytes() for n in NETS]
    # V0 and V1 nets with blobs (legacy and modern shapes, double data), written by our encoder
    v0 = ci.prototxt.parse(V0_NET)
    v0["layers"][1]["layer"]["blobs"] = [
        {"num": 4, "channels": 3, "height": 3, "width": 3,
         "data": np.linspace(-1, 1, 108, dtype=np.float32)},
        {"num": 1, "channels": 1, "height": 1, "width": 4, "data": np.ones(4, np.float32)}]
    seeds.append(ci.encode(v0, "NetParameter"))
    v1 = ci.prototxt.parse(V1_NET)
    v1["layers"][0]["blobs"] = [np.arange(24, dtype=np.float64).reshape(2, 3, 4)]
    seeds.append(ci.encode(v1, "NetParameter"))
    return seeds


def text_seeds():
    seeds = [V0_NET, V1_NET]
    if FIXTURES.is_dir():
        seeds += [(FIXTURES / n / "net.prototxt").read_text() for n in NETS]
    return seeds


def run_one(reader, data, recipe, index):
    start = time.perf_counter()
    try:
        reader(data)
        outcome = "ok"
    except ci.FormatError:
        outcome = "error"
    except Exception as exc:                          # noqa: BLE001 - the point of the test
        pytest.fail(f"input {index} ({recipe}, {len(data)} bytes) raised "
                    f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    assert elapsed < PER_INPUT_SECONDS, f"input {index} ({recipe}) took {elapsed:.2f} s"
    return outcome


def test_fuzz_caffemodel_reader():
    rng = np.random.default_rng(20240601)
    seeds = binary_seeds()
    outcomes = {"ok": 0, "error": 0}
    for index in range(N_BINARY):
        mutate = mutate_tree if index % 4 == 0 else mutate_bytes    # field-aware a quarter of the time
        data, recipe = mutate(rng, seeds[index % len(seeds)])
        outcomes[run_one(ci.read_caffemodel, data, recipe, index)] += 1
    assert sum(outcomes.values()) == N_BINARY
    # the mutations must exercise both paths substantially
    assert outcomes["ok"] > N_BINARY // 20 and outcomes["error"] > N_BINARY // 4, outcomes


def test_fuzz_other_binary_readers():
    rng = np.random.default_rng(7)
    mean = ci.encode({"num": 1, "channels": 3, "height": 2, "width": 2,
                      "data": np.arange(12, dtype=np.float32)}, "BlobProto")
    state = ci.encode({"iter": 3, "history": [np.ones((2, 2), np.float32)]}, "SolverState")
    for index in range(1000):
        data, recipe = mutate_bytes(rng, mean if index % 2 else state)
        run_one(ci.read_mean if index % 2 else ci.read_solverstate, data, recipe, index)


def test_fuzz_prototxt_reader():
    rng = np.random.default_rng(99)
    seeds = text_seeds()
    outcomes = {"ok": 0, "error": 0}
    for index in range(N_TEXT):
        data, recipe = mutate_text(rng, seeds[index % len(seeds)])
        outcomes[run_one(ci.read_prototxt, data, recipe, index)] += 1
    assert outcomes["ok"] > N_TEXT // 50 and outcomes["error"] > N_TEXT // 4, outcomes


def test_fuzz_memory_is_bounded_by_input_size():
    rng = np.random.default_rng(5)
    seeds = binary_seeds()
    tracemalloc.start()
    try:
        for index in range(300):
            data, recipe = mutate_bytes(rng, seeds[index % len(seeds)])
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                ci.read_caffemodel(data)
            except ci.FormatError:
                pass
            peak = tracemalloc.get_traced_memory()[1] - base
            assert peak < 1_000_000 + 50 * len(data), (index, recipe, peak)
    finally:
        tracemalloc.stop()
