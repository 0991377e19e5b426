"""OpenCV's dnn module (4.x) reading the Caffe files itself: ``cv2.dnn.readNetFromCaffe``.

OpenCV names a layer's outputs by the layer: ``net.forward(["conv1", "relu1"])`` gives the output of
layer ``conv1`` (before the in-place ReLU) and of layer ``relu1``.  :func:`run` asks for every layer
by name, so the keys of its result are layer names.

Layer fusion is switched off (``net.enableFusion(False)``): with fusion, OpenCV folds a ReLU or a
BatchNorm/Scale into the preceding convolution and the convolution's own output no longer exists, so
the per-layer comparison would see the fused value under the convolution's name.  The final outputs
are the same with fusion (``fusion=True`` checks that).  OpenCV 5.x removed the Caffe importer; the
4.x series (``opencv-python-headless<5``) has it.
"""

from __future__ import annotations

import numpy as np

NAME = "opencv"
NAMING = "layer"        # its outputs are named by layer (econv.compare.resolve)
INSTALL_HINT = 'pip install "econv[opencv]"  (that is opencv-python-headless<5: 5.x has no Caffe importer)'


def available() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "dnn") and hasattr(cv2.dnn, "readNetFromCaffe")


def version() -> str:
    import cv2
    return cv2.__version__


def run(prototxt_path, weights_path, inputs, want=None, fusion=False) -> dict:
    """Every layer's first output, keyed by layer name (see the module docstring)."""
    import cv2

    try:
        if weights_path is None:
            net = cv2.dnn.readNetFromCaffe(str(prototxt_path))
        else:
            net = cv2.dnn.readNetFromCaffe(str(prototxt_path), str(weights_path))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        net.enableFusion(bool(fusion))
        names = list(net.getLayerNames())
        for name, value in inputs.items():
            net.setInput(np.ascontiguousarray(value, dtype=np.float32), name)
        asked = [n for n in (want if want is not None else names) if n in names]
        for extra in net.getUnconnectedOutLayersNames():
            if extra not in asked:
                asked.append(extra)
        outs = net.forward(asked)
    except cv2.error as e:
        message = " ".join(str(e).split())
        raise RuntimeError(f"OpenCV {cv2.__version__}: {message}") from None
    return {name: np.asarray(out) for name, out in zip(asked, outs)}
