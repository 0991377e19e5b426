"""The dense net with global average pooling (Note [Global average pooling]), dpoa, the heads."""

import numpy as np
import pytest

from econv.tasks.common import TaskConfig, assemble, back_net, dense_net, gap_check, head, layers
from reference.fragments import all_shifts, fragment_net

CFG = TaskConfig(size=16, widths=(3, 4, 5), fc=6, batch=2)


def _baseline(task, outputs, dtype=np.float64):
    extra, pred = head(task, "out", CFG.batch)
    net = assemble(layers(CFG, outputs) + extra, build_options={"phase": "train", "dtype": dtype})
    rng = np.random.default_rng(outputs)
    for name, (w, b) in net.params.items():      # msra weights kept; biases away from zero; a last
        b[...] = rng.normal(0, 0.1, b.shape)       # layer of the size of the others (not near zero)
    w, b = net.params["out"]
    w[...] = rng.normal(0, 1, w.shape)
    b[...] = 0
    w *= 0.7 / np.abs(net.forward(**_inputs())["out"]).max()    # outputs of order 1, tanh unsaturated
    b[...] = rng.normal(0, 0.1, b.shape)
    return net, pred


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {"data": rng.normal(size=(CFG.batch, 1, CFG.size, CFG.size)),
            "label": rng.integers(0, 3, size=(CFG.batch, 1)).astype(np.float64)}


def test_dense_map_is_one_prediction_per_fragment_and_gap_is_their_mean():
    net, pred = _baseline("classification", 3)
    dense, dense_pred = dense_net(net, "classification", "pool2")
    assert dense_pred == "out_gap"
    x = _inputs()
    d = dense.forward(**x)
    base = net.forward(**x)["out"]
    assert d["out"].shape == (2, 3, 4, 4) and d["out_gap"].shape == (2, 3, 1, 1)   # 16 = 2x2 * 2x2
    # position (0, 0) is the original's own prediction (E1)
    np.testing.assert_allclose(d["out"][..., 0, 0], base, rtol=0, atol=1e-12)
    # out_gap = the mean of the 16 fragments' predictions, each from a fragment net
    frags = []
    for shifts in all_shifts(dense):
        frag, _ = fragment_net(dense, shifts)
        frags.append(frag.forward(data=x["data"])["out"].reshape(2, 3))
    assert len(frags) == 16
    np.testing.assert_allclose(d["out_gap"].reshape(2, 3), np.mean(frags, axis=0), rtol=0, atol=1e-12)
    assert gap_check(net, dense, x["data"]) < 1e-12
    # and the fragments do differ: the average is not the original's prediction
    assert np.abs(np.asarray(frags) - base).max() > 1e-3


def test_dense_loss_reads_the_average_and_its_gradient_spreads_evenly():
    net, _ = _baseline("classification", 3)
    dense, _ = dense_net(net, "classification", "pool2")
    x = _inputs(1)
    dense.forward(**x)
    g = dense.backward()["out"]                     # d loss / d out map
    # the global average gives each of the 16 positions 1/16 of the averaged score's gradient
    np.testing.assert_allclose(g, np.broadcast_to(g[..., :1, :1], g.shape), rtol=1e-12, atol=0)
    p = np.exp(dense.forward(**x)["out_gap"].reshape(2, 3))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(3)[x["label"].astype(int).ravel()]
    np.testing.assert_allclose(g[..., 0, 0] * 16, (p - onehot) / 2, rtol=1e-10)


def test_dpoa_is_the_original_architecture_with_the_dense_parameters():
    net, pred = _baseline("regression", 1)
    dense, _ = dense_net(net, "regression", "pool2")
    back, back_pred = back_net(dense, "regression")
    assert back_pred == pred == "out_tanh"
    assert [(s["name"], s["type"]) for s in back.specs] == [(s["name"], s["type"]) for s in net.specs]
    assert {k: [b.shape for b in v] for k, v in back.params.items()} == \
        {k: [b.shape for b in v] for k, v in net.params.items()}
    x = _inputs(2)
    x["label"] = np.zeros((CFG.batch, 1))
    np.testing.assert_allclose(back.forward(**x)[pred], net.forward(**x)[pred], rtol=0, atol=1e-12)
    dense.params["out"][1][...] += 0.25                   # a change in the dense net goes back
    assert not np.allclose(back_net(dense, "regression")[0].forward(**x)[pred], net.forward(**x)[pred])


def test_l1_head_gradient_is_the_sign_through_the_tanh():
    net, pred = _baseline("regression", 1)
    x = _inputs(3)
    t = net.forward(**x)[pred].reshape(-1)
    assert np.all(np.abs(t) < 0.95)                           # the tanh is not saturated
    x["label"] = (t + [0.3, -0.3])[:, None]                  # one estimate too low, one too high
    net.forward(**x)
    assert net.loss == pytest.approx(np.abs(t - x["label"].ravel()).sum() / 2, rel=1e-12)
    g = net.backward()
    sign = np.array([-1.0, 1.0])
    np.testing.assert_allclose(g[pred].reshape(-1), sign / 2, rtol=1e-12)
    np.testing.assert_allclose(g["out"].reshape(-1), sign / 2 * (1 - t ** 2), rtol=1e-10)


def test_l1_loss_layer_gradient_on_hand_values():
    from reference import Net

    net = Net([{"name": "a", "type": "Input", "top": ["a"], "input_param": {"shape": [{"dim": [2, 2]}]}},
               {"name": "b", "type": "Input", "top": ["b"], "input_param": {"shape": [{"dim": [2, 2]}]}},
               {"name": "loss", "type": "L1Loss", "bottom": ["a", "b"], "top": ["loss"]}],
              dtype=np.float64, force_backward=True)
    a, b = np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]])
    net.forward(a=a, b=b)
    assert net.loss == pytest.approx((1 + 2 + 0.5 + 0) / 2)
    g = net.backward()
    np.testing.assert_array_equal(g["a"], [[0.5, -0.5], [-0.5, 0.0]])     # sign(a - b) / N, sign(0) = 0
    np.testing.assert_array_equal(g["b"], -g["a"])


def test_head_rejects_unknown_task():
    with pytest.raises(ValueError, match="classification"):
        head("segmentation", "out", 2)
