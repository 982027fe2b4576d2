"""Re-checking DOWNLOAD.json, the record a download leaves in its date folder (shared.manifest).

It names the source (endpoint, bucket, batch prefix) and each file's key, size,
mtime and sha256. A later run for the same source skips the download when every file is
still there with that sha256; a folder from another source, window or an
incomplete one is fetched again (and replaced atomically).
"""

from __future__ import annotations

import logging
from pathlib import Path

from shared.manifest import read_manifest
from shared.storage import sha256_file

log = logging.getLogger(__name__)


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
    record = read_manifest(folder)
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
