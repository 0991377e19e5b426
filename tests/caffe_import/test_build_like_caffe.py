"""Nets Caffe builds: a pooling window larger than its input, a loss without a top, legacy fields,
the input_shapes override (several inputs), and one error naming every unsupported thing."""

import numpy as np
import pytest

from caffe_import import FormatError, load_net, read_prototxt
from reference.layers.base import AUTO_TOP
from reference.sizes import pool_out_size


# ---- a pooling window larger than its input ------------------------------------------------------

def test_pool_out_size_of_a_window_larger_than_the_input():
    # Caffe: ceil(float(n + 2p - k) / s) + 1 on a negative span
    assert pool_out_size(1, 2, 2, 0) == 1      # OpenPose's 1x1 placeholder: ceil(-1/2) + 1 = 1
    assert pool_out_size(2, 3, 3, 0) == 1      # ceil(-1/3) + 1 = 1
    assert pool_out_size(2, 5, 2, 1) == 1      # span 2 + 2 - 5 = -1: ceil(-1/2) + 1 = 1
    with pytest.raises(ValueError, match="Caffe's rule gives 0 outputs"):
        pool_out_size(1, 3, 2, 0)              # ceil(-2/2) + 1 = 0: Caffe makes an empty blob
    with pytest.raises(ValueError, match="Caffe's rule gives 0 outputs"):
        pool_out_size(1, 2, 2, 0, round_mode="floor")   # floor(-1/2) + 1 = 0


OPENPOSE_LIKE = """
input: "image" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1
layer { name: "conv1" type: "Convolution" bottom: "image" top: "conv1"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
"""


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_openpose_placeholder_input_builds_and_runs(backend):
    net = load_net(OPENPOSE_LIKE, backend=backend, dtype=np.float64)
    assert net.blob_shapes == {"image": (1, 1, 1, 1), "conv1": (1, 2, 1, 1), "pool1": (1, 2, 1, 1),
                               "pool2": (1, 2, 1, 1)}
    out = net.forward(image=np.full((1, 1, 1, 1), 3.0))
    # one window clipped to the single pixel: MAX and AVE (divisor min(0 + 2, 1 + 0) - 0 = 1) pass it on
    np.testing.assert_array_equal(out["pool1"], out["conv1"])
    np.testing.assert_array_equal(out["pool2"], out["conv1"])


def cuda_backend():
    try:
        import numba_kernels.cuda  # noqa: F401
    except ImportError as e:
        pytest.skip(f"numba.cuda cannot run here: {e}")
    return "cuda"


