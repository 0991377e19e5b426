"""The quick seeded subset of the fuzz campaign (``scripts/fuzz.py`` runs the long one): every
format of ``tests/fuzz_harness.py`` in isolated, limited workers, with no leaked exception, hang,
crash or unbounded allocation; the regression files of ``tests/data/fuzz``; and the harness's
own check that it does see each kind of finding."""

import json

import pytest

from .. import fuzz_harness as harness

PER_FORMAT = 300                      # 2,400 inputs in all: about 20 s on 2 busy cores


@pytest.fixture(autouse=True)
def _fixtures(fixtures):
    return fixtures


def describe(report) -> str:
    lines = []
    for r in report.findings()[:20]:
        files, recipe = harness.make_input(*r.job) if r.job[0] != "file" else ({}, r.job[3])
        lines.append(f"{r.fmt} {r.job}: {r.outcome} {r.detail[:200]} ({recipe[:120]})")
    return "\n".join(lines)


def test_quick_subset_of_every_format_has_no_findings():
    report = harness.run(harness.FORMATS, PER_FORMAT, seed=14, workers=2, timeout=30)
    assert len(report.results) == PER_FORMAT * len(harness.FORMATS)
    assert not report.findings(), describe(report)
    for fmt, counts in report.table().items():
        # a fuzz run that only ever fails early (or never fails) tests little
        assert counts.get("ok", 0) >= PER_FORMAT // 100, (fmt, counts)
        assert counts.get("FormatError", 0) >= PER_FORMAT // 5, (fmt, counts)
    assert max(report.max_seconds().values()) < 5.0, report.max_seconds()


def test_regression_files_give_their_expected_outcomes():
    expected = json.loads((harness.REGRESSIONS / "EXPECTED.json").read_text())
    cases = harness.regression_cases()
    assert len(cases) == len(expected) >= 30
    report = harness.run(jobs=[("file", fmt, folder, case) for fmt, folder, case in cases],
                         workers=2, timeout=30)
    got = {f"{r.fmt}/{r.job[3]}": r.outcome for r in report.results}
    assert got == expected, describe(report)


def test_the_harness_sees_crashes_hangs_memory_and_leaks():
    report = harness.run(jobs=[(fmt, 0, 0) for fmt in harness.SELFTEST], workers=2, timeout=3)
    got = {r.fmt: r.outcome for r in report.results}
    assert got == {"_crash": "crash:SIGSEGV", "_hang": "hang", "_memory": "memory",
                   "_leak": "leaked:KeyError", "_unnamed": "leaked:FormatError-without-file"}
    assert len(report.findings()) == 5


def test_inputs_are_deterministic_and_field_aware():
    a = harness.make_input("caffemodel", 1, 5)
    assert a == harness.make_input("caffemodel", 1, 5) != harness.make_input("caffemodel", 1, 6)
    seed = harness.seeds("caffemodel")[0]["main"]
    tree = harness.parse_tree(seed)
    assert harness.serialize(tree) == seed          # the field tree round-trips the file
    assert {node[0] for node in tree} >= {1, 100}   # NetParameter.name and .layer
