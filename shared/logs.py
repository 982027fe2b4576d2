"""Logging set-up, called once by each entry point; modules only call getLogger(__name__)."""

from __future__ import annotations

import logging
import sys
from typing import Iterable

from shared.redact import ScrubSecrets

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send logs to stdout in one format (containers collect stdout); `secrets` never appear."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    handler.addFilter(ScrubSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level.upper())


def scrub_handlers(logger: logging.Logger, secrets: Iterable[str]) -> None:
    """Add the secret scrubber to handlers set up elsewhere (gunicorn's own error log)."""
    scrubber = ScrubSecrets(secrets)
    for handler in logger.handlers:
        handler.addFilter(scrubber)
