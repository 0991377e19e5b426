"""The six eConv/ePool ops as numba.cuda kernels, plus what a training step needs on the device
(ReLU, softmax with loss, Caffe's SGD update), so a training loop can keep its arrays on the GPU.

Same signatures and results as :mod:`reference` (within :data:`reference.tolerance.TOLERANCE`).
Every op accepts NumPy arrays or numba device arrays and returns the kind it got: if ``x`` (or
``dy``) is a device array the results are device arrays, otherwise NumPy arrays.

Design (Caffe's GPU path, with the equivalent stride):

- ``conv2d``/``deconv2d`` and their backwards are the GEMM formulation of :mod:`numba_kernels.cpu`
  (same column layout: rows ``(c, i, j)``, columns ``(n, oy, ox)``): an im2col kernel, a tiled
  shared-memory GEMM (:func:`_make_gemm`: a ``TILE x TILE`` thread block stages ``BM x BK`` and
  ``BK x BM`` tiles of both operands in shared memory and each thread accumulates an ``R x R``
  block of outputs in registers), and a col2im kernel that *gathers* (one thread per pixel sums
  the column entries that read it: no atomics, deterministic).
- ``pool2d``: one thread per output, the first maximum in row-major tap order wins (strict ``>``,
  NaN never wins, no real value gives ``-FLT_MAX``); ``pool2d_backward`` MAX stores the argmax per
  output, then one thread per input pixel gathers the ``dy`` of the windows whose argmax it is
  (deterministic, no atomics); AVE gathers ``dy / divisor`` likewise; a window with divisor 0
  gives 0 and no gradient (the econv convention :data:`reference.pool.EMPTY_AVE_WINDOW`; Caffe: NaN).

Runs on a GPU or, with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported, on numba's CUDA
simulator, which executes every thread in Python: there the GEMM block is 4x4 threads instead of
16x16 and the element-wise kernels launch few threads that loop (grid-stride loops), so tiny
shapes run in seconds.  Without a GPU and without the simulator, importing this module raises ImportError.
"""

from __future__ import annotations

import math
import sys
import threading

import numba
import numpy as np
from numba import config, cuda

from reference.checks import FLOAT_DTYPES, like

from ._args import check_shape, check_x, conv_geometry, deconv_geometry, is_device_array
from ._args import image_chunks, pool_geometry


