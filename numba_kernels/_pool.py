"""ePool as direct Numba CPU kernels (no column buffer: pooling has no GEMM to feed).

Window of output ``(oy, ox)``: the taps ``(oy*s_h - p_h + i*est_h, ox*s_w - p_w + j*est_w)`` for
``0 <= i < kh, 0 <= j < kw``; taps outside the image are absent (:mod:`reference.pool` states the
Caffe rules these kernels follow).

The kernels walk one output row at a time and, for each tap ``(i, j)``, sweep the whole row of
outputs over the input row (``ox`` in the tap's range ``[lo_j, hi_j)`` of :mod:`._im2col`): the inner
loop is the same operation on consecutive outputs, which LLVM turns into SIMD code (see
Note [unsigned indices] there).

- MAX forward: ``acc[ox] = v if v > acc[ox] else acc[ox]`` starting from ``-inf`` (NaN never wins a
  ``>``), then ``max(acc, -FLT_MAX)`` (Caffe's initial accumulator, which is also what a window with
  no real value gives).
- MAX argmax (Caffe's ``max_idx_``): the first maximum's flat index in its (n, c) plane
  (``h*W + w``; -1 for a window with no real value), found with the same strict ``>`` in row-major
  tap order (i outer, j inner), so the first maximum wins a tie and NaN never wins.
  :func:`pool_argmax_dense` (stride 1) and :func:`pool_argmax_strided` are separable: a horizontal
  pass gives every row window (row ``r`` of the padded plane, one output column) its maximum and
  first column, then a vertical pass over the ``kh`` row windows of each output, strict ``>`` again
  so the upper row keeps a tie, gives the row-major first maximum.  Both passes are branch-free
  selects (``at = j if v > best else at``), which vectorize, with taps 2 and 3 unrolled.  Measured
  through ``numba_kernels.cpu`` (2 shared threads, 512 channels, medians of 15 interleaved rounds):
  at stride 1 (28x28 and 56x56, est 2 and 4, kernel 2 and kernel 3 pad 1) 0.67-1.05x the plain
  forward's time (the kernel before, max sweep then first-tap sweep: 0.99-1.74x); at stride 2
  (28x28 to 112x112) 1.3-2.3x (the row kernel: 3.9-5.1x).  :func:`pool_argmax` (few planes, or
  int64 indices) tracks the index per output row with a branch, which keeps LLVM from vectorizing.
  All three also write ``y``.
- MAX backward scatters ``dy`` through the argmax (:func:`pool_scatter`); no real value, no gradient.
- AVE: the sum of the taps on the image divided by ``count_h(oy) * count_w(ox)``, the taps that lie in
  ``[-p, H + p)`` (padding inside the padded extent counts, the ceil overhang and ``pad_end`` do
  not); divisor 0 gives 0 and no gradient, the econv convention of
  :data:`reference.pool.EMPTY_AVE_WINDOW` (Caffe computes 0/0 = NaN there).
"""

from __future__ import annotations

import numpy as np
from numba import int64, njit, prange, uint64

from ._im2col import _add, tap_ranges

__all__ = ["pool_forward", "pool_forward_dense", "pool_argmax", "pool_argmax_dense", "pool_argmax_strided",
           "pool_scatter",
           "pool_backward"]

FLT_MAX = float(np.finfo(np.float32).max)


@njit(cache=True)
def _counts(o_n, s, p, k, e, size):
    """AVE divisor along one axis, per output: taps of the window that lie in ``[-p, size + p)``."""
    out = np.zeros(o_n, np.int64)
    for o in range(o_n):
        for i in range(k):
            if o * s - p + i * e < size + p:
                out[o] += 1
    return out


@njit(cache=True, inline="always")
def _max_row(acc, a0, x, x0, s, lo, hi):
    """``acc[a0 + o] = max(acc[a0 + o], x[x0 + o*s])`` for ``o`` in ``[lo, hi)``; NaN never wins."""
    if s == 1:
        for o in range(lo, hi):
            v = x[uint64(x0 + o)]
            a = acc[uint64(a0 + o)]
            acc[uint64(a0 + o)] = v if v > a else a
    else:
        for o in range(lo, hi):
            v = x[uint64(x0 + o * s)]
            a = acc[uint64(a0 + o)]
            acc[uint64(a0 + o)] = v if v > a else a


