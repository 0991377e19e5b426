"""Every layer type, gradient-checked in float64 with respect to its bottoms and its learnable
parameters (exhaustive on these tiny shapes, plus random directions)."""

import numpy as np
import pytest

from reference import LAYER_TYPES, gradcheck

from .bvlc_layer_cases import BVLC_CASES, distinct_values

RNG = np.random.default_rng(7)


def distinct(*shape, lo=-2.0, hi=2.0):
    return distinct_values(RNG, *shape, lo=lo, hi=hi)


def L(type_, bottoms, **params):
    names = [f"b{i}" for i in range(bottoms)]
    return {"name": type_.lower(), "type": type_, "bottom": names, "top": ["t"], **params}


def gauss(std=0.5):
    return {"type": "gaussian", "std": std}


CONV = {"num_output": 4, "kernel_size": 3, "weight_filler": gauss(), "bias_filler": gauss()}

# (id, layer dict, bottoms, phase)
CASES = [
    ("conv", L("Convolution", 1, convolution_param=dict(CONV, pad=1, stride=2)), [distinct(2, 2, 6, 7)], "TEST"),
    ("econv_group_rect", L("Convolution", 1, convolution_param=dict(
        {k: v for k, v in CONV.items() if k != "kernel_size"}, kernel_h=2, kernel_w=3, dilation=[2, 3], group=2, pad=[2, 1])), [distinct(1, 4, 7, 8)], "TEST"),
    ("conv_two_bottoms", {"name": "c", "type": "Convolution", "bottom": ["a", "b"], "top": ["y", "z"],
                          "convolution_param": dict(CONV, bias_term=False)},
     [distinct(1, 2, 5, 5), distinct(1, 2, 5, 5)], "TEST"),
    ("deconv", L("Deconvolution", 1, convolution_param=dict(CONV, kernel_size=4, stride=2, pad=1)),
     [distinct(1, 2, 3, 4)], "TEST"),
    ("deconv_group_est", L("Deconvolution", 1, convolution_param=dict(
        CONV, num_output=4, kernel_size=3, stride=2, dilation=2, group=2, bias_term=False)),
     [distinct(1, 2, 3, 3)], "TEST"),
    ("pool_max_ceil", L("Pooling", 1, pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2}),
     [distinct(2, 2, 6, 7)], "TEST"),
    ("pool_ave_pad", L("Pooling", 1, pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}),
     [distinct(1, 2, 6, 5)], "TEST"),
    ("epool_max", L("Pooling", 1, pooling_param={"pool": "MAX", "kernel_size": 2, "est": 2, "pad_end": 1}),
     [distinct(1, 2, 6, 6)], "TEST"),
    ("pool_global", L("Pooling", 1, pooling_param={"pool": "AVE", "global_pooling": True}),
     [distinct(2, 3, 4, 5)], "TEST"),
    ("ip", L("InnerProduct", 1, inner_product_param={"num_output": 3, "weight_filler": gauss(),
                                                     "bias_filler": gauss()}), [distinct(2, 2, 3, 2)], "TEST"),
    ("ip_axis2_transpose", L("InnerProduct", 1, inner_product_param={
        "num_output": 3, "axis": 2, "transpose": True, "weight_filler": gauss()}), [distinct(2, 2, 3, 2)], "TEST"),
    ("relu_leaky", L("ReLU", 1, relu_param={"negative_slope": 0.1}), [distinct(2, 3, 4)], "TEST"),
    ("dropout_train", L("Dropout", 1, dropout_param={"dropout_ratio": 0.3}), [distinct(2, 3, 4)], "TRAIN"),
    ("lrn_across", L("LRN", 1, lrn_param={"local_size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}),
     [distinct(2, 5, 3, 3)], "TEST"),
    ("lrn_within", L("LRN", 1, lrn_param={"local_size": 3, "alpha": 0.5, "beta": 0.75,
                                         "norm_region": "WITHIN_CHANNEL"}), [distinct(1, 2, 4, 5)], "TEST"),
    ("softmax", L("Softmax", 1), [distinct(2, 4, 3)], "TEST"),
    ("softmax_axis2", L("Softmax", 1, softmax_param={"axis": 2}), [distinct(2, 3, 4)], "TEST"),
    ("softmax_loss_ignore", L("SoftmaxWithLoss", 2, loss_param={"ignore_label": 255, "normalization": "FULL"}),
     [distinct(2, 4, 3, 3), np.array([0, 1, 255, 3, 2, 255, 1, 0, 3] * 2, float).reshape(2, 1, 3, 3)], "TEST"),
    ("softmax_loss_batch", L("SoftmaxWithLoss", 2, loss_param={"normalize": False}, loss_weight=[2.0]),
     [distinct(3, 5), np.array([[4.0], [0.0], [2.0]])], "TEST"),
    ("euclidean", L("EuclideanLoss", 2), [distinct(2, 3, 2), distinct(2, 3, 2)], "TEST"),
    ("l1", L("L1Loss", 2), [distinct(2, 5), distinct(2, 5) + 0.01], "TEST"),
    ("tanh", L("TanH", 1), [distinct(2, 6)], "TEST"),
    ("sigmoid", L("Sigmoid", 1), [distinct(2, 6)], "TEST"),
    ("power", L("Power", 1, power_param={"power": 2.5, "scale": 0.5, "shift": 2.0}), [distinct(2, 6)], "TEST"),
    ("eltwise_sum", L("Eltwise", 3, eltwise_param={"operation": "SUM", "coeff": [1.0, -0.5, 2.0]}),
     [distinct(2, 3), distinct(2, 3), distinct(2, 3)], "TEST"),
    ("eltwise_prod", L("Eltwise", 3, eltwise_param={"operation": "PROD"}),
     [distinct(2, 3), distinct(2, 3), distinct(2, 3)], "TEST"),
    ("eltwise_max", L("Eltwise", 3, eltwise_param={"operation": "MAX"}),
     list(distinct(3, 2, 4)), "TEST"),
    ("concat", L("Concat", 2, concat_param={"axis": 1}), [distinct(2, 1, 3), distinct(2, 2, 3)], "TEST"),
    ("crop", L("Crop", 2, crop_param={"axis": 2, "offset": [1, 2]}), [distinct(1, 2, 5, 6), distinct(1, 2, 3, 3)], "TEST"),
    ("batchnorm_train", L("BatchNorm", 1), [distinct(3, 2, 2, 3)], "TRAIN"),
    ("batchnorm_global", L("BatchNorm", 1, batch_norm_param={"use_global_stats": True}), [distinct(2, 3, 2)], "TEST"),
    ("scale_bias", L("Scale", 1, scale_param={"bias_term": True, "filler": gauss(), "bias_filler": gauss()}),
     [distinct(2, 3, 2, 2)], "TEST"),
    ("scale_two_bottoms", L("Scale", 2, scale_param={"axis": 0, "bias_term": True}),
     [distinct(2, 3, 2), distinct(2, 3)], "TEST"),
    ("flatten", L("Flatten", 1), [distinct(2, 3, 2, 2)], "TEST"),
    ("reshape", L("Reshape", 1, reshape_param={"shape": {"dim": [0, -1, 2]}}), [distinct(2, 3, 2, 2)], "TEST"),
    ("shift", L("Shift", 1, shift_param={"offset": [1, 2]}), [distinct(1, 2, 4, 5)], "TEST"),
    ("shift_padded", L("Shift", 1, shift_param={"offset": [2, 1], "pad": [1, 2]}), [distinct(1, 2, 4, 5)], "TEST"),
    ("split", {"name": "s", "type": "Split", "bottom": ["a"], "top": ["y", "z"]}, [distinct(2, 3)], "TEST"),
    ("edeconvolution", L("EDeconvolution", 1, convolution_param={
        "num_output": 2, "kernel_size": 3, "stride": 2, "pad": 1, "grid": [2, 1], "group": 2,
        "weight_filler": gauss(), "bias_filler": gauss()}), [distinct(1, 2, 7, 4)], "TEST"),
    ("mask", L("Mask", 1, mask_param={"step": [2, 1], "valid_h": [3, 1], "valid_w": [2], "size": [5, 3]}),
     [distinct(1, 2, 5, 3)], "TEST"),
] + BVLC_CASES


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_layer_gradients(case):
    _, spec, bottoms, phase, *options = case
    report = gradcheck(spec, bottoms, phase=phase, **(options[0] if options else {}))
    report.assert_ok()
    assert report.kinks == 0


# Layers with nothing to check: Input (filled by the Net), Silence (no top; its backward gives
# zeros), and the types Caffe gives no backward (``has_backward = False``).
NOT_DIFFERENTIABLE = {"Input", "Silence"} | {t for t, cls in LAYER_TYPES.items()
                                              if not cls.has_backward and cls.__module__.startswith("reference.")}


def test_every_layer_type_is_gradient_checked():
    from tests.reference.test_fork_layers import FORK_CASES, FORWARD_ONLY   # the fork layers' own table
    checked = {case[1]["type"] for case in CASES + FORK_CASES} | FORWARD_ONLY
    # the reference's own types (caffe_import.data registers the file-reading data layers too)
    own = {t for t, cls in LAYER_TYPES.items() if cls.__module__.startswith("reference.")}
    assert checked == own - NOT_DIFFERENTIABLE
    assert NOT_DIFFERENTIABLE == {"Input", "Silence", "ArgMax", "Accuracy", "Threshold"}


def test_batchnorm_statistics_are_not_learned():
    """BatchNorm's three blobs have lr_mult 0, so the checker leaves them out; the diffs stay 0."""
    from reference import create_layer
    layer = create_layer(L("BatchNorm", 1), phase="TRAIN", dtype=np.float64)
    layer.setup([(3, 2, 2)])
    assert [layer.lr_mult(i) for i in range(3)] == [0.0, 0.0, 0.0]
