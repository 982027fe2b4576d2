"""Validation metrics of the trained models and a report a person can read (JSON, MD, PNG)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Result:
    """One model's validation outcome."""

    name: str
    version: str
    metrics: dict
    label: np.ndarray
    scores: np.ndarray


def _ndcg(label: np.ndarray, scores: np.ndarray, dates: np.ndarray, k: int | None) -> float:
    """Mean NDCG over the query groups (dates)."""
    from sklearn.metrics import ndcg_score

    values = [ndcg_score(label[dates == d][None, :], scores[dates == d][None, :], k=k)
              for d in np.unique(dates) if (dates == d).sum() > 1]
    return float(np.mean(values)) if values else float("nan")


def metrics(label: np.ndarray, scores: np.ndarray, dates: np.ndarray) -> dict:
    """AUC, PR-AUC and NDCG of scores against 0/1 labels (None where one class only)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = int(label.sum())
    out = {"rows": int(len(label)), "positives": positives,
           "auc": None, "pr_auc": None, "ndcg": None, "ndcg_at_100": None}
    if positives == 0 or positives == len(label):
        log.warning("validation rows hold one class only (%d of %d positive): no metrics",
                    positives, len(label))
        return out
    out.update(
        auc=round(float(roc_auc_score(label, scores)), 6),
        pr_auc=round(float(average_precision_score(label, scores)), 6),
        ndcg=round(_ndcg(label, scores, dates, None), 6),
        ndcg_at_100=round(_ndcg(label, scores, dates, 100), 6),
    )
    return out


def _curves(path: Path, results: list[Result], kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for r in results:
        if r.metrics.get("auc") is None:
            continue
        if kind == "roc":
            x, y, _ = roc_curve(r.label, r.scores)
            ax.plot(x, y, label=f"{r.name} (AUC {r.metrics['auc']:.3f})")
        else:
            y, x, _ = precision_recall_curve(r.label, r.scores)
            ax.plot(x, y, label=f"{r.name} (PR-AUC {r.metrics['pr_auc']:.3f})")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false positive rate" if kind == "roc" else "recall")
    ax.set_ylabel("true positive rate" if kind == "roc" else "precision")
    ax.set_title(f"{'ROC' if kind == 'roc' else 'Precision-recall'} on the held-out date")
    ax.legend(loc="lower right" if kind == "roc" else "upper right")
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _markdown(results: list[Result]) -> str:
    lines = ["# Validation on the held-out date", "",
             "| model | rows | positives | AUC | PR-AUC | NDCG | NDCG@100 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        m = r.metrics
        lines.append(f"| {r.name}_v{r.version} | {m['rows']} | {m['positives']} | {m['auc']} | "
                     f"{m['pr_auc']} | {m['ndcg']} | {m['ndcg_at_100']} |")
    lines += ["", "Curves: `roc.png`, `pr.png`."]
    return "\n".join(lines) + "\n"


def write(report_dir: Path, results: list[Result]) -> None:
    """Write metrics.json, report.md, roc.png and pr.png into report_dir."""
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = {f"{r.name}_v{r.version}": r.metrics for r in results}
    (report_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (report_dir / "report.md").write_text(_markdown(results))
    _curves(report_dir / "roc.png", results, "roc")
    _curves(report_dir / "pr.png", results, "pr")
    log.info("wrote the training report to %s", report_dir)
