"""ePool (reference.pool2d / pool2d_backward) against hand-computed literal arrays: Caffe's ceil windows,
padding and the AVE divisor, floor mode, est, pad_end, global kernels, the tie rule, NaN and the
degenerate unpadded case (CAFFE_FACTS 3.1).

Notation: x[r, c] of a 5x5 ``np.arange(25)`` is ``5r + c``; of a 4x4 ``np.arange(16)`` it is ``4r + c``.
A 1-D row ``[a, b, ...]`` is a (1, 1, 1, W) array pooled with kernel (1, k), stride (1, s), pad (0, p)."""

import numpy as np
import pytest

import reference as ref

FLT_MAX = 3.4028234663852886e38   # float32 max; Caffe's MAX accumulator starts at -FLT_MAX


def A(rows, dtype=np.float64):
    """A (1, 1, h, w) array from nested lists."""
    return np.array(rows, dtype=dtype)[None, None]


def row(values, dtype=np.float64):
    return np.array(values, dtype=dtype).reshape(1, 1, 1, -1)


def pool_row(values, k, s=1, p=0, **kw):
    """1-D pooling of a row: kernel (1, k), stride (1, s), pad (0, p); returns the output row."""
    pe = kw.pop("pad_end", 0)
    return ref.pool2d(row(values), (1, k), (1, s), (0, p), pad_end=(0, pe), **kw)[0, 0, 0]


def pool_row_back(dy, values, k, s=1, p=0, **kw):
    pe = kw.pop("pad_end", 0)
    return ref.pool2d_backward(row(dy), row(values), (1, k), (1, s), (0, p), pad_end=(0, pe),
                               **kw)[0, 0, 0]


X55 = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
X44 = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)


# ---- ceil windows that hang over the edge ---------------------------------------------------------

def test_max_ceil_overhang():
    # 5x5, k 2, s 2: out ceil(3/2) + 1 = 3; row windows [0,2), [2,4), [4,5) (the last one 1 wide)
    # max = x[last row of window, last col of window]: rows 1, 3, 4; cols 1, 3, 4 -> 5r' + c'
    y = ref.pool2d(X55, 2, 2, mode="max")
    np.testing.assert_array_equal(y, A([[6, 8, 9], [16, 18, 19], [21, 23, 24]]))


