"""One literal forward (and backward where easy) per Caffe layer type, through reference.Net, on tiny
inputs whose results are worked out by hand (CAFFE_FACTS 3.4-3.11), plus the Net's rules: fan-out,
in-place naming, loss weights, include/exclude."""

import math

import numpy as np
import pytest

import reference as ref

LOG2 = math.log(2.0)


def L(name, type_, bottom, top, **params):
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    top = [top] if isinstance(top, str) else list(top)
    return {"name": name, "type": type_, "bottom": bottom, "top": top, **params}


def inp(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": list(dims)}]}}


def net_of(layers, phase="test", **kw):
    return ref.Net(layers, dtype=np.float64, force_backward=True, phase=phase, **kw)


def one_layer(type_, x, **params):
    """Net: Input 'x' -> layer 'l' of ``type_`` -> top 'y'."""
    x = np.asarray(x, dtype=np.float64)
    return net_of([inp("x", x.shape), L("l", type_, "x", "y", **params)])


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=1e-12, atol=1e-14)


# ---- InnerProduct ------------------------------------------------------------------------------------

def test_inner_product_forward_backward():
    # x = [[1, 2]], W = [[1, 0], [1, 1], [0, 2]], b = [0, 0, 1]: y = [1, 1+2, 4+1] = [1, 3, 5]
    net = one_layer("InnerProduct", [[1, 2]], inner_product_param={"num_output": 3})
    net.params["l"][0][...] = [[1, 0], [1, 1], [0, 2]]
    net.params["l"][1][...] = [0, 0, 1]
    close(net.forward(x=[[1, 2]])["y"], [[1, 3, 5]])
    # dy = [[1, 1, 1]]: dx = dy W = [1+1+0, 0+1+2] = [2, 3]; dW[n] = dy[n] x = [1, 2]; db = [1, 1, 1]
    d = net.backward({"y": [[1, 1, 1]]})
    close(d["x"], [[2, 3]])
    close(net.param_diffs["l"][0], [[1, 2], [1, 2], [1, 2]])
    close(net.param_diffs["l"][1], [1, 1, 1])


def test_inner_product_flattens_chw():
    # x (1, 2, 1, 2) = [[[[1, 2]], [[3, 4]]]] flattens to [1, 2, 3, 4]; W = [[1, 10, 100, 1000]]
    # y = 1 + 20 + 300 + 4000 = 4321 (no bias)
    x = np.array([1.0, 2, 3, 4]).reshape(1, 2, 1, 2)
    net = one_layer("InnerProduct", x, inner_product_param={"num_output": 1, "bias_term": False})
    net.params["l"][0][...] = [[1, 10, 100, 1000]]
    close(net.forward(x=x)["y"], [[4321]])


def test_inner_product_axis():
    # x (1, 2, 2) = [[[0, 1], [2, 3]]], axis 2: M = 1*2 = 2 rows of K = 2; W = [[1, 10]]
    # y[0, 0] = 0 + 10 = 10; y[0, 1] = 2 + 30 = 32; top shape (1, 2, 1)
    x = np.arange(4.0).reshape(1, 2, 2)
    net = one_layer("InnerProduct", x, inner_product_param={"num_output": 1, "axis": 2,
                                                            "bias_term": False})
    y = net.forward(x=x)["y"]
    assert y.shape == (1, 2, 1)
    net.params["l"][0][...] = [[1, 10]]
    close(net.forward(x=x)["y"], [[[10], [32]]])
    # dy = [[[1], [2]]]: dx rows = dy * W = [[1, 10], [2, 20]]; dW = 1*[0, 1] + 2*[2, 3] = [4, 7]
    d = net.backward({"y": [[[1], [2]]]})
    close(d["x"], [[[1, 10], [2, 20]]])
    close(net.param_diffs["l"][0], [[4, 7]])


def test_inner_product_transpose():
    # transpose: W stored (K, N) = [[1, 1, 0], [0, 1, 2]], y = x W = [1, 1 + 2, 0 + 4] = [1, 3, 4];
    # + b [0, 0, 1] -> [1, 3, 5]
    net = one_layer("InnerProduct", [[1, 2]], inner_product_param={"num_output": 3, "transpose": True})
    assert net.params["l"][0].shape == (2, 3)
    net.params["l"][0][...] = [[1, 1, 0], [0, 1, 2]]
    net.params["l"][1][...] = [0, 0, 1]
    close(net.forward(x=[[1, 2]])["y"], [[1, 3, 5]])
    # dy = [[1, 2, 3]]: dx = W dy = [1 + 2, 2 + 6] = [3, 8]; dW (K, N) = x^T dy = [[1, 2, 3], [2, 4, 6]]
    d = net.backward({"y": [[1, 2, 3]]})
    close(d["x"], [[3, 8]])
    close(net.param_diffs["l"][0], [[1, 2, 3], [2, 4, 6]])


# ---- neurons -----------------------------------------------------------------------------------------

def test_relu_negative_slope():
    # slope 0.1: x = [-2, 0, 3] -> [-0.2, 0, 3]; dx factor 1 where x > 0 else 0.1 (x = 0 gets the slope)
    net = one_layer("ReLU", [[-2, 0, 3]], relu_param={"negative_slope": 0.1})
    close(net.forward(x=[[-2, 0, 3]])["y"], [[-0.2, 0, 3]])
    close(net.backward({"y": [[10, 10, 10]]})["x"], [[1, 1, 10]])


def test_relu_plain():
    net = one_layer("ReLU", [[-2, 0, 3]])
    close(net.forward(x=[[-2, 0, 3]])["y"], [[0, 0, 3]])
    close(net.backward({"y": [[5, 6, 7]]})["x"], [[0, 0, 7]])


def test_tanh():
    # tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 0.6; dx = 1 - y^2 = 0.64
    x = [[0, math.log(2), -math.log(2)]]
    net = one_layer("TanH", x)
    close(net.forward(x=x)["y"], [[0, 0.6, -0.6]])
    close(net.backward({"y": [[1, 1, 2]]})["x"], [[1, 0.64, 1.28]])


def test_sigmoid():
    # sigmoid(ln 3) = 1/(1 + 1/3) = 3/4; sigmoid(-ln 3) = 1/4; dx = y(1 - y)
    x = [[0, math.log(3), -math.log(3)]]
    net = one_layer("Sigmoid", x)
    close(net.forward(x=x)["y"], [[0.5, 0.75, 0.25]])
    close(net.backward({"y": [[1, 1, 1]]})["x"], [[0.25, 0.1875, 0.1875]])


