"""Literal, hand-checkable forward and backward values for the BVLC layer types of issue 13, in
float32 and float64 (each judged with ``reference.tolerance``), Caffe's own test expectations where
its tests state literal values (pooling mask, SPP/Im2col/Slice shapes, BatchReindex, Filter), and the
Net's handling of layers without a backward.  Gradients of every differentiable layer are checked in
test_gradcheck_layers.py (table: bvlc_layer_cases.py)."""

import math

import numpy as np
import pytest

import reference as ref
from reference.layers import create_layer
from reference.tolerance import max_rel_err, tolerance

from .bvlc_layer_cases import BVLC_CASES

DTYPES = [np.float32, np.float64]
LN2, LN3 = math.log(2.0), math.log(3.0)


def L(type_, bottoms=1, tops=1, **params):
    return {"name": "l", "type": type_, "bottom": [f"b{i}" for i in range(bottoms)],
            "top": [f"t{i}" for i in range(tops)], **params}


def run(spec, bottoms, dtype, top_diffs=None, phase="TEST", blobs=(), rng=None):
    """One layer: setup, optional blob values, forward, and the backward of ``top_diffs``
    (Filter's top shape depends on the data: its setup shape is Caffe's first Reshape)."""
    layer = create_layer(spec, phase=phase, dtype=dtype, rng=rng)
    b = [np.asarray(x, dtype=dtype) for x in bottoms]
    shapes = layer.setup([x.shape for x in b])
    for blob, value in zip(layer.blobs, blobs):
        blob[...] = value
    tops = layer.forward(b)
    if spec["type"] != "Filter":
        assert [t.shape for t in tops] == shapes, "forward and setup disagree on the top shapes"
    for t in tops:
        assert t.dtype == np.dtype(dtype), f"top dtype {t.dtype}, expected {np.dtype(dtype)}"
    if top_diffs is None:
        return layer, tops
    diffs = layer.backward([np.asarray(d, dtype=dtype).reshape(t.shape) for d, t in zip(top_diffs, tops)],
                           b, tops)
    return layer, tops, diffs


def close(ours, expected, dtype):
    ours = np.asarray(ours)
    expected = np.asarray(expected, dtype=np.float64)
    assert ours.shape == expected.shape, f"shape {ours.shape}, expected {expected.shape}"
    err = max_rel_err(ours, expected)
    assert err <= tolerance(dtype), f"error {err:.2e} > {tolerance(dtype):g}: {ours} vs {expected}"