def test_ave_ceil_overhang_divisor_excludes_overhang():
    # same windows, p = 0: end = min(start + 2, H + 0) -> divisors per axis [2, 2, 1]
    # y00 = (0+1+5+6)/4 = 3     y01 = (2+3+7+8)/4 = 5       y02 = (4+9)/2 = 6.5
    # y10 = (10+11+15+16)/4 = 13 y11 = (12+13+17+18)/4 = 15 y12 = (14+19)/2 = 16.5
    # y20 = (20+21)/2 = 20.5     y21 = (22+23)/2 = 22.5     y22 = 24/1 = 24
    y = ref.pool2d(X55, 2, 2, mode="ave")
    np.testing.assert_array_equal(y, A([[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]))


def test_ave_padding_divisor_counts_padding_up_to_H_plus_p():
    # H = W = 4, k 3, s 2, p 1 -> out 3; windows [-1,2)/3, [1,4)/3, [3,5)/2 per axis
    # real rows per window R = {0,1}, {1,2,3}, {3}; y[a,b] = sum_{R_a x C_b} (4r + c) / (d_a d_b)
    #   y00 = (0+1+4+5)/9 = 10/9            y01 = (1+2+3+5+6+7)/9 = 24/9       y02 = (3+7)/6 = 10/6
    #   y10 = (4+5+8+9+12+13)/9 = 51/9      y11 = (5+6+7+9+10+11+13+14+15)/9 = 10  y12 = (7+11+15)/6 = 33/6
    #   y20 = (12+13)/6 = 25/6              y21 = (13+14+15)/6 = 7             y22 = 15/4
    y = ref.pool2d(X44, 3, 2, 1, mode="ave")
    expected = A([[10 / 9, 24 / 9, 10 / 6], [51 / 9, 10, 33 / 6], [25 / 6, 7, 15 / 4]])
    np.testing.assert_allclose(y, expected, rtol=1e-15)


def test_ave_padding_all_ones_docstring():
    # all ones: y00 = 4/9, y11 = 9/9, y22 = 1/4 (window [3,5) x [3,5): one real value, divisor 2*2)
    y = ref.pool2d(np.ones((1, 1, 4, 4)), 3, 2, 1, mode="ave")
    np.testing.assert_allclose(y, A([[4 / 9, 6 / 9, 2 / 6], [6 / 9, 1, 3 / 6], [2 / 6, 3 / 6, 1 / 4]]),
                               rtol=1e-15)


def test_max_padding_never_wins():
    # same geometry, MAX: max over the real rows/cols {0,1},{1,2,3},{3} -> 4*maxR + maxC, maxR = [1, 3, 3]
    y = ref.pool2d(X44, 3, 2, 1, mode="max")
    np.testing.assert_array_equal(y, A([[5, 7, 7], [13, 15, 15], [13, 15, 15]]))
    # all negative: zero padding must not win
    y = ref.pool2d(-1.0 - X44, 3, 2, 1, mode="max")
    # -1 - (4 minR + minC), minR = [0, 1, 3]
    np.testing.assert_array_equal(y, A([[-1, -2, -4], [-5, -6, -8], [-13, -14, -16]]))


def test_clip_rule_row():
    # W = 3, k 2, s 2, p 1: ceil((3+2-2)/2) + 1 = 3, clipped to 2; windows [-1,1), [1,3)
    assert pool_row([1, 2, 3], 2, 2, 1, mode="max").tolist() == [1, 3]
    # AVE: (0 + 1)/2, (2 + 3)/2
    assert pool_row([1, 2, 3], 2, 2, 1, mode="ave").tolist() == [0.5, 2.5]


# ---- floor mode ------------------------------------------------------------------------------------

def test_floor_mode():
    # 5x5, k 2, s 2, floor: out floor(3/2) + 1 = 2; the 1-wide last windows disappear
    np.testing.assert_array_equal(ref.pool2d(X55, 2, 2, mode="max", round_mode="floor"),
                                  A([[6, 8], [16, 18]]))
    np.testing.assert_array_equal(ref.pool2d(X55, 2, 2, mode="ave", round_mode="floor"),
                                  A([[3, 5], [13, 15]]))
    # H = 4, k 3, s 2, p 1, floor: floor(3/2) + 1 = 2 -> windows [-1,2)/3, [1,4)/3
    np.testing.assert_allclose(ref.pool2d(X44, 3, 2, 1, mode="ave", round_mode="floor"),
                               A([[10 / 9, 24 / 9], [51 / 9, 10]]), rtol=1e-15)


# ---- est --------------------------------------------------------------------------------------------

def test_est2_row_docstring():
    # row [5, 1, 7, 3, 2], k 2, est 2: windows {x0, x2}, {x1, x3}, {x2, x4} -> [7, 3, 7]
    assert pool_row([5, 1, 7, 3, 2], 2, est=(1, 2), mode="max").tolist() == [7, 3, 7]
    # AVE: [(5+7)/2, (1+3)/2, (7+2)/2]
    assert pool_row([5, 1, 7, 3, 2], 2, est=(1, 2), mode="ave").tolist() == [6, 2, 4.5]


def test_est2_2d():
    # 5x5, k 2, est 2 (ext 3), s 1 -> 3x3; taps x[r, c], x[r, c+2], x[r+2, c], x[r+2, c+2]
    # MAX = x[r+2, c+2] = 5r + c + 12; AVE = 5r + c + (0 + 2 + 10 + 12)/4 = 5r + c + 6
    np.testing.assert_array_equal(ref.pool2d(X55, 2, 1, est=2, mode="max"),
                                  A([[12, 13, 14], [17, 18, 19], [22, 23, 24]]))
    np.testing.assert_array_equal(ref.pool2d(X55, 2, 1, est=2, mode="ave"),
                                  A([[6, 7, 8], [11, 12, 13], [16, 17, 18]]))


def test_est2_stride2_ceil_overhang():
    # 4x4, k 2, est 2 (ext 3), s 2: ceil(1/2) + 1 = 2; window starts 0, 2 -> taps {0, 2}, {2, 4}; 4 is
    # past H (p = 0) so the second window has 1 tap per axis
    # AVE: y00 = (x00 + x02 + x20 + x22)/4 = (0 + 2 + 8 + 10)/4 = 5; y01 = (x02 + x22)/2 = (2 + 10)/2 = 6
    #      y10 = (x20 + x22)/2 = 9; y11 = x22 = 10
    np.testing.assert_array_equal(ref.pool2d(X44, 2, 2, est=2, mode="ave"), A([[5, 6], [9, 10]]))
    # MAX: every window contains x22 = 10 as its largest value
    np.testing.assert_array_equal(ref.pool2d(X44, 2, 2, est=2, mode="max"), A([[10, 10], [10, 10]]))


def test_est_with_pad():
    # row [1, 2, 3, 4, 5], k 2, est 2 (ext 3), pad 1, s 1: out ceil((5+2-3)/1) + 1 = 5
    # window o has taps o-1 and o+1: {-1,1}, {0,2}, {1,3}, {2,4}, {3,5}; -1 and 5 are padding
    # MAX: [x1, max(x0,x2), max(x1,x3), max(x2,x4), x3] = [2, 3, 4, 5, 4]
    assert pool_row([1, 2, 3, 4, 5], 2, 1, 1, est=(1, 2), mode="max").tolist() == [2, 3, 4, 5, 4]
    # AVE: both taps lie in [-1, 6), divisor 2 always: [(0+2)/2, (1+3)/2, (2+4)/2, (3+5)/2, (4+0)/2]
    assert pool_row([1, 2, 3, 4, 5], 2, 1, 1, est=(1, 2), mode="ave").tolist() == [1, 2, 3, 4, 2]


# ---- pad_end ----------------------------------------------------------------------------------------

def test_pad_end_max_ignores_absent_positions():
    # row [-1, -2, -3], k 2, s 1, pad_end 1: out 3 (2 without); windows [0,2), [1,3), [2,4) where
    # position 3 is absent: it never wins, even against negative values
    assert pool_row([-1, -2, -3], 2, pad_end=1, mode="max").tolist() == [-1, -2, -3]
    assert pool_row([-1, -2, -3], 2, mode="max").tolist() == [-1, -2]


def test_pad_end_ave_does_not_count_absent_positions():
    # same windows, AVE: [(-1-2)/2, (-2-3)/2, -3/1]
    assert pool_row([-1, -2, -3], 2, pad_end=1, mode="ave").tolist() == [-1.5, -2.5, -3]


def test_pad_end_with_est():
    # row [1, 2, 3, 4, 5], k 2, est 2 (ext 3), pad_end 2: out 5; taps (o, o+2): o = 3 -> {x3}, o = 4 -> {x4}
    # MAX: [max(1,3), max(2,4), max(3,5), 4, 5]; AVE: [2, 3, 4, 4/1, 5/1]
    assert pool_row([1, 2, 3, 4, 5], 2, est=(1, 2), pad_end=2, mode="max").tolist() == [3, 4, 5, 4, 5]
    assert pool_row([1, 2, 3, 4, 5], 2, est=(1, 2), pad_end=2, mode="ave").tolist() == [2, 3, 4, 4, 5]


def test_pad_end_backward():
    # AVE, windows of test_pad_end_ave...: dy = [2, 4, 6] -> dx = [2/2, 2/2 + 4/2, 4/2 + 6/1] = [1, 3, 8]
    assert pool_row_back([2, 4, 6], [-1, -2, -3], 2, pad_end=1, mode="ave").tolist() == [1, 3, 8]
    # MAX: argmaxes x0, x1, x2 -> dx = dy
    assert pool_row_back([2, 4, 6], [-1, -2, -3], 2, pad_end=1, mode="max").tolist() == [2, 4, 6]


# ---- global kernel ----------------------------------------------------------------------------------

def test_global_size_kernel():
    # kernel = input size: one output; 3x4 arange (x = 4r + c): MAX 11, AVE (0 + ... + 11)/12 = 5.5
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    np.testing.assert_array_equal(ref.pool2d(x, (3, 4), mode="max"), A([[11]]))
    np.testing.assert_array_equal(ref.pool2d(x, (3, 4), mode="ave"), A([[5.5]]))
    # backward: MAX all to x[2, 3]; AVE dy/12 everywhere
    dx = ref.pool2d_backward(A([[6]]), x, (3, 4), mode="max")
    np.testing.assert_array_equal(dx, A([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 6]]))
    dx = ref.pool2d_backward(A([[6]]), x, (3, 4), mode="ave")
    np.testing.assert_array_equal(dx, np.full((1, 1, 3, 4), 0.5))


