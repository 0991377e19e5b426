"""numba_kernels.cpu's fast paths against the reference: stride-1 convolution as tap GEMMs (forced on
for every stride-1 op-table case, hard cases included, float32 and float64), and MAX pooling's
argmax (against a NumPy first-maximum argmax written from the window definition) and both MAX
backwards (scattering a given argmax, recomputing it) on every MAX case of the op table, at its
stride and at stride 1, with NaN and -inf added; and the Net's Pooling layer, which keeps the
forward's argmax for its backward (Caffe's ``max_idx_``) only when a backward is expected."""

import numpy as np
import pytest

import numba_kernels.cpu as K
import reference as ref
from numba_kernels import _gemm
from reference import Net
from reference.optable import OpCase, cases, hard_cases, table
from reference.pool import pool_geometry
from reference.tolerance import max_rel_err, tolerance

from ._parity import assert_varied, check_case, conv_case_geometry

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
    assert_varied(CONV_CASES, 12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_tap_gemm_convolution_parity(case, dtype, taps_always):
    c = case.astype(dtype)
    assert K._use_taps(*conv_case_geometry(K, c), backward=True)      # the path under test
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



@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dot_into_a_column_window_with_transposed_operands(dtype, monkeypatch):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((6, 9)).astype(dtype)
    big = np.full((5, 9), 7.0, dtype)
    expected = big.copy()
    expected[:, 2:6] = a @ b[:4, 3:7]
    _gemm.dot_into(a, b[:4, 3:7], big[:, 2:6])        # window out, window operand: through gemm
    np.testing.assert_allclose(big, expected, rtol=1e-6)
    assert (big[:, :2] == 7).all() and (big[:, 6:] == 7).all()       # nothing outside the window
    at, bt = a.T.copy().T, b[:4, 3:7].T.copy().T                     # column-major views
    out = np.zeros((5, 9), dtype)
    _gemm.dot_into(at, bt, out[:, 1:5])
    np.testing.assert_allclose(out[:, 1:5], a @ b[:4, 3:7], rtol=1e-6)
    _gemm.dot_into(a[:, :0], b[:0, :4], out[:, 1:5])                 # K = 0: zeros
    assert (out[:, 1:5] == 0).all()
    window = np.zeros((6, 9), dtype)
    for odd in (a[::-1], np.broadcast_to(a[:1], a.shape), a[:, ::2]):  # negative, zero, 2 strides
        _gemm.dot_into(odd, b[:odd.shape[1], :4], window[:5, 2:6])
        np.testing.assert_allclose(window[:5, 2:6], odd @ b[:odd.shape[1], :4], rtol=1e-6)
    mixed = np.zeros((5, 4))                                         # float64 out of float32 operands
    _gemm.dot_into(a, b[:4, 3:7], mixed)
    np.testing.assert_allclose(mixed, a @ b[:4, 3:7], rtol=1e-6)
    monkeypatch.setattr(_gemm, "available", lambda dtype: False)    # another BLAS: a temporary
    _gemm.dot_into(a, b[:4, 3:7], out[:, 5:9])
    np.testing.assert_allclose(out[:, 5:9], a @ b[:4, 3:7], rtol=1e-6)


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


def _pool_params(case):
    p = dict(case.params)
    p.pop("mode", None)
    return p


def _stride1_variant(case):
    """``case`` at stride 1 (the dense kernel's path), same pad, est, pad_end and round_mode; None
    where that geometry is not valid."""
    params = {**_pool_params(case), "stride": 1}
    x = case.arrays["x"]
    try:
        geo = pool_geometry("t", x.shape, **params)
    except ValueError:
        return None
    dy = np.random.default_rng(7).normal(size=x.shape[:2] + geo.out_hw)
    return OpCase(case.op, case.name + "_stride1", dict(case.arrays), {**case.params, "stride": 1}, dy)


def _with_nan(case):
    """``case`` with a NaN and a -inf at fixed positions of every plane (NaN never wins a window;
    a window of only NaN / -inf has no real value)."""
    x = case.arrays["x"].copy()
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    flat[:, ::3] = np.nan
    flat[:, 1::7] = -np.inf
    return OpCase(case.op, case.name + "_nan", {**case.arrays, "x": x}, dict(case.params), case.dy)


_TABLE_MAX = [c for c in table("pool2d") + cases("pool2d", count=20, seed=13)
              if c.params.get("mode", "max") == "max"]
MAX_CASES = _TABLE_MAX + [v for v in map(_stride1_variant, _TABLE_MAX) if v is not None]
MAX_CASES += [_with_nan(c) for c in MAX_CASES]


@pytest.fixture(params=["rows", "planes"])
def pool_kernel(request, monkeypatch):
    monkeypatch.setattr(K, "DENSE_MIN_PLANES", 10**9 if request.param == "rows" else 1)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", MAX_CASES, ids=[c.name for c in MAX_CASES])
def test_argmax_and_both_backwards_match_the_reference(case, dtype, pool_kernel):
    # argmax: the first maximum from the definition, exactly; y exactly; dx with and without
    # argmax= against the float64 reference on the same (dtype-rounded) inputs
    params = _pool_params(case)
    c = case.astype(dtype)
    x, dy = c.arrays["x"], c.dy
    x64 = x.astype(np.float64)
    y, arg = K.pool2d_argmax(x, **params)
    assert arg.dtype == np.int32 and y.dtype == dtype
    np.testing.assert_array_equal(arg, first_max_argmax(x64, **params), err_msg=case.name)
    np.testing.assert_array_equal(y, ref.pool2d(x64, **params).astype(dtype), err_msg=case.name)
    want = ref.pool2d_backward(dy.astype(np.float64), x64, **params)
    for got in (K.pool2d_backward(dy, x, **params, argmax=arg), K.pool2d_backward(dy, x, **params)):
        assert got.dtype == dtype
        assert max_rel_err(got, want) <= tolerance(dtype), case.name


def test_the_max_cases_cover_the_hard_geometries():
    names = [c.name for c in MAX_CASES]
    assert any("_tie_" in n for n in names) and any(n.endswith("_nan") for n in names)
    for hard in ("ceil_overhang", "window_past_end", "pad_end", "negative_pad"):
        assert any(hard in n for n in names), hard
    stride1 = [c.params for c in MAX_CASES if _stride1(c)]
    assert any(np.max(p.get("pad_end", 0)) > 0 for p in stride1)
    assert any(np.max(p.get("est", 1)) > 1 for p in stride1)
    assert any(np.max(p.get("pad", 0)) > 0 for p in stride1)
    assert hard_cases("pool2d")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_ties_nan_and_signed_zero(dtype, pool_kernel):
    nan, inf = np.nan, np.inf
    x = np.array([nan, 1, nan, nan, -inf, 3, 3, -0.0, 0.0, 0.0, -0.0], dtype).reshape(1, 1, 1, -1)
    y, arg = K.pool2d_argmax(x, (1, 2))
    np.testing.assert_array_equal(arg.ravel(), [1, 1, -1, -1, 5, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(y, ref.pool2d(x, (1, 2)))
    assert np.signbit(y.ravel()[7]) and not np.signbit(y.ravel()[8])   # the first zero, with its sign


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_ties_across_rows_keep_the_row_major_first(dtype, pool_kernel):
    # 2x2 windows: a tie inside a row goes to the left tap, across rows to the upper row, even when
    # the lower row's copy lies further left (the separable passes must not prefer it)
    x = np.array([[1, 5, 2],
                  [5, 1, 5],
                  [0, 5, 5]], dtype)[None, None]
    y, arg = K.pool2d_argmax(x, 2)
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [5, 5]])
    np.testing.assert_array_equal(arg[0, 0], [[1, 1], [3, 5]])
    _, arg3 = K.pool2d_argmax(np.full((1, 1, 4, 4), 2.0, dtype), 3, pad=1)
    np.testing.assert_array_equal(arg3[0, 0], [[0, 0, 1, 2], [0, 0, 1, 2], [4, 4, 5, 6],
                                                [8, 8, 9, 10]])


def test_wide_kernels_take_the_generic_passes(pool_kernel):
    # kernels wider and taller than 3 run the extra in-place sweeps / the loop over row taps
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 3, size=(2, 9, 11, 12)).astype(np.float32)
    x[0, 0, 2, 3] = np.nan
    for kernel, pad, est in (((5, 4), (2, 1), (1, 2)), ((4, 6), (3, 0), (2, 1))):
        _, arg = K.pool2d_argmax(x, kernel, 1, pad, est)
        np.testing.assert_array_equal(arg, first_max_argmax(x, kernel, 1, pad, est))


