"""econv.demo on a tiny configuration: the whole pipeline runs, results.json has DESIGN.md's keys,
the dense net starts exactly equivalent, dpoa without dense training is the baseline, the picture
is written."""

import json
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("sklearn", reason="the demo data are scikit-learn's digits (pip install econv[demo])")

from econv import demo  # noqa: E402

TINY = demo.DemoConfig(train_scenes=16, test_scenes=6, widths=(2, 2, 2, 2, 2), fc=4, batch=2,
                       base_iters=3, tune_iters=2, pictures=2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines = []
    results = demo.run(out=str(out), backend="numpy", cfg=TINY, progress=False, log=lines.append)
    return out, results, lines


def test_results_json_has_the_designed_keys(tiny_run):
    out, results, _ = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for model in ("baseline", "baseline_continued", "dense", "dpoa"):
        for key in ("mean_iu", "pixel_accuracy", "mean_accuracy", "frequency_weighted_iu"):
            assert 0.0 <= saved[model][key] <= 1.0, (model, key)
        assert saved[model]["forward_ms_per_image"] > 0
    assert saved["task"] == "segmentation"
    assert 0.0 <= saved["equivalence_max_err"] <= 1e-5      # float32, DESIGN.md section 4
    assert [f for f in os.listdir(out) if f.endswith(".tmp")] == []


def test_table_and_picture(tiny_run):
    out, results, lines = tiny_run
    table = demo.table(results)
    assert table.splitlines()[0].split()[:3] == ["model", "mean", "IU"]
    assert any("baseline_continued" in line for line in lines)
    image = Image.open(out / "predictions.png")
    # 2 rows of 6 tiles of 32 px (scale 4) plus gaps and titles
    assert image.size[0] > 6 * 32 * 4 and image.size[1] > 2 * 32 * 4
    # the title, each model's score under its name, and the legend of the 11 class colours
    from econv.pictures import CLASS_LEGEND, layout

    titles = ["input", "truth"] + [f"{m}\nmean IU {results[m]['mean_iu']:.3f}"
                                   for m in ("baseline", "baseline_continued", "dense", "dpoa")]
    title = demo.picture_title(results, "segmentation: the class of every pixel on 2 test scenes; each "
                               "model's mean IU over all 6 (numpy)")
    geo = layout(TINY.pictures, titles, (32, 32), 4, title, CLASS_LEGEND)
    assert image.size == (geo.width, geo.height)
    rgb = np.asarray(image.convert("RGB"))
    for x, y, colour, _ in geo.swatches:
        assert rgb[y + 5, x + 5].tolist() == list(colour)


def test_dpoa_of_an_untrained_dense_net_is_the_baseline(tmp_path):
    cfg = demo.DemoConfig(**{**TINY.__dict__, "tune_iters": 0})
    results = demo.run(out=str(tmp_path), backend="numpy", cfg=cfg, progress=False, log=lambda s: None)
    for key in ("mean_iu", "pixel_accuracy"):
        assert results["dpoa"][key] == results["baseline"][key]
        assert results["baseline_continued"][key] == results["baseline"][key]


def test_predict_pads_the_last_batch():
    net = demo.build_net(TINY, "numpy", batch=2)
    images = np.random.default_rng(0).normal(size=(3, 1, 32, 32)).astype(np.float32)
    pred = demo.predict(net, images, batch=2)
    assert pred.shape == (3, 32, 32) and pred.dtype.kind == "i"
    alone = demo.predict(net, images[2:], batch=2)
    np.testing.assert_array_equal(pred[2:], alone)


def test_cuda_backend_trains_on_the_device_like_the_cpu():
    """With a Net on backend "cuda", demo.train runs numba_kernels.device_net.DeviceNet (the CUDA
    simulator in CI): the same losses and parameters as the reference solver.  (A tiny FCN-like net:
    the demo's own runs every GPU thread in Python for minutes on the simulator.)"""
    pytest.importorskip("numba_kernels.device_net", reason="numba.cuda cannot run here")
    from reference import Net
    from tests.numba_kernels.test_device_net import tiny_fcn

    cfg = demo.DemoConfig(**{**TINY.__dict__, "batch": 2})
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 1, 10, 11)).astype(np.float32)
    labels = rng.integers(0, 2, size=(4, 10, 11))
    nets = {b: Net(tiny_fcn(), phase="train", backend=b, seed=2) for b in ("numpy", "cuda")}
    fits = {b: demo.train(net, images, labels, 3, cfg, 0.05, b, seed=0, progress=False)
            for b, net in nets.items()}
    np.testing.assert_allclose(fits["cuda"]["losses"], fits["numpy"]["losses"], rtol=1e-5)
    for name, blobs in nets["numpy"].params.items():
        for a, b in zip(blobs, nets["cuda"].params[name]):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)


def test_skips_are_fixed_as_published_unless_asked():
    from econv.demo import QUICK, build_net
    from dataclasses import replace

    fixed = build_net(QUICK)
    assert all(fixed.layer(n).lr_mult(0) == 0 for n in ("upscore2", "upscore_pool4", "upscore8"))
    learnable = build_net(replace(QUICK, skips="learnable"))
    assert learnable.layer("upscore2").lr_mult(0) == 1 and learnable.layer("upscore8").lr_mult(0) == 0
    with pytest.raises(ValueError, match="skips must be 'fixed' or 'learnable'"):
        build_net(replace(QUICK, skips="both"))
