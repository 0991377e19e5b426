"""The prototxt (protobuf text format) parser: syntax, values, errors with line:column."""

import math

import pytest

from caffe_import import FormatError, read_prototxt, read_solver
from caffe_import.prototxt import parse

NET = """
# a comment line
name: "tiny"   # trailing comment
force_backward: true
layer {
  name: 'data' type: "Input" top: "data"
  input_param { shape: { dim: 1 dim: 3 dim: [8, 8] } }
}
layer <
  name: "conv1"; type: "Convolution"; bottom: "data"; top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param {
    num_output: 4 pad: 1 kernel_size: 3
    weight_filler { type: "gaussian" std: 0.5 }
    engine: CUDNN
  }
  include { phase: TRAIN }
>
"""


def test_net_structure_repeated_nested_and_enums():
    net = parse(NET)
    assert net["name"] == "tiny" and net["force_backward"] is True
    data, conv = net["layer"]
    assert data["input_param"] == {"shape": [{"dim": [1, 3, 8, 8]}]}
    assert conv == {
        "name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
        "param": [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}],
        "convolution_param": {"num_output": 4, "pad": [1], "kernel_size": [3],
                              "weight_filler": {"type": "gaussian", "std": 0.5},
                              "engine": "CUDNN"},
        "include": [{"phase": "TRAIN"}]}
    assert isinstance(conv["convolution_param"]["num_output"], int)
    assert isinstance(conv["param"][0]["lr_mult"], float)


def test_read_prototxt_accepts_text_and_upgrades():
    net = read_prototxt('input: "x" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4')
    assert net == {"layer": [{"name": "input", "type": "Input", "top": ["x"],
                              "input_param": {"shape": [{"dim": [1, 2, 3, 4]}]}}]}
    assert read_prototxt(b"name: 'n'") == {"name": "n", "layer": []}


@pytest.mark.parametrize("literal, expected", [
    (r'"plain"', "plain"),
    (r"'single \'quoted\''", "single 'quoted'"),
    (r'"tab\there\nnew"', "tab\there\nnew"),
    (r'"back\\slash \"q\""', 'back\\slash "q"'),
    (r'"\101\x42\103"', "ABC"),
    (r'"caf\u00e9"', "café"),
    ('"adjacent" \'strings\'\n  "join"', "adjacentstringsjoin"),
    ('"utf8 \u00fc direct"', "utf8 \u00fc direct"),
    (r'""', ""),
])
def test_string_literals(literal, expected):
    assert parse(f"name: {literal}") == {"name": expected}


@pytest.mark.parametrize("text, key, expected", [
    ("base_lr: 0.25", "base_lr", 0.25),
    ("base_lr: -1.5e-3", "base_lr", float(__import__("numpy").float32(-1.5e-3))),
    ("base_lr: 2", "base_lr", 2.0),
    ("base_lr: 1.5f", "base_lr", 1.5),
    ("base_lr: .5", "base_lr", 0.5),
    ("base_lr: 1E2", "base_lr", 100.0),
    ("base_lr: inf", "base_lr", math.inf),
    ("base_lr: -Infinity", "base_lr", -math.inf),
    ("base_lr: 1e39", "base_lr", math.inf),          # float overflow -> inf, like protobuf
    ("max_iter: -7", "max_iter", -7),
    ("max_iter: 0x1F", "max_iter", 31),
    ("max_iter: 017", "max_iter", 15),
    ("random_seed: -9223372036854775808", "random_seed", -(1 << 63)),
    ("snapshot_diff: true", "snapshot_diff", True),
    ("snapshot_diff: False", "snapshot_diff", False),
    ("snapshot_diff: 1", "snapshot_diff", True),
    ("snapshot_diff: 0", "snapshot_diff", False),
    ("snapshot_diff: t", "snapshot_diff", True),
    ("solver_mode: CPU", "solver_mode", "CPU"),
    ("solver_mode: 1", "solver_mode", "GPU"),
    ("stepvalue: 10 stepvalue: 20", "stepvalue", [10, 20]),
    ("stepvalue: [10, 20, 30]", "stepvalue", [10, 20, 30]),
    ("stepvalue: []", "stepvalue", []),
])
def test_scalar_values(text, key, expected):
    assert parse(text, "SolverParameter")[key] == expected


