"""The six eConv/ePool ops on the CPU: Numba kernels plus BLAS, same signatures and results as
:mod:`reference` (within :data:`reference.tolerance.TOLERANCE`).

Convolution and deconvolution are Caffe's design: an im2col copy with the equivalent stride feeding
one GEMM per group (:func:`._gemm.dot_rows`: NumPy's BLAS, single-threaded calls on blocks of rows
run side by side, which leaves no BLAS thread spinning after it), and col2im for the transposes.  With
``col`` the column buffer of :mod:`numba_kernels._im2col` (rows ``(c, i, j)``, columns ``(n, oy,
ox)``) and ``w_g`` a group's weights as a matrix::

    conv2d            y_g   = w_g (O/G, C/G*kh*kw) @ col_g(x)                  (+ b)
    conv2d_backward   dw_g  = dy_g @ col_g(x)^T       dx = col2im(w_g^T @ dy_g)    db = sum dy
    deconv2d          y     = col2im(w_g^T (O/G*kh*kw, C/G) @ x_g)             (+ b)
    deconv2d_backward dx_g  = w_g @ col_g(dy)        dw_g = x_g @ col_g(dy)^T       db = sum dy

where ``dy_g`` and ``x_g`` are laid out as ``(channels, n*oh*ow)`` matrices (a transposing copy).
Deconvolution's im2col/col2im use the convolution geometry with the roles of input and output
exchanged (image = the deconvolution's output, positions = its input).  Images are processed in
chunks whose column buffer stays under ``COL_BUDGET`` elements (at least one image per chunk).

At stride 1 (every densified layer) there are two faster paths, tried in this order:

- a 3x3 kernel with at least ``WINOGRAD_MIN_CHANNELS`` input and output channels per group,
  ``WINOGRAD_MIN_TILES`` 2x2 output tiles and ``WINOGRAD_MIN_WORK`` tiles x channels x channels
  runs as Winograd's F(2x2, 3x3) on the dilated lattice
  (:mod:`numba_kernels._winograd`): 16 GEMMs with 2.25x fewer multiply-adds than im2col, forward
  and backward (the backward is the exact adjoint of each stage); float32 rounding measured at the
  direct method's level;
- other kernels, forward only, on big planes with many channels skip the column buffer:
  :mod:`numba_kernels._taps` runs one GEMM per kernel row on shifted windows of the input
  (``TAPS_MIN_POSITIONS`` and the thresholds after it; the backward's taps are there too, but off,
  ``TAPS_BACKWARD``: they measured no faster).

im2col stays for strided layers, small planes, fewer channels and, for the taps, a NumPy without its
bundled OpenBLAS (see :mod:`numba_kernels._gemm`).  ``WINOGRAD = False`` turns Winograd off.

Pooling runs the direct kernels of :mod:`numba_kernels._pool` (measured faster than a column
formulation: pooling has no GEMM to feed); stride-1 pooling (every densified ePool) sweeps whole
padded planes, which vectorizes better than output rows.  :func:`pool2d` is the plain forward and
keeps nothing.  MAX backward scatters ``dy`` through the first maximum's index (Caffe's
``max_idx_``): :func:`pool2d_argmax` returns it with the forward, ``pool2d_backward(...,
argmax=...)`` takes it, and without it the backward recomputes it from ``x``.  Like Caffe, the
layer keeps the argmax, not this module: a Net's MAX Pooling layer calls :func:`pool2d_argmax` when
its backward is expected and passes the argmax back for the same bottom
(:class:`reference.layers.vision.Pooling`).

Arguments are checked, and output sizes computed, by the reference's own helpers
(:mod:`numba_kernels._args`), so bad arguments raise the reference's ValueErrors.

Threads: Numba's parallel kernels and BLAS alternate on the same cores.  An OpenMP worker that
spins after a kernel steals its core from the GEMM that follows, and a sleeping worker woken while
BLAS threads spin waits for a scheduler tick (measured on 2 cores: a small conv took 8 ms instead of
0.3 ms, VGG conv5 40 ms instead of 23).  So, unless ``NUMBA_THREADING_LAYER`` is set, importing this
module picks: Numba's OpenMP layer with ``OMP_WAIT_POLICY=PASSIVE`` (unless the environment says
otherwise) when no OpenMP runtime is loaded yet, or Numba's own ``workqueue`` layer when one is
(PyTorch ships a ``libgomp.so.1`` that Numba would share, already started with spinning workers).
Both take effect only if no Numba parallel kernel has run yet.
"""

