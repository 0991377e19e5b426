"""``econv demo --task regression``: the paper's apparent age estimation (section 3.4) at small scale.

The target is the digit's size: each scene holds one digit whose 8x8 image was upscaled to ``s`` x
``s`` pixels, ``s`` an integer drawn uniformly from 12..20 (scales 1.5 to 2.5); the net estimates
``s`` from the scene.  Like a face's age it is a property of the object, not of where it sits, so
the 16 fragment estimates of the dense net (each the original net on a shifted view) all estimate
the same number and their average is meaningful (a position target would not be: each fragment
sees the digit shifted by another amount).  It is not trivial: the digit's strokes rarely fill its
8x8 box (a 1 is narrow, many digits leave the top row empty), and the upscaling is bilinear.
Integer sizes also mean the target is determined by the image (a scale drawn from an interval is
not: ``ndimage.zoom`` gives the same pixels for every scale that rounds to one size).

As the paper (``(a - 45) / 45``): the target is scaled to [-1, 1] by ``(s - 16) / 4``; the net ends in a
tanh and an L1 loss (``L1Loss``).  The dense net averages its 4x4 estimates (global average pooling,
Note [Global average pooling] in :mod:`econv.tasks.common`) before its tanh and L1 loss.  Same
protocol as :mod:`econv.tasks.classification`: baseline from scratch, then ``baseline_continued``
and ``dense`` fine-tuned from it for the same iterations, and ``dpoa``.  MAE in pixels (the paper's
"years"), the mean signed error (``bias``), forward time per image, and the MAE of each of the 16
fragments on its own (``position_mae``, 4x4, with the baseline's parameters and after the dense
fine-tuning: ``[0][0]`` is the original's own estimate, so the dense one equals dpoa's MAE);
``predictions.png`` plots each model's estimates against the truth (sizes 10 to 22 on both axes).

The paper (VGG-Face on ChaLearn 2015): MAE 6.82 years baseline, 5.28 dense, 6.19 dpoa.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict

import numpy as np

from .common import TaskConfig, dense_net, describe, forward_ms, four_models, one_blas_thread, outputs

__all__ = ["FULL", "QUICK", "run", "data", "sizes_range", "to_target", "from_target", "table"]

TASK = "regression"
FULL = TaskConfig()
QUICK = TaskConfig(train_scenes=256, test_scenes=64, widths=(8, 8, 16), fc=16, batch=8, base_iters=40,
                   tune_iters=10, pictures=4)
MODELS = ("baseline", "baseline_continued", "dense", "dpoa")


def sizes_range(cfg: TaskConfig) -> tuple[int, int]:
    """The digit sizes in pixels, ``round(8 * scale)`` for the config's scale range (12, 20)."""
    return round(8 * cfg.scale[0]), round(8 * cfg.scale[1])


def to_target(size, cfg: TaskConfig):
    """Size in pixels -> [-1, 1]: ``(s - mid) / half`` (12 -> -1, 16 -> 0, 20 -> 1)."""
    lo, hi = sizes_range(cfg)
    return (np.asarray(size, np.float64) - (lo + hi) / 2) / ((hi - lo) / 2)


def from_target(t, cfg: TaskConfig):
    lo, hi = sizes_range(cfg)
    return np.asarray(t, np.float64) * ((hi - lo) / 2) + (lo + hi) / 2


def data(cfg: TaskConfig, split: str, count: int, seed: int):
    """``(images, sizes (N,) int64 pixels)``: scene ``n`` is ``one_digit_scenes(1, scale=(s/8, s/8),
    seed=seed * 1000003 + n)`` with ``s`` drawn uniformly from :func:`sizes_range`."""
    from ..scenes import one_digit_scenes

    lo, hi = sizes_range(cfg)
    sizes = np.random.default_rng([seed, 8]).integers(lo, hi + 1, size=count)
    images = np.zeros((count, 1, cfg.size, cfg.size), np.float32)
    for n, s in enumerate(sizes):
        images[n] = one_digit_scenes(1, size=cfg.size, scale=(s / 8, s / 8), seed=seed * 1000003 + n,
                                     split=split)[0][0]
    return images, sizes.astype(np.int64)


def run(out: str = "demo_out", backend: str = "numba", quick: bool = False, progress: bool = True,
        cfg: TaskConfig | None = None, log=print) -> dict:
    """The whole experiment (module docstring); returns what it writes to ``out/results.json``."""
    with one_blas_thread():
        return _run(out, backend, quick, progress, cfg or (QUICK if quick else FULL), log)


