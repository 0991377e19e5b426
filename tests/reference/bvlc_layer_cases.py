"""The gradient-check table of the BVLC layer types added for issue 13 (joined to ``CASES`` in
test_gradcheck_layers.py).  Inputs sit away from kinks (ReLU-like corners, clip bounds, hinge
margins, ties) so that every sample is differentiable; rows: (id, layer dict, bottoms, phase[,
keyword options for ``gradcheck``]); every row is also run in float32 against float64
(test_layers_bvlc.py)."""

import numpy as np

RNG = np.random.default_rng(13)


def distinct_values(rng, *shape, lo=-2.0, hi=2.0):
    """Values (hi - lo) / size apart, symmetric about the middle of [lo, hi] and never at it: no
    ties, no ReLU kinks; a permutation drawn from ``rng`` (each test module keeps its own stream)."""
    n = int(np.prod(shape))
    return (lo + (hi - lo) * (rng.permutation(n) + 0.5) / n).reshape(shape)


def distinct(*shape, lo=-2.0, hi=2.0):
    return distinct_values(RNG, *shape, lo=lo, hi=hi)


def L(type_, bottoms, tops=1, **params):
    return {"name": type_.lower(), "type": type_, "bottom": [f"b{i}" for i in range(bottoms)],
            "top": [f"t{i}" for i in range(tops)], **params}


def gauss(std=0.5):
    return {"type": "gaussian", "std": std}


def labels(*values):
    return np.array(values, dtype=float)


# A 3x3 infogain matrix with distinct positive entries (rows need not sum to 1).
H = np.array([[1.0, 0.2, 0.1], [0.3, 0.9, 0.4], [0.05, 0.5, 1.2]])

# ContrastiveLoss pairs (3 channels): distances 1.0, 1.5, 0.5, 2.5; similarity 1, 0, 0, 0.  With margin 2
# the dissimilar pairs at 1.5 and 0.5 are inside the margin (active), the one at 2.5 outside.
PAIR_A = np.array([[1.0, 0, 0], [0, 1.5, 0], [0.3, 0.4, 0], [1.5, 2.0, 0]]) + 0.25
PAIR_B = np.full((4, 3), 0.25)
SIMILAR = labels(1, 0, 0, 0)

RECURRENT = {"num_output": 3, "weight_filler": gauss(0.6), "bias_filler": gauss(0.3)}
CONT = labels(0, 0, 1, 0, 1, 1).reshape(3, 2)   # stream 1 restarts at t = 1

