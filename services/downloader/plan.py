"""Which objects make up one published batch: list the prefix, read META.json, decide.

Required: alerts, features, clusters. Optional: money_flows, patterns (the SOT's
export since 2025-12-01) and the network's labels file (missing: a warning). Every
file META.json lists is fetched and checked too. An empty object is an error naming
its key. A batch with no alerts.parquet (the new export publishes none) is
NoAlertsInBatch, naming what the batch holds instead.

"Where the bucket publishes one" (META.json): SOT_REQUIRE_META=always or never
decides outright; `auto` (the default) requires it when another date of the same
network and window has one, so a bucket that never had META.json (an old producer,
a hand-made bucket) still works, with a warning that only sizes are checked.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from shared import contract, storage
from shared.settings import SettingsError
from services.downloader.errors import BatchNotFound, DownloadError, NoAlertsInBatch, s3_errors
from services.downloader.meta import Checksum, Meta, parse_meta

log = logging.getLogger(__name__)

META_POLICIES = ("auto", "always", "never")
NEIGHBOURS_PROBED = 3  # other dates looked at by `auto`; bounded so the check stays cheap
OPTIONAL_FILES = contract.OPTIONAL_BATCH_FILES + (contract.PATTERNS_FILE,)


@dataclass(frozen=True)
class RemoteFile:
    """One object to fetch: its key, local name, listed size and ETag, expected checksum."""

    key: str
    name: str
    size: int
    etag: str
    checksum: Checksum | None = None


@dataclass(frozen=True)
class Plan:
    """Everything one download fetches, plus what was missing but optional."""

    bucket: str
    prefix: str
    files: tuple[RemoteFile, ...]
    meta_bytes: bytes | None
    missing_optional: tuple[str, ...]
    counts: dict = field(default_factory=dict)  # META.json's rows per file stem (schema 1.0.0)


def list_objects(client, bucket: str, prefix: str) -> tuple[dict[str, dict], int]:
    """Every object under prefix (all pages) as key -> {size, etag}, and the page count."""
    objects, pages = {}, 0
    with s3_errors(f"s3://{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix):
            pages += 1
            for item in page.get("Contents", ()):
                objects[item["Key"]] = {"size": int(item["Size"]), "etag": item.get("ETag", "")}
    return objects, pages


def _non_empty(objects: dict, key: str) -> dict:
    item = objects[key]
    if item["size"] == 0:
        raise DownloadError(key, "object is empty (0 bytes)")
    return item


def _remote(objects: dict, key: str, name: str, checksum: Checksum | None) -> RemoteFile:
    item = _non_empty(objects, key)
    return RemoteFile(key, name, item["size"], item["etag"], checksum)


def _get_if_present(client, bucket: str, key: str) -> bytes | None:
    """An object's bytes, or None when it does not exist (404)."""
    with s3_errors(key):
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise


def _neighbour_has_meta(client, bucket: str, network: str, date: str, window: int) -> bool:
    root = f"snapshots/{network}/"
    with s3_errors(f"s3://{bucket}/{root}"):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=root, Delimiter="/")
        dates = [p["Prefix"][len(root):-1] for page in pages
                 for p in page.get("CommonPrefixes", ())]
    others = sorted((d for d in dates if d != date), reverse=True)[:NEIGHBOURS_PROBED]
    for other in others:
        key = storage.sot_prefix(network, other, window) + contract.META_FILE
        with s3_errors(key):
            found = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        if any(item["Key"] == key for item in found.get("Contents", ())):
            log.info("%s has META.json, so this bucket publishes one", key)
            return True
    return False


def check_meta_policy(policy: str) -> None:
    """Refuse an unknown SOT_REQUIRE_META value, naming the variable."""
    if policy not in META_POLICIES:
        raise SettingsError(f"SOT_REQUIRE_META={policy!r} is not one of {', '.join(META_POLICIES)}")


def _meta_required(client, bucket: str, policy: str, network: str, date: str,
                   window: int) -> bool:
    if policy != "auto":
        return policy == "always"
    return _neighbour_has_meta(client, bucket, network, date, window)


