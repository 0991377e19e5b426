"""``econv bench``: eConv/ePool speed, side by side in one run, with ratios (DESIGN.md section 5).

What it measures, each op timed by every implementation in the same interleaved rounds (round-robin
over the implementations, ``--repeat`` rounds, each timed call preceded by an untimed one of the
same implementation; the NumPy reference takes part in the same rounds), reported as the median and
the min-max range of the rounds, so the ratios (of medians) come from one run on one machine.
PyTorch runs with as many threads as Numba (``torch.set_num_threads``):

- eConv forward and backward at VGG conv5 sizes: 512 -> 512 channels, 3x3 kernel, 28x28 and 56x56,
  est 2 and 4 with pad = est (the dense VGG layers), and two smaller layers (64 channels at 56x56,
  256 channels at 28x28, est 2): ``numba_kernels.cpu`` versus the NumPy reference
  and PyTorch CPU (``conv2d`` with ``dilation``; backward = ``aten.convolution_backward`` alone),
  and against its own im2col path (column ``numba-im2col``: ``WINOGRAD`` off, what the 3x3 layers
  ran before :mod:`numba_kernels._winograd`); GFLOP/s counted as the direct method's multiply-adds
  (Winograd does 2.25x fewer, so it can pass 100%) versus this machine's sgemm rate, measured with
  ``np.dot`` in float32 on the GEMM an im2col layer runs (M = 512, K = 512*9, N = H*W), in the
  same rounds: the ceiling of an im2col design.
- ePool forward and backward on the same inputs: MAX with kernel 2, stride 1, est E (a densified
  2x2/2 pooling), and kernel 3, stride 1, pad 1, est E; PyTorch's ``max_pool2d`` with ``dilation``.
  Forward: ``numba`` is the plain :func:`numba_kernels.cpu.pool2d` (what an inference Net runs),
  ``numba+argmax`` is :func:`numba_kernels.cpu.pool2d_argmax` (what a training Net's MAX Pooling
  forward runs: it keeps the argmax for the backward).  Backward: PyTorch's
  ``aten.max_pool2d_with_indices_backward`` alone, from the indices its forward saved, and ours
  likewise, ``pool2d_backward(..., argmax=)`` from ``pool2d_argmax``'s argmax (what a Net's backward
  runs).  AVE against the reference only (PyTorch's ``avg_pool2d`` has no dilation).
- On a GPU (``numba.cuda.is_available()``, not the simulator): ``numba_kernels.cuda`` versus
  PyTorch/cuDNN in float32 with TF32 off, arrays resident on the device.

``--quick`` uses 64 channels at 14x14 and 28x28; ``--json FILE`` saves every number (each round's
time too).  PyTorch is
optional (``pip install torch``): without it those columns are empty.

``--dense`` measures whole nets instead, on ``Net(backend="numba")`` (PyTorch not loaded): VGG-16
(full widths, 1x3x224x224, float32) versus its dense equivalent densified at pool4, next to their
ratio of multiply-adds (convolutions and InnerProducts, counted from the layer shapes), and the
dense net versus computing the same values fragment by fragment (``reference.fragments``: the 16
fragment nets of pool4 and pool5, each a whole VGG-16; and shift-and-stitch proper, a tree that
runs the layers before pool4 once, pool4-conv5_3 once per pool4 fragment and pool5-fc8 once per
fragment: every value once, like the dense net).  Each is timed in alternation, after one untimed
round; medians and minimums of ``--repeat`` rounds.  The fragment nets cost the same, so each round
times one of them, in turn, and counts it 16 times.  The stitched fragments are checked against
the dense output.  ``--quick``: widths / 8, fc 512-512-100, 112x112.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time

import numpy as np

__all__ = ["add_parser", "run", "bench_dense", "multiply_adds", "layer_multiply_adds"]

SETTLE = 0.15   # seconds between implementations (see timed_rounds)


# ---- machine and timing ------------------------------------------------------------------------

def machine_info() -> dict:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    info = {"cpu": model, "nproc": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "numba_threads": numba.get_num_threads(), "blas": _blas_name()}
    return info


def _blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - informational only
        return "?"


def _torch(numba_first=False):
    """PyTorch if importable, else None.

    By default imported before :mod:`numba_kernels.cpu`, so PyTorch keeps its default OpenMP
    settings and the Numba kernels take the ``workqueue`` threading layer.  ``numba_first`` imports
    the kernels first: both then share one OpenMP runtime with passive waiting, the setting of a
    process without PyTorch (see :mod:`numba_kernels.cpu`).  Either way PyTorch then uses as many
    threads as Numba.
    """
    if numba_first:
        import numba_kernels.cpu  # noqa: F401
    try:
        import torch
    except ImportError:
        return None
    import numba
    torch.set_num_threads(numba.get_num_threads())
    return torch


class Timing:
    """The rounds' times (seconds) of one implementation: ``median``, ``low``, ``high``."""

    def __init__(self, samples):
        self.samples = list(samples)
        self.median = float(np.median(self.samples))
        self.low, self.high = min(self.samples), max(self.samples)

    def as_dict(self):
        return {"median": self.median, "min": self.low, "max": self.high, "rounds": self.samples}


