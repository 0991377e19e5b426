"""densify / dpoa: the equivalence contract E1-E4 of DESIGN.md section 4, on a VGG-16 layout (pool4 and
pool3), a net with padded average pooling, and two stride-2 convolutions."""

import numpy as np
import pytest

import reference as ref
from reference import Net, SGDSolver, densify, dpoa
from reference.fragments import all_shifts, check_equivalence, check_gradients, fragment_net
from reference.models import vgg16
from reference.tolerance import tolerance

RNG = np.random.default_rng(11)


def vgg(dtype=np.float64, shape=(1, 2, 61, 67)):
    """VGG-16's layout (13 conv, 5 pool, fc6-8 InnerProduct) at tiny widths; 61x67 is odd at every
    level, so ceil windows hang over the edge and fragments have different lengths."""
    return Net(vgg16(widths=(3, 4, 4, 5, 5), fc=(6, 5, 4), input_shape=shape), dtype=dtype, seed=1)


def data(shape):
    return {"data": RNG.normal(size=shape)}


def L(name, type_, bottom, **p):
    return {"name": name, "type": type_, "bottom": [bottom], "top": [name], **p}


def conv(name, bottom, n, k=3, **extra):
    return L(name, "Convolution", bottom, convolution_param={
        "num_output": n, "kernel_size": k, "weight_filler": {"type": "gaussian", "std": 0.4},
        "bias_filler": {"type": "gaussian", "std": 0.1}, **extra})


def ave_net(dtype=np.float64):
    """max pool (start) -> padded conv -> padded AVE pool (ceil windows) -> strided conv -> fc."""
    return Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [2, 2, 23, 19]}]}},
        conv("c1", "data", 3, pad=1),
        L("pool1", "Pooling", "c1", pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2}),
        conv("c2", "pool1", 4, pad=2),
        L("r2", "ReLU", "c2"),
        L("pool2", "Pooling", "r2", pooling_param={"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}),
        conv("c3", "pool2", 3, k=2, stride=2, pad=1),
        L("fc", "InnerProduct", "c3", inner_product_param={"num_output": 3,
                                                            "weight_filler": {"type": "gaussian"}}),
    ], dtype=dtype, seed=2)


def strided_convs(dtype=np.float64):
    """two stride-2 convolutions, densified at the first."""
    return Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 2, 21, 18]}]}},
        conv("s1", "data", 3, stride=2, pad=1),
        L("t1", "TanH", "s1"),
        conv("s2", "t1", 4, stride=2, pad=1, dilation=1),
        conv("c3", "s2", 2, pad=2, dilation=2),
    ], dtype=dtype, seed=3)


