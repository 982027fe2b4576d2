"""Comparing a published output with its re-run; a failing processor command is reported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.validator import determinism
from services.validator.sources import FolderSource
from shared.settings import Settings
from tests import validator_fixtures as vf


@pytest.fixture
def pair(tmp_path: Path):
    """The same correct output published twice, in two output roots."""
    folder = vf.make_input(tmp_path / "input")
    parts = vf.build_output(folder)
    vf.publish_output(tmp_path / "a", parts)
    vf.publish_output(tmp_path / "b", parts)
    return tmp_path / "a", tmp_path / "b"


def compare(pair):
    a, b = (FolderSource(root).load(vf.DATE) for root in pair)
    return {c.name: c for c in determinism.compare(a, b)}


def test_identical_outputs_pass(pair):
    checks = compare(pair)
    assert all(c.passed for c in checks.values()), [c.as_dict() for c in checks.values()]
    assert set(checks) == {"determinism.alert_scores", "determinism.cluster_scores", "determinism.ranking"}


def test_a_score_moved_by_1e_9_is_caught(pair):
    def nudge(p):
        p["alerts"].loc[p["alerts"]["alert_id"] == "a26-0004", "score"] += 1e-9
    vf.rewrite(pair[1], nudge)
    checks = compare(pair)
    assert not checks["determinism.alert_scores"].passed
    assert checks["determinism.alert_scores"].offending == ["a26-0004 (1e-09)"]
    assert checks["determinism.ranking"].passed


def test_differences_below_the_tolerance_pass(pair):
    def nudge(p):
        p["clusters"]["score"] = p["clusters"]["score"] + 1e-14
    vf.rewrite(pair[1], nudge)
    assert compare(pair)["determinism.cluster_scores"].passed


def test_a_changed_ranking_and_a_missing_cluster_are_caught(pair):
    def change(p):
        ranking = p["ranking"]
        first, second = ranking["rank"] == 1, ranking["rank"] == 2
        ranking.loc[first, "rank"], ranking.loc[second, "rank"] = 2, 1
        p["clusters"] = p["clusters"].iloc[1:]
    vf.rewrite(pair[1], change)
    checks = compare(pair)
    assert checks["determinism.ranking"].n_offending == 2
    assert any("(1 vs 2)" in o for o in checks["determinism.ranking"].offending)
    assert checks["determinism.cluster_scores"].offending == ["cluster_0000_2025-10-26"]


def test_a_failing_processor_command_raises_with_its_stderr(tmp_path):
    command = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no models'); sys.exit(4)"]
    with pytest.raises(determinism.ProcessorFailed, match="exited 4: boom: no models"):
        determinism.run_processor(tmp_path, tmp_path / "out", vf.DATE, tmp_path, command=command)


def test_the_processor_is_called_with_the_documented_arguments(tmp_path):
    record = tmp_path / "argv.txt"
    command = [sys.executable, "-c", f"import sys; open({str(record)!r}, 'w').write(' '.join(sys.argv[1:]))"]
    out = determinism.run_processor(Path("/in"), tmp_path / "out", vf.DATE, Path("/models"), command=command)
    assert out == tmp_path / "out" / vf.DATE
    assert record.read_text() == (f"process --input-dir /in --output-dir {tmp_path / 'out'} "
                                  f"--processing-date {vf.DATE} --models-dir /models")


def test_the_processor_is_called_with_each_recorded_engine(tmp_path):
    record = tmp_path / "argv.txt"
    command = [sys.executable, "-c", f"import sys; open({str(record)!r}, 'w').write(' '.join(sys.argv[1:]))"]
    metadata = {"predict_engines": {"alert_scorer": {"engine": "compiled"},
                                    "cluster_scorer": {"engine": "lightgbm", "fallback": "why"}}}
    determinism.run_processor(Path("/in"), tmp_path / "out", vf.DATE, Path("/models"),
                              command=command, engines=determinism.recorded_engines(metadata))
    assert record.read_text().endswith(
        "--models-dir /models --engine alert_scorer=compiled --engine cluster_scorer=lightgbm")


def test_a_date_published_before_engines_were_recorded_reruns_on_lightgbm():
    assert determinism.recorded_engines({"model_versions": {}}) == {}
    assert determinism.engine_arguments({}) == ["--engine", "lightgbm"]
    rerun = {"alert_scorer": "lightgbm", "alert_ranker": "lightgbm", "cluster_scorer": "lightgbm"}
    assert determinism.compare_engines({}, rerun).passed


def test_a_rerun_on_another_engine_than_recorded_fails_naming_the_model():
    recorded = {"alert_scorer": "compiled", "cluster_scorer": "compiled"}
    check = determinism.compare_engines(recorded, {**recorded, "cluster_scorer": "lightgbm"})
    assert not check.passed and check.offending == ["cluster_scorer (compiled vs lightgbm)"]
    assert determinism.compare_engines(recorded, dict(recorded)).passed


def test_child_env_carries_every_setting():
    settings = Settings.from_env({}).replace(NETWORK="ethereum", MINER_VALIDATOR_HOTKEYS=("a", "b"))
    env = determinism.child_env(settings, {"PATH": "/bin", "NETWORK": "bitcoin"})
    assert env["NETWORK"] == "ethereum" and env["PATH"] == "/bin"
    assert env["MINER_VALIDATOR_HOTKEYS"] == "a,b"
    assert Settings.from_env(env) == settings


def test_a_score_that_became_nan_is_a_difference(pair):
    vf.rewrite(pair[1], lambda p: p["alerts"].__setitem__("score", p["alerts"]["score"].where(
        p["alerts"]["alert_id"] != "a26-0003")))
    check = compare(pair)["determinism.alert_scores"]
    assert check.offending == ["a26-0003 (nan)"]
    assert "1 NaN on one side only" in check.detail
