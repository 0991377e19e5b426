"""``econv bench --fcn``: multiply-adds of an FCN-shaped layout counted by hand (an equivalent
EDeconvolution and a rebuilt upsampling included), and the quick variant on the published voc-fcn8s
with consistent numbers: the ratios it reports are the ratios of the numbers it reports, the dense
net equals the baseline on the original grid from pool3 to fuse_pool3, memory in phase order (speed
itself is measured, never asserted)."""

import io
import json

import numpy as np
import pytest

from numba_kernels import bench, bench_fcn
from reference.tolerance import tolerance

from ._bench_cli import bench_args

FUSED = ["fc6", "fc7", "score_fr", "upscore2", "score_pool4", "score_pool4c", "fuse_pool4",
         "upscore_pool4", "score_pool3", "score_pool3c", "fuse_pool3"]


def L(name, type_, bottom, **p):
    return {"name": name, "type": type_, "bottom": [bottom], "top": [name], **p}


def conv(name, bottom, n, k, pad=0):
    return L(name, "Convolution", bottom, convolution_param={"num_output": n, "kernel_size": k, "pad": pad})


def tiny_fcn():
    """FCN in miniature: two 2x2/2 poolings, a 3x3 "fc", a 1x1 score, a fixed x4 upsampling."""
    pool = {"pool": "MAX", "kernel_size": 2, "stride": 2}
    return [{"name": "data", "type": "Input", "top": ["data"],
             "input_param": {"shape": [{"dim": [1, 1, 20, 20]}]}},
            conv("conv1", "data", 2, 3, pad=1), L("pool1", "Pooling", "conv1", pooling_param=pool),
            conv("conv2", "pool1", 3, 3, pad=1), L("pool2", "Pooling", "conv2", pooling_param=pool),
            conv("fc", "pool2", 4, 3), conv("score", "fc", 2, 1),
            L("up", "Deconvolution", "score", param=[{"lr_mult": 0}],
              convolution_param={"num_output": 2, "kernel_size": 8, "stride": 4, "bias_term": False})]


# baseline, 20x20 input: conv1 20x20 positions x 2 outputs x (1 x 3x3) = 7200; pool1 -> 10x10;
# conv2 10x10 x 3 x (2 x 9) = 5400; pool2 -> 5x5; fc 3x3 x 4 x (3 x 9) = 972; score 3x3 x 2 x 4 = 72;
# up (Deconvolution: every input position times every weight) 3x3 x (2 x 2 x 8x8) = 2304
BASELINE = 7200 + 5400 + 972 + 72 + 2304
# dense at pool1: pool1 and pool2 stride 1 keep 20x20; conv2 20x20 x 54 = 21600; fc (dilated 4)
# 12x12 x 108 = 15552; score 12x12 x 8 = 1152; up: an equivalent EDeconvolution (score's grid step
# 4 = up's stride) on 12x12 inputs x 256 weights = 36864
DENSE_POOL1 = 7200 + 21600 + 15552 + 1152 + 36864
# dense at pool2: pool2 stride 1 keeps 10x10; fc (dilated 2) 6x6 x 108 = 3888; score 6x6 x 8 = 288;
# up rebuilt for the grid (step 2 < stride 4): bilinear kernel 4, stride 2, group 2 (2, 1, 4, 4) on
# 6x6 inputs = 1152
DENSE_POOL2 = 7200 + 5400 + 3888 + 288 + 1152


@pytest.mark.parametrize("start, dense_macs, blobs", [
    ("pool1", DENSE_POOL1, ["pool1", "conv2", "pool2", "fc", "score", "up"]),
    ("pool2", DENSE_POOL2, ["pool2", "fc", "score"]),
])
def test_tiny_fcn_multiply_adds_by_hand(monkeypatch, start, dense_macs, blobs):
    monkeypatch.setattr(bench, "SETTLE", 0.0)
    report = bench.Report(out=io.StringIO())
    cfg = dict(narrow=1, size=20, start=start, threads=2, seed=0)
    r = bench_fcn.bench_fcn(report, quick=True, repeat=2, config=cfg, specs=tiny_fcn(), memory=False)
    assert r["macs"] == {"baseline": BASELINE, "dense": dense_macs}
    assert r["ratios"]["macs"] == pytest.approx(dense_macs / BASELINE, rel=1e-12)
    assert r["equivalent_blobs"] == blobs                # after the rebuilt upsampling: no grid
    assert max(r["max_error"].values()) <= tolerance(np.float32)
    assert all(len(v) == 2 and min(v) > 0 for v in r["times"].values())
    assert r["memory"] == {}
    for name in ("baseline", "dense"):
        assert sum(r["layer_macs"][name].values()) == r["macs"][name]
        per_round = [sum(ts[i] for ts in r["layer_times"][name].values()) for i in range(2)]
        assert all(0 < p <= t for p, t in zip(per_round, r["times"][name]))


