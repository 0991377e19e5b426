"""Caffe's net upgrades (V0 -> V1 -> V2, input fields, BatchNorm), on NetParameter dicts.

Applied in Caffe's order (``UpgradeNetAsNeeded``, CAFFE_FACTS section 4) to prototxt and
caffemodel alike:

1. V0 -> V1 when a ``layers`` entry embeds a V0 ``layer``: "padding" layers are folded into
   the next conv/pool layer's pad, V0 type strings become V1 enum names, the flat V0 fields
   move into the matching ``*_param`` messages.
2. Data-transform upgrade: for V1 DATA / IMAGE_DATA / WINDOW_DATA layers, scale, mean_file,
   crop_size and mirror move from the data parameter into ``transform_param``.
3. V1 -> V2 when ``layers`` is non-empty (an error if ``layer`` is also present): enum types
   become strings, blobs_lr / weight_decay / param names / blob_share_mode become ParamSpecs.
4. ``input`` + ``input_shape`` / ``input_dim`` become an Input layer named "input" placed
   first; input names without shapes (old caffemodels) are dropped.
5. BatchNorm layers declaring exactly three ``param`` get lr_mult = decay_mult = 0.
"""

from __future__ import annotations

from .errors import FormatError

V1_TYPE_TO_V2 = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

V0_TYPE_TO_V1 = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}

SOLVER_TYPES = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad",
                "RMSPROP": "RMSProp", "ADADELTA": "AdaDelta", "ADAM": "Adam"}

# V0 flat field -> list of (V0 layer types, V1 sub-message, V1 field, repeated in V1).
# A field used with another layer type is ignored, as Caffe does (it only logs it).
_V0_MOVES = {
    "num_output": [(("conv",), "convolution_param", "num_output", False),
                   (("innerproduct",), "inner_product_param", "num_output", False)],
    "biasterm": [(("conv",), "convolution_param", "bias_term", False),
                 (("innerproduct",), "inner_product_param", "bias_term", False)],
    "weight_filler": [(("conv",), "convolution_param", "weight_filler", False),
                      (("innerproduct",), "inner_product_param", "weight_filler", False)],
    "bias_filler": [(("conv",), "convolution_param", "bias_filler", False),
                    (("innerproduct",), "inner_product_param", "bias_filler", False)],
    "pad": [(("conv",), "convolution_param", "pad", True),
            (("pool",), "pooling_param", "pad", False)],
    "kernelsize": [(("conv",), "convolution_param", "kernel_size", True),
                   (("pool",), "pooling_param", "kernel_size", False)],
    "group": [(("conv",), "convolution_param", "group", False)],
    "stride": [(("conv",), "convolution_param", "stride", True),
               (("pool",), "pooling_param", "stride", False)],
    "pool": [(("pool",), "pooling_param", "pool", False)],
    "dropout_ratio": [(("dropout",), "dropout_param", "dropout_ratio", False)],
    "local_size": [(("lrn",), "lrn_param", "local_size", False)],
    "alpha": [(("lrn",), "lrn_param", "alpha", False)],
    "beta": [(("lrn",), "lrn_param", "beta", False)],
    "k": [(("lrn",), "lrn_param", "k", False)],
    "source": [(("data",), "data_param", "source", False),
               (("hdf5_data",), "hdf5_data_param", "source", False),
               (("images",), "image_data_param", "source", False),
               (("window_data",), "window_data_param", "source", False),
               (("infogain_loss",), "infogain_loss_param", "source", False)],
    "batchsize": [(("data",), "data_param", "batch_size", False),
                  (("hdf5_data",), "hdf5_data_param", "batch_size", False),
                  (("images",), "image_data_param", "batch_size", False),
                  (("window_data",), "window_data_param", "batch_size", False)],
    "rand_skip": [(("data",), "data_param", "rand_skip", False),
                  (("images",), "image_data_param", "rand_skip", False)],
    "shuffle_images": [(("images",), "image_data_param", "shuffle", False)],
    "new_height": [(("images",), "image_data_param", "new_height", False)],
    "new_width": [(("images",), "image_data_param", "new_width", False)],
    "concat_dim": [(("concat",), "concat_param", "concat_dim", False)],
    "det_fg_threshold": [(("window_data",), "window_data_param", "fg_threshold", False)],
    "det_bg_threshold": [(("window_data",), "window_data_param", "bg_threshold", False)],
    "det_fg_fraction": [(("window_data",), "window_data_param", "fg_fraction", False)],
    "det_context_pad": [(("window_data",), "window_data_param", "context_pad", False)],
    "det_crop_mode": [(("window_data",), "window_data_param", "crop_mode", False)],
    "hdf5_output_param": [(("hdf5_output",), "hdf5_output_param", None, False)],
}
# V0 fields that go to transform_param whatever the layer type.
_V0_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size",
                 "mirror": "mirror"}

