"""Chunked predictions give the bytes of one big call on either engine, and fail loudly."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.processor import parity
from services.processor.features import alert_features
from services.processor.inputs import load_inputs
from services.processor.models import load_models
from services.processor.predictor import COMPILED, LIGHTGBM, CompiledEngine, LightGBMEngine
from services.processor.scoring import Scoring
from shared.sample import write_input
from tests.conftest import REPO
from tests.sample_fixtures import small_batch

N = 1_000
CHUNK = 128  # 8 chunks, the last one partial


@pytest.fixture(scope="module")
def models():
    return load_models(REPO / "trained_models")


@pytest.fixture(scope="module")
def compiled(compiled_cache):
    return load_models(REPO / "trained_models", engine=COMPILED, cache_dir=compiled_cache)


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


@pytest.fixture(scope="module")
def sample_frame(tmp_path_factory):
    """Real alert features of a generated batch, rows shuffled (no order to inherit)."""
    folder = write_input(small_batch(n_alerts=N), tmp_path_factory.mktemp("sample"))
    inputs = load_inputs(folder)
    frame = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                           inputs.links)
    order = np.random.default_rng(5).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def _bare(model, frame):
    """One big LightGBM call on the model's float32 features."""
    return model.booster.predict(model.matrix(frame).astype(np.float32), num_threads=2)


def _scored(models, frame, chunk_rows=CHUNK):
    with ThreadPoolExecutor(2) as pool:
        scoring = Scoring(pool, frame, models, chunk_rows)
        return scoring, scoring.result()


def test_chunked_lightgbm_scores_are_the_bytes_of_one_big_call(models, frame):
    scorer, ranker = models.alert_scorer, models.alert_ranker
    scoring, scores = _scored([scorer, ranker], frame)
    assert len(scoring.futures) == 8
    assert scores[scorer.name].tobytes() == _bare(scorer, frame).tobytes()
    assert scores[ranker.name].tobytes() == _bare(ranker, frame).tobytes()
    assert scoring.report == {scorer.name: {"engine": LIGHTGBM}, ranker.name: {"engine": LIGHTGBM}}


def test_chunked_compiled_scores_are_the_bytes_of_one_big_compiled_call(compiled, sample_frame):
    for model in compiled:
        frame = sample_frame.reindex(columns=model.features)  # the cluster scorer: NaN mostly
        scoring, scores = _scored([model], frame)
        whole = model.engine.forest.predict(model.matrix(frame), n_jobs=2)
        assert scoring.engines[model.name].name == COMPILED
        assert scores[model.name].tobytes() == whole.tobytes()
        assert np.abs(scores[model.name] - _bare(model, frame)).max() <= parity.TOLERANCE
        assert scoring.report[model.name]["parity_max_abs_diff"] <= parity.TOLERANCE


def test_compiled_scores_do_not_depend_on_row_order_or_chunking(compiled, sample_frame):
    scorer = compiled.alert_scorer
    reference = _scored([scorer], sample_frame)[1][scorer.name]
    order = np.random.default_rng(11).permutation(len(sample_frame))
    shuffled = sample_frame.iloc[order].reset_index(drop=True)
    for chunk_rows in (1, 7, CHUNK, N):
        scores = _scored([scorer], shuffled, chunk_rows)[1][scorer.name]
        assert scores.tobytes() == reference[order].tobytes(), chunk_rows


def test_models_with_one_feature_list_share_each_chunk_copy(compiled, sample_frame):
    scorer, ranker = compiled.alert_scorer, compiled.alert_ranker
    with ThreadPoolExecutor(2) as pool:
        scoring = Scoring(pool, sample_frame, [scorer, ranker], CHUNK)
        scoring.result()
    assert len(scoring._groups) == 1
    alone = _scored([ranker], sample_frame)[1][ranker.name]
    assert scoring.scores[ranker.name].tobytes() == alone.tobytes()


def test_a_compiled_model_that_disagrees_on_the_dates_rows_scores_them_with_lightgbm(
        compiled, sample_frame, caplog):
    """The ranker's compiled trees under the scorer's name: wrong by far more than 1e-9."""
    scorer = compiled.alert_scorer
    wrong = dataclasses.replace(scorer, engine=CompiledEngine(compiled.alert_ranker.engine.forest))
    with caplog.at_level(logging.WARNING):
        scoring, scores = _scored([wrong], sample_frame)
    assert scoring.engines[scorer.name].name == LIGHTGBM
    report = scoring.report[scorer.name]
    assert report["engine"] == LIGHTGBM and report["parity_max_abs_diff"] > 0.01
    assert f"on {min(N, parity.SAMPLE_ROWS)} of the date's rows" in report["fallback"]
    assert scores[scorer.name].tobytes() == _bare(scorer, sample_frame).tobytes()
    assert len([r for r in caplog.records if "instead of compiled" in r.getMessage()]) == 1