def _install_simulator_shared_lock():
    """Make the simulator's ``cuda.shared.array`` thread-safe.

    The simulator hands every thread of a block the same NumPy array for one ``cuda.shared.array``
    call site by looking it up in a per-block dict and creating it when absent; that
    look-up-then-create is not atomic, so two threads that reach the line together can each make
    their own "shared" array and the block then reads uninitialised memory (seen in CI as 1e30
    values from the tiled GEMM under load).  This wraps the look-up in a lock; the array is still
    keyed by the caller's (file, line) as the simulator does.  Only ever applied under the simulator.
    """
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support
    fake = kernelapi.FakeCUDAShared
    if getattr(fake, "_econv_locked", False):
        return
    original = fake.array
    lock = threading.Lock()

    def array(self, shape, dtype):
        if shape == 0:                      # dynamic shared memory: one buffer, no race
            return original(self, shape, dtype)
        if isinstance(dtype, numba.types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = np.empty(shape, dtype)
                self._allocations[caller] = res
        return res

    fake.array = array
    fake._econv_locked = True


SIMULATOR = bool(config.ENABLE_CUDASIM)
if SIMULATOR:
    # The simulator runs a block's threads as Python threads and its block manager polls them while
    # holding the GIL, so every syncthreads() waits out the 5 ms default switch interval once per
    # thread (measured: a 16x16x16 GEMM took 2.5 s).  Only under the simulator, switch faster.
    sys.setswitchinterval(min(sys.getswitchinterval(), 1e-4))
    _install_simulator_shared_lock()
else:
    # small layers launch small grids on purpose (grid-stride loops); numba would warn at every one
    config.CUDA_LOW_OCCUPANCY_WARNINGS = 0
if not cuda.is_available():
    raise ImportError("numba_kernels.cuda: no CUDA GPU is available (numba.cuda.is_available() is "
                      "False) and the CUDA simulator is off; set NUMBA_ENABLE_CUDASIM=1 before numba "
                      "is imported to run the kernels on the simulator")

__all__ = ["conv2d", "conv2d_backward", "deconv2d", "deconv2d_backward", "pool2d", "pool2d_backward",
           "relu_forward", "relu_backward", "softmax_loss_forward", "softmax_loss_backward",
           "sgd_update", "SIMULATOR", "TILE", "to_device"]

TILE = 4 if SIMULATOR else 16          # GEMM: TILE x TILE threads per block,
R = 4                                  # each computing R x R outputs of a BM x BM tile,
BM = TILE * R
BK = 16                                # with BK-deep K steps (a multiple of TILE)
THREADS = 32 if SIMULATOR else 256     # threads per block of the element-wise kernels
MAX_BLOCKS = 2 if SIMULATOR else 4096  # grid-stride loops cover the rest
COL_BUDGET = 1 << 24                   # elements of one column buffer
FLT_MAX = float(np.finfo(np.float32).max)
FLT_MIN = float(np.finfo(np.float32).tiny)
# element types of shared arrays: Numba types on a GPU, NumPy types in the simulator
F32, F64 = (np.float32, np.float64) if SIMULATOR else (numba.float32, numba.float64)


def _grid(n):
    return (max(1, min(MAX_BLOCKS, math.ceil(n / THREADS))), THREADS)


# ---- GEMM --------------------------------------------------------------------------------------

def _make_gemm(nbtype, zero):
    """The tiled GEMM kernel for one element type (shared arrays need a compile-time type).

    A block of ``TILE x TILE`` threads computes a ``BM x BM`` tile of ``c`` (``BM = TILE * R``):
    thread ``(ty, tx)`` owns the ``R x R`` outputs at rows ``ty + r*TILE`` and columns ``tx + q*TILE``
    (register blocking: each value loaded from shared memory serves R products).  The K loop stages a
    ``BM x BK`` tile of ``op(a)`` and a ``BK x BM`` tile of ``op(b)`` in shared memory per step.
    """
    @cuda.jit
    def gemm(a, b, c, trans_a, trans_b, accumulate):
        """``c (+)= op(a) @ op(b)``; ``op(a)`` is ``a`` (M, K) or, with trans_a, ``a.T`` of a (K, M)."""
        sa = cuda.shared.array((BM, BK), nbtype)
        sb = cuda.shared.array((BK, BM), nbtype)
        acc = cuda.local.array((R, R), nbtype)
        areg = cuda.local.array(R, nbtype)
        breg = cuda.local.array(R, nbtype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BM
        m, n = c.shape
        k_len = a.shape[0] if trans_a else a.shape[1]
        for r in range(R):
            for q in range(R):
                acc[r, q] = zero
        for k0 in range(0, k_len, BK):
            for r in range(R):
                for q in range(BK // TILE):
                    row = row0 + ty + r * TILE
                    k = k0 + tx + q * TILE
                    if row < m and k < k_len:
                        sa[ty + r * TILE, tx + q * TILE] = a[k, row] if trans_a else a[row, k]
                    else:
                        sa[ty + r * TILE, tx + q * TILE] = zero
                    col = col0 + tx + r * TILE
                    k = k0 + ty + q * TILE
                    if col < n and k < k_len:
                        sb[ty + q * TILE, tx + r * TILE] = b[col, k] if trans_b else b[k, col]
                    else:
                        sb[ty + q * TILE, tx + r * TILE] = zero
            cuda.syncthreads()
            for kk in range(BK):
                for r in range(R):
                    areg[r] = sa[ty + r * TILE, kk]
                    breg[r] = sb[kk, tx + r * TILE]
                for r in range(R):
                    for q in range(R):
                        acc[r, q] += areg[r] * breg[q]
            cuda.syncthreads()
        for r in range(R):
            row = row0 + ty + r * TILE
            for q in range(R):
                col = col0 + tx + q * TILE
                if row < m and col < n:
                    if accumulate:
                        c[row, col] += acc[r, q]
                    else:
                        c[row, col] = acc[r, q]
    return gemm


_GEMM = {np.dtype(np.float32): _make_gemm(F32, np.float32(0)),
         np.dtype(np.float64): _make_gemm(F64, np.float64(0))}


def _gemm(a, b, c, trans_a=False, trans_b=False, accumulate=False):
    """Launch the tiled GEMM on device matrices (see :func:`_make_gemm`)."""
    m, n = c.shape
    grid = (math.ceil(n / BM), math.ceil(m / BM))
    _GEMM[np.dtype(c.dtype)][grid, (TILE, TILE)](a, b, c, int(trans_a), int(trans_b),
                                                  int(accumulate))


# ---- im2col / col2im and layout kernels ---------------------------------------------------------

@cuda.jit
def _im2col(x, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, col):
    """``col[(c, i, j), (n, oy, ox)] = x[n, c, oy*sh - ph + i*eh, ox*sw - pw + j*ew]`` (0 outside)."""
    nb, c_in, h_in, w_in = x.shape
    width = nb * oh * ow
    total = col.shape[0] * width
    for t in range(cuda.grid(1), total, cuda.gridsize(1)):
        row = t // width
        q = t - row * width
        n = q // (oh * ow)
        oy = (q // ow) % oh
        ox = q % ow
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        h = oy * sh - ph + i * eh
        w = ox * sw - pw + j * ew
        if 0 <= h < h_in and 0 <= w < w_in:
            col[row, q] = x[n, c, h, w]
        else:
            col[row, q] = 0


@cuda.jit(device=True)
def _unravel(t, shape):
    """The 4-D index of flat position ``t`` of a C-ordered array of ``shape``."""
    d = t % shape[3]
    c = (t // shape[3]) % shape[2]
    b = (t // (shape[3] * shape[2])) % shape[1]
    return t // (shape[3] * shape[2] * shape[1]), b, c, d


@cuda.jit(device=True)
def _window_reader(pos, pad, tap, est, stride, n_out):
    """The output whose window reads input ``pos`` through tap ``tap`` along one axis
    (``o*stride - pad + tap*est == pos``), or -1 when there is none."""
    at = pos + pad - tap * est
    if at < 0 or at % stride != 0 or at // stride >= n_out:
        return -1
    return at // stride


@cuda.jit
def _col2im(col, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, bias, has_bias, x):
    """``x[n, c, h, w] = sum`` of the column entries read from ``(h, w)`` (+ ``bias[c]``): a gather."""
    for t in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, h, w = _unravel(t, x.shape)
        acc = col[0, 0] * 0
        for i in range(kh):
            oy = _window_reader(h, ph, i, eh, sh, oh)
            if oy < 0:
                continue
            for j in range(kw):
                ox = _window_reader(w, pw, j, ew, sw, ow)
                if ox >= 0:
                    acc += col[(c * kh + i) * kw + j, (n * oh + oy) * ow + ox]
        if has_bias:
            acc += bias[c]
        x[n, c, h, w] = acc


@cuda.jit
def _to_matrix(a, m):
    """``m[c, n*P + p] = a[n, c, p]`` for ``a`` (nb, C, P)."""
    nb, c_in, p_len = a.shape
    for t in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        p = t % p_len
        c = (t // p_len) % c_in
        n = t // (p_len * c_in)
        m[c, n * p_len + p] = a[n, c, p]


@cuda.jit
def _from_matrix(m, bias, has_bias, a):
    """``a[n, c, p] = m[c, n*P + p] (+ bias[c])``."""
    nb, c_in, p_len = a.shape
    for t in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        p = t % p_len
        c = (t // p_len) % c_in
        n = t // (p_len * c_in)
        v = m[c, n * p_len + p]
        if has_bias:
            v += bias[c]
        a[n, c, p] = v


@cuda.jit
def _channel_sums(a, out):
    """``out[c] = sum_{n, p} a[n, c, p]``: one block per channel, a shared-memory tree reduction."""
    part = cuda.shared.array(THREADS, F64)
    nb, c_in, p_len = a.shape
    c = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    acc = 0.0
    for t in range(tid, nb * p_len, THREADS):
        acc += a[t // p_len, c, t % p_len]
    part[tid] = acc
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if tid < step:
            part[tid] += part[tid + step]
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        out[c] = part[0]


def _bias_grad(dy3):
    """``db[c] = sum dy[n, c, :]`` of a device (N, C, P) array, in dy's dtype."""
    sums = cuda.device_array(dy3.shape[1], dtype=np.float64)
    _channel_sums[dy3.shape[1], THREADS](dy3, sums)
    return _cast(sums, dy3.dtype)


@cuda.jit
def _copy_cast(src, dst):
    for t in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[t] = src[t]


def _cast(a, dtype):
    if np.dtype(a.dtype) == np.dtype(dtype):
        return a
    out = cuda.device_array(a.shape, dtype=dtype)
    _copy_cast[_grid(a.size)](a.reshape(a.size), out.reshape(a.size))
    return out


# ---- host/device plumbing -----------------------------------------------------------------------

def to_device(a, dtype=None):
    """``a`` as a C-contiguous device array (a device array of the right dtype is passed through)."""
    if is_device_array(a):
        if dtype is not None and np.dtype(a.dtype) != np.dtype(dtype):
            raise ValueError(f"device array has dtype {np.dtype(a.dtype)}, expected {np.dtype(dtype)}")
        return a
    a = np.asarray(a)
    return cuda.to_device(np.ascontiguousarray(a if dtype is None else a.astype(dtype, copy=False)))


def _operand(a, dtype, what, name, shape=None):
    """A device copy of ``a`` in ``dtype``, checked like :func:`reference.checks.like`."""
    if is_device_array(a):
        if shape is not None:
            check_shape(a, what, name, shape)
        if np.dtype(a.dtype) != np.dtype(dtype):
            raise ValueError(f"{what}: {name} is a device array of dtype {np.dtype(a.dtype)}; "
                             f"x is {np.dtype(dtype)}")
        return a
    return to_device(like(a, dtype, what, name, shape))


def _result(on_device, *arrays):
    out = tuple(a if (a is None or on_device) else a.copy_to_host() for a in arrays)
    return out if len(out) > 1 else out[0]


def _chunks(n, per_image):
    """``(start, stop)`` of batch slices whose column buffer has at most COL_BUDGET elements."""
    return [(part.start, part.stop) for part in image_chunks(n, per_image, COL_BUDGET)]


def _columns(img, kernel, stride, pad, est, out_hw):
    (kh, kw), (sh, sw), (ph, pw), (eh, ew), (oh, ow) = kernel, stride, pad, est, out_hw
    nb, c = img.shape[:2]
    col = cuda.device_array((c * kh * kw, nb * oh * ow), dtype=img.dtype)
    _im2col[_grid(col.size)](img, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, col)
    return col


def _add_columns(col, kernel, stride, pad, est, out_hw, img, bias=None):
    (kh, kw), (sh, sw), (ph, pw), (eh, ew), (oh, ow) = kernel, stride, pad, est, out_hw
    b = bias if bias is not None else col[0]
    _col2im[_grid(img.size)](col, kh, kw, sh, sw, ph, pw, eh, ew, oh, ow, b, int(bias is not None),
                             img)


def _as_matrix(a):
    nb, c = a.shape[:2]
    p_len = a.size // (nb * c)
    m = cuda.device_array((c, nb * p_len), dtype=a.dtype)
    _to_matrix[_grid(a.size)](a.reshape(nb, c, p_len), m)
    return m


def _store_matrix(m, a, bias=None):
    nb, c = a.shape[:2]
    b = bias if bias is not None else m[0]
    _from_matrix[_grid(a.size)](m, b, int(bias is not None), a.reshape(nb, c, a.size // (nb * c)))


def _rows(m, g, per_group):
    return m[g * per_group: (g + 1) * per_group]


def _conv_setup(what, x, w):
    on_device = is_device_array(x)
    x = check_x(x, what)
    dtype = np.dtype(x.dtype)
    if not is_device_array(w):
        w = like(w, dtype, what, "w")
    return on_device, x, w, dtype   # the weight layout is checked by the op's geometry


# ---- eConv and deconvolution ---------------------------------------------------------------------

def conv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """eConv forward (:func:`reference.conv2d`)."""
    what = "conv2d"
    on_device, x, w, dtype = _conv_setup(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    og = o // group
    db = None if b is None else _operand(b, dtype, what, "b", (o,))
    x_dev, w_dev = to_device(x), _operand(w, dtype, what, "w")
    wm = w_dev.reshape(o, w_dev.size // o)
    y = cuda.device_array((n, o) + out_hw, dtype=dtype)
    for a, z in _chunks(n, c * kh * kw * out_hw[0] * out_hw[1]):
        col = _columns(x_dev[a:z], (kh, kw), stride, pad, est, out_hw)
        ym = cuda.device_array((o, col.shape[1]), dtype=dtype)
        kg = col.shape[0] // group
        for g in range(group):
            _gemm(_rows(wm, g, og), _rows(col, g, kg), _rows(ym, g, og))
        _store_matrix(ym, y[a:z], db)
    return _result(on_device, y)


def conv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """eConv backward (:func:`reference.conv2d_backward`): ``(dx, dw, db)``."""
    what = "conv2d_backward"
    on_device, x, w, dtype = _conv_setup(what, x, w)
    stride, pad, est, group, out_hw = conv_geometry(what, x.shape, w.shape, stride, pad, est, group)
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    og = o // group
    ddy = _operand(dy, dtype, what, "dy", (n, o) + out_hw)
    x_dev, w_dev = to_device(x), _operand(w, dtype, what, "w")
    wm = w_dev.reshape(o, w_dev.size // o)
    dx = cuda.device_array(x.shape, dtype=dtype)
    dw = cuda.device_array(wm.shape, dtype=dtype)
    first = True
    for a, z in _chunks(n, c * kh * kw * out_hw[0] * out_hw[1]):
        col = _columns(x_dev[a:z], (kh, kw), stride, pad, est, out_hw)
        dym = _as_matrix(ddy[a:z])
        kg = col.shape[0] // group
        for g in range(group):   # dw_g (+)= dy_g @ col_g^T
            _gemm(_rows(dym, g, og), _rows(col, g, kg), _rows(dw, g, og), trans_b=True,
                  accumulate=not first)
        first = False
        dcol = cuda.device_array(col.shape, dtype=dtype)
        for g in range(group):   # dcol_g = w_g^T @ dy_g
            _gemm(_rows(wm, g, og), _rows(dym, g, og), _rows(dcol, g, kg), trans_a=True)
        _add_columns(dcol, (kh, kw), stride, pad, est, out_hw, dx[a:z])
    db = _bias_grad(ddy.reshape(n, o, ddy.size // (n * o))) if bias else None
    return _result(on_device or is_device_array(dy), dx, dw.reshape(w.shape), db)


def deconv2d(x, w, b=None, stride=1, pad=0, est=1, group=1):
    """Deconvolution forward (:func:`reference.deconv2d`)."""
    what = "deconv2d"
    on_device, x, w, dtype = _conv_setup(what, x, w)
    stride, pad, est, group, out_hw, o = deconv_geometry(what, x.shape, w.shape, stride, pad, est,
                                                         group)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    cg = c // group
    db = None if b is None else _operand(b, dtype, what, "b", (o,))
    x_dev, w_dev = to_device(x), _operand(w, dtype, what, "w")
    wm = w_dev.reshape(c, w_dev.size // c)
    y = cuda.device_array((n, o) + out_hw, dtype=dtype)
    for a, z in _chunks(n, o * kh * kw * h * wd):
        xm = _as_matrix(x_dev[a:z])
        col = cuda.device_array((o * kh * kw, xm.shape[1]), dtype=dtype)
        kg = col.shape[0] // group
        for g in range(group):   # col_g = w_g^T @ x_g
            _gemm(_rows(wm, g, cg), _rows(xm, g, cg), _rows(col, g, kg), trans_a=True)
        _add_columns(col, (kh, kw), stride, pad, est, (h, wd), y[a:z], db)
    return _result(on_device, y)


def deconv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
    """Deconvolution backward (:func:`reference.deconv2d_backward`): ``(dx, dw, db)``."""
    what = "deconv2d_backward"
    on_device, x, w, dtype = _conv_setup(what, x, w)
    stride, pad, est, group, out_hw, o = deconv_geometry(what, x.shape, w.shape, stride, pad, est,
                                                         group)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    cg = c // group
    ddy = _operand(dy, dtype, what, "dy", (n, o) + out_hw)
    x_dev, w_dev = to_device(x), _operand(w, dtype, what, "w")
    wm = w_dev.reshape(c, w_dev.size // c)
    dx = cuda.device_array(x.shape, dtype=dtype)
    dw = cuda.device_array(wm.shape, dtype=dtype)
    first = True
    for a, z in _chunks(n, o * kh * kw * h * wd):
        col = _columns(ddy[a:z], (kh, kw), stride, pad, est, (h, wd))
        xm = _as_matrix(x_dev[a:z])
        dxm = cuda.device_array(xm.shape, dtype=dtype)
        kg = col.shape[0] // group
        for g in range(group):
            _gemm(_rows(xm, g, cg), _rows(col, g, kg), _rows(dw, g, cg), trans_b=True,
                  accumulate=not first)
            _gemm(_rows(wm, g, cg), _rows(col, g, kg), _rows(dxm, g, cg))
        first = False
        _store_matrix(dxm, dx[a:z])
    db = _bias_grad(ddy.reshape(n, o, ddy.size // (n * o))) if bias else None
    return _result(on_device or is_device_array(dy), dx, dw.reshape(w.shape), db)


# ---- ePool ------------------------------------------------------------------------------------

@cuda.jit(device=True)
def _window_argmax(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, eh, ew):
    """Flat ``h*W + w`` of the window's first maximum (strict ``>``, row-major taps), or -1."""
    h_in, w_in = x.shape[2], x.shape[3]
    best = -math.inf
    arg = -1
    for i in range(kh):
        h = oy * sh - ph + i * eh
        if h < 0 or h >= h_in:
            continue
        for j in range(kw):
            w = ox * sw - pw + j * ew
            if w < 0 or w >= w_in:
                continue
            v = x[n, c, h, w]
            if v > best:
                best = v
                arg = h * w_in + w
    return arg


@cuda.jit(device=True)
def _taps_inside(o, s, p, k, e, size):
    """AVE divisor along one axis: taps of window ``o`` in ``[-p, size + p)``."""
    cnt = 0
    for i in range(k):
        if o * s - p + i * e < size + p:
            cnt += 1
    return cnt


@cuda.jit
def _pool_fwd(x, kh, kw, sh, sw, ph, pw, eh, ew, is_max, y):
    h_in, w_in = x.shape[2], x.shape[3]
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, oy, ox = _unravel(t, y.shape)
        if is_max:
            arg = _window_argmax(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, eh, ew)
            v = x[n, c, arg // w_in, arg % w_in] if arg >= 0 else -FLT_MAX
            y[n, c, oy, ox] = v if v > -FLT_MAX else -FLT_MAX
        else:
            acc = x[0, 0, 0, 0] * 0
            for i in range(kh):
                h = oy * sh - ph + i * eh
                if h < 0 or h >= h_in:
                    continue
                for j in range(kw):
                    w = ox * sw - pw + j * ew
                    if 0 <= w < w_in:
                        acc += x[n, c, h, w]
            div = (_taps_inside(oy, sh, ph, kh, eh, h_in)
                   * _taps_inside(ox, sw, pw, kw, ew, w_in))
            y[n, c, oy, ox] = acc / div if div > 0 else 0


@cuda.jit
def _pool_argmax(x, kh, kw, sh, sw, ph, pw, eh, ew, arg):
    for t in range(cuda.grid(1), arg.size, cuda.gridsize(1)):
        n, c, oy, ox = _unravel(t, arg.shape)
        arg[n, c, oy, ox] = _window_argmax(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, eh, ew)


@cuda.jit
def _pool_bwd(dy, arg, kh, kw, sh, sw, ph, pw, eh, ew, is_max, dx):
    """One thread per input pixel: sum over the windows that contain it (a gather)."""
    h_in, w_in = dx.shape[2], dx.shape[3]
    oh, ow = dy.shape[2], dy.shape[3]
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        n, c, h, w = _unravel(t, dx.shape)
        acc = dy[0, 0, 0, 0] * 0
        for i in range(kh):
            oy = _window_reader(h, ph, i, eh, sh, oh)
            if oy < 0:
                continue
            for j in range(kw):
                ox = _window_reader(w, pw, j, ew, sw, ow)
                if ox < 0:
                    continue
                if is_max:
                    if arg[n, c, oy, ox] == h * w_in + w:
                        acc += dy[n, c, oy, ox]
                else:
                    div = (_taps_inside(oy, sh, ph, kh, eh, h_in)
                           * _taps_inside(ox, sw, pw, kw, ew, w_in))
                    acc += dy[n, c, oy, ox] / div
        dx[n, c, h, w] = acc


def _pool_args(geo):
    (kh, kw), (sh, sw), (ph, pw), (eh, ew) = geo.kernel, geo.stride, geo.pad, geo.est
    return kh, kw, sh, sw, ph, pw, eh, ew


def pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """ePool forward (:func:`reference.pool2d`)."""
    on_device = is_device_array(x)
    x = check_x(x, "pool2d")
    geo = pool_geometry("pool2d", x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    y = cuda.device_array(tuple(x.shape[:2]) + geo.out_hw, dtype=x.dtype)
    _pool_fwd[_grid(y.size)](to_device(x), *_pool_args(geo), int(mode == "max"), y)
    return _result(on_device, y)


def pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
    """ePool backward (:func:`reference.pool2d_backward`): ``dx``."""
    what = "pool2d_backward"
    on_device = is_device_array(x) or is_device_array(dy)
    x = check_x(x, what)
    geo = pool_geometry(what, x.shape, kernel, stride, pad, est, mode, round_mode, pad_end)
    ddy = _operand(dy, x.dtype, what, "dy", tuple(x.shape[:2]) + geo.out_hw)
    x_dev = to_device(x)
    arg = cuda.device_array(ddy.shape, dtype=np.int64)
    if mode == "max":
        _pool_argmax[_grid(arg.size)](x_dev, *_pool_args(geo), arg)
    dx = cuda.device_array(x.shape, dtype=x.dtype)
    _pool_bwd[_grid(dx.size)](ddy, arg, *_pool_args(geo), int(mode == "max"), dx)
    return _result(on_device, dx)


# ---- training-step kernels -------------------------------------------------------------------------

@cuda.jit
def _relu(x, dy, slope, backward, out):
    for t in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[t]
        g = dy[t] if backward else v
        out[t] = g if v > 0 else g * slope


def _flat(a):
    return a.reshape(a.size)


def _float_operand(a, what, name="x"):
    if is_device_array(a):
        if np.dtype(a.dtype) not in FLOAT_DTYPES:
            raise ValueError(f"{what}: {name} must be float32 or float64, got {np.dtype(a.dtype)}")
        return a
    a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{what}: {name} must be float32 or float64, got {a.dtype}")
    return to_device(a)


def relu_forward(x, negative_slope=0.0):
    """Caffe ReLU: ``y = x if x > 0 else negative_slope * x``."""
    dx = _float_operand(x, "relu_forward")
    y = cuda.device_array(dx.shape, dtype=dx.dtype)
    _relu[_grid(dx.size)](_flat(dx), _flat(dx), dx.dtype.type(negative_slope), 0, _flat(y))
    return _result(is_device_array(x), y)


def relu_backward(dy, x, negative_slope=0.0):
    """``dx = dy if x > 0 else negative_slope * dy``."""
    what = "relu_backward"
    x_dev = _float_operand(x, what)
    ddy = _operand(dy, x_dev.dtype, what, "dy", x_dev.shape)
    dx = cuda.device_array(x_dev.shape, dtype=x_dev.dtype)
    _relu[_grid(dx.size)](_flat(x_dev), _flat(ddy), x_dev.dtype.type(negative_slope), 1, _flat(dx))
    return _result(is_device_array(x) or is_device_array(dy), dx)


NORMALIZATIONS = ("FULL", "VALID", "BATCH_SIZE", "NONE")


@cuda.jit
def _softmax_rows(x, label, ignore, has_ignore, prob, loss, valid, bad):
    """Per position ``(n, q)`` of ``x`` (N, C, Q): softmax over C into ``prob``; the position's loss
    ``-log(max(p[label], FLT_MIN))`` and validity; ``bad[0] = 1`` for a label out of range."""
    nb, c_in, q_len = x.shape
    for t in range(cuda.grid(1), nb * q_len, cuda.gridsize(1)):
        n = t // q_len
        q = t - n * q_len
        m = x[n, 0, q]
        for c in range(1, c_in):
            v = x[n, c, q]
            if v > m:
                m = v
        s = 0.0
        for c in range(c_in):
            e = math.exp(x[n, c, q] - m)
            prob[n, c, q] = e
            s += e
        for c in range(c_in):
            prob[n, c, q] = prob[n, c, q] / s
        lab_f = label[t]
        lab = int(lab_f) if lab_f == lab_f else -1          # NaN -> out of range
        is_valid = not (has_ignore != 0 and lab_f == lab_f and lab == ignore)
        loss[t] = 0.0
        valid[t] = 0.0
        if is_valid:
            if lab < 0 or lab >= c_in or lab_f != lab_f:
                bad[0] = 1
            else:
                p = prob[n, lab, q]
                loss[t] = -math.log(FLT_MIN if p < FLT_MIN else p)   # NaN stays NaN
                valid[t] = 1.0


@cuda.jit
def _sum_two(a, b, out):
    """``out[0] = sum a``, ``out[1] = sum b`` (float64), one block, shared-memory tree."""
    pa = cuda.shared.array(THREADS, F64)
    pb = cuda.shared.array(THREADS, F64)
    tid = cuda.threadIdx.x
    sa = 0.0
    sb = 0.0
    for t in range(tid, a.size, THREADS):
        sa += a[t]
        sb += b[t]
    pa[tid] = sa
    pb[tid] = sb
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if tid < step:
            pa[tid] += pa[tid + step]
            pb[tid] += pb[tid + step]
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        out[0] = pa[0]
        out[1] = pb[0]


def _loss_setup(what, x, label, ignore_label, normalization):
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"{what}: normalization must be one of {', '.join(NORMALIZATIONS)}, got "
                         f"{normalization!r}")
    x_dev = _float_operand(x, what)
    if len(x_dev.shape) < 2:
        raise ValueError(f"{what}: x must have at least 2 axes (N, C, ...), got shape {x_dev.shape}")
    nb, c_in = x_dev.shape[:2]
    q_len = x_dev.size // (nb * c_in)
    if is_device_array(label):
        if label.size != nb * q_len:
            raise ValueError(f"{what}: label has {label.size} values; x {tuple(x_dev.shape)} needs "
                             f"{nb}*{q_len} = {nb * q_len}")
        dlabel = _cast(label.reshape(label.size), np.float64)
    else:
        lab = np.asarray(label, dtype=np.float64)
        if lab.size != nb * q_len:
            raise ValueError(f"{what}: label has {lab.size} values; x {tuple(x_dev.shape)} needs "
                             f"{nb}*{q_len} = {nb * q_len}")
        dlabel = to_device(np.trunc(lab).reshape(-1))
    x3 = x_dev.reshape(nb, c_in, q_len)
    ignore = 0 if ignore_label is None else int(ignore_label)
    return x_dev, x3, dlabel, ignore, int(ignore_label is not None), nb, q_len


def _normalizer(normalization, nb, q_len, valid_count):
    norm = {"FULL": nb * q_len, "VALID": valid_count, "BATCH_SIZE": nb, "NONE": 1}[normalization]
    return max(1.0, float(norm))


def softmax_loss_forward(x, label, ignore_label=None, normalization="VALID"):
    """Caffe SoftmaxWithLoss over axis 1: ``(loss, prob)``.  ``loss`` is a Python float (the one
    number copied to the host), ``prob`` has ``x``'s shape and kind.  Labels are truncated to int;
    positions whose label equals ``ignore_label`` do not count; normalizer FULL (N*Q), VALID (count of
    counted positions), BATCH_SIZE (N) or NONE (1), at least 1 (:mod:`reference.layers.softmax`)."""
    what = "softmax_loss_forward"
    x_dev, x3, dlabel, ignore, has_ignore, nb, q_len = _loss_setup(what, x, label, ignore_label,
                                                                  normalization)
    prob = cuda.device_array(x3.shape, dtype=x_dev.dtype)
    loss = cuda.device_array(nb * q_len, dtype=np.float64)
    valid = cuda.device_array(nb * q_len, dtype=np.float64)
    bad = cuda.to_device(np.zeros(1, np.int32))
    _softmax_rows[_grid(nb * q_len)](x3, dlabel, ignore, has_ignore, prob, loss, valid, bad)
    sums = cuda.device_array(2, dtype=np.float64)
    _sum_two[1, THREADS](loss, valid, sums)
    total, count = sums.copy_to_host()
    if bad.copy_to_host()[0]:
        raise ValueError(f"{what}: label values must be integers in [0, {x3.shape[1]}) or the "
                         f"ignore_label {ignore_label}")
    value = total / _normalizer(normalization, nb, q_len, count)
    return float(value), _result(is_device_array(x), prob.reshape(x_dev.shape))


@cuda.jit
def _softmax_loss_grad(prob, label, ignore, has_ignore, scale, dx):
    nb, c_in, q_len = prob.shape
    for t in range(cuda.grid(1), prob.size, cuda.gridsize(1)):
        q = t % q_len
        c = (t // q_len) % c_in
        n = t // (q_len * c_in)
        lab_f = label[n * q_len + q]
        lab = int(lab_f)
        if has_ignore != 0 and lab == ignore:
            dx[n, c, q] = 0
        else:
            g = prob[n, c, q] - (1.0 if c == lab else 0.0)
            dx[n, c, q] = g * scale


@cuda.jit
def _count_valid(label, ignore, has_ignore, out):
    for t in range(cuda.grid(1), label.size, cuda.gridsize(1)):
        out[t] = 0.0 if (has_ignore != 0 and int(label[t]) == ignore) else 1.0


def softmax_loss_backward(prob, label, ignore_label=None, normalization="VALID", loss_weight=1.0):
    """``dx = (prob - onehot(label)) * loss_weight / normalizer``, 0 at ignored positions."""
    what = "softmax_loss_backward"
    dprob, p3, dlabel, ignore, has_ignore, nb, q_len = _loss_setup(what, prob, label, ignore_label,
                                                                   normalization)
    count = nb * q_len
    if normalization == "VALID" and has_ignore:
        flags = cuda.device_array(nb * q_len, dtype=np.float64)
        _count_valid[_grid(flags.size)](dlabel, ignore, has_ignore, flags)
        sums = cuda.device_array(2, dtype=np.float64)
        _sum_two[1, THREADS](flags, flags, sums)
        count = sums.copy_to_host()[0]
    scale = float(loss_weight) / _normalizer(normalization, nb, q_len, count)
    dx = cuda.device_array(p3.shape, dtype=dprob.dtype)
    _softmax_loss_grad[_grid(dx.size)](p3, dlabel, ignore, has_ignore, scale, dx)
    return _result(is_device_array(prob), dx.reshape(dprob.shape))


@cuda.jit
def _sgd(w, g, v, momentum, rate, decay):
    for t in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        step = momentum * v[t] + rate * (g[t] + decay * w[t])
        v[t] = step
        w[t] -= step


def sgd_update(w, dw, v, lr, momentum=0.0, weight_decay=0.0, lr_mult=1.0, decay_mult=1.0):
    """Caffe's SGD step on device arrays, in place (:mod:`reference.solver`)::

        V = momentum * V + lr * lr_mult * (dw + weight_decay * decay_mult * w);   w -= V

    ``w`` and ``v`` must be device arrays of the same shape and dtype (they are updated); ``dw``
    may be a NumPy or device array.  Returns ``(w, v)``."""
    what = "sgd_update"
    if not (is_device_array(w) and is_device_array(v)):
        raise ValueError(f"{what}: w and v must be device arrays (updated in place)")
    dtype = np.dtype(w.dtype)
    check_shape(v, what, "v", w.shape)
    g = _operand(dw, dtype, what, "dw", tuple(w.shape))
    if np.dtype(v.dtype) != dtype:
        raise ValueError(f"{what}: v has dtype {np.dtype(v.dtype)}, w has {dtype}")
    t = dtype.type
    _sgd[_grid(w.size)](_flat(w), _flat(g), _flat(v), t(momentum), t(lr * lr_mult),
                        t(weight_decay * decay_mult))
    return w, v