from __future__ import annotations

import os


def _openmp_loaded() -> bool:
    """Whether an OpenMP runtime is already mapped into this process (Linux; False elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return False
    return any(name in maps for name in ("libgomp", "libiomp", "libomp"))


def _choose_threading():
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    if _openmp_loaded():
        import numba
        numba.config.THREADING_LAYER = "workqueue"
    else:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


_choose_threading()

import numba  # noqa: E402
import numpy as np  # noqa: E402

from reference.checks import group_slices, like  # noqa: E402

from ._args import check_x, conv_geometry, deconv_geometry, image_chunks, pool_geometry  # noqa: E402
from . import _gemm  # noqa: E402
from ._gemm import dot_rows  # noqa: E402
from ._im2col import col2im, im2col  # noqa: E402
from ._workspace import scratch  # noqa: E402
from ._pool import (pool_argmax, pool_argmax_dense, pool_argmax_strided, pool_backward,  # noqa: E402
                    pool_forward, pool_forward_dense, pool_scatter)
from ._taps import conv_backward_taps, conv_forward_taps  # noqa: E402
from ._winograd import conv_backward_winograd, conv_forward_winograd  # noqa: E402

__all__ = ["conv2d", "conv2d_backward", "deconv2d", "deconv2d_backward", "pool2d", "pool2d_backward",
           "pool2d_argmax", "COL_BUDGET"]

COL_BUDGET = 1 << 24   # elements of one column buffer (64 MiB in float32)
DENSE_MIN_PLANES = 8   # stride-1 pooling works plane by plane from this many (n, c) planes on
# Stride-1 conv forward as GEMMs on shifted windows (_taps) from this many output positions per
# image, multiply-adds per tap, image and group, and input channels per group; measured on 2 shared
# cores (BENCHMARKS.md): at 512x28x28 im2col was 5-8% faster, at 512x56x56 the taps 10-30% faster
# single-threaded and even with 2 threads, and at 64-256 channels (VGG conv1-conv3) 6-11% slower.
# 3x3 stride-1 convolutions (every densified VGG layer) by Winograd's F(2x2, 3x3) (_winograd): 2.25x
# fewer multiply-adds, forward and backward, from this many input and output channels per group, 2x2
# tiles per call (images x tiles per image) and tiles x input x output channels per group.  Measured
# on 2 shared cores (BENCHMARKS.md), forward / backward against im2col: 512 channels at 28-56 px
# 1.3-2.2x; 64 channels at 224 px 1.8x / 2.0x, at 56 px 1.1x / 1.2x, at 28 px (0.8M of work) 0.8x /
# 1.0x; 32 channels at 56 px a tie; on 7x7 and 14x14 planes (under 128 tiles) the filter transform of
# a 512x512 layer costs more than it saves.
WINOGRAD = True
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_TILES = 128
WINOGRAD_MIN_WORK = 1 << 21
TAPS_MIN_POSITIONS = 2048
TAPS_MIN_WORK = 1 << 22
TAPS_MIN_CHANNELS = 256
TAPS_BACKWARD = False     # the backward's taps: even single-threaded, 10-15% slower with 2 threads


# ---- helpers ----------------------------------------------------------------------------------

def _inputs(what, x, w):
    """``x`` checked and C-contiguous, ``w`` in ``x``'s dtype, C-contiguous (its layout is checked
    by the op's geometry)."""
    x = np.ascontiguousarray(check_x(x, what))
    w = np.ascontiguousarray(like(w, x.dtype, what, "w"))
    return x, w


def _bias(b, dtype, what, n_out):
    return None if b is None else like(b, dtype, what, "b", (n_out,))


def _chunks(n, per_image):
    """Batch slices whose column buffer has at most COL_BUDGET elements (at least one image)."""
    return image_chunks(n, per_image, COL_BUDGET)


