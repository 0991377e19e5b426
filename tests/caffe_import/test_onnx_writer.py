"""caffe_import.onnx_writer: every layer type and convention knob, exported, run in onnxruntime
(float32) and judged against the float64 reference Net (tolerance: reference/tolerance.py).

Parameters and inputs are rounded to float32 first, so both sides compute from the same numbers and
the error measured is onnxruntime's float32 arithmetic (and any mapping mistake)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX export needs the onnx package (econv[onnx])")
ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime (econv[onnx])")

from caffe_import.onnx_writer import FLT_MAX, export_onnx, onnx_names, to_onnx  # noqa: E402
from reference import Net, densify  # noqa: E402
from reference.fcn import fcn  # noqa: E402
from reference.tolerance import max_rel_err, tolerance  # noqa: E402

TOL = tolerance(np.float32)
G = {"type": "gaussian", "std": 0.5}


def data(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": list(dims)}]}}


def layer(name, type_, bottom, top=None, **p):
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    top = [top or name] if not isinstance(top, list) else top
    return {"name": name, "type": type_, "bottom": bottom, "top": top, **p}


def pool(bottom, h=7, w=None, **p):
    return [data("x", (2, 3, h, h + 1 if w is None else w)),
            layer("pool", "Pooling", bottom, pooling_param=p)]


def conv(name, bottom, **p):
    return layer(name, "Convolution", bottom, convolution_param={"weight_filler": G, "bias_filler": G, **p})


def run_ort(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {k: v.astype(np.float32) for k, v in feed.items()})))


def rounded_net(layers, seed=0):
    net = Net(layers, dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for blobs in net.params.values():
        for b in blobs:
            if not np.any(b):                       # zero-filled blobs (biases): random too
                b[...] = rng.normal(size=b.shape) * 0.3
            b[...] = b.astype(np.float32)
    return net


def inputs_for(net, seed=0, integers=False):
    rng = np.random.default_rng(seed)
    out = {}
    for name in net.input_names:
        shape = net.blob_shapes[name]
        x = rng.integers(-2, 3, size=shape) if integers else rng.normal(size=shape)
        out[name] = x.astype(np.float32).astype(np.float64)
    return out


def check(net, feed=None, **export):
    """Run ``net`` in float64 and its export in onnxruntime; return the worst error per blob."""
    feed = feed if feed is not None else inputs_for(net)
    ours = net.forward(**feed)
    theirs = run_ort(to_onnx(net, all_blobs=True, **export), feed)
    errors = {}
    for name, value in theirs.items():
        if "@" in name:
            continue
        ref = ours[name]
        infinite = ~np.isfinite(ref)                # -inf padding of Shift: must match exactly
        assert np.array_equal(value[infinite], ref[infinite]), name
        errors[name] = max_rel_err(np.where(infinite, 0, value), np.where(infinite, 0, ref))
    assert errors, "nothing was compared"
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"beyond {TOL}: {bad}"
    return errors, theirs, ours


# ---- pooling: Caffe's size rule, clip rule, AVE divisor, ePool --------------------------------------

POOL_CASES = {
    # name: (layers, expected output (h, w) from the Caffe rules, worked out by hand)
    "max_ceil_overhang": (pool("x", h=17, kernel_size=3, stride=2), (8, 9)),
    "max_pad_clip": (pool("x", h=5, kernel_size=2, stride=2, pad=1), (3, 4)),
    "ave_pad_overhang": (pool("x", h=4, pool="AVE", kernel_size=3, stride=2, pad=1), (3, 3)),
    "ave_no_pad_overhang": (pool("x", h=4, pool="AVE", kernel_size=3, stride=2), (2, 2)),
    "ave_pad_clip": (pool("x", h=5, pool="AVE", kernel_size=2, stride=2, pad=1), (3, 4)),
    "ave_asymmetric": (pool("x", h=9, pool="AVE", kernel_h=3, kernel_w=2, stride_h=2, stride_w=3,
                            pad_h=1, pad_w=0), (5, 4)),
    "max_floor": (pool("x", h=8, kernel_size=3, stride=2, round_mode="FLOOR"), (3, 4)),
    "ave_floor_pad": (pool("x", h=8, pool="AVE", kernel_size=3, stride=2, pad=1, round_mode="FLOOR"),
                      (4, 5)),
    "max_global": (pool("x", h=6, global_pooling=True), (1, 1)),
    "ave_global": (pool("x", h=6, pool="AVE", global_pooling=True), (1, 1)),
    "max_pad_ge_stride": (pool("x", h=7, kernel_size=5, stride=1, pad=4), (11, 12)),
    # Caffe's degenerate unpadded window past the image (issue #6881): MAX -FLT_MAX, AVE 0
    "max_empty_window": (pool("x", h=6, kernel_size=1, stride=2), (4, 4)),
    "ave_empty_window": (pool("x", h=6, pool="AVE", kernel_size=1, stride=2), (4, 4)),
    # ePool (econv extension): est = tap spacing, pad_end = absent positions at the end
    "epool_max": (pool("x", h=11, kernel_size=3, stride=1, pad=2, est=2, pad_end=2), (13, 14)),
    "epool_ave": (pool("x", h=11, pool="AVE", kernel_size=3, stride=1, pad=2, est=2, pad_end=2),
                  (13, 14)),
    "epool_ave_pad_ge_kernel": (pool("x", h=13, pool="AVE", kernel_size=2, stride=1, pad=4, est=4,
                                     pad_end=4), (17, 18)),   # clipped: 21 -> 17
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling_follows_caffe(case):
    layers, out_hw = POOL_CASES[case]
    net = rounded_net(layers)
    assert net.blob_shapes["pool"][2:] == out_hw
    check(net)


def test_pooling_ties_and_the_worked_example():
    net = rounded_net(pool("x", h=4, pool="AVE", kernel_size=3, stride=2, pad=1))
    out = run_ort(to_onnx(net), {"x": np.ones((2, 3, 4, 5))})["pool"]
    np.testing.assert_allclose(out[0, 0, :, 0], [4 / 9, 6 / 9, 2 / 6], rtol=1e-6)   # divisors 9, 9, 6
    square = rounded_net(pool("x", h=4, w=4, pool="AVE", kernel_size=3, stride=2, pad=1))
    out = run_ort(to_onnx(square), {"x": np.ones((2, 3, 4, 4))})["pool"]
    np.testing.assert_allclose(out[0, 0, 2, 2], 1 / 4, rtol=1e-6)   # the reference module's example
    np.testing.assert_allclose(out[0, 0, 1, 1], 1, rtol=1e-6)
    tied = rounded_net(pool("x", h=9, kernel_size=3, stride=2, pad=1))
    check(tied, inputs_for(tied, integers=True))


def test_empty_windows_give_the_references_values():
    net = rounded_net(POOL_CASES["max_empty_window"][0])
    out = run_ort(to_onnx(net), inputs_for(net))["pool"]
    assert np.all(out[:, :, 3, :] == -FLT_MAX) and np.all(out[:, :, :3, :3] > -FLT_MAX)
    net = rounded_net(POOL_CASES["ave_empty_window"][0])
    out = run_ort(to_onnx(net), inputs_for(net))["pool"]
    assert np.all(out[:, :, 3, :] == 0) and np.all(np.isfinite(out))


@pytest.mark.parametrize("params", [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, pad=1)])
def test_max_pool_of_minus_inf_and_nan_is_caffes(params):
    """Caffe's MAX starts at -FLT_MAX and NaN never wins: windows of -inf/NaN give -FLT_MAX."""
    net = rounded_net(pool("x", h=4, w=4, **params))
    x = np.full((2, 3, 4, 4), -np.inf)
    x[0, 0, 0, 0] = x[0, 0, 2, 3] = np.nan
    x[0, 0, 3, 3] = 1.0
    ours, theirs = net.forward(x=x)["pool"], run_ort(to_onnx(net), {"x": x})["pool"]
    np.testing.assert_array_equal(theirs, ours.astype(np.float32))
    assert ours[0, 0, 0, 0] == -FLT_MAX and ours[0, 0, -1, -1] == 1.0


