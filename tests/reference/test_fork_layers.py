"""The common fork layers (SegNet, PSPNet / DeepLab, SSD, Fast R-CNN, DenseNet's ceil_mode, DeepLab's
hole): literal, hand-checked values in float32 and float64, and the gradient checker (FORK_CASES, which
tests/reference/test_gradcheck_layers.py counts towards "every layer type is gradient-checked")."""

import numpy as np
import pytest

import reference as ref
from caffe_import import FormatError, read_prototxt
from reference import gradcheck

from .bvlc_layer_cases import L, distinct_values

RNG = np.random.default_rng(11)
DTYPES = [np.float32, np.float64]
FORWARD_ONLY = {"PriorBox", "DetectionOutput"}    # their forks have no backward


def distinct(*shape, lo=-2.0, hi=2.0):
    return distinct_values(RNG, *shape, lo=lo, hi=hi)


def inp(name, shape):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": list(shape)}]}}


def net_of(inputs: dict, layer: dict, dtype, phase="test"):
    layer = dict(layer, bottom=list(inputs))
    return ref.Net([inp(k, np.shape(v)) for k, v in inputs.items()] + [layer], dtype=dtype,
                   force_backward=True, phase=phase)


def run(inputs, layer, dtype, phase="test"):
    net = net_of(inputs, layer, dtype, phase)
    out = net.forward(**{k: np.asarray(v, dtype) for k, v in inputs.items()})
    return net, out


def close(a, b, dtype):
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


# ---- DenseNet's ceil_mode, DeepLab's hole -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_ceil_mode_false_is_floor(dtype):
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    pool = {"pool": "MAX", "kernel_size": 3, "stride": 2}
    _, out = run({"x": x}, L("Pooling", 1, pooling_param=dict(pool, ceil_mode=False)), dtype)
    close(out["t0"], [[[[14, 16], [26, 28]]]], dtype)               # floor((6 - 3) / 2) + 1 = 2
    _, out = run({"x": x}, L("Pooling", 1, pooling_param=dict(pool, ceil_mode=True)), dtype)
    assert out["t0"].shape == (1, 1, 3, 3)                           # ceil: 3 (Caffe's default)


def test_ceil_mode_from_prototxt_and_conflict():
    net = read_prototxt('layer { name: "p" type: "Pooling" bottom: "x" top: "p" '
                        'pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }')
    assert net["layer"][0]["pooling_param"]["ceil_mode"] is False
    with pytest.raises(ValueError, match="ceil_mode .* round_mode"):
        ref.Net([inp("x", (1, 1, 6, 6)), dict(L("Pooling", 1, pooling_param={
            "kernel_size": 3, "ceil_mode": False, "round_mode": "FLOOR"}), bottom=["x"])])


@pytest.mark.parametrize("dtype", DTYPES)
def test_hole_is_dilation(dtype):
    # row [1, 2, 3, 4, 5], a 1x2 kernel of ones with hole 2: taps 2 apart -> [1+3, 2+4, 3+5]
    conv = {"num_output": 1, "kernel_h": 1, "kernel_w": 2, "hole": 2, "bias_term": False,
            "weight_filler": {"type": "constant", "value": 1}}
    x = np.arange(1.0, 6).reshape(1, 1, 1, 5)
    _, out = run({"x": x}, L("Convolution", 1, convolution_param=conv), dtype)
    close(out["t0"], [[[[4, 6, 8]]]], dtype)
    with pytest.raises(ValueError, match="hole"):
        ref.Net([inp("x", (1, 1, 1, 5)), dict(L("Convolution", 1, convolution_param=dict(conv, dilation=2)),
                                              bottom=["x"])])


