"""reference.budget: the byte budget that bounds what a net or a weights file may ask for."""

import numpy as np
import pytest

from reference import Net, budget

INPUT = {"name": "in", "type": "Input", "top": ["x"], "input_param": {"shape": [{"dim": [2, 3]}]}}


@pytest.mark.parametrize("text, value", [("4096", 4096), ("4e9", 4_000_000_000), ("2GB", 2 * 10**9),
                                         ("512MiB", 512 << 20), (" 1.5 KiB ", 1536), ("8gib", 8 << 30)])
def test_parse_bytes(text, value):
    assert budget.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-5", "0", "3 parsecs"])
def test_parse_bytes_refuses_nonsense(text):
    with pytest.raises(ValueError, match="ECONV_MAX_BYTES"):
        budget.parse_bytes(text)


def test_default_environment_and_limit_nest(monkeypatch):
    monkeypatch.delenv(budget.ENV_VAR, raising=False)
    assert budget.max_bytes() == budget.DEFAULT_MAX_BYTES == 4 << 30
    monkeypatch.setenv(budget.ENV_VAR, "1MiB")
    assert budget.max_bytes() == 1 << 20
    with budget.limit(1000):
        assert budget.max_bytes() == 1000
        with budget.limit(None):
            assert budget.max_bytes() == 1000
        with budget.limit("2kB"):
            assert budget.max_bytes() == 2000
        assert budget.max_bytes() == 1000
    assert budget.max_bytes() == 1 << 20


def test_check_names_what_and_how_much():
    with budget.limit(100):
        budget.check(100, "fits")
        with pytest.raises(ValueError) as info:
            budget.check(101, "layer 'x'")
    assert str(info.value) == ("layer 'x': needs 101 bytes (9.41e-08 GiB), more than the budget of 100 "
                               "bytes (raise it with ECONV_MAX_BYTES or max_bytes=)")


def test_net_checks_tops_and_parameters_with_their_diffs():
    ip = {"name": "ip", "type": "InnerProduct", "bottom": ["x"], "top": ["y"],
          "inner_product_param": {"num_output": 10}}
    # weight 10x3 + bias 10 = 40 floats = 160 bytes, twice with the diffs: 320 bytes
    net = Net([INPUT, ip], max_bytes=320)
    assert net.params["ip"][0].shape == (10, 3)
    with pytest.raises(ValueError, match=r"^layer 'ip' \(InnerProduct\): parameter blob 1 of shape "
                                         r"\(10,\) \(with its diff\): needs 320 bytes"):
        Net([INPUT, ip], max_bytes=319)
    with pytest.raises(ValueError, match=r"^layer 'in' \(Input\): top 'x' of shape \(2, 3\): needs 48 "):
        Net([INPUT], dtype=np.float64, max_bytes=47)
