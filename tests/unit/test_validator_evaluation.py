"""The pieces of `evaluate`: judging a date into a pool, pooled metrics, the side-by-side table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from services.validator import evaluation, inputs
from services.validator.sources import FolderSource
from tests import validator_fixtures as vf


def judged(tmp_path: Path, dates=(vf.DATE, "2025-10-27")) -> tuple[evaluation.Pool, dict]:
    pool, per_date = evaluation.Pool(), {}
    for i, date in enumerate(dates):
        folder = vf.make_input(tmp_path / "input", date=date, seed=i)
        vf.publish_output(tmp_path / "output", vf.build_output(folder, date=date), date=date)
        result = FolderSource(tmp_path / "output").load(date)
        per_date[date] = evaluation.judge_date(result, inputs.load(tmp_path / "input", date), pool)
    return pool, per_date


def test_pooled_auc_is_over_all_labelled_rows_of_all_dates(tmp_path):
    pool, per_date = judged(tmp_path)
    y, s = pool.pairs("alert")
    assert len(y) == sum(one["ground_truth"]["alerts"]["labelled"] for one in per_date.values())
    pooled = evaluation.pooled(pool)
    assert pooled["alerts"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert pooled["alerts"]["brier"] == pytest.approx(skm.brier_score_loss(y, s))
    assert pool.histogram.sum() == 120
    assert all(one["integrity"] == {"passed": True, "failed": []} for one in per_date.values())


def test_a_broken_date_is_listed_with_its_failed_checks(tmp_path):
    folder = vf.make_input(tmp_path / "input")
    parts = vf.build_output(folder)
    parts["alerts"].loc[0, "score"] = 2.0
    vf.publish_output(tmp_path / "output", parts)
    one = evaluation.judge_date(FolderSource(tmp_path / "output").load(vf.DATE),
                                inputs.load(tmp_path / "input", vf.DATE), evaluation.Pool())
    assert one["integrity"] == {"passed": False, "failed": ["alerts.score_range"]}


def test_a_date_without_labels_still_counts_its_gate_and_entropy(tmp_path):
    folder = vf.make_input(tmp_path / "input", labels=False)
    vf.publish_output(tmp_path / "output", vf.build_output(folder))
    pool = evaluation.Pool()
    one = evaluation.judge_date(FolderSource(tmp_path / "output").load(vf.DATE),
                                inputs.load(tmp_path / "input", vf.DATE), pool)
    assert one["ground_truth"] is None and one["entropy"] > 0
    assert evaluation.pooled(pool)["alerts"] == {"labelled": 0, "positives": 0, "roc_auc": None,
                                                 "pr_auc": None, "brier": None}


def _run(label: str, auc: float, brier: float, failures: int = 0) -> dict:
    pooled = {"alerts": {"labelled": 10, "positives": 4, "roc_auc": auc, "pr_auc": auc, "brier": brier},
              "clusters": {"labelled": 0, "positives": 0, "roc_auc": None, "pr_auc": None, "brier": None},
              "ranking": {"precision_at_10": auc}, "entropy_mean": 0.8}
    per_date = {vf.DATE: {"alert_roc_auc": auc, "integrity": {"passed": not failures, "failed": []}}}
    return {"label": label, "pooled": pooled, "per_date": per_date}


def test_side_by_side_rows_say_which_model_wins():
    rows = {r["metric"]: r for r in evaluation.comparison([_run("A", 0.80, 0.20), _run("B", 0.85, 0.25, 1)])}
    assert rows["alerts roc_auc"]["B - A"] == pytest.approx(0.05) and rows["alerts roc_auc"]["better"] == "B"
    assert rows["alerts brier"]["better"] == "A"  # lower Brier wins
    assert rows["gate failures"] == {"metric": "gate failures", "A": 0, "B": 1, "B - A": 1, "better": "A"}
    assert rows["alerts labelled"]["better"] == ""
    assert "B - A" not in rows["clusters roc_auc"]  # nothing to subtract
    assert rows[f"{vf.DATE} alert roc_auc"]["better"] == "B"
    single = evaluation.comparison([_run("A", 0.8, 0.2)])
    assert all(set(r) == {"metric", "A"} for r in single)


def test_training_dates_come_from_the_sidecars(tmp_path):
    (tmp_path / "alert_scorer_v1.0.0.json").write_text(json.dumps({"training_dates": ["2025-10-20"]}))
    (tmp_path / "cluster_scorer_v1.0.0.json").write_text(json.dumps({"training_dates": ["2025-10-21"]}))
    (tmp_path / "broken.json").write_text("{")
    assert evaluation.training_dates(tmp_path) == {"2025-10-20", "2025-10-21"}
    assert evaluation.training_dates(tmp_path / "absent") == set()


def test_pool_pairs_of_nothing_are_empty():
    y, s = evaluation.Pool().pairs("cluster")
    assert isinstance(y, np.ndarray) and len(y) == len(s) == 0