_DATA_PARAM_OF = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                  "WINDOW_DATA": "window_data_param"}


def _layer_label(i: int, layer: dict) -> str:
    name = layer.get("name")
    return f"layer {i} ({name!r})" if name else f"layer {i}"


# --------------------------------------------------------------------------- V0 -> V1

def _fold_padding(net: dict) -> list[dict]:
    """Caffe's UpgradeV0PaddingLayers: drop "padding" layers, moving their pad forward."""
    layers = net.get("layers", [])
    last_top = {name: -1 for name in net.get("input", [])}
    out: list[dict] = []
    for i, conn in enumerate(layers):
        v0 = conn.get("layer", {})
        if v0.get("type") != "padding":
            out.append({**conn, "layer": dict(v0), "bottom": list(conn.get("bottom", []))})
        for j, blob in enumerate(conn.get("bottom", [])):
            if blob not in last_top:
                raise FormatError(f"V0 net: unknown blob {blob!r} is input to "
                                  f"{_layer_label(i, v0)}", None,
                                  "an input or the top of an earlier layer")
            src_idx = last_top[blob]
            if src_idx == -1:
                continue
            src = layers[src_idx]
            if src.get("layer", {}).get("type") != "padding":
                continue
            if v0.get("type") not in ("conv", "pool"):
                raise FormatError(f"V0 net: padding layer feeds {_layer_label(i, v0)} of type "
                                  f"{v0.get('type')!r}", None, "a conv or pool layer")
            if (len(conn.get("bottom", [])) != 1 or len(src.get("bottom", [])) != 1
                    or len(src.get("top", [])) != 1):
                raise FormatError(f"V0 net: padding into {_layer_label(i, v0)} must be a "
                                  f"single-blob chain", None, "one bottom and one top")
            out[-1]["layer"]["pad"] = src["layer"].get("pad", 0)
            out[-1]["bottom"][j] = src["bottom"][0]
        for blob in conn.get("top", []):
            last_top[blob] = i
    return out


def _v0_layer_to_v1(conn: dict, index: int) -> dict:
    """Caffe's UpgradeV0LayerParameter for one ``layers`` entry."""
    v1: dict = {}
    if "bottom" in conn:
        v1["bottom"] = list(conn["bottom"])
    if "top" in conn:
        v1["top"] = list(conn["top"])
    v0 = conn.get("layer")
    if v0 is None:
        return v1
    if "name" in v0:
        v1["name"] = v0["name"]
    vtype = v0.get("type", "")
    if "type" in v0:
        if vtype not in V0_TYPE_TO_V1:
            raise FormatError(f"V0 net: unknown layer type {vtype!r} in "
                              f"{_layer_label(index, v0)}", None,
                              "one of " + ", ".join(sorted(V0_TYPE_TO_V1)))
        v1["type"] = V0_TYPE_TO_V1[vtype]
    for key in ("blobs", "blobs_lr", "weight_decay"):
        if key in v0:
            v1[key] = list(v0[key])
    for key, moves in _V0_MOVES.items():
        if key not in v0:
            continue
        for types, param, target, repeated in moves:
            if vtype in types:
                if target is None:
                    v1[param] = v0[key]
                else:
                    v1.setdefault(param, {})[target] = [v0[key]] if repeated else v0[key]
                break
    for key, target in _V0_TRANSFORM.items():
        if key in v0:
            v1.setdefault("transform_param", {})[target] = v0[key]
    return v1


def _upgrade_v0(net: dict) -> dict:
    folded = _fold_padding(net)
    out: dict = {}
    if "name" in net:
        out["name"] = net["name"]
    out["layers"] = [_v0_layer_to_v1(conn, i) for i, conn in enumerate(folded)]
    for key in ("input", "input_dim", "force_backward"):
        if key in net:
            out[key] = net[key]
    return out


# ------------------------------------------------------------------- data transform

def _upgrade_data_transform(net: dict) -> None:
    for layer in net.get("layers", []):
        param_name = _DATA_PARAM_OF.get(layer.get("type"))
        if param_name is None or param_name not in layer:
            continue
        param = dict(layer[param_name])
        moved = {k: param.pop(k) for k in ("scale", "mean_file", "crop_size", "mirror")
                 if k in param}
        if moved:
            layer[param_name] = param
            layer["transform_param"] = {**layer.get("transform_param", {}), **moved}


# --------------------------------------------------------------------------- V1 -> V2

