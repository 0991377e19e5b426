"""Caffe's net upgrades: V0 -> V1 -> V2, input fields, data transform, BatchNorm."""

import pytest

from caffe_import import FormatError, read_prototxt, upgrade_net
from caffe_import.prototxt import parse

V1_NET = """
name: "old"
input: "data"
input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  param: "shared_w" blob_share_mode: PERMISSIVE
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 }
  include { phase: TEST }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "conv1" bottom: "label" top: "loss"
         loss_weight: 2 loss_param { ignore_label: 255 } }
layers { name: "dc" type: DECONVOLUTION bottom: "conv1" top: "dc" }
"""


def test_v1_layers_become_v2_with_param_specs_and_input_layer():
    net = read_prototxt(V1_NET)
    assert set(net) == {"name", "layer"}
    types = [(layer["name"], layer["type"]) for layer in net["layer"]]
    assert types == [("input", "Input"), ("conv1", "Convolution"), ("relu1", "ReLU"),
                     ("loss", "SoftmaxWithLoss"), ("dc", "Deconvolution")]
    assert net["layer"][0] == {"name": "input", "type": "Input", "top": ["data"],
                               "input_param": {"shape": [{"dim": [10, 3, 227, 227]}]}}
    conv = net["layer"][1]
    assert conv["param"] == [
        {"name": "shared_w", "share_mode": "PERMISSIVE", "lr_mult": 1.0, "decay_mult": 1.0},
        {"lr_mult": 2.0, "decay_mult": 0.0}]
    assert conv["include"] == [{"phase": "TEST"}]
    assert conv["convolution_param"] == {"num_output": 96, "kernel_size": [11], "stride": [4]}
    assert conv["bottom"] == ["data"] and conv["top"] == ["conv1"]
    loss = net["layer"][3]
    assert loss["loss_weight"] == [2.0] and loss["loss_param"] == {"ignore_label": 255}


def test_input_shape_and_inputs_without_dims():
    net = upgrade_net({"input": ["a", "b"], "input_shape": [{"dim": [1, 2]}, {"dim": [3]}],
                       "layer": [{"name": "x", "type": "ReLU"}]})
    assert net["layer"][0] == {"name": "input", "type": "Input", "top": ["a", "b"],
                               "input_param": {"shape": [{"dim": [1, 2]}, {"dim": [3]}]}}
    assert net["layer"][1]["name"] == "x"
    # an old caffemodel: input names, no dims -> simply dropped
    assert upgrade_net({"input": ["data"], "layer": []}) == {"layer": []}


def test_bad_input_declarations_are_format_errors():
    with pytest.raises(FormatError, match="input_dim"):
        upgrade_net({"input": ["a", "b"], "input_dim": [1, 2, 3, 4]})
    with pytest.raises(FormatError, match="input_shape"):
        upgrade_net({"input": ["a", "b"], "input_shape": [{"dim": [1]}]})


def test_layer_and_layers_together_is_refused():
    with pytest.raises(FormatError, match="both"):
        read_prototxt("layer { name: 'a' type: 'ReLU' } layers { name: 'b' type: RELU }")


def test_batchnorm_with_three_params_gets_zero_rates():
    net = read_prototxt("layer { name: 'bn' type: 'BatchNorm' param { lr_mult: 1 } "
                        "param { lr_mult: 1 name: 'm' } param { decay_mult: 3 } }"
                        "layer { name: 'bn2' type: 'BatchNorm' param { lr_mult: 1 } }")
    assert net["layer"][0]["param"] == [{"lr_mult": 0.0, "decay_mult": 0.0},
                                        {"lr_mult": 0.0, "name": "m", "decay_mult": 0.0},
                                        {"decay_mult": 0.0, "lr_mult": 0.0}]
    assert net["layer"][1]["param"] == [{"lr_mult": 1.0}]


def test_data_transform_fields_move_into_transform_param():
    net = read_prototxt("layers { name: 'd' type: DATA top: 'data' data_param { source: 'db' "
                        "batch_size: 8 scale: 0.5 mean_file: 'm.binaryproto' crop_size: 227 "
                        "mirror: true } }")
    layer = net["layer"][0]
    assert layer["type"] == "Data"
    assert layer["data_param"] == {"source": "db", "batch_size": 8}
    assert layer["transform_param"] == {"scale": 0.5, "mean_file": "m.binaryproto",
                                        "crop_size": 227, "mirror": True}


V0_NET = """
name: "v0"
input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2
                 biasterm: false blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
                 weight_filler { type: "xavier" } }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 pad: 1 }
         bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.5 beta: 0.25 k: 2 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 10 } bottom: "norm1" top: "fc" }
layers { layer { name: "drop" type: "dropout" dropout_ratio: 0.3 } bottom: "fc" top: "fc" }
layers { layer { name: "src" type: "data" source: "db" batchsize: 16 scale: 0.25
                 cropsize: 5 mirror: true meanfile: "mean" } top: "x" }
"""


def test_v0_net_with_padding_layer_is_folded_and_upgraded():
    net = read_prototxt(V0_NET)
    layers = {layer["name"]: layer for layer in net["layer"]}
    assert [layer["name"] for layer in net["layer"]] == \
        ["input", "conv1", "pool1", "norm1", "fc", "drop", "src"]
    conv = layers["conv1"]
    assert conv["type"] == "Convolution" and conv["bottom"] == ["data"]
    assert conv["convolution_param"] == {"num_output": 4, "kernel_size": [3], "stride": [2],
                                         "bias_term": False, "pad": [2],
                                         "weight_filler": {"type": "xavier"}}
    assert conv["param"] == [{"lr_mult": 1.0, "decay_mult": 1.0},
                             {"lr_mult": 2.0, "decay_mult": 0.0}]
    assert layers["pool1"]["pooling_param"] == {"pool": "AVE", "kernel_size": 2, "stride": 2,
                                                "pad": 1}
    assert layers["norm1"]["lrn_param"] == {"local_size": 3, "alpha": 0.5, "beta": 0.25,
                                            "k": 2.0}
    assert layers["fc"]["inner_product_param"] == {"num_output": 10}
    assert layers["drop"]["dropout_param"] == {"dropout_ratio": pytest.approx(0.3)}
    assert layers["src"]["type"] == "Data"
    assert layers["src"]["data_param"] == {"source": "db", "batch_size": 16}
    assert layers["src"]["transform_param"] == {"scale": 0.25, "crop_size": 5, "mirror": True,
                                                "mean_file": "mean"}
    assert net["layer"][0]["input_param"] == {"shape": [{"dim": [1, 3, 8, 8]}]}


def test_v0_errors():
    with pytest.raises(FormatError, match="unknown layer type"):
        upgrade_net(parse("layers { layer { name: 'a' type: 'frobnicate' } }"))
    with pytest.raises(FormatError, match="unknown blob"):
        upgrade_net(parse("layers { layer { name: 'a' type: 'relu' } bottom: 'nope' }"))
    with pytest.raises(FormatError, match="padding"):
        upgrade_net(parse("input: 'd' layers { layer { name: 'p' type: 'padding' pad: 1 } "
                          "bottom: 'd' top: 'p' } layers { layer { name: 'r' type: 'relu' } "
                          "bottom: 'p' top: 'r' }"))


def test_upgrade_does_not_modify_its_argument():
    original = parse(V1_NET)
    snapshot = repr(original)
    upgrade_net(original)
    assert repr(original) == snapshot


def test_v2_net_passes_through_unchanged():
    text = "name: 'n' layer { name: 'a' type: 'ReLU' bottom: 'x' top: 'x' }"
    assert read_prototxt(text) == {**parse(text)}
