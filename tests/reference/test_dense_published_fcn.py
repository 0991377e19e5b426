"""densify on voc-fcn8s as shelhamer/fcn.berkeleyvision.org publishes it (tests/data/fcn): deploy and
train files, the upsampling recognised as fixed bilinear from the caffemodel's weights (FCN's net
surgery), E1/E2 exact in float64 on every blob up to fuse_pool3 at pool5, pool4 and pool3, dpoa exact;
unpadded ceil windows refused on both axes; the upsampling kernel itself."""

import numpy as np
import pytest

from caffe_import.loader import copy_weights
from reference import Net, densify, dpoa
from reference.fragments import check_equivalence
from reference.upsampling import diagonal_bilinear, is_diagonal_bilinear, upsample_filt

from . import published_fcn

SIZE = 36
FUSED = ["upscore2", "score_pool4c", "fuse_pool4", "upscore_pool4", "score_pool3c", "fuse_pool3"]


def published(kind, narrow=64, size=SIZE):
    specs = published_fcn.layers(kind, narrow=narrow, size=size)
    net = Net(specs, dtype=np.float64)
    copy_weights(net, published_fcn.weights(specs))
    rng = np.random.default_rng(3)
    inputs = {"data": 50 * rng.normal(size=(1, 3, size, size))}
    if "label" in net.input_names:
        inputs["label"] = rng.integers(0, 21, size=(1, 1, size, size)).astype(np.float64)
    return net, inputs


def test_upsample_filt_is_fcns_kernel_and_caffes_filler():
    np.testing.assert_allclose(upsample_filt(4)[0], [0.0625, 0.1875, 0.1875, 0.0625])
    np.testing.assert_allclose(upsample_filt(4)[1] / upsample_filt(4)[1, 1], [1 / 3, 1, 1, 1 / 3])
    np.testing.assert_allclose(np.outer(*[[0.5, 1, 0.5]] * 2), upsample_filt(3))
    profile = np.r_[np.arange(1, 16, 2), np.arange(15, 0, -2)] / 16     # k = 16: 1/16 .. 15/16 .. 1/16
    np.testing.assert_allclose(upsample_filt(16), np.outer(profile, profile))


def test_diagonal_bilinear_layouts():
    group1 = diagonal_bilinear((3, 3, 4, 4), group=1)          # the published layout (surgery.interp)
    assert not group1[0, 1].any() and np.array_equal(group1[2, 2], upsample_filt(4))
    assert is_diagonal_bilinear(group1, 1)
    grouped = diagonal_bilinear((3, 1, 4, 4), group=3)        # reference.fcn's layout
    assert is_diagonal_bilinear(grouped, 3)
    assert not is_diagonal_bilinear(np.ones((3, 3, 4, 4)), 1)  # Caffe's filler on group 1 sums classes
    off = group1.copy()
    off[0, 1, 0, 0] = 1e-3
    assert not is_diagonal_bilinear(off, 1)
    assert is_diagonal_bilinear(group1.astype(np.float32), 1)  # float32 storage rounds, still recognised


def test_published_files_have_no_filler_and_fixed_upsampling():
    for kind in ("deploy", "train"):
        specs = {s["name"]: s for s in published_fcn.layers(kind)}
        for name in ("upscore2", "upscore_pool4", "upscore8"):
            assert "weight_filler" not in specs[name]["convolution_param"]
            assert specs[name]["param"][0]["lr_mult"] == 0
            assert specs[name]["convolution_param"].get("group", 1) == 1


@pytest.mark.parametrize("kind", ["deploy", "train"])
@pytest.mark.parametrize("start", ["pool5", "pool4", "pool3"])
def test_published_voc_fcn8s_densified_is_exactly_equivalent(kind, start):
    net, inputs = published(kind)
    dense = densify(net, start)
    report = check_equivalence(net, dense, inputs)
    assert report.ok, str(report)
    assert report.worst("E1") <= 1e-10 and report.worst("E2") <= 1e-10
    checked = {b for _, b, _, _ in report.rows}
    downstream = {"pool5": FUSED, "pool4": FUSED, "pool3": FUSED}[start]
    assert checked >= {b for b in downstream if dense.grids.get(b) is not None} | {"fc7", "score_fr"}
    if start == "pool3":
        assert checked >= set(FUSED)
        rebuilt = dense.layer("upscore8_dense")
        assert rebuilt.stride == (4, 4) and rebuilt.kernel == (8, 8) and rebuilt.group == 21
        assert rebuilt.lr_mult(0) == 0 and is_diagonal_bilinear(rebuilt.blobs[0], 21)
        assert dense.blob_shapes["score"] == net.blob_shapes["score"]
        # at 36x36 the upsampled fragments end at different positions: the masks are in play
        assert {layer.name for layer in dense.layers if layer.type == "Mask"} == {
            "upscore2_mask", "score_pool4c_mask", "fuse_pool4_mask"}
    back = dpoa(dense)
    a, b = net.forward(**inputs), back.forward(**inputs)
    assert all(np.array_equal(a[k], b[k]) for k in a)               # dpoa: bit for bit


