"""The one output-size helper of econv.

Every shape rule in the project (reference ops, Numba kernels, the Caffe importer, densify) comes from
here, so that the rounding rules live in exactly one place.

Note [Output sizes]

``ext = est * (k - 1) + 1`` is the extent of a kernel whose ``k`` taps sit ``est`` apart (Eq. 3/4 of
the paper; Caffe and PyTorch call ``est`` dilation).

- Convolution (Caffe ``conv_layer.cpp``): ``out = floor((n + 2p - ext) / s) + 1``.
- Deconvolution (Caffe ``deconv_layer.cpp``): ``out = s * (n - 1) + ext - 2p``.
- Pooling (Caffe ``pooling_layer.cpp``): ``out = ceil((n + 2p + pad_end - ext) / s) + 1`` (``floor`` with
  ``round_mode="floor"``).  Clip rule: when there is padding, a window must start inside the image
  (``o * s - p < n``); Caffe drops the last window when ``(out - 1) * s >= n + p``.  With ``pad_end = 0``
  at most one window can start past the image (because ``p < ext``), so ``min(out, (n + p - 1) // s + 1)``
  is exactly Caffe's single decrement.  Caffe tests ``pad_h || pad_w``: padding on either axis clips
  both.  Without any padding Caffe applies no clip (a ceil window may then lie
  wholly outside the input, Caffe issue #6881); we keep that behaviour.
- A window larger than the padded input (``n + 2p < ext``): Caffe's formula still runs, on a negative
  span (``pooling_layer.cpp`` lines 91-103: ``ceil(float(span) / s) + 1``), and the forward clips each
  window to the image (lines 168-173 MAX, AVE alike).  With ``ceil`` and ``-s < span < 0`` that is one
  output over the whole input (OpenPose declares a 1x1 placeholder input: n=1, k=2, s=2 -> 1).  A span of
  ``-s`` or less (``floor``: any negative span) gives no output: an error here, an empty blob in Caffe.
- ``pad_end`` is extra room at the bottom/right only, *after* the symmetric padding: those positions
  are absent (never a maximum, not counted by the average divisor).  densify uses it so that the dense
  ePool computes every ceil-mode window of the original.

Worked examples (Caffe pooling): n=112, k=3, s=2, p=1 -> 57 (floor mode: 56); n=4, k=3, s=2, p=1 -> 3;
n=6, k=1, s=2, p=0 -> 4 (the last window starts at 6, outside: Caffe's degenerate case);
n=1, k=3, s=3, p=0 -> 1 (the window is clipped to the one input pixel).
"""

from __future__ import annotations

import numbers

__all__ = ["pair", "extent", "conv_out_size", "deconv_out_size", "pool_out_size", "phase_lengths",
           "edeconv_out_size"]


def pair(value, name: str, minimum: int = 0) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair of ints >= ``minimum``; accepts an int or a 1- or 2-sequence."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = (value[0], value[0])
        elif len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
    else:
        value = (value, value)
    out = []
    for v in value:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        v = int(v)
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {v}")
        out.append(v)
    return out[0], out[1]


def extent(k: int, est: int) -> int:
    """Span of ``k`` taps placed ``est`` apart: ``est * (k - 1) + 1``."""
    return est * (k - 1) + 1


def conv_out_size(n: int, k: int, stride: int, pad: int, est: int, what: str = "conv2d") -> int:
    """Convolution output length: ``floor((n + 2p - ext) / s) + 1``; ValueError when no window fits."""
    ext = extent(k, est)
    span = n + 2 * pad - ext
    if span < 0:
        raise ValueError(
            f"{what}: kernel extent {ext} (kernel {k}, est {est}) is larger than the padded input "
            f"{n + 2 * pad} ({n} + 2*{pad})")
    return span // stride + 1


def deconv_out_size(n: int, k: int, stride: int, pad: int, est: int, what: str = "deconv2d") -> int:
    """Deconvolution output length: ``s * (n - 1) + ext - 2p``; ValueError when it is below 1."""
    out = stride * (n - 1) + extent(k, est) - 2 * pad
    if out < 1:
        raise ValueError(
            f"{what}: output size {stride}*({n}-1) + {extent(k, est)} - 2*{pad} = {out} is below 1 "
            f"(pad too large)")
    return out


def phase_lengths(n: int, step: int) -> list[int]:
    """How many of ``n`` dense positions fall on each phase ``q`` of a grid with ``step``:
    ``ceil((n - q) / step)`` for ``q < step`` (positions ``q, q + step, ...``).

    >>> phase_lengths(7, 3)
    [3, 2, 2]
    """
    return [max(0, -(-(n - q) // step)) for q in range(step)]


def edeconv_out_size(n: int, k: int, stride: int, pad: int, est: int, grid: int,
                     what: str = "edeconv2d") -> int:
    """Length of an equivalent deconvolution's output (:mod:`reference.edeconv`).

    The input holds fragments on a grid of step ``stride * grid``; fragment ``q < grid`` has
    ``n_q = ceil((n - q) / (stride*grid))`` values, its deconvolution ``L_q = s*(n_q - 1) + ext - 2p``,
    placed at ``q + grid*o``.  The dense output ends after the last of them:
    ``max_q (q + grid*(L_q - 1)) + 1`` over the phases with ``n_q >= 1``.

    >>> edeconv_out_size(5, 4, 2, 0, 1, 2)   # step 4: phases of 2 and 1 values, L = 6 and 4
    11
    """
    ends = [q + grid * (deconv_out_size(m, k, stride, pad, est, what) - 1) + 1
            for q, m in enumerate(phase_lengths(n, stride * grid)[:grid]) if m >= 1]
    if not ends:
        raise ValueError(f"{what}: empty input")
    return max(ends)


def pool_out_size(n: int, k: int, stride: int, pad: int, est: int = 1, round_mode: str = "ceil",
                  pad_end: int = 0, what: str = "pool2d", clip: bool | None = None) -> int:
    """Caffe pooling output length (see Note [Output sizes]).

    ``clip`` says whether the clip rule applies; Caffe decides it for both axes at once (``pad_h ||
    pad_w``), so a 2-D caller passes ``clip = any padding on either axis``.  Default: this axis's
    own ``pad``/``pad_end``.
    """
    ext = extent(k, est)
    if pad >= ext:
        raise ValueError(f"{what}: pad {pad} must be smaller than the kernel extent {ext} "
                         f"(kernel {k}, est {est})")
    span = n + 2 * pad + pad_end - ext
    if round_mode == "ceil":
        out = -(-span // stride) + 1
    elif round_mode == "floor":
        out = span // stride + 1
    else:
        raise ValueError(f"{what}: round_mode must be 'ceil' or 'floor', got {round_mode!r}")
    if out < 1:
        raise ValueError(
            f"{what}: kernel extent {ext} (kernel {k}, est {est}) is larger than the padded input "
            f"{n + 2 * pad + pad_end} ({n} + 2*{pad} + pad_end {pad_end}); Caffe's rule gives "
            f"{out} outputs")
    if clip if clip is not None else (pad > 0 or pad_end > 0):
        out = min(out, (n + pad - 1) // stride + 1)
    return out
