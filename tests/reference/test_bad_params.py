"""Bad parameters and inputs are ValueErrors that name the layer (or op) and the offending parameter
(DESIGN sections 2 and 6): never a crash inside NumPy, never a silent result."""

import re

import numpy as np
import pytest

import reference as ref


def L(name, type_, bottom, top, **params):
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    top = [top] if isinstance(top, str) else list(top)
    return {"name": name, "type": type_, "bottom": bottom, "top": top, **params}


def inp(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": list(dims)}]}}


X = inp("x", (1, 3, 4, 4))


def raises_naming(fn, *words):
    """``fn()`` raises a ValueError whose message contains every word (case-sensitive)."""
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in error message {msg!r}"
    return msg


# ---- layer construction / shape errors (raised by Net(...)) ----------------------------------------

NET_CASES = {
    "conv kernel larger than padded input": (
        [X, L("conv1", "Convolution", "x", "y", convolution_param={"num_output": 1, "kernel_size": 5})],
        ["'conv1'", "kernel", "5", "4"]),
    "conv dilated kernel larger than padded input": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 1, "kernel_size": 3, "dilation": 2})],  # ext 5 > 4
        ["'conv1'", "kernel extent 5", "est 2"]),
    "pool kernel larger than padded input": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"kernel_size": 5})],
        ["'pool1'", "kernel", "5"]),
    "pool pad >= kernel": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"kernel_size": 2, "pad": 2})],
        ["'pool1'", "pad 2", "kernel"]),
    "conv channels not divisible by group": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 2, "kernel_size": 1, "group": 2})],
        ["'conv1'", "channels 3", "group 2"]),
    "deconv channels not divisible by group": (
        [X, L("up", "Deconvolution", "x", "y",
              convolution_param={"num_output": 2, "kernel_size": 1, "group": 2})],
        ["'up'", "channels 3", "group 2"]),
    "num_output not divisible by group": (
        [inp("x", (1, 4, 4, 4)), L("conv1", "Convolution", "x", "y",
                                   convolution_param={"num_output": 3, "kernel_size": 1, "group": 2})],
        ["'conv1'", "num_output 3", "group 2"]),
    "deconv num_output not divisible by group": (
        [inp("x", (1, 4, 4, 4)), L("up", "Deconvolution", "x", "y",
                                   convolution_param={"num_output": 3, "kernel_size": 1, "group": 2})],
        ["'up'", "num_output 3", "group 2"]),
    "deconv pad too large": (
        [inp("x", (1, 1, 1, 1)), L("up", "Deconvolution", "x", "y",
                                   convolution_param={"num_output": 1, "kernel_size": 1, "pad": 1})],
        ["'up'", "pad"]),
    "unknown layer type": (
        [X, L("foo", "Frobnicate", "x", "y")],
        ["'foo'", "Frobnicate"]),
    "Eltwise with one bottom": (
        [X, L("sum", "Eltwise", "x", "y")],
        ["'sum'", "bottom", "2", "got 1"]),
    "SoftmaxWithLoss with one bottom": (
        [X, L("loss", "SoftmaxWithLoss", "x", "y")],
        ["'loss'", "bottom", "2", "got 1"]),
    "EuclideanLoss with three bottoms": (
        [X, L("loss", "EuclideanLoss", ["x", "x", "x"], "y")],
        ["'loss'", "bottom", "got 3"]),
    "ReLU with two tops": (
        [X, L("relu", "ReLU", "x", ["y", "z"])],
        ["'relu'", "top", "got 2"]),
    "bottom nobody produces": (
        [X, L("relu", "ReLU", "nope", "y")],
        ["'relu'", "'nope'"]),
    "bottom produced only later": (
        [X, L("a", "ReLU", "later", "y"), L("b", "ReLU", "x", "later")],
        ["'a'", "'later'"]),
    "duplicate layer names with parameters": (   # Caffe allows shared names; weights match by name
        [X, L("conv", "Convolution", "x", "y", convolution_param={"num_output": 2, "kernel_size": 1}),
         L("conv", "ReLU", "y", "z")],
        ["'conv'", "name", "parameters"]),
    "STOCHASTIC pooling with pad": (
        [X, L("pool1", "Pooling", "x", "y",
              pooling_param={"kernel_size": 2, "pool": "STOCHASTIC", "pad": 1})],
        ["'pool1'", "STOCHASTIC", "pad"]),
    "STOCHASTIC pooling by number with pad": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"kernel_size": 2, "pool": 2, "pad": 1})],
        ["'pool1'", "STOCHASTIC", "pad"]),
    "argmax mask top on AVE pooling": (
        [X, L("pool1", "Pooling", "x", ["y", "mask"], pooling_param={"kernel_size": 2, "pool": "AVE"})],
        ["'pool1'", "second top", "MAX"]),
    "unknown pool method": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"kernel_size": 2, "pool": "MEDIAN"})],
        ["'pool1'", "pool", "MEDIAN"]),
    "even LRN local_size": (
        [X, L("norm1", "LRN", "x", "y", lrn_param={"local_size": 4})],
        ["'norm1'", "local_size", "4"]),
    "Crop offset too large": (
        [inp("x", (1, 1, 4, 4)), inp("r", (1, 1, 2, 2)),
         L("crop", "Crop", ["x", "r"], "y", crop_param={"offset": 3})],
        ["'crop'", "offset 3"]),
    "Crop wrong number of offsets": (
        [inp("x", (1, 1, 4, 4)), inp("r", (1, 1, 2, 2)),
         L("crop", "Crop", ["x", "r"], "y", crop_param={"offset": [1, 1, 1]})],
        ["'crop'", "offsets"]),
    "convolution without kernel_size": (
        [X, L("conv1", "Convolution", "x", "y", convolution_param={"num_output": 1})],
        ["'conv1'", "kernel_size"]),
    "convolution without num_output": (
        [X, L("conv1", "Convolution", "x", "y", convolution_param={"kernel_size": 1})],
        ["'conv1'", "num_output"]),
    "convolution stride 0": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 1, "kernel_size": 1, "stride": 0})],
        ["'conv1'", "stride"]),
    "convolution negative pad": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 1, "kernel_size": 1, "pad": -1})],
        ["'conv1'", "pad"]),
    "kernel_size and kernel_h together": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 1, "kernel_size": 1, "kernel_h": 1, "kernel_w": 1})],
        ["'conv1'", "kernel_size", "kernel_h"]),
    "three kernel sizes for a 2-D conv": (
        [X, L("conv1", "Convolution", "x", "y",
              convolution_param={"num_output": 1, "kernel_size": [1, 1, 1]})],
        ["'conv1'", "kernel_size"]),
    "pooling without kernel": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"pool": "MAX"})],
        ["'pool1'", "kernel_size"]),
    "global pooling with kernel": (
        [X, L("pool1", "Pooling", "x", "y", pooling_param={"global_pooling": True, "kernel_size": 2})],
        ["'pool1'", "kernel_size", "global_pooling"]),
    "dropout ratio 1": (
        [X, L("drop", "Dropout", "x", "y", dropout_param={"dropout_ratio": 1.0})],
        ["'drop'", "dropout_ratio"]),
    "Eltwise coeff with PROD": (
        [X, L("prod", "Eltwise", ["x", "x"], "y", eltwise_param={"operation": "PROD", "coeff": [1, 2]})],
        ["'prod'", "coeff"]),
    "Eltwise wrong number of coeffs": (
        [X, L("sum", "Eltwise", ["x", "x"], "y", eltwise_param={"coeff": [1, 2, 3]})],
        ["'sum'", "coeff", "3"]),
    "Eltwise shape mismatch": (
        [X, inp("z", (1, 3, 4, 5)), L("sum", "Eltwise", ["x", "z"], "y")],
        ["'sum'", "shape"]),
    "Concat shape mismatch": (
        [X, inp("z", (1, 3, 4, 5)), L("cat", "Concat", ["x", "z"], "y")],
        ["'cat'", "axis"]),
    "SoftmaxWithLoss label count": (
        [X, inp("label", (1, 1, 4, 3)), L("loss", "SoftmaxWithLoss", ["x", "label"], "y")],
        ["'loss'", "label", "16"]),
    "InnerProduct axis out of range": (
        [X, L("fc", "InnerProduct", "x", "y", inner_product_param={"num_output": 2, "axis": 4})],
        ["'fc'", "axis 4"]),
    "Softmax axis out of range": (
        [X, L("prob", "Softmax", "x", "y", softmax_param={"axis": 5})],
        ["'prob'", "axis 5"]),
    "Reshape with two -1": (
        [X, L("rs", "Reshape", "x", "y", reshape_param={"shape": {"dim": [-1, -1]}})],
        ["'rs'", "-1"]),
    "Reshape to a wrong count": (
        [X, L("rs", "Reshape", "x", "y", reshape_param={"shape": {"dim": [5, -1]}})],
        ["'rs'", "-1"]),
    "include and exclude together": (
        [X, L("relu", "ReLU", "x", "y", include=[{"phase": "TEST"}], exclude=[{"phase": "TRAIN"}])],
        ["'relu'", "include", "exclude"]),
    "conv input not 4-D": (
        [inp("x", (1, 3, 4)), L("conv1", "Convolution", "x", "y",
                                convolution_param={"num_output": 1, "kernel_size": 1})],
        ["'conv1'", "4-D"]),
    "loss_weight count": (
        [X, L("relu", "ReLU", "x", "y", loss_weight=[1, 2])],
        ["'relu'", "loss_weight"]),
}