def _columns(img, kernel, stride, pad, est, out_hw, group):
    """im2col of ``img`` (nb, C, H, W) as ``(group, C/G*kh*kw, nb*oh*ow)``."""
    (kh, kw), (sh, sw), (ph, pw), (eh, ew), (oh, ow) = kernel, stride, pad, est, out_hw
    nb, c = img.shape[:2]
    col = scratch("im2col", c * kh * kw * nb * oh * ow, img.dtype).reshape(c * kh * kw, nb * oh * ow)
    im2col(img, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, col)
    return col.reshape(group, -1, nb * oh * ow)


def _add_columns(col, kernel, stride, pad, est, out_hw, img):
    """col2im: ``img`` (nb, C, H, W, zeroed) ``+=`` the ``(group, C/G*kh*kw, nb*oh*ow)`` columns."""
    (kh, kw), (sh, sw), (ph, pw), (eh, ew), (oh, ow) = kernel, stride, pad, est, out_hw
    col2im(col.reshape(-1, col.shape[-1]), kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, img)


def _as_matrices(a, group):
    """(nb, C, *spatial) -> (group, C/G, nb*spatial): channels as rows, (n, position) as columns."""
    nb, c = a.shape[:2]
    m = a.reshape(nb, c, -1).transpose(1, 0, 2)
    return np.ascontiguousarray(m).reshape(group, c // group, -1)


def _store_matrix(m, out):
    """Inverse of :func:`_as_matrices` for one group: ``m`` (C_g, nb*P) into ``out`` (nb, C_g, ...)."""
    nb, cg = out.shape[:2]
    out.reshape(nb, cg, -1)[...] = m.reshape(cg, nb, -1).transpose(1, 0, 2)


# ---- eConv ------------------------------------------------------------------------------------

def _use_taps(x, w, stride, group, out_hw, backward=False):
    """Whether a convolution runs as GEMMs on shifted windows (:mod:`._taps`), not im2col + GEMM."""
    o, cg = w.shape[:2]
    work = (o // group) * cg * out_hw[0] * (out_hw[1] + 1)
    return (tuple(stride) == (1, 1) and cg >= TAPS_MIN_CHANNELS and work >= TAPS_MIN_WORK
            and out_hw[0] * out_hw[1] >= TAPS_MIN_POSITIONS and (TAPS_BACKWARD or not backward)
            and _gemm.available(x.dtype))


def _use_winograd(x, w, stride, group, out_hw):
    """Whether a convolution runs as Winograd F(2x2, 3x3) (:mod:`._winograd`)."""
    o, cg, kh, kw = w.shape
    tiles = x.shape[0] * -(-out_hw[0] // 2) * -(-out_hw[1] // 2)
    return (WINOGRAD and (kh, kw) == (3, 3) and tuple(stride) == (1, 1)
            and min(cg, o // group) >= WINOGRAD_MIN_CHANNELS and tiles >= WINOGRAD_MIN_TILES
            and tiles * cg * (o // group) >= WINOGRAD_MIN_WORK)


def conv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """eConv forward (:func:`reference.conv2d`): im2col + one GEMM per group, or at stride 1 one
    GEMM per kernel row on shifted windows of the input (:mod:`._taps`)."""
    what = "conv2d"
    x, w = _inputs(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    b = _bias(b, x.dtype, what, o)
    if _use_winograd(x, w, stride, group, out_hw):
        return conv_forward_winograd(x, w, b, pad, est, group, out_hw)
    if _use_taps(x, w, stride, group, out_hw):
        return conv_forward_taps(x, w, b, pad, est, group, out_hw)
    wm = w.reshape(group, o // group, -1)
    y = np.empty((n, o) + out_hw, dtype=x.dtype)
    for part in _chunks(n, c * kh * kw * out_hw[0] * out_hw[1]):
        col = _columns(x[part], (kh, kw), stride, pad, est, out_hw, group)
        for g, (_, cout) in enumerate(group_slices(group, c, o)):
            if col.shape[-1] == out_hw[0] * out_hw[1]:          # one image: straight into y
                dot_rows(wm[g], col[g], out=y[part.start, cout].reshape(-1, col.shape[-1]))
            else:
                _store_matrix(dot_rows(wm[g], col[g]), y[part, cout])
    if b is not None:
        y += b[:, None, None]
    return y


def conv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """eConv backward (:func:`reference.conv2d_backward`): ``(dx, dw, db)``."""
    what = "conv2d_backward"
    x, w = _inputs(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    dy = np.ascontiguousarray(like(dy, x.dtype, what, "dy", (n, o) + out_hw))
    db = dy.sum(axis=(0, 2, 3)) if bias else None
    if _use_winograd(x, w, stride, group, out_hw):
        return conv_backward_winograd(dy, x, w, pad, est, group, out_hw) + (db,)
    if _use_taps(x, w, stride, group, out_hw, backward=True):
        return conv_backward_taps(dy, x, w, pad, est, group, out_hw) + (db,)
    wm = w.reshape(group, o // group, -1)
    dx = np.zeros_like(x)
    dw = np.zeros_like(wm)
    for part in _chunks(n, c * kh * kw * out_hw[0] * out_hw[1]):
        col = _columns(x[part], (kh, kw), stride, pad, est, out_hw, group)
        dym = _as_matrices(dy[part], group)
        for g in range(group):
            dw[g] += dot_rows(dym[g], col[g].T)
        for g in range(group):                  # the column buffer now receives d(col)
            dot_rows(wm[g].T, dym[g], out=col[g])
        _add_columns(col, (kh, kw), stride, pad, est, out_hw, dx[part])
    return dx, dw.reshape(w.shape), db


# ---- deconvolution ----------------------------------------------------------------------------

def deconv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """Deconvolution forward (:func:`reference.deconv2d`): one GEMM per group, then col2im."""
    what = "deconv2d"
    x, w = _inputs(what, x, w)
    stride, pad, est, group, out_hw, o = deconv_geometry(what, x.shape, w.shape, stride, pad, est,
                                                         group)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    b = _bias(b, x.dtype, what, o)
    wm = w.reshape(group, c // group, -1)
    y = np.zeros((n, o) + out_hw, dtype=x.dtype)
    for part in _chunks(n, o * kh * kw * h * wd):
        xm = _as_matrices(x[part], group)
        col = scratch("im2col", group * wm.shape[2] * xm.shape[2], x.dtype).reshape(
            group, wm.shape[2], xm.shape[2])
        for g in range(group):
            dot_rows(wm[g].T, xm[g], out=col[g])
        _add_columns(col, (kh, kw), stride, pad, est, (h, wd), y[part])
    if b is not None:
        y += b[:, None, None]
    return y


def deconv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """Deconvolution backward (:func:`reference.deconv2d_backward`): ``(dx, dw, db)``."""
    what = "deconv2d_backward"
    x, w = _inputs(what, x, w)
    stride, pad, est, group, out_hw, o = deconv_geometry(what, x.shape, w.shape, stride, pad, est,
                                                         group)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    dy = np.ascontiguousarray(like(dy, x.dtype, what, "dy", (n, o) + out_hw))
    wm = w.reshape(group, c // group, -1)
    dx = np.empty_like(x)
    dw = np.zeros_like(wm)
    for part in _chunks(n, o * kh * kw * h * wd):
        col = _columns(dy[part], (kh, kw), stride, pad, est, (h, wd), group)
        xm = _as_matrices(x[part], group)
        for g, (cin, _) in enumerate(group_slices(group, c, o)):
            dw[g] += dot_rows(xm[g], col[g].T)
            _store_matrix(dot_rows(wm[g], col[g]), dx[part, cin])
    db = dy.sum(axis=(0, 2, 3)) if bias else None
    return dx, dw.reshape(w.shape), db


# ---- ePool ------------------------------------------------------------------------------------

def _pool_args(geo):
    (kh, kw), (sh, sw), (ph, pw), (eh, ew) = geo.kernel, geo.stride, geo.pad, geo.est
    return kh, kw, sh, sw, ph, pw, eh, ew, geo.mode == "max"


def _dense_planes(x, geo):
    return tuple(geo.stride) == (1, 1) and x.shape[0] * x.shape[1] >= DENSE_MIN_PLANES


def _argmax_dtype(x):
    return np.int32 if x.shape[2] * x.shape[3] < 2**31 else np.int64


def _max_argmax(x, geo):
    """MAX ``(y, argmax)`` of checked, C-contiguous ``x``."""
    y = np.empty(x.shape[:2] + geo.out_hw, dtype=x.dtype)
    arg = np.empty(y.shape, dtype=_argmax_dtype(x))
    kh, kw, sh, sw, ph, pw, eh, ew, _ = _pool_args(geo)
    planes = x.shape[0] * x.shape[1]
    if planes >= DENSE_MIN_PLANES and arg.dtype == np.int32:       # separable passes, by planes
        per = min(8, max(1, planes // (4 * numba.get_num_threads())))   # planes per task
        if tuple(geo.stride) == (1, 1):
            pool_argmax_dense(x, kh, kw, ph, pw, eh, ew, y, arg, per)
        else:
            pool_argmax_strided(x, kh, kw, sh, sw, ph, pw, eh, ew, y, arg, per)
    else:
        pool_argmax(x, kh, kw, sh, sw, ph, pw, eh, ew, y, arg)
    return y, arg


def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """ePool forward (:func:`reference.pool2d`): direct kernel, Caffe's rules."""
    x = np.ascontiguousarray(check_x(x, "pool2d"))
    geo = pool_geometry("pool2d", x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    kh, kw, sh, sw, ph, pw, eh, ew, is_max = _pool_args(geo)
    y = np.empty(x.shape[:2] + geo.out_hw, dtype=x.dtype)
    if _dense_planes(x, geo):
        pool_forward_dense(x, kh, kw, ph, pw, eh, ew, is_max, y)   # one plane per task
    else:
        pool_forward(x, kh, kw, sh, sw, ph, pw, eh, ew, is_max, y)  # one output row per task
    return y


def pool2d_argmax(x, kernel, stride=1, pad=0, est=1, round_mode="ceil", pad_end=0):
    """MAX ePool forward with Caffe's mask: ``(y, argmax)``, ``y`` as :func:`pool2d` gives it and
    ``argmax[n, c, oy, ox]`` the flat index ``h*W + w`` in plane ``(n, c)`` of the window's first
    maximum (row-major tap order, NaN never wins), -1 where the window has no real value; int32
    (int64 for planes of 2**31 pixels or more).  Pass it to ``pool2d_backward(..., argmax=)``."""
    what = "pool2d_argmax"
    x = np.ascontiguousarray(check_x(x, what))
    geo = pool_geometry(what, x.shape, kernel, stride, pad, est, "max", round_mode, pad_end)
    return _max_argmax(x, geo)


def _check_argmax(argmax, shape, what):
    argmax = np.asarray(argmax)
    if argmax.dtype not in (np.int32, np.int64):
        raise ValueError(f"{what}: argmax must be int32 or int64, got {argmax.dtype}")
    if argmax.shape != tuple(shape):
        raise ValueError(f"{what}: argmax must have shape {tuple(shape)}, got {argmax.shape}")
    return np.ascontiguousarray(argmax)


def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0,
                    argmax=None):
    """ePool backward (:func:`reference.pool2d_backward`): ``dx``.

    MAX routes each ``dy`` to its window's first maximum: through ``argmax`` when given (from
    :func:`pool2d_argmax` on this ``x``; entries outside ``[-1, H*W)`` raise ValueError), else
    through the argmax recomputed from ``x`` (the same kernel)."""
    what = "pool2d_backward"
    xc = np.ascontiguousarray(check_x(x, what))
    geo = pool_geometry(what, xc.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    dy = np.ascontiguousarray(like(dy, xc.dtype, what, "dy", xc.shape[:2] + geo.out_hw))
    kh, kw, sh, sw, ph, pw, eh, ew, is_max = _pool_args(geo)
    if not is_max:
        if argmax is not None:
            raise ValueError(f"{what}: argmax is only for MAX pooling")
        dx = np.zeros_like(xc)
        pool_backward(dy, xc, kh, kw, sh, sw, ph, pw, eh, ew, dx)
        return dx
    if argmax is not None:
        argmax = _check_argmax(argmax, dy.shape, what)
    else:
        argmax = _max_argmax(xc, geo)[1]
    dx = np.empty_like(xc)
    if pool_scatter(dy, argmax, dx):
        raise ValueError(f"{what}: argmax entries must lie in [-1, {xc.shape[2] * xc.shape[3]}) "
                         "(H*W of x)")
    return dx
