"""``econv``: one command, one subcommand per job.  ``econv <command> --help`` explains each."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from ._args import INPUT_SHAPE_HELP, parse_input_shapes  # noqa: F401  (subcommands import it here)

DESCRIPTION = """\
econv: a from-scratch reference engine for dense, equivalent CNNs (eConv / ePool, "Dense CNN
Learning with Equivalent Mappings"), with Caffe-exact NumPy layers (the oracle), Numba kernels and a
Caffe model importer."""

EXIT_STATUS = """\
exit status (the same for every command):
  0    success
  1    a check failed: `verify` found the dense net not equivalent, `demo` its start check
  2    bad usage or bad input: unknown options, a file that cannot be read or is malformed, a net
       or parameter econv refuses, an output path that cannot be written; nothing is written
  130  interrupted (Ctrl-C): one line `econv <command>: interrupted`, no partial output"""

EPILOG = """\
The main job: `econv demo` (the paper's segmentation experiment at small scale, on built-in data).
Python API: `import reference` (the NumPy oracle), `import caffe_import`; see README.md.

""" + EXIT_STATUS


def _net_and_shapes(args, phase="test"):
    """The prototxt's NetParameter dict and the ``--input-shape`` overrides, checked against its
    inputs (Input tops and data-layer tops of ``phase``), and the names of the declared Inputs."""
    from caffe_import import read_prototxt
    from caffe_import.inputs import declared_inputs

    net_dict = read_prototxt(args.prototxt)
    shapes = parse_input_shapes(args.input_shape, declared_inputs(net_dict, phase))
    declared = {t for spec in net_dict.get("layer", []) if spec.get("type") == "Input"
                for t in spec.get("top", [])}
    return net_dict, shapes, declared


def _load(args, weights=None, dtype=None, phase="test"):
    """``(net, input_shapes)``: the net with the data layers' overridden tops made Inputs at load, and
    the overrides of declared Inputs, which the caller applies (a net whose InnerProducts fix the
    input size is densified at its declared size and only written with the new one)."""
    import numpy as np

    net_dict, shapes, declared = _net_and_shapes(args, phase)
    net = _load_with_weights(args, net_dict, weights, phase=phase, dtype=dtype or np.float32,
                             input_shapes={k: v for k, v in shapes.items() if k not in declared})
    return net, {k: v for k, v in shapes.items() if k in declared}


def _at_input_shapes(net, shapes):
    """``(net, None)`` with ``net`` rebuilt at the Input ``shapes`` (a dense FCN's masks and crops are
    then derived for them); ``(net, shapes)`` unchanged when an InnerProduct fixes the input size:
    the caller densifies or exports at the declared size and writes the new shapes only."""
    from reference.net import with_input_shapes

    if not shapes:
        return net, None
    try:
        return with_input_shapes(net, shapes), None
    except ValueError:
        return net, shapes


def _densify_or_explain(net, start, fc_pad=0):
    """``densify(net, start)``; when a Crop cannot fit every fragment, the error lists input sizes that
    fit (computed) and how to pass one."""
    from reference.dense import CropFitError, densify, fitting_input_sizes

    try:
        return densify(net, start, fc_pad=fc_pad)
    except CropFitError as e:
        name = net.input_names[0]
        found = fitting_input_sizes(net, start, name, fc_pad=fc_pad)
        if not found["best"]:
            raise ValueError(f"{e}; no input size within 32 pixels of the declared one fits") from None
        h, w = found["best"]
        base = net.blob_shapes[name]
        same = [t for t in net.input_names if len(net.blob_shapes[t]) == 4
                and net.blob_shapes[t][2:] == base[2:]]            # the label goes with the data
        example = " ".join(f"--input-shape {t}={','.join(map(str, net.blob_shapes[t][:2] + (h, w)))}"
                           for t in same)
        raise ValueError(f"{e}.  Sizes of {name!r} that fit every fragment: H in "
                         f"{', '.join(map(str, found['h']))}; W in {', '.join(map(str, found['w']))}; "
                         f"e.g. {example}") from None


def _label_inputs(net) -> dict:
    """``{input: classes}`` for the inputs read only as labels by loss layers (their value range is
    the channel count of the loss's first bottom): verify feeds them valid integer labels."""
    shapes = net.blob_shapes
    readers = {t: [] for t in net.input_names}
    for layer in net.layers:
        for i, b in enumerate(layer.bottom_names):
            if b in readers:
                readers[b].append((layer, i))
    labels = {}
    for t, uses in readers.items():
        if uses and all(layer.is_loss and i in layer.label_bottoms for layer, i in uses):
            labels[t] = min(int(shapes[layer.bottom_names[0]][1]) for layer, _ in uses)
    return labels


def _random_inputs(net, seed: int) -> dict:
    """Seeded inputs for every net input: standard normals, integer labels in [0, classes) for the
    label inputs of loss layers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = _label_inputs(net)
    shapes = net.blob_shapes
    return {name: rng.integers(0, labels[name], size=shapes[name]).astype(np.float64) if name in labels
            else rng.normal(size=shapes[name]) for name in net.input_names}


def cmd_info(args) -> int:
    from caffe_import import load_net
    from reference.coord_map import coord_maps

    net_dict, input_shapes, _ = _net_and_shapes(args, args.phase)
    net = load_net(net_dict, phase=args.phase, input_shapes=input_shapes)
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


def _load_with_weights(args, prototxt, weights, **kwargs):
    """``load_net(prototxt, weights, strict=args.strict)``; a weights mismatch warning is printed as
    one line ``econv <cmd>: warning: ...`` (``--strict`` makes it an error)."""
    import warnings

    from caffe_import import WeightsMismatchWarning, load_net

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeightsMismatchWarning)
        net = load_net(prototxt, weights, strict=getattr(args, "strict", False), **kwargs)
    for w in caught:
        if issubclass(w.category, WeightsMismatchWarning):
            print(f"econv {args.command}: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return net


def cmd_verify(args) -> int:
    import numpy as np

    from reference.fragments import check_equivalence
    from reference.net import with_input_shapes

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    net, shapes = _load(args, args.weights, dtype)
    if shapes:
        net = with_input_shapes(net, shapes)
    inputs = _random_inputs(net, args.seed)
    dense = _densify_or_explain(net, args.start)
    report = check_equivalence(net, dense, inputs, fragments=not args.e1_only)
    labels = _label_inputs(net)
    if labels:
        print("label inputs fed integer labels: " + ", ".join(f"{t} in [0, {c})" for t, c in labels.items()))
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
Dense FCNs add two econv layer types: EDeconvolution (the equivalent deconvolution; Deconvolution's
convolution_param plus `grid: E`, the equivalent stride of its output) and Mask (in place, zeroes the
positions past each fragment's end: `mask_param { step valid_h valid_w size }`).  FCN's final fixed
bilinear upsampling (recognised from its weights: the bilinear kernel on the group diagonal, as FCN's
net surgery writes it) is rebuilt for the dense grid as `<name>_dense`.

--input-shape NAME=N,C,H,W (repeatable) builds the net at that size before densifying (crops and
masks are derived for it; when a Crop cannot hold every fragment, the error lists sizes that fit). A
net whose InnerProducts fix the input size is densified at the prototxt's shape and written with the
new one: its InnerProducts are convolutionalized at the prototxt's own shape, so their kernels fit
the trained weights (VGG-16 at 256x256: fc8 8x8). --fc-pad pads those convolutions "same", (k-1)/2
per axis (VGG-16's 7x7 fc6 gets 3, the 1x1 fc7/fc8 none), in the original as well: more predictions
(VGG-16 at 256x256, pool4: 32x32), of which those whose fc6 window misses the padding equal the
unpadded net's. No weights are read unless --weights is given: the dense net's parameters are the
original's by layer name, a convolutionalized InnerProduct's weights reshaped (O, C*h*w) -> (O, C,
h, w) in C order (--weights-out writes them). Exit status 2, and no file written, when the prototxt
cannot be read or a layer cannot be densified."""


def _last_on_grid(dense):
    """The last N,C,H,W blob that has an equivalent grid (after FCN's rebuilt upsampling none has)."""
    for layer in reversed(dense.layers):
        for t in layer.top_names:
            if dense.grids.get(t, ((0, 0), (1, 1))) is not None and len(dense.blob_shapes[t]) == 4:
                return t
    return dense.layers[0].top_names[0]


def _densify_header(args, net, dense) -> str:
    epools = [layer for layer in dense.layers if layer.type == "Pooling" and
              (layer.est != (1, 1) or layer.pad_end != (0, 0))]
    last = _last_on_grid(dense)
    step = dense.grid(last)[1]
    lines = [f"written by econv densify --start {args.start}{' --fc-pad' if args.fc_pad else ''} "
             f"from {args.prototxt}",
             f"the dense equivalent of {net.name or 'the net'}: {last}[..., {step[0]}*i, {step[1]}*j] "
             f"is the original's {last}[..., i, j]",
             "ePool layers use the econv fields est/pad_end in pooling_param, unknown to Caffe: "
             + (", ".join(f"{p.name} (est {p.est[0]}x{p.est[1]}, pad_end {p.pad_end[0]}x{p.pad_end[1]})"
                          for p in epools) or "none"),
             "eConv layers are Caffe convolutions with dilation"]
    edeconvs = [layer for layer in dense.layers if layer.type == "EDeconvolution"]
    masks = [layer for layer in dense.layers if layer.type == "Mask"]
    if edeconvs:
        lines.append("EDeconvolution layers (econv's equivalent deconvolution, unknown to Caffe) carry the "
                     "econv field grid: E_h E_w in convolution_param, the equivalent stride of their "
                     "output: " + ", ".join(f"{d.name} (grid {d.grid[0]}x{d.grid[1]})" for d in edeconvs))
    if masks:
        lines.append("Mask layers (econv, unknown to Caffe) zero the positions past each fragment's end: "
                     "mask_param { step valid_h valid_w size }, one valid length per phase, for an input "
                     "of exactly this size: " + ", ".join(m.name for m in masks))
    rebuilt = [layer.name for layer in dense.layers if layer.name.endswith("_dense")]
    if rebuilt:
        lines.append("rebuilt for the dense grid (fixed bilinear upsampling, not equivalent, no grid): "
                     + ", ".join(rebuilt))
    if args.fc_pad:
        original = {s["name"]: s for s in dense.dense_info["original_specs"]}
        pads = [f"{layer.name} pad {cp.get('pad_h', 0)}x{cp.get('pad_w', 0)}" for layer in net.layers
                if layer.type == "InnerProduct" and original[layer.name]["type"] == "Convolution"
                for cp in [original[layer.name]["convolution_param"]]]
        lines.append("--fc-pad: InnerProducts convolutionalized with padding, in the original too: "
                     + ", ".join(pads))
    return "\n".join(lines)


def cmd_densify(args) -> int:
    import contextlib

    from caffe_import import format_prototxt, write_prototxt
    from caffe_import.atomic import atomic_output

    if args.weights_out and not args.weights:
        raise ValueError("--weights-out needs --weights (the original's trained parameters)")
    net, shapes = _at_input_shapes(*_load(args, args.weights))
    dense = _densify_or_explain(net, args.start, fc_pad="same" if args.fc_pad else 0)
    if shapes:
        dense.infer_shapes(shapes)        # a clear error naming the layer if the shape does not fit
    header = _densify_header(args, net, dense)
    text = format_prototxt(dense, input_shapes=shapes, header=header)   # refuses before writing
    # every output goes to a temporary file first (each atomic_output checks its folder on entry);
    # the renames happen only once all of them are written: one bad path, nothing written
    with contextlib.ExitStack() as outputs:
        tmp_weights = args.weights_out and outputs.enter_context(atomic_output(args.weights_out))
        tmp_text = args.output and outputs.enter_context(atomic_output(args.output))
        if tmp_weights:
            from caffe_import import write_hdf5_weights

            info = write_hdf5_weights(dense, tmp_weights)
        if tmp_text:
            write_prototxt(dense, tmp_text, input_shapes=shapes, header=header)
    if args.weights_out:
        print(f"{args.weights_out}: {info['blobs']} parameter blobs of {info['layers']} layers "
              f"(convolutionalized InnerProducts reshaped)", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    final = dense.infer_shapes(shapes or {})
    last = dense.layers[-1].top_names[0]
    print(f"{args.output}: {len(dense.layers)} layers, dense from {args.start}, {last} "
          f"{'x'.join(map(str, final[last])) or 'scalar'}", file=sys.stderr)
    return 0


def cmd_vectors(args) -> int:
    import numpy as np

    from .vectors import write_vectors

    dtype = {"float32": np.float32, "float64": np.float64}[args.dtype]
    n = write_vectors(args.output, count=args.count, seed=args.seed, dtype=dtype, ops=args.ops,
                      hard=not args.no_hard)
    print(f"wrote {n} cases ({args.dtype}) to {args.output}")
    return 0


EXPORT_ONNX_DESCRIPTION = """\
Write PROTOTXT (with WEIGHTS) as an ONNX model (float32, opset 19, static shapes) that follows
Caffe's rules exactly, written atomically to -o OUT.  Pooling keeps Caffe's ceil sizes, clip rule and
AVE divisor (explicit Pad + floor-mode pooling + a divisor correction, not the converters' floor and
end-padding trick); convolutions keep group and dilation; Deconvolution is ConvTranspose with Caffe's
own weight layout; LRN, BatchNorm (scale factor blob, eps), Scale, Crop, Eltwise coefficients,
InnerProduct axis/transpose map one to one.  --dense-from L exports the dense net (densify at L:
eConv as Conv dilations, ePool as dilated pooling with its end padding, the FCN's equivalent
deconvolutions and validity masks).  Names: a blob's final value keeps its name; a value that a later
in-place layer overwrites is named blob@layer (--all-blobs makes every one a graph output).  Loss and
data layers are refused (econv deploy writes the deploy net) unless --skip-losses.  Exit status 2, no
file written, when a layer cannot be exported; caffe_import/onnx_writer.py has the full table."""


def cmd_export_onnx(args) -> int:
    from caffe_import.onnx_writer import export_onnx

    net, shapes = _at_input_shapes(*_load(args, args.weights))
    if args.dense_from:
        net = _densify_or_explain(net, args.dense_from)
    try:
        info = export_onnx(net, args.output, input_shapes=shapes,
                           all_blobs=args.all_blobs, skip_losses=args.skip_losses,
                           pooling=args.pooling)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print(f"{args.output}: {info['nodes']} ONNX nodes, inputs {', '.join(info['inputs'])}, "
          f"{len(info['outputs'])} outputs ({', '.join(info['outputs'][-3:])})", file=sys.stderr)
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
    from .demo import CheckFailed

    backend = args.backend or _default_backend()
    progress = not args.no_progress
    try:
        if args.task == "segmentation":
            from . import demo

            demo.run(out=args.out, backend=backend, quick=args.quick, progress=progress, skips=args.skips)
        else:
            import importlib

            task = importlib.import_module(f"econv.tasks.{args.task}")
            task.run(out=args.out, backend=backend, quick=args.quick, progress=progress)
    except ImportError as e:
        print(f"econv demo: error: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"econv demo: check failed: {e}", file=sys.stderr)
        return 1
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
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W", help=INPUT_SHAPE_HELP)
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
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W", help=INPUT_SHAPE_HELP)
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
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                   help=INPUT_SHAPE_HELP + "; the dense net is built (masks, crops) for it")
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
        "export-onnx", help="write a Caffe model as ONNX, Caffe's rules mapped faithfully",
        description=EXPORT_ONNX_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prototxt")
    p.add_argument("weights", nargs="?", help=".caffemodel or .caffemodel.h5 (default: the fillers' "
                                              "values)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write (atomically)")
    p.add_argument("--dense-from", metavar="LAYER", help="export the dense net, densified at LAYER")
    p.add_argument("--input-shape", action="append", metavar="NAME=N,C,H,W",
                   help="shape of an input (repeatable; N,C,H,W alone for a one-input net); default: "
                        "the prototxt's")
    p.add_argument("--all-blobs", action="store_true",
                   help="every blob write a graph output (blob, blob@layer), for layer-by-layer checks")
    p.add_argument("--skip-losses", action="store_true",
                   help="leave loss layers and the label inputs only they read out instead of refusing")
    p.add_argument("--pooling", choices=["explicit", "native"], default="explicit",
                   help="explicit (default): Pad + floor pooling + divisor fix, exact everywhere; native: "
                        "ONNX's ceil_mode/pads/count_include_pad=1 as converters write it, so the runtime's "
                        "own pooling rules decide (see docs/RUNTIMES.md, onnxruntime)")
    p.set_defaults(func=cmd_export_onnx)

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
    p.add_argument("--skips", choices=["fixed", "learnable"], default="fixed",
                   help="segmentation: the skips' upsamplings fixed bilinear (lr_mult 0, as the published "
                        "voc-fcn8s; default) or learnable from a bilinear start")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    from .fcn_cli import add_parsers as add_fcn_parsers

    add_fcn_parsers(sub)

    from .compare_cli import add_parsers as add_compare_parsers

    add_compare_parsers(sub)

    from numba_kernels.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one econv command; returns its exit status (:data:`EXIT_STATUS`).  Ctrl-C in any command
    ends it with one line and status 130, without a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"econv {command}: interrupted" if command else "econv: interrupted", file=sys.stderr)
        return 130


def _main(argv) -> int:
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
