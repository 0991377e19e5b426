"""``--input-shape NAME=N,C,H,W`` (repeatable) on info/verify/densify, and parse_input_shapes."""

import numpy as np
import pytest

from caffe_import import load_net, write_hdf5_weights
from econv._args import parse_input_shapes
from econv.cli import main, parse_input_shapes as from_cli

TWO_INPUTS = """
layer { name: "in" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 1 dim: 2 dim: 8 dim: 8 } shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "ab" }
layer { name: "conv" type: "Convolution" bottom: "ab" top: "c"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } } }
layer { name: "pool" type: "Pooling" bottom: "c" top: "p" pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "p" top: "y"
        convolution_param { num_output: 1 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } } }
"""

TRAIN_VAL = """
layer { name: "data" type: "HDF5Data" top: "data" top: "label"
        hdf5_data_param { source: "/nonexistent/list.txt" batch_size: 8 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 4 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def test_parse_input_shapes():
    assert from_cli is parse_input_shapes
    assert parse_input_shapes(None, ["data"]) == {}
    assert parse_input_shapes(["1,3,5,5"], ["data"]) == {"data": (1, 3, 5, 5)}
    two = parse_input_shapes(["a=1x2x3x3", "b=1,3,3,3"], ["a", "b"])
    assert two == {"a": (1, 2, 3, 3), "b": (1, 3, 3, 3)}
    for texts, message in [(["1,2,3,3"], "this net has 2 inputs \\(a, b\\); write NAME=N,C,H,W"),
                           (["z=1,2"], "no input named 'z' \\(this net's: a, b\\)"),
                           (["a=1,2", "a=1,3"], "input 'a' given twice"),
                           (["a=1,0,3"], "--input-shape '1,0,3': expected positive integers")]:
        with pytest.raises(ValueError, match=message):
            parse_input_shapes(texts, ["a", "b"])


@pytest.fixture
def files(tmp_path):
    two = tmp_path / "two.prototxt"
    two.write_text(TWO_INPUTS)
    tv = tmp_path / "train_val.prototxt"
    tv.write_text(TRAIN_VAL)
    return two, tv


def test_info_with_two_named_inputs(files, capsys):
    two, _ = files
    assert main(["info", str(two), "--input-shape", "a=2,2,12,10", "--input-shape", "b=2,3,12,10"]) == 0
    rows = {line.split()[2]: line.split()[3] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"a": "2x2x12x10", "b": "2x3x12x10", "ab": "2x5x12x10", "c": "2x2x12x10",
                    "p": "2x2x6x5", "y": "2x1x6x5"}


@pytest.mark.parametrize("args, message", [
    (["--input-shape", "1,2,8,8"], "this net has 2 inputs (a, b); write NAME=N,C,H,W"),
    (["--input-shape", "q=1,2,8,8"], "no input named 'q'"),
    (["--input-shape", "a=1,2,9,9"], "layer 'cat' (Concat)"),
])
def test_info_input_shape_errors_exit_2(files, capsys, args, message):
    two, _ = files
    assert main(["info", str(two)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("econv info: error: ") and message in err and err.count("\n") == 1


def test_info_replaces_a_data_layer_by_inputs(files, capsys):
    _, tv = files
    assert main(["info", str(tv)]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "--input-shape data=... --input-shape label=..." in err
    assert main(["info", str(tv), "--input-shape", "data=3,5", "--input-shape", "label=3"]) == 0
    out = capsys.readouterr().out
    assert " ip " in out and "3x4" in out


def test_verify_and_densify_with_two_named_inputs(files, tmp_path, capsys):
    two, _ = files
    weights = tmp_path / "w.h5"
    write_hdf5_weights(load_net(str(two)), str(weights))
    shapes = ["--input-shape", "a=1,2,12,12", "--input-shape", "b=1,3,12,12"]
    assert main(["verify", str(two), str(weights), "--start", "pool"] + shapes) == 0
    out_path = tmp_path / "dense.prototxt"
    assert main(["densify", str(two), "--start", "pool", "-o", str(out_path)] + shapes) == 0
    dense = load_net(str(out_path))
    assert dense.blob_shapes["a"] == (1, 2, 12, 12) and dense.blob_shapes["b"] == (1, 3, 12, 12)
    assert dense.blob_shapes["y"] == (1, 1, 12, 12)
    np.testing.assert_equal(sorted(dense.input_names), ["a", "b"])


def test_info_on_a_net_that_starts_with_a_data_layer(tmp_path, capsys):
    path = tmp_path / "dummy.prototxt"
    path.write_text("""
layer { name: "z" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "c"
        convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "c" top: "p" pooling_param { kernel_size: 2 stride: 2 } }
""")
    assert main(["info", str(path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows[0] == ["z", "DummyData", "data", "2x3x8x8", "1x1", "1x1", "0,0"]
    assert rows[-1] == ["pool", "Pooling", "p", "2x2x3x3", "4x4", "2x2", "1.5,1.5"]
