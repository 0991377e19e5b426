"""numba_kernels._winograd (F(2x2, 3x3) on the dilated lattice) against the reference: the tiling,
each transform's adjoint, parity on every 3x3 stride-1 op-table case (hard cases included, Winograd
forced on, float32 and float64), batches split into chunks, and the float32 rounding against
im2col's."""

import numpy as np
import pytest

import numba_kernels.cpu as K
import reference as ref
from numba_kernels import _gemm, _winograd as W
from reference.optable import cases, table
from reference.tolerance import ADJOINT_RTOL, max_rel_err, tolerance

from ._parity import assert_varied, check_case, conv_case_geometry


@pytest.fixture
def winograd_always(monkeypatch):
    monkeypatch.setattr(K, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(K, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(K, "WINOGRAD_MIN_WORK", 1)


def _pair(v):
    return tuple(int(a) for a in np.broadcast_to(v, 2))


def _winograd_case(case):
    return (case.arrays["w"].shape[2:] == (3, 3) and _pair(case.params.get("stride", 1)) == (1, 1))


CASES = [c for c in table("conv2d") + cases("conv2d", count=300, seed=33) if _winograd_case(c)]


# ---- tiling ----------------------------------------------------------------------------------------

def test_axis_tiles_literal():
    assert W.axis_tiles(5, 1).tolist() == [0, 2, 4]          # outputs (0,1) (2,3) (4,-)
    assert W.axis_tiles(6, 2).tolist() == [0, 4, 1, 5]       # (0,2) (4,-) (1,3) (5,-)
    assert W.axis_tiles(7, 4).tolist() == [0, 1, 2, 3]       # (0,4) (1,5) (2,6) (3,-)
    assert W.axis_tiles(2, 4).tolist() == [0, 1]             # fewer outputs than est


@pytest.mark.parametrize("e", [1, 2, 3, 4])
def test_every_output_is_in_exactly_one_tile(e):
    for n_out in range(1, 30):
        origins = W.axis_tiles(n_out, e)
        covered = [o + k * e for o in origins for k in (0, 1) if o + k * e < n_out]
        assert sorted(covered) == list(range(n_out)), (n_out, e)
        assert all(o < n_out for o in origins)               # no tile wholly past the end


def test_full_tiles_come_first():
    tl = W.Tiles((28, 28), (4, 4), (4, 4), (28, 28))         # 7 outputs per residue
    assert tl.oy.tolist() == [0, 8, 16, 1, 9, 17, 2, 10, 18, 3, 11, 19, 24, 25, 26, 27]
    assert (tl.trf, tl.tcf) == (12, 12) and tl.count == 256
    assert tl.starts.tolist() == [[0, 3, 6, 9, 12], [0, 1, 2, 3, 4]]


def _needs(i, j, y_full, x_full):
    """Whether a tile needs transformed position (i, j): row 3 only if its second row is used,
    column 3 only if its second column is."""
    return (i < 3 or y_full) and (j < 3 or x_full)


@pytest.mark.parametrize("geometry", [((28, 28), (4, 4), 2), ((9, 7), (2, 3), 3), ((5, 6), (2, 1), 1),
                                      ((1, 2), (1, 1), 1), ((28, 28), (2, 2), 1)])
def test_column_ranges_hold_exactly_the_tiles_each_position_needs(geometry):
    (oh, ow), (eh, ew), nb = geometry
    tl = W.Tiles((oh, ow), (eh, ew), (eh, ew), (oh, ow))
    ranges = tl.ranges(nb)
    tcf, tch = tl.starts[0, -1], tl.starts[1, -1]
    seen, needed = [], 0
    for n in range(nb):
        for tr, y0 in enumerate(tl.oy):
            fb, hb = W._bases.py_func(n, tr, nb, tl.oy.size, tl.trf, tcf, tch)
            for tc, x0 in enumerate(tl.ox):
                col = fb + tc if tc < tcf else hb + tc - tcf
                seen.append(col)
                y_full, x_full = y0 + eh < oh, x0 + ew < ow
                assert (tr < tl.trf) == y_full and (tc < tl.tcf) == x_full
                for xi, (lo, hi) in enumerate(ranges):
                    if _needs(xi // 4, xi % 4, y_full, x_full):
                        needed += 1
                        assert lo <= col < hi, (geometry, xi, n, tr, tc)
    assert sorted(seen) == list(range(nb * tl.count))         # one column per tile
    assert sum(hi - lo for lo, hi in ranges) == needed        # and no column a position skips
    if geometry[1] == (4, 4):
        assert needed == nb * 3600                            # of 16 * 256 = 4096 per image
    if geometry[1] == (2, 2):
        assert needed == 16 * 196                             # no half tiles: nothing skipped


# ---- transforms: adjoint identities in float64 ----------------------------------------------------

def _tiles(rng):
    h, w, p, e = 9, 11, (2, 1), (2, 3)
    out = (h + 2 * p[0] - 2 * e[0], w + 2 * p[1] - 2 * e[1])
    return W.Tiles((h, w), p, e, out), (h, w), p, e, out


def _stack(a):
    """A (16, rows, cols) array as a skewed :class:`Stack`."""
    st = W.Stack(a.shape[1], a.shape[2], a.dtype)
    for xi in range(16):
        st[xi][...] = a[xi]
    return st


def _unstack(st):
    return np.stack([st[xi] for xi in range(16)])


def test_filter_transform_adjoint():
    rng = np.random.default_rng(0)
    w, du = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((16, 5, 4))
    u, dw = W.Stack(5, 4, np.float64), np.empty((5, 4, 3, 3))
    W._filter_transform(w, u.flat, u.stride, 0, 5)
    W._filter_transform_adjoint(_stack(du).flat, u.stride, dw, 0, 5)
    lhs, rhs = np.vdot(_unstack(u), du), np.vdot(w, dw)
    assert abs(lhs - rhs) <= ADJOINT_RTOL * max(abs(lhs), 1.0)
    assert abs(lhs) > 1e-3                                   # the identity checked something


def test_filter_transform_of_a_literal_kernel():
    # G w G^T for w = e_00 (only the top-left tap) is the outer product of G's first column
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    u = W.Stack(1, 1, w.dtype)
    W._filter_transform(w, u.flat, u.stride, 0, 1)
    g0 = np.array([1.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(_unstack(u)[:, 0, 0].reshape(4, 4), np.outer(g0, g0))


def test_stack_matrices_are_skewed_and_disjoint():
    st = W.Stack(3, 4, np.float32)
    assert st.stride == 12 + W.SKEW and st.flat.size == 16 * st.stride
    for xi in range(16):
        st[xi][...] = xi
    assert [float(st[xi].mean()) for xi in range(16)] == list(range(16))


def test_input_transform_adjoint():
    rng = np.random.default_rng(1)
    tl, (h, w), p, e, _ = _tiles(rng)
    x = rng.standard_normal((2, 3, h, w))
    v = W.Stack(3, 2 * tl.count, np.float64)
    W._input_transform(x, tl.oy, tl.trf, tl.starts, p[0], p[1], e[0], e[1], tl.slot_len, *v.args(),
                       0, 6)
    dv, dx = rng.standard_normal((16, 3, 2 * tl.count)), np.empty_like(x)
    W._input_transform_adjoint(*_stack(dv).args(), tl.oy, tl.trf, tl.starts, p[0], p[1], e[0],
                               e[1], tl.slot_len, dx, 0, 6)
    lhs, rhs = np.vdot(_unstack(v), dv), np.vdot(x, dx)
    assert abs(lhs - rhs) <= ADJOINT_RTOL * max(abs(lhs), 1.0) and abs(lhs) > 1e-3


def test_output_transform_adjoint():
    rng = np.random.default_rng(2)
    tl, _, _, e, out = _tiles(rng)
    m = rng.standard_normal((16, 4, 2 * tl.count))
    y = np.empty((2, 4) + out)
    W._output_transform(*_stack(m).args(), tl.oy, tl.ox, tl.trf, tl.tcf, e[0], e[1], np.zeros(1),
                        False, y, 0, 8)
    dy, dm = rng.standard_normal(y.shape), W.Stack(4, 2 * tl.count, np.float64)
    W._output_transform_adjoint(dy, tl.oy, tl.ox, tl.trf, tl.tcf, e[0], e[1], *dm.args(), 0, 8)
    lhs, rhs = np.vdot(y, dy), np.vdot(m, _unstack(dm))
    assert abs(lhs - rhs) <= ADJOINT_RTOL * max(abs(lhs), 1.0) and abs(lhs) > 1e-3


def test_one_tile_by_hand():
    # 4x4 input 1..16, w = [[0,0,0],[0,1,0],[0,0,-1]] (centre minus bottom-right), no padding:
    # y[i, j] = x[i+1, j+1] - x[i+2, j+2] = -5 everywhere on the 2x2 output
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1], w[0, 0, 2, 2] = 1.0, -1.0
    y = W.conv_forward_winograd(x, w, None, (0, 0), (1, 1), 1, (2, 2))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), -5.0))


# ---- the ops against the reference ------------------------------------------------------------------

def test_the_table_has_3x3_stride1_cases_with_est_groups_pads_and_hard_cases():
    assert_varied(CASES, 10, batches=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_winograd_parity(case, dtype, winograd_always):
    c = case.astype(dtype)
    assert K._use_winograd(*conv_case_geometry(K, c))             # the path under test
    check_case(K, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_batches_split_into_chunks(dtype, winograd_always, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 10, 9)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    args = dict(stride=1, pad=(3, 2), est=(3, 2), group=2)
    y = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **args)
    dy = rng.standard_normal(y.shape)
    grads = ref.conv2d_backward(dy, x.astype(np.float64), w.astype(np.float64), **args)
    tl = W.Tiles(x.shape[2:], (3, 2), (3, 2), y.shape[2:])
    monkeypatch.setattr(W, "BUDGET", 16 * 10 * 2 * tl.count)     # two images per forward chunk
    assert len(tl.chunks(5, 10)) == 3 and len(tl.chunks(5, 20)) == 5
    tol = tolerance(dtype)
    assert max_rel_err(K.conv2d(x, w, b, **args), y) <= tol
    for got, expected in zip(K.conv2d_backward(dy.astype(dtype), x, w, **args), grads):
        assert max_rel_err(got, expected) <= tol


def test_float32_rounding_is_at_the_direct_methods_level(monkeypatch):
    # a VGG conv5-like layer (256 channels, est 2): Winograd's float32 error against float64 is the
    # same order as im2col's (measured 0.8-1.0x of it)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 256, 20, 20))
    w = rng.standard_normal((256, 256, 3, 3)) / np.sqrt(9 * 256)
    exact = ref.conv2d(x, w, None, 1, 2, 2)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    wino = max_rel_err(K.conv2d(x32, w32, None, 1, 2, 2), exact)
    monkeypatch.setattr(K, "WINOGRAD", False)
    direct = max_rel_err(K.conv2d(x32, w32, None, 1, 2, 2), exact)
    assert 0 < wino <= 2.0 * direct and wino < 2e-6, (wino, direct)


def test_default_dispatch():
    x = np.zeros((1, 512, 28, 28), np.float32)
    w = np.zeros((512, 512, 3, 3), np.float32)
    assert K._use_winograd(x, w, (1, 1), 1, (28, 28))
    assert not K._use_winograd(x, w, (2, 2), 1, (14, 14))                      # strided
    assert not K._use_winograd(x[:, :, :7, :7], w, (1, 1), 1, (7, 7))          # 16 tiles: too few
    assert not K._use_winograd(x[:, :64], w[:64, :64], (1, 1), 1, (28, 28))    # 196 * 64 * 64: too little
    big = np.zeros((1, 64, 56, 56), np.float32)
    assert K._use_winograd(big, w[:64, :64], (1, 1), 1, (56, 56))              # 784 * 64 * 64
    assert not K._use_winograd(big[:, :32], w[:32, :32], (1, 1), 1, (56, 56))  # 32 channels
    assert not K._use_winograd(x, np.zeros((512, 512, 5, 5), np.float32), (1, 1), 1, (28, 28))


# ---- the GEMM batch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dot_batch_equals_one_dot_at_a_time_and_restores_the_thread_count(dtype):
    rng = np.random.default_rng(5)
    jobs, expected = [], []
    for k in range(7):
        a = rng.standard_normal((5 + k, 9)).astype(dtype)
        b = rng.standard_normal((6, 9)).astype(dtype).T          # a transposed operand, as dU uses
        jobs.append((a, b, np.empty((5 + k, 6), dtype)))
        expected.append(np.dot(a, b))
    before = _gemm.blas_threads()
    _gemm.dot_batch(jobs)
    assert _gemm.blas_threads() == before
    for (_, _, c), e in zip(jobs, expected):
        np.testing.assert_allclose(c, e, rtol=1e-6 if dtype == np.float32 else 1e-14)
    _gemm.dot_batch([])                                           # nothing to do is fine
