"""econv export-onnx: writes a model onnxruntime runs, refuses what it cannot export (exit 2, no file)."""

import numpy as np
import pytest

from econv.cli import main
from tests.caffe_import.fixture_paths import FIXTURES

onnx = pytest.importorskip("onnx", reason="export-onnx needs the onnx package (econv[onnx])")
ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime (econv[onnx])")


def paths(name):
    folder = FIXTURES / name
    if not folder.is_dir():
        pytest.skip(f"Caffe fixtures not found at {FIXTURES}")
    return str(folder / "net.prototxt"), str(folder / "weights.caffemodel")


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as e:
        main(["export-onnx", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "blob@layer" in out and "--dense-from" in out and "AVE divisor" in out


def test_export_runs_and_names_outputs(tmp_path, capsys):
    proto, weights = paths("conv_pool")
    out = tmp_path / "m.onnx"
    assert main(["export-onnx", proto, weights, "-o", str(out), "--all-blobs",
                 "--input-shape", "data=1,3,20,20"]) == 0
    model = onnx.load(str(out))
    names = [o.name for o in model.graph.output]
    assert names[:3] == ["conv1@conv1", "conv1", "pool1"] and names[-1] == "fc"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (fc,) = session.run(["fc"], {"data": np.zeros((1, 3, 20, 20), np.float32)})
    assert fc.shape == (1, 5)
    assert "m.onnx" in capsys.readouterr().err


def test_input_shape_without_a_name_for_a_one_input_net(tmp_path):
    proto, weights = paths("v1_legacy")
    out = tmp_path / "m.onnx"
    assert main(["export-onnx", proto, weights, "-o", str(out), "--input-shape", "2,3,15,15"]) == 0
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 15, 15]


def test_dense_export(tmp_path):
    proto, weights = paths("conv_pool")
    out = tmp_path / "dense.onnx"
    assert main(["export-onnx", proto, weights, "-o", str(out), "--dense-from", "pool1"]) == 0
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"Conv", "MaxPool", "AveragePool"} <= ops


def test_loss_layers_refused_cleanly(tmp_path, capsys):
    proto, weights = paths("fcn_skip")
    out = tmp_path / "m.onnx"
    assert main(["export-onnx", proto, weights, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("econv export-onnx: error: layer 'loss' (SoftmaxWithLoss)")
    assert "econv deploy" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(["export-onnx", proto, weights, "-o", str(out), "--skip-losses"]) == 0
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["data"]


def test_bad_input_shape_and_bad_file(tmp_path, capsys):
    proto, weights = paths("conv_pool")
    assert main(["export-onnx", proto, weights, "-o", str(tmp_path / "a.onnx"),
                 "--input-shape", "data=1,3,x"]) == 2
    assert main(["export-onnx", proto, weights, "-o", str(tmp_path / "a.onnx"),
                 "--input-shape", "data=1,3,30,30"]) == 2      # fc's trained weights need 17x19
    bad = tmp_path / "bad.prototxt"
    bad.write_text("layer { name: ")
    assert main(["export-onnx", str(bad), "-o", str(tmp_path / "a.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("econv export-onnx: error:") == 3 and "Traceback" not in err
    assert "layer 'fc' (InnerProduct): parameter blob 0 has shape (5, 16)" in err
    assert list(tmp_path.iterdir()) == [bad]
