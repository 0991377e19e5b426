"""The weights report of load_net / copy_weights: file layers matching nothing and net layers left
without weights are named in a WeightsMismatchWarning (an error with strict=True / --strict);
weights that match no layer at all are always an error (issue 14: another net's caffemodel, or an
empty file, loaded silently as random fillers and `econv verify` said "ok")."""

import warnings

import h5py
import numpy as np
import pytest

import caffe_import as ci
from econv.cli import main

from .fixture_paths import FIXTURES

CONV_POOL = FIXTURES / "conv_pool"
NET = CONV_POOL / "net.prototxt"
WEIGHTS = CONV_POOL / "weights.caffemodel"
PARAM_LAYERS = ["conv1", "conv2", "conv3", "fc"]


@pytest.fixture(autouse=True)
def _fixtures(fixtures):
    return fixtures


def renamed_net(tmp_path, old="conv2", new="conv2_new"):
    text = NET.read_text().replace(f'name: "{old}"', f'name: "{new}"')
    path = tmp_path / "renamed.prototxt"
    path.write_text(text)
    return path


def load_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # a full match warns about nothing
        return ci.load_net(*args, **kwargs)


def test_a_full_match_is_silent_in_both_formats(tmp_path):
    h5 = tmp_path / "w.h5"
    ci.convert(WEIGHTS, h5)
    for weights in (WEIGHTS, h5, CONV_POOL / "weights.caffemodel.h5"):
        net = load_quietly(NET, weights, strict=True)
        assert sorted(net.params) == sorted(PARAM_LAYERS)


def test_renamed_layer_is_named_on_both_sides(tmp_path):
    with pytest.warns(ci.WeightsMismatchWarning) as record:
        net = ci.load_net(renamed_net(tmp_path), WEIGHTS)
    (w,) = [r.message for r in record]
    assert w.unused == ["conv2"] and w.missing == ["conv2_new"] and w.source == str(WEIGHTS)
    assert str(w) == (f"weights {WEIGHTS}: 1 layer(s) of the file match no layer of the net "
                      f"(ignored): 'conv2'; 1 layer(s) of the net with parameters got no weights "
                      f"(they keep their filler values): 'conv2_new'")
    # the layers that did match got their weights
    np.testing.assert_array_equal(net.params["conv1"][0], ci.read_weights(WEIGHTS)["conv1"][0])


def test_strict_makes_the_mismatch_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"'conv2'.*'conv2_new'.*\(strict\)"):
        ci.load_net(renamed_net(tmp_path), WEIGHTS, strict=True)


def test_net_layers_without_weights_in_an_hdf5_file(tmp_path):
    h5 = tmp_path / "partial.h5"
    ci.write_hdf5_weights(ci.load_net(NET, WEIGHTS), h5)
    with h5py.File(h5, "r+") as fh:
        del fh["data/fc"]
    with pytest.warns(ci.WeightsMismatchWarning, match="got no weights .*: 'fc'") as record:
        ci.load_net(NET, h5)
    assert record[0].message.unused == [] and record[0].message.missing == ["fc"]


def test_parameterless_file_layers_are_not_reported(tmp_path):
    # Caffe's caffemodels hold every layer, *_split_* and ReLUs included: nothing is lost there
    source = dict(ci.read_weights(WEIGHTS), relu9=[], data_data_0_split=[])
    load_quietly(NET, source)


def test_another_nets_weights_are_an_error_naming_the_file():
    other = FIXTURES / "misc" / "weights.caffemodel"
    with pytest.raises(ci.FormatError) as info:
        ci.load_net(NET, other)
    err = info.value
    assert err.path == str(other)
    assert "no layer of the net gets weights: none of its 2 layers with blobs ('bn', 'sc')" in str(err)
    assert "'conv1', 'conv2', 'conv3', 'fc'" in str(err)


def test_an_empty_weights_file_is_an_error(tmp_path):
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(ci.FormatError, match="it holds no parameter blobs") as info:
        ci.load_net(NET, empty)
    assert info.value.path == str(empty)


def test_zero_matches_from_a_dict_is_a_value_error():
    with pytest.raises(ValueError, match="^weights: no layer of the net gets weights"):
        ci.load_net(NET, {"other": [np.ones(3, np.float32)]})


def test_shared_parameters_are_not_missing(tmp_path):
    text = """layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 4 } } }
layer { name: "a" type: "InnerProduct" bottom: "d" top: "a" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 4 } }
layer { name: "b" type: "InnerProduct" bottom: "a" top: "b" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 4 } }"""
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    weights = {"a": [w, np.ones(4, np.float32)], "b": []}   # Caffe's HDF5: only the owner's blobs
    net = load_quietly(text, weights, strict=True)
    np.testing.assert_array_equal(net.params["b"][0], w)   # the owner's values, as in Caffe
    np.testing.assert_array_equal(net.params["b"][1], np.ones(4))


def test_load_solver_reports_too(tmp_path):
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{renamed_net(tmp_path)}"\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    with pytest.warns(ci.WeightsMismatchWarning, match="'conv2_new'"):
        ci.load_solver(solver, weights=WEIGHTS, test_nets=False)
    with pytest.raises(ValueError, match="strict"):
        ci.load_solver(solver, weights=WEIGHTS, test_nets=False, strict=True)


@pytest.mark.parametrize("command", ["verify", "densify"])
def test_cli_warns_in_one_line_and_strict_exits_2(tmp_path, capsys, command):
    proto = renamed_net(tmp_path)
    args = ([command, str(proto), str(WEIGHTS)] if command == "verify"
            else [command, str(proto), "--weights", str(WEIGHTS), "-o", str(tmp_path / "d.prototxt")])
    args += ["--start", "pool1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert warning == [f"econv {command}: warning: weights {WEIGHTS}: 1 layer(s) of the file match "
                       f"no layer of the net (ignored): 'conv2'; 1 layer(s) of the net with "
                       f"parameters got no weights (they keep their filler values): 'conv2_new'"]
    assert main(args + ["--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"econv {command}: error: weights {WEIGHTS}:") and "Traceback" not in err


def test_cli_verify_refuses_another_nets_weights(capsys):
    rc = main(["verify", str(NET), str(FIXTURES / "misc" / "weights.caffemodel"), "--start", "pool1"])
    assert rc == 2                                   # it said "ok" with random fillers before
    err = capsys.readouterr().err
    assert err.startswith("econv verify: error: ") and "no layer of the net gets weights" in err