def test_power():
    # power 2, scale 0.5, shift 0.25: x = 1.5 -> (0.25 + 0.75)^2 = 1; x = 3.5 -> (0.25 + 1.75)^2 = 4
    # dx = power * scale * (shift + scale x)^(power - 1) = 2 * 0.5 * [1, 2] = [1, 2]
    x = [[1.5, 3.5]]
    net = one_layer("Power", x, power_param={"power": 2.0, "scale": 0.5, "shift": 0.25})
    close(net.forward(x=x)["y"], [[1, 4]])
    close(net.backward({"y": [[1, 1]]})["x"], [[1, 2]])


def test_power_constant_cases():
    # power 0 -> 1 everywhere, zero gradient; scale 0, power 2, shift 3 -> 3^2 = 9
    x = [[1.5, -7]]
    net = one_layer("Power", x, power_param={"power": 0.0, "shift": 5.0})
    close(net.forward(x=x)["y"], [[1, 1]])
    close(net.backward({"y": [[1, 1]]})["x"], [[0, 0]])
    net = one_layer("Power", x, power_param={"power": 2.0, "scale": 0.0, "shift": 3.0})
    close(net.forward(x=x)["y"], [[9, 9]])
    # power 1 is affine: 2x - 1, gradient 2
    net = one_layer("Power", x, power_param={"scale": 2.0, "shift": -1.0})
    close(net.forward(x=x)["y"], [[2, -15]])
    close(net.backward({"y": [[1, 3]]})["x"], [[2, 6]])


# ---- Dropout -------------------------------------------------------------------------------------------

def test_dropout_test_phase_is_identity():
    x = [[1.0, -2, 3, 4]]
    net = one_layer("Dropout", x, dropout_param={"dropout_ratio": 0.5})
    close(net.forward(x=x)["y"], x)                         # no scaling at test time
    close(net.backward({"y": [[1, 2, 3, 4]]})["x"], [[1, 2, 3, 4]])


@pytest.mark.parametrize("ratio, scale", [(0.5, 2.0), (0.75, 4.0)])
def test_dropout_train_inverted_and_same_mask(ratio, scale):
    # TRAIN: y = x * mask / (1 - ratio), mask in {0, 1}; backward uses the same mask and scale
    x = np.arange(1.0, 201.0).reshape(1, 200)
    net = net_of([inp("x", x.shape), L("d", "Dropout", "x", "y", dropout_param={"dropout_ratio": ratio})],
                 phase="train", seed=123)
    y = net.forward(x=x)["y"]
    kept = y != 0
    close(y[kept], scale * x[kept])                         # 1 / (1 - 0.5) = 2, 1 / (1 - 0.75) = 4
    assert 0 < kept.sum() < 200
    assert abs(kept.mean() - (1 - ratio)) < 0.15
    dy = np.full_like(x, 3.0)
    dx = net.backward({"y": dy})["x"]
    close(dx, np.where(kept, 3.0 * scale, 0.0))


# ---- LRN ----------------------------------------------------------------------------------------------

def test_lrn_across_channels_forward():
    # 3 channels x = [1, 2, 3], n 3, alpha 3, beta 1, k 1: alpha/n = 1
    # scale0 = 1 + (0 + 1 + 4) = 6; scale1 = 1 + (1 + 4 + 9) = 15; scale2 = 1 + (4 + 9 + 0) = 14
    # y = [1/6, 2/15, 3/14]
    x = np.array([1.0, 2, 3]).reshape(1, 3, 1, 1)
    net = one_layer("LRN", x, lrn_param={"local_size": 3, "alpha": 3.0, "beta": 1.0, "k": 1.0})
    close(net.forward(x=x)["y"].ravel(), [1 / 6, 2 / 15, 3 / 14])


def test_lrn_across_channels_k_and_beta():
    # 2 channels x = [1, 2], n 3, alpha 3, beta 0.5, k 4: scale = 4 + (1 + 4) = 9 for both, y = x / 3
    x = np.array([1.0, 2]).reshape(1, 2, 1, 1)
    net = one_layer("LRN", x, lrn_param={"local_size": 3, "alpha": 3.0, "beta": 0.5, "k": 4.0})
    close(net.forward(x=x)["y"].ravel(), [1 / 3, 2 / 3])
    # n 1, alpha 1, beta 1, k 1 (docstring): x = 2 -> scale 1 + 4 = 5, y = 0.4
    net = one_layer("LRN", x, lrn_param={"local_size": 1, "alpha": 1.0, "beta": 1.0, "k": 1.0})
    close(net.forward(x=x)["y"].ravel(), [1 / 2, 0.4])     # x = 1: 1 / (1 + 1)


def test_lrn_across_channels_backward():
    # x = [1, 2], n 3, alpha 3, beta 1, k 1: S = 1 + 1 + 4 = 6 for both channels, y_c = x_c / S
    # dy_c/dx_j = delta_cj / S - 2 x_c x_j / S^2; dy = [1, 0]:
    #   dx0 = 1/6 - 2*1*1/36 = 1/9;  dx1 = -2*1*2/36 = -1/9
    x = np.array([1.0, 2]).reshape(1, 2, 1, 1)
    net = one_layer("LRN", x, lrn_param={"local_size": 3, "alpha": 3.0, "beta": 1.0, "k": 1.0})
    close(net.forward(x=x)["y"].ravel(), [1 / 6, 2 / 6])
    close(net.backward({"y": np.array([1.0, 0]).reshape(1, 2, 1, 1)})["x"].ravel(), [1 / 9, -1 / 9])


def test_lrn_within_channel():
    # x = [[1, 2], [3, 4]], n 3, alpha 9, beta 1, k 5 (ignored): every 3x3 window (pad 1) covers the
    # whole 2x2 image, divisor always n^2 = 9: S = 1 + (9/9) * (1 + 4 + 9 + 16) = 31, y = x / 31
    x = np.array([[1.0, 2], [3, 4]]).reshape(1, 1, 2, 2)
    net = one_layer("LRN", x, lrn_param={"local_size": 3, "alpha": 9.0, "beta": 1.0, "k": 5.0,
                                         "norm_region": "WITHIN_CHANNEL"})
    close(net.forward(x=x)["y"], x / 31)
    # backward, dy = 1 at (0, 0): dx_q = delta_0q / S - 2 x_0 x_q / S^2 = delta_0q/31 - 2 x_q/961
    #   dx = [[31/961 - 2/961, -4/961], [-6/961, -8/961]]
    dy = np.array([[1.0, 0], [0, 0]]).reshape(1, 1, 2, 2)
    close(net.backward({"y": dy})["x"], np.array([[29, -4], [-6, -8]]).reshape(1, 1, 2, 2) / 961)


