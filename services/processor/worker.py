"""`aml-miner worker process`: the process worker; loads the three models before taking a job."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from shared import worker
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

OMP = "OMP_NUM_THREADS"


class ForkUnsafeError(RuntimeError):
    """LightGBM was imported before the worker could make OpenMP fork-safe."""


@contextlib.contextmanager
def single_openmp_thread() -> Iterator[None]:
    """Load LightGBM with one OpenMP thread, so RQ's forked jobs do not hang.

    libgomp's thread pool does not survive fork(): once the parent has run a parallel
    region with threads (LightGBM parses model files in one), a forked job deadlocks in
    predict. libgomp reads OMP_NUM_THREADS once, when lightgbm loads it; with 1 no pool
    thread is ever made here. Each job still predicts on every core (the processor passes
    num_threads), and the variable is restored afterwards because pyarrow sizes its own
    thread pool from it when a job first reads parquet.
    """
    if "lightgbm" in sys.modules:
        raise ForkUnsafeError(f"lightgbm was imported before the process worker set {OMP}=1")
    saved = os.environ.get(OMP)
    os.environ[OMP] = "1"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[OMP]
        else:
            os.environ[OMP] = saved


def run(settings: Settings, burst: bool = False) -> int:
    """Load every network's current models once, compiling any that the cache lacks (every
    forked job inherits them), then work the process queue, whichever network a job is for;
    before each job, a promoted set is loaded in its network's place."""
    with single_openmp_thread():
        from services.processor import jobs

        try:
            jobs.preload_all(settings)
        except SettingsError as exc:  # fail at start, not in the first job
            print(f"aml-miner worker: configuration error: {exc}", file=sys.stderr)
            return 2
    _warn_unset_url(settings)
    _render_published(settings)
    return worker.run(settings, settings.QUEUE_PROCESS, burst=burst, prepare=jobs.prepare)


def _render_published(settings: Settings) -> None:
    """Dates published before the API's bodies existed get them, once, before any job."""
    from services.processor.render import render_published

    for network in settings.networks:
        outcomes = render_published(settings.network_output_dir(network))
        if outcomes:
            log.info("rendered the response bodies of published %s dates: %s", network, outcomes)


def run_learner(settings: Settings, burst: bool = False) -> int:
    """Work the learn queue (each learn runs in its own forked job; nothing is preloaded)."""
    return worker.run(settings, settings.QUEUE_LEARN, burst=burst)


def _warn_unset_url(settings: Settings) -> None:
    if not settings.MODEL_GITHUB_URL:
        log.warning("MODEL_GITHUB_URL is empty: the subnet's validators reject submissions "
                    "without a model_github_url (set it to where your models' code lives)")
