"""numba_kernels.cpu against the reference: every op-table case in float32 and float64 (forward and
backward), Caffe's MAX tie and NaN rules, chunked batches, odd inputs, a whole Net on
``backend="numba"``, and the reference's ValueErrors for bad arguments."""

import numpy as np
import pytest

import numba_kernels.cpu as K
import reference as ref
from reference import Net
from reference.optable import cases
from reference.oracle import verify
from reference.pool import FLT_MAX

from ._parity import check_case

CASES = cases(count=12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_parity_with_reference(case, dtype):
    check_case(K, case.astype(dtype))


@pytest.fixture(params=["rows", "planes"])
def pool_kernel(request, monkeypatch):
    """Run the test with each forward pooling kernel: per output row, or per plane (stride 1)."""
    monkeypatch.setattr(K, "DENSE_MIN_PLANES", 10**9 if request.param == "rows" else 1)
    return request.param


POOL_CASES = [c for c in CASES if c.op == "pool2d"] + cases("pool2d", count=8, seed=11)


@pytest.mark.parametrize("case", POOL_CASES, ids=[c.name for c in POOL_CASES])
def test_pool_parity_with_either_forward_kernel(case, pool_kernel):
    for dtype in (np.float32, np.float64):
        check_case(K, case.astype(dtype))


def test_oracle_verify_accepts_the_cpu_kernels():
    report = verify(K, count=4, seed=7)
    assert report.ok, str(report)


def test_large_cases_in_several_chunks(monkeypatch):
    # a column budget of a few images' worth makes every conv/deconv loop over batch chunks
    monkeypatch.setattr(K, "COL_BUDGET", 300)
    big = [c for c in cases(count=6, seed=3, big=True) if c.op != "pool2d"]
    for case in big:
        x = case.arrays["x"]
        case.arrays["x"] = np.concatenate([x, x[::-1] * 0.5, x], axis=0)   # batch 3-6
        case.dy = np.concatenate([case.dy] * 3, axis=0)
        check_case(K, case.astype(np.float32))


# ---- Caffe's MAX rules ------------------------------------------------------------------------

def row(values, dtype=np.float64):
    return np.array(values, dtype=dtype).reshape(1, 1, 1, -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_tie_first_in_row_major_order_wins(dtype, pool_kernel):
    # 2x2 window over [[3, 3], [3, 1]]: the first 3 (top left) takes the whole gradient
    x = np.array([[3, 3], [3, 1]], dtype=dtype)[None, None]
    dx = K.pool2d_backward(np.ones((1, 1, 1, 1), dtype), x, 2)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])
    # est 2 on a row: windows {x0, x2}, {x1, x3}, {x2, x4}; ties 7 = 7 go to the earlier tap
    x = row([7, 5, 7, 5, 7], dtype)
    dy = row([1, 10, 100], dtype)
    np.testing.assert_array_equal(K.pool2d(x, (1, 2), est=2), row([7, 5, 7], dtype))
    np.testing.assert_array_equal(K.pool2d_backward(dy, x, (1, 2), est=2),
                                  row([1, 10, 100, 0, 0], dtype))
    np.testing.assert_array_equal(K.pool2d_backward(dy, x, (1, 2), est=2),
                                  ref.pool2d_backward(dy, x, (1, 2), est=2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_never_wins_and_empty_windows(dtype, pool_kernel):
    nan, inf = np.nan, np.inf
    # windows (k 2, s 1): {nan, 1}, {1, nan}, {nan, nan}, {nan, -inf}
    x = row([nan, 1, nan, nan, -inf], dtype)
    y = K.pool2d(x, (1, 2))
    np.testing.assert_array_equal(y, row([1, 1, -FLT_MAX, -FLT_MAX], dtype))
    dx = K.pool2d_backward(row([1, 2, 4, 8], dtype), x, (1, 2))
    np.testing.assert_array_equal(dx, row([0, 3, 0, 0, 0], dtype))   # no real value, no gradient
    for a, b in [(y, ref.pool2d(x, (1, 2))),
                 (dx, ref.pool2d_backward(row([1, 2, 4, 8], dtype), x, (1, 2)))]:
        np.testing.assert_array_equal(a, b)


def test_max_below_minus_flt_max_is_clamped_but_real(pool_kernel):
    # float64 values below -FLT_MAX: the output is Caffe's -FLT_MAX, the value still gets the gradient
    x = row([-1e300, -1e301])
    np.testing.assert_array_equal(K.pool2d(x, (1, 2)), row([-FLT_MAX]))
    np.testing.assert_array_equal(K.pool2d_backward(row([5.0]), x, (1, 2)), row([5.0, 0]))


def test_ave_divisor_counts_padding_not_overhang(pool_kernel):
    # 4x4 ones, k 3, s 2, p 1 (CAFFE_FACTS 3.1): y[0,0] = 4/9, y[1,1] = 1, y[2,2] = 1/4
    y = K.pool2d(np.ones((1, 1, 4, 4)), 3, 2, 1, mode="ave")
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9) and y[0, 0, 1, 1] == 1 and y[0, 0, 2, 2] == 0.25
    np.testing.assert_allclose(y, ref.pool2d(np.ones((1, 1, 4, 4)), 3, 2, 1, mode="ave"), 1e-15)


def test_odd_inputs_are_accepted_like_the_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 9, 7))[:, ::2, :, ::-1]          # non-contiguous view
    w = rng.normal(size=(3, 2, 2, 3)).tolist()                   # weights as nested lists
    np.testing.assert_allclose(K.conv2d(x, w, stride=2, est=(1, 2)),
                               ref.conv2d(x, w, stride=2, est=(1, 2)), rtol=1e-12, atol=1e-12)
    xf = x.astype(np.float32)
    y = K.pool2d(xf, (3, 2), stride=(2, 1), pad=(1, 0), est=(1, 3), mode="ave")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref.pool2d(xf, (3, 2), (2, 1), (1, 0), (1, 3), "ave"), atol=1e-6)


