"""Download one date's SOT batch into `{output_dir}/{date}/`, verified and published atomically.

`download_batch(network, processing_date, days, output_dir)` lists
`snapshots/{network}/{date}/{days}/`, reads META.json, fetches alerts, features,
clusters, money_flows (optional), META.json and the network's address labels
(optional, saved as `address_labels.parquet`) into a fresh staging folder, checks
every checksum, writes DOWNLOAD.json and only then publishes the folder with one
rename. A failure leaves the previously published folder exactly as it was.

Errors (see services/downloader/errors.py): `DownloadError` is permanent (bad or
missing data, bad configuration) - do not retry; `TransientDownloadError` is the
network or server after botocore's retries, or a full disk - retry later. Both derive
from `DownloadFailure` and name the key. A checksum mismatch is fetched again once
after SOT_CHECKSUM_RETRY_SECONDS (the SOT may be re-publishing the date); a second
one is permanent. META.json's row counts (schema 1.0.0) are checked before publishing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Callable

from shared import publish_lock, storage
from shared.contract import META_FILE
from shared.manifest import file_entry, write_manifest
from shared.s3 import make_client, transfer_config
from shared.settings import Settings, SettingsError
from services.downloader import manifest
from services.downloader.counts import check_counts
from services.downloader.errors import ChecksumMismatch, DownloadError, local_errors, s3_errors
from services.downloader.plan import Plan, check_meta_policy, plan_batch
from services.downloader.transfer import Fetched, fetch_all, rate

log = logging.getLogger(__name__)

NETWORK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _check_args(network: str, processing_date: str, days: int) -> None:
    if not isinstance(network, str) or not NETWORK_RE.match(network):
        raise DownloadError("network", f"{network!r} is not a network name (e.g. bitcoin)")
    try:
        storage.parse_date(processing_date)
    except storage.InvalidDate as exc:
        raise DownloadError("processing_date", str(exc)) from exc
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise DownloadError("days", f"window {days!r} is not a positive whole number of days")


def _source(settings: Settings, network: str, processing_date: str, days: int) -> dict:
    return {"endpoint": settings.SOT_S3_ENDPOINT, "bucket": settings.SOT_S3_BUCKET,
            "prefix": storage.sot_prefix(network, processing_date, days),
            "labels": storage.labels_key(network)}


def _summary(target: Path, files: list[dict], seconds: float, skipped: bool,
             missing: list[str]) -> dict:
    return {"folder": str(target), "files": len(files),
            "bytes": sum(f["size"] for f in files), "seconds": round(seconds, 3),
            "skipped": skipped, "missing_optional": missing}


def _skip(target: Path, source: dict, started: float) -> dict | None:
    record = manifest.verified(target, source)
    if record is None:
        return None
    summary = _summary(target, record["files"], time.perf_counter() - started, True,
                       record.get("missing_optional", []))
    log.info("batch %s: already downloaded and verified in %s (%d files), skipped "
             "(use --force to fetch again)", source["prefix"], target, summary["files"])
    return summary


def _entries(plan: Plan, fetched: list[Fetched], folder: Path) -> list[dict]:
    """Each file as written into the staging folder: the processor reuses these digests."""
    entries = [file_entry(f.path, f.sha256, key=f.file.key) for f in fetched]
    if plan.meta_bytes is not None:
        entries.append(file_entry(folder / META_FILE, hashlib.sha256(plan.meta_bytes).hexdigest(),
                                  key=plan.prefix + META_FILE))
    return entries


def _stage(client, settings: Settings, plan: Plan, target: Path, source: dict) -> list[dict]:
    with local_errors(str(target)), storage.staging_dir(target) as tmp:
        fetched = fetch_all(client, plan.bucket, plan.files, tmp, transfer_config(settings))
        check_counts(plan.counts, fetched, plan.prefix)
        if plan.meta_bytes is not None:
            (tmp / META_FILE).write_bytes(plan.meta_bytes)
        entries = _entries(plan, fetched, tmp)
        write_manifest(tmp, source, entries, list(plan.missing_optional))
    # Outside the block: once the rename is done, a late error must not delete the new folder.
    with local_errors(str(target)):
        storage.publish(tmp, target)
    return entries


def _fetch(client, settings: Settings, batch: tuple, target: Path,
           source: dict) -> tuple[Plan, list[dict]]:
    """List the batch, fetch and verify it into a staging folder, publish it."""
    plan = plan_batch(client, settings.SOT_S3_BUCKET, *batch, settings.SOT_REQUIRE_META)
    return plan, _stage(client, settings, plan, target, source)


def _fetch_twice_on_mismatch(client, settings: Settings, batch: tuple, target: Path,
                             source: dict, pause: Callable[[float], None]):
    """A checksum mismatch may be the SOT re-publishing the date: look again once, later."""
    try:
        return _fetch(client, settings, batch, target, source)
    except ChecksumMismatch as exc:
        delay = settings.SOT_CHECKSUM_RETRY_SECONDS
        log.warning("batch %s: %s; the SOT may be re-publishing it: listing and fetching it "
                    "again in %.0f s (once; a second mismatch fails the date)", source["prefix"],
                    exc, delay)
    pause(delay)
    return _fetch(client, settings, batch, target, source)


def download_batch(network: str, processing_date: str, days: int, output_dir: Path | str,
                   force: bool = False, settings: Settings | None = None,
                   pause: Callable[[float], None] = time.sleep) -> dict:
    """Fetch, verify and publish one batch; return {folder, files, bytes, seconds, skipped, ...}.

    Raises DownloadError (permanent) or TransientDownloadError (retry later), and
    SettingsError when the S3 settings cannot work (checked before any request).
    `pause` waits before the one re-fetch after a checksum mismatch.
    """
    started = time.perf_counter()
    settings = settings or Settings.from_env()
    _check_args(network, processing_date, days)
    check_meta_policy(settings.SOT_REQUIRE_META)
    if settings.SOT_CHECKSUM_RETRY_SECONDS < 0:
        raise SettingsError(f"SOT_CHECKSUM_RETRY_SECONDS={settings.SOT_CHECKSUM_RETRY_SECONDS} "
                            "must be 0 or more")
    target = storage.date_dir(Path(output_dir), processing_date)
    source = _source(settings, network, processing_date, days)
    if not force and (summary := _skip(target, source, started)):
        return summary
    with s3_errors(f"s3://{settings.SOT_S3_BUCKET}"):
        client = make_client(settings)
    with local_errors(str(output_dir)):
        target.parent.mkdir(parents=True, exist_ok=True)
        storage.clean_stale(target.parent, lock_stale_s=settings.PUBLISH_LOCK_STALE_SECONDS)
    # One publisher per date: a second download (or a manual one) waits, then fails naming us.
    with local_errors(str(output_dir)), publish_lock.publishing(
            target.parent, processing_date, settings.PUBLISH_LOCK_WAIT_SECONDS,
            settings.PUBLISH_LOCK_STALE_SECONDS):
        plan, entries = _fetch_twice_on_mismatch(client, settings,
                                                 (network, processing_date, days), target,
                                                 source, pause)
    with local_errors(str(output_dir)):
        storage.apply_retention(target.parent, settings.RETENTION_DAYS,
                                settings.PUBLISH_LOCK_STALE_SECONDS, keep=processing_date)
    summary = _summary(target, entries, time.perf_counter() - started, False,
                       list(plan.missing_optional))
    log.info("batch %s: %d files, %s -> %s%s", source["prefix"], summary["files"],
             rate(summary["bytes"], summary["seconds"]), target,
             f" (optional missing: {', '.join(plan.missing_optional)})"
             if plan.missing_optional else "")
    return summary
