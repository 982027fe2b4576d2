"""Backfill: download a range of past SOT dates, each verified and published as `download` does.

Dates already present (a verified DOWNLOAD.json) are skipped without a request; a date
the SOT does not have is reported and skipped; the others are fetched one after the
other. The summary says what happened to every date, and `exit_code` maps it to the
same codes as `aml-miner download`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from services.downloader.download import download_batch
from services.downloader.errors import (BatchNotFound, DownloadError, DownloadFailure,
                                        TransientDownloadError)
from shared import storage
from shared.settings import Settings

log = logging.getLogger(__name__)

FETCHED, PRESENT, MISSING, FAILED, TEMPORARY = ("fetched", "already present", "missing",
                                                "failed", "temporary failure")
EXIT_OK, EXIT_PERMANENT, EXIT_TEMPFAIL = 0, 1, 75


@dataclass
class Summary:
    """What a backfill did to each date, and its totals."""

    outcomes: dict[str, str] = field(default_factory=dict)  # date -> state
    details: dict[str, str] = field(default_factory=dict)  # date -> why (missing / failed)
    bytes: int = 0
    seconds: float = 0.0

    def dates(self, state: str) -> list[str]:
        """The dates that ended in one state."""
        return [d for d, s in self.outcomes.items() if s == state]

    def line(self) -> str:
        """One line for the operator: counts by state, bytes and time."""
        counts = ", ".join(f"{len(self.dates(s))} {s}" for s in (FETCHED, PRESENT, MISSING,
                                                                  FAILED, TEMPORARY))
        return (f"backfill of {len(self.outcomes)} date(s): {counts}; "
                f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s")

    def exit_code(self) -> int:
        """0: every date present or missing on the SOT (1 when the SOT has none of them);
        1: a date failed for good; 75: only temporary failures are left."""
        if self.dates(FAILED):
            return EXIT_PERMANENT
        if self.dates(TEMPORARY):
            return EXIT_TEMPFAIL
        if self.outcomes and not (self.dates(FETCHED) or self.dates(PRESENT)):
            return EXIT_PERMANENT
        return EXIT_OK


def _one(network: str, date: str, days: int, output_dir: Path,
         settings: Settings) -> tuple[str, str, int]:
    """Download one date: (state, detail, bytes fetched)."""
    try:
        result = download_batch(network, date, days, output_dir, settings=settings)
    except BatchNotFound as exc:
        return MISSING, str(exc), 0
    except TransientDownloadError as exc:
        return TEMPORARY, str(exc), 0
    except (DownloadError, DownloadFailure, OSError) as exc:
        return FAILED, str(exc), 0
    if result["skipped"]:
        return PRESENT, "", 0
    return FETCHED, "", int(result["bytes"])


def backfill(network: str, dates: list[str], days: int, output_dir: Path | str,
             settings: Settings,
             on_date: Callable[[str, str, int, int], None] | None = None) -> Summary:
    """Download every date not present yet; on_date(date, state, done, total) after each."""
    started, summary = time.monotonic(), Summary()
    for n, date in enumerate(dates, 1):
        state, detail, size = _one(network, date, days, Path(output_dir), settings)
        summary.outcomes[date], summary.bytes = state, summary.bytes + size
        if detail:
            summary.details[date] = detail
        log.info("backfill %s %dd: %d/%d %s: %s%s", network, days, n, len(dates), date, state,
                 f" ({detail})" if detail else "")
        if on_date is not None:
            on_date(date, state, n, len(dates))
    summary.seconds = round(time.monotonic() - started, 3)
    log.info("%s", summary.line())
    return summary


def history_before(processing_date: str, days_back: int) -> list[str]:
    """The days_back dates before processing_date, oldest first (the learner's history)."""
    end = storage.parse_date(processing_date)
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days_back, 0, -1)]
