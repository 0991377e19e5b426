"""eConv (reference.conv2d / conv2d_backward) against hand-computed literal arrays.

Notation in the comments: x[r, c] of a 4x4 ``np.arange(16)`` input is ``4r + c``."""

import numpy as np
import pytest

import reference as ref
from reference.windows import dilate


def A(rows, dtype=np.float64):
    """A (1, 1, h, w) array from nested lists."""
    return np.array(rows, dtype=dtype)[None, None]


X44 = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)   # x[r, c] = 4r + c
W22 = A([[1, 2], [3, 4]])


# ---- forward -------------------------------------------------------------------------------------

def test_plain_forward_with_bias():
    # y[r, c] = x[r,c] + 2 x[r,c+1] + 3 x[r+1,c] + 4 x[r+1,c+1]
    #         = 10(4r + c) + 2*1 + 3*4 + 4*5 = 40r + 10c + 34;  then + b = 1
    y = ref.conv2d(X44, W22, b=np.array([1.0]))
    np.testing.assert_array_equal(y, A([[35, 45, 55], [75, 85, 95], [115, 125, 135]]))


def test_est2_forward():
    # taps 2 apart: y[r, c] = x[r,c] + 2 x[r,c+2] + 3 x[r+2,c] + 4 x[r+2,c+2]
    #             = 10(4r + c) + 2*2 + 3*8 + 4*10 = 40r + 10c + 68;  ext 3 -> 2x2 output
    y = ref.conv2d(X44, W22, est=2)
    np.testing.assert_array_equal(y, A([[68, 78], [108, 118]]))