def timed_rounds(fns: dict, repeat: int, sync=None) -> dict:
    """``{name: Timing}`` over ``repeat`` round-robin rounds.

    In every round each implementation first pauses ``SETTLE`` seconds (OpenBLAS workers spin for
    about 0.1 s after a GEMM and would slow down whatever runs next), then runs twice, and only the
    second call is timed: the first absorbs the wake-up of sleeping thread pools, which costs several
    milliseconds on a VM.
    """
    sync = sync or (lambda: None)
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if len(fns) > 1:
                time.sleep(SETTLE)
            fn()
            sync()
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: Timing(v) for name, v in samples.items()}


# ---- the measured configurations ----------------------------------------------------------------

def configs(quick: bool):
    if quick:
        return [dict(c=64, hw=hw, est=est) for hw in (14, 28) for est in (2, 4)]
    return ([dict(c=512, hw=hw, est=est) for hw in (28, 56) for est in (2, 4)]
            + [dict(c=64, hw=56, est=2), dict(c=256, hw=28, est=2)])


def _fmt(t):
    return f"{t.median * 1e3:.2f} [{t.low * 1e3:.2f}-{t.high * 1e3:.2f}]"


def _ratio(a, b):
    """How many times faster numba is than ``b``: the ratio of the medians."""
    return None if (a is None or b is None) else b.median / a.median


class Report:
    def __init__(self, out=None):
        self.rows = []
        self.out = out if out is not None else sys.stdout

    def say(self, msg):
        print(msg, file=self.out, flush=True)

    def add(self, **row):
        t = row["times"]
        extra = ""
        if row.get("gflops") is not None:
            extra = f"  numba {row['gflops']:.0f} GFLOP/s (direct count)"
            if row.get("sgemm_gflops"):
                extra += f" = {100 * row['gflops'] / row['sgemm_gflops']:.0f}% of sgemm"
        ratios = "  ".join(f"x{r:.2f} vs {k}" for k, r in row["ratios"].items() if r is not None)
        self.say(f"  {row['op']:<22} {row['size']:<18} "
                 + "  ".join(f"{k} {_fmt(v)} ms" for k, v in t.items()) + f"  {ratios}{extra}")
        self.rows.append({**row, "times": {k: v.median for k, v in t.items()},
                          "timings": {k: v.as_dict() for k, v in t.items()}})


# ---- CPU ----------------------------------------------------------------------------------------

def warm_up(torch, seconds=1.0):
    """Start every thread pool (BLAS, Numba, PyTorch) and let them settle before anything is timed:
    right after start-up the first calls of each are several times slower on this VM."""
    import numba_kernels.cpu as nk

    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 32, 16, 16), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    a = rng.standard_normal((256, 256), dtype=np.float32)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        np.dot(a, a)
        nk.conv2d_backward(nk.conv2d(x, w, pad=2, est=2), x, w, pad=2, est=2)
        nk.pool2d_backward(nk.pool2d(x, 2, 1, 0, 2), x, 2, 1, 0, 2)
        if torch is not None:
            tx = torch.from_numpy(x)
            torch.nn.functional.conv2d(tx, torch.from_numpy(w), padding=2, dilation=2)
            torch.nn.functional.max_pool2d(tx, 2, 1, 0, dilation=2)


