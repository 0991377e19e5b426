"""reference.conventions: the catalogue's pooling variants are Caffe's pooling when every knob is
Caffe's, each knob changes what it should, and explain() names the knob that reproduces a value."""

import numpy as np
import pytest

import reference as ref
from reference.conventions import CATALOGUE, alternatives, explain, layer_forward, pool_variant
from reference.optable import cases, hard_cases


def _pool_cases():
    return [c for c in hard_cases("pool2d") + cases("pool2d", count=12)
            if c.params["est"] == (1, 1) and c.params["pad_end"] == (0, 0)]


@pytest.mark.parametrize("case", _pool_cases(), ids=lambda c: c.name)
def test_caffe_knobs_are_the_reference_pooling(case):
    p = case.params
    x = case.arrays["x"]
    got = pool_variant(x, p["kernel"], p["stride"], p["pad"], p["mode"], p["round_mode"])
    want = ref.pool2d(x, p["kernel"], p["stride"], p["pad"], p["est"], p["mode"], p["round_mode"])
    assert got.shape == want.shape and np.array_equal(got, want)


def test_pool_knobs_on_a_hand_checked_case():
    """4x4 ones, k3 s2 pad 1, AVE (pool.py's worked example): windows [-1, 2), [1, 4), [3, 5)."""
    x = np.ones((1, 1, 4, 4))
    caffe = pool_variant(x, 3, 2, 1, "ave", "ceil")
    # divisors 3, 3, 2 per axis (the overhang past H + pad = 5 is not counted); real pixels 2, 3, 1
    np.testing.assert_allclose(caffe[0, 0], [[4 / 9, 6 / 9, 2 / 6], [6 / 9, 1, 3 / 6],
                                             [2 / 6, 3 / 6, 1 / 4]], rtol=1e-15)
    real = pool_variant(x, 3, 2, 1, "ave", "ceil", divisor="real pixels")
    assert np.array_equal(real, np.ones((1, 1, 3, 3)))
    whole = pool_variant(x, 3, 2, 1, "ave", "ceil", divisor="whole window")
    assert whole[0, 0, 2, 2] == pytest.approx(1 / 9)
    assert pool_variant(x, 3, 2, 1, "ave", "floor").shape == (1, 1, 2, 2)
    # no padding, k2 s3 on 6: Caffe keeps a 3rd window starting at 6 (past the input)
    y = np.arange(36.0).reshape(1, 1, 6, 6)
    assert pool_variant(y, 2, 3, 0, "max", "ceil")[0, 0, 2, 2] == -ref.pool.FLT_MAX
    assert pool_variant(y, 2, 3, 0, "max", "ceil", empty="0")[0, 0, 2, 2] == 0
    assert pool_variant(y, 2, 3, 0, "max", "ceil", clip="always").shape == (1, 1, 2, 2)
    # with padding the clip rule drops a window starting in the padding: k2 s2 pad 1 on 7 -> 4, not 5
    assert pool_variant(np.ones((1, 1, 7, 7)), 2, 2, 1, "max", "ceil").shape == (1, 1, 4, 4)
    assert pool_variant(np.ones((1, 1, 7, 7)), 2, 2, 1, "max", "ceil", clip="never").shape == (1, 1, 5, 5)


def test_lrn_k_explained_on_literal_values():
    """ACROSS, n 1, alpha 1, beta 1: x = 2 -> Caffe (k 2) 2 / (2 + 4) = 1/3; with k ignored 2/5."""
    spec = {"name": "n", "type": "LRN", "bottom": ["x"], "top": ["y"],
            "lrn_param": {"local_size": 1, "alpha": 1.0, "beta": 1.0, "k": 2.0}}
    x = np.full((1, 1, 1, 1), 2.0)
    assert layer_forward(spec, [], [x])[0].item() == pytest.approx(1 / 3)
    found = explain(spec, [], [x], np.full((1, 1, 1, 1), 0.4))
    assert found.key == "LRN.k" and found.words == "lrn_param.k ignored (k=1 reproduces theirs to 0e+00)"
    assert explain(spec, [], [x], np.full((1, 1, 1, 1), 0.5)) is None      # no knob gives 0.5


