"""The shipped models: trained on fixed generated sample dates, so anyone can rebuild them."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from services.processor.train import train_models

log = logging.getLogger(__name__)

NETWORK = "bitcoin"
WINDOW_DAYS = 7
DATES = ("2025-10-20", "2025-10-21", "2025-10-22", "2025-10-23", "2025-10-24", "2025-10-25")
ALERTS_PER_DATE = 12_000
SEED = 7_000  # date i uses seed SEED + i
VERSION = "1.0.0"


def generate_dates(input_dir: Path, alerts_per_date: int = ALERTS_PER_DATE) -> list[str]:
    """Write the fixed sample dates into input_dir/{date}/ as a download would."""
    from shared.sample import generate_batch, write_input

    for i, date in enumerate(DATES):
        batch = generate_batch(NETWORK, date, window_days=WINDOW_DAYS, n_alerts=alerts_per_date,
                               seed=SEED + i)
        write_input(batch, input_dir)
        log.info("shipped models: generated %s (%d alerts)", date, alerts_per_date)
    return list(DATES)


def build_shipped(models_dir: Path | str, work_dir: Path | str | None = None,
                  alerts_per_date: int = ALERTS_PER_DATE) -> dict:
    """Generate the sample dates (in work_dir, or a temporary folder) and train version 1.0.0."""
    if work_dir is not None:
        dates = generate_dates(Path(work_dir), alerts_per_date)
        return train_models(work_dir, dates, models_dir, VERSION)
    with tempfile.TemporaryDirectory(prefix="aml-shipped-") as tmp:
        dates = generate_dates(Path(tmp), alerts_per_date)
        return train_models(tmp, dates, models_dir, VERSION)