def test_the_converters_floor_and_end_padding_trick_is_not_used():
    """The AVE divisor fix is there only where Caffe's divisor differs from kh*kw."""
    model = to_onnx(rounded_net(POOL_CASES["ave_pad_overhang"][0]))
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Pad", "AveragePool", "Mul"]
    factor = next(i for i in model.graph.initializer if i.name.endswith("divisor_factor"))
    np.testing.assert_allclose(onnx.numpy_helper.to_array(factor)[0, 0, :, 0], [1, 1, 1.5])
    plain = to_onnx(rounded_net(pool("x", h=8, w=6, pool="AVE", kernel_size=2, stride=2)))
    assert [n.op_type for n in plain.graph.node] == ["AveragePool"]


# ---- the other layers -----------------------------------------------------------------------------

LAYER_CASES = {
    "conv_group_dilation": [data("x", (2, 4, 11, 10)),
                            conv("c", "x", num_output=6, kernel_size=3, group=2, dilation=2, pad=3,
                                 stride=2)],
    "conv_asymmetric_no_bias": [data("x", (1, 3, 9, 12)),
                                conv("c", "x", num_output=2, kernel_h=3, kernel_w=2, stride_h=2, stride_w=1,
                                     pad_h=0, pad_w=1,
                                     dilation=[1, 3], bias_term=False)],
    "conv_pad_beyond_kernel": [data("x", (1, 2, 5, 5)), conv("c", "x", num_output=3, kernel_size=3, pad=6)],
    "deconv_group_stride_pad": [data("x", (2, 4, 5, 6)),
                                layer("d", "Deconvolution", "x", convolution_param={
                                    "num_output": 6, "kernel_size": 4, "stride": 2, "pad": 1, "group": 2,
                                    "weight_filler": G, "bias_filler": G})],
    "deconv_dilation": [data("x", (1, 3, 4, 5)),
                        layer("d", "Deconvolution", "x", convolution_param={
                            "num_output": 2, "kernel_size": 3, "stride": 3, "dilation": 2,
                            "weight_filler": G, "bias_term": False})],
    "deconv_pad_beyond_kernel": [data("x", (1, 4, 6, 7)),
                                 layer("d", "Deconvolution", "x", convolution_param={
                                     "num_output": 4, "kernel_size": 2, "stride": 4, "pad": 5, "group": 2,
                                     "weight_filler": G, "bias_filler": G})],
    "deconv_fcn_bilinear": [data("x", (1, 3, 6, 7)),
                            layer("up", "Deconvolution", "x", convolution_param={
                                "num_output": 3, "group": 3, "kernel_size": 16, "stride": 8,
                                "bias_term": False, "weight_filler": {"type": "bilinear"}},
                                  param=[{"lr_mult": 0}])],
    # the equivalent deconvolution on its own (econv extension): one Conv per output phase
    "edeconv_group_dilation": [data("x", (1, 4, 13, 11)),
                               layer("ed", "EDeconvolution", "x", convolution_param={
                                   "num_output": 2, "group": 2, "kernel_size": 3, "stride": 2, "pad": 1,
                                   "dilation": 2, "grid": [2, 3], "weight_filler": G, "bias_filler": G})],
    "edeconv_pad_beyond_kernel": [data("x", (1, 2, 16, 19)),
                                  layer("ed", "EDeconvolution", "x", convolution_param={
                                      "num_output": 3, "kernel_size": [2, 3], "stride": [2, 3],
                                      "pad": [2, 3], "grid": 2, "weight_filler": G, "bias_term": False})],
    "inner_product_axis_transpose": [data("x", (2, 3, 4, 5)),
                                     layer("ip1", "InnerProduct", "x", inner_product_param={
                                         "num_output": 7, "weight_filler": G, "bias_filler": G}),
                                     layer("ip2", "InnerProduct", "x", inner_product_param={
                                         "num_output": 6, "axis": 2, "transpose": True, "weight_filler": G,
                                         "bias_term": False}),
                                     layer("ip3", "InnerProduct", "x", inner_product_param={
                                         "num_output": 2, "axis": -1, "weight_filler": G, "bias_filler": G})],
    "neurons": [data("x", (2, 3, 4, 5)),
                layer("relu", "ReLU", "x", "r", relu_param={"negative_slope": 0.1}),
                layer("plain", "ReLU", "x", "p"),
                layer("tanh", "TanH", "x", "t"), layer("sig", "Sigmoid", "x", "s"),
                layer("drop", "Dropout", "x", "d", dropout_param={"dropout_ratio": 0.3}),
                layer("pow", "Power", "s", "pw", power_param={"power": 2.5, "scale": 0.5, "shift": 0.25}),
                layer("lin", "Power", "x", "lin", power_param={"scale": -2.0, "shift": 1.0}),
                layer("const", "Power", "x", "const", power_param={"power": 3.0, "scale": 0.0, "shift": 2.0}),
                layer("one", "Power", "x", "one", power_param={"power": 0.0})],
    "lrn": [data("x", (2, 7, 6, 5)),
            layer("across", "LRN", "x", "a", lrn_param={"local_size": 5, "alpha": 0.3, "beta": 0.75,
                                                        "k": 2.0}),
            layer("across3", "LRN", "x", "a3", lrn_param={"local_size": 3, "alpha": 1.0, "beta": 0.5}),
            layer("within", "LRN", "x", "w", lrn_param={"local_size": 3, "alpha": 0.2, "beta": 0.75,
                                                        "norm_region": "WITHIN_CHANNEL"}),
            layer("within5", "LRN", "x", "w5", lrn_param={"local_size": 5, "alpha": 2.0, "beta": 0.6,
                                                          "k": 7.0, "norm_region": "WITHIN_CHANNEL"}),
            layer("within_est", "LRN", "x", "we", lrn_param={"local_size": 3, "alpha": 0.5,
                                                             "norm_region": "WITHIN_CHANNEL", "est": 2})],
    "softmax_axes": [data("x", (2, 3, 4, 5)), layer("sm1", "Softmax", "x"),
                     layer("sm2", "Softmax", "x", softmax_param={"axis": 2}),
                     layer("sm3", "Softmax", "x", softmax_param={"axis": -1})],
    "eltwise": [data("a", (2, 3, 4, 5)), data("b", (2, 3, 4, 5)), data("c", (2, 3, 4, 5)),
                layer("sum", "Eltwise", ["a", "b", "c"], eltwise_param={"coeff": [1.0, -0.5, 2.0]}),
                layer("sum1", "Eltwise", ["a", "b"]),
                layer("prod", "Eltwise", ["a", "b", "c"], eltwise_param={"operation": "PROD"}),
                layer("max", "Eltwise", ["a", "b", "c"], eltwise_param={"operation": "MAX"})],
    "concat_crop": [data("a", (2, 3, 8, 9)), data("b", (2, 2, 8, 9)), data("r", (1, 1, 5, 4)),
                    layer("cat1", "Concat", ["a", "b"]),
                    layer("cat2", "Concat", ["a", "a"], concat_param={"axis": 2}),
                    layer("crop2", "Crop", ["cat1", "r"], crop_param={"axis": 2, "offset": [1, 3]}),
                    layer("crop1", "Crop", ["a", "r"], crop_param={"axis": 1, "offset": [2]}),
                    layer("crop0", "Crop", ["b", "r"])],
    "batchnorm_scale": [data("x", (2, 4, 5, 6)),
                        layer("bn", "BatchNorm", "x", batch_norm_param={"eps": 1e-3}),
                        layer("sc", "Scale", "bn", scale_param={"bias_term": True, "filler": G,
                                                                "bias_filler": G}),
                        layer("sc2", "Scale", "x", scale_param={"axis": 1, "num_axes": 2, "filler": G}),
                        layer("sc3", "Scale", "x", scale_param={"axis": 2, "num_axes": -1, "filler": G}),
                        layer("sc0", "Scale", "x", scale_param={"num_axes": 0, "filler": G})],
    "batchnorm_batch_stats": [data("x", (3, 4, 5, 6)),
                              layer("bn", "BatchNorm", "x", batch_norm_param={"use_global_stats": False})],
    "two_d_batchnorm_scale": [data("x", (4, 6)),
                              layer("ip", "InnerProduct", "x", inner_product_param={
                                  "num_output": 5, "weight_filler": G, "bias_filler": G}),
                              layer("bn", "BatchNorm", "ip", batch_norm_param={"use_global_stats": False}),
                              layer("sc", "Scale", "bn", scale_param={"bias_term": True, "filler": G,
                                                                      "bias_filler": G}),
                              layer("sm", "Softmax", "sc")],
    "scale_two_bottoms": [data("x", (2, 4, 5, 6)), data("s", (2, 4)),
                          layer("sc", "Scale", ["x", "s"], scale_param={"axis": 0, "bias_term": True,
                                                                        "bias_filler": G})],
    "shape_layers": [data("x", (2, 3, 4, 5)),
                     layer("flat", "Flatten", "x"),
                     layer("flat2", "Flatten", "x", flatten_param={"axis": 2}),
                     layer("rs", "Reshape", "x", reshape_param={"shape": {"dim": [0, -1, 2]}}),
                     layer("rs2", "Reshape", "x", reshape_param={"shape": {"dim": [2, 2]}, "axis": 2,
                                                                 "num_axes": 1}),
                     layer("split", "Split", "x", ["s1", "s2"]),
                     layer("sum", "Eltwise", ["s1", "s2"])],
    "shift": [data("x", (1, 2, 6, 7)),
              layer("sh", "Shift", "x", shift_param={"offset": [1, 2]}),
              layer("shp", "Shift", "x", "shp", shift_param={"offset": [2, 1], "pad": [2, 2]}),
              layer("shi", "Shift", "x", "shi", shift_param={"offset": [1, 1], "pad": [1, 1],
                                                             "fill": "-inf"}),
              layer("p", "Pooling", "shi", pooling_param={"kernel_size": 2, "stride": 2})],
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_follows_the_reference(case):
    net = rounded_net(LAYER_CASES[case])
    if case == "batchnorm_scale":
        bn = net.layer("bn")
        bn.blobs[0][...] = [4.0, -2.0, 1.0, 0.5]
        bn.blobs[1][...] = [8.0, 2.0, 0.5, 3.0]
        bn.blobs[2][...] = 2.0                    # Caffe's scale factor: mean = blob0 / 2
    errors, _, _ = check(net)
    assert len(errors) >= len(net.layers) - len(net.input_names)


def test_batchnorm_with_a_zero_scale_factor_reads_zero_statistics():
    net = rounded_net(LAYER_CASES["batchnorm_scale"][:2])
    net.layer("bn").blobs[0][...] = 5.0
    net.layer("bn").blobs[2][...] = 0.0           # Caffe: factor 0 -> mean = var = 0
    _, theirs, _ = check(net)
    x = np.ones((2, 4, 5, 6))
    np.testing.assert_allclose(run_ort(to_onnx(net), {"x": x})["bn"], x / np.sqrt(1e-3), rtol=1e-6)


def test_lrn_across_uses_caffes_alpha_over_size():
    net = rounded_net([data("x", (1, 1, 1, 1)),
                       layer("lrn", "LRN", "x", lrn_param={"local_size": 1, "alpha": 1.0, "beta": 1.0})])
    out = run_ort(to_onnx(net), {"x": np.full((1, 1, 1, 1), 2.0)})["lrn"]
    assert out[0, 0, 0, 0] == pytest.approx(0.4)   # the reference module's worked example


# ---- names: in-place writes, outputs --------------------------------------------------------------

def inplace_net():
    return rounded_net([data("data", (1, 2, 6, 6)), conv("fc6", "data", num_output=3, kernel_size=3),
                        layer("relu6", "ReLU", "fc6", "fc6"), layer("drop6", "Dropout", "fc6", "fc6"),
                        layer("pool", "Pooling", "fc6", pooling_param={"kernel_size": 2, "stride": 2})])


def test_in_place_writes_get_blob_at_layer_names():
    net = inplace_net()
    names = onnx_names(net)
    assert list(names) == ["data", "fc6@fc6", "fc6@relu6", "fc6", "pool"]
    assert names["fc6@relu6"] == ("fc6", "relu6") and names["fc6"] == ("fc6", "drop6")
    feed = inputs_for(net)
    theirs = run_ort(to_onnx(net, all_blobs=True), feed)
    assert list(theirs) == ["fc6@fc6", "fc6@relu6", "fc6", "pool"]
    conv_only = rounded_net(net.specs[:2])
    conv_only.params["fc6"][0][...] = net.params["fc6"][0]
    conv_only.params["fc6"][1][...] = net.params["fc6"][1]
    before_relu = conv_only.forward(**feed)["fc6"]
    assert max_rel_err(theirs["fc6@fc6"], before_relu) <= TOL and before_relu.min() < 0
    assert max_rel_err(theirs["fc6@relu6"], np.maximum(before_relu, 0)) <= TOL
    assert [o.name for o in to_onnx(net).graph.output] == ["pool"]      # the net's output only


# ---- dense nets (reference.densify): eConv, ePool, EDeconvolution, Mask -----------------------------

def small_vgg():
    return [data("data", (1, 2, 19, 17)),
            conv("conv1", "data", num_output=3, kernel_size=3, pad=1),
            layer("relu1", "ReLU", "conv1", "conv1"),
            layer("pool1", "Pooling", "conv1", pooling_param={"kernel_size": 2, "stride": 2}),
            conv("conv2", "pool1", num_output=4, kernel_size=3, pad=1),
            layer("relu2", "ReLU", "conv2", "conv2"),
            layer("pool2", "Pooling", "conv2", pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2,
                                                              "pad": 1}),
            layer("fc", "InnerProduct", "pool2", inner_product_param={"num_output": 5, "weight_filler": G,
                                                                      "bias_filler": G})]