def _parse_meta(client, bucket: str, key: str, data: bytes | None, batch: tuple,
                policy: str) -> Meta | None:
    if data is None:
        if _meta_required(client, bucket, policy, *batch):
            raise DownloadError(key, "META.json is missing, but this bucket publishes one "
                                     f"(SOT_REQUIRE_META={policy}); the batch may be incomplete")
        log.warning("%s is missing: files are checked by size only", key)
        return None
    if not data:
        raise DownloadError(key, "object is empty (0 bytes)")
    return parse_meta(data, key, *batch)


def _check_alerts(objects: dict, prefix: str) -> None:
    """No alerts.parquet is the new export, not a broken download: say so and what is there."""
    key = prefix + contract.ALERTS_FILE
    if key not in objects:
        raise NoAlertsInBatch(key, sorted(k[len(prefix):] for k in objects))


def _batch_files(objects: dict, prefix: str, meta: Meta | None) -> tuple[list, list]:
    _check_alerts(objects, prefix)
    checksums = meta.checksums if meta else {}
    known = contract.REQUIRED_BATCH_FILES + OPTIONAL_FILES
    # Files META lists beyond the known ones are fetched and checked too.
    extra = set(checksums) - set(known) - {contract.META_FILE, contract.LABELS_FILE}
    names = list(known) + sorted(extra)
    files, missing = [], []
    for name in names:
        key = prefix + name
        if key in objects:
            files.append(_remote(objects, key, name, checksums.get(name)))
        elif name in contract.REQUIRED_BATCH_FILES:
            raise DownloadError(key, "required file is missing from the bucket")
        elif name in checksums:
            raise DownloadError(key, "META.json lists this file but the bucket has no such key")
        elif name == contract.PATTERNS_FILE:
            log.debug("%s: not in this batch (exports before 2025-12-01 have none)", key)
        else:
            log.warning("%s: optional file is not published, going on without it", key)
            missing.append(key)
    return files, missing


def _labels(client, bucket: str, network: str) -> RemoteFile | None:
    key = storage.labels_key(network)
    objects, _ = list_objects(client, bucket, key)
    if key not in objects:
        log.warning("%s: labels file is not published, going on without it", key)
        return None
    return _remote(objects, key, contract.LABELS_FILE, None)


def plan_batch(client, bucket: str, network: str, processing_date: str, window_days: int,
               meta_policy: str = "auto") -> Plan:
    """List and check one batch in the bucket; raise DownloadError naming the key if broken."""
    check_meta_policy(meta_policy)
    prefix = storage.sot_prefix(network, processing_date, window_days)
    meta_key = prefix + contract.META_FILE
    # META.json and the labels file have known keys: ask for them while the prefix is listed.
    with ThreadPoolExecutor(2, thread_name_prefix="plan") as side:
        meta_read = side.submit(_get_if_present, client, bucket, meta_key)
        labels_lookup = side.submit(_labels, client, bucket, network)
        objects, pages = list_objects(client, bucket, prefix)
        log.info("s3://%s/%s: %d object(s) listed in %d page(s)", bucket, prefix, len(objects),
                 pages)
        if not objects:
            raise BatchNotFound(f"s3://{bucket}/{prefix}", "no objects under this prefix "
                                "(not published yet, or a wrong date, window or bucket)")
        meta_bytes = meta_read.result()
        meta = _parse_meta(client, bucket, meta_key, meta_bytes,
                           (network, processing_date, window_days), meta_policy)
        files, missing = _batch_files(objects, prefix, meta)
        labels = labels_lookup.result()
    for f in files:
        if meta and f.checksum is None:
            log.warning("%s: META.json has no checksum for it; checked by size only", f.key)
    if labels is None:
        missing.append(storage.labels_key(network))
    else:
        files.append(labels)
    return Plan(bucket, prefix, tuple(files), meta_bytes, tuple(missing),
                dict(meta.counts) if meta else {})
