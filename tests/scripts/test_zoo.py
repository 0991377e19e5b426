"""scripts/zoo.py on the two BVLC deploy files kept in tests/data/zoo (seeded, one child process each)."""

import json
import os

import pytest

from ._load import load_script

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "tests", "data", "zoo")
zoo = load_script("zoo")


def test_zoo_table_on_two_small_nets(tmp_path):
    out, js = tmp_path / "ZOO.md", tmp_path / "zoo.json"
    rc = zoo.main(["--manifest", os.path.join(DATA, "manifest.json"), "--models", DATA, "--out", str(out),
                   "--json", str(js), "--timeout", "120"])
    assert rc == 0
    results = {r["path"]: r for r in json.loads(js.read_text())["results"]}
    assert set(results) == {"examples/mnist/lenet.prototxt", "examples/cifar10/cifar10_quick.prototxt"}
    for r in results.values():
        stages = (r["phase"], r["parse"], r["build"], r["forward"], r["backward"])
        assert stages == ("TEST", "ok", "ok", "ok", "ok")
        assert r["forward_s"] > 0 and r["peak_mb"] > 10
    # LeNet at batch 1: 2 * (20*24*24*25 + 50*8*8*500 + 800*500 + 500*10) = 4.586 MFLOP
    assert results["examples/mnist/lenet.prototxt"]["gflop"] == pytest.approx(0.005, abs=5e-4)
    table = out.read_text()
    assert "| BVLC/caffe @ 9b89154 | examples/mnist/lenet.prototxt | TEST | ok | ok | ok | ok |" in table
    assert "2 files, 2 (file, phase) runs: parse 2, build 2, forward 2, backward 2" in table


def test_zoo_reports_missing_and_changed_files(tmp_path):
    manifest = json.load(open(os.path.join(DATA, "manifest.json")))
    manifest["models"] = [dict(m, sha256="0" * 64) if "lenet" in m["path"] else m for m in manifest["models"]]
    manifest["models"].append(dict(manifest["models"][0], path="examples/lenet_nowhere.prototxt"))
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    rc = zoo.main(["--manifest", str(tmp_path / "m.json"), "--models", DATA, "--out", str(tmp_path / "Z.md"),
                   "--json", str(tmp_path / "z.json"), "--only", "lenet"])
    assert rc == 0
    changed, missing = json.loads((tmp_path / "z.json").read_text())["results"]
    assert changed["parse"] == "changed" and "sha256" in changed["reason"]
    assert missing["parse"] == "missing" and "--urls" in missing["reason"]
    assert zoo.main(["--manifest", str(tmp_path / "nope.json")]) == 2