def _without_winograd(fn):
    """``fn`` run with :data:`numba_kernels.cpu.WINOGRAD` off: the im2col (or tap GEMM) path."""
    import numba_kernels.cpu as nk

    def run():
        saved, nk.WINOGRAD = nk.WINOGRAD, False
        try:
            return fn()
        finally:
            nk.WINOGRAD = saved
    return run


def bench_cpu(report, quick, repeat, with_reference, torch):
    import numba_kernels.cpu as nk
    import reference as ref

    report.say("warming up the thread pools (BLAS, Numba, PyTorch) ...")
    warm_up(torch)
    rng = np.random.default_rng(0)
    items = configs(quick)
    for idx, cfg in enumerate(items, 1):
        c, hw, e = cfg["c"], cfg["hw"], cfg["est"]
        size = f"{c}x{hw}x{hw} est {e}"
        report.say(f"[{idx}/{len(items)}] {size} (3x3 kernel, pad {e}) ...")
        x = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
        w = (rng.standard_normal((c, c, 3, 3), dtype=np.float32) / np.sqrt(9 * c)).astype(np.float32)
        b = rng.standard_normal(c, dtype=np.float32)
        dy = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
        flops = 2.0 * c * c * 9 * hw * hw
        # the GEMM an im2col conv runs, timed in the same rounds as the convolutions
        ga = rng.standard_normal((c, 9 * c), dtype=np.float32)
        gb = rng.standard_normal((9 * c, hw * hw), dtype=np.float32)
        gout = np.empty((c, hw * hw), np.float32)

        fwd = {"numba": lambda: nk.conv2d(x, w, b, pad=e, est=e),
               "numba-im2col": _without_winograd(lambda: nk.conv2d(x, w, b, pad=e, est=e)),
               "sgemm": lambda: np.dot(ga, gb, out=gout)}
        bwd = {"numba": lambda: nk.conv2d_backward(dy, x, w, pad=e, est=e),
               "numba-im2col": _without_winograd(lambda: nk.conv2d_backward(dy, x, w, pad=e, est=e))}
        if torch is not None:
            tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
            fwd["torch"] = lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=e, dilation=e)
            bwd["torch"] = lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, [c], [1, 1], [e, e], [e, e], False, [0, 0], 1, [True, True, True])
        if with_reference:
            fwd["reference"] = lambda: ref.conv2d(x, w, b, pad=e, est=e)
            bwd["reference"] = lambda: ref.conv2d_backward(dy, x, w, pad=e, est=e)
        t_fwd = timed_rounds(fwd, repeat)
        t_bwd = timed_rounds(bwd, repeat)
        sgemm = flops / t_fwd.pop("sgemm").median / 1e9
        report.say(f"  sgemm (np.dot float32, {c} x {9 * c} x {hw * hw}): {sgemm:.0f} GFLOP/s (median)")
        for op, t, fl in (("eConv forward", t_fwd, flops), ("eConv backward", t_bwd, 2 * flops)):
            report.add(op=op, size=size, times=t, gflops=fl / t["numba"].median / 1e9,
                       sgemm_gflops=sgemm,
                       ratios={k: _ratio(t["numba"], t.get(k))
                               for k in ("torch", "numba-im2col", "reference")})

        for mode, k, p in (("max", 2, 0), ("max", 3, 1), ("ave", 2, 0)):
            y = nk.pool2d(x, k, 1, p, e, mode=mode)
            gy = rng.standard_normal(y.shape, dtype=np.float32)
            fwd = {"numba": lambda: nk.pool2d(x, k, 1, p, e, mode=mode)}
            if mode == "max":
                fwd["numba+argmax"] = lambda: nk.pool2d_argmax(x, k, 1, p, e)
                _, arg = nk.pool2d_argmax(x, k, 1, p, e)
                bwd = {"numba": lambda: nk.pool2d_backward(gy, x, k, 1, p, e, argmax=arg)}
            else:
                bwd = {"numba": lambda: nk.pool2d_backward(gy, x, k, 1, p, e, mode=mode)}
            if torch is not None and mode == "max":
                tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)
                _, idx_t = torch.ops.aten.max_pool2d_with_indices(tx, [k, k], [1, 1], [p, p], [e, e])
                fwd["torch"] = lambda: torch.nn.functional.max_pool2d(tx, k, 1, p, dilation=e)
                bwd["torch"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                    tgy, tx, [k, k], [1, 1], [p, p], [e, e], False, idx_t)
            if with_reference:
                fwd["reference"] = lambda: ref.pool2d(x, k, 1, p, e, mode=mode)
                bwd["reference"] = lambda: ref.pool2d_backward(gy, x, k, 1, p, e, mode=mode)
            t_fwd = timed_rounds(fwd, repeat)
            t_bwd = timed_rounds(bwd, repeat)
            label = f"ePool {mode.upper()} k{k} p{p}"
            for op, t in ((label + " fwd", t_fwd), (label + " bwd", t_bwd)):
                ratios = {kk: _ratio(t["numba"], t.get(kk)) for kk in ("torch", "reference")}
                if "numba+argmax" in t:      # the training forward against PyTorch's
                    ratios["torch (numba+argmax)"] = _ratio(t["numba+argmax"], t.get("torch"))
                report.add(op=op, size=size, times=t, gflops=None, sgemm_gflops=None, ratios=ratios)


