"""`econv segment`: label PNGs with the VOC palette equal to the net's argmax (original, or the dense net
with --dense-from), overlays with a legend, FCN's preprocessing, any image size; the VOC palette."""

import numpy as np
import pytest
from PIL import Image

from caffe_import import load_net
from econv.cli import main
from econv.segment import Segmenter
from econv.voc import preprocess, voc_palette

from .voc_data import make_fcn, make_voc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment")
    ids = make_voc(root / "voc")
    proto, model = make_fcn(root / "net")
    images = [root / "voc" / "JPEGImages" / f"{i}.jpg" for i in ids]
    return root, images, proto, model


def test_voc_palette_is_the_published_colour_map():
    p = voc_palette()
    assert p[0].tolist() == [0, 0, 0] and p[1].tolist() == [128, 0, 0] and p[2].tolist() == [0, 128, 0]
    assert p[15].tolist() == [192, 128, 128] and p[255].tolist() == [224, 224, 192]


def test_preprocess_is_bgr_minus_the_mean():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 200                           # red
    x = preprocess(rgb)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [-104.00698793, -116.66876762, 200 - 122.67891434], rtol=1e-6)


def test_segment_writes_label_maps_and_overlays(data, tmp_path, capsys):
    root, images, proto, model = data
    out = tmp_path / "out"
    assert main(["segment", str(proto), str(model), *map(str, images[:2]), "-o", str(out), "--dense-from",
                 "pool3", "--backend", "numpy", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "37x45, dense:" in lines[0] and "dense = original on" in lines[0]
    seg = Segmenter(str(proto), str(model), dense_from="pool3")
    for path in images[:2]:
        label = Image.open(out / f"{path.stem}.png")
        assert label.mode == "P" and label.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        pred = seg.predict(preprocess(Image.open(path)))
        assert np.array_equal(np.array(label), pred["dense"])
        pic = Image.open(out / f"{path.stem}_overlay.png")
        assert pic.width == 2 * label.width + 4 and pic.height > label.height + 14   # legend band


def test_segment_original_equals_the_net_run_by_hand(data, tmp_path):
    root, images, proto, model = data
    assert main(["segment", str(proto), str(model), str(images[2]), "-o", str(tmp_path),
                 "--backend", "numpy", "--no-progress"]) == 0
    net = load_net(str(proto), str(model))
    rgb = np.array(Image.open(images[2]).convert("RGB"), np.float32)
    x = (rgb[:, :, ::-1] - np.float32([104.00698793, 116.66876762, 122.67891434])).transpose(2, 0, 1)
    want = net.forward(data=np.ascontiguousarray(x)[None])["score"][0].argmax(0)
    assert np.array_equal(np.array(Image.open(tmp_path / f"{images[2].stem}.png")), want)


def test_bad_inputs_exit_2(data, tmp_path, capsys):
    root, images, proto, model = data
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["segment", str(proto), str(model), str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "not a readable image" in capsys.readouterr().err
