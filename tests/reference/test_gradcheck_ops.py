"""Every op of the op table, gradient-checked in float64 (directional + exhaustive central
differences), plus the exact adjoint identities of the linear maps, plus proof that the checker fails
on a wrong gradient."""

import types

import numpy as np
import pytest

import reference as ref
from reference.gradient_check import check_adjoint, gradcheck
from reference.optable import OPS, cases

CASES = cases(count=14, seed=1)


def test_op_table_covers_the_required_parameter_space():
    seen = {k: set() for k in ("est", "stride", "pad", "group", "mode", "round_mode")}
    rect = overhang = pad_end = False
    for c in CASES:
        p = c.params
        for k in ("est", "stride", "pad"):
            seen[k].update(p[k])
        for k in ("group", "mode", "round_mode"):
            if k in p:
                seen[k].add(p[k])
        kernel = p.get("kernel", c.arrays.get("w", np.zeros((1, 1, 1, 1))).shape[2:])
        rect |= kernel[0] != kernel[1]
        pad_end |= c.op == "pool2d" and p["pad_end"] != (0, 0)
        if c.op == "pool2d" and p["round_mode"] == "ceil":
            h = c.arrays["x"].shape[2]
            ext = p["est"][0] * (p["kernel"][0] - 1) + 1
            overhang |= (h + 2 * p["pad"][0] - ext) % p["stride"][0] != 0
    assert {1, 2, 3} <= seen["est"] and {1, 2, 3} <= seen["stride"] and {0, 1, 2} <= seen["pad"]
    assert {1, 2} <= seen["group"] and seen["mode"] == {"max", "ave"}
    assert seen["round_mode"] == {"ceil", "floor"}
    assert rect and overhang and pad_end


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_gradients(case):
    report = gradcheck(case.op, **case.arrays, **case.params)
    report.assert_ok()
    assert report.samples >= 4 and report.kinks == 0  # ties are impossible by construction


@pytest.mark.parametrize("case", [c for c in CASES if c.op != "pool2d"][:10], ids=lambda c: c.name)
def test_conv_and_deconv_adjoint_identities(case):
    """Linear in x and in w: <c, A t> == <A^T c, t> to rounding (no finite differences)."""
    spec, a, p = OPS[case.op], case.arrays, case.params
    fwd, bwd = getattr(ref, case.op), getattr(ref, spec.backward_name)
    y_shape = case.dy.shape
    check_adjoint(lambda t: fwd(t, a["w"], None, **p), lambda c: bwd(c, a["x"], a["w"], **p)[0],
                  a["x"].shape, y_shape, target=f"{case.name} in x").assert_ok()
    check_adjoint(lambda t: fwd(a["x"], t, None, **p), lambda c: bwd(c, a["x"], a["w"], **p)[1],
                  a["w"].shape, y_shape, target=f"{case.name} in w").assert_ok()


@pytest.mark.parametrize("case", [c for c in CASES if c.op == "pool2d" and c.params["mode"] == "ave"],
                         ids=lambda c: c.name)
def test_average_pooling_adjoint_identity(case):
    p = case.params
    check_adjoint(lambda t: ref.pool2d(t, **p), lambda c: ref.pool2d_backward(c, case.arrays["x"], **p),
                  case.arrays["x"].shape, case.dy.shape, target=case.name).assert_ok()


def test_deconv_is_the_transpose_of_conv():
    """deconv2d(x, w) is conv2d's data gradient: <deconv(t, w), c> == <t, conv(c, w)>."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 3, 3, 2))            # deconv: 4 in, 3 out; conv: 4 out, 3 in
    t = rng.normal(size=(2, 4, 5, 6))
    y = ref.deconv2d(t, w, stride=2, pad=1, est=2)
    c = rng.normal(size=y.shape)
    lhs = np.sum(y * c)
    rhs = np.sum(t * ref.conv2d(c, w, stride=2, pad=1, est=2))
    assert abs(lhs - rhs) <= 1e-11 * max(1, abs(lhs))


def test_checker_fails_on_a_wrong_gradient():
    """A backward that is off by 1% in one tap must be caught (the checker can fail)."""
    def bad_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
        dx, dw, db = ref.conv2d_backward(dy, x, w, stride, pad, est, group, bias)
        dw = dw.copy()
        dw[0, 0, 0, 0] *= 1.01
        return dx, dw, db
    impl = types.SimpleNamespace(conv2d=ref.conv2d, conv2d_backward=bad_backward)
    rng = np.random.default_rng(0)
    report = gradcheck("conv2d", impl=impl, x=rng.normal(size=(1, 2, 5, 5)),
                       w=rng.normal(size=(2, 2, 3, 3)), b=rng.normal(size=2), est=2, pad=1)
    assert not report.ok
    assert any(w == "w[0, 0, 0, 0]" for _, w, *_ in report.failures())


def test_checker_skips_kinks_instead_of_failing():
    """ReLU evaluated exactly at its kink: the sample is counted as a kink, not a failure."""
    spec = {"name": "r", "type": "ReLU", "bottom": ["x"], "top": ["y"]}
    x = np.array([[-1.0, 0.0, 2.0, -3.0, 4.0]])
    report = gradcheck(spec, [x], directions=0)
    assert report.kinks == 1 and report.ok and len(report.results) == 4
