"""Shared fixtures for the caffe_import tests."""

import sys

import pytest

from .fixture_paths import CANDIDATES, FIXTURES, REPO

if str(REPO) not in sys.path:          # also works without an installed package
    sys.path.insert(0, str(REPO))


@pytest.fixture
def fixtures():
    """The directory of the Caffe fixtures (skips the test when it is absent)."""
    if not FIXTURES.is_dir():
        pytest.skip("Caffe fixtures not found at " + " or ".join(map(str, CANDIDATES)))
    return FIXTURES