@pytest.mark.parametrize("case", sorted(NET_CASES))
def test_net_construction_errors(case):
    layers, words = NET_CASES[case]
    raises_naming(lambda: ref.Net(layers), *words)


def test_errors_name_the_layer_first():
    # every layer error starts with "layer '<name>'": the reader sees which layer without parsing
    msg = raises_naming(lambda: ref.Net(NET_CASES["pool pad >= kernel"][0]), "pad")
    assert msg.startswith("layer 'pool1'")


# ---- errors found at forward time ------------------------------------------------------------------

def loss_net(**loss_param):
    layer = L("loss", "SoftmaxWithLoss", ["x", "label"], "loss")
    if loss_param:
        layer["loss_param"] = loss_param
    return ref.Net([inp("x", (1, 2, 1, 2)), inp("label", (1, 1, 1, 2)), layer])


@pytest.mark.parametrize("labels", [[0, 2], [-1, 0], [0, np.nan]])
def test_label_out_of_range(labels):
    net = loss_net()
    raises_naming(lambda: net.forward(x=np.zeros((1, 2, 1, 2)),
                                      label=np.array(labels, float).reshape(1, 1, 1, 2)),
                  "'loss'", "label")


def test_label_out_of_range_except_ignored():
    # 255 is out of range, but it is the ignore_label: fine, and only label 0 counts: loss = log 2
    net = loss_net(ignore_label=255)
    out = net.forward(x=np.zeros((1, 2, 1, 2)), label=np.array([0, 255.0]).reshape(1, 1, 1, 2))
    assert float(out["loss"]) == pytest.approx(np.log(2), rel=1e-6)
    raises_naming(lambda: net.forward(x=np.zeros((1, 2, 1, 2)),
                                      label=np.array([0, 254.0]).reshape(1, 1, 1, 2)), "'loss'", "254")


