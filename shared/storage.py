"""Where things live on the shared volume, and how a date folder is published atomically.

A date (input or output) is written into a fresh folder under `.versions/` and
published by swapping the date's symlink to it with one rename(2), so readers
see the old complete folder or the new complete folder, never a mix. Published
folders are never edited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from shared import publish_lock

log = logging.getLogger(__name__)

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TMP_PREFIX = ".tmp-"

ALERTS_SCORED = "alerts_scored.parquet"
ALERTS_RANKED = "alerts_ranked.parquet"
CLUSTERS_SCORED = "clusters_scored.parquet"
METADATA = "metadata.json"
OUTPUT_FILES = (ALERTS_SCORED, ALERTS_RANKED, CLUSTERS_SCORED, METADATA)


class InvalidDate(ValueError):
    """A processing date is not a real YYYY-MM-DD calendar date."""


def parse_date(value: str) -> dt.date:
    """Parse a YYYY-MM-DD processing date strictly, or raise InvalidDate naming it."""
    if not isinstance(value, str) or not DATE_RE.match(value):
        raise InvalidDate(f"processing date {value!r} is not in YYYY-MM-DD form")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidDate(f"processing date {value!r} is not a calendar date") from exc


def date_range(first: str, last: str) -> list[str]:
    """Every date from first to last, both included, oldest first."""
    start, end = parse_date(first), parse_date(last)
    if end < start:
        raise InvalidDate(f"the range ends ({last}) before it starts ({first})")
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def date_dir(root: Path, processing_date: str) -> Path:
    """The folder of one date under an input or output root (the date is validated first)."""
    parse_date(processing_date)
    return Path(root) / processing_date


def sot_prefix(network: str, processing_date: str, window_days: int) -> str:
    """The SOT key prefix of one batch: snapshots/{network}/{date}/{window}/."""
    parse_date(processing_date)
    return f"snapshots/{network}/{processing_date}/{int(window_days)}/"


def labels_key(network: str) -> str:
    """The SOT key of a network's address labels file."""
    return f"address-labels/{network}_address_labels.parquet"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def published_dates(root: Path) -> list[str]:
    """Dates with a published folder under root, newest first (temporary folders ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    dates = [p.name for p in root.iterdir() if p.is_dir() and DATE_RE.match(p.name)]
    return sorted(dates, reverse=True)


VERSIONS = ".versions"


def _new_version(target: Path) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return target.parent / VERSIONS / f"{target.name}-{stamp}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A fresh folder to write target's new content into; removed if the block raises."""
    tmp = _new_version(Path(target))
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (cheap when nothing of it is still dirty)."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_tree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_file():
            fsync_file(child)
    fsync_dir(path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(version: Path, target: Path) -> None:
    """Point target at a fully written version folder in one atomic rename.

    target is a relative symlink into .versions/; rename(2) swaps it, so a reader
    resolves either the old complete folder or the new one, never a mix and never
    nothing. The version replaced is kept (a reader may still be inside it); older
    published ones of the same date are removed, never a folder that was not published
    (another run's staging: that is clean_stale's, by age).
    """
    version, target = Path(version), Path(target)
    _fsync_tree(version)
    previous = resolve(target)
    if target.exists() and not target.is_symlink():
        shutil.rmtree(target)  # a plain folder from an older layout: no atomic swap possible
    _marker(version).touch()
    link = target.parent / f"{TMP_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(VERSIONS) / version.name, link)
    os.replace(link, target)
    fsync_dir(target.parent)
    _prune_versions(target, keep={version.name, previous.name if previous else ""})


def resolve(target: Path) -> Path | None:
    """The version folder a published date points at, or None when it is not published."""
    target = Path(target)
    if not target.exists():
        return None
    return target.resolve()


PUBLISHED = ".published"


def _marker(version: Path) -> Path:
    """The empty file (in root/.published/) that says a version folder was published once."""
    folder = version.parent.parent / PUBLISHED
    folder.mkdir(exist_ok=True)
    return folder / version.name


def _remove_version(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _marker(path).unlink(missing_ok=True)


def _prune_versions(target: Path, keep: set[str]) -> None:
    """Remove the date's once-published versions other than keep (staging is not marked)."""
    versions = target.parent / VERSIONS
    for marker in (target.parent / PUBLISHED).glob(f"{target.name}-*"):
        if marker.name not in keep:
            _remove_version(versions / marker.name)


def _version_date(name: str) -> str:
    return name[:10]


def clean_stale(root: Path, older_than_s: float = 6 * 3600, lock_stale_s: float = 120.0) -> int:
    """Remove version folders no date points at (crashed writers), once older than a bound.

    The age bound keeps a concurrent writer's fresh staging folder alive, and a date whose
    publish lock is held is not touched at all.
    """
    root = Path(root)
    versions = root / VERSIONS
    if not versions.is_dir():
        return 0
    live = {resolve(root / d).name for d in published_dates(root)}
    cutoff = dt.datetime.now().timestamp() - older_than_s
    stale = [p for p in versions.iterdir()
             if p.is_dir() and p.name not in live and p.stat().st_mtime < cutoff
             and not publish_lock.held(root, _version_date(p.name), lock_stale_s)]
    for path in stale:
        _remove_version(path)
    markers = root / PUBLISHED
    for marker in markers.iterdir() if markers.is_dir() else ():
        if not (versions / marker.name).exists():  # its folder went another way
            marker.unlink(missing_ok=True)
    if stale:
        log.info("%s: removed %d stale version folder(s) (unpublished or superseded, older "
                 "than %.0f s)", root, len(stale), older_than_s)
    return len(stale)


def _remove_date(link: Path) -> int:
    if link.is_symlink():
        link.unlink()
        return 1
    if link.is_dir():
        shutil.rmtree(link, ignore_errors=True)
        return 1
    return 0


def apply_retention(root: Path, days: int, lock_stale_s: float = 120.0,
                    keep: str = "") -> tuple[int, int]:
    """Remove dates older than `days` before the newest date under root, with their versions.

    Counted from the newest date present (not today), so a stack that was off for a while
    keeps its last window. keep (the date a run just published on request, however old)
    stays. days <= 0 keeps everything. Returns (dates, version folders).
    """
    root = Path(root)
    dates = published_dates(root)
    if days <= 0 or not dates:
        return 0, 0
    cutoff = (parse_date(dates[0]) - dt.timedelta(days=days)).isoformat()
    versions = root / VERSIONS
    names = [p.name for p in versions.iterdir() if p.is_dir()] if versions.is_dir() else []
    old = sorted({d for d in dates if d < cutoff}
                 | {_version_date(n) for n in names if DATE_RE.match(_version_date(n))
                    and _version_date(n) < cutoff})
    removed_dates = removed_versions = 0
    for day in (d for d in old if d != keep):
        if publish_lock.held(root, day, lock_stale_s):
            log.info("%s: retention skips %s (being published)", root, day)
            continue
        try:
            removed_dates += _remove_date(root / day)
            for name in (n for n in names if _version_date(n) == day):
                _remove_version(versions / name)
                removed_versions += 1
            publish_lock.lock_path(root, day).unlink(missing_ok=True)
        except OSError as exc:  # housekeeping: the date just published stays published
            log.warning("%s: retention could not remove %s: %s", root, day, exc)
    if removed_dates or removed_versions:
        log.info("%s: retention (RETENTION_DAYS=%d, dates before %s): removed %d date(s) and "
                 "%d version folder(s)", root, days, cutoff, removed_dates, removed_versions)
    return removed_dates, removed_versions
