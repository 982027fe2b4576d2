"""Row counts META.json promises (schema 1.0.0 `counts`), checked against the fetched files.

A count is keyed by the file's stem (`alerts` -> alerts.parquet). The row count of a
Parquet file is read from its footer, so checking costs a few KB per file. The
`address_labels` count describes the network's labels file, which lives outside the
batch and is overwritten in place as labels accrue: a difference there is logged,
not refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.downloader.errors import DownloadError
from services.downloader.transfer import Fetched
from shared import contract

log = logging.getLogger(__name__)

LABELS_STEM = "address_labels"


def parquet_rows(path: Path, key: str) -> int:
    """Rows of a Parquet file from its footer; DownloadError naming key if it is not Parquet."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DownloadError(key, f"cannot read its row count (is it Parquet?): {exc}") from exc


def check_counts(counts: dict[str, int], fetched: list[Fetched], prefix: str) -> None:
    """Raise DownloadError naming the file and both counts at the first count that differs."""
    by_name = {f.file.name: f for f in fetched}
    for stem, expected in sorted(counts.items()):
        name = f"{stem}.parquet"
        if stem == LABELS_STEM:
            _note_labels(by_name.get(contract.LABELS_FILE), expected)
            continue
        got = by_name.get(name)
        if got is None:
            if expected:
                raise DownloadError(prefix + name, f"META.json counts {expected} rows, but the "
                                                   "batch has no such file")
            continue
        actual = parquet_rows(got.path, got.file.key)
        if actual != expected:
            raise DownloadError(got.file.key, f"row count mismatch: META.json counts {expected} "
                                              f"rows, the file has {actual}")
    if counts:
        log.info("batch %s: row counts match META.json (%s)", prefix,
                 ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def _note_labels(labels: Fetched | None, expected: int) -> None:
    if labels is None:
        return
    actual = parquet_rows(labels.path, labels.file.key)
    if actual != expected:
        log.info("%s: %d rows, META.json counted %d when the batch was exported (the labels "
                 "file is cumulative and overwritten in place; not an error)", labels.file.key,
                 actual, expected)