@pytest.mark.parametrize("start", ["pool1", "pool2"])
def test_dense_net_exports_exactly(start):
    dense = densify(rounded_net(small_vgg()), start)
    assert any(layer.type == "Pooling" and layer.est != (1, 1) for layer in dense.layers) or start == "pool2"
    check(dense)


def small_fcn(h, w):
    layers = fcn("8s", widths=(2, 2, 2, 2, 2), convs=(1, 1, 1, 1, 1), fc=3, classes=2,
                 input_shape=(1, 1, h, w))
    return rounded_net(layers, seed=1)


def test_fcn_and_its_dense_net_with_edeconvolution_and_masks():
    net = small_fcn(60, 66)
    check(net)
    dense = densify(net, "pool3")
    types = {layer.type for layer in dense.layers}
    assert {"EDeconvolution", "Mask"} <= types
    errors, _, _ = check(dense)
    assert {"upscore2", "fuse_pool3", "score"} <= set(errors)


# ---- refusals, options, the file ------------------------------------------------------------------

def loss_net():
    return rounded_net([data("data", (2, 3, 4, 4)), data("label", (2,)),
                        layer("ip", "InnerProduct", "data", inner_product_param={"num_output": 3,
                                                                                 "weight_filler": G}),
                        layer("loss", "SoftmaxWithLoss", ["ip", "label"])])


