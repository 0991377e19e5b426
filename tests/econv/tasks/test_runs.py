"""Each task's run in quick mode: results.json (the keys DESIGN.md section 3 names), the picture."""

import json

import numpy as np
import pytest

from econv.tasks import TASKS, classification, localization, regression

MODULES = {"classification": classification, "regression": regression, "localization": localization}
METRIC = {"classification": "accuracy", "regression": "mae", "localization": "accuracy"}
PICTURE = {"classification": "predictions.png", "regression": "predictions.png",
           "localization": "masks.png"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``task -> (returned dict, out folder, printed lines)``, each task run once (quick, numpy)."""
    done = {}

    def get(task):
        if task not in done:
            out, lines = tmp_path_factory.mktemp(task), []
            done[task] = (MODULES[task].run(out=str(out), backend="numpy", quick=True, progress=False,
                                            log=lines.append), out, lines)
        return done[task]
    return get


@pytest.mark.parametrize("task", TASKS)
def test_quick_run_writes_results(task, quick):
    results, out, lines = quick(task)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["task"] == task and on_disk["quick"] is True
    models = ("baseline", "dense", "dpoa") + (("baseline_continued",) if task != "localization" else ())
    for model in models:
        value = on_disk[model][METRIC[task]]
        assert np.isfinite(value) and value >= 0
        assert on_disk[model]["forward_ms_per_image"] > 0
    assert ("baseline_continued" in on_disk) == (task != "localization")   # no training there
    assert on_disk["equivalence_max_err"] < 1e-5                 # densify checked before use
    assert (out / PICTURE[task]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(line.startswith("dense") for line in "\n".join(lines).splitlines())   # the table
    # --quick says it is a smoke test, in results.json and in the line above the table's header
    assert on_disk["note"] == "smoke test (--quick): numbers are not meaningful"
    table = "\n".join(lines).splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("model"))
    assert table[header - 1] == ("SMOKE TEST (--quick): a tiny net trained for seconds; the numbers are "
                                 "not meaningful")
    assert not [p for p in out.iterdir() if p.name not in ("results.json", PICTURE[task])]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_dense_net_averages_16_fragments_and_dpoa_has_one(task, quick):
    r = quick(task)[0]
    assert r["gap_max_err"] < 1e-5
    assert r["dense"]["predictions_per_image"] == 16
    assert r["baseline"]["predictions_per_image"] == r["dpoa"]["predictions_per_image"] == 1
    assert r["baseline"]["train_seconds"] > 0 and r["dpoa"]["train_seconds"] == 0


def test_localization_dpoa_repeats_the_baseline(quick):
    r = quick("localization")[0]
    assert r["dpoa_is_baseline"] is True and r["dpoa"] == r["baseline"]
    assert r["dense"]["map_units"] == [16, 16] and r["baseline"]["map_units"] == [4, 4]


@pytest.mark.parametrize("task,key,metric", [("classification", "position_accuracy", "accuracy"),
                                             ("regression", "position_mae", "mae")])
def test_position_maps_hold_dpoa_and_the_baseline_at_the_origin(task, key, metric, quick):
    r = quick(task)[0]
    base, dense = np.asarray(r[key]["baseline"]), np.asarray(r[key]["dense"])
    assert base.shape == dense.shape == (4, 4)
    # position (0, 0) is the original net's own prediction (E1): with the baseline's parameters the
    # baseline's, after the dense fine-tuning dpoa's
    assert base[0, 0] == pytest.approx(r["baseline"][metric], abs=1e-5)
    assert dense[0, 0] == pytest.approx(r["dpoa"][metric], abs=1e-5)
