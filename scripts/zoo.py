"""The zoo table: build and run published Caffe prototxts on the reference engine; writes docs/ZOO.md.

The prototxts are not part of econv (their licences differ); ``scripts/zoo_manifest.json`` names each
one by repository, commit, path and sha256.  Put them in a folder as ``<folder>/<owner>/<repo>/<path>``,
for instance with::

    python scripts/zoo.py --urls | while read url dst; do mkdir -p "$(dirname "$dst")"; \\
        curl -sfL "$url" -o "$dst"; done

(``--urls`` prints ``https://raw.githubusercontent.com/<repo>/<commit>/<path> <folder>/<repo>/<path>``
per line), then run (from the repository root)::

    PYTHONPATH=$PWD python scripts/zoo.py [--models .zoo_cache] [--quick] [--only resnet]

What is measured, per file and per phase it declares (TEST; TRAIN too when a layer has a phase rule):

- parse: ``caffe_import.read_prototxt`` (with Caffe's upgrades);
- build: ``caffe_import.build_net`` at batch 1 and the native input size.  Data layers (whose files are
  not here) become Input layers of the shapes their parameters or the manifest's ``inputs`` give;
- forward and backward with random weights (the fillers; seed 0), random normal inputs (labels,
  ``rois`` and ``im_info`` zeros); backward from the loss, or from ones on every output of a net
  without loss layers.  A net above the compute budget (``--max-gflop``, ``--max-backward-gflop``)
  skips the pass, with that reason;
- forward time (one pass, the process's wall clock), peak memory (the child's ``ru_maxrss``: Python
  and NumPy included, about 45 MB), GFLOP (2 x multiply-adds of Convolution, Deconvolution and
  InnerProduct).

``--quick`` (5 GFLOP budgets; 3 minutes here, the full run 10.5) for a fast look;
``--render RESULTS.json`` rewrites the table from saved results; ``--compare OLD.json`` (repeatable)
adds the counts of earlier runs (``docs/zoo_baselines/``) as "before" lines.

Each (file, phase) runs in its own child process with a timeout (``--timeout``) and an address-space
cap (``--max-mem-gb``), one at a time; a failure records the first line of the error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "scripts", "zoo_manifest.json")
DATA_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "DummyData", "Python",
              "AnnotatedData", "DenseImageData")


# ---- the child: one (file, phase) ------------------------------------------------------------------
def _first_line(exc: BaseException, path: str = "") -> str:
    """The error's first line, without the model folder and the list of known layer types."""
    import re
    text = (str(exc).strip().splitlines() or [""])[0]
    if path:
        text = text.replace(path, os.path.basename(path))
    text = re.sub(r" \(known: [^)]*\)", "", text)
    return f"{type(exc).__name__}: {text}"[:300]


def _data_shapes(spec: dict, overrides: dict) -> list | None:
    """Shapes for a data layer's tops at batch 1, or None when unknown."""
    tops = list(spec.get("top", []))
    if all(t in overrides for t in tops):
        return [overrides[t] for t in tops]
    kind = spec["type"]
    if kind == "MemoryData":
        p = spec.get("memory_data_param", {})
        return [[1, p.get("channels", 1), p.get("height", 1), p.get("width", 1)], [1]][:len(tops)]
    if kind == "DummyData":
        p = spec.get("dummy_data_param", {})
        if p.get("shape"):
            return [[1] + list(s["dim"][1:]) for s in p["shape"]][:len(tops)]
        chw = zip(p.get("channels", []), p.get("height", []), p.get("width", []))
        return [[1, c, h, w] for c, h, w in chw]
    return None


