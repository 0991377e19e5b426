"""Which layers expect a backward (``Net._needs_backward``, Caffe's ``layer_need_backward_``), and the
MAX Pooling layer that keeps its forward's argmax then, as Caffe keeps ``max_idx_``: checked with a
NumPy backend that offers ``pool2d_argmax`` (the reference ops plus an argmax written from the
window definition), so that no Numba code runs here."""

import types

import numpy as np

import reference as ref
import reference.ops as reference_ops
from reference import Net
from reference.pool import pool_geometry


def data(name, dims):
    return {"name": name, "type": "Input", "top": [name], "input_param": {"shape": [{"dim": dims}]}}


def layer(name, type_, bottom, top=None, **p):
    bottom = [bottom] if isinstance(bottom, str) else bottom
    return {"name": name, "type": type_, "bottom": bottom, "top": [top or name], **p}


CONV = {"convolution_param": {"num_output": 2, "kernel_size": 1,
                              "weight_filler": {"type": "gaussian", "std": 1.0}}}
POOL = {"pooling_param": {"kernel_size": 2, "stride": 1}}


def specs(loss=True, conv_lr=1.0, propagate=True):
    out = [data("data", [1, 2, 4, 4]), data("target", [1, 2, 3, 3]),
           layer("conv", "Convolution", "data", **CONV, param=[{"lr_mult": conv_lr}] * 2),
           layer("pool", "Pooling", "conv", **POOL, **({} if propagate else {"propagate_down": [False]}))]
    if loss:
        out.append(layer("loss", "EuclideanLoss", ["pool", "target"]))
    return out


def flags(net):
    return {layer.name: layer.need_backward for layer in net.layers}


def test_caffe_rule_for_which_layers_expect_a_backward():
    train = flags(Net(specs(), phase="train"))
    assert train == {"data": False, "target": False, "conv": True, "pool": True, "loss": True}
    # no loss: nothing contributes to one (a deploy net), unless force_backward
    assert not any(flags(Net(specs(loss=False))).values())
    forced = flags(Net(specs(loss=False), force_backward=True))
    assert forced == {"data": False, "target": False, "conv": True, "pool": True}
    # frozen conv on the data: nothing below the loss needs a diff
    frozen = flags(Net(specs(conv_lr=0.0), phase="train"))
    assert (frozen["conv"], frozen["pool"]) == (False, False)
    # propagate_down: false: the pool's one bottom gets no diff, the conv below no top diff
    blocked = flags(Net(specs(propagate=False), phase="train"))
    assert (blocked["pool"], blocked["conv"]) == (False, False)


def _first_max_argmax(x, kernel, stride, pad, est, round_mode, pad_end):
    """The first real maximum of every window in row-major tap order, as ``h*W + w``; -1 if none."""
    geo = pool_geometry("t", x.shape, kernel, stride, pad, est, "max", round_mode, pad_end)
    (kh, kw), (sh, sw), (ph, pw), (eh, ew) = geo.kernel, geo.stride, geo.pad, geo.est
    n, c, h_in, w_in = x.shape
    arg = np.full((n, c) + geo.out_hw, -1, np.int64)
    best = np.full(arg.shape, -np.inf)
    for i in range(kh):
        for j in range(kw):
            for oy in range(geo.out_hw[0]):
                for ox in range(geo.out_hw[1]):
                    h, w = oy * sh - ph + i * eh, ox * sw - pw + j * ew
                    if 0 <= h < h_in and 0 <= w < w_in:
                        wins = x[:, :, h, w] > best[:, :, oy, ox]
                        best[:, :, oy, ox] = np.where(wins, x[:, :, h, w], best[:, :, oy, ox])
                        arg[:, :, oy, ox] = np.where(wins, h * w_in + w, arg[:, :, oy, ox])
    return arg


def spy_backend():
    """The reference ops plus ``pool2d_argmax``; records what each pooling call received."""
    log = []

    def pool2d_argmax(x, kernel, stride=1, pad=0, est=1, round_mode="ceil", pad_end=0):
        log.append(("argmax", x))
        y = ref.pool2d(x, kernel, stride, pad, est, "max", round_mode, pad_end)
        return y, _first_max_argmax(x, kernel, stride, pad, est, round_mode, pad_end)

    def pool2d_backward(dy, x, *args, argmax=None):
        log.append(("backward", argmax))
        if argmax is None:
            return ref.pool2d_backward(dy, x, *args)
        dx = np.zeros_like(x)
        planes = dx.reshape(x.shape[0] * x.shape[1], -1)
        for p, (g, a) in enumerate(zip(dy.reshape(len(planes), -1), argmax.reshape(len(planes), -1))):
            np.add.at(planes[p], a[a >= 0], g[a >= 0])
        return dx

    ops = {n: getattr(reference_ops, n) for n in reference_ops.OP_NAMES}
    ops.update(pool2d_argmax=pool2d_argmax, pool2d_backward=pool2d_backward)
    return types.SimpleNamespace(**ops), log


def test_pooling_keeps_the_argmax_for_its_backward():
    backend, log = spy_backend()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 2, 4, 4))
    target = rng.normal(size=(1, 2, 3, 3))
    net, plain = (Net(specs(), phase="train", dtype=np.float64, backend=b)
                  for b in (backend, "numpy"))
    plain.params["conv"][0][...] = net.params["conv"][0]
    tops = [n.forward(data=x, target=target)["pool"] for n in (net, plain)]
    np.testing.assert_array_equal(tops[0], tops[1])
    assert [kind for kind, _ in log] == ["argmax"]
    diffs = [n.backward()["data"] for n in (net, plain)]
    np.testing.assert_allclose(diffs[0], diffs[1], rtol=0, atol=1e-12)
    kind, argmax = log[-1]
    assert kind == "backward" and argmax is net.layer("pool").kept_argmax[2]


def test_a_backend_without_pool2d_argmax_keeps_the_plain_path():
    net = Net(specs(), phase="train", dtype=np.float64)       # the reference: no pool2d_argmax
    assert net.layer("pool").need_backward
    net.forward(data=np.ones((1, 2, 4, 4)), target=np.zeros((1, 2, 3, 3)))
    assert net.layer("pool").kept_argmax is None
    assert np.isfinite(net.backward()["data"]).all()


def test_no_argmax_without_an_expected_backward_and_a_fallback_for_another_bottom():
    backend, log = spy_backend()
    net = Net(specs(loss=False), dtype=np.float64, backend=backend)    # inference: no loss
    x = np.random.default_rng(1).normal(size=(1, 2, 4, 4))
    net.forward(data=x, target=np.zeros((1, 2, 3, 3)))
    assert log == [] and net.layer("pool").kept_argmax is None
    forced = Net(specs(loss=False), dtype=np.float64, backend=backend, force_backward=True)
    y = forced.forward(data=x, target=np.zeros((1, 2, 3, 3)))["pool"]
    pool = forced.layer("pool")
    other = np.random.default_rng(2).normal(size=(1, 2, 4, 4))
    dy = np.ones_like(y)
    np.testing.assert_allclose(pool.backward([dy], [other], [y])[0],
                               ref.pool2d_backward(dy, other, 2, 1), rtol=0, atol=1e-12)
    assert log[-1] == ("backward", None)                      # recomputed for the other array
