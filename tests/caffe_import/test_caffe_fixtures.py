"""caffe_import against files written by real Caffe (tests/data/caffe)."""

import h5py
import numpy as np
import pytest

import caffe_import as ci
from caffe_import.blobs import fit_shape
from reference.tolerance import CAFFE_FIXTURE_RTOL
from .fixture_paths import NETS

V2_NETS = ("conv_pool", "fcn_skip", "misc")


def h5_items(path):
    """{path: array or None (group)} for every object in an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: out.__setitem__(
            name, obj[()] if isinstance(obj, h5py.Dataset) else None))
    return out


def io_params(fixtures, net):
    with h5py.File(fixtures / net / "io.h5", "r") as fh:
        return {layer: [fh["params"][layer][str(i)][()] for i in range(len(fh["params"][layer]))]
                for layer in fh["params"]}


@pytest.mark.parametrize("net", NETS)
def test_caffemodel_blobs_equal_caffe_params(fixtures, net):
    model = ci.read_caffemodel(fixtures / net / "weights.caffemodel")
    layers = {layer["name"]: layer for layer in model["layer"]}
    expected = io_params(fixtures, net)
    assert expected
    for name, blobs in expected.items():
        got = layers[name]["blobs"]
        assert len(got) == len(blobs)
        for i, (g, e) in enumerate(zip(got, blobs)):
            assert g.dtype == np.float32
            g = fit_shape(g, e.shape, f"{name}/{i}")       # legacy (1,1,M,K) -> (M,K)
            np.testing.assert_array_equal(g, e)
    for layer in model["layer"]:
        if layer["name"] not in expected:
            assert not layer.get("blobs")


def test_v1_caffemodel_upgrades_with_legacy_shapes(fixtures):
    model = ci.read_caffemodel(fixtures / "v1_legacy" / "weights.caffemodel")
    assert [(l["name"], l["type"]) for l in model["layer"]] == [
        ("conv1", "Convolution"), ("relu1", "ReLU"), ("pool1", "Pooling"), ("fc", "InnerProduct")]
    shapes = {l["name"]: [b.shape for b in l.get("blobs", [])] for l in model["layer"]}
    assert shapes["conv1"] == [(4, 3, 3, 3), (1, 1, 1, 4)]
    assert shapes["fc"] == [(1, 1, 3, 196), (1, 1, 1, 3)]
    weights = ci.read_weights(fixtures / "v1_legacy" / "weights.caffemodel")
    assert [w.shape for w in weights["fc"]] == [(3, 196), (3,)]
    assert weights["relu1"] == []


@pytest.mark.parametrize("net", V2_NETS)
def test_convert_equals_caffes_own_hdf5(fixtures, net, tmp_path):
    dst = tmp_path / "out.caffemodel.h5"
    info = ci.convert(fixtures / net / "weights.caffemodel", dst)
    ours, caffe = h5_items(dst), h5_items(fixtures / net / "weights.caffemodel.h5")
    assert sorted(ours) == sorted(caffe)
    for name, value in caffe.items():
        if value is None:
            assert ours[name] is None
        else:
            assert ours[name].dtype == value.dtype and ours[name].shape == value.shape, name
            np.testing.assert_array_equal(ours[name], value)
    assert info["blobs"] == sum(v is not None for v in caffe.values())


def test_convert_v1_legacy_gives_modern_shapes(fixtures, tmp_path):
    dst = tmp_path / "legacy.h5"
    ci.convert(fixtures / "v1_legacy" / "weights.caffemodel", dst)
    ours = h5_items(dst)
    assert sorted(k for k, v in ours.items() if v is None) == \
        ["data", "data/conv1", "data/fc", "data/pool1", "data/relu1"]
    for layer, blobs in io_params(fixtures, "v1_legacy").items():
        for i, expected in enumerate(blobs):
            got = ours[f"data/{layer}/{i}"]
            assert got.shape == expected.shape
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("net", V2_NETS)
def test_read_weights_same_for_binary_and_hdf5(fixtures, net):
    binary = ci.read_weights(fixtures / net / "weights.caffemodel")
    hdf5 = ci.read_weights(fixtures / net / "weights.caffemodel.h5")
    assert sorted(binary) == sorted(hdf5)
    for name in binary:
        assert len(binary[name]) == len(hdf5[name])
        for a, b in zip(binary[name], hdf5[name]):
            np.testing.assert_array_equal(a, b)


def test_mean_binaryproto_equals_mean_h5(fixtures):
    mean = ci.read_mean(fixtures / "mean" / "mean.binaryproto")
    with h5py.File(fixtures / "mean" / "mean.h5", "r") as fh:
        expected = fh["mean"][()]
    assert mean.dtype == np.float32 and mean.shape == expected.shape == (1, 3, 6, 5)
    np.testing.assert_array_equal(mean, expected)


def test_legacy_mean_blob_is_four_d():
    blob = ci.encode({"num": 1, "channels": 2, "height": 1, "width": 3,
                      "data": np.arange(6, dtype=np.float32)}, "BlobProto")
    mean = ci.read_mean(blob)
    assert mean.shape == (1, 2, 1, 3) and mean.ravel().tolist() == [0, 1, 2, 3, 4, 5]
    chw = ci.read_mean(ci.encode({"shape": {"dim": [2, 1, 3]},
                                  "data": np.arange(6, dtype=np.float32)}, "BlobProto"))
    assert chw.shape == (1, 2, 1, 3)


@pytest.mark.parametrize("net", NETS)
def test_prototxt_matches_the_caffemodel_topology(fixtures, net):
    proto = ci.read_prototxt(fixtures / net / "net.prototxt")
    model = ci.read_caffemodel(fixtures / net / "weights.caffemodel")
    assert proto["force_backward"] is True
    model_layers = [(l["name"], l["type"]) for l in model["layer"] if l["type"] != "Split"]
    proto_layers = [(l["name"], l["type"]) for l in proto["layer"]]
    if net == "v1_legacy":           # the V1 caffemodel carries no input fields
        assert proto_layers[0] == ("input", "Input")
        assert proto["layer"][0]["input_param"] == {"shape": [{"dim": [1, 3, 15, 15]}]}
        proto_layers = proto_layers[1:]
    assert proto_layers == model_layers
    for p, m in zip([l for l in proto["layer"] if l["type"] != "Input"],
                    [l for l in model["layer"] if l["type"] not in ("Split", "Input")]):
        for key, value in p.items():
            if key.endswith("_param") and key in m:
                assert m[key] == value, (p["name"], key)


def relative_error(ours, caffe):
    return float(np.max(np.abs(np.asarray(ours, np.float64) - caffe))) / max(
        1.0, float(np.max(np.abs(caffe))))


@pytest.mark.parametrize("net, kind", [(n, k) for n in NETS for k in ("caffemodel", "h5")
                                       if not (n == "v1_legacy" and k == "h5")])
def test_load_net_reproduces_every_blob_and_diff(fixtures, net, kind):
    weights = fixtures / net / ("weights.caffemodel" if kind == "caffemodel"
                                else "weights.caffemodel.h5")
    model = ci.load_net(fixtures / net / "net.prototxt", weights=weights)
    with h5py.File(fixtures / net / "io.h5", "r") as io:
        for layer in io["params"]:
            for i in io["params"][layer]:
                np.testing.assert_array_equal(model.params[layer][int(i)],
                                              io["params"][layer][i][()])
        blobs = model.forward(**{k: io["inputs"][k][()] for k in io["inputs"]})
        seeded = [s for s in str(io.attrs["seeded_top_diffs"]).split(",") if s]
        diffs = model.backward({s: io["diffs"][s][()] for s in seeded})
        assert set(io["blobs"]) <= set(blobs)
        for name in io["blobs"]:
            assert relative_error(blobs[name], io["blobs"][name][()]) <= CAFFE_FIXTURE_RTOL, name
        for name in io["diffs"]:
            assert relative_error(diffs[name], io["diffs"][name][()]) <= CAFFE_FIXTURE_RTOL, name
        for layer in io["param_diffs"]:
            for i in io["param_diffs"][layer]:
                assert relative_error(model.param_diffs[layer][int(i)], io["param_diffs"][layer][i][()]) \
                    <= CAFFE_FIXTURE_RTOL, (layer, i)


def test_load_net_float64_and_weights_dict(fixtures):
    weights = ci.read_weights(fixtures / "conv_pool" / "weights.caffemodel")
    model = ci.load_net(fixtures / "conv_pool" / "net.prototxt", weights=weights,
                        dtype=np.float64)
    assert model.params["conv1"][0].dtype == np.float64
    np.testing.assert_array_equal(model.params["fc"][0], weights["fc"][0])


def test_load_net_shape_mismatch_names_layer_and_shapes(fixtures):
    text = (fixtures / "conv_pool" / "net.prototxt").read_text()
    text = text.replace("num_output: 5", "num_output: 7")
    with pytest.raises(ValueError) as info:
        ci.load_net(text, weights=fixtures / "conv_pool" / "weights.caffemodel")
    msg = str(info.value)
    assert "'fc'" in msg and "(5, 16)" in msg and "(7, 16)" in msg
    assert not isinstance(info.value, ci.FormatError)


def test_load_net_blob_count_mismatch(fixtures):
    text = (fixtures / "conv_pool" / "net.prototxt").read_text()
    text = text.replace("num_output: 5", "num_output: 5\n    bias_term: false")
    with pytest.raises(ValueError, match="'fc'.*2 blobs.*expects 1"):
        ci.load_net(text, weights=fixtures / "conv_pool" / "weights.caffemodel.h5")


def test_load_net_ignores_source_layers_the_net_lacks(fixtures):
    text = (fixtures / "v1_legacy" / "net.prototxt").read_text()
    # keep only conv1 + relu1: the caffemodel's fc and pool1 are ignored, fc with a warning
    net = ci.read_prototxt(text)
    net["layer"] = net["layer"][:3]
    with pytest.warns(ci.WeightsMismatchWarning, match="match no layer of the net.*'fc'") as rec:
        model = ci.load_net(net, weights=fixtures / "v1_legacy" / "weights.caffemodel")
    assert rec[0].message.unused == ["fc"] and rec[0].message.missing == []
    assert set(model.params) == {"conv1"}
    with h5py.File(fixtures / "v1_legacy" / "io.h5", "r") as io:
        np.testing.assert_array_equal(model.params["conv1"][1], io["params/conv1/1"][()])


def test_load_solver_one_sgd_step_matches_caffe_gradients(fixtures, tmp_path):
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{fixtures / "misc" / "net.prototxt"}"\n'
                      'base_lr: 0.5\nlr_policy: "fixed"\nmomentum: 0.9\n')
    sgd = ci.load_solver(solver, weights=fixtures / "misc" / "weights.caffemodel")
    assert sgd.net.phase == "TRAIN" and sgd.base_lr == 0.5 and sgd.momentum == \
        pytest.approx(0.9)
    with h5py.File(fixtures / "misc" / "io.h5", "r") as io:
        before = {k: [io["params"][k][str(i)][()] for i in range(len(io["params"][k]))]
                  for k in io["params"]}
        grads = {k: [io["param_diffs"][k][str(i)][()] for i in range(len(io["param_diffs"][k]))]
                 for k in io["param_diffs"]}
        sgd.step(1, **{k: io["inputs"][k][()] for k in io["inputs"]})
    for i in range(2):         # Scale: lr_mult 1 -> w - 0.5 * grad
        expected = before["sc"][i] - 0.5 * grads["sc"][i]
        assert relative_error(sgd.net.params["sc"][i], expected) <= CAFFE_FIXTURE_RTOL
    for i in range(3):         # BatchNorm statistics are not learnable (use_global_stats)
        np.testing.assert_array_equal(sgd.net.params["bn"][i], before["bn"][i])


def test_load_solver_relative_net_path_and_errors(fixtures, tmp_path):
    (tmp_path / "train.prototxt").write_text((fixtures / "misc" / "net.prototxt").read_text())
    (tmp_path / "solver.prototxt").write_text('net: "train.prototxt"\nbase_lr: 0.01\n'
                                              'lr_policy: "step"\ngamma: 0.1\nstepsize: 10\n'
                                              'test_iter: 1\n')
    sgd = ci.load_solver(tmp_path / "solver.prototxt")
    assert sgd.lr_policy == "step" and sgd.stepsize == 10 and len(sgd.test_nets) == 1
    assert sgd.test_nets[0].phase == "TEST"
    with pytest.raises(ValueError, match="Adam"):
        ci.load_solver('net: "x" type: "Adam" lr_policy: "fixed"')
    with pytest.raises(ValueError, match="lr_policy"):
        ci.load_solver(f'net: "{tmp_path / "train.prototxt"}" base_lr: 1')