def test_argmax_kernel_dispatch(monkeypatch):
    # enough planes: the separable kernels (stride 1 dense, else strided); few planes: output rows
    used = []
    for name in ("pool_argmax", "pool_argmax_dense", "pool_argmax_strided"):
        monkeypatch.setattr(K, name, lambda *a, name=name: used.append(name))
    for shape, stride in (((1, 8, 6, 6), 1), ((2, 4, 6, 6), 2), ((1, 7, 6, 6), 1)):
        K.pool2d_argmax(np.zeros(shape), 2, stride)
    assert used == ["pool_argmax_dense", "pool_argmax_strided", "pool_argmax"]


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


def test_plain_forward_records_nothing(monkeypatch):
    # pool2d is the plain kernel: no argmax computed, nothing kept anywhere
    calls = []
    monkeypatch.setattr(K, "_max_argmax", lambda *a: calls.append(a))
    x = np.random.default_rng(0).normal(size=(1, 16, 9, 9)).astype(np.float32)
    np.testing.assert_array_equal(K.pool2d(x, 3, 1, 1, 2), ref.pool2d(x, 3, 1, 1, 2))
    assert calls == []
    assert not hasattr(K, "ARGMAX")


# ---- the Net's Pooling layer keeps the argmax (Caffe's max_idx_) ---------------------------------

