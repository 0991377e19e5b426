"""econv.compare end to end: against Caffe's own values (the fixtures' io.h5), against OpenCV's dnn
(a real runtime: agreement on the fixtures, the bugs the probe nets show), and against doctored blob
files whose first divergence, isolation verdict, explanation and masking are known by construction."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from econv.compare import compare, read_arrays, resolve
from reference import Net

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "caffe"
PROBES = ROOT / "tests" / "data" / "probes"


def fixture(name):
    d = FIXTURES / name
    return str(d / "net.prototxt"), str(d / "weights.caffemodel"), str(d / "io.h5")


def probe(name):
    d = PROBES / name
    w = d / "weights.caffemodel"
    return str(d / "net.prototxt"), (str(w) if w.exists() else None)


def caffe_blobs(name):
    with h5py.File(fixture(name)[2], "r") as f:
        return {k: f["blobs"][k][()] for k in f["blobs"]}


# ---- against Caffe's own values: zero false alarms -------------------------------------------------

@pytest.mark.parametrize("name", ["conv_pool", "fcn_skip", "misc"])
def test_caffe_own_blobs_agree(name):
    """pycaffe's net.blobs after forward (in-place blobs hold the last layer's value): every compared
    row agrees to the fixtures' 1e-4; loss and label blobs are reported unmatched, not compared."""
    proto, weights, io = fixture(name)
    report = compare(proto, weights, theirs=io, inputs=io, naming="blob", rtol=1e-4)
    assert report.ok and report.first is None and report.masked == []
    assert sorted(report.unmatched) == {"conv_pool": [], "fcn_skip": ["label", "loss"],
                                        "misc": ["loss", "target"]}[name]
    assert max(r.max_rel_err for r in report.rows if r.ok is not None) < 1e-6
    # the values an in-place layer overwrote are not in pycaffe's dump: listed, not compared
    assert report.not_compared == {"conv_pool": ["conv1@conv1", "conv2@conv2"],
                                   "fcn_skip": ["conv1@conv1", "conv2@conv2", "fc6@fc6", "fc6@relu6"],
                                   "misc": []}[name]


# ---- against OpenCV's dnn -----------------------------------------------------------------------------

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the test extra (opencv-python-headless<5)")


@pytest.mark.parametrize("name, layers", [("conv_pool", 8), ("fcn_skip", 16), ("v1_legacy", 4)])
def test_opencv_agrees_on_the_fixtures(name, layers):
    """In-place ReLU/Dropout, split blobs (pool1 read twice in fcn_skip), the loss layer and the label
    input (derived away): every layer compared, all agree."""
    proto, weights, _ = fixture(name)
    report = compare(proto, weights, runtime="opencv")
    assert report.ok, report.table()
    assert len(report.rows) == layers and all(r.ok for r in report.rows)
    assert report.unmatched == [] and report.masked == []
    assert max(r.max_rel_err for r in report.rows) < 1e-5
    assert {r.layer for r in report.rows} >= {"relu1"}


def test_opencv_lrn_ignores_k_on_the_misc_fixture():
    proto, weights, io = fixture("misc")
    report = compare(proto, weights, runtime="opencv", inputs=io)
    d = report.first
    assert not report.ok and (d.layer, d.type, d.blob) == ("lrn_a", "LRN", "lrn_a")
    assert d.isolated is True and 0.3 < d.max_rel_err < 1
    assert d.explanation.startswith("lrn_param.k ignored (k=1 reproduces theirs to ")
    assert [r.ok for r in report.rows[1:4]] == [True, True, True]       # lrn_w, bn, sc
    where = tuple(d.where)
    assert len(where) == 4 and d.theirs != pytest.approx(d.oracle, rel=1e-3)
    # the oracle's value there is Caffe's (io.h5, computed by real Caffe)
    assert d.oracle == pytest.approx(float(caffe_blobs("misc")["lrn_a"][where]), rel=1e-4)


