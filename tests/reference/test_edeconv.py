"""The equivalent deconvolution (reference.edeconv): a literal example, the defining identity (dense
output phase q = deconv2d of input fragment q), gradients in float64, and bad input."""

import itertools

import numpy as np
import pytest

import reference as ref
from reference.edeconv import edeconv2d, edeconv2d_backward
from reference.gradient_check import check_adjoint, check_function
from reference.sizes import edeconv_out_size, phase_lengths


def test_worked_example_1d():
    # fragments x_0 = [1, 2] at 0, 4 and x_1 = [5] at 1 (E_in = s*E = 4); deconv2d (w = [1, 10],
    # s 2): y_0 = [1, 10, 2, 20] at 0, 2, 4, 6 and y_1 = [5, 50] at 1, 3; position 5 is past y_1's end
    x = np.array([1, 5, 0, 0, 2.])[None, None, None]
    w = np.array([1, 10.])[None, None, None]
    y = edeconv2d(x, w, stride=(1, 2), grid=(1, 2))
    np.testing.assert_array_equal(y[0, 0, 0], [1, 5, 10, 50, 2, 0, 20])


def test_phases_past_the_grid_are_not_read():
    # positions 2 and 3 (phases q >= E) belong to fragments the upsampling has no place for
    x = np.array([1, 5, 7, 9, 2.])[None, None, None]
    w = np.array([1, 10.])[None, None, None]
    y = edeconv2d(x, w, stride=(1, 2), grid=(1, 2))
    np.testing.assert_array_equal(y[0, 0, 0], [1, 5, 10, 50, 2, 0, 20])


def test_output_sizes():
    assert phase_lengths(7, 3) == [3, 2, 2]
    assert edeconv_out_size(5, 2, 2, 0, 1, 2) == 7     # the worked example
    assert edeconv_out_size(9, 4, 2, 1, 1, 1) == 2 * (5 - 1) + 4 - 2   # grid 1: the original's size


CASES = [  # (stride, pad, est, grid, kernel, group, size)
    ((2, 2), (0, 0), (1, 1), (2, 2), (4, 4), 1, (11, 13)),
    ((2, 3), (1, 0), (1, 1), (2, 3), (4, 3), 1, (14, 17)),
    ((2, 2), (0, 1), (2, 1), (4, 1), (3, 4), 2, (19, 9)),
    ((3, 2), (1, 1), (1, 1), (1, 2), (5, 4), 1, (10, 12)),
]


def _fragment(xd, q, step):
    return xd[..., q[0]::step[0], q[1]::step[1]]


@pytest.mark.parametrize("case", CASES, ids=[f"s{c[0]}_p{c[1]}_d{c[2]}_E{c[3]}" for c in CASES])
def test_each_output_phase_is_the_deconvolution_of_its_input_fragment(case):
    stride, pad, est, grid, kernel, group, size = case
    rng = np.random.default_rng(0)
    c, o = 2 * group, 3 * group
    xd = rng.normal(size=(2, c) + size)
    w = rng.normal(size=(c, o // group) + kernel)
    b = rng.normal(size=o)
    yd = edeconv2d(xd, w, b, stride, pad, est, group, grid)
    step_in = (stride[0] * grid[0], stride[1] * grid[1])
    valid = np.zeros(yd.shape[2:], dtype=bool)
    for q in itertools.product(range(grid[0]), range(grid[1])):
        xq = _fragment(xd, q, step_in)
        if 0 in xq.shape:
            continue
        yq = ref.deconv2d(xq, w, b, stride, pad, est, group)
        got = _fragment(yd, q, grid)[..., :yq.shape[2], :yq.shape[3]]
        assert got.shape == yq.shape, q
        np.testing.assert_allclose(got, yq, rtol=0, atol=1e-12)
        valid[q[0]::grid[0], q[1]::grid[1]][:yq.shape[2], :yq.shape[3]] = True
    # outside every fragment's extent only the bias remains (nothing is read there)
    outside = yd[..., ~valid]                       # (N, O, positions)
    np.testing.assert_allclose(outside, np.broadcast_to(b[None, :, None], outside.shape), atol=1e-12)
    assert valid.any() and yd.shape[2:] == tuple(
        edeconv_out_size(size[a], kernel[a], stride[a], pad[a], est[a], grid[a]) for a in (0, 1))


@pytest.mark.parametrize("case", CASES[:3], ids=[f"s{c[0]}_E{c[3]}" for c in CASES[:3]])
def test_gradients_float64(case):
    stride, pad, est, grid, kernel, group, _ = case
    size = (stride[0] * grid[0] + 2, stride[1] * grid[1] + 1)   # tiny: exhaustive per element
    rng = np.random.default_rng(1)
    c, o = group, 2 * group
    arrays = {"x": rng.normal(size=(1, c) + size), "w": rng.normal(size=(c, o // group) + kernel),
              "b": rng.normal(size=o)}
    params = dict(stride=stride, pad=pad, est=est, group=group, grid=grid)

    def f(a):
        return [edeconv2d(a["x"], a["w"], a["b"], **params)]

    def vjp(a, cot):
        dx, dw, db = edeconv2d_backward(cot[0], a["x"], a["w"], **params)
        return {"x": dx, "w": dw, "b": db}

    check_function(f, vjp, arrays, exhaustive=True, max_exhaustive=2000,
                   target="edeconv2d").assert_ok()
    y_shape = f(arrays)[0].shape
    check_adjoint(lambda t: edeconv2d(t, arrays["w"], None, **params),
                  lambda g: edeconv2d_backward(g, arrays["x"], arrays["w"], **params)[0],
                  arrays["x"].shape, y_shape, target="edeconv2d dx").assert_ok()
    check_adjoint(lambda t: edeconv2d(arrays["x"], t, None, **params),
                  lambda g: edeconv2d_backward(g, arrays["x"], arrays["w"], **params)[1],
                  arrays["w"].shape, y_shape, target="edeconv2d dw").assert_ok()


def test_float32_in_float32_out():
    x = np.ones((1, 1, 5, 5), np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    assert edeconv2d(x, w, stride=2, grid=2).dtype == np.float32


@pytest.mark.parametrize("kwargs, message", [
    (dict(grid=0), "grid"),
    (dict(stride=0), "stride"),
    (dict(w=np.ones((3, 1, 2, 2))), "input channels"),
    (dict(group=2), "group"),
])
def test_bad_arguments(kwargs, message):
    args = dict(x=np.ones((1, 1, 5, 5)), w=np.ones((1, 1, 2, 2)), stride=2, grid=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        edeconv2d(**args)
