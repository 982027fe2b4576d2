"""The integrity gate: the checks a validator rejects an output for (SOT_CONTRACT.md section 4).

Every check names the ids that break it (sorted, capped at `CAP`) and how many
there are in all, so an operator can go straight to the bad rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.validator.sources import Result

CAP = 20
MODEL_KEYS = ("alert_scorer", "alert_ranker", "cluster_scorer")


@dataclass
class Check:
    """One pass/fail finding; `gate=False` findings are reported but never fail the run."""

    name: str
    passed: bool
    detail: str = ""
    offending: list[str] = field(default_factory=list)
    n_offending: int = 0
    gate: bool = True

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {"name": self.name, "passed": self.passed, "gate": self.gate, "detail": self.detail,
                "n_offending": self.n_offending, "offending": self.offending}


def finding(name: str, bad, detail_fail: str, detail_pass: str = "ok", gate: bool = True) -> Check:
    """A check that fails when `bad` (an iterable of offending items) is non-empty."""
    items = sorted({str(b) for b in bad})
    if not items:
        return Check(name, True, detail_pass, gate=gate)
    return Check(name, False, detail_fail.format(n=len(items)), items[:CAP], len(items), gate)


def gate_passed(checks: list[Check]) -> bool:
    """True when no gating check failed."""
    return all(c.passed for c in checks if c.gate)


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("object").map(lambda v: str(v).strip()) == "")


def id_checks(table: str, key: str, frame: pd.DataFrame, expected: pd.Series) -> list[Check]:
    """Coverage (every expected id present), no unknown ids, no duplicate ids."""
    got = frame[key]
    known = set(expected.astype(str))
    present = set(got.dropna())
    dupes = got[got.duplicated(keep=False) & got.notna()]
    unknown = [g if g is not None else "<null>" for g in got if g is None or g not in known]
    return [
        finding(f"{table}.coverage", known - present, "{n} input id(s) have no score",
                f"all {len(known)} input ids scored"),
        finding(f"{table}.unknown_ids", unknown, "{n} id(s) not in the input"),
        finding(f"{table}.duplicates", dupes, "{n} id(s) appear more than once"),
    ]


def score_check(table: str, key: str, frame: pd.DataFrame) -> Check:
    """Every score is a finite number in [0, 1]."""
    scores = frame["score"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(scores) | (scores < 0.0) | (scores > 1.0)
    labels = [f"{i}={_fmt(s)}" for i, s in zip(frame[key][bad], scores[bad])]
    return finding(f"{table}.score_range", labels, "{n} score(s) missing, not finite or outside [0, 1]",
                   f"{len(scores)} scores finite in [0, 1]")


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else repr(float(value))


def version_check(table: str, key: str, frame: pd.DataFrame) -> Check:
    """Every row carries a non-empty model_version."""
    blank = frame[key][_blank(frame["model_version"])]
    versions = sorted({str(v) for v in frame["model_version"].dropna() if str(v).strip()})
    return finding(f"{table}.model_version", [b if b is not None else "<null>" for b in blank],
                   "{n} row(s) with an empty model_version", f"model_version {', '.join(versions)}")


def rank_sequence_check(ranking: pd.DataFrame) -> Check:
    """Ranks are exactly 1..N, each once."""
    ranks = ranking["rank"].to_numpy(dtype="float64")
    n = len(ranks)
    valid = np.isfinite(ranks) & (ranks == np.round(ranks))
    counts = pd.Series(ranks[valid]).value_counts()
    missing = [f"rank {r}" for r in range(1, n + 1) if r not in counts.index]
    repeated = [f"rank {int(r)} x{c}" for r, c in counts.items() if c > 1]
    invalid = [f"{i}: rank {_fmt(r)}" for i, r in zip(ranking["alert_id"], ranks)
               if not (np.isfinite(r) and r == round(r) and 1 <= r <= n)]
    return finding("ranking.rank_sequence", missing + repeated + invalid,
                   "{n} problem(s) with ranks 1..N (gaps, repeats or values outside 1..N)",
                   f"ranks are 1..{n} without gaps")


def rank_order_check(ranking: pd.DataFrame) -> Check:
    """Rank 1 has the highest score: along increasing rank, scores never go up."""
    ordered = ranking.sort_values("rank", kind="stable")
    scores = ordered["score"].to_numpy(dtype="float64")
    rises = np.flatnonzero(scores[1:] > scores[:-1]) + 1
    ids = ordered["alert_id"].to_numpy()
    return finding("ranking.rank_order", [f"{ids[i]} (rank {_rank(ordered, i)})" for i in rises],
                   "{n} alert(s) have a higher score than the alert ranked just above them",
                   "scores never increase along the ranking")


def _rank(frame: pd.DataFrame, position: int) -> str:
    value = frame["rank"].iloc[position]
    return str(int(value)) if np.isfinite(value) else "nan"


def tie_order_check(ranking: pd.DataFrame) -> Check:
    """Informational: equal scores are ordered by alert_id (our processor's tie rule)."""
    ordered = ranking.sort_values("rank", kind="stable").reset_index(drop=True)
    same = ordered["score"].to_numpy()[1:] == ordered["score"].to_numpy()[:-1]
    ids = ordered["alert_id"].astype(str).to_numpy()
    out_of_order = [ids[i + 1] for i in np.flatnonzero(same) if ids[i + 1] < ids[i]]
    return finding("ranking.tie_order", out_of_order,
                   "{n} tied alert(s) not ordered by alert_id (allowed; our tie rule differs)",
                   "ties ordered by alert_id", gate=False)


def ranking_checks(ranking: pd.DataFrame, expected: pd.Series) -> list[Check]:
    """Ranking coverage, ranks 1..N, order consistent with scores, score range, model_version."""
    return [
        *id_checks("ranking", "alert_id", ranking, expected),
        score_check("ranking", "alert_id", ranking),
        version_check("ranking", "alert_id", ranking),
        rank_sequence_check(ranking),
        rank_order_check(ranking),
        tie_order_check(ranking),
    ]


def table_checks(table: str, key: str, frame: pd.DataFrame, expected: pd.Series) -> list[Check]:
    """Coverage, unknown ids, duplicates, score range and model_version of a scored table."""
    return [*id_checks(table, key, frame, expected), score_check(table, key, frame),
            version_check(table, key, frame)]


def _count_problems(metadata: dict, name: str, n_input: int, n_output: int) -> list[str]:
    value = metadata.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        return [f"{name}={value!r} is not an integer"]
    return [f"{name}={value} but {what} has {n}" for what, n in
            (("the input", n_input), ("the output", n_output)) if value != n]


def metadata_checks(result: Result, n_alerts: int, n_clusters: int, meta_in: dict) -> list[Check]:
    """metadata.json counts, identity (date, network, window) and model versions agree with the data."""
    md = result.metadata
    counts = (_count_problems(md, "alert_count", n_alerts, len(result.alerts))
              + _count_problems(md, "cluster_count", n_clusters, len(result.clusters)))
    identity = [] if str(md.get("processing_date")) == result.processing_date else [
        f"processing_date={md.get('processing_date')!r}, expected {result.processing_date}"]
    for key in ("network", "window_days"):
        if key in meta_in and str(md.get(key)) != str(meta_in[key]):
            identity.append(f"{key}={md.get(key)!r}, input META.json says {meta_in[key]!r}")
    return [
        finding("metadata.counts", counts, "{n} count(s) disagree with the data",
                f"alert_count={md.get('alert_count')}, cluster_count={md.get('cluster_count')}"),
        finding("metadata.identity", identity, "{n} field(s) disagree with the input"),
        finding("metadata.model_versions", _version_problems(result),
                "{n} model version problem(s)"),
        github_url_check(md),
    ]


GITHUB_URL_CHECK = "metadata.model_github_url"


def github_url_check(metadata: dict) -> Check:
    """A non-empty model_github_url: the subnet validator's Tier 1 gate wants it on every
    submission (from MODEL_GITHUB_URL, recorded in metadata.json)."""
    url = str(metadata.get("model_github_url") or "").strip()
    return finding(GITHUB_URL_CHECK, [] if url else ["model_github_url is empty"],
                   "model_github_url is empty: set MODEL_GITHUB_URL to where your models' code "
                   "lives (the subnet's validators reject a submission without it)",
                   f"model_github_url {url}")


def _version_problems(result: Result) -> list[str]:
    versions = result.metadata.get("model_versions")
    if not isinstance(versions, dict):
        return ["model_versions is missing or not an object"]
    problems = [f"model_versions.{k} is empty" for k in MODEL_KEYS if not str(versions.get(k) or "").strip()]
    served = {"alert_scorer": result.alerts, "alert_ranker": result.ranking,
              "cluster_scorer": result.clusters}
    for key, frame in served.items():
        used = {str(v) for v in frame["model_version"].dropna()}
        if versions.get(key) and used and used != {str(versions[key])}:
            problems.append(f"model_versions.{key}={versions[key]!r} but rows carry {sorted(used)}")
    return problems


def run_gate(result: Result, alerts_in: pd.DataFrame, clusters_in: pd.DataFrame,
             meta_in: dict | None = None) -> list[Check]:
    """All integrity checks of one result against the input it was computed from."""
    schema = finding("output.schema", result.problems, "{n} file/column problem(s)",
                     "all files and columns present")
    return [
        schema,
        *table_checks("alerts", "alert_id", result.alerts, alerts_in["alert_id"]),
        *ranking_checks(result.ranking, alerts_in["alert_id"]),
        *table_checks("clusters", "cluster_id", result.clusters, clusters_in["cluster_id"]),
        *metadata_checks(result, len(alerts_in), len(clusters_in), meta_in or {}),
    ]