def _v1_layer_to_v2(v1: dict, index: int) -> dict:
    layer: dict = {}
    if "name" in v1:
        layer["name"] = v1["name"]
    if "type" in v1:
        vtype = v1["type"]
        if vtype not in V1_TYPE_TO_V2:
            raise FormatError(f"unknown V1 layer type {vtype!r} in {_layer_label(index, v1)}",
                              None, "a V1 LayerType name")
        layer["type"] = V1_TYPE_TO_V2[vtype]
    for key in ("bottom", "top", "include", "exclude", "blobs"):
        if key in v1:
            layer[key] = list(v1[key])
    params: list[dict] = []

    def spec(i):
        while len(params) <= i:
            params.append({})
        return params[i]

    for i, name in enumerate(v1.get("param", [])):
        spec(i)["name"] = name
    for i, mode in enumerate(v1.get("blob_share_mode", [])):
        spec(i)["share_mode"] = mode
    for i, lr in enumerate(v1.get("blobs_lr", [])):
        spec(i)["lr_mult"] = lr
    for i, wd in enumerate(v1.get("weight_decay", [])):
        spec(i)["decay_mult"] = wd
    if params:
        layer["param"] = params
    if "loss_weight" in v1:
        layer["loss_weight"] = list(v1["loss_weight"])
    for key, value in v1.items():
        if key.endswith("_param"):
            layer[key] = value
    return layer


def _upgrade_v1(net: dict) -> dict:
    if net.get("layer"):
        raise FormatError("the net has both 'layer' (V2) and 'layers' (V1) entries", None,
                          "only one of them; convert the V1 'layers' by hand")
    out = {k: v for k, v in net.items() if k not in ("layers", "layer")}
    out["layer"] = [_v1_layer_to_v2(v1, i) for i, v1 in enumerate(net["layers"])]
    return out


# ---------------------------------------------------------------------- input, BN

def _upgrade_input(net: dict) -> None:
    inputs = net.get("input", [])
    shapes = net.get("input_shape", [])
    dims = net.get("input_dim", [])
    if inputs and (shapes or dims):
        shape_list = []
        for i, _ in enumerate(inputs):
            if shapes:
                if i >= len(shapes):
                    raise FormatError(f"input {inputs[i]!r} has no input_shape", None,
                                      f"{len(inputs)} input_shape entries, got {len(shapes)}")
                shape_list.append({"dim": list(shapes[i].get("dim", []))})
            else:
                if 4 * i + 4 > len(dims):
                    raise FormatError(f"input {inputs[i]!r} has no input_dim", None,
                                      f"4 input_dim values per input ({4 * len(inputs)}), "
                                      f"got {len(dims)}")
                shape_list.append({"dim": list(dims[4 * i:4 * i + 4])})
        layer = {"name": "input", "type": "Input", "top": list(inputs),
                 "input_param": {"shape": shape_list}}
        net["layer"] = [layer] + list(net.get("layer", []))
    for key in ("input", "input_shape", "input_dim"):
        net.pop(key, None)


def _upgrade_batchnorm(net: dict) -> None:
    layers = net.get("layer", [])
    for i, layer in enumerate(layers):
        if layer.get("type") == "BatchNorm" and len(layer.get("param", [])) == 3:
            layer = dict(layer)
            layer["param"] = [{**p, "lr_mult": 0.0, "decay_mult": 0.0} for p in layer["param"]]
            layers[i] = layer


def upgrade_net(net: dict) -> dict:
    """Return the V2 form of a NetParameter dict (the argument is not modified).

    The result holds ``"layer": [...]`` (always present) and never ``layers``, ``input``,
    ``input_dim`` or ``input_shape``; other top-level fields (name, force_backward, state,
    debug_info) are kept.  Raises FormatError for nets Caffe refuses to upgrade.
    """
    net = dict(net)
    if any("layer" in conn for conn in net.get("layers", [])):
        net = _upgrade_v0(net)      # like Caffe, keeps only name, input(s), force_backward
    if net.get("layers"):
        net["layers"] = [dict(layer) for layer in net["layers"]]
        _upgrade_data_transform(net)
        net = _upgrade_v1(net)
    else:
        net.pop("layers", None)
    net["layer"] = list(net.get("layer", []))
    _upgrade_input(net)
    _upgrade_batchnorm(net)
    return net


def upgrade_solver(solver: dict) -> dict:
    """Caffe's solver upgrade: the deprecated ``solver_type`` enum becomes ``type``.

    Raises FormatError when both are given, as Caffe does.
    """
    solver = dict(solver)
    if "solver_type" in solver:
        if "type" in solver:
            raise FormatError("the solver gives both 'solver_type' (deprecated) and 'type'",
                              None, "only one of them")
        solver["type"] = SOLVER_TYPES[solver.pop("solver_type")]
    return solver
