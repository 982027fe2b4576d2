"""Chunked predictions give the bytes of one big Booster.predict call, and fail loudly."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.processor.features import alert_features
from services.processor.inputs import load_inputs
from services.processor.models import load_models
from services.processor.scoring import (ALL_ROWS, CHUNK_ROWS, EACH_CHUNK, PATH_TREES,
                                        PREDICTOR_NICENESS, Prediction, RowMatrix, _path_order,
                                        balanced_rows, path_order, yield_to_others)
from shared.sample import write_input
from tests.conftest import REPO
from tests.sample_fixtures import small_batch

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


@pytest.fixture(scope="module")
def sample_frame(tmp_path_factory):
    """Real alert features of a generated batch, rows shuffled (no order to inherit)."""
    folder = write_input(small_batch(n_alerts=N), tmp_path_factory.mktemp("sample"))
    inputs = load_inputs(folder)
    frame = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                           inputs.links)
    order = np.random.default_rng(5).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def _bare(model, frame, raw=False):
    return model.booster.predict(model.matrix(frame), raw_score=raw, num_threads=2)


def _first_leaves(model, frame):
    return model.booster.predict(model.matrix(frame), pred_leaf=True, num_iteration=PATH_TREES)


def test_chunked_scores_are_the_bytes_of_one_big_call(models, frame):
    scorer, ranker = models.alert_scorer, models.alert_ranker
    with ThreadPoolExecutor(2) as pool:
        matrix = RowMatrix(pool, frame, scorer, ALL_ROWS, chunk_rows=CHUNK)
        scoring = Prediction(pool, scorer, matrix)
        ranking = Prediction(pool, ranker, matrix, raw=True)
        own = Prediction(pool, ranker, RowMatrix(pool, frame, ranker, chunk_rows=CHUNK), raw=True)
        local = Prediction(pool, scorer, RowMatrix(pool, frame, scorer, EACH_CHUNK, CHUNK))
        assert len(scoring.futures) == 8
        assert scoring.result().tobytes() == _bare(scorer, frame).tobytes()
        assert ranking.result().tobytes() == _bare(ranker, frame, raw=True).tobytes()
        assert own.result().tobytes() == ranking.result().tobytes()
        assert local.result().tobytes() == scoring.result().tobytes()
    assert np.array_equal(matrix.rows, scorer.matrix(frame), equal_nan=True)  # all rows filled


def _check_path_order(model, frame, positions):
    """Rows by first-tree leaf path, then by the highest-gain feature (NaN last)."""
    paths = [tuple(leaves) for leaves in _first_leaves(model, frame)[positions]]
    assert paths == sorted(paths)  # rows with the same first-tree paths come together
    lead = int(np.argmax(model.booster.feature_importance("gain")))
    values = model.matrix(frame)[positions, lead]
    runs = 0
    for path in set(paths):
        run = values[[i for i, p in enumerate(paths) if p == path]]
        known = run[~np.isnan(run)]
        assert np.all(np.diff(known) >= 0) and not np.isnan(run[:len(known)]).any()
        runs += len(run) > 1 and len(np.unique(known)) > 1
    return runs


@pytest.mark.parametrize("group", [ALL_ROWS, EACH_CHUNK])
def test_a_grouped_matrix_hands_out_every_row_once_in_leaf_order(models, sample_frame, group):
    scorer, frame = models.alert_scorer, sample_frame
    with ThreadPoolExecutor(2) as pool:
        matrix = RowMatrix(pool, frame, scorer, group, chunk_rows=CHUNK)
        # rows live in the calling thread's scratch buffer until its next chunk(): copy them
        chunks = [(positions, rows.copy()) for positions, rows in map(matrix.chunk,
                                                                      range(len(matrix.bounds)))]
    order = np.concatenate([positions for positions, _ in chunks])
    assert sorted(order.tolist()) == list(range(N)) and order.tolist() != list(range(N))
    expected = scorer.matrix(frame)
    for positions, rows in chunks:
        assert np.array_equal(rows, expected[positions], equal_nan=True)
    if group == ALL_ROWS:
        assert _check_path_order(scorer, frame, order) > 0  # the second key was exercised
    else:
        for (start, stop), (positions, _) in zip(matrix.bounds, chunks):
            assert sorted(positions.tolist()) == list(range(start, stop))
            _check_path_order(scorer, frame, positions)


class _Recording:
    """A booster that records the keyword arguments of every predict call made on it."""

    def __init__(self, booster):
        self.booster, self.calls = booster, []

    def predict(self, rows, **options):
        self.calls.append(options)
        return self.booster.predict(rows, **options)

    def __getattr__(self, name):
        return getattr(self.booster, name)


class _Costly:
    """A booster whose predict calls also wait `wait` s and burn `burn` s of their thread's CPU."""

    def __init__(self, booster, wait: float, burn: float):
        self.booster, self.wait, self.burn = booster, wait, burn

    def predict(self, rows, **options):
        time.sleep(self.wait)
        until = time.thread_time() + self.burn
        while time.thread_time() < until:
            pass
        return self.booster.predict(rows, **options)

    def __getattr__(self, name):
        return getattr(self.booster, name)


