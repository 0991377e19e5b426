"""Localization pieces on hand-made maps and boxes: channel sum, mean threshold, resizing by the
coordinate maps, the largest region's box, IoU."""

import numpy as np
import pytest

from econv.tasks.localization import activation_map, iou, largest_box, localize, mask_of, to_pixels


def test_activation_map_sums_channels():
    pooled = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    m = activation_map(pooled)
    assert m.shape == (2, 2, 2)
    np.testing.assert_array_equal(m[0], [[0 + 4 + 8, 1 + 5 + 9], [2 + 6 + 10, 3 + 7 + 11]])


def test_mask_is_above_the_mean():
    m = np.array([[0.0, 1.0, 0.0],
                  [1.0, 5.0, 2.0],
                  [0.0, 0.0, 0.0]])                  # mean 1.0: strictly above it
    np.testing.assert_array_equal(mask_of(m), [[0, 0, 0], [0, 1, 1], [0, 0, 0]])
    assert not mask_of(np.full((3, 3), 2.0)).any()   # a constant map has no mask


def test_to_pixels_follows_the_coordinate_map():
    units = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], bool)
    # the baseline's pool3: 4 units centred on pixels 3.5, 11.5, 19.5, 27.5 -> blocks of 8 pixels
    px = to_pixels(units, (3.5, 3.5), (8, 8), 32)
    assert px.shape == (32, 32)
    assert px[:8, :8].all() and px[24:, 24:].all() and px.sum() == 2 * 64
    # a dense grid: 16 units 2 pixels apart from 3.5: pixel p takes unit round((p - 3.5) / 2)
    dense = np.zeros((16, 16), bool)
    dense[3, 5] = True                                # centred on (9.5, 13.5): pixels 9..10, 13..14
    rows, cols = np.nonzero(to_pixels(dense, (3.5, 3.5), (2, 2), 32))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (9, 10, 13, 14)
    # pixels before the first centre or past the last take the edge unit
    edge = np.zeros((16, 16), bool)
    edge[0, 0] = True
    rows, cols = np.nonzero(to_pixels(edge, (3.5, 3.5), (2, 2), 32))
    assert rows.max() == 4 and cols.max() == 4 and rows.min() == 0


def test_largest_box_picks_the_biggest_4_connected_region():
    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:3] = True                             # 4 pixels
    mask[5:9, 4:7] = True                             # 12 pixels: the largest
    mask[4, 7] = True                                 # touches the big one only diagonally
    assert largest_box(mask) == (5, 4, 9, 7)
    mask[4, 6] = True                                 # now 4-connected: joins, extends it
    assert largest_box(mask) == (4, 4, 9, 8)
    assert largest_box(np.zeros((5, 6), bool)) == (0, 0, 5, 6)   # nothing found: the whole image


def test_iou_hand_computed():
    assert iou((0, 0, 4, 4), (2, 2, 6, 6)) == pytest.approx(4 / 28)
    assert iou((0, 0, 4, 4), (0, 0, 4, 4)) == 1.0
    assert iou((0, 0, 4, 4), (0, 0, 8, 8)) == pytest.approx(16 / 64)
    assert iou((0, 0, 4, 4), (4, 0, 8, 4)) == 0.0    # touching edges: no shared pixel
    assert iou((1, 2, 5, 10), (3, 0, 7, 6)) == pytest.approx(2 * 4 / (32 + 24 - 8))


def test_localize_end_to_end_on_a_hand_made_activation():
    pooled = np.zeros((1, 2, 4, 4))
    pooled[0, 0, 1:3, 1:2] = 3.0
    pooled[0, 1, 1:3, 2:3] = 1.0                      # sum: a 2x2 block above the mean, rows/cols 1..2
    pooled[0, 1, 3, 3] = 0.5                          # below the mean, 8.5 / 16: left out
    (m, pixels, box), = localize(pooled, (3.5, 3.5), (8, 8), 32)
    assert m.mean() == pytest.approx((2 * 3 + 2 * 1 + 0.5) / 16)
    assert box == (8, 8, 24, 24)
    assert iou(box, (8, 8, 24, 24)) == 1.0 and iou(box, (8, 8, 24, 16)) == 0.5
