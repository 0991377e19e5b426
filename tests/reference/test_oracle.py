"""oracle.verify: the reference and the numba CPU kernels pass; four deliberately wrong
implementations fail, each on exactly the cases (and outputs) that its mistake touches."""

import types

import numpy as np
import pytest

import reference.ops as reference_ops
from reference.checks import group_slices, spatial_args
from reference.optable import TIE_RULE, cases, hard_cases, table
from reference.oracle import verify
from reference.pool import FLT_MAX, pool_geometry
from reference.tolerance import TOLERANCE, max_rel_err, tolerance
from reference.windows import pad as pad_hw, window_view

TABLE = table()            # the default table verify runs: hard cases + 12 random cases per op


def outputs(case):
    """The outputs verify compares for a case: y, dx (+ dw, and db when there is a bias)."""
    return 2 if case.op == "pool2d" else 3 + ("b" in case.arrays)


def test_tolerance_table():
    assert tolerance(np.float32) == 1e-5 and tolerance(np.float64) == 1e-10
    assert set(TOLERANCE) == {np.dtype(np.float32), np.dtype(np.float64)}
    assert max_rel_err(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == 0.5
    assert max_rel_err(np.array([0.5]), np.array([0.25])) == 0.25  # scale is max(1, |ref|)


def test_reference_verifies_against_itself():
    report = verify(reference_ops)
    assert report.ok, str(report)
    assert len(TABLE) == 17 + 36
    assert len(report.rows) == 2 * sum(outputs(c) for c in TABLE) == 312
    # float64 against itself is exact; float32 is judged against the float64 value of the same inputs
    assert report.max_error["float64"] == 0.0
    assert 2.0 ** -24 < report.max_error["float32"] <= 1e-6     # measured 1.8e-7
    assert str(report).startswith("verify: ok: 312 outputs compared (53 cases x 2 dtypes), 0 failed")


def test_float32_expectations_are_the_float64_values():
    """An implementation that computes in float64 and rounds once is within half an ulp of the true
    value (error <= 2**-24); float32 expectations computed in float32 would have put it at ~1e-7."""
    def rounded(name):
        def fn(*args, **kw):
            wide = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
            out = getattr(reference_ops, name)(*wide, **kw)
            dtype = args[1 if "backward" in name else 0].dtype
            cast = lambda v: None if v is None else v.astype(dtype)  # noqa: E731
            return tuple(map(cast, out)) if isinstance(out, tuple) else cast(out)
        return fn

    names = ("conv2d", "conv2d_backward", "deconv2d", "deconv2d_backward", "pool2d", "pool2d_backward")
    impl = types.SimpleNamespace(**{n: rounded(n) for n in names})
    report = verify(impl, dtypes=("float32",))
    assert report.ok and len(report.rows) == 156
    assert report.max_error["float32"] <= 2.0 ** -24


def test_numba_cpu_kernels_pass():
    import numba_kernels.cpu as K

    report = verify(K, dtypes=("float32", "float64"))
    assert report.ok, str(report)
    assert len(report.rows) == 312
    assert report.max_error["float32"] <= 1e-5 and report.max_error["float64"] <= 1e-10


# ---- the hard cases are there, and they are hard -----------------------------------------------

def first_and_last_argmax(case):
    """Per MAX window: the flat tap index of the first and of the last maximum."""
    p = case.params
    geo = pool_geometry("t", case.arrays["x"].shape, p["kernel"], p["stride"], p["pad"], p["est"],
                        p["mode"], p["round_mode"], p["pad_end"])
    flat = geo.windows(geo.padded(case.arrays["x"], -np.inf))
    flat = flat.reshape(flat.shape[:4] + (-1,))
    first = np.argmax(flat, axis=-1)
    last = flat.shape[-1] - 1 - np.argmax(flat[..., ::-1], axis=-1)
    real = np.max(flat, axis=-1) > -np.inf
    return first[real], last[real]


def test_tie_cases_hold_ties_and_state_the_rule():
    ties = [c for c in hard_cases("pool2d") if "_tie_" in c.name]
    assert len(ties) == 3
    for c in ties:
        assert TIE_RULE in c.note and "first maximum in row-major tap order" in TIE_RULE
        first, last = first_and_last_argmax(c)
        assert (first != last).sum() >= 3, c.name        # several windows where the rule matters
        assert np.array_equal(c.arrays["x"], c.astype(np.float32).arrays["x"])   # exact in float32
    for c in TABLE:                                      # no other MAX case has a tie
        if c.op == "pool2d" and c.params["mode"] == "max" and "_tie_" not in c.name:
            first, last = first_and_last_argmax(c)
            assert np.array_equal(first, last), c.name


def test_every_case_is_valid_and_named_once():
    names = [c.name for c in TABLE]
    assert len(set(names)) == len(names)
    for c in hard_cases():
        assert c.note and c.name.startswith(c.op + "_hard_")
        assert c.dy.shape == c.spec.forward(reference_ops, c.arrays, c.params).shape


# ---- four wrong implementations, each caught on the right cases ---------------------------------

def floor_pooling():
    """Pooling that rounds the output size down (floor) where Caffe rounds up (ceil)."""
    def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        return reference_ops.pool2d(x, kernel, stride, pad, est, mode, "floor", pad_end)

    def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        return reference_ops.pool2d_backward(dy, x, kernel, stride, pad, est, mode, "floor", pad_end)
    return types.SimpleNamespace(pool2d=pool2d, pool2d_backward=pool2d_backward)


def geometry(case, round_mode=None):
    p = dict(case.params)
    if round_mode:
        p["round_mode"] = round_mode
    return pool_geometry("t", case.arrays["x"].shape, **p)


def test_floor_instead_of_ceil_fails_on_the_ceil_cases_that_round():
    report = verify(floor_pooling())
    assert not report.ok
    rounding = [c.name for c in TABLE if c.op == "pool2d"
                and geometry(c).out_hw != geometry(c, "floor").out_hw]
    assert report.failed_cases == rounding
    assert {"pool2d_hard_ceil_overhang_max", "pool2d_hard_ceil_overhang_pad_ave",
            "pool2d_hard_window_past_end_max"} <= set(rounding)
    assert len(rounding) >= 8 and len(rounding) < sum(c.op == "pool2d" for c in TABLE)
    y = [f for f in report.failures if f.case == "pool2d_hard_ceil_overhang_pad_ave" and f.output == "y"]
    assert [f.message for f in y] == ["shape (1, 1, 2, 2), expected (1, 1, 3, 3)"] * 2
    dx = [f for f in report.failures if f.case == "pool2d_hard_ceil_overhang_pad_ave" and f.output == "dx"]
    assert all(f.message.startswith("raised ValueError") and f.function == "pool2d_backward" for f in dx)
    text = str(report)
    assert ("FAILED pool2d_hard_ceil_overhang_pad_ave (pool2d: kernel 3x3, stride 2x2, pad 1x1, est 1x1, "
            "mode ave, round_mode ceil, pad_end 0x0; x 1x1x4x4)") in text
    assert "y [float32]: shape (1, 1, 2, 2), expected (1, 1, 3, 3)" in text


def conv_dw_ignoring_est():
    """conv2d_backward whose weight gradient reads x at neighbouring taps (as if est were 1)."""
    def conv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
        dx, _, db = reference_ops.conv2d_backward(dy, x, w, stride, pad, est, group, bias)
        stride, pad, _ = spatial_args("wrong", stride, pad, est)
        xp = pad_hw(x, pad)
        dw = np.empty_like(w)
        for cin, cout in group_slices(group, x.shape[1], w.shape[0]):
            win = window_view(xp[:, cin], w.shape[2:], stride, (1, 1), dy.shape[2:])   # the mistake
            dw[cout] = np.einsum("noyx,ncyxij->ocij", dy[:, cout], win)
        return dx, dw, db
    return types.SimpleNamespace(conv2d=reference_ops.conv2d, conv2d_backward=conv2d_backward)


def test_conv_weight_gradient_ignoring_est_fails_on_dw_of_est_cases_only():
    report = verify(conv_dw_ignoring_est())
    assert not report.ok
    dilated = [c.name for c in TABLE if c.op == "conv2d"
               and any(e > 1 and k > 1 for e, k in zip(c.params["est"], c.arrays["w"].shape[2:]))]
    assert report.failed_cases == dilated
    assert "conv2d_hard_est2_dw" in dilated and "conv2d_hard_est3x1_groups_rect" in dilated
    assert {(f.output, f.function) for f in report.failures} == {("dw", "conv2d_backward")}
    assert len(report.failures) == 2 * len(dilated)                 # both dtypes, dw only
    assert all(f.error > 1e-2 for f in report.failures)
    text = str(report)
    assert ("FAILED conv2d_hard_est2_dw (conv2d: stride 1x1, pad 1x1, est 2x2, group 1; "
            "x 1x2x7x8, w 3x2x3x3, b 3)") in text
    assert "      est 2: dw[o, c, i, j] sums dy * x at taps 2 apart" in text
    assert "dw [float64]: error" in text and "> tolerance 1e-10 (at [" in text


def in_image_count(geo):
    """(out_h, out_w) number of taps that fall on the image (not on padding): the wrong divisor."""
    counts = []
    for a in (0, 1):
        taps = (geo.stride[a] * np.arange(geo.out_hw[a]) - geo.pad[a])[:, None] \
            + geo.est[a] * np.arange(geo.kernel[a])[None, :]
        counts.append(((taps >= 0) & (taps < geo.in_hw[a])).sum(axis=1))
    return np.outer(counts[0], counts[1])


def ave_divided_by_in_image_count():
    """AVE pooling that divides by the taps on the image instead of Caffe's padded window size."""
    def rescale(x, params):
        geo = pool_geometry("wrong", x.shape, **params)
        count = in_image_count(geo)
        return np.divide(geo.divisor(), count, out=np.zeros(count.shape), where=count > 0)

    def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        p = dict(kernel=kernel, stride=stride, pad=pad, est=est, mode=mode, round_mode=round_mode,
                 pad_end=pad_end)
        y = reference_ops.pool2d(x, **p)
        return y if mode == "max" else (y * rescale(x, p)).astype(x.dtype)

    def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        p = dict(kernel=kernel, stride=stride, pad=pad, est=est, mode=mode, round_mode=round_mode,
                 pad_end=pad_end)
        if mode == "ave":
            dy = (dy * rescale(x, p)).astype(x.dtype)
        return reference_ops.pool2d_backward(dy, x, **p)
    return types.SimpleNamespace(pool2d=pool2d, pool2d_backward=pool2d_backward)


def test_ave_divisor_counting_only_the_image_fails_on_padded_ave_cases():
    report = verify(ave_divided_by_in_image_count())
    assert not report.ok
    border = []
    for c in TABLE:
        if c.op == "pool2d" and c.params["mode"] == "ave":
            geo = geometry(c)
            count = in_image_count(geo)
            if np.any((count > 0) & (count != geo.divisor())):
                border.append(c.name)
    assert report.failed_cases == border
    assert {"pool2d_hard_ceil_overhang_pad_ave", "pool2d_hard_ave_border_est2",
            "pool2d_hard_ave_rect_pad", "pool2d_hard_pad_end_ave"} <= set(border)
    assert all(c.params["pad"] != (0, 0) for c in TABLE if c.name in border)
    assert {f.output for f in report.failures} == {"y", "dx"}
    # Caffe's worked example: y[0, 0] of all-ones would be 4/9; the wrong divisor (4) gives 1
    x = np.ones((1, 1, 4, 4))
    assert ave_divided_by_in_image_count().pool2d(x, 3, 2, 1, mode="ave")[0, 0, 0, 0] == 1.0
    assert reference_ops.pool2d(x, 3, 2, 1, mode="ave")[0, 0, 0, 0] == pytest.approx(4 / 9)


def last_maximum_wins():
    """A loop MAX pooling that scans with '>=': a tie goes to the *last* maximum (Caffe: the first)."""
    def argmax(x, kernel, stride, pad, est, mode, round_mode, pad_end):
        geo = pool_geometry("wrong", x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
        (kh, kw), (sh, sw), (ph, pw), (eh, ew) = geo.kernel, geo.stride, geo.pad, geo.est
        n, c, h, w = x.shape
        best = np.full(x.shape[:2] + geo.out_hw, -FLT_MAX, dtype=x.dtype)
        where = {}
        for b in range(n):
            for ch in range(c):
                for r in range(geo.out_hw[0]):
                    for q in range(geo.out_hw[1]):
                        for i in range(kh):
                            for j in range(kw):
                                u, v = sh * r - ph + i * eh, sw * q - pw + j * ew
                                if 0 <= u < h and 0 <= v < w and ((b, ch, r, q) not in where
                                                                  or x[b, ch, u, v] >= best[b, ch, r, q]):
                                    best[b, ch, r, q] = x[b, ch, u, v]
                                    where[(b, ch, r, q)] = (b, ch, u, v)
        return best, where

    def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        if mode == "ave":
            return reference_ops.pool2d(x, kernel, stride, pad, est, mode, round_mode, pad_end)
        return argmax(x, kernel, stride, pad, est, mode, round_mode, pad_end)[0]

    def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        if mode == "ave":
            return reference_ops.pool2d_backward(dy, x, kernel, stride, pad, est, mode, round_mode, pad_end)
        dx = np.zeros_like(x)
        for out, at in argmax(x, kernel, stride, pad, est, mode, round_mode, pad_end)[1].items():
            dx[at] += dy[out]
        return dx
    return types.SimpleNamespace(pool2d=pool2d, pool2d_backward=pool2d_backward)


def test_ties_sent_to_the_last_maximum_fail_on_the_tie_cases_only():
    report = verify(last_maximum_wins())
    assert not report.ok
    assert report.failed_cases == ["pool2d_hard_tie_overlap", "pool2d_hard_tie_est2_pad",
                                   "pool2d_hard_tie_constant_rect"]
    assert {(f.output, f.function) for f in report.failures} == {("dx", "pool2d_backward")}
    assert len(report.failures) == 6 and all(f.error >= 0.1 for f in report.failures)
    assert "first maximum in row-major tap order" in str(report)
    # everything else (forward values, every tie-free MAX case, AVE) agrees with the reference
    assert len(report.rows) == 2 * sum(outputs(c) for c in TABLE if c.op == "pool2d")


# ---- the report itself --------------------------------------------------------------------------

def test_exceptions_dtypes_and_unsupported_cases_are_reported():
    def deconv2d(*a, **k):
        raise RuntimeError("boom")

    def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", **k):
        if mode == "ave":
            raise NotImplementedError("no AVE here")
        return reference_ops.pool2d(x, kernel, stride, pad, est, mode, **k)
    impl = types.SimpleNamespace(
        conv2d=lambda x, w, b=None, **p: reference_ops.conv2d(x, w, b, **p).astype(np.float64),
        deconv2d=deconv2d, pool2d=pool2d)
    report = verify(impl, dtypes=(np.float32,), cases=table(count=2))
    assert not report.ok
    assert {f.function for f in report.failures} == {"conv2d", "deconv2d"}   # only forwards checked
    assert all(f.message == "dtype float64, expected float32" for f in report.failures if f.op == "conv2d")
    assert all(f.message == "raised RuntimeError: boom" for f in report.failures if f.op == "deconv2d")
    ave = [c.name for c in table("pool2d", count=2) if c.params["mode"] == "ave"]
    assert [u[0] for u in report.unsupported] == ave
    assert all(r[2] == "y" for r in report.rows)
    text = str(report)
    assert "y [float32]: raised RuntimeError: boom" in text
    assert "unsupported (pool2d): no AVE here: pool2d_hard_ceil_overhang_pad_ave" in text


def test_ops_selects_functions():
    report = verify(reference_ops, ops=["pool2d_backward"], cases=hard_cases())
    assert report.ok and {r[2] for r in report.rows} == {"dx"}
    assert {r[0].split("_")[0] for r in report.rows} == {"pool2d"}
    report = verify(reference_ops, ops=["conv2d"], dtypes=("float64",), cases=hard_cases())
    assert {r[2] for r in report.rows} == {"y", "dx", "dw", "db"} and len(report.rows) == 3 * 3 + 2
    with pytest.raises(ValueError, match="impl has no deconv2d"):
        verify(types.SimpleNamespace(conv2d=reference_ops.conv2d), ops=["deconv2d"])
    with pytest.raises(ValueError, match="unknown op"):
        verify(reference_ops, ops=["relu"])


def test_op_table_cotangents_fit_the_reference_outputs():
    for c in cases(count=40, seed=5) + hard_cases():
        assert c.dy.shape == c.spec.forward(reference_ops, c.arrays, c.params).shape, c.name


def test_report_names_the_empty_ave_window_convention():
    from reference.pool import EMPTY_AVE_WINDOW

    report = verify(reference_ops, ops=["pool2d"], dtypes=("float64",), cases=hard_cases("pool2d"))
    assert report.conventions == {EMPTY_AVE_WINDOW: ["pool2d_hard_window_past_end_ave"]}
    assert str(report).splitlines()[-1] == f"  {EMPTY_AVE_WINDOW}: 1 case (pool2d_hard_window_past_end_ave)"
