"""Small hand-made input dates and outputs for the validator's unit tests, and ways to break them.

The outputs here are written by the test (not by the processor) so each unit
test controls exactly what is wrong; integration tests use the real processor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shared import bodies, storage

DATE = "2025-10-26"
VERSION = "test-scorer-1.0.0"

GITHUB_URL = "https://github.com/example/aml-miner"


def _common(n: int, date: str) -> dict:
    return {"processing_date": pa.array([dt.date.fromisoformat(date)] * n, pa.date32()),
            "window_days": pa.array([7] * n, pa.uint16())}


def make_input(root: Path, date: str = DATE, n_alerts: int = 60, seed: int = 0,
               labels: bool = True) -> Path:
    """An input date: alerts over a few addresses (several alerts per address), clusters, labels."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / date
    folder.mkdir(parents=True)
    n_addr = max(n_alerts // 3, 2)
    addresses = [f"addr{i:03d}" for i in range(n_addr)]
    alert_addr = [addresses[i % n_addr] for i in range(n_alerts)]
    alert_ids = [f"a{date[-2:]}-{i:04d}" for i in range(n_alerts)]
    pq.write_table(pa.table({"alert_id": alert_ids, "address": alert_addr,
                             "typology_type": ["PEEL_CHAIN"] * n_alerts, **_common(n_alerts, date)}),
                   folder / "alerts.parquet")
    pq.write_table(pa.table({"address": addresses, **_common(n_addr, date)}), folder / "features.parquet")
    _write_clusters(folder, alert_ids, alert_addr, date)
    if labels:
        risk = rng.choice(["low", "medium", "high", "critical", None], size=n_addr, p=[.3, .2, .2, .1, .2])
        kept = [(a, r) for a, r in zip(addresses, risk) if r is not None]
        pq.write_table(pa.table({"address": [a for a, _ in kept], "risk_level": [r for _, r in kept],
                                 "network": ["bitcoin"] * len(kept)}), folder / "address_labels.parquet")
    (folder / "META.json").write_text(json.dumps(
        {"network": "bitcoin", "processing_date": date, "window_days": 7}))
    return folder


def _write_clusters(folder: Path, alert_ids: list[str], alert_addr: list[str], date: str) -> None:
    groups = [list(range(i, min(i + 5, len(alert_ids)))) for i in range(0, len(alert_ids), 5)]
    pq.write_table(pa.table({
        "cluster_id": [f"cluster_{g[0]:04d}_{date}" for g in groups],
        "primary_alert_id": [alert_ids[g[0]] for g in groups],
        "related_alert_ids": [[alert_ids[i] for i in g] for g in groups],
        "addresses_involved": [sorted({alert_addr[i] for i in g}) for g in groups],
        **_common(len(groups), date),
    }), folder / "clusters.parquet")


def _label_of(folder: Path) -> dict[str, float]:
    path = folder / "address_labels.parquet"
    if not path.exists():
        return {}
    labels = pq.read_table(path).to_pandas()
    return {a: float(r in ("high", "critical")) for a, r in zip(labels["address"], labels["risk_level"])}


def scores_for(alerts: pd.DataFrame, folder: Path, seed: int = 1) -> np.ndarray:
    """Scores that carry the label signal plus noise (so AUC is between 0.5 and 1)."""
    rng = np.random.default_rng(seed)
    label = alerts["address"].map(_label_of(folder)).fillna(0.5).to_numpy()
    return 1.0 / (1.0 + np.exp(-(2.0 * label - 1.0 + rng.normal(0, 1.0, len(alerts)))))


def build_output(input_folder: Path, date: str = DATE, version: str = VERSION) -> dict:
    """A correct output of an input date, as frames and metadata."""
    alerts = pq.read_table(input_folder / "alerts.parquet").to_pandas()
    clusters = pq.read_table(input_folder / "clusters.parquet").to_pandas()
    alerts["score"] = scores_for(alerts, input_folder)
    alerts["model_version"] = version
    ranked = alerts.sort_values(["score", "alert_id"], ascending=[False, True])
    ranking = pd.DataFrame({"alert_id": ranked["alert_id"].to_numpy(),
                            "rank": np.arange(1, len(ranked) + 1), "score": ranked["score"].to_numpy(),
                            "model_version": version})
    by_alert = alerts.set_index("alert_id")["score"]
    clusters["score"] = [float(by_alert[list(m)].max()) for m in clusters["related_alert_ids"]]
    clusters["model_version"] = version
    metadata = {"processing_date": date, "network": "bitcoin", "window_days": 7,
                "alert_count": len(alerts), "cluster_count": len(clusters),
                "model_versions": {"alert_scorer": version, "alert_ranker": version,
                                   "cluster_scorer": version},
                "model_github_url": GITHUB_URL,
                "timestamp": "2025-10-26T00:10:00+00:00"}
    return {"alerts": alerts, "ranking": ranking, "clusters": clusters, "metadata": metadata}


def publish_output(output_root: Path, parts: dict, date: str = DATE) -> Path:
    """Publish output parts under output_root/date the way the processor does (atomic symlink,
    the API's bodies rendered). Parts too broken to render are published without bodies:
    the folder checks still read them; the API does not serve them."""
    target = Path(output_root) / date
    with storage.staging_dir(target) as tmp:
        for key, name in (("alerts", storage.ALERTS_SCORED), ("ranking", storage.ALERTS_RANKED),
                          ("clusters", storage.CLUSTERS_SCORED)):
            if parts.get(key) is not None:
                parts[key].to_parquet(tmp / name, index=False)
        if parts.get("metadata") is not None:
            (tmp / storage.METADATA).write_text(json.dumps(parts["metadata"]))
        if all((tmp / name).is_file() for name in storage.OUTPUT_FILES):
            with contextlib.suppress(bodies.RenderError, TypeError):
                bodies.render_version(tmp)
    storage.publish(tmp, target)
    return target


def read_output(output_root: Path, date: str = DATE) -> dict:
    """A published output as parts (the inverse of publish_output)."""
    folder = storage.resolve(Path(output_root) / date)
    return {"alerts": pd.read_parquet(folder / storage.ALERTS_SCORED),
            "ranking": pd.read_parquet(folder / storage.ALERTS_RANKED),
            "clusters": pd.read_parquet(folder / storage.CLUSTERS_SCORED),
            "metadata": json.loads((folder / storage.METADATA).read_text())}


def rewrite(output_root: Path, change: Callable[[dict], None], date: str = DATE) -> None:
    """Break a published output: read it, let `change` edit the parts in place, publish again."""
    parts = read_output(output_root, date)
    change(parts)
    publish_output(output_root, parts, date)


def copy_tree(src: Path, dst: Path) -> Path:
    """A copy of a folder tree, symlinks kept as symlinks (so a published root stays published)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


# --- Integration: real generator, real processor, real CLI -------------------------------

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO / "trained_models"


def cli(*args: str, timeout: float = 600) -> "subprocess.CompletedProcess":
    """Run `python -m services.cli ...` from this checkout, capturing its output (with the
    MODEL_GITHUB_URL an operator sets, which the validator's gate requires)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MODEL_GITHUB_URL": GITHUB_URL}
    return subprocess.run([sys.executable, "-m", "services.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


def generate_inputs(input_root: Path, dates, n_alerts: int, seed: int = 0) -> None:
    """Sample SOT dates written as the downloader writes them (one seed: addresses recur across dates)."""
    from shared.sample import generate_batch, write_input

    for date in dates:
        write_input(generate_batch("bitcoin", date, window_days=7, n_alerts=n_alerts, seed=seed),
                    input_root)


def process(input_root: Path, output_root: Path, date: str, models_dir: Path = SHIPPED_MODELS) -> None:
    """Score one date with the real processor (a subprocess), or fail showing its stderr."""
    done = cli("process", "--input-dir", input_root, "--output-dir", output_root,
               "--processing-date", date, "--models-dir", models_dir)
    assert done.returncode == 0, done.stderr[-3000:]


def report_of(report_dir: Path, stem: str) -> dict:
    """A written JSON report."""
    return json.loads((Path(report_dir) / f"{stem}.json").read_text())


def checks_by_name(checks: list[dict]) -> dict[str, dict]:
    """Report checks keyed by name."""
    return {c["name"]: c for c in checks}