def test_loss_layers_are_refused_or_skipped():
    net = loss_net()
    with pytest.raises(ValueError, match=r"layer 'loss' \(SoftmaxWithLoss\).*econv deploy"):
        to_onnx(net)
    model = to_onnx(net, skip_losses=True)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["ip"]


def test_data_layers_and_unmapped_types_are_refused(monkeypatch):
    from reference.layers import base

    class FakeData(base.Layer):           # stands for HDF5Data, ImageData, ...: no bottoms, reads files
        type, n_bottom = "EconvTestOnlyData", (0, 0)

        def reshape(self, shapes):
            return [(1, 2, 3, 3)]

    class FakeOp(base.Layer):
        type = "EconvTestOnlyOp"

    monkeypatch.setitem(base.LAYER_TYPES, FakeData.type, FakeData)
    monkeypatch.setitem(base.LAYER_TYPES, FakeOp.type, FakeOp)
    net = Net([{"name": "src", "type": FakeData.type, "top": ["x"]}])
    with pytest.raises(ValueError, match=r"'src' \(EconvTestOnlyData\): data layers read files.*deploy"):
        to_onnx(net)
    net = Net([data("x", (1, 2, 3, 3)), layer("op", FakeOp.type, "x")])
    with pytest.raises(ValueError, match=r"'op' \(EconvTestOnlyOp\): no ONNX mapping.*Convolution"):
        to_onnx(net)


