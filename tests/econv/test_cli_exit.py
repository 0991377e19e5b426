"""One exit-status table for every econv command (0 ok, 1 a check failed, 2 bad usage or bad input,
130 interrupted), written in ``econv --help``; Ctrl-C ends any command with one line and no traceback;
errors about an output path name the user's path, never the hidden temporary file; a command with
two outputs writes neither when one of them cannot be written."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import econv.cli as cli
from econv.cli import main

FIX = Path(__file__).resolve().parents[1] / "data" / "caffe"
CONV_POOL = FIX / "conv_pool"
REPO = Path(__file__).resolve().parents[2]


def status(argv) -> int:
    """What `econv ARGV` exits with (argparse's own usage errors raise SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def bad_prototxt(tmp):
    path = tmp / "bad.prototxt"
    path.write_text('layer {\n  name: "x"\n  kind: "y"\n}\n')
    return str(path)


def bad_caffemodel(tmp):
    path = tmp / "bad.caffemodel"
    path.write_bytes(b"\x0a\xff\xff\xff\x0f")
    return str(path)


NET, WEIGHTS = str(CONV_POOL / "net.prototxt"), str(CONV_POOL / "weights.caffemodel")

# (command line, expected status); T is the test's temporary folder
TABLE = [
    # 0: success
    (["info", NET], 0),
    (["convert", WEIGHTS, "-o", "T/w.h5", "--no-progress"], 0),
    (["vectors", "-o", "T/v.h5", "--count", "1", "--no-hard", "--ops", "pool2d"], 0),
    (["densify", NET, "--start", "pool1", "-o", "T/d.prototxt"], 0),
    (["verify", NET, WEIGHTS, "--start", "pool1", "--e1-only"], 0),
    # 2: bad usage
    (["nope"], 2),
    (["info"], 2),
    (["convert"], 2),
    (["convert", WEIGHTS], 2),
    (["vectors"], 2),
    (["verify", NET], 2),
    (["densify", NET], 2),
    (["demo", "--task", "nope"], 2),
    (["bench", "--repeat", "x"], 2),
    (["bench", "--repeat", "0"], 2),
    (["bench", "--json", "T/no/such/dir/b.json"], 2),
    # 2: bad input (files econv cannot read, outputs it cannot write, nets it refuses)
    (["info", "T/missing.prototxt"], 2),
    (["info", "BADPROTO"], 2),
    (["convert", "BADMODEL", "-o", "T/x.h5"], 2),
    (["convert", "T/missing.caffemodel", "-o", "T/x.h5"], 2),
    (["convert", WEIGHTS, "-o", "T/no/such/dir/x.h5"], 2),
    (["vectors", "-o", "T/no/such/dir/v.h5"], 2),
    (["verify", "BADPROTO", WEIGHTS, "--start", "pool1"], 2),
    (["verify", NET, "BADMODEL", "--start", "pool1"], 2),
    (["verify", NET, WEIGHTS, "--start", "pool9"], 2),
    (["densify", "BADPROTO", "--start", "pool1"], 2),
    (["densify", NET, "--start", "pool1", "-o", "T/no/such/dir/d.prototxt"], 2),
    (["demo", "--out", "T/a_file/sub"], 2),
]


@pytest.mark.parametrize("argv, expected", TABLE, ids=[" ".join(a)[:60] for a, _ in TABLE])
def test_exit_status_table(tmp_path, capsys, argv, expected):
    (tmp_path / "a_file").write_text("not a folder")
    names = {"BADPROTO": bad_prototxt(tmp_path), "BADMODEL": bad_caffemodel(tmp_path)}
    argv = [names.get(a, a.replace("T/", f"{tmp_path}/", 1) if a.startswith("T/") else a) for a in argv]
    assert status(argv) == expected
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if expected == 2 and "usage:" not in err:      # bad input: one line naming the command
        assert err.startswith(f"econv {argv[0]}: error: ") and err.count("\n") == 1, err


def test_help_states_the_table(capsys):
    assert status(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0    success", "1    a check failed", "2    bad usage or bad input", "130  interrupted"):
        assert line in out


def test_a_failed_check_exits_1(monkeypatch, capsys):
    import reference.fragments

    class Failed:
        ok = False

        def __str__(self):
            return "E1 FAILED"

    monkeypatch.setattr(reference.fragments, "check_equivalence", lambda *a, **k: Failed())
    assert status(["verify", NET, WEIGHTS, "--start", "pool1"]) == 1
    assert "E1 FAILED" in capsys.readouterr().out

    from econv import demo

    def not_equivalent(**kw):
        raise demo.CheckFailed("the dense net is not equivalent to the baseline")
    monkeypatch.setattr(demo, "run", not_equivalent)
    assert status(["demo", "--backend", "numpy"]) == 1
    assert capsys.readouterr().err == ("econv demo: check failed: the dense net is not equivalent "
                                       "to the baseline\n")


def subcommands() -> list:
    """Every subcommand the parser knows (a command added later is covered too), plus convert."""
    parser = cli.build_parser()
    choices = next(a.choices for a in parser._actions if getattr(a, "choices", None)
                   and isinstance(a.choices, dict))
    return sorted(choices)


def test_every_subcommand_exits_2_for_an_unknown_option(capsys):
    names = subcommands()
    assert {"convert", "info", "verify", "densify", "vectors", "demo", "bench"} <= set(names)
    for name in names:
        assert status([name, "--no-such-option"]) == 2, name
        assert "Traceback" not in capsys.readouterr().err


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_in_any_subcommand_is_130(monkeypatch, capsys):
    """Whatever a subcommand runs, a KeyboardInterrupt out of it ends econv with one line."""
    import argparse

    for name in subcommands():
        if name == "convert":           # parsed by caffe_import.cli_convert, covered below
            continue
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args",
                            lambda self, argv=None, namespace=None, _n=name:
                            argparse.Namespace(command=_n, func=interrupt))
        assert status([name]) == 130, name
        assert capsys.readouterr().err == f"econv {name}: interrupted\n"


# every command, with the function its work runs in (patched to be interrupted there)
COMMANDS = {
    "info": ([NET], (cli, "cmd_info")),
    "verify": ([NET, WEIGHTS, "--start", "pool1"], (cli, "cmd_verify")),
    "densify": ([NET, "--start", "pool1"], (cli, "cmd_densify")),
    "vectors": (["-o", "x.h5"], (cli, "cmd_vectors")),
    "demo": (["--backend", "numpy"], ("econv.demo", "run")),
    "convert": ([WEIGHTS, "-o", "x.h5"], ("caffe_import", "convert")),
    "bench": (["--quick"], ("numba_kernels.bench", "run")),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_ctrl_c_ends_any_command_with_one_line(monkeypatch, capsys, command):
    args, (module, name) = COMMANDS[command]
    monkeypatch.setattr(module if not isinstance(module, str) else __import__(module, fromlist=["x"]),
                        name, interrupt)
    assert status([command, *args]) == 130
    assert capsys.readouterr().err == f"econv {command}: interrupted\n"


CHILD = """
import sys, time
import caffe_import
from econv.cli import main

def slow_convert(*args, **kwargs):      # a conversion that takes long enough to be interrupted
    print("converting", flush=True)
    time.sleep(60)

caffe_import.convert = slow_convert
raise SystemExit(main(sys.argv[1:]))
"""


def test_sigint_to_a_real_convert_process(tmp_path):
    """A child process running `econv convert` (its conversion made slow) gets a real SIGINT: status
    130, one line on stderr, no traceback, nothing written."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, "convert", WEIGHTS, "-o", str(tmp_path / "w.h5")],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "converting\n"      # inside the conversion now
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert err == "econv convert: interrupted\n"
    assert list(tmp_path.iterdir()) == []


# ---- output paths ------------------------------------------------------------------------------

def test_output_errors_name_the_users_path(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "golden.h5"
    assert status(["vectors", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and ".golden.h5." not in err and ".tmp" not in err, err
    # the destination is a folder: the rename fails; still the user's path
    folder = tmp_path / "taken.h5"
    folder.mkdir()
    assert status(["vectors", "-o", str(folder), "--count", "1", "--no-hard", "--ops", "pool2d"]) == 2
    err = capsys.readouterr().err
    assert f"'{folder}'" in err and ".tmp" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.h5"]


def test_atomic_output_names_the_users_path_for_errors_inside_the_block(tmp_path):
    import h5py

    from caffe_import.atomic import atomic_output

    path = tmp_path / "w.h5"
    with pytest.raises(OSError) as info:
        with atomic_output(path) as tmp:
            os.unlink(tmp)
            os.mkdir(tmp)                  # h5py cannot create its file: the error names tmp
            try:
                h5py.File(tmp, "w")
            finally:
                os.rmdir(tmp)
    assert str(path) in str(info.value) and ".w.h5." not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="not an OSError"):   # other errors pass through unchanged
        with atomic_output(path):
            raise ValueError("not an OSError")


def test_densify_with_one_bad_output_writes_nothing(tmp_path, capsys):
    ok = tmp_path / "ok.caffemodel.h5"
    bad = tmp_path / "BADDIR" / "dense.prototxt"
    assert status(["densify", NET, "--start", "pool1", "--weights", WEIGHTS, "-o", str(bad),
                   "--weights-out", str(ok)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("econv densify: error:") and str(bad) in err
    assert list(tmp_path.iterdir()) == []          # ok.h5 not written, no temporary left
    # the other way round: a bad --weights-out, a good -o
    good = tmp_path / "dense.prototxt"
    assert status(["densify", NET, "--start", "pool1", "--weights", WEIGHTS, "-o", str(good),
                   "--weights-out", str(tmp_path / "BADDIR" / "w.h5")]) == 2
    assert list(tmp_path.iterdir()) == []
