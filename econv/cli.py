"""``econv``: one command, one subcommand per job.  ``econv <command> --help`` explains each."""

from __future__ import annotations

import argparse
import sys

from . import __version__

DESCRIPTION = """\
econv: a from-scratch reference engine for dense, equivalent CNNs (eConv / ePool, "Dense CNN
Learning with Equivalent Mappings"), with Caffe-exact NumPy layers (the oracle), Numba kernels and a
Caffe model importer."""

EPILOG = """\
commands arriving with later work: densify, demo.
Python API: `import reference` (the NumPy oracle), `import caffe_import`; see README.md."""


def cmd_info(args) -> int:
    from caffe_import import load_net
    from reference.coord_map import coord_maps

    net = load_net(args.prototxt, phase=args.phase)
    if args.input_shape:
        dims = tuple(int(d) for d in args.input_shape.replace("x", ",").split(",") if d)
        shapes = net.infer_shapes({net.input_names[0]: dims})
    else:
        shapes = net.blob_shapes
    maps = coord_maps(net)
    rows = [("layer", "type", "top", "output shape", "receptive field", "stride", "offset")]
    for layer in net.layers:
        for t in layer.top_names:
            m = maps[t]
            fmt = lambda p: "x".join(f"{v:g}" for v in p)  # noqa: E731
            rows.append((layer.name, layer.type, t, "x".join(map(str, shapes[t])) or "scalar",
                         fmt(m.rf), fmt(m.stride), ",".join(f"{v:g}" for v in m.offset)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_verify(args) -> int:
    import numpy as np

    from caffe_import import load_net
    from reference import densify
    from reference.fragments import check_equivalence

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    net = load_net(args.prototxt, args.weights, dtype=dtype)
    shapes = dict(net.blob_shapes)
    if args.input_shape:
        dims = tuple(int(d) for d in args.input_shape.replace("x", ",").split(",") if d)
        if len(net.input_names) != 1:
            raise ValueError(f"--input-shape needs a net with one input, this one has {net.input_names}")
        shapes[net.input_names[0]] = dims
    rng = np.random.default_rng(args.seed)
    inputs = {name: rng.normal(size=shapes[name]) for name in net.input_names}
    net.infer_shapes({k: v.shape for k, v in inputs.items()})   # a clear error if the shape does not fit
    dense = densify(net, args.start)
    report = check_equivalence(net, dense, inputs, fragments=not args.e1_only)
    print(report)
    return 0 if report.ok else 1


def cmd_vectors(args) -> int:
    import numpy as np

    from .vectors import write_vectors

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    n = write_vectors(args.output, count=args.count, seed=args.seed, dtype=dtype)
    print(f"wrote {n} cases ({args.dtype}) to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="econv", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"econv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")

    p = sub.add_parser(
        "vectors", help="write golden test vectors (HDF5) for the six ops",
        description="Write the op table's cases (conv2d, deconv2d, pool2d: inputs, parameters, "
                    "forward output, a cotangent dy and the backward results) computed by the NumPy "
                    "reference, as an HDF5 file readable with h5py alone: group cases/<name> per case, "
                    "attributes op/kernel/stride/pad/est/group/mode/round_mode/pad_end as they apply, "
                    "datasets x, w, b, y, dy, dx, dw, db.")
    p.add_argument("-o", "--output", required=True, help="HDF5 file to write (atomically)")
    p.add_argument("--count", type=int, default=12, help="cases per op (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the case generator (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.set_defaults(func=cmd_vectors)

    sub.add_parser("convert", help="convert a binary .caffemodel to Caffe's HDF5 layout",
                   description="econv convert SRC -o DST (see `econv convert --help`)", add_help=False)

    p = sub.add_parser(
        "info", help="one row per layer: output shape, receptive field, stride, offset",
        description="Print one row per layer of PROTOTXT (layer name first): its top's shape for the "
                    "net's input shape, and the top's coordinate map in input pixels: receptive field, "
                    "stride, and the offset (pixel at the centre of unit 0; FCN's coordinate maps).")
    p.add_argument("prototxt")
    p.add_argument("--input-shape", help="N,C,H,W of the (single) input; default: the prototxt's")
    p.add_argument("--phase", choices=["train", "test"], default="test")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "verify", help="check that the dense net of a Caffe model is exactly equivalent (E1, E2)",
        description="Load PROTOTXT with WEIGHTS, densify it at --start, run both on a random input and "
                    "compare every blob downstream of the start: E1 on the original grid and, unless "
                    "--e1-only, E2 on every fragment (Giusti et al.'s multi-level shift-and-stitch). "
                    "Prints the max errors; exit status 1 when equivalence fails.")
    p.add_argument("prototxt")
    p.add_argument("weights", help=".caffemodel or .caffemodel.h5")
    p.add_argument("--start", required=True, help="the pooling (or strided convolution) layer to densify at")
    p.add_argument("--input-shape", help="N,C,H,W of the (single) input; default: the prototxt's")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--e1-only", action="store_true", help="skip the fragment check (E2)")
    p.set_defaults(func=cmd_verify)

    from numba_kernels.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:
        from caffe_import import cli_convert

        return cli_convert(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        print(f"econv {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