def test_float_fields_are_rounded_to_float32_like_caffe():
    std = parse("layer { convolution_param { weight_filler { std: 0.1 } } }")
    assert std["layer"][0]["convolution_param"]["weight_filler"]["std"] == 0.10000000149011612
    assert math.isnan(parse("base_lr: nan", "SolverParameter")["base_lr"])


def test_repeated_messages_in_list_syntax_and_colon_before_brace():
    net = parse("layer: { name: 'a' } layer: [{ name: 'b' }, < name: 'c' >]")
    assert [layer["name"] for layer in net["layer"]] == ["a", "b", "c"]


def where(text, message="NetParameter"):
    with pytest.raises(FormatError) as info:
        parse(text, message)
    return info.value


def test_unknown_field_names_field_message_and_position():
    err = where('layer {\n  name: "x"\n  kernel_size: 3\n}')
    assert err.where == "3:3"
    assert '"LayerParameter"' in err.what and '"kernel_size"' in err.what


@pytest.mark.parametrize("text, position, fragment", [
    ("name 'x'", "1:6", "after field"),                              # missing ':'
    ("name: 'x", "1:7", "unterminated"),
    ("layer {\n name: 'a'\n", "3:1", "end of input"),
    ("layer { name: 'a' }}", "1:20", "unexpected '}'"),
    ("name: 'a' name: 'b'", "1:11", "specified multiple times"),
    ("layer { convolution_param { num_output: -1 } }", "1:42", "out of range"),
    ("layer { convolution_param { num_output: 4294967296 } }", "1:41", "out of range"),
    ("layer { convolution_param { num_output: 2.5 } }", "1:41", "expected an integer"),
    ("layer { pooling_param { pool: MEAN } }", "1:31", "unknown enumeration value"),
    ("layer { pooling_param { pool: 7 } }", "1:31", "unknown enumeration number"),
    ("force_backward: yes", "1:17", "bool"),
    ("force_backward: 2", "1:17", "bool"),
    ("name: 'a\\qb'", "1:9", "invalid escape"),
    ("name: 12", "1:7", "quoted string"),
    ("layer { name: 'a' } $", "1:21", "unexpected character"),
    ("layer 'x'", "1:7", "'{' or '<'"),
    ("input_dim: 3abc", "1:12", "runs into"),
    ("name: '\\777'", "1:8", "above 255"),
    ("state { phase: TRAIN phase: TEST }", "1:22", "multiple times"),
    ("state { } state { }", "1:11", "multiple times"),
])
def test_syntax_errors_have_line_and_column(text, position, fragment):
    err = where(text)
    assert err.where == position, (err.where, str(err))
    assert fragment in str(err)


def test_error_positions_on_later_lines():
    text = "name: 'n'\n# comment\nlayer {\n\tname: 'a'\n\ttype: 1\n}\n"
    err = where(text)
    assert err.where == "5:8" and "quoted string" in str(err)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text("layer {\n  name: 'x'\n  bogus: 1\n}\n")
    with pytest.raises(FormatError) as info:
        read_prototxt(path)
    assert str(path) in str(info.value) and info.value.where == "3:3"


def test_solver_prototxt_and_type_upgrade(tmp_path):
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "train.prototxt"\nbase_lr: 1e-10\nlr_policy: "fixed"\n'
                    'momentum: 0.99\nweight_decay: 0.0005\nsolver_type: NESTEROV\n'
                    'test_iter: 5\nsnapshot_format: HDF5\n')
    solver = read_solver(path)
    assert solver["type"] == "Nesterov" and "solver_type" not in solver
    assert solver["base_lr"] == pytest.approx(1e-10, rel=1e-7)
    assert solver["momentum"] == pytest.approx(0.99, rel=1e-7)
    assert solver["test_iter"] == [5] and solver["snapshot_format"] == "HDF5"
    with pytest.raises(FormatError, match="both"):
        read_solver('type: "SGD" solver_type: SGD')
    inline = read_solver("net_param { layers { name: 'ip' type: INNER_PRODUCT } }")
    assert inline["net_param"] == {"layer": [{"name": "ip", "type": "InnerProduct"}]}
