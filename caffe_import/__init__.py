"""Read Caffe-era files without Caffe or protobuf: prototxt (V0/V1/V2), binary caffemodels,
Caffe's HDF5 weights, mean ``.binaryproto`` files and solvers; convert caffemodels to HDF5.

Public API::

    net = load_net("deploy.prototxt", weights="model.caffemodel", phase="test", backend="numpy")
    net = load_net("train_val.prototxt", phase="train")   # data layers: caffe_import.data
    net = load_net(path, input_shapes={"data": (1, 3, 368, 368)})   # override / data -> Input
    solver = load_solver("solver.prototxt")        # a reference.SGDSolver with its train net
    convert("model.caffemodel", "model.caffemodel.h5")   # Caffe's /data/<layer>/<i> layout
    read_prototxt(path_or_text) -> dict            # NetParameter, upgraded to V2
    read_caffemodel(path) -> dict                  # NetParameter, upgraded, blobs as arrays
    read_weights(path) -> {layer: [arrays]}        # caffemodel or HDF5, detected by content
                                                   # (sizes bounded by $ECONV_MAX_BYTES, 4 GiB)
    write_hdf5_weights(net, path)                  # a Net's parameters as /data/<layer>/<i>
    read_mean(path) -> ndarray (1, C, H, W) float32
    read_solver(path_or_text) -> dict              # SolverParameter, upgraded
    format_prototxt(net_or_layers) -> str          # Caffe text (the inverse of read_prototxt)
    write_prototxt(net_or_layers, path)            # the same, written atomically
    export_onnx(net, "model.onnx")                 # ONNX with Caffe's rules (needs econv[onnx])
    upgrade_net(net_dict) -> net_dict              # V0/V1 -> V2, input fields -> Input layer
    FormatError                                    # every malformed file (a ValueError)
    WeightsMismatchWarning                         # weights/net layers that match nothing

Dict form of a message: only the fields present in the file (no defaults filled in;
``schema.default(message, field)`` gives Caffe's default), repeated fields as lists (also
when they occur once), sub-messages as dicts, enums as NAME strings ("MAX", "TEST"),
strings as str, numbers as int/float, bools as bool.  In ``read_caffemodel`` each layer's
``blobs`` is a list of NumPy arrays.  Example layer::

    {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
     "param": [{"lr_mult": 1.0}],
     "convolution_param": {"num_output": 4, "pad": [1], "kernel_size": [3],
                           "weight_filler": {"type": "gaussian", "std": 0.5}},
     "include": [{"phase": "TRAIN"}]}
"""

from .errors import FormatError, WeightsMismatchWarning
from .schema import default
from .upgrade import upgrade_net, upgrade_solver
from .readers import (read_caffemodel, read_mean, read_prototxt, read_solver,
                      read_solverstate)
from .hdf5 import convert, is_hdf5, read_weights, write_hdf5_weights
from .encode import encode, write_message
from .prototxt_writer import format_prototxt, write_prototxt
from .loader import copy_weights, load_net, load_solver
from .onnx_writer import export_onnx

__all__ = [
    "FormatError", "WeightsMismatchWarning", "default", "upgrade_net", "upgrade_solver",
    "read_prototxt", "read_caffemodel", "read_weights", "read_mean", "read_solver",
    "read_solverstate", "convert", "is_hdf5", "write_hdf5_weights", "encode", "write_message",
    "format_prototxt", "write_prototxt",
    "copy_weights", "load_net", "load_solver", "cli_convert", "export_onnx",
]


def cli_convert(argv=None) -> int:
    """``econv convert SRC -o DST`` as a function: returns the exit status (0 ok, 2 bad usage or bad
    input: a malformed or unreadable source, an output that cannot be written; the exit table of
    ``econv --help``; nothing written on failure; Ctrl-C propagates, ``econv`` reports it) and
    prints one summary line or ``econv convert: error: ...`` to stderr."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="econv convert",
        description="Convert a binary .caffemodel (V0/V1/V2) to Caffe's HDF5 weights layout "
                    "(/data/<layer>/<i>), written atomically.")
    parser.add_argument("src", help="the binary .caffemodel to read")
    parser.add_argument("-o", "--output", required=True, help="the .caffemodel.h5 to write")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show a progress bar")
    args = parser.parse_args(argv)
    try:
        info = convert(args.src, args.output, progress=args.progress)
    except (ValueError, OSError) as exc:         # FormatError is a ValueError
        print(f"econv convert: error: {exc}", file=sys.stderr)
        return 2
    mb = info["bytes"] / 1e6
    rate = mb / info["seconds"] if info["seconds"] > 0 else float("inf")
    print(f"{args.output}: {info['layers']} layers, {info['blobs']} blobs, {mb:.1f} MB "
          f"in {info['seconds']:.2f} s ({rate:.0f} MB/s)", file=sys.stderr)
    return 0
