"""``econv demo --task classification``: the paper's image categorization (section 3.3) at small scale.

1. Data: one-digit scenes (:func:`econv.scenes.one_digit_scenes`, 32x32, the digit upscaled 1.5 to
   2.5 times at a random place), label = the digit; test scenes use only held-out digits.
2. Baseline: the small VGG of :mod:`econv.tasks.common` (three conv/pool blocks, fc4, ``out`` with 10
   scores) trained from scratch on whole scenes with Caffe's SGD and SoftmaxWithLoss.
3. Dense: pool2 densified (pool3 an ePool, fc4/out dilated convolutions): 4x4 = 16 score vectors per
   scene, one per fragment; a global average pooling turns them into one (Note [Global average
   pooling] in :mod:`econv.tasks.common`).  Before fine-tuning it is checked against the baseline:
   E1/E2 on every blob (``equivalence_max_err``) and its averaged scores against the mean of the 16
   fragment nets' scores (``gap_max_err``).
4. From the same start, the baseline itself (``baseline_continued``, the fair control) and the dense
   net are fine-tuned for the same number of iterations; the dense parameters go back into the
   original architecture (``dpoa``).
5. Accuracy on the test scenes and the forward time per image of each model, and the accuracy of
   each of the dense map's 16 positions on its own (``position_accuracy``: with the baseline's
   parameters and after the dense fine-tuning; ``[0][0]`` of the latter is dpoa); the table,
   ``results.json`` and ``predictions.png`` (each model's class painted on the digit's pixels, and
   the dense net's 4x4 per-position classes, before its averaging; the first two test scenes, then
   the first on which some model is wrong).

The paper (VGG-16 on MIT indoor-67): accuracy 73.06 % baseline, 73.51 % dense, 74.02 % dpoa; 44 ms,
132 ms and 44 ms per image.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict

import numpy as np

from .common import TaskConfig, dense_net, describe, forward_ms, four_models, one_blas_thread, outputs

__all__ = ["FULL", "QUICK", "run", "data", "table"]

TASK = "classification"
CLASSES = 10
FULL = TaskConfig()
QUICK = TaskConfig(train_scenes=256, test_scenes=64, widths=(8, 8, 16), fc=16, batch=8, base_iters=40,
                   tune_iters=10, pictures=4)
MODELS = ("baseline", "baseline_continued", "dense", "dpoa")


def data(cfg: TaskConfig, split: str, count: int, seed: int):
    """``(images, digits (N,) int64, labels (N, H, W))`` of ``count`` one-digit scenes."""
    from ..scenes import one_digit_scenes

    images, labels, _ = one_digit_scenes(count, size=cfg.size, scale=cfg.scale, seed=seed, split=split)
    return images, labels.max(axis=(1, 2)).astype(np.int64) - 1, labels


def _position_accuracy(dense, images, digits, cfg) -> list:
    """The accuracy of each position of a dense net's ``out`` map (each one fragment's classifier,
    before the averaging) as a nested list; ``[0][0]`` is the original's own prediction."""
    return (outputs(dense, images, "out", cfg.batch).argmax(axis=1) == digits[:, None, None]).mean(
        axis=0).round(6).tolist()


