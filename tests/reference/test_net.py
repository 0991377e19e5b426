"""Net: whole-net gradient checks, in-place blobs, fan-out, loss weights, phases, force_backward,
the backend hook, input errors."""

import types

import numpy as np
import pytest

import reference as ref
import reference.ops as reference_ops
from reference import Net, gradcheck


def data(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": dims}]}}


def layer(name, type_, bottom, top=None, **p):
    bottom = [bottom] if isinstance(bottom, str) else bottom
    return {"name": name, "type": type_, "bottom": bottom, "top": [top or name], **p}


G = {"type": "gaussian", "std": 0.5}


def small_net(**kw):
    """conv -> in-place ReLU -> max pool, fanned out to two branches that meet again, IP, loss."""
    return Net([
        data("data", [2, 2, 7, 6]), data("label", [2]),
        layer("conv1", "Convolution", "data", convolution_param={
            "num_output": 3, "kernel_size": 3, "pad": 1, "weight_filler": G, "bias_filler": G}),
        layer("relu1", "ReLU", "conv1", "conv1"),
        layer("pool1", "Pooling", "conv1", pooling_param={"kernel_size": 2, "stride": 2}),
        layer("a", "Convolution", "pool1", convolution_param={
            "num_output": 3, "kernel_size": 1, "weight_filler": G, "bias_filler": G}),
        layer("b", "Convolution", "pool1", convolution_param={
            "num_output": 3, "kernel_size": 3, "pad": 2, "dilation": 2, "weight_filler": G}),
        layer("sum", "Eltwise", ["a", "b"]),
        layer("fc", "InnerProduct", "sum", inner_product_param={"num_output": 4, "weight_filler": G}),
        layer("loss", "SoftmaxWithLoss", ["fc", "label"]),
    ], seed=3, **kw)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {"data": rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 84.0 - 0.4,
            "label": np.array([1.0, 3.0])}


def test_whole_net_gradcheck_float64():
    net = small_net(dtype=np.float64)
    report = gradcheck(net, inputs(), directions=6, exhaustive=False)
    report.assert_ok()
    assert report.samples == 6 and report.kinks <= 1


def test_whole_net_exhaustive_on_a_tiny_net():
    net = Net([data("x", [1, 1, 4, 4]),
               layer("c", "Convolution", "x", convolution_param={
                   "num_output": 2, "kernel_size": 2, "dilation": 2, "weight_filler": G, "bias_filler": G}),
               layer("p", "Pooling", "c", pooling_param={"pool": "AVE", "kernel_size": 2, "pad": 1})],
              dtype=np.float64)
    report = gradcheck(net, {"x": np.arange(16.0).reshape(1, 1, 4, 4) / 7})
    report.assert_ok()
    assert len(report.results) >= 16 + 8 + 2   # every input, weight and bias element


def test_in_place_blob_holds_output_and_diff_of_producer():
    net = small_net(dtype=np.float64, force_backward=True)
    x = inputs()
    blobs = net.forward(**x)
    conv_out = ref.conv2d(x["data"], *net.params["conv1"], pad=1)
    assert np.array_equal(blobs["conv1"], np.maximum(conv_out, 0))
    diffs = net.backward()
    # the diff of 'conv1' is w.r.t. the convolution output: zero wherever the ReLU was off
    assert np.all(diffs["conv1"][conv_out < 0] == 0)
    assert np.abs(diffs["conv1"]).max() > 0


def test_fan_out_sums_the_diffs():
    net = Net([data("x", [1, 3]),
               layer("p2", "Power", "x", power_param={"scale": 2.0}),
               layer("p3", "Power", "x", power_param={"scale": 3.0})], dtype=np.float64,
              force_backward=True)
    net.forward(x=np.ones((1, 3)))
    diffs = net.backward({"p2": np.ones((1, 3)), "p3": np.full((1, 3), 10.0)})
    assert np.array_equal(diffs["x"], np.full((1, 3), 2.0 + 30.0))


def test_loss_weight_scales_loss_and_gradients():
    base, heavy = small_net(dtype=np.float64), small_net(dtype=np.float64)
    heavy.layer("loss").loss_weights = [2.5]
    for net in (base, heavy):
        net.forward(**inputs())
        net.backward()
    assert heavy.loss == pytest.approx(2.5 * base.loss, rel=1e-12)
    assert np.allclose(heavy.param_diffs["conv1"][0], 2.5 * base.param_diffs["conv1"][0], rtol=1e-12)


def test_force_backward_controls_input_diffs():
    for force in (False, True):
        net = small_net(dtype=np.float64, force_backward=force)
        net.forward(**inputs())
        d = net.backward()["data"]
        assert (np.abs(d).max() > 0) == force


def test_phase_include_exclude_level_stage():
    layers = [data("x", [1, 2]),
              layer("train_only", "ReLU", "x", "y", include=[{"phase": "TRAIN"}]),
              layer("not_train", "TanH", "x", "y", exclude=[{"phase": "TRAIN"}]),
              layer("deep", "Sigmoid", "x", "z", include=[{"min_level": 2}]),
              layer("staged", "Power", "x", "s", include=[{"stage": ["big"]}])]
    assert Net(layers, phase="train").layer_names == ["x", "train_only"]
    assert Net(layers, phase="test").layer_names == ["x", "not_train"]
    assert Net(layers, phase="test", level=2, stages=("big",)).layer_names == [
        "x", "not_train", "deep", "staged"]
    with pytest.raises(ValueError, match="include or exclude"):
        Net([data("x", [1]), layer("r", "ReLU", "x", include=[{}], exclude=[{}])])


def test_dtype_and_live_params():
    net = small_net()
    out = net.forward(**inputs())
    assert all(v.dtype == np.float32 for v in out.values())
    w = net.params["conv1"][0]
    w[...] = 0
    assert np.all(net.layer("conv1").blobs[0] == 0)   # params are the live arrays
    net.forward(**inputs())
    net.backward()
    assert net.param_diffs["conv1"][0].shape == w.shape


def test_backend_hook_routes_every_op_through_the_backend():
    calls = []

    def wrap(name):
        fn = getattr(reference_ops, name)
        return lambda *a, **k: (calls.append(name), fn(*a, **k))[1]

    backend = types.SimpleNamespace(**{n: wrap(n) for n in reference_ops.OP_NAMES})
    a, b = small_net(dtype=np.float64), small_net(dtype=np.float64, backend=backend)
    ya, yb = a.forward(**inputs()), b.forward(**inputs())
    a.backward(), b.backward()
    assert ya["fc"].tolist() == yb["fc"].tolist()
    assert {"conv2d", "pool2d", "conv2d_backward", "pool2d_backward"} <= set(calls)
    with pytest.raises(ValueError, match="unknown backend"):
        small_net(backend="tpu")
    with pytest.raises(ValueError, match="lacks"):
        small_net(backend=types.SimpleNamespace(conv2d=None))


def test_forward_input_errors():
    net = small_net()
    x = inputs()
    with pytest.raises(ValueError, match="input 'label' missing"):
        net.forward(data=x["data"])
    with pytest.raises(ValueError, match="'image' not an input"):
        net.forward(image=x["data"], **x)
    with pytest.raises(ValueError, match="declares 4 axes"):
        net.forward(data=x["data"][0], label=x["label"])
    with pytest.raises(ValueError, match="call forward first"):
        small_net().backward()


def test_reshape_on_a_new_input_size():
    conv_only = Net([data("data", [2, 2, 7, 6]),
                    layer("c", "Convolution", "data", convolution_param={
                        "num_output": 3, "kernel_size": 3, "weight_filler": G}),
                    layer("p", "Pooling", "c", pooling_param={"kernel_size": 2, "stride": 2})])
    assert conv_only.forward(data=np.zeros((1, 2, 9, 8)))["p"].shape == (1, 3, 4, 3)
    # an InnerProduct cannot follow a new spatial size: a clear error naming the layer and shapes
    with pytest.raises(ValueError, match=r"layer 'fc' \(InnerProduct\).*\(4, 36\).*\(4, 60\)"):
        small_net().forward(data=np.zeros((1, 2, 9, 8)), label=np.array([0.0]))


def test_infer_shapes():
    net = small_net()
    assert net.blob_shapes["pool1"] == (2, 3, 4, 3)
    assert net.blob_shapes["loss"] == ()
    assert net.infer_shapes({"data": (3, 2, 7, 5), "label": (3,)})["sum"] == (3, 3, 4, 3)


def test_layers_may_share_a_name_as_in_caffe_unless_they_have_parameters():
    """BVLC's mnist_autoencoder names two loss layers "loss" (Caffe keeps both); a shared name with
    parameters would make weights ambiguous and is refused."""
    data = {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [2, 3]}]}}
    target = {"name": "t", "type": "Input", "top": ["t"], "input_param": {"shape": [{"dim": [2, 3]}]}}
    net = Net([data, target,
               {"name": "loss", "type": "EuclideanLoss", "bottom": ["data", "t"], "top": ["l2"]},
               {"name": "loss", "type": "L1Loss", "bottom": ["data", "t"], "top": ["l1"]}],
              dtype=np.float64)
    x, t = np.ones((2, 3)), np.zeros((2, 3))
    out = net.forward(data=x, t=t)
    assert out["l2"] == pytest.approx(6 / (2 * 2)) and out["l1"] == pytest.approx(6 / 2)
    assert net.layer_names == ["data", "t", "loss", "loss"]
    ip = {"type": "InnerProduct", "bottom": ["data"], "inner_product_param": {"num_output": 2}}
    with pytest.raises(ValueError, match="'fc' .*used by an earlier layer.*parameters"):
        Net([data, dict(ip, name="fc", top=["a"]), dict(ip, name="fc", top=["b"])])
