"""caffe_import.deploy.derive_deploy: the inference net of a train/test prototxt."""

import pytest

from caffe_import import format_prototxt, read_prototxt
from caffe_import.deploy import derive_deploy
from caffe_import.loader import build_net

from .fixture_paths import FIXTURES

TRAIN_VAL = """
name: "lenet"
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        data_param { source: "train_lmdb" batch_size: 64 } }
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TEST }
        data_param { source: "test_lmdb" batch_size: 100 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 10 } }
layer { name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip1" bottom: "label" top: "accuracy"
        include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
layer { name: "silence" type: "Silence" bottom: "label" }
"""


def test_train_val_becomes_a_deploy_net():
    deploy = derive_deploy(read_prototxt(TRAIN_VAL), {"data": (1, 1, 28, 28)})
    layers = deploy["layer"]
    assert [(l["name"], l["type"]) for l in layers] == [("mnist", "Input"), ("ip1", "InnerProduct"),
                                                        ("relu", "ReLU")]
    assert layers[0]["top"] == ["data"]                         # the label top is gone
    assert layers[0]["input_param"] == {"shape": [{"dim": [1, 1, 28, 28]}]}
    assert "include" not in layers[0] and deploy["name"] == "lenet"
    net = build_net(deploy)
    assert net.blob_shapes["ip1"] == (1, 10)
    assert read_prototxt(format_prototxt(deploy)) == deploy     # the writer takes it as it is


def test_a_data_layer_without_shapes_asks_for_input_shape():
    with pytest.raises(ValueError, match=r"mnist.*give --input-shape data=N,C,H,W"):
        derive_deploy(read_prototxt(TRAIN_VAL))
    with pytest.raises(ValueError, match="image is not a blob"):
        derive_deploy(read_prototxt(TRAIN_VAL), {"data": (1, 1, 28, 28), "image": (1, 3, 2, 2)})


def test_dummy_data_states_its_shapes_and_fixture_losses_go():
    text = """
layer { name: "d" type: "DummyData" top: "x" top: "y"
        dummy_data_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } shape { dim: 2 } } }
layer { name: "e" type: "EuclideanLoss" bottom: "x" bottom: "x" top: "l" loss_weight: 2 }
layer { name: "r" type: "ReLU" bottom: "x" top: "r" propagate_down: true }
"""
    deploy = derive_deploy(read_prototxt(text))
    assert deploy["layer"][0] == {"name": "d", "type": "Input", "top": ["x"],
                                  "input_param": {"shape": [{"dim": [2, 3, 4, 4]}]}}
    assert [l["name"] for l in deploy["layer"]] == ["d", "r"] and "propagate_down" not in deploy["layer"][1]


@pytest.mark.parametrize("name, dropped", [("fcn_skip", {"loss", "label"}), ("misc", {"loss", "target"}),
                                           ("conv_pool", set())])
def test_fixture_deploy_nets(name, dropped):
    net = read_prototxt(str(FIXTURES / name / "net.prototxt"))
    deploy = derive_deploy(net)
    before = {l["name"] for l in net["layer"]}
    after = {l["name"] for l in deploy["layer"]}
    assert before - after == dropped and "force_backward" not in deploy
    build_net(deploy)
