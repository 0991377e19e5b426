"""numba_kernels.device_net: a training loop that stays on the GPU (or the CUDA simulator) does
what the reference Net + SGDSolver do, on a tiny FCN-like net and on its dense version (equivalent
deconvolutions, validity masks, crops, a sum, softmax with an ignore label)."""

import numpy as np
import pytest

from reference import Net, SGDSolver, densify
from reference.coord_map import derive_crop_offsets
from reference.tolerance import tolerance

try:
    from numba_kernels.device_net import DeviceNet
except ImportError as e:   # neither a GPU nor the simulator
    pytest.skip(f"numba.cuda cannot run here: {e}", allow_module_level=True)

pytestmark = pytest.mark.gpu


def L(name, type_, bottom, **kw):
    return {"name": name, "type": type_, "bottom": bottom if isinstance(bottom, list) else [bottom],
            "top": [name], **kw}


def conv(name, bottom, n, k, pad=0):
    return L(name, "Convolution", bottom, convolution_param={
        "num_output": n, "kernel_size": k, "pad": pad, "weight_filler": {"type": "gaussian", "std": 0.5},
        "bias_filler": {"type": "gaussian", "std": 0.2}})


def upsample(name, bottom, s, learn=True):
    spec = L(name, "Deconvolution", bottom, convolution_param={
        "num_output": 2, "group": 2, "bias_term": False, "kernel_size": 2 * s, "stride": s,
        "weight_filler": {"type": "bilinear"}})
    if not learn:
        spec["param"] = [{"lr_mult": 0}]
    return spec


def tiny_fcn(h=10, w=11):
    """Two conv+pool blocks, a score layer, a learnable x2 upsampling fused with a skip from pool1,
    a fixed x2 upsampling cropped to the data, SoftmaxWithLoss; densified at pool1 the sizes 10x11
    give masks (fragments of different lengths)."""
    relu = lambda b: {"name": "relu_" + b, "type": "ReLU", "bottom": [b], "top": [b]}  # noqa: E731
    layers = [
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [2, 1, h, w]}]}},
        {"name": "label", "type": "Input", "top": ["label"], "input_param": {"shape": [{"dim": [2, 1, h, w]}]}},
        conv("conv1", "data", 2, 3, 2), relu("conv1"),
        L("pool1", "Pooling", "conv1", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
        conv("conv2", "pool1", 2, 3, 1), relu("conv2"),
        L("pool2", "Pooling", "conv2", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}),
        conv("score", "pool2", 2, 3),
        upsample("up", "score", 2),
        conv("score_p1", "pool1", 2, 1),
        L("score_p1c", "Crop", ["score_p1", "up"], crop_param={"axis": 2, "offset": [0]}),
        L("fuse", "Eltwise", ["up", "score_p1c"], eltwise_param={"operation": "SUM", "coeff": [1.0, 0.5]}),
        upsample("up2", "fuse", 2, learn=False),
        L("score_full", "Crop", ["up2", "data"], crop_param={"axis": 2, "offset": [0]}),
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["score_full", "label"], "top": ["loss"],
         "loss_param": {"ignore_label": 255}}]
    return derive_crop_offsets(layers)


def batch(seed, h=10, w=11):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, size=(2, 1, h, w)).astype(float)
    label[0, 0, :2, :3] = 255
    return {"data": rng.normal(size=(2, 1, h, w)), "label": label}


@pytest.mark.parametrize("dense", [False, True], ids=["original", "dense_pool1"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_sgd_steps_on_the_device_equal_the_reference(dense, dtype):
    def make():
        net = Net(tiny_fcn(), phase="train", dtype=dtype, seed=3)
        return densify(net, "pool1") if dense else net

    host, device_copy = make(), make()
    if dense:
        assert any(layer.type == "Mask" for layer in host.layers)
    solver = SGDSolver(host, base_lr=0.1, momentum=0.9, weight_decay=1e-3)
    dev = DeviceNet(device_copy)
    tol = tolerance(dtype) * 10
    for it in range(2):
        inputs = batch(it)
        want = solver.step(1, **inputs)
        got = dev.step(0.1, 0.9, 1e-3, **inputs)
        assert abs(got - want) <= tol * max(1.0, abs(want)), (it, got, want)
    dev.download()
    for name, blobs in host.params.items():
        for i, (a, b) in enumerate(zip(blobs, device_copy.params[name])):
            scale = max(1.0, float(np.abs(a).max()))
            assert float(np.abs(a - b).max()) <= tol * scale, (name, i)
    # the fixed upsampling did not move, the learnable ones did
    assert not np.array_equal(host.params["up"][0], Net(tiny_fcn(), dtype=dtype, seed=3).params["up"][0])


def test_unsupported_layers_are_named():
    layers = tiny_fcn()[:3] + [L("tanh", "TanH", "conv1")]
    with pytest.raises(ValueError, match="'tanh' \\(TanH\\)"):
        DeviceNet(Net(layers))
    for pooling, tops in (({"pool": "STOCHASTIC"}, ["p"]), ({"pool": "MAX"}, ["p", "mask"])):
        layers = tiny_fcn()[:3] + [{"name": "pool", "type": "Pooling", "bottom": ["conv1"], "top": tops,
                                    "pooling_param": {"kernel_size": 2, "stride": 2, **pooling}}]
        with pytest.raises(ValueError, match="'pool' \\(Pooling\\)"):
            DeviceNet(Net(layers))


def test_mask_forward_and_backward_on_the_device():
    """conv -> Mask -> conv -> loss: the first conv's gradient passes the mask's backward, the loss
    its forward (positions past a fragment's end zeroed)."""
    layers = [
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [2, 2, 5, 3]}]}},
        {"name": "label", "type": "Input", "top": ["label"], "input_param": {"shape": [{"dim": [2, 1, 5, 3]}]}},
        conv("c1", "data", 2, 1),
        {"name": "m", "type": "Mask", "bottom": ["c1"], "top": ["c1"],
         "mask_param": {"step": [2, 1], "valid_h": [3, 1], "valid_w": [2], "size": [5, 3]}},
        conv("c2", "c1", 2, 1),
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["c2", "label"], "top": ["loss"]}]
    host, other = (Net(layers, phase="train", dtype=np.float64, seed=1) for _ in range(2))
    solver = SGDSolver(host, base_lr=0.5)
    dev = DeviceNet(other)
    rng = np.random.default_rng(0)
    inputs = {"data": rng.normal(size=(2, 2, 5, 3)), "label": rng.integers(0, 2, (2, 1, 5, 3)).astype(float)}
    assert abs(dev.step(0.5, **inputs) - solver.step(1, **inputs)) < 1e-12
    dev.download()
    for name in ("c1", "c2"):
        np.testing.assert_allclose(other.params[name][0], host.params[name][0], atol=1e-12)
