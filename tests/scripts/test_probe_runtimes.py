"""scripts/probe_runtimes.py: the shipped probe nets (tests/data/probes) are exactly what the script
writes, and its one-line findings read as RUNTIMES.md quotes them."""

from pathlib import Path

import pytest

from ._load import load_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    return load_script("probe_runtimes")


def test_shipped_probes_are_the_scripts(script, tmp_path):
    for name in script.PROBES:
        script.write_probe(name, tmp_path)
        for f in (tmp_path / name).iterdir():
            assert f.read_bytes() == (ROOT / "tests" / "data" / "probes" / name / f.name).read_bytes(), f
    shipped = {p.name for p in (ROOT / "tests" / "data" / "probes").iterdir()}
    assert shipped == set(script.PROBES)


def test_findings(script, tmp_path):
    pytest.importorskip("cv2", reason="OpenCV is in the test extra (opencv-python-headless<5)")
    report, error = script.probe("lrn_across_k", "opencv", tmp_path)
    assert script.finding(report, error).startswith(
        "DIFF at lrn: max rel 0.378, isolated True; lrn_param.k ignored (k=1 reproduces theirs to ")
    report, error = script.probe("pool_max_floor", "opencv", tmp_path)
    assert report is None and script.finding(report, error).startswith(
        "refused: opencv could not run the deploy net")
    assert script.finding(*script.probe("conv_group", "opencv", tmp_path)).startswith("agrees (max rel ")
