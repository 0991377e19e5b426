"""The op table's parity check, one test per case: every backend against the reference, forward and
backward, with the dtype's tolerance (:mod:`reference.tolerance`).  The expectation is the reference
in float64 on the case's (dtype-rounded) inputs, as in :func:`reference.oracle.verify`: a float32
backend is judged against the true value, not against the reference's own float32 rounding."""

import numpy as np

import reference.ops as reference_ops
from reference.tolerance import max_rel_err, tolerance


def cotangent(case, shape):
    """The case's ``dy`` (the op table sizes it with the reference's own geometry)."""
    assert case.dy.shape == tuple(shape), (case.name, case.dy.shape, shape)
    return case.dy


def check_case(impl, case, to_numpy=np.asarray):
    """Run ``case`` (already cast to its dtype) through ``impl`` and the reference; assert parity."""
    spec = case.spec
    dtype = case.arrays["x"].dtype
    exact = case.astype(np.float64)
    y_ref = spec.forward(reference_ops, exact.arrays, exact.params)
    dy = cotangent(case, y_ref.shape)
    expected = {"y": y_ref, **spec.vjp(reference_ops, exact.arrays, exact.params, exact.dy)}
    got = {"y": spec.forward(impl, case.arrays, case.params),
           **spec.vjp(impl, case.arrays, case.params, dy)}
    for name, ref in expected.items():
        value = np.asarray(to_numpy(got[name]))
        assert value.dtype == dtype, f"{case.name} {name}: dtype {value.dtype}, expected {dtype}"
        err = max_rel_err(value, ref)
        assert err <= tolerance(dtype), f"{case.name} [{dtype}] {name}: error {err:.3e}"
