"""convert(): atomic writes, Caffe's layout for every kind of blob, the CLI hook."""

import os

import h5py
import numpy as np
import pytest

import caffe_import as ci
from caffe_import import hdf5 as h5mod


def small_model(path, **blobs):
    layers = [{"name": "data", "type": "Input", "top": ["data"]}]
    for name, arrays in blobs.items():
        layers.append({"name": name, "type": "Convolution", "blobs": arrays})
    ci.write_message(path, {"name": "m", "layer": layers}, "NetParameter")
    return path


def test_convert_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    src = small_model(tmp_path / "m.caffemodel", conv=[np.ones((2, 1, 3, 3), np.float32)],
                      conv2=[np.zeros(4, np.float32)])
    real = h5mod._write_layers

    def failing(path, layers, bar, h5py_module, *flag):
        real(path, layers[:2], bar, h5py_module)          # a half-written file exists now
        assert os.path.exists(path)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(h5mod, "_write_layers", failing)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OSError, match="disk on fire"):      # h5py's RuntimeError, as an OSError
        ci.convert(src, tmp_path / "out.h5")
    assert sorted(os.listdir(tmp_path)) == before

    # an existing destination is left untouched, also on KeyboardInterrupt
    (tmp_path / "out.h5").write_bytes(b"previous")

    def interrupted(path, layers, bar, h5py_module, *flag):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5mod, "_write_layers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ci.convert(src, tmp_path / "out.h5")
    assert (tmp_path / "out.h5").read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == sorted(before + ["out.h5"])


def test_convert_malformed_or_hdf5_source_is_format_error(tmp_path, fixtures):
    good = (fixtures / "conv_pool" / "weights.caffemodel").read_bytes()
    bad = tmp_path / "truncated.caffemodel"
    bad.write_bytes(good[:-7])
    with pytest.raises(ci.FormatError) as info:
        ci.convert(bad, tmp_path / "x.h5")
    assert str(bad) in str(info.value) and info.value.where.startswith("byte ")
    with pytest.raises(ci.FormatError, match="already an HDF5"):
        ci.convert(fixtures / "conv_pool" / "weights.caffemodel.h5", tmp_path / "y.h5")
    assert sorted(os.listdir(tmp_path)) == ["truncated.caffemodel"]


def test_double_legacy_and_nested_names(tmp_path):
    net = {"layers": [
        {"name": "ip", "type": "INNER_PRODUCT",
         "blobs": [{"num": 1, "channels": 1, "height": 2, "width": 3,
                    "double_data": np.arange(6, dtype=np.float64)},
                   {"num": 1, "channels": 1, "height": 1, "width": 2,
                    "data": np.array([7, 8], np.float32)}]},
        {"name": "inception/conv", "type": "CONVOLUTION",
         "blobs": [{"shape": {"dim": [1, 1, 1, 1]}, "data": np.array([5], np.float32)}]},
        {"name": "inception/relu", "type": "RELU"}]}
    src = tmp_path / "v1.caffemodel"
    ci.write_message(src, net, "NetParameter")
    ci.convert(src, tmp_path / "v1.h5")
    with h5py.File(tmp_path / "v1.h5", "r") as fh:
        w, b = fh["data/ip/0"], fh["data/ip/1"]
        assert w.dtype == np.float64 and w.shape == (2, 3) and b.shape == (2,)
        assert w[()].ravel().tolist() == [0, 1, 2, 3, 4, 5] and b[()].tolist() == [7, 8]
        assert fh["data/inception/conv/0"].shape == (1, 1, 1, 1)
        assert len(fh["data/inception/relu"]) == 0
    weights = ci.read_weights(tmp_path / "v1.h5")
    assert sorted(weights) == ["inception/conv", "inception/relu", "ip"]
    assert weights["inception/relu"] == [] and weights["ip"][0].dtype == np.float64


def test_duplicate_or_empty_layer_names_are_refused(tmp_path):
    for layers in ([{"name": "a"}, {"name": "a"}], [{"type": "ReLU"}], [{"name": "a//b"}]):
        src = tmp_path / "bad.caffemodel"
        ci.write_message(src, {"layer": layers}, "NetParameter")
        with pytest.raises(ci.FormatError):
            ci.convert(src, tmp_path / "bad.h5")
        assert not (tmp_path / "bad.h5").exists()


