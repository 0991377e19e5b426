"""``econv demo --task localization``: the paper's unsupervised object localization (section 3.2,
after Wei et al.'s SCDA) at small scale.

1. One classifier is trained: the baseline of :mod:`econv.tasks.classification` (same net and
   schedule) on one-digit scenes whose digits are larger (20 to 28 pixels in 32, scale 2.5 to 3.5,
   the box about 43 % of the scene).  Nothing else is trained: the localization uses no boxes.
   Why larger: pool3's receptive field (22 pixels) is wider than the 12-20 pixel digits of the other
   tasks, every unit near a digit fires, and the boxes come out 2.5 to 3 times the true box's area
   (a run with ``cfg=replace(FULL, scale=(1.5, 2.5))`` gave 20 % baseline, 9 % dense); with the
   digit filling a good part of the scene the baseline method works (71 %, boxes 1.5 times).
2. For every test scene, the last pooling's output (``pool3``, the paper's pool5) summed over the
   channels gives a map (:func:`activation_map`); the mask is where the map exceeds its own mean
   (:func:`mask_of`); it is resized to the scene (:func:`to_pixels`: each pixel takes the value of
   the map unit whose receptive field is centred nearest to it, by the coordinate maps); the box is
   the tight box of its largest 4-connected region (:func:`largest_box`, ``scipy.ndimage.label``).
   A localization is correct when its IoU with the digit's box (:func:`iou`) is at least 0.5.
3. baseline: the classifier's pool3 (4x4 units, 8 pixels apart); dense: the same parameters with
   pool2 densified (pool3 an ePool: 16x16 units, 2 pixels apart; every fourth unit is the
   baseline's).  No fine-tuning, as in the paper.  dpoa: the dense net has no parameters of its own
   here, so dpoa *is* the baseline (same parameters, same architecture): its entry repeats the
   baseline's and ``dpoa_is_baseline`` says so (the paper: "a dpoa net is not applicable").
4. ``results.json`` (accuracy, mean IoU and the median ratio of found to true box area per model,
   the classifier's accuracy), the table, and
   ``masks.png``: per scene the input with the true box, each net's map, and its mask with its box.

The paper (VGG-16 on CUB-200-2011): 76.09 % for VGG-16, 79.06 % for the dense net.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict

import numpy as np

from .common import TaskConfig, assemble, body_specs, fit, forward_ms, head, layers, one_blas_thread, \
    outputs

__all__ = ["FULL", "QUICK", "run", "activation_map", "mask_of", "to_pixels", "largest_box", "iou",
           "localize", "table"]

TASK = "localization"
FULL = TaskConfig(scale=(2.5, 3.5), tune_iters=0)
QUICK = TaskConfig(scale=(2.5, 3.5), train_scenes=256, test_scenes=64, widths=(8, 8, 16), fc=16, batch=8,
                   base_iters=40, tune_iters=0, pictures=4)
LAST_POOL = "pool3"
MODELS = ("baseline", "dense", "dpoa")


def activation_map(pooled) -> np.ndarray:
    """``(N, C, h, w)`` pooling outputs -> ``(N, h, w)``: the sum over the channels."""
    return np.asarray(pooled, np.float64).sum(axis=1)


def mask_of(m) -> np.ndarray:
    """The binary mask of one ``(h, w)`` map: where it exceeds its mean (all False when constant)."""
    m = np.asarray(m, np.float64)
    return m > m.mean()


def to_pixels(mask, offset, stride, size) -> np.ndarray:
    """A unit mask ``(h, w)`` resized to ``size`` x ``size`` pixels: pixel ``p`` (per axis) takes unit
    ``round((p - offset) / stride)``, clipped to the map, where unit ``i`` is centred on pixel
    ``offset + stride * i`` (:func:`reference.coord_map.coord_maps`).  Example: 4 units, offset 3.5,
    stride 8: pixels 0..7 -> unit 0, 8..15 -> unit 1, ..."""
    mask = np.asarray(mask)
    idx = []
    for a in (0, 1):
        p = np.arange(size)
        i = np.floor((p - offset[a]) / stride[a] + 0.5).astype(int)     # no ties: offsets are x.5
        idx.append(np.clip(i, 0, mask.shape[a] - 1))
    return mask[np.ix_(idx[0], idx[1])]


def largest_box(mask) -> tuple:
    """``(top, left, bottom, right)`` (bottom/right exclusive) of the largest 4-connected region of a
    pixel mask (the first in scan order on a tie); the whole image when the mask is empty."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    regions, n = ndimage.label(mask)
    if n == 0:
        return (0, 0) + mask.shape
    biggest = 1 + int(np.argmax(np.bincount(regions.ravel())[1:]))
    rows, cols = np.nonzero(regions == biggest)
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def iou(a, b) -> float:
    """Intersection over union of two ``(top, left, bottom, right)`` boxes (bottom/right exclusive).
    Example: (0, 0, 4, 4) and (2, 2, 6, 6) overlap in 4 pixels of 28: 1/7."""
    h = min(a[2], b[2]) - max(a[0], b[0])
    w = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0, h) * max(0, w)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def localize(pooled, offset, stride, size):
    """For every scene: ``(map, pixel mask, box)`` from its pooling output (module docstring, step 2)."""
    out = []
    for m in activation_map(pooled):
        pixels = to_pixels(mask_of(m), offset, stride, size)
        out.append((m, pixels, largest_box(pixels)))
    return out


