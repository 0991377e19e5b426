"""densify(..., fc_pad=...): the padded-fc variant (Note [Padded fc] in reference.dense).

VGG-16 at 256x256 densified at pool4 (the paper's image categorization setting), the contract E1/E2/E4
against the padded original, and the claim that the positions whose fc6 window does not touch the
padding equal the unpadded net's."""

import numpy as np
import pytest

from reference import Net, densify, dpoa
from reference.dense import convolutionalize
from reference.fragments import check_equivalence, check_gradients
from reference.models import vgg16

RNG = np.random.default_rng(5)
FCS = ["fc6", "fc7", "fc8"]


def small_vgg(shape=(1, 2, 80, 72), dtype=np.float64):
    """VGG-16's layout at tiny widths; 80x72 gives pool5 3x3, so fc6 is a 3x3 kernel ("same" pad 1)."""
    return Net(vgg16(widths=(3, 4, 4, 5, 5), fc=(6, 5, 4), input_shape=shape), dtype=dtype, seed=4)


def test_vgg16_256_at_pool4_unpadded_8x8_padded_32x32():
    """VGG-16 made for 224x224 (fc6 = a 7x7 kernel on pool5) run on 256x256 (pool5 8x8).  The
    original gives 2x2 (unpadded) or 8x8 (fc6 pad 3) predictions; densified at pool4 (E = 4 at fc6):
    unpadded 32 - (4*6 + 1) + 1 = 8 per axis, padded 8 + 2*3*4 = 32 = 4 x 8.  The paper's 31x31 is
    this minus one row and column: its pool4 is Caffe's plain stride-1 pooling, 32 - 2 + 1 = 31, where
    densify keeps pad_end 1 for the window of the odd fragment that hangs over the end (ceil mode)."""
    net = Net(vgg16(widths=(2, 2, 2, 2, 2), fc=(3, 3, 3)))        # declared 1x3x224x224
    at256 = {"data": (1, 3, 256, 256)}
    assert convolutionalize(net, FCS).infer_shapes(at256)["fc8"] == (1, 3, 2, 2)
    assert convolutionalize(net, FCS, pad="same").infer_shapes(at256)["fc8"] == (1, 3, 8, 8)

    plain = densify(net, "pool4")
    assert plain.infer_shapes(at256)["fc8"] == (1, 3, 8, 8)
    dense = densify(net, "pool4", fc_pad="same")
    assert densify(net, "pool4", fc_pad=3).specs == dense.specs      # an int pads only the 7x7 fc6
    shapes = dense.infer_shapes(at256)
    assert shapes["pool4"][2:] == shapes["pool5"][2:] == shapes["fc6"][2:] == (32, 32)
    assert shapes["fc8"] == (1, 3, 32, 32)
    assert dense.grid("fc8") == ((0, 0), (4, 4))
    fc6, fc7 = dense.layer("fc6"), dense.layer("fc7")
    assert (fc6.kernel, fc6.pad, fc6.est) == ((7, 7), (12, 12), (4, 4))
    assert (fc7.kernel, fc7.pad) == ((1, 1), (0, 0))
    # the paper's dense net: pool4 with Caffe's own stride-1 rule (no pad_end)
    specs = dense.specs
    specs[[s["name"] for s in specs].index("pool4")]["pooling_param"]["pad_end"] = [0, 0]
    assert Net(specs).infer_shapes(at256)["fc8"] == (1, 3, 31, 31)


@pytest.mark.parametrize("fc_pad", ["same", {"fc6": (2, 1)}])
def test_e1_e2_e4_against_the_padded_original(fc_pad):
    net = small_vgg()
    dense = densify(net, "pool4", fc_pad=fc_pad)
    original = convolutionalize(net, FCS, pad=fc_pad)
    back = dpoa(dense)
    assert [(layer.name, layer.type, getattr(layer, "pad", None)) for layer in back.layers] == \
           [(layer.name, layer.type, getattr(layer, "pad", None)) for layer in original.layers]
    pad = (1, 1) if fc_pad == "same" else (2, 1)
    assert back.layer("fc6").pad == pad and back.layer("fc7").pad == (0, 0)
    x = {"data": RNG.normal(size=net.blob_shapes["data"])}
    assert np.array_equal(back.forward(**x)["fc8"], original.forward(**x)["fc8"])
    assert original.blob_shapes["fc8"][2:] == (1 + 2 * pad[0], 1 + 2 * pad[1])
    report = check_equivalence(original, dense, x)
    assert report.ok, str(report)
    assert max(r[3] for r in report.rows if r[0] == "E2") == 16 and report.worst("E2") <= 1e-10
    seeds = {"fc8": RNG.normal(size=dense.forward(**x)["fc8"].shape)}
    grads = check_gradients(dense, x, seeds)
    assert grads.ok, str(grads)


def test_positions_whose_fc6_window_misses_the_padding_equal_the_unpadded_net():
    """Declared at 80x72 (fc6 3x3), run at 112x96 (pool5 4x3, fc6 2x1 unpadded): pad 1.  Original grid:
    padded[i] == unpadded[i - 1] for 1 <= i < 1 + n; dense grid (E = 4): shifted by p*E = 4."""
    net = small_vgg()
    x = {"data": RNG.normal(size=(1, 2, 112, 96))}
    p = 1
    unpadded_orig = convolutionalize(net, FCS).forward(**x)
    padded_orig = convolutionalize(net, FCS, pad="same").forward(**x)
    plain = densify(net, "pool4").forward(**x)
    padded = densify(net, "pool4", fc_pad="same").forward(**x)
    for blob in FCS:
        u, v = unpadded_orig[blob], padded_orig[blob]
        n_h, n_w = u.shape[2:]
        assert (n_h, n_w) == (2, 1) and v.shape[2:] == (n_h + 2 * p, n_w + 2 * p)
        np.testing.assert_allclose(v[..., p:p + n_h, p:p + n_w], u, rtol=0, atol=1e-12)
        assert np.abs(v[..., 0, :]).max() > 0          # the border positions are new values

        d_u, d_v = plain[blob], padded[blob]
        m_h, m_w = d_u.shape[2:]
        assert d_v.shape[2:] == (m_h + 2 * p * 4, m_w + 2 * p * 4)
        np.testing.assert_allclose(d_v[..., 4 * p:4 * p + m_h, 4 * p:4 * p + m_w], d_u, rtol=0, atol=1e-12)
        # and both dense nets hold their original on the grid step 4
        np.testing.assert_allclose(d_v[..., ::4, ::4][..., :n_h + 2 * p, :n_w + 2 * p], v, atol=1e-12)
    # outside that region the padded net differs: position (0, 0) reads fc6 padding
    assert not np.allclose(padded["fc6"][..., 0, 0], plain["fc6"][..., 0, 0])


def test_bad_fc_pad_values_are_clear_errors():
    net = small_vgg()
    with pytest.raises(ValueError, match="fc6.*'wide'"):
        densify(net, "pool4", fc_pad="wide")
    with pytest.raises(ValueError, match="non-negative"):
        densify(net, "pool4", fc_pad=-1)
    with pytest.raises(ValueError, match=r"\['conv1_1'\].*not converted"):
        convolutionalize(net, FCS, pad={"conv1_1": 1})