@pytest.mark.parametrize("name, layer, isolated, words", [
    ("pool_max_window_past_end", "pool", True, "a MAX window with no input pixel gives 0"),
    ("ip_transpose", "ip", True, "inner_product_param.transpose ignored"),
    ("deconv_dilation", "deconv", True, "convolution_param.dilation ignored (dilation=1 reproduces"),
    ("lrn_across_k", "lrn", True, "lrn_param.k ignored (k=1 reproduces"),
    ("pool_ave_window_past_end", "pool", True, "an AVE window with no tap gives NaN"),
])
def test_opencv_bugs_found_isolated_and_explained(name, layer, isolated, words):
    report = compare(*probe(name), runtime="opencv")
    assert not report.ok
    assert report.first.layer == layer and report.first.isolated is isolated
    assert words in report.first.explanation


def test_opencv_max_pool_bug_is_masked_by_a_relu():
    """OpenCV gives 0 for a MAX window past the input where Caffe gives -FLT_MAX; a ReLU after it
    maps both to 0, so the net's output agrees: the divergence is listed as masked."""
    report = compare(*probe("masked_max_pool_relu"), runtime="opencv")
    rows = {r.layer: r for r in report.rows}
    assert rows["pool"].ok is False and rows["pool"].max_abs_err == pytest.approx(3.4028235e38, rel=1e-6)
    assert rows["relu"].ok is True and report.masked == ["pool"]
    assert 2 in report.first.where[2:] and report.first.theirs == 0.0       # the 3rd row or column
    assert report.first.oracle == pytest.approx(-3.4028235e38, rel=1e-6)


@pytest.mark.parametrize("name", ["conv_group", "crop_offsets", "batchnorm_factor", "lrn_within_k",
                                  "pool_ave_pad_clip", "eltwise_coeff", "inplace_chain"])
def test_opencv_agrees_on_probes(name):
    report = compare(*probe(name), runtime="opencv")
    assert report.ok, report.table()


def test_econv_compare_is_callable():
    import econv

    report = econv.compare(*probe("lrn_across_k"), runtime="opencv")
    assert report.first.layer == "lrn" and econv.compare.compare is compare


def test_json_contract_and_reproducers(tmp_path):
    import json

    report = compare(*probe("lrn_across_k"), runtime="opencv")
    report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data) >= {"ok", "runtime", "dtype", "rows", "first_divergence", "masked"}
    assert data["ok"] is False and data["runtime"] == "opencv" and data["dtype"] == "float32"
    assert set(data["rows"][0]) == {"layer", "type", "blob", "max_abs_err", "max_rel_err", "ok"}
    first = data["first_divergence"]
    assert set(first) == {"layer", "type", "blob", "max_abs_err", "max_rel_err", "where", "theirs",
                          "oracle", "isolated", "explanation"}
    assert first["layer"] == "lrn" and first["isolated"] is True and len(first["where"]) == 4
    folders = report.write_reproducers(tmp_path / "repro")
    assert [Path(f).name for f in folders] == ["lrn"]
    sub = Path(folders[0])
    assert {p.name for p in sub.iterdir()} == {"net.prototxt", "inputs.h5", "oracle.h5", "theirs.h5",
                                               "README.md"}
    with h5py.File(sub / "inputs.h5") as f, h5py.File(sub / "oracle.h5") as g:
        assert f["data"].shape == (2, 6, 4, 4) and g["lrn"].dtype == np.float64
    # the folder is itself a compare case with the same verdict
    again = compare(str(sub / "net.prototxt"), None, runtime="opencv", inputs=str(sub / "inputs.h5"))
    assert again.first.layer == "lrn" and again.first.max_abs_err == pytest.approx(
        report.first.max_abs_err, rel=1e-5)


# ---- doctored blob files (--theirs) -----------------------------------------------------------------

def test_doctored_value_hidden_by_max_pooling_is_masked():
    """conv_pool: lower one non-maximum value of relu1's output inside a 2x2 pool window. relu1
    diverges, alone too (the oracle's ReLU of the oracle's conv1 differs from theirs); pool1 takes
    the same maxima, so everything after agrees: masked."""
    proto, weights, io = fixture("conv_pool")
    theirs = caffe_blobs("conv_pool")
    conv1 = theirs["conv1"].copy()
    win = conv1[0, 1, 4:6, 6:8]
    i, j = np.unravel_index(np.argmin(win), win.shape)
    assert win[i, j] < win.max()
    conv1[0, 1, 4 + i, 6 + j] -= 0.5
    theirs["conv1"] = conv1
    report = compare(proto, weights, theirs=theirs, inputs=io, naming="blob", rtol=1e-4)
    d = report.first
    assert (d.layer, d.type, d.blob) == ("relu1", "ReLU", "conv1")
    assert d.where == [0, 1, 4 + int(i), 6 + int(j)] and d.max_abs_err == pytest.approx(0.5, rel=1e-5)
    assert d.isolated is True and d.explanation is None          # no catalogue knob does that
    assert report.masked == ["relu1"]
    assert [r.layer for r in report.rows if r.ok is False] == ["relu1"]


