"""onnxruntime through econv's ONNX export (``caffe_import.onnx_writer``), CPU execution provider.

Adapter interface (shared by every runtime in ``econv.runtimes``): ``NAME``, ``INSTALL_HINT``,
``available()``, ``run(prototxt_path, weights_path, inputs, want) -> {name: array}``.

The Caffe files are read by econv (``caffe_import.load_net``), written as ONNX with every blob write
a graph output (``blob`` for a blob's final value, ``blob@layer`` for a value a later in-place layer
overwrites: Note [Blob names] of :mod:`caffe_import.onnx_writer`) and run by onnxruntime.  So a
divergence found here is onnxruntime's reading of a faithful ONNX model of Caffe's rules, not a
converter's mapping.  Loss layers, and the label inputs only they read, are left out.

    from econv.runtimes import onnxruntime as rt
    if rt.available():
        out = rt.run("net.prototxt", "weights.caffemodel", {"data": x}, want=None)
        out["conv1"], out["conv1@conv1"]      # after the in-place ReLU, and the convolution's own
"""

from __future__ import annotations

import numpy as np

NAME = "onnxruntime"
INSTALL_HINT = 'the onnxruntime runtime needs onnx and onnxruntime: pip install "econv[onnx]"'


def available() -> bool:
    """True when both ``onnx`` and ``onnxruntime`` import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _session(model_bytes):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3          # no warnings about unused initializers on stderr
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def run(prototxt_path: str, weights_path: str | None, inputs: dict[str, np.ndarray],
        want: list[str] | None, *, pooling: str = "explicit") -> dict[str, np.ndarray]:
    """Run the net in onnxruntime (float32) on ``inputs``; return ``{onnx output name: array}``.

    ``want``: the output names to return (blob names, ``blob@layer``); None = all of them.  Names in
    ``want`` that the model does not output are left out of the result (the caller reports them).
    Inputs that only loss layers read are accepted and ignored; an input the net lacks, or a missing
    one, is a ValueError.  ``pooling="native"`` exports pooling as a converter would (ONNX's own
    ``ceil_mode``/``pads``/``count_include_pad``), so that onnxruntime's pooling rules are what is
    checked; the default export is exact (Note [Pooling] of caffe_import.onnx_writer).
    """
    from caffe_import import load_net
    from caffe_import.onnx_writer import onnx_names, to_onnx

    if not available():
        raise ImportError(INSTALL_HINT)
    net = load_net(prototxt_path, weights_path)
    unknown = sorted(set(inputs) - set(net.input_names))
    if unknown:
        raise ValueError(f"inputs {unknown} are not inputs of the net (inputs: {net.input_names})")
    shapes = {k: np.shape(v) for k, v in inputs.items()}
    # in memory, not through a file (the same bytes; VGG-16: 1.7 s to serialize, 4.3 s to write)
    model = to_onnx(net, input_shapes=shapes, all_blobs=True, skip_losses=True, check=False,
                    pooling=pooling)
    session = _session(model.SerializeToString())
    del model
    blob_of = {name: blob for name, (blob, _) in onnx_names(net, shapes, skip_losses=True).items()}
    feed = {}
    for i in session.get_inputs():           # "data", or "data@data" when a layer overwrites it
        blob = blob_of.get(i.name, i.name)
        if blob not in inputs:
            raise ValueError(f"input {blob!r} missing (shape {i.shape})")
        feed[i.name] = np.ascontiguousarray(inputs[blob], dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    if want is not None:
        wanted = set(want)
        names = [n for n in names if n in wanted]
    if not names:
        return {}
    return dict(zip(names, session.run(names, feed)))
