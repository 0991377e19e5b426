"""Deconvolution (reference.deconv2d / deconv2d_backward) against hand-computed literal arrays, and the
adjoint identities that tie it to eConv (Caffe's deconvolution is the transpose of its convolution)."""

import numpy as np
import pytest

import reference as ref


def A(rows, dtype=np.float64):
    """A (1, 1, h, w) array from nested lists."""
    return np.array(rows, dtype=dtype)[None, None]


# ---- forward -------------------------------------------------------------------------------------

def test_stride2_non_overlapping_1d():
    # x = [1, 2], w = [1, 10], s 2: x0 -> positions 0,1; x1 -> 2,3: [1, 10, 2, 20]
    y = ref.deconv2d(A([[1, 2]]), A([[1, 10]]), stride=2)
    np.testing.assert_array_equal(y, A([[1, 10, 2, 20]]))


def test_stride2_non_overlapping_2d():
    # k 2, s 2: out[2r + i, 2c + j] = x[r, c] * w[i, j]; out size 2*1 + 2 = 4
    #   row 0: x00*w0. , x01*w0. = [1, 2, 2, 4];  row 1: x00*w1., x01*w1. = [3, 4, 6, 8]
    #   row 2: x10*w0. , x11*w0. = [3, 6, 4, 8];  row 3: x10*w1., x11*w1. = [9, 12, 12, 16]
    y = ref.deconv2d(A([[1, 2], [3, 4]]), A([[1, 2], [3, 4]]), stride=2)
    np.testing.assert_array_equal(y, A([[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]]))


def test_stride2_overlapping_1d():
    # x = [1, 2, 3], w = [1, 2, 3], s 2, out 2*2 + 3 = 7:
    #   x0 -> [1, 2, 3] at 0..2; x1 -> [2, 4, 6] at 2..4; x2 -> [3, 6, 9] at 4..6
    #   sum: [1, 2, 3+2, 4, 6+3, 6, 9] = [1, 2, 5, 4, 9, 6, 9]
    y = ref.deconv2d(A([[1, 2, 3]]), A([[1, 2, 3]]), stride=2)
    np.testing.assert_array_equal(y, A([[1, 2, 5, 4, 9, 6, 9]]))


def test_stride2_overlapping_2d_and_pad_crop():
    # x = [[1, 2], [3, 4]], w = 3x3 ones, s 2, out 2*1 + 3 = 5
    # output row p is covered by x rows R: p0,p1 -> {0}; p2 -> {0, 1}; p3,p4 -> {1}  (columns alike)
    #   p0,1: [x00, x00, x00+x01, x01, x01] = [1, 1, 3, 2, 2]
    #   p2:   [x00+x10, ., all, x01+x11, .] = [4, 4, 10, 6, 6]
    #   p3,4: [x10, x10, x10+x11, x11, x11] = [3, 3, 7, 4, 4]
    x, w = A([[1, 2], [3, 4]]), np.ones((1, 1, 3, 3))
    full = [[1, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4], [3, 3, 7, 4, 4]]
    np.testing.assert_array_equal(ref.deconv2d(x, w, stride=2), A(full))
    # pad 1 crops one row/column from every border: size 5 - 2 = 3
    np.testing.assert_array_equal(ref.deconv2d(x, w, stride=2, pad=1),
                                  A([[1, 3, 2], [4, 10, 6], [3, 7, 4]]))


def test_pad_crop_1d_per_axis():
    # 1-D case of test_stride2_overlapping_1d with pad (0, 1): [1, 2, 5, 4, 9, 6, 9] -> drop both ends
    y = ref.deconv2d(A([[1, 2, 3]]), A([[1, 2, 3]]), stride=2, pad=(0, 1))
    np.testing.assert_array_equal(y, A([[2, 5, 4, 9, 6]]))


def test_est2_forward():
    # x = [1, 2], w = [1, 10], est 2 (ext 3)
    # s 1: out 1 + 3 = 4; x0 -> taps 0, 2: [1, 0, 10, 0]; x1 -> taps 1, 3: [0, 2, 0, 20] -> [1, 2, 10, 20]
    np.testing.assert_array_equal(ref.deconv2d(A([[1, 2]]), A([[1, 10]]), est=2),
                                  A([[1, 2, 10, 20]]))
    # s 2: out 2 + 3 = 5; x0 -> taps 0, 2; x1 -> taps 2, 4: [1, 0, 10 + 2, 0, 20]
    np.testing.assert_array_equal(ref.deconv2d(A([[1, 2]]), A([[1, 10]]), stride=2, est=2),
                                  A([[1, 0, 12, 0, 20]]))


