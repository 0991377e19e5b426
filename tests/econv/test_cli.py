"""The econv command: --help works, and `vectors` writes golden vectors readable with h5py alone."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from econv.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "vectors" in out and "eConv" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: econv" in capsys.readouterr().out


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "econv", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("econv ")


def test_vectors_file_layout(tmp_path):
    path = tmp_path / "golden.h5"
    assert main(["vectors", "-o", str(path), "--count", "2", "--dtype", "float32", "--no-hard"]) == 0
    with h5py.File(path, "r") as f:
        assert f.attrs["dtype"] == "float32"
        names = list(f["cases"])
        assert len(names) == 6
        conv = f["cases"][[n for n in names if n.startswith("conv2d")][0]]
        assert conv.attrs["op"] == "conv2d"
        assert {"x", "w", "y", "dy", "dx", "dw"} <= set(conv)
        assert conv["y"].dtype == np.float32
        pool = f["cases"][[n for n in names if n.startswith("pool2d")][0]]
        assert {"kernel", "stride", "pad", "est", "mode", "round_mode", "pad_end"} <= set(pool.attrs)
        assert set(pool) == {"x", "y", "dy", "dx"}
    assert not list(tmp_path.glob(".econv-vectors-*"))   # no temporary file left behind


def test_vectors_bad_output_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["vectors", "-o", str(tmp_path / "missing" / "v.h5")]) == 2
    assert "econv vectors: error" in capsys.readouterr().err


FIX = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "caffe"


def test_verify_dense_conv_pool_fixture(capsys):
    """conv_pool densified at pool1: dilated padded conv, padded AVE pooling, grouped strided conv,
    InnerProduct downstream -- all exactly equivalent (E1 and every fragment)."""
    rc = main(["verify", str(FIX / "conv_pool" / "net.prototxt"), str(FIX / "conv_pool" / "weights.caffemodel"),
               "--start", "pool1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    e2 = float(out.split("E2: max error ")[1].split()[0])
    assert e2 <= 1e-10


def test_verify_reports_a_layer_it_cannot_densify(capsys):
    rc = main(["verify", str(FIX / "fcn_skip" / "net.prototxt"), str(FIX / "fcn_skip" / "weights.caffemodel"),
               "--start", "pool1"])
    assert rc == 2
    # the fixture's sizes fit the skip's crop on the original grid only, not on every fragment
    err = capsys.readouterr().err
    assert "'score_pool1c' (Crop)" in err and "every fragment" in err


def test_convert_subcommand(tmp_path):
    dst = tmp_path / "w.h5"
    assert main(["convert", str(FIX / "conv_pool" / "weights.caffemodel"), "-o", str(dst), "--no-progress"]) == 0
    with h5py.File(dst, "r") as f:
        assert f["data/conv1/0"].shape == (4, 3, 3, 3)


def test_info_rows(capsys):
    assert main(["info", str(FIX / "conv_pool" / "net.prototxt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["layer", "type"]
    pool2 = next(line.split() for line in lines if line.startswith("pool2 "))
    # pool2: AVE k3 s2 p1 on conv2 (rf 12, stride 2): rf 12 + 2*2 = 16, stride 4, shape 2x6x5x6
    assert pool2[1:] == ["Pooling", "pool2", "2x6x5x6", "16x16", "4x4", "0.5,0.5"]