# ---- Softmax / SoftmaxWithLoss ----------------------------------------------------------------------

def test_softmax():
    # x = [0, ln 3]: p = [1/4, 3/4]; dx = p (dy - sum dy p) with dy = [1, 0]: sum = 1/4
    #   dx = [1/4 * 3/4, 3/4 * (-1/4)] = [3/16, -3/16]
    x = [[0, math.log(3)]]
    net = one_layer("Softmax", x)
    close(net.forward(x=x)["y"], [[0.25, 0.75]])
    close(net.backward({"y": [[1, 0]]})["x"], [[3 / 16, -3 / 16]])


def test_softmax_axis():
    # shape (1, 1, 2): softmax over axis 2: [0, ln 3] -> [1/4, 3/4]
    x = [[[0, math.log(3)]]]
    net = one_layer("Softmax", x, softmax_param={"axis": 2})
    close(net.forward(x=x)["y"], [[[0.25, 0.75]]])


def loss_net(loss_param=None, **extra):
    layer = L("loss", "SoftmaxWithLoss", ["x", "label"], "loss", **extra)
    if loss_param is not None:
        layer["loss_param"] = loss_param
    return net_of([inp("x", (2, 2, 1, 2)), inp("label", (2, 1, 1, 2)), layer])


# x = zeros (2 samples, 2 classes, 1x2): p = 1/2 everywhere; labels [[0, 255], [1, 1]]: 3 valid
# positions, each -log(1/2) = log 2; 4 positions, N = 2
X0 = np.zeros((2, 2, 1, 2))
LAB = np.array([0.0, 255, 1, 1]).reshape(2, 1, 1, 2)


@pytest.mark.parametrize("loss_param, expected", [
    ({"ignore_label": 255, "normalization": "FULL"}, 3 * LOG2 / 4),        # / (outer*inner = 4)
    ({"ignore_label": 255, "normalization": "VALID"}, 3 * LOG2 / 3),       # / 3 valid
    ({"ignore_label": 255}, LOG2),                                        # VALID is the default
    ({"ignore_label": 255, "normalization": "BATCH_SIZE"}, 3 * LOG2 / 2),  # / N
    ({"ignore_label": 255, "normalization": "NONE"}, 3 * LOG2),            # / 1
    ({"ignore_label": 255, "normalize": True}, LOG2),                      # legacy true -> VALID
    ({"ignore_label": 255, "normalize": False}, 3 * LOG2 / 2),             # legacy false -> BATCH_SIZE
    ({"ignore_label": 255, "normalize": False, "normalization": "NONE"}, 3 * LOG2),  # normalization wins
])
def test_softmax_loss_normalizations(loss_param, expected):
    net = loss_net(loss_param)
    out = net.forward(x=X0, label=LAB)
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-12)
    assert net.loss == pytest.approx(expected, rel=1e-12)


def test_softmax_loss_gradient_valid_and_ignored():
    # VALID, normalizer 3: dx = (p - onehot) / 3
    #   (n0, w0) label 0: [1/2 - 1, 1/2]/3 = [-1/6, 1/6]; (n0, w1) ignored: [0, 0]
    #   (n1, w0), (n1, w1) label 1: [1/6, -1/6]
    net = loss_net({"ignore_label": 255})
    net.forward(x=X0, label=LAB)
    d = net.backward()
    expected = np.zeros((2, 2, 1, 2))
    expected[0, :, 0, 0] = [-1 / 6, 1 / 6]
    expected[1, :, 0, 0] = [1 / 6, -1 / 6]
    expected[1, :, 0, 1] = [1 / 6, -1 / 6]
    close(d["x"], expected)
    close(d["label"], np.zeros((2, 1, 1, 2)))      # labels get no gradient


def test_softmax_loss_without_ignore_label():
    # labels [[0, 1], [1, 1]] all valid: loss = 4 log 2 / 4 = log 2;  FULL gives the same
    lab = np.array([0.0, 1, 1, 1]).reshape(2, 1, 1, 2)
    for lp in (None, {"normalization": "FULL"}):
        net = loss_net(lp)
        assert float(net.forward(x=X0, label=lab)["loss"]) == pytest.approx(LOG2, rel=1e-12)


def test_softmax_loss_nonuniform_and_loss_weight():
    # x = [0, ln 3] (one sample, 2 classes), label 1: p = [1/4, 3/4]; loss = -log(3/4) = log(4/3)
    # loss_weight 2: net.loss = 2 log(4/3); dx = 2 * (p - onehot) = 2 * [1/4, -1/4] = [1/2, -1/2]
    # labels are read as float and truncated: 1.7 -> 1
    net = net_of([inp("x", (1, 2)), inp("label", (1,)),
                  L("loss", "SoftmaxWithLoss", ["x", "label"], "loss", loss_weight=2.0)])
    out = net.forward(x=[[0, math.log(3)]], label=[1.7])
    assert float(out["loss"]) == pytest.approx(math.log(4 / 3), rel=1e-12)
    assert net.loss == pytest.approx(2 * math.log(4 / 3), rel=1e-12)
    close(net.backward()["x"], [[0.5, -0.5]])


def test_softmax_loss_second_top_is_probabilities():
    net = net_of([inp("x", (1, 2)), inp("label", (1,)),
                  L("loss", "SoftmaxWithLoss", ["x", "label"], ["loss", "prob"])])
    out = net.forward(x=[[0, math.log(3)]], label=[0])
    close(out["prob"], [[0.25, 0.75]])
    assert float(out["loss"]) == pytest.approx(math.log(4), rel=1e-12)   # -log(1/4)
    assert net.loss == pytest.approx(math.log(4), rel=1e-12)             # prob has loss weight 0


# ---- regression losses ------------------------------------------------------------------------------

def test_euclidean_loss():
    # a = [[1, 2], [3, 4]], b = [[0, 0], [3, 2]]: d = [[1, 2], [0, 2]], sum d^2 = 9, N = 2: 9 / 4 = 2.25
    # da = d / N = [[0.5, 1], [0, 1]], db = -da
    a, b = [[1.0, 2], [3, 4]], [[0.0, 0], [3, 2]]
    net = net_of([inp("a", (2, 2)), inp("b", (2, 2)), L("loss", "EuclideanLoss", ["a", "b"], "loss")])
    assert float(net.forward(a=a, b=b)["loss"]) == pytest.approx(2.25, rel=1e-12)
    d = net.backward()
    close(d["a"], [[0.5, 1], [0, 1]])
    close(d["b"], [[-0.5, -1], [0, -1]])


