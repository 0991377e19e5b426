"""numba_kernels.cpu's fast paths against the reference: stride-1 convolution as tap GEMMs (forced on
for every stride-1 op-table case, hard cases included, float32 and float64), and MAX pooling's
argmax (against a NumPy first-maximum argmax written from the window definition), its scatter
backward, the argmax that ``pool2d`` remembers, and the check that forgets it when ``x`` changed."""

import numpy as np
import pytest

import numba_kernels.cpu as K
import reference as ref
from numba_kernels import _gemm
from reference import Net
from reference.optable import cases, hard_cases, table
from reference.pool import pool_geometry

from ._parity import check_case

pytestmark = pytest.mark.skipif(not _gemm.available(np.float64),
                                reason="NumPy without its bundled OpenBLAS: no tap GEMMs")


@pytest.fixture
def taps_always(monkeypatch):
    monkeypatch.setattr(K, "TAPS_MIN_WORK", 0)
    monkeypatch.setattr(K, "TAPS_MIN_CHANNELS", 1)
    monkeypatch.setattr(K, "TAPS_MIN_POSITIONS", 1)
    monkeypatch.setattr(K, "TAPS_BACKWARD", True)


def _stride1(case):
    return tuple(np.broadcast_to(case.params.get("stride", 1), 2)) == (1, 1)


CONV_CASES = [c for c in table("conv2d") + cases("conv2d", count=60, seed=21) if _stride1(c)]


def test_the_table_has_stride1_conv_cases_with_est_groups_and_pads():
    assert len(CONV_CASES) >= 12
    assert any(c.name.startswith("conv2d_hard") for c in CONV_CASES)
    params = [c.params for c in CONV_CASES]
    assert any(np.max(p.get("est", 1)) > 1 for p in params)
    assert any(p.get("group", 1) > 1 for p in params)
    assert any(np.max(p.get("pad", 0)) > 0 for p in params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_tap_gemm_convolution_parity(case, dtype, taps_always):
    c = case.astype(dtype)
    x, w = c.arrays["x"], c.arrays["w"]
    geo = K.conv_geometry("t", x.shape, w.shape, c.params.get("stride", 1), c.params.get("pad", 0),
                          c.params.get("est", 1), c.params.get("group", 1))
    assert K._use_taps(x, w, geo[0], geo[3], geo[4], backward=True)   # the path under test
    check_case(K, c)


def test_default_dispatch():
    # forward: taps from 2048 positions and 256 input channels per group; backward: im2col
    x, w = np.zeros((1, 512, 56, 56), np.float32), np.zeros((512, 512, 3, 3), np.float32)
    assert K._use_taps(x, w, (1, 1), 1, (56, 56))
    assert not K._use_taps(x, w, (1, 1), 1, (56, 56), backward=True)
    assert not K._use_taps(x, w, (1, 1), 1, (28, 28))                     # 784 positions
    assert not K._use_taps(x, w[:, :128], (1, 1), 4, (56, 56))            # 128 channels per group
    assert not K._use_taps(x, w, (2, 2), 1, (28, 28))


def test_taps_with_a_batch_and_groups(taps_always):
    # 2 images, 64 -> 128 channels, groups 2, est 2, 48x45
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 64, 48, 45))
    w = rng.normal(size=(128, 32, 3, 3))
    b = rng.normal(size=128)
    y = K.conv2d(x, w, b, pad=2, est=2, group=2)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, pad=2, est=2, group=2), rtol=0, atol=1e-11)
    dy = rng.normal(size=y.shape)
    for got, want in zip(K.conv2d_backward(dy, x, w, pad=2, est=2, group=2),
                         ref.conv2d_backward(dy, x, w, pad=2, est=2, group=2)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * max(1, np.abs(want).max()))


def test_strided_conv_keeps_im2col(taps_always):
    x, w = np.zeros((1, 4, 9, 9)), np.zeros((4, 4, 3, 3))
    assert not K._use_taps(x, w, (2, 1), 1, (4, 7))


