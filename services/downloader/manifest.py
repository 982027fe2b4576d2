"""DOWNLOAD.json: the record a download leaves in its date folder, and re-checking it.

It names the source (endpoint, bucket, batch prefix) and each file's key, size and
sha256. A later run for the same source skips the download when every file is
still there with that sha256; a folder from another source, window or an
incomplete one is fetched again (and replaced atomically).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from shared.storage import sha256_file

log = logging.getLogger(__name__)

MANIFEST_FILE = "DOWNLOAD.json"


def write_manifest(folder: Path, source: dict, files: list[dict],
                   missing_optional: list[str]) -> None:
    """Write DOWNLOAD.json into a staging folder (before it is published)."""
    record = {"source": source, "files": files, "missing_optional": missing_optional,
              "downloaded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _read(folder: Path) -> dict | None:
    path = Path(folder) / MANIFEST_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s)", path, exc)
        return None
    return record if isinstance(record, dict) else None


def _mismatch(folder: Path, entry: dict) -> str | None:
    path = Path(folder) / entry["name"]
    if not path.is_file():
        return f"{entry['name']} is missing"
    if path.stat().st_size != entry["size"]:
        return f"{entry['name']} has {path.stat().st_size} bytes, not {entry['size']}"
    if sha256_file(path) != entry["sha256"]:
        return f"{entry['name']} no longer matches its sha256"
    return None


def verified(folder: Path, source: dict) -> dict | None:
    """The folder's manifest when it came from source and every file still matches, else None."""
    record = _read(folder)
    if record is None:
        return None
    if record.get("source") != source:
        log.info("%s holds a download of %s; fetching %s instead", folder,
                 record.get("source"), source)
        return None
    try:
        problems = [p for e in record["files"] if (p := _mismatch(folder, e))]
    except (KeyError, TypeError):
        problems = ["its DOWNLOAD.json is malformed"]
    if problems:
        log.warning("%s is not a complete, verified download (%s); fetching it again",
                    folder, "; ".join(problems))
        return None
    return record
