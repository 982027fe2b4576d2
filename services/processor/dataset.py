"""Training data: features and labels of several input dates, and the train/validation split."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from services.processor.features import alert_features, cluster_features
from services.processor.inputs import load_inputs
from shared import contract
from shared.labels import alert_labels, cluster_labels
from shared.storage import date_dir

log = logging.getLogger(__name__)


class TrainingError(Exception):
    """Training cannot go on (too few dates, one class, too few labelled rows); says why."""


@dataclass
class Part:
    """Labelled rows of one model's training or validation data."""

    frame: pd.DataFrame      # features, labelled rows only
    label: np.ndarray        # 0/1
    dates: np.ndarray        # the processing date of each row (query group of the ranker)

    @property
    def positives(self) -> int:
        """Number of positive rows."""
        return int(self.label.sum())

    def sample(self, max_rows: int, seed: int) -> "Part":
        """At most max_rows rows drawn uniformly at random (seeded), in their order: class
        balance and each date's share stay as they were, so probabilities stay calibrated."""
        if len(self.label) <= max_rows:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.label), max_rows,
                                                          replace=False))
        return Part(self.frame.iloc[keep].reset_index(drop=True), self.label[keep],
                    self.dates[keep])

    def queries(self, max_rows: int, seed: int) -> tuple[np.ndarray, list[int]]:
        """Row order and query sizes for a ranking objective: one query per date, in date
        order; a date with more than max_rows rows is split into balanced queries of rows
        drawn at random (LightGBM refuses a query of more than 10,000 rows)."""
        _, first, counts = np.unique(self.dates, return_index=True, return_counts=True)
        rng = np.random.default_rng(seed)
        order, sizes = [], []
        for start, count in sorted(zip(first.tolist(), counts.tolist())):
            rows = np.arange(start, start + count)
            parts = -(-count // max_rows)
            for chunk in np.array_split(rng.permutation(rows) if parts > 1 else rows, parts):
                order.append(chunk)
                sizes.append(len(chunk))
        return np.concatenate(order), sizes


@dataclass
class DateData:
    """Features (float32) and 0/1 labels of one date's labelled alerts and clusters.

    Unlabelled rows are dropped as the date is read: they never train or validate, and
    keeping them would hold every alert of every date in memory.
    """

    date: str
    alerts: pd.DataFrame
    alert_y: np.ndarray
    clusters: pd.DataFrame
    cluster_y: np.ndarray


def read_labels(path: Path) -> pd.DataFrame:
    """An address labels file, validated (ContractError names the file and problem)."""
    path = Path(path)
    return contract.read_table(path.parent, dataclasses.replace(contract.LABELS, file=path.name))


def _labels(folder: Path, labels: pd.DataFrame | None) -> pd.DataFrame | None:
    if labels is not None:
        return labels
    if not (folder / contract.LABELS_FILE).exists():
        log.warning("%s: no %s, the date adds no labelled rows", folder, contract.LABELS_FILE)
        return None
    return contract.read_table(folder, contract.LABELS)


def _labelled_only(frame: pd.DataFrame, y: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    keep = ~np.isnan(y)
    return frame[keep].astype(np.float32).reset_index(drop=True), y[keep]


@dataclass
class FullDate:
    """Every alert and cluster row of one date (unlabelled ones too), with the clusters'
    labels and the batch's links: what scoring a cluster by its member alerts needs."""

    alerts: pd.DataFrame
    clusters: pd.DataFrame
    cluster_y: np.ndarray
    links: object  # services.processor.links.Links


def _read_date(input_dir: Path, date: str, labels: pd.DataFrame | None):
    """Features of every row, the alerts' and clusters' labels (NaN: unlabelled), the links."""
    folder = date_dir(input_dir, date)
    inputs = load_inputs(folder)
    alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                            inputs.links)
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    alert_ids = inputs.alerts.column("alert_id").to_numpy()
    alert_y = alert_labels(inputs.alerts.column("address").to_numpy(), _labels(folder, labels))
    members = inputs.clusters.select([c for c in ("related_alert_ids", "primary_alert_id")
                                      if c in inputs.clusters.column_names]).to_pandas()
    cluster_y = cluster_labels(members, alert_ids, alert_y)
    return alerts, alert_y, clusters, cluster_y, inputs.links


def load_date(input_dir: Path, date: str, labels: pd.DataFrame | None = None) -> DateData:
    """Build the features and labels of one input date.

    labels: the address labels to judge it by (default: the date's own labels file).
    """
    started = time.perf_counter()
    alerts, alert_y, clusters, cluster_y, _ = _read_date(input_dir, date, labels)
    log.info("training date %s: %d alerts (%d labelled), %d clusters (%d labelled) in %.1fs",
             date, len(alerts), int((~np.isnan(alert_y)).sum()), len(clusters),
             int((~np.isnan(cluster_y)).sum()), time.perf_counter() - started)
    return DateData(date, *_labelled_only(alerts, alert_y), *_labelled_only(clusters, cluster_y))


def load_full(input_dir: Path, date: str, labels: pd.DataFrame | None = None) -> FullDate:
    """Every row of one input date (see FullDate)."""
    alerts, _, clusters, cluster_y, links = _read_date(input_dir, date, labels)
    return FullDate(alerts, clusters, cluster_y, links)


def _labelled(frames: list[pd.DataFrame], labels: list[np.ndarray], dates: list[str]) -> Part:
    frame = pd.concat(frames, ignore_index=True)
    label = np.concatenate(labels).astype(np.int32)
    date = np.concatenate([np.full(len(y), d) for d, y in zip(dates, labels)])
    return Part(frame.astype(np.float32), label, date)


def alert_part(data: list[DateData]) -> Part:
    """Labelled alert rows of some dates, in date order."""
    return _labelled([d.alerts for d in data], [d.alert_y for d in data], [d.date for d in data])


def cluster_part(data: list[DateData]) -> Part:
    """Labelled cluster rows of some dates, in date order."""
    return _labelled([d.clusters for d in data], [d.cluster_y for d in data],
                     [d.date for d in data])


def split_dates(dates: list[str]) -> tuple[list[str], list[str]]:
    """Train on all dates but the last, validate on the last (needs two dates or more)."""
    ordered = sorted(dates)
    if len(ordered) < 2:
        raise TrainingError(f"training needs at least two dates (the last one is held out for "
                            f"validation); got {ordered}")
    return ordered[:-1], ordered[-1:]
