"""Shared helpers for the caffe_import tests: the repository on sys.path, fixture paths."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FIXTURES = REPO.parent / "shared" / "fixtures" / "caffe"
NETS = ("conv_pool", "fcn_skip", "misc", "v1_legacy")


@pytest.fixture
def fixtures():
    """The directory of the Caffe fixtures (skips the test when it is absent)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"Caffe fixtures not found at {FIXTURES}")
    return FIXTURES
