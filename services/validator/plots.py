"""Report figures as base64 PNGs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import base64
import io

import numpy as np

from services.validator import metrics

SIZE = (5.0, 3.6)
DPI = 90


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=SIZE, dpi=DPI)


def _encode(plt, fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    # No software stamp: the same figure gives the same bytes whatever matplotlib wrote it.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram(histograms: dict[str, list[int]]) -> str:
    """Score histograms (10 bins over [0, 1]) side by side, one bar series per label."""
    plt, fig, ax = _figure()
    width = 0.1 / max(len(histograms), 1)
    for i, (label, counts) in enumerate(histograms.items()):
        edges = np.linspace(0.0, 1.0, len(counts) + 1)[:-1]
        ax.bar(edges + i * width, counts, width=width, align="edge", label=label)
    ax.set(xlabel="score", ylabel="alerts", title="Alert score distribution", xlim=(0, 1))
    ax.legend(fontsize="small")
    return _encode(plt, fig)


def roc(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """ROC curves, one per label, from (labels, scores) pairs."""
    plt, fig, ax = _figure()
    for label, (y, s) in curves.items():
        fpr, tpr = metrics.roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{label} (AUC {metrics.roc_auc(y, s) or float('nan'):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (alerts)")
    ax.legend(fontsize="small", loc="lower right")
    return _encode(plt, fig)


def pr(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """Precision-recall curves, one per label, with the positive rate as baseline."""
    plt, fig, ax = _figure()
    for label, (y, s) in curves.items():
        recall, precision = metrics.pr_curve(y, s)
        ap = metrics.average_precision(y, s)
        ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="post",
                label=f"{label} (AP {ap or float('nan'):.3f})")
        ax.axhline(float(np.mean(y)), linestyle=":", color="grey")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (alerts)", ylim=(0, 1.02))
    ax.legend(fontsize="small", loc="lower left")
    return _encode(plt, fig)


def figures(histograms: dict[str, list[int]], curves: dict[str, tuple]) -> dict[str, str]:
    """All report figures; ROC and PR only where some labelled pair has both classes."""
    out = {"score histogram": histogram(histograms)}
    usable = {k: v for k, v in curves.items() if metrics.roc_auc(*v) is not None}
    if usable:
        out["ROC"] = roc(usable)
        out["precision-recall"] = pr(usable)
    return out
