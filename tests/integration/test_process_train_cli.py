"""`aml-miner train` as a subprocess: trains loadable models, or exits 1 saying why."""

from __future__ import annotations

import subprocess
import sys

from services.processor.models import load_models
from tests.conftest import REPO
from tests.processor_fixtures import SYNTHETIC_DATES, write_synthetic_date


def _train(tmp_path, *extra):
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "train", "--input-dir", str(tmp_path / "input"),
         "--dates", *SYNTHETIC_DATES[:2], "--models-dir", str(tmp_path / "models"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600)


def test_cli_train_writes_models_that_process_can_load(tmp_path):
    for i, date in enumerate(SYNTHETIC_DATES[:2]):
        write_synthetic_date(tmp_path / "input", date, 400, seed=i)
    result = _train(tmp_path, "--version", "2.0.1", "--report-dir", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert load_models(tmp_path / "models").versions()["alert_ranker"] == "alert_ranker_v2.0.1"
    assert (tmp_path / "report" / "roc.png").is_file()


def test_cli_train_on_one_class_exits_1_naming_model_and_counts(tmp_path):
    for i, date in enumerate(SYNTHETIC_DATES[:2]):
        write_synthetic_date(tmp_path / "input", date, 300, seed=i, positive_share=0.0)
    result = _train(tmp_path)
    assert result.returncode == 1
    assert "aml-miner train: error: alert_scorer: cannot train" in result.stderr
    assert "0 positive and" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()
