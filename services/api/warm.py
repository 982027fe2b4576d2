"""Render the newest date before anyone asks: at worker start and when a newer one is published."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from .results import DateChanging, DateNotFound, Results
from .store import ResultFileError

log = logging.getLogger(__name__)


def warm_latest(results: Results, done: str | None) -> str | None:
    """Warm the newest date unless its version folder is `done`; returns the folder warmed."""
    date = results.latest()
    version = results.folder.version(date) if date else None
    if version is None or version.name == done:
        return done
    try:
        results.warm(date)
    except ResultFileError as exc:  # a published folder never changes: retrying cannot help
        log.warning("cannot warm %s: %s", date, exc)
        return version.name
    log.info("warmed %s (%s)", date, version.name)
    return version.name


def start_warmer(app: Flask, interval_s: float) -> threading.Thread:
    """A daemon thread that keeps the newest date rendered; failures are logged and retried."""
    results: Results = app.extensions["aml_results"]

    def loop() -> None:
        done = None
        while True:
            try:
                done = warm_latest(results, done)
            except (DateNotFound, DateChanging, OSError) as exc:
                log.warning("warming the newest date failed (will retry): %s", exc)
            except Exception:  # the thread's boundary: a bug must not end warming for good
                log.exception("warming the newest date failed (will retry)")
            time.sleep(interval_s)

    thread = threading.Thread(target=loop, name="api-warmer", daemon=True)
    thread.start()
    return thread
