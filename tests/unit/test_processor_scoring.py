"""Chunked predictions give the bytes of one big Booster.predict call, and fail loudly."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.processor.models import load_models
from services.processor.scoring import Prediction, RowMatrix
from tests.conftest import REPO

N = 1_000
CHUNK = 128  # 8 chunks, the last one partial


@pytest.fixture(scope="module")
def models():
    return load_models(REPO / "trained_models")


@pytest.fixture(scope="module")
def frame(models):
    """Every alert feature the shipped models know, with NaNs, in a shuffled column order."""
    rng = np.random.default_rng(3)
    names = list(models.alert_scorer.features)
    rng.shuffle(names)
    data = {name: rng.lognormal(0, 2, N).astype(np.float32) for name in names}
    for values in data.values():
        values[rng.random(N) < 0.1] = np.nan
    return pd.DataFrame(data)


def _bare(model, frame, raw=False):
    return model.booster.predict(model.matrix(frame), raw_score=raw, num_threads=2)


def test_chunked_scores_are_the_bytes_of_one_big_call(models, frame):
    scorer, ranker = models.alert_scorer, models.alert_ranker
    with ThreadPoolExecutor(2) as pool:
        matrix = RowMatrix(frame, scorer)
        scoring = Prediction(pool, scorer, matrix, chunk_rows=CHUNK)
        ranking = Prediction(pool, ranker, matrix, after=scoring, raw=True, chunk_rows=CHUNK)
        own = Prediction(pool, ranker, RowMatrix(frame, ranker), raw=True, chunk_rows=CHUNK)
        assert len(scoring.futures) == 8
        assert scoring.result().tobytes() == _bare(scorer, frame).tobytes()
        assert ranking.result().tobytes() == _bare(ranker, frame, raw=True).tobytes()
        assert own.result().tobytes() == ranking.result().tobytes()
    assert np.array_equal(matrix.rows, scorer.matrix(frame), equal_nan=True)  # all rows filled


def test_slices_follow_the_chunks_in_order(models, frame):
    table = pa.table({"row": np.arange(N)})
    with ThreadPoolExecutor(2) as pool:
        scoring = Prediction(pool, models.alert_scorer, RowMatrix(frame, models.alert_scorer),
                             chunk_rows=CHUNK)
        slices = list(scoring.slices(table))
    assert [s.num_rows for s in slices] == [CHUNK] * 7 + [N - 7 * CHUNK]
    assert pa.concat_tables(slices).column("row").to_pylist() == list(range(N))


def test_no_rows_no_chunks(models, frame):
    with ThreadPoolExecutor(2) as pool:
        scoring = Prediction(pool, models.alert_scorer, RowMatrix(frame.iloc[:0],
                                                                  models.alert_scorer))
        assert scoring.futures == [] and scoring.result().shape == (0,)


def test_a_failing_chunk_is_raised_by_result(models, frame):
    """The cluster scorer on the alert matrix: LightGBM refuses the feature count."""
    with ThreadPoolExecutor(2) as pool:
        wrong = Prediction(pool, models.cluster_scorer, RowMatrix(frame, models.alert_scorer),
                           chunk_rows=CHUNK)
        with pytest.raises(lightgbm.basic.LightGBMError, match="number of features"):
            wrong.result()


def test_processor_turns_transparent_huge_pages_off_for_its_own_process():
    # A child of a process that already ran process_batch inherits THP off: turn it back on.
    code = ("import ctypes\n"
            "assert ctypes.CDLL(None).prctl(41, 0, 0, 0, 0) == 0\n"
            "from services.processor.memory import disable_huge_pages, huge_pages_disabled\n"
            "before = huge_pages_disabled()\n"
            "print(before, disable_huge_pages(), huge_pages_disabled(), disable_huge_pages())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True", "True", "True"]
