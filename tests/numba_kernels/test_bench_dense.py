"""``econv bench --dense``: multiply-adds counted right on nets small enough to count by hand, and the
dense VGG-16 section runs in --quick mode with sane numbers (speed itself is measured, never asserted)."""

import json

import pytest

from numba_kernels import bench
from reference import Net, densify

from ._bench_cli import bench_args


def L(name, type_, bottom, **p):
    return {"name": name, "type": type_, "bottom": [bottom], "top": [name], **p}


def tiny_net():
    return Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 2, 6, 6]}]}},
        L("c1", "Convolution", "data", convolution_param={"num_output": 4, "kernel_size": 3, "group": 2}),
        L("r1", "ReLU", "c1"),
        L("p", "Pooling", "c1", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
        L("fc", "InnerProduct", "p", inner_product_param={"num_output": 5}),
    ])


def test_multiply_adds_by_hand():
    net = tiny_net()
    # c1: 4 outputs of 4x4, each 1 input channel (group 2) x 3x3 taps: 4*4*4*9 = 576
    # fc: 5 outputs from 4*2*2 = 16 inputs: 80
    assert bench.multiply_adds(net) == 576 + 80
    dense = densify(net, "p")
    # p at stride 1 (pad_end 1) keeps 4x4; fc becomes a 2x2 kernel dilated 2 -> 2x2 positions: 4*80
    assert dense.blob_shapes["fc"] == (1, 5, 2, 2)
    assert bench.multiply_adds(dense) == 576 + 320
    assert bench.multiply_adds(net, {"data": (3, 2, 6, 6)}) == 3 * 656           # batch 3
    deconv = Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 3, 5, 5]}]}},
        L("up", "Deconvolution", "data", convolution_param={"num_output": 2, "kernel_size": 3, "stride": 2}),
    ])
    assert bench.multiply_adds(deconv) == 5 * 5 * 3 * 2 * 9                         # every input x weights


def test_dense_section_quick_runs_with_sane_numbers(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "SETTLE", 0.0)
    path = tmp_path / "dense.json"
    args = bench_args("bench", "--dense", "--quick", "--repeat", "2", "--json", str(path))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "dense / baseline: time x" in out and "shift-and-stitch tree (21 nets)" in out
    saved = json.loads(path.read_text())
    (row,) = saved["results"]
    assert row["config"]["input_shape"] == [1, 3, 112, 112] and row["fragments"] == 16
    assert all(len(v) == 2 and min(v) > 0 for v in row["times"].values())
    r, m = row["ratios"], row["macs"]
    assert all(v > 0 for v in r.values())
    t = row["times_median"]
    assert r["dense_over_baseline_time"] == pytest.approx(t["dense"] / t["baseline"])
    assert r["dense_over_baseline_macs"] == pytest.approx(m["dense"] / m["baseline"])
    # pool4 (2x2/2) on 7x7 and pool5 on 4x4 at 112x112: conv5 on 14x14 instead of 7x7, fc6 a 4x4
    # kernel dilated 4 on 14x14 (2x2 positions), so dense does more work than the baseline
    assert 1.2 < r["dense_over_baseline_macs"] < 1.5
    # 16 whole nets repeat the trunk 16 times; the tree computes each value once, like the dense net
    assert 10 < r["fragments_over_dense_macs"] < 16
    assert r["stitch_over_dense_macs"] == pytest.approx(1.0, abs=0.05)
    assert max(row["max_error"].values()) < 1e-5