def test_forward_input_errors():
    net = ref.Net([inp("x", (1, 1, 2, 2)), L("relu", "ReLU", "x", "y")])
    raises_naming(lambda: net.forward(), "'x'")                              # missing input
    raises_naming(lambda: net.forward(x=np.zeros((1, 1, 2, 2)), z=1), "'z'")  # unknown input
    raises_naming(lambda: net.forward(x=np.zeros((2, 2))), "'x'", "axes")   # wrong rank
    raises_naming(lambda: net.forward(x=np.array([["a"]])), "'x'", "numeric")


def test_forward_shape_change_rechecked():
    # the declared input is 4x4, but a 2x2 input reaches a 3x3 conv: the layer reports it at forward
    net = ref.Net([inp("x", (1, 1, 4, 4)), L("conv1", "Convolution", "x", "y",
                                             convolution_param={"num_output": 1, "kernel_size": 3})])
    raises_naming(lambda: net.forward(x=np.zeros((1, 1, 2, 2))), "'conv1'", "kernel")


def test_backward_errors():
    net = ref.Net([inp("x", (1, 2)), L("relu", "ReLU", "x", "y")])
    raises_naming(lambda: net.backward({"y": np.ones((1, 2))}), "forward")
    net.forward(x=np.ones((1, 2)))
    raises_naming(lambda: net.backward({"nope": np.ones((1, 2))}), "'nope'")
    raises_naming(lambda: net.backward({"y": np.ones((1, 3))}), "'y'", "shape")


def test_net_dtype():
    raises_naming(lambda: ref.Net([X], dtype=np.int32), "dtype", "int32")


def test_create_layer_not_a_dict():
    raises_naming(lambda: ref.create_layer(["ReLU"]), "dict")


# ---- op-level errors ---------------------------------------------------------------------------------

Z44 = np.zeros((1, 1, 4, 4))
W11 = np.zeros((1, 1, 1, 1))


