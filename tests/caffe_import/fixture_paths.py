"""Where the Caffe fixtures are: tests/data/caffe, shipped in the repository (see its README.md)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "caffe"
CANDIDATES = (FIXTURES,)
NETS = ("conv_pool", "fcn_skip", "misc", "v1_legacy")
