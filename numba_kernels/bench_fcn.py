"""``econv bench --fcn``: FCN-8s as published, baseline versus dense (densified at pool3), full width.

The net: voc-fcn8s's ``deploy.prototxt`` as shelhamer/fcn.berkeleyvision.org publishes it (the copy
in ``tests/data/fcn/voc-fcn8s``; ``pad: 100`` on conv1_1, fc6 a 7x7 Convolution, three fixed
bilinear Deconvolutions and their Crops), its input set to 1x3x500x500, float32, on
``Net(backend="numba")`` with 2 threads (Numba's and, where ``threadpoolctl`` is installed, BLAS's).
Random weights as FCN's net surgery leaves them: He-scaled normals (std ``sqrt(2 / fan_in)``) for
every Convolution, biases ``0.01 * N(0, 1)``, and the bilinear kernel on the diagonal of every
Deconvolution (:func:`reference.upsampling.diagonal_bilinear`), so that :func:`reference.densify`
recognises the upsampling as fixed bilinear and rebuilds upscore8 for the dense grid.  The input is
``50 * N(0, 1)`` (the spread of a mean-subtracted image).

What it reports:

- multiply-adds of one forward pass, counted from the layer shapes
  (:func:`numba_kernels.bench.multiply_adds`: Convolutions, Deconvolutions, EDeconvolutions), and
  their ratio;
- forward time: one untimed forward of each net, then ``--repeat`` rounds (3 suffice; the CLI's
  default is 5) that time baseline and dense in alternation; median and min-max range of the
  rounds, and the ratio of the medians next to the ratio of multiply-adds.  Target (issue 11):
  dense / baseline time within 1.1x the multiply-add ratio;
- per layer: each layer's forward timed inside the same rounds (median), next to its multiply-adds
  and their rate, so a layer that misses the ratio can be found;
- peak memory, each net in a fresh child process (``python -m numba_kernels.bench_fcn``): the peak
  resident set size, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (everything the process touched:
  NumPy arrays, Numba's allocations, BLAS buffers, the interpreter), reset between phases through
  ``/proc/self/clear_refs`` (Linux).  The child first compiles / loads every kernel on a tiny copy of
  the net, then reports: RSS ready (imports and kernels), the build's peak and the RSS after it (for
  the dense net: building the baseline, densifying it, dropping the baseline), and the forward's
  peak, whose increment over the RSS after building is what the forward itself allocates.  Target:
  the dense forward's peak under 8 GiB;
- that the dense net holds the baseline: every blob after pool3 that is on an equivalent grid (up to
  fuse_pool3; upscore8 is rebuilt for the dense grid) equals the baseline's on the original grid
  (``dense[..., off + step*i]``), largest difference relative to the largest value.

``--quick``: every VGG convolution and fc6/fc7 at 1/8 of its width (score layers keep 21 classes)
at 250x250: seconds, not minutes.  Results of the full run: BENCHMARKS.md, "Dense FCN-8s as
published".
"""

from __future__ import annotations

import copy
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["fcn_config", "fcn_specs", "fill_weights", "build_nets", "equivalent_blobs",
           "bench_fcn", "measure_memory", "run_fcn", "command"]

DEPLOY = Path(__file__).resolve().parents[1] / "tests" / "data" / "fcn" / "voc-fcn8s" / "deploy.prototxt"
NARROWED = ("conv", "fc6", "fc7")      # the VGG layers; score_* keep their classes
GIB = 2.0 ** 30
TIME_TARGET = 1.1                      # dense / baseline time within 1.1x the multiply-add ratio
MEMORY_TARGET_GIB = 8.0


def fcn_config(quick: bool) -> dict:
    if quick:
        return dict(narrow=8, size=250, start="pool3", threads=2, seed=0)
    return dict(narrow=1, size=500, start="pool3", threads=2, seed=0)


# ---- the net -------------------------------------------------------------------------------------

