"""The ``econv compare`` and ``econv deploy`` subcommands (registered by :mod:`econv.cli`)."""

from __future__ import annotations

import argparse
import sys

COMPARE_DESCRIPTION = """\
Run a Caffe model (PROTOTXT + WEIGHTS; a train/test prototxt is fine: the deploy net is derived) in
another runtime, or read the blobs another runtime dumped (--theirs), and compare every layer's output
with econv's oracle (Caffe's semantics, float64), in execution order.

Prints one row per layer (layer, type, blob, max abs error, max rel error = max abs / max(1, max
|oracle|), ok), then the first divergence: where (the index of the largest error), their value and the
oracle's, whether the layer alone diverges on the oracle's own inputs (isolated; with --theirs: the
oracle's layer recomputed on their inputs), and an explanation from econv's catalogue of convention
knobs (pooling size and clip rules, AVE divisors, ignored parameters...) when one reproduces their
values.  Then the divergences that vanish downstream (masked: an end-to-end output check would pass).

Exit status: 0 every compared blob agrees, 1 a divergence, 2 bad usage or bad input."""

COMPARE_EPILOG = """\
examples:
  econv compare net.prototxt model.caffemodel --runtime opencv
  econv compare net.prototxt model.caffemodel --theirs dump.npz --names blob --json report.json
  econv compare train_val.prototxt model.caffemodel --runtime torch --input-shape data=1,3,224,224"""

DEPLOY_DESCRIPTION = """\
Write the deploy (inference) net of PROTOTXT: the TEST phase's layers, without loss layers, Accuracy,
Silence and the label inputs they read; data layers (Data, ImageData, HDF5Data, MemoryData, DummyData,
...) become Input layers with their tops' shapes (from --input-shape, or DummyData/MemoryData's own
fields; otherwise an error asks for --input-shape)."""


def named_shapes(values, what="--input-shape") -> dict:
    """``["data=1,3,8,8", ...]`` as ``{"data": (1, 3, 8, 8)}``; a value without NAME= is returned
    under the key None (the single input)."""
    shapes = {}
    for text in values or []:
        name, sep, dims = text.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            shape = ()
        if not shape or any(d < 1 for d in shape):
            raise ValueError(f"{what} {text!r}: expected NAME=N,C,H,W with positive integers, "
                             f"e.g. data=1,3,224,224")
        shapes[name if sep else None] = shape
    return shapes


def _resolve_unnamed(shapes: dict, prototxt) -> dict:
    if None not in shapes:
        return shapes
    from caffe_import import read_prototxt
    from caffe_import.deploy import DATA_TYPES

    net = read_prototxt(prototxt)
    firsts = [layer["top"][0] for layer in net.get("layer", [])
              if (layer.get("type") == "Input" or layer.get("type") in DATA_TYPES) and layer.get("top")]
    if len(firsts) != 1:
        raise ValueError(f"--input-shape without NAME= needs a net with one input; give NAME=... "
                         f"(inputs: {', '.join(firsts) or 'none'})")
    shapes = dict(shapes)
    shapes[firsts[0]] = shapes.pop(None)
    return shapes


def cmd_compare(args) -> int:
    from .compare import compare

    if (args.runtime is None) == (args.theirs is None):
        raise ValueError("give --runtime or --theirs (one of them)")
    weights = None if args.weights in ("-", "none") else args.weights
    shapes = _resolve_unnamed(named_shapes(args.input_shape), args.prototxt)
    report = compare(args.prototxt, weights, runtime=args.runtime, theirs=args.theirs,
                     inputs=args.inputs, dtype=args.dtype, rtol=args.rtol, atol=args.atol,
                     input_shapes=shapes or None, naming=args.names, seed=args.seed,
                     progress=sys.stderr.isatty())
    print(report.table())
    if args.json:
        report.write_json(args.json)
        print(f"{args.json}: JSON report written", file=sys.stderr)
    if args.reproducers:
        folders = report.write_reproducers(args.reproducers)
        print(f"{args.reproducers}: {len(folders)} reproducer folder(s)"
              + (": " + ", ".join(folders) if folders else ""), file=sys.stderr)
    return 0 if report.ok else 1


def cmd_deploy(args) -> int:
    from caffe_import import format_prototxt, read_prototxt, write_prototxt
    from caffe_import.deploy import derive_deploy

    shapes = _resolve_unnamed(named_shapes(args.input_shape), args.prototxt)
    original = read_prototxt(args.prototxt)
    deploy = derive_deploy(original, shapes or None)
    from caffe_import.loader import build_net

    build_net(deploy, phase="test")           # a clear error now, not in the user's runtime
    header = f"deploy net of {args.prototxt}, derived by econv deploy"
    if args.output is None:
        sys.stdout.write(format_prototxt(deploy, header=header))
        return 0
    write_prototxt(deploy, args.output, header=header)
    dropped = len(original.get("layer", [])) - len(deploy["layer"])
    print(f"{args.output}: {len(deploy['layer'])} layers ({dropped} dropped or merged)", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    from .runtimes import RUNTIMES

    p = sub.add_parser("compare", help="compare another runtime with the oracle, layer by layer; "
                                       "find, isolate and explain the first divergence",
                       description=COMPARE_DESCRIPTION, epilog=COMPARE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prototxt", help="the net (deploy or train/test prototxt)")
    p.add_argument("weights", help=".caffemodel or .caffemodel.h5 ('-' for none: seeded fillers)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--runtime", choices=list(RUNTIMES), help="run the net in this runtime")
    who.add_argument("--theirs", metavar="FILE", help=".npz or HDF5 of blobs dumped by any runtime, "
                                                      "keyed by blob name, layer name or blob@layer")
    p.add_argument("--names", choices=["auto", "layer", "blob"], default=None,
                   help="how --theirs names read: layer (a layer's own output), blob (the blob's last "
                        "value, as pycaffe's net.blobs after forward), auto (the default for --theirs: "
                        "layer names if one names an in-place layer such as relu1, else blob names); "
                        "blob@layer always means that layer's top; runtimes use their own")
    p.add_argument("--inputs", metavar="FILE", help=".npz or HDF5 keyed by input blob (default: with "
                                                    "--theirs, the input blobs it holds; else seeded "
                                                    "standard normal values)")
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                   help="shape of an input or data layer top (repeatable)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="the runtime's precision: sets the default tolerance (float32: 1e-4, float64: 1e-10; "
                        "reference/tolerance.py NET_TOLERANCE)")
    p.add_argument("--rtol", type=float, help="relative tolerance (of max(1, max |oracle|))")
    p.add_argument("--atol", type=float, help="absolute tolerance added to it (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the JSON report (written atomically)")
    p.add_argument("--reproducers", metavar="DIR", help="write one folder per divergent layer: the "
                                                        "layer alone, its inputs, the oracle's outputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("deploy", help="write the deploy net of a train/test prototxt (losses, "
                                      "labels, data layers removed)",
                       description=DEPLOY_DESCRIPTION)
    p.add_argument("prototxt")
    p.add_argument("-o", "--output", help="prototxt to write (atomically); default: stdout")
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                   help="shape of a data layer's (or an Input's) top (repeatable)")
    p.set_defaults(func=cmd_deploy)