def test_l1_loss():
    # a = [[1, -2], [0, 3]], b = [[0, 0], [0, 1]]: |d| = 1 + 2 + 0 + 2 = 5, N = 2: 2.5
    # da = sign(d) / N = [[0.5, -0.5], [0, 0.5]]
    a, b = [[1.0, -2], [0, 3]], [[0.0, 0], [0, 1]]
    net = net_of([inp("a", (2, 2)), inp("b", (2, 2)), L("loss", "L1Loss", ["a", "b"], "loss")])
    assert float(net.forward(a=a, b=b)["loss"]) == pytest.approx(2.5, rel=1e-12)
    d = net.backward()
    close(d["a"], [[0.5, -0.5], [0, 0.5]])
    close(d["b"], [[-0.5, 0.5], [0, -0.5]])


def test_loss_weight_doubles_loss_and_diffs():
    # EuclideanLoss of a = [[1, 2]], b = [[0, 0]]: (1 + 4) / 2 = 2.5 (docstring); weight 2 -> 5
    # da = 2 * d / N = [[2, 4]]
    net = net_of([inp("a", (1, 2)), inp("b", (1, 2)),
                  L("loss", "EuclideanLoss", ["a", "b"], "loss", loss_weight=[2.0])])
    out = net.forward(a=[[1, 2]], b=[[0, 0]])
    assert float(out["loss"]) == pytest.approx(2.5, rel=1e-12)     # the blob is unweighted
    assert net.loss == pytest.approx(5.0, rel=1e-12)
    close(net.backward()["a"], [[2, 4]])


def test_loss_weight_on_a_non_loss_layer():
    # a Power layer with loss_weight 3 adds 3 * sum(y) to net.loss and seeds its own diff with 3
    # y = 2x = [2, 4] -> loss 3 * 6 = 18; dx = 3 * 2 = 6 per element
    net = net_of([inp("x", (1, 2)), L("p", "Power", "x", "y", power_param={"scale": 2.0},
                                      loss_weight=3.0)])
    net.forward(x=[[1, 2]])
    assert net.loss == pytest.approx(18.0, rel=1e-12)
    close(net.backward()["x"], [[6, 6]])


# ---- Eltwise / Concat -------------------------------------------------------------------------------

def two_input(type_, a, b, **params):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return net_of([inp("a", a.shape), inp("b", b.shape), L("l", type_, ["a", "b"], "y", **params)])


def test_eltwise_sum_coeff():
    # coeff [1, -0.5]: [1 - 2, 2 - 3] = [-1, -1]; dx0 = dy, dx1 = -0.5 dy
    net = two_input("Eltwise", [[1, 2]], [[4, 6]], eltwise_param={"operation": "SUM", "coeff": [1, -0.5]})
    close(net.forward(a=[[1, 2]], b=[[4, 6]])["y"], [[-1, -1]])
    d = net.backward({"y": [[1, 2]]})
    close(d["a"], [[1, 2]])
    close(d["b"], [[-0.5, -1]])


def test_eltwise_sum_default_coeff():
    net = two_input("Eltwise", [[1, 2]], [[4, 6]])
    close(net.forward(a=[[1, 2]], b=[[4, 6]])["y"], [[5, 8]])


def test_eltwise_prod_three_bottoms():
    # [2, 3] * [4, 5] * [1, -1] = [8, -15]; dx_i = dy * product of the others (dy = 1):
    #   dx0 = [4*1, 5*-1] = [4, -5]; dx1 = [2*1, 3*-1] = [2, -3]; dx2 = [2*4, 3*5] = [8, 15]
    net = net_of([inp("a", (1, 2)), inp("b", (1, 2)), inp("c", (1, 2)),
                  L("l", "Eltwise", ["a", "b", "c"], "y", eltwise_param={"operation": "PROD"})])
    close(net.forward(a=[[2, 3]], b=[[4, 5]], c=[[1, -1]])["y"], [[8, -15]])
    d = net.backward({"y": [[1, 1]]})
    close(d["a"], [[4, -5]])
    close(d["b"], [[2, -3]])
    close(d["c"], [[8, 15]])


def test_eltwise_max_tie_goes_to_bottom1():
    # x0 = [1, 2, 5], x1 = [1, 3, 4]: y = [1, 3, 5]; element 0 is a tie -> bottom 1 wins (Caffe's
    # bottom0 > bottom1 test); winners [1, 1, 0]; dy = [10, 20, 30]
    net = two_input("Eltwise", [[1, 2, 5]], [[1, 3, 4]], eltwise_param={"operation": "MAX"})
    close(net.forward(a=[[1, 2, 5]], b=[[1, 3, 4]])["y"], [[1, 3, 5]])
    d = net.backward({"y": [[10, 20, 30]]})
    close(d["a"], [[0, 0, 30]])
    close(d["b"], [[10, 20, 0]])


def test_eltwise_max_third_bottom_must_be_strictly_greater():
    # x0 = [1, 2, 5], x1 = [1, 3, 4], x2 = [1, 3, 6]: winners after two = [1, 1, 0] with best [1, 3, 5];
    # x2 ties at elements 0, 1 (keeps the earlier winner) and wins element 2 -> winners [1, 1, 2]
    net = net_of([inp("a", (1, 3)), inp("b", (1, 3)), inp("c", (1, 3)),
                  L("l", "Eltwise", ["a", "b", "c"], "y", eltwise_param={"operation": "MAX"})])
    close(net.forward(a=[[1, 2, 5]], b=[[1, 3, 4]], c=[[1, 3, 6]])["y"], [[1, 3, 6]])
    d = net.backward({"y": [[10, 20, 30]]})
    close(d["a"], [[0, 0, 0]])
    close(d["b"], [[10, 20, 0]])
    close(d["c"], [[0, 0, 30]])


