"""``econv densify``: the written prototxt loads back into the net densify made (same blob shapes, same
outputs), --fc-pad / --input-shape give VGG-16's 32x32 at 256x256, and every failure exits 2 without
writing a file."""

from pathlib import Path

import numpy as np
import pytest

from caffe_import import load_net, read_prototxt, write_prototxt
from econv.cli import main
from reference import Net, densify
from reference.models import vgg16

FIX = Path(__file__).resolve().parents[1] / "data" / "caffe"
CONV_POOL = FIX / "conv_pool" / "net.prototxt"


def same_net(written, dense, inputs):
    """``written`` (a prototxt path or text) loads into a net equal to ``dense``: blob shapes, and the
    outputs of every blob once ``dense``'s parameters are copied in by layer name."""
    back = load_net(written, weights={k: v for k, v in dense.params.items()}, dtype=dense.dtype)
    assert back.layer_names == dense.layer_names
    shapes = {k: v.shape for k, v in inputs.items()}
    assert back.infer_shapes(shapes) == dense.infer_shapes(shapes)
    got, want = back.forward(**inputs), dense.forward(**inputs)
    assert all(np.array_equal(got[b], want[b]) for b in dense.blob_names)
    return back


def test_written_file_loads_back_as_the_dense_net(tmp_path, capsys):
    out = tmp_path / "dense.prototxt"
    assert main(["densify", str(CONV_POOL), "--start", "pool1", "-o", str(out)]) == 0
    assert f"{out}: 9 layers, dense from pool1, fc 2x5x3x5" in capsys.readouterr().err
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == f"# written by econv densify --start pool1 from {CONV_POOL}"
    assert lines[1] == "# the dense equivalent of the net: fc[..., 8*i, 8*j] is the original's fc[..., i, j]"
    assert lines[2] == ("# ePool layers use the econv fields est/pad_end in pooling_param, unknown to Caffe: "
                        "pool1 (est 1x1, pad_end 1x1), pool2 (est 2x2, pad_end 2x2)")
    pool2 = read_prototxt(text)["layer"][6]
    assert pool2["name"] == "pool2" and pool2["pooling_param"]["est"] == [2, 2]
    assert pool2["pooling_param"]["pad_end"] == [2, 2] and pool2["pooling_param"]["pad_h"] == 2
    dense = densify(load_net(str(CONV_POOL), dtype=np.float64), "pool1")
    x = {"data": np.random.default_rng(1).normal(size=(2, 3, 17, 19))}
    back = same_net(str(out), dense, x)
    assert back.layer("conv2").est == (4, 4) and back.layer("fc").type == "Convolution"


