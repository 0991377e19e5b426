"""InfogainLoss's ``infogain_loss_param.source``: the matrix file Caffe reads at setup.

Caffe (``infogain_loss_layer.cpp`` 40-47) reads the C x C matrix ``H`` from the binaryproto file named
by ``source`` (a path relative to the working directory, as Caffe opens it) when the layer has only
two bottoms.  The reference engine reads no files, so :func:`attach_infogain_sources` rewrites such a
layer before the Net is built: a ``Parameter`` layer ``<layer>_infogain`` (lr_mult 0: a constant)
is inserted before it and its top becomes the loss layer's third bottom; :func:`fill_infogain` then
copies the matrices into the built Net.  :func:`caffe_import.load_net` does both.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import FormatError
from .readers import read_mean


def attach_infogain_sources(net: dict, included=lambda layer: True) -> tuple[dict, dict]:
    """``(net with the Parameter layers inserted, {parameter layer name: matrix})``; only layers
    for which ``included(layer)`` holds (the phase's layers) have their file read."""
    layers, matrices = [], {}
    names = {layer.get("name") for layer in net.get("layer", [])}
    for layer in net.get("layer", []):
        source = (layer.get("infogain_loss_param") or {}).get("source")
        if layer.get("type") != "InfogainLoss" or len(layer.get("bottom", [])) != 2 or not source \
                or not included(layer):
            layers.append(layer)
            continue
        where = f"layer {layer.get('name', '')!r} (InfogainLoss)"
        if not os.path.isfile(source):
            raise FormatError(f"{where}: infogain_loss_param.source {source!r} is not a file "
                              f"(Caffe opens it relative to the working directory)")
        matrix = read_mean(source)                       # any BlobProto, as a (1, 1, C, C) array
        param = f"{layer.get('name', '')}_infogain"
        if param in names:
            raise FormatError(f"{where}: cannot attach the infogain matrix: a layer named {param!r} "
                              f"exists already")
        rules = {k: layer[k] for k in ("include", "exclude", "phase") if k in layer}
        layers.append({"name": param, "type": "Parameter", "top": [param], **rules,
                       "parameter_param": {"shape": {"dim": list(matrix.shape)}},
                       "param": [{"lr_mult": 0.0, "decay_mult": 0.0}]})
        layers.append({**layer, "bottom": list(layer["bottom"]) + [param]})
        matrices[param] = matrix
    return {**net, "layer": layers}, matrices


def fill_infogain(net, matrices: dict) -> None:
    """Copy each matrix into its Parameter layer of the built ``net`` (layers the phase left out
    are skipped)."""
    present = set(net.layer_names)
    for name, matrix in matrices.items():
        if name in present:
            net.layer(name).blobs[0][...] = np.asarray(matrix, dtype=net.dtype)
