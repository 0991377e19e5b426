"""FCN's four segmentation scores (shelhamer/fcn.berkeleyvision.org ``score.py``), from one confusion
matrix ``hist`` with rows = ground truth, columns = prediction (CAFFE_FACTS 6.2).

With ``n_ii = hist[i, i]``, ``t_i = sum_j hist[i, j]`` (pixels of class i) and ``p_i = sum_j hist[j, i]``
(pixels predicted as i), ``N = sum_i t_i``:

* pixel accuracy         ``sum_i n_ii / N``
* mean accuracy          ``nanmean_i  n_ii / t_i``
* mean IU                ``nanmean_i  n_ii / (t_i + p_i - n_ii)``
* frequency-weighted IU  ``sum_{i: t_i > 0} (t_i / N) * n_ii / (t_i + p_i - n_ii)``

Classes absent from the ground truth, as in score.py: a class absent from both label and prediction
has 0/0 = nan for its accuracy and its IU, and the nan-aware means skip it; a class absent from the
label but predicted somewhere has accuracy nan (skipped) and IU 0 (counted: the false positives cost).

Worked example, 2 classes, ``hist = [[3, 1], [0, 2]]`` (N = 6): pixel accuracy 5/6; accuracies 3/4, 2/2,
mean 0.875; IUs 3/(4+3-3) = 0.75, 2/(2+3-2) = 2/3, mean 17/24; fw IU 4/6*0.75 + 2/6*2/3 = 13/18.

Unlike score.py's ``fast_hist``, which silently drops every label outside ``[0, n)``, :func:`confusion`
drops only the ``ignore`` label and rejects any other out-of-range label or prediction.
"""

from __future__ import annotations

import numpy as np


def _class_map(name: str, values, n_classes: int, allowed_extra=None) -> np.ndarray:
    a = np.asarray(values)
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise ValueError(f"{name} must be an integer array of class indices, got dtype {a.dtype}")
    a = a.astype(np.int64)
    bad = (a < 0) | (a >= n_classes)
    if allowed_extra is not None:
        bad &= a != allowed_extra
    if bad.any():
        extra = f" or the ignore label {allowed_extra}" if allowed_extra is not None else ""
        raise ValueError(f"{name} holds {int(a[bad][0])} (and {int(bad.sum()) - 1} more out-of-range "
                         f"values); expected 0..{n_classes - 1}{extra}")
    return a


def confusion(pred, label, n_classes: int, ignore: int | None = 255) -> np.ndarray:
    """The ``(n_classes, n_classes)`` int64 confusion matrix: ``hist[g, p]`` counts the pixels with
    ground truth ``g`` predicted as ``p``; pixels whose label is ``ignore`` are left out.

    One ``np.bincount(n * label + pred)``, as score.py.  Example: ``confusion([0, 1, 1], [0, 1, 255], 2)``
    is ``[[1, 0], [0, 1]]``.  ``pred`` and ``label`` are arrays of the same shape (any number of axes).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    n = int(n_classes)
    pred_shape, label_shape = np.shape(pred), np.shape(label)
    if pred_shape != label_shape:
        raise ValueError(f"pred and label shapes differ: pred {pred_shape}, label {label_shape}")
    label = _class_map("label", label, n, allowed_extra=ignore)
    pred = _class_map("pred", pred, n)
    keep = label != ignore if ignore is not None else np.ones(label.shape, bool)
    counts = np.bincount(n * label[keep] + pred[keep], minlength=n * n)
    return counts.reshape(n, n)


def _check_hist(hist) -> np.ndarray:
    h = np.asarray(hist)
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square (n, n) with n >= 1, got shape {h.shape}")
    if not np.issubdtype(h.dtype, np.number) or np.issubdtype(h.dtype, np.complexfloating):
        raise ValueError(f"a confusion matrix must hold counts, got dtype {h.dtype}")
    if not np.all(np.isfinite(h)) or (h < 0).any():
        raise ValueError("a confusion matrix must hold finite, non-negative counts")
    if h.sum() == 0:
        raise ValueError("the confusion matrix is empty (no pixel was scored: all ignored?)")
    return h.astype(np.float64)


def _class_iu(h: np.ndarray) -> np.ndarray:
    diag = np.diag(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        return diag / (h.sum(1) + h.sum(0) - diag)


def pixel_accuracy(hist) -> float:
    """``sum_i n_ii / N``: the fraction of scored pixels that are right."""
    h = _check_hist(hist)
    return float(np.trace(h) / h.sum())


def mean_accuracy(hist) -> float:
    """``nanmean_i n_ii / t_i``: per-class recall averaged over the classes present in the label."""
    h = _check_hist(hist)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nanmean(np.diag(h) / h.sum(1)))


def mean_iu(hist) -> float:
    """``nanmean_i n_ii / (t_i + p_i - n_ii)``: skips classes absent from both label and prediction."""
    return float(np.nanmean(_class_iu(_check_hist(hist))))


def frequency_weighted_iu(hist) -> float:
    """``sum_{i: t_i > 0} (t_i / N) IU_i``: each class's IU weighted by its share of the label."""
    h = _check_hist(hist)
    freq = h.sum(1) / h.sum()
    present = freq > 0
    return float((freq[present] * _class_iu(h)[present]).sum())


def scores(hist) -> dict:
    """The four metrics of ``hist`` as floats, keyed ``pixel_accuracy``, ``mean_accuracy``,
    ``mean_iu``, ``frequency_weighted_iu``."""
    return {
        "pixel_accuracy": pixel_accuracy(hist),
        "mean_accuracy": mean_accuracy(hist),
        "mean_iu": mean_iu(hist),
        "frequency_weighted_iu": frequency_weighted_iu(hist),
    }
