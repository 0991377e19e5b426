"""The four nets of the Caffe fixtures (``tests/data/caffe``) as Python layer lists (what their net.prototxt says),
and a helper that loads a fixture's io.h5.  Fillers are omitted: the weights come from io.h5."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Written by real Caffe (see tests/data/caffe/README.md) and shipped in the repository, so that a clean
# clone tests against it with nothing else on disk.
FIXTURES = Path(__file__).resolve().parent / "data" / "caffe"


def L(name, type_, bottom, top, **params):
    return {"name": name, "type": type_, "bottom": list(np.atleast_1d(bottom)) if bottom else [],
            "top": [top] if isinstance(top, str) else list(top), **params}


def data(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": dims}]}}


def conv(name, bottom, **p):
    return L(name, "Convolution", bottom, name, convolution_param=p)


CONV_POOL = [
    data("data", [2, 3, 17, 19]),
    conv("conv1", "data", num_output=4, pad=1, kernel_size=3),
    L("relu1", "ReLU", "conv1", "conv1"),
    L("pool1", "Pooling", "conv1", "pool1", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
    conv("conv2", "pool1", num_output=6, pad=2, kernel_size=3, dilation=2),
    L("relu2", "ReLU", "conv2", "conv2"),
    L("pool2", "Pooling", "conv2", "pool2",
      pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}),
    conv("conv3", "pool2", num_output=4, kernel_size=3, group=2, stride=2),
    L("fc", "InnerProduct", "conv3", "fc", inner_product_param={"num_output": 5}),
]

FCN_SKIP = [
    data("data", [1, 3, 37, 41]),
    data("label", [1, 1, 37, 41]),
    conv("conv1", "data", num_output=6, pad=20, kernel_size=3),
    L("relu1", "ReLU", "conv1", "conv1"),
    L("pool1", "Pooling", "conv1", "pool1", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
    conv("conv2", "pool1", num_output=8, pad=1, kernel_size=3),
    L("relu2", "ReLU", "conv2", "conv2"),
    L("pool2", "Pooling", "conv2", "pool2", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
    conv("fc6", "pool2", num_output=10, kernel_size=3),
    L("relu6", "ReLU", "fc6", "fc6"),
    L("drop6", "Dropout", "fc6", "fc6", dropout_param={"dropout_ratio": 0.5}),
    conv("score_fr", "fc6", num_output=5, kernel_size=1),
    L("upscore2", "Deconvolution", "score_fr", "upscore2",
      convolution_param={"num_output": 5, "bias_term": False, "kernel_size": 4, "stride": 2}),
    conv("score_pool1", "pool1", num_output=5, kernel_size=1),
    L("score_pool1c", "Crop", ["score_pool1", "upscore2"], "score_pool1c",
      crop_param={"axis": 2, "offset": [1, 2]}),
    L("fuse", "Eltwise", ["upscore2", "score_pool1c"], "fuse", eltwise_param={"operation": "SUM"}),
    L("upscore", "Deconvolution", "fuse", "upscore",
      convolution_param={"num_output": 5, "bias_term": False, "kernel_size": 4, "group": 5,
                         "stride": 2}),
    L("score", "Crop", ["upscore", "data"], "score", crop_param={"axis": 2, "offset": 17}),
    L("loss", "SoftmaxWithLoss", ["score", "label"], "loss",
      loss_param={"ignore_label": 255, "normalization": "VALID"}),
]

MISC = [
    data("data", [2, 8, 9, 9]),
    data("target", [2, 24, 9, 9]),
    L("lrn_a", "LRN", "data", "lrn_a", lrn_param={"local_size": 5, "alpha": 0.1, "beta": 0.75, "k": 2.0}),
    L("lrn_w", "LRN", "data", "lrn_w",
      lrn_param={"local_size": 3, "alpha": 0.1, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"}),
    L("bn", "BatchNorm", "data", "bn", batch_norm_param={"use_global_stats": True}),
    L("sc", "Scale", "bn", "sc", scale_param={"bias_term": True}),
    L("cat", "Concat", ["lrn_a", "lrn_w", "sc"], "cat", concat_param={"axis": 1}),
    L("th", "TanH", "cat", "th"),
    L("sg", "Sigmoid", "cat", "sg"),
    L("prod", "Eltwise", ["th", "sg"], "prod", eltwise_param={"operation": "PROD"}),
    L("mx", "Eltwise", ["th", "sg"], "mx", eltwise_param={"operation": "MAX"}),
    L("pw", "Power", "mx", "pw", power_param={"power": 2.0, "scale": 0.5, "shift": 0.25}),
    L("sum", "Eltwise", ["prod", "pw"], "sum", eltwise_param={"operation": "SUM", "coeff": [1.0, -0.5]}),
    L("sm", "Softmax", "sum", "sm", softmax_param={"axis": 1}),
    L("loss", "EuclideanLoss", ["sm", "target"], "loss"),
]

V1_LEGACY = [
    data("data", [1, 3, 15, 15]),
    conv("conv1", "data", num_output=4, pad=1, kernel_size=3),
    L("relu1", "ReLU", "conv1", "conv1"),
    L("pool1", "Pooling", "conv1", "pool1", pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2}),
    L("fc", "InnerProduct", "pool1", "fc", inner_product_param={"num_output": 3}),
]

NETS = {"conv_pool": CONV_POOL, "fcn_skip": FCN_SKIP, "misc": MISC, "v1_legacy": V1_LEGACY}


def load_io(name):
    """``{"inputs", "blobs", "diffs", "params", "param_diffs", "seeded"}`` from a fixture's io.h5."""
    import h5py

    with h5py.File(FIXTURES / name / "io.h5", "r") as f:
        flat = lambda g: {k: g[k][()] for k in g}  # noqa: E731
        return {
            "inputs": flat(f["inputs"]), "blobs": flat(f["blobs"]), "diffs": flat(f["diffs"]),
            "params": {ln: [f["params"][ln][str(i)][()] for i in range(len(f["params"][ln]))]
                       for ln in f["params"]},
            "param_diffs": {ln: [f["param_diffs"][ln][str(i)][()]
                                 for i in range(len(f["param_diffs"][ln]))] for ln in f["param_diffs"]},
            "seeded": str(f.attrs["seeded_top_diffs"]).split(),
        }


def rel_err(ours, caffe) -> float:
    """max |ours - caffe| / max(1, max |caffe|): the fixtures' tolerance measure."""
    caffe = np.asarray(caffe, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == caffe.shape, (ours.shape, caffe.shape)
    if caffe.size == 0:
        return 0.0
    return float(np.abs(ours - caffe).max() / max(1.0, np.abs(caffe).max()))
