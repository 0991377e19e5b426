"""econv vectors: written through the CLI or the module, read back with plain h5py, recomputed with
the reference bit for bit; >= 100 cases over the six ops; deterministic for a seed; the reading
snippet of docs/VECTORS.md runs as written."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import reference as ref
from econv.cli import main
from econv.vectors import FORMAT, vector_cases, write_vectors
from reference.optable import TIE_RULE, hard_cases
from reference.pool import EMPTY_AVE_WINDOW

DOC = Path(__file__).resolve().parents[2] / "docs" / "VECTORS.md"


def param(v):
    """An attribute as the reference takes it: (h, w) pairs as tuples, ints, strings."""
    if isinstance(v, np.ndarray):
        return tuple(int(i) for i in v)
    return int(v) if isinstance(v, np.integer) else v


def recompute(g):
    """Run the reference on one group's inputs and parameters: {dataset name: array}."""
    op = g.attrs["op"]
    p = {k: param(v) for k, v in g.attrs.items() if k not in ("op", "note")}
    a = {k: g[k][()] for k in g}
    if op == "pool2d":
        return {"y": ref.pool2d(a["x"], **p), "dx": ref.pool2d_backward(a["dy"], a["x"], **p)}
    fwd, bwd = getattr(ref, op), getattr(ref, op + "_backward")
    out = {"y": fwd(a["x"], a["w"], a.get("b"), **p)}
    out["dx"], out["dw"], db = bwd(a["dy"], a["x"], a["w"], **p, bias="b" in a)
    if "b" in a:
        out["db"] = db
    return out


def check_file(path):
    """Every case recomputes exactly; returns {op: number of cases}."""
    per_op = {}
    with h5py.File(path, "r") as f:
        for name, g in f["cases"].items():
            op = g.attrs["op"]
            per_op[op] = per_op.get(op, 0) + 1
            expected = recompute(g)
            stored = {k: g[k][()] for k in g if k in ("y", "dx", "dw", "db")}
            assert set(stored) == set(expected), name
            for k, v in expected.items():
                assert stored[k].dtype == v.dtype == np.float64, (name, k)
                assert np.array_equal(stored[k], v), (name, k)      # identical, not merely close
    return per_op


def test_cli_round_trip(tmp_path, capsys):
    path = tmp_path / "golden.h5"
    assert main(["vectors", "-o", str(path), "--count", "5", "--seed", "3", "--no-hard"]) == 0
    assert "wrote 15 cases (float64)" in capsys.readouterr().out
    assert check_file(path) == {"conv2d": 5, "deconv2d": 5, "pool2d": 5}
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["dtype"] == "float64" and f.attrs["seed"] == 3
        assert [n for n in f["cases"]] == [c.name for c in vector_cases(5, 3)]   # table order


def test_default_file_has_over_100_cases_over_the_six_ops(tmp_path):
    path = tmp_path / "golden.h5"
    assert write_vectors(str(path), hard=True) == 102 + 17
    per_op = check_file(path)
    assert per_op == {"conv2d": 34 + 3, "deconv2d": 34 + 2, "pool2d": 34 + 12}
    with h5py.File(path, "r") as f:
        assert f.attrs["tie_rule"] == TIE_RULE and f.attrs["hard"]
        tie = f["cases/pool2d_hard_tie_overlap"]
        assert TIE_RULE in tie.attrs["note"]
        assert set(tie) == {"x", "y", "dy", "dx"} and tie.attrs["mode"] == "max"
        conv = f["cases/conv2d_hard_est2_dw"]
        assert list(conv.attrs["est"]) == [2, 2] and conv.attrs["group"] == 1
        assert set(conv) == {"x", "w", "b", "y", "dy", "dx", "dw", "db"}
        nobias = f["cases/conv2d_hard_est1_stride3_rect"]
        assert "b" not in nobias and "db" not in nobias
        names = list(f["cases"])
        assert names[:len(hard_cases("conv2d"))] == [c.name for c in hard_cases("conv2d")]
    assert write_vectors(str(path)) == 102        # without the hard cases: 34 per op


def test_same_seed_same_bytes_other_seed_other_cases(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.h5", "b.h5", "c.h5"))
    write_vectors(str(a), count=4, seed=9, hard=True)
    write_vectors(str(b), count=4, seed=9, hard=True)
    write_vectors(str(c), count=4, seed=10, hard=True)
    assert a.read_bytes() == b.read_bytes()
    with h5py.File(a, "r") as fa, h5py.File(c, "r") as fc:
        hard = [h.name for h in hard_cases()]
        for name in hard:                                   # the hard cases do not depend on the seed
            assert np.array_equal(fa["cases"][name]["y"][()], fc["cases"][name]["y"][()])
        assert [n for n in fa["cases"] if n not in hard] != [n for n in fc["cases"] if n not in hard]


def test_ops_and_dtype_select_what_is_written(tmp_path):
    path = tmp_path / "pool.h5"
    assert write_vectors(str(path), count=3, ops=["pool2d_backward", "conv2d"]) == 6
    with h5py.File(path, "r") as f:
        assert f.attrs["ops"] == "pool2d,conv2d"
        assert sorted({g.attrs["op"] for g in f["cases"].values()}) == ["conv2d", "pool2d"]
    write_vectors(str(path), count=2, dtype=np.float32)
    with h5py.File(path, "r") as f:
        assert f.attrs["tolerance"] == 1e-5
        assert {g["y"].dtype for g in f["cases"].values()} == {np.dtype(np.float32)}
    with pytest.raises(ValueError, match="unknown op 'relu'"):
        vector_cases(ops=["relu"])


def test_the_reading_snippet_in_docs_runs(tmp_path, monkeypatch):
    """docs/VECTORS.md's Python block, run as written with the reference as `my`: every case passes."""
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    write_vectors("golden.h5", count=3, hard=True)
    namespace = {"my": ref}
    exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["checked"] == 9 + 17 and namespace["failed"] == []


def test_cli_ops_and_hard_cases(tmp_path, capsys):
    path = tmp_path / "pool.h5"
    assert main(["vectors", "-o", str(path), "--count", "2", "--ops", "pool2d"]) == 0
    assert "wrote 14 cases" in capsys.readouterr().out          # 2 random + 12 hard pooling cases
    assert check_file(path) == {"pool2d": 14}


def test_float32_file_holds_the_float64_values_and_names_the_conventions(tmp_path):
    path = tmp_path / "golden32.h5"
    write_vectors(str(path), count=3, dtype=np.float32, hard=True)
    with h5py.File(path, "r") as f:
        assert f.attrs["conventions"] == EMPTY_AVE_WINDOW
        noted = [n for n, g in f["cases"].items() if EMPTY_AVE_WINDOW in g.attrs.get("note", "")]
        assert noted == ["pool2d_hard_window_past_end_ave"]
        for name, g in f["cases"].items():
            a = {k: g[k][()].astype(np.float64) for k in g}   # the stored float32 inputs, exactly
            p = {k: param(v) for k, v in g.attrs.items() if k not in ("op", "note")}
            if g.attrs["op"] == "pool2d":
                want = ref.pool2d(a["x"], **p)
            else:
                want = getattr(ref, g.attrs["op"])(a["x"], a["w"], a.get("b"), **p)
            assert g["y"].dtype == np.float32
            assert np.array_equal(g["y"][()], want.astype(np.float32)), name   # rounded once
