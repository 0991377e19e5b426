"""Every blob, input diff and parameter diff of the four Caffe-computed fixture nets, float32 and
float64, within 1e-4 relative to the blob's largest magnitude (the fixtures' stated tolerance)."""

import numpy as np
import pytest

import reference as ref
from tests.caffe_fixture_nets import FIXTURES, NETS, load_io, rel_err

TOL = 1e-4
pytestmark = pytest.mark.skipif(not (FIXTURES / "conv_pool" / "io.h5").exists(),
                                reason=f"Caffe fixtures not found at {FIXTURES}")


def run_fixture(name, dtype):
    io = load_io(name)
    net = ref.Net(NETS[name], dtype=dtype, force_backward=True)
    assert sorted(net.params) == sorted(io["params"])
    for layer, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            blob[...] = io["params"][layer][i]
    blobs = net.forward(**io["inputs"])
    diffs = net.backward({n: io["diffs"][n] for n in io["seeded"]})
    errors = {}
    for n, caffe in io["blobs"].items():
        errors[f"blob {n}"] = rel_err(blobs[n], caffe)
    for n, caffe in io["diffs"].items():
        errors[f"diff {n}"] = rel_err(diffs[n], caffe)
    for layer, caffe_list in io["param_diffs"].items():
        for i, caffe in enumerate(caffe_list):
            errors[f"param_diff {layer}/{i}"] = rel_err(net.param_diffs[layer][i], caffe)
    return errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(NETS))
def test_fixture_matches_caffe(name, dtype):
    errors = run_fixture(name, dtype)
    io = load_io(name)
    # every blob Caffe recorded was compared, nothing silently skipped
    assert len(errors) == len(io["blobs"]) + len(io["diffs"]) + sum(map(len, io["param_diffs"].values()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{name} {np.dtype(dtype).name}: worst {worst} rel err {errors[worst]:.3g}"


def test_fixture_loss_values_are_nontrivial():
    # guards against comparing zeros with zeros: the fixtures' losses and seeded diffs are real
    for name in ("fcn_skip", "misc"):
        io = load_io(name)
        assert float(io["blobs"]["loss"]) > 0
        assert np.abs(io["diffs"]["data"]).max() > 0