def test_blob_count_not_matching_shape_is_format_error(tmp_path):
    src = tmp_path / "m.caffemodel"
    net = {"layer": [{"name": "c", "blobs": [{"shape": {"dim": [2, 2]},
                                              "data": np.ones(3, np.float32)}]}]}
    ci.write_message(src, net, "NetParameter")
    with pytest.raises(ci.FormatError, match="3 values.*needs 4"):
        ci.read_caffemodel(src)


def test_hdf5_detected_by_content_not_name(tmp_path, fixtures):
    renamed = tmp_path / "weights.caffemodel"          # HDF5 content, binary-looking name
    renamed.write_bytes((fixtures / "misc" / "weights.caffemodel.h5").read_bytes())
    assert ci.is_hdf5(renamed)
    assert not ci.is_hdf5(fixtures / "misc" / "weights.caffemodel")
    assert [a.shape for a in ci.read_weights(renamed)["bn"]] == [(8,), (8,), (1,)]
    not_caffe = tmp_path / "other.h5"
    with h5py.File(not_caffe, "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(ci.FormatError, match="/data"):
        ci.read_weights(not_caffe)


def test_cli_convert_and_progress_bar(tmp_path, fixtures, capsys):
    src = fixtures / "fcn_skip" / "weights.caffemodel"
    assert ci.cli_convert([str(src), "-o", str(tmp_path / "a.h5"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "22 layers, 12 blobs" in err and "MB/s" in err
    assert "convert" in err                                 # the tqdm bar was drawn
    with h5py.File(tmp_path / "a.h5", "r") as fh:
        assert fh["data/upscore2/0"].shape == (5, 5, 4, 4)
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\x0a\xff\xff\xff\x0f")
    assert ci.cli_convert([str(bad), "-o", str(tmp_path / "b.h5")]) == 2
    assert "bad.caffemodel" in capsys.readouterr().err
    assert not (tmp_path / "b.h5").exists()
    assert ci.cli_convert([str(tmp_path / "missing"), "-o", str(tmp_path / "c.h5")]) == 2
    with pytest.raises(SystemExit):
        ci.cli_convert([str(src)])                            # -o is required


def test_default_lookup():
    assert ci.default("LRNParameter", "alpha") == 1.0
    assert ci.default("ConvolutionParameter", "bias_term") is True
    assert ci.default("PoolingParameter", "round_mode") == "CEIL"
    assert ci.default("LossParameter", "normalization") == "VALID"
    assert ci.default("ConvolutionParameter", "pad") == []
    assert ci.default("FillerParameter", "type") == "constant"
    assert ci.default("ConvolutionParameter", "num_output") == 0
    assert ci.default("NetState", "phase") == "TEST"


def test_v0_caffemodel_reads_and_converts(tmp_path):
    from .test_caffe_upgrade import V0_NET
    v0 = ci.prototxt.parse(V0_NET)
    weight = np.arange(108, dtype=np.float32)
    v0["layers"][1]["layer"]["blobs"] = [
        {"num": 4, "channels": 3, "height": 3, "width": 3, "data": weight},
        {"num": 1, "channels": 1, "height": 1, "width": 4, "data": np.ones(4, np.float32)}]
    src = tmp_path / "v0.caffemodel"
    ci.write_message(src, v0, "NetParameter")
    model = ci.read_caffemodel(src)
    conv = {layer["name"]: layer for layer in model["layer"]}["conv1"]
    assert conv["type"] == "Convolution" and conv["convolution_param"]["pad"] == [2]
    assert [b.shape for b in conv["blobs"]] == [(4, 3, 3, 3), (1, 1, 1, 4)]
    ci.convert(src, tmp_path / "v0.h5")
    with h5py.File(tmp_path / "v0.h5", "r") as fh:
        np.testing.assert_array_equal(fh["data/conv1/0"][()], weight.reshape(4, 3, 3, 3))
        assert fh["data/conv1/1"].shape == (4,)
        assert sorted(fh["data"]) == ["conv1", "drop", "fc", "input", "norm1", "pool1", "src"]


def test_empty_blob_error_mentions_fork_raw_data(tmp_path):
    src = tmp_path / "fp16.caffemodel"
    ci.write_message(src, {"layer": [{"name": "c", "blobs": [{"shape": {"dim": [2]}}]}]},
                     "NetParameter")
    with pytest.raises(ci.FormatError, match="raw_data"):
        ci.read_weights(src)