class _Costly:
    """An engine whose predict calls also wait `wait` s and burn `burn` s of their thread's CPU."""

    name = LIGHTGBM

    def __init__(self, engine, wait: float, burn: float):
        self.engine, self.wait, self.burn = engine, wait, burn

    def predict(self, rows):
        time.sleep(self.wait)
        until = time.thread_time() + self.burn
        while time.thread_time() < until:
            pass
        return self.engine.predict(rows)


def test_cpu_seconds_count_the_predict_calls_cpu_not_their_wall_time(models, frame):
    scorer = models.alert_scorer
    costly = dataclasses.replace(scorer, engine=_Costly(scorer.engine, wait=0.2, burn=0.05))
    scoring, scores = _scored([costly], frame)
    chunks = len(scoring.bounds)
    assert chunks == 8 and scores[scorer.name].tobytes() == _bare(scorer, frame).tobytes()
    assert 0.05 * chunks <= scoring.cpu_seconds(scorer.name) < 0.05 * chunks + 0.2 * chunks / 2


def test_slices_follow_the_table_rows_in_order(models, frame):
    table = pa.table({"row": np.arange(N)})
    with ThreadPoolExecutor(2) as pool:
        slices = list(Scoring(pool, frame, [models.alert_scorer], CHUNK).slices(table))
    assert [s.num_rows for s in slices] == [CHUNK] * 7 + [N - 7 * CHUNK]
    assert pa.concat_tables(slices).column("row").to_pylist() == list(range(N))


def test_no_rows_no_chunks(compiled, frame):
    with ThreadPoolExecutor(2) as pool:
        scoring = Scoring(pool, frame.iloc[:0], [compiled.alert_scorer])
        assert scoring.futures == [] and scoring.result()["alert_scorer"].shape == (0,)
        empty = pa.table({"row": np.arange(0)})
        assert [part.num_rows for part in scoring.slices(empty)] == [0]  # for a writer's schema


def test_a_failing_chunk_is_raised_by_result(models, frame):
    """The cluster scorer's trees on the alert features: LightGBM refuses the feature count."""
    alert, cluster = models.alert_scorer, models.cluster_scorer
    mismatched = dataclasses.replace(alert, engine=LightGBMEngine(cluster.booster))
    with ThreadPoolExecutor(2) as pool:
        wrong = Scoring(pool, frame, [mismatched], CHUNK)
        with pytest.raises(lightgbm.basic.LightGBMError, match="number of features"):
            wrong.result()


def test_each_thread_fills_its_own_buffer_without_fresh_pages(models, frame):
    """A chunk is copied into the thread's buffer: a fresh matrix per chunk would fault in a
    chunk's worth of new pages every time."""
    import tracemalloc

    with ThreadPoolExecutor(1) as pool:
        scoring = Scoring(pool, frame, [models.alert_scorer], N // 2)
        scoring.futures[0].result()  # the thread's buffer exists from here on
        chunk_bytes = (N // 2) * len(models.alert_scorer.features) * 8
        tracemalloc.start()
        try:
            pool.submit(scoring._chunk, 1).result()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < chunk_bytes / 2, f"{peak} bytes allocated to score {chunk_bytes}"


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


def test_processing_makes_the_system_allocator_arrows_default_pool(tmp_path):
    # In a fresh interpreter: this test process may already have run process_batch.
    code = ("import pyarrow as pa\n"
            "from services.processor.process import process_batch\n"
            "from shared.sample import write_input\n"
            "from tests.sample_fixtures import DATE, small_batch\n"
            f"folder = write_input(small_batch(n_alerts=200), {str(tmp_path / 'in')!r})\n"
            "held = pa.array(range(1000))\n"
            "before = pa.default_memory_pool().backend_name\n"
            f"process_batch(folder.parent, {str(tmp_path / 'out')!r}, DATE,\n"
            "              models_dir='trained_models')\n"
            "assert held.sum().as_py() == 499500  # buffers from the earlier pool stay valid\n"
            "print(before != 'system', pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "system"]
