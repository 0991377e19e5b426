"""Dense FCNs through the command line: `econv densify` writes EDeconvolution and Mask layers that load
back into densify's net (the published voc-fcn8s at pool3, with its surgery weights from a caffemodel),
`econv verify` feeds label inputs valid labels and takes --input-shape NAME=N,C,H,W per input, and a
Crop that cannot hold every fragment is answered with input sizes that fit (which then verify)."""

from pathlib import Path

import numpy as np

from caffe_import import load_net, read_prototxt, write_prototxt
from econv.cli import main, parse_input_shapes
from reference import densify
from reference.fragments import check_equivalence
from reference.net import with_input_shapes

from ..reference import published_fcn

FCN_SKIP = Path(__file__).resolve().parents[1] / "data" / "caffe" / "fcn_skip"
SIZE = 36


def _published(tmp_path, kind):
    specs = published_fcn.layers(kind, narrow=64, size=SIZE)
    proto, model = tmp_path / f"{kind}.prototxt", tmp_path / f"{kind}.caffemodel"
    write_prototxt(specs, proto, name="voc-fcn8s")
    published_fcn.caffemodel(specs, model)
    return proto, model


def test_densify_writes_edeconvolution_and_mask_layers_that_read_back(tmp_path, capsys):
    proto, model = _published(tmp_path, "deploy")
    out, weights_out = tmp_path / "dense.prototxt", tmp_path / "dense.caffemodel.h5"
    assert main(["densify", str(proto), "--start", "pool3", "-o", str(out), "--weights", str(model),
                 "--weights-out", str(weights_out)]) == 0
    text = out.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("EDeconvolution" in line and "upscore2 (grid 4x4)" in line and "upscore_pool4 (grid 2x2)"
               in line for line in header)
    assert any("Mask layers" in line and "upscore2_mask" in line for line in header)
    assert any("upscore8_dense" in line for line in header)
    layers = {s["name"]: s for s in read_prototxt(text)["layer"]}
    assert layers["upscore2"]["type"] == "EDeconvolution"
    assert layers["upscore2"]["convolution_param"]["grid"] == [4, 4]
    assert layers["upscore2_mask"]["type"] == "Mask" and layers["upscore2_mask"]["mask_param"]["step"] == [4, 4]
    # the files on disk are densify's net, and exactly equivalent to the original (E1, E2 in float64)
    original = load_net(str(proto), str(model), dtype=np.float64)
    dense = densify(original, "pool3")
    back = load_net(str(out), str(weights_out), dtype=np.float64)
    assert back.layer_names == dense.layer_names
    x = {"data": 50 * np.random.default_rng(0).normal(size=(1, 3, SIZE, SIZE))}
    got, want = back.forward(**x), dense.forward(**x)
    assert all(np.array_equal(got[b], want[b]) for b in dense.blob_names)
    back.grids, back.dense_info = dense.grids, dense.dense_info      # grids are not in a prototxt
    report = check_equivalence(original, back, x)
    assert report.ok and report.worst("E2") <= 1e-10, str(report)


def test_verify_feeds_labels_and_passes_on_the_published_train_net(tmp_path, capsys):
    proto, model = _published(tmp_path, "train")
    assert main(["verify", str(proto), str(model), "--start", "pool4"]) == 0
    out = capsys.readouterr().out
    assert "label inputs fed integer labels: label in [0, 21)" in out and ": ok" in out


def test_crop_that_cannot_fit_lists_sizes_and_accepts_one(capsys):
    args = ["verify", str(FCN_SKIP / "net.prototxt"), str(FCN_SKIP / "weights.caffemodel"), "--start", "pool1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Sizes of 'data' that fit every fragment: H in 35, 36, 37, 38; W in 34, 38, 42, 46" in err
    assert "e.g. --input-shape data=1,3,37,42 --input-shape label=1,1,37,42" in err
    assert main(args + ["--input-shape", "data=1,3,37,42", "--input-shape", "label=1,1,37,42"]) == 0
    assert "E2: max error" in capsys.readouterr().out
    # every size it lists does verify; a size it does not list is refused
    net = load_net(str(FCN_SKIP / "net.prototxt"), str(FCN_SKIP / "weights.caffemodel"), dtype=np.float64)
    for h, w in ((35, 42), (38, 46), (37, 34)):
        reshaped = with_input_shapes(net, {"data": (1, 3, h, w), "label": (1, 1, h, w)})
        rng = np.random.default_rng(h)
        inputs = {"data": rng.normal(size=(1, 3, h, w)), "label": np.zeros((1, 1, h, w))}
        assert check_equivalence(reshaped, densify(reshaped, "pool1"), inputs).ok
    assert main(args + ["--input-shape", "data=1,3,37,41", "--input-shape", "label=1,1,37,41"]) == 2


def test_input_shape_names_each_input(capsys):
    import argparse

    from econv.cli import _net_and_shapes

    def shapes(*values):
        return _net_and_shapes(argparse.Namespace(prototxt=str(FCN_SKIP / "net.prototxt"),
                                                  input_shape=list(values)))[1]

    assert shapes("data=2,3,40,44") == {"data": (2, 3, 40, 44)}
    assert shapes("data=1,3,40,44", "label=1,1,40,44")["label"] == (1, 1, 40, 44)
    args = ["verify", str(FCN_SKIP / "net.prototxt"), str(FCN_SKIP / "weights.caffemodel"), "--start", "pool2"]
    assert main(args + ["--input-shape", "1,3,40,40"]) == 2
    assert "this net has 2 inputs (data, label); write NAME=N,C,H,W" in capsys.readouterr().err
    assert main(args + ["--input-shape", "image=1,3,40,40"]) == 2
    assert "no input named 'image' (this net's: data, label)" in capsys.readouterr().err
    assert main(args + ["--input-shape", "data=1,3,38,42", "--input-shape", "label=1,1,38,42"]) == 0
    assert parse_input_shapes(["1,1,9,9"], ["data"]) == {"data": (1, 1, 9, 9)}
