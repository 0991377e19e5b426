"""numba_kernels.cuda against the reference, on a GPU or on numba's CUDA simulator (CI: tiny shapes):
the cheapest op-table cases in float32 and float64, the op table's named hard cases, device arrays
in and out, Caffe's MAX tie and NaN rules, the training-step kernels (ReLU, softmax with loss, SGD) against the reference layers and
solver, a Net on ``backend="cuda"``, and the reference's ValueErrors."""

import numpy as np
import pytest

import reference as ref
from reference.optable import cases, hard_cases
from reference.pool import FLT_MAX

from ._parity import check_case
from .test_cpu import BAD_CALLS, row, same_error, small_dense_net

try:
    import numba_kernels.cuda as K
    from numba import cuda
except ImportError as e:   # neither a GPU nor the simulator
    pytest.skip(f"numba.cuda cannot run here: {e}", allow_module_level=True)

pytestmark = pytest.mark.gpu


def cost(case):
    """Simulated work of a case: input, weights and output sizes."""
    w = case.arrays.get("w")
    return case.arrays["x"].size * (1 if w is None else w.size) + case.dy.size


# on the simulator (every GPU thread runs in Python) the 5 cheapest of each op's 12 cases; on a GPU
# all of them
TINY = [c for op in ("conv2d", "deconv2d", "pool2d")
        for c in sorted(cases(op, count=12), key=cost)[:5 if K.SIMULATOR else 12]]


# The op table's named hard cases (reference.optable.hard_cases: est in the weight gradient, Caffe's
# ceil windows and clip rule, the window past the end, the AVE divisor, pad_end, padding that never
# wins, MAX ties).  On the simulator: all 17 in float32 and the 11 pooling ones in float64 too (about
# 5 s; the float64 conv/deconv runs, another 4 s, add no kernel code); on a GPU: all 17 in both dtypes.
HARD = [(c, dtype) for c in hard_cases() for dtype in (np.float32, np.float64)
        if not K.SIMULATOR or dtype == np.float32 or c.op == "pool2d"]


@pytest.mark.parametrize("case, dtype", HARD, ids=[f"{c.name}-{np.dtype(d).name}" for c, d in HARD])
def test_hard_case_parity_with_reference(case, dtype):
    check_case(K, case.astype(dtype))


def test_hard_cases_catch_a_nan_for_the_empty_ave_window():
    """The pooling Caffe would compute for a window past the end (0/0 = NaN) fails a hard case;
    the random cases alone let it through (issue 16)."""
    import types

    def caffe_nan_pool2d(x, kernel, **p):
        y = np.array(host(K.pool2d(x, kernel, **p)))
        if p.get("mode") == "ave":
            from reference.pool import pool_geometry
            geo = pool_geometry("t", x.shape, kernel, **p)
            y[..., geo.divisor() == 0] = np.nan
        return y

    impl = types.SimpleNamespace(pool2d=caffe_nan_pool2d, pool2d_backward=K.pool2d_backward)
    case = next(c for c in hard_cases("pool2d") if c.name == "pool2d_hard_window_past_end_ave")
    with pytest.raises(AssertionError, match="pool2d_hard_window_past_end_ave"):
        check_case(impl, case.astype(np.float32))
    for c in TINY:              # the random cases CI ran before: none has an empty AVE window
        if c.op == "pool2d":
            check_case(impl, c.astype(np.float32))


def host(a):
    return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", TINY, ids=[c.name for c in TINY])
def test_parity_with_reference(case, dtype):
    check_case(K, case.astype(dtype))


def test_device_arrays_in_device_arrays_out():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2)
    dx_, w_, b_ = cuda.to_device(x), cuda.to_device(w), cuda.to_device(b)
    y = K.conv2d(dx_, w_, b_, pad=1, est=2, group=2)
    assert hasattr(y, "copy_to_host")
    np.testing.assert_allclose(y.copy_to_host(), ref.conv2d(x, w, b, pad=1, est=2, group=2),
                               atol=1e-12)
    grads = K.conv2d_backward(y, dx_, w, pad=1, est=2, group=2)
    expected = ref.conv2d_backward(y.copy_to_host(), x, w, pad=1, est=2, group=2)
    for got, want in zip(grads, expected):
        assert hasattr(got, "copy_to_host")
        np.testing.assert_allclose(got.copy_to_host(), want, atol=1e-12)
    p = K.pool2d(y, 2, est=2, mode="max")
    assert hasattr(p, "copy_to_host")
    np.testing.assert_array_equal(p.copy_to_host(), ref.pool2d(y.copy_to_host(), 2, est=2))
    assert isinstance(K.pool2d(x, 2), np.ndarray)          # NumPy in, NumPy out


