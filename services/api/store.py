"""The published output folder as the API sees it: which dates exist, and reading their files.

A date exists only when `OUTPUT_DIR/{date}` is a symlink into `OUTPUT_DIR/.versions/`
whose version folder holds every output file and every rendered body (shared/bodies.py).
The version folder's name is its identity: published folders are never edited, so ETags
derive from that name and a check of a folder holds for good.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from shared import bodies, storage

# Listing the dates costs one readlink per date; `latest` and /dates ask often.
DATES_TTL_S = 1.0
VERIFIED_MAX = 4096
REQUIRED = frozenset((*storage.OUTPUT_FILES, *bodies.FILES))


class VersionGone(RuntimeError):
    """A version folder was removed while being read (two newer publishes overtook it)."""


class ResultFileError(RuntimeError):
    """A published file is malformed; the message names `{date}/{file}` and the problem."""


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
        if not _complete(path):
            return None  # not complete (yet, or not rendered yet): look again next time
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


def _complete(version: Path) -> bool:
    """Whether a version folder holds every REQUIRED file: one directory read, not a stat
    per file (a new date's first request pays this; 14 stats took 110-180 us)."""
    try:
        with os.scandir(version) as entries:
            return REQUIRED <= {entry.name for entry in entries if entry.is_file()}
    except OSError:
        return False


def readable(folder: Path) -> bool:
    """Whether folder is a folder this process can list."""
    folder = Path(folder)
    return folder.is_dir() and os.access(folder, os.R_OK | os.X_OK)


def open_file(path: Path):
    """A published file opened for reading; VersionGone when its folder was removed."""
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise VersionGone(str(path)) from exc


def read_page(version: Path, kind: bodies.ListKind, offset: int, limit: int | None) -> bytes:
    """The list response restricted to rows [offset, offset+limit): head, one range, tail."""
    index_path = version / kind.index
    with open_file(index_path) as index, open_file(version / kind.body) as body:
        size = os.fstat(body.fileno()).st_size
        try:
            head_len, tail_start, rows = bodies.read_index(index_path)
        except ValueError as exc:
            raise ResultFileError(f"{_name(version, kind.index)}: {exc}") from exc
        start = min(offset, rows)
        stop = rows if limit is None else min(rows, start + limit)
        first, last = _bound(index, start), _bound(index, stop)
        if not 0 < head_len <= tail_start <= size or not head_len - 1 <= first <= last <= tail_start:
            raise ResultFileError(f"{_name(version, kind.index)} does not match "
                                  f"{_name(version, kind.body)}")
        # Row `start` begins with its separator (`[` or `,`), which the head already ends with.
        selected = os.pread(body.fileno(), last - first - 1, first + 1) if stop > start else b""
        return b"".join((os.pread(body.fileno(), head_len, 0), selected,
                         os.pread(body.fileno(), size - tail_start, tail_start)))


def _bound(index, row: int) -> int:
    return int.from_bytes(os.pread(index.fileno(), 8, 8 * (2 + row)), "little", signed=True)


def _name(version: Path, file_name: str) -> str:
    """`{date}/{file}` for messages: names the file without exposing the server's paths."""
    return f"{version.name[:10]}/{file_name}"
