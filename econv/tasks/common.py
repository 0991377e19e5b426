"""What the three small-scale experiments share: the net, the dense net with its global average
pooling, training (:func:`econv.demo.train`), batched outputs and the results file.

The net (:func:`layers`) is a small VGG: three blocks of one 3x3 convolution (pad 1) + ReLU + 2x2 max
pooling (stride 2), then ``fc4`` (InnerProduct + ReLU) and ``out`` (InnerProduct: the class scores, or
one value for regression), on one-digit scenes (:func:`econv.scenes.one_digit_scenes`).  As in the
paper's VGG-16 (pool4 of five poolings), the dense net sets the stride of the *last but one* pooling
(``pool2``) to 1: ``pool3`` becomes an ePool (est 2), ``fc4`` and ``out`` convolutions dilated by 4, and
``out`` becomes a 4x4 map of predictions at the training size.

Note [Global average pooling].  densify keeps the dense net equivalent, so at the training size each
of the 16 positions of the dense ``out`` map is exactly the original's prediction for one fragment:
the original net run with each densified pooling's windows shifted by its phase (position ``(0, 0)``
is the original's own prediction; :mod:`reference.fragments`).  A global pooling in the original
would not help: densify turns it into an ePool that averages each fragment on its own, so the map
stays 4x4.  As the paper does ("we add a global average pooling layer to turn them into one
estimate", sections 3.3 and 3.4), the dense net gets one AVE pooling with ``global_pooling`` after
``out`` (``out_gap``), and the loss reads that: ``out_gap`` is the mean of the 16 fragments'
predictions (for regression, the mean before the tanh).  That layer is the only difference from an
exact equivalent, it has no parameters, and dpoa (the original architecture) does not have it.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["TaskConfig", "layers", "head", "assemble", "dense_net", "back_net", "outputs",
           "gap_check", "forward_ms", "fit", "body_specs", "start_checks",
           "four_models", "describe", "one_blas_thread"]

MSRA = {"type": "msra"}
ZERO = {"type": "constant", "value": 0}
SMALL = {"type": "gaussian", "std": 0.01}    # the last layer starts near zero (FCN's score_fr)
HEAD_LAYERS = ("label", "tanh", "loss")      # the layer names :func:`head` adds


@dataclass(frozen=True)
class TaskConfig:
    size: int = 32                      # one-digit scenes, size x size pixels
    scale: tuple = (1.5, 2.5)           # digit upscaling (8x8 digits -> 12 to 20 pixels)
    train_scenes: int = 6000
    test_scenes: int = 2000
    widths: tuple = (16, 32, 64)        # conv1..conv3
    fc: int = 64                        # fc4
    batch: int = 16
    base_iters: int = 2000              # baseline from scratch
    tune_iters: int = 600               # each of: baseline continued, dense
    base_lr: float = 0.01
    tune_lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    start: str = "pool2"                # the pooling densify sets to stride 1
    pictures: int = 6
    seed: int = 0


def one_blas_thread():
    """A context in which BLAS runs on one thread (threadpoolctl, a scikit-learn dependency; a no-op
    without it).  These nets multiply small matrices between Numba kernels: on the shared 2-core
    machine OpenBLAS's thread hand-offs made a training iteration 10 to 16 times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def layers(cfg: TaskConfig, outputs: int, batch: int | None = None) -> list[dict]:
    """The body (no loss): ``data`` -> conv1/pool1 .. conv3/pool3 -> ``fc4`` -> ``out`` (module docstring)."""
    n = batch or cfg.batch
    specs = [{"name": "data", "type": "Input", "top": ["data"],
              "input_param": {"shape": [{"dim": [n, 1, cfg.size, cfg.size]}]}}]
    bottom = "data"
    for block, width in enumerate(cfg.widths, start=1):
        conv, pool = f"conv{block}", f"pool{block}"
        specs += [{"name": conv, "type": "Convolution", "bottom": [bottom], "top": [conv],
                   "convolution_param": {"num_output": width, "kernel_size": 3, "pad": 1,
                                         "weight_filler": dict(MSRA), "bias_filler": dict(ZERO)}},
                  {"name": f"relu{block}", "type": "ReLU", "bottom": [conv], "top": [conv]},
                  {"name": pool, "type": "Pooling", "bottom": [conv], "top": [pool],
                   "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}}]
        bottom = pool
    for name, num, weight in (("fc4", cfg.fc, MSRA), ("out", outputs, SMALL)):
        specs.append({"name": name, "type": "InnerProduct", "bottom": [bottom], "top": [name],
                      "inner_product_param": {"num_output": num, "weight_filler": dict(weight),
                                              "bias_filler": dict(ZERO)}})
        if name == "fc4":
            specs.append({"name": "relu4", "type": "ReLU", "bottom": [name], "top": [name]})
        bottom = name
    return specs


def head(task: str, bottom: str, batch: int) -> tuple[list[dict], str]:
    """``(layers, prediction blob)`` after ``bottom``: a ``label`` input and the task's loss.

    classification: SoftmaxWithLoss(bottom, label), the prediction is ``bottom`` (scores);
    regression: TanH -> ``<bottom>_tanh`` (the prediction, in [-1, 1]) and L1Loss(it, label).
    """
    label = {"name": "label", "type": "Input", "top": ["label"],
             "input_param": {"shape": [{"dim": [batch, 1]}]}}
    if task == "classification":
        return [label, {"name": "loss", "type": "SoftmaxWithLoss", "bottom": [bottom, "label"],
                        "top": ["loss"]}], bottom
    if task == "regression":
        pred = f"{bottom}_tanh"
        return [label, {"name": "tanh", "type": "TanH", "bottom": [bottom], "top": [pred]},
                {"name": "loss", "type": "L1Loss", "bottom": [pred, "label"], "top": ["loss"]}], pred
    raise ValueError(f"head: task must be 'classification' or 'regression', got {task!r}")


def assemble(specs, params_from=None, backend="numpy", seed=0, name="", build_options=None):
    """A Net of ``specs`` (training phase), carrying ``params_from``'s parameters where names match."""
    from reference import Net

    options = dict(build_options or {"phase": "train", "backend": backend, "seed": seed})
    net = Net(copy.deepcopy(specs), **options, name=name)
    if params_from is not None:
        for layer, blobs in params_from.params.items():
            if layer in net.params:
                for a, b in zip(blobs, net.params[layer]):
                    b[...] = a
    return net


def body_specs(net):
    """The specs of ``net`` without its label input and loss (what densify and dpoa work on)."""
    return [s for s in net.specs if s["name"] not in HEAD_LAYERS]


def dense_net(net, task: str, start: str):
    """The trainable dense net of a baseline ``net`` (built by :func:`layers` + :func:`head`):
    densify(body, start) + global average pooling of ``out`` + the task's head (Note [Global
    average pooling]).  Returns ``(net, prediction blob)``; dpoa() works on it."""
    from reference import densify

    body = assemble(body_specs(net), net, build_options=net.build_options, name=net.name)
    dense = densify(body, start)
    batch = dense.blob_shapes["data"][0]
    gap = {"name": "gap", "type": "Pooling", "bottom": ["out"], "top": ["out_gap"],
           "pooling_param": {"pool": "AVE", "global_pooling": True}}
    extra, pred = head(task, "out_gap", batch)
    out = assemble(dense.specs + [gap] + extra, dense, build_options=dense.build_options,
                   name=dense.name)
    out.dense_info, out.grids = dense.dense_info, dense.grids
    return out, pred


def back_net(dense, task: str):
    """dpoa: the original architecture carrying ``dense``'s parameters, with the task's head."""
    from reference import dpoa

    back = dpoa(dense)
    extra, pred = head(task, "out", back.blob_shapes["data"][0])
    return assemble(back.specs + extra, back, build_options=back.build_options, name=back.name), pred


def outputs(net, images, blob: str, batch: int) -> np.ndarray:
    """``blob`` for every image, in batches of ``batch`` (the last one padded with zeros and cut)."""
    out = []
    dummy = np.zeros((batch, 1), np.float32)
    for a in range(0, len(images), batch):
        x = images[a:a + batch]
        n = len(x)
        if n < batch:
            x = np.concatenate([x, np.zeros((batch - n,) + x.shape[1:], x.dtype)])
        feed = {"data": x}
        if "label" in net.input_names:
            feed["label"] = dummy
        out.append(np.asarray(net.forward(**feed)[blob])[:n].copy())
    return np.concatenate(out)


def forward_ms(net, images, blob: str, batch: int, count: int = 256, repeats: int = 5) -> float:
    """Forward time per image in milliseconds on the first ``count`` images: one warm-up batch, then
    the best of ``repeats`` passes (the machine is shared: the fastest pass is the least disturbed)."""
    x = images[:count]
    outputs(net, x[:batch], blob, batch)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        outputs(net, x, blob, batch)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(x)


def gap_check(net, dense, images, pred_blob: str = "out") -> float:
    """Max |dense ``out_gap`` - mean over fragments of the original's ``out``| / max(1, |mean|)
    (Note [Global average pooling]): every fragment net (:func:`reference.fragments.fragment_net`)
    is run and their predictions averaged."""
    from reference.fragments import all_shifts, fragment_net

    x = images[:dense.blob_shapes["data"][0]]
    feed = {"data": x, "label": np.zeros((len(x), 1), np.float32)}
    got = np.asarray(dense.forward(**feed)["out_gap"]).reshape(len(x), -1)
    frags = []
    for shifts in all_shifts(dense):
        frag, _ = fragment_net(dense, shifts)
        inputs = {k: v for k, v in feed.items() if k in frag.input_names}
        frags.append(np.asarray(frag.forward(**inputs)[pred_blob]).reshape(len(x), -1))
    want = np.mean(frags, axis=0)
    return float(np.abs(got - want).max() / max(1.0, float(np.abs(want).max())))


def fit(net, images, targets, iters, cfg, lr, desc, seed, progress):
    """:func:`econv.demo.train` (Caffe SGD on random batches, a tqdm bar)."""
    from ..demo import train

    return train(net, images, targets, iters, cfg, lr, desc, seed, progress)


def start_checks(net, task: str, cfg: TaskConfig, images) -> dict:
    """Before fine-tuning: E1/E2 of the densified baseline on every blob after ``cfg.start``
    (``equivalence_max_err``; :class:`econv.demo.CheckFailed` when it fails) and :func:`gap_check`
    (``gap_max_err``)."""
    from reference import densify
    from reference.fragments import check_equivalence

    body = assemble(body_specs(net), net, build_options=net.build_options)
    report = check_equivalence(body, densify(body, cfg.start), {"data": images[:cfg.batch]})
    if not report.ok:
        from ..demo import CheckFailed

        raise CheckFailed(f"the dense net is not equivalent to the baseline:\n{report}")
    dense, _ = dense_net(net, task, cfg.start)
    return {"equivalence_max_err": max(report.worst("E1"), report.worst("E2")),
            "gap_max_err": gap_check(net, dense, images)}


def four_models(task: str, outputs_: int, train_x, train_y, test_x, cfg: TaskConfig, backend: str,
                progress: bool, log) -> tuple[dict, dict]:
    """The supervised protocol of the segmentation demo: the baseline from scratch; the start checks;
    from the same start, ``baseline_continued`` (the fair control) and ``dense`` fine-tuned for the
    same iterations; ``dpoa``.  Returns ``({name: (net, prediction blob, fit or None)}, checks)``."""
    extra, pred = head(task, "out", cfg.batch)
    specs = layers(cfg, outputs_) + extra
    baseline = assemble(specs, backend=backend, seed=cfg.seed, name=f"digits_vgg_{task}")
    base_fit = fit(baseline, train_x, train_y, cfg.base_iters, cfg, cfg.base_lr, "baseline", cfg.seed,
                   progress)
    checks = start_checks(baseline, task, cfg, test_x)
    log(f"before fine-tuning ({cfg.start} densified, float32): E1+E2 max error "
        f"{checks['equivalence_max_err']:.2e}; the dense net's averaged output vs the mean of the "
        f"fragment nets' outputs: {checks['gap_max_err']:.2e}")
    continued = assemble(specs, baseline, build_options=baseline.build_options, name=baseline.name)
    cont_fit = fit(continued, train_x, train_y, cfg.tune_iters, cfg, cfg.tune_lr, "baseline continued",
                   cfg.seed + 1, progress)
    dense, dense_pred = dense_net(baseline, task, cfg.start)
    dense_fit = fit(dense, train_x, train_y, cfg.tune_iters, cfg, cfg.tune_lr, "dense", cfg.seed + 1,
                    progress)
    back, back_pred = back_net(dense, task)
    return {"baseline": (baseline, pred, base_fit), "baseline_continued": (continued, pred, cont_fit),
            "dense": (dense, dense_pred, dense_fit), "dpoa": (back, back_pred, None)}, checks


def describe(net, fitted, ms: float) -> dict:
    """The per-model entries every task writes besides its metric."""
    r = {"forward_ms_per_image": ms, "predictions_per_image": int(np.prod(net.blob_shapes["out"][2:])),
         "train_seconds": fitted["seconds"] if fitted else 0.0}
    if fitted:
        r["final_loss"] = float(np.mean(fitted["losses"][-20:]))
    return r
