"""`econv evaluate` on a VOC layout the test writes: the confusion matrices equal an independent run of
the net (FCN's preprocessing written out here), dpoa equals the original (E3), the dense net densified
at pool4 equals it too (equivalent all the way to the score), a local Dask cluster on the loopback
interface gives identical numbers, and the CLI writes the JSON."""

import json

import numpy as np
import pytest
from PIL import Image

from caffe_import import load_net
from econv.cli import main
from econv.evaluate import evaluate

from .voc_data import SIZES, make_fcn, make_voc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    ids = make_voc(root / "voc")
    proto, model = make_fcn(root / "net")
    return root, ids, proto, model


def independent_hist(proto, model, root, ids, classes=21):
    """The original net run by hand: RGB -> BGR, minus FCN's mean, CHW; argmax of score; bincount."""
    net = load_net(str(proto), str(model), dtype=np.float64)
    hist = np.zeros((classes, classes), np.int64)
    for i in ids:
        rgb = np.array(Image.open(root / "voc" / "JPEGImages" / f"{i}.jpg").convert("RGB"), np.float64)
        x = (rgb[:, :, ::-1] - [104.00698793, 116.66876762, 122.67891434]).transpose(2, 0, 1)[None]
        pred = net.forward(data=x)["score"][0].argmax(0)
        label = np.array(Image.open(root / "voc" / "SegmentationClass" / f"{i}.png"))
        keep = label != 255
        hist += np.bincount(classes * label[keep].astype(np.int64) + pred[keep],
                            minlength=classes ** 2).reshape(classes, classes)
    return hist


def test_metrics_match_an_independent_run_and_dpoa_is_the_original(data):
    root, ids, proto, model = data
    report = evaluate(proto, model, root / "voc", dense_from="pool3", backend="numpy", progress=False,
                      dtype="float64")
    assert report["n_images"] == 3 and [r["id"] for r in report["images"]] == ids
    assert [r["size"] for r in report["images"]] == [list(s) for s in SIZES]
    hist = independent_hist(proto, model, root, ids)
    assert np.array_equal(report["hist"]["original"], hist)
    assert np.array_equal(report["hist"]["dpoa"], hist)                       # E3: dpoa is the original
    assert np.sum(report["hist"]["dense"]) == hist.sum()                      # same pixels scored
    diag, t, p = np.diag(hist), hist.sum(1), hist.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        assert report["models"]["original"]["mean_iu"] == pytest.approx(np.nanmean(diag / (t + p - diag)))
    assert report["models"]["original"]["pixel_accuracy"] == pytest.approx(diag.sum() / hist.sum())


def test_dense_from_pool4_is_exact_to_the_score(data):
    root, ids, proto, model = data
    report = evaluate(proto, model, root / "voc", dense_from="pool4", backend="numpy", progress=False,
                      dtype="float64")
    assert report["hist"]["dense"] == report["hist"]["original"]


def test_local_dask_cluster_gives_identical_results(data):
    pytest.importorskip("distributed", reason="dask[distributed] is the 'dask' extra")
    root, ids, proto, model = data
    args = dict(dense_from="pool3", backend="numpy", progress=False)
    local = evaluate(proto, model, root / "voc", **args)
    cluster = evaluate(proto, model, root / "voc", workers=2, **args)
    assert cluster["models"] == local["models"] and cluster["hist"] == local["hist"]
    assert cluster["images"] == local["images"]


def test_cli_writes_the_report(data, tmp_path, capsys):
    root, ids, proto, model = data
    out = tmp_path / "report.json"
    assert main(["evaluate", str(proto), str(model), "--voc", str(root / "voc"), "--limit", "2",
                 "--backend", "numpy", "--no-progress", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 images of val") and "original" in text and "mean_iu" in text
    report = json.loads(out.read_text())
    assert report["n_images"] == 2 and set(report["models"]) == {"original"}
    assert main(["evaluate", str(proto), str(model), "--voc", str(tmp_path / "nowhere")]) == 2
    assert "no such split file" in capsys.readouterr().err