@pytest.mark.parametrize("backend", ["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_pool_window_larger_than_input_values(backend):
    backend = cuda_backend() if backend == "cuda" else backend
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    layers = ('layer {{ name: "x" type: "Input" top: "x" '
              'input_param {{ shape {{ dim: 1 dim: 1 dim: 2 dim: 2 }} }} }}'
              'layer {{ name: "p" type: "Pooling" bottom: "x" top: "y" pooling_param {{ {} }} }}')
    cases = {"pool: MAX kernel_size: 3 stride: 3": 3.0,            # max of the whole input
             "pool: AVE kernel_size: 3 stride: 3": 6.0 / 4,       # divisor min(3, 2) ** 2 = 4
             "pool: AVE kernel_size: 5 stride: 2 pad: 1": 6.0 / 16}   # [-1, 3) per axis: 4 * 4 taps
    for param, expected in cases.items():
        net = load_net(layers.format(param), backend=backend, dtype=np.float64)
        out = net.forward(x=x)["y"]
        assert out.shape == (1, 1, 1, 1)
        np.testing.assert_allclose(out[0, 0, 0, 0], expected, rtol=1e-15)
        net.backward({"y": np.ones((1, 1, 1, 1))})


# ---- a loss layer without a top -------------------------------------------------------------------

LOSS = """
layer {{ name: "in" type: "Input" top: "x" top: "label"
        input_param {{ shape {{ dim: 2 dim: 3 }} shape {{ dim: 2 }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" {top} }}
"""


def test_loss_without_top_gets_caffes_automatic_top():
    x = np.array([[1.0, 2, 3], [0, -1, 1]])
    label = np.array([2.0, 0])
    with_top = load_net(LOSS.format(top='top: "loss"'), dtype=np.float64)
    without = load_net(LOSS.format(top=""), dtype=np.float64)
    assert AUTO_TOP == "(automatic)" and without.blob_shapes[AUTO_TOP] == ()
    out = without.forward(x=x, label=label)
    ip = out["ip"]
    expected = -np.mean([ip[i, int(label[i])] - np.log(np.exp(ip[i]).sum()) for i in range(2)])
    np.testing.assert_allclose(without.loss, expected, rtol=1e-12)
    with_top.forward(x=x, label=label)
    assert with_top.loss == without.loss
    with_top.backward()
    without.backward()
    np.testing.assert_array_equal(with_top.param_diffs["ip"][0], without.param_diffs["ip"][0])
    assert np.abs(without.param_diffs["ip"][0]).sum() > 0


# ---- every unsupported thing at once ---------------------------------------------------------------

def test_every_unknown_type_and_refused_parameter_in_one_error():
    text = """
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "a" type: "Frobnicate" bottom: "x" top: "a" }
layer { name: "b" type: "Convolution" bottom: "a" top: "b" convolution_param { kernel_size: 3 } }
layer { name: "c" type: "Quux" bottom: "b" top: "c" }
layer { name: "w" type: "WindowData" top: "w" top: "wl" }
"""
    with pytest.raises(ValueError) as e:
        load_net(text)
    msg = str(e.value)
    assert msg.startswith("4 problems: ")
    for part in ["(1) layer 'a': unknown layer type 'Frobnicate'",
                 "(2) layer 'b' (Convolution): convolution_param.num_output is required",
                 "(3) layer 'c': unknown layer type 'Quux'",
                 "(4) layer 'w': unknown layer type 'WindowData' (a data layer; to go on without it"]:
        assert part in msg
    known = msg[msg.index("(known: "):]
    assert "\n" not in msg and all(f" {t}," in known for t in ("BatchNorm", "Concat", "Convolution"))


def test_one_unknown_type_in_many_layers_is_one_problem():
    layers = ['layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }']
    layers += [f'layer {{ name: "f{i}" type: "Frob" bottom: "x" top: "x" }}' for i in range(6)]
    layers += ['layer { name: "g" type: "Quux" bottom: "x" top: "y" }']
    with pytest.raises(ValueError) as e:
        load_net("\n".join(layers))
    assert str(e.value).startswith("2 problems: (1) unknown layer type 'Frob' in 6 layers "
                                   "('f0', 'f1', 'f2', 'f3' and 2 more); (2) layer 'g': unknown layer "
                                   "type 'Quux' (known: ")


def test_every_unknown_field_in_one_error():
    text = """layer { name: "p" type: "Pooling" bottom: "x" top: "y"
  pooling_param { kernel_size: 3 frob_mode: false }
}
layer { name: "q" type: "Interp" frobs: [1, 2] quux_param { zoom_factor: 2 } }
"""
    with pytest.raises(FormatError) as e:
        read_prototxt(text)
    msg = str(e.value)
    assert msg.startswith('2:34: message type "PoolingParameter" has no field named "frob_mode"')
    assert '2 more unknown fields: 4:34: message type "LayerParameter" has no field named "frobs"; ' \
           '4:48: message type "LayerParameter" has no field named "quux_param"' in msg


# ---- input_shapes ----------------------------------------------------------------------------------

TWO_INPUTS = """
layer { name: "in" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "ab" }
layer { name: "conv" type: "Convolution" bottom: "ab" top: "y"
        convolution_param { num_output: 2 kernel_size: 3 weight_filler { type: "gaussian" } } }
layer { name: "extra" type: "Input" top: "c" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
"""


def test_input_shapes_on_a_multi_input_net():
    net = load_net(TWO_INPUTS, input_shapes={"a": (2, 2, 9, 7), "b": [2, 3, 9, 7]})
    assert net.blob_shapes["ab"] == (2, 5, 9, 7) and net.blob_shapes["y"] == (2, 2, 7, 5)
    assert net.blob_shapes["c"] == (1, 1, 4, 4)                 # not named: as declared
    one = load_net(TWO_INPUTS, input_shapes={"c": (3, 1, 2, 2)})
    assert one.blob_shapes["a"] == (1, 2, 4, 4) and one.blob_shapes["c"] == (3, 1, 2, 2)
    out = net.forward(a=np.ones((2, 2, 9, 7)), b=np.ones((2, 3, 9, 7)), c=np.ones((1, 1, 4, 4)))
    assert out["y"].shape == (2, 2, 7, 5)
    with pytest.raises(ValueError, match=r"'d' is not a top of an Input or data layer \(this net's: a, b, c"):
        load_net(TWO_INPUTS, input_shapes={"d": (1, 1)})
    with pytest.raises(ValueError, match=r"layer 'cat' \(Concat\): inputs must agree .*\(1, 3, 4, 4\)"):
        load_net(TWO_INPUTS, input_shapes={"a": (1, 2, 5, 5)})      # b stays 4x4: Concat refuses


def test_input_shapes_turn_data_layers_of_both_phases_into_inputs():
    text = """
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        data_param { source: "/nonexistent/train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
        data_param { source: "/nonexistent/val_lmdb" batch_size: 50 backend: LMDB } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
    with pytest.raises(ValueError, match="data_param.source .* not found.*input_shapes="):
        load_net(text)
    for phase in ("train", "test"):
        net = load_net(text, phase=phase, input_shapes={"data": (2, 1, 3, 3), "label": (2,)})
        assert [layer.type for layer in net.layers] == ["Input", "InnerProduct", "SoftmaxWithLoss"]
        assert net.input_names == ["data", "label"] and net.blob_shapes["ip"] == (2, 10)
    with pytest.raises(ValueError, match="has tops data, label; give a shape for each .*missing: label"):
        load_net(text, input_shapes={"data": (2, 1, 3, 3)})


# ---- legacy fields as Caffe's upgrade accepts them -------------------------------------------------

def test_v1_input_dims_for_two_inputs_and_repeated_blobs_lr():
    net = read_prototxt("""
name: "old"
input: "a" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3
input: "b" input_dim: 1 input_dim: 1 input_dim: 3 input_dim: 3
layers { name: "cat" type: CONCAT bottom: "a" bottom: "b" top: "ab" }
layers { name: "conv" type: CONVOLUTION bottom: "ab" top: "y" blobs_lr: 1 blobs_lr: 2 weight_decay: 1
         weight_decay: 0 convolution_param { num_output: 1 kernel_size: 1 } }
""")
    conv = net["layer"][2]
    assert conv["param"] == [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}]
    built = load_net(net)
    assert built.blob_shapes["ab"] == (1, 3, 3, 3)
    assert [built.layer("conv").lr_mult(i) for i in (0, 1)] == [1.0, 2.0]
