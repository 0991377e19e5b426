"""Fillers: literal bilinear values, constant, and the statistics of the random ones."""

import numpy as np
import pytest

from reference.fillers import bilinear, fill

RNG = np.random.default_rng(0)


def test_bilinear_profiles():
    assert bilinear((1, 1, 4, 4))[0, 0, 0].tolist() == [0.0625, 0.1875, 0.1875, 0.0625]  # 0.25 x profile
    assert bilinear((1, 1, 4, 4))[0, 0, 1].tolist() == [0.1875, 0.5625, 0.5625, 0.1875]
    k3 = bilinear((2, 1, 3, 3))
    assert np.array_equal(k3[1, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    k16 = bilinear((1, 1, 16, 16))[0, 0]
    assert np.allclose(k16[7] / k16[7, 7] * 0.9375, [0.0625 + 0.125 * i for i in range(8)] + [0.9375 - 0.125 * i for i in range(8)])
    with pytest.raises(ValueError, match="square"):
        bilinear((1, 1, 3, 4))


def test_constant_and_uniform():
    assert np.all(fill({"type": "constant", "value": 2.5}, (3, 2), RNG, np.float32, "t") == 2.5)
    assert np.all(fill(None, (2,), RNG, np.float64, "t") == 0)
    u = fill({"type": "uniform", "min": -1, "max": 3}, (20000,), RNG, np.float64, "t")
    assert u.min() >= -1 and u.max() <= 3 and abs(u.mean() - 1) < 0.05


def test_gaussian_xavier_msra_statistics():
    g = fill({"type": "gaussian", "mean": 1, "std": 0.5}, (100, 200), RNG, np.float64, "t")
    assert abs(g.mean() - 1) < 0.01 and abs(g.std() - 0.5) < 0.01
    x = fill({"type": "xavier"}, (100, 20, 3, 3), RNG, np.float64, "t")   # fan_in 180
    bound = np.sqrt(3 / 180)
    assert np.abs(x).max() <= bound and abs(x.std() - bound / np.sqrt(3)) < 0.002
    m = fill({"type": "msra", "variance_norm": "FAN_OUT"}, (50, 40, 3, 3), RNG, np.float64, "t")
    assert abs(m.std() - np.sqrt(2 / (50 * 9))) < 0.002   # fan_out = count / shape[1] = 450
    assert fill({"type": "gaussian"}, (2, 2), RNG, np.float32, "t").dtype == np.float32


def test_unknown_filler():
    with pytest.raises(ValueError, match="unknown filler type 'orthogonal'"):
        fill({"type": "orthogonal"}, (2, 2), RNG, np.float32, "layer 'c'")