@njit(cache=True, inline="always")
def _sum_row(acc, a0, x, x0, s, lo, hi):
    """``acc[a0 + o] += x[x0 + o*s]`` for ``o`` in ``[lo, hi)``."""
    if s == 1:
        for o in range(lo, hi):
            acc[uint64(a0 + o)] += x[uint64(x0 + o)]
    else:
        for o in range(lo, hi):
            acc[uint64(a0 + o)] += x[uint64(x0 + o * s)]


@njit(parallel=True, cache=True)
def pool_forward(x, kh, kw, sh, sw, ph, pw, eh, ew, is_max, y):
    """``y`` (nb, C, oh, ow) from ``x`` (nb, C, H, W); parallel over the output rows of all planes."""
    nb, c_in, h_in, w_in = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    lo, hi = tap_ranges(kw, ew, sw, pw, ow, w_in)
    cnt_h = _counts(oh, sh, ph, kh, eh, h_in)
    cnt_w = _counts(ow, sw, pw, kw, ew, w_in)
    for t in prange(nb * c_in * oh):          # t = (plane, oy): y's row number
        plane = t // oh
        oy = t - plane * oh
        a0 = t * ow
        x_plane = plane * h_in * w_in
        if is_max:          # two separate loop nests: a flag tested inside them costs 1.5x
            yf[a0: a0 + ow] = -np.inf
            for i in range(kh):
                h = oy * sh - ph + i * eh
                if 0 <= h < h_in:
                    for j in range(kw):
                        _max_row(yf, a0, xf, x_plane + h * w_in + j * ew - pw, sw, lo[j], hi[j])
        else:
            yf[a0: a0 + ow] = 0.0
            for i in range(kh):
                h = oy * sh - ph + i * eh
                if 0 <= h < h_in:
                    for j in range(kw):
                        _sum_row(yf, a0, xf, x_plane + h * w_in + j * ew - pw, sw, lo[j], hi[j])
        for ox in range(ow):
            a = yf[a0 + ox]
            if is_max:
                yf[a0 + ox] = a if a > -FLT_MAX else -FLT_MAX
            else:
                div = cnt_h[oy] * cnt_w[ox]
                yf[a0 + ox] = a / div if div > 0 else 0.0


@njit(cache=True)
def _padded_plane(x, n, c, hp, wp, ph, pw, fill):
    """Plane ``(n, c)`` of ``x`` copied into a flat ``hp x wp`` buffer at offset ``(ph, pw)``, every
    absent position (padding, ``pad_end``, past the input) holding ``fill``: row ``r`` of the buffer
    is input row ``r - ph``, column ``q`` input column ``q - pw``."""
    h_in, w_in = x.shape[2], x.shape[3]
    xp = np.empty(hp * wp, x.dtype)
    for r in range(hp):
        h = r - ph
        base = r * wp
        if h < 0 or h >= h_in:
            xp[base: base + wp] = fill
            continue
        lo = min(max(pw, 0), wp)                 # columns q with 0 <= q - pw < W
        hi = min(max(w_in + pw, lo), wp)
        xp[base: base + lo] = fill
        xp[base + lo: base + hi] = x[n, c, h, lo - pw: hi - pw]
        xp[base + hi: base + wp] = fill
    return xp