def test_stdout_when_no_output_file(tmp_path, capsys):
    assert main(["densify", str(CONV_POOL), "--start", "pool1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# written by econv densify --start pool1") and captured.err == ""
    dense = densify(load_net(str(CONV_POOL)), "pool1")
    same_net(captured.out, dense, {"data": np.random.default_rng(2).normal(size=(2, 3, 17, 19))})
    assert not list(tmp_path.iterdir())


def test_vgg16_fc_pad_and_input_shape_give_32x32_at_256(tmp_path, capsys):
    src = tmp_path / "vgg.prototxt"
    net = Net(vgg16(widths=(2, 2, 2, 2, 2), fc=(3, 3, 3)), name="vgg16")    # declared 224x224
    write_prototxt(net, src)
    for flags, side in ((["--fc-pad"], 32), ([], 8)):
        out = tmp_path / f"dense{side}.prototxt"
        assert main(["densify", str(src), "--start", "pool4", "--input-shape", "1,3,256,256", "-o", str(out)]
                    + flags) == 0
        back = load_net(str(out))
        assert back.blob_shapes["data"] == (1, 3, 256, 256)
        assert back.blob_shapes["fc8"] == (1, 3, side, side)
    text = (tmp_path / "dense32.prototxt").read_text()
    assert ("# --fc-pad: InnerProducts convolutionalized with padding, in the original too: fc6 pad 3x3, "
            "fc7 pad 0x0, fc8 pad 0x0") in text
    dense = densify(net, "pool4", fc_pad="same")
    small = {"data": np.random.default_rng(3).normal(size=(1, 3, 256, 256)).astype(np.float32)}
    same_net(str(tmp_path / "dense32.prototxt"), dense, small)


def test_help_documents_the_extension_fields(capsys):
    with pytest.raises(SystemExit) as e:
        main(["densify", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Caffe has no ePool" in out and "`est: E`" in out and "`pad_end: P`" in out
    assert "Caffe's parser rejects these fields" in out and "dilation" in out


FLATTEN = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "flat" type: "Flatten" bottom: "pool" top: "flat" }
"""


@pytest.mark.parametrize("case, args, message", [
    ("unknown start", [str(CONV_POOL), "--start", "pool9"], "no layer named 'pool9'"),
    ("not strided", [str(CONV_POOL), "--start", "conv1"], "'conv1' (Convolution) must be a pooling layer"),
    ("unreadable", ["BAD", "--start", "pool"],
     'bad.prototxt: 3:3: message type "LayerParameter" has no field named "kind"'),
    ("missing file", ["MISSING", "--start", "pool"], "No such file"),
    ("cannot densify", ["FLATTEN", "--start", "pool"], "layer 'flat' (Flatten)"),
    ("bad shape", [str(CONV_POOL), "--start", "pool1", "--input-shape", "2,3,a"], "--input-shape '2,3,a'"),
    ("too small", [str(CONV_POOL), "--start", "pool1", "--input-shape", "2,3,4,4"], "layer '"),
])
def test_errors_exit_2_and_write_nothing(tmp_path, capsys, case, args, message):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer {\n  name: "x"\n  kind: "y"\n}\n')
    flatten = tmp_path / "flatten.prototxt"
    flatten.write_text(FLATTEN)
    names = {"BAD": str(bad), "FLATTEN": str(flatten), "MISSING": str(tmp_path / "missing.prototxt")}
    args = [names.get(a, a) for a in args]
    out = tmp_path / "out.prototxt"
    out.write_text("old\n")
    assert main(["densify", *args, "-o", str(out)]) == 2, case
    err = capsys.readouterr().err
    assert err.startswith("econv densify: error:") and message in err, err
    assert out.read_text() == "old\n"                                    # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.prototxt", "flatten.prototxt", "out.prototxt"]


def test_weights_out_gives_a_loadable_dense_model(tmp_path, capsys):
    """--weights/--weights-out: the dense prototxt with the written HDF5 weights is densify's net,
    trained parameters included (the fc InnerProduct reshaped to its convolution)."""
    from caffe_import import read_weights

    out, h5 = tmp_path / "dense.prototxt", tmp_path / "dense.caffemodel.h5"
    weights = str(FIX / "conv_pool" / "weights.caffemodel")
    assert main(["densify", str(CONV_POOL), "--weights", weights, "--start", "pool1", "-o", str(out),
                 "--weights-out", str(h5)]) == 0
    assert f"{h5}:" in capsys.readouterr().err
    net = load_net(str(CONV_POOL), weights, dtype=np.float64)
    dense = densify(net, "pool1")
    stored = read_weights(str(h5))
    assert stored["fc"][0].shape == dense.params["fc"][0].shape and stored["fc"][0].ndim == 4
    back = load_net(str(out), str(h5), dtype=np.float64)
    x = {"data": np.random.default_rng(2).normal(size=(2, 3, 17, 19))}
    np.testing.assert_allclose(back.forward(**x)["fc"], dense.forward(**x)["fc"], rtol=1e-6, atol=1e-6)


def test_weights_out_needs_weights(tmp_path, capsys):
    h5 = tmp_path / "w.h5"
    assert main(["densify", str(CONV_POOL), "--start", "pool1", "--weights-out", str(h5)]) == 2
    assert "--weights-out needs --weights" in capsys.readouterr().err and not h5.exists()
