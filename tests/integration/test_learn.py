"""A whole learn on real files: train a candidate, judge it with `aml-miner evaluate`, decide.

The history is synthetic and small, trained with few boosting rounds. "Informative" dates
have features that follow who is risky; "uninformative" ones follow a shuffled copy of it
(a label-shuffled history), so a set trained on them is worse than one that learned.
"""

import dataclasses
import json

import pytest

from services.processor import learning
from services.processor.train import train_models
from shared import modelsets
from tests.chain_fixtures import cli, process_env
from tests.processor_fixtures import quick_learning_specs, quick_specs, write_synthetic_history

NET, DAYS = "bitcoin", 7
HISTORY = ("2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04", "2025-10-05")
D = "2025-10-06"


def current_set(settings, tmp_path, version: str, informative: bool):
    """A learned set trained on three dates of its own and made current."""
    root = tmp_path / f"train-{version}"
    dates = ("2025-09-01", "2025-09-02", "2025-09-03")
    write_synthetic_history(root, dates, n_alerts=500,
                            uninformative=() if informative else dates)
    folder = modelsets.root(settings, NET, DAYS) / version
    train_models(root, list(dates), folder, version, specs=quick_specs())
    return modelsets.make_current(settings, NET, DAYS, version, by="test")


def run_learn(settings):
    return learning.learn(settings, NET, DAYS, D, specs=quick_specs())


def test_a_candidate_that_wins_is_promoted(settings, tmp_path):
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D), n_alerts=500)
    old = current_set(settings, tmp_path, "20250101T000000Z", informative=False)
    outcome = learning.learn(settings, NET, DAYS, D, specs=quick_learning_specs())
    assert outcome.decision == "promoted", outcome.reason
    assert outcome.training_dates == list(HISTORY[:-1]) and outcome.comparison_date == HISTORY[-1]
    assert D not in outcome.training_dates and outcome.current == old.version
    now = modelsets.current(settings, NET, DAYS)
    assert now.version == outcome.version and now.source == "learned"
    candidate, current = outcome.metrics["candidate"], outcome.metrics["current"]
    assert candidate["alert_auc"] >= current["alert_auc"] + settings.LEARN_MIN_GAIN
    record = json.loads((now.folder / modelsets.SET_FILE).read_text())
    assert record["decision"] == "promoted" and record["training_dates"] == list(HISTORY[:-1])
    # The measured candidate never saw the comparison date ...
    measured = json.loads(next((now.folder / learning.MEASURED).glob("alert_scorer_v*.json"))
                          .read_text())
    assert max(measured["training_dates"] + measured["validation_dates"]) < HISTORY[-1]
    # ... and the promoted set is its refit on every history date, still none of D or later.
    assert record["refit"] is True and record["refit_dates"] == list(HISTORY)
    assert record["refit_models"] == ["alert_scorer", "cluster_scorer"]
    for name in ("alert_scorer", "cluster_scorer"):
        sidecar = json.loads(next(now.folder.glob(f"{name}_v*.json")).read_text())
        assert sidecar["training_dates"] == list(HISTORY), name
        assert sidecar["validation_in_sample"] is True
        assert sidecar["recency_half_life_days"] == settings.LEARN_HALF_LIFE_DAYS, name
        # The candidate's rounds were chosen on the trainer's validation date (before the
        # comparison date); the refit trains exactly as many, with no date to stop on.
        was = json.loads((now.folder / learning.MEASURED / f"{name}_v{now.version}.json")
                         .read_text())
        assert was["early_stopping"]["on"] == [HISTORY[-2]], name
        assert was["early_stopping"]["rounds"] == was["num_trees"] <= 40, name
        assert sidecar["num_trees"] == was["num_trees"] and "early_stopping" not in sidecar
    # The cluster scoring rule was chosen on the trainer's validation date, and kept.
    measured_clusters = json.loads((now.folder / learning.MEASURED /
                                    f"cluster_scorer_v{now.version}.json").read_text())
    choice = measured_clusters["cluster_score_choice"]
    assert choice["on"] == [HISTORY[-2]] and set(choice["roc_auc"]) == {"model", "member_alert_max"}
    assert measured_clusters["cluster_score"] == choice["rule"]
    refit_clusters = json.loads((now.folder / f"cluster_scorer_v{now.version}.json").read_text())
    assert refit_clusters["cluster_score"] == choice["rule"]
    # The ranker is the measured one (its NDCG@100 is what the comparison judged).
    ranker = next(now.folder.glob("alert_ranker_v*.json"))
    assert ranker.read_bytes() == (now.folder / learning.MEASURED / ranker.name).read_bytes()
    assert "recency_half_life_days" not in json.loads(ranker.read_text())
    last = modelsets.last_learn(settings, NET, DAYS)
    assert last["processing_date"] == D and last["decision"] == "promoted"
    reports = settings.OUTPUT_DIR.parent / "reports"
    assert (reports / f"learn_{NET}_{DAYS}d_{D}.json").is_file()
    assert (reports / f"learn_{NET}_{DAYS}d_{D}_comparison.html").is_file()