def test_cpu_seconds_count_the_predict_calls_cpu_not_their_wall_time(models, frame):
    scorer = models.alert_scorer
    costly = dataclasses.replace(scorer, booster=_Costly(scorer.booster, wait=0.2, burn=0.05))
    with ThreadPoolExecutor(2) as pool:
        prediction = Prediction(pool, costly, RowMatrix(pool, frame, costly, chunk_rows=CHUNK))
        scores = prediction.result()
    chunks = len(prediction.bounds)
    assert chunks == 8 and scores.tobytes() == _bare(scorer, frame).tobytes()
    assert 0.05 * chunks <= prediction.cpu_seconds() < 0.05 * chunks + 0.2 * chunks / 2


@pytest.mark.parametrize("group", [ALL_ROWS, EACH_CHUNK])
def test_leaves_never_come_from_the_booster_that_predicts(models, frame, group):
    """LightGBM keeps the tree count of the last predict call in the booster: a leaf call
    over 3 trees beside a full prediction on the same booster cut it short or crashed."""
    scorer = models.cluster_scorer
    recording = dataclasses.replace(scorer, booster=_Recording(scorer.booster))
    cluster_frame = pd.DataFrame({name: frame.iloc[:, i % frame.shape[1]].to_numpy()
                                  for i, name in enumerate(scorer.features)})
    with ThreadPoolExecutor(2) as pool:
        scores = Prediction(pool, recording, RowMatrix(pool, cluster_frame, recording, group,
                                                       chunk_rows=16)).result()
    assert recording.booster.calls and all("pred_leaf" not in call
                                           for call in recording.booster.calls)
    assert scores.tobytes() == _bare(scorer, cluster_frame).tobytes()
    first = recording.first_trees(PATH_TREES)
    assert first is not scorer.booster and first.num_trees() == PATH_TREES
    assert np.array_equal(first.predict(scorer.matrix(cluster_frame), pred_leaf=True),
                          _first_leaves(scorer, cluster_frame))


def test_path_order_is_the_order_a_matrix_grouped_over_all_rows_predicts_in(models,
                                                                           sample_frame):
    scorer = models.alert_scorer
    with ThreadPoolExecutor(2) as pool:
        matrix = RowMatrix(pool, sample_frame, scorer, ALL_ROWS, chunk_rows=CHUNK)
        order = np.concatenate([matrix.chunk(index)[0] for index in range(len(matrix.bounds))])
    assert order.tolist() == path_order(scorer, scorer.matrix(sample_frame)).tolist()


def test_an_unknown_grouping_is_refused(models, frame):
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="group must be None"):
        RowMatrix(pool, frame, models.alert_scorer, "sorted")


def test_an_ungrouped_matrix_keeps_the_frame_order(models, frame):
    with ThreadPoolExecutor(2) as pool:
        matrix = RowMatrix(pool, frame, models.alert_scorer, chunk_rows=CHUNK)
        positions, rows = matrix.chunk(1)
    assert positions == slice(CHUNK, 2 * CHUNK) and matrix.streams
    assert np.array_equal(rows, models.alert_scorer.matrix(frame)[CHUNK:2 * CHUNK],
                          equal_nan=True)


@pytest.mark.parametrize("group", [None, ALL_ROWS, EACH_CHUNK])
def test_slices_follow_the_table_rows_in_order(models, frame, group):
    table = pa.table({"row": np.arange(N)})
    with ThreadPoolExecutor(2) as pool:
        scoring = Prediction(pool, models.alert_scorer,
                             RowMatrix(pool, frame, models.alert_scorer, group, CHUNK))
        slices = list(scoring.slices(table))
    assert [s.num_rows for s in slices] == [CHUNK] * 7 + [N - 7 * CHUNK]
    assert pa.concat_tables(slices).column("row").to_pylist() == list(range(N))