def _pool_net(phase="train", force_backward=True, loss=False, backend="numba"):
    specs = [{"name": "data", "type": "Input", "top": ["data"],
              "input_param": {"shape": [{"dim": [2, 8, 10, 10]}]}},
             {"name": "pool", "type": "Pooling", "bottom": ["data"], "top": ["pool"],
              "pooling_param": {"kernel_size": 3, "stride": 1, "pad": 2, "est": 2}}]
    if loss:
        specs.append({"name": "loss", "type": "EuclideanLoss", "bottom": ["pool", "pool"],
                      "top": ["loss"]})
    return Net(specs, phase=phase, backend=backend, dtype=np.float64, force_backward=force_backward)


class _Spy:
    """Counts K._max_argmax calls (the argmax kernel, in a forward or a recomputing backward)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = K._max_argmax

        def counted(*a):
            self.calls += 1
            return real(*a)
        monkeypatch.setattr(K, "_max_argmax", counted)


def test_net_backward_scatters_through_the_forward_argmax(monkeypatch):
    rng = np.random.default_rng(3)
    nets = [_pool_net(backend=b) for b in ("numpy", "numba")]
    spy = _Spy(monkeypatch)
    x = rng.normal(size=(2, 8, 10, 10))
    out = [net.forward(data=x)["pool"] for net in nets]
    np.testing.assert_array_equal(out[1], out[0])
    assert spy.calls == 1                       # the numba net's forward ran pool2d_argmax
    assert nets[1].layer("pool").kept_argmax is not None
    assert nets[0].layer("pool").kept_argmax is None    # the reference backend has no pool2d_argmax
    seed = rng.normal(size=out[0].shape)
    diffs = [net.backward({"pool": seed})["data"] for net in nets]
    np.testing.assert_allclose(diffs[1], diffs[0], rtol=0, atol=1e-12)
    assert spy.calls == 1                       # the backward recomputed nothing


def test_the_kept_argmax_is_what_the_backward_routes_through():
    # a doctored argmax (every output to pixel 0 of its plane) is routed as given
    net = _pool_net()
    x = np.random.default_rng(4).normal(size=(2, 8, 10, 10))
    y = net.forward(data=x)["pool"]
    layer = net.layer("pool")
    ref_bottom, shape, arg = layer.kept_argmax
    layer.kept_argmax = (ref_bottom, shape, np.zeros_like(arg))
    seed = np.ones_like(y)
    dx = net.backward({"pool": seed})["data"]
    want = np.zeros_like(x)
    want[:, :, 0, 0] = y.shape[2] * y.shape[3]
    np.testing.assert_array_equal(dx, want)


def test_a_changed_bottom_falls_back_to_recomputing(monkeypatch):
    net = _pool_net()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 8, 10, 10))
    y = net.forward(data=x)["pool"]
    layer = net.layer("pool")
    bottom = net._values[net._bottom_ids[net.layer_names.index("pool")][0]]
    dy = rng.normal(size=y.shape)
    spy = _Spy(monkeypatch)
    other = rng.normal(size=x.shape)            # another array: its own argmax, recomputed
    np.testing.assert_allclose(layer.backward([dy], [other], [y])[0],
                               ref.pool2d_backward(dy, other, 3, 1, 2, 2), rtol=0, atol=1e-12)
    assert spy.calls == 1
    narrower = bottom[:, :, :, :9]              # another shape: recomputed too
    dy9 = rng.normal(size=(2, 8, 10, 9))
    np.testing.assert_allclose(layer.backward([dy9], [narrower], [y])[0],
                               ref.pool2d_backward(dy9, narrower, 3, 1, 2, 2), rtol=0, atol=1e-12)
    assert spy.calls == 2
    layer.backward([dy], [bottom], [y])         # the very bottom pooled: no recomputation
    assert spy.calls == 2


def test_inference_net_does_not_compute_the_argmax(monkeypatch):
    spy = _Spy(monkeypatch)
    x = np.random.default_rng(6).normal(size=(2, 8, 10, 10))
    for net, keeps in ((_pool_net("test", force_backward=False), False),
                       (_pool_net("test", force_backward=False, loss=True), False),  # data needs no diff
                       (_pool_net("test", force_backward=True), True),
                       (_pool_net("train", force_backward=True, loss=True), True)):
        calls = spy.calls
        net.forward(data=x)
        assert net.layer("pool").need_backward is keeps
        assert (spy.calls - calls, net.layer("pool").kept_argmax is not None) == (int(keeps), keeps)
    net = _pool_net("test", force_backward=False)
    net.forward(data=x)                        # a backward anyway still gets the right gradient
    seed = np.ones((2, 8, 10, 10))
    np.testing.assert_allclose(net.backward({"pool": seed})["data"], 0.0)   # data needs no diff