def test_without_refit_the_promoted_set_is_the_measured_one(settings, tmp_path):
    settings = dataclasses.replace(settings, LEARN_REFIT=False)
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D), n_alerts=500)
    current_set(settings, tmp_path, "20250101T000000Z", informative=False)
    outcome = learning.learn(settings, NET, DAYS, D, specs=quick_specs())
    assert outcome.decision == "promoted", outcome.reason
    now = modelsets.current(settings, NET, DAYS)
    record = json.loads((now.folder / modelsets.SET_FILE).read_text())
    assert record["refit"] is False and record["refit_dates"] == record["refit_models"] == []
    assert not (now.folder / learning.MEASURED).exists()
    sidecar = json.loads(next(now.folder.glob("alert_scorer_v*.json")).read_text())
    assert max(sidecar["training_dates"] + sidecar["validation_dates"]) < HISTORY[-1]
    assert "validation_in_sample" not in sidecar


def test_a_worse_candidate_is_not_promoted(settings, tmp_path):
    # Trained on a label-shuffled history; compared on an informative date.
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D), n_alerts=500,
                            uninformative=HISTORY[:-1])
    good = current_set(settings, tmp_path, "20250101T000000Z", informative=True)
    outcome = run_learn(settings)
    assert outcome.decision == "kept" and "LEARN_MIN_GAIN" in outcome.reason
    assert outcome.metrics["candidate"]["alert_auc"] < outcome.metrics["current"]["alert_auc"]
    assert modelsets.current(settings, NET, DAYS).version == good.version
    kept = modelsets.root(settings, NET, DAYS) / outcome.version
    record = json.loads((kept / modelsets.SET_FILE).read_text())
    assert record["decision"] == "kept" and record["refit"] is False  # only a winner is refit
    assert not (kept / learning.MEASURED).exists()
    assert not list((modelsets.root(settings, NET, DAYS) / ".versions").iterdir())


def test_a_pinned_set_stays_even_when_the_candidate_wins(settings, tmp_path):
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D), n_alerts=500)
    old = current_set(settings, tmp_path, "20250101T000000Z", informative=False)
    modelsets.make_current(settings, NET, DAYS, old.version, by="operator", pinned=True)
    outcome = run_learn(settings)
    assert outcome.decision == "kept" and "pinned" in outcome.reason
    assert modelsets.current(settings, NET, DAYS).version == old.version


def test_nothing_of_the_processing_date_or_later_is_learned_from(settings, tmp_path):
    # Later dates exist (as they would when re-learning for an old date): never used.
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D, "2025-10-07"), n_alerts=300)
    outcome = learning.learn(settings, NET, DAYS, "2025-10-04", specs=quick_specs())
    used = outcome.training_dates + [outcome.comparison_date]
    assert used == ["2025-10-01", "2025-10-02", "2025-10-03"]
    assert outcome.labels.endswith("2025-10-04/address_labels.parquet")
    folder = modelsets.root(settings, NET, DAYS) / outcome.version
    measured = folder / learning.MEASURED if outcome.refit_dates else folder
    sidecar = json.loads(next(measured.glob("alert_scorer_v*.json")).read_text())
    assert sidecar["training_dates"] == ["2025-10-01"]
    assert sidecar["validation_dates"] == ["2025-10-02"]
    # A refit (of a winner) learns from every history date: still none of 2025-10-04 or later.
    assert outcome.refit_dates in ([], used)
    for path in [*folder.glob("*_v*.json"), *measured.glob("*_v*.json")]:
        sidecar = json.loads(path.read_text())
        assert max(sidecar["training_dates"] + sidecar["validation_dates"]) < "2025-10-04"