def test_concat_channels_and_width():
    # (1,1,1,2) [1, 2] ++ (1,2,1,2) [[3, 4], [5, 6]] along channels -> (1, 3, 1, 2)
    a = np.array([1.0, 2]).reshape(1, 1, 1, 2)
    b = np.array([3.0, 4, 5, 6]).reshape(1, 2, 1, 2)
    net = two_input("Concat", a, b)
    y = net.forward(a=a, b=b)["y"]
    assert y.shape == (1, 3, 1, 2)
    close(y.ravel(), [1, 2, 3, 4, 5, 6])
    d = net.backward({"y": np.array([10.0, 20, 30, 40, 50, 60]).reshape(1, 3, 1, 2)})
    close(d["a"].ravel(), [10, 20])
    close(d["b"].ravel(), [30, 40, 50, 60])
    # along the width (axis 3): [[1, 2]] ++ [[7]] -> [[1, 2, 7]]
    c = np.array([7.0]).reshape(1, 1, 1, 1)
    net = two_input("Concat", a, c, concat_param={"axis": 3})
    close(net.forward(a=a, b=c)["y"], [[[[1, 2, 7]]]])
    d = net.backward({"y": [[[[1, 2, 3]]]]})
    close(d["b"], [[[[3]]]])


# ---- Crop ----------------------------------------------------------------------------------------

X45 = np.arange(20.0).reshape(1, 1, 4, 5)     # x[r, c] = 5r + c


def crop_net(x_shape, ref_shape, **crop_param):
    return net_of([inp("x", x_shape), inp("r", ref_shape),
                   L("c", "Crop", ["x", "r"], "y", crop_param=crop_param)])


def test_crop_one_offset():
    # axis 2, offset 1 on both spatial axes, reference 2x2: rows 1..2, cols 1..2 -> [[6, 7], [11, 12]]
    net = crop_net((1, 1, 4, 5), (1, 1, 2, 2), axis=2, offset=1)
    close(net.forward(x=X45, r=np.zeros((1, 1, 2, 2)))["y"], [[[[6, 7], [11, 12]]]])
    # backward: the window gets dy, everything else 0; the reference gets nothing
    d = net.backward({"y": [[[[1, 2], [3, 4]]]]})
    expected = np.zeros((1, 1, 4, 5))
    expected[0, 0, 1:3, 1:3] = [[1, 2], [3, 4]]
    close(d["x"], expected)
    close(d["r"], np.zeros((1, 1, 2, 2)))


def test_crop_default_offset_is_top_left():
    net = crop_net((1, 1, 4, 5), (1, 1, 2, 3))
    close(net.forward(x=X45, r=np.zeros((1, 1, 2, 3)))["y"], [[[[0, 1, 2], [5, 6, 7]]]])


def test_crop_per_axis_offsets():
    # offsets [1, 2]: rows 1..2, cols 2..3 -> [[7, 8], [12, 13]]
    net = crop_net((1, 1, 4, 5), (1, 1, 2, 2), axis=2, offset=[1, 2])
    close(net.forward(x=X45, r=np.zeros((1, 1, 2, 2)))["y"], [[[[7, 8], [12, 13]]]])


def test_crop_axis1():
    # x (1, 2, 4, 5) = arange(40): x[0, c, r, q] = 20c + 5r + q; reference (1, 1, 2, 2), axis 1,
    # offsets [1, 2, 3]: channel 1, rows 2..3, cols 3..4 -> 20 + [[13, 14], [18, 19]]
    x = np.arange(40.0).reshape(1, 2, 4, 5)
    net = crop_net((1, 2, 4, 5), (1, 1, 2, 2), axis=1, offset=[1, 2, 3])
    close(net.forward(x=x, r=np.zeros((1, 1, 2, 2)))["y"], [[[[33, 34], [38, 39]]]])


def test_crop_keeps_axes_before_axis():
    # axis 2: N and C of the cropped blob come from x, not from the reference
    net = crop_net((2, 3, 4, 5), (1, 1, 2, 2), axis=2, offset=1)
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    y = net.forward(x=x, r=np.zeros((1, 1, 2, 2)))["y"]
    assert y.shape == (2, 3, 2, 2)
    # y[1, 2] = x[1, 2, 1:3, 1:3]; x[1, 2] starts at 60 + 40 = 100: [[106, 107], [111, 112]]
    close(y[1, 2], [[106, 107], [111, 112]])


# ---- BatchNorm / Scale ------------------------------------------------------------------------------

def test_batchnorm_global_stats_with_scale_factor():
    # blobs: sum of means [4, 0], sum of vars [8, 2], factor [2] -> mean [2, 0], var [4, 1]; eps 0
    # ch0 x = [2, 6] -> (x - 2)/2 = [0, 2]; ch1 x = [1, -3] -> x/1 = [1, -3]
    x = np.array([2.0, 6, 1, -3]).reshape(1, 2, 1, 2)
    net = one_layer("BatchNorm", x, batch_norm_param={"use_global_stats": True, "eps": 0.0})
    b = net.params["l"]
    b[0][...], b[1][...], b[2][...] = [4, 0], [8, 2], [2]
    close(net.forward(x=x)["y"].ravel(), [0, 2, 1, -3])
    # backward: dx = dy / sqrt(var + eps) = dy / [2, 1] per channel
    d = net.backward({"y": np.ones((1, 2, 1, 2))})
    close(d["x"].ravel(), [0.5, 0.5, 1, 1])
    # statistics are not learned: their diffs stay 0
    for diff in net.param_diffs["l"]:
        close(diff, np.zeros_like(diff))


def test_batchnorm_zero_scale_factor_and_default_test_phase():
    # factor 0 -> f = 0 -> mean 0, var 0; eps 1 -> y = x / sqrt(1) = x (TEST defaults to global stats)
    x = np.array([3.0, -5]).reshape(1, 2, 1, 1)
    net = one_layer("BatchNorm", x, batch_norm_param={"eps": 1.0})
    b = net.params["l"]
    b[0][...], b[1][...], b[2][...] = [10, 10], [10, 10], [0]
    close(net.forward(x=x)["y"].ravel(), [3, -5])


def test_batchnorm_train_batch_stats_and_running_update():
    # x one channel, values [2, 2, 6, 6] (N = 2, W = 2): mean 4, biased var 4, m = 4 -> y = [-1, -1, 1, 1]
    # update (maf 0.5, blobs start at 0): blob2 = 0*0.5 + 1 = 1; blob0 = 4 + 0 = 4; blob1 = 4/3 * 4 = 16/3
    # second forward:                       blob2 = 1.5;        blob0 = 4 + 2 = 6; blob1 = 16/3 + 8/3 = 8
    x = np.array([2.0, 2, 6, 6]).reshape(2, 1, 1, 2)
    net = net_of([inp("x", x.shape),
                  L("bn", "BatchNorm", "x", "y",
                    batch_norm_param={"moving_average_fraction": 0.5, "eps": 0.0})], phase="train")
    close(net.forward(x=x)["y"].ravel(), [-1, -1, 1, 1])
    b = net.params["bn"]
    close(b[2], [1])
    close(b[0], [4])
    close(b[1], [16 / 3])
    # backward: dx = (dy - mean(dy) - mean(dy*y) * y) / sqrt(var), dy = [1, 0, 0, 0]:
    #   mean(dy) = 1/4, mean(dy*y) = -1/4 -> (dy - 1/4 + y/4) / 2 = [0.5, -0.5, 0, 0] / 2
    d = net.backward({"y": np.array([1.0, 0, 0, 0]).reshape(2, 1, 1, 2)})
    close(d["x"].ravel(), [0.25, -0.25, 0, 0])
    net.forward(x=x)
    close(b[2], [1.5])
    close(b[0], [6])
    close(b[1], [8])