def _run(out, backend, quick, progress, cfg, log):
    from ..demo import picture_title, save_results
    from ..pictures import panel

    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train_x, train_s = data(cfg, "train", cfg.train_scenes, cfg.seed)
    test_x, test_s = data(cfg, "test", cfg.test_scenes, cfg.seed + 1)
    lo, hi = sizes_range(cfg)
    log(f"data: {cfg.train_scenes} training and {cfg.test_scenes} test scenes of {cfg.size}x{cfg.size} "
        f"pixels, one digit each of {lo} to {hi} pixels (the target; held-out digits in the test scenes)")
    models, checks = four_models(TASK, 1, train_x, to_target(train_s, cfg).astype(np.float32), test_x,
                                 cfg, backend, progress, log)
    constant = float(np.mean(np.abs(np.median(train_s) - test_s)))
    results = {"task": TASK, "backend": backend, "quick": quick, "config": asdict(cfg), **checks,
               "target": f"digit size in pixels ({lo}..{hi}), scaled to [-1, 1] by "
                         f"(s - {(lo + hi) / 2:g}) / {(hi - lo) / 2:g}",
               "mae_of_constant_median": constant, "machine": platform.platform()}
    estimates = {}
    for name, (net, blob, fitted) in models.items():
        t, ms = outputs(net, test_x, blob, cfg.batch), forward_ms(net, test_x, blob, cfg.batch)
        estimates[name] = from_target(t.reshape(-1), cfg)
        err = np.abs(estimates[name] - test_s)
        results[name] = {"mae": float(err.mean()), "mae_target": float(err.mean() / ((hi - lo) / 2)),
                         "mae_se": float(err.std(ddof=1) / np.sqrt(len(err))) if len(err) > 1 else 0.0,
                         "bias": float(np.mean(estimates[name] - test_s)), **describe(net, fitted, ms)}
    start_dense = dense_net(models["baseline"][0], TASK, cfg.start)[0]
    results["position_mae"] = {"baseline": _position_mae(start_dense, test_x, test_s, cfg),
                               "dense": _position_mae(models["dense"][0], test_x, test_s, cfg)}
    results["seconds"] = time.perf_counter() - t0

    picture = os.path.join(out, "predictions.png")
    plots = [scatter(test_s, estimates[m], (lo - 2, hi + 2)) for m in MODELS]
    titles = [f"{m}\nMAE {results[m]['mae']:.2f} px" for m in MODELS]
    what = (f"regression: estimated (y) against true (x) digit size, {lo - 2} to {hi + 2} px, on all "
            f"{cfg.test_scenes} test scenes")
    legend = [(DIAGONAL, "estimate = truth"), ((0, 0, 0), "test scenes (darker: more of them)")]
    panel([plots], titles, picture, scale=2, title=picture_title(results, what), legend=legend)
    save_results(out, results, picture, table(results), log)
    return results


def _position_mae(dense, images, sizes, cfg) -> list:
    """The MAE (pixels) of each position of a dense net's ``out`` map (each one fragment's estimate,
    through the tanh, before the averaging) as a nested list."""
    per_position = from_target(np.tanh(outputs(dense, images, "out", cfg.batch)[:, 0]), cfg)
    return np.abs(per_position - sizes[:, None, None]).mean(axis=0).round(6).tolist()


DIAGONAL = (230, 80, 80)        # the scatter plots' diagonal, red


def scatter(true, est, span, size: int = 96) -> np.ndarray:
    """An (size, size, 3) uint8 plot of ``est`` against ``true`` over ``span`` (both axes): the
    diagonal in red, each point one dark pixel (darker where points pile up)."""
    lo, hi = span

    def pix(v):
        p = np.rint((np.asarray(v, np.float64) - lo) / (hi - lo) * (size - 1))
        return np.clip(p, 0, size - 1).astype(int)

    counts = np.zeros((size, size))
    np.add.at(counts, (size - 1 - pix(est), pix(true)), 1)
    full = max(1.0, float(np.percentile(counts[counts > 0], 90))) if counts.any() else 1.0
    level = 255 - np.rint(255 * np.minimum(1, counts / full))
    rgb = np.repeat(level.astype(np.uint8)[..., None], 3, axis=2)
    d = np.arange(size)
    diag = (counts[size - 1 - d, d] == 0)
    rgb[size - 1 - d[diag], d[diag]] = DIAGONAL
    return rgb


def table(results: dict) -> str:
    """The printed table: MAE in pixels and in target units, training and forward times per model."""
    lines = [f"{'model':<20} {'MAE px':>7} {'+-SE':>6} {'bias px':>8} {'MAE [-1,1]':>11} {'preds/img':>10} "
             f"{'train s':>8} {'fwd ms/img':>11}"]
    for name in MODELS:
        r = results[name]
        lines.append(f"{name:<20} {r['mae']:>7.3f} {r['mae_se']:>6.3f} {r['bias']:>8.3f} "
                     f"{r['mae_target']:>11.4f} "
                     f"{r['predictions_per_image']:>10d} {r['train_seconds']:>8.1f} "
                     f"{r['forward_ms_per_image']:>11.2f}")
    lines.append(f"(always answering the training median: MAE {results['mae_of_constant_median']:.3f} px)")
    for name, what in (("baseline", "the baseline's parameters"), ("dense", "the dense net's")):
        m = np.asarray(results["position_mae"][name])
        lines.append(f"(each fragment alone, {what}: MAE {m[0, 0]:.3f} px at position (0, 0), the "
                     f"original's; {m.mean():.3f} on average over the 16, {m.min():.3f} to {m.max():.3f})")
    return "\n".join(lines)
