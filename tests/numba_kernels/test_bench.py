"""``econv bench`` (numba_kernels.bench): the subcommand parses, runs end to end on a tiny
configuration, prints ratios and saves JSON.  (Speed itself is measured, never asserted.)"""

import io
import json

import pytest

from numba_kernels import bench

from ._bench_cli import bench_args


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench, "configs", lambda quick: [dict(c=4, hw=6, est=2)])
    monkeypatch.setattr(bench, "warm_up", lambda torch, seconds=1.0: None)
    monkeypatch.setattr(bench, "SETTLE", 0.0)


def test_bench_subcommand_runs_and_saves_json(tiny, tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = bench_args("bench", "--quick", "--repeat", "1", "--json", str(path))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "eConv forward" in out and "ePool MAX k2 p0 fwd" in out
    assert "% of sgemm" in out and "vs reference" in out
    saved = json.loads(path.read_text())
    assert saved["machine"]["nproc"] >= 1 and saved["repeat"] == 1
    ops = {r["op"] for r in saved["results"]}
    assert {"eConv forward", "eConv backward", "ePool AVE k2 p0 bwd"} <= ops
    for row in saved["results"]:
        assert row["times"]["numba"] > 0 and row["ratios"]["reference"] > 0
        for timing in row["timings"].values():       # every column timed in the same rounds
            assert len(timing["rounds"]) == 1
            assert timing["min"] <= timing["median"] <= timing["max"]
    rows = {r["op"]: r for r in saved["results"]}
    for k in ("k2 p0", "k3 p1"):             # MAX: the plain forward and the training forward
        assert {"numba", "numba+argmax", "reference"} <= set(rows[f"ePool MAX {k} fwd"]["timings"])
        assert set(rows[f"ePool MAX {k} bwd"]["timings"]) >= {"numba", "reference"}
        assert "numba-remembered" not in rows[f"ePool MAX {k} bwd"]["timings"]
    assert "numba+argmax" not in rows["ePool AVE k2 p0 fwd"]["timings"]


def test_timed_rounds_interleave_and_summarise(monkeypatch):
    monkeypatch.setattr(bench, "SETTLE", 0.0)
    order = []
    t = bench.timed_rounds({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 3)
    assert order == ["a", "a", "b", "b"] * 3          # untimed + timed call, in turn, per round
    assert len(t["a"].samples) == 3 and t["a"].low <= t["a"].median <= t["a"].high


def test_default_sizes_are_conv5_plus_a_64_and_a_256_channel_layer():
    sizes = [(c["c"], c["hw"], c["est"]) for c in bench.configs(False)]
    assert sizes[:4] == [(512, 28, 2), (512, 28, 4), (512, 56, 2), (512, 56, 4)]
    assert {c for c, _, _ in sizes[4:]} == {64, 256}


def test_bench_without_reference_and_bad_repeat(tiny):
    result = bench.run(repeat=1, with_reference=False, out=io.StringIO())
    assert all("reference" not in r["times"] for r in result["results"])
    args = bench_args("bench", "--repeat", "0")
    with pytest.raises(ValueError, match="repeat"):
        args.func(args)
