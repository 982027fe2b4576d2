"""DOWNLOAD.json: the record a download (or the sample generator) leaves in a date folder.

It names the source and, for each file, its name, size, modification time (ns) and
sha256, taken as the file was written into the staging folder, before the folder
was published. The downloader uses it to skip a batch it already has; the
processor reuses a recorded sha256 for a file whose size and modification time are
still the recorded ones, instead of hashing the same bytes a second time (as make,
rsync and git trust a file's stat).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_FILE = "DOWNLOAD.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def file_entry(path: Path, sha256: str, **fields) -> dict:
    """A file's record: name, the given fields, its size and mtime now, and its sha256."""
    stat = Path(path).stat()
    return {"name": Path(path).name, **fields, "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns, "sha256": sha256}


def write_manifest(folder: Path, source: dict, files: list[dict],
                   missing_optional: list[str]) -> None:
    """Write DOWNLOAD.json into a staging folder (before it is published)."""
    record = {"source": source, "files": files, "missing_optional": missing_optional,
              "downloaded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: Path) -> dict | None:
    """The folder's DOWNLOAD.json as a dict; None when absent or unreadable (logged)."""
    path = Path(folder) / MANIFEST_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s)", path, exc)
        return None
    return record if isinstance(record, dict) else None


def _unchanged_digest(folder: Path, entry) -> tuple[str, str] | None:
    """(name, sha256) of an entry whose file still has the recorded size and mtime."""
    if not isinstance(entry, dict):
        return None
    name, digest = entry.get("name"), entry.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        return None
    try:
        stat = (Path(folder) / name).stat()
    except (OSError, ValueError):
        return None
    if stat.st_size != entry.get("size") or stat.st_mtime_ns != entry.get("mtime_ns"):
        return None
    return name, digest


def recorded_digests(folder: Path) -> dict[str, str]:
    """sha256 by file name of the recorded files that are unchanged since they were recorded.

    A file with another size or modification time, an entry without mtime_ns (a record
    from before it was kept) and a missing or broken record give nothing.
    """
    record = read_manifest(folder)
    files = record.get("files") if record else None
    if not isinstance(files, list):
        return {}
    return dict(found for entry in files if (found := _unchanged_digest(folder, entry)))
