"""The published voc-fcn8s definitions (tests/data/fcn, shelhamer/fcn.berkeleyvision.org @ 1305c73)
with weights written the way FCN's net surgery leaves them: random convolutions and the bilinear
kernel on the diagonal of every Deconvolution (``surgery.interp``).

``layers(kind, narrow=16, size=64)``: the file's layers as read by caffe_import, the Python data
layer of train/val replaced by Inputs (``data`` 1x3xHxW, ``label`` 1x1xHxW), every VGG convolution
and fc6/fc7 narrowed ``narrow`` times (the geometry, names, ``param`` and crop offsets stay as
published; the score layers keep their 21 classes).  ``weights(layers)`` the caffemodel's contents.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from caffe_import import read_prototxt
from reference import Net
from reference.upsampling import diagonal_bilinear

FCN8S = Path(__file__).resolve().parents[1] / "data" / "fcn" / "voc-fcn8s"
NARROWED = ("conv", "fc6", "fc7")


def layers(kind: str = "deploy", narrow: int = 16, size: int = 64) -> list[dict]:
    specs = copy.deepcopy(read_prototxt(FCN8S / f"{kind}.prototxt")["layer"])
    out = []
    for spec in specs:
        if spec["type"] == "Python":          # the SBDD/VOC data layer: its tops become Inputs
            out.append({"name": "data", "type": "Input", "top": ["data"],
                        "input_param": {"shape": [{"dim": [1, 3, size, size]}]}})
            out.append({"name": "label", "type": "Input", "top": ["label"],
                        "input_param": {"shape": [{"dim": [1, 1, size, size]}]}})
            continue
        if spec["type"] == "Input":
            spec["input_param"] = {"shape": [{"dim": [1, 3, size, size]}]}
        if spec["type"] == "Convolution" and spec["name"].startswith(NARROWED):
            cp = spec["convolution_param"]
            cp["num_output"] = max(1, cp["num_output"] // narrow)
        out.append(spec)
    return out


def weights(specs, seed: int = 0) -> dict:
    """``{layer: [arrays]}``: He-scaled normals for convolutions (score layers too, so the skips
    matter), biases small normals, Deconvolutions bilinear on the diagonal (float32, as a caffemodel
    stores them)."""
    rng = np.random.default_rng(seed)
    net = Net(specs)
    out = {}
    for layer in net.layers:
        if not layer.blobs:
            continue
        if layer.type == "Deconvolution":
            out[layer.name] = [diagonal_bilinear(layer.blobs[0].shape, layer.group, np.float32)]
            continue
        w = layer.blobs[0]
        fan_in = int(np.prod(w.shape[1:]))
        arrays = [(rng.normal(size=w.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)]
        arrays += [(0.1 * rng.normal(size=b.shape)).astype(np.float32) for b in layer.blobs[1:]]
        out[layer.name] = arrays
    return out


def caffemodel(specs, path, seed: int = 0) -> dict:
    """Write ``weights(specs)`` as a binary caffemodel at ``path`` (the econv encoder)."""
    from caffe_import.encode import write_message

    w = weights(specs, seed)
    write_message(path, {"name": "voc-fcn8s", "layer": [
        {"name": name, "type": next(s["type"] for s in specs if s["name"] == name), "blobs": arrays}
        for name, arrays in w.items()]}, "NetParameter")
    return w
