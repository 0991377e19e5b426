"""Every BVLC layer type added for issue 13 parses from prototxt (the field numbers and enums of
caffe.proto, via caffe_import.schema), builds into a reference.Net and runs forward and backward;
V1 nets name the same types with the LayerType enum."""

import numpy as np
import pytest

from caffe_import import load_net, read_prototxt

NET = """
name: "bvlc_layers"
force_backward: true
layer { name: "in" type: "Input" top: "data" top: "label" top: "seq" top: "cont" top: "idx" top: "sel"
        top: "H" top: "ids"
  input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } shape { dim: 3 dim: 2 dim: 4 }
                shape { dim: 3 dim: 2 } shape { dim: 3 } shape { dim: 2 dim: 1 } shape { dim: 3 dim: 3 }
                shape { dim: 2 dim: 5 } } }
layer { name: "prelu" type: "PReLU" bottom: "data" top: "p"
        prelu_param { channel_shared: false filler { type: "constant" value: 0.1 } } }
layer { name: "elu" type: "ELU" bottom: "p" top: "p" elu_param { alpha: 0.5 } }
layer { name: "abs" type: "AbsVal" bottom: "p" top: "abs" }
layer { name: "bnll" type: "BNLL" bottom: "abs" top: "bnll" }
layer { name: "exp" type: "Exp" bottom: "bnll" top: "exp" exp_param { base: 2 scale: 0.1 shift: 0.5 } }
layer { name: "log" type: "Log" bottom: "exp" top: "log" log_param { base: 10 scale: 1 shift: 1 } }
layer { name: "clip" type: "Clip" bottom: "log" top: "clip" clip_param { min: -1 max: 1 } }
layer { name: "swish" type: "Swish" bottom: "clip" top: "swish" swish_param { beta: 2 } }
layer { name: "thr" type: "Threshold" bottom: "swish" top: "thr" threshold_param { threshold: 0.1 } }
layer { name: "mvn" type: "MVN" bottom: "swish" top: "mvn"
        mvn_param { normalize_variance: true across_channels: true eps: 1e-6 } }
layer { name: "bvec" type: "Parameter" top: "bvec" parameter_param { shape { dim: 3 } } }
layer { name: "bias" type: "Bias" bottom: "mvn" bottom: "bvec" top: "bias" bias_param { axis: 1 } }
layer { name: "pool" type: "Pooling" bottom: "bias" top: "pool" top: "mask"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "relu" type: "ReLU" bottom: "pool" top: "pos" }
layer { name: "sto" type: "Pooling" bottom: "pos" top: "sto"
        pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 } }
layer { name: "spp" type: "SPP" bottom: "bias" top: "spp" spp_param { pyramid_height: 2 pool: AVE } }
layer { name: "i2c" type: "Im2col" bottom: "bias" top: "cols"
        convolution_param { kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "slice" type: "Slice" bottom: "spp" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 3 } }
layer { name: "tile" type: "Tile" bottom: "s1" top: "tiled" tile_param { axis: 1 tiles: 2 } }
layer { name: "red" type: "Reduction" bottom: "tiled" top: "red"
        reduction_param { operation: SUMSQ axis: 1 coeff: 0.5 } }
layer { name: "ip" type: "InnerProduct" bottom: "s2" top: "score"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" top: "per_class"
        accuracy_param { top_k: 2 ignore_label: -1 } }
layer { name: "argmax" type: "ArgMax" bottom: "score" top: "am" argmax_param { out_max_val: true top_k: 2 } }
layer { name: "info" type: "InfogainLoss" bottom: "score" bottom: "label" bottom: "H" top: "info"
        loss_param { normalization: FULL } infogain_loss_param { axis: 1 } }
layer { name: "hinge" type: "HingeLoss" bottom: "score" bottom: "label" top: "hinge"
        hinge_loss_param { norm: L2 } }
layer { name: "tgt" type: "Parameter" top: "tgt" parameter_param { shape { dim: 2 dim: 3 } } }
layer { name: "xent" type: "SigmoidCrossEntropyLoss" bottom: "score" bottom: "tgt" top: "xent"
        loss_param { normalization: BATCH_SIZE } }
layer { name: "soft" type: "Softmax" bottom: "score" top: "prob" }
layer { name: "mlog" type: "MultinomialLogisticLoss" bottom: "prob" bottom: "label" top: "mlog" }
layer { name: "pair" type: "Slice" bottom: "s2" top: "pa" top: "pb" slice_param { slice_dim: 1 } }
layer { name: "contrast" type: "ContrastiveLoss" bottom: "pa" bottom: "pb" bottom: "sel" top: "contrast"
        contrastive_loss_param { margin: 2 legacy_version: true } }
layer { name: "filter" type: "Filter" bottom: "score" bottom: "sel" top: "kept" }
layer { name: "reidx" type: "BatchReindex" bottom: "score" bottom: "idx" top: "reidx" }
layer { name: "embed" type: "Embed" bottom: "ids" top: "emb"
        embed_param { num_output: 4 input_dim: 10 bias_term: true weight_filler { type: "uniform" } } }
layer { name: "lstm" type: "LSTM" bottom: "seq" bottom: "cont" top: "lstm"
        recurrent_param { num_output: 5 weight_filler { type: "uniform" min: -0.1 max: 0.1 } } }
layer { name: "rnn" type: "RNN" bottom: "lstm" bottom: "cont" top: "rnn"
        recurrent_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "rnnloss" type: "Reduction" bottom: "rnn" top: "rnnloss" loss_weight: 1
        reduction_param { operation: SUMSQ } }
layer { name: "silence" type: "Silence" bottom: "thr" bottom: "mask" bottom: "am" }
"""


