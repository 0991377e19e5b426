"""Demo data: small grayscale scenes of real handwritten digits, with per-pixel labels.

The digits are scikit-learn's bundled 8x8 digits (``sklearn.datasets.load_digits``: 1797 images,
intensities 0..16, shipped inside the wheel, no download).  They are split once, by a fixed
permutation, into a train pool (1437 digits, 80 %) and a test pool (360); test scenes use only test
digits.

A scene is built digit by digit: draw a digit from the pool and a scale ``f`` in ``scale``, upscale
the 8x8 image bilinearly to ``round(8 f)`` pixels a side (``scipy.ndimage.zoom``, order 1), and place
it at a position drawn uniformly from those where its mask shares no pixel with the digits already
placed (a digit for which there is no such position is left out).  Its mask is where its
intensity exceeds ``MASK_THRESHOLD`` (25 %) of its own maximum; those pixels get the label ``k + 1``
for digit ``k`` (0 is the background, so 11 classes).  The image is the pixel-wise maximum of the
placed digits (intensity in [0, 1]), plus optional Gaussian noise, standardized with fixed constants:
``image = (raw - SCENE_MEAN) / SCENE_STD``.

Numbers for ``make_scenes(1000)`` (size 32, 1 to 3 digits, scale 1.5 to 2.5, seed 0, train): 1988
digits drawn, 1718 placed (1.72 per scene; the rest found no room); background 79.4 % of the pixels,
each digit class 1.8 % to 2.3 %; image mean -0.01, std 0.99; about 0.4 s to generate.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

N_CLASSES = 11            # background + digits 0..9 (label k + 1 for digit k)
MASK_THRESHOLD = 0.25     # a digit pixel is labelled where intensity > 0.25 * the digit's maximum
TRAIN_FRACTION = 0.8
SCENE_MEAN, SCENE_STD = 0.14, 0.27     # raw scene intensity statistics of the default settings
DIGIT_MEAN, DIGIT_STD = 0.30, 0.38     # raw 8x8 digit intensity statistics (0..16 mapped to 0..1)
_SPLIT_SEED = 20160101


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError('the demo scenes use scikit-learn\'s bundled digits: pip install "econv[demo]" '
                          "(or pip install scikit-learn)") from e
    data = load_digits()
    return data.images / 16.0, data.target.astype(np.int64)


@lru_cache(maxsize=1)
def _pools():
    """``{"train": (images (M, 8, 8) in [0, 1], targets), "test": ...}``: one fixed 80/20 split."""
    images, targets = _load_digits()
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    n_train = int(TRAIN_FRACTION * len(images))
    return {"train": (images[order[:n_train]], targets[order[:n_train]]),
            "test": (images[order[n_train:]], targets[order[n_train:]])}


def _pool(split: str):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _pools()[split]


def digit_images(split: str = "train"):
    """The 8x8 digits of one split: ``(images (N, 1, 8, 8) float32, targets (N,) int64 in 0..9)``,
    standardized as ``(x / 16 - DIGIT_MEAN) / DIGIT_STD`` (N = 1437 train, 360 test)."""
    images, targets = _pool(split)
    x = (images[:, None] - DIGIT_MEAN) / DIGIT_STD
    return x.astype(np.float32), targets.copy()


def _check_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    return int(count)


def _check_range(name: str, value, lowest, integer: bool):
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in (lo, hi)) \
            or not lowest <= lo <= hi:
        what = "integers" if integer else "numbers"
        raise ValueError(f"{name} must be {what} with {lowest} <= low <= high, got {value!r}")
    return lo, hi


def _place(rng, raw, labels, patch, label) -> bool:
    """Put ``patch`` at a position drawn uniformly from those where its mask meets no labelled pixel;
    returns False (and changes nothing) when there is none."""
    mask = patch > MASK_THRESHOLD * patch.max()
    windows = sliding_window_view((labels > 0).astype(np.float32), patch.shape)  # (room_h, room_w, h, w)
    free = np.argwhere(np.tensordot(windows, mask.astype(np.float32), axes=2) == 0)  # no pixel shared
    if len(free) == 0:
        return False
    top, left = free[rng.integers(len(free))]
    window = np.s_[top:top + patch.shape[0], left:left + patch.shape[1]]
    np.maximum(raw[window], patch, out=raw[window])
    labels[window][mask] = label
    return True


def _scene(rng, pool, size, digits, scale):
    images, targets = pool
    raw = np.zeros((size, size))
    labels = np.zeros((size, size), np.int32)
    for _ in range(rng.integers(digits[0], digits[1] + 1)):
        i = rng.integers(len(images))
        patch = ndimage.zoom(images[i], rng.uniform(*scale), order=1)
        _place(rng, raw, labels, patch, targets[i] + 1)
    return raw, labels


def make_scenes(count: int, size: int = 32, digits=(1, 3), scale=(1.5, 2.5), seed: int = 0,
                split: str = "train", noise: float = 0.0):
    """``count`` scenes: ``(images (count, 1, size, size) float32, labels (count, size, size) int32)``.

    Each scene holds ``digits[0]`` to ``digits[1]`` digits (inclusive; fewer if one finds no room),
    each upscaled by a factor drawn from ``scale``; labels are 0 (background) or ``k + 1`` for digit
    ``k``.  ``noise`` is the std of Gaussian noise added to the raw [0, 1] intensity (drawn from its
    own generator: the digits and labels do not change with it).  The same arguments give the same
    arrays.  Example: ``make_scenes(2, size=16, digits=(1, 1), scale=(1, 1))`` gives two 16x16 scenes,
    each with one 8x8 digit.
    """
    count = _check_count(count)
    digits = _check_range("digits", digits, 0, integer=True)
    scale = _check_range("scale", scale, 0.125, integer=False)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < round(8 * scale[1]):
        raise ValueError(f"size must be an integer >= the largest digit, round(8 * {scale[1]}) = "
                         f"{round(8 * scale[1])}, got {size!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a non-negative std, got {noise!r}")
    pool = _pool(split)
    rng = np.random.default_rng(seed)
    raw = np.zeros((count, 1, size, size))
    labels = np.zeros((count, size, size), np.int32)
    for n in range(count):
        raw[n, 0], labels[n] = _scene(rng, pool, size, digits, scale)
    if noise > 0:
        raw += np.random.default_rng([seed, 1]).normal(0.0, noise, raw.shape)
    return ((raw - SCENE_MEAN) / SCENE_STD).astype(np.float32), labels


def one_digit_scenes(count: int, size: int = 32, scale=(1.5, 2.5), seed: int = 0,
                     split: str = "train", noise: float = 0.0):
    """Scenes with exactly one digit, for localization: ``(images, labels, boxes)``, where images and
    labels are as :func:`make_scenes` and ``boxes`` (count, 4) int32 is the tight box of the digit's
    labelled pixels as ``(top, left, bottom, right)``, bottom and right exclusive.  Example: a digit
    whose mask covers rows 3..9 and columns 5..11 has the box ``(3, 5, 10, 12)``."""
    images, labels = make_scenes(count, size, (1, 1), scale, seed, split, noise)
    boxes = np.zeros((len(labels), 4), np.int32)
    for n, lab in enumerate(labels):
        rows, cols = np.flatnonzero(lab.any(1)), np.flatnonzero(lab.any(0))
        boxes[n] = rows[0], cols[0], rows[-1] + 1, cols[-1] + 1
    return images, labels, boxes
