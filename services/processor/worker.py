"""`aml-miner worker process`: the process worker, with the three models loaded before it takes a job."""

from __future__ import annotations

from shared import worker
from shared.settings import Settings


def run(settings: Settings, burst: bool = False) -> int:
    """Load the models once (every forked job inherits them), then work the process queue."""
    from services.processor import jobs

    jobs.preload(settings)
    return worker.run(settings, settings.QUEUE_PROCESS, burst=burst)