def fcn_specs(narrow: int = 1, size: int = 500, prototxt=DEPLOY) -> list[dict]:
    """The published deploy file's layers, input ``1x3xSIZExSIZE``, VGG widths divided by ``narrow``."""
    from caffe_import import read_prototxt

    if not Path(prototxt).is_file():
        raise ValueError(f"bench --fcn: the published voc-fcn8s deploy.prototxt is not at {prototxt} "
                         f"(it ships in the econv repository's tests/data/fcn/voc-fcn8s)")
    specs = copy.deepcopy(read_prototxt(prototxt)["layer"])
    for spec in specs:
        if spec["type"] == "Input":
            spec["input_param"] = {"shape": [{"dim": [1, 3, int(size), int(size)]}]}
        elif spec["type"] == "Convolution" and spec["name"].startswith(NARROWED):
            cp = spec["convolution_param"]
            cp["num_output"] = max(1, int(cp["num_output"]) // int(narrow))
    return specs


def fill_weights(net, seed: int = 0) -> None:
    """Surgery-style random weights in place: He normals, small biases, bilinear Deconvolutions."""
    from reference.upsampling import diagonal_bilinear

    rng = np.random.default_rng(seed)
    dtype = net.params[next(iter(net.params))][0].dtype
    for layer in net.layers:
        if not layer.blobs:
            continue
        w = layer.blobs[0]
        if layer.type == "Deconvolution":
            w[...] = diagonal_bilinear(w.shape, layer.group, dtype)
            for b in layer.blobs[1:]:
                b[...] = 0
            continue
        std = np.sqrt(2.0 / int(np.prod(w.shape[1:])))
        w[...] = rng.standard_normal(w.shape, dtype=np.float32) * np.float32(std)
        for b in layer.blobs[1:]:
            b[...] = rng.standard_normal(b.shape, dtype=np.float32) * np.float32(0.01)


def build_nets(cfg: dict, which=("baseline", "dense"), specs=None) -> dict:
    """``{"baseline": Net, "dense": Net}`` (those in ``which``) for ``cfg``; ``specs`` replaces the
    published layout (tests).  With only ``"dense"`` the baseline is dropped once densified."""
    from reference import Net, densify

    layers = specs if specs is not None else fcn_specs(cfg["narrow"], cfg["size"])
    base = Net(layers, backend="numba", dtype=np.float32, name="voc-fcn8s")
    fill_weights(base, cfg.get("seed", 0))
    nets = {}
    if "dense" in which:
        nets["dense"] = densify(base, cfg["start"])
    if "baseline" in which:
        nets["baseline"] = base
    return nets


def equivalent_blobs(dense, start: str) -> list[str]:
    """The 4-D blobs after ``start`` that the dense net holds on an equivalent grid (FCN-8s at pool3:
    pool3 .. fuse_pool3; what follows the rebuilt upscore8 has no such grid)."""
    names = dense.layer_names
    first = names.index(start)
    out = []
    for layer in dense.layers[first:]:
        for top in layer.top_names:
            if top in out or dense.grids.get(top, ()) is None or len(dense.blob_shapes[top]) != 4:
                continue
            out.append(top)
    return out


def compare_on_grid(dense, base_out: dict, dense_out: dict, blobs) -> dict:
    """``{blob: max |dense on the original grid - baseline| / max(1, max |baseline|)}``; a blob the
    dense net holds in another shape counts as ``inf``."""
    from reference.tolerance import max_rel_err

    errors = {}
    for b in blobs:
        (oh, ow), (sh, sw) = dense.grid(b)
        ref = base_out[b]
        got = dense_out[b][..., oh::sh, ow::sw][..., :ref.shape[2], :ref.shape[3]]
        if got.shape != ref.shape:
            errors[b] = float("inf")
            continue
        errors[b] = max_rel_err(got, ref)
    return errors


def _set_threads(threads: int) -> dict:
    """Numba's threads (and BLAS's, through threadpoolctl where installed) to ``threads``."""
    import numba

    import numba_kernels.cpu  # noqa: F401  (chooses Numba's threading layer before any kernel runs)

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    info = {"numba_threads": numba.get_num_threads(), "blas_threads": None}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return info
    threadpool_limits(limits=threads, user_api="blas")
    from threadpoolctl import threadpool_info
    info["blas_threads"] = [p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"]
    return info


def _time_layers(net, sink: dict) -> None:
    """Make every layer of ``net`` add the seconds of its forward to ``sink[layer name]`` (an
    instance attribute wrapping the layer's own ``forward``; the net runs as before)."""
    for layer in net.layers:
        def timed(bottoms, _forward=layer.forward, _name=layer.name):
            t0 = time.perf_counter()
            tops = _forward(bottoms)
            sink[_name] = sink.get(_name, 0.0) + time.perf_counter() - t0
            return tops
        layer.forward = timed


def _layer_table(report, nets, layer_times, layer_macs):
    """Per-layer medians: the layers that multiply-add, then everything else in one row."""
    order = list(dict.fromkeys(n for net in nets.values() for n in net.layer_names
                               if n in layer_macs["baseline"] or n in layer_macs["dense"]))
    med = {k: {n: float(np.median(v)) for n, v in t.items()} for k, t in layer_times.items()}
    report.say(f"  per layer (medians):  {'layer':<16} {'baseline s':>10} {'dense s':>9} "
               f"{'time x':>7} {'MAC x':>7} {'dense GMAC/s':>12}")

    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    for n in order:
        tb, td = med["baseline"].get(n), med["dense"].get(n)
        mb, md = layer_macs["baseline"].get(n), layer_macs["dense"].get(n)
        report.say(f"  {'':<21} {n:<16} {cell(tb, '10.3f'):>10} {cell(td, '9.3f'):>9} "
                   f"{cell(td / tb if tb and td else None, '7.2f'):>7} "
                   f"{cell(md / mb if mb and md else None, '7.2f'):>7} "
                   f"{cell(md / 1e9 / td if md and td else None, '12.1f'):>12}")
    rest = {k: sum(t for n, t in m.items() if n not in order) for k, m in med.items()}
    report.say(f"  {'':<21} {'other layers':<16} {rest['baseline']:10.3f} {rest['dense']:9.3f} "
               f"{rest['dense'] / rest['baseline']:7.2f}")


# ---- memory, in a fresh child process --------------------------------------------------------------

def _maxrss() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024      # KiB on Linux


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_child(which: str, cfg: dict) -> dict:
    threads = _set_threads(cfg["threads"])
    warm = build_nets(dict(cfg, narrow=64, size=36))       # every kernel compiled/loaded, tiny
    x = np.zeros((1, 3, 36, 36), np.float32)
    for net in warm.values():
        net.forward(data=x)
    del warm, net
    gc.collect()
    reset = _reset_peak()
    ready = _rss()
    nets = build_nets(cfg, which=(which,))
    gc.collect()
    build_peak, built = _maxrss(), _rss()
    reset = _reset_peak() and reset
    net = nets[which]
    x = np.random.default_rng(1).standard_normal(net.blob_shapes["data"], dtype=np.float32) * 50
    t0 = time.perf_counter()
    net.forward(data=x)
    seconds = time.perf_counter() - t0
    return {"net": which, "ready": ready, "build_peak": build_peak, "built": built,
            "forward_peak": _maxrss(), "forward_increment": _maxrss() - built,
            "peak_reset_between_phases": reset, "forward_seconds": seconds, **threads}


def measure_memory(which: str, cfg: dict) -> dict:
    """Peak memory of building and running ``which`` ("baseline" or "dense") in a fresh process."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "-m", "numba_kernels.bench_fcn", which, json.dumps(cfg)],
                          capture_output=True, text=True, env=env, cwd=root)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        how = (f"killed by signal {-proc.returncode} (out of memory?)" if proc.returncode < 0
               else f"exit {proc.returncode}")
        raise ChildProcessError(f"bench --fcn: the {which} net's memory process failed ({how}): {tail}")
    return json.loads(lines[-1])


# ---- the benchmark ---------------------------------------------------------------------------------

def _gib(n):
    return f"{n / GIB:6.2f}"


def bench_fcn(report, quick: bool, repeat: int = 3, config=None, specs=None, memory=True) -> dict:
    """Baseline versus dense FCN-8s (see the module docstring); adds the numbers to ``report`` and
    returns them.  ``config`` / ``specs`` replace :func:`fcn_config` / the published layout (tests);
    ``memory=False`` skips the child processes."""
    from tqdm import tqdm

    from numba_kernels.bench import SETTLE, layer_multiply_adds

    cfg = dict(config or fcn_config(quick))
    threads = _set_threads(cfg["threads"])
    layout = "custom layout" if specs is not None else "voc-fcn8s deploy.prototxt as published"
    size = ("" if specs is not None else
            f": VGG widths / {cfg['narrow']}, input 1x3x{cfg['size']}x{cfg['size']}")
    report.say(f"FCN-8s, {layout}{size}, float32, backend numba, {threads['numba_threads']} Numba "
               f"threads, BLAS threads {threads['blas_threads']}; dense from {cfg['start']}")

    # one step per forward: the memory processes', the untimed pair, the timed rounds
    bar = tqdm(total=(2 if memory else 0) + 2 + 2 * repeat, desc="bench --fcn", unit="forward",
               disable=None, file=sys.stderr)
    mem = {}
    if memory:
        for which in ("baseline", "dense"):
            report.say(f"peak memory of the {which} net, in a fresh process ...")
            mem[which] = measure_memory(which, cfg)
            bar.update()

    report.say("building the nets ...")
    t0 = time.perf_counter()
    nets = build_nets(cfg, specs=specs)
    base, dense = nets["baseline"], nets["dense"]
    build_seconds = time.perf_counter() - t0
    layer_macs = {name: layer_multiply_adds(net) for name, net in nets.items()}
    macs = {name: sum(m.values()) for name, m in layer_macs.items()}
    x = np.random.default_rng(1).standard_normal(base.blob_shapes["data"], dtype=np.float32) * 50
    fns = {"baseline": lambda: base.forward(data=x), "dense": lambda: dense.forward(data=x)}

    report.say(f"one untimed forward of each, then {repeat} timed rounds in alternation ...")
    first = {}
    for name, fn in fns.items():
        first[name] = fn()
        bar.update()
    blobs = equivalent_blobs(dense, cfg["start"])
    errors = compare_on_grid(dense, first["baseline"], first["dense"], blobs)
    top = base.layers[-1].top_names[0]
    final = {"blob": top, "baseline": list(first["baseline"][top].shape),
             "dense": list(first["dense"][top].shape)}
    del first
    times = {name: [] for name in fns}
    sinks = {name: {} for name in fns}
    for name, sink in sinks.items():
        _time_layers(nets[name], sink)
    layer_times = {name: {} for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            time.sleep(SETTLE)
            sinks[name].clear()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            for layer, seconds in sinks[name].items():
                layer_times[name].setdefault(layer, []).append(seconds)
            bar.update()
    bar.close()

    med = {k: float(np.median(v)) for k, v in times.items()}
    ratios = {"time_median": med["dense"] / med["baseline"],
              "time_min": min(times["dense"]) / min(times["baseline"]),
              "macs": macs["dense"] / macs["baseline"]}
    ratios["time_over_macs"] = ratios["time_median"] / ratios["macs"]
    report.say(f"  {'':<30} {'median s':>9} {'min-max s':>17} {'GMAC':>8} {'GMAC/s':>7}"
               + ("  build peak GiB  forward peak GiB (+forward)" if memory else ""))
    for name, label in (("baseline", "baseline FCN-8s"), ("dense", f"dense ({cfg['start']} stride 1)")):
        line = (f"  {label:<30} {med[name]:9.2f} {min(times[name]):8.2f}-{max(times[name]):<8.2f} "
                f"{macs[name] / 1e9:8.1f} {macs[name] / 1e9 / med[name]:7.1f}")
        if memory:
            m = mem[name]
            line += (f"  {_gib(m['build_peak']):>14}  {_gib(m['forward_peak']):>9} "
                     f"(+{m['forward_increment'] / GIB:.2f})")
        report.say(line)
    _layer_table(report, nets, layer_times, layer_macs)
    report.say(f"  dense / baseline: time x{ratios['time_median']:.2f} (medians; x{ratios['time_min']:.2f} "
               f"minimums), multiply-adds x{ratios['macs']:.2f}: time / multiply-add ratio "
               f"{ratios['time_over_macs']:.2f} (target <= {TIME_TARGET})")
    if memory:
        m = mem["dense"]
        report.say(f"  memory: peak RSS (getrusage maxrss, reset between phases: "
                   f"{m['peak_reset_between_phases']}); ready (imports, kernels) "
                   f"{_gib(m['ready']).strip()} GiB; dense forward peak "
                   f"{_gib(m['forward_peak']).strip()} GiB (target < {MEMORY_TARGET_GIB:g} GiB)")
    worst = max(errors.values()) if errors else float("nan")
    report.say(f"  dense == baseline on the original grid for {len(blobs)} blobs ({blobs[0]} .. "
               f"{blobs[-1]}): max error {worst:.1e} (relative to the blob's max |value|); "
               f"{top}: baseline {'x'.join(map(str, final['baseline']))}, "
               f"dense {'x'.join(map(str, final['dense']))}")
    result = {"config": cfg, "layout": layout, "repeat": repeat, "threads": threads,
              "build_seconds": build_seconds, "times": times, "times_median": med,
              "times_range": {k: [min(v), max(v)] for k, v in times.items()}, "macs": macs,
              "layer_times": layer_times, "layer_macs": layer_macs,
              "ratios": ratios, "memory": mem, "memory_method": "getrusage ru_maxrss in a fresh child "
              "process, peak reset through /proc/self/clear_refs between phases",
              "equivalent_blobs": blobs, "max_error": errors, "final": final,
              "targets": {"time_over_macs": TIME_TARGET, "dense_forward_peak_gib": MEMORY_TARGET_GIB}}
    report.rows.append({"op": "FCN-8s dense vs baseline", **result})
    return result


def run_fcn(quick=False, repeat=3, json_path=None, out=None) -> dict:
    """Run the FCN section; returns (and with ``json_path`` saves) ``{"machine": ..., "results": [...]}``."""
    from numba_kernels.bench import Report, machine_info

    report = Report(out)
    result = bench_fcn(report, quick, repeat)       # sets the threads before machine_info reads them
    info = machine_info()
    report.say("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    saved = {"machine": info, "quick": quick, "repeat": repeat, "results": [result]}
    if json_path:
        from caffe_import.atomic import atomic_output
        with atomic_output(os.fspath(json_path)) as tmp:
            with open(tmp, "w") as f:
                json.dump(saved, f, indent=1)
        report.say(f"wrote {json_path}")
    return saved


def command(args) -> int:
    """``econv bench --fcn [--quick] [--repeat N] [--json FILE]``."""
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    if getattr(args, "dense", False):
        raise ValueError("--fcn and --dense are two different benchmarks: choose one")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise ValueError(f"--json {args.json}: its folder does not exist")   # before minutes of work
    run_fcn(quick=args.quick, repeat=args.repeat, json_path=args.json)
    return 0


def _main(argv) -> int:
    """The memory child: ``python -m numba_kernels.bench_fcn baseline|dense CONFIG_JSON``."""
    which, cfg = argv[0], json.loads(argv[1])
    print(json.dumps(_memory_child(which, cfg)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