# ---- neurons ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_per_channel(dtype):
    # channel 0 slope 0.25 (the default filler), channel 1 slope 0.5
    x = [[[-2.0, 3.0], [-4.0, 1.0]]]
    layer, (y,), (dx,) = run(L("PReLU"), [x], dtype, [np.ones((1, 2, 2))], blobs=[[0.25, 0.5]])
    close(y, [[[-0.5, 3], [-2, 1]]], dtype)
    close(dx, [[[0.25, 1], [0.5, 1]]], dtype)
    close(layer.diffs[0], [-2, -4], dtype)          # sum dy * x where x <= 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_defaults_and_shared(dtype):
    layer, _ = run(L("PReLU"), [np.zeros((2, 3, 1))], dtype)
    close(layer.blobs[0], [0.25] * 3, dtype)
    layer, (y,), (dx,) = run(L("PReLU", prelu_param={"channel_shared": True}), [[[-2.0, 0.0], [1.0, -1.0]]],
                             dtype, [np.ones((2, 2))])
    assert layer.blobs[0].shape == ()
    close(y, [[-0.5, 0], [1, -0.25]], dtype)
    close(dx, [[0.25, 0.25], [1, 0.25]], dtype)     # x = 0 takes the slope (x <= 0)
    close(layer.diffs[0], -3.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu(dtype):
    # alpha 1: exp(-ln 2) - 1 = -0.5; dx = alpha + y for x <= 0
    _, (y,), (dx,) = run(L("ELU"), [[-LN2, 0.0, 2.0]], dtype, [[1, 1, 1]])
    close(y, [-0.5, 0, 2], dtype)
    close(dx, [0.5, 1, 1], dtype)
    _, (y,), (dx,) = run(L("ELU", elu_param={"alpha": 2.0}), [[-LN2]], dtype, [[3]])
    close(y, [-1.0], dtype)
    close(dx, [3.0], dtype)                         # 3 * (2 + -1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_absval_bnll(dtype):
    _, (y,), (dx,) = run(L("AbsVal"), [[-3.0, 0.0, 2.0]], dtype, [[5, 5, 5]])
    close(y, [3, 0, 2], dtype)
    close(dx, [-5, 0, 5], dtype)
    # log(1 + e^0) = ln 2; log(1 + 3) = ln 4; log(1 + 1/3) = ln 4/3; dx = e / (e + 1)
    _, (y,), (dx,) = run(L("BNLL"), [[0.0, LN3, -LN3]], dtype, [[1, 1, 1]])
    close(y, [LN2, math.log(4), math.log(4 / 3)], dtype)
    close(dx, [0.5, 0.75, 0.25], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp(dtype):
    _, (y,), (dx,) = run(L("Exp", exp_param={"base": 2.0}), [[0.0, 3.0, -1.0]], dtype, [[1, 1, 1]])
    close(y, [1, 8, 0.5], dtype)
    close(dx, [LN2, 8 * LN2, 0.5 * LN2], dtype)
    # base e, scale 2, shift ln 3: y = 3 e^(2x); dx = 2 y
    _, (y,), (dx,) = run(L("Exp", exp_param={"scale": 2.0, "shift": LN3}), [[0.0, LN2]], dtype, [[1, 1]])
    close(y, [3, 12], dtype)
    close(dx, [6, 24], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log(dtype):
    _, (y,), (dx,) = run(L("Log", log_param={"base": 2.0}), [[1.0, 8.0, 0.5]], dtype, [[1, 1, 1]])
    close(y, [0, 3, -1], dtype)
    close(dx, [1 / LN2, 1 / (8 * LN2), 2 / LN2], dtype)
    # base e, scale 2, shift 1 at x = 1.5: ln 4, dx = 2 / 4
    _, (y,), (dx,) = run(L("Log", log_param={"scale": 2.0, "shift": 1.0}), [[1.5]], dtype, [[1]])
    close(y, [math.log(4)], dtype)
    close(dx, [0.5], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_clip(dtype):
    _, (y,) = run(L("Threshold", threshold_param={"threshold": 0.5}), [[0.2, 0.5, 0.7]], dtype)
    close(y, [0, 0, 1], dtype)                      # strict x > threshold
    _, (y,), (dx,) = run(L("Clip", clip_param={"min": -1.0, "max": 2.0}), [[-3.0, -1.0, 0.5, 2.0, 5.0]],
                         dtype, [[1, 1, 1, 1, 1]])
    close(y, [-1, -1, 0.5, 2, 2], dtype)
    close(dx, [0, 1, 1, 1, 0], dtype)               # both bounds pass the gradient


@pytest.mark.parametrize("dtype", DTYPES)
def test_swish(dtype):
    # beta 1: x = 0 -> y 0, dx = 1/2; x = ln 3 -> s = 3/4, y = 3/4 ln 3, dx = y + s (1 - y)
    _, (y,), (dx,) = run(L("Swish"), [[0.0, LN3]], dtype, [[1, 1]])
    close(y, [0, 0.75 * LN3], dtype)
    close(dx, [0.5, 0.75 * LN3 + 0.75 * (1 - 0.75 * LN3)], dtype)
    # beta 2 at x = ln 3 / 2: s = 3/4, y = 3/8 ln 3, dx = 2 y + s (1 - 2 y)
    _, (y,), (dx,) = run(L("Swish", swish_param={"beta": 2.0}), [[LN3 / 2]], dtype, [[1]])
    close(y, [0.375 * LN3], dtype)
    close(dx, [0.75 * LN3 + 0.75 * (1 - 0.75 * LN3)], dtype)


# ---- routing ------------------------------------------------------------------------------------

def test_slice_caffe_setup_shapes():
    # Caffe test_slice_layer.cpp TestSetupNum / TestSetupChannels: bottom (6, 12, 2, 3)
    layer = create_layer(L("Slice", tops=3, slice_param={"axis": 0}))
    assert layer.setup([(6, 12, 2, 3)]) == [(2, 12, 2, 3)] * 3
    layer = create_layer(L("Slice", tops=2, slice_param={"slice_point": [3]}))
    assert layer.setup([(6, 12, 2, 3)]) == [(6, 3, 2, 3), (6, 9, 2, 3)]
    with pytest.raises(ValueError, match="2 slice_point values for 2 tops"):
        create_layer(L("Slice", tops=2, slice_param={"slice_point": [1, 2]})).setup([(1, 4)])
    with pytest.raises(ValueError, match="not both"):
        create_layer(L("Slice", tops=2, slice_param={"axis": 1, "slice_dim": 1}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_values_and_backward(dtype):
    x = np.arange(10.0).reshape(2, 5)
    _, tops, (dx,) = run(L("Slice", tops=3, slice_param={"slice_point": [1, 3]}), [x], dtype,
                         [np.full((2, 1), 1), np.full((2, 2), 2), np.full((2, 2), 3)])
    close(tops[0], [[0], [5]], dtype)
    close(tops[1], [[1, 2], [6, 7]], dtype)
    close(tops[2], [[3, 4], [8, 9]], dtype)
    close(dx, [[1, 2, 2, 3, 3]] * 2, dtype)
    _, tops = run(L("Slice", tops=2, slice_param={"slice_dim": 0}), [x], dtype)   # legacy field
    close(tops[1], [x[1]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tile(dtype):
    _, (y,), (dx,) = run(L("Tile", tile_param={"tiles": 2}), [[[1.0, 2.0]]], dtype, [[[1, 2, 3, 4]]])
    close(y, [[1, 2, 1, 2]], dtype)                 # whole blocks, not element repeats
    close(dx, [[4, 6]], dtype)
    x = [[1.0, 2.0], [3.0, 4.0]]
    _, (y,), (dx,) = run(L("Tile", tile_param={"axis": 0, "tiles": 2}), [x], dtype,
                         [np.arange(8.0).reshape(4, 2)])
    close(y, [[1, 2], [3, 4], [1, 2], [3, 4]], dtype)
    close(dx, [[4, 6], [8, 10]], dtype)
    with pytest.raises(ValueError, match="tiles is required"):
        create_layer(L("Tile"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_caffe_selector(dtype):
    # Caffe test_filter_layer.cpp: selector [0, 1, 1, 0] forwards items 1 and 2
    data = np.arange(12.0).reshape(4, 3)
    sel = np.array([0, 1, 1, 0], float).reshape(4, 1, 1, 1)
    layer, (y,), (dx, dsel) = run(L("Filter", bottoms=2), [data, sel], dtype, [[[1, 2, 3], [4, 5, 6]]])
    close(y, data[1:3], dtype)
    close(dx, [[0, 0, 0], [1, 2, 3], [4, 5, 6], [0, 0, 0]], dtype)
    assert dsel is None
    assert layer.setup([(4, 3), (4, 1, 1, 1)]) == [(4, 3)]   # Caffe's first Reshape: N items


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_reindex_caffe_permutation(dtype):
    # Caffe test_batch_reindex_layer.cpp TestForward: bottom (5, 4, 3, 2) = 0, 1, ...; perm 4 0 4 0 1 2
    x = np.arange(120.0).reshape(5, 4, 3, 2)
    perm = [4, 0, 4, 0, 1, 2]
    dy = np.arange(6.0)[:, None, None, None] * np.ones((6, 4, 3, 2))
    _, (y,), (dx, dperm) = run(L("BatchReindex", bottoms=2), [x, perm], dtype, [dy])
    close(y, x[perm], dtype)
    expected = np.zeros((5, 4, 3, 2))
    for i, j in enumerate(perm):
        expected[j] += i
    close(dx, expected, dtype)                      # row 4 gets 0 + 2, row 0 gets 1 + 3, row 3 nothing
    assert dperm is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_parameter_and_silence(dtype):
    layer, (y,), _ = run(L("Parameter", bottoms=0, parameter_param={"shape": {"dim": [2, 3]}}), [], dtype,
                         [np.ones((2, 3))], blobs=[np.arange(6.0).reshape(2, 3)])
    close(y, np.arange(6.0).reshape(2, 3), dtype)
    close(layer.diffs[0], np.ones((2, 3)), dtype)
    layer, tops = run(L("Silence", bottoms=2, tops=0), [[1.0], [2.0]], dtype)
    assert tops == []
    assert layer.backward([], [np.ones(1), np.ones(1)], []) == [None, None]


# ---- Bias, Reduction, ArgMax, MVN, Embed ------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_bias(dtype):
    x = [[1.0, 2.0], [3.0, 4.0]]
    layer, (y,), (dx,) = run(L("Bias"), [x], dtype, [np.ones((2, 2))], blobs=[[10, 20]])
    close(y, [[11, 22], [13, 24]], dtype)
    close(dx, np.ones((2, 2)), dtype)
    close(layer.diffs[0], [2, 2], dtype)
    # a second bottom of shape (2,) applied at axis 0 of a (2, 3) input
    _, (y,), (dx, db) = run(L("Bias", bottoms=2, bias_param={"axis": 0}), [np.zeros((2, 3)), [1.0, -1.0]],
                            dtype, [np.arange(6.0).reshape(2, 3)])
    close(y, [[1, 1, 1], [-1, -1, -1]], dtype)
    close(db, [3, 12], dtype)
    layer, _ = run(L("Bias", bias_param={"num_axes": -1}), [np.zeros((2, 3, 4))], dtype)
    assert layer.blobs[0].shape == (3, 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, axis, coeff, value, grad", [
    ("SUM", 0, 1.0, 6.0, [[1, 1], [1, 1]]),
    ("ASUM", 1, 2.0, [6, 14], [[2, -2], [2, 2]]),
    ("SUMSQ", 1, 1.0, [5, 25], [[2, -4], [6, 8]]),
    ("MEAN", -1, 1.0, [-0.5, 3.5], [[0.5, 0.5], [0.5, 0.5]]),
])
def test_reduction(dtype, op, axis, coeff, value, grad):
    x = [[1.0, -2.0], [3.0, 4.0]]
    spec = L("Reduction", reduction_param={"operation": op, "axis": axis, "coeff": coeff})
    _, (y,), (dx,) = run(spec, [x], dtype, [np.ones(np.shape(value))])
    close(y, value, dtype)
    close(dx, grad, dtype)


def test_reduction_enum_numbers():
    # caffe.proto ReductionOp: SUM = 1, ASUM = 2, SUMSQ = 3, MEAN = 4 (not 0-based)
    for number, name in [(1, "SUM"), (2, "ASUM"), (3, "SUMSQ"), (4, "MEAN")]:
        assert create_layer(L("Reduction", reduction_param={"operation": number})).op == name
    with pytest.raises(ValueError, match="operation must be one of"):
        create_layer(L("Reduction", reduction_param={"operation": 0}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax(dtype):
    x = [[3.0, 1.0, 3.0, 0.0]]
    _, (y,) = run(L("ArgMax", argmax_param={"top_k": 2}), [x], dtype)
    close(y, [[[2, 0]]], dtype)                     # equal values: the larger index first (std::greater)
    _, (y,) = run(L("ArgMax", argmax_param={"top_k": 2, "out_max_val": True}), [x], dtype)
    close(y, [[[2, 0], [3, 3]]], dtype)             # (N, 2, top_k): indices, then values
    _, (y,) = run(L("ArgMax"), [np.zeros((2, 3, 2, 2))], dtype)
    assert y.shape == (2, 1, 1, 1)                  # padded to the input's 4 axes
    x = np.array([[[1.0, 5.0], [4.0, 2.0], [0.0, 3.0]]])   # (1, 3, 2), axis 1
    _, (y,) = run(L("ArgMax", argmax_param={"axis": 1}), [x], dtype)
    close(y, [[[1, 0]]], dtype)
    _, (y,) = run(L("ArgMax", argmax_param={"axis": 1, "top_k": 2, "out_max_val": True}), [x], dtype)
    close(y, [[[4, 5], [1, 3]]], dtype)


def test_argmax_order_is_std_greater_on_pairs():
    # many ties: the order must be sorted((value, index), reverse=True), Caffe's partial_sort
    from reference.layers.reduction import caffe_topk
    rows = np.random.default_rng(2).integers(0, 3, size=(50, 7)).astype(float)
    expected = [[i for _, i in sorted(((v, i) for i, v in enumerate(r)), reverse=True)[:4]] for r in rows]
    np.testing.assert_array_equal(caffe_topk(rows, 4), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mvn(dtype):
    # one (n, c) group [1, 3]: mean 2, std 1 -> (x - 2) / (1 + eps)
    _, (y,), (dx,) = run(L("MVN"), [np.array([1.0, 3.0]).reshape(1, 1, 1, 2)], dtype, [[1.0, 0.0]])
    close(y, [[[[-1 / (1 + 1e-9), 1 / (1 + 1e-9)]]]], dtype)
    # dx = (dy - mean(dy) - y mean(dy y)) / (std + eps), y = [-1, 1] / (1 + eps), mean(dy y) = -y_1 / 2:
    # [0.5 - 0.5 / (1 + eps)^2, its negative] / (1 + eps), about [1e-9, -1e-9] (0 when eps = 0)
    k = (0.5 - 0.5 / (1 + 1e-9) ** 2) / (1 + 1e-9)
    close(dx, [[[[k, -k]]]], dtype)
    # a 2-D input gets Caffe's 4-D legacy top; across_channels pools the channels
    _, (y,) = run(L("MVN", mvn_param={"across_channels": True}), [[[1.0, 3.0]]], dtype)
    assert y.shape == (1, 2, 1, 1)
    close(y.ravel(), [-1 / (1 + 1e-9), 1 / (1 + 1e-9)], dtype)
    _, (y,) = run(L("MVN"), [[[1.0, 3.0]]], dtype)
    close(y.ravel(), [0, 0], dtype)                 # one value per (n, c) group
    _, (y,), (dx,) = run(L("MVN", mvn_param={"normalize_variance": False}),
                         [np.array([1.0, 4.0]).reshape(1, 1, 1, 2)], dtype, [[2.0, 0.0]])
    close(y, [[[[-1.5, 1.5]]]], dtype)
    close(dx, [[[[1, -1]]]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embed(dtype):
    w = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    spec = L("Embed", embed_param={"num_output": 2, "input_dim": 3})
    layer, (y,), (dx,) = run(spec, [[[2.0, 0.0, 2.0]]], dtype, [[[[1, 1], [2, 2], [3, 3]]]],
                             blobs=[w, [0.5, -0.5]])
    close(y, [[[5.5, 5.5], [1.5, 1.5], [5.5, 5.5]]], dtype)
    close(layer.diffs[0], [[2, 2], [0, 0], [4, 4]], dtype)
    close(layer.diffs[1], [6, 6], dtype)
    assert dx is None
    # Caffe test_embed_layer.cpp TestSetUp: a (4, 1, 1, 1) input -> (4, 1, 1, 1, 10)
    assert create_layer(L("Embed", embed_param={"num_output": 10, "input_dim": 5})).setup(
        [(4, 1, 1, 1)]) == [(4, 1, 1, 1, 10)]
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        run(spec, [[[3.0]]], dtype)


# ---- SPP, Im2col, Pooling ---------------------------------------------------------------------------

def test_spp_caffe_shapes():
    # Caffe test_spp_layer.cpp TestSetup, TestEqualOutputDims, TestEqualOutputDims2
    for shape, height, channels in [((2, 3, 9, 8), 3, 63), ((4, 3, 1024, 765), 5, 1023),
                                    ((10, 3, 7, 7), 3, 63)]:
        layer = create_layer(L("SPP", spp_param={"pyramid_height": height}))
        assert layer.setup([shape]) == [(shape[0], channels)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_spp_values(dtype):
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]
    _, (y,), (dx,) = run(L("SPP", spp_param={"pyramid_height": 2}), [x], dtype, [[[10, 1, 2, 3, 4]]])
    close(y, [[4, 1, 2, 3, 4]], dtype)              # level 0: the max; level 1: each value
    close(dx, [[[[1, 2], [3, 14]]]], dtype)
    _, (y,) = run(L("SPP", spp_param={"pyramid_height": 1, "pool": "AVE"}), [x], dtype)
    close(y, [[[[2.5]]]], dtype)                    # height 1: the Pooling's own 4-D top
    # STOCHASTIC, TEST: level 0 is sum x^2 / sum x = 30 / 10, level 1 the values themselves
    _, (y,) = run(L("SPP", spp_param={"pyramid_height": 2, "pool": "STOCHASTIC"}), [x], dtype)
    close(y, [[3, 1, 2, 3, 4]], dtype)
    with pytest.raises(ValueError, match="level 1 needs pad"):
        run(L("SPP", spp_param={"pyramid_height": 2, "pool": "STOCHASTIC"}), [np.ones((1, 1, 3, 3))], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col(dtype):
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]
    _, (y,), (dx,) = run(L("Im2col", convolution_param={"kernel_size": 2}), [x], dtype,
                         [[[[1]], [[2]], [[3]], [[4]]]])
    close(y, [[[[1]], [[2]], [[3]], [[4]]]], dtype)
    close(dx, [[[[1, 2], [3, 4]]]], dtype)
    # pad 1, kernel 2, stride 2 on a 2x2 input: 2x2 windows, each sees one real value
    _, (y,), (dx,) = run(L("Im2col", convolution_param={"kernel_size": 2, "stride": 2, "pad": 1}), [x], dtype,
                         [np.ones((1, 4, 2, 2))])
    close(y[0, :, 0, 0], [0, 0, 0, 1], dtype)
    close(y[0, :, 1, 1], [4, 0, 0, 0], dtype)
    close(dx, [[[[1, 1], [1, 1]]]], dtype)
    # Caffe test_im2col_layer.cpp TestSetup: (2, 3, 10, 11), kernel 3, stride 2, dilation 3
    layer = create_layer(L("Im2col", convolution_param={"kernel_size": 3, "stride": 2, "dilation": 3}))
    assert layer.setup([(2, 3, 10, 11)]) == [(2, 27, 2, 3)]
    # TestForward: the top-left column holds bottom[0, c // 9, (c // 3) % 3, c % 3]
    xb = np.random.default_rng(0).normal(size=(2, 3, 6, 5)).astype(dtype)
    _, (y,) = run(L("Im2col", convolution_param={"kernel_size": 3, "stride": 2}), [xb], dtype)
    for c in range(27):
        assert y[0, c, 0, 0] == xb[0, c // 9, (c // 3) % 3, c % 3]


CAFFE_SQUARE = np.array([[1, 2, 5, 2, 3], [9, 4, 1, 4, 8], [1, 2, 5, 2, 3]], float)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_max_mask_caffe_square(dtype):
    # Caffe test_pooling_layer.cpp TestForwardSquare with a top mask: 2 x 2 channels, kernel 2
    x = np.broadcast_to(CAFFE_SQUARE, (2, 2, 3, 5))
    spec = L("Pooling", tops=2, pooling_param={"pool": "MAX", "kernel_size": 2})
    _, (y, mask), (dx,) = run(spec, [x], dtype, [np.ones((2, 2, 2, 4)), np.zeros((2, 2, 2, 4))])
    close(y, np.broadcast_to([[9, 5, 5, 8], [9, 5, 5, 8]], (2, 2, 2, 4)), dtype)
    close(mask, np.broadcast_to([[5, 2, 2, 9], [5, 12, 12, 9]], (2, 2, 2, 4)), dtype)
    # the gradient goes to the mask positions: 5 twice, 2 twice, 12 twice, 9 twice
    plane = np.zeros(15)
    for i in (5, 2, 2, 9, 5, 12, 12, 9):
        plane[i] += 1
    close(dx, np.broadcast_to(plane.reshape(3, 5), (2, 2, 3, 5)), dtype)
    with pytest.raises(ValueError, match="needs pool: MAX"):
        create_layer(L("Pooling", tops=2, pooling_param={"pool": "AVE", "kernel_size": 2}))


MAGIC6 = np.array([[35, 1, 6, 26, 19, 24], [3, 32, 7, 21, 23, 25], [31, 9, 2, 22, 27, 20],
                   [8, 28, 33, 17, 10, 15], [30, 5, 34, 12, 14, 16], [4, 36, 29, 13, 18, 11]], float)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, top, mask", [
    # Caffe test_pooling_layer.cpp TestForwardRectHigh (kernel_h 3, kernel_w 2) with its mask
    ((3, 2), [[35, 32, 26, 27, 27], [32, 33, 33, 27, 27], [31, 34, 34, 27, 27], [36, 36, 34, 18, 18]],
     [[0, 7, 3, 16, 16], [7, 20, 20, 16, 16], [12, 26, 26, 16, 16], [31, 31, 26, 34, 34]]),
    # TestForwardRectWide (kernel_h 2, kernel_w 3)
    ((2, 3), [[35, 32, 26, 26], [32, 32, 27, 27], [33, 33, 33, 27], [34, 34, 34, 17], [36, 36, 34, 18]],
     [[0, 7, 3, 3], [7, 7, 16, 16], [20, 20, 20, 16], [26, 26, 26, 21], [31, 31, 26, 34]]),
])
def test_pooling_max_mask_caffe_rect(dtype, kernel, top, mask):
    x = np.broadcast_to(MAGIC6, (2, 2, 6, 6))
    spec = L("Pooling", tops=2, pooling_param={"pool": "MAX", "kernel_h": kernel[0], "kernel_w": kernel[1]})
    _, (y, m) = run(spec, [x], dtype)
    close(y, np.broadcast_to(top, y.shape), dtype)
    close(m, np.broadcast_to(mask, m.shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_mask_padded(dtype):
    # pad 1, kernel 2, stride 2 on [[1, 2], [3, 4]]: each window holds one real value
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]
    _, (y, mask) = run(L("Pooling", tops=2, pooling_param={"kernel_size": 2, "stride": 2, "pad": 1}),
                       [x], dtype)
    close(y, x, dtype)
    close(mask, [[[[0, 1], [2, 3]]]], dtype)


class FixedUniform:
    """An rng whose ``random`` returns fixed values (Caffe's uniforms are ``1 - value``)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def random(self, shape):
        return self.values.reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_stochastic(dtype):
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]
    spec = L("Pooling", pooling_param={"pool": "STOCHASTIC", "kernel_size": 2})
    # TEST: sum x^2 / sum x = 30 / 10; d/dx_i = (2 x_i S - Q) / S^2 = (20 x_i - 30) / 100
    _, (y,), (dx,) = run(spec, [x], dtype, [[[[1]]]])
    close(y, [[[[3]]]], dtype)
    close(dx, [[[[-0.1, 0.1], [0.3, 0.5]]]], dtype)
    # TRAIN: u = 1 - 0.45 = 0.55, threshold 5.5; running sums 1, 3, 6 -> the third tap (value 3)
    _, (y,), (dx,) = run(spec, [x], dtype, [[[[7]]]], phase="TRAIN", rng=FixedUniform([0.45]))
    close(y, [[[[3]]]], dtype)
    close(dx, [[[[0, 0], [7, 0]]]], dtype)
    # u = 1 (random() = 0): threshold = the whole sum -> the last tap
    _, (y,) = run(spec, [x], dtype, phase="TRAIN", rng=FixedUniform([0.0]))
    close(y, [[[[4]]]], dtype)
    # seeded sampling picks each tap with probability x_i / sum x
    layer = create_layer(spec, phase="TRAIN", dtype=np.float64, rng=np.random.default_rng(5))
    big = np.broadcast_to(np.array([1.0, 2.0, 3.0, 4.0]).reshape(2, 2), (1, 4000, 2, 2))
    layer.setup([big.shape])
    freq = np.bincount(layer.forward([big])[0].astype(int).ravel(), minlength=5)[1:] / 4000
    assert np.abs(freq - [0.1, 0.2, 0.3, 0.4]).max() < 0.03
    with pytest.raises(ValueError, match="STOCHASTIC pooling takes no pad"):
        create_layer(L("Pooling", pooling_param={"pool": "STOCHASTIC", "kernel_size": 2, "pad": 1}))


# ---- Accuracy and losses ----------------------------------------------------------------------------

SCORES = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy(dtype):
    _, (acc, per_class) = run(L("Accuracy", bottoms=2, tops=2), [SCORES, [1, 1, 1]], dtype)
    close(acc, 2 / 3, dtype)
    close(per_class, [0, 2 / 3], dtype)             # class 0 never seen -> 0
    _, (acc,) = run(L("Accuracy", bottoms=2, accuracy_param={"top_k": 2}), [SCORES, [1, 0, 0]], dtype)
    close(acc, 1.0, dtype)
    _, (acc,) = run(L("Accuracy", bottoms=2), [[[1.0, 1.0]], [0]], dtype)
    close(acc, 0.0, dtype)                          # a tie counts against the true class
    _, (acc,) = run(L("Accuracy", bottoms=2, accuracy_param={"ignore_label": 1}), [SCORES, [1, 0, 1]], dtype)
    close(acc, 1.0, dtype)
    _, (acc,) = run(L("Accuracy", bottoms=2, accuracy_param={"ignore_label": 0}), [[[1.0, 2.0]], [0]], dtype)
    close(acc, 0.0, dtype)                          # nothing counted -> 0
    # axis 2 of (1, 2, 3): positions (0, 0) and (0, 1) with 3 classes each
    x = [[[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]]
    _, (acc,) = run(L("Accuracy", bottoms=2, accuracy_param={"axis": 2}), [x, [[1, 2]]], dtype)
    close(acc, 0.5, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_cross_entropy(dtype):
    # x = [0, ln 3], t = [1, 0]: l = ln 2 + ln 4 (BATCH_SIZE, N = 1); dx = sigmoid(x) - t
    _, (loss,), (dx, dt) = run(L("SigmoidCrossEntropyLoss", bottoms=2), [[[0.0, LN3]], [[1.0, 0.0]]],
                               dtype, [2.0])
    close(loss, LN2 + math.log(4), dtype)
    close(dx, [[2 * -0.5, 2 * 0.75]], dtype)
    assert dt is None
    # ignore_label -1 with VALID: one position counted
    spec = L("SigmoidCrossEntropyLoss", bottoms=2, loss_param={"ignore_label": -1, "normalization": "VALID"})
    _, (loss,), (dx, _) = run(spec, [[[0.0, 5.0]], [[1.0, -1.0]]], dtype, [1.0])
    close(loss, LN2, dtype)
    close(dx, [[-0.5, 0]], dtype)
    # FULL over 2 positions; the legacy normalize: true means VALID
    spec = L("SigmoidCrossEntropyLoss", bottoms=2, loss_param={"normalization": "FULL"})
    _, (loss,) = run(spec, [[[0.0, 0.0]], [[1.0, 0.0]]], dtype)
    close(loss, LN2, dtype)
    assert create_layer(L("SigmoidCrossEntropyLoss", bottoms=2, loss_param={"normalize": True})) \
        .normalization == "VALID"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, sigmoid_n, infogain_n", [
    ("FULL", 6, 4), ("VALID", 5, 3), ("BATCH_SIZE", 2, 2), ("NONE", 1, 1)])
def test_loss_normalization_modes(dtype, mode, sigmoid_n, infogain_n):
    # SigmoidCrossEntropyLoss: x = 0 everywhere (ln 2 per position), 6 targets, one ignored
    spec = L("SigmoidCrossEntropyLoss", bottoms=2, loss_param={"normalization": mode, "ignore_label": 2})
    t = np.array([[1, 0, 2], [1, 1, 0]], float)
    _, (loss,), (dx, _) = run(spec, [np.zeros((2, 3)), t], dtype, [1.0])
    close(loss, 5 * LN2 / sigmoid_n, dtype)
    close(dx, np.where(t == 2, 0, 0.5 - t) / sigmoid_n, dtype)
    # InfogainLoss with H = I: x = 0 (p = 1/3, ln 3 per position), (2, 3, 2) scores, one label ignored
    spec = L("InfogainLoss", bottoms=3, loss_param={"normalization": mode, "ignore_label": 1})
    _, (loss,) = run(spec, [np.zeros((2, 3, 2)), [[0, 1], [2, 2]], np.eye(3)], dtype)
    close(loss, 3 * math.log(3) / infogain_n, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multinomial_logistic(dtype):
    _, (loss,), (dp, _) = run(L("MultinomialLogisticLoss", bottoms=2), [[[0.25, 0.75], [0.5, 0.5]], [1, 0]],
                              dtype, [1.0])
    close(loss, -(math.log(0.75) + math.log(0.5)) / 2, dtype)
    close(dp, [[0, -1 / (2 * 0.75)], [-1 / (2 * 0.5), 0]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_infogain(dtype):
    # p = softmax([0, ln 3]) = [1/4, 3/4]; label 0, H row [1, 0.5]:
    # loss = -(ln 1/4 + 0.5 ln 3/4); dx = p * 1.5 - [1, 0.5] = [-0.625, 0.625]
    h = [[1.0, 0.5], [0.0, 1.0]]
    _, (loss, prob), (dx, dl, dh) = run(L("InfogainLoss", bottoms=3, tops=2), [[[0.0, LN3]], [0], h], dtype,
                                        [1.0, np.zeros((1, 2))])
    close(loss, -(math.log(0.25) + 0.5 * math.log(0.75)), dtype)
    close(prob, [[0.25, 0.75]], dtype)
    close(dx, [[-0.625, 0.625]], dtype)
    assert dl is None and dh is None
    # H = identity is SoftmaxWithLoss: x = [0, 0], label 1 -> ln 2
    _, (loss,) = run(L("InfogainLoss", bottoms=3), [[[0.0, 0.0]], [1], np.eye(2)], dtype)
    close(loss, LN2, dtype)
    with pytest.raises(ValueError, match="third bottom.*read_mean"):
        create_layer(L("InfogainLoss", bottoms=2, infogain_loss_param={"source": "H.binaryproto"}))
    with pytest.raises(ValueError, match="normalize is deprecated"):
        create_layer(L("InfogainLoss", bottoms=3, loss_param={"normalize": True}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge(dtype):
    x, label = [[0.5, -2.0], [-0.5, 0.25]], [0, 1]
    # margins: row 0 [1 - 0.5, max(0, 1 - 2)] = [0.5, 0]; row 1 [1 - 0.5, 1 - 0.25] = [0.5, 0.75]
    _, (loss,), (dx, _) = run(L("HingeLoss", bottoms=2), [x, label], dtype, [1.0])
    close(loss, (0.5 + 0.5 + 0.75) / 2, dtype)
    close(dx, [[-0.5, 0], [0.5, -0.5]], dtype)
    _, (loss,), (dx, _) = run(L("HingeLoss", bottoms=2, hinge_loss_param={"norm": "L2"}), [x, label], dtype,
                              [1.0])
    close(loss, (0.25 + 0.25 + 0.5625) / 2, dtype)
    close(dx, [[-0.5, 0], [0.5, -0.75]], dtype)     # 2 s m / N


@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive(dtype):
    a, b = [[3.0, 4.0]], [[0.0, 0.0]]
    _, (loss,), (da, db, dy) = run(L("ContrastiveLoss", bottoms=3), [a, b, [1]], dtype, [1.0])
    close(loss, 12.5, dtype)                        # similar: d^2 / 2
    close(da, [[3, 4]], dtype)
    close(db, [[-3, -4]], dtype)
    assert dy is None
    # dissimilar, margin 10: (10 - 5)^2 / 2; da = -(10 - 5) / (5 + 1e-4) (a - b)
    spec = L("ContrastiveLoss", bottoms=3, contrastive_loss_param={"margin": 10.0})
    _, (loss,), (da, _, _) = run(spec, [a, b, [0]], dtype, [1.0])
    close(loss, 12.5, dtype)
    close(da, [[-5 / (5 + 1e-4) * 3, -5 / (5 + 1e-4) * 4]], dtype)
    # legacy: max(margin - d^2, 0) / 2 and da = -(a - b); outside the margin nothing
    spec = L("ContrastiveLoss", bottoms=3, contrastive_loss_param={"margin": 30.0, "legacy_version": True})
    _, (loss,), (da, _, _) = run(spec, [a, b, [0]], dtype, [1.0])
    close(loss, 2.5, dtype)
    close(da, [[-3, -4]], dtype)
    spec = L("ContrastiveLoss", bottoms=3, contrastive_loss_param={"margin": 4.0})
    _, (loss,), (da, _, _) = run(spec, [a, b, [0]], dtype, [1.0])
    close(loss, 0.0, dtype)
    close(da, [[0, 0]], dtype)


# ---- recurrent ----------------------------------------------------------------------------------------

def sig(v):
    return 1 / (1 + math.exp(-v))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_unit(dtype):
    # H = 1, gates i' f' o' g' = [0, 0, 0, ln 3 / 2]: i = f = o = 1/2, g = tanh(ln 3 / 2) = 1/2
    gates = [[[0.0, 0.0, 0.0, LN3 / 2], [0.0, 0.0, 0.0, LN3 / 2]]]
    c_prev = [[[2.0], [2.0]]]
    _, (c, h), (dc_prev, dgates, dcont) = run(L("LSTMUnit", bottoms=3, tops=2), [c_prev, gates, [[1, 0]]],
                                              dtype, [np.ones((1, 2, 1)), np.zeros((1, 2, 1))])
    # cont 1: c = 0.5 * 2 + 0.5 * 0.5 = 1.25; cont 0: f = 0, c = 0.25
    close(c, [[[1.25], [0.25]]], dtype)
    close(h, [[[0.5 * math.tanh(1.25)], [0.5 * math.tanh(0.25)]]], dtype)
    # with dc = 1, dh = 0: dc_prev = f, di' = g i (1 - i), df' = c_prev f (1 - f), do' = 0, dg' = i (1 - g^2)
    close(dc_prev, [[[0.5], [0]]], dtype)
    close(dgates, [[[0.125, 0.5, 0, 0.375], [0.125, 0, 0, 0.375]]], dtype)
    assert dcont is None


def rnn_reference(x, cont, w_xh, b_h, w_hh, w_ho, b_o, h0=0.0):
    """Scalar RNN (H = 1, D = 1) written out step by step."""
    h, outs = h0, []
    for xt, ct in zip(x, cont):
        h = math.tanh(w_hh * ct * h + w_xh * xt + b_h)
        outs.append(math.tanh(w_ho * h + b_o))
    return outs, h


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_forward_and_state_carry(dtype):
    weights = dict(w_xh=0.5, b_h=0.1, w_hh=-0.8, w_ho=1.5, b_o=-0.2)
    spec = L("RNN", bottoms=2, recurrent_param={"num_output": 1})
    layer = create_layer(spec, dtype=dtype)
    x, cont = np.array([1.0, -2.0, 0.5]).reshape(3, 1, 1), np.array([0.0, 1.0, 1.0]).reshape(3, 1)
    layer.setup([x.shape, cont.shape])
    assert [b.shape for b in layer.blobs] == [(1, 1), (1,), (1, 1), (1, 1), (1,)]
    for blob, v in zip(layer.blobs, weights.values()):
        blob[...] = v
    y = layer.forward([x.astype(dtype), cont.astype(dtype)])[0]
    outs, h_last = rnn_reference(x.ravel(), cont.ravel(), **weights)
    close(y.ravel(), outs, dtype)
    # no expose_hidden: the next forward starts from the last h (Caffe copies h_T into h_0)
    cont_on = np.ones((3, 1))
    y2 = layer.forward([x.astype(dtype), cont_on.astype(dtype)])[0]
    close(y2.ravel(), rnn_reference(x.ravel(), cont_on.ravel(), h0=h_last, **weights)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_forward_expose_hidden(dtype):
    # H = 1, D = 1; W_xc = [1, 2, 3, 4] (gates i, f, o, g), b_c = 0, W_hc = [0.5, 0.5, 0.5, 0.5]
    spec = L("LSTM", bottoms=4, tops=3, recurrent_param={"num_output": 1, "expose_hidden": True})
    x, cont = np.array([0.5, -1.0]).reshape(2, 1, 1), np.array([1.0, 1.0]).reshape(2, 1)
    h0, c0 = np.full((1, 1, 1), 0.2), np.full((1, 1, 1), -0.4)
    layer = create_layer(spec, dtype=dtype)
    layer.setup([x.shape, cont.shape, h0.shape, c0.shape])
    assert [b.shape for b in layer.blobs] == [(4, 1), (4,), (4, 1)]
    layer.blobs[0][:, 0] = [1, 2, 3, 4]
    layer.blobs[2][:, 0] = 0.5
    h_seq, h_t, c_t = layer.forward([a.astype(dtype) for a in (x, cont, h0, c0)])
    h, c, expected = 0.2, -0.4, []
    for xt in x.ravel():
        pre = [k * xt + 0.5 * h for k in (1, 2, 3, 4)]
        i, f, o, g = sig(pre[0]), sig(pre[1]), sig(pre[2]), math.tanh(pre[3])
        c = f * c + i * g
        h = o * math.tanh(c)
        expected.append(h)
    close(h_seq.ravel(), expected, dtype)
    close(h_t.ravel(), [h], dtype)
    close(c_t.ravel(), [c], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("type_", ["RNN", "LSTM"])
def test_recurrent_caffe_timestep_by_timestep(dtype, type_):
    """Caffe test_rnn_layer.cpp / test_lstm_layer.cpp TestForward: a sequence (cont 0, 1, 1) in one
    batch equals the same sequence fed one timestep at a time (the state carried between forwards);
    with cont 0 at every step only the first timestep agrees."""
    spec = L(type_, bottoms=2, recurrent_param={
        "num_output": 4, "weight_filler": {"type": "gaussian", "std": 0.5},
        "bias_filler": {"type": "gaussian", "std": 0.5}})
    x = np.random.default_rng(1701).normal(size=(3, 2, 3)).astype(dtype)
    cont = np.array([[0, 0], [1, 1], [1, 1]], dtype)
    whole, (y,) = run(spec, [x, cont], dtype)
    for flag in (1, 0):
        step = create_layer(spec, dtype=dtype)
        step.setup([(1, 2, 3), (1, 2)])
        for blob, value in zip(step.blobs, whole.blobs):
            blob[...] = value
        for t in range(3):
            y_t = step.forward([x[t:t + 1], np.full((1, 2), flag * (t > 0), dtype)])[0]
            if flag or t == 0:
                close(y_t, y[t:t + 1], dtype)
            else:
                assert np.all(y_t != y[t:t + 1])


def test_recurrent_expose_hidden_gradients():
    """With expose_hidden Caffe passes no gradient to h_0/c_0 and ignores the diffs of h_T/c_T: check
    the output top's gradient (cotangent on top 0 only) w.r.t. x and every parameter."""
    from reference.gradient_check import check_function
    rng = np.random.default_rng(3)
    filler = {"type": "gaussian", "std": 0.5}
    for type_, states in (("RNN", 1), ("LSTM", 2)):
        spec = L(type_, bottoms=2 + states, tops=1 + states, recurrent_param={
            "num_output": 2, "expose_hidden": True, "weight_filler": filler, "bias_filler": filler})
        layer = create_layer(spec, dtype=np.float64)
        x, cont = rng.normal(size=(3, 2, 2)), np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        init = [rng.normal(size=(1, 2, 2)) for _ in range(states)]
        layer.setup([x.shape, cont.shape] + [s.shape for s in init])
        inputs = {"x": x, **{f"p{i}": b.copy() for i, b in enumerate(layer.blobs)}}

        def f(a):
            for i, blob in enumerate(layer.blobs):
                blob[...] = a[f"p{i}"]
            return layer.forward([a["x"], cont] + init)[:1]

        def vjp(a, cot):
            tops = layer.forward([a["x"], cont] + init)
            for d in layer.diffs:
                d[...] = 0
            top_diffs = [cot[0]] + [np.zeros_like(t) for t in tops[1:]]
            diffs = layer.backward(top_diffs, [a["x"], cont] + init, tops)
            assert diffs[1:] == [None] * (1 + states)
            return {"x": diffs[0], **{f"p{i}": d.copy() for i, d in enumerate(layer.diffs)}}

        check_function(f, vjp, inputs, target=type_).assert_ok()


# ---- the Net with layers that have no backward ---------------------------------------------------

def inp(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": list(dims)}]}}


def classifier(extra):
    return [inp("x", (3, 4)), inp("label", (3,)),
            {"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["score"],
             "inner_product_param": {"num_output": 2, "weight_filler": {"type": "gaussian", "std": 0.5}}},
            {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["score", "label"],
             "top": ["loss"]}] + extra


def test_net_backward_skips_layers_without_backward():
    extra = [{"name": "acc", "type": "Accuracy", "bottom": ["score", "label"], "top": ["acc", "per_class"]},
             {"name": "am", "type": "ArgMax", "bottom": ["score"], "top": ["am"]},
             {"name": "th", "type": "Threshold", "bottom": ["score"], "top": ["th"]},
             {"name": "quiet", "type": "Silence", "bottom": ["am", "th"]}]
    x = np.random.default_rng(1).normal(size=(3, 4))
    label = np.array([0.0, 1.0, 1.0])
    plain = ref.Net(classifier([]), dtype=np.float64, force_backward=True, seed=4)
    full = ref.Net(classifier(extra), dtype=np.float64, force_backward=True, seed=4)
    blobs = full.forward(x=x, label=label)
    plain.forward(x=x, label=label)
    assert full.loss == plain.loss                  # Accuracy / ArgMax tops carry no loss weight
    assert blobs["am"].shape == (3, 1, 1) and blobs["per_class"].shape == (2,)
    d_full, d_plain = full.backward(), plain.backward()
    np.testing.assert_array_equal(d_full["x"], d_plain["x"])
    np.testing.assert_array_equal(full.param_diffs["ip"][0], plain.param_diffs["ip"][0])
    # a seed on a top without backward reaches nothing
    full.forward(x=x, label=label)
    d = full.backward({"am": np.ones((3, 1, 1)), "acc": np.ones(()), "th": np.ones((3, 2))})
    np.testing.assert_array_equal(d["x"], d_plain["x"])


# ---- float32 judged against float64, on the gradient-check table ------------------------------------

def _forward_backward(spec, bottoms, phase, dtype, blobs, cotangents):
    layer = create_layer(spec, phase=phase, dtype=dtype, rng=np.random.default_rng(0))
    b = [np.asarray(x, dtype=dtype) for x in bottoms]
    layer.setup([x.shape for x in b])
    for blob, value in zip(layer.blobs, blobs):
        blob[...] = value
    tops = layer.forward(b)
    cots = cotangents or [np.random.default_rng(1).normal(size=t.shape) for t in tops]
    diffs = layer.backward([np.asarray(c, dtype=dtype) for c in cots], b, tops)
    return layer, tops, diffs, cots


@pytest.mark.parametrize("case", BVLC_CASES, ids=lambda c: c[0])
def test_float32_matches_float64(case):
    _, spec, bottoms, phase, *_ = case
    ref64, tops64, diffs64, cots = _forward_backward(spec, bottoms, phase, np.float64, (), None)
    layer, tops32, diffs32, _ = _forward_backward(spec, bottoms, phase, np.float32, ref64.blobs, cots)
    for got, want in zip(tops32 + diffs32 + layer.diffs, tops64 + diffs64 + ref64.diffs):
        if want is None:
            assert got is None
            continue
        assert got.dtype == np.float32
        assert max_rel_err(got, want) <= tolerance(np.float32)


def test_densify_passes_the_elementwise_neurons():
    """The new elementwise neurons act per position, so densify keeps them (E1/E2 hold)."""
    from reference.fragments import check_equivalence
    conv = {"kernel_size": 3, "pad": 1, "weight_filler": {"type": "gaussian", "std": 0.4},
            "bias_filler": {"type": "gaussian", "std": 0.1}}
    layers = [inp("data", (1, 2, 13, 11)),
              {"name": "s1", "type": "Convolution", "bottom": ["data"], "top": ["s1"],
               "convolution_param": dict(conv, num_output=3, stride=2)}]
    previous = "s1"
    for type_, params in [("PReLU", {"prelu_param": {"filler": {"type": "gaussian", "std": 0.5}}}),
                          ("ELU", {}), ("AbsVal", {}), ("BNLL", {}),
                          ("Clip", {"clip_param": {"min": 0.1, "max": 2}}), ("Swish", {}), ("Log", {}),
                          ("Exp", {"exp_param": {"scale": -1.0}})]:
        layers.append({"name": type_.lower(), "type": type_, "bottom": [previous], "top": [type_.lower()],
                       **params})
        previous = type_.lower()
    layers.append({"name": "c2", "type": "Convolution", "bottom": [previous], "top": ["c2"],
                   "convolution_param": dict(conv, num_output=2, stride=2)})
    net = ref.Net(layers, dtype=np.float64, seed=5)
    report = check_equivalence(net, ref.densify(net, "s1"),
                               {"data": np.random.default_rng(0).normal(size=(1, 2, 13, 11))})
    assert report.ok, str(report)
    assert {r[0] for r in report.rows} == {"E1", "E2"}