def test_too_little_history_keeps_the_current_set_and_says_what_is_missing(settings):
    write_synthetic_history(settings.INPUT_DIR, ("2025-10-04", "2025-10-05", D), n_alerts=200)
    done = cli("learn", "--processing-date", D, env=process_env(settings), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not-learned" in done.stdout and "LEARN_MIN_DATES=3" in done.stdout
    assert "2 labelled input date(s) before 2025-10-06 (2025-10-04, 2025-10-05)" in done.stdout
    assert modelsets.current(settings, NET, DAYS).version == "shipped"
    assert modelsets.last_learn(settings, NET, DAYS)["decision"] == "not-learned"


def test_a_history_with_one_class_cannot_train_and_keeps_the_current_set(settings):
    write_synthetic_history(settings.INPUT_DIR, (*HISTORY, D), n_alerts=200,
                            positive_share=0.0)
    outcome = run_learn(settings)
    assert outcome.decision == "not-learned" and "positive" in outcome.reason
    assert modelsets.learned_versions(settings, NET, DAYS) == []
    assert not list((modelsets.root(settings, NET, DAYS) / ".versions").iterdir())


def test_models_list_and_use_from_the_command_line(settings, tmp_path):
    old = current_set(settings, tmp_path, "20250101T000000Z", informative=True)
    env = process_env(settings)
    listing = cli("models", "list", env=env)
    assert listing.returncode == 0
    assert f"* {old.version}" in listing.stdout and "  shipped" in listing.stdout
    use = cli("models", "use", "shipped", env=env)
    assert use.returncode == 0 and "pinned" in use.stdout
    assert modelsets.current(settings, NET, DAYS).version == "shipped"
    assert "* shipped (pinned)" in cli("models", "list", env=env).stdout
    wrong = cli("models", "use", "20990101T000000Z", env=env)
    assert wrong.returncode == 1 and "known: shipped, 20250101T000000Z" in wrong.stderr
    assert cli("models", "unpin", env=env).returncode == 0
    assert not modelsets.current(settings, NET, DAYS).pinned


@pytest.mark.parametrize("override", ["--models-dir", "--model-version"])
def test_process_uses_the_current_set_unless_told_otherwise(settings, tmp_path, override):
    write_synthetic_history(settings.INPUT_DIR, (D,), n_alerts=200)
    learned = current_set(settings, tmp_path, "20250101T000000Z", informative=True)
    env = process_env(settings)
    assert cli("process", "--processing-date", D, env=env).returncode == 0
    metadata = json.loads((settings.OUTPUT_DIR / D / "metadata.json").read_text())
    assert metadata["model_set"]["version"] == learned.version
    assert metadata["model_versions"]["alert_scorer"] == f"alert_scorer_v{learned.version}"
    value = str(settings.MODELS_DIR) if override == "--models-dir" else "1.0.0"
    extra = [override, value] + (["--models-dir", str(settings.MODELS_DIR)]
                                 if override == "--model-version" else [])
    assert cli("process", "--processing-date", D, *extra, env=env).returncode == 0
    metadata = json.loads((settings.OUTPUT_DIR / D / "metadata.json").read_text())
    assert metadata["model_set"]["source"] == "override"
    assert metadata["model_versions"]["alert_scorer"] == "alert_scorer_v1.0.0"


def test_with_several_networks_each_learns_from_its_own_folder(settings):
    s = settings.replace(NETWORKS=("bitcoin", "torus"))
    write_synthetic_history(s.INPUT_DIR / "torus", (*HISTORY, D), n_alerts=500)
    outcome = learning.learn(s, "torus", DAYS, D, specs=quick_specs())
    assert outcome.decision in ("promoted", "kept"), outcome.reason
    assert outcome.training_dates == list(HISTORY[:-1]) and outcome.comparison_date == HISTORY[-1]
    assert modelsets.last_learn(s, "torus", DAYS)["processing_date"] == D
    assert modelsets.last_learn(s, "bitcoin", DAYS) is None  # bitcoin's sets are its own
    assert modelsets.current(s, "bitcoin", DAYS).version == modelsets.SHIPPED
    nothing = learning.learn(s, "bitcoin", DAYS, D, specs=quick_specs())
    assert nothing.decision == learning.NOT_LEARNED and "0 labelled input date" in nothing.reason