# ---- Caffe's MAX rules ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_tie_and_nan_rules(dtype):
    x = np.array([[3, 3], [3, 1]], dtype=dtype)[None, None]
    np.testing.assert_array_equal(K.pool2d_backward(np.ones((1, 1, 1, 1), dtype), x, 2)[0, 0],
                                  [[1, 0], [0, 0]])
    x, dy = row([7, 5, 7, 5, 7], dtype), row([1, 10, 100], dtype)
    np.testing.assert_array_equal(K.pool2d_backward(dy, x, (1, 2), est=2),
                                  row([1, 10, 100, 0, 0], dtype))
    x = row([np.nan, 1, np.nan, np.nan, -np.inf], dtype)
    np.testing.assert_array_equal(K.pool2d(x, (1, 2)), row([1, 1, -FLT_MAX, -FLT_MAX], dtype))
    np.testing.assert_array_equal(K.pool2d_backward(row([1, 2, 4, 8], dtype), x, (1, 2)),
                                  row([0, 3, 0, 0, 0], dtype))


# ---- training-step kernels -------------------------------------------------------------------------

def layer(type_, **params):
    spec = {"name": "l", "type": type_, "bottom": ["a", "b"] if "Loss" in type_ else ["a"],
            "top": ["t"], **params}
    return ref.create_layer(spec, dtype=np.float64)


def test_relu_forward_backward():
    x = np.array([[-2.0, -0.0, 0.0, 3.0]])
    dy = np.array([[1.0, 2.0, 3.0, 4.0]])
    relu = layer("ReLU", relu_param={"negative_slope": 0.1})
    np.testing.assert_array_equal(K.relu_forward(x, 0.1), relu.forward([x])[0])
    np.testing.assert_array_equal(K.relu_backward(dy, x, 0.1), relu.backward([dy], [x], [None])[0])
    np.testing.assert_array_equal(K.relu_forward(x), [[0, 0, 0, 3]])


@pytest.mark.parametrize("normalization", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
def test_softmax_loss_matches_the_reference_layer(normalization):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 2, 2)) * 3
    label = np.array([0, 2, 255, 1, 1, 255, 0, 2.7]).reshape(2, 1, 2, 2)   # 2.7 truncates to 2
    loss_layer = layer("SoftmaxWithLoss", loss_param={"ignore_label": 255,
                                                      "normalization": normalization})
    want_loss = float(loss_layer.forward([x, label])[0])
    want_dx = loss_layer.backward([np.array(2.0)], [x, label], [None])[0]
    loss, prob = K.softmax_loss_forward(cuda.to_device(x), label, 255, normalization)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    dx = K.softmax_loss_backward(prob, label, 255, normalization, loss_weight=2.0)
    np.testing.assert_allclose(dx.copy_to_host(), want_dx, atol=1e-14)
    with pytest.raises(ValueError, match="label"):
        K.softmax_loss_forward(x, np.where(label == 255, 3, label))   # 3 is out of range


def test_sgd_update_is_caffes():
    # reference/solver.py's worked example: V = 0.06, w = 0.94; then V = 0.1134
    w, v = cuda.to_device(np.array([1.0])), cuda.to_device(np.zeros(1))
    for want_v, want_w in [(0.06, 0.94), (0.1134, 0.94 - 0.1134)]:
        K.sgd_update(w, np.array([0.5]), v, lr=0.1, momentum=0.9, weight_decay=0.1)
        assert v.copy_to_host()[0] == pytest.approx(want_v, rel=1e-12)
        assert w.copy_to_host()[0] == pytest.approx(want_w, rel=1e-12)
    w32, v32 = cuda.to_device(np.ones(3, np.float32)), cuda.to_device(np.zeros(3, np.float32))
    K.sgd_update(w32, np.ones(3, np.float32), v32, lr=0.5, lr_mult=2, weight_decay=1, decay_mult=0)
    np.testing.assert_array_equal(w32.copy_to_host(), np.zeros(3, np.float32))


# ---- the Net backend and bad arguments ------------------------------------------------------------------

def test_net_on_cuda_backend_equals_numpy_backend():
    x = np.random.default_rng(1).normal(size=(2, 3, 13, 12))[:1, :, :7, :6]
    nets = [small_dense_net(b, np.float64) for b in ("numpy", "cuda")]
    blobs = [net.forward(data=x) for net in nets]
    diffs = [net.backward({"up": np.ones_like(blobs[0]["up"])}) for net in nets]
    for name in ("conv1", "pool1", "conv2", "pool2", "up"):
        np.testing.assert_allclose(blobs[1][name], blobs[0][name], atol=1e-10, err_msg=name)
    np.testing.assert_allclose(diffs[1]["data"], diffs[0]["data"], atol=1e-10)


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_arguments_raise_the_reference_error(case):
    same_error(K, *BAD_CALLS[case])


@pytest.mark.skipif(not K.SIMULATOR, reason="the shared-array race is a simulator bug; a GPU has none")
def test_simulator_shared_array_is_one_array_per_block_under_contention():
    """Twenty times, 32 Python threads released together ask for the same call site's shared array: all must get
    the same object (the unpatched simulator's look-up-then-create can hand out two)."""
    import threading

    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    for trial in range(20):   # unpatched, about 1 trial in 10 hands out two arrays
        shared = FakeCUDAShared(0)
        start = threading.Barrier(32)
        got = [None] * 32

        def ask(i):
            start.wait()
            got[i] = shared.array((64, 64), np.float32)   # one call site for all threads

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(a) for a in got}) == 1, f"trial {trial}: threads got different arrays"
        assert got[0].shape == (64, 64) and got[0].dtype == np.float32