def _prepare(layers: list, overrides: dict, note: list) -> list:
    """Batch 1 for every Input; data layers -> Input layers (see the module docstring)."""
    out = []
    for spec in layers:
        spec = dict(spec)
        if spec["type"] == "Input":
            shapes = [list(s.get("dim", [])) for s in spec.get("input_param", {}).get("shape", [])]
            tops = list(spec.get("top", []))
            shapes = [overrides.get(t, ([1] + s[1:]) if s else s) for t, s in zip(tops, shapes)]
            spec["input_param"] = {"shape": [{"dim": s} for s in shapes]}
        elif spec["type"] in DATA_TYPES and not spec.get("bottom"):
            shapes = _data_shapes(spec, overrides)
            if shapes is None:
                raise ValueError(f"layer {spec.get('name')!r} ({spec['type']}): no input shape known for "
                                 f"tops {spec.get('top')} (give the manifest entry 'inputs')")
            note.append(f"{spec['type']} -> Input")
            spec = {k: v for k, v in spec.items() if k in ("name", "top", "include", "exclude")}
            spec["type"] = "Input"
            spec["input_param"] = {"shape": [{"dim": list(s)} for s in shapes]}
        out.append(spec)
    return out


def _gflop(net) -> float:
    shapes = net._version_shapes
    total = 0
    for layer, bids, tids in zip(net.layers, net._bottom_ids, net._top_ids):
        if layer.type in ("Convolution", "Deconvolution", "InnerProduct") and layer.blobs:
            w = layer.blobs[0]
            per = w.size // (w.shape[0] if layer.type != "Deconvolution" else 1)
            for b, t in zip(bids, tids):
                if layer.type == "Convolution":
                    elems = 1
                    for d in shapes[t]:
                        elems *= d
                    total += 2 * elems * per
                elif layer.type == "Deconvolution":
                    elems = 1
                    for d in shapes[b]:
                        elems *= d
                    total += 2 * elems * w[0].size
                else:
                    m = 1
                    for d in shapes[t][:-1]:
                        m *= d
                    total += 2 * m * w.size
    return total / 1e9


def backward_outputs(net) -> list:
    """Blobs to seed the backward of a net without loss layers: the unconsumed outputs, except those of
    forward-only layers (SSD's DetectionOutput, PriorBox), whose gradient-carrying bottoms stand in."""
    consumed = {b for layer in net.layers for b in layer.bottom_names}
    out = set()
    for layer in net.layers:
        if getattr(layer, "forward_only", False):
            out |= {b for i, b in enumerate(layer.bottom_names) if i not in layer.label_bottoms}
        else:
            out |= {t for t in layer.top_names if t not in consumed}
    return sorted(out - set(net.input_names))


