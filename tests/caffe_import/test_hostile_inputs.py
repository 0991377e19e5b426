"""Regression tests for the hostile-input findings of issue 14: each reader and writer gives a
FormatError (files) or ValueError (nets) naming the file and the place, in bounded time and memory."""

import errno
import mmap
import os
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

import caffe_import as ci
from caffe_import import hdf5 as h5mod
from caffe_import import wire
from reference import budget

from ..fuzz_harness import hostile_caffemodel, hostile_hdf5
from .fixture_paths import FIXTURES, REPO

RNG = np.random.default_rng(0)


def hostile(tmp_path, kind) -> str:
    path = tmp_path / f"{kind}.h5"
    path.write_bytes(hostile_hdf5(kind, RNG, str(tmp_path)))
    return str(path)


def format_error(call, *args, match=None):
    with pytest.raises(ci.FormatError, match=match) as info:
        call(*args)
    return info.value


# ---- HDF5 structure ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, where, fragment", [
    ("cycle", "/data/a/back", "second path"),
    ("dag", "/data/l0/y", "second path"),
    ("deep", None, "nested too deeply"),
    ("soft_link", "/data/b", "soft link"),
    ("external_link", "/data/a", "external link"),
    ("virtual_self", "/data/a/0", "virtual dataset"),     # libhdf5 crashes with SIGSEGV reading it
    ("virtual_other", "/data/a/0", "virtual dataset"),
    ("external_storage", "/data/a/0", "external raw storage"),
    ("named_datatype", "/data/a/t", "named datatype"),
    ("data_is_dataset", "/data", "not a group"),
])
def test_links_and_storage_are_refused_before_reading(tmp_path, kind, where, fragment):
    path = hostile(tmp_path, kind)
    start = time.perf_counter()
    err = format_error(ci.read_weights, path, match=fragment)
    assert time.perf_counter() - start < 1.0        # the DAG walk was exponential (a 27 KB file hung)
    assert err.path == path and str(path) in str(err)
    if where:
        assert err.where == where


@pytest.mark.parametrize("kind, name", [("name_big_index", "100000000"), ("name_00", "00"),
                                        ("name_unicode_digit", "\u0661"), ("name_plus", "+1"),
                                        ("name_space", " 0")])
def test_blob_indices_are_canonical_ascii_and_bounded(tmp_path, kind, name):
    # "100000000" allocated a list slot per index; "00" silently overrode blob 0
    err = format_error(ci.read_weights, hostile(tmp_path, kind), match="not a blob index")
    assert err.where == f"/data/a/{name}"


@pytest.mark.parametrize("kind", ["huge_shape", "bomb_chunk", "wide_chunk"])
def test_byte_budget_is_checked_before_any_read(tmp_path, kind, monkeypatch):
    path = hostile(tmp_path, kind)
    monkeypatch.setenv(budget.ENV_VAR, str(64 << 20))
    err = format_error(ci.read_weights, path, match="more than the budget")
    assert err.where == "/data/a/0" and "bytes" in str(err)


def test_default_budget_refuses_the_never_written_2_31_float_dataset(tmp_path):
    err = format_error(ci.read_weights, hostile(tmp_path, "huge_shape"), match="8589934592 bytes")
    assert budget.max_bytes() == budget.DEFAULT_MAX_BYTES and "ECONV_MAX_BYTES" in str(err)


def test_never_written_dataset_is_refused(tmp_path):
    format_error(ci.read_weights, hostile(tmp_path, "never_written"), match="never written")


@pytest.mark.parametrize("kind", ["string_dataset", "compound_dataset", "vlen_dataset",
                                  "reference_dataset", "float128"])
def test_non_numeric_datasets_are_format_errors(tmp_path, kind):
    format_error(ci.read_weights, hostile(tmp_path, kind), match="dataset of type")


