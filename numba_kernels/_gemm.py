"""``C = alpha * op(A) @ op(B) + beta * C`` on views with any leading dimension: the CBLAS ``?gemm`` of
the OpenBLAS that NumPy itself loaded (same library, same thread pool as ``np.dot``).

``np.dot`` has no ``beta`` and needs each operand to be a whole 2-D array: accumulating the k*k taps of
a convolution into one output with it costs an extra read-modify-write pass of the output per tap.
CBLAS takes a pointer and a leading dimension, so a tap's operand can be a window of a larger
buffer (a column offset into a flattened padded plane) and every tap adds into the same output.

The library is NumPy's bundled ``scipy-openblas`` (symbols ``scipy_cblas_sgemm64_`` and
``scipy_cblas_dgemm64_``, 64-bit integers); :func:`available` is False when NumPy was built against
another BLAS (MKL, Accelerate, a system OpenBLAS), and callers then fall back to ``np.dot``.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading

import numpy as np

from . import _tasks

__all__ = ["available", "gemm", "dot_into", "dot_batch", "dot_rows", "blas_threads"]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

_SYMBOLS = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", ctypes.c_float),
            np.dtype(np.float64): ("scipy_cblas_dgemm64_", ctypes.c_double)}
_funcs = None
_threads = None          # (get, set) of the library's thread count, or None


def _library():
    """NumPy's bundled OpenBLAS (already loaded by ``import numpy``; dlopen returns that copy)."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _load():
    global _funcs
    if _funcs is None:
        _funcs = {}
        lib = _library()
        for dtype, (name, scalar) in _SYMBOLS.items():
            fn = getattr(lib, name, None) if lib is not None else None
            if fn is None:
                continue
            i64, ptr = ctypes.c_int64, ctypes.c_void_p
            fn.restype = None
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, scalar, ptr, i64,
                           ptr, i64, scalar, ptr, i64]
            _funcs[dtype] = fn
    return _funcs


def _thread_control():
    """``(get, set)`` of NumPy's OpenBLAS thread count (``scipy_openblas_{get,set}_num_threads64_``),
    or None when that library is not there."""
    global _threads
    if _threads is None:
        lib = _library()
        get = getattr(lib, "scipy_openblas_get_num_threads64_", None) if lib is not None else None
        put = getattr(lib, "scipy_openblas_set_num_threads64_", None) if lib is not None else None
        if get is not None and put is not None:
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            _threads = (get, put)
        else:
            _threads = ()
    return _threads or None


def blas_threads() -> int:
    """NumPy's OpenBLAS thread count (1 when it cannot be read)."""
    control = _thread_control()
    return int(control[0]()) if control else 1


def available(dtype) -> bool:
    """Whether :func:`gemm` works for ``dtype`` (float32 / float64) in this process."""
    return np.dtype(dtype) in _load()


def _is_row_major(m) -> bool:
    """Whether the 2-D view ``m`` is a matrix :func:`gemm` takes: unit stride along its last axis (the
    stride of an axis of length 1 does not matter), a leading dimension of at least its width."""
    item = m.itemsize
    rows, cols = m.shape
    return ((cols <= 1 or m.strides[1] == item)
            and (rows <= 1 or (m.strides[0] >= cols * item and m.strides[0] % item == 0)))


def _operand(a):
    """(pointer, leading dimension) of a row-major 2-D view (:func:`_is_row_major`)."""
    if a.ndim != 2 or not _is_row_major(a):
        raise ValueError(f"gemm: operand with shape {a.shape} and strides {a.strides} is not a "
                         "row-major matrix view")
    rows, cols = a.shape
    return a.ctypes.data, a.strides[0] // a.itemsize if rows > 1 else max(cols, 1)


def gemm(a, b, c, *, trans_a=False, trans_b=False, alpha=1.0, beta=1.0):
    """``c = alpha * op(a) @ op(b) + beta * c`` in place; ``op(m)`` is ``m.T`` when ``trans_*``.

    ``a``, ``b``, ``c``: 2-D views of one dtype with unit stride along the last axis (windows of
    bigger buffers are fine; ``c`` must not overlap ``a`` or ``b``)."""
    fn = _load()[c.dtype]
    m, n = c.shape
    ka = a.shape[0] if trans_a else a.shape[1]
    kb = b.shape[1] if trans_b else b.shape[0]
    ma = a.shape[1] if trans_a else a.shape[0]
    nb = b.shape[0] if trans_b else b.shape[1]
    if ka != kb or ma != m or nb != n or not (a.dtype == b.dtype == c.dtype):
        raise ValueError(f"gemm: shapes {a.shape}{'T' if trans_a else ''} @ "
                         f"{b.shape}{'T' if trans_b else ''} -> {c.shape} do not match")
    if not c.flags.writeable:
        raise ValueError("gemm: output is read-only")
    pa, lda = _operand(a)
    pb, ldb = _operand(b)
    pc, ldc = _operand(c)
    if m == 0 or n == 0:
        return c
    fn(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, ka,
       alpha, pa, lda, pb, ldb, beta, pc, ldc)
    return c


