"""process_batch: score, rank and publish one date from its input folder.

Reads input/{date}/, builds features, scores alerts (alert scorer), ranks them
(alert ranker), scores clusters (cluster scorer), checks every score, writes each
result file and the API's response bodies (shared/bodies.py) into a staging folder
and publishes the folder with one atomic rename.
Any failure before the rename leaves the previous result as it was.

Predictions run in row chunks on one predictor thread per core (scoring.py), each model
on the engine it was loaded with (predictor.py: compiled trees, or LightGBM); the cluster
features and the result writers run between chunks (the input checksums beside reading),
so every core stays busy from the first prediction to the last write.

alerts_ranked orders alerts by the ranker (the model trained for ordering); its
`score` column is the ranker's output mapped monotonically into [0, 1], and the
ranks are computed from that published score, so rank 1 is always its highest.
"""

from __future__ import annotations

import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from services.processor import outputs, predictor
from services.processor.features import (alert_features, cluster_address_columns,
                                         cluster_features)
from services.processor.inputs import alert_rows, batch_identity, checksums, load_inputs
from services.processor.memory import disable_huge_pages, share_one_allocator
from services.processor.models import Model, Models, cpu_threads, load_models
from services.processor.scoring import MEMBER_ALERT_MAX, Scoring, cluster_rule, member_alert_max
from shared import bodies, contract, publish_lock
from shared.modelsets import ModelSet
from shared.settings import Settings
from shared.storage import (ALERTS_RANKED, ALERTS_SCORED, CLUSTERS_SCORED, METADATA,
                            apply_retention, clean_stale, date_dir, parse_date, publish, resolve,
                            staging_dir)

log = logging.getLogger(__name__)

# Row groups of clusters_scored (streamed as its predictions finish: small row groups leave
# little to write at the end).
CLUSTER_GROUP_ROWS = 65_536


class Steps:
    """Wall-clock seconds of each named step, logged as they finish (and told to on_step)."""

    def __init__(self, subject: str, on_step: Callable[[str, float], None] | None = None):
        self.subject = subject
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self.on_step = on_step

    @contextlib.contextmanager
    def step(self, name: str):
        """Time the block under name."""
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 4)
        log.info("%s: %s took %.2fs", self.subject, name, self.seconds[name])
        if self.on_step is not None:
            self.on_step(name, self.seconds[name])

    def total(self) -> dict[str, float]:
        """The step timings plus the total so far."""
        return {**self.seconds, "total": round(time.perf_counter() - self.started, 4)}


def _alert_features(inputs, steps: Steps):
    """The alert feature frame; then the address and flow columns that cluster features do
    not use are dropped, before the feature matrix is allocated (peak RSS)."""
    with steps.step("features"):
        alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters,
                                inputs.money_flows, inputs.links)
    inputs.features = cluster_address_columns(inputs.features)
    inputs.money_flows = None
    log.info("%s: %d alert feature columns", steps.subject, alerts.shape[1])
    return alerts


def _release_unused() -> None:
    """Hand the memory of dropped tables back to the OS (malloc_trim of every arena).

    Without these calls peak RSS at 1M alerts is 2.64-2.78 GB instead of ~2.0 GB, and the
    batch is no faster (measured).
    """
    pa.default_memory_pool().release_unused()


def _cluster_features(inputs, alerts, subject: str):
    """The cluster feature frame; then the rest of the address table is dropped."""
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    inputs.features = None
    _release_unused()
    log.info("%s: %d cluster feature columns", subject, clusters.shape[1])
    return clusters


def _checked(model, scores, rows: int):
    """The scores, once check_scores has passed them."""
    outputs.check_scores(model.tag, scores, rows)
    return scores


@contextlib.contextmanager
def _pool(workers: int, name: str):
    """A thread pool whose queued work is dropped when the block fails (no wasted predictions)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _prediction_cpu(subject: str, scoring: Scoring, model: Model) -> float:
    """Log and return (in seconds, rounded) the CPU time a model's finished predictions took."""
    seconds = scoring.cpu_seconds(model.name)
    log.info("%s: %s predicted %d rows in %d chunks on %d threads with %s, %.2f CPU-s", subject,
             model.tag, len(scoring.scores[model.name]), len(scoring.bounds), cpu_threads(),
             scoring.engines[model.name].name, seconds)
    return round(seconds, 3)


def _queue_predictions(predict: ThreadPoolExecutor, models: Models, inputs,
                       steps: Steps) -> tuple[Scoring, Scoring]:
    """Queue every prediction on the pool: alert chunks, with the cluster features built
    beside them, then the cluster chunks behind the alert ones (no core waits between)."""
    alerts = _alert_features(inputs, steps)
    clustering = predict.submit(_cluster_features, inputs, alerts, steps.subject)
    alert_scoring = Scoring(predict, alerts, [models.alert_scorer, models.alert_ranker])
    # Once this returns, only the scorings hold feature columns (the frames are dropped).
    return alert_scoring, Scoring(predict, clustering.result(), [models.cluster_scorer])


