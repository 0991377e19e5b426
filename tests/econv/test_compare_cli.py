"""`econv compare` and `econv deploy` from the command line: tables, exit codes, JSON, reproducers,
one-line errors; the runtime registry and the PyTorch port adapter."""

import json
from pathlib import Path

import numpy as np
import pytest

from econv.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "data" / "caffe"
PROBES = ROOT / "tests" / "data" / "probes"


def test_help_explains(capsys):
    for cmd in ("compare", "deploy"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Exit status: 0 every compared blob agrees, 1 a divergence, 2 bad usage" in out
    assert "--reproducers" in out and "Silence" in out


def test_theirs_agreement_exits_0(capsys):
    d = FIX / "conv_pool"
    rc = main(["compare", str(d / "net.prototxt"), str(d / "weights.caffemodel.h5"),
               "--theirs", str(d / "io.h5"), "--inputs", str(d / "io.h5"), "--names", "blob",
               "--rtol", "1e-4"])
    out = capsys.readouterr().out
    assert rc == 0 and "first divergence: none" in out
    assert out.splitlines()[0].split() == ["layer", "type", "blob", "max", "abs", "max", "rel", "ok"]
    # without --inputs the input blobs of the dump are used (io.h5 holds blobs/data)
    assert main(["compare", str(d / "net.prototxt"), str(d / "weights.caffemodel"),
                 "--theirs", str(d / "io.h5"), "--names", "blob"]) == 0


def test_divergence_exits_1_with_json_and_reproducers(tmp_path, capsys):
    pytest.importorskip("cv2", reason="OpenCV is in the test extra (opencv-python-headless<5)")
    d = PROBES / "ip_transpose"
    rc = main(["compare", str(d / "net.prototxt"), str(d / "weights.caffemodel"), "--runtime", "opencv",
               "--json", str(tmp_path / "r.json"), "--reproducers", str(tmp_path / "repro")])
    out = capsys.readouterr().out
    assert rc == 1 and "first divergence: ip (InnerProduct)" in out
    assert "explanation: inner_product_param.transpose ignored" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["first_divergence"]["isolated"] is True
    sub = tmp_path / "repro" / "ip"
    assert {p.name for p in sub.iterdir()} == {"net.prototxt", "weights.caffemodel", "inputs.h5",
                                               "oracle.h5", "theirs.h5", "README.md"}
    readme = (sub / "README.md").read_text()
    assert "econv compare net.prototxt weights.caffemodel --runtime opencv --inputs inputs.h5" in readme
    # the reproducer reproduces
    assert main(["compare", str(sub / "net.prototxt"), str(sub / "weights.caffemodel"), "--runtime",
                 "opencv", "--inputs", str(sub / "inputs.h5")]) == 1


@pytest.mark.parametrize("argv, message", [
    (["--runtime", "opencv", "--theirs", "x.npz"], None),                          # argparse: exit 2
    ([], "give --runtime or --theirs"),
    (["--theirs", "/nonexistent.npz"], "--theirs '/nonexistent.npz': no such file"),
    (["--theirs", "x.npz", "--input-shape", "data=a,3"], "expected NAME=N,C,H,W"),
])
def test_bad_usage_exits_2_with_one_line(argv, message, capsys):
    d = FIX / "conv_pool"
    try:
        rc = main(["compare", str(d / "net.prototxt"), str(d / "weights.caffemodel")] + argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    if message:
        assert err.count("\n") == 1 and err.startswith("econv compare: error: ") and message in err


def test_a_missing_runtime_adapter_is_a_clear_error(monkeypatch):
    from econv import runtimes

    monkeypatch.setitem(runtimes.RUNTIMES, "onnxruntime", ("econv.runtimes.no_such_adapter", "pip x"))
    with pytest.raises(runtimes.RuntimeMissing, match="adapter econv.runtimes.no_such_adapter is not"):
        runtimes.get_runtime("onnxruntime")
    monkeypatch.setitem(runtimes.RUNTIMES, "fake", ("json", "pip install fake"))
    with pytest.raises(AttributeError):
        runtimes.get_runtime("fake")                # json is no adapter: no available()
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        runtimes.get_runtime("nope")


def test_deploy_writes_and_refuses(tmp_path, capsys):
    out = tmp_path / "deploy.prototxt"
    assert main(["deploy", str(FIX / "fcn_skip" / "net.prototxt"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "SoftmaxWithLoss" not in text and '"label"' not in text and "force_backward" not in text
    bad = tmp_path / "train.prototxt"
    bad.write_text('layer { name: "d" type: "Data" top: "data" top: "label" }\n'
                   'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    assert main(["deploy", str(bad), "-o", str(tmp_path / "x.prototxt")]) == 2
    assert "give --input-shape data=N,C,H,W" in capsys.readouterr().err
    assert not (tmp_path / "x.prototxt").exists()
    assert main(["deploy", str(bad), "--input-shape", "1,3,4,4"]) == 0
    assert "dim: 4" in capsys.readouterr().out


def test_torch_port_agrees_on_fixtures_and_shows_pytorchs_size_rule():
    pytest.importorskip("torch", reason="PyTorch is optional (not in the test extra)")
    from econv.compare import compare

    d = FIX / "fcn_skip"
    assert compare(str(d / "net.prototxt"), str(d / "weights.caffemodel"), runtime="torch").ok
    d = PROBES / "pool_max_window_past_end"
    report = compare(str(d / "net.prototxt"), None, runtime="torch")
    rows = [r for r in report.rows if r.layer == "pool"]
    assert rows[0].note == "shape (2, 3, 2, 2), oracle (2, 3, 3, 3)"
    assert report.first.explanation.startswith("Caffe's clip rule applied without padding")
    assert np.isinf(report.first.max_abs_err)
