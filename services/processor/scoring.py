"""Predictions in row chunks, shared by one predictor thread per core.

Each core runs a predictor thread that takes the next chunk of rows when it is free (both
engines release the GIL), so the result writers, the input hashing and the cluster features
slot in between chunks and no core idles. A chunk's rows are copied from the feature frame
into the thread's own C-order float64 buffer and predicted there by every model that reads
those features (the alert scorer and ranker share one copy). A row's score does not depend
on the other rows of its call: chunked scores are the bytes of one big call's (tested).

Before any chunk, each compiled model is checked against LightGBM on a sample of the frame's
own rows; a model whose scores differ by more than parity.TOLERANCE scores this frame with
LightGBM instead, and the report says why.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from services.processor import grouping, parity, predictor
from services.processor.links import Links
from services.processor.models import Model, column_sources, fill_rows

log = logging.getLogger(__name__)

CHUNK_ROWS = 65_536  # 50 MB of a 97-feature float64 matrix per thread: cheap per call

# How a cluster scorer's sidecar may say its clusters are scored ("cluster_score"; absent:
# the model's own scores). A cluster's label is the highest of its member alerts' labels.
MODEL_SCORES = "model"
MEMBER_ALERT_MAX = "member_alert_max"
CLUSTER_SCORE_RULES = (MODEL_SCORES, MEMBER_ALERT_MAX)


def cluster_rule(model: Model) -> str:
    """The rule a cluster scorer's sidecar names (the model's own scores without one)."""
    rule = model.sidecar.get("cluster_score", MODEL_SCORES)
    if rule not in CLUSTER_SCORE_RULES:
        raise ValueError(f"{model.tag}: unknown cluster_score {rule!r} in its sidecar "
                         f"(known: {', '.join(CLUSTER_SCORE_RULES)})")
    return rule


def member_alert_max(model_scores: np.ndarray, alert_scores: np.ndarray,
                     links: Links) -> np.ndarray:
    """Each cluster's highest member-alert score; the model's score where no member alert is
    in the batch (as the label is the highest member label, the alert scorer ranks it)."""
    best = grouping.maximum(links.member_cluster, alert_scores[links.member_alert],
                            len(model_scores))
    return np.where(np.isnan(best), model_scores, best)


def _rows_at(sources: list, positions: np.ndarray) -> np.ndarray:
    """The rows at positions as a C-order float64 matrix."""
    out = np.empty((len(positions), len(sources)), dtype=np.float64)
    for j, source in enumerate(sources):
        out[:, j] = np.nan if source is None else source[positions]
    return out


class _Group:
    """Models that read the same feature columns, and those columns."""

    def __init__(self, frame: pd.DataFrame, model: Model):
        model.warn_missing(frame)
        self.features = model.features
        self.sources = column_sources(frame, model.features)
        self.models: list[Model] = []


class Scoring:
    """Models' scores over all rows of a frame, as chunk futures on a shared pool."""

    def __init__(self, pool: ThreadPoolExecutor, frame: pd.DataFrame, models: list[Model],
                 chunk_rows: int = CHUNK_ROWS):
        n = len(frame)
        self.bounds = [(start, min(start + chunk_rows, n)) for start in range(0, n, chunk_rows)]
        self.scores = {model.name: np.empty(n, dtype=np.float64) for model in models}
        self.engines: dict[str, object] = {}
        self.report: dict[str, dict] = {}
        self._cpu = {model.name: [0.0] * len(self.bounds) for model in models}
        self._groups: dict[tuple, _Group] = {}
        for model in models:
            group = self._groups.setdefault(model.features, _Group(frame, model))
            group.models.append(model)
            self._choose_engine(model, group.sources, n)
        self._scratch = threading.local()
        self.futures: list[Future] = [pool.submit(self._chunk, index)
                                      for index in range(len(self.bounds))]

    def _choose_engine(self, model: Model, sources: list, n: int) -> None:
        """The model's engine for this frame: compiled if it matches LightGBM on a sample of
        the frame's rows, else LightGBM (one warning)."""
        engine, report = model.engine, {"engine": model.engine.name}
        if model.fallback:
            report["fallback"] = model.fallback
        if engine.name == predictor.COMPILED:
            sample = _rows_at(sources, parity.sample_positions(n))
            diff = predictor.check(model, sample)
            report["parity_max_abs_diff"] = diff
            if diff > parity.TOLERANCE:
                engine = predictor.LightGBMEngine(model.booster)
                report.update(engine=engine.name, fallback=(
                    f"compiled scores differ from LightGBM's by up to {diff:.3g} "
                    f"(> {parity.TOLERANCE:g}) on {len(sample)} of the date's rows"))
                log.warning("%s: scoring with LightGBM instead of compiled trees: %s", model.tag,
                            report["fallback"])
        self.engines[model.name], self.report[model.name] = engine, report

    def _buffer(self, group: _Group) -> np.ndarray:
        """This thread's float64 buffer for a group's rows (one per thread: no fresh pages)."""
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            buffers = self._scratch.buffers = {}
        if group.features not in buffers:
            buffers[group.features] = np.empty((self.bounds[0][1], len(group.features)))
        return buffers[group.features]

    def _chunk(self, index: int) -> None:
        start, stop = self.bounds[index]
        for group in self._groups.values():
            rows = fill_rows(self._buffer(group), group.sources, start, stop)
            for model in group.models:
                started = time.thread_time()
                self.scores[model.name][start:stop] = self.engines[model.name].predict(rows)
                self._cpu[model.name][index] = time.thread_time() - started

    def cpu_seconds(self, name: str) -> float:
        """CPU time of one model's predict calls over all chunks (once result() has returned).

        Each chunk is predicted on one thread, so that thread's CPU time is the call's
        whole cost; the copies into the buffers are not counted.
        """
        return sum(self._cpu[name])

    def slices(self, table: pa.Table) -> Iterator[pa.Table]:
        """The table's rows chunk by chunk, each yielded once its predictions are done.

        A table without rows gives one empty slice (it still tells a writer the schema).
        """
        if not self.bounds:
            yield table.slice(0, 0)
        for future, (start, stop) in zip(self.futures, self.bounds):
            future.result()
            yield table.slice(start, stop - start)

    def result(self) -> dict[str, np.ndarray]:
        """All scores by model name, once every chunk is done (re-raises a chunk's error)."""
        for future in self.futures:
            future.result()
        return self.scores