def _ave_real_pixels(x, k, s, p):
    """AVE pooling dividing by the real pixels only (count_include_pad=False), Caffe's ceil size
    with its clip rule, written out as loops."""
    n, c, h, w = x.shape
    oh = min(-(-(h + 2 * p - k) // s) + 1, (h + p - 1) // s + 1)
    ow = min(-(-(w + 2 * p - k) // s) + 1, (w + p - 1) // s + 1)
    y = np.zeros((n, c, oh, ow))
    for r in range(oh):
        for q in range(ow):
            r0, q0 = max(r * s - p, 0), max(q * s - p, 0)
            r1, q1 = min(r * s - p + k, h), min(q * s - p + k, w)
            y[:, :, r, q] = x[:, :, r0:r1, q0:q1].mean(axis=(2, 3))
    return y


def test_doctored_ave_divisor_is_explained():
    proto, weights, io = fixture("conv_pool")
    caffe = caffe_blobs("conv_pool")
    theirs = {k: caffe[k] for k in ("conv1", "pool1", "conv2")}
    theirs["pool2"] = _ave_real_pixels(caffe["conv2"].astype(np.float64), 3, 2, 1)
    report = compare(proto, weights, theirs=theirs, inputs=io, naming="blob", rtol=1e-4)
    d = report.first
    assert (d.layer, d.isolated) == ("pool2", True) and report.masked == []
    assert d.explanation.startswith("AVE divisor counts only real pixels")
    assert d.max_rel_err > 0.05
    assert report.not_compared == ["conv1@conv1", "conv2@conv2", "conv3@conv3", "fc@fc"]


def test_doctored_propagated_error_is_not_isolated():
    """A sub-tolerance error in pool1 (0.9 * rtol) that conv2 amplifies past the tolerance: conv2 is
    the first divergence, but the oracle's conv2 on their pool1 reproduces theirs: isolated false."""
    proto, weights, io = fixture("conv_pool")
    net = Net(__import__("caffe_import").read_prototxt(proto)["layer"], dtype=np.float64)
    from caffe_import import copy_weights

    copy_weights(net, weights)
    with h5py.File(io) as f:
        x = f["inputs/data"][()].astype(np.float64)
    trace = {t.layer: t for t in net.trace(data=x)}
    rtol = 1e-5
    pool1 = trace["pool1"].top_values[0]
    noise = np.sign(np.random.default_rng(0).standard_normal(pool1.shape))
    their_pool1 = pool1 + 0.9 * rtol * max(1.0, np.abs(pool1).max()) * noise
    conv2 = net.layer("conv2")
    their_conv2 = np.asarray(net.ops.conv2d(their_pool1, conv2.blobs[0], conv2.blobs[1], conv2.stride,
                                            conv2.pad, conv2.est, conv2.group))
    theirs = {"pool1@pool1": their_pool1, "conv2@conv2": their_conv2}
    report = compare(proto, weights, theirs=theirs, inputs={"data": x}, dtype="float64", rtol=rtol)
    rows = {r.layer: r for r in report.rows}
    assert rows["pool1"].ok is True and rows["conv2"].ok is False
    d = report.first
    assert d.layer == "conv2" and d.isolated is False
    assert d.explanation.startswith("the layer alone agrees with the oracle")


# ---- the resolver -------------------------------------------------------------------------------------

def test_resolver_layer_blob_and_blob_at_layer_names():
    layers = [{"name": "data", "type": "Input", "top": ["data"],
               "input_param": {"shape": [{"dim": [1, 1, 3, 3]}]}},
              {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
               "convolution_param": {"num_output": 1, "kernel_size": 1}},
              {"name": "relu1", "type": "ReLU", "bottom": ["conv1"], "top": ["conv1"]}]
    trace = Net(layers).trace(data=np.ones((1, 1, 3, 3)))
    names = ["conv1", "relu1", "conv1@relu1", "blobs/data", "nothing", "x@conv1"]
    matched, unmatched = resolve(trace, names, "auto")
    assert matched == {(1, 0): "conv1", (2, 0): "relu1", (0, 0): "blobs/data"}
    assert unmatched == ["nothing", "x@conv1"]
    matched, _ = resolve(trace, ["conv1"], "blob")
    assert matched == {(2, 0): "conv1"}          # the blob's last version: the ReLU's output
    assert resolve(trace, ["conv1", "data"], "auto")[0] == {(2, 0): "conv1", (0, 0): "data"}  # pycaffe
    assert resolve(trace, ["conv1"], "layer")[0] == {(1, 0): "conv1"}
    assert resolve(trace, ["relu1"], "blob") == ({}, ["relu1"])    # blob names only
    with pytest.raises(ValueError, match="naming"):
        resolve(trace, [], "bogus")


def test_trace_keeps_the_value_before_the_in_place_layer():
    layers = [{"name": "data", "type": "Input", "top": ["data"],
               "input_param": {"shape": [{"dim": [1, 1, 1, 2]}]}},
              {"name": "relu", "type": "ReLU", "bottom": ["data"], "top": ["data"]}]
    trace = Net(layers).trace(data=np.array([[[[-1.0, 2.0]]]]))
    assert [t.layer for t in trace] == ["data", "relu"]
    assert trace[0].top_values[0].ravel().tolist() == [-1.0, 2.0]
    assert trace[1].bottom_values[0].ravel().tolist() == [-1.0, 2.0]
    assert trace[1].top_values[0].ravel().tolist() == [0.0, 2.0]


# ---- bad input ----------------------------------------------------------------------------------------

def test_bad_input_is_a_clear_error(tmp_path):
    from caffe_import import FormatError

    proto, weights, _ = fixture("conv_pool")
    with pytest.raises(ValueError, match="exactly one of runtime"):
        compare(proto, weights)
    with pytest.raises(ValueError, match="unknown runtime"):
        compare(proto, weights, runtime="tensorflow")
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(FormatError, match="neither HDF5 nor .npz"):
        read_arrays(bad)
    with pytest.raises(ValueError, match=r"nothing to compare: none of the 2 names .* \(x, y\)"):
        compare(proto, weights, theirs={"x": np.zeros(3), "y": np.zeros(2)})
    with pytest.raises(ValueError, match="not an input"):
        compare(proto, weights, runtime="opencv", inputs={"image": np.zeros((2, 3, 17, 19))})


def test_isolation_runs_an_in_place_layer_alone_in_the_runtime():
    """A runtime (OpenCV, then +0.25 on relu1's output wherever relu1 runs): the one-layer net is
    Input conv1 -> relu1 (in place), run in OpenCV; isolated, unexplained.  The shift is only in
    what the runtime reports (its own pool1 reads the true values), so everything after agrees:
    masked."""
    import types

    from econv.runtimes import opencv

    def run(proto, weights, inputs, want=None):
        out = opencv.run(proto, weights, inputs, want)
        if "relu1" in out:
            out["relu1"] = out["relu1"] + 0.25
        return out

    shifted = types.SimpleNamespace(NAME="shifted", INSTALL_HINT="", available=lambda: True, run=run)
    proto, weights, _ = fixture("conv_pool")
    report = compare(proto, weights, runtime=shifted)
    d = report.first
    assert (d.layer, d.blob, d.isolated) == ("relu1", "conv1", True)
    assert d.isolated_err == pytest.approx(0.25, rel=1e-4) and d.explanation is None
    assert report.masked == ["relu1"] and [r.ok for r in report.rows][:3] == [True, False, True]


def test_a_runtime_refusal_is_a_clear_error():
    """OpenCV 4.x asserts at forward on any pooling round_mode field (even CEIL, the default)."""
    with pytest.raises(ValueError, match=r"opencv could not run the deploy net: OpenCV .*kernel\[i\] > 0"):
        compare(*probe("pool_round_ceil_stated"), runtime="opencv")