def _upscale(m, size):
    """A small label map ``m`` (h, w) repeated up to ``size`` x ``size`` (nearest; cut or edge-padded)."""
    k = -(-size // m.shape[0])
    big = np.repeat(np.repeat(m, k, axis=0), k, axis=1)[:size, :size]
    return np.pad(big, ((0, size - big.shape[0]), (0, size - big.shape[1])), mode="edge")


def run(out: str = "demo_out", backend: str = "numba", quick: bool = False, progress: bool = True,
        cfg: TaskConfig | None = None, log=print) -> dict:
    """The whole experiment (module docstring); returns what it writes to ``out/results.json``."""
    with one_blas_thread():
        return _run(out, backend, quick, progress, cfg or (QUICK if quick else FULL), log)


def _run(out, backend, quick, progress, cfg, log):
    from ..demo import picture_title, save_results
    from ..pictures import CLASS_LEGEND, panel

    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train_x, train_y, _ = data(cfg, "train", cfg.train_scenes, cfg.seed)
    test_x, test_y, test_lab = data(cfg, "test", cfg.test_scenes, cfg.seed + 1)
    log(f"data: {cfg.train_scenes} training and {cfg.test_scenes} test scenes of {cfg.size}x{cfg.size} "
        f"pixels, one digit each (held-out digits in the test scenes)")
    models, checks = four_models(TASK, CLASSES, train_x, train_y, test_x, cfg, backend, progress, log)
    results = {"task": TASK, "backend": backend, "quick": quick, "config": asdict(cfg), **checks,
               "machine": platform.platform()}
    classes = {}
    for name, (net, blob, fitted) in models.items():
        scores, ms = outputs(net, test_x, blob, cfg.batch), forward_ms(net, test_x, blob, cfg.batch)
        classes[name] = scores.reshape(len(test_x), CLASSES).argmax(axis=1)
        acc = float(np.mean(classes[name] == test_y))
        ci = 1.96 * float(np.sqrt(acc * (1 - acc) / len(test_y)))    # normal approximation
        results[name] = {"accuracy": acc, "accuracy_ci95": ci, **describe(net, fitted, ms)}
    start_dense = dense_net(models["baseline"][0], TASK, cfg.start)[0]
    results["position_accuracy"] = {"baseline": _position_accuracy(start_dense, test_x, test_y, cfg),
                                    "dense": _position_accuracy(models["dense"][0], test_x, test_y, cfg)}
    results["seconds"] = time.perf_counter() - t0

    wrong = np.flatnonzero(np.any([classes[m] != test_y for m in MODELS], axis=0))
    show = np.concatenate([np.arange(min(2, len(test_x))), wrong[wrong >= 2]])[:cfg.pictures]
    dense_maps = outputs(models["dense"][0], test_x[show], "out", len(show)).argmax(axis=1) + 1
    rows = [[test_x[i, 0], test_lab[i]] + [np.where(test_lab[i] > 0, classes[m][i] + 1, 0) for m in MODELS]
            + [_upscale(d, cfg.size)] for i, d in zip(show, dense_maps)]
    picture = os.path.join(out, "predictions.png")
    titles = (["input", "truth"] + [f"{m}\naccuracy {results[m]['accuracy']:.3f}" for m in MODELS]
              + ["dense 4x4\nper position"])
    what = (f"classification: each model's class painted on the digit ({len(rows)} test scenes); "
            f"accuracy over all {cfg.test_scenes}; 'dense 4x4': the 16 fragments' classes")
    panel(rows, titles, picture, title=picture_title(results, what), legend=CLASS_LEGEND)
    save_results(out, results, picture, table(results), log)
    return results


def table(results: dict) -> str:
    """The printed table: accuracy, predictions per image, training and forward times per model."""
    lines = [f"{'model':<20} {'accuracy':>9} {'+-95%':>7} {'preds/img':>10} {'train s':>8} "
             f"{'fwd ms/img':>11}"]
    for name in MODELS:
        r = results[name]
        lines.append(f"{name:<20} {r['accuracy']:>9.4f} {r['accuracy_ci95']:>7.4f} "
                     f"{r['predictions_per_image']:>10d} {r['train_seconds']:>8.1f} "
                     f"{r['forward_ms_per_image']:>11.2f}")
    for name, what in (("baseline", "the baseline's parameters"), ("dense", "the dense net's")):
        m = np.asarray(results["position_accuracy"][name])
        lines.append(f"(each fragment alone, {what}: accuracy {m[0, 0]:.4f} at position (0, 0), the "
                     f"original's; {m.mean():.4f} on average over the 16, {m.min():.4f} to {m.max():.4f})")
    return "\n".join(lines)