# ---- BN (SegNet, PSPNet) ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_bn_pspnet_moving_statistics(dtype):
    # mean 1, var 3, eps 1 -> 1/sqrt(4) = 1/2; slope 2, bias 1: x = 5 -> 2 * 4 / 2 + 1 = 5; x = 1 -> 1
    layer = L("BN", 1, bn_param={"eps": 1.0, "frozen": True})
    net, _ = run({"x": np.zeros((1, 1, 1, 2))}, layer, dtype)
    for blob, v in zip(net.params["bn"], (2, 1, 1, 3)):
        blob[...] = v
    out = net.forward(x=np.array([[[[5.0, 1.0]]]], dtype))
    close(out["t0"], [[[[5, 1]]]], dtype)
    d = net.backward({"t0": np.ones((1, 1, 1, 2))})
    close(d["x"], [[[[1, 1]]]], dtype)                               # slope / std = 1
    assert [net.layer("bn").lr_mult(i) for i in range(4)] == [0, 0, 0, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bn_pspnet_train_updates_moving_statistics(dtype):
    # Caffe's default filler is constant 0: a slope of 1 has to be asked for (PSPNet's files do)
    one = {"type": "constant", "value": 1}
    layer = L("BN", 1, bn_param={"momentum": 0.5, "eps": 0.0, "slope_filler": one})
    net, out = run({"x": np.array([1.0, 3.0]).reshape(2, 1, 1, 1)}, layer, dtype, phase="train")
    close(out["t0"].ravel(), [-1, 1], dtype)                         # batch mean 2, variance 1
    mean, var = net.params["bn"][2], net.params["bn"][3]
    close(mean.ravel(), [0.5 * 2], dtype)                            # 0.5 * batch mean 2 + 0.5 * 0
    close(var.ravel(), [0.5 * 1], dtype)                             # biased batch variance 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_bn_segnet_learn_and_inference(dtype):
    fill = {"scale_filler": {"type": "constant", "value": 2},
            "shift_filler": {"type": "constant", "value": 1}}
    x = np.array([1.0, 3.0]).reshape(2, 1, 1, 1)                     # mean 2, var E[x^2] - 4 = 1
    layer = dict(L("BN", 1, tops=3, bn_param=fill))
    _, out = run({"x": x}, layer, dtype)
    e = 1 / np.sqrt(1 + 1e-9)                                        # SegNet's eps is 1e-9
    close(out["t0"].ravel(), [-2 * e + 1, 2 * e + 1], dtype)         # 2 * (-1, 1) + 1
    close(out["t1"].ravel(), [2], dtype)
    close(out["t2"].ravel(), [1], dtype)
    _, out = run({"x": x}, L("BN", 1, bn_param=dict(fill, bn_mode="INFERENCE")), dtype)
    close(out["t0"].ravel(), [3, 7], dtype)                          # 2 x + 1


# ---- Upsample, Interp ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_upsample_with_mask(dtype):
    layer = L("Upsample", 2, upsample_param={"upsample_h": 2, "upsample_w": 2})
    x = np.array([[[[5.0]]]])
    net, out = run({"x": x, "mask": np.array([[[[3.0]]]])}, layer, dtype)
    close(out["t0"], [[[[0, 0], [0, 5]]]], dtype)
    d = net.backward({"t0": np.array([[[[1.0, 2], [3, 4]]]])})
    close(d["x"], [[[[4]]]], dtype)
    # scale 2 on 1x2, pad_out_w: 2x3; mask [[1, 2]] -> row 0 gets [0, 5, 7]
    layer = L("Upsample", 2, upsample_param={"scale": 2, "pad_out_w": True})
    _, out = run({"x": np.array([[[[5.0, 7.0]]]]), "mask": np.array([[[[1.0, 2.0]]]])}, layer, dtype)
    close(out["t0"], [[[[0, 5, 7], [0, 0, 0]]]], dtype)
    with pytest.raises(ValueError, match="outside"):
        run({"x": x, "mask": np.array([[[[4.0]]]])},
            L("Upsample", 2, upsample_param={"upsample_h": 2, "upsample_w": 2}), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_interp_bilinear_corners_aligned(dtype):
    net, out = run({"x": np.array([[[[0.0, 2.0]]]])}, L("Interp", 1, interp_param={"zoom_factor": 2}), dtype)
    close(out["t0"], [[[[0, 1, 2]]]], dtype)
    d = net.backward({"t0": np.ones((1, 1, 1, 3))})
    close(d["x"], [[[[1.5, 1.5]]]], dtype)
    # shrink 2: 5 -> 3 samples at 0, 2, 4; height/width 1x1 reads the first pixel (ratio 0)
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    _, out = run({"x": x}, L("Interp", 1, interp_param={"shrink_factor": 2}), dtype)
    close(out["t0"], [[[[0, 2, 4]]]], dtype)
    # pad_beg = pad_end = -1 crops to [1, 2, 3]; zoom 2 -> 1, 1.5, ..., 3
    x = np.arange(5.0).reshape(1, 1, 1, 5) * np.ones((1, 1, 3, 1))
    crop = {"zoom_factor": 2, "pad_beg": -1, "pad_end": -1}
    _, out = run({"x": x}, L("Interp", 1, interp_param=crop), dtype)
    close(out["t0"][0, 0, 0], [1, 1.5, 2, 2.5, 3], dtype)


# ---- ROIPooling, SmoothL1Loss ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pooling(dtype):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    layer = L("ROIPooling", 2, roi_pooling_param={"pooled_h": 2, "pooled_w": 2})
    net, out = run({"x": x, "rois": np.array([[0.0, 0, 0, 3, 3]])}, layer, dtype)
    close(out["t0"], [[[[5, 7], [13, 15]]]], dtype)
    d = net.backward({"t0": np.array([[[[1.0, 2], [3, 4]]]])})
    want = np.zeros(16)
    want[[5, 7, 13, 15]] = [1, 2, 3, 4]
    close(d["x"].ravel(), want, dtype)
    # spatial_scale 0.5: (1, 1, 6, 6) -> round(0.5) = 1 (half away from 0), round(3) = 3; size 3, bins
    # of 1.5: rows [1, 3) and [2, 4)
    layer = L("ROIPooling", 2, roi_pooling_param={"pooled_h": 2, "pooled_w": 2, "spatial_scale": 0.5})
    _, out = run({"x": x, "rois": np.array([[0.0, 1, 1, 6, 6]])}, layer, dtype)
    close(out["t0"], [[[[10, 11], [14, 15]]]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_smooth_l1_loss(dtype):
    b0, b1 = np.array([[0.5, 3.0]]), np.zeros((1, 2))
    net, _ = run({"p": b0, "t": b1}, L("SmoothL1Loss", 2), dtype)
    close(net.loss, 2.625, dtype)                                    # 0.5 * 0.25 + (3 - 0.5)
    d = net.backward()
    close(d["p"], [[0.5, 1.0]], dtype)
    close(d["t"], [[-0.5, -1.0]], dtype)
    net, _ = run({"p": b0, "t": b1}, L("SmoothL1Loss", 2, smooth_l1_loss_param={"sigma": 2.0}), dtype)
    close(net.loss, 0.375 + 2.875, dtype)                            # both beyond 1 / sigma^2 = 0.25
    w_in, w_out = np.array([[2.0, 1.0]]), np.array([[1.0, 0.5]])
    net, _ = run({"p": b0, "t": b1, "wi": w_in, "wo": w_out}, L("SmoothL1Loss", 4), dtype)
    close(net.loss, 0.5 + 0.5 * 2.5, dtype)                          # d = (1, 3): f = (0.5, 2.5)
    close(net.backward()["p"], [[2 * 1 * 1.0, 1 * 0.5 * 1.0]], dtype)


# ---- SSD ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize(dtype):
    x = np.array([3.0, 4.0]).reshape(1, 2, 1, 1)
    two = {"type": "constant", "value": 2.0}
    for params in ({"across_spatial": False, "channel_shared": False, "scale_filler": two},
                   {"scale_filler": two}):
        _, out = run({"x": x}, L("Normalize", 1, norm_param=params), dtype)
        close(out["t0"].ravel(), np.array([1.2, 1.6]) * 5 / np.sqrt(25 + 1e-10), dtype)   # eps 1e-10
    # across_spatial false normalises each position on its own
    x = np.array([3.0, 1.0, 4.0, 0.0]).reshape(1, 2, 1, 2)
    _, out = run({"x": x}, L("Normalize", 1, norm_param={"across_spatial": False}), dtype)
    r0, r1 = np.sqrt(25 + 1e-10), np.sqrt(1 + 1e-10)
    close(out["t0"].ravel(), [3 / r0, 1 / r1, 4 / r0, 0.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_permute(dtype):
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    net, out = run({"x": x}, L("Permute", 1, permute_param={"order": [0, 2, 3, 1]}), dtype)
    close(out["t0"], x.transpose(0, 2, 3, 1), dtype)
    _, out = run({"x": x}, L("Permute", 1, permute_param={"order": [0, 2]}), dtype)   # rest in order
    assert out["t0"].shape == (1, 3, 2, 4)
    g = np.arange(24.0).reshape(1, 3, 4, 2)
    close(net.backward({"t0": g})["x"], g.transpose(0, 3, 1, 2), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prior_box(dtype):
    layer = L("PriorBox", 2, prior_box_param={"min_size": 4, "max_size": 9, "aspect_ratio": [2, 2.0000001],
                                              "variance": [0.1, 0.1, 0.2, 0.2]})
    _, out = run({"f": np.zeros((1, 1, 1, 1)), "img": np.zeros((1, 3, 10, 10))}, layer, dtype)
    boxes, var = out["t0"][0].reshape(2, -1, 4)
    r = np.sqrt(np.float32(2))                   # Caffe's box sides are floats: 4 * sqrt(2) in float32
    w, h = float(np.float32(4) * r) / 20, float(np.float32(4) / r) / 20
    close(boxes, [[0.3, 0.3, 0.7, 0.7], [0.2, 0.2, 0.8, 0.8],            # min, sqrt(4 * 9) = 6
                  [0.5 - w, 0.5 - h, 0.5 + w, 0.5 + h], [0.5 - h, 0.5 - w, 0.5 + h, 0.5 + w]], dtype)
    close(var, [[0.1, 0.1, 0.2, 0.2]] * 4, dtype)
    # 2x2 feature on an 8x8 image: step 4, centres 2 and 6; min 6 clipped to [0, 1]
    layer = L("PriorBox", 2, prior_box_param={"min_size": 6.7, "clip": True})     # int(6.7) = 6
    _, out = run({"f": np.zeros((1, 1, 2, 2)), "img": np.zeros((1, 3, 8, 8))}, layer, dtype)
    boxes, var = out["t0"][0].reshape(2, -1, 4)
    close(boxes, [[0, 0, 5 / 8, 5 / 8], [3 / 8, 0, 1, 5 / 8],
                  [0, 3 / 8, 5 / 8, 1], [3 / 8, 3 / 8, 1, 1]], dtype)
    close(var, np.full((4, 4), 0.1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_detection_output(dtype):
    # priors A = (0, 0, .5, .5), B = (.1, .1, .6, .6): IoU .16 / .34 = .47; zero offsets (CORNER)
    prior = np.array([[0, 0, .5, .5, .1, .1, .6, .6], [.1] * 8]).reshape(1, 2, 8)
    loc = np.zeros((1, 8))
    conf = np.array([[0.1, 0.9, 0.2, 0.8]])                # (prior, class): class 1 scores .9, .8
    ins = {"loc": loc, "conf": conf, "prior": prior}

    def det(**params):
        return run(ins, L("DetectionOutput", 3, detection_output_param={"num_classes": 2, **params}),
                   dtype)[1]["t0"]
    close(det(), [[[[0, 1, .9, 0, 0, .5, .5]]]], dtype)    # B suppressed at nms_threshold 0.3
    close(det(nms_param={"nms_threshold": 0.5}),
          [[[[0, 1, .9, 0, 0, .5, .5], [0, 1, .8, .1, .1, .6, .6]]]], dtype)
    close(det(nms_param={"nms_threshold": 0.5}, keep_top_k=1), [[[[0, 1, .9, 0, 0, .5, .5]]]], dtype)
    close(det(confidence_threshold=0.95), [[[[0, -1, -1, -1, -1, -1, -1]]]], dtype)
    # CENTER_SIZE with variance 0.1: offset 1 on x moves the centre by 0.1 * 1 * width 0.5 = 0.05
    ins["loc"] = np.array([[1.0, 0, 0, 0, 0, 0, 0, 0]])
    close(det(code_type="CENTER_SIZE", nms_param={"nms_threshold": 0.9})[0, 0, 0],
          [0, 1, .9, .05, 0, .55, .5], dtype)


# ---- fork fields of BVLC layers: Dropout (Fast R-CNN, SegNet), SoftmaxWithLoss (SegNet) ------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_scale_train_false(dtype):
    x = np.array([[2.0, 4.0]])
    layer = L("Dropout", 1, dropout_param={"dropout_ratio": 0.5, "scale_train": False})
    net, out = run({"x": x}, layer, dtype)
    close(out["t0"], [[1, 2]], dtype)                                 # TEST: x * (1 - ratio)
    close(net.backward({"t0": np.ones((1, 2))})["x"], [[0.5, 0.5]], dtype)
    x = np.arange(1.0, 201).reshape(1, 200)
    _, out = run({"x": x}, layer, dtype, phase="train")
    kept = out["t0"] != 0
    close(out["t0"][kept], x[kept], dtype)                            # TRAIN: kept units unscaled
    assert 50 < kept.sum() < 150


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_sample_weights_test(dtype):
    x = np.arange(1.0, 201).reshape(1, 200)
    layer = L("Dropout", 1, dropout_param={"dropout_ratio": 0.5, "sample_weights_test": True})
    _, out = run({"x": x}, layer, dtype)                              # TEST, yet sampled
    kept = out["t0"] != 0
    close(out["t0"][kept], 2 * x[kept], dtype)
    assert 50 < kept.sum() < 150


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_loss_class_weighting(dtype):
    # two pixels, two classes, x = 0: p = 1/2; labels (0, 1), weights (1, 3):
    # loss = -(1 * log 1/2 + 3 * log 1/2) / 2 = 2 log 2; dx = w[label] (p - onehot) / 2
    layer = L("SoftmaxWithLoss", 2, loss_param={"weight_by_label_freqs": True, "class_weighting": [1, 3]})
    net, _ = run({"x": np.zeros((1, 2, 1, 2)), "label": np.array([[[[0.0, 1.0]]]])}, layer, dtype)
    close(net.loss, 2 * np.log(2), dtype)
    close(net.backward()["x"], [[[[-0.25, 0.75]], [[0.25, -0.75]]]], dtype)
    with pytest.raises(ValueError, match="class_weighting"):
        run({"x": np.zeros((1, 3, 1, 2)), "label": np.zeros((1, 1, 1, 2))}, layer, dtype)


# ---- fork fields named in parse errors -----------------------------------------------------------------

def test_fork_fields_parse():
    net = read_prototxt('layer { name: "d" type: "Dropout" bottom: "x" top: "x" dropout_param { '
                        'dropout_ratio: 0.5 scale_train: false } } layer { name: "l" type: "SoftmaxWithLoss" '
                        'bottom: "x" bottom: "y" top: "l" loss_param { weight_by_label_freqs: true '
                        'class_weighting: 0.5 class_weighting: 2 } }')
    assert net["layer"][0]["dropout_param"]["scale_train"] is False
    assert net["layer"][1]["loss_param"]["class_weighting"] == [0.5, 2.0]


def test_unknown_fork_field_names_the_fork():
    text = ('layer { name: "d" type: "AnnotatedData" top: "data" '
            'transform_param { resize_param { height: 300 } } }')
    with pytest.raises(FormatError, match="resize_param.*SSD \\(github:weiliu89/caffe"):
        read_prototxt(text)


# ---- gradients ------------------------------------------------------------------------------------------

def _mask(shape, out_hw):
    """A valid max-unpooling mask: distinct flat indices per plane."""
    n, c, h, w = shape
    m = np.stack([RNG.permutation(out_hw[0] * out_hw[1])[:h * w] for _ in range(n * c)])
    return m.reshape(shape).astype(float)


FORK_CASES = [
    ("bn_segnet_learn", L("BN", 1, bn_param={"scale_filler": {"type": "gaussian", "std": 1}}),
     [distinct(2, 2, 2, 3)], "TEST"),
    ("bn_segnet_inference",
     L("BN", 1, bn_param={"bn_mode": "INFERENCE", "shift_filler": {"type": "gaussian"}}),
     [distinct(2, 2, 2, 2)], "TEST"),
    ("bn_pspnet_train", L("BN", 1, bn_param={"slope_filler": {"type": "gaussian", "std": 1}}),
     [distinct(2, 3, 2, 2)], "TRAIN"),
    ("upsample", L("Upsample", 2, upsample_param={"scale": 2}),
     [distinct(1, 2, 2, 3), _mask((1, 2, 2, 3), (4, 6))], "TEST"),
    ("interp_zoom", L("Interp", 1, interp_param={"zoom_factor": 3}), [distinct(1, 2, 3, 4)], "TEST"),
    ("interp_size_crop", L("Interp", 1, interp_param={"height": 4, "width": 2, "pad_beg": -1}),
     [distinct(1, 1, 5, 6)], "TEST"),
    ("roi_pooling",
     L("ROIPooling", 2, roi_pooling_param={"pooled_h": 2, "pooled_w": 3, "spatial_scale": 0.5}),
     [distinct(2, 2, 6, 7), np.array([[0.0, 1, 2, 11, 9], [1, 0, 0, 4, 4], [1, 5, 3, 13, 11]])], "TEST"),
    ("smooth_l1", L("SmoothL1Loss", 2, smooth_l1_loss_param={"sigma": 1.5}),
     [np.array([[0.1, -2.0, 0.3], [1.5, -0.2, 0.05]]), np.zeros((2, 3))], "TEST"),
    ("smooth_l1_weights", L("SmoothL1Loss", 4),
     [np.array([[0.1, -2.0, 0.3]]), np.array([[0.4, 0.0, -1.0]]),
      np.array([[1.0, 2.0, 0.5]]), np.array([[0.5, 1.0, 2.0]])], "TEST"),
    ("normalize_channels", L("Normalize", 1, norm_param={"across_spatial": False, "channel_shared": False,
                                                         "scale_filler": {"type": "gaussian", "std": 1}}),
     [distinct(2, 3, 2, 2)], "TEST"),
    ("normalize_spatial", L("Normalize", 1), [distinct(2, 3, 2, 2)], "TEST"),
    ("permute", L("Permute", 1, permute_param={"order": [0, 3, 1, 2]}), [distinct(1, 2, 3, 4)], "TEST"),
]


# fork fields of BVLC layer types (their types are counted by test_gradcheck_layers' own table)
FORK_FIELD_CASES = [
    ("dropout_no_scale_train", L("Dropout", 1, dropout_param={"dropout_ratio": 0.3, "scale_train": False}),
     [distinct(2, 5)], "TRAIN"),
    ("dropout_no_scale_test", L("Dropout", 1, dropout_param={"scale_train": False}),
     [distinct(2, 5)], "TEST"),
    ("dropout_sample_test", L("Dropout", 1, dropout_param={"sample_weights_test": True}), [distinct(2, 5)],
     "TEST"),
    ("softmax_loss_weighted", L("SoftmaxWithLoss", 2, loss_param={"weight_by_label_freqs": True,
                                                                  "class_weighting": [0.5, 2.0, 1.5]}),
     [distinct(2, 3, 2, 2), np.array([0, 1, 2, 1, 2, 0, 0, 1], float).reshape(2, 1, 2, 2)], "TEST"),
]


ALL_CASES = FORK_CASES + FORK_FIELD_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_fork_layer_gradients(case):
    _, spec, bottoms, phase = case
    spec = dict(spec, top=spec["top"][:1])
    report = gradcheck(spec, bottoms, phase=phase)
    report.assert_ok()
    assert report.kinks == 0


def test_every_fork_layer_is_checked():
    from reference.layers import bn, rcnn, resample, ssd
    fork = {c.type for m in (bn, rcnn, resample, ssd) for c in vars(m).values()
            if isinstance(c, type) and issubclass(c, ref.Layer) and c.type}
    assert fork == {c[1]["type"] for c in FORK_CASES} | FORWARD_ONLY