def test_zero_sized_dims_that_overflow_are_format_errors(tmp_path):
    format_error(ci.read_weights, hostile(tmp_path, "zero_dim_overflow"), match="multiply to")
    with pytest.raises(ci.FormatError, match="multiply to"):
        ci.blobs.blob_to_array({"shape": {"dim": [0, 2**40, 2**40]}})       # leaked NumPy's error
    assert ci.blobs.blob_to_array({"shape": {"dim": [0, 2**20, 2**20]}}).shape == (0, 2**20, 2**20)


@pytest.mark.parametrize("kind, expected", [
    ("user_block", {"a": [(2,)]}), ("big_endian", {"a": [(2, 3)]}), ("float16", {"a": [(6,)]}),
    ("int_dataset", {"a": [(6,)]}), ("unicode_name", {"\u00e9t\u00e9/\u4e2d": [(1,)]}),
    ("empty_layer", {"relu": [], "conv": [(1, 1, 1, 1)]})])
def test_odd_but_valid_files_still_read(tmp_path, kind, expected):
    weights = ci.read_weights(hostile(tmp_path, kind))
    assert {k: [a.shape for a in v] for k, v in weights.items()} == expected
    if kind == "big_endian":
        np.testing.assert_array_equal(weights["a"][0], np.arange(6).reshape(2, 3))


def test_one_byte_corruptions_of_a_valid_file_raise_only_format_error(tmp_path):
    # h5py leaked RuntimeError / TypeError / UnicodeDecodeError on about 15% of these
    data = (FIXTURES / "conv_pool" / "weights.caffemodel.h5").read_bytes()
    rng = np.random.default_rng(14)
    outcomes = {"ok": 0, "error": 0}
    path = tmp_path / "flip.h5"
    for pos in rng.choice(4096, 150, replace=False):
        buf = bytearray(data)
        buf[pos] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(buf))
        try:
            ci.read_weights(path)
            outcomes["ok"] += 1
        except ci.FormatError as exc:
            assert str(path) in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 15 and outcomes["ok"] > 15, outcomes


# ---- binary protobuf -------------------------------------------------------------------------------

def test_caffemodel_files_are_read_not_memory_mapped(tmp_path, monkeypatch):
    # a mapped file truncated by another process kills the reader with SIGBUS
    def no_mmap(*args, **kwargs):
        raise AssertionError("mmap used")

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    net = ci.read_caffemodel(FIXTURES / "conv_pool" / "weights.caffemodel")
    assert [layer["name"] for layer in net["layer"]][:2] == ["data", "conv1"]


def test_file_over_the_budget_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.caffemodel"
    path.write_bytes(bytes(4096))
    monkeypatch.setenv(budget.ENV_VAR, "1000")
    err = format_error(wire.decode_file, path, "NetParameter", match="4096 bytes")
    assert err.path == str(path)


def test_truncation_during_a_read_is_a_format_error_not_sigbus(tmp_path):
    src = (FIXTURES / "fcn_skip" / "weights.caffemodel").read_bytes()
    path = tmp_path / "m.caffemodel"
    code = ("import sys, caffe_import as ci\n"
            "for _ in range(400):\n"
            "    try: ci.read_caffemodel(sys.argv[1])\n"
            "    except (ci.FormatError, FileNotFoundError): pass\n")
    path.write_bytes(src)
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    while proc.poll() is None:                       # another process keeps truncating the file
        with open(path, "r+b") as fh:
            fh.truncate(int(RNG.integers(0, len(src))))
        path.write_bytes(src)
    assert proc.returncode == 0                      # -7 (SIGBUS) with the memory map


# ---- convert --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, fragment", [
    ("name_collision", "'a' and 'a/0' collide"), ("name_collision_deep", "'a' and 'a/0/b' collide"),
    ("nul_name", "cannot be an HDF5 group"), ("non_utf8_name", "not UTF-8"),
    ("zero_dim_overflow", "multiply to"), ("dup_name", "occurs twice")])
