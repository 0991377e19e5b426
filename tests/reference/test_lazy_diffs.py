"""A net used only for forward holds no diff buffers; the first backward allocates them."""

import numpy as np

from reference import Net
from reference.models import vgg16


def small_vgg():
    return Net(vgg16(widths=(2, 2, 2, 2, 2), fc=(8, 8, 3), input_shape=(2, 3, 32, 32)), seed=0)


def test_no_diffs_after_build_or_forward():
    net = small_vgg()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    net.forward(data=x)
    learned = [layer for layer in net.layers if layer.blobs]
    assert len(learned) == 16
    assert not any(layer.has_diffs for layer in learned)


def test_diffs_present_and_right_after_backward():
    net = small_vgg()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    out = net.forward(data=x)
    net.backward({"fc8": np.ones_like(out["fc8"])})
    for layer in net.layers:
        if layer.blobs:
            assert layer.has_diffs
            assert [d.shape for d in layer.diffs] == [b.shape for b in layer.blobs]
    # fc8's weight gradient is dy.T @ x with dy = ones: every row is the column sum of fc7's output
    fc7 = net.forward(data=x)["fc7"]
    assert np.allclose(net.param_diffs["fc8"][0], np.ones((3, 1)) * fc7.sum(axis=0)[None, :], rtol=1e-5)
    assert np.allclose(net.param_diffs["fc8"][1], [2, 2, 2])


def test_inner_product_backward_both_layouts_hand_checked():
    # x = [[1, 2]], W (N=3, K=2) = [[1, 0], [1, 1], [0, 2]], dy = [[1, 2, 3]]
    for transpose in (False, True):
        w = np.array([[1, 0], [1, 1], [0, 2]], np.float64)
        spec = {"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["y"],
                "inner_product_param": {"num_output": 3, "transpose": transpose}}
        net = Net([{"name": "x", "type": "Input", "top": ["x"], "input_param": {"shape": [{"dim": [1, 2]}]}},
                   spec], dtype=np.float64, force_backward=True)
        net.params["ip"][0][...] = w.T if transpose else w
        net.forward(x=np.array([[1.0, 2.0]]))
        dx = net.backward({"y": np.array([[1.0, 2.0, 3.0]])})["x"]
        assert dx.tolist() == [[3.0, 8.0]]                     # dy @ W
        dw = np.array([[1, 2], [2, 4], [3, 6]], np.float64)    # dy.T @ x
        assert net.param_diffs["ip"][0].tolist() == (dw.T if transpose else dw).tolist()
