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
The main job: `econv demo` (the paper's segmentation experiment at small scale, on built-in data).
Python API: `import reference` (the NumPy oracle), `import caffe_import`; see README.md."""


def _dims(text: str) -> tuple:
    """``--input-shape`` "N,C,H,W" (or "NxCxHxW") as a tuple of ints."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"--input-shape {text!r}: expected positive integers such as 1,3,224,224")
    return dims


def _single_input(net) -> str:
    if len(net.input_names) != 1:
        raise ValueError(f"--input-shape needs a net with one input, this one has {net.input_names}")
    return net.input_names[0]


def cmd_info(args) -> int:
    from caffe_import import load_net
    from reference.coord_map import coord_maps

    net = load_net(args.prototxt, phase=args.phase)
    if args.input_shape:
        shapes = net.infer_shapes({_single_input(net): _dims(args.input_shape)})
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


STRICT_HELP = ("an error (exit 2), not a warning, when layers of the weights match no layer of "
               "the net or layers of the net with parameters get no weights")


def _load_with_weights(args, **kwargs):
    """``load_net(args.prototxt, args.weights, strict=args.strict)``; a weights mismatch warning is
    printed as one line ``econv <cmd>: warning: ...`` (``--strict`` makes it an error)."""
    import warnings

    from caffe_import import WeightsMismatchWarning, load_net

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeightsMismatchWarning)
        net = load_net(args.prototxt, args.weights, strict=args.strict, **kwargs)
    for w in caught:
        if issubclass(w.category, WeightsMismatchWarning):
            print(f"econv {args.command}: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return net


def cmd_verify(args) -> int:
    import numpy as np

    from reference import densify
    from reference.fragments import check_equivalence

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    net = _load_with_weights(args, dtype=dtype)
    shapes = dict(net.blob_shapes)
    if args.input_shape:
        shapes[_single_input(net)] = _dims(args.input_shape)
    rng = np.random.default_rng(args.seed)
    inputs = {name: rng.normal(size=shapes[name]) for name in net.input_names}
    net.infer_shapes({k: v.shape for k, v in inputs.items()})   # a clear error if the shape does not fit
    dense = densify(net, args.start)
    report = check_equivalence(net, dense, inputs, fragments=not args.e1_only)
    print(report)
    return 0 if report.ok else 1


DENSIFY_DESCRIPTION = """\
Densify PROTOTXT at --start and write the dense net's definition as prototxt: to -o OUT (written
atomically) or to stdout.  The start layer's stride becomes 1; every convolution after it becomes an
eConv (Caffe's own convolution_param dilation, pad scaled), every pooling an ePool, every InnerProduct
a convolution (kernel = its input's size at the prototxt's input shape).  dense[..., E*i, E*j] is the
original's [..., i, j], with E the product of the strides set to 1 before the blob.

Caffe has no ePool.  A densified Pooling layer is written with econv's extension fields inside its
pooling_param, `est: E` (tap spacing) and `pad_end: P` (extra absent positions at the bottom/right),
once per axis; an LRN within channel gets `est` in lrn_param.  Caffe's parser rejects these fields;
econv, caffe_import.load_net and read_prototxt read them.  The file starts with a comment saying so.

--input-shape sets the input shape written into the dense net; InnerProducts are still
convolutionalized at the prototxt's own shape, so their kernels fit the trained weights (VGG-16 at
256x256: fc8 8x8).  --fc-pad pads those convolutions "same", (k-1)/2 per axis (VGG-16's 7x7 fc6 gets
3, the 1x1 fc7/fc8 none), in the original as well: more predictions (VGG-16 at 256x256, pool4:
32x32), of which those whose fc6 window misses the padding equal the unpadded net's.  No weights are
read or written: the dense net's parameters are the original's by layer name, a convolutionalized
InnerProduct's weights reshaped (O, C*h*w) -> (O, C, h, w) in C order.  Exit status 2, and no file
written, when the prototxt cannot be read or a layer cannot be densified."""


def _densify_header(args, net, dense) -> str:
    epools = [layer for layer in dense.layers if layer.type == "Pooling" and
              (layer.est != (1, 1) or layer.pad_end != (0, 0))]
    last = dense.layers[-1].top_names[0]
    step = dense.grid(last)[1]
    lines = [f"written by econv densify --start {args.start}{' --fc-pad' if args.fc_pad else ''} "
             f"from {args.prototxt}",
             f"the dense equivalent of {net.name or 'the net'}: {last}[..., {step[0]}*i, {step[1]}*j] "
             f"is the original's {last}[..., i, j]",
             "ePool layers use the econv fields est/pad_end in pooling_param, unknown to Caffe: "
             + (", ".join(f"{p.name} (est {p.est[0]}x{p.est[1]}, pad_end {p.pad_end[0]}x{p.pad_end[1]})"
                          for p in epools) or "none"),
             "eConv layers are Caffe convolutions with dilation"]
    if args.fc_pad:
        original = {s["name"]: s for s in dense.dense_info["original_specs"]}
        pads = [f"{layer.name} pad {cp.get('pad_h', 0)}x{cp.get('pad_w', 0)}" for layer in net.layers
                if layer.type == "InnerProduct" and original[layer.name]["type"] == "Convolution"
                for cp in [original[layer.name]["convolution_param"]]]
        lines.append("--fc-pad: InnerProducts convolutionalized with padding, in the original too: "
                     + ", ".join(pads))
    return "\n".join(lines)


def cmd_densify(args) -> int:
    from caffe_import import format_prototxt, write_prototxt
    from reference import densify

    if args.weights_out and not args.weights:
        raise ValueError("--weights-out needs --weights (the original's trained parameters)")
    net = _load_with_weights(args)
    dense = densify(net, args.start, fc_pad="same" if args.fc_pad else 0)
    shapes = None
    if args.input_shape:
        shapes = {_single_input(dense): _dims(args.input_shape)}
        dense.infer_shapes(shapes)        # a clear error naming the layer if the shape does not fit
    header = _densify_header(args, net, dense)
    text = format_prototxt(dense, input_shapes=shapes, header=header)   # refuses before writing
    if args.weights_out:
        from caffe_import import write_hdf5_weights

        info = write_hdf5_weights(dense, args.weights_out)
        print(f"{args.weights_out}: {info['blobs']} parameter blobs of {info['layers']} layers "
              f"(convolutionalized InnerProducts reshaped)", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    write_prototxt(dense, args.output, input_shapes=shapes, header=header)
    final = dense.infer_shapes(shapes or {})
    last = dense.layers[-1].top_names[0]
    print(f"{args.output}: {len(dense.layers)} layers, dense from {args.start}, {last} "
          f"{'x'.join(map(str, final[last]))}", file=sys.stderr)
    return 0


def cmd_vectors(args) -> int:
    import numpy as np

    from .vectors import write_vectors

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    n = write_vectors(args.output, count=args.count, seed=args.seed, dtype=dtype, ops=args.ops,
                      hard=not args.no_hard)
    print(f"wrote {n} cases ({args.dtype}) to {args.output}")
    return 0


TASKS = ("segmentation", "classification", "regression", "localization")
DEMO_DESCRIPTION = """\
The paper's experiments at small scale, on real handwritten digits (scikit-learn's, shipped in its
wheel: nothing is downloaded).  Default task, segmentation (section 3.1): scenes of 32x32 pixels with
one to three digits, 11 classes (background + 10 digits); a small FCN-8s-style net trained from
scratch (baseline); its dense version (pool3's stride set to 1) checked exactly equivalent (E1, E2);
then, from the same start, the baseline fine-tuned further (the fair control) and the dense net
fine-tuned as long; the dense net's parameters carried back (dpoa).  Prints mean IU and pixel
accuracy of the four, writes OUT/results.json and OUT/predictions.png.  The other tasks (sections
3.2-3.4: classification, regression of the digit's size, unsupervised localization) write
OUT/results.json with their own metric and a picture (predictions.png; masks.png for localization)."""


def _default_backend() -> str:
    try:
        from numba import cuda

        return "cuda" if cuda.is_available() else "numba"
    except Exception:   # no CUDA driver at all
        return "numba"


def cmd_demo(args) -> int:
    backend = args.backend or _default_backend()
    progress = not args.no_progress
    try:
        if args.task == "segmentation":
            from . import demo

            demo.run(out=args.out, backend=backend, quick=args.quick, progress=progress)
        else:
            import importlib

            task = importlib.import_module(f"econv.tasks.{args.task}")
            task.run(out=args.out, backend=backend, quick=args.quick, progress=progress)
    except ImportError as e:
        print(f"econv demo: {e}", file=sys.stderr)
        return 2
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
    p.add_argument("--count", type=int, default=34, help="random cases per op (default 34)")
    p.add_argument("--ops", nargs="+", choices=["conv2d", "deconv2d", "pool2d"],
                   help="only these ops (default: all three, forward and backward)")
    p.add_argument("--no-hard", action="store_true",
                   help="leave out the 17 named hard cases (est, ceil overhang, AVE divisor, ties...)")
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
    p.add_argument("--strict", action="store_true", help=STRICT_HELP)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "densify", help="write the dense equivalent of a prototxt (eConv/ePool) as prototxt",
        description=DENSIFY_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prototxt")
    p.add_argument("--start", required=True, help="the pooling (or strided convolution) layer whose "
                                                  "stride becomes 1")
    p.add_argument("-o", "--output", help="prototxt to write (atomically); default: stdout")
    p.add_argument("--input-shape", help="N,C,H,W of the (single) input written into the dense net; "
                                         "default: the prototxt's")
    p.add_argument("--weights", help="the original's .caffemodel or .caffemodel.h5 (needed for "
                                     "--weights-out)")
    p.add_argument("--weights-out", metavar="H5", help="also write the dense net's parameters in "
                   "Caffe's HDF5 layout (InnerProducts reshaped to their convolutions)")
    p.add_argument("--strict", action="store_true", help=STRICT_HELP)
    p.add_argument("--fc-pad", action="store_true",
                   help="pad the convolutionalized InnerProducts 'same' ((k-1)/2; VGG fc6: 3), in the "
                        "original too")
    p.set_defaults(func=cmd_densify)

    p = sub.add_parser(
        "demo", help="the main job: FCN-8s on digit scenes, baseline vs dense vs dpoa (mean IU)",
        description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default="segmentation",
                   help="which of the paper's experiments (default: segmentation, section 3.1)")
    p.add_argument("--out", default="demo_out", help="folder for results.json and the pictures "
                                                     "(default: demo_out)")
    p.add_argument("--backend", choices=["numpy", "numba", "cuda"], default=None,
                   help="kernels for conv/pool: numba (CPU, the default) or cuda (the default when a "
                        "GPU is present), or the NumPy reference (slow)")
    p.add_argument("--quick", action="store_true", help="a smaller net and data (about a minute)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

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