CASES = [("vgg_pool4", vgg, "pool4"), ("vgg_pool3", vgg, "pool3"), ("ave_pool1", ave_net, "pool1"),
         ("strided_s1", strided_convs, "s1")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, build, start", CASES, ids=[c[0] for c in CASES])
def test_e1_e2_every_dense_value_equals_its_fragment(name, build, start, dtype):
    net = build(dtype)
    dense = densify(net, start)
    x = data(net.blob_shapes["data"])
    report = check_equivalence(net, dense, x)
    assert report.ok, str(report)
    assert {r[0] for r in report.rows} == {"E1", "E2"}
    assert report.worst("E2") <= tolerance(dtype)
    n_frag = {"vgg_pool4": 16, "vgg_pool3": 64, "ave_pool1": 64, "strided_s1": 16}[name]
    assert max(r[3] for r in report.rows if r[0] == "E2") == n_frag


@pytest.mark.parametrize("name, build, start", CASES, ids=[c[0] for c in CASES])
def test_e4_dense_gradients_are_the_sum_over_fragments(name, build, start):
    net = build()
    dense = densify(net, start)
    x = data(net.blob_shapes["data"])
    top = dense.layers[-1].top_names[0]
    seeds = {top: RNG.normal(size=dense.forward(**x)[top].shape)}
    report = check_gradients(dense, x, seeds)
    assert report.ok, str(report)
    assert len(report.rows) == sum(len(v) for v in dense.params.values()) + 1


def test_grids_and_shapes_of_dense_vgg():
    net = vgg()
    dense = densify(net, "pool4")
    assert dense.grid("conv4_3") == ((0, 0), (1, 1))
    assert dense.grid("pool4") == ((0, 0), (2, 2))
    assert dense.grid("pool5") == ((0, 0), (4, 4))
    assert dense.grid("fc8") == ((0, 0), (4, 4))
    # fc6 became a convolution with pool5's original size as kernel, dilated by 4
    fc6 = dense.layer("fc6")
    assert fc6.type == "Convolution" and fc6.kernel == (2, 3) and fc6.est == (4, 4)
    pool5 = dense.layer("pool5")
    assert pool5.stride == (1, 1) and pool5.est == (2, 2) and pool5.pad_end == (2, 2)
    assert densify(net, "pool3").grid("fc7") == ((0, 0), (8, 8))


def test_e3_dpoa_round_trip_and_after_dense_training():
    net = vgg()
    x = data(net.blob_shapes["data"])
    dense = densify(net, "pool4")
    back = dpoa(dense)
    assert back.layer_names == net.layer_names
    assert np.array_equal(back.forward(**x)["fc8"], net.forward(**x)["fc8"])       # exact
    # a few dense SGD steps on an L2 objective over every dense position of fc8
    target = RNG.normal(size=dense.forward(**x)["fc8"].shape)
    dense_loss = Net(dense.specs + [{"name": "t", "type": "Input", "top": ["t"],
                                     "input_param": {"shape": [{"dim": list(target.shape)}]}},
                                    {"name": "loss", "type": "EuclideanLoss", "bottom": ["fc8", "t"],
                                     "top": ["loss"]}], dtype=np.float64)
    for name, blobs in dense.params.items():
        for a, b in zip(blobs, dense_loss.params[name]):
            b[...] = a
    solver = SGDSolver(dense_loss, base_lr=0.01, momentum=0.9)
    first = solver.step(1, data=x["data"], t=target)
    last = solver.step(4, data=x["data"], t=target)
    assert last < first
    for name, blobs in dense.params.items():
        for a, b in zip(blobs, dense_loss.params[name]):
            a[...] = b
    trained = dpoa(dense)
    fc6 = dense.params["fc6"][0]
    assert np.array_equal(trained.params["fc6"][0], fc6.reshape(fc6.shape[0], -1))
    assert not np.array_equal(trained.params["conv5_1"][0], net.params["conv5_1"][0])
    # the trained dense net is still equivalent to its dpoa net on the original grid
    assert check_equivalence(trained, dense, x, fragments=False).ok


def test_shifting_only_the_start_input_is_not_equivalent():
    """A fragment must crop the input of *every* densified layer; shifting only the start layer's
    input gives different values once later layers pad (the paper's reference [3])."""
    net = ave_net()
    dense = densify(net, "pool1")
    x = data(net.blob_shapes["data"])
    d = dense.forward(**x)["c3"]
    one_level = {name: (0, 0) for name in ("pool1", "pool2", "c3")}
    one_level["pool1"] = (1, 1)
    frag, offset = fragment_net(dense, one_level)
    good = frag.forward(**x)["c3"]
    step = dense.grid("c3")[1]
    r, c = offset["c3"]
    assert np.allclose(d[..., r::step[0], c::step[1]][..., :good.shape[2], :good.shape[3]], good, atol=1e-12)
    # naive: shift the start's input, then run the original tail unchanged (no per-layer shifts) and
    # read the dense blob at the corresponding phase
    naive_net = Net([s if s["name"] != "pool1" else dict(s, bottom=["c1s"]) for s in net.specs[:2]]
                    + [{"name": "shift", "type": "Shift", "bottom": ["c1"], "top": ["c1s"],
                        "shift_param": {"offset": [1, 1]}}]
                    + [dict(s, bottom=["c1s"]) if s["name"] == "pool1" else s for s in net.specs[2:]],
                    dtype=np.float64)
    for name, blobs in net.params.items():
        for a, b in zip(blobs, naive_net.params[name]):
            b[...] = a
    naive = naive_net.forward(**x)["c3"]
    dense_phase = d[..., 1::4, 1::4][..., :naive.shape[2], :naive.shape[3]]
    assert np.abs(dense_phase - naive[..., :dense_phase.shape[2], :dense_phase.shape[3]]).max() > 1e-3


def test_all_shifts_enumerates_every_combination():
    dense = densify(ave_net(), "pool1")
    shifts = list(all_shifts(dense))
    assert len(shifts) == 64 and shifts[0] == {"pool1": (0, 0), "pool2": (0, 0), "c3": (0, 0)}


def test_densify_errors_name_the_layer():
    net = vgg()
    with pytest.raises(ValueError, match="no layer named 'pool9'"):
        densify(net, "pool9")
    with pytest.raises(ValueError, match="'conv1_1' .* stride > 1"):
        densify(net, "conv1_1")
    fcn = Net([
        {"name": "data", "type": "Input", "top": ["data"], "input_param": {"shape": [{"dim": [1, 1, 8, 8]}]}},
        L("pool", "Pooling", "data", pooling_param={"kernel_size": 2, "stride": 2}),
        L("up", "Deconvolution", "pool", convolution_param={"num_output": 1, "kernel_size": 4, "stride": 4}),
    ])
    # stride 4 on a grid of equivalent stride 2, and learnable: neither equivalent nor rebuildable
    with pytest.raises(ValueError, match="layer 'up' \\(Deconvolution.*fixed bilinear"):
        densify(fcn, "pool")
    with pytest.raises(ValueError, match="not made by densify"):
        dpoa(net)


def test_dense_net_has_no_shared_arrays_with_the_original():
    net = ave_net()
    dense = densify(net, "pool1")
    dense.params["c2"][0][...] = 0
    assert np.abs(net.params["c2"][0]).max() > 0
    assert ref.Net is type(dense)