@pytest.mark.parametrize("call, pattern", [
    (lambda: ref.conv2d(np.zeros((1, 4, 4)), W11), r"conv2d: x must have 4 axes"),
    (lambda: ref.pool2d(np.zeros((4, 4)), 2), r"pool2d: x must have 4 axes"),
    (lambda: ref.deconv2d(np.zeros((1, 1, 1, 4, 4)), W11), r"deconv2d: x must have 4 axes"),
    (lambda: ref.conv2d(np.zeros((1, 1, 4, 4), dtype=np.int64), W11),
     r"conv2d: x must be float32 or float64"),
    (lambda: ref.pool2d(np.zeros((1, 1, 4, 4), dtype=np.float16), 2),
     r"pool2d: x must be float32 or float64"),
    (lambda: ref.pool2d([[[[1.0]]]], 1), r"pool2d: x must be a NumPy array"),
    (lambda: ref.pool2d(Z44, 2, round_mode="round"), r"round_mode"),
    (lambda: ref.pool2d(Z44, 2, mode="median"), r"pool2d: mode"),
    (lambda: ref.pool2d(Z44, 2, pad=-1), r"pool2d: pad must be >= 0"),
    (lambda: ref.conv2d(Z44, W11, pad=-1), r"conv2d: pad must be >= 0"),
    (lambda: ref.pool2d(Z44, 2, pad_end=-1), r"pad_end must be >= 0"),
    (lambda: ref.conv2d(Z44, W11, stride=0), r"conv2d: stride must be >= 1"),
    (lambda: ref.pool2d(Z44, 2, stride=0), r"pool2d: stride must be >= 1"),
    (lambda: ref.deconv2d(Z44, W11, stride=(1, 0)), r"deconv2d: stride must be >= 1"),
    (lambda: ref.conv2d(Z44, W11, est=0), r"conv2d: est must be >= 1"),
    (lambda: ref.pool2d(Z44, 2, stride=1.5), r"pool2d: stride must be an integer"),
    (lambda: ref.pool2d(Z44, 0), r"pool2d: kernel must be >= 1"),
    (lambda: ref.pool2d(Z44, (2, 2, 2)), r"kernel must be an int or an \(h, w\) pair"),
    (lambda: ref.conv2d(Z44, np.zeros((1, 1, 5, 5))), r"conv2d \(height\): kernel extent 5"),
    (lambda: ref.conv2d(Z44, np.zeros((1, 1, 3, 3)), est=2), r"kernel extent 5 \(kernel 3, est 2\)"),
    (lambda: ref.pool2d(Z44, 5), r"pool2d \(height\): kernel extent 5"),
    (lambda: ref.pool2d(Z44, 2, pad=2), r"pool2d \(height\): pad 2 must be smaller"),
    (lambda: ref.pool2d(Z44, (1, 2), est=(1, 4)), r"pool2d \(width\): kernel extent 5"),
    (lambda: ref.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 1, 1, 1)), group=2),
     r"conv2d: input channels 3 not divisible by group 2"),
    (lambda: ref.conv2d(np.zeros((1, 4, 4, 4)), np.zeros((3, 2, 1, 1)), group=2),
     r"conv2d: output channels 3 not divisible by group 2"),
    (lambda: ref.conv2d(np.zeros((1, 4, 4, 4)), np.zeros((2, 3, 1, 1))),
     r"conv2d: weights expect 3\*1 = 3 input channels"),
    (lambda: ref.conv2d(Z44, W11, group=0), r"conv2d: group must be a positive integer"),
    (lambda: ref.deconv2d(np.zeros((1, 3, 4, 4)), np.zeros((3, 1, 1, 1)), group=2),
     r"deconv2d: input channels 3 not divisible by group 2"),
    (lambda: ref.deconv2d(np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 1, 1))),
     r"deconv2d: weights \(3, 1, 1, 1\) expect 3 input channels"),
    (lambda: ref.deconv2d(np.zeros((1, 1, 1, 1)), W11, pad=1), r"deconv2d \(height\): output size"),
    (lambda: ref.conv2d(Z44, np.zeros((1, 1, 1))), r"conv2d: w must have 4 axes"),
    (lambda: ref.conv2d(Z44, W11, b=np.zeros(2)), r"conv2d: b must have shape \(1,\)"),
    (lambda: ref.conv2d_backward(np.zeros((1, 1, 2, 2)), Z44, np.zeros((1, 1, 2, 2))),
     r"conv2d_backward: dy must have shape \(1, 1, 3, 3\)"),
    (lambda: ref.deconv2d_backward(np.zeros((1, 1, 4, 4)), Z44, np.zeros((1, 1, 2, 2))),
     r"deconv2d_backward: dy must have shape \(1, 1, 5, 5\)"),
    (lambda: ref.pool2d_backward(np.zeros((1, 1, 3, 3)), Z44, 2, 2),
     r"pool2d_backward: dy must have shape \(1, 1, 2, 2\)"),
])
def test_op_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_pool_error_names_the_axis():
    # height is fine (4 >= 2), width is not (3 < 4): the message says which axis
    x = np.zeros((1, 1, 4, 3))
    with pytest.raises(ValueError, match=re.escape("pool2d (width): kernel extent 4")):
        ref.pool2d(x, (2, 4))