@pytest.mark.parametrize("group", [None, ALL_ROWS, EACH_CHUNK])
def test_no_rows_no_chunks(models, frame, group):
    with ThreadPoolExecutor(2) as pool:
        scoring = Prediction(pool, models.alert_scorer,
                             RowMatrix(pool, frame.iloc[:0], models.alert_scorer, group))
        assert scoring.futures == [] and scoring.result().shape == (0,)
        empty = pa.table({"row": np.arange(0)})
        assert [part.num_rows for part in scoring.slices(empty)] == [0]  # for a writer's schema


def test_a_failing_chunk_is_raised_by_result(models, frame):
    """The cluster scorer on the alert matrix: LightGBM refuses the feature count."""
    with ThreadPoolExecutor(2) as pool:
        wrong = Prediction(pool, models.cluster_scorer,
                           RowMatrix(pool, frame, models.alert_scorer, chunk_rows=CHUNK))
        with pytest.raises(lightgbm.basic.LightGBMError, match="number of features"):
            wrong.result()


def test_a_failing_grouping_is_raised_by_result(models, frame):
    """A model whose trees do not fit its feature list fails while grouping the rows."""
    alert, cluster = models.alert_scorer, models.cluster_scorer
    mismatched = dataclasses.replace(alert, booster=cluster.booster)
    with ThreadPoolExecutor(2) as pool:
        wrong = Prediction(pool, alert, RowMatrix(pool, frame, mismatched, ALL_ROWS, CHUNK))
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


@pytest.mark.parametrize("leaf_count", [31, 5000])  # packed into one key; too wide: two keys
def test_path_order_is_a_stable_sort_by_leaves_then_lead_nan_last(leaf_count):
    rng = np.random.default_rng(7)
    leaves = rng.integers(0, leaf_count, (5000, PATH_TREES)).astype(np.int32)
    leaves[::3] = leaves[0]  # many full ties on the path
    lead = rng.choice([-2.5, -1e-30, 0.5, 3.0, 1e30, np.inf, -np.inf, np.nan], 5000)
    lead = lead.astype(np.float32)
    expected = np.lexsort([lead, *leaves.T[::-1]])  # stable; NaN sorts last
    assert _path_order(leaves, lead).tolist() == expected.tolist()


@pytest.mark.parametrize("rows,threads", [(1_000_000, 2), (324_097, 2), (324_097, 4),
                                          (65_537, 2), (100, 2), (5, 8), (1, 1)])
def test_balanced_rows_give_every_thread_as_many_chunks(rows, threads):
    size = balanced_rows(rows, threads, most=65_536)
    chunks = -(-rows // size)
    assert size <= 65_536
    assert chunks % threads == 0 or chunks < threads or size == 1
    assert (chunks - 1) * size < rows <= chunks * size  # every row in exactly one chunk


def test_no_rows_still_give_a_chunk_size():
    assert balanced_rows(0, 2) == CHUNK_ROWS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux")
def test_predictor_threads_yield_to_the_others():
    def niceness():
        yield_to_others()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nicer_first():  # as under a worker started with `nice -n 3`: still +5 from there
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), before + 3)
        return niceness()

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(niceness).result() == min(before + PREDICTOR_NICENESS, 19)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(nicer_first).result() == min(before + 3 + PREDICTOR_NICENESS, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # caller kept


@pytest.mark.parametrize("group", [ALL_ROWS, EACH_CHUNK])
def test_grouped_rows_are_gathered_without_a_temporary_copy(models, frame, group):
    """chunk() gathers into the thread's scratch buffer: numpy's default take mode copied the
    buffer to a fresh temporary first (a chunk's worth of new pages on every call)."""
    import tracemalloc

    with ThreadPoolExecutor(1) as pool:
        matrix = RowMatrix(pool, frame, models.alert_scorer, group, chunk_rows=N // 2)
        pool.submit(matrix.chunk, 0).result()  # the scratch buffer exists from here on
        chunk_bytes = matrix.rows[:N // 2].nbytes
        tracemalloc.start()
        try:
            positions, rows = pool.submit(matrix.chunk, 1).result()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert np.array_equal(rows, matrix.rows[positions], equal_nan=True)
    assert peak < chunk_bytes / 2, f"{peak} bytes allocated to gather {chunk_bytes}"


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
