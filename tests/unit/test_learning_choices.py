"""The learner's past-only choices: rounds by early stopping, the cluster scoring rule."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from services.processor import scoring
from services.processor.dataset import Part, TrainingError
from services.processor.links import Links
from services.processor.models import load_model, model_file, sidecar_file
from services.processor.train import (CHOOSE, LEARNING_SPECS, SPECS, ModelSpec, fit,
                                      train_models)
from tests.processor_fixtures import SYNTHETIC_DATES, quick_specs, write_synthetic_date


def _part(n: int, signal: bool, seed: int, date: str) -> Part:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    label = ((x[:, 0] > 0) if signal else (rng.random(n) < 0.5)).astype(np.int64)
    frame = pd.DataFrame(x.astype(np.float32), columns=["a", "b", "c"])
    return Part(frame, label, np.full(n, date))


@pytest.mark.parametrize("signal", [True, False])
def test_early_stopping_keeps_the_rounds_the_validation_rows_liked(signal):
    spec = ModelSpec("alert_scorer", "alerts", {**SPECS[0].params, "min_data_in_leaf": 20},
                     rounds=300, early_stopping=10)
    booster = fit(spec, _part(3000, signal, 1, "2025-10-01"), None,
                  _part(1000, signal, 2, "2025-10-02"))
    # Pure noise stops almost at once; a learnable signal keeps improving much longer.
    assert (booster.num_trees() > 60) == signal, booster.num_trees()
    assert booster.num_trees() < 300 or signal
    again = fit(spec, _part(3000, signal, 1, "2025-10-01"), None,
                _part(1000, signal, 2, "2025-10-02"))
    assert again.model_to_string() == booster.model_to_string()  # deterministic


def test_early_stopping_without_validation_rows_is_refused():
    spec = dataclasses.replace(LEARNING_SPECS[0], rounds=20)
    with pytest.raises(TrainingError, match="needs validation rows"):
        fit(spec, _part(500, True, 1, "2025-10-01"))


def test_a_refit_with_early_stopping_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="no validation date to stop on"):
        train_models(tmp_path, ["2025-10-01"], tmp_path / "m", specs=LEARNING_SPECS,
                     holdout=False)


def test_only_the_learners_binary_models_stop_early():
    assert not any(s.early_stopping for s in SPECS)  # `make models` trains as before
    stops = {s.name: bool(s.early_stopping) for s in LEARNING_SPECS}
    assert stops == {"alert_scorer": True, "alert_ranker": False, "cluster_scorer": True}


def _links(member_cluster, member_alert) -> Links:
    empty = np.array([], dtype=np.int64)
    return Links(empty, empty, None, np.array(member_cluster), np.array(member_alert), empty,
                 empty, 0.0)


def test_member_alert_max_takes_the_best_member_and_falls_back_to_the_model():
    alerts = np.array([0.1, 0.9, 0.4])
    model = np.array([0.5, 0.6, 0.7])
    got = scoring.member_alert_max(model, alerts, _links([0, 0, 1], [0, 2, 1]))
    assert got.tolist() == [0.4, 0.9, 0.7]


class _Sidecar:
    def __init__(self, sidecar):
        self.sidecar, self.tag = sidecar, "cluster_scorer_v1"


def test_the_rule_comes_from_the_sidecar():
    assert scoring.cluster_rule(_Sidecar({})) == scoring.MODEL_SCORES
    assert scoring.cluster_rule(_Sidecar({"cluster_score": "member_alert_max"})) == \
        scoring.MEMBER_ALERT_MAX
    with pytest.raises(ValueError, match="unknown cluster_score 'mean'"):
        scoring.cluster_rule(_Sidecar({"cluster_score": "mean"}))


@pytest.mark.parametrize("cluster_score", [None, CHOOSE, scoring.MEMBER_ALERT_MAX])
def test_the_trainer_records_the_rule_it_was_asked_for(tmp_path, cluster_score):
    for i, date in enumerate(SYNTHETIC_DATES):
        write_synthetic_date(tmp_path / "input", date, 600, seed=i)
    train_models(tmp_path / "input", list(SYNTHETIC_DATES), tmp_path / "models",
                 specs=quick_specs(), cluster_score=cluster_score)
    path = model_file(tmp_path / "models", "cluster_scorer", "1.0.0")
    sidecar = json.loads(sidecar_file(path).read_text())
    if cluster_score is None:  # the shipped models' sidecars name no rule
        assert "cluster_score" not in sidecar and "cluster_score_choice" not in sidecar
    elif cluster_score == CHOOSE:
        choice = sidecar["cluster_score_choice"]
        assert choice["on"] == [SYNTHETIC_DATES[-1]]
        aucs = choice["roc_auc"]
        best = max(aucs, key=lambda rule: (aucs[rule], rule == scoring.MODEL_SCORES))
        assert sidecar["cluster_score"] == choice["rule"] == best
    else:
        assert sidecar["cluster_score"] == cluster_score and "cluster_score_choice" not in sidecar
    assert scoring.cluster_rule(load_model(tmp_path / "models", "cluster_scorer")) in \
        scoring.CLUSTER_SCORE_RULES