# ---- GPU ----------------------------------------------------------------------------------------

def bench_gpu(report, quick, repeat, torch):
    import numba_kernels.cuda as nc
    from numba import cuda

    name = cuda.get_current_device().name
    report.say(f"GPU: {name.decode() if isinstance(name, bytes) else name}")
    use_torch = torch is not None and torch.cuda.is_available()
    if use_torch:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True

    def sync():
        cuda.synchronize()
        if use_torch:
            torch.cuda.synchronize()

    rng = np.random.default_rng(0)
    for cfg in configs(quick):
        c, hw, e = cfg["c"], cfg["hw"], cfg["est"]
        size = f"{c}x{hw}x{hw} est {e}"
        report.say(f"[gpu] {size} ...")
        x = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
        w = (rng.standard_normal((c, c, 3, 3), dtype=np.float32) / np.sqrt(9 * c)).astype(np.float32)
        b = rng.standard_normal(c, dtype=np.float32)
        dy = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
        dx_, dw_, db_, ddy_ = (cuda.to_device(a) for a in (x, w, b, dy))
        flops = 2.0 * c * c * 9 * hw * hw
        fwd = {"numba.cuda": lambda: nc.conv2d(dx_, dw_, db_, pad=e, est=e)}
        bwd = {"numba.cuda": lambda: nc.conv2d_backward(ddy_, dx_, dw_, pad=e, est=e)}
        pool_f = {"numba.cuda": lambda: nc.pool2d(dx_, 2, 1, 0, e)}
        if use_torch:
            tx, tw, tb, tdy = (torch.from_numpy(a).cuda() for a in (x, w, b, dy))
            fwd["cudnn"] = lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=e, dilation=e)
            bwd["cudnn"] = lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, [c], [1, 1], [e, e], [e, e], False, [0, 0], 1, [True, True, True])
            pool_f["cudnn"] = lambda: torch.nn.functional.max_pool2d(tx, 2, 1, 0, dilation=e)
        for op, fns, fl in (("eConv forward (GPU)", fwd, flops), ("eConv backward (GPU)", bwd,
                                                                  2 * flops),
                            ("ePool MAX k2 fwd (GPU)", pool_f, None)):
            t = timed_rounds(fns, repeat, sync)
            report.add(op=op, size=size, times=t,
                       gflops=None if fl is None else fl / t["numba.cuda"].median / 1e9,
                       sgemm_gflops=None,
                       ratios={"cudnn": _ratio(t["numba.cuda"], t.get("cudnn"))})


# ---- dense VGG-16 versus baseline and fragments ----------------------------------------------------

def dense_config(quick: bool) -> dict:
    if quick:
        return dict(widths=(8, 16, 32, 64, 64), fc=(512, 512, 100), input_shape=(1, 3, 112, 112),
                    start="pool4")
    return dict(widths=(64, 128, 256, 512, 512), fc=(4096, 4096, 1000), input_shape=(1, 3, 224, 224),
                start="pool4")


def multiply_adds(net, input_shapes=None) -> int:
    """Multiply-adds of one forward pass: Convolution ``N*H_out*W_out*w.size``, Deconvolution and
    EDeconvolution ``N*H_in*W_in*w.size``, InnerProduct ``M*w.size`` (``M`` = the product of the axes
    before ``axis``); other layers count 0.  Shapes: the declared inputs, or ``input_shapes``."""
    return int(sum(layer_multiply_adds(net, input_shapes).values()))


