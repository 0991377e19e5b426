"""Probe onnxruntime's own pooling (and LRN) rules against Caffe's, one ONNX node at a time.

    python scripts/probe_onnxruntime.py                 # every probe, a table
    python scripts/probe_onnxruntime.py --case ave_ceil_include_pad_overhang

econv's export (caffe_import.onnx_writer) never relies on these settings: it pads explicitly and
pools in floor mode with no padding of its own, so its models agree with Caffe.  A converter that
maps Caffe's pooling onto ONNX's attributes (``ceil_mode``, ``count_include_pad``, ``pads``) gets what
this script measures.  Each probe is one ONNX node with the attributes a converter would write, run
by onnxruntime (CPU, float32) on a seeded random input, and judged against the econv reference
(Caffe's rules, float64): the output shape, and the error ``max |ort - caffe| / max(1, max |caffe|)``
with where it is largest.  Exit status 0; the table is the finding (docs/RUNTIMES.md, onnxruntime).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reference import pool2d  # noqa: E402
from reference.layers.lrn import channel_window_sum  # noqa: E402

# name: (what, ONNX op, attributes, input shape (N, C, H, W), Caffe's parameters for reference.pool2d)
PROBES = {
    "ave_ceil_include_pad_overhang": (
        "AVE k3 s2 p1 on 4x4: the issue's 'ceil_mode=1, count_include_pad=1' reading",
        "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                            count_include_pad=1), (1, 1, 4, 4),
        dict(kernel=3, stride=2, pad=1, mode="ave")),
    "ave_ceil_include_pad_no_pad": (
        "AVE k3 s2 p0 on 4x4, ceil overhang without padding (Caffe divides the last window by 2)",
        "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=1),
        (1, 1, 4, 4), dict(kernel=3, stride=2, pad=0, mode="ave")),
    "ave_ceil_exclude_pad": (
        "AVE k3 s2 p1 on 4x4 with count_include_pad=0 (padding not counted, unlike Caffe)",
        "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                            count_include_pad=0), (1, 1, 4, 4),
        dict(kernel=3, stride=2, pad=1, mode="ave")),
    "ave_floor_end_pad_trick": (
        "AVE k3 s2 p0 on 4x4 as converters write ceil: floor mode, end pads +1, count_include_pad=1",
        "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1],
                            count_include_pad=1), (1, 1, 4, 4),
        dict(kernel=3, stride=2, pad=0, mode="ave")),
    "ave_ceil_clip_rule": (
        "AVE k2 s2 p1 on 5x5: Caffe clips the window that starts in the end padding (3 outputs)",
        "AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                            count_include_pad=1), (1, 1, 5, 5),
        dict(kernel=2, stride=2, pad=1, mode="ave")),
    "max_ceil_clip_rule": (
        "MAX k2 s2 p1 on 5x5, ceil_mode=1 (Caffe: 3 outputs)",
        "MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        (1, 1, 5, 5), dict(kernel=2, stride=2, pad=1, mode="max")),
    "max_ceil_overhang": (
        "MAX k3 s2 p0 on 17x19, ceil_mode=1 (VGG/AlexNet-style overhang)",
        "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (1, 2, 17, 19),
        dict(kernel=3, stride=2, pad=0, mode="max")),
    "max_ceil_empty_window": (
        "MAX k1 s2 p0 on 6x6, ceil_mode=1: Caffe's 4th window lies past the image (-FLT_MAX)",
        "MaxPool", dict(kernel_shape=[1, 1], strides=[2, 2], ceil_mode=1), (1, 1, 6, 6),
        dict(kernel=1, stride=2, pad=0, mode="max")),
    "ave_ceil_empty_window": (
        "AVE k1 s2 p0 on 6x6, ceil_mode=1: Caffe's 4th window is empty (0/0; the reference: 0)",
        "AveragePool", dict(kernel_shape=[1, 1], strides=[2, 2], ceil_mode=1, count_include_pad=1),
        (1, 1, 6, 6), dict(kernel=1, stride=2, pad=0, mode="ave")),
    "max_pad_ge_kernel": (
        "MAX k2 pads 2 (ePool: pad p*E >= kernel; Caffe's ePool has pad < extent only)",
        "MaxPool", dict(kernel_shape=[2, 2], strides=[1, 1], pads=[2, 2, 2, 2], dilations=[3, 3]),
        (1, 1, 7, 7), dict(kernel=2, stride=1, pad=2, est=3, mode="max")),
    "ave_dilated_include_pad": (
        "AVE k3 est2 p2 s1 (ePool), count_include_pad=1",
        "AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[2, 2, 2, 2], dilations=[2, 2],
                            count_include_pad=1), (1, 1, 9, 9),
        dict(kernel=3, stride=1, pad=2, est=2, mode="ave")),
    "ave_dilated_ceil_overhang": (
        "AVE k2 est2 s2 p1 on 8x8, ceil_mode=1, count_include_pad=1",
        "AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[2, 2],
                            ceil_mode=1, count_include_pad=1), (1, 1, 8, 8),
        dict(kernel=2, stride=2, pad=1, est=2, mode="ave")),
    "max_dilated_ceil": (
        "MAX k3 est2 s2 p0 on 10x10, ceil_mode=1",
        "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], ceil_mode=1),
        (1, 1, 10, 10), dict(kernel=3, stride=2, pad=0, est=2, mode="max")),
    "max_nan": (
        "MAX k2 s2 on 4x4 with a NaN in the first window (Caffe: NaN never wins a '>')",
        "MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2]), (1, 1, 4, 4),
        dict(kernel=2, stride=2, pad=0, mode="max")),
    "lrn_across": (
        "LRN size 5, alpha 0.3, beta 0.75, bias = Caffe's k 2",
        "LRN", dict(size=5, alpha=0.3, beta=0.75, bias=2.0), (1, 7, 4, 4), None),
}


def caffe(op, x, params, attrs):
    if op == "LRN":
        n = attrs["size"]
        scale = attrs["bias"] + attrs["alpha"] / n * channel_window_sum(x * x, n)
        return x * scale ** -attrs["beta"]
    return pool2d(x, **params)


def onnxruntime_node(op, attrs, x):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.log_severity_level = 4                   # its own shape warnings and errors: the verdict says
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def probe(name, seed=0):
    what, op, attrs, shape, params = PROBES[name]
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64)
    if "nan" in name:
        x[0, 0, 0, 0] = np.nan
    ours = caffe(op, x, params, attrs)
    try:
        theirs = onnxruntime_node(op, attrs, x)
    except Exception as e:            # onnxruntime refuses the node: that is the finding
        message = str(e).strip().rstrip(".").split(". ")[-1].split(" was false")[0]
        return dict(name=name, what=what, verdict=f"refused: {message[-110:]}")
    if theirs.shape != ours.shape:
        return dict(name=name, what=what, verdict=f"shape {theirs.shape[2:]} vs Caffe {ours.shape[2:]}")
    theirs = theirs.astype(np.float64)
    diff = np.where(np.isnan(theirs) != np.isnan(ours), np.inf, np.abs(theirs - ours))
    diff = np.where(np.isnan(diff), 0.0, diff)
    err = float(diff.max() / max(1.0, float(np.abs(ours).max())))
    if err <= 1e-5:
        return dict(name=name, what=what, verdict=f"agrees ({err:.1e})")
    where = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    return dict(name=name, what=what, verdict=f"differs: {err:.3g} at {list(where)} "
                f"(ort {float(theirs[where]):.6g}, caffe {float(ours[where]):.6g})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(PROBES), action="append",
                        help="only this probe (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        print('probe_onnxruntime: error: needs onnx and onnxruntime: pip install "econv[onnx]"',
              file=sys.stderr)
        return 2
    print(f"onnxruntime {onnxruntime.__version__}, CPU, float32, against Caffe's rules (econv reference)")
    for name in args.case or PROBES:
        r = probe(name, args.seed)
        print(f"{r['name']:32s} {r['verdict']}\n{'':32s} ({r['what']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