def test_convert_refuses_names_and_shapes_it_cannot_write(tmp_path, kind, fragment):
    src = tmp_path / f"{kind}.caffemodel"
    src.write_bytes(hostile_caffemodel(kind, RNG))
    err = format_error(ci.convert, src, tmp_path / "out.h5", match=fragment)
    assert err.path == str(src)
    assert sorted(os.listdir(tmp_path)) == [src.name]


def test_cli_convert_prints_one_line_for_a_shape_overflow(tmp_path):
    src = tmp_path / "m.caffemodel"
    src.write_bytes(hostile_caffemodel("zero_dim_overflow", RNG))
    run = subprocess.run([sys.executable, "-m", "econv", "convert", str(src), "-o",
                          str(tmp_path / "o.h5")], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "multiply to" in run.stderr


def _layers(n):
    return [(f"layer{i}", [np.full(8, i, np.float32)]) for i in range(n)]


def test_ctrl_c_during_a_write_propagates_and_removes_the_partial_file(tmp_path):
    # h5py swallowed the KeyboardInterrupt in most trials (printed "Exception ignored"), and the
    # conversion went on to write the file
    dst = tmp_path / "out.h5"
    interrupted = 0
    for delay in (0.05, 0.1, 0.2):
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            h5mod._write_atomically(str(dst), _layers(4000), False, h5py)
            timer.join()
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            timer.cancel()
        assert os.listdir(tmp_path) in ([], ["out.h5"])
        if not interrupted:
            dst.unlink()
        else:
            assert os.listdir(tmp_path) == []
    assert interrupted >= 1


def test_ctrl_c_held_during_libhdf5_is_raised_at_the_next_dataset(tmp_path, monkeypatch):
    real = h5mod._write_layers

    def write_and_interrupt(path, layers, bar, h5py_module, interrupted):
        os.kill(os.getpid(), signal.SIGINT)        # arrives while "libhdf5 runs"
        assert interrupted[0]                       # held, not raised
        real(path, layers, bar, h5py_module, interrupted)

    monkeypatch.setattr(h5mod, "_write_layers", write_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        h5mod._write_atomically(str(tmp_path / "o.h5"), _layers(3), False, h5py)
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_file_too_large_is_an_oserror_with_its_errno(tmp_path):
    # a full disk's EFBIG / ENOSPC surfaced as h5py's RuntimeError with the OSError masked
    src = tmp_path / "m.caffemodel"
    src.write_bytes(ci.encode({"layer": [{"name": "a", "type": "Bias", "blobs": [
        {"shape": {"dim": [100000]}, "data": np.ones(100000, np.float32)}]}]}, "NetParameter"))
    code = ("import resource, sys, caffe_import as ci\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
            "try:\n"
            "    ci.convert(sys.argv[1], sys.argv[2])\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e.errno, e)\n")
    run = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "o.h5")], cwd=REPO,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    dst = tmp_path / "o.h5"
    assert run.stdout == f"OSError {errno.EFBIG} [Errno 27] cannot write {dst}: File too large\n"
    assert sorted(os.listdir(tmp_path)) == ["m.caffemodel"]


def test_write_error_keeps_the_errno_from_libhdf5_message():
    err = h5mod._write_error(RuntimeError("Can't write data (file write failed: errno = 28, "
                                          "error message = 'No space left on device')"), "x.h5")
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert str(err) == "[Errno 28] cannot write x.h5: No space left on device"


# ---- prototxt -------------------------------------------------------------------------------------

