"""Probe nets for ``econv compare``: one tiny Caffe net per layer type and convention knob, run
against every runtime adapter that is installed; prints what each runtime gets wrong.

    python scripts/probe_runtimes.py                      # write tests/data/probes/, run every probe
    python scripts/probe_runtimes.py --runtime opencv --probe lrn_across_k
    python scripts/probe_runtimes.py --write-only         # just (re)write the probe files
    python scripts/probe_runtimes.py --markdown           # the findings table of docs/RUNTIMES.md

Each probe is ``tests/data/probes/<name>/net.prototxt`` (+ ``weights.caffemodel`` when it has
parameters: seeded gaussian fillers, BatchNorm statistics set by hand), so every finding reproduces
with one command::

    econv compare tests/data/probes/<name>/net.prototxt tests/data/probes/<name>/weights.caffemodel \\
        --runtime opencv
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

try:
    import econv  # noqa: F401
except ImportError:   # run from a checkout: python scripts/probe_runtimes.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
PROBE_DIR = ROOT / "tests" / "data" / "probes"
G = {"type": "gaussian", "std": 0.5}


def inp(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": dims}]}}


def L(name, kind, bottom, top=None, **params):
    bottom = [bottom] if isinstance(bottom, str) else list(bottom)
    top = [top or name] if not isinstance(top, list) else top
    return {"name": name, "type": kind, "bottom": bottom, "top": top, **params}


def pool(name, bottom, **p):
    return L(name, "Pooling", bottom, pooling_param=p)


def conv(name, bottom, kind="Convolution", **p):
    p.setdefault("weight_filler", G)
    if p.get("bias_term", True):
        p.setdefault("bias_filler", G)
    return L(name, kind, bottom, convolution_param=p)


X = inp("data", [2, 3, 6, 6])
X7 = inp("data", [1, 2, 7, 7])

# name -> (what it probes, layers)
PROBES = {
    # Pooling: size rule, clip rule, divisors, empty windows
    "pool_max_window_past_end": ("MAX k2 s3, no pad, 6x6: Caffe's ceil keeps a 3rd window starting at "
                                 "6 (past the input: -FLT_MAX)", [X, pool("pool", "data", pool="MAX",
                                                                        kernel_size=2, stride=3)]),
    "pool_ave_window_past_end": ("AVE k2 s3, no pad, 6x6: the window past the input (Caffe's own code: "
                                 "0/0 = NaN; econv's oracle: 0)",
                                 [X, pool("pool", "data", pool="AVE", kernel_size=2, stride=3)]),
    "pool_max_ceil_overhang": ("MAX k3 s2, no pad, 6x6: ceil, the last window hangs over",
                               [X, pool("pool", "data", pool="MAX", kernel_size=3, stride=2)]),
    "pool_ave_ceil_overhang": ("AVE k3 s2, no pad, 6x6: the overhang is not in the divisor",
                               [X, pool("pool", "data", pool="AVE", kernel_size=3, stride=2)]),
    "pool_ave_pad_overhang": ("AVE k3 s2 pad 1, 6x6: divisor counts the padding, not the overhang",
                              [X, pool("pool", "data", pool="AVE", kernel_size=3, stride=2, pad=1)]),
    "pool_ave_pad_same": ("AVE k3 s1 pad 1 (the divisor counts the padding: 9 at the border)",
                          [X, pool("pool", "data", pool="AVE", kernel_size=3, stride=1, pad=1)]),
    "pool_max_pad_clip": ("MAX k2 s2 pad 1, 7x7: the clip rule drops a window starting in the padding",
                          [X7, pool("pool", "data", pool="MAX", kernel_size=2, stride=2, pad=1)]),
    "pool_ave_pad_clip": ("AVE k2 s2 pad 1, 7x7: clip rule and divisor with padding",
                          [X7, pool("pool", "data", pool="AVE", kernel_size=2, stride=2, pad=1)]),
    "pool_max_floor": ("MAX k3 s2, round_mode FLOOR", [X, pool("pool", "data", pool="MAX", kernel_size=3,
                                                              stride=2, round_mode="FLOOR")]),
    "pool_round_ceil_stated": ("MAX k3 s2 with round_mode: CEIL stated (the default)",
                               [X, pool("pool", "data", pool="MAX", kernel_size=3, stride=2,
                                        round_mode="CEIL")]),
    "pool_ave_floor_pad": ("AVE k3 s2 pad 1, round_mode FLOOR",
                           [X, pool("pool", "data", pool="AVE", kernel_size=3, stride=2, pad=1,
                                    round_mode="FLOOR")]),
    "pool_rect": ("MAX kernel 3x2, stride 2x1, pad 1x0", [X, pool("pool", "data", pool="MAX", kernel_h=3,
                                                                  kernel_w=2, stride_h=2, stride_w=1,
                                                                  pad_h=1, pad_w=0)]),
    "pool_global_ave": ("global AVE pooling", [X, pool("pool", "data", pool="AVE", global_pooling=True)]),
    "pool_global_max": ("global MAX pooling", [X, pool("pool", "data", pool="MAX", global_pooling=True)]),
    # Convolution / Deconvolution
    "conv_dilation": ("Convolution k3 dilation 2 pad 2", [X, conv("conv", "data", num_output=4,
                                                                    kernel_size=3, dilation=2, pad=2)]),
    "conv_group": ("Convolution group 3 (3 -> 6 channels)", [X, conv("conv", "data", num_output=6,
                                                                     kernel_size=3, group=3, pad=1)]),
    "conv_no_bias": ("Convolution bias_term false", [X, conv("conv", "data", num_output=4, kernel_size=3,
                                                            bias_term=False)]),
    "conv_rect": ("Convolution kernel 3x1, stride 2x1, pad 1x0",
                  [X, conv("conv", "data", num_output=4, kernel_h=3, kernel_w=1, stride_h=2, stride_w=1,
                           pad_h=1, pad_w=0)]),
    "deconv_stride": ("Deconvolution k4 s2 pad 1", [X, conv("deconv", "data", "Deconvolution",
                                                            num_output=4, kernel_size=4, stride=2,
                                                            pad=1)]),
    "deconv_group": ("Deconvolution k3 s2 group 3", [X, conv("deconv", "data", "Deconvolution",
                                                             num_output=6, kernel_size=3, stride=2,
                                                             group=3)]),
    "deconv_dilation": ("Deconvolution k3 dilation 2", [X, conv("deconv", "data", "Deconvolution",
                                                                num_output=2, kernel_size=3,
                                                                dilation=2)]),
    # LRN
    "lrn_across_k": ("LRN ACROSS_CHANNELS local_size 3, alpha 0.5, k 2",
                     [inp("data", [2, 6, 4, 4]), L("lrn", "LRN", "data", lrn_param={
                         "local_size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0})]),
    "lrn_across": ("LRN ACROSS_CHANNELS local_size 5 (k 1)",
                   [inp("data", [2, 6, 4, 4]), L("lrn", "LRN", "data", lrn_param={
                       "local_size": 5, "alpha": 0.3, "beta": 0.75})]),
    "lrn_within": ("LRN WITHIN_CHANNEL local_size 3", [X, L("lrn", "LRN", "data", lrn_param={
        "local_size": 3, "alpha": 0.5, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"})]),
    "lrn_within_k": ("LRN WITHIN_CHANNEL with k 2 (Caffe ignores k there)",
                     [X, L("lrn", "LRN", "data", lrn_param={"local_size": 3, "alpha": 0.5, "beta": 0.75,
                                                            "k": 2.0, "norm_region": "WITHIN_CHANNEL"})]),
    # InnerProduct
    "ip": ("InnerProduct on a 4-D input", [X, L("ip", "InnerProduct", "data", inner_product_param={
        "num_output": 5, "weight_filler": G, "bias_filler": G})]),
    "ip_transpose": ("InnerProduct transpose: true (weights stored K x N)",
                     [X, L("ip", "InnerProduct", "data", inner_product_param={
                         "num_output": 5, "transpose": True, "weight_filler": G, "bias_filler": G})]),
    "ip_no_bias": ("InnerProduct bias_term false", [X, L("ip", "InnerProduct", "data", inner_product_param={
        "num_output": 5, "bias_term": False, "weight_filler": G})]),
    # BatchNorm / Scale
    "batchnorm_factor": ("BatchNorm use_global_stats, scale factor blob = 2",
                         [X, L("bn", "BatchNorm", "data", batch_norm_param={"use_global_stats": True})]),
    "batchnorm_eps": ("BatchNorm eps 0.1, factor 1",
                      [X, L("bn", "BatchNorm", "data", batch_norm_param={"use_global_stats": True,
                                                                         "eps": 0.1})]),
    "scale_bias": ("Scale with bias", [X, L("sc", "Scale", "data", scale_param={
        "bias_term": True, "filler": G, "bias_filler": G})]),
    "scale_two_bottoms": ("Scale by a second bottom of shape N x C (axis 0)",
                          [X, inp("s", [2, 3]), L("sc", "Scale", ["data", "s"], scale_param={"axis": 0})]),
    # Crop, Eltwise, neurons, shapes
    "crop_offsets": ("Crop axis 2 offsets 1, 2", [X, inp("ref", [2, 3, 3, 3]),
                                                 L("crop", "Crop", ["data", "ref"],
                                                   crop_param={"axis": 2, "offset": [1, 2]})]),
    "crop_axis1": ("Crop axis 1 offset 1 (channels too)", [X, inp("ref", [2, 2, 4, 4]),
                                                          L("crop", "Crop", ["data", "ref"],
                                                            crop_param={"axis": 1, "offset": [1]})]),
    "eltwise_coeff": ("Eltwise SUM coeff 2, -0.5", [X, inp("b", [2, 3, 6, 6]),
                                                    L("sum", "Eltwise", ["data", "b"], eltwise_param={
                                                        "operation": "SUM", "coeff": [2.0, -0.5]})]),
    "eltwise_prod_max": ("Eltwise PROD and MAX", [X, inp("b", [2, 3, 6, 6]),
                                                  L("prod", "Eltwise", ["data", "b"],
                                                    eltwise_param={"operation": "PROD"}),
                                                  L("max", "Eltwise", ["data", "b"],
                                                    eltwise_param={"operation": "MAX"})]),
    "relu_slope": ("ReLU negative_slope 0.1", [X, L("relu", "ReLU", "data", relu_param={
        "negative_slope": 0.1})]),
    "power": ("Power power 2, scale 0.5, shift 1", [X, L("pw", "Power", "data", power_param={
        "power": 2.0, "scale": 0.5, "shift": 1.0})]),
    "dropout": ("Dropout at test time", [X, L("drop", "Dropout", "data", dropout_param={
        "dropout_ratio": 0.3})]),
    "softmax_axis": ("Softmax axis 2", [X, L("sm", "Softmax", "data", softmax_param={"axis": 2})]),
    "concat_axis2": ("Concat axis 2", [X, inp("b", [2, 3, 4, 6]),
                                       L("cat", "Concat", ["data", "b"], concat_param={"axis": 2})]),
    "flatten_reshape": ("Flatten then Reshape", [X, L("flat", "Flatten", "data"),
                                                  L("re", "Reshape", "flat", reshape_param={
                                                      "shape": {"dim": [0, 9, -1]}})]),
    "sigmoid_tanh": ("Sigmoid, TanH", [X, L("sg", "Sigmoid", "data"), L("th", "TanH", "data")]),
    # more knobs and combinations
    "conv_dilation_group": ("Convolution k3 dilation 2, group 3, stride 2, pad 1",
                            [X, conv("conv", "data", num_output=6, kernel_size=3, dilation=2, group=3,
                                     stride=2, pad=1)]),
    "deconv_rect": ("Deconvolution kernel 3x2, stride 2x1, pad 1x0",
                    [X, conv("deconv", "data", "Deconvolution", num_output=2, kernel_h=3, kernel_w=2,
                             stride_h=2, stride_w=1, pad_h=1, pad_w=0)]),
    "pool_stride_gt_kernel": ("MAX k2 s3 pad 1 on 7x7 (stride > kernel with padding)",
                              [X7, pool("pool", "data", pool="MAX", kernel_size=2, stride=3, pad=1)]),
    "pool_ave_stride_gt_kernel": ("AVE k2 s3 pad 1 on 7x7", [X7, pool("pool", "data", pool="AVE",
                                                                      kernel_size=2, stride=3, pad=1)]),
    "ip_axis2": ("InnerProduct axis 2 (per channel)",
                 [X, L("ip", "InnerProduct", "data", inner_product_param={
                     "num_output": 4, "axis": 2, "weight_filler": G, "bias_filler": G})]),
    "scale_axis2": ("Scale axis 2, num_axes 2 (an H x W scale)",
                    [X, L("sc", "Scale", "data", scale_param={
                        "axis": 2, "num_axes": 2, "filler": G, "bias_term": True, "bias_filler": G})]),
    "eltwise_sum3": ("Eltwise SUM of three with coefficients 1, -2, 0.5",
                     [X, inp("b", [2, 3, 6, 6]), inp("c", [2, 3, 6, 6]),
                      L("sum", "Eltwise", ["data", "b", "c"], eltwise_param={
                          "operation": "SUM", "coeff": [1.0, -2.0, 0.5]})]),
    "lrn_size1": ("LRN ACROSS local_size 1, alpha 2, beta 0.5",
                  [X, L("lrn", "LRN", "data", lrn_param={"local_size": 1, "alpha": 2.0, "beta": 0.5})]),
    "power_frac": ("Power power 0.5 of (shift 3 + x): a square root",
                   [X, L("pw", "Power", "data", power_param={"power": 0.5, "shift": 3.0})]),
    "softmax_axis0": ("Softmax axis 0", [X, L("sm", "Softmax", "data", softmax_param={"axis": 0})]),
    "concat_axis0": ("Concat axis 0 (the batch)",
                     [X, inp("b", [1, 3, 6, 6]),
                      L("cat", "Concat", ["data", "b"], concat_param={"axis": 0})]),
    # in-place chains and masking
    "inplace_chain": ("conv -> ReLU (in place) -> Dropout (in place) -> max pool",
                      [X, conv("conv", "data", num_output=4, kernel_size=3, pad=1),
                       L("relu", "ReLU", "conv", "conv"), L("drop", "Dropout", "conv", "conv"),
                       pool("pool", "conv", pool="MAX", kernel_size=2, stride=2)]),
    "conv_bn_scale_relu": ("Convolution -> BatchNorm (factor 2, eps 0.1) -> Scale (bias) -> ReLU, all "
                           "in place (the chain OpenCV fuses)",
                           [X, conv("conv", "data", num_output=4, kernel_size=3, pad=1),
                            L("bn", "BatchNorm", "conv", "conv", batch_norm_param={
                                "use_global_stats": True, "eps": 0.1}),
                            L("sc", "Scale", "conv", "conv", scale_param={"bias_term": True, "filler": G,
                                                                         "bias_filler": G}),
                            L("relu", "ReLU", "conv", "conv")]),
    "masked_max_pool_relu": ("MAX k2 s3 (a window past the end) -> ReLU in place: the pool's "
                             "empty-window value is hidden by the ReLU",
                             [X, pool("pool", "data", pool="MAX", kernel_size=2, stride=3),
                              L("relu", "ReLU", "pool", "pool")]),
    "masked_max_pool_pool": ("MAX k2 s3 (a window past the end) -> MAX k3 s3 pool: hidden by the "
                             "second pool", [X, pool("pool", "data", pool="MAX", kernel_size=2, stride=3),
                                             pool("pool2", "pool", pool="MAX", kernel_size=3, stride=3)]),
}

BN_STATS = {"batchnorm_factor": 2.0, "batchnorm_eps": 1.0, "conv_bn_scale_relu": 2.0}


def write_probe(name, folder=PROBE_DIR) -> tuple:
    """Write probe ``name``: ``(prototxt path, weights path or None)``."""
    from caffe_import import write_prototxt
    from econv.compare import write_caffemodel
    from reference import Net

    what, layers = PROBES[name]
    net = Net(layers, dtype=np.float32, seed=sum(map(ord, name)))
    if name in BN_STATS:
        bn = net.layer("bn")
        rng = np.random.default_rng(1)
        f = BN_STATS[name]
        bn.blobs[0][...] = f * rng.normal(size=bn.blobs[0].shape)
        bn.blobs[1][...] = f * rng.uniform(0.5, 2.0, size=bn.blobs[1].shape)
        bn.blobs[2][...] = f
    sub = Path(folder) / name
    sub.mkdir(parents=True, exist_ok=True)
    proto = sub / "net.prototxt"
    write_prototxt(net, proto, header=f"probe {name}: {what}\nwritten by scripts/probe_runtimes.py")
    weights = None
    params = net.params
    if params:
        weights = sub / "weights.caffemodel"
        write_caffemodel(net.specs, params, weights)
    elif (sub / "weights.caffemodel").exists():
        os.unlink(sub / "weights.caffemodel")
    return str(proto), (str(weights) if weights else None)


def probe(name, runtime, folder=PROBE_DIR):
    """``(report or None, error text)`` of compare on probe ``name`` with ``runtime``."""
    from econv.compare import compare

    proto, weights = write_probe(name, folder)
    try:
        return compare(proto, weights, runtime=runtime), ""
    except ValueError as e:
        return None, " ".join(str(e).split())[:200]


def finding(report, error) -> str:
    if report is None:
        return f"refused: {error}"
    if report.ok:
        worst = max((r.max_rel_err for r in report.rows if r.max_rel_err is not None), default=0.0)
        return f"agrees (max rel {worst:.1e})"
    d = report.first
    text = f"DIFF at {d.layer}: max rel {d.max_rel_err:.3g}"
    if d.max_rel_err == float("inf"):
        shapes = [r.note for r in report.rows if r.layer == d.layer and r.note]
        text = f"DIFF at {d.layer}: {shapes[0] if shapes else 'shape'}"
    text += f", isolated {d.isolated}; {d.explanation or 'unexplained'}"
    if report.masked:
        text += f"; masked downstream: {', '.join(report.masked)}"
    return text


def _fused_opencv():
    """OpenCV with fusion on, asked for the net outputs only (fused layers have no output)."""
    import types

    from econv.runtimes import opencv

    return types.SimpleNamespace(NAME="opencv-fused", INSTALL_HINT=opencv.INSTALL_HINT,
                                 available=opencv.available,
                                 run=lambda proto, weights, inputs, want=None:
                                 opencv.run(proto, weights, inputs, [], fusion=True))


def main(argv=None) -> int:
    from econv.runtimes import RUNTIMES, RuntimeMissing, get_runtime

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", action="append", choices=list(RUNTIMES),
                        help="runtimes to probe (default: every installed one)")
    parser.add_argument("--probe", action="append", choices=list(PROBES), help="probes (default all)")
    parser.add_argument("--out", default=str(PROBE_DIR), help="folder for the probe nets")
    parser.add_argument("--write-only", action="store_true", help="write the probe nets, run nothing")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--fused", action="store_true",
                        help="opencv only: run with OpenCV's layer fusion on (its default) and compare "
                             "the net outputs only")
    args = parser.parse_args(argv)
    names = args.probe or list(PROBES)
    if args.write_only:
        for name in names:
            write_probe(name, args.out)
        print(f"{len(names)} probes written under {args.out}")
        return 0
    runtimes = []
    for r in args.runtime or list(RUNTIMES):
        try:
            get_runtime(r)
            runtimes.append(r)
        except RuntimeMissing as e:
            print(f"skipping {r}: {e}", file=sys.stderr)
    if args.fused:
        runtimes = [_fused_opencv()] if "opencv" in runtimes else []
    diverged = 0
    for runtime in runtimes:
        if args.markdown:
            print(f"\n| probe | what | {getattr(runtime, 'NAME', runtime)} |\n|---|---|---|")
        for name in names:
            report, error = probe(name, runtime, args.out)
            text = finding(report, error)
            diverged += report is None or not report.ok
            if args.markdown:
                print(f"| `{name}` | {PROBES[name][0]} | {text} |")
            else:
                print(f"{getattr(runtime, 'NAME', runtime):12s} {name:26s} {text}")
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main())
