"""`aml-miner validate` / `evaluate`: reports written, exit codes 0 / 1 / 2 (no processor needed here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from services import cli
from tests import validator_fixtures as vf

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def roots(tmp_path: Path, monkeypatch) -> Path:
    """Input and output folders of one good date, configured through the environment."""
    folder = vf.make_input(tmp_path / "input")
    vf.publish_output(tmp_path / "output", vf.build_output(folder))
    monkeypatch.setenv("INPUT_DIR", str(tmp_path / "input"))
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path


def validate(*extra: str) -> int:
    return cli.main(["validate", "--processing-date", vf.DATE, "--no-determinism", *extra])


def test_good_output_exits_0_and_writes_json_and_html(roots, capsys):
    assert validate() == 0
    out = capsys.readouterr().out
    assert "INTEGRITY GATE: PASS" in out and "GROUND TRUTH" in out
    report = json.loads((roots / "reports" / f"validate_{vf.DATE}.json").read_text())
    assert report["verdict"] == {"integrity_gate": "pass", "determinism": "skipped",
                                 "summary": "integrity gate passed", "exit_code": 0}
    assert report["ground_truth"]["alerts"]["labelled"] > 0
    page = (roots / "reports" / f"validate_{vf.DATE}.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # histogram, ROC, PR


def test_broken_output_exits_1_and_names_the_alert(roots, capsys):
    def break_score(p):
        p["alerts"].loc[p["alerts"]["alert_id"] == "a26-0005", "score"] = math.nan
    vf.rewrite(roots / "output", break_score)
    assert validate("--report-dir", str(roots / "elsewhere")) == 1
    out = capsys.readouterr().out
    assert "INTEGRITY GATE: FAIL (21/22 checks pass)" in out and "a26-0005=nan" in out
    report = json.loads((roots / "elsewhere" / f"validate_{vf.DATE}.json").read_text())
    failed = [c["name"] for c in report["integrity"] if not c["passed"]]
    assert failed == ["alerts.score_range"]


def test_unpublished_date_exits_2(roots, capsys):
    code = cli.main(["validate", "--processing-date", "2025-10-20", "--no-determinism"])
    assert code == 2
    err = capsys.readouterr().err
    assert "2025-10-20" in err and "input date folder does not exist" in err


def test_missing_output_exits_2_naming_it(roots, capsys):
    vf.make_input(roots / "input", date="2025-10-27")
    assert cli.main(["validate", "--processing-date", "2025-10-27", "--no-determinism"]) == 2
    assert "no published output for this date" in capsys.readouterr().err


def test_malformed_date_exits_2(roots, capsys):
    assert cli.main(["validate", "--processing-date", "2025-13-01"]) == 2
    assert "not a calendar date" in capsys.readouterr().err


def test_unreachable_api_exits_2(roots, capsys):
    assert validate("--api", "http://127.0.0.1:9") == 2
    assert "GET http://127.0.0.1:9/scores/alerts/2025-10-26" in capsys.readouterr().err


def test_evaluate_refuses_a_missing_models_folder(roots, capsys):
    code = cli.main(["evaluate", "--dates", vf.DATE, "--models-dir", str(roots / "nope")])
    assert code == 2
    assert f"models folder not found: {roots / 'nope'}" in capsys.readouterr().err


def test_exit_code_reaches_the_shell(roots):
    vf.rewrite(roots / "output", lambda p: p["metadata"].update(alert_count=1))
    done = subprocess.run([sys.executable, "-m", "services.cli", "validate", "--processing-date", vf.DATE,
                           "--no-determinism"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "[FAIL] metadata.counts: 2 count(s) disagree" in done.stdout