def test_est2_2d_with_pad():
    # x = [[1]] (1x1), w = [[1, 2], [3, 4]], est 2: full 3x3 = [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    # pad 1 crops it to the centre 1x1: 0; pad (0, 1): the middle column [0, 0, 0]
    x, w = A([[1]]), A([[1, 2], [3, 4]])
    np.testing.assert_array_equal(ref.deconv2d(x, w, est=2), A([[1, 0, 2], [0, 0, 0], [3, 0, 4]]))
    np.testing.assert_array_equal(ref.deconv2d(x, w, est=2, pad=1), A([[0]]))
    np.testing.assert_array_equal(ref.deconv2d(x, w, est=2, pad=(0, 1)), A([[0], [0], [0]]))


def test_grouped_forward_with_bias():
    # x channels [1, 2] (1x1); w (C_in 2, O/G 2, 1, 1) = [[1, 10], [100, 1000]]
    # group 2 -> O = 4: channel 0 feeds outputs 0,1, channel 1 feeds 2,3: [1, 10, 200, 2000]; + b
    x = np.array([1.0, 2]).reshape(1, 2, 1, 1)
    w = np.array([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    y = ref.deconv2d(x, w, b=np.array([1.0, 2, 3, 4]), group=2)
    np.testing.assert_array_equal(y.ravel(), [2, 12, 203, 2004])
    # group 1 -> O = 2: y[o] = sum_c x[c] w[c, o] = [1 + 200, 10 + 2000]
    np.testing.assert_array_equal(ref.deconv2d(x, w).ravel(), [201, 2010])


def test_fcn_upscore_shape_and_bilinear_values():
    # Caffe's bilinear filler for k 4 has the profile [0.25, 0.75, 0.75, 0.25].  A constant 1 input (4x4),
    # s 2: full row p (size 2*3 + 4 = 10) gets the taps i = p - 2r of the rows r covering it:
    #   p0: .25; p1: .75; p2..p7: two windows, .75 + .25 or .25 + .75 = 1; p8: .75; p9: .25
    # pad 1 keeps p1..p8 = [.75, 1, 1, 1, 1, 1, 1, .75]; the 2-D result is the outer product
    prof = np.array([0.25, 0.75, 0.75, 0.25])
    w = np.outer(prof, prof)[None, None]
    y = ref.deconv2d(np.ones((1, 1, 4, 4)), w, stride=2, pad=1)
    assert y.shape == (1, 1, 8, 8)     # 2*3 + 4 - 2
    row = np.array([0.75, 1, 1, 1, 1, 1, 1, 0.75])
    np.testing.assert_array_equal(y[0, 0], np.outer(row, row))


# ---- backward ------------------------------------------------------------------------------------

def test_backward_overlapping_1d():
    # forward of test_stride2_overlapping_1d; dy = [1, 2, 3, 4, 5, 6, 7]
    # dx[c] = sum_i w[i] dy[2c + i]: dx0 = 1*1 + 2*2 + 3*3 = 14; dx1 = 3 + 8 + 15 = 26; dx2 = 5 + 12 + 21 = 38
    # dw[i] = sum_c x[c] dy[2c + i]: dw0 = 1*1 + 2*3 + 3*5 = 22; dw1 = 2 + 8 + 18 = 28; dw2 = 3 + 10 + 21 = 34
    # db = 1 + ... + 7 = 28
    dx, dw, db = ref.deconv2d_backward(A([[1, 2, 3, 4, 5, 6, 7]]), A([[1, 2, 3]]), A([[1, 2, 3]]),
                                       stride=2)
    np.testing.assert_array_equal(dx, A([[14, 26, 38]]))
    np.testing.assert_array_equal(dw, A([[22, 28, 34]]))
    np.testing.assert_array_equal(db, [28])


def test_backward_with_pad():
    # pad (0, 1): dy = [1, 2, 3, 4, 5] is full[1:6]; dfull = [0, 1, 2, 3, 4, 5, 0]
    # dx0 = 1*0 + 2*1 + 3*2 = 8; dx1 = 1*2 + 2*3 + 3*4 = 20; dx2 = 1*4 + 2*5 + 3*0 = 14
    # dw0 = 1*0 + 2*2 + 3*4 = 16; dw1 = 1*1 + 2*3 + 3*5 = 22; dw2 = 1*2 + 2*4 + 3*0 = 10; db = 15
    dx, dw, db = ref.deconv2d_backward(A([[1, 2, 3, 4, 5]]), A([[1, 2, 3]]), A([[1, 2, 3]]),
                                       stride=2, pad=(0, 1))
    np.testing.assert_array_equal(dx, A([[8, 20, 14]]))
    np.testing.assert_array_equal(dw, A([[16, 22, 10]]))
    np.testing.assert_array_equal(db, [15])


def test_backward_est2():
    # forward x = [1, 2], w = [1, 10], s 2, est 2 -> full positions: x0 at 0, 2; x1 at 2, 4
    # dy = [1, 2, 3, 4, 5]: dx0 = 1*dy0 + 10*dy2 = 1 + 30 = 31; dx1 = dy2 + 10*dy4 = 3 + 50 = 53
    # dw0 = x0 dy0 + x1 dy2 = 1 + 6 = 7; dw1 = x0 dy2 + x1 dy4 = 3 + 10 = 13
    dx, dw, db = ref.deconv2d_backward(A([[1, 2, 3, 4, 5]]), A([[1, 2]]), A([[1, 10]]),
                                       stride=2, est=2, bias=False)
    np.testing.assert_array_equal(dx, A([[31, 53]]))
    np.testing.assert_array_equal(dw, A([[7, 13]]))
    assert db is None


def test_backward_grouped():
    # forward of test_grouped_forward_with_bias (group 2), dy = [1, 2, 3, 4]
    # dx0 = w00 dy0 + w01 dy1 = 1 + 20 = 21;  dx1 = w10 dy2 + w11 dy3 = 300 + 4000 = 4300
    # dw[c, o] = x[c] dy[2c + o] = [[1*1, 1*2], [2*3, 2*4]]; db = dy
    x = np.array([1.0, 2]).reshape(1, 2, 1, 1)
    w = np.array([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    dx, dw, db = ref.deconv2d_backward(np.array([1.0, 2, 3, 4]).reshape(1, 4, 1, 1), x, w, group=2)
    np.testing.assert_array_equal(dx.ravel(), [21, 4300])
    np.testing.assert_array_equal(dw.reshape(2, 2), [[1, 2], [6, 8]])
    np.testing.assert_array_equal(db, [1, 2, 3, 4])


# ---- adjoint identities --------------------------------------------------------------------------

CASES = [
    dict(stride=1, pad=0, est=1, group=1),
    dict(stride=2, pad=0, est=1, group=1),
    dict(stride=2, pad=1, est=1, group=2),
    dict(stride=3, pad=2, est=2, group=1),
    dict(stride=(2, 1), pad=(1, 3), est=(3, 2), group=2),
    dict(stride=1, pad=2, est=2, group=4),
]


@pytest.mark.parametrize("case", CASES)
def test_adjoint_of_conv(case):
    """<deconv2d(x, w), g> == <x, conv2d(g, w)>, with the same w: conv2d reads (C, O/G, kh, kw) as
    (O' = C, C'/G = O/G, kh, kw)."""
    rng = np.random.default_rng(3)
    group = case["group"]
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 8 // group, 3, 2))
    y = ref.deconv2d(x, w, **case)
    assert y.shape[:2] == (2, 8)
    g = rng.standard_normal(y.shape)
    lhs = np.sum(y * g)
    cg = ref.conv2d(g, w, **case)
    assert cg.shape == x.shape
    rhs = np.sum(x * cg)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs), np.abs(y * g).sum())
    # the ops' own backward passes are the same transposes
    dx_conv, dw_conv, _ = ref.conv2d_backward(x, g, w, **case)   # conv of g with output grad x
    np.testing.assert_allclose(dx_conv, y, rtol=1e-12, atol=1e-12)
    dx_dec, dw_dec, db_dec = ref.deconv2d_backward(g, x, w, **case)
    np.testing.assert_allclose(dx_dec, cg, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw_dec, dw_conv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db_dec, g.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(dtype):
    y = ref.deconv2d(A([[1, 2]], dtype), A([[1, 10]]), b=np.array([0.5]), stride=2)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, A([[1.5, 10.5, 2.5, 20.5]]))
    dx, dw, db = ref.deconv2d_backward(np.ones_like(y), A([[1, 2]], dtype), A([[1, 10]]), stride=2)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    # dx[c] = 1 + 10; dw[i] = x0 + x1 = 3; db = 4
    np.testing.assert_array_equal(dx, A([[11, 11]]))
    np.testing.assert_array_equal(dw, A([[3, 3]]))
    np.testing.assert_array_equal(db, [4])
