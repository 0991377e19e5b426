"""Demo scenes: shapes, determinism, label rule, held-out split, statistics, bad input."""

import sys

import numpy as np
import pytest

from econv import scenes
from econv.scenes import (MASK_THRESHOLD, SCENE_MEAN, SCENE_STD, digit_images, make_scenes,
                          one_digit_scenes)


def _raw(images):
    return images.astype(np.float64) * SCENE_STD + SCENE_MEAN


def _find(pool_images, digit):
    """Index of ``digit`` (8x8, [0, 1]) in a pool, or -1."""
    hits = np.flatnonzero(np.all(np.abs(pool_images - digit) < 1e-5, axis=(1, 2)))
    return int(hits[0]) if len(hits) else -1


def test_shapes_dtypes_and_label_range():
    images, labels = make_scenes(50, size=32)
    assert images.shape == (50, 1, 32, 32) and images.dtype == np.float32
    assert labels.shape == (50, 32, 32) and labels.dtype == np.int32
    assert labels.min() == 0 and labels.max() <= 10
    assert make_scenes(0)[0].shape == (0, 1, 32, 32)


def test_same_seed_same_scenes():
    a, la = make_scenes(20, seed=7)
    b, lb = make_scenes(20, seed=7)
    c, lc = make_scenes(20, seed=8)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(la, lc)


def test_split_is_fixed_disjoint_80_20():
    train, test = scenes._pools()["train"], scenes._pools()["test"]
    assert len(train[0]) == 1437 and len(test[0]) == 360
    x_train, y_train = digit_images("train")
    assert x_train.shape == (1437, 1, 8, 8) and x_train.dtype == np.float32
    assert y_train.dtype == np.int64 and sorted(set(y_train.tolist())) == list(range(10))
    assert abs(float(x_train.mean())) < 0.05 and 0.9 < float(x_train.std()) < 1.1
    assert digit_images("test")[0].shape == (360, 1, 8, 8)
    flat_train = {d.tobytes() for d in train[0]}
    assert not any(d.tobytes() in flat_train for d in test[0])


def test_label_is_digit_plus_one_where_intensity_exceeds_threshold():
    # size 8, scale 1: each scene is one pool digit, unscaled, so the rule can be checked exactly.
    images, labels = make_scenes(30, size=8, digits=(1, 1), scale=(1, 1), split="test", seed=3)
    pool_images, pool_targets = scenes._pools()["test"]
    train_images = scenes._pools()["train"][0]
    for image, label in zip(_raw(images[:, 0]), labels):
        i = _find(pool_images, image)
        assert i >= 0 and _find(train_images, image) < 0     # a test digit, not a train one
        expected = np.where(image > MASK_THRESHOLD * image.max(), pool_targets[i] + 1, 0)
        assert np.array_equal(label, expected)


def test_a_digit_without_room_is_left_out():
    # An 8x8 scene has one position; a second 8x8 digit always overlaps the first: one class per scene.
    _, labels = make_scenes(20, size=8, digits=(2, 2), scale=(1, 1))
    assert all(len(np.unique(lab)) == 2 for lab in labels)


def test_digits_do_not_overlap():
    # Unscaled 8x8 digits, three per 24x24 scene.  A pool digit d sits at a window w if w equals d on
    # d's 25 % mask and w >= d elsewhere (a neighbour's faint, unlabelled edge may raise w there).
    # The masks of the digits found must cover each labelled pixel exactly once, with the digit's label.
    images, labels = make_scenes(10, size=24, digits=(3, 3), scale=(1, 1), seed=5)
    pool_images, pool_targets = scenes._pools()["train"]
    pool_masks = pool_images > MASK_THRESHOLD * pool_images.max(axis=(1, 2), keepdims=True)
    placed = 0
    for image, label in zip(_raw(images[:, 0]), labels):
        cover = np.zeros(label.shape, int)
        for top in range(17):
            for left in range(17):
                window = np.s_[top:top + 8, left:left + 8]
                close = np.abs(image[window] - pool_images) < 1e-5
                below = image[window] >= pool_images - 1e-5
                hits = np.flatnonzero(np.all(close | ~pool_masks, axis=(1, 2)) & np.all(below, axis=(1, 2)))
                for i in hits:
                    assert np.all(label[window][pool_masks[i]] == pool_targets[i] + 1)
                    cover[window] += pool_masks[i]
                    placed += 1
        assert cover.max() == 1 and np.array_equal(cover > 0, label > 0)
    assert placed == 30          # all 3 x 10 found room (two scenes hold one class twice)


def test_default_statistics():
    images, labels = make_scenes(300)
    freq = np.bincount(labels.ravel(), minlength=11) / labels.size
    assert 0.75 < freq[0] < 0.84                                    # background 79.4 % (docstring)
    assert np.all(freq[1:] > 0.01) and np.all(freq[1:] < 0.035)     # each digit class ~2 %
    assert abs(float(images.mean())) < 0.1 and 0.85 < float(images.std()) < 1.15
    assert len(np.unique(labels[0])) >= 2


def test_noise_changes_images_not_labels():
    a, la = make_scenes(10, seed=2)
    b, lb = make_scenes(10, seed=2, noise=0.1)
    assert np.array_equal(la, lb)
    diff = (b.astype(np.float64) - a) * SCENE_STD
    assert 0.09 < diff.std() < 0.11


def test_one_digit_scenes_boxes():
    images, labels, boxes = one_digit_scenes(40, size=32, seed=4)
    assert images.shape == (40, 1, 32, 32) and boxes.shape == (40, 4) and boxes.dtype == np.int32
    for lab, (top, left, bottom, right) in zip(labels, boxes):
        assert len(np.unique(lab)) == 2
        rows, cols = np.nonzero(lab)
        assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == (top, left, bottom, right)
        assert 8 <= bottom - top <= 20 and 2 <= right - left <= 20   # digits are 12..20 px


def test_bad_input():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        make_scenes(2, split="val")
    with pytest.raises(ValueError, match="split must be"):
        digit_images("all")
    with pytest.raises(ValueError, match="count must be a non-negative integer, got -1"):
        make_scenes(-1)
    with pytest.raises(ValueError, match="count must be"):
        make_scenes(2.5)
    with pytest.raises(ValueError, match=r"digits must be integers with 0 <= low <= high, got \(3, 1\)"):
        make_scenes(2, digits=(3, 1))
    with pytest.raises(ValueError, match="digits must be a"):
        make_scenes(2, digits=2)
    with pytest.raises(ValueError, match="scale must be numbers"):
        make_scenes(2, scale=(0, 1))
    with pytest.raises(ValueError,
                       match=r"size must be an integer >= the largest digit, round\(8 \* 2.5\) = 20, got 16"):
        make_scenes(2, size=16)
    with pytest.raises(ValueError, match="noise must be a non-negative"):
        make_scenes(2, noise=-0.1)


def test_missing_scikit_learn_says_how_to_install(monkeypatch):
    scenes._pools.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)   # makes the import fail
    try:
        with pytest.raises(ImportError, match=r'pip install "econv\[demo\]"'):
            make_scenes(1)
    finally:
        scenes._pools.cache_clear()