def layer_multiply_adds(net, input_shapes=None) -> dict:
    """``{layer name: multiply-adds}`` for the layers :func:`multiply_adds` counts."""
    shapes = net.infer_shapes(input_shapes or {})     # in-place layers (ReLU, Dropout) keep shapes
    out = {}
    for layer in net.layers:
        if layer.type not in ("Convolution", "Deconvolution", "EDeconvolution", "InnerProduct"):
            continue
        w = int(np.prod(layer.blobs[0].shape))
        x = shapes[layer.bottom_names[0]]
        if layer.type == "Convolution":
            y = shapes[layer.top_names[0]]
            out[layer.name] = int(y[0] * y[2] * y[3] * w)
        elif layer.type in ("Deconvolution", "EDeconvolution"):
            out[layer.name] = int(x[0] * x[2] * x[3] * w)
        else:
            out[layer.name] = int(np.prod(x[:layer.axis % len(x)])) * w
    return out


def _cheap_fillers(specs):
    """The specs with constant fillers: building a full VGG-16 then takes a second, not seven (the
    parameters are drawn once, below, and shared by every net of the benchmark)."""
    import copy
    specs = copy.deepcopy(specs)
    for spec in specs:
        for key in ("convolution_param", "inner_product_param"):
            if key in spec:
                spec[key]["weight_filler"] = {"type": "constant"}
                spec[key]["bias_filler"] = {"type": "constant"}
    return specs


def _share_params(src, dst):
    """``dst``'s layers use ``src``'s parameter arrays (and diff buffers), matched by layer name."""
    for layer in dst.layers:
        if layer.blobs and layer.name in src.params:
            owner = src.layer(layer.name)
            layer.blobs[:] = owner.blobs
            layer.diffs[:] = owner.diffs


def stitch_tree(dense, fragments):
    """Giusti et al.'s multi-level shift-and-stitch as a tree of nets: one net per fragment *of each
    level* (the layers from one densified layer to the next), each reading its parent's output.

    ``fragments``: ``[(shifts, fragment_net)]`` for every combination of shifts.  Returns
    ``{shift prefix: (net, input blob)}`` in an order where parents come first; the leaves (full
    prefixes) hold the fragments' outputs.  Every value is computed once, as in the dense net.
    """
    from reference import Net
    levels = [name for name, s, _ in dense.dense_info["densified"] if s != (1, 1)]
    options = dense.dense_info["build_options"]
    nodes = {}
    for shifts, frag in fragments:
        specs = frag.specs
        cut = [next(i for i, spec in enumerate(specs) if spec["name"] in (lv, lv + "__shift"))
               for lv in levels] + [len(specs)]
        for k, level in enumerate(levels):
            key = tuple(shifts[lv] for lv in levels[:k + 1])
            if key in nodes:
                continue
            bottom = dense.layer(level).bottom_names[0]
            head = {"name": bottom + "__in", "type": "Input", "top": [bottom],
                    "input_param": {"shape": [{"dim": list(frag.blob_shapes[bottom])}]}}
            net = Net([head] + specs[cut[k]:cut[k + 1]], **options)
            _share_params(dense, net)
            nodes[key] = (net, bottom)
    return nodes


def _median(values):
    return float(np.median(values))


