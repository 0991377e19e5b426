"""oracle.verify: the reference passes against itself; a wrong implementation is caught and named."""

import types

import numpy as np

import reference.ops as reference_ops
from reference.optable import cases
from reference.oracle import verify
from reference.tolerance import TOLERANCE, max_rel_err, tolerance


def test_tolerance_table():
    assert tolerance(np.float32) == 1e-5 and tolerance(np.float64) == 1e-10
    assert set(TOLERANCE) == {np.dtype(np.float32), np.dtype(np.float64)}
    assert max_rel_err(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == 0.5
    assert max_rel_err(np.array([0.5]), np.array([0.25])) == 0.25  # scale is max(1, |ref|)


def test_reference_verifies_against_itself():
    report = verify(reference_ops, count=4)
    assert report.ok, str(report)
    # every output of every case in both dtypes: y, dx, dw (+ db when the case has a bias)
    expected = sum(2 if c.op == "pool2d" else 3 + ("b" in c.arrays) for c in cases(count=4))
    assert len(report.rows) == 2 * expected


def test_a_wrong_pooling_is_caught():
    def floor_pool(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        y = reference_ops.pool2d(x, kernel, stride, pad, est, mode, round_mode, pad_end)
        return y * x.dtype.type(1.001)   # 0.1% off
    impl = types.SimpleNamespace(pool2d=floor_pool)
    report = verify(impl, count=3)
    assert not report.ok
    assert "pool2d" in str(report) and "FAILED" in str(report)


def test_wrong_dtype_and_exceptions_are_reported():
    impl = types.SimpleNamespace(
        conv2d=lambda x, w, b=None, **p: reference_ops.conv2d(x, w, b, **p).astype(np.float64),
        deconv2d=lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    report = verify(impl, count=2, dtypes=(np.float32,))
    assert not report.ok
    text = str(report)
    assert "dtype float64" in text and "RuntimeError: boom" in text


def test_op_table_cotangents_fit_the_reference_outputs():
    import reference.ops as ops
    for c in cases(count=40, seed=5):
        assert c.dy.shape == c.spec.forward(ops, c.arrays, c.params).shape, c.name