def test_prototxt_bytes_that_are_not_utf8_are_accepted_in_comments_and_strings(tmp_path):
    # Caffe's C++ TextFormat does not check UTF-8 in proto2 strings; econv refused these files
    text = (b"# caf\xe9 \xff\xfe\n"
            b"layer { name: \"d\xe9\" type: \"Input\" top: \"d\" "
            b"input_param { shape { dim: 1 } } }  # \xc3(\n")
    path = tmp_path / "latin1.prototxt"
    path.write_bytes(text)
    net = ci.read_prototxt(path)
    name = net["layer"][0]["name"]
    assert name == "d\udce9" and ci.prototxt.encode_string(name) == b"d\xe9"
    assert ci.load_net(path).layer_names == [name]
    again = ci.read_prototxt(ci.format_prototxt(net["layer"]))      # written back as \351
    assert again["layer"][0]["name"] == name
    assert ci.read_caffemodel(ci.encode(net, "NetParameter"))["layer"][0]["name"] == name
    err = format_error(ci.read_prototxt, b"layer { name: 'a' } \xff", match="unexpected character")
    assert err.where == "1:21"


def test_prototxt_escapes_of_any_byte_are_kept():
    net = ci.read_prototxt("name: '\\xff\\376ok'")
    assert ci.prototxt.encode_string(net["name"]) == b"\xff\xfeok"


# ---- nets -----------------------------------------------------------------------------------------

HUGE = ("layer { name: 'd' type: 'Input' top: 'd' input_param { shape { dim: 1 dim: 3 dim: 8 "
        "dim: 8 } } }\nlayer { name: 'conv' type: 'Convolution' bottom: 'd' top: 'c' "
        "convolution_param { num_output: 2147483647 kernel_size: 3 } }")


def test_num_output_2147483647_is_a_value_error_naming_the_layer_and_bytes():
    with pytest.raises(ValueError) as info:              # MemoryError before
        ci.load_net(HUGE)
    assert str(info.value).startswith("layer 'conv' (Convolution): parameter blob 0 of shape "
                                      "(2147483647, 3, 3, 3)")
    assert f"needs {2 * 2147483647 * 27 * 4} bytes" in str(info.value)


def test_declared_top_over_the_budget_is_a_value_error():
    text = "layer { name: 'in' type: 'Input' top: 'd' input_param { shape { dim: 1000 dim: 1000 " \
           "dim: 1000 dim: 1000 } } }"
    with pytest.raises(ValueError, match=r"layer 'in' \(Input\): top 'd' .* 4000000000000 bytes"):
        ci.load_net(text)


def test_budget_is_overridable_by_argument_and_environment(monkeypatch):
    text = HUGE.replace("2147483647", "1000")          # 1000*3*3*3 floats = 108 kB (x2 with diff)
    assert ci.load_net(text).params["conv"][0].shape == (1000, 3, 3, 3)
    with pytest.raises(ValueError, match="budget of 100000 bytes"):
        ci.load_net(text, max_bytes=100_000)
    monkeypatch.setenv("ECONV_MAX_BYTES", "100kB")
    with pytest.raises(ValueError, match="budget of 100000 bytes"):
        ci.load_net(text)
    assert ci.load_net(text, max_bytes="1MiB").params["conv"][0].shape == (1000, 3, 3, 3)


def test_cli_convert_reports_ctrl_c_in_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from econv.cli import main

    monkeypatch.setattr(ci, "convert", interrupted)
    dst = tmp_path / "o.h5"
    assert main(["convert", str(FIXTURES / "conv_pool" / "weights.caffemodel"), "-o", str(dst)]) == 130
    assert capsys.readouterr().err == "econv convert: interrupted\n" and not dst.exists()


def test_write_message_is_atomic(tmp_path, monkeypatch):
    encode_mod = sys.modules["caffe_import.encode"]        # the module, not the function
    dst = tmp_path / "m.caffemodel"
    dst.write_bytes(b"previous")

    def half_written(msg, name, out):
        out += [b"partial", object()]            # the second write fails mid-file
        return 7

    monkeypatch.setattr(encode_mod, "_chunks", half_written)
    with pytest.raises(TypeError):
        ci.write_message(dst, {"name": "x"}, "NetParameter")
    assert dst.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.caffemodel"]
    monkeypatch.undo()
    assert ci.write_message(dst, {"name": "x"}, "NetParameter") == 3
    assert dst.read_bytes() == ci.encode({"name": "x"}, "NetParameter")
