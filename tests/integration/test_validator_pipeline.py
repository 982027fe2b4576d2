"""The validator on real outputs: generator -> real processor -> `aml-miner validate` / `evaluate`."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from shared import labels as label_rule
from shared import storage
from tests import validator_fixtures as vf

DATES = ("2025-10-26", "2025-10-27")
DAY = DATES[1]
N_ALERTS = 800

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory, compiled_cache) -> Path:
    """Two held-out sample dates (same seed, so addresses recur) scored by the shipped models."""
    root = tmp_path_factory.mktemp("validator-world")
    vf.generate_inputs(root / "input", DATES, N_ALERTS)
    for date in DATES:
        vf.process(root / "input", root / "output", date)
    return root


@pytest.fixture
def output(world: Path, tmp_path: Path) -> Path:
    """A private copy of the published output root, free to break."""
    return vf.copy_tree(world / "output", tmp_path / "output")


def validate(world: Path, output: Path, reports: Path, *extra: str):
    return vf.cli("validate", "--processing-date", DAY, "--input-dir", world / "input",
                  "--output-dir", output, "--report-dir", reports, *extra)


def test_real_output_passes_the_gate_is_deterministic_and_scores_like_sklearn(world, output, tmp_path):
    done = validate(world, output, tmp_path / "r")
    assert done.returncode == 0, done.stdout + done.stderr
    report = vf.report_of(tmp_path / "r", f"validate_{DAY}")
    assert report["verdict"]["integrity_gate"] == "pass" and report["verdict"]["determinism"] == "pass"
    assert report["model_versions"]["alert_scorer"].startswith("alert_scorer_v")
    engines = vf.checks_by_name(report["determinism"]["checks"])["determinism.engines"]
    assert engines["passed"] and "(compiled)" in engines["detail"]
    stability = report["behaviour"]["stability"]
    assert stability["previous_date"] == DATES[0]
    assert stability["by_address"]["common"] > 0 and stability["by_address"]["spearman"] is not None
    assert 0 < report["behaviour"]["entropy"] <= 1
    assert sum(report["behaviour"]["histogram"]) == N_ALERTS

    gt = report["ground_truth"]
    alerts = pd.read_parquet(storage.resolve(output / DAY) / storage.ALERTS_SCORED)
    labels = pd.read_parquet(world / "input" / DAY / "address_labels.parquet")
    y = label_rule.alert_labels(alerts["address"].to_numpy(dtype=object), labels)
    known = ~np.isnan(y)
    assert gt["alerts"]["labelled"] == known.sum() > 0
    assert gt["alerts"]["positives"] == int(y[known].sum())
    assert gt["alerts"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y[known], alerts["score"][known]))
    assert gt["alerts"]["roc_auc"] > 0.5  # the shipped models learned something about these labels
    assert gt["clusters"]["labelled"] > 0 and gt["clusters"]["roc_auc"] is not None


def test_the_determinism_rerun_uses_the_engines_the_date_recorded(world, tmp_path):
    """Published with LightGBM for two models: the re-run must not score them compiled (its
    default), or the determinism of those bytes is never tested."""
    output = tmp_path / "output"
    done = vf.cli("process", "--input-dir", world / "input", "--output-dir", output,
                  "--processing-date", DAY, "--engine", "lightgbm",
                  "--engine", "alert_ranker=compiled")
    assert done.returncode == 0, done.stderr[-3000:]
    done = validate(world, output, tmp_path / "r")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = vf.checks_by_name(vf.report_of(tmp_path / "r", f"validate_{DAY}")["determinism"]["checks"])
    assert checks["determinism.engines"]["passed"]
    assert "(compiled, lightgbm)" in checks["determinism.engines"]["detail"]
    assert all(c["passed"] for c in checks.values())


@pytest.mark.parametrize("case", ["missing alert", "rank gap"])  # every case: unit tests
def test_a_broken_real_output_exits_1(world, output, tmp_path, case):
    changes = {
        "missing alert": lambda p: p.update(alerts=p["alerts"].iloc[1:]),
        "rank gap": lambda p: p["ranking"].__setitem__("rank", p["ranking"]["rank"] + (
            p["ranking"]["rank"] == len(p["ranking"]))),
    }
    vf.rewrite(output, changes[case], DAY)
    done = validate(world, output, tmp_path / "r", "--no-determinism")
    assert done.returncode == 1, done.stdout
    assert "INTEGRITY GATE: FAIL" in done.stdout


def test_output_altered_after_publishing_fails_determinism(world, output, tmp_path):
    def nudge(p):
        p["alerts"].loc[7, "score"] = p["alerts"].loc[7, "score"] * 0.999  # still valid, but not reproducible
    vf.rewrite(output, nudge, DAY)
    altered = pd.read_parquet(storage.resolve(output / DAY) / storage.ALERTS_SCORED)["alert_id"][7]
    done = validate(world, output, tmp_path / "r")
    assert done.returncode == 3, done.stdout + done.stderr
    checks = vf.checks_by_name(vf.report_of(tmp_path / "r", f"validate_{DAY}")["determinism"]["checks"])
    assert checks["determinism.alert_scores"]["offending"][0].startswith(altered)
    assert checks["determinism.ranking"]["passed"] and checks["determinism.cluster_scores"]["passed"]


PLANTED = textwrap.dedent("""
    # A processor with a planted non-determinism: the real one, then one score moved by 1e-6.
    import subprocess, sys
    from pathlib import Path
    import pyarrow as pa, pyarrow.parquet as pq
    args = sys.argv[1:]
    code = subprocess.call([sys.executable, "-m", "services.cli", *args])
    if code:
        sys.exit(code)
    folder = (Path(args[args.index("--output-dir") + 1]) / args[args.index("--processing-date") + 1]).resolve()
    table = pq.read_table(folder / "alerts_scored.parquet")
    scores = table.column("score").to_numpy().copy()
    scores[0] += -1e-6 if scores[0] > 0.5 else 1e-6
    table = table.set_column(table.schema.get_field_index("score"), "score", pa.array(scores))
    pq.write_table(table, folder / "alerts_scored.parquet")
    Path(sys.argv[0]).with_suffix(".moved").write_text(table.column("alert_id")[0].as_py())