def test_batchnorm_train_stats_used_at_test():
    # after one TRAIN step of the previous test, a TEST net with these blobs uses mean 4/1, var (16/3)/1
    # x = [4 + 4/sqrt(3)] -> (x - 4)/sqrt(16/3) = (4/sqrt 3)/(4/sqrt 3) = 1
    x = np.array([4 + 4 / math.sqrt(3)]).reshape(1, 1, 1, 1)
    net = one_layer("BatchNorm", x, batch_norm_param={"eps": 0.0})
    b = net.params["l"]
    b[0][...], b[1][...], b[2][...] = [4], [16 / 3], [1]
    close(net.forward(x=x)["y"].ravel(), [1])


def test_scale_with_bias():
    # x ch0 [1, 2], ch1 [3, 4]; scale [2, -1], bias [10, 20] -> [12, 14], [17, 16]
    x = np.array([1.0, 2, 3, 4]).reshape(1, 2, 1, 2)
    net = one_layer("Scale", x, scale_param={"bias_term": True})
    p = net.params["l"]
    close(p[0], [1, 1])                            # default filler: constant 1
    p[0][...], p[1][...] = [2, -1], [10, 20]
    close(net.forward(x=x)["y"].ravel(), [12, 14, 17, 16])
    # dy = 1: dx = scale per channel; dscale = sum dy*x = [3, 7]; dbias = [2, 2]
    d = net.backward({"y": np.ones((1, 2, 1, 2))})
    close(d["x"].ravel(), [2, 2, -1, -1])
    close(net.param_diffs["l"][0], [3, 7])
    close(net.param_diffs["l"][1], [2, 2])


def test_scale_two_bottoms():
    # scale from the second bottom s = [2, -1]: y = [2, 4, -3, -4]; dx = s; ds = sum dy*x = [3, 7]
    x = np.array([1.0, 2, 3, 4]).reshape(1, 2, 1, 2)
    net = net_of([inp("x", (1, 2, 1, 2)), inp("s", (2,)), L("l", "Scale", ["x", "s"], "y")])
    assert "l" not in net.params                   # the scale is a bottom, not a parameter
    close(net.forward(x=x, s=[2, -1])["y"].ravel(), [2, 4, -3, -4])
    d = net.backward({"y": np.ones((1, 2, 1, 2))})
    close(d["x"].ravel(), [2, 2, -1, -1])
    close(d["s"], [3, 7])


# ---- shape layers ------------------------------------------------------------------------------------

def test_flatten():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    net = one_layer("Flatten", x)
    y = net.forward(x=x)["y"]
    assert y.shape == (1, 8)
    close(y, [[0, 1, 2, 3, 4, 5, 6, 7]])
    d = net.backward({"y": [[7, 6, 5, 4, 3, 2, 1, 0]]})
    close(d["x"], np.array([7.0, 6, 5, 4, 3, 2, 1, 0]).reshape(1, 2, 2, 2))


def test_reshape_zero_and_minus_one():
    # (2, 3, 4) with dims [0, -1]: 0 copies 2, -1 = 24 / 2 = 12
    x = np.arange(24.0).reshape(2, 3, 4)
    net = one_layer("Reshape", x, reshape_param={"shape": {"dim": [0, -1]}})
    y = net.forward(x=x)["y"]
    assert y.shape == (2, 12)
    close(y[1], [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23])
    # dims [0, 2, -1]: (2, 2, 6); y[1, 1] = values 18..23
    net = one_layer("Reshape", x, reshape_param={"shape": {"dim": [0, 2, -1]}})
    y = net.forward(x=x)["y"]
    assert y.shape == (2, 2, 6)
    close(y[1, 1], [18, 19, 20, 21, 22, 23])
    d = net.backward({"y": np.ones((2, 2, 6))})
    assert d["x"].shape == (2, 3, 4)


def test_global_pooling_layer():
    # global AVE over 2x3 = (0 + ... + 5)/6 = 2.5; global MAX = 5
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    net = one_layer("Pooling", x, pooling_param={"pool": "AVE", "global_pooling": True})
    close(net.forward(x=x)["y"], [[[[2.5]]]])
    net = one_layer("Pooling", x, pooling_param={"pool": "MAX", "global_pooling": True})
    close(net.forward(x=x)["y"], [[[[5]]]])


def test_pooling_layer_est_and_pad_end_fields():
    # ePool through the layer: row [5, 1, 7, 3, 2], kernel 1x2 via kernel_h/kernel_w, est [1, 2]:
    # [7, 3, 7]; pad_end [0, 2] adds windows {x3}, {x4} -> [7, 3, 7, 3, 2]
    x = np.array([5.0, 1, 7, 3, 2]).reshape(1, 1, 1, 5)
    net = one_layer("Pooling", x, pooling_param={"pool": "MAX", "kernel_h": 1, "kernel_w": 2,
                                                 "est": [1, 2]})
    close(net.forward(x=x)["y"].ravel(), [7, 3, 7])
    net = one_layer("Pooling", x, pooling_param={"pool": "MAX", "kernel_h": 1, "kernel_w": 2,
                                                 "est": [1, 2], "pad_end": [0, 2]})
    close(net.forward(x=x)["y"].ravel(), [7, 3, 7, 3, 2])


def test_convolution_layer_dilation_and_deconvolution_layer():
    # Convolution, dilation 2: x = 1..9 (3x3), w = [[1, 10], [100, 1000]], b = 0.5 -> 9731.5
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    net = one_layer("Convolution", x, convolution_param={"num_output": 1, "kernel_size": 2,
                                                         "dilation": 2})
    net.params["l"][0][...] = [[[[1, 10], [100, 1000]]]]
    net.params["l"][1][...] = [0.5]
    close(net.forward(x=x)["y"], [[[[9731.5]]]])
    # Deconvolution, k (1, 2) via kernel_h/kernel_w, stride 2, no bias: [1, 2] * [1, 10] -> [1, 10, 2, 20]
    x = np.array([1.0, 2]).reshape(1, 1, 1, 2)
    net = one_layer("Deconvolution", x, convolution_param={"num_output": 1, "kernel_h": 1,
                                                           "kernel_w": 2, "stride": 2,
                                                           "bias_term": False})
    net.params["l"][0][...] = [[[[1, 10]]]]
    close(net.forward(x=x)["y"], [[[[1, 10, 2, 20]]]])


