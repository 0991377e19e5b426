"""Time econv's ONNX export and an onnxruntime run of VGG-16 (random weights), and check the result.

    python scripts/time_onnxruntime_vgg16.py [--size 224] [--all-blobs] [--no-check]

VGG-16 is ``reference.models.vgg16`` (13 convolutions with in-place ReLUs, 5 Caffe ceil-mode max
poolings, fc6-fc8 with ReLU and Dropout; 138 M parameters, msra-filled).  Prints the seconds for:
building the Net, ``to_onnx`` (with ``onnx.checker``), writing the file, creating the onnxruntime
session, one run (all 37 blob writes as outputs with ``--all-blobs``, else fc8 only), and, unless
``--no-check``, the NumPy reference forward and the worst error over the compared blobs
(``max |ort - ref| / max(1, max |ref|)``, float32 both).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from caffe_import.onnx_writer import export_onnx, to_onnx  # noqa: E402
from reference import Net  # noqa: E402
from reference.models import vgg16  # noqa: E402
from reference.tolerance import max_rel_err  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--all-blobs", action="store_true", help="every blob write a graph output")
    parser.add_argument("--no-check", action="store_true", help="skip the NumPy reference forward")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    times = {}
    t = time.perf_counter()
    net = Net(vgg16(input_shape=(1, 3, args.size, args.size)), seed=0)
    times["build Net"] = time.perf_counter() - t
    t = time.perf_counter()
    model = to_onnx(net, all_blobs=args.all_blobs)
    times["to_onnx + checker"] = time.perf_counter() - t
    del model
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vgg16.onnx")
        t = time.perf_counter()
        export_onnx(net, path, all_blobs=args.all_blobs)
        times["export_onnx (to_onnx + write)"] = time.perf_counter() - t
        size_mb = os.path.getsize(path) / 2 ** 20
        t = time.perf_counter()
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        times["onnxruntime session"] = time.perf_counter() - t
    x = np.random.default_rng(0).normal(size=(1, 3, args.size, args.size)).astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    session.run(names, {"data": x})                          # warm-up
    t = time.perf_counter()
    theirs = dict(zip(names, session.run(names, {"data": x})))
    times["onnxruntime run"] = time.perf_counter() - t
    worst = None
    if not args.no_check:
        t = time.perf_counter()
        ours = net.forward(data=x)
        times["reference forward (NumPy)"] = time.perf_counter() - t
        worst = max((max_rel_err(v, ours[k]), k) for k, v in theirs.items() if "@" not in k)
    count = sum(b.size for blobs in net.params.values() for b in blobs)
    print(f"VGG-16 at {args.size}x{args.size}, {count / 1e6:.0f} M "
          f"parameters, {size_mb:.0f} MiB ONNX, {len(names)} outputs, onnxruntime {ort.__version__}, "
          f"{os.cpu_count()} CPUs")
    for what, seconds in times.items():
        print(f"  {what:32s} {seconds:7.2f} s")
    if worst is not None:
        print(f"  worst error {worst[0]:.2e} ({worst[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