def test_every_new_type_parses_builds_and_runs():
    net_dict = read_prototxt(NET)
    pool = next(layer for layer in net_dict["layer"] if layer["name"] == "sto")
    assert pool["pooling_param"]["pool"] == "STOCHASTIC"
    red = next(layer for layer in net_dict["layer"] if layer["name"] == "red")
    assert red["reduction_param"] == {"operation": "SUMSQ", "axis": 1, "coeff": 0.5}
    net = load_net(NET, dtype=np.float64)
    rng = np.random.default_rng(0)
    blobs = net.forward(data=rng.normal(size=(2, 3, 8, 8)), label=np.array([0.0, 2.0]),
                        seq=rng.normal(size=(3, 2, 4)), cont=np.array([[0.0, 0], [1, 1], [1, 0]]),
                        idx=np.array([1.0, 0, 1]), sel=np.array([[1.0], [0.0]]), H=np.eye(3),
                        ids=rng.integers(0, 10, size=(2, 5)).astype(float))
    shapes = {k: v.shape for k, v in blobs.items()}
    assert shapes["mask"] == shapes["pool"] == (2, 3, 4, 4)
    assert shapes["sto"] == (2, 3, 2, 2)
    assert shapes["spp"] == (2, 15) and shapes["s1"] == (2, 3) and shapes["tiled"] == (2, 6)
    assert shapes["cols"] == (2, 27, 4, 4) and shapes["red"] == (2,)
    assert shapes["am"] == (2, 2, 2) and shapes["per_class"] == (3,) and shapes["kept"] == (1, 3)
    assert shapes["emb"] == (2, 5, 4) and shapes["lstm"] == (3, 2, 5) and shapes["rnn"] == (3, 2, 2)
    losses = ["info", "hinge", "xent", "mlog", "contrast"]
    layers = {layer.name: layer for layer in net.layers}
    assert all(layers[n].loss_weights[0] == 1.0 for n in losses)
    assert np.isfinite(net.loss)
    from reference.coord_map import CoordMap, coord_maps        # what `econv info` prints
    maps = coord_maps(net)
    assert maps["cols"] == CoordMap((3, 3), (2, 2), (0, 0))     # Im2col is a 3x3/2 pad-1 window
    assert maps["bvec"] == CoordMap((1, 1), (1, 1), (0, 0))     # Parameter: no bottom
    diffs = net.backward()
    assert np.abs(diffs["data"]).sum() > 0 and np.isfinite(diffs["data"]).all()
    assert np.abs(net.param_diffs["bvec"][0]).sum() > 0         # a Parameter top's gradient
    assert np.abs(net.param_diffs["tgt"][0]).sum() == 0          # a label bottom gets none
    assert [d.shape for d in net.param_diffs["lstm"]] == [(20, 4), (20,), (20, 5)]
    assert np.abs(net.param_diffs["lstm"][2]).sum() > 0           # W_hc: cont is 1 from t = 1