""")


def test_planted_nondeterminism_in_the_processor_is_caught(world, output, tmp_path):
    script = tmp_path / "planted.py"
    script.write_text(PLANTED)
    done = validate(world, output, tmp_path / "r", "--processor-command", f"{sys.executable} {script}")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "NOT DETERMINISTIC" in done.stdout
    check = vf.checks_by_name(vf.report_of(tmp_path / "r", f"validate_{DAY}")["determinism"]["checks"])[
        "determinism.alert_scores"]
    assert check["n_offending"] == 1
    assert check["offending"][0].startswith(script.with_suffix(".moved").read_text())


def test_a_processor_that_cannot_run_is_a_failed_determinism_check(world, output, tmp_path):
    done = validate(world, output, tmp_path / "r", "--models-dir", tmp_path / "no-models")
    assert done.returncode == 3
    rerun = vf.checks_by_name(vf.report_of(tmp_path / "r", f"validate_{DAY}")["determinism"]["checks"])[
        "determinism.rerun"]
    assert not rerun["passed"] and "no-models" in rerun["detail"]


def test_evaluate_compares_shipped_models_with_a_retrained_candidate_then_promote(world, tmp_path):
    history = tmp_path / "history"
    vf.generate_inputs(history, ("2025-10-18", "2025-10-19"), 400, seed=11)
    candidate = tmp_path / "candidate"
    trained = vf.cli("train", "--input-dir", history, "--dates", "2025-10-18", "2025-10-19",
                     "--models-dir", candidate, "--version", "9.1.0")
    assert trained.returncode == 0, trained.stderr[-3000:]

    done = vf.cli("evaluate", "--dates", DAY, "--input-dir", world / "input", "--models-dir",
                  vf.SHIPPED_MODELS, "--compare-models-dir", candidate, "--report-dir", tmp_path / "r")
    assert done.returncode == 0, done.stdout + done.stderr
    report = vf.report_of(tmp_path / "r", f"evaluate_{DAY}")
    shipped, cand = report["runs"]
    assert cand["model_versions"]["alert_scorer"] == "alert_scorer_v9.1.0"
    assert shipped["model_versions"]["alert_scorer"] != cand["model_versions"]["alert_scorer"]
    rows = {r["metric"]: r for r in report["comparison"]}
    auc = rows["alerts roc_auc"]
    assert auc["B - A"] == pytest.approx(auc["B"] - auc["A"]) and auc["better"] in ("A", "B", "")
    assert rows["gate failures"]["A"] == rows["gate failures"]["B"] == 0
    assert "POOLED OVER DATES" in done.stdout and "B - A" in done.stdout

    # The same models on the same date give the same AUC as `validate` reports for the published output.
    assert validate(world, vf.copy_tree(world / "output", tmp_path / "o"), tmp_path / "v",
                    "--no-determinism").returncode == 0
    validated = vf.report_of(tmp_path / "v", f"validate_{DAY}")["ground_truth"]["alerts"]["roc_auc"]
    assert shipped["per_date"][DAY]["alert_roc_auc"] == pytest.approx(validated, abs=1e-12)

    # A date the candidate was trained on is flagged as not held out.
    seen = vf.cli("evaluate", "--dates", "2025-10-18", "--input-dir", history, "--models-dir", candidate,
                  "--report-dir", tmp_path / "r")
    assert seen.returncode == 0 and "trained on evaluated date(s) 2025-10-18: not held out" in seen.stdout

    # Promote: copy the candidate's files next to the shipped ones; the processor takes the highest version.
    promoted = vf.copy_tree(vf.SHIPPED_MODELS, tmp_path / "promoted")
    for path in candidate.glob("*_v9.1.0.*"):
        shutil.copy2(path, promoted / path.name)
    vf.process(world / "input", tmp_path / "after", DAY, promoted)
    meta = vf.read_output(tmp_path / "after", DAY)["metadata"]
    assert set(meta["model_versions"].values()) == {
        "alert_scorer_v9.1.0", "alert_ranker_v9.1.0", "cluster_scorer_v9.1.0"}