# ---- Net rules: fan-out, in-place, include/exclude ----------------------------------------------------

def test_fan_out_sums_diffs():
    # x feeds two layers: y1 = 2x, y2 = 3x; seeding both with ones gives dx = 2 + 3 = 5
    net = net_of([inp("x", (1, 2)),
                  L("p1", "Power", "x", "y1", power_param={"scale": 2.0}),
                  L("p2", "Power", "x", "y2", power_param={"scale": 3.0})])
    out = net.forward(x=[[1, -1]])
    close(out["y1"], [[2, -2]])
    close(out["y2"], [[3, -3]])
    close(net.backward({"y1": [[1, 1]], "y2": [[1, 1]]})["x"], [[5, 5]])
    # seeding one consumer only: dx = 2 * [1, 10]
    close(net.backward({"y1": [[1, 10]]})["x"], [[2, 20]])


def test_fan_out_into_eltwise_twice():
    # y = x + x (the same blob as both bottoms): dy = 1 -> dx = 2
    net = net_of([inp("x", (1, 2)), L("e", "Eltwise", ["x", "x"], "y")])
    close(net.forward(x=[[1, 2]])["y"], [[2, 4]])
    close(net.backward({"y": [[1, 1]]})["x"], [[2, 2]])


def test_in_place_relu_naming():
    # s = -x = [-1, 2]; ReLU in place on 's': the blob 's' holds the ReLU output [0, 2]
    # seeding 's' with [5, 7] seeds the ReLU's top; its pre-ReLU input was [-1, 2] -> [0, 7]; the diff
    # reported for 's' is the pre-ReLU one, and dx = -[0, 7]
    net = net_of([inp("x", (1, 2)),
                  L("neg", "Power", "x", "s", power_param={"scale": -1.0}),
                  L("relu", "ReLU", "s", "s")])
    close(net.forward(x=[[1, -2]])["s"], [[0, 2]])
    d = net.backward({"s": [[5, 7]]})
    close(d["s"], [[0, 7]])
    close(d["x"], [[0, -7]])


def test_in_place_chain_then_consumer():
    # x -> p (3x) -> relu in place -> q (y = p + 1, a Power with shift 1)
    # x = [-1, 2]: p = [-3, 6] -> relu [0, 6] -> q = [1, 7]; dq = [1, 1] -> dp(after relu) = [1, 1]
    # -> pre-relu [0, 1] -> dx = 3 * [0, 1]
    net = net_of([inp("x", (1, 2)),
                  L("p", "Power", "x", "p", power_param={"scale": 3.0}),
                  L("relu", "ReLU", "p", "p"),
                  L("q", "Power", "p", "q", power_param={"shift": 1.0})])
    out = net.forward(x=[[-1, 2]])
    close(out["p"], [[0, 6]])
    close(out["q"], [[1, 7]])
    d = net.backward({"q": [[1, 1]]})
    close(d["p"], [[0, 1]])
    close(d["x"], [[0, 3]])


def phase_layers():
    return [inp("x", (1, 2)),
            L("train_only", "Power", "x", "a", power_param={"scale": 2.0},
              include=[{"phase": "TRAIN"}]),
            L("test_only", "Power", "x", "a", power_param={"scale": 3.0},
              include=[{"phase": "TEST"}]),
            L("not_in_test", "Power", "a", "b", power_param={"shift": 1.0},
              exclude=[{"phase": "TEST"}]),
            L("always", "Power", "a", "c", power_param={"shift": 10.0})]


def test_include_exclude_by_phase():
    train = net_of(phase_layers(), phase="train")
    test = net_of(phase_layers(), phase="test")
    assert train.layer_names == ["x", "train_only", "not_in_test", "always"]
    assert test.layer_names == ["x", "test_only", "always"]
    # train: a = 2x, b = a + 1, c = a + 10; test: a = 3x, c = a + 10, no b
    out = train.forward(x=[[1, 2]])
    close(out["a"], [[2, 4]])
    close(out["b"], [[3, 5]])
    close(out["c"], [[12, 14]])
    out = test.forward(x=[[1, 2]])
    close(out["a"], [[3, 6]])
    close(out["c"], [[13, 16]])
    assert "b" not in out


def test_layer_phase_field_overrides_net_phase():
    # a Dropout with phase TEST inside a TRAIN net is the identity
    x = np.arange(1.0, 51.0).reshape(1, 50)
    net = net_of([inp("x", x.shape), L("d", "Dropout", "x", "y", phase="TEST")], phase="train")
    close(net.forward(x=x)["y"], x)


def test_include_stage_and_level():
    layers = [inp("x", (1, 1)),
              L("staged", "Power", "x", "y", power_param={"scale": 2.0},
                include=[{"stage": "deploy"}]),
              L("leveled", "Power", "x", "z", power_param={"scale": 3.0},
                include=[{"min_level": 1}])]
    assert net_of(layers).layer_names == ["x"]
    assert net_of(layers, stages=("deploy",)).layer_names == ["x", "staged"]
    assert net_of(layers, level=1).layer_names == ["x", "leveled"]


# ---- more literal edge cases --------------------------------------------------------------------------

def test_softmax_loss_all_ignored():
    # every label is the ignore_label: VALID count 0, normalizer clamped to 1; loss 0, gradient 0
    net = net_of([inp("x", (1, 2, 1, 2)), inp("label", (1, 1, 1, 2)),
                  L("loss", "SoftmaxWithLoss", ["x", "label"], "loss", loss_param={"ignore_label": 3})])
    out = net.forward(x=np.array([1.0, 2, 3, 4]).reshape(1, 2, 1, 2), label=np.full((1, 1, 1, 2), 3.0))
    assert float(out["loss"]) == 0
    close(net.backward()["x"], np.zeros((1, 2, 1, 2)))


def test_softmax_loss_flt_min_clamp():
    # x = [0, -1000], label 1: p1 = e^-1000 underflows to 0; Caffe clamps to FLT_MIN = 2^-126
    # loss = -log(2^-126) = 126 log 2
    net = net_of([inp("x", (1, 2)), inp("label", (1,)),
                  L("loss", "SoftmaxWithLoss", ["x", "label"], "loss")])
    out = net.forward(x=[[0, -1000]], label=[1])
    assert float(out["loss"]) == pytest.approx(126 * LOG2, rel=1e-12)
    # gradient is still p - onehot = [1, -1] (p = [1, 0])
    close(net.backward()["x"], [[1, -1]])