def child(path: str, phase: str, overrides: dict, max_gflop: float, max_bwd_gflop: float) -> dict:
    import resource
    import numpy as np

    from caffe_import import read_prototxt
    from caffe_import.loader import build_net

    rec = {"parse": "fail", "build": "-", "forward": "-", "backward": "-", "note": []}
    try:
        net_dict = read_prototxt(path)
        rec["parse"] = "ok"
        rec["build"] = "fail"
        net_dict = dict(net_dict, layer=_prepare(net_dict["layer"], overrides, rec["note"]))
        net = build_net(net_dict, phase=phase.lower(), seed=0)
        rec["build"] = "ok"
        rec["gflop"] = round(_gflop(net), 3)
        rec["params_mb"] = round(sum(b.nbytes for bs in net.params.values() for b in bs) / 2**20, 1)
        if rec["gflop"] > max_gflop:
            rec["forward"] = rec["backward"] = "skip"
            rec["reason"] = f"forward skipped: {rec['gflop']:.1f} GFLOP > budget {max_gflop:g}"
            return rec
        rng = np.random.default_rng(0)
        inputs = {}
        for name in net.input_names:
            shape = net.blob_shapes[name]
            zero = any(k in name.lower() for k in ("label", "rois", "im_info"))
            inputs[name] = (np.zeros(shape, np.float32) if zero
                            else rng.standard_normal(shape).astype(np.float32))
        rec["forward"] = "fail"
        t = time.perf_counter()
        out = net.forward(**inputs)
        rec["forward_s"] = round(time.perf_counter() - t, 3)
        rec["forward"] = "ok"
        if rec["gflop"] > max_bwd_gflop:
            rec["backward"] = "skip"
            rec["reason"] = f"backward skipped: {rec['gflop']:.1f} GFLOP > budget {max_bwd_gflop:g}"
            return rec
        rec["backward"] = "fail"
        has_loss = any(w for layer in net.layers for w in layer.loss_weights)
        seeds = None
        if not has_loss:
            seeds = {n: np.ones_like(out[n]) for n in backward_outputs(net)}
        t = time.perf_counter()
        net.backward(seeds)
        rec["backward_s"] = round(time.perf_counter() - t, 3)
        rec["backward"] = "ok"
    except Exception as exc:  # noqa: BLE001 -- the table records every failure's first line
        rec["reason"] = _first_line(exc, path)
    finally:
        rec["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return rec


# ---- the parent ---------------------------------------------------------------------------------
def phases_of(path: str) -> list:
    """TEST, plus TRAIN when any layer names a phase in an include/exclude rule (a train/val file)."""
    from caffe_import import read_prototxt
    try:
        layers = read_prototxt(path)["layer"]
    except Exception:  # noqa: BLE001 -- the child reports the parse error
        return ["TEST"]
    named = set()
    for spec in layers:
        for rule in list(spec.get("include", [])) + list(spec.get("exclude", [])):
            if rule.get("phase") is not None:
                named.add({0: "TRAIN", 1: "TEST"}.get(rule["phase"], str(rule["phase"])))
    return ["TRAIN", "TEST"] if named else ["TEST"]


def run_one(path, phase, entry, args) -> dict:
    # one file per family is marked "full" in the manifest: its forward runs up to --max-full-gflop
    full = entry.get("full") and not args.quick
    max_gflop = max(args.max_gflop, args.max_full_gflop) if full else args.max_gflop
    code = ("import importlib.util, json, resource, sys; sys.path.insert(0, %r); "
            "spec = importlib.util.spec_from_file_location('zoo', %r); "
            "z = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(z); "
            "cap = int(%r * 2**30); resource.setrlimit(resource.RLIMIT_AS, (cap, cap)); "
            "print('ZOO-RESULT ' + json.dumps(z.child(%r, %r, %r, %r, %r)))"
            % (ROOT, os.path.abspath(__file__), args.max_mem_gb, path, phase, entry.get("inputs", {}),
               max_gflop, args.max_backward_gflop))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=args.timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"parse": "?", "build": "?", "forward": "?", "backward": "?",
                "reason": f"timeout after {args.timeout:g} s", "note": []}
    for line in proc.stdout.splitlines():
        if line.startswith("ZOO-RESULT "):
            rec = json.loads(line[len("ZOO-RESULT "):])
            rec["wall_s"] = round(time.perf_counter() - t, 1)
            return rec
    err = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return {"parse": "?", "build": "?", "forward": "?", "backward": "?",
            "reason": f"child died: {err[:200]}", "note": []}


def counts(results: list) -> dict:
    c = {"files": len({r["path"] for r in results}), "runs": len(results)}
    for stage in ("parse", "build", "forward", "backward"):
        c[stage] = sum(r[stage] == "ok" for r in results)
    return c


