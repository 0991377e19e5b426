"""scripts/probe_onnxruntime.py: the probes run and report the verdicts docs/RUNTIMES.md, onnxruntime
states for the rules that are ONNX's own (count_include_pad=0, the floor + end-padding trick, LRN's
alpha/size).  Skipped without onnxruntime (an optional extra)."""

import pytest

from ._load import load_script

pytest.importorskip("onnx", reason="the probes need onnx (pip install econv[onnx])")
pytest.importorskip("onnxruntime", reason="the probes need onnxruntime (pip install econv[onnx])")


def load():
    return load_script("probe_onnxruntime")


def test_probe_verdicts():
    probe = load().probe
    assert probe("lrn_across")["verdict"].startswith("agrees")
    assert probe("ave_ceil_include_pad_overhang")["verdict"].startswith("agrees")
    exclude = probe("ave_ceil_exclude_pad")["verdict"]
    trick = probe("ave_floor_end_pad_trick")["verdict"]
    assert exclude.startswith("differs: 0.848") and trick.startswith("differs: 0.334")


def test_main_prints_a_table(capsys):
    assert load().main(["--case", "max_ceil_overhang", "--case", "max_nan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("onnxruntime ") and out.count("agrees") == 2