def test_batch_and_channels_are_independent():
    # two samples x two channels, 2x2 input, global 2x2 MAX: max of each plane
    x = np.array([[[[1, 2], [3, 4]], [[8, 7], [6, 5]]], [[[-1, -2], [-3, -4]], [[0, 9], [0, 0]]]],
                 dtype=np.float64)
    np.testing.assert_array_equal(ref.pool2d(x, 2, mode="max")[:, :, 0, 0], [[4, 8], [-1, 9]])
    np.testing.assert_array_equal(ref.pool2d(x, 2, mode="ave")[:, :, 0, 0], [[2.5, 6.5], [-2.5, 2.25]])


# ---- backward -------------------------------------------------------------------------------------

def test_max_backward_to_argmax():
    # 5x5, k 2, s 2: argmaxes at rows {1, 3, 4} x cols {1, 3, 4}; dy = 1..9
    dy = A([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    dx = ref.pool2d_backward(dy, X55, 2, 2, mode="max")
    np.testing.assert_array_equal(dx, A([[0, 0, 0, 0, 0],
                                         [0, 1, 0, 2, 3],
                                         [0, 0, 0, 0, 0],
                                         [0, 4, 0, 5, 6],
                                         [0, 7, 0, 8, 9]]))


def test_max_backward_overlapping_windows_accumulate():
    # row [1, 3, 2, 0], k 2, s 1: windows {0,1} -> x1, {1,2} -> x1, {2,3} -> x2; y = [3, 3, 2]
    assert pool_row([1, 3, 2, 0], 2, mode="max").tolist() == [3, 3, 2]
    # dy = [1, 10, 100] -> dx = [0, 1 + 10, 100, 0]
    assert pool_row_back([1, 10, 100], [1, 3, 2, 0], 2, mode="max").tolist() == [0, 11, 100, 0]
    # 2-D: the centre 9 is the max of all four 2x2 windows -> it gets 1 + 2 + 3 + 4
    x = A([[1, 2, 1], [2, 9, 2], [1, 2, 1]])
    np.testing.assert_array_equal(ref.pool2d(x, 2, mode="max"), A([[9, 9], [9, 9]]))
    dx = ref.pool2d_backward(A([[1, 2], [3, 4]]), x, 2, mode="max")
    np.testing.assert_array_equal(dx, A([[0, 0, 0], [0, 10, 0], [0, 0, 0]]))


def test_max_backward_est2():
    # row [5, 1, 7, 3, 2], k 2, est 2: windows {x0,x2} -> x2, {x1,x3} -> x3, {x2,x4} -> x2
    # dy = [1, 10, 100] -> dx = [0, 0, 101, 10, 0]
    assert pool_row_back([1, 10, 100], [5, 1, 7, 3, 2], 2, est=(1, 2),
                         mode="max").tolist() == [0, 0, 101, 10, 0]


def test_ave_backward_overhang():
    # row of 5, k 2, s 2: windows [0,2)/2, [2,4)/2, [4,5)/1; dy = [2, 4, 6] -> [1, 1, 2, 2, 6]
    assert pool_row_back([2, 4, 6], [0, 0, 0, 0, 0], 2, 2, mode="ave").tolist() == [1, 1, 2, 2, 6]


def test_ave_backward_padding():
    # H = W = 4, k 3, s 2, p 1, dy = ones: dx[r, c] = f[r] f[c] with f[r] = sum over windows holding r
    # of 1/divisor: windows {0,1}/3, {1,2,3}/3, {3}/2 -> f = [1/3, 1/3 + 1/3, 1/3, 1/3 + 1/2]
    dx = ref.pool2d_backward(np.ones((1, 1, 3, 3)), X44, 3, 2, 1, mode="ave")
    f = [1 / 3, 2 / 3, 1 / 3, 5 / 6]
    expected = A([[1 / 9, 2 / 9, 1 / 9, 5 / 18],
                  [2 / 9, 4 / 9, 2 / 9, 5 / 9],
                  [1 / 9, 2 / 9, 1 / 9, 5 / 18],
                  [5 / 18, 5 / 9, 5 / 18, 25 / 36]])
    assert f[3] * f[3] == pytest.approx(25 / 36)
    np.testing.assert_allclose(dx, expected, rtol=1e-14)


def test_ave_backward_est_with_pad():
    # row [1..5], k 2, est 2, pad 1 (test_est_with_pad), divisor 2 everywhere; dy = [2, 4, 6, 8, 10]
    # window o spreads dy[o]/2 to taps o-1, o+1 (real ones only):
    #   x0 <- o=1: 2;  x1 <- o=0, o=2: 1 + 3 = 4;  x2 <- o=1, o=3: 2 + 4 = 6;  x3 <- o=2, o=4: 3 + 5 = 8;
    #   x4 <- o=3: 4
    assert pool_row_back([2, 4, 6, 8, 10], [1, 2, 3, 4, 5], 2, 1, 1, est=(1, 2),
                         mode="ave").tolist() == [2, 4, 6, 8, 4]


# ---- the tie rule --------------------------------------------------------------------------------

def test_tie_first_maximum_in_row_major_order():
    # [[3, 3], [3, 1]]: three equal maxima, the first in row-major order is (0, 0)
    x = A([[3, 3], [3, 1]])
    np.testing.assert_array_equal(ref.pool2d(x, 2), A([[3]]))
    np.testing.assert_array_equal(ref.pool2d_backward(A([[7]]), x, 2), A([[7, 0], [0, 0]]))
    # [[1, 3], [3, 3]]: the first maximum is (0, 1)
    x = A([[1, 3], [3, 3]])
    np.testing.assert_array_equal(ref.pool2d_backward(A([[7]]), x, 2), A([[0, 7], [0, 0]]))
    # [[0, 5], [5, 0]]: row outer, column inner -> (0, 1), not (1, 0)
    x = A([[0, 5], [5, 0]])
    np.testing.assert_array_equal(ref.pool2d(x, 2), A([[5]]))
    np.testing.assert_array_equal(ref.pool2d_backward(A([[7]]), x, 2), A([[0, 7], [0, 0]]))


def test_tie_across_overlapping_windows():
    # row [3, 3, 3], k 2, s 1: window {0,1} -> x0; window {1,2} -> x1 (its own first maximum)
    assert pool_row_back([1, 10], [3, 3, 3], 2, mode="max").tolist() == [1, 10, 0]
    # 3x3 of equal values, k 2, s 1: window (r, c) picks its top-left (r, c)
    dx = ref.pool2d_backward(A([[1, 2], [3, 4]]), np.full((1, 1, 3, 3), 3.0), 2, mode="max")
    np.testing.assert_array_equal(dx, A([[1, 2, 0], [3, 4, 0], [0, 0, 0]]))


def test_tie_with_padding_and_est():
    # row [-1, -1], k 2, s 1, p 1: windows [-1,1), [0,2), [1,3) -> out 3; padding never wins, so the
    # maxima are x0, x0 (first of the tie), x1; y = [-1, -1, -1]; dy = [1, 10, 100] -> dx = [11, 100]
    assert pool_row([-1, -1], 2, 1, 1, mode="max").tolist() == [-1, -1, -1]
    assert pool_row_back([1, 10, 100], [-1, -1], 2, 1, 1, mode="max").tolist() == [11, 100]
    # est 2: row [2, 0, 2], k 2: one window {x0, x2}, a tie -> x0
    assert pool_row_back([5], [2, 0, 2], 2, est=(1, 2), mode="max").tolist() == [5, 0, 0]


def test_tie_float32():
    x = A([[3, 3], [3, 1]], np.float32)
    dx = ref.pool2d_backward(A([[7]], np.float32), x, 2)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, A([[7, 0], [0, 0]]))


# ---- NaN, -inf and the degenerate case -----------------------------------------------------------

def test_nan_never_wins():
    # windows [NaN, 2] and [2, NaN] both give 2; the gradient goes to the 2
    assert pool_row([np.nan, 2], 2, mode="max").tolist() == [2]
    assert pool_row([2, np.nan], 2, mode="max").tolist() == [2]
    assert pool_row_back([5], [np.nan, 2], 2, mode="max").tolist() == [0, 5]
    # 2-D: [[NaN, 1], [4, NaN]] -> 4
    x = A([[np.nan, 1], [4, np.nan]])
    np.testing.assert_array_equal(ref.pool2d(x, 2), A([[4]]))
    np.testing.assert_array_equal(ref.pool2d_backward(A([[3]]), x, 2), A([[0, 0], [3, 0]]))


def test_window_without_a_winner_gives_minus_flt_max():
    # Caffe: accumulator -FLT_MAX, replaced only by a strictly greater value. All-NaN and all -inf
    # windows therefore give -FLT_MAX and pass no gradient
    assert pool_row([np.nan, np.nan], 2, mode="max").tolist() == [-FLT_MAX]
    assert pool_row([-np.inf, -np.inf], 2, mode="max").tolist() == [-FLT_MAX]
    assert pool_row_back([5], [np.nan, np.nan], 2, mode="max").tolist() == [0, 0]
    # -inf next to a real value: the real value wins
    assert pool_row([-np.inf, -7], 2, mode="max").tolist() == [-7]


def test_degenerate_unpadded_window_outside():
    # W = 6, k 1, s 2, p 0: out ceil(5/2) + 1 = 4; windows at 0, 2, 4 and 6 (outside the row)
    # MAX: [x0, x2, x4, -FLT_MAX]; AVE: [x0, x2, x4, 0] (divisor 0: the econv convention, Caffe NaN)
    x = [1, 2, 3, 4, 5, 6]
    assert pool_row(x, 1, 2, mode="max").tolist() == [1, 3, 5, -FLT_MAX]
    assert pool_row(x, 1, 2, mode="ave").tolist() == [1, 3, 5, 0]
    # float32: -FLT_MAX is representable exactly
    y32 = ref.pool2d(row(x, np.float32), (1, 1), (1, 2), mode="max")
    assert y32.dtype == np.float32
    assert y32[0, 0, 0].tolist() == [1, 3, 5, -3.4028234663852886e38]
    # backward: the outside window passes nothing
    assert pool_row_back([1, 2, 3, 4], x, 1, 2, mode="max").tolist() == [1, 0, 2, 0, 3, 0]
    assert pool_row_back([1, 2, 3, 4], x, 1, 2, mode="ave").tolist() == [1, 0, 2, 0, 3, 0]


def caffe_ave_row(x, k, s):
    """Caffe's AVE forward on one unpadded row, literally (pooling_layer.cpp lines 210-225)."""
    w = len(x)
    out = int(np.ceil((w - k) / s)) + 1
    y = []
    for pw in range(out):
        start = pw * s
        end = min(start + k, w)
        pool_size = end - start                           # the height axis contributes 1 * ...
        total = sum(x[max(start, 0):min(end, w)])
        y.append(np.float64(total) / np.float64(pool_size) if pool_size else np.nan)   # 0/0
    return y


def test_empty_ave_window_is_an_econv_convention():
    from reference.optable import hard_cases
    from reference.pool import EMPTY_AVE_WINDOW, pool_geometry

    x = [1.0, 2, 3, 4, 5, 6]
    caffe = caffe_ave_row(x, 1, 2)                 # window 3 starts at 6 == W: 0/0
    assert caffe[:3] == [1, 3, 5] and np.isnan(caffe[3])
    assert pool_row(x, 1, 2, mode="ave").tolist() == [1, 3, 5, 0]      # econv: 0, flagged
    caffe = caffe_ave_row([1.0, 2, 3, 4, 5], 1, 3)  # W 5, s 3: windows at 0, 3, 6 > W: 0/-1
    assert caffe[:2] == [1, 4] and caffe[2] == 0 and np.signbit(caffe[2])
    assert pool_geometry("t", (1, 1, 1, 6), (1, 1), (1, 2), mode="ave").empty_windows() == 1
    assert pool_geometry("t", (1, 1, 1, 6), (1, 1), (1, 2), mode="max").empty_windows() == 0
    flagged = [c.name for c in hard_cases() if c.convention]
    assert flagged == ["pool2d_hard_window_past_end_ave"]
    assert "econv convention" in EMPTY_AVE_WINDOW and "NaN" in EMPTY_AVE_WINDOW
    import reference.pool as pool_module
    assert "econv convention" in pool_module.__doc__ and "Caffe" in pool_module.__doc__


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(dtype):
    y = ref.pool2d(X55.astype(dtype), 2, 2, mode="ave")
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, A([[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]))
    dx = ref.pool2d_backward(np.ones_like(y), X55.astype(dtype), 2, 2, mode="max")
    assert dx.dtype == dtype


def test_caffe_clip_rule_is_joint_over_axes():
    # x (6 x 3), x[r, c] = 3r + c; kernel (1, 2), stride (2, 1), pad (0, 1)
    # Caffe: pooled_h = ceil((6 - 1)/2) + 1 = 4, pooled_w = ceil((3 + 2 - 2)/1) + 1 = 4; pad_w != 0, so
    #   height: (4 - 1)*2 = 6 >= 6 + 0 -> 3 (the window at row 6 is dropped); width: 3*1 = 3 >= 4? no -> 4
    # rows 0, 2, 4; column windows [-1,1), [0,2), [1,3), [2,4) -> last real column 0, 1, 2, 2
    x = np.arange(18, dtype=np.float64).reshape(1, 1, 6, 3)
    y = ref.pool2d(x, (1, 2), (2, 1), (0, 1), mode="max")
    np.testing.assert_array_equal(y, A([[0, 1, 2, 2], [6, 7, 8, 8], [12, 13, 14, 14]]))