def test_gemm_rejects_mismatched_or_strided_operands():
    a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.zeros((2, 4))
    _gemm.gemm(a, b, c)
    np.testing.assert_array_equal(c, np.full((2, 4), 3.0))
    _gemm.gemm(a, b.T.copy(), c, trans_b=True, alpha=2.0, beta=0.5)
    np.testing.assert_array_equal(c, np.full((2, 4), 7.5))
    with pytest.raises(ValueError, match="do not match"):
        _gemm.gemm(a, np.ones((2, 4)), c)
    with pytest.raises(ValueError, match="row-major"):
        _gemm.gemm(a, np.ones((4, 3)).T, c)


# ---- MAX argmax ---------------------------------------------------------------------------------

def first_max_argmax(x, kernel, stride=1, pad=0, est=1, round_mode="ceil", pad_end=0):
    """Caffe's mask from the definition: for every window, in row-major tap order, the first tap
    holding the window's largest real (non-NaN, > -inf) value, as ``h*W + w``; -1 if none."""
    geo = pool_geometry("oracle", x.shape, kernel, stride, pad, est, "max", round_mode, pad_end)
    (kh, kw), (sh, sw), (ph, pw), (eh, ew) = geo.kernel, geo.stride, geo.pad, geo.est
    n, c, h_in, w_in = x.shape
    out = np.full((n, c) + geo.out_hw, -1, np.int64)
    for oy in range(geo.out_hw[0]):
        for ox in range(geo.out_hw[1]):
            best = np.full((n, c), -np.inf)
            for i in range(kh):
                for j in range(kw):
                    h, w = oy * sh - ph + i * eh, ox * sw - pw + j * ew
                    if 0 <= h < h_in and 0 <= w < w_in:
                        v = x[:, :, h, w]
                        wins = v > best                  # NaN never wins, a tie keeps the first
                        best = np.where(wins, v, best)
                        out[:, :, oy, ox] = np.where(wins, h * w_in + w, out[:, :, oy, ox])
    return out


MAX_CASES = [c for c in table("pool2d") + cases("pool2d", count=20, seed=13)
             if c.params.get("mode", "max") == "max"]


def _pool_params(case):
    p = dict(case.params)
    p.pop("mode", None)
    return p


@pytest.fixture(params=["rows", "planes"])
def pool_kernel(request, monkeypatch):
    monkeypatch.setattr(K, "DENSE_MIN_PLANES", 10**9 if request.param == "rows" else 1)
    return request.param


@pytest.mark.parametrize("case", MAX_CASES, ids=[c.name for c in MAX_CASES])
def test_argmax_is_the_first_maximum_and_its_scatter_the_reference_backward(case, pool_kernel):
    params = _pool_params(case)
    for dtype in (np.float32, np.float64):
        x = case.arrays["x"].astype(dtype)
        y, arg = K.pool2d_argmax(x, **params)
        assert arg.dtype == np.int32
        np.testing.assert_array_equal(arg, first_max_argmax(x, **params), err_msg=case.name)
        np.testing.assert_array_equal(y, ref.pool2d(x, **params))
        dy = case.dy.astype(dtype)
        np.testing.assert_allclose(K.pool2d_backward(dy, x, **params, argmax=arg),
                                   ref.pool2d_backward(dy, x, **params), rtol=0,
                                   atol=4 * np.finfo(dtype).eps * np.abs(dy).max() * 4)


