"""gradcheck on a whole Net never passes having checked nothing: with no outputs given it checks every
top that no later layer reads (in-place tops included) and raises when there is nothing to check."""

import numpy as np
import pytest

from reference import Net, gradcheck
from reference.gradient_check import check_function, unread_tops


def readme_net(negative_slope=0.0):
    """The README's example: a dilated convolution followed by an in-place ReLU, no loss layer."""
    return Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 2, 6, 5]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
         "convolution_param": {"num_output": 3, "kernel_size": 3, "pad": 1, "dilation": 2,
                               "weight_filler": {"type": "gaussian", "std": 0.5},
                               "bias_filler": {"type": "gaussian", "std": 0.5}}},
        {"name": "relu1", "type": "ReLU", "bottom": ["conv1"], "top": ["conv1"],
         "relu_param": {"negative_slope": negative_slope}},
    ], dtype=np.float64, seed=1)


def x0():
    return np.random.default_rng(0).normal(size=(1, 2, 6, 5))


def test_in_place_top_is_an_output():
    assert unread_tops(readme_net()) == ["conv1"]


def test_in_place_output_is_checked_element_by_element():
    report = gradcheck(readme_net(0.1), {"data": x0()})
    report.assert_ok()
    # 4 directions + every input (60), weight (54) and bias (3) element, minus ReLU kinks
    assert report.samples == 4 + 60 + 54 + 3
    assert len(report.results) == report.samples - report.kinks >= 100
    numeric = np.array([r[2] for r in report.results])
    assert np.abs(numeric).max() > 0.1      # the outputs were seeded: the derivatives are not all 0


def test_a_wrong_in_place_backward_is_caught():
    net = readme_net(0.1)
    relu = net.layer("relu1")
    right = relu.run_backward
    relu.run_backward = lambda top_diffs, bottoms, tops: [2 * d for d in right(top_diffs, bottoms, tops)]
    report = gradcheck(net, {"data": x0()}, exhaustive=False)
    assert not report.ok and report.max_error > 0.1


def test_nothing_to_check_raises():
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(readme_net(), {"data": x0()}, outputs=[])
    with pytest.raises(ValueError, match="no blob named 'nope'"):
        gradcheck(readme_net(), {"data": x0()}, outputs=["nope"])
    with pytest.raises(ValueError, match="nothing to check"):
        check_function(lambda a: [a["x"]], lambda a, c: {"x": c[0]}, {"x": np.ones(3)}, wrt=[])
    with pytest.raises(ValueError, match="nothing to check"):
        check_function(lambda a: [], lambda a, c: {"x": np.zeros(3)}, {"x": np.ones(3)})


def test_a_check_whose_samples_were_all_skipped_is_not_ok():
    # |x| at 0 is a kink along every direction: every sample is skipped, so the report must fail
    report = check_function(lambda a: [np.abs(a["x"])], lambda a, c: {"x": np.zeros(2)},
                            {"x": np.zeros(2)}, directions=3, exhaustive=False)
    assert report.results == [] and report.kinks == 3 and not report.ok
    assert "nothing was checked" in str(report)