def test_published_deploy_without_surgery_is_refused():
    """With no caffemodel the published upsampling has no filler (zeros): nothing says it is bilinear."""
    specs = published_fcn.layers("deploy", narrow=64, size=SIZE)
    net = Net(specs, dtype=np.float64)
    with pytest.raises(ValueError, match="upscore8.*bilinear kernel on the group diagonal.*all zero.*"
                                         "bilinear kernels in the caffemodel"):
        densify(net, "pool3")
    densify(net, "pool4")           # pool4: upscore8 reads grid 1, nothing to rebuild


def _ceil_net(kernel, stride, pad=0, h=13, w=12):
    return Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 1, h, w]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
         "convolution_param": {"num_output": 2, "kernel_size": 3, "weight_filler": {"type": "gaussian"}}},
        {"name": "pool1", "type": "Pooling", "bottom": ["conv1"], "top": ["pool1"],
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "pool2", "type": "Pooling", "bottom": ["pool1"], "top": ["pool2"],
         "pooling_param": {"pool": "MAX", "kernel_h": kernel[0], "kernel_w": kernel[1], "stride_h": stride[0],
                           "stride_w": stride[1], "pad_h": pad, "pad_w": pad}},
    ], dtype=np.float64)


@pytest.mark.parametrize("kernel, axis", [((1, 2), "h"), ((2, 1), "w"), ((1, 1), "h")])
def test_unpadded_ceil_window_shorter_than_stride_is_refused(kernel, axis):
    net = _ceil_net(kernel, (2, 2))
    assert net.blob_shapes["pool1"][2:] == (6, 5)
    with pytest.raises(ValueError, match=f"pool2.*on the {axis} axis its window .* past the input's end"):
        densify(net, "pool1")
    with pytest.raises(ValueError, match="pool2"):     # the start layer itself is checked too
        densify(_ceil_net(kernel, (2, 2)), "pool2")


def test_ceil_windows_that_cannot_start_past_the_end_still_densify():
    rng = np.random.default_rng(0)
    for kernel, stride, pad in (((2, 2), (2, 2), 0), ((2, 2), (3, 3), 1), ((3, 3), (2, 2), 0)):
        for h in (13, 14):
            net = _ceil_net(kernel, stride, pad, h=h)
            # with padding Caffe clips (a window starts inside the image); fragments are not defined for
            # a pad larger than kernel - stride, so that case is checked on the original grid (E1)
            report = check_equivalence(net, densify(net, "pool1"), {"data": rng.normal(size=(1, 1, h, 12))},
                                       fragments=pad == 0)
            assert report.ok and max(r[2] for r in report.rows) <= 1e-12, (kernel, pad, h, str(report))


@pytest.mark.full
@pytest.mark.parametrize("kind", ["deploy", "train"])
@pytest.mark.parametrize("start", ["pool5", "pool4", "pool3"])
def test_full_width_published_voc_fcn8s(kind, start):
    """The published files at full width (VGG-16's 64..512 channels, fc6/fc7 4096), float64, a 36x36
    input (conv1_1's pad 100 makes it 234x234 inside): opt-in, ``pytest -m full`` (18 minutes on
    2 cores; measured E1 <= 2.3e-15, E2 <= 4.1e-15 at pool5, pool4 and pool3)."""
    net, inputs = published(kind, narrow=1)
    report = check_equivalence(net, densify(net, start), inputs)
    assert report.ok and report.worst("E1") <= 1e-10 and report.worst("E2") <= 1e-10, str(report)
    print(f"{kind} {start}: E1 {report.worst('E1'):.1e}, E2 {report.worst('E2'):.1e}")