def test_the_max_cases_include_ties_stride1_and_padding():
    assert any("_tie_" in c.name for c in MAX_CASES)
    assert any(tuple(np.broadcast_to(c.params.get("stride", 1), 2)) == (1, 1) for c in MAX_CASES)
    assert hard_cases("pool2d")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_ties_nan_and_signed_zero(dtype, pool_kernel):
    nan, inf = np.nan, np.inf
    x = np.array([nan, 1, nan, nan, -inf, 3, 3, -0.0, 0.0, 0.0, -0.0], dtype).reshape(1, 1, 1, -1)
    y, arg = K.pool2d_argmax(x, (1, 2))
    np.testing.assert_array_equal(arg.ravel(), [1, 1, -1, -1, 5, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(y, ref.pool2d(x, (1, 2)))
    assert np.signbit(y.ravel()[7]) and not np.signbit(y.ravel()[8])   # the first zero, with its sign


def test_bad_argmax_is_refused():
    x = np.zeros((1, 1, 3, 3))
    dy = np.ones((1, 1, 2, 2))
    for bad, message in [(np.full((1, 1, 2, 2), 9, np.int32), r"\[-1, 9\)"),
                         (np.full((1, 1, 2, 2), -2, np.int64), r"\[-1, 9\)"),
                         (np.zeros((1, 1, 2, 2), np.float32), "int32 or int64"),
                         (np.zeros((1, 1, 3, 3), np.int32), "shape")]:
        with pytest.raises(ValueError, match=message):
            K.pool2d_backward(dy, x, 2, argmax=bad)
    with pytest.raises(ValueError, match="only for MAX"):
        K.pool2d_backward(dy, x, 2, mode="ave", argmax=np.zeros((1, 1, 2, 2), np.int32))


# ---- the remembered argmax --------------------------------------------------------------------

def test_pool2d_remembers_and_backward_recalls_the_argmax(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 16, 9, 9)).astype(np.float32)
    K.ARGMAX.clear()
    K.pool2d(x, 3, 1, 1, 2)
    geo = pool_geometry("t", x.shape, 3, 1, 1, 2)
    assert K.ARGMAX.recall(x, geo, x) is not None
    assert K.ARGMAX.recall(x.copy(), geo, x) is None                 # another object: not its entry
    calls = []
    monkeypatch.setattr(K, "_max_argmax", lambda *a: calls.append(a) or (None, None))
    dy = rng.normal(size=(1, 16, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(K.pool2d_backward(dy, x, 3, 1, 1, 2),
                               ref.pool2d_backward(dy, x, 3, 1, 1, 2), atol=1e-6)
    assert calls == []                                                 # nothing recomputed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_modified_input_is_not_routed_through_its_old_argmax(dtype):
    # the gradient-check pattern: a forward at a perturbed x, then the backward at the restored x
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 8, 6, 6)).astype(dtype)
    dy = rng.normal(size=(1, 8, 5, 5)).astype(dtype)
    K.ARGMAX.clear()
    old = x[0, 3, 2, 2]
    x[0, 3, 2, 2] = 10.0             # wins all four windows that contain it
    K.pool2d(x, 2, 1)
    x[0, 3, 2, 2] = old
    np.testing.assert_allclose(K.pool2d_backward(dy, x, 2, 1), ref.pool2d_backward(dy, x, 2, 1),
                               atol=1e-6)
    assert K.ARGMAX.recall(x, pool_geometry("t", x.shape, 2, 1), x) is None


def test_memory_is_bounded_and_forgets_dead_inputs(monkeypatch):
    monkeypatch.setattr(K, "ARGMAX_MEMORY", 3)
    K.ARGMAX.clear()
    keep = [np.random.default_rng(i).normal(size=(1, 8, 4, 4)) for i in range(5)]
    for x in keep:
        K.pool2d(x, 2, 1)
    assert len(K.ARGMAX.entries) == 3
    del keep[-1], x
    assert len(K.ARGMAX.entries) == 2


def test_net_backward_scatters_through_the_forward_argmax(monkeypatch):
    rng = np.random.default_rng(3)
    specs = [{"name": "data", "type": "Input", "top": ["data"],
              "input_param": {"shape": [{"dim": [2, 8, 10, 10]}]}},
             {"name": "pool", "type": "Pooling", "bottom": ["data"], "top": ["pool"],
              "pooling_param": {"kernel_size": 3, "stride": 1, "pad": 2, "est": 2}}]
    nets = [Net(specs, backend=b, dtype=np.float64, force_backward=True) for b in ("numpy", "numba")]
    x = rng.normal(size=(2, 8, 10, 10))
    out = [net.forward(data=x)["pool"] for net in nets]
    np.testing.assert_array_equal(out[1], out[0])
    calls = []
    real = K._max_argmax
    monkeypatch.setattr(K, "_max_argmax", lambda *a: calls.append(a) or real(*a))
    seed = rng.normal(size=out[0].shape)
    diffs = [net.backward({"pool": seed})["data"] for net in nets]
    np.testing.assert_allclose(diffs[1], diffs[0], rtol=0, atol=1e-12)
    assert calls == []