def bench_dense(report, quick, repeat, backend="numba", config=None) -> dict:
    """Dense VGG-16 versus baseline and versus fragments (see the module docstring); returns the
    numbers and adds them to ``report``."""
    from reference import Net, densify
    from reference.fragments import all_shifts, fragment_net
    from reference.models import vgg16

    cfg = dict(config or dense_config(quick))
    start = cfg["start"]
    rng = np.random.default_rng(0)
    report.say(f"dense VGG-16 ({start}): widths {cfg['widths']}, fc {cfg['fc']}, input "
               f"{'x'.join(map(str, cfg['input_shape']))}, float32, backend {backend}; building the nets ...")
    base = Net(_cheap_fillers(vgg16(cfg["widths"], cfg["fc"], cfg["input_shape"])), backend=backend,
               dtype=np.float32, name="vgg16")
    for blobs in base.params.values():      # He-scaled weights, small biases: realistic activations
        w = blobs[0]
        std = np.float32(np.sqrt(2.0 * w.shape[0] / w.size))
        w[...] = rng.standard_normal(w.shape, dtype=np.float32) * std
        blobs[1][...] = rng.standard_normal(blobs[1].shape, dtype=np.float32) * np.float32(0.01)
    dense = densify(base, start)
    trunk = Net(base.specs[:base.layer_names.index(start)], **dense.dense_info["build_options"])
    _share_params(base, trunk)
    frags = []
    for shifts in all_shifts(dense):
        frag, offset = fragment_net(dense, shifts)
        _share_params(dense, frag)
        frags.append((shifts, frag, offset))
    tree = stitch_tree(dense, [(s, f) for s, f, _ in frags])
    n = len(frags)
    macs = {"baseline": multiply_adds(base), "dense": multiply_adds(dense),
            "fragments": sum(multiply_adds(f) for _, f, _ in frags),
            "stitch": multiply_adds(trunk) + sum(multiply_adds(net) for net, _ in tree.values())}

    x = rng.standard_normal(cfg["input_shape"], dtype=np.float32)
    top = dense.layers[-1].top_names[0]

    def run_stitch():
        out = {(): trunk.forward(data=x)}
        for key, (net, bottom) in tree.items():
            out[key] = net.forward(**{bottom: out[key[:-1]][bottom]})
        return out

    turn = itertools.cycle(range(n))   # the fragment nets cost the same: one per round, in turn
    fns = {"baseline": lambda: base.forward(data=x), "dense": lambda: dense.forward(data=x),
           "fragment": lambda: frags[next(turn)][1].forward(data=x), "stitch": run_stitch}
    labels = {"baseline": "baseline VGG-16", "dense": f"dense ({start} stride 1)",
              "fragments": f"{n} fragment nets (a whole VGG-16 each)",
              "stitch": f"shift-and-stitch tree ({len(tree) + 1} nets)"}
    report.say(f"warm-up round (JIT, first touches, every fragment), then {repeat} timed rounds ...")
    first = {name: fns[name]() for name in ("baseline", "dense", "stitch")}      # untimed
    first["fragments"] = [f.forward(data=x) for _, f, _ in frags]
    d = first["dense"][top]
    step = dense.grid(top)[1]
    scale = max(1.0, float(np.abs(d).max()))
    error = {"fragments": 0.0, "stitch": 0.0}
    levels = [name for name, s, _ in dense.dense_info["densified"] if s != (1, 1)]
    for (shifts, _, offset), whole in zip(frags, first["fragments"]):
        leaf = first["stitch"][tuple(shifts[lv] for lv in levels)]
        for kind, out in (("fragments", whole), ("stitch", leaf)):
            if top in out:
                f = out[top]
                got = d[..., offset[top][0]::step[0], offset[top][1]::step[1]][..., :f.shape[2], :f.shape[3]]
                error[kind] = max(error[kind], float(np.abs(got - f).max()) / scale)
    del first
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            time.sleep(SETTLE)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    times["fragments"] = [n * t for t in times.pop("fragment")]
    med = {k: _median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    ratios = {}
    for stat, t in (("", med), ("_min", low)):
        ratios["dense_over_baseline_time" + stat] = t["dense"] / t["baseline"]
        ratios["fragments_over_dense_time" + stat] = t["fragments"] / t["dense"]
        ratios["stitch_over_dense_time" + stat] = t["stitch"] / t["dense"]
    ratios.update(dense_over_baseline_macs=macs["dense"] / macs["baseline"],
                  fragments_over_dense_macs=macs["fragments"] / macs["dense"],
                  stitch_over_dense_macs=macs["stitch"] / macs["dense"])
    report.say(f"  {'':<40} {'median ms':>10} {'min ms':>9} {'GMAC':>8}")
    for name in ("baseline", "dense", "fragments", "stitch"):
        report.say(f"  {labels[name]:<40} {med[name] * 1e3:10.1f} {low[name] * 1e3:9.1f} "
                   f"{macs[name] / 1e9:8.2f}")
    report.say(f"  ({n} x the time of one fragment net, taken in turn)")
    for what, key in (("dense / baseline", "dense_over_baseline"),
                      ("fragment nets / dense", "fragments_over_dense"),
                      ("shift-and-stitch tree / dense", "stitch_over_dense")):
        report.say(f"  {what}: time x{ratios[key + '_time']:.2f} (medians), "
                   f"x{ratios[key + '_time_min']:.2f} (minimums); multiply-adds x{ratios[key + '_macs']:.2f}")
    report.say(f"  {top}: {'x'.join(map(str, d.shape[2:]))} positions per image instead of 1; every "
               f"fragment's {top} == dense {top}: max error {max(error.values()):.1e} "
               f"(relative to max |{top}|)")
    result = {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
              "backend": backend, "repeat": repeat, "fragments": n, "tree_nets": len(tree) + 1,
              "times_median": med, "times_min": low, "times": times, "macs": macs, "ratios": ratios,
              "max_error": error}
    report.rows.append({"op": "dense VGG-16", **result})
    return result


# ---- command ---------------------------------------------------------------------------------------

def run(quick=False, repeat=5, json_path=None, with_reference=True, out=None,
        numba_first=False, dense=False) -> dict:
    """Run the benchmark (the kernels, or with ``dense`` the dense VGG-16 section); returns (and
    optionally saves) ``{"machine": ..., "results": [...]}``."""
    torch = None if dense else _torch(numba_first)
    import numba_kernels.cpu  # noqa: F401  (after PyTorch: chooses Numba's threading layer)
    report = Report(out)
    info = machine_info()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY")
    import numba
    info["numba_threading_layer"] = numba.config.THREADING_LAYER
    report.say("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if dense:
        bench_dense(report, quick, repeat)
        return _save({"machine": info, "quick": quick, "repeat": repeat, "results": report.rows},
                     json_path, report)
    if torch is None:
        report.say("PyTorch is not installed: no PyTorch columns (pip install torch)")
    report.say(f"times: median [min-max] of {repeat} interleaved rounds, ms; 'xR vs I' = numba is R "
               "times as fast as I (ratio of medians)")
    bench_cpu(report, quick, repeat, with_reference, torch)

    from numba import config, cuda
    if cuda.is_available() and not config.ENABLE_CUDASIM:
        bench_gpu(report, quick, repeat, torch)
    else:
        report.say("no GPU (or the CUDA simulator is on): numba.cuda not measured")
    return _save({"machine": info, "quick": quick, "repeat": repeat, "results": report.rows},
                 json_path, report)


def _save(result, json_path, report):
    if json_path:
        from caffe_import.atomic import atomic_output

        with atomic_output(json_path) as tmp, open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        report.say(f"wrote {json_path}")
    return result


def _command(args) -> int:
    if getattr(args, "fcn", False):
        from numba_kernels.bench_fcn import command
        return command(args)
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise ValueError(f"--json {args.json}: its folder does not exist")   # before minutes of work
    run(quick=args.quick, repeat=args.repeat, json_path=args.json,
        with_reference=not args.no_reference, numba_first=args.numba_first, dense=args.dense)
    return 0


def add_parser(subparsers):
    """Register ``econv bench`` on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "bench", help="eConv/ePool speed: numba CPU vs reference vs PyTorch, GFLOP/s vs sgemm, GPU; "
                      "--dense: dense VGG-16 vs baseline vs fragments",
        description=__doc__.split("\n\n", 1)[1], formatter_class=_raw_formatter())
    p.add_argument("--quick", action="store_true",
                   help="64 channels at 14x14 and 28x28 (--dense: VGG-16 widths / 8 at 112x112)")
    p.add_argument("--dense", action="store_true",
                   help="dense VGG-16 (pool4) versus baseline and versus fragments, instead of the kernels")
    p.add_argument("--fcn", action="store_true",
                   help="FCN-8s as published (voc-fcn8s, 500x500, float32): baseline vs dense at pool3, "
                        "time, peak memory, multiply-adds (numba_kernels/bench_fcn.py; --quick: widths / 8 "
                        "at 250x250; 3 rounds suffice: --repeat 3)")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds per op (default 5)")
    p.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the (slow) NumPy reference timings")
    p.add_argument("--numba-first", action="store_true",
                   help="load the Numba kernels before PyTorch: both share one passive OpenMP "
                        "runtime (default: PyTorch first, at its own OpenMP defaults)")
    p.set_defaults(func=_command)
    return p


def _raw_formatter():
    import argparse
    return argparse.RawDescriptionHelpFormatter