def _area(box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _score(found, boxes) -> dict:
    """Accuracy (IoU >= 0.5) with its 95 % interval, mean IoU, median found / true box area."""
    ious = np.array([iou(box, truth) for (_, _, box), truth in zip(found, boxes)])
    acc = float(np.mean(ious >= 0.5))
    return {"accuracy": acc, "accuracy_ci95": 1.96 * float(np.sqrt(acc * (1 - acc) / len(ious))),
            "mean_iou": float(ious.mean()),
            "box_area_ratio": float(np.median([_area(b) / _area(t) for (_, _, b), t in zip(found, boxes)]))}


def run(out: str = "demo_out", backend: str = "numba", quick: bool = False, progress: bool = True,
        cfg: TaskConfig | None = None, log=print) -> dict:
    """The whole experiment (module docstring); returns what it writes to ``out/results.json``."""
    with one_blas_thread():
        return _run(out, backend, quick, progress, cfg or (QUICK if quick else FULL), log)


def _run(out, backend, quick, progress, cfg, log):
    from reference import densify
    from reference.coord_map import coord_maps
    from reference.fragments import check_equivalence

    from ..demo import CheckFailed, picture_title, save_results
    from ..pictures import panel
    from ..scenes import one_digit_scenes

    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train_x, train_lab, _ = one_digit_scenes(cfg.train_scenes, cfg.size, cfg.scale, cfg.seed, "train")
    test_x, test_lab, boxes = one_digit_scenes(cfg.test_scenes, cfg.size, cfg.scale, cfg.seed + 1, "test")
    log(f"data: {cfg.train_scenes} training scenes (for the classifier: digit labels, no boxes) and "
        f"{cfg.test_scenes} test scenes with boxes, {cfg.size}x{cfg.size} pixels")

    extra, pred = head("classification", "out", cfg.batch)
    classifier = assemble(layers(cfg, 10) + extra, backend=backend, seed=cfg.seed, name="digits_vgg")
    fitted = fit(classifier, train_x, train_lab.max(axis=(1, 2)) - 1, cfg.base_iters, cfg, cfg.base_lr,
                 "classifier", cfg.seed, progress)
    digits = test_lab.max(axis=(1, 2)) - 1
    class_acc = float(np.mean(outputs(classifier, test_x, pred, cfg.batch).argmax(axis=1) == digits))

    base = assemble(body_specs(classifier), classifier, build_options=classifier.build_options)
    dense = densify(base, cfg.start)
    report = check_equivalence(base, dense, {"data": test_x[:cfg.batch]})
    if not report.ok:
        raise CheckFailed(f"the dense net is not equivalent to the baseline:\n{report}")
    maps = {"baseline": coord_maps(base)[LAST_POOL], "dense": coord_maps(dense)[LAST_POOL]}
    log(f"classifier accuracy {class_acc:.4f}; {LAST_POOL}: baseline {base.blob_shapes[LAST_POOL][2:]} "
        f"units ({maps['baseline']}), dense {dense.blob_shapes[LAST_POOL][2:]} ({maps['dense']}); "
        f"E1+E2 max error {max(report.worst('E1'), report.worst('E2')):.2e}")

    results = {"task": TASK, "backend": backend, "quick": quick, "config": asdict(cfg),
               "classifier_accuracy": class_acc, "classifier_train_seconds": fitted["seconds"],
               "equivalence_max_err": max(report.worst("E1"), report.worst("E2")),
               "machine": platform.platform()}
    found = {}
    for name, net in (("baseline", base), ("dense", dense)):
        pooled = outputs(net, test_x, LAST_POOL, cfg.batch)
        found[name] = localize(pooled, maps[name].offset, maps[name].stride, cfg.size)
        results[name] = {**_score(found[name], boxes), "map_units": list(pooled.shape[2:]),
                         "forward_ms_per_image": forward_ms(net, test_x, LAST_POOL, cfg.batch)}
    results["dpoa"] = dict(results["baseline"])
    results["dpoa_is_baseline"] = True
    results["seconds"] = time.perf_counter() - t0

    rows = []
    for i in range(min(cfg.pictures, len(test_x))):
        row = [_boxed(test_x[i, 0], None, [(boxes[i], TRUE_BOX)])]
        for name in ("baseline", "dense"):
            m, pixels, box = found[name][i]
            row += [to_pixels(m, maps[name].offset, maps[name].stride, cfg.size),
                    _boxed(test_x[i, 0], pixels, [(boxes[i], TRUE_BOX), (box, FOUND_BOX)])]
        rows.append(row)
    picture = os.path.join(out, "masks.png")
    score = {m: f"acc {results[m]['accuracy']:.2f}, IoU {results[m]['mean_iou']:.2f}"
             for m in ("baseline", "dense")}
    titles = ["input, true box", "baseline map", f"baseline mask\n{score['baseline']}", "dense map",
              f"dense mask\n{score['dense']}"]
    what = (f"localization: {LAST_POOL}'s summed activations (map: white high), the mask above their mean "
            f"and its largest region's box ({len(rows)} test scenes); accuracy (IoU >= 0.5) over all "
            f"{cfg.test_scenes}")
    legend = [(TRUE_BOX, "true box"), (FOUND_BOX, "found box"), ((255, 128, 128), "mask (tinted red)")]
    panel(rows, titles, picture, title=picture_title(results, what), legend=legend)
    save_results(out, results, picture, table(results), log)
    return results


TRUE_BOX, FOUND_BOX = (40, 200, 40), (230, 40, 40)      # green, red outlines


def _boxed(image, mask, boxes) -> np.ndarray:
    """A gray tile of ``image`` with ``mask`` tinted red and the outlines of ``[(box, colour)]``."""
    from ..pictures import gray_image

    rgb = gray_image(image).astype(np.float64)
    if mask is not None:
        rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array([255.0, 0, 0])
    rgb = rgb.astype(np.uint8)
    for (top, left, bottom, right), colour in boxes:
        rgb[top, left:right] = rgb[bottom - 1, left:right] = colour
        rgb[top:bottom, left] = rgb[top:bottom, right - 1] = colour
    return rgb


def table(results: dict) -> str:
    """The printed table: localization accuracy (IoU >= 0.5), mean IoU, map size, forward time."""
    lines = [f"{'model':<10} {'accuracy':>9} {'+-95%':>7} {'mean IoU':>9} {'box/true':>9} {'map':>7} "
             f"{'fwd ms/img':>11}"]
    for name in MODELS:
        r = results[name]
        size = "x".join(map(str, r["map_units"]))
        lines.append(f"{name:<10} {r['accuracy']:>9.4f} {r['accuracy_ci95']:>7.4f} {r['mean_iou']:>9.4f} "
                     f"{r['box_area_ratio']:>9.2f} {size:>7} {r['forward_ms_per_image']:>11.2f}")
    lines.append("(dpoa is the baseline here: nothing is fine-tuned, so there are no dense parameters to "
                 "carry back)")
    lines.append(f"(the classifier: {results['classifier_accuracy']:.4f} accuracy on the test digits)")
    return "\n".join(lines)
