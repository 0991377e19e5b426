"""``econv evaluate``: FCN's four metrics on a PASCAL VOC layout, for the original, dense and dpoa nets,
in one process or over a Dask distributed cluster.

Each image gives one confusion matrix per model (:func:`econv.metrics.confusion`, label 255 ignored);
the dataset's matrices are their sums, and the metrics (:func:`econv.metrics.scores`) come from the
sums, as FCN's ``score.py`` computes them.  Integer sums do not depend on the order the images finish
in, so a cluster run gives exactly the single-process numbers.

Distributed (``workers`` for a local cluster on the loopback interface, or ``scheduler`` for the
address of a running one, ``tcp://host:8786``): one task per image; each worker process builds the
:class:`econv.segment.Segmenter` once (nets are cached per worker and per image size) and reads the
image and label files itself, so every worker must see the dataset, the prototxt and the weights
under the same paths (a shared file system), and have econv installed.  Needs ``dask[distributed]``
(``pip install "econv[dask]"``).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from .metrics import confusion, scores

_SEGMENTERS: dict = {}      # per process: config -> Segmenter (built once per worker)


def _config(prototxt, weights, dense_from, dense_weights, backend, dtype="float32") -> tuple:
    import os

    norm = (lambda p: None if p is None else os.path.abspath(os.fspath(p)))  # noqa: E731
    return (norm(prototxt), norm(weights), dense_from, norm(dense_weights), backend, np.dtype(dtype).name)


def _segmenter(config: tuple):
    if config not in _SEGMENTERS:
        from .segment import Segmenter

        prototxt, weights, dense_from, dense_weights, backend, dtype = config
        _SEGMENTERS[config] = Segmenter(prototxt, weights, dense_from=dense_from,
                                        dense_weights=dense_weights, backend=backend, dtype=dtype)
    return _SEGMENTERS[config]


def evaluate_image(config: tuple, root: str, image_id: str) -> dict:
    """One image: ``{"id", "size", "padded_to", "hist": {model: n x n int64}}`` (a picklable task)."""
    from .voc import preprocess, read_image, read_label, voc_paths

    seg = _segmenter(config)
    image_path, label_path = voc_paths(root, image_id)
    image, label = read_image(image_path), read_label(label_path)
    if label.shape != (image.height, image.width):
        raise ValueError(f"{label_path}: label {label.shape} and image {image.height}x{image.width} "
                         f"differ in size")
    pred = seg.predict(preprocess(image))
    return {"id": image_id, "size": list(label.shape), "padded_to": list(pred["padded"]),
            "hist": {m: confusion(pred[m], label, seg.classes) for m in seg.models}}


def _per_image(result: dict) -> dict:
    row = {"id": result["id"], "size": result["size"]}
    if result["padded_to"] != result["size"]:
        row["padded_to"] = result["padded_to"]
    for m, hist in result["hist"].items():
        row[m] = scores(hist) if hist.sum() else None      # None: every pixel is ignore (255)
    return row


def evaluate(prototxt, weights, voc, split: str = "val", dense_from: str | None = None,
             dense_weights=None, limit: int | None = None, workers: int | None = None,
             scheduler: str | None = None, backend: str = "numpy", progress: bool = True,
             dtype="float32") -> dict:
    """The report (module docstring): ``{"models": {model: four metrics}, "images": [per image],
    "hist": {model: nested lists}, "n_images", "seconds", "config"}``, images in the split's order."""
    from .voc import voc_split

    ids = voc_split(voc, split)[:limit] if limit else voc_split(voc, split)
    config = _config(prototxt, weights, dense_from, dense_weights, backend, dtype)
    start = time.perf_counter()
    if workers or scheduler:
        results = _distributed(config, str(voc), ids, workers, scheduler, progress)
    else:
        from tqdm import tqdm

        _segmenter(config)       # fail early (bad files) before the progress bar
        results = [evaluate_image(config, str(voc), i)
                   for i in tqdm(ids, desc=f"evaluate {split}", unit="image", disable=not progress)]
    by_id = {r["id"]: r for r in results}
    results = [by_id[i] for i in ids]
    models = list(results[0]["hist"])
    total = {m: sum(r["hist"][m] for r in results) for m in models}
    return {"models": {m: scores(total[m]) for m in models},
            "images": [_per_image(r) for r in results],
            "hist": {m: total[m].tolist() for m in models},
            "n_images": len(ids), "seconds": round(time.perf_counter() - start, 3),
            "config": {"prototxt": config[0], "weights": config[1], "voc": str(voc), "split": split,
                       "dense_from": dense_from, "dense_weights": config[3], "backend": backend,
                       "dtype": config[5],
                       "workers": workers, "scheduler": scheduler}}


def _distributed(config, root, ids, workers, scheduler, progress) -> list:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError('--workers/--scheduler need Dask distributed: pip install "econv[dask]"') from None
    from tqdm import tqdm

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = [client.submit(evaluate_image, config, root, i, key=f"econv-evaluate-{i}-{hash(config)}",
                                 pure=False) for i in ids]
        results = []
        for future in tqdm(as_completed(futures), total=len(futures), desc="evaluate (dask)",
                           unit="image", disable=not progress):
            results.append(future.result())
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def table(report: dict) -> str:
    """The metrics as a text table, one row per model."""
    keys = ("pixel_accuracy", "mean_accuracy", "mean_iu", "frequency_weighted_iu")
    lines = [f"{'model':<10}" + "".join(f"{k:>24}" for k in keys)]
    for m, s in report["models"].items():
        lines.append(f"{m:<10}" + "".join(f"{s[k]:>24.4f}" for k in keys))
    return "\n".join(lines)


def write_report(report: dict, path) -> str:
    from caffe_import.atomic import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w") as fh:
        json.dump(report, fh, indent=1)
    return str(path)
