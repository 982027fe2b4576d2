"""Publish synthetic output dates the way the processor does, for the API's tests and benchmark.

Each date gets the four output files (alerts_scored, alerts_ranked, clusters_scored,
metadata.json) written with pyarrow into a staging folder, its response bodies rendered
there (shared.bodies) and the folder published atomically through shared.storage, so the
API sees exactly the layout it serves in production.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shared import bodies, storage

# Scores that break naive float formatting: tiny, subnormal, 0.1+0.2, the bounds.
TRICKY_SCORES = (0.0, 1.0, 1e-7, 5e-324, 0.1 + 0.2, 1 / 3, 0.30000000000000004, 2.5e-05)


def model_versions(tag: str) -> dict[str, str]:
    """The three model versions of a synthetic run."""
    return {"alert_scorer": f"alert_scorer_v{tag}", "alert_ranker": f"alert_ranker_v{tag}",
            "cluster_scorer": f"cluster_scorer_v{tag}"}


def publish_date(root: Path, date: str, *, alerts: int = 20, clusters: int = 5, seed: int = 0,
                 network: str = "bitcoin", window_days: int = 7, marker: float | None = None,
                 tag: str = "1.0.0", extra_meta: dict | None = None,
                 before_render: Callable[[Path], None] | None = None, render: bool = True) -> Path:
    """Publish one synthetic output date under root; returns its version folder.

    With `marker`, every score of the date equals it (for tests that must tell versions apart);
    before_render(staging folder) may alter the files before the bodies are rendered;
    render=False publishes without bodies, as the processor did before it rendered them.
    """
    rng = np.random.default_rng(seed)
    alert_ids = _ids(rng, alerts)
    alert_scores = _scores(rng, alerts, marker)
    cluster_ids = [f"cluster_same_entity_{i:06d}_{date}" for i in range(clusters)]
    cluster_scores = _scores(rng, clusters, marker)
    versions = model_versions(tag)
    target = Path(root) / date
    with storage.staging_dir(target) as tmp:
        _write_alerts(tmp, date, window_days, alert_ids, alert_scores, versions)
        _write_ranked(tmp, alert_ids, alert_scores, versions)
        _write_clusters(tmp, date, window_days, cluster_ids, cluster_scores, versions)
        meta = metadata(date, network, window_days, alerts, clusters, versions, extra_meta)
        (tmp / storage.METADATA).write_text(json.dumps(meta, indent=2))
        if before_render is not None:
            before_render(tmp)
        if render:
            bodies.render_version(tmp)
    storage.publish(tmp, target)
    return storage.resolve(target)


def metadata(date: str, network: str, window_days: int, alerts: int, clusters: int,
             versions: dict, extra: dict | None = None) -> dict:
    """metadata.json as the processor writes it."""
    return {"processing_date": date, "network": network, "window_days": window_days,
            "alert_count": alerts, "cluster_count": clusters, "model_versions": versions,
            "model_github_url": "https://github.com/example/aml-miner",
            "timestamp": dt.datetime(2025, 1, 2, 0, 15, tzinfo=dt.timezone.utc).isoformat(),
            "input_sha256": {"alerts.parquet": "0" * 64}, "timings_s": {"score": 0.5},
            **(extra or {})}


def _ids(rng: np.random.Generator, n: int) -> list[str]:
    return [str(uuid.UUID(bytes=rng.bytes(16), version=5)) for _ in range(n)]


def _scores(rng: np.random.Generator, n: int, marker: float | None) -> np.ndarray:
    if marker is not None:
        return np.full(n, marker, dtype=np.float64)
    scores = rng.random(n)
    tricky = np.array(TRICKY_SCORES[:n], dtype=np.float64)
    scores[:len(tricky)] = tricky
    return scores


def _write_alerts(folder: Path, date: str, window: int, ids: list, scores: np.ndarray,
                  versions: dict) -> None:
    n = len(ids)
    table = pa.table({
        "alert_id": pa.array(ids, pa.string()),
        "address": pa.array([f"bc1q{i:038d}" for i in range(n)], pa.string()),
        "typology_type": pa.array(["PEEL_CHAIN"] * n, pa.string()),
        "severity": pa.array(["high"] * n, pa.string()),
        "alert_confidence_score": pa.array(np.full(n, 0.5, dtype=np.float32)),
        "window_days": pa.array(np.full(n, window, dtype=np.uint16)),
        "processing_date": pa.array([dt.date.fromisoformat(date)] * n, pa.date32()),
        "score": pa.array(scores, pa.float64()),
        "model_version": pa.array([versions["alert_scorer"]] * n, pa.string()),
    })
    pq.write_table(table, folder / storage.ALERTS_SCORED)


def _write_ranked(folder: Path, ids: list, scores: np.ndarray, versions: dict) -> None:
    order = np.lexsort((np.arange(len(ids)), -scores))  # highest score first, ties by position
    table = pa.table({
        "alert_id": pa.array([ids[i] for i in order], pa.string()),
        "rank": pa.array(np.arange(1, len(ids) + 1, dtype=np.int64)),
        "score": pa.array(scores[order], pa.float64()),
        "model_version": pa.array([versions["alert_ranker"]] * len(ids), pa.string()),
    })
    pq.write_table(table, folder / storage.ALERTS_RANKED)


def _write_clusters(folder: Path, date: str, window: int, ids: list, scores: np.ndarray,
                    versions: dict) -> None:
    n = len(ids)
    table = pa.table({
        "cluster_id": pa.array(ids, pa.string()),
        "cluster_type": pa.array(["same_entity"] * n, pa.string()),
        "total_alerts": pa.array(np.full(n, 2, dtype=np.uint32)),
        "window_days": pa.array(np.full(n, window, dtype=np.uint16)),
        "processing_date": pa.array([dt.date.fromisoformat(date)] * n, pa.date32()),
        "score": pa.array(scores, pa.float64()),
        "model_version": pa.array([versions["cluster_scorer"]] * n, pa.string()),
    })
    pq.write_table(table, folder / storage.CLUSTERS_SCORED)


def publish_incomplete(root: Path, date: str, missing: str = storage.METADATA) -> Path:
    """A date symlinked to a version folder that lacks one file (never a real publish)."""
    version = publish_date(root, date)
    (version / missing).unlink()
    return version


def client_for(settings, **kwargs):
    """A Flask test client of an app built from settings (imports Flask only when called)."""
    from services.api.app import create_app

    return create_app(settings, **kwargs).test_client()
