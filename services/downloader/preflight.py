"""Pre-flight checks of the SOT: the bucket answers, and the date to download is listed there."""

from __future__ import annotations

from typing import Iterator

from shared import contract, storage
from shared.checks import Check
from shared.redact import mask_url
from shared.s3 import make_client
from shared.settings import Settings, SettingsError
from services.downloader.errors import DownloadFailure, s3_errors
from services.downloader.plan import list_objects


def checks(settings: Settings, processing_date: str) -> Iterator[Check]:
    """SOT reachable (a listing answers) and the date's batch of every network listed, with
    alerts.parquet."""
    where = f"s3://{settings.SOT_S3_BUCKET} at {mask_url(settings.SOT_S3_ENDPOINT) or 'AWS'}"
    try:
        prefixes = [storage.sot_prefix(network, processing_date, settings.WINDOW_DAYS)
                    for network in settings.networks]
        with s3_errors(where):
            client = make_client(settings)
        listed = [(p, list_objects(client, settings.SOT_S3_BUCKET, p)[0]) for p in prefixes]
    except (DownloadFailure, SettingsError, storage.InvalidDate, ValueError) as exc:
        yield Check("SOT reachable", False, f"{where}: {exc}")
        return
    yield Check("SOT reachable", True, f"{where} answers a listing")
    for prefix, objects in listed:
        yield _date_listed(prefix, objects)


def _date_listed(prefix: str, objects: dict) -> Check:
    if not objects:
        return Check("date listed", False, f"{prefix}: no objects (not published yet, or a wrong "
                                           "NETWORKS, WINDOW_DAYS or bucket)")
    names = sorted(key[len(prefix):] for key in objects)
    if contract.ALERTS_FILE not in names:
        return Check("date listed", False, f"{prefix}: no alerts.parquet (the SOT's export since "
                                           f"2025-12-01); files there: {', '.join(names)}")
    return Check("date listed", True, f"{prefix}: {len(names)} objects ({', '.join(names)})")
