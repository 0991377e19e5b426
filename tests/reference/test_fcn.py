"""FCN builders (reference.fcn) and dense FCNs: shapes and crop offsets derived by the code, the
bilinear upsampling, and exact equivalence of densified FCN-8s at pool5, pool4 and pool3 (E1, E2 on
every blob up to the last fusion, validity masks included), dpoa."""

import numpy as np
import pytest

from reference import Net, densify, dpoa
from reference.fcn import fcn
from reference.fragments import check_equivalence
from reference.layers.equivalent import Mask

TINY = dict(widths=(1, 1, 1, 1, 1), fc=1, classes=2)


def crops(layers):
    return {s["name"]: tuple(s["crop_param"]["offset"]) for s in layers if s["type"] == "Crop"}


def test_voc_fcn8s_shapes_and_crop_offsets_at_500():
    layers = fcn("8s", input_shape=(1, 3, 500, 500), **TINY)
    shapes = Net(layers).blob_shapes
    assert shapes["pool5"][2:] == (22, 22)
    assert shapes["fc6"][2:] == (16, 16)
    assert shapes["upscore2"][2:] == (34, 34)
    assert shapes["upscore8"][2:] == (568, 568)
    assert shapes["score"] == (1, 2, 500, 500)
    assert crops(layers) == {"score_pool4c": (5, 5), "score_pool3c": (9, 9), "score": (31, 31)}


def test_fcn32s_and_16s_crop_offsets():
    assert crops(fcn("32s", input_shape=(1, 3, 500, 500), **TINY)) == {"score": (19, 19)}
    assert crops(fcn("16s", input_shape=(1, 3, 500, 500), **TINY)) == {"score_pool4c": (5, 5),
                                                                        "score": (27, 27)}


def test_offsets_do_not_depend_on_the_input_size():
    for size in (224, 333, 501):
        assert crops(fcn("8s", input_shape=(1, 3, size, size), **TINY)) == {
            "score_pool4c": (5, 5), "score_pool3c": (9, 9), "score": (31, 31)}


def test_upsampling_starts_bilinear_and_only_the_final_one_is_fixed():
    net = Net(fcn("8s", input_shape=(1, 3, 100, 100), **TINY))
    k4 = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(net.params["upscore2"][0][0, 0], np.outer(k4, k4))
    assert net.params["upscore2"][0].shape == (2, 1, 4, 4)          # one map per class (group 2)
    assert net.params["upscore8"][0].shape == (2, 1, 16, 16)
    assert net.layer("upscore8").lr_mult(0) == 0 and net.layer("upscore2").lr_mult(0) == 1
    # the score layers of the skips start at zero
    assert not net.params["score_pool4"][0].any() and not net.params["score_pool3"][0].any()


def test_at_once_scales_the_skips_and_label_adds_the_loss():
    layers = fcn("8s", input_shape=(1, 3, 100, 100), at_once=True, label=True, **TINY)
    by_name = {s["name"]: s for s in layers}
    assert by_name["scale_pool4"]["power_param"] == {"scale": 0.01}
    assert by_name["scale_pool3"]["power_param"] == {"scale": 0.0001}
    assert by_name["loss"]["loss_param"]["ignore_label"] == 255


def test_bad_variant():
    with pytest.raises(ValueError, match="variant"):
        fcn("4s")


def small_fcn8s(h, w):
    """One convolution per block, 2 channels, 2 classes, every parameter random (biases too, so the
    zero-padding halo of conv1's pad 100 is not zero and positions past a fragment's end hold
    values a wrong mask would let through), except the fixed final upsampling, which stays bilinear."""
    layers = fcn("8s", widths=(2, 2, 2, 2, 2), convs=(1, 1, 1, 1, 1), fc=3, classes=2,
                 input_shape=(1, 1, h, w))
    net = Net(layers, dtype=np.float64, seed=1)
    rng = np.random.default_rng(2)
    for name, blobs in net.params.items():
        for b in blobs:
            if name != "upscore8":
                b[...] = rng.normal(size=b.shape) * (0.5 if b.ndim == 1 else 1.0)
    return net, rng.normal(size=(1, 1, h, w))


FUSED = ["upscore2", "score_pool4c", "fuse_pool4", "upscore_pool4", "score_pool3c", "fuse_pool3"]


@pytest.mark.parametrize("start", ["pool5", "pool4"])
def test_dense_fcn8s_is_equivalent(start):
    net, x = small_fcn8s(45, 51)
    dense = densify(net, start)
    report = check_equivalence(net, dense, {"data": x})
    assert report.ok, str(report)
    checked = {b for _, b, _, _ in report.rows}
    assert set(FUSED) <= checked
    assert report.worst("E2") <= 1e-12 and report.worst("E1") <= 1e-12


def test_dense_fcn8s_at_pool3_with_validity_masks():
    net, x = small_fcn8s(60, 66)            # sizes where fragments end at different positions
    dense = densify(net, "pool3")
    masks = {layer.name: layer.valid for layer in dense.layers if layer.type == "Mask"}
    # upscore2's grid has step 4; along h its phase 0 holds 8 values and phases 1-3 hold 6
    assert masks["upscore2_mask"] == [[8, 6, 6, 6], [8, 8, 6, 6]]
    assert set(masks) == {f"{b}_mask" for b in FUSED}
    assert dense.grid("upscore2") == ((0, 0), (4, 4)) and dense.grid("fuse_pool3") == ((0, 0), (2, 2))
    report = check_equivalence(net, dense, {"data": x})
    assert report.ok, str(report)
    assert {b for _, b, _, _ in report.rows} >= set(FUSED)
    assert report.worst("E2") <= 1e-12
    # the final upsampling is rebuilt for the dense grid (stride 8 / 2 = 4) and cropped to the data
    rebuilt = dense.layer("upscore8_dense")
    assert rebuilt.stride == (4, 4) and rebuilt.kernel == (8, 8)
    assert dense.blob_shapes["score"] == net.blob_shapes["score"]
    with pytest.raises(ValueError, match="not on an equivalent grid"):
        dense.grid("score")


def test_without_masks_the_dense_fcn_is_wrong(monkeypatch):
    net, x = small_fcn8s(60, 66)
    dense = densify(net, "pool3")
    monkeypatch.setattr(Mask, "run_forward", lambda self, bottoms: [bottoms[0]])
    report = check_equivalence(net, dense, {"data": x})
    assert not report.ok and report.worst("E2") > 1e-6


def test_dpoa_of_a_dense_fcn_reproduces_it():
    net, x = small_fcn8s(45, 51)
    back = dpoa(densify(net, "pool3"))
    assert [layer.type for layer in back.layers] == [layer.type for layer in net.layers]
    a, b = net.forward(data=x), back.forward(data=x)
    for name in ("fuse_pool3", "score"):
        np.testing.assert_array_equal(a[name], b[name])
