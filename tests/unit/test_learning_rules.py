"""The learner's rules without training: which dates, which labels, which decision."""

import json
import shutil

import pytest

from services.processor import learning
from shared import contract
from tests.processor_fixtures import write_synthetic_history

DATES = ("2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04", "2025-10-05")


@pytest.fixture
def history_dir(tmp_path):
    root = tmp_path / "input"
    write_synthetic_history(root, DATES, n_alerts=60)
    return root


def test_history_holds_only_dates_strictly_before_the_processing_date(history_dir):
    found = learning.history(history_dir, "2025-10-04", "bitcoin", 7, max_dates=30)
    assert found.dates == ["2025-10-01", "2025-10-02", "2025-10-03"]
    # The labels are the copy downloaded with the processing date itself (the newest <= D),
    # never a later one.
    assert found.labels == history_dir / "2025-10-04" / contract.LABELS_FILE


def test_labels_come_from_the_newest_date_not_after_the_processing_date(history_dir):
    shutil.rmtree(history_dir / "2025-10-04")
    assert learning.labels_file(history_dir, "2025-10-04") == \
        history_dir / "2025-10-03" / contract.LABELS_FILE
    assert learning.labels_file(history_dir, "2025-09-30") is None


def test_history_takes_the_newest_max_dates(history_dir):
    found = learning.history(history_dir, "2025-10-06", "bitcoin", 7, max_dates=3)
    assert found.dates == ["2025-10-03", "2025-10-04", "2025-10-05"]


def test_a_date_without_alerts_is_left_out_with_its_reason(history_dir):
    (history_dir / "2025-10-02" / contract.ALERTS_FILE).unlink()
    found = learning.history(history_dir, "2025-10-06", "bitcoin", 7, max_dates=30)
    assert "2025-10-02" not in found.dates
    reason = found.skipped["2025-10-02"]
    assert "no alerts.parquet" in reason and "features.parquet" in reason


def test_a_date_of_another_network_or_window_is_left_out(history_dir):
    meta = {"network": "torus", "window_days": 7}
    (history_dir / "2025-10-03" / contract.META_FILE).write_text(json.dumps(meta))
    (history_dir / "2025-10-04" / contract.META_FILE).write_text(
        json.dumps({"network": "bitcoin", "window_days": 30}))
    found = learning.history(history_dir, "2025-10-06", "bitcoin", 7, max_dates=30)
    assert found.dates == ["2025-10-01", "2025-10-02", "2025-10-05"]
    assert "torus 7d" in found.skipped["2025-10-03"]
    assert "bitcoin 30d" in found.skipped["2025-10-04"]


def test_a_date_without_any_labelled_alert_is_left_out(tmp_path):
    root = tmp_path / "input"
    write_synthetic_history(root, DATES[:3], n_alerts=60)
    labels = root / "2025-10-03" / contract.LABELS_FILE
    import pyarrow.parquet as pq

    table = pq.read_table(labels)
    keep = [not a.startswith("2025-10-02") for a in table.column("address").to_pylist()]
    pq.write_table(table.filter(keep), labels)
    found = learning.history(root, "2025-10-03", "bitcoin", 7, max_dates=30)
    assert found.dates == ["2025-10-01"]
    assert "no alert address carries" in found.skipped["2025-10-02"]


def test_the_past_only_guard_refuses_the_processing_date_and_later():
    learning.check_past_only(["2025-10-01", "2025-10-02"], "2025-10-03")
    with pytest.raises(learning.LearnError, match="2025-10-03, 2025-10-04"):
        learning.check_past_only(["2025-10-02", "2025-10-03", "2025-10-04"], "2025-10-03")


def measures(auc, brier=0.1, ndcg=0.8, cluster=0.8, gate=True):
    return {"gate_passed": gate, "gate_failures": [] if gate else ["alerts.coverage"],
            "alert_auc": auc, "alert_brier": brier, "ndcg_at_100": ndcg, "cluster_auc": cluster}


@pytest.mark.parametrize("current, candidate, promote, says", [
    (measures(0.70), measures(0.90), True, "alert ROC AUC 0.9000 vs current 0.7000 (+0.2000)"),
    (measures(0.70), measures(0.703), False, "gain +0.0030 < LEARN_MIN_GAIN 0.005"),
    (measures(0.90), measures(0.60), False, "gain -0.3000"),
    (measures(0.70), measures(0.90, brier=0.2), False, "alert Brier 0.2000 vs current 0.1000"),
    (measures(0.70), measures(0.90, ndcg=0.7), False, "NDCG@100 0.7000 vs current 0.8000"),
    (measures(0.70), measures(0.90, cluster=0.75), False, "cluster ROC AUC 0.7500"),
    (measures(0.70), measures(0.90, ndcg=None), True, "NDCG@100 n/a"),
    (measures(0.70), measures(0.90, gate=False), False, "failed the integrity gate: alerts.coverage"),
    (measures(0.70), measures(None), False, "cannot be measured"),
    (measures(None), measures(0.60), True, "vs current n/a"),
])
def test_decide(current, candidate, promote, says):
    won, reason = learning.decide(current, candidate, min_gain=0.005, tolerance=0.01)
    assert won is promote and says in reason


def test_within_tolerance_is_not_worse():
    won, _ = learning.decide(measures(0.70, brier=0.10), measures(0.90, brier=0.109), 0.005, 0.01)
    assert won


def test_a_missing_github_url_does_not_decide_between_sets():
    run = {"pooled": {"alerts": {"roc_auc": 0.9, "brier": 0.1, "labelled": 10, "positives": 3},
                      "ranking": {"ndcg_at_100": None},
                      "clusters": {"roc_auc": 0.8}},
           "per_date": {"2025-10-05": {"integrity": {"failed": ["metadata.model_github_url"]}}}}
    assert learning.measures(run)["gate_passed"]
    run["per_date"]["2025-10-05"]["integrity"]["failed"].append("alerts.coverage")
    assert learning.measures(run)["gate_failures"] == ["alerts.coverage"]
