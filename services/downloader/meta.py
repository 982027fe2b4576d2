"""What a batch's META.json promises, and checking a downloaded file against it.

Three shapes are accepted (SOT_CONTRACT.md section 1):
  current:  {"sha256": {"alerts.parquet": "<hex>", ...}}
  older:    {"files": {"alerts.parquet": {"md5": "<hex>"}, ...}}
  older:    {"files": [{"filename": "alerts.parquet", "checksum": "<hex>"}, ...]}

Since schema 1.0.0 META.json may also carry `counts` (rows per file, keyed by the
file's stem: `alerts`, `features`, ..., `address_labels`); they are parsed here and
checked against the downloaded files' row counts (services/downloader/counts.py).

A checksum names its algorithm by its key (`sha256`, `md5`, `sha1`, `sha512`), by an
`algo:` prefix, or by an `algorithm` field; a bare hex string is told by its length
(32 md5, 40 sha1, 64 sha256, 128 sha512). md5 entries are verified like the rest:
they catch corruption and truncation, not deliberate tampering, and that is all the
older producers offered. A checksum whose algorithm cannot be told is refused
(DownloadError): an entry we cannot check would be a silent pass, and the
contract says a check never degrades to a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

from services.downloader.errors import DownloadError

log = logging.getLogger(__name__)

ALGORITHMS = ("sha512", "sha256", "sha1", "md5")  # strongest first
HEX_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
IDENTITY = ("network", "processing_date", "window_days")
SCHEMA_MAJOR = "1."  # the META.json schema this code knows (SOT_CONTRACT.md section 1)


@dataclass(frozen=True)
class Checksum:
    """An expected digest of one file."""

    algorithm: str
    hexdigest: str


@dataclass(frozen=True)
class Meta:
    """A parsed META.json: expected checksums and row counts by file, and the raw document."""

    checksums: dict[str, Checksum]
    document: dict
    counts: dict[str, int] = field(default_factory=dict)  # by counts key: alerts, features, ...


def _checksum(key: str, where: str, value, algorithm: str | None = None) -> Checksum:
    if not isinstance(value, str):
        raise DownloadError(key, f"{where}: checksum {value!r} is not a string")
    text = value.strip()
    if ":" in text and algorithm is None:
        algorithm, text = (part.strip() for part in text.split(":", 1))
    algorithm = (algorithm or HEX_LENGTHS.get(len(text), "")).lower().replace("-", "")
    if algorithm not in ALGORITHMS:
        raise DownloadError(key, f"{where}: cannot tell the algorithm of checksum {value!r} "
                                 f"(known: {', '.join(ALGORITHMS)}); refusing to skip the check")
    if not HEX_RE.match(text) or len(text) != hashlib.new(algorithm).digest_size * 2:
        raise DownloadError(key, f"{where}: {value!r} is not a {algorithm} hex digest")
    return Checksum(algorithm, text.lower())


def _name(key: str, where: str, name) -> str:
    # Names become local paths: nothing that could leave the staging folder.
    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
        raise DownloadError(key, f"{where}: file name {name!r} is not a plain file name")
    return name


def _from_sha256_map(key: str, mapping) -> dict[str, Checksum]:
    if not isinstance(mapping, dict):
        raise DownloadError(key, "'sha256' is not an object of file name to digest")
    return {_name(key, f"sha256[{n!r}]", n): _checksum(key, f"sha256[{n!r}]", v, "sha256")
            for n, v in mapping.items()}


def _from_entry(key: str, where: str, entry) -> Checksum:
    if isinstance(entry, str):
        return _checksum(key, where, entry)
    if not isinstance(entry, dict):
        raise DownloadError(key, f"{where}: entry {entry!r} is neither a digest nor an object")
    for algorithm in ALGORITHMS:
        if algorithm in entry:
            return _checksum(key, f"{where}.{algorithm}", entry[algorithm], algorithm)
    if "checksum" in entry:
        return _checksum(key, f"{where}.checksum", entry["checksum"], entry.get("algorithm"))
    raise DownloadError(key, f"{where}: no checksum in {sorted(entry)}")


def _from_files(key: str, files) -> dict[str, Checksum]:
    if isinstance(files, dict):
        return {_name(key, f"files[{n!r}]", n): _from_entry(key, f"files[{n!r}]", e)
                for n, e in files.items()}
    if isinstance(files, list):
        result = {}
        for i, entry in enumerate(files):
            name = entry.get("filename", entry.get("name")) if isinstance(entry, dict) else None
            result[_name(key, f"files[{i}]", name)] = _from_entry(key, f"files[{i}]", entry)
        return result
    raise DownloadError(key, "'files' is neither an object nor a list")


def _check_identity(key: str, document: dict, expected: dict) -> None:
    for field in IDENTITY:
        if field in document and str(document[field]) != str(expected[field]):
            raise DownloadError(key, f"says {field} {document[field]!r}, but the batch asked "
                                     f"for is {expected[field]!r}")


def _counts(key: str, counts) -> dict[str, int]:
    if not isinstance(counts, dict):
        raise DownloadError(key, "'counts' is not an object of file stem to row count")
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DownloadError(key, f"counts[{name!r}]: {value!r} is not a row count")
    return {_name(key, f"counts[{n!r}]", n): v for n, v in counts.items()}


def _check_schema(key: str, document: dict) -> None:
    version = document.get("schema_version")
    if version is not None and not str(version).startswith(SCHEMA_MAJOR):
        log.warning("%s: schema_version %s is newer than the 1.x this miner knows; checking the "
                    "checksums and counts it recognises", key, version)


def parse_meta(data: bytes, key: str, network: str, processing_date: str,
               window_days: int) -> Meta:
    """Parse META.json bytes into expected checksums, or raise DownloadError naming key."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DownloadError(key, f"is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise DownloadError(key, "is not a JSON object")
    _check_identity(key, document, {"network": network, "processing_date": processing_date,
                                    "window_days": window_days})
    checksums = _from_files(key, document["files"]) if "files" in document else {}
    if "sha256" in document:
        checksums.update(_from_sha256_map(key, document["sha256"]))
    if not checksums:
        raise DownloadError(key, "lists no checksums ('sha256' or 'files')")
    _check_schema(key, document)
    counts = _counts(key, document["counts"]) if "counts" in document else {}
    return Meta(checksums, document, counts)
