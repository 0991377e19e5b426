"""Output sizes (reference.sizes) against hand-worked numbers: Caffe's pooling (CAFFE_FACTS 3.1), the
convolution floor rule with dilation (3.2), the deconvolution rule (3.3), est > 1 and pad_end.

Every expected value is written out, with the arithmetic in a comment."""

import pytest

from reference.sizes import conv_out_size, deconv_out_size, extent, pool_out_size


# ---- pooling: Caffe's worked sizes (CAFFE_FACTS 3.1) ----------------------------------------------

@pytest.mark.parametrize("n, k, s, p, expected", [
    (112, 3, 2, 1, 57),   # ceil((112 + 2 - 3) / 2) + 1 = ceil(55.5) + 1 = 57; clip: 56*2 = 112 < 113
    (112, 3, 2, 0, 56),   # ceil(109 / 2) + 1 = 55 + 1
    (129, 2, 2, 0, 65),   # ceil(127 / 2) + 1 = 64 + 1
    (224, 3, 2, 0, 112),  # ceil(221 / 2) + 1 = 111 + 1
    (13, 3, 2, 0, 6),     # ceil(10 / 2) + 1 = 5 + 1
    (347, 2, 2, 0, 174),  # ceil(345 / 2) + 1 = 173 + 1
    (6, 1, 2, 0, 4),      # ceil(5 / 2) + 1 = 3 + 1; no pad -> no clip: last window starts at 6 (outside)
    (4, 3, 2, 1, 3),      # ceil(3 / 2) + 1 = 3; clip: 2*2 = 4 < 4 + 1, kept
    (4, 3, 2, 0, 2),      # ceil(1 / 2) + 1 = 2
])
def test_pool_caffe_worked_sizes(n, k, s, p, expected):
    assert pool_out_size(n, k, s, p) == expected


def test_pool_floor_mode():
    # floor((112 + 2 - 3) / 2) + 1 = 55 + 1 = 56 (the PyTorch default); ceil gives 57
    assert pool_out_size(112, 3, 2, 1, round_mode="floor") == 56
    # floor(127 / 2) + 1 = 63 + 1 = 64 versus ceil 65
    assert pool_out_size(129, 2, 2, 0, round_mode="floor") == 64
    # floor(5 / 2) + 1 = 3 versus ceil 4 (the degenerate Caffe case does not arise in floor mode)
    assert pool_out_size(6, 1, 2, 0, round_mode="floor") == 3


def test_pool_clip_rule_drops_window_starting_in_padding():
    # n=3, k=2, s=2, p=1: ceil((3 + 2 - 2) / 2) + 1 = ceil(1.5) + 1 = 3; clip: (3-1)*2 = 4 >= 3+1 -> 2
    assert pool_out_size(3, 2, 2, 1) == 2
    # n=5, k=2, s=2, p=1: ceil(5 / 2) + 1 = 4; clip: 3*2 = 6 >= 5+1 -> 3
    assert pool_out_size(5, 2, 2, 1) == 3
    # n=6, k=2, s=2, p=1: ceil(6 / 2) + 1 = 4; clip: 3*2 = 6 >= 7? no -> 4 stays
    assert pool_out_size(6, 2, 2, 1) == 4
    # floor mode: n=5, k=2, s=2, p=1: floor(5/2) + 1 = 3; clip 2*2 = 4 >= 6? no -> 3
    assert pool_out_size(5, 2, 2, 1, round_mode="floor") == 3


def test_pool_est_sizes():
    # est 2, k 2 -> ext = 2*(2-1)+1 = 3; n=5, s=1: ceil(2/1) + 1 = 3
    assert pool_out_size(5, 2, 1, 0, est=2) == 3
    # est 2, k 3 -> ext 5; n=8, s=2: ceil(3/2) + 1 = 3; floor(3/2) + 1 = 2
    assert pool_out_size(8, 3, 2, 0, est=2) == 3
    assert pool_out_size(8, 3, 2, 0, est=2, round_mode="floor") == 2
    # est 3, k 3 -> ext 7; n=7, s=1: 0/1 + 1 = 1
    assert pool_out_size(7, 3, 1, 0, est=3) == 1
    # est 2, k 2, pad 1 (< ext 3): n=5, s=1: ceil((5 + 2 - 3)/1) + 1 = 5; clip min(5, (5+1-1)//1 + 1 = 6)
    assert pool_out_size(5, 2, 1, 1, est=2) == 5
    # est 2, k 2, pad 2 (< ext 3, though >= k): n=4, s=2: ceil((4 + 4 - 3)/2) + 1 = 4;
    # clip: (4-1)*2 = 6 >= 4+2 -> 3
    assert pool_out_size(4, 2, 2, 2, est=2) == 3


