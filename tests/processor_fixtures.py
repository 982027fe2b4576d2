"""Small hand-made SOT tables for the processor's unit tests (contract schemas, a few rows)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from shared import contract

DATE = "2025-10-26"
DAY = dt.date(2025, 10, 26)
MS = 1_761_436_800_000  # 2025-10-26T00:00:00Z


def _common(n: int) -> dict:
    return {"window_days": pa.array([7] * n, pa.uint16()),
            "processing_date": pa.array([DAY] * n, pa.date32())}


def alerts_table() -> pa.Table:
    """Four alerts on three addresses (address a has two)."""
    n = 4
    data = {
        "alert_id": ["al1", "al2", "al3", "al4"],
        "address": ["a", "a", "b", "c"],
        "typology_type": ["PEEL_CHAIN", "structuring", "MIXING_BEHAVIOR", "NOT_A_TYPOLOGY"],
        "pattern_id": ["p1", "", "p2", ""],
        "pattern_type": ["", "", "", ""],
        "severity": ["high", "low", "critical", None],
        "suspected_address_type": ["mixer", "unknown", "never-seen-type", ""],
        "suspected_address_subtype": [""] * n,
        "alert_confidence_score": pa.array([0.8, 0.5, 0.95, 0.61], pa.float32()),
        "description": ["d"] * n,
        "volume_usd": pa.array([100, 50, 1000, 5], contract.DECIMAL),
        "evidence_json": ["{}"] * n,
        "risk_indicators": [["long_chain"], [], ["x", "y"], None],
        **_common(n),
    }
    return pa.table(data).cast(contract.ALERTS_SCHEMA)


def features_table(addresses=("a", "b", "z")) -> pa.Table:
    """Address features for some addresses (c has none by default)."""
    n = len(addresses)
    cols = {}
    for field in contract.FEATURES_SCHEMA:
        if field.name == "address":
            cols["address"] = pa.array(list(addresses))
        elif field.name in ("window_days", "processing_date"):
            continue
        elif pa.types.is_list(field.type):
            cols[field.name] = pa.array([[1, 2]] * n, field.type)
        elif pa.types.is_string(field.type):
            cols[field.name] = pa.array(["BTC"] * n)
        elif pa.types.is_boolean(field.type):
            cols[field.name] = pa.array([i % 2 == 0 for i in range(n)])
        elif field.name.endswith("_timestamp"):
            cols[field.name] = pa.array([MS - (i + 1) * 86_400_000 for i in range(n)], field.type)
        else:
            cols[field.name] = pa.array([(i % 200) + 1 for i in range(n)], field.type)
    cols.update(_common(n))
    return pa.table(cols).cast(contract.FEATURES_SCHEMA)


def clusters_table() -> pa.Table:
    """Three clusters: one with found members, one whose members are all missing, one empty."""
    data = {
        "cluster_id": ["k1", "k2", "k3"],
        "cluster_type": ["same_entity", "same_pattern", "weird"],
        "primary_address": ["a", "ghost", ""],
        "pattern_id": ["", "", ""],
        "primary_alert_id": ["al1", "missing1", ""],
        "related_alert_ids": [["al1", "al2", "al3"], ["missing1", "missing2"], []],
        "addresses_involved": [["a", "b"], ["ghost"], []],
        "total_alerts": pa.array([3, 2, 0], pa.uint32()),
        "total_volume_usd": pa.array([1150, 7, 0], contract.DECIMAL),
        "severity_max": ["critical", "low", "medium"],
        "confidence_avg": pa.array([0.75, 0.2, 0.0], pa.float32()),
        "earliest_alert_timestamp": pa.array([MS - 7_200_000, MS - 3_600_000, MS], pa.uint64()),
        "latest_alert_timestamp": pa.array([MS - 3_600_000, MS - 3_600_000, MS], pa.uint64()),
        **_common(3),
    }
    return pa.table(data).cast(contract.CLUSTERS_SCHEMA)


def money_flows_table() -> pa.Table:
    """Flows a->b both ways, a->z, and one flow between strangers."""
    rows = [("a", "b", 2, 10.0, True), ("b", "a", 1, 4.0, True), ("a", "z", 3, 6.0, False),
            ("q", "r", 9, 99.0, False)]
    n = len(rows)
    return pa.table({
        "from_address": [r[0] for r in rows], "to_address": [r[1] for r in rows],
        "tx_count": pa.array([r[2] for r in rows], pa.uint64()),
        "amount_usd_sum": pa.array([r[3] for r in rows], pa.float64()),
        "is_bidirectional": [r[4] for r in rows],
        "reciprocity_ratio": pa.array([0.5, 0.5, 0.0, 0.0], pa.float32()),
        "window_days": pa.array([7] * n, pa.uint16()),
        "processing_date": [DATE] * n,
    })


def _random_features(addresses: list[str], rng, risky) -> pa.Table:
    """Feature rows where risky addresses lean to high structuring/velocity scores."""
    n = len(addresses)
    base = features_table(tuple(addresses))
    cols = {name: base.column(name) for name in base.column_names}
    for name in ("structuring_score", "velocity_score", "burst_factor", "pagerank"):
        values = rng.random(n) + 0.6 * risky + rng.normal(0, 0.3, n)
        cols[name] = pa.array(values.astype("float32"))
    cols["total_volume_usd"] = pa.array((rng.lognormal(8, 2, n)).round(2)).cast(contract.DECIMAL)
    return pa.table(cols).cast(contract.FEATURES_SCHEMA)


def write_synthetic_date(root, date: str, n_alerts: int = 400, seed: int = 0,
                         positive_share: float = 0.3, labelled_share: float = 0.6,
                         informative: bool = True) -> None:
    """A small learnable batch in root/{date}/ (alerts, features, clusters, flows, labels).

    informative=False: the features follow a shuffled copy of who is risky, so the labels
    teach nothing about them (a label-shuffled history).
    """
    import datetime as _dt
    from pathlib import Path

    import numpy as np
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    day = _dt.date.fromisoformat(date)
    n_addr = max(n_alerts // 2, 2)
    addresses = [f"{date}-addr{i}" for i in range(n_addr)]
    risky = (rng.random(n_addr) < positive_share).astype(float)
    shown = risky if informative else rng.permutation(risky)
    owner = rng.integers(0, n_addr, n_alerts)
    alert_ids = [f"{date}-alert{i}" for i in range(n_alerts)]
    confidence = np.clip(rng.random(n_alerts) * 0.6 + 0.3 * shown[owner], 0, 1)
    alerts = pa.table({
        "alert_id": alert_ids, "address": [addresses[i] for i in owner],
        "typology_type": [contract.TYPOLOGIES[i] for i in rng.integers(0, 16, n_alerts)],
        "severity": [contract.SEVERITIES[i] for i in rng.integers(0, 4, n_alerts)],
        "alert_confidence_score": pa.array(confidence.astype("float32")),
        "volume_usd": pa.array(rng.lognormal(6, 2, n_alerts).round(2)).cast(contract.DECIMAL),
        "window_days": pa.array([7] * n_alerts, pa.uint16()),
        "processing_date": pa.array([day] * n_alerts, pa.date32()),
    })
    n_clusters = max(n_alerts // 10, 1)
    members = [[alert_ids[j] for j in rng.choice(n_alerts, 3, replace=False)]
               for _ in range(n_clusters)]
    clusters = pa.table({
        "cluster_id": [f"{date}-cluster{i}" for i in range(n_clusters)],
        "cluster_type": ["same_entity"] * n_clusters,
        "primary_alert_id": [m[0] for m in members], "related_alert_ids": members,
        "total_alerts": pa.array([3] * n_clusters, pa.uint32()),
        "window_days": pa.array([7] * n_clusters, pa.uint16()),
        "processing_date": pa.array([day] * n_clusters, pa.date32()),
    })
    labelled = np.flatnonzero(rng.random(n_addr) < labelled_share)
    labels = pa.table({
        "address": [addresses[i] for i in labelled],
        "risk_level": [("critical" if risky[i] else "low") for i in labelled],
    })
    folder = Path(root) / date
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(alerts, folder / contract.ALERTS_FILE)
    pq.write_table(_random_features(addresses, rng, shown), folder / contract.FEATURES_FILE)
    pq.write_table(clusters, folder / contract.CLUSTERS_FILE)
    pq.write_table(labels, folder / contract.LABELS_FILE)


SYNTHETIC_DATES = ("2025-10-01", "2025-10-02", "2025-10-03")


def write_synthetic_history(root, dates, n_alerts: int = 400, uninformative=(), **kwargs) -> None:
    """Synthetic dates with one cumulative labels file, as the SOT keeps it: each date's
    address_labels.parquet holds the labels of that date and every earlier one.

    uninformative: the dates whose features teach nothing (see write_synthetic_date).
    """
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    known = []
    for i, date in enumerate(sorted(dates)):
        write_synthetic_date(root, date, n_alerts, seed=i, informative=date not in uninformative,
                             **kwargs)
        path = Path(root) / date / contract.LABELS_FILE
        known.append(pq.read_table(path))
        pq.write_table(pa.concat_tables(known), path)


def quick_specs(rounds: int = 15):
    """The real model specs with few boosting rounds (fast tests)."""
    from services.processor.train import SPECS, ModelSpec

    return tuple(ModelSpec(s.name, s.rows, s.params, rounds) for s in SPECS)


def quick_learning_specs(rounds: int = 15, most: int = 40, patience: int = 5):
    """The learner's model specs with few rounds: the binary models stop early (at most
    `most` rounds), the ranker trains `rounds`."""
    import dataclasses

    from services.processor.train import LEARNING_SPECS

    return tuple(dataclasses.replace(s, rounds=most, early_stopping=patience)
                 if s.early_stopping else dataclasses.replace(s, rounds=rounds)
                 for s in LEARNING_SPECS)


def train_tiny(root, n_alerts: int = 600, **kwargs):
    """Synthetic dates under root/input and quickly trained models under root/models."""
    from pathlib import Path

    from services.processor.train import train_models

    root = Path(root)
    for i, date in enumerate(SYNTHETIC_DATES):
        write_synthetic_date(root / "input", date, n_alerts, seed=i, **kwargs)
    return train_models(root / "input", list(SYNTHETIC_DATES), root / "models",
                        specs=quick_specs())


def generated_input(input_dir, date: str = DATE, n_alerts: int = 3000, seed: int = 11):
    """A generated sample date laid out as a download would (input_dir/{date}/)."""
    from shared.sample import generate_batch, write_input

    write_input(generate_batch("bitcoin", date, window_days=7, n_alerts=n_alerts, seed=seed),
                input_dir)
    return input_dir
