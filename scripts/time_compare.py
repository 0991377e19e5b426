"""How long ``econv compare`` takes on a VGG-16-sized net (random weights), against a runtime.

    python scripts/time_compare.py [--runtime opencv] [--size 224] [--widths 64,128,256,512,512]

Builds VGG-16's layout (:func:`reference.models.vgg16`: 13 convolutions with in-place ReLUs, 5 max
poolings, fc6-fc8 with ReLU and Dropout), draws seeded random weights (He-normal, 138 M parameters at
full width), writes them as a binary caffemodel in a temporary folder, runs compare and prints its
table and the seconds spent: the oracle (float64 NumPy, every layer kept), the runtime, the
isolation and the total.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import econv  # noqa: F401
except ImportError:   # run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from caffe_import import write_prototxt
    from econv.compare import compare, write_caffemodel
    from reference.models import vgg16

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default="opencv")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--widths", default="64,128,256,512,512", help="channel widths of the 5 blocks")
    parser.add_argument("--fc", default="4096,4096,1000", help="fc6, fc7, fc8 outputs")
    args = parser.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    fc = tuple(int(f) for f in args.fc.split(","))
    layers = vgg16(widths, fc, (1, 3, args.size, args.size))
    rng = np.random.default_rng(0)
    params, c, hw = {}, 3, args.size
    for spec in layers:
        if spec["type"] == "Convolution":
            n = spec["convolution_param"]["num_output"]
            he = np.sqrt(2 / (9 * c))
            params[spec["name"]] = [rng.standard_normal((n, c, 3, 3), dtype=np.float32) * he,
                                    rng.standard_normal(n, dtype=np.float32) * 0.1]
            c = n
        elif spec["type"] == "Pooling":
            hw = -(-(hw - 2) // 2) + 1
        elif spec["type"] == "InnerProduct":
            n, k = spec["inner_product_param"]["num_output"], c * hw * hw
            params[spec["name"]] = [rng.standard_normal((n, k), dtype=np.float32) * np.sqrt(2 / k),
                                    rng.standard_normal(n, dtype=np.float32) * 0.1]
            c, hw = n, 1
    total = sum(a.size for p in params.values() for a in p)
    with tempfile.TemporaryDirectory(prefix="econv-time-") as folder:
        proto, weights = f"{folder}/vgg16.prototxt", f"{folder}/vgg16.caffemodel"
        write_prototxt(layers, proto)
        t0 = time.perf_counter()
        write_caffemodel(layers, params, weights)
        written = time.perf_counter() - t0
        del params
        t0 = time.perf_counter()
        report = compare(proto, weights, runtime=args.runtime)
        wall = time.perf_counter() - t0
    print(report.table())
    s = report.seconds
    print(f"VGG-16 {'x'.join(map(str, widths))} / fc {'x'.join(map(str, fc))}, input 1x3x{args.size}x"
          f"{args.size}, {total / 1e6:.1f} M parameters (caffemodel written in {written:.1f} s): compare "
          f"{wall:.1f} s = oracle {s['oracle']:.1f} s (reading weights, float64 forward) + "
          f"{args.runtime} {s['runtime']:.1f} s + isolation {s['isolation']:.2f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
