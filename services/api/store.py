"""The published output folder as the API sees it: which dates exist, and reading one version.

A date exists only when `OUTPUT_DIR/{date}` is a symlink into `OUTPUT_DIR/.versions/`
whose version folder holds every output file. The version folder's name is its
identity: published folders are never edited, so anything derived from one can be
cached under that name for good.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shared import storage

log = logging.getLogger(__name__)

# Listing the dates costs one readlink per date; `latest` and /dates ask often.
DATES_TTL_S = 1.0
VERIFIED_MAX = 4096


class VersionGone(RuntimeError):
    """A version folder was removed while being read (two newer publishes overtook it)."""


class ResultFileError(RuntimeError):
    """A published output file is unreadable or malformed; the message names file and problem."""


class OutputFolder:
    """Read-only view of OUTPUT_DIR: published complete dates and their version folders."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root_str = str(self.root)
        # Link targets already checked: a relative `.versions/<name>` always names the same
        # folder, and a published folder never changes, so the check holds for good.
        self._verified: dict[str, Path] = {}
        self._dates: tuple[float, int, list[str]] | None = None
        self._lock = threading.Lock()

    def version(self, date: str) -> Path | None:
        """The complete version folder a validated date points at, or None."""
        link = os.path.join(self._root_str, date)
        try:
            target = os.readlink(link)
        except OSError:
            return None  # missing, or a plain folder that was never published atomically
        known = self._verified.get(target)
        if known is not None:  # one readlink per request once a link target was checked
            return known
        path = storage.resolve(Path(link))
        if path is None or path.parent != (self.root / storage.VERSIONS).resolve():
            return None
        if not all((path / name).is_file() for name in storage.OUTPUT_FILES):
            return None  # not complete (yet): look again next time
        with self._lock:
            if len(self._verified) >= VERIFIED_MAX:
                self._verified.clear()
            self._verified[target] = path
        return path

    def dates(self) -> list[str]:
        """Complete published dates, newest first (cached for DATES_TTL_S or until the folder changes)."""
        stamp = self._mtime()
        now = time.monotonic()
        cached = self._dates
        if cached and cached[1] == stamp and now - cached[0] < DATES_TTL_S:
            return cached[2]
        dates = [d for d in storage.published_dates(self.root) if self.version(d) is not None]
        with self._lock:
            self._dates = (now, stamp, dates)
        return dates

    def _mtime(self) -> int:
        try:
            return os.stat(self.root).st_mtime_ns
        except OSError:
            return -1

    def readable(self) -> bool:
        """Whether OUTPUT_DIR is a folder this process can list."""
        return self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)


def read_metadata(version: Path) -> tuple[dict, bytes]:
    """metadata.json of a version: parsed, and its exact bytes."""
    raw = _read_bytes(version / storage.METADATA)
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{_name(version, storage.METADATA)} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ResultFileError(f"{_name(version, storage.METADATA)} is not a JSON object")
    return meta, raw


def read_columns(version: Path, file_name: str, columns: list[str],
                 optional: tuple[str, ...] = ()) -> pa.Table:
    """Only the named columns of one output parquet file (optional ones when present)."""
    path = version / file_name
    try:
        schema = pq.read_schema(path)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise ResultFileError(f"{_name(version, file_name)} has no column {missing[0]!r}")
        return pq.read_table(path, columns=[*columns, *(c for c in optional if c in schema.names)])
    except FileNotFoundError as exc:
        raise VersionGone(str(path)) from exc
    except (pa.ArrowException, OSError) as exc:
        raise ResultFileError(f"{_name(version, file_name)} is not a readable parquet file: {exc}") from exc


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise VersionGone(str(path)) from exc


def _name(version: Path, file_name: str) -> str:
    """`{date}/{file}` for messages: names the file without exposing the server's paths."""
    return f"{version.name[:10]}/{file_name}"
