"""`aml-miner worker process`: the process worker; loads the three models before taking a job."""

from __future__ import annotations

import os
import sys

from shared import worker
from shared.settings import Settings


class ForkUnsafeError(RuntimeError):
    """LightGBM was imported before the worker could make OpenMP fork-safe."""


def fork_safe_openmp() -> None:
    """Keep OpenMP to one thread in this parent so RQ's forked jobs do not hang.

    libgomp's thread pool does not survive fork(): once the parent has run a parallel
    region (LightGBM parses model files in one), a forked job deadlocks in predict.
    With one thread no pool exists; each job still predicts on every core, because
    the processor passes num_threads to LightGBM explicitly.
    """
    if "lightgbm" in sys.modules:
        raise ForkUnsafeError("lightgbm was imported before the process worker set "
                              "OMP_NUM_THREADS=1")
    os.environ["OMP_NUM_THREADS"] = "1"  # read by libgomp when lightgbm loads it


def run(settings: Settings, burst: bool = False) -> int:
    """Load the models once (every forked job inherits them), then work the process queue."""
    fork_safe_openmp()
    from services.processor import jobs

    jobs.preload(settings)
    return worker.run(settings, settings.QUEUE_PROCESS, burst=burst)
