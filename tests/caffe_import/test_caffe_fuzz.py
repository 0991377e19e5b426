"""Fuzzing: every malformed caffemodel or prototxt loads or raises FormatError, fast.

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


def mutate_bytes(rng, data: bytes) -> tuple[bytes, str]:
    kind = int(rng.integers(8))
    buf = bytearray(data)
    n = len(buf)
    if kind == 0:                                   # truncate
        cut = int(rng.integers(0, n + 1))
        return bytes(buf[:cut]), f"truncate at {cut}"
    if kind == 1:                                   # flip 1..8 bits
        flips = int(rng.integers(1, 9))
        for pos in rng.integers(0, n, flips):
            buf[pos] ^= 1 << int(rng.integers(8))
        return bytes(buf), f"flip {flips} bits"
    if kind == 2:                                   # overwrite bytes with random values
        pos = int(rng.integers(0, n))
        k = int(rng.integers(1, 12))
        buf[pos:pos + k] = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
        return bytes(buf), f"overwrite {k} at {pos}"
    if kind == 3:                                   # insert a varint-looking run
        pos = int(rng.integers(0, n + 1))
        ins = bytes([0xFF] * int(rng.integers(1, 12))) + bytes([int(rng.integers(0, 128))])
        return bytes(buf[:pos] + ins + buf[pos:]), f"insert varint at {pos}"
    if kind == 4:                                   # splice: duplicate or drop a span
        a, b = sorted(int(x) for x in rng.integers(0, n + 1, 2))
        if rng.random() < 0.5:
            return bytes(buf[:b] + buf[a:b] + buf[b:]), f"duplicate {a}:{b}"
        return bytes(buf[:a] + buf[b:]), f"drop {a}:{b}"
    if kind == 5:                                   # pure random bytes
        k = int(rng.integers(0, 600))
        return rng.integers(0, 256, k, dtype=np.uint8).tobytes(), f"random {k}"
    if kind == 6:                                   # random bytes after a valid prefix
        cut = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, 64))
        return bytes(buf[:cut]) + rng.integers(0, 256, k, dtype=np.uint8).tobytes(), \
            f"prefix {cut} + random {k}"
    pos = int(rng.integers(0, n))                    # set a byte to an extreme value
    buf[pos] = int(rng.choice([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(buf), f"extreme byte at {pos}"


TOKENS = ["{", "}", "<", ">", ":", ";", ",", "[", "]", "\n", " ", "#", '"', "'", "\\", "-",
          "0", "1", "-1", "1e40", "0x7fffffff", "99999999999", "3.5", "nan", "inf", "true",
          "layer", "layers", "name", "type", "input", "input_dim", "convolution_param",
          "pool", "MAX", "CONVOLUTION", "blobs", "dim", "shape", "\u00e9", "\x00", "\\x41",
          "'a\\'b'", "param", "lr_mult", "kernel_size", "include", "phase", "TRAIN"]


def mutate_text(rng, text: str) -> tuple[bytes, str]:
    steps = int(rng.integers(1, 4))
    recipe = []
    for _ in range(steps):
        n = len(text)
        kind = int(rng.integers(6))
        pos = int(rng.integers(0, n + 1))
        if kind == 0:
            text = text[:pos]
            recipe.append(f"truncate {pos}")
        elif kind == 1:
            end = min(n, pos + int(rng.integers(1, 40)))
            text = text[:pos] + text[end:]
            recipe.append(f"delete {pos}:{end}")
        elif kind in (2, 3):
            tok = TOKENS[int(rng.integers(len(TOKENS)))]
            text = text[:pos] + tok + text[pos:]
            recipe.append(f"insert {tok!r} at {pos}")
        elif kind == 4:
            end = min(n, pos + int(rng.integers(1, 200)))
            text = text[:end] + text[pos:end] + text[end:]
            recipe.append(f"duplicate {pos}:{end}")
        else:
            if n:
                p = min(pos, n - 1)
                text = text[:p] + chr(int(rng.integers(32, 127))) + text[p + 1:]
                recipe.append(f"replace char {p}")
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.03 and data:                  # occasionally break the UTF-8 too
        p = int(rng.integers(len(data)))
        data = data[:p] + b"\xff" + data[p + 1:]
        recipe.append(f"byte 0xff at {p}")
    return data, "; ".join(recipe)


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
        data, recipe = mutate_bytes(rng, seeds[index % len(seeds)])
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