def _row_major(a):
    """``(m, transposed)``: ``m`` a view :func:`gemm` takes with ``a == m.T`` when ``transposed``; a
    C-contiguous copy when ``a`` is neither a row- nor a column-major view (negative or zero
    strides, both axes strided)."""
    if _is_row_major(a):
        return a, False
    if _is_row_major(a.T):
        return a.T, True
    return np.ascontiguousarray(a), False


def dot_into(a, b, c):
    """``c[...] = a @ b`` for 2-D views; ``c`` may be a window of a bigger matrix (a column range),
    which ``np.dot(a, b, out=c)`` refuses: then the product goes through :func:`gemm`.  Operands of
    other dtypes than ``c``, or without NumPy's OpenBLAS, go through a temporary."""
    same = a.dtype == b.dtype == c.dtype
    if same and c.flags.c_contiguous:
        np.dot(a, b, out=c)
    elif same and available(c.dtype) and _is_row_major(c):
        (ma, ta), (mb, tb) = _row_major(a), _row_major(b)
        gemm(ma, mb, c, trans_a=ta, trans_b=tb, beta=0.0)
    else:
        c[...] = np.dot(a, b)
    return c


# ---- a batch of independent GEMMs as one parallel region --------------------------------------------

_batch_lock = threading.Lock()


def dot_batch(jobs):
    """``c[...] = a @ b`` (:func:`dot_into`) for every ``(a, b, c)`` in ``jobs`` (independent products:
    no ``c`` is another job's operand), as one parallel region (:func:`._tasks.run`).

    With ``T > 1`` BLAS threads, every multi-threaded call forks and joins the library's pool: when
    the machine is shared and a pool thread waits for a core, the call waits with it for a
    scheduler slice (measured on 2 shared cores: 16 GEMMs of 512x512x196 took 124 ms with 2 BLAS
    threads and 13 ms with 1).  So the batch runs single-threaded BLAS calls on ``T`` Python
    threads (NumPy releases the GIL inside BLAS) that take jobs from one counter
    (:mod:`._tasks`): the caller works too, and a thread that gets no core leaves its jobs to the
    others instead of stalling them.  The library's thread count is 1 during the batch (a process-wide setting; batches are
    serialized by a lock) and restored after.  Without NumPy's OpenBLAS, or with one thread, the
    jobs run one after the other.
    """
    threads = blas_threads()
    # the biggest products first: the last job a thread takes is a small one, so the threads finish
    # together (longest-processing-time order)
    by_size = sorted(jobs, key=lambda job: -job[0].shape[0] * job[0].shape[1] * job[1].shape[1])
    tasks = [functools.partial(dot_into, a, b, c) for a, b, c in by_size]
    if threads <= 1 or len(jobs) < 2:
        _tasks.run(tasks, 1)
        return
    control = _thread_control()
    with _batch_lock:
        control[1](1)
        try:
            _tasks.run(tasks, threads)
        finally:
            control[1](threads)


def dot_rows(a, b, out=None):
    """``np.dot(a, b)`` (2-D operands) as :func:`dot_batch` jobs over blocks of the output's rows;
    returns ``out`` (a new C-contiguous array when not given; a given one must be C-contiguous).

    Why not ``np.dot``: after a multi-threaded call OpenBLAS's pool threads spin, each holding a core
    for about 0.1 s (measured: 48-50 ms of CPU in the 50 ms after one 2-thread ``np.dot``), and
    every Numba kernel that runs meanwhile gets half the machine (a 64-channel im2col took 2.7 ms
    after a GEMM instead of 0.5 ms).  Single-threaded calls on :func:`dot_batch`'s threads leave
    nothing spinning."""
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    if not out.flags.c_contiguous:
        raise ValueError("dot_rows: out must be C-contiguous")
    threads = blas_threads()
    rows = a.shape[0]
    if threads <= 1 or rows < 2 * threads:
        np.dot(a, b, out=out)
        return out
    dot_batch([(a[r0:r1], b, out[r0:r1]) for r0, r1 in _tasks.blocks(rows, threads)])
    return out