SETTINGS = """Settings: batch 1 at the file's native input size, float32, random weights (the layers'
fillers, seed 0). Forward budget {max_gflop:g} GFLOP, {max_full_gflop:g} for the one file per large family
marked `full` in the manifest (FCN-8s, OpenPose COCO, CPM, SegNet, PSPNet-50); backward budget
{max_backward_gflop:g} GFLOP; larger nets skip the pass and say so. Per-run timeout {timeout:g} s, address
space {max_mem_gb:g} GiB. Peak memory is the child process's maxrss (Python and NumPy included, about
45 MB). The machine this ran on was shared (2 cores, load about 9): times are indicative only.

Data layers become Input layers (the datasets are not here): `Data -> Input` in the note column; the
manifest's `inputs` give their batch-1 shapes (and OpenPose's 368x368 in place of its 1x1
placeholder). Phases: TEST, and TRAIN as well for a file whose layers carry phase rules (a train/val
file). Backward: from the loss, or from ones on every output of a net without loss layers (the bottoms
of SSD's forward-only DetectionOutput stand in for its output). Expected failures (the issue's list):
shell templates (DeepLab's `${{...}}` configs), files Caffe itself rejects, nets whose computation
happens in a Python layer (Faster R-CNN's proposal and target layers, pycaffe's linreg loss).
"""


