"""The prototxt writer: exact text for a small net, read_prototxt(format_prototxt(x)) == x for every
fixture and a densified VGG net, escapes and special floats, clear errors, atomic file writes."""

import io
import math
import os

import numpy as np
import pytest

from caffe_import import format_prototxt, load_net, read_prototxt, write_prototxt
from reference import Net, densify
from reference.models import vgg16

from .fixture_paths import NETS

SMALL = {
    "name": "small",
    "force_backward": True,
    "layer": [
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 2, 9, 9]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
         "param": [{"lr_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}],
         "convolution_param": {"num_output": 3, "kernel_size": [3], "pad": [1], "dilation": [2],
                               "bias_term": False, "weight_filler": {"type": "gaussian", "std": 0.1}},
         "include": [{"phase": "TEST"}]},
        {"name": "pool1", "type": "Pooling", "bottom": ["conv1"], "top": ["pool1"],
         "pooling_param": {"pool": "AVE", "kernel_size": 2, "est": [2, 2], "pad_end": [2, 2]}},
    ],
}

SMALL_TEXT = """\
# written by a test
name: "small"
force_backward: true
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param {
    shape {
      dim: 1
      dim: 2
      dim: 9
      dim: 9
    }
  }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param {
    lr_mult: 1.0
  }
  param {
    lr_mult: 2.0
    decay_mult: 0.0
  }
  convolution_param {
    num_output: 3
    kernel_size: 3
    pad: 1
    dilation: 2
    bias_term: false
    weight_filler {
      type: "gaussian"
      std: 0.1
    }
  }
  include {
    phase: TEST
  }
}
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "conv1"
  top: "pool1"
  pooling_param {
    pool: AVE
    kernel_size: 2
    est: 2
    est: 2
    pad_end: 2
    pad_end: 2
  }
}
"""


def test_exact_text_of_a_small_net():
    assert format_prototxt(SMALL, header="written by a test") == SMALL_TEXT
    back = read_prototxt(SMALL_TEXT)
    assert back["layer"][1]["convolution_param"]["weight_filler"]["std"] == float(np.float32(0.1))
    assert back["layer"][2]["pooling_param"] == SMALL["layer"][2]["pooling_param"]


@pytest.mark.parametrize("name", NETS)
def test_every_fixture_round_trips(fixtures, name):
    x = read_prototxt(str(fixtures / name / "net.prototxt"))
    text = format_prototxt(x)
    assert read_prototxt(text) == x
    assert format_prototxt(read_prototxt(text)) == text


def test_densified_vgg_round_trips_and_loads_back_equal():
    net = Net(vgg16(widths=(2, 3, 3, 4, 4), fc=(5, 5, 3), input_shape=(1, 3, 64, 72)), seed=3)
    dense = densify(net, "pool3", fc_pad="same")
    text = format_prototxt(dense)
    x = read_prototxt(text)
    assert read_prototxt(format_prototxt(x)) == x
    assert "est: 4" in text and "pad_end: 4" in text and "dilation: 8" in text
    back = load_net(text, weights={k: v for k, v in dense.params.items()})
    assert back.layer_names == dense.layer_names and back.name == dense.name
    assert back.blob_shapes == dense.blob_shapes
    data = np.random.default_rng(0).normal(size=(1, 3, 64, 72))
    got, want = back.forward(data=data), dense.forward(data=data)
    for b in dense.blob_names:
        assert np.array_equal(got[b], want[b]), b


def test_strings_floats_and_weights_round_trip():
    name = 'a "quoted" \\ name\twith\nnewline and é'
    layer = {"name": name, "type": "Power", "bottom": ["x"], "top": ["y"],
             "power_param": {"power": float("inf"), "scale": -1e-30, "shift": 3.4e38},
             "loss_weight": [float("-inf"), 0.1],
             "blobs": [np.array([1.5, -2.25e-300], dtype=np.float64)]}
    text = format_prototxt({"layer": [layer]})
    assert 'name: "a \\"quoted\\" \\\\ name\\twith\\nnewline and \\303\\251"' in text
    back = read_prototxt(text)["layer"][0]
    assert back["name"] == name
    assert back["power_param"] == {"power": math.inf, "scale": float(np.float32(-1e-30)),
                                   "shift": float(np.float32(3.4e38))}
    assert back["loss_weight"] == [-math.inf, float(np.float32(0.1))]
    assert back["blobs"] == [{"shape": {"dim": [2]}, "double_data": [1.5, -2.25e-300]}]
    nan = read_prototxt(format_prototxt([{"name": "n", "type": "Power",
                                          "power_param": {"power": float("nan")}}]))
    assert math.isnan(nan["layer"][0]["power_param"]["power"])


def test_input_shapes_name_and_nets_as_lists():
    text = format_prototxt(SMALL["layer"], name="other", input_shapes={"data": (2, 2, 30, 31)})
    x = read_prototxt(text)
    assert x["name"] == "other"
    assert x["layer"][0]["input_param"] == {"shape": [{"dim": [2, 2, 30, 31]}]}
    assert SMALL["layer"][0]["input_param"] == {"shape": [{"dim": [1, 2, 9, 9]}]}   # not modified
    with pytest.raises(ValueError, match=r"\['label'\] are not tops of Input layers"):
        format_prototxt(SMALL, input_shapes={"label": (1,)})


@pytest.mark.parametrize("layer, message", [
    ({"name": "p", "type": "Pooling", "pooling_param": {"dilation": [2]}},
     r"layer 'p' pooling_param: PoolingParameter has no field 'dilation'"),
    ({"name": "p", "type": "Pooling", "pooling_param": {"pool": ["MAX"]}},
     r"layer 'p' pooling_param pool: .* not repeated"),
    ({"name": "p", "type": "Pooling", "pooling_param": {"pool": "MEDIAN"}},
     r"'MEDIAN' is not one of MAX, AVE"),
    ({"name": "c", "type": "Convolution", "convolution_param": {"num_output": -1}},
     r"num_output: -1 is out of range"),
    ({"name": "c", "type": "Convolution", "convolution_param": {"num_output": 2.5}}, r"expected an integer"),
    ({"name": "c", "type": "Convolution", "convolution_param": {"num_output": "4"}}, r"expected a number"),
    ({"name": "c", "type": "Convolution", "convolution_param": {"bias_term": "yes"}}, r"expected a bool"),
    ({"name": "s", "type": "Shift", "shift_param": {}},
     r"layer 's': LayerParameter has no field 'shift_param'"),
])
def test_what_cannot_be_read_back_is_refused(layer, message):
    with pytest.raises(ValueError, match=message):
        format_prototxt([layer])


def test_file_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "net.prototxt"
    text = write_prototxt(SMALL, path)
    assert path.read_text() == text and read_prototxt(str(path)) == read_prototxt(text)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    buf = io.StringIO()
    assert write_prototxt(SMALL, buf) == text and buf.getvalue() == text

    def interrupted(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_prototxt(SMALL, path, name="changed")
    assert path.read_text() == text                       # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.prototxt"]   # no temporary left
    monkeypatch.undo()
    with pytest.raises(OSError):
        write_prototxt(SMALL, tmp_path / "missing" / "net.prototxt")
    with pytest.raises(ValueError, match="bad"):
        write_prototxt([{"name": "bad", "type": "X", "nope": 1}], tmp_path / "bad.prototxt")
    assert not (tmp_path / "bad.prototxt").exists()
