"""Training: refuses unusable labels, is deterministic, writes sidecars and a report."""

from __future__ import annotations

import json

import pytest

from services.processor.dataset import TrainingError
from services.processor.models import MODEL_NAMES, load_models, model_file, sidecar_file
from services.processor.train import train_models
from shared.storage import sha256_file
from tests.processor_fixtures import SYNTHETIC_DATES, quick_specs, train_tiny, write_synthetic_date


def test_refuses_one_class_naming_the_model_and_counts(tmp_path):
    with pytest.raises(TrainingError) as err:
        train_tiny(tmp_path, n_alerts=300, positive_share=0.0)
    message = str(err.value)
    assert message.startswith("alert_scorer: cannot train")
    assert "0 positive and" in message and "need at least 10 of each class" in message
    assert not (tmp_path / "models").exists()  # refused before writing anything


def test_refuses_without_labels(tmp_path):
    for i, date in enumerate(SYNTHETIC_DATES[:2]):
        write_synthetic_date(tmp_path / "input", date, 200, seed=i, labelled_share=0.0)
    with pytest.raises(TrainingError, match="0 positive and 0 negative"):
        train_models(tmp_path / "input", list(SYNTHETIC_DATES[:2]), tmp_path / "models",
                     specs=quick_specs())


def test_refuses_a_single_date_and_a_bad_version(tmp_path):
    with pytest.raises(TrainingError, match="at least two dates"):
        train_models(tmp_path, ["2025-10-01"], tmp_path / "models")
    with pytest.raises(TrainingError, match="not in X.Y.Z form"):
        train_models(tmp_path, ["2025-10-01", "2025-10-02"], tmp_path / "m", version="v1")


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    return train_tiny(first), first / "models", train_tiny(second), second / "models"


def test_training_twice_gives_byte_identical_models(twice):
    _, first, _, second = twice
    for name in MODEL_NAMES:
        path = model_file(first, name, "1.0.0")
        assert path.read_bytes() == model_file(second, name, "1.0.0").read_bytes()
        assert sidecar_file(path).read_bytes() == sidecar_file(
            model_file(second, name, "1.0.0")).read_bytes()


def test_sidecar_records_provenance_and_loads(twice):
    metrics, folder, _, _ = twice
    sidecar = json.loads(sidecar_file(model_file(folder, "alert_ranker", "1.0.0")).read_text())
    assert sidecar["name"] == "alert_ranker" and sidecar["version"] == "1.0.0"
    assert sidecar["objective"] == "lambdarank"
    assert sidecar["training_dates"] == list(SYNTHETIC_DATES[:2])
    assert sidecar["validation_dates"] == [SYNTHETIC_DATES[2]]
    assert sidecar["model_sha256"] == sha256_file(model_file(folder, "alert_ranker", "1.0.0"))
    assert sidecar["rows"]["train"] > 0 and sidecar["positives"]["train"] > 0
    assert {"auc", "pr_auc", "ndcg"} <= set(sidecar["validation"])
    assert sidecar["params"]["deterministic"] is True
    assert not [f for f in sidecar["features"] if "label" in f or "risk_level" in f]
    models = load_models(folder)
    assert list(models.alert_ranker.features) == sidecar["features"]
    assert metrics["alert_scorer"]["auc"] > 0.8  # the synthetic signal is learnable


def test_report_has_metrics_and_curves(twice):
    metrics, folder, _, _ = twice
    report = folder / "report"
    assert json.loads((report / "metrics.json").read_text())["alert_scorer_v1.0.0"] == \
        metrics["alert_scorer"]
    assert "| alert_ranker_v1.0.0 |" in (report / "report.md").read_text()
    for png in ("roc.png", "pr.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_date_with_more_labelled_rows_than_one_ranking_query_takes_is_split(tmp_path):
    # LightGBM refuses a ranking query of more than 10,000 rows; a big real date has more.
    for i, date in enumerate(SYNTHETIC_DATES[:2]):
        write_synthetic_date(tmp_path / "input", date, 24_000, seed=i, labelled_share=0.9)
    metrics = train_models(tmp_path / "input", list(SYNTHETIC_DATES[:2]), tmp_path / "models",
                           specs=quick_specs(rounds=3))
    assert metrics["alert_ranker"]["rows"] > 10_000
    ranker = json.loads(sidecar_file(model_file(tmp_path / "models", "alert_ranker",
                                                "1.0.0")).read_text())
    assert ranker["rows"]["train"] > 10_000


def test_queries_keep_small_dates_whole_and_split_big_ones_at_random():
    import numpy as np

    from services.processor.dataset import Part

    dates = np.array(["a"] * 5 + ["b"] * 23)
    part = Part(None, np.zeros(len(dates)), dates)
    order, sizes = part.queries(max_rows=10, seed=1)
    assert sizes == [5, 8, 8, 7]
    assert order[:5].tolist() == [0, 1, 2, 3, 4]  # a date that fits stays in its order
    assert sorted(order[5:].tolist()) == list(range(5, 28)) and order[5:].tolist() != \
        list(range(5, 28))
    assert part.queries(max_rows=10, seed=1)[0].tolist() == order.tolist()  # deterministic


def test_max_rows_trains_on_a_uniform_sample_and_says_so_in_the_sidecar(tmp_path):
    train_tiny(tmp_path, n_alerts=600)  # writes the synthetic dates
    train_models(tmp_path / "input", list(SYNTHETIC_DATES), tmp_path / "capped",
                 specs=quick_specs(), max_rows=250)
    for name in MODEL_NAMES:
        sidecar = json.loads(sidecar_file(model_file(tmp_path / "capped", name,
                                                     "1.0.0")).read_text())
        assert sidecar["rows"]["train"] <= 250 and sidecar["max_training_rows"] == 250
        assert sidecar["positives"]["train"] >= 10  # a uniform draw keeps both classes


def test_a_sample_keeps_date_order_and_the_class_share():
    import numpy as np
    import pandas as pd

    from services.processor.dataset import Part

    n = 10_000
    label = (np.arange(n) % 4 == 0).astype(np.int32)
    dates = np.repeat(["a", "b"], n // 2)
    part = Part(pd.DataFrame({"x": np.arange(n, dtype=np.float32)}), label, dates)
    small = part.sample(2_000, seed=3)
    assert len(small.label) == 2_000 and np.all(np.diff(small.frame["x"].to_numpy()) > 0)
    assert abs(small.label.mean() - 0.25) < 0.03
    assert part.sample(n, seed=3) is part