def render(results: list, manifest_models: list, before: list, args) -> str:
    c = counts(results)
    lines = ["# The zoo: published Caffe prototxts on econv's reference engine", "",
             "Generated by `scripts/zoo.py` (its docstring says how to fill the model folder from",
             "`scripts/zoo_manifest.json`); every row names the repository, commit and path of the file.", "",
             f"{c['files']} files, {c['runs']} (file, phase) runs: parse {c['parse']}, build {c['build']}, "
             f"forward {c['forward']}, backward {c['backward']} (counted over runs)"
             + (f", on {args.label}." if getattr(args, "label", "") else "."), ""]
    for label, b in before or []:
        lines += [f"Before ({label}): parse {b['parse']}, build {b['build']}, forward {b['forward']}, "
                  f"backward {b['backward']} of {b['runs']} runs.", ""]
    lines += SETTINGS.format(**vars(args)).splitlines() + [
        "", "| # | repository @ commit | path | phase | parse | build | forward | backward | GFLOP | "
        "forward s | peak MB | failure / note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        note = "; ".join(sorted(set(r.get("note", []))))
        why = r.get("reason", "")
        text = "; ".join(x for x in (why, note) if x).replace("|", "\\|")
        lines.append(f"| {i} | {r['repo']} @ {r['commit'][:7]} | {r['path']} | {r['phase']} | {r['parse']} | "
                     f"{r['build']} | {r['forward']} | {r['backward']} | {r.get('gflop', '')} | "
                     f"{r.get('forward_s', '')} | {r.get('peak_mb', '')} | {text} |")
    done = [r for r in results if r.get("forward_s") is not None]
    if done:
        slow = sorted(done, key=lambda r: -r["forward_s"])[:5]
        big = sorted(results, key=lambda r: -(r.get("peak_mb") or 0))[:5]
        lines += ["", "Slowest forwards: " + ", ".join(f"{r['path']} {r['forward_s']} s" for r in slow) + ".",
                  "Largest peak memory: " + ", ".join(f"{r['path']} {r.get('peak_mb')} MB" for r in big)
                  + "."]
    reasons = {}
    for r in results:
        if r.get("reason") and "skipped" not in r["reason"]:
            key = r["reason"].split(":", 1)[-1].strip()[:120]
            reasons.setdefault(key, []).append(r["path"])
    if reasons:
        lines += ["", "## Failures by reason", ""]
        for key, paths in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"- {len(paths)} x `{key}`")
    full = {(m["repo"], m["path"]) for m in manifest_models}
    if len(full) > c["files"]:
        lines += ["", f"{len(full) - c['files']} manifest files were not run (missing, --only or --quick)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for what each column measures.")
    ap.add_argument("--manifest", default=MANIFEST,
                    help="the list of files (default scripts/zoo_manifest.json)")
    ap.add_argument("--models", default=os.path.join(ROOT, ".zoo_cache"),
                    help="folder holding <owner>/<repo>/<path> for each manifest entry (default .zoo_cache)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "ZOO.md"),
                    help="the table (default docs/ZOO.md)")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "zoo_results.json"),
                    help="raw results (default docs/zoo_results.json)")
    ap.add_argument("--compare", action="append", default=[],
                    help="an earlier --json file whose counts are shown as 'before' (repeatable)")
    ap.add_argument("--label", default="", help="what this run is (a branch, a commit); kept in the --json")
    ap.add_argument("--only", help="run only files whose repository/path contains this text")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per (file, phase) run (default 240)")
    ap.add_argument("--max-gflop", type=float, default=100, help="skip forward above this (default 100)")
    ap.add_argument("--max-full-gflop", type=float, default=600,
                    help="forward budget of the manifest's 'full' entries, one per large family "
                         "(default 600)")
    ap.add_argument("--max-backward-gflop", type=float, default=40,
                    help="skip backward above this (default 40)")
    ap.add_argument("--max-mem-gb", type=float, default=6, help="address-space cap per run (default 6)")
    ap.add_argument("--quick", action="store_true",
                    help="budgets of 5 GFLOP (forward and backward, 'full' entries too), timeout 60 s")
    ap.add_argument("--urls", action="store_true", help="print '<raw url> <destination>' per file and stop")
    ap.add_argument("--render", metavar="JSON", help="write --out from an earlier --json file (runs nothing)")
    args = ap.parse_args(argv)
    if args.quick:
        args.max_gflop = args.max_backward_gflop = 5.0
        args.timeout = min(args.timeout, 60)
    try:
        with open(args.manifest) as fh:
            models = json.load(fh)["models"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"zoo: error: cannot read the manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    if args.urls:
        for m in models:
            print(f"https://raw.githubusercontent.com/{m['repo']}/{m['commit']}/{m['path']} "
                  f"{os.path.join(args.models, m['repo'], m['path'])}")
        return 0
    if args.only:
        models = [m for m in models if args.only.lower() in (m["repo"] + "/" + m["path"]).lower()]
    from tqdm import tqdm

    results = []
    if args.render:
        with open(args.render) as fh:
            saved = json.load(fh)
        results = saved["results"]
        for k, v in saved.get("settings", {}).items():
            setattr(args, k, v)
        args.label = args.label or saved.get("label", "")
        models = []
    for m in tqdm(models, desc="zoo", unit="file"):
        path = os.path.join(args.models, m["repo"], m["path"])
        base = {"repo": m["repo"], "commit": m["commit"], "path": m["path"]}
        if not os.path.exists(path):
            results.append(dict(base, phase="-", parse="missing", build="-", forward="-", backward="-",
                                reason=f"not in {args.models} (see --urls)", note=[]))
            continue
        with open(path, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != m["sha256"]:
                results.append(dict(base, phase="-", parse="changed", build="-", forward="-", backward="-",
                                    reason="sha256 differs from the manifest", note=[]))
                continue
        for phase in phases_of(path):
            results.append(dict(base, phase=phase, **run_one(path, phase, m, args)))
    before = []
    for path in args.compare:
        with open(path) as fh:
            saved = json.load(fh)
        before.append((saved.get("label") or os.path.basename(path), counts(saved["results"])))
    sys.path.insert(0, ROOT)
    from caffe_import.atomic import atomic_output

    with open(args.manifest) as fh:
        all_models = json.load(fh)["models"]
    with atomic_output(args.out) as tmp, open(tmp, "w") as fh:
        fh.write(render(results, all_models, before, args))
    if args.render:
        print(f"zoo: rendered {len(results)} runs -> {os.path.relpath(args.out)}")
        return 0
    with atomic_output(args.json) as tmp, open(tmp, "w") as fh:
        keys = ("max_gflop", "max_full_gflop", "max_backward_gflop", "timeout", "max_mem_gb", "quick")
        json.dump({"label": args.label, "settings": {k: getattr(args, k) for k in keys},
                   "counts": counts(results), "results": results}, fh, indent=1)
    c = counts(results)
    print(f"zoo: {c['runs']} runs: parse {c['parse']}, build {c['build']}, forward {c['forward']}, "
          f"backward {c['backward']} -> {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
