"""FCN's four metrics on hand-computed confusion matrices; the confusion matrix from pixels."""

import numpy as np
import pytest

from econv.metrics import (confusion, frequency_weighted_iu, mean_accuracy, mean_iu, pixel_accuracy,
                           scores)

# Rows = ground truth, columns = prediction.  N = 12, diagonal 4, 2, 2.
#   t (row sums) = 5, 4, 3          p (column sums) = 5, 4, 3
#   pixel accuracy = 8 / 12 = 2/3
#   accuracies     = 4/5, 2/4, 2/3         -> mean (24 + 15 + 20) / 30 / 3 = 59/90
#   IU             = 4/(5+5-4) = 2/3, 2/(4+4-2) = 1/3, 2/(3+3-2) = 1/2  -> mean 1.5 / 3 = 1/2
#   fw IU          = 5/12 * 2/3 + 4/12 * 1/3 + 3/12 * 1/2 = (10 + 4 + 4.5) / 36 = 37/72
HIST = np.array([[4, 1, 0],
                 [1, 2, 1],
                 [0, 1, 2]])


def test_four_metrics_hand_computed():
    assert pixel_accuracy(HIST) == pytest.approx(2 / 3)
    assert mean_accuracy(HIST) == pytest.approx(59 / 90)
    assert mean_iu(HIST) == pytest.approx(1 / 2)
    assert frequency_weighted_iu(HIST) == pytest.approx(37 / 72)
    assert scores(HIST) == pytest.approx({"pixel_accuracy": 2 / 3, "mean_accuracy": 59 / 90,
                                          "mean_iu": 1 / 2, "frequency_weighted_iu": 37 / 72})


def test_class_absent_from_label_but_predicted():
    # Class 2 never in the label, predicted once (a class-1 pixel).  N = 12, diagonal 5, 3, 0.
    #   t = 6, 6, 0    p = 7, 4, 1
    #   accuracies 5/6, 3/6, 0/0 = nan (skipped)     -> mean 2/3
    #   IU 5/(6+7-5) = 5/8, 3/(6+4-3) = 3/7, 0/(0+1-0) = 0 (counted)  -> mean (5/8 + 3/7) / 3 = 59/168
    #   fw IU = 6/12 * 5/8 + 6/12 * 3/7 = 59/112   (class 2 has weight 0)
    hist = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
    assert pixel_accuracy(hist) == pytest.approx(8 / 12)
    assert mean_accuracy(hist) == pytest.approx(2 / 3)
    assert mean_iu(hist) == pytest.approx(59 / 168)
    assert frequency_weighted_iu(hist) == pytest.approx(59 / 112)


def test_class_absent_from_label_and_prediction_is_skipped():
    # Class 2 nowhere: IU 0/0 = nan, skipped.  t = 6, 5, 0; p = 7, 4, 0.
    #   IU 5/(6+7-5) = 5/8, 3/(5+4-3) = 1/2 -> mean 9/16; accuracies 5/6, 3/5 -> mean 43/60
    hist = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    assert mean_iu(hist) == pytest.approx(9 / 16)
    assert mean_accuracy(hist) == pytest.approx(43 / 60)
    assert frequency_weighted_iu(hist) == pytest.approx(6 / 11 * 5 / 8 + 5 / 11 * 1 / 2)


def test_confusion_counts_and_excludes_ignore():
    label = np.array([[0, 0, 0, 0, 0, 1], [1, 1, 1, 2, 2, 2], [255, 255, 1, 0, 0, 0]], np.uint8)
    pred = np.array([[0, 0, 0, 0, 1, 0], [1, 1, 2, 1, 2, 2], [2, 2, 1, 0, 0, 0]])
    # kept pixels: everything but the two 255s (whose predictions, 2 and 2, must not count)
    expected = np.array([[7, 1, 0], [1, 3, 1], [0, 1, 2]])
    hist = confusion(pred, label, 3)
    assert hist.dtype == np.int64 and hist.tolist() == expected.tolist()
    assert hist.sum() == label.size - 2
    assert confusion(pred[:2], label[:2], 3, ignore=None).sum() == 12
    assert confusion([0, 1, 1], [0, 1, 255], 2).tolist() == [[1, 0], [0, 1]]


def test_confusion_matches_a_loop():
    rng = np.random.default_rng(3)
    label = rng.integers(0, 5, (4, 9, 7))
    label[rng.random(label.shape) < 0.1] = 255
    pred = rng.integers(0, 5, label.shape)
    expected = np.zeros((5, 5), np.int64)
    for g, p in zip(label.ravel(), pred.ravel()):
        if g != 255:
            expected[g, p] += 1
    assert np.array_equal(confusion(pred, label, 5), expected)


def test_confusion_bad_input():
    with pytest.raises(ValueError, match=r"shapes differ: pred \(2, 3\), label \(3, 2\)"):
        confusion(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)
    with pytest.raises(ValueError, match="label holds 7 .*expected 0..2 or the ignore label 255"):
        confusion([0, 1, 2], [0, 7, 255], 3)
    with pytest.raises(ValueError, match="label holds -1"):
        confusion([0, 1], [0, -1], 3)
    with pytest.raises(ValueError, match="pred holds 3 .*expected 0..2$"):
        confusion([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="label holds 255"):
        confusion([0, 1], [0, 255], 3, ignore=None)
    with pytest.raises(ValueError, match="pred must be an integer array.*float64"):
        confusion(np.array([0.0, 1.0]), [0, 1], 2)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        confusion([0], [0], 0)


def test_metrics_bad_hist():
    with pytest.raises(ValueError, match=r"square .* got shape \(2, 3\)"):
        mean_iu(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        pixel_accuracy([[1, -1], [0, 1]])
    with pytest.raises(ValueError, match="empty"):
        scores(np.zeros((3, 3), int))
