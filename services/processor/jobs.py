"""The process job: score, rank and publish one date with models loaded once per worker."""

from __future__ import annotations

import logging
import time

from rq import get_current_job

from services.processor import predictor
from services.processor.models import load_models
from services.processor.process import process_batch
from shared import jobs, storage
from shared.contract import ContractError
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Bad input or configuration: every retry would fail the same way.
PERMANENT = (ContractError, jobs.JobArgumentError, storage.InvalidDate, SettingsError)

# process_batch's step names as `status` shows them while the job runs.
STEPS = {"read": "validated", "features": "features", "score_alerts": "scored",
         "rank_alerts": "ranked", "score_clusters": "clusters_scored", "write": "written"}

# Filled by `preload` in `aml-miner worker process` before its work loop, so every
# forked job inherits the models instead of reading them again.
_loaded: dict = {}


def preload(settings: Settings):
    """Load the three models from MODELS_DIR once, on PREDICT_ENGINE (compiled models come
    from COMPILED_MODELS_DIR, compiled there first when missing), for every later job."""
    started = time.monotonic()
    _loaded["models"] = load_models(settings.MODELS_DIR, engine=predictor.engine_setting(settings),
                                    cache_dir=settings.COMPILED_MODELS_DIR)
    _loaded["dir"] = str(settings.MODELS_DIR)
    engines = {name: report["engine"] for name, report in _loaded["models"].engines().items()}
    log.info("models loaded from %s in %.2f s, engines %s", settings.MODELS_DIR,
             time.monotonic() - started, engines)
    return _loaded["models"]


def models(settings: Settings):
    """The preloaded models; loaded here once when a plain `rq worker` runs this job."""
    if _loaded.get("dir") != str(settings.MODELS_DIR):
        log.warning("models not preloaded for %s (not started by `aml-miner worker process`?): "
                    "loading them now", settings.MODELS_DIR)
        preload(settings)
    return _loaded["models"]


def process_job(network: str, processing_date: str, window_days) -> dict:
    """Process INPUT_DIR/{date} into OUTPUT_DIR/{date}, published atomically; record progress."""
    job = get_current_job()
    days = window_days
    jobs.record(job, step="processing")
    started = time.monotonic()
    try:
        settings, days = Settings.from_env(), jobs.window(window_days)
        metadata = process_batch(settings.INPUT_DIR, settings.OUTPUT_DIR, processing_date,
                                 models=models(settings), settings=settings,
                                 progress=_recorder(job))
    except PERMANENT as exc:
        jobs.fail_now(job, exc)
        log.error("process %s %s %sd failed (bad input, no retry): %s", network, processing_date,
                  days, exc)
        raise
    except Exception as exc:  # the job boundary: keep the reason for `status`
        jobs.note_error(job, exc)
        log.error("process %s %s %sd failed: %s", network, processing_date, days, exc)
        raise
    return _published(job, network, processing_date, days, metadata, time.monotonic() - started)


def _recorder(job):
    """process_batch's progress callback: the step just finished, and all finished so far."""
    done: list[str] = []

    def record(name: str, _seconds: float) -> None:
        done.append(STEPS.get(name, name))
        jobs.record(job, step=done[-1], done=list(done))
    return record


def _published(job, network: str, processing_date: str, days: int, metadata: dict,
               seconds: float) -> dict:
    counts = {"alerts": int(metadata.get("alert_count", 0)),
              "clusters": int(metadata.get("cluster_count", 0))}
    jobs.record(job, step="published", validated=True, scored=counts["alerts"],
                ranked=counts["alerts"], clusters_scored=counts["clusters"],
                process_s=round(seconds, 3), timings_s=metadata.get("timings_s", {}))
    log.info("process %s %s %sd: published %d alerts, %d clusters in %.2f s", network,
             processing_date, days, counts["alerts"], counts["clusters"], seconds)
    return {**counts, "seconds": round(seconds, 3)}
