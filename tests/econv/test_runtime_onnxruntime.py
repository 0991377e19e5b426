"""econv.runtimes.onnxruntime: the Caffe fixtures (tests/data/caffe, values computed by Caffe itself)
exported by caffe_import.onnx_writer and run by onnxruntime agree with Caffe, blob by blob."""

import h5py
import numpy as np
import pytest

from econv.runtimes import onnxruntime as rt
from tests.caffe_import.fixture_paths import FIXTURES, NETS

pytestmark = pytest.mark.skipif(not rt.available(), reason=rt.INSTALL_HINT)
CAFFE_TOL = 1e-4      # tests/data/caffe/README.md: Caffe ran float32 with OpenBLAS


def fixture(name):
    folder = FIXTURES / name
    if not folder.is_dir():
        pytest.skip(f"Caffe fixtures not found at {FIXTURES}")
    with h5py.File(folder / "io.h5", "r") as f:
        inputs = {k: f["inputs"][k][...] for k in f["inputs"]}
        blobs = {k: f["blobs"][k][...] for k in f["blobs"]}
    return folder, inputs, blobs


@pytest.mark.parametrize("name", NETS)
def test_fixture_agrees_with_caffe(name):
    folder, inputs, caffe = fixture(name)
    out = rt.run(str(folder / "net.prototxt"), str(folder / "weights.caffemodel"), inputs, want=None)
    compared = 0
    for blob, value in caffe.items():
        if blob in inputs or blob not in out:      # loss tops are left out of the export
            continue
        err = np.abs(out[blob] - value).max() / max(1.0, np.abs(value).max())
        assert err <= CAFFE_TOL, f"{name}/{blob}: {err:.2e}"
        compared += 1
    losses = {"fcn_skip": 1, "misc": 1}.get(name, 0)
    assert compared == len(caffe) - len(inputs) - losses


def test_in_place_intermediates_and_want():
    folder, inputs, caffe = fixture("fcn_skip")
    out = rt.run(str(folder / "net.prototxt"), str(folder / "weights.caffemodel"), inputs,
                 want=["fc6@fc6", "fc6@relu6", "fc6", "score", "not_a_blob"])
    assert list(out) == ["fc6@fc6", "fc6@relu6", "fc6", "score"]
    np.testing.assert_array_equal(out["fc6@relu6"], np.maximum(out["fc6@fc6"], 0))
    np.testing.assert_array_equal(out["fc6"], out["fc6@relu6"])       # Dropout at TEST: identity
    assert out["fc6@fc6"].min() < 0


def test_other_input_shapes_and_bad_inputs():
    folder, inputs, _ = fixture("conv_pool")
    x = np.random.default_rng(0).normal(size=(1, 3, 21, 16)).astype(np.float32)
    out = rt.run(str(folder / "net.prototxt"), str(folder / "weights.caffemodel"), {"data": x},
                 want=["pool2"])
    assert out["pool2"].shape == (1, 6, 6, 5)      # Caffe's ceil rule at 21x16
    with pytest.raises(ValueError, match="not inputs of the net"):
        rt.run(str(folder / "net.prototxt"), None, {"data": x, "extra": x}, want=None)
    with pytest.raises(ValueError, match="missing"):
        rt.run(str(folder / "net.prototxt"), None, {}, want=None)


def test_an_input_overwritten_in_place(tmp_path):
    """A ReLU in place on the input: the graph input is data@data, fed from inputs["data"]."""
    proto = tmp_path / "net.prototxt"
    proto.write_text('layer { name: "data" type: "Input" top: "data" '
                     'input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }\n'
                     'layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }\n'
                     'layer { name: "sig" type: "Sigmoid" bottom: "data" top: "sig" }\n')
    x = np.linspace(-2, 2, 18).reshape(1, 2, 3, 3).astype(np.float32)
    out = rt.run(str(proto), None, {"data": x}, want=None)
    assert list(out) == ["data", "sig"]
    np.testing.assert_array_equal(out["data"], np.maximum(x, 0))
    np.testing.assert_allclose(out["sig"], 1 / (1 + np.exp(-np.maximum(x, 0))), rtol=1e-6)