def _finished(steps: Steps, step: str, model: Model, scores: Callable[[], np.ndarray],
              rows: int) -> np.ndarray:
    """A model's scores once all its chunks are done and check_scores passed them."""
    with steps.step(step):
        return _checked(model, scores(), rows)


def _score_and_write(folder: Path, models: Models, inputs, envelope: dict,
                     steps: Steps) -> tuple[dict, dict]:
    """Score with the three models; write the result files and the API's bodies into folder.

    Each file and body is written as soon as its scores are in (on writer threads, the
    last file on this one) while later predictions still run; the scored files hold the
    input's rows in contract.result_schema's types (one schema whatever wrote the input).
    envelope is the metadata the bodies repeat. Returns the CPU seconds each model's predictions took and each
    model's engine report, both by model name.
    """
    scorer, ranker, cluster_scorer = models.alert_scorer, models.alert_ranker, models.cluster_scorer
    n, clusters = inputs.alerts.num_rows, inputs.clusters.num_rows
    alert_ids = inputs.alerts.column("alert_id")
    with _pool(cpu_threads(), "predict") as predict, _pool(3, "write") as writers:
        alert_scoring, cluster_scoring = _queue_predictions(predict, models, inputs, steps)
        _release_unused()
        scores = _finished(steps, "score_alerts", scorer,
                           lambda: alert_scoring.result()[scorer.name], n)
        pending = [
            writers.submit(outputs.write_scored_stream, alert_rows(inputs), scores, scorer.tag,
                           folder / ALERTS_SCORED, spec=contract.ALERTS),
            writers.submit(_render, folder, bodies.ALERT_SCORES, alert_ids, scores, scorer.tag,
                           envelope)]
        ranks = _finished(steps, "rank_alerts", ranker,
                          lambda: outputs.sigmoid(alert_scoring.scores[ranker.name]), n)
        pending.append(writers.submit(_write_ranked, alert_ids, ranks, ranker.tag, folder,
                                      envelope))
        cluster_scores = _finished(steps, "score_clusters", cluster_scorer,
                                   lambda: _cluster_scores(cluster_scorer, cluster_scoring,
                                                           scores, inputs.links), clusters)
        pending.append(writers.submit(_render, folder, bodies.CLUSTER_SCORES,
                                      inputs.clusters.column("cluster_id"), cluster_scores,
                                      cluster_scorer.tag, envelope))
        with steps.step("write"):
            outputs.write_scored_stream(cluster_scoring.slices(inputs.clusters), cluster_scores,
                                        cluster_scorer.tag, folder / CLUSTERS_SCORED,
                                        CLUSTER_GROUP_ROWS, spec=contract.CLUSTERS)
            for future in pending:
                future.result()  # re-raises a writer's error here
    cpu = {m.name: _prediction_cpu(steps.subject, scoring, m)
           for scoring, m in ((alert_scoring, scorer), (alert_scoring, ranker),
                              (cluster_scoring, cluster_scorer))}
    return cpu, {**alert_scoring.report, **cluster_scoring.report}


def _cluster_scores(model: Model, scoring: Scoring, alert_scores: np.ndarray, links) -> np.ndarray:
    """The cluster scorer's scores, or its members' alert scores where its sidecar says so."""
    own = scoring.result()[model.name]
    if cluster_rule(model) == MEMBER_ALERT_MAX:
        return member_alert_max(own, alert_scores, links)
    return own


def _render(folder: Path, kind: bodies.ListKind, ids, scores: np.ndarray, tag: str,
            envelope: dict) -> None:
    """A scores endpoint's body, from the ids and scores in memory."""
    table = pa.table({kind.columns[0]: ids, outputs.SCORE: pa.array(scores, pa.float64())})
    bodies.write_list(folder, kind, table, envelope, tag)


def _write_ranked(alert_ids, scores, tag: str, folder: Path, envelope: dict) -> None:
    """Sort, write alerts_ranked and render its body (on a writer thread: the sort is not free)."""
    table = outputs.ranked(alert_ids, scores, tag)
    outputs.write_parquet(table, folder / ALERTS_RANKED)
    bodies.write_list(folder, bodies.ALERT_RANKINGS, table, envelope, tag)