def test_est2_docstring_example():
    # x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,10],[100,1000]], est 2: 1*1 + 10*3 + 100*7 + 1000*9
    x = A([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    y = ref.conv2d(x, A([[1, 10], [100, 1000]]), est=2)
    np.testing.assert_array_equal(y, A([[9731]]))


def test_est_per_axis():
    # est (1, 2): rows adjacent, columns 2 apart; ext (2, 3) -> output 3x2
    # y[r, c] = x[r,c] + 2 x[r,c+2] + 3 x[r+1,c] + 4 x[r+1,c+2] = 10(4r + c) + 4 + 12 + 24 = 40r + 10c + 40
    y = ref.conv2d(X44, W22, est=(1, 2))
    np.testing.assert_array_equal(y, A([[40, 50], [80, 90], [120, 130]]))


def test_stride_and_pad_forward():
    # 3x3 ones, stride 2, pad 1: out floor((4 + 2 - 3)/2) + 1 = 2; row/col windows [-1,2) and [1,4)
    # y00 = x[0:2,0:2] = 0+1+4+5 = 10        y01 = x[0:2,1:4] = 1+2+3+5+6+7 = 24
    # y10 = x[1:4,0:2] = 4+5+8+9+12+13 = 51  y11 = x[1:4,1:4] = 5+6+7+9+10+11+13+14+15 = 90
    y = ref.conv2d(X44, np.ones((1, 1, 3, 3)), stride=2, pad=1)
    np.testing.assert_array_equal(y, A([[10, 24], [51, 90]]))


def test_stride_and_pad_pairs():
    # x = arange(12) as 3x4 (x[r,c] = 4r + c), w = [[2]], stride (2, 3), pad (0, 1)
    # out h = (3 - 1)//2 + 1 = 2, out w = (4 + 2 - 1)//3 + 1 = 2
    # y[r, c] = 2 * x[2r, 3c - 1]: c = 0 reads the padding -> 0; c = 1 reads column 2
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    y = ref.conv2d(x, A([[2]]), stride=(2, 3), pad=(0, 1))
    np.testing.assert_array_equal(y, A([[0, 2 * 2], [0, 2 * 10]]))


def test_est_with_pad_and_stride():
    # row x = [1, 2, 3, 4, 5] (1x5), w = [[1, 10]], est 2 (ext 3), pad (0, 2), stride (1, 2)
    # out w = floor((5 + 4 - 3)/2) + 1 = 4; output c reads xp[2c] and xp[2c + 2], xp = [0,0,1,2,3,4,5,0,0]
    # c0: 0 + 10*1 = 10; c1: 1 + 10*3 = 31; c2: 3 + 10*5 = 53; c3: 5 + 10*0 = 5
    x = A([[1, 2, 3, 4, 5]])
    y = ref.conv2d(x, A([[1, 10]]), stride=(1, 2), pad=(0, 2), est=2)
    np.testing.assert_array_equal(y, A([[10, 31, 53, 5]]))


def test_grouped_forward():
    # x channels [1, 2, 3, 4] (1x1 each); group 2, w (2, 2, 1, 1) = [[1, 10], [100, 1000]]
    # y0 = 1*1 + 10*2 = 21 (channels 0,1);  y1 = 100*3 + 1000*4 = 4300 (channels 2,3)
    x = np.array([1.0, 2, 3, 4]).reshape(1, 4, 1, 1)
    w = np.array([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    y = ref.conv2d(x, w, group=2)
    np.testing.assert_array_equal(y.ravel(), [21, 4300])
    # four outputs, two per group: w rows 0,1 see channels 0,1; rows 2,3 see channels 2,3
    # y = [1+2, 1-2, 3+4, 3*2+4*0.5] = [3, -1, 7, 8]
    w4 = np.array([[1.0, 1], [1, -1], [1, 1], [2, 0.5]]).reshape(4, 2, 1, 1)
    np.testing.assert_array_equal(ref.conv2d(x, w4, group=2).ravel(), [3, -1, 7, 8])


def test_grouped_spatial_forward():
    # two 2x2 channels, group 2, one 2x2 kernel each, output 1x1 per channel
    # ch0 = [[1,2],[3,4]] * [[1,0],[0,1]] = 1 + 4 = 5;  ch1 = [[5,6],[7,8]] * [[0,1],[1,0]] = 6 + 7 = 13
    x = np.array([[[1.0, 2], [3, 4]], [[5, 6], [7, 8]]])[None]
    w = np.array([[[1.0, 0], [0, 1]], [[0, 1], [1, 0]]])[:, None]
    y = ref.conv2d(x, w, b=np.array([0.5, -0.5]), group=2)
    np.testing.assert_array_equal(y.ravel(), [5.5, 12.5])


def test_multi_channel_multi_batch_forward():
    # N = 2, C = 2, 1x1: y[n, o] = sum_c w[o, c] x[n, c]; w = [[1, 2], [3, 4]] (O=2, C=2)
    # n0: x = [1, 1] -> [3, 7];  n1: x = [2, -1] -> [0, 2]
    x = np.array([[1.0, 1], [2, -1]]).reshape(2, 2, 1, 1)
    w = np.array([[1.0, 2], [3, 4]]).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(ref.conv2d(x, w)[:, :, 0, 0], [[3, 7], [0, 2]])


# ---- backward ------------------------------------------------------------------------------------

def test_backward_est2_single_output():
    # x = 1..9 (3x3), w = [[1,10],[100,1000]], est 2 -> one output reading x00, x02, x20, x22
    # dy = 2: dw = 2 * [[x00, x02], [x20, x22]] = 2 * [[1, 3], [7, 9]]; db = 2
    # dx: 2*w scattered to (0,0), (0,2), (2,0), (2,2)
    x = A([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    w = A([[1, 10], [100, 1000]])
    dx, dw, db = ref.conv2d_backward(A([[2]]), x, w, est=2)
    np.testing.assert_array_equal(dw, A([[2, 6], [14, 18]]))
    np.testing.assert_array_equal(db, [2])
    np.testing.assert_array_equal(dx, A([[2, 0, 20], [0, 0, 0], [200, 0, 2000]]))


def test_backward_est2_dense():
    # x = arange(16) 4x4, w = [[1,2],[3,4]], est 2 -> 2x2 output, dy = [[1,2],[3,4]]
    # each x[p, q] is read by exactly one tap: i = p//2, r = p%2 (likewise j, c), so
    # dx[p, q] = w[p//2, q//2] * dy[p%2, q%2]
    #   p=0: w row 0 [1,2] x dy row 0 [1,2] -> [1*1, 1*2, 2*1, 2*2] = [1, 2, 2, 4]
    #   p=1: w row 0 x dy row 1 [3,4]        -> [3, 4, 6, 8]
    #   p=2: w row 1 [3,4] x dy row 0        -> [3, 6, 4, 8]
    #   p=3: w row 1 x dy row 1              -> [9, 12, 12, 16]
    # dw[i, j] = sum dy[r,c] x[r+2i, c+2j] = sum dy (4r + c) + (8i + 2j) sum dy
    #          = (0 + 2 + 12 + 20) + 10 (8i + 2j) = 34 + 80i + 20j
    # db = 1 + 2 + 3 + 4 = 10
    dy = A([[1, 2], [3, 4]])
    dx, dw, db = ref.conv2d_backward(dy, X44, W22, est=2)
    np.testing.assert_array_equal(dx, A([[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]]))
    np.testing.assert_array_equal(dw, A([[34, 54], [114, 134]]))
    np.testing.assert_array_equal(db, [10])


def test_backward_stride_pad():
    # 3x3 ones, stride 2, pad 1, dy = [[1, 10], [100, 1000]]; windows [-1,2) and [1,4) per axis
    # dx[p, q] = sum of dy over the windows containing (p, q): rows 0 -> {0}, 1 -> {0,1}, 2,3 -> {1}
    #   row 0: [1, 1+10, 10, 10];  row 1: [1+100, 1+10+100+1000, 10+1000, 10+1000]
    #   rows 2, 3: [100, 100+1000, 1000, 1000]
    # dw[i, j] = sum dy[r,c] xp[2r + i, 2c + j] (xp = x padded by 1, x[a,b] = 4a + b)
    #   dw[0,0] = 1*xp[0,0] + 10*xp[0,2] + 100*xp[2,0] + 1000*xp[2,2] = 0 + 0 + 0 + 1000*x[1,1] = 5000
    #   dw[1,1] = x[0,0] + 10 x[0,2] + 100 x[2,0] + 1000 x[2,2] = 0 + 20 + 800 + 10000 = 10820
    #   dw[2,2] = x[1,1] + 10 x[1,3] + 100 x[3,1] + 1000 x[3,3] = 5 + 70 + 1300 + 15000 = 16375
    dy = A([[1, 10], [100, 1000]])
    dx, dw, db = ref.conv2d_backward(dy, X44, np.ones((1, 1, 3, 3)), stride=2, pad=1)
    np.testing.assert_array_equal(dx, A([[1, 11, 10, 10],
                                         [101, 1111, 1010, 1010],
                                         [100, 1100, 1000, 1000],
                                         [100, 1100, 1000, 1000]]))
    assert dw[0, 0, 0, 0] == 5000
    assert dw[0, 0, 1, 1] == 10820
    assert dw[0, 0, 2, 2] == 16375
    np.testing.assert_array_equal(db, [1111])


def test_backward_grouped_and_no_bias():
    # grouped 1x1 case of test_grouped_forward with dy = [1, 1]:
    # dx = [w00, w01, w10, w11] = [1, 10, 100, 1000]; dw = [[x0, x1], [x2, x3]] = [[1, 2], [3, 4]]
    x = np.array([1.0, 2, 3, 4]).reshape(1, 4, 1, 1)
    w = np.array([[1.0, 10], [100, 1000]]).reshape(2, 2, 1, 1)
    dx, dw, db = ref.conv2d_backward(np.ones((1, 2, 1, 1)), x, w, group=2, bias=False)
    np.testing.assert_array_equal(dx.ravel(), [1, 10, 100, 1000])
    np.testing.assert_array_equal(dw.reshape(2, 2), [[1, 2], [3, 4]])
    assert db is None


# ---- identities and dtypes ---------------------------------------------------------------------

@pytest.mark.parametrize("est, stride, pad, group", [
    (2, 1, 0, 1), (2, 2, 1, 1), (3, 1, 3, 2), ((2, 3), (1, 2), (2, 1), 1), (4, 3, 0, 2)])
def test_est_equals_dilated_kernel(est, stride, pad, group):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 13, 12))
    w = rng.standard_normal((6, 4 // group, 3, 2))
    b = rng.standard_normal(6)
    e = est if isinstance(est, tuple) else (est, est)
    y = ref.conv2d(x, w, b, stride=stride, pad=pad, est=est, group=group)
    y_dil = ref.conv2d(x, dilate(w, e), b, stride=stride, pad=pad, group=group)
    np.testing.assert_allclose(y, y_dil, rtol=1e-12, atol=1e-12)
    # backward: dx and db agree; dw is the dilated kernel's gradient at the taps
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride=stride, pad=pad, est=est, group=group)
    dx2, dw2, db2 = ref.conv2d_backward(dy, x, dilate(w, e), stride=stride, pad=pad, group=group)
    np.testing.assert_allclose(dx, dx2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw2[..., ::e[0], ::e[1]], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(dtype):
    x = X44.astype(dtype)
    y = ref.conv2d(x, W22.astype(np.float64), b=np.array([1.0]))  # float64 weights do not promote
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, A([[35, 45, 55], [75, 85, 95], [115, 125, 135]]))
    dx, dw, db = ref.conv2d_backward(np.ones_like(y), x, W22, est=1)
    assert dx.dtype == dw.dtype == db.dtype == dtype