def test_fan_out_around_in_place_layer():
    # x -> a = 2x (reads x before the ReLU), then ReLU in place on x, then b = 3 relu(x)
    # x = [-1, 2]: a = [-2, 4], x after ReLU = [0, 2], b = [0, 6]
    # seeds a = b = [1, 1]: through b: 3 * [1, 1] -> ReLU (input [-1, 2]) -> [0, 3]; through a: [2, 2]
    # diff of x (its first version) = [2, 5]
    net = net_of([inp("x", (1, 2)),
                  L("a", "Power", "x", "a", power_param={"scale": 2.0}),
                  L("relu", "ReLU", "x", "x"),
                  L("b", "Power", "x", "b", power_param={"scale": 3.0})])
    out = net.forward(x=[[-1, 2]])
    close(out["a"], [[-2, 4]])
    close(out["x"], [[0, 2]])
    close(out["b"], [[0, 6]])
    close(net.backward({"a": [[1, 1]], "b": [[1, 1]]})["x"], [[2, 5]])


def test_split_and_single_bottom_concat():
    # Concat of one bottom is a copy; Split copies to both tops and sums their diffs
    net = net_of([inp("x", (1, 2)), L("c", "Concat", "x", "y"), L("sp", "Split", "y", ["a", "b"])])
    out = net.forward(x=[[1, 2]])
    close(out["a"], [[1, 2]])
    close(out["b"], [[1, 2]])
    close(net.backward({"a": [[1, 2]], "b": [[10, 20]]})["x"], [[11, 22]])


def test_batchnorm_train_2d_input():
    # (N, C) = (4, 1): the same statistics as the 4-D case: [2, 2, 6, 6] -> mean 4, var 4 -> [-1, -1, 1, 1]
    x = np.array([[2.0], [2], [6], [6]])
    net = net_of([inp("x", (4, 1)), L("bn", "BatchNorm", "x", "y", batch_norm_param={"eps": 0.0})],
                 phase="train")
    close(net.forward(x=x)["y"], [[-1], [-1], [1], [1]])
    # default maf 0.999, blobs from 0: blob2 = 1, blob0 = 4, blob1 = 4/3 * 4 = 16/3
    close(net.params["bn"][2], [1])
    close(net.params["bn"][0], [4])
    close(net.params["bn"][1], [16 / 3])


def test_scale_over_all_axes():
    # axis 1, num_axes -1: one scale per (C, H, W) element, shared over N
    # x (2, 1, 1, 2) = [[1, 2]], [[3, 4]]; scale [10, 100] -> [[10, 200]], [[30, 400]]
    x = np.array([1.0, 2, 3, 4]).reshape(2, 1, 1, 2)
    net = one_layer("Scale", x, scale_param={"axis": 1, "num_axes": -1})
    assert net.params["l"][0].shape == (1, 1, 2)
    net.params["l"][0][...] = [[[10, 100]]]
    close(net.forward(x=x)["y"].ravel(), [10, 200, 30, 400])
    # dy = 1: dscale = sum over N of x = [1 + 3, 2 + 4]
    net.backward({"y": np.ones((2, 1, 1, 2))})
    close(net.param_diffs["l"][0], [[[4, 6]]])


def test_scale_scalar_num_axes_0():
    # num_axes 0: one scalar scale s = 3; x = [0, 1, 2, 3] -> [0, 3, 6, 9]
    # backward dy = 1: dx = 3; dscale = sum dy * x = 0 + 1 + 2 + 3 = 6
    x = np.arange(4.0).reshape(1, 2, 1, 2)
    net = one_layer("Scale", x, scale_param={"num_axes": 0})
    net.params["l"][0][...] = 3
    close(net.forward(x=x)["y"].ravel(), [0, 3, 6, 9])
    d = net.backward({"y": np.ones((1, 2, 1, 2))})
    close(d["x"].ravel(), [3, 3, 3, 3])
    close(np.ravel(net.param_diffs["l"][0]), [6])
    assert net.params["l"][0].shape == ()          # Caffe: a zero-axis blob


def test_pooling_layer_caffe_joint_clip():
    # kernel_h 1, kernel_w 2, stride_h 2, stride_w 1, pad_h 0, pad_w 1 on 6 x 3 (see test_pool.py):
    # Caffe's top is 3 x 4 (the height clip fires because pad_w != 0)
    x = np.arange(18.0).reshape(1, 1, 6, 3)
    net = one_layer("Pooling", x, pooling_param={"pool": "MAX", "kernel_h": 1, "kernel_w": 2,
                                                 "stride_h": 2, "stride_w": 1, "pad_h": 0, "pad_w": 1})
    y = net.forward(x=x)["y"]
    close(y, np.array([[0, 1, 2, 2], [6, 7, 8, 8], [12, 13, 14, 14]]).reshape(1, 1, 3, 4))


def test_pooling_layer_round_mode_and_pad_hw():
    x = np.arange(16.0).reshape(1, 1, 4, 4)     # x[r, c] = 4r + c
    # AVE k 3 s 2 pad 1, round_mode FLOOR: windows [-1,2)/3, [1,4)/3 -> [[10/9, 24/9], [51/9, 10]]
    net = one_layer("Pooling", x, pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1,
                                                 "round_mode": "FLOOR"})
    close(net.forward(x=x)["y"], np.array([[10 / 9, 24 / 9], [51 / 9, 10]]).reshape(1, 1, 2, 2))
    # pad_h 1, pad_w 0, ceil: rows [-1,2)/3, [1,4)/3, [3,5)/2; cols [0,3)/3, [2,4)/2 (p 0: no overhang count)
    #   y00 = (0+1+2+4+5+6)/9 = 2            y01 = (2+3+6+7)/6 = 3
    #   y10 = (4+5+6+8+9+10+12+13+14)/9 = 9  y11 = (6+7+10+11+14+15)/6 = 10.5
    #   y20 = (12+13+14)/6 = 6.5             y21 = (14+15)/4 = 7.25
    net = one_layer("Pooling", x, pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2,
                                                 "pad_h": 1, "pad_w": 0})
    close(net.forward(x=x)["y"], np.array([[2, 3], [9, 10.5], [6.5, 7.25]]).reshape(1, 1, 3, 2))