V1_NET = """
name: "v1"
input: "x" input_dim: 2 input_dim: 4 input_dim: 1 input_dim: 1
input: "label" input_dim: 2 input_dim: 1 input_dim: 1 input_dim: 1
layers { name: "abs" type: ABSVAL bottom: "x" top: "abs" }
layers { name: "bnll" type: BNLL bottom: "abs" top: "bnll" }
layers { name: "exp" type: EXP bottom: "bnll" top: "exp" exp_param { scale: 0.1 } }
layers { name: "mvn" type: MVN bottom: "exp" top: "mvn" }
layers { name: "slice" type: SLICE bottom: "mvn" top: "a" top: "b" slice_param { slice_dim: 1 } }
layers { name: "thr" type: THRESHOLD bottom: "a" top: "thr" }
layers { name: "argmax" type: ARGMAX bottom: "b" top: "am" }
layers { name: "acc" type: ACCURACY bottom: "a" bottom: "label" top: "acc" }
layers { name: "hinge" type: HINGE_LOSS bottom: "a" bottom: "label" top: "hinge" }
layers { name: "xent" type: SIGMOID_CROSS_ENTROPY_LOSS bottom: "a" bottom: "b" top: "xent" }
layers { name: "im2col" type: IM2COL bottom: "x" top: "cols" convolution_param { kernel_size: 1 } }
layers { name: "quiet" type: SILENCE bottom: "thr" bottom: "am" bottom: "cols" }
"""


def test_v1_layer_type_enums_build():
    net = load_net(V1_NET, dtype=np.float64)
    assert [layer.type for layer in net.layers][1:] == [
        "AbsVal", "BNLL", "Exp", "MVN", "Slice", "Threshold", "ArgMax", "Accuracy", "HingeLoss",
        "SigmoidCrossEntropyLoss", "Im2col", "Silence"]
    blobs = net.forward(x=np.arange(8.0).reshape(2, 4, 1, 1) / 8,
                        label=np.array([1.0, 0.0]).reshape(2, 1, 1, 1))
    assert blobs["acc"].shape == () and blobs["a"].shape == (2, 2, 1, 1)
    assert np.isfinite(net.loss)


INFOGAIN_NET = """
layer { name: "in" type: "Input" top: "score" top: "label"
        input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "info" type: "InfogainLoss" bottom: "score" bottom: "label" top: "loss"
        infogain_loss_param { source: "%s" } include { phase: TRAIN } }
"""


def test_infogain_source_file_is_read_by_caffe_import(tmp_path):
    from caffe_import import FormatError
    from caffe_import.encode import array_to_blob, write_message
    h = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.25, 2.0]], np.float32)
    path = tmp_path / "H.binaryproto"
    write_message(path, array_to_blob(h.reshape(1, 1, 3, 3)), "BlobProto")
    net = load_net(INFOGAIN_NET % path, phase="train", dtype=np.float64)
    assert [layer.type for layer in net.layers] == ["Input", "Parameter", "InfogainLoss"]
    np.testing.assert_array_equal(net.params["info_infogain"][0].reshape(3, 3), h)
    assert net.layer("info_infogain").lr_mult(0) == 0
    score, label = np.log([[1.0, 2.0, 1.0], [3.0, 1.0, 1.0]]), np.array([0.0, 2.0])
    net.forward(score=score, label=label)
    # p rows [1/4, 1/2, 1/4] and [3/5, 1/5, 1/5]; VALID over 2 positions
    expected = -(np.log(0.25) + 0.5 * np.log(0.5) + 0.25 * np.log(0.6) + 0.25 * np.log(0.2)
                 + 2 * np.log(0.2)) / 2
    assert abs(net.loss - expected) < 1e-12
    missing = tmp_path / "missing.binaryproto"
    assert load_net(INFOGAIN_NET % missing, phase="test").layer_names == ["in"]   # not read in TEST
    with pytest.raises(FormatError, match="not a file"):
        load_net(INFOGAIN_NET % missing, phase="train")
