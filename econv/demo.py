"""``econv demo``: the paper's segmentation experiment (section 3.1) at small scale, end to end.

1. Data: scenes of real handwritten digits (:mod:`econv.scenes`), 11 classes (background + 10).
2. Baseline: a small FCN-8s-style net (:func:`reference.fcn.fcn`: one 3x3 convolution per block,
   five 2x2 max poolings, fc6 3x3, skips from pool4 and pool3) trained from scratch with Caffe's SGD.
3. Equivalence: the baseline densified at pool3 (:func:`reference.densify`) is checked against it
   before any fine-tuning (E1 and E2 on every blob up to the last fusion: the max relative error
   is ``equivalence_max_err`` in results.json).
4. From the same starting point, fine-tune for the same number of iterations (a) the baseline
   itself (``baseline_continued``: the fair control) and (b) its dense version (``dense``); transfer
   (b) back into the original architecture (``dpoa``).
5. Evaluate all four on the held-out test scenes (FCN's metrics, :mod:`econv.metrics`), print the
   table, write ``results.json`` and ``predictions.png`` (input, truth, each model's prediction).

With ``--backend cuda`` the training loops run on the GPU end to end
(:class:`numba_kernels.device_net.DeviceNet`: blobs, diffs, parameters and momentum stay on the device;
per iteration the batch goes up and the loss comes back); evaluation uses the Net with the CUDA ops.

The dense net's final upsampling is rebuilt for its finer grid (stride 4 instead of 8, see
:mod:`reference.dense`, Note [Dense FCN]); everything before it is exactly the baseline's function.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from caffe_import.atomic import atomic_output

__all__ = ["DemoConfig", "QUICK", "FULL", "run", "build_net", "train", "predict", "evaluate", "save_results",
           "CheckFailed", "SMOKE_TEST", "picture_title"]

SMOKE_TEST = "smoke test (--quick): numbers are not meaningful"
SMOKE_BANNER = "SMOKE TEST (--quick): a tiny net trained for seconds; the numbers are not meaningful"


class CheckFailed(RuntimeError):
    """A check the demo makes before it trains on (the dense net's equivalence) failed: exit 1."""


@dataclass(frozen=True)
class DemoConfig:
    size: int = 32                      # scenes are size x size pixels
    train_scenes: int = 2000
    test_scenes: int = 300
    widths: tuple = (16, 32, 48, 64, 64)
    fc: int = 128
    fc6_kernel: int = 3
    first_pad: int = 28                 # FCN pads conv1 so the coarsest score map exists (FCN: 100)
    batch: int = 16
    base_iters: int = 1000              # baseline from scratch
    tune_iters: int = 300               # each of: baseline continued, dense
    base_lr: float = 0.02
    tune_lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    start: str = "pool3"                # the layer densify sets to stride 1
    skips: str = "fixed"                # the skips' upsamplings: "fixed" bilinear (lr_mult 0, as the
                                        # published voc-fcn8s) or "learnable" (bilinear-initialised)
    pictures: int = 6
    seed: int = 0
    extra: dict = field(default_factory=dict)


FULL = DemoConfig()
QUICK = DemoConfig(train_scenes=256, test_scenes=64, base_iters=60, tune_iters=20, widths=(8, 16, 16, 16, 16),
                   fc=32, batch=8, pictures=4)


def build_net(cfg: DemoConfig, backend: str = "numpy", batch: int | None = None, seed: int | None = None):
    """The baseline FCN-8s-style net (with its SoftmaxWithLoss on ``score`` and ``label``)."""
    from reference import Net
    from reference.fcn import fcn

    from .scenes import N_CLASSES

    layers = fcn("8s", classes=N_CLASSES, widths=cfg.widths, convs=(1, 1, 1, 1, 1), fc=cfg.fc,
                 fc6_kernel=cfg.fc6_kernel, first_pad=cfg.first_pad, label=True, dropout=False,
                 input_shape=(batch or cfg.batch, 1, cfg.size, cfg.size),
                 learn_skips=_skips(cfg) == "learnable")
    return Net(layers, phase="train", backend=backend, seed=cfg.seed if seed is None else seed,
               name="digits_fcn8s")


def _skips(cfg: DemoConfig) -> str:
    if cfg.skips not in ("fixed", "learnable"):
        raise ValueError(f"skips must be 'fixed' or 'learnable', got {cfg.skips!r}")
    return cfg.skips


def _solver(net, cfg: DemoConfig, lr: float):
    from reference import SGDSolver

    return SGDSolver(net, base_lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train(net, images, labels, iters: int, cfg: DemoConfig, lr: float, desc: str, seed: int,
          progress: bool = True) -> dict:
    """Caffe SGD on random batches; returns ``{"seconds", "losses"}`` (a progress bar on stderr)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)

    def feed():
        pick = rng.choice(len(images), size=cfg.batch, replace=False)
        return {"data": images[pick], "label": labels[pick][:, None].astype(images.dtype)}

    warmup = warm_up(net, feed_like={"data": images[:cfg.batch],
                                     "label": labels[:cfg.batch][:, None].astype(images.dtype)},
                     cfg=cfg) if iters else 0.0
    bar = tqdm(total=iters, desc=desc, unit="it", disable=not progress, leave=True, dynamic_ncols=True)

    def tick(it, loss):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    start = time.perf_counter()
    try:
        if net.backend == "cuda":           # the whole loop on the GPU; parameters copied back at the end
            from numba_kernels.device_net import DeviceNet

            device, losses = DeviceNet(net), []
            for it in range(iters):
                losses.append(device.step(lr, cfg.momentum, cfg.weight_decay, **feed()))
                tick(it, losses[-1])
            device.download()
        else:
            solver = _solver(net, cfg, lr)
            solver.step(iters, feed=feed, callback=tick)
            losses = solver.losses
    finally:
        bar.close()
    return {"seconds": time.perf_counter() - start, "losses": [float(v) for v in losses],
            "warmup_seconds": warmup}


_COMPILED = set()       # the backends whose kernels this process has compiled (or loaded from cache)


def warm_up(net, feed_like: dict, cfg, log=None) -> float:
    """One forward and backward of ``net`` on a batch (the parameters are not changed), so that the
    Numba kernels compile before a progress bar starts and the first iteration's compile time does
    not show as an ETA of hours.  The first time a process does this for a compiled backend it says
    so on stderr.  Returns the seconds it took (0 for the NumPy backend, which compiles nothing)."""
    import sys

    if net.backend not in ("numba", "cuda"):
        return 0.0
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    first = net.backend not in _COMPILED
    if first:
        say(f"compiling kernels ({net.backend}), first run only: later runs load them from numba's cache ...")
    start = time.perf_counter()
    if net.backend == "cuda":               # the device loop's own kernels; its parameters are a copy
        from numba_kernels.device_net import DeviceNet

        DeviceNet(net).step(0.0, cfg.momentum, cfg.weight_decay, **feed_like)
    net.forward(**feed_like)
    net.backward()
    seconds = time.perf_counter() - start
    if first:
        say(f"kernels ready ({seconds:.1f} s)")
        _COMPILED.add(net.backend)
    return seconds


def predict(net, images, batch: int) -> np.ndarray:
    """Per-pixel class (argmax of ``score``) for every image, in batches of ``batch``."""
    out = []
    dummy = np.zeros((batch, 1) + images.shape[2:], dtype=images.dtype)
    for a in range(0, len(images), batch):
        x = images[a:a + batch]
        n = len(x)
        if n < batch:                       # the dense net's masks hold for one shape: pad the batch
            x = np.concatenate([x, np.zeros((batch - n,) + x.shape[1:], x.dtype)])
        score = net.forward(data=x, label=dummy)["score"]
        out.append(np.asarray(score)[:n].argmax(axis=1))
    return np.concatenate(out)


def evaluate(net, images, labels, batch: int) -> dict:
    """FCN's four metrics on the test scenes and the forward time per image."""
    from .metrics import confusion, scores
    from .scenes import N_CLASSES

    start = time.perf_counter()
    pred = predict(net, images, batch)
    seconds = time.perf_counter() - start
    result = scores(confusion(pred, labels, N_CLASSES))
    result["forward_ms_per_image"] = 1000 * seconds / len(images)
    return result, pred


def _copy_net(net, cfg, backend):
    """A fresh baseline net carrying ``net``'s parameters (the fine-tuning starts from them)."""
    twin = build_net(cfg, backend)
    for name, blobs in net.params.items():
        for a, b in zip(blobs, twin.params[name]):
            b[...] = a
    return twin


def check_start_equivalence(net, cfg, images) -> float:
    """E1 and E2 of the densified baseline on two test scenes; the max relative error."""
    from reference import densify
    from reference.fragments import check_equivalence

    probe = _copy_net(net, cfg, "numpy")
    dense = densify(probe, cfg.start)
    x = images[:cfg.batch]
    dummy = np.zeros((len(x), 1) + x.shape[2:], x.dtype)
    report = check_equivalence(probe, dense, {"data": x, "label": dummy})
    if not report.ok:
        raise CheckFailed(f"the dense net is not equivalent to the baseline:\n{report}")
    return max(report.worst("E1"), report.worst("E2"))


def picture_title(results: dict, what: str) -> str:
    """A picture's title: ``what`` it shows, and on a second line the smoke-test warning of --quick."""
    return what + (f"\n{SMOKE_BANNER}" if results.get("quick") else "")


def save_results(out: str, results: dict, picture: str, table_text: str, log=print) -> None:
    """Write ``out/results.json`` atomically and log the table and what was written.  A ``--quick``
    run says it is a smoke test: ``"note"`` in results.json and a line above the table's header."""
    if results.get("quick"):
        results["note"] = SMOKE_TEST
        table_text = f"{SMOKE_BANNER}\n{table_text}"
    path = os.path.join(out, "results.json")
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
    log(table_text)
    log(f"wrote {path} and {picture} ({results['seconds']:.0f} s in all)")


def run(out: str = "demo_out", backend: str = "numba", quick: bool = False, progress: bool = True,
        cfg: DemoConfig | None = None, log=print, skips: str | None = None) -> dict:
    """The whole demo (module docstring); returns what it writes to ``out/results.json``.
    ``skips``: "fixed" (default, as the published FCN-8s) or "learnable" skip upsamplings."""
    from dataclasses import replace

    from reference import densify, dpoa

    from .pictures import CLASS_LEGEND, panel
    from .scenes import make_scenes

    cfg = cfg or (QUICK if quick else FULL)
    if skips is not None:
        cfg = replace(cfg, skips=skips)
    _skips(cfg)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train_x, train_y = make_scenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed, split="train")
    test_x, test_y = make_scenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1, split="test")
    log(f"data: {cfg.train_scenes} training and {cfg.test_scenes} test scenes of {cfg.size}x{cfg.size} "
        f"pixels (digits from scikit-learn, held-out digits in the test scenes); skip upsamplings "
        f"{cfg.skips}")

    baseline = build_net(cfg, backend)
    base_fit = train(baseline, train_x, train_y, cfg.base_iters, cfg, cfg.base_lr, "baseline",
                     cfg.seed, progress)

    err = check_start_equivalence(baseline, cfg, test_x)
    log(f"equivalence before fine-tuning ({cfg.start} densified, E1+E2, float32): max error {err:.2e}")

    continued = _copy_net(baseline, cfg, backend)
    cont_fit = train(continued, train_x, train_y, cfg.tune_iters, cfg, cfg.tune_lr,
                     "baseline continued", cfg.seed + 1, progress)

    dense = densify(_copy_net(baseline, cfg, backend), cfg.start)
    dense_fit = train(dense, train_x, train_y, cfg.tune_iters, cfg, cfg.tune_lr, "dense",
                      cfg.seed + 1, progress)
    back = dpoa(dense)

    models = {"baseline": (baseline, base_fit), "baseline_continued": (continued, cont_fit),
              "dense": (dense, dense_fit), "dpoa": (back, None)}
    results = {"task": "segmentation", "backend": backend, "quick": quick,
               "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
               "equivalence_max_err": err, "machine": platform.platform()}
    preds = {}
    for name, (net, fit) in models.items():
        scores_, preds[name] = evaluate(net, test_x, test_y, cfg.batch)
        scores_["train_seconds"] = fit["seconds"] if fit else 0.0
        if fit and fit["losses"]:
            scores_["final_loss"] = float(np.mean(fit["losses"][-10:]))
        results[name] = scores_
    results["seconds"] = time.perf_counter() - t0

    rows = [[test_x[i, 0], test_y[i]] + [preds[m][i] for m in models] for i in range(cfg.pictures)]
    picture = os.path.join(out, "predictions.png")
    titles = ["input", "truth"] + [f"{m}\nmean IU {results[m]['mean_iu']:.3f}" for m in models]
    what = (f"segmentation: the class of every pixel on {len(rows)} test scenes; each model's mean IU "
            f"over all {cfg.test_scenes} ({backend})")
    panel(rows, titles, picture, title=picture_title(results, what), legend=CLASS_LEGEND)
    save_results(out, results, picture, table(results), log)
    return results


def table(results: dict) -> str:
    """The printed table: mean IU, pixel accuracy and times per model."""
    lines = [f"{'model':<20} {'mean IU':>8} {'pixel acc':>10} {'train s':>8} {'fwd ms/img':>11}"]
    for name in ("baseline", "baseline_continued", "dense", "dpoa"):
        r = results[name]
        lines.append(f"{name:<20} {r['mean_iu']:>8.4f} {r['pixel_accuracy']:>10.4f} "
                     f"{r['train_seconds']:>8.1f} {r['forward_ms_per_image']:>11.2f}")
    return "\n".join(lines)
