"""Score held-out dates with one or two model folders and compare them side by side.

Each model folder is run through the real processor (a subprocess) into a
temporary output root, then judged like `validate` judges a published date.
Metrics are pooled over the dates (ROC/PR AUC and Brier on all labelled rows
together; precision@k and NDCG@k averaged per date).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.validator import behaviour, determinism, inputs, integrity, metrics, plots, truth
from services.validator.sources import FolderSource
from services.validator.validation import EXIT_GATE, EXIT_OK, Outcome

log = logging.getLogger(__name__)

LABELS = ("A", "B")
POOLED_KEYS = ("labelled", "positives", "roc_auc", "pr_auc", "brier")


@dataclass
class Pool:
    """Labelled (label, score) pairs and per-date ranking metrics gathered over dates."""

    alert_y: list = field(default_factory=list)
    alert_s: list = field(default_factory=list)
    cluster_y: list = field(default_factory=list)
    cluster_s: list = field(default_factory=list)
    ranking: list = field(default_factory=list)
    entropy: list = field(default_factory=list)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(behaviour.BINS, dtype=int))

    def pairs(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """All labelled (labels, scores) of alerts or clusters, concatenated."""
        ys, ss = getattr(self, f"{kind}_y"), getattr(self, f"{kind}_s")
        return (np.concatenate(ys) if ys else np.array([]), np.concatenate(ss) if ss else np.array([]))


def _block(y: np.ndarray, s: np.ndarray) -> dict:
    return {"labelled": int(len(y)), "positives": int(y.sum()), "roc_auc": metrics.roc_auc(y, s),
            "pr_auc": metrics.average_precision(y, s), "brier": metrics.brier(y, s)}


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def pooled(pool: Pool) -> dict:
    """Metrics over all dates of one model folder."""
    ranking_keys = [k for k in (pool.ranking[0] if pool.ranking else {}) if k != "labelled"]
    return {
        "alerts": _block(*pool.pairs("alert")),
        "clusters": _block(*pool.pairs("cluster")),
        "ranking": {k: _mean([r[k] for r in pool.ranking]) for k in ranking_keys},
        "entropy_mean": _mean(pool.entropy),
    }


def judge_date(result, batch: inputs.Input, pool: Pool) -> dict:
    """Gate, entropy and ground truth of one scored date; adds its labelled rows to the pool."""
    gate = integrity.run_gate(result, batch.alerts, batch.clusters, batch.meta)
    entropy = behaviour.normalised_entropy(result.alerts["score"])
    pool.entropy.append(entropy)
    pool.histogram += np.asarray(behaviour.histogram(result.alerts["score"]))
    one = {"integrity": {"passed": integrity.gate_passed(gate),
                         "failed": [c.name for c in gate if c.gate and not c.passed]},
           "entropy": entropy, "alert_roc_auc": None, "ground_truth": None}
    if batch.labels is None:
        return one
    labelled = truth.from_batch(batch.alerts, batch.clusters, batch.labels)
    for kind, series, frame, key in (("alert", labelled.alerts, result.alerts, "alert_id"),
                                     ("cluster", labelled.clusters, result.clusters, "cluster_id")):
        y, s = metrics.labelled_pairs(series, frame, key)
        getattr(pool, f"{kind}_y").append(y)
        getattr(pool, f"{kind}_s").append(s)
    gt = metrics.ground_truth(labelled.alerts, labelled.clusters, result.alerts, result.ranking,
                              result.clusters)
    pool.ranking.append(gt["ranking"])
    one.update(alert_roc_auc=gt["alerts"]["roc_auc"], ground_truth=gt)
    return one


def training_dates(models_dir: Path) -> set[str]:
    """Dates the models in a folder were trained on, as their JSON sidecars record them."""
    found: set[str] = set()
    for sidecar in Path(models_dir).glob("*.json"):
        try:
            data = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        dates = data.get("training_dates") if isinstance(data, dict) else None
        found.update(str(d) for d in (dates if isinstance(dates, list) else []))
    return found


def run_models(label: str, models_dir: Path, dates: list[str], input_dir: Path, batches: dict,
               workdir: Path, command=None, env=None) -> tuple[dict, Pool]:
    """Process and judge every date with one model folder."""
    out = Path(workdir) / label
    pool, per_date, versions = Pool(), {}, {}
    for date in dates:
        determinism.run_processor(input_dir, out, date, models_dir, command, env)
        result = FolderSource(out).load(date)
        versions.update(result.metadata.get("model_versions") or {})
        per_date[date] = judge_date(result, batches[date], pool)
        log.info("evaluate [%s] %s: gate %s, alert ROC AUC %s", label, date,
                 "pass" if per_date[date]["integrity"]["passed"] else "FAIL",
                 per_date[date]["alert_roc_auc"])
    seen = sorted(training_dates(models_dir).intersection(dates))
    run = {"label": label, "models_dir": str(models_dir), "model_versions": versions,
           "per_date": per_date, "pooled": pooled(pool), "trained_on_evaluated_dates": seen}
    return run, pool


def _flatten(pooled_metrics: dict) -> dict:
    flat = {f"alerts {k}": pooled_metrics["alerts"][k] for k in POOLED_KEYS}
    flat.update({f"ranking {k} (mean)": v for k, v in pooled_metrics["ranking"].items()})
    flat.update({f"clusters {k}": pooled_metrics["clusters"][k] for k in POOLED_KEYS})
    flat["entropy (mean)"] = pooled_metrics["entropy_mean"]
    return flat


def better(metric: str, diff: float) -> str:
    """Which side wins on a metric ('' for counts and ties): Brier and gate failures want less."""
    lower_wins = "brier" in metric or metric == "gate failures"
    if diff == 0 or not any(k in metric for k in ("auc", "brier", "precision", "ndcg", "gate")):
        return ""
    return "B" if (diff < 0) == lower_wins else "A"


def comparison(runs: list[dict]) -> list[dict]:
    """Rows metric | A | B | B - A over the pooled metrics and each date's alert ROC AUC."""
    flats = [_flatten(r["pooled"]) for r in runs]
    for run, flat in zip(runs, flats):
        flat.update({f"{d} alert roc_auc": one["alert_roc_auc"] for d, one in run["per_date"].items()})
        flat["gate failures"] = sum(not one["integrity"]["passed"] for one in run["per_date"].values())
    rows = []
    for metric in flats[0]:
        row = {"metric": metric, **{r["label"]: f[metric] for r, f in zip(runs, flats)}}
        if len(runs) == 2 and all(isinstance(row[k], (int, float)) for k in LABELS):
            row["B - A"] = row["B"] - row["A"]
            row["better"] = better(metric, row["B - A"])
        rows.append(row)
    return rows