def test_pool_pad_end():
    # n=3, k=2, s=1, pad_end 1: ceil((3 + 1 - 2)/1) + 1 = 3 (without pad_end: 2)
    assert pool_out_size(3, 2, 1, 0) == 2
    assert pool_out_size(3, 2, 1, 0, pad_end=1) == 3
    # n=4, k=3, s=1, pad_end 2: ceil(3) + 1 = 4; windows start 0..3, all inside the image
    assert pool_out_size(4, 3, 1, 0, pad_end=2) == 4
    # n=5, k=2, est 2 (ext 3), s=1, pad_end 2: ceil(4) + 1 = 5, every start 0..4 inside the image
    assert pool_out_size(5, 2, 1, 0, est=2, pad_end=2) == 5
    # n=4, k=2, est 2 (ext 3), s=2, pad_end 2: ceil(3/2) + 1 = 3, but a window must start inside the
    # image: (4 + 0 - 1)//2 + 1 = 2
    assert pool_out_size(4, 2, 2, 0, est=2, pad_end=2) == 2


# ---- convolution: floor((n + 2p - ext) / s) + 1 -------------------------------------------------

@pytest.mark.parametrize("n, k, s, p, d, expected", [
    (4, 2, 1, 0, 1, 3),     # (4 - 2)/1 + 1
    (4, 3, 2, 1, 1, 2),     # floor((4 + 2 - 3)/2) + 1 = 1 + 1
    (5, 3, 2, 0, 1, 2),     # floor(2/2) + 1
    (6, 3, 2, 0, 1, 2),     # floor(3/2) + 1 = 1 + 1 (conv floors where pooling would ceil to 3)
    (7, 3, 1, 0, 2, 3),     # ext = 2*2+1 = 5; (7 - 5) + 1
    (10, 3, 2, 2, 3, 4),    # ext = 3*2+1 = 7; floor((10 + 4 - 7)/2) + 1 = 3 + 1
    (5, 3, 1, 0, 2, 1),     # ext 5: one window
    (224, 7, 2, 3, 1, 112),  # floor((224 + 6 - 7)/2) + 1 = 111 + 1
    (28, 3, 1, 4, 4, 28),   # ext = 9; (28 + 8 - 9) + 1 = 28 (same-size dilated conv, pad = est)
])
def test_conv_out_size(n, k, s, p, d, expected):
    assert conv_out_size(n, k, s, p, d) == expected


def test_extent():
    assert extent(3, 1) == 3
    assert extent(3, 2) == 5   # 2*(3-1) + 1
    assert extent(2, 4) == 5   # 4*(2-1) + 1
    assert extent(1, 7) == 1   # a single tap has extent 1 whatever est is


def test_conv_kernel_extent_too_large():
    # ext 5 (k 3, est 2) > padded input 4
    with pytest.raises(ValueError, match="extent 5"):
        conv_out_size(4, 3, 1, 0, 2)
    # with pad 1 the padded input is 6 >= 5: (4 + 2 - 5) + 1 = 2
    assert conv_out_size(4, 3, 1, 1, 2) == 2


# ---- deconvolution: s*(n - 1) + ext - 2p ---------------------------------------------------------

@pytest.mark.parametrize("n, k, s, p, d, expected", [
    (16, 4, 2, 0, 1, 34),     # FCN upscore2: 2*15 + 4
    (70, 16, 8, 0, 1, 568),   # FCN upscore8: 8*69 + 16
    (16, 64, 32, 0, 1, 544),  # FCN-32s upscore: 32*15 + 64
    (2, 2, 2, 0, 1, 4),       # 2*1 + 2
    (3, 3, 2, 1, 1, 5),       # 2*2 + 3 - 2
    (2, 2, 1, 0, 2, 4),       # ext 3: 1*1 + 3
    (3, 2, 2, 1, 3, 6),       # ext 4: 2*2 + 4 - 2
])
def test_deconv_out_size(n, k, s, p, d, expected):
    assert deconv_out_size(n, k, s, p, d) == expected


def test_deconv_pad_too_large():
    # 1*(1-1) + 1 - 2*1 = -1 < 1
    with pytest.raises(ValueError, match="pad"):
        deconv_out_size(1, 1, 1, 1, 1)


def test_pool_pad_must_be_below_extent():
    with pytest.raises(ValueError, match="pad 2"):
        pool_out_size(5, 2, 2, 2)           # ext 2, pad 2
    with pytest.raises(ValueError, match="pad 3"):
        pool_out_size(9, 2, 1, 3, est=2)    # ext 3, pad 3


def test_pool_kernel_larger_than_input():
    with pytest.raises(ValueError, match="extent 5"):
        pool_out_size(4, 5, 1, 0)
    # est makes a 3-tap kernel span 5 > 4
    with pytest.raises(ValueError, match="extent 5"):
        pool_out_size(4, 3, 1, 0, est=2)
