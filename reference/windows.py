"""The few obviously correct pieces every reference op is built from.

- :func:`pad`: zero (or ``value``) padding of the two spatial axes, optionally more at the end.
- :func:`dilate`: zero insertion between kernel taps (``est - 1`` zeros), the textbook picture of eConv.
- :func:`tap`: for one kernel tap ``(i, j)``, the strided slice of a padded input that this tap reads
  for every output position: ``xp[..., i*est + s*y, j*est + s*x]`` for ``y < out_h, x < out_w``.
- :func:`window_view`: all taps at once, ``win[..., y, x, i, j] = xp[..., s*y + i*est, s*x + j*est]``,
  a read-only view (no copy), which is Eq. 3/4's index expression written as an array.

Both ``tap`` and ``window_view`` are views, so a reference op is: pad, then sum or max over taps.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .sizes import extent

__all__ = ["pad", "dilate", "tap", "window_view", "scatter_taps"]


def pad(x: np.ndarray, pad_hw: tuple[int, int], value: float = 0.0,
        end_hw: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Pad the last two axes by ``pad_hw`` on both sides plus ``end_hw`` more at the bottom/right.

    >>> pad(np.ones((1, 1, 1, 2)), (1, 0), end_hw=(0, 1))[0, 0]
    array([[0., 0., 0.],
           [1., 1., 0.],
           [0., 0., 0.]])
    """
    (ph, pw), (eh, ew) = pad_hw, end_hw
    widths = [(0, 0)] * (x.ndim - 2) + [(ph, ph + eh), (pw, pw + ew)]
    return np.pad(x, widths, mode="constant", constant_values=value)


def dilate(w: np.ndarray, est: tuple[int, int]) -> np.ndarray:
    """Insert ``est - 1`` zeros between neighbouring taps of the last two axes.

    A convolution with ``est`` equals an ordinary convolution with the dilated kernel.

    >>> dilate(np.array([[1., 2.], [3., 4.]]), (2, 2))
    array([[1., 0., 2.],
           [0., 0., 0.],
           [3., 0., 4.]])
    """
    eh, ew = est
    kh, kw = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (extent(kh, eh), extent(kw, ew)), dtype=w.dtype)
    out[..., ::eh, ::ew] = w
    return out


def tap(xp: np.ndarray, i: int, j: int, stride: tuple[int, int], est: tuple[int, int],
        out_hw: tuple[int, int]) -> np.ndarray:
    """View of what kernel tap ``(i, j)`` reads for every output: ``xp[..., i*est_h + s_h*y, j*est_w + s_w*x]``.

    Writing into the view (``tap(dxp, ...) += g``) scatters to those positions; within one tap no
    position repeats, so ``+=`` is exact.
    """
    (sh, sw), (eh, ew), (oh, ow) = stride, est, out_hw
    return xp[..., i * eh: i * eh + sh * (oh - 1) + 1: sh, j * ew: j * ew + sw * (ow - 1) + 1: sw]


def window_view(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                est: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Read-only view ``win[..., y, x, i, j] = xp[..., s_h*y + i*est_h, s_w*x + j*est_w]``.

    Windows of extent ``ext`` at every position (NumPy's sliding window), keeping every ``s``-th
    window and every ``est``-th tap inside it.  ``xp`` must be padded far enough that ``out_hw``
    windows exist.
    """
    (kh, kw), (sh, sw), (eh, ew), (oh, ow) = kernel, stride, est, out_hw
    win = sliding_window_view(xp, (extent(kh, eh), extent(kw, ew)), axis=(-2, -1))
    return win[..., ::sh, ::sw, ::eh, ::ew][..., :oh, :ow, :, :]


def scatter_taps(dst: np.ndarray, src: np.ndarray, w: np.ndarray, stride, est) -> None:
    """``dst[..., s*y + i*est, s*x + j*est] += sum_a w[a, b, i, j] * src[n, a, y, x]`` (b = dst channel).

    The transpose of a convolution's gather: conv2d's input gradient (``src = dy``, ``w`` as (O, C))
    and deconv2d's forward (``src = x``, ``w`` as (C, O)) are both this one loop over kernel taps.
    """
    kh, kw = w.shape[2:]
    for i in range(kh):
        for j in range(kw):
            tap(dst, i, j, stride, est, src.shape[2:])[...] += np.einsum(
                "nayx,ab->nbyx", src, w[:, :, i, j], optimize=True)