def evaluate(input_dir: Path, dates: list[str], models_dirs: list[Path], command=None,
             env=None, labels: Path | None = None) -> Outcome:
    """Evaluate one or two model folders on the given dates; exit 1 when any output fails the gate.

    labels: one labels file to judge every date by (default: each date's own).
    """
    batches = {d: inputs.load(input_dir, d, labels) for d in dates}
    runs, pools = [], {}
    with tempfile.TemporaryDirectory(prefix="aml-evaluate-") as tmp:
        for label, models_dir in zip(LABELS, models_dirs):
            run, pools[label] = run_models(label, Path(models_dir), dates, input_dir, batches,
                                           Path(tmp), command, env)
            runs.append(run)
    failures = sum(not one["integrity"]["passed"] for r in runs for one in r["per_date"].values())
    notes = [f"[{r['label']}] trained on evaluated date(s) {', '.join(r['trained_on_evaluated_dates'])}: "
             "not held out" for r in runs if r["trained_on_evaluated_dates"]]
    code = EXIT_GATE if failures else EXIT_OK
    report = {"kind": "evaluate", "dates": list(dates), "input": str(input_dir),
              "labels": str(labels) if labels else "each date's own address_labels.parquet",
              "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(), "runs": runs,
              "comparison": comparison(runs), "notes": notes,
              "verdict": {"summary": f"{failures} output(s) failed the integrity gate" if failures
                          else "all outputs passed the integrity gate", "exit_code": code}}
    figures = plots.figures({r["label"]: pools[r["label"]].histogram.tolist() for r in runs},
                            {r["label"]: pools[r["label"]].pairs("alert") for r in runs})
    return Outcome(report, figures, code)
