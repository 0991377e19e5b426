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


def assert_varied(cases, at_least, batches=False):
    """The selected op-table cases are enough of them and exercise the hard cases, est > 1, groups,
    padding (and, with ``batches``, more than one image): a parity test over them checks something."""
    assert len(cases) >= at_least, len(cases)
    assert any(c.name.startswith("conv2d_hard") for c in cases)
    params = [c.params for c in cases]
    assert any(np.max(p.get("est", 1)) > 1 for p in params)
    assert any(p.get("group", 1) > 1 for p in params)
    assert any(np.max(p.get("pad", 0)) > 0 for p in params)
    if batches:
        assert any(c.arrays["x"].shape[0] > 1 for c in cases)


def conv_case_geometry(impl, case):
    """``(x, w, stride, group, out_hw)`` of a conv2d case, checked by ``impl``'s own geometry."""
    x, w, p = case.arrays["x"], case.arrays["w"], case.params
    stride, _, _, group, out_hw = impl.conv_geometry("t", x.shape, w.shape, p.get("stride", 1),
                                                     p.get("pad", 0), p.get("est", 1), p.get("group", 1))
    return x, w, stride, group, out_hw
