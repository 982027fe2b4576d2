"""Reading results from a folder (damaged files become named problems) and rendering reports."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.validator import plots, report, sources
from services.validator.sources import FolderSource, SourceError
from tests import validator_fixtures as vf


@pytest.fixture
def output(tmp_path: Path) -> Path:
    folder = vf.make_input(tmp_path / "input")
    vf.publish_output(tmp_path / "output", vf.build_output(folder))
    return tmp_path / "output"


def test_folder_source_reads_the_version_the_date_points_at(output):
    result = FolderSource(output).load(vf.DATE)
    assert Path(result.origin).parent.name == ".versions"
    assert list(result.alerts.columns) == ["alert_id", "score", "model_version", "address"]
    assert result.alerts["score"].dtype == "float64" and len(result.alerts) == 60
    assert result.problems == []
    assert FolderSource(output).dates() == [vf.DATE]


def test_an_unpublished_date_is_a_source_error(output):
    with pytest.raises(SourceError, match="no published output for this date"):
        FolderSource(output).load("2025-10-01")


def test_damaged_files_become_named_problems(output):
    folder = Path(FolderSource(output).load(vf.DATE).origin)
    (folder / "clusters_scored.parquet").write_bytes(b"not parquet")
    (folder / "metadata.json").write_text("{broken")
    result = FolderSource(output).load(vf.DATE)
    assert any(p.startswith("clusters_scored.parquet: not a readable parquet file") for p in result.problems)
    assert any(p.startswith("metadata.json: not valid JSON") for p in result.problems)
    assert result.clusters.empty and result.metadata == {}


def test_ids_become_strings_and_bad_scores_nan():
    problems = []
    frame = pd.DataFrame({"alert_id": ["1", None], "score": ["0.5", "x"], "model_version": ["v", "v"]})
    out = sources.normalise(frame, sources.ALERT_COLUMNS, "t", problems)
    assert out["alert_id"].tolist() == ["1", None]
    assert sources.normalise(pd.DataFrame({"alert_id": [7, 8]}), ("alert_id",), "t", [])[
        "alert_id"].tolist() == ["7", "8"]
    assert out["score"].iloc[0] == 0.5 and np.isnan(out["score"].iloc[1])
    sources.normalise(frame.drop(columns=["model_version"]), sources.ALERT_COLUMNS, "t", problems)
    assert problems == ["t: missing column(s) model_version"]


def test_previous_date_is_the_newest_earlier_one():
    dates = ["2025-10-27", "2025-10-24", "2025-10-25"]
    assert sources.previous_date(dates, "2025-10-26") == "2025-10-25"
    assert sources.previous_date(dates, "2025-10-24") is None


SAMPLE = {
    "kind": "validate", "processing_date": vf.DATE, "source": "/o", "input": "/i",
    "model_versions": {"alert_scorer": "v"},
    "verdict": {"summary": "INTEGRITY GATE FAILED", "exit_code": 1},
    "integrity": [{"name": "alerts.score_range", "passed": False, "gate": True, "detail": "1 bad <score>",
                   "n_offending": 25, "offending": [f"id{i}" for i in range(20)]}],
    "behaviour": {"histogram": [1] * 10, "entropy": float("nan"), "same_address": None, "stability": None,
                  "notes": []},
    "ground_truth": {"skipped": "the input has no address_labels.parquet"},
    "determinism": {"skipped": "--no-determinism"},
}


def test_text_report_shows_offending_ids_and_how_many_more():
    text = report.render_text(SAMPLE)
    assert "[FAIL] alerts.score_range: 1 bad <score>" in text
    assert "id19 ... and 5 more" in text
    assert "GROUND TRUTH: skipped (the input has no address_labels.parquet)" in text
    assert "score entropy (10 bins, 0..1): n/a" in text


def test_json_report_has_no_nan_and_html_is_escaped_and_self_contained(tmp_path):
    y = np.array([0, 1, 0, 1, 1, 0])
    figures = plots.figures({"d": [1] * 10}, {"alerts": (y, np.linspace(0.1, 0.9, 6))})
    json_path, html_path = report.write(SAMPLE, figures, tmp_path / "r", "validate_x")
    assert json.loads(json_path.read_text())["behaviour"]["entropy"] is None
    page = html_path.read_text()
    assert "1 bad &lt;score&gt;" in page and "<score>" not in page
    assert "src='http" not in page and "<script" not in page
    assert set(figures) == {"score histogram", "ROC", "precision-recall"}
    for png in figures.values():
        assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["validate_x.html", "validate_x.json"]


def test_figures_skip_curves_without_both_classes():
    figures = plots.figures({"d": [1] * 10}, {"alerts": (np.ones(4), np.linspace(0, 1, 4))})
    assert list(figures) == ["score histogram"]
