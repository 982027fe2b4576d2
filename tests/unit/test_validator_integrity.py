"""The integrity gate catches each way an output can be broken, naming the offending ids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.validator import inputs, integrity
from services.validator.sources import FolderSource
from tests import validator_fixtures as vf


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """An input date and its correct published output."""
    folder = vf.make_input(tmp_path / "input")
    vf.publish_output(tmp_path / "output", vf.build_output(folder))
    return tmp_path / "input", tmp_path / "output"


def gate(roots) -> dict[str, integrity.Check]:
    batch = inputs.load(roots[0], vf.DATE)
    result = FolderSource(roots[1]).load(vf.DATE)
    return {c.name: c for c in integrity.run_gate(result, batch.alerts, batch.clusters, batch.meta)}


def failed(checks: dict) -> set[str]:
    return {name for name, c in checks.items() if c.gate and not c.passed}


def test_a_correct_output_passes_every_check(roots):
    checks = gate(roots)
    assert failed(checks) == set()
    assert checks["ranking.tie_order"].passed
    assert integrity.gate_passed(list(checks.values()))
    assert len(checks) == 23


def _drop_alert(p):
    p["alerts"] = p["alerts"][p["alerts"]["alert_id"] != "a26-0007"]


def _duplicate_alert(p):
    p["alerts"] = pd.concat([p["alerts"], p["alerts"].iloc[[3]]], ignore_index=True)


def _set_score(value):
    def change(p):
        p["alerts"].loc[p["alerts"]["alert_id"] == "a26-0005", "score"] = value
    return change


def _rank_gap(p):
    last = p["ranking"]["rank"].idxmax()
    p["ranking"].loc[last, "rank"] = len(p["ranking"]) + 1


def _rank_against_score(p):
    ranking = p["ranking"]
    first, tenth = ranking.index[ranking["rank"] == 1][0], ranking.index[ranking["rank"] == 10][0]
    ranking.loc[[first, tenth], "rank"] = [10, 1]


def _repeat_rank(p):
    p["ranking"].loc[p["ranking"]["rank"] == 4, "rank"] = 3


def _empty_version(p):
    p["alerts"].loc[p["alerts"]["alert_id"] == "a26-0002", "model_version"] = ""


def _unknown_alert(p):
    p["alerts"].loc[p["alerts"]["alert_id"] == "a26-0009", "alert_id"] = "not-an-input-alert"


def _count_mismatch(p):
    p["metadata"]["cluster_count"] = 99


def _drop_cluster(p):
    p["clusters"] = p["clusters"].iloc[1:]


def _negative_cluster_score(p):
    p["clusters"].loc[2, "score"] = -0.1


def _ranking_missing_alert(p):
    p["ranking"] = p["ranking"][p["ranking"]["alert_id"] != "a26-0011"].assign(
        rank=lambda f: np.arange(1, len(f) + 1))


def _ranking_null_version(p):
    p["ranking"]["model_version"] = None


def _wrong_date(p):
    p["metadata"]["processing_date"] = "2025-10-25"


def _versions_without_ranker(p):
    del p["metadata"]["model_versions"]["alert_ranker"]


def _no_github_url(p):
    del p["metadata"]["model_github_url"]


def _drop_score_column(p):
    p["clusters"] = p["clusters"].drop(columns=["score"])


BREAKAGES = {
    "missing alert": (_drop_alert, {"alerts.coverage", "metadata.counts"}, "a26-0007"),
    "duplicate alert": (_duplicate_alert, {"alerts.duplicates", "metadata.counts"}, "a26-0003"),
    "score 1.2": (_set_score(1.2), {"alerts.score_range"}, "a26-0005=1.2"),
    "score NaN": (_set_score(math.nan), {"alerts.score_range"}, "a26-0005=nan"),
    "score -inf": (_set_score(-math.inf), {"alerts.score_range"}, "a26-0005=-inf"),
    "rank gap": (_rank_gap, {"ranking.rank_sequence"}, "rank 60"),
    "rank inconsistent with score": (_rank_against_score, {"ranking.rank_order"}, "(rank 2)"),
    "repeated rank": (_repeat_rank, {"ranking.rank_sequence"}, "rank 3 x2"),
    "empty model_version": (_empty_version, {"alerts.model_version", "metadata.model_versions"},
                            "a26-0002"),
    "unknown alert id": (_unknown_alert, {"alerts.unknown_ids", "alerts.coverage"},
                         "not-an-input-alert"),
    "metadata count mismatch": (_count_mismatch, {"metadata.counts"}, "cluster_count=99"),
    "missing cluster": (_drop_cluster, {"clusters.coverage", "metadata.counts"}, "cluster_0000"),
    "negative cluster score": (_negative_cluster_score, {"clusters.score_range"}, "=-0.1"),
    "ranking lacks an alert": (_ranking_missing_alert, {"ranking.coverage"}, "a26-0011"),
    "ranking without model_version": (_ranking_null_version, {"ranking.model_version"}, "a26-"),
    "metadata of another date": (_wrong_date, {"metadata.identity"}, "2025-10-25"),
    "model_versions lacks the ranker": (_versions_without_ranker, {"metadata.model_versions"},
                                        "alert_ranker is empty"),
    "no model_github_url": (_no_github_url, {"metadata.model_github_url"}, "model_github_url"),
    "cluster score column missing": (_drop_score_column,
                                     {"output.schema", "clusters.score_range"}, "missing column"),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_each_breakage_fails_exactly_its_checks(roots, case):
    change, expected, offending = BREAKAGES[case]
    vf.rewrite(roots[1], change)
    checks = gate(roots)
    assert failed(checks) == expected
    assert all(checks[name].n_offending >= 1 for name in expected)
    named = [o for name in expected for o in checks[name].offending]
    assert any(offending in o for o in named), (case, [checks[n].as_dict() for n in expected])


def test_missing_file_fails_schema_and_coverage(roots):
    target = FolderSource(roots[1]).load(vf.DATE).origin
    (Path(target) / "alerts_ranked.parquet").unlink()
    checks = gate(roots)
    assert "alerts_ranked.parquet: file is missing" in checks["output.schema"].offending
    assert {"output.schema", "ranking.coverage"} <= failed(checks)


def test_offending_list_is_capped_but_counted(roots):
    vf.rewrite(roots[1], lambda p: p.update(alerts=p["alerts"].iloc[30:]))
    check = gate(roots)["alerts.coverage"]
    assert check.n_offending == 30
    assert len(check.offending) == integrity.CAP
    assert check.offending == sorted(check.offending)


def test_ties_in_any_order_pass_the_gate_and_are_noted(roots):
    def tie_reversed(p):
        ranking = p["ranking"]
        ranking["score"] = 0.5
        ranking["rank"] = np.arange(len(ranking), 0, -1)  # alert_id order reversed
        p["alerts"]["score"] = 0.5
    vf.rewrite(roots[1], tie_reversed)
    checks = gate(roots)
    assert failed(checks) == set()
    assert not checks["ranking.tie_order"].passed and not checks["ranking.tie_order"].gate


def test_network_disagreeing_with_input_meta_fails_identity(roots):
    vf.rewrite(roots[1], lambda p: p["metadata"].update(network="ethereum"))
    checks = gate(roots)
    assert failed(checks) == {"metadata.identity"}
    assert "input META.json says 'bitcoin'" in checks["metadata.identity"].offending[0]


def test_rank_order_violation_names_the_alert_ranked_too_low():
    ranking = pd.DataFrame({"alert_id": ["x", "y", "z"], "rank": [1.0, 2.0, 3.0],
                            "score": [0.9, 0.2, 0.5], "model_version": "v"})
    check = integrity.rank_order_check(ranking)
    assert not check.passed and check.offending == ["z (rank 3)"]


def test_non_integer_rank_is_reported():
    ranking = pd.DataFrame({"alert_id": ["x", "y"], "rank": [1.0, 2.5], "score": [0.9, 0.2],
                            "model_version": "v"})
    check = integrity.rank_sequence_check(ranking)
    assert not check.passed
    assert "y: rank 2.5" in check.offending and "rank 2" in check.offending


def test_a_missing_github_url_names_the_variable_to_set(roots):
    vf.rewrite(roots[1], _no_github_url)
    check = gate(roots)["metadata.model_github_url"]
    assert not check.passed and "set MODEL_GITHUB_URL" in check.detail
