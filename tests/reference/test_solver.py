"""SGDSolver: Caffe's update rule on hand-computed numbers, the lr policies, iter_size, lr/decay
multipliers, gradient clipping."""

import math

import numpy as np
import pytest

from reference import Net, SGDSolver
from reference.solver import learning_rate


def one_weight_net(w0=1.0, bias=False, **ip):
    """loss = (w * x + b - target)^2 / 2 with x = 1, target = 0: d loss / dw = w + b."""
    net = Net([
        {"name": "x", "type": "Input", "top": ["x"], "input_param": {"shape": [{"dim": [1, 1]}]}},
        {"name": "t", "type": "Input", "top": ["t"], "input_param": {"shape": [{"dim": [1, 1]}]}},
        {"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["y"],
         "inner_product_param": {"num_output": 1, "bias_term": bias}, **ip},
        {"name": "loss", "type": "EuclideanLoss", "bottom": ["y", "t"], "top": ["loss"]},
    ], dtype=np.float64)
    net.params["ip"][0][...] = w0
    return net


FEED = {"x": np.ones((1, 1)), "t": np.zeros((1, 1))}


def test_caffe_update_worked_example():
    # diff = w; V = 0.9 V + 0.1 (diff + 0.1 w); w -= V
    # step 1: V = 0.1 * (1 + 0.1) = 0.11, w = 0.89
    # step 2: diff = 0.89 + 0.089 = 0.979, V = 0.099 + 0.0979 = 0.1969, w = 0.6931
    net = one_weight_net()
    solver = SGDSolver(net, base_lr=0.1, momentum=0.9, weight_decay=0.1)
    loss = solver.step(1, **FEED)
    assert loss == pytest.approx(0.5)
    assert net.params["ip"][0][0, 0] == pytest.approx(0.89, abs=1e-15)
    solver.step(1, **FEED)
    assert solver.history["ip"][0][0, 0] == pytest.approx(0.1969, abs=1e-15)
    assert net.params["ip"][0][0, 0] == pytest.approx(0.6931, abs=1e-15)
    assert solver.iter == 2


def test_lr_mult_and_decay_mult():
    # bias: lr_mult 2, decay_mult 0; with w = 1, b = 0: diff_w = diff_b = 1
    # w: V = 0.1 * (1 + 0.5 * 1) = 0.15 ; b: V = 0.2 * 1 = 0.2
    net = one_weight_net(bias=True, param=[{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}])
    SGDSolver(net, base_lr=0.1, weight_decay=0.5).step(1, **FEED)
    w, b = net.params["ip"]
    assert w[0, 0] == pytest.approx(0.85) and b[0] == pytest.approx(-0.2)


def test_lr_mult_zero_freezes():
    net = one_weight_net(param=[{"lr_mult": 0}])
    SGDSolver(net, base_lr=1.0, weight_decay=1.0).step(3, **FEED)
    assert net.params["ip"][0][0, 0] == 1.0


def test_iter_size_averages_the_accumulated_diffs():
    # two sub-batches with targets 0 and 2: diffs w - 0 = 1 and w - 2 = -1 -> mean 0 -> w stays 1
    batches = iter([{"x": np.ones((1, 1)), "t": np.zeros((1, 1))},
                    {"x": np.ones((1, 1)), "t": np.full((1, 1), 2.0)}])
    net = one_weight_net()
    solver = SGDSolver(net, base_lr=0.5, iter_size=2)
    loss = solver.step(1, feed=lambda: next(batches))
    assert loss == pytest.approx(0.5)           # mean of 0.5 and 0.5
    assert net.params["ip"][0][0, 0] == pytest.approx(1.0)


def test_gradient_clipping():
    net = one_weight_net(w0=4.0)                   # diff 4, clipped to norm 1
    SGDSolver(net, base_lr=0.5, clip_gradients=1.0).step(1, **FEED)
    assert net.params["ip"][0][0, 0] == pytest.approx(3.5)


def test_l1_regularization():
    net = one_weight_net(w0=-2.0)                  # diff -2 + 0.5 * sign(-2) = -2.5
    SGDSolver(net, base_lr=0.1, weight_decay=0.5, regularization_type="L1").step(1, **FEED)
    assert net.params["ip"][0][0, 0] == pytest.approx(-1.75)


@pytest.mark.parametrize("policy, kw, it, expected", [
    ("fixed", {}, 7, 0.1),
    ("step", {"gamma": 0.5, "stepsize": 3}, 7, 0.1 * 0.25),
    ("multistep", {"gamma": 0.1, "stepvalue": (2, 5, 9)}, 5, 0.1 * 0.01),
    ("exp", {"gamma": 0.9}, 2, 0.1 * 0.81),
    ("inv", {"gamma": 1.0, "power": 2.0}, 1, 0.1 / 4),
    ("poly", {"power": 2.0, "max_iter": 10}, 5, 0.1 * 0.25),
    ("sigmoid", {"gamma": 1.0, "stepsize": 3}, 3, 0.05),
])
def test_lr_policies(policy, kw, it, expected):
    assert learning_rate(it, 0.1, policy, **kw) == pytest.approx(expected, rel=1e-12)


def test_bad_solver_settings():
    net = one_weight_net()
    with pytest.raises(ValueError, match="lr_policy"):
        SGDSolver(net, base_lr=0.1, lr_policy="cosine")
    with pytest.raises(ValueError, match="iter_size"):
        SGDSolver(net, base_lr=0.1, iter_size=0)
    with pytest.raises(FloatingPointError, match="loss is"), np.errstate(over="ignore", invalid="ignore"):
        SGDSolver(one_weight_net(w0=1e200), base_lr=1.0).step(1, **FEED)
    assert math.isfinite(SGDSolver(net, base_lr=0.1).step(1, **FEED))