@njit(parallel=True, cache=True)
def pool_forward_dense(x, kh, kw, ph, pw, eh, ew, is_max, y):
    """:func:`pool_forward` for stride 1 (every densified ePool), one (n, c) plane per task.

    The plane is first copied into a padded plane ``xp`` of width ``Wp = ow + (kw-1)*est_w`` whose
    absent positions hold ``-inf`` (MAX) or 0 (AVE); then every tap is one long contiguous sweep
    ``acc[t] = max(acc[t], xp[t + i*est_h*Wp + j*est_w])`` over ``oh`` rows of width ``Wp`` (the
    ``Wp - ow`` extra columns are computed and dropped).  Rows of ``ow`` outputs are too short for
    SIMD loops; a sweep over the whole plane is not (measured 2-3x faster than :func:`pool_forward`).
    """
    nb, c_in, h_in, w_in = x.shape
    oh, ow = y.shape[2], y.shape[3]
    hp = oh + (kh - 1) * eh
    wp = ow + (kw - 1) * ew
    span = (oh - 1) * wp + ow
    fill = -np.inf if is_max else 0.0
    cnt_h = _counts(oh, 1, ph, kh, eh, h_in)
    cnt_w = _counts(ow, 1, pw, kw, ew, w_in)
    for plane in prange(nb * c_in):
        n = plane // c_in
        c = plane - n * c_in
        xp = _padded_plane(x, n, c, hp, wp, ph, pw, fill)
        acc = np.empty(span, x.dtype)
        acc[:] = fill
        other = np.empty(span, x.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * eh * wp + j * ew
                if is_max:
                    # into the other buffer: ``acc[t] = v if v > acc[t] else acc[t]`` in place
                    # becomes a conditional store, which LLVM does not vectorize (5x slower)
                    for t in range(span):
                        v = xp[uint64(t + off)]
                        a = acc[uint64(t)]
                        other[uint64(t)] = v if v > a else a
                    acc, other = other, acc
                else:
                    for t in range(span):
                        acc[uint64(t)] += xp[uint64(t + off)]
        for oy in range(oh):
            for ox in range(ow):
                a = acc[oy * wp + ox]
                if is_max:
                    y[n, c, oy, ox] = a if a > -FLT_MAX else -FLT_MAX
                else:
                    div = cnt_h[oy] * cnt_w[ox]
                    y[n, c, oy, ox] = a / div if div > 0 else 0.0


@njit(parallel=True, cache=True)
def pool_argmax(x, kh, kw, sh, sw, ph, pw, eh, ew, y, arg):
    """MAX ``y`` and its ``arg`` (nb, C, oh, ow: flat index in the plane, -1 for none, int32 or
    int64) at any stride; parallel over (n, c) planes, one output row at a time."""
    nb, c_in, h_in, w_in = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xf = x.reshape(-1)
    lo, hi = tap_ranges(kw, ew, sw, pw, ow, w_in)
    for plane in prange(nb * c_in):
        n = plane // c_in
        c = plane - n * c_in
        x_plane = plane * h_in * w_in
        best = np.empty(ow, x.dtype)
        at_best = np.empty(ow, np.int64)
        for oy in range(oh):
            best[:] = -np.inf
            at_best[:] = -1
            for i in range(kh):
                h = oy * sh - ph + i * eh
                if 0 <= h < h_in:
                    for j in range(kw):
                        x0 = h * w_in + j * ew - pw
                        for ox in range(lo[j], hi[j]):
                            at = x0 + ox * sw
                            v = xf[uint64(x_plane + at)]
                            if v > best[ox]:
                                best[ox] = v
                                at_best[ox] = at
            for ox in range(ow):
                a = best[ox]
                y[n, c, oy, ox] = a if a > -FLT_MAX else -FLT_MAX
                arg[n, c, oy, ox] = at_best[ox]


@njit(cache=True, inline="always")
def _clean_plane(xf, x0, h_in, w_in, hp, wp, ph, pw, xp):
    """The plane at ``xf[x0:]`` (``h_in x w_in``) copied into the flat ``hp x wp`` buffer ``xp`` at
    offset ``(ph, pw)``, as :func:`_padded_plane` does, with every absent position and every NaN
    holding ``-inf``: neither can win a strict ``>``, so the sweeps need no NaN test."""
    ninf = xp.dtype.type(-np.inf)
    lo = min(max(pw, 0), wp)                 # columns q with 0 <= q - pw < W
    hi = min(max(w_in + pw, lo), wp)
    for r in range(hp):
        h = r - ph
        base = r * wp
        if h < 0 or h >= h_in:
            for q in range(wp):
                xp[uint64(base + q)] = ninf
            continue
        for q in range(lo):
            xp[uint64(base + q)] = ninf
        src = x0 + h * w_in - pw
        for q in range(lo, hi):
            v = xf[uint64(src + q)]
            xp[uint64(base + q)] = v if v > ninf else ninf
        for q in range(hi, wp):
            xp[uint64(base + q)] = ninf


@njit(cache=True, inline="always")
def _take(best, at, v, v_at):
    """``(v, v_at)`` if ``v > best`` else ``(best, at)``: two selects, no branch (vectorizes)."""
    wins = v > best
    return (v if wins else best), (v_at if wins else at)


@njit(cache=True, inline="always")
def _row_first_max(xp, n, kw, ew, hm, hj):
    """Horizontal pass: ``hm[t] = max_j xp[t + j*ew]`` over ``j < kw`` and ``hj[t] = j*ew`` of the
    first ``j`` holding it (strict ``>`` from ``j = 0``), for ``t < n``.  Kernels 1-3 wide are one
    fused sweep each; wider ones add one in-place sweep per further tap."""
    zero = np.int32(0)
    e1 = np.int32(ew)
    e2 = np.int32(2 * ew)
    if kw == 1:
        for t in range(n):
            hm[uint64(t)] = xp[uint64(t)]
            hj[uint64(t)] = zero
    elif kw == 2:
        for t in range(n):
            m, at = _take(xp[uint64(t)], zero, xp[uint64(t + ew)], e1)
            hm[uint64(t)] = m
            hj[uint64(t)] = at
    else:
        for t in range(n):
            m, at = _take(xp[uint64(t)], zero, xp[uint64(t + ew)], e1)
            m, at = _take(m, at, xp[uint64(t + 2 * ew)], e2)
            hm[uint64(t)] = m
            hj[uint64(t)] = at
        for j in range(3, kw):
            ej = np.int32(j * ew)
            for t in range(n):
                m, at = _take(hm[uint64(t)], hj[uint64(t)], xp[uint64(t + j * ew)], ej)
                hm[uint64(t)] = m
                hj[uint64(t)] = at


@njit(cache=True, inline="always")
def _row_tap(hm, hj, t, off, code):
    """Row window ``t + off`` of the horizontal pass: its maximum and column offset ``+ code``."""
    return hm[uint64(t + off)], hj[uint64(t + off)] + code


@njit(cache=True, inline="always")
def _store_max(yf, af, o, best, at):
    """Output ``o``: ``y = max(best, -FLT_MAX)``, ``arg = at`` (-1 when ``best`` is ``-inf``: no
    real value in the window)."""
    yf[uint64(o)] = best if best > -FLT_MAX else -FLT_MAX
    af[uint64(o)] = at if best > -np.inf else np.int32(-1)


@njit(parallel=True, cache=True)
def pool_argmax_dense(x, kh, kw, ph, pw, eh, ew, y, arg, per=8):
    """:func:`pool_argmax` for stride 1 (int32 ``arg``), separable.  Each plane is copied into a
    padded plane ``xp`` of width ``Wp`` (:func:`_clean_plane`: absent and NaN are ``-inf``); the
    horizontal pass gives every position ``t`` of ``xp`` its row window's maximum and first column
    offset (:func:`_row_first_max`); the vertical pass, fused with the output, takes over the
    ``kh`` row windows ``t + i*est_h*Wp`` with strict ``>`` in ``i`` order, so an earlier row keeps
    a tie: together the row-major first maximum.  The winner's flat index is
    ``(oy - p_h)*W + ox - p_w + i*est_h*W + j*est_w``.  Each task takes ``per`` planes, reusing
    one set of buffers (an allocation per plane cost a third of the time at 28x28)."""
    nb, c_in, h_in, w_in = x.shape
    oh, ow = y.shape[2], y.shape[3]
    hp = oh + (kh - 1) * eh
    wp = ow + (kw - 1) * ew
    nh = (hp - 1) * wp + ow                 # positions with a whole row window in xp
    planes = nb * c_in
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    af = arg.reshape(-1)
    o1, o2 = eh * wp, 2 * eh * wp           # row taps 1 and 2 in xp, and in the plane:
    zero, c1, c2 = np.int32(0), np.int32(eh * w_in), np.int32(2 * eh * w_in)
    for task in prange((planes + per - 1) // per):
        xp = np.empty(hp * wp, x.dtype)
        hm = np.empty(nh, x.dtype)
        hj = np.empty(nh, np.int32)
        for plane in range(task * per, min(planes, task * per + per)):
            _clean_plane(xf, plane * h_in * w_in, h_in, w_in, hp, wp, ph, pw, xp)
            _row_first_max(xp, nh, kw, ew, hm, hj)
            for oy in range(oh):
                t0 = oy * wp
                o0 = (plane * oh + oy) * ow
                row = np.int32((oy - ph) * w_in - pw)
                if kh == 1:
                    for ox in range(ow):
                        m, at = _row_tap(hm, hj, t0 + ox, 0, zero)
                        _store_max(yf, af, o0 + ox, m, row + np.int32(ox) + at)
                elif kh == 2:
                    for ox in range(ow):
                        m, at = _row_tap(hm, hj, t0 + ox, 0, zero)
                        v, v_at = _row_tap(hm, hj, t0 + ox, o1, c1)
                        m, at = _take(m, at, v, v_at)
                        _store_max(yf, af, o0 + ox, m, row + np.int32(ox) + at)
                elif kh == 3:
                    for ox in range(ow):
                        m, at = _row_tap(hm, hj, t0 + ox, 0, zero)
                        v, v_at = _row_tap(hm, hj, t0 + ox, o1, c1)
                        m, at = _take(m, at, v, v_at)
                        v, v_at = _row_tap(hm, hj, t0 + ox, o2, c2)
                        m, at = _take(m, at, v, v_at)
                        _store_max(yf, af, o0 + ox, m, row + np.int32(ox) + at)
                else:
                    for ox in range(ow):
                        m, at = _row_tap(hm, hj, t0 + ox, 0, zero)
                        for i in range(1, kh):
                            v, v_at = _row_tap(hm, hj, t0 + ox, i * o1, np.int32(i) * c1)
                            m, at = _take(m, at, v, v_at)
                        _store_max(yf, af, o0 + ox, m, row + np.int32(ox) + at)


@njit(cache=True, inline="always")
def _first_max(xp, t0, step, k, code_step):
    """The first maximum of ``xp[t0 + q*step]`` over ``q < k`` (strict ``>``) and its
    ``q*code_step``; taps 2 and 3 unrolled, branch-free."""
    best = xp[uint64(t0)]
    at = np.int32(0)
    if k >= 2:
        best, at = _take(best, at, xp[uint64(t0 + step)], np.int32(code_step))
    if k >= 3:
        best, at = _take(best, at, xp[uint64(t0 + 2 * step)], np.int32(2 * code_step))
    for q in range(3, k):
        best, at = _take(best, at, xp[uint64(t0 + q * step)], np.int32(q * code_step))
    return best, at


@njit(cache=True, inline="always")
def _first_max_rows(hm, hj, t0, step, k, code_step):
    """:func:`_first_max` over the row windows ``t0 + q*step`` of a horizontal pass, each carrying
    its column offset ``hj``: the winner's ``hj + q*code_step``."""
    best, at = _row_tap(hm, hj, t0, 0, np.int32(0))
    if k >= 2:
        v, v_at = _row_tap(hm, hj, t0, step, np.int32(code_step))
        best, at = _take(best, at, v, v_at)
    if k >= 3:
        v, v_at = _row_tap(hm, hj, t0, 2 * step, np.int32(2 * code_step))
        best, at = _take(best, at, v, v_at)
    for q in range(3, k):
        v, v_at = _row_tap(hm, hj, t0, q * step, np.int32(q * code_step))
        best, at = _take(best, at, v, v_at)
    return best, at


@njit(parallel=True, cache=True)
def pool_argmax_strided(x, kh, kw, sh, sw, ph, pw, eh, ew, y, arg, per=8):
    """:func:`pool_argmax_dense`'s separable passes at any stride (int32 ``arg``): the horizontal
    pass gives row ``r`` of the padded plane ``hm[r, ox]``, the first maximum of the row window of
    output column ``ox`` (``xp[r, ox*s_w + j*est_w]``), the vertical pass takes the first maximum
    of ``hm[oy*s_h + i*est_h, ox]`` over ``i``.  ``per`` planes per task, one set of buffers."""
    nb, c_in, h_in, w_in = x.shape
    oh, ow = y.shape[2], y.shape[3]
    hp = (oh - 1) * sh + (kh - 1) * eh + 1
    wp = (ow - 1) * sw + (kw - 1) * ew + 1
    planes = nb * c_in
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    af = arg.reshape(-1)
    for task in prange((planes + per - 1) // per):
        xp = np.empty(hp * wp, x.dtype)
        hm = np.empty(hp * ow, x.dtype)
        hj = np.empty(hp * ow, np.int32)
        for plane in range(task * per, min(planes, task * per + per)):
            _clean_plane(xf, plane * h_in * w_in, h_in, w_in, hp, wp, ph, pw, xp)
            for r in range(hp):
                for ox in range(ow):
                    best, at = _first_max(xp, r * wp + ox * sw, ew, kw, ew)
                    hm[uint64(r * ow + ox)] = best
                    hj[uint64(r * ow + ox)] = at
            for oy in range(oh):
                o0 = (plane * oh + oy) * ow
                row = np.int32((oy * sh - ph) * w_in - pw)
                for ox in range(ow):
                    best, at = _first_max_rows(hm, hj, oy * sh * ow + ox, eh * ow, kh, eh * w_in)
                    _store_max(yf, af, o0 + ox, best, row + np.int32(ox * sw) + at)


@njit(parallel=True, cache=True)
def pool_scatter(dy, arg, dx):
    """MAX backward: ``dx[n, c].flat[arg] += dy`` for every output with ``arg >= 0``; every plane
    of ``dx`` is zeroed here first.  Parallel over (n, c) planes, so overlapping windows never
    race.  Returns how many entries lay outside ``[-1, H*W)`` (those are skipped).  One unsigned
    comparison admits an index (-1 and every negative one wrap past ``H*W``): measured 10-30%
    faster than two signed ones."""
    nb, c_in, h_in, w_in = dx.shape
    hw = h_in * w_in
    ohw = dy.shape[2] * dy.shape[3]
    gf = dy.reshape(-1)
    af = arg.reshape(-1)
    df = dx.reshape(-1)
    bad = np.zeros(nb * c_in, np.int64)
    for plane in prange(nb * c_in):
        g0 = plane * ohw
        x0 = plane * hw
        df[x0: x0 + hw] = 0
        outside = 0
        for o in range(ohw):
            a = int64(af[uint64(g0 + o)])
            if uint64(a) < uint64(hw):
                df[uint64(x0 + a)] += gf[uint64(g0 + o)]
            elif a != -1:
                outside += 1
        bad[plane] = outside
    return bad.sum()


@njit(parallel=True, cache=True)
def pool_backward(dy, x, kh, kw, sh, sw, ph, pw, eh, ew, dx):
    """AVE backward: ``dx += `` each ``dy`` spread over its window's taps on the image, divided by
    the window's divisor; ``dx`` zeroed by the caller.  Parallel over (n, c) planes."""
    nb, c_in, h_in, w_in = x.shape
    oh, ow = dy.shape[2], dy.shape[3]
    gf = dy.reshape(-1)
    df = dx.reshape(-1)
    lo, hi = tap_ranges(kw, ew, sw, pw, ow, w_in)
    cnt_h = _counts(oh, sh, ph, kh, eh, h_in)
    cnt_w = _counts(ow, sw, pw, kw, ew, w_in)
    for plane in prange(nb * c_in):
        x_plane = plane * h_in * w_in
        share = np.empty(ow, x.dtype)
        for oy in range(oh):
            g0 = (plane * oh + oy) * ow
            for ox in range(ow):       # a tap on the image has divisor >= 1
                div = cnt_h[oy] * cnt_w[ox]
                share[ox] = gf[g0 + ox] / div if div > 0 else 0.0
            for i in range(kh):
                h = oy * sh - ph + i * eh
                if 0 <= h < h_in:
                    for j in range(kw):
                        _add(df, x_plane + h * w_in + j * ew - pw, sw, share, 0, lo[j], hi[j])