# ---- the Net backend ------------------------------------------------------------------------------

def small_dense_net(backend, dtype):
    g = {"type": "gaussian", "std": 0.5}

    def L(name, type_, bottom, **p):
        return {"name": name, "type": type_, "bottom": [bottom], "top": [name], **p}

    return Net([
        {"name": "data", "type": "Input", "top": ["data"],
         "input_param": {"shape": [{"dim": [2, 3, 13, 12]}]}},
        L("conv1", "Convolution", "data", convolution_param={
            "num_output": 4, "kernel_size": 3, "pad": 2, "dilation": 2, "weight_filler": g,
            "bias_filler": g}),
        {"name": "relu1", "type": "ReLU", "bottom": ["conv1"], "top": ["conv1"]},
        L("pool1", "Pooling", "conv1", pooling_param={"kernel_size": 2, "stride": 1, "est": 2,
                                                       "pad_end": 1}),
        L("conv2", "Convolution", "pool1", convolution_param={
            "num_output": 4, "kernel_size": 3, "group": 2, "dilation": 4, "pad": 4,
            "weight_filler": g}),
        L("pool2", "Pooling", "conv2", pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2,
                                                       "pad": 1}),
        L("up", "Deconvolution", "pool2", convolution_param={
            "num_output": 2, "kernel_size": 4, "stride": 2, "weight_filler": g, "bias_filler": g}),
    ], dtype=dtype, backend=backend, seed=5, force_backward=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_net_on_numba_backend_equals_numpy_backend(dtype):
    x = np.random.default_rng(1).normal(size=(2, 3, 13, 12))
    nets = [small_dense_net(b, dtype) for b in ("numpy", "numba")]
    assert nets[1].ops is K
    blobs = [net.forward(data=x) for net in nets]
    seed = np.random.default_rng(2).normal(size=blobs[0]["up"].shape)
    diffs = [net.backward({"up": seed}) for net in nets]
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for name in blobs[0]:
        np.testing.assert_allclose(blobs[1][name], blobs[0][name], rtol=0, atol=tol * max(
            1, np.abs(blobs[0][name]).max()), err_msg=name)
        np.testing.assert_allclose(diffs[1][name], diffs[0][name], rtol=0, atol=tol * max(
            1, np.abs(diffs[0][name]).max()), err_msg=name)
    for layer in nets[0].params:
        for a, b in zip(nets[1].param_diffs[layer], nets[0].param_diffs[layer]):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1, np.abs(b).max()))


# ---- bad arguments: the reference's ValueError, word for word --------------------------------------

X = np.zeros((1, 2, 5, 5))
W = np.zeros((4, 2, 3, 3))
BAD_CALLS = {
    "conv x not an array": ("conv2d", ([[1.0]], W), {}),
    "conv x int": ("conv2d", (np.zeros((1, 2, 5, 5), int), W), {}),
    "conv x 3-D": ("conv2d", (np.zeros((2, 5, 5)), W), {}),
    "conv w 3-D": ("conv2d", (X, np.zeros((4, 2, 3))), {}),
    "conv extent too large": ("conv2d", (X, W), {"est": 3}),
    "conv stride 0": ("conv2d", (X, W), {"stride": 0}),
    "conv negative pad": ("conv2d", (X, W), {"pad": -1}),
    "conv est 0": ("conv2d", (X, W), {"est": (1, 0)}),
    "conv group does not divide": ("conv2d", (X, np.zeros((3, 1, 3, 3))), {"group": 2}),
    "conv channel mismatch": ("conv2d", (X, np.zeros((4, 3, 3, 3))), {}),
    "conv bias shape": ("conv2d", (X, W, np.zeros(3)), {}),
    "conv backward dy shape": ("conv2d_backward", (np.zeros((1, 4, 2, 2)), X, W), {}),
    "deconv channel mismatch": ("deconv2d", (X, np.zeros((3, 1, 2, 2))), {}),
    "deconv pad too large": ("deconv2d", (np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1))),
                             {"pad": 1}),
    "deconv w 2-D": ("deconv2d", (X, np.zeros((2, 2))), {}),
    "deconv backward dy shape": ("deconv2d_backward",
                                 (np.zeros((1, 1, 5, 5)), X, np.zeros((2, 1, 2, 2))), {}),
    "pool pad >= extent": ("pool2d", (X, 2), {"pad": 2}),
    "pool kernel too large": ("pool2d", (X, 6), {}),
    "pool bad mode": ("pool2d", (X, 2), {"mode": "median"}),
    "pool bad round_mode": ("pool2d", (X, 2), {"round_mode": "up"}),
    "pool kernel 0": ("pool2d", (X, 0), {}),
    "pool negative pad_end": ("pool2d", (X, 2), {"pad_end": -1}),
    "pool backward dy shape": ("pool2d_backward", (np.zeros((1, 2, 3, 3)), X, 2), {}),
}


def same_error(impl, name, args, kwargs):
    with pytest.raises(ValueError) as expected:
        getattr(ref, name)(*args, **kwargs)
    with pytest.raises(ValueError) as got:
        getattr(impl, name)(*args, **kwargs)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_arguments_raise_the_reference_error(case):
    same_error(K, *BAD_CALLS[case])