def test_a_layer_reading_a_skipped_loss_top_is_refused():
    net = rounded_net([data("data", (2, 3)), data("label", (2,)),
                       layer("loss", "SoftmaxWithLoss", ["data", "label"], ["loss", "prob"]),
                       layer("after", "TanH", "prob")])
    with pytest.raises(ValueError, match=r"'after' \(TanH\): reads \['prob'\]"):
        to_onnx(net, skip_losses=True)


def test_train_phase_dropout_and_bad_options_are_refused():
    net = Net([data("x", (1, 2, 3, 3)), layer("d", "Dropout", "x")], phase="train")
    with pytest.raises(ValueError, match="'d' \\(Dropout\\).*TEST phase"):
        to_onnx(net)
    net = inplace_net()
    with pytest.raises(ValueError, match="not inputs of the net"):
        to_onnx(net, input_shapes={"nope": (1, 2, 3, 3)})
    with pytest.raises(ValueError, match="opset 19"):
        to_onnx(net, opset=17)


def test_input_shapes_and_atomic_file(tmp_path):
    net = inplace_net()
    path = tmp_path / "m.onnx"
    info = export_onnx(net, path, input_shapes={"data": (3, 2, 10, 8)}, all_blobs=True)
    assert info["inputs"] == ["data"] and info["outputs"][-1] == "pool"
    model = onnx.load(str(path))
    dims = [d.dim_value for d in model.graph.output[-1].type.tensor_type.shape.dim]
    assert dims == [3, 3, 4, 3]
    x = np.random.default_rng(0).normal(size=(3, 2, 10, 8)).astype(np.float32).astype(np.float64)
    ours = net.forward(data=x)
    assert max_rel_err(run_ort(model, {"data": x})["pool"], ours["pool"]) <= TOL
    with pytest.raises(ValueError):
        export_onnx(loss_net(), tmp_path / "bad.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]     # nothing half-written


# ---- pooling="native": onnxruntime's own rules (the findings of docs/RUNTIMES.md, onnxruntime) ---------

NATIVE_AGREES = ["max_ceil_overhang", "max_pad_clip", "ave_pad_overhang", "ave_no_pad_overhang",
                 "ave_pad_clip", "ave_asymmetric", "max_floor", "ave_floor_pad", "max_global",
                 "ave_global", "max_pad_ge_stride"]


def run_quiet(model, feed):
    options = ort.SessionOptions()
    options.log_severity_level = 4      # onnxruntime warns when its output shape is not the model's
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.astype(np.float32) for k, v in feed.items()})[0]


