"""Sample SOT batches: a deterministic, realistic synthetic day of the subnet's data.

`generate_batch` builds the five tables of one (network, date, window) with every
column and type of `shared.contract`; `write_sot` lays them out as the SOT bucket
does, `write_input` as the downloader does. The same (network, date, window,
alerts, seed) always gives byte-identical files; the seed and the date both
change the data. This is the demo, test and training data of the project.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared import contract
from shared.manifest import file_entry, write_manifest
from shared.samplegen import alerts, clusters, features, flows, labels, population
from shared.samplegen.columns import stable_key
from shared.samplegen.population import Day
from shared.storage import (
    date_dir, labels_key, parse_date, publish, sha256_file, sot_prefix, staging_dir)

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0.0"
GENERATED_AT_TIME = "00:04:11Z"  # fixed, so reruns are byte-identical
ROW_GROUP_ROWS = 131_072
COMPRESSION = "zstd"
BATCH_TABLES = (("alerts", contract.ALERTS_FILE), ("features", contract.FEATURES_FILE),
                ("clusters", contract.CLUSTERS_FILE), ("money_flows", contract.MONEY_FLOWS_FILE))


@dataclass
class SampleBatch:
    """One sample day: pyarrow Tables conforming exactly to shared.contract schemas."""

    network: str
    processing_date: str
    window_days: int
    alerts: pa.Table
    features: pa.Table
    clusters: pa.Table
    money_flows: pa.Table
    labels: pa.Table

    def counts(self) -> dict[str, int]:
        """Row counts of the four batch files, as META.json lists them."""
        return {name: getattr(self, name).num_rows for name, _ in BATCH_TABLES}


def _check_args(network: str, window_days: int, n_alerts: int, seed: int) -> None:
    name = str(network).replace("-", "").replace("_", "")
    if not name or not name.isascii() or not name.isalnum():
        raise ValueError(f"network {network!r} must be a non-empty ASCII name "
                         "(letters, digits, - or _)")
    if not 1 <= int(window_days) <= 65_535:
        raise ValueError(f"window_days={window_days} must be in 1..65535")
    if int(seed) < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    population.sizes(int(n_alerts))  # raises ValueError naming n_alerts


def _day(network: str, processing_date: str, window_days: int, seed: int) -> Day:
    date_days = (parse_date(processing_date) - dt.date(1970, 1, 1)).days
    key = stable_key("aml-miner-sample", network, seed)
    return Day(network, processing_date, date_days, int(window_days), key)


def generate_batch(network: str, processing_date: str, window_days: int = 7,
                   n_alerts: int = 2000, seed: int = 0,
                   legacy_columns: bool = False) -> SampleBatch:
    """Generate one sample day; raises InvalidDate or ValueError naming a bad argument."""
    started = time.perf_counter()
    _check_args(network, window_days, n_alerts, seed)
    day = _day(network, processing_date, window_days, seed)
    # Seed and date (and size) pick the day's streams; one child stream per table, so a
    # change in one table's recipe leaves the others' draws alone.
    entropy = [int(seed), day.date_days, day.window_days, int(n_alerts), day.key & 0xFFFFFFFF]
    streams = np.random.SeedSequence(entropy).spawn(5)
    rng_pop, rng_feat, rng_alert, rng_flow, rng_cluster = map(np.random.default_rng, streams)
    pop = population.draw(n_alerts, day, rng_pop)
    feats, volume = features.build(pop, rng_feat, day, legacy_columns)
    alert_table, facts = alerts.build(pop, volume, rng_alert, day)
    del volume
    flow_table, src, dst = flows.build(pop, rng_flow, day)
    cluster_table = clusters.build(facts, pop, src, dst, rng_cluster, day)
    batch = SampleBatch(network, processing_date, day.window_days, alert_table, feats,
                        cluster_table, flow_table, labels.build(pop, day))
    log.info("sample %s %s/%dd: %d alerts on %d addresses, %d clusters, %d flows, "
             "%d label rows in %.1fs", network, processing_date, day.window_days,
             alert_table.num_rows, len(pop), cluster_table.num_rows, flow_table.num_rows,
             batch.labels.num_rows, time.perf_counter() - started)
    return batch


def meta_json(network: str, processing_date: str, window_days: int, counts: dict,
              sha256: dict) -> dict:
    """The META.json the producer writes next to a batch (SOT_CONTRACT.md section 1)."""
    return {"schema_version": SCHEMA_VERSION,
            "batch_id": f"{network}-{processing_date}-{int(window_days)}d",
            "network": network, "processing_date": processing_date,
            "window_days": int(window_days),
            "generated_at": f"{processing_date}T{GENERATED_AT_TIME}",
            "counts": dict(counts), "sha256": dict(sha256)}


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write a table deterministically (fixed row groups and codec) and atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression=COMPRESSION)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _write_batch_files(batch: SampleBatch, folder: Path) -> dict:
    """The four batch files and META.json (last, so its presence means the rest is there)."""
    digests = {}
    for name, file in BATCH_TABLES:
        write_parquet(getattr(batch, name), folder / file)
        digests[file] = sha256_file(folder / file)
    meta = meta_json(batch.network, batch.processing_date, batch.window_days, batch.counts(),
                     digests)
    _write_json(meta, folder / contract.META_FILE)
    return meta


def write_sot(batch: SampleBatch, root: Path) -> Path:
    """Write the batch in the SOT bucket's key layout under root; returns the batch folder.

    Objects are replaced one by one (as S3 puts are); the network's label file is
    merged with the one already there, since it is one file for all dates.
    """
    started = time.perf_counter()
    root = Path(root)
    prefix = root / sot_prefix(batch.network, batch.processing_date, batch.window_days)
    labels_path = root / labels_key(batch.network)
    merged = merge_labels(labels_path, batch.labels)  # a bad existing file fails before any write
    prefix.mkdir(parents=True, exist_ok=True)
    _write_batch_files(batch, prefix)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(merged, labels_path)
    log.info("sample: wrote SOT batch %s (%s) in %.1fs", prefix, _sizes(prefix),
             time.perf_counter() - started)
    return prefix


def merge_labels(path: Path, new: pa.Table) -> pa.Table:
    """new label rows plus those of the file at path not replaced by them, sorted."""
    table = new
    if Path(path).exists():
        old = _read_labels(Path(path))
        fresh = pc.is_in(_label_keys(old), value_set=_label_keys(new))
        table = pa.concat_tables([new, old.filter(pc.invert(fresh))])
    order = pc.sort_indices(table, sort_keys=[("address", "ascending"), ("source", "ascending")])
    return table.take(order)


def _read_labels(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise contract.ContractError(path, f"not a readable parquet file ({exc})") from exc
    if not table.schema.equals(contract.LABELS_SCHEMA):
        raise contract.ContractError(path, "existing label file does not have the labels "
                                           "schema; move it away or write to a fresh folder")
    return table


def _label_keys(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table.column("address"), table.column("source"), "\x1f")


def write_input(batch: SampleBatch, input_dir: Path) -> Path:
    """Lay the date out as a download would (input_dir/{date}/), published atomically."""
    started = time.perf_counter()
    target = date_dir(Path(input_dir), batch.processing_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    with staging_dir(target) as tmp:
        meta = _write_batch_files(batch, tmp)
        write_parquet(batch.labels, tmp / contract.LABELS_FILE)
        _write_record(batch, tmp, meta["sha256"])
        publish(tmp, target)
    log.info("sample: published input date %s (%s) in %.1fs", target, _sizes(target),
             time.perf_counter() - started)
    return target


def _write_record(batch: SampleBatch, folder: Path, digests: dict[str, str]) -> None:
    """DOWNLOAD.json as a download leaves it, naming the generator as the source."""
    extra = (contract.META_FILE, contract.LABELS_FILE)
    digests = {**digests, **{name: sha256_file(folder / name) for name in extra}}
    source = {"generator": "aml-miner sample", "network": batch.network,
              "processing_date": batch.processing_date, "window_days": int(batch.window_days)}
    write_manifest(folder, source, [file_entry(folder / name, digest)
                                    for name, digest in digests.items()], [])


def _sizes(folder: Path) -> str:
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    total = sum(p.stat().st_size for p in files)
    return f"{len(files)} files, {total / 1e6:.1f} MB"


def write_history(network: str, dates: list[str], window_days: int, root: Path,
                  input_dir: Path | None = None, n_alerts: int = 2000, seed: int = 0,
                  legacy_columns: bool = False) -> list[Path]:
    """Write several dates (oldest first) with one cumulative labels file, as the SOT keeps it.

    With input_dir, each date is also laid out as a download of that day would be: its
    address_labels.parquet is the cumulative file as it stood when the date was published.
    Returns the SOT batch folders.
    """
    folders = []
    for date in sorted(dates):
        batch = generate_batch(network, date, window_days, n_alerts=n_alerts, seed=seed,
                               legacy_columns=legacy_columns)
        folders.append(write_sot(batch, root))
        if input_dir is not None:
            known = pq.read_table(Path(root) / labels_key(network))
            write_input(dataclasses.replace(batch, labels=known), input_dir)
    return folders