def _timed_checksums(source: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    return checksums(source), round(time.perf_counter() - started, 4)


def _read(source: Path, processing_date: str, settings: Settings, steps: Steps,
          network: str | None = None):
    with steps.step("read"):
        inputs = load_inputs(source)
        found, window = batch_identity(inputs, processing_date,
                                       network or settings.default_network, settings.WINDOW_DAYS)
        if network and found != network:  # never publish one network's batch as another's
            raise contract.ContractError(source / contract.META_FILE,
                                         f"the batch is of network {found}, not the requested "
                                         f"{network}")
        network = found
    _release_unused()  # decode buffers and pre-cast decimals
    log.info("batch %s: read %d alerts, %d clusters, %d address rows, %s money flows (%s, %dd)",
             processing_date, inputs.alerts.num_rows, inputs.clusters.num_rows,
             inputs.features.num_rows,
             inputs.money_flows.num_rows if inputs.money_flows is not None else "no",
             network, window)
    return inputs, network, window


def process_batch(input_dir: Path | str, output_dir: Path | str, processing_date: str,
                  models_dir: Path | str | None = None, models: Models | None = None,
                  settings: Settings | None = None,
                  progress: Callable[[str, float], None] | None = None,
                  model_set: ModelSet | None = None, network: str | None = None) -> dict:
    """Score, rank and publish one date; returns the metadata written to metadata.json.

    network: the one the job is for (a batch whose META.json names another is refused).

    progress, if given, is called with (step name, seconds) as each step finishes (the job
    chain records it in job.meta). model_set says which set the models are, for metadata.json
    (default: the folder they were loaded from, as an override).
    """
    settings = settings or Settings()
    parse_date(processing_date)
    disable_huge_pages()
    share_one_allocator()
    target = date_dir(output_dir, processing_date)
    steps = Steps(f"batch {processing_date}", progress)
    if models is None:
        with steps.step("load_models"):
            models = load_models(models_dir or settings.MODELS_DIR,
                                 engine=predictor.engine_setting(settings),
                                 cache_dir=settings.COMPILED_MODELS_DIR)
    model_set = model_set or ModelSet("", "override", models.alert_scorer.path.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target.parent, lock_stale_s=settings.PUBLISH_LOCK_STALE_SECONDS)
    with publish_lock.publishing(target.parent, processing_date,
                                 settings.PUBLISH_LOCK_WAIT_SECONDS,
                                 settings.PUBLISH_LOCK_STALE_SECONDS):
        metadata = _publish_batch(pinned_input(input_dir, processing_date), target,
                                  processing_date, models, model_set, settings, steps, network)
    apply_retention(target.parent, settings.RETENTION_DAYS, settings.PUBLISH_LOCK_STALE_SECONDS,
                    keep=processing_date)
    log.info("batch %s: published %s (%d alerts, %d clusters) in %.2fs", processing_date, target,
             metadata["alert_count"], metadata["cluster_count"], metadata["timings_s"]["total"])
    return metadata


def pinned_input(input_dir: Path | str, processing_date: str) -> Path:
    """The version folder input/{date} points at now: every file of the run is read from it,
    so a republish of the input mid-run cannot pair new rows with old scores."""
    link = date_dir(input_dir, processing_date)
    return resolve(link) or link  # not there: load_inputs names the missing folder


def _publish_batch(source: Path, target: Path, processing_date: str, models: Models,
                   model_set: ModelSet, settings: Settings, steps: Steps,
                   network: str | None = None) -> dict:
    """Read source, write every result into a staging folder, publish it as target."""
    # A thread per call (not a module-level pool: RQ forks, and pool threads do not survive
    # a fork). Hashing runs beside the single-threaded feature work instead of after it.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="checksums") as pool:
        hashing = pool.submit(_timed_checksums, source)
        inputs, network, window = _read(source, processing_date, settings, steps, network)
        # What the bodies repeat is known before scoring; the timestamp is when scoring began.
        metadata = {
            "processing_date": processing_date, "network": network, "window_days": window,
            "alert_count": inputs.alerts.num_rows, "cluster_count": inputs.clusters.num_rows,
            "model_versions": models.versions(), "model_set": model_set.describe(),
            "model_github_url": settings.MODEL_GITHUB_URL, "timestamp": outputs.utc_timestamp(),
        }
        with staging_dir(target) as tmp:
            prediction_cpu, engines = _score_and_write(tmp, models, inputs, metadata, steps)
            sums, steps.seconds["checksums"] = hashing.result()
            metadata.update(input_sha256=sums, timings_s=steps.total(),
                            prediction_cpu_s=prediction_cpu, predict_engines=engines)
            outputs.write_metadata(metadata, tmp / METADATA)
            bodies.write_metadata_gzip(tmp)
    # Outside the block: once the rename is done, tmp is the live version and must stay.
    publish(tmp, target)
    return metadata
