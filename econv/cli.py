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
commands arriving with later work: convert, info, densify, verify, demo, bench.
Python API: `import reference` (the NumPy oracle); see README.md."""


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
    return parser


def main(argv=None) -> int:
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
