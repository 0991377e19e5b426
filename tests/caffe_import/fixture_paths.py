"""Where the Caffe fixtures are: the repository's copy (tests/data/caffe) if present, else the
shared one next to the repository (../shared/fixtures/caffe)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (REPO / "tests" / "data" / "caffe",
              REPO.parent / "shared" / "fixtures" / "caffe")
FIXTURES = next((p for p in CANDIDATES if p.is_dir()), CANDIDATES[-1])
NETS = ("conv_pool", "fcn_skip", "misc", "v1_legacy")