SPECS = {   # one layer per catalogue type, with every knob set away from its default
    "Convolution": ({"convolution_param": {"num_output": 4, "kernel_size": 3, "dilation": 2, "pad": 2,
                                           "group": 2}}, [(1, 4, 7, 7)]),
    "Deconvolution": ({"convolution_param": {"num_output": 4, "kernel_size": 3, "stride": 2, "pad": 1,
                                             "dilation": 2, "group": 2}}, [(1, 4, 4, 4)]),
    "Pooling": ({"pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
                [(1, 2, 6, 6)]),
    "LRN": ({"lrn_param": {"local_size": 3, "alpha": 0.5, "k": 2.0}}, [(1, 5, 3, 3)]),
    "InnerProduct": ({"inner_product_param": {"num_output": 3, "transpose": True}}, [(2, 4, 2, 2)]),
    "BatchNorm": ({"batch_norm_param": {"use_global_stats": True, "eps": 0.1}}, [(2, 3, 2, 2)]),
    "Scale": ({"scale_param": {"bias_term": True}}, [(2, 3, 2, 2)]),
    "Crop": ({"crop_param": {"axis": 2, "offset": [1, 2]}}, [(1, 2, 6, 6), (1, 2, 3, 3)]),
    "Eltwise": ({"eltwise_param": {"operation": "SUM", "coeff": [2.0, -1.0]}}, [(1, 2, 2, 2)] * 2),
    "ReLU": ({"relu_param": {"negative_slope": 0.2}}, [(1, 2, 3, 3)]),
    "Dropout": ({"dropout_param": {"dropout_ratio": 0.4}}, [(1, 2, 3, 3)]),
    "Power": ({"power_param": {"power": 2.0, "scale": 0.5, "shift": 1.0}}, [(1, 2, 3, 3)]),
}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_alternative_changes_the_layer_and_is_explained(kind):
    """Each alternative differs from Caffe's output (the check checks something), and explain()
    on the alternative's own values names an alternative that reproduces them."""
    params, shapes = SPECS[kind]
    spec = {"name": "l", "type": kind, "bottom": [f"b{i}" for i in range(len(shapes))], "top": ["t"],
            **params}
    rng = np.random.default_rng(3)
    bottoms = [rng.standard_normal(s) for s in shapes]
    layer = ref.create_layer(spec, dtype=np.float64, rng=rng)
    layer.setup(shapes)
    blobs = [np.abs(b) + 0.5 if kind == "BatchNorm" else b for b in
             (rng.standard_normal(b.shape) for b in layer.blobs)]
    if kind == "BatchNorm":
        blobs[2] = np.array([2.0])
    caffe = layer_forward(spec, blobs, bottoms)[0]
    alts = alternatives(spec, shapes)
    assert alts and set(a.type for a in alts) == {kind}
    assert CATALOGUE[kind]
    for alt in alts:
        value = alt.compute(spec, blobs, bottoms)[0]
        assert value.shape != caffe.shape or not np.allclose(value, caffe), alt.key
        found = explain(spec, blobs, bottoms, value)
        assert found is not None and found.error <= 1e-12, alt.key


def test_verify_explanations_come_from_the_catalogue():
    """reference.oracle.explain: a floor-rounding implementation is named as such on the padded
    ceil case; a case the implementation gets right has no failure to explain."""
    import types

    from reference.oracle import explain as explain_verify, verify

    def floor_pool2d(x, kernel, **p):
        return ref.pool2d(x, kernel, **{**p, "round_mode": "floor"})

    report = verify(types.SimpleNamespace(pool2d=floor_pool2d), cases=hard_cases("pool2d"),
                    dtypes=("float64",))
    found = explain_verify(report)
    assert found["pool2d_hard_ceil_overhang_pad_ave"].key == "Pooling.round=other"
    assert "round_mode read as FLOOR" in found["pool2d_hard_ceil_overhang_pad_ave"].words
    assert "pool2d_hard_tie_overlap" not in found
    assert ("      the catalogue (reference.conventions): pooling_param.round_mode read as FLOOR (Caffe: "
            "CEIL) (reproduces theirs to 0e+00)") in str(report)