@pytest.mark.parametrize("case", NATIVE_AGREES)
def test_native_pooling_agrees_where_onnxruntime_follows_caffe(case):
    """ceil_mode=1 + count_include_pad=1 + pads: onnxruntime's windows, clip rule and AVE divisor
    (capped at H + p) are Caffe's in these cases."""
    net = rounded_net(POOL_CASES[case][0])
    feed = inputs_for(net)
    model = to_onnx(net, pooling="native")
    assert "Pad" not in [n.op_type for n in model.graph.node]
    assert max_rel_err(run_quiet(model, feed), net.forward(**feed)["pool"]) <= TOL


def test_native_pooling_where_onnxruntime_differs_from_caffe():
    # 1. an unpadded ceil window that starts past the image: Caffe keeps it, onnxruntime drops it
    for case in ("max_empty_window", "ave_empty_window"):
        net = rounded_net(POOL_CASES[case][0])          # 6 x 7 input, kernel 1, stride 2
        assert net.blob_shapes["pool"][2:] == (4, 4)
        assert run_quiet(to_onnx(net, pooling="native"), inputs_for(net)).shape[2:] == (3, 4)
    # 2. padding >= kernel (ePool: pad p*E, pad_end): the ONNX spec allows it, onnxruntime refuses it
    net = rounded_net(POOL_CASES["epool_max"][0])
    with pytest.raises(Exception, match="Pad should be smaller than kernel"):
        run_quiet(to_onnx(net, pooling="native"), inputs_for(net))
    check(net)                                          # the explicit export is exact
    # 3. pad_end for AVE has no ONNX attribute (end pads would count in the divisor)
    with pytest.raises(ValueError, match="cannot express pad_end for AVE"):
        to_onnx(rounded_net(POOL_CASES["epool_ave"][0]), pooling="native")
    # 4. ONNX's default count_include_pad=0 (padding not counted in the divisor) is wrong
    net = rounded_net(POOL_CASES["ave_pad_overhang"][0])
    model = to_onnx(net, pooling="native")
    for attr in model.graph.node[0].attribute:
        if attr.name == "count_include_pad":
            attr.i = 0
    feed = inputs_for(net)
    assert max_rel_err(run_quiet(model, feed), net.forward(**feed)["pool"]) > 0.1


def test_progress_bar_on_request(tmp_path, capsys):
    export_onnx(inplace_net(), tmp_path / "m.onnx", progress=True)
    assert "export-onnx" in capsys.readouterr().err
    export_onnx(inplace_net(), tmp_path / "m.onnx")          # default: small net, no terminal
    assert capsys.readouterr().err == ""