BVLC_CASES = [
    ("prelu", L("PReLU", 1, prelu_param={"filler": gauss()}), [distinct(2, 3, 4)], "TEST"),
    ("prelu_shared", L("PReLU", 1, prelu_param={"channel_shared": True}), [distinct(2, 3, 2, 2)], "TEST"),
    ("elu", L("ELU", 1, elu_param={"alpha": 0.7}), [distinct(2, 6)], "TEST"),
    ("absval", L("AbsVal", 1), [distinct(2, 6)], "TEST"),
    ("bnll", L("BNLL", 1), [3 * distinct(2, 6)], "TEST"),
    ("exp_base2", L("Exp", 1, exp_param={"base": 2.0, "scale": 0.5, "shift": 1.0}), [distinct(2, 6)], "TEST"),
    ("exp_e", L("Exp", 1), [distinct(2, 6)], "TEST"),
    ("log_base10", L("Log", 1, log_param={"base": 10.0, "scale": 2.0, "shift": 5.0}), [distinct(2, 6)],
     "TEST"),
    ("log_e", L("Log", 1), [distinct(2, 6, lo=0.5, hi=3.0)], "TEST"),
    ("clip", L("Clip", 1, clip_param={"min": -1.0, "max": 1.2}), [distinct(2, 6)], "TEST"),
    ("swish", L("Swish", 1, swish_param={"beta": 1.5}), [distinct(2, 6)], "TEST"),
    ("slice_points", L("Slice", 1, tops=3, slice_param={"axis": 1, "slice_point": [1, 3]}),
     [distinct(2, 5, 2)], "TEST"),
    ("slice_dim_legacy", L("Slice", 1, tops=2, slice_param={"slice_dim": 0}), [distinct(4, 3)], "TEST"),
    ("tile", L("Tile", 1, tile_param={"axis": 1, "tiles": 3}), [distinct(2, 2, 3)], "TEST"),
    ("tile_last_axis", L("Tile", 1, tile_param={"axis": -1, "tiles": 2}), [distinct(2, 3)], "TEST"),
    ("bias_learned", L("Bias", 1, bias_param={"filler": gauss()}), [distinct(2, 3, 2, 2)], "TEST"),
    ("bias_two_bottoms", L("Bias", 2, bias_param={"axis": 0, "num_axes": 2}),
     [distinct(2, 3, 4), distinct(2, 3)], "TEST"),
    ("bias_scalar", L("Bias", 1, bias_param={"num_axes": 0, "filler": gauss()}), [distinct(2, 3)], "TEST"),
    ("reduction_sum", L("Reduction", 1, reduction_param={"operation": "SUM", "axis": 1, "coeff": 2.0}),
     [distinct(2, 3, 2)], "TEST"),
    ("reduction_asum", L("Reduction", 1, reduction_param={"operation": "ASUM"}), [distinct(2, 3)], "TEST"),
    ("reduction_sumsq", L("Reduction", 1, reduction_param={"operation": "SUMSQ", "axis": -1}),
     [distinct(2, 3, 2)], "TEST"),
    ("reduction_mean", L("Reduction", 1, reduction_param={"operation": "MEAN", "axis": 1, "coeff": -0.5}),
     [distinct(2, 3, 2)], "TEST"),
    ("mvn", L("MVN", 1), [distinct(2, 3, 2, 3)], "TEST"),
    ("mvn_across_mean_only", L("MVN", 1, mvn_param={"across_channels": True, "normalize_variance": False}),
     [distinct(2, 3, 2, 2)], "TEST"),
    ("mvn_across_eps", L("MVN", 1, mvn_param={"across_channels": True, "eps": 0.0}),
     [distinct(2, 2, 3)], "TEST"),
    ("embed", L("Embed", 1, embed_param={"num_output": 3, "input_dim": 5, "weight_filler": gauss(),
                                          "bias_filler": gauss()}), [labels(0, 2, 4, 1, 2, 2).reshape(2, 3)],
     "TEST"),
    ("spp_max", L("SPP", 1, spp_param={"pyramid_height": 3}), [distinct(1, 2, 8, 7)], "TEST"),
    ("spp_ave", L("SPP", 1, spp_param={"pyramid_height": 2, "pool": "AVE"}), [distinct(2, 1, 5, 6)], "TEST"),
    ("spp_stochastic_train", L("SPP", 1, spp_param={"pyramid_height": 3, "pool": "STOCHASTIC"}),
     [distinct(1, 2, 4, 8, lo=0.1, hi=2.0)], "TRAIN"),
    ("spp_one_level", L("SPP", 1, spp_param={"pyramid_height": 1}), [distinct(1, 2, 3, 4)], "TEST"),
    ("filter", L("Filter", 3, tops=2), [distinct(4, 3), distinct(4, 2, 2), labels(0, 1, 1, 0).reshape(4, 1)],
     "TEST"),
    ("batch_reindex", L("BatchReindex", 2), [distinct(5, 2), labels(4, 0, 4, 0, 1, 2)], "TEST"),
    ("parameter", L("Parameter", 0, parameter_param={"shape": {"dim": [2, 3]}}), [], "TEST"),
    ("im2col", L("Im2col", 1, convolution_param={"kernel_size": 3, "stride": 2, "pad": 1}),
     [distinct(2, 2, 5, 6)], "TEST"),
    ("im2col_dilated_rect", L("Im2col", 1, convolution_param={"kernel_h": 2, "kernel_w": 3, "dilation": 2}),
     [distinct(1, 2, 5, 7)], "TEST"),
    ("sigmoid_xent", L("SigmoidCrossEntropyLoss", 2), [distinct(2, 3), distinct(2, 3, lo=0, hi=1)], "TEST"),
    ("sigmoid_xent_ignore_valid", L("SigmoidCrossEntropyLoss", 2, loss_weight=[1.5],
                                    loss_param={"ignore_label": -1, "normalization": "VALID"}),
     [distinct(2, 3), labels(1, -1, 0, 0.3, -1, 1).reshape(2, 3)], "TEST"),
    ("multinomial_logistic", L("MultinomialLogisticLoss", 2),
     [distinct(3, 4, lo=0.1, hi=0.9), labels(2, 0, 3).reshape(3, 1, 1, 1)], "TEST"),
    ("infogain", L("InfogainLoss", 3), [distinct(2, 3, 2), labels(0, 2, 1, 1).reshape(2, 2), H], "TEST"),
    ("infogain_ignore_full", L("InfogainLoss", 3, loss_param={
        "ignore_label": 1, "normalization": "FULL"}, infogain_loss_param={"axis": -1}),
     [distinct(2, 2, 3), labels(0, 1, 2, 2).reshape(2, 2, 1), H], "TEST"),
    ("hinge_l1", L("HingeLoss", 2), [distinct(3, 4), labels(1, 3, 0)], "TEST"),
    ("hinge_l2", L("HingeLoss", 2, hinge_loss_param={"norm": "L2"}, loss_weight=[0.5]),
     [distinct(3, 4), labels(2, 0, 0)], "TEST"),
    ("contrastive_legacy", L("ContrastiveLoss", 3,
                             contrastive_loss_param={"margin": 3.0, "legacy_version": True}),
     [PAIR_A, PAIR_B, SIMILAR], "TEST"),
    # Caffe's dissimilar-pair gradient divides by (d + 1e-4) where the derivative has d: relative to the
    # whole gradient the checker measures 7.5e-6 here, inside the default rtol 1e-5.
    ("contrastive", L("ContrastiveLoss", 3, contrastive_loss_param={"margin": 2.0}),
     [PAIR_A, PAIR_B, SIMILAR], "TEST"),
    ("pool_max_mask", L("Pooling", 1, tops=2, pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2}),
     [distinct(1, 2, 5, 6)], "TEST"),
    ("pool_stochastic_test", L("Pooling", 1, pooling_param={"pool": "STOCHASTIC", "kernel_size": 3,
                                                            "stride": 2}),
     [distinct(1, 2, 5, 6, lo=0.1, hi=2.0)], "TEST"),
    ("pool_stochastic_train", L("Pooling", 1, pooling_param={"pool": "STOCHASTIC", "kernel_size": 2,
                                                             "stride": 2}),
     [distinct(2, 2, 4, 5, lo=0.1, hi=2.0)], "TRAIN"),
    ("lstm_unit", L("LSTMUnit", 3, tops=2),
     [distinct(1, 2, 3), distinct(1, 2, 12), labels(0, 1).reshape(1, 2)], "TEST"),
    ("rnn", L("RNN", 2, recurrent_param=RECURRENT), [distinct(3, 2, 2), CONT], "TEST"),
    ("rnn_static", L("RNN", 3, recurrent_param=RECURRENT), [distinct(3, 2, 2), CONT, distinct(2, 3)], "TEST"),
    ("lstm", L("LSTM", 2, recurrent_param=RECURRENT), [distinct(3, 2, 2), CONT], "TEST"),
    ("lstm_static", L("LSTM", 3, recurrent_param=RECURRENT), [distinct(3, 2, 1, 2), CONT, distinct(2, 2)],
     "TEST"),
]
