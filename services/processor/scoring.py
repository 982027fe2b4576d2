"""Predictions in row chunks, shared by one single-threaded predictor per core.

One big `Booster.predict(num_threads=cores)` splits the rows statically between
its threads: when a result writer takes a core for a while, one half waits for
the other. Here each core runs its own predictor thread that pulls the next chunk
of rows when it is free (ctypes releases the GIL inside LightGBM), so writers,
hashing and cluster features slot in between chunks and no core idles. A row's
prediction does not depend on the other rows of its call: the scores are the
same bytes as one big call's (tested).

The feature matrix is filled chunk by chunk by the first model that predicts on
it, so the copy into C order is spread over the cores too; a later model with the
same feature list waits for its chunk's future and reuses the rows.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from services.processor.models import Model, column_sources, fill_rows

CHUNK_ROWS = 65_536  # 25 MB of a 97-feature float32 matrix: fine-grained, still cheap per call


class RowMatrix:
    """A frame's columns in a model's feature order, as a C-order float32 matrix filled on demand."""

    def __init__(self, frame: pd.DataFrame, model: Model):
        model.warn_missing(frame)
        self.sources = column_sources(frame, model.features)
        self.rows = np.empty((len(frame), len(model.features)), dtype=np.float32)

    def fill(self, start: int, stop: int) -> np.ndarray:
        """Copy rows [start, stop) into place and return them."""
        return fill_rows(self.rows, self.sources, start, stop)


class Prediction:
    """One model's predictions over all rows of a matrix, as chunk futures on a shared pool."""

    def __init__(self, pool: ThreadPoolExecutor, model: Model, matrix: RowMatrix,
                 after: "Prediction | None" = None, raw: bool = False,
                 chunk_rows: int = CHUNK_ROWS):
        n = len(matrix.rows)
        self.model = model
        self.scores = np.empty(n, dtype=np.float64)
        self.futures: list[Future] = []
        self.bounds = [(start, min(start + chunk_rows, n)) for start in range(0, n, chunk_rows)]
        for index, (start, stop) in enumerate(self.bounds):
            ready = after.futures[index] if after is not None else None
            self.futures.append(pool.submit(self._chunk, matrix, start, stop, ready, raw))

    def _chunk(self, matrix: RowMatrix, start: int, stop: int, ready: Future | None,
               raw: bool) -> None:
        if ready is None:
            rows = matrix.fill(start, stop)
        else:
            ready.result()  # the earlier model's chunk filled these rows (and started first)
            rows = matrix.rows[start:stop]
        self.scores[start:stop] = self.model.booster.predict(rows, raw_score=raw, num_threads=1)

    def slices(self, table: pa.Table) -> Iterator[pa.Table]:
        """The table's rows chunk by chunk, each yielded once its predictions are done."""
        for future, (start, stop) in zip(self.futures, self.bounds):
            future.result()
            yield table.slice(start, stop - start)

    def result(self) -> np.ndarray:
        """All scores, once every chunk is done (re-raises a chunk's error)."""
        for future in self.futures:
            future.result()
        return self.scores
