"""The process job: score, rank and publish one date with models loaded once per worker."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rq import get_current_job

from services.processor import predictor
from services.processor.models import load_models
from services.processor.process import process_batch
from shared import jobs, modelsets, networks, storage
from shared.contract import ContractError
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Bad input or configuration: every retry would fail the same way.
PERMANENT = (ContractError, jobs.JobArgumentError, storage.InvalidDate, SettingsError)

# process_batch's step names as `status` shows them while the job runs.
STEPS = {"read": "validated", "features": "features", "score_alerts": "scored",
         "rank_alerts": "ranked", "score_clusters": "clusters_scored", "write": "written"}

# Filled by `preload` in the process worker before a job is forked, so every forked job
# inherits the models instead of reading them again: each set in use by folder, and the
# folder each (network, window) scores with. Networks on the same set share one copy.
_loaded: dict[str, object] = {}  # folder -> its Models
_in_use: dict[tuple[str, int], str] = {}


def model_set(settings: Settings, network: str, window_days: int) -> modelsets.ModelSet:
    """The set a job of this network and window scores with: the current learned set, else
    the shipped one."""
    return modelsets.current(settings, network, window_days)


def preload(settings: Settings, network: str | None = None, window_days: int | None = None):
    """Have the current set of a network and window (default: the first network, WINDOW_DAYS)
    loaded, on PREDICT_ENGINE (compiled models come from COMPILED_MODELS_DIR, compiled there
    first when missing); a promotion is picked up here, before the next job, and a set no
    network uses any more is dropped."""
    network = network or settings.default_network
    days = jobs.window(window_days or settings.WINDOW_DAYS)
    chosen = model_set(settings, network, days)
    key = str(Path(chosen.folder).resolve())
    if key not in _loaded:
        started = time.monotonic()
        models = load_models(chosen.folder, engine=predictor.engine_setting(settings),
                             cache_dir=settings.COMPILED_MODELS_DIR)
        _loaded[key] = models
        engines = {name: report["engine"] for name, report in models.engines().items()}
        log.info("models loaded from %s for %s %dd (the %s set %s) in %.2f s, engines %s",
                 chosen.folder, network, days, chosen.source, chosen.version,
                 time.monotonic() - started, engines)
    _in_use[(network, days)] = key
    for unused in set(_loaded) - set(_in_use.values()):
        del _loaded[unused]
    return chosen, _loaded[key]


def preload_all(settings: Settings) -> None:
    """Load the current set of every configured network (the process worker, at start)."""
    for network in settings.networks:
        preload(settings, network)


def prepare(job) -> None:
    """Worker hook before a job is forked: have its network's current set loaded."""
    if job.func_name == jobs.PROCESS_JOB:
        preload(Settings.from_env(), job.kwargs.get("network"), job.kwargs.get("window_days"))


def _models_for(settings: Settings, network: str, days: int):
    """The job's models: those the worker loaded before forking it, else loaded here."""
    if not _loaded:
        log.warning("models not preloaded (not started by `aml-miner worker process`?): "
                    "loading them in the job")
    return preload(settings, network, days)


def process_job(network: str, processing_date: str, window_days) -> dict:
    """Process the network's input date into its output root, published atomically; record
    progress."""
    job = get_current_job()
    days = window_days
    jobs.record(job, step="processing")
    started = time.monotonic()
    try:
        settings, days = Settings.from_env(), jobs.window(window_days)
        chosen, models = _models_for(settings, network, days)
        metadata = process_batch(networks.input_root(settings, network),
                                 networks.output_root(settings, network), processing_date,
                                 models=models, settings=settings, progress=_recorder(job),
                                 model_set=chosen,
                                 network=network if settings.multi_network else None)
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


def learn_job(network: str, processing_date: str, window_days, then_process: bool = False) -> dict:
    """Learn for a date from the dates before it; then_process: queue the date's processing
    afterwards whatever happened (its first publication waits for this learn only)."""
    from services.processor import learning

    job = get_current_job()
    settings, days = Settings.from_env(), jobs.window(window_days)
    connection = job.connection if job is not None else jobs.connect(settings)
    jobs.record(job, step="learning")
    try:
        outcome = learning.learn(settings, network, days, processing_date)
    except Exception as exc:  # the job boundary: the failure is recorded, processing goes on
        jobs.note_error(job, exc)
        modelsets.record_learn(settings, network, days, {
            "processing_date": processing_date, "decision": "failed",
            "reason": f"{type(exc).__name__}: {exc}"})
        log.error("learn %s %s %sd failed: %s", network, processing_date, days, exc)
        if then_process:
            _then_process(settings, network, processing_date, days, connection)
        raise
    jobs.record(job, step=outcome.decision, version=outcome.version)
    if then_process:
        _then_process(settings, network, processing_date, days, connection)
    elif outcome.promoted and settings.LEARN_REPROCESS_TODAY:
        _republish(settings, network, processing_date, days, connection)
    return outcome.record()


def _then_process(settings: Settings, network: str, processing_date: str, days: int,
                  connection) -> None:
    chained = jobs.enqueue_process(settings, network, processing_date, days, connection)
    log.info("learn %s %s %sd: %s %s", network, processing_date, days, chained.job_id,
             chained.message)


def _republish(settings: Settings, network: str, processing_date: str, days: int,
               connection) -> None:
    """Publish the date again with the promoted set: at once when it is already published,
    after the run in progress when it is being processed (that run loaded the old set)."""
    deadline = time.monotonic() + settings.JOB_TIMEOUT_PROCESS
    while time.monotonic() < deadline:
        status = jobs.date_status(settings, network, processing_date, days, connection)
        if status.state == "queued" and status.stage == "process":
            log.info("learn: %s is queued; it will load the promoted set", status.job_id)
            return
        if status.state not in ("processing", "queued", "downloading"):
            break
        time.sleep(2)
    if status.state != "published":
        log.info("learn: %s %s is %s, not published; nothing to re-publish", network,
                 processing_date, status.state)
        return
    log.info("learn: re-publishing %s %s %sd with the promoted set (LEARN_REPROCESS_TODAY)",
             network, processing_date, days)
    _then_process(settings, network, processing_date, days, connection)