@pytest.mark.parametrize("argv, message", [
    (["--repeat", "0"], "--repeat must be >= 1, got 0"),
    (["--dense"], "--fcn and --dense are two different benchmarks"),
    (["--json", "no/such/folder/fcn.json"], "its folder does not exist"),
])
def test_fcn_bad_usage_is_one_line_exit_2(capsys, argv, message):
    from econv.cli import main

    assert main(["bench", "--fcn", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("econv bench: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_fcn_quick_runs_with_consistent_numbers(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "SETTLE", 0.0)
    path = tmp_path / "fcn.json"
    args = bench_args("bench", "--fcn", "--quick", "--repeat", "2", "--json", str(path))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "dense / baseline: time x" in out and "voc-fcn8s deploy.prototxt as published" in out
    (row,) = json.loads(path.read_text())["results"]
    assert row["config"] == bench_fcn.fcn_config(quick=True)
    assert row["threads"]["numba_threads"] <= 2
    m, r, t = row["macs"], row["ratios"], row["times"]
    # the ratios are those of the reported numbers
    assert r["macs"] == pytest.approx(m["dense"] / m["baseline"], rel=1e-12)
    assert r["time_median"] == pytest.approx(np.median(t["dense"]) / np.median(t["baseline"]))
    assert r["time_min"] == pytest.approx(min(t["dense"]) / min(t["baseline"]))
    assert r["time_over_macs"] == pytest.approx(r["time_median"] / r["macs"])
    assert all(row["times_range"][k] == [min(v), max(v)] for k, v in t.items())
    # the counts are those of the published layout at 1/8 width, 250x250: conv1_1 alone has 8
    # outputs x 3x3x3 weights on 448x448 positions (pad 100) and the dense net counts it once too
    assert m["baseline"] > 448 * 448 * 8 * 27 and m["dense"] > m["baseline"]
    nets = bench_fcn.build_nets(row["config"])
    assert m == {k: bench.multiply_adds(net) for k, net in nets.items()}
    # the dense net holds the baseline on the original grid, pool3 .. fuse_pool3
    blobs = row["equivalent_blobs"]
    assert blobs[0] == "pool3" and blobs[-1] == "fuse_pool3" and set(FUSED) <= set(blobs)
    assert "upscore8" not in blobs and "score" not in blobs
    assert max(row["max_error"].values()) <= tolerance(np.float32)
    assert row["final"] == {"blob": "score", "baseline": [1, 21, 250, 250], "dense": [1, 21, 250, 250]}
    # memory in phase order, each net in its own process
    for which in ("baseline", "dense"):
        mem = row["memory"][which]
        assert mem["net"] == which and mem["numba_threads"] <= 2
        assert 0 < mem["ready"] <= mem["build_peak"] and mem["built"] <= mem["build_peak"]
        assert mem["forward_peak"] >= mem["built"] and mem["forward_increment"] >= 0


def test_failed_memory_process_and_missing_prototxt_are_clear_errors(monkeypatch, tmp_path):
    import subprocess

    def killed(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, -9, stdout="", stderr="")

    monkeypatch.setattr(bench_fcn.subprocess, "run", killed)
    with pytest.raises(ChildProcessError, match="dense net's memory process failed .killed by signal 9"):
        bench_fcn.measure_memory("dense", bench_fcn.fcn_config(quick=True))
    assert issubclass(ChildProcessError, OSError)            # the CLI prints it as one line, exit 2
    with pytest.raises(ValueError, match="deploy.prototxt is not at"):
        bench_fcn.fcn_specs(prototxt=tmp_path / "missing.prototxt")
